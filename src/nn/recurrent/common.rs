//! What the typed front-ends [`Rnn`](super::Rnn), [`Lstm`](super::Lstm) and [`Gru`](super::Gru)
//! share at their public surface: the stack behind them, and the padding-mask conversion.

use burn::tensor::{Bool, Tensor, backend::Backend};

use crate::{Error, Result};

/// Per-sequence lengths from a padding mask `[batch, time]` where `true` marks padding (burn's
/// polarity, used throughout ember-lm). Padding must be a suffix of each row, and each row must
/// have at least one real step.
///
/// This reads the mask back to the host.
pub fn lengths_from_padding_mask<B: Backend>(mask: Tensor<B, 2, Bool>) -> Result<Vec<usize>> {
    let [batch, time] = mask.dims();
    let data = mask.into_data();
    let values = data
        .as_slice::<bool>()
        .map_err(|e| Error::Lengths(format!("cannot read the padding mask: {e:?}")))?;
    (0..batch)
        .map(|b| {
            let row = &values[b * time..(b + 1) * time];
            let len = row.iter().position(|&pad| pad).unwrap_or(time);
            if row[len..].iter().any(|&pad| !pad) {
                return Err(Error::Lengths(format!(
                    "padding of sequence {b} must be a suffix (true after the last real step), found {row:?}"
                )));
            }
            if len == 0 {
                return Err(Error::Lengths(format!("sequence {b} is all padding")));
            }
            Ok(len)
        })
        .collect()
}

/// Makes `$module` a typed front-end of its [`Recurrent`](super::Recurrent) stack: the stack's
/// accessors and fields through `Deref`, and the stack's PyTorch keys (`torch.nn.$torch`'s).
macro_rules! front_end {
    ($module:ident, $torch:literal) => {
        impl<B: Backend> std::ops::Deref for $module<B> {
            type Target = super::Recurrent<B>;

            fn deref(&self) -> &Self::Target {
                &self.stack
            }
        }

        impl<B: Backend> std::ops::DerefMut for $module<B> {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.stack
            }
        }

        impl<B: Backend> $module<B> {
            /// The untyped stack behind this front-end (its forward takes a [`RecurrentState`](super::RecurrentState)).
            pub fn into_stack(self) -> super::Recurrent<B> {
                self.stack
            }
        }

        impl<B: Backend> crate::io::TorchWeights for $module<B> {
            #[doc = concat!("`torch.nn.", $torch, "`'s keys: `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, ...")]
            fn visit_weights(&mut self, w: &mut crate::io::WeightPath<'_, '_>) -> crate::Result<()> {
                self.stack.visit_weights(w)
            }
        }
    };
}
pub(crate) use front_end;

/// Implements `forward` and `forward_padded` for the front-ends whose state is the hidden state
/// alone.
macro_rules! hidden_state_forward {
    ($module:ident) => {
        impl<B: Backend> $module<B> {
            /// Runs the layer over full-length sequences, from `state` or from zeros.
            ///
            /// # Shapes
            /// - `input`: `[batch, time, input_size]` (`[time, batch, input_size]` if not `batch_first`)
            /// - `state`: `[num_layers * num_directions, batch, hidden_size]`
            /// - output: `[batch, time, num_directions * hidden_size]`, and the final state in the
            ///   layout of `state`
            ///
            /// A wrong feature size, an empty batch or sequence, or a state of the wrong shape is an
            /// [`Error::Shape`](crate::Error::Shape).
            pub fn forward(
                &self,
                input: Tensor<B, 3>,
                state: Option<Tensor<B, 3>>,
            ) -> crate::Result<(Tensor<B, 3>, Tensor<B, 3>)> {
                let (output, state) = self.stack.run(input, None, state, None)?;
                Ok((output, state.hidden))
            }

            /// Runs the layer over a padded batch in which sequence `b` has `lengths[b]` real
            /// steps, as PyTorch does on a `pack_padded_sequence`: outputs at padded positions are
            /// zero, the final state of each sequence is the state at its own last real step, and
            /// the reverse direction starts from each sequence's real end. Lengths need not be sorted.
            ///
            /// # Shapes
            /// As [`forward`](Self::forward); `lengths` has `batch` entries, each in `1..=time`
            /// (otherwise [`Error::Lengths`](crate::Error::Lengths)). A padding mask converts with
            /// [`lengths_from_padding_mask`](crate::nn::lengths_from_padding_mask).
            pub fn forward_padded(
                &self,
                input: Tensor<B, 3>,
                lengths: &[usize],
                state: Option<Tensor<B, 3>>,
            ) -> crate::Result<(Tensor<B, 3>, Tensor<B, 3>)> {
                let (output, state) = self.stack.run(input, Some(lengths), state, None)?;
                Ok((output, state.hidden))
            }
        }
    };
}
pub(crate) use hidden_state_forward;

/// Declares a recurrent module's config fields shared by the three cells, with PyTorch's defaults.
macro_rules! stack_spec {
    ($config:expr, $module:literal, $kind:expr, $proj:expr) => {
        StackSpec {
            module: $module,
            kind: $kind,
            input_size: $config.input_size,
            hidden_size: $config.hidden_size,
            proj_size: $proj,
            num_layers: $config.num_layers,
            bias: $config.bias,
            batch_first: $config.batch_first,
            bidirectional: $config.bidirectional,
        }
    };
}
pub(crate) use stack_spec;
