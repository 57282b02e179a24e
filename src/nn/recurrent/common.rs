//! What [`Rnn`](super::Rnn), [`Lstm`](super::Lstm) and [`Gru`](super::Gru) share at their public
//! surface: loading PyTorch weights, size accessors, and the padding-mask conversion.

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

/// Implements the accessors and the PyTorch names that the three recurrent modules share.
macro_rules! recurrent_common {
    ($module:ident, $torch:literal) => {
        impl<B: Backend> $module<B> {
            /// Number of input features.
            pub fn input_size(&self) -> usize {
                self.spec.input_size
            }

            /// Number of output features: the state size times the number of directions.
            pub fn output_size(&self) -> usize {
                self.spec.output_size()
            }

            /// Number of stacked layers.
            pub fn num_layers(&self) -> usize {
                self.spec.num_layers
            }

            /// Number of directions (2 when bidirectional).
            pub fn num_directions(&self) -> usize {
                self.spec.directions()
            }
        }

        impl<B: Backend> crate::io::TorchWeights for $module<B> {
            #[doc = concat!("`torch.nn.", $torch, "`'s keys: `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, ...,")]
            /// `weight_hr_l{k}` with a projection, `_reverse` for the second direction.
            fn visit_weights(&mut self, w: &mut crate::io::WeightPath<'_, '_>) -> crate::Result<()> {
                self.spec.visit_cells(&mut self.cells, w)
            }
        }
    };
}
pub(crate) use recurrent_common;

/// Implements `forward` and `forward_padded` for the modules whose state is the hidden state alone.
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
                let (output, hidden, _) =
                    self.spec
                        .run(&self.cells, &self.dropout, input, None, state, None)?;
                Ok((output, hidden))
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
                let (output, hidden, _) = self.spec.run(
                    &self.cells,
                    &self.dropout,
                    input,
                    Some(lengths),
                    state,
                    None,
                )?;
                Ok((output, hidden))
            }

            /// Size of the hidden state.
            pub fn hidden_size(&self) -> usize {
                self.spec.hidden_size
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
