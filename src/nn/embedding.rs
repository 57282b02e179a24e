//! Embedding lookup shared by every model with a token table: ids checked against the table
//! before indexing, so a bad id is an `Error::TokenId`, not a panic or a silent read.

use burn::tensor::{ElementConversion, Int, Tensor};

use crate::{Backend, Error, Result};

/// `table[ids]` after checking that `ids` is non-empty and inside the table.
///
/// # Shapes
/// - `table`: `[vocab, d]`; `ids`: `[batch, len]`; output `[batch, len, d]`
pub(crate) fn lookup<B: Backend>(
    what: &str,
    table: &Tensor<B, 2>,
    ids: Tensor<B, 2, Int>,
) -> Result<Tensor<B, 3>> {
    let [batch, len] = ids.dims();
    if batch == 0 || len == 0 {
        return Err(Error::shape(
            what,
            "[batch, len] with batch, len > 0",
            &ids.dims(),
        ));
    }
    check_ids(&ids, table.dims()[0])?;
    Ok(lookup_checked(table, ids))
}

/// `table[ids]` for ids already checked against the table (on the host, by [`host_ids`]).
///
/// # Shapes
/// - `table`: `[vocab, d]`; `ids`: `[batch, len]`, both > 0; output `[batch, len, d]`
pub(crate) fn lookup_checked<B: Backend>(table: &Tensor<B, 2>, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
    let [batch, len] = ids.dims();
    let d = table.dims()[1];
    // [B, L] -> [B*L] -> [B*L, D] -> [B, L, D]
    table
        .clone()
        .select(0, ids.reshape([batch * len]))
        .reshape([batch, len, d])
}

/// Host ids `[batch, ids.len() / batch]` as a tensor, after checking them against `vocab_size`
/// on the host: a decoding step then reads nothing back from the device but its logits.
pub(crate) fn host_ids<B: Backend>(
    what: &str,
    ids: &[u32],
    batch: usize,
    vocab_size: usize,
    device: &B::Device,
) -> Result<Tensor<B, 2, Int>> {
    if batch == 0 || ids.is_empty() || !ids.len().is_multiple_of(batch) {
        return Err(Error::shape(
            what,
            format!("{batch} rows of equal length > 0 (batch = {batch})"),
            &[ids.len()],
        ));
    }
    crate::data::check_token_ids(ids, vocab_size)?;
    let data: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
    Ok(Tensor::from_data(
        burn::tensor::TensorData::new(data, [batch, ids.len() / batch]),
        device,
    ))
}

/// An [`Error::TokenId`] for the first id outside `0..vocab_size` (reads two scalars back).
pub(crate) fn check_ids<B: Backend, const D: usize>(
    ids: &Tensor<B, D, Int>,
    vocab_size: usize,
) -> Result<()> {
    let flat = ids.clone().flatten::<1>(0, D - 1);
    let (lo, hi): (i64, i64) = (
        flat.clone().min().into_scalar().elem(),
        flat.max().into_scalar().elem(),
    );
    for found in [lo, hi] {
        if found < 0 || found as u64 >= vocab_size as u64 {
            return Err(Error::TokenId { found, vocab_size });
        }
    }
    Ok(())
}
