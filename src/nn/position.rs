//! Absolute positions added to token embeddings: [`SinusoidalPositions`] (fixed) and
//! [`LearnedPositions`] (trained), both with a position offset for incremental decoding.

use burn::config::Config;
use burn::module::{Initializer, Module, Param};
use burn::tensor::{Tensor, TensorData};

use crate::{Backend, Error, Result};

/// Configuration of [`SinusoidalPositions`] and [`LearnedPositions`].
#[derive(Config, Debug)]
pub struct PositionsConfig {
    /// Model width.
    pub d_model: usize,
    /// Longest sequence (offset plus length) the table covers.
    pub max_len: usize,
}

/// The fixed sinusoidal positions of "Attention Is All You Need" (and of PyTorch's Transformer
/// tutorial): `pe[pos, 2i] = sin(pos / 10000^(2i/d))`, `pe[pos, 2i+1] = cos(pos / 10000^(2i/d))`.
#[derive(Module, Debug)]
pub struct SinusoidalPositions<B: Backend> {
    /// `[max_len, d_model]`, not trained.
    table: Tensor<B, 2>,
}

/// Learned absolute positions (GPT-2's `wpe`): an embedding table of `[max_len, d_model]`,
/// initialised `N(0, 0.02)` as GPT-2 does.
#[derive(Module, Debug)]
pub struct LearnedPositions<B: Backend> {
    /// `[max_len, d_model]`.
    pub weight: Param<Tensor<B, 2>>,
}

impl PositionsConfig {
    fn check(&self, module: &'static str) -> Result<()> {
        if self.d_model == 0 || self.max_len == 0 {
            return Err(Error::Config {
                module,
                message: format!(
                    "d_model and max_len must be positive, found {} and {}",
                    self.d_model, self.max_len
                ),
            });
        }
        Ok(())
    }

    /// The sinusoidal table.
    pub fn init_sinusoidal<B: Backend>(&self, device: &B::Device) -> Result<SinusoidalPositions<B>> {
        self.check("PositionsConfig (sinusoidal)")?;
        let d = self.d_model;
        let values: Vec<f32> = (0..self.max_len)
            .flat_map(|pos| {
                (0..d).map(move |j| {
                    let rate = 10000f64.powf(-((j - j % 2) as f64) / d as f64);
                    let angle = pos as f64 * rate;
                    (if j % 2 == 0 { angle.sin() } else { angle.cos() }) as f32
                })
            })
            .collect();
        Ok(SinusoidalPositions {
            table: Tensor::from_data(TensorData::new(values, [self.max_len, d]), device),
        })
    }

    /// A learned table.
    pub fn init_learned<B: Backend>(&self, device: &B::Device) -> Result<LearnedPositions<B>> {
        self.check("PositionsConfig (learned)")?;
        Ok(LearnedPositions {
            weight: Initializer::Normal { mean: 0.0, std: 0.02 }.init([self.max_len, self.d_model], device),
        })
    }
}

/// `x + table[offset .. offset + time]`, with the errors both position kinds share.
fn add_positions<B: Backend>(table: Tensor<B, 2>, x: Tensor<B, 3>, offset: usize) -> Result<Tensor<B, 3>> {
    let [max_len, d] = table.dims();
    let [_, time, width] = x.dims();
    if width != d {
        return Err(Error::shape(
            "positions input",
            format!("[batch, time, {d}]"),
            &x.dims(),
        ));
    }
    if offset + time > max_len {
        return Err(Error::shape(
            "positions input",
            format!("offset + time <= max_len = {max_len} (offset {offset})"),
            &x.dims(),
        ));
    }
    // [time, d] -> [1, time, d]
    Ok(x + table.slice(offset..offset + time).unsqueeze::<3>())
}

impl<B: Backend> SinusoidalPositions<B> {
    /// Adds the positions `offset .. offset + time` to `x`.
    ///
    /// # Shapes
    /// - `x`: `[batch, time, d_model]`, with `offset + time <= max_len`; output the same
    pub fn forward(&self, x: Tensor<B, 3>, offset: usize) -> Result<Tensor<B, 3>> {
        add_positions(self.table.clone(), x, offset)
    }
}

impl<B: Backend> LearnedPositions<B> {
    /// Adds the positions `offset .. offset + time` to `x`.
    ///
    /// # Shapes
    /// - `x`: `[batch, time, d_model]`, with `offset + time <= max_len`; output the same
    pub fn forward(&self, x: Tensor<B, 3>, offset: usize) -> Result<Tensor<B, 3>> {
        add_positions(self.weight.val(), x, offset)
    }
}
