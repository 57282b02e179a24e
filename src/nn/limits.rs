//! The size limit on one parameter tensor, checked by every layer's `init`.
//!
//! burn allocates parameters lazily, so a configuration with an absurd size would otherwise pass
//! `init` and abort the process at the first forward, on an allocation of terabytes. `init`
//! refuses it instead, naming the fields that make it up.

use crate::{Error, Result};

/// The most elements one parameter tensor may hold: 2^32, 16 GiB in f32. The largest tensors of
/// today's published language models (embedding tables of 128k tokens × 16k features) hold about
/// half of it.
pub const MAX_PARAM_ELEMENTS: usize = 1 << 32;

/// An [`Error::Config`] for `module` when a tensor of shape `dims` (described by `what`, in the
/// configuration's field names) would exceed [`MAX_PARAM_ELEMENTS`] or overflow `usize`.
pub(crate) fn check_param_size(module: &'static str, what: &str, dims: &[usize]) -> Result<()> {
    let elements = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    match elements {
        Some(n) if n <= MAX_PARAM_ELEMENTS => Ok(()),
        _ => Err(Error::Config {
            module,
            message: format!(
                "{what} would be a tensor of {dims:?} = {} elements; one parameter may hold at most 2^32 \
                 ({MAX_PARAM_ELEMENTS}, 16 GiB in f32)",
                elements.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string())
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_past_the_limit_or_overflowing_are_refused() {
        check_param_size("M", "w", &[1 << 16, 1 << 16]).unwrap();
        let err =
            check_param_size("M", "w (4·hidden_size × input_size)", &[1 << 16, (1 << 16) + 1]).unwrap_err();
        assert!(err.to_string().contains("4·hidden_size"), "{err}");
        let err = check_param_size("M", "w", &[1 << 40, 1 << 40]).unwrap_err();
        assert!(err.to_string().contains("more than 2^64"), "{err}");
    }
}
