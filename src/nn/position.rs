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
        super::check_param_size(
            module,
            "the table (max_len × d_model)",
            &[self.max_len, self.d_model],
        )
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
    if offset.checked_add(time).is_none_or(|end| end > max_len) {
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
    /// The longest sequence (offset plus length) the table covers.
    pub fn max_len(&self) -> usize {
        self.table.dims()[0]
    }

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

/// Configuration of [`RotaryPositions`].
#[derive(Config, Debug)]
pub struct RotaryConfig {
    /// Width of one attention head; must be even.
    pub d_head: usize,
    /// Base of the frequencies, `theta` in the RoFormer paper. Default 10000, as GPT-NeoX, Llama
    /// and Hugging Face's `rope_theta`.
    #[config(default = 10000.0)]
    pub base: f64,
}

/// Rotary position embedding (RoPE) in the "rotate half" convention of GPT-NeoX, Llama and
/// Hugging Face Transformers: for a head vector `x = [x1, x2]` (two halves) at position `p`,
/// `rope(x) = x ⊙ cos(p θ) + [-x2, x1] ⊙ sin(p θ)`, with `θ_i = base^(-2i / d_head)` repeated
/// over both halves.
///
/// burn's `RotaryEncoding` rotates interleaved pairs `(x_{2i}, x_{2i+1})` (the original Meta
/// layout) and precomputes a fixed-length table; checkpoints from Hugging Face use the halves
/// layout, and computing the angles per call needs no maximum length.
#[derive(Module, Clone, Debug)]
pub struct RotaryPositions {
    d_head: usize,
    base: f64,
}

impl RotaryConfig {
    /// Builds the rotation, or an [`Error::Config`] when `d_head` is odd or zero or `base <= 1`.
    pub fn init(&self) -> Result<RotaryPositions> {
        if self.d_head == 0 || !self.d_head.is_multiple_of(2) || !(self.base > 1.0 && self.base.is_finite()) {
            return Err(Error::Config {
                module: "RotaryConfig",
                message: format!(
                    "d_head must be even and positive and base a finite number > 1, found d_head {} and base {}",
                    self.d_head, self.base
                ),
            });
        }
        Ok(RotaryPositions {
            d_head: self.d_head,
            base: self.base,
        })
    }
}

impl RotaryPositions {
    /// Rotates the heads of `x` for the positions `offset .. offset + time`.
    ///
    /// # Shapes
    /// - `x`: `[batch, heads, time, d_head]`; output the same
    pub fn forward<B: Backend>(&self, x: Tensor<B, 4>, offset: usize) -> Tensor<B, 4> {
        let (cos, sin) = self.tables(x.dims()[2], offset, &x.device());
        rotate(x, &cos, &sin)
    }

    /// Rotates queries and keys at the same positions, building the angle tables once.
    ///
    /// # Shapes
    /// - `q`: `[batch, heads, time, d_head]`, `k`: `[batch, kv_heads, time, d_head]`; outputs the same
    pub fn forward_pair<B: Backend>(
        &self,
        q: Tensor<B, 4>,
        k: Tensor<B, 4>,
        offset: usize,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let (cos, sin) = self.tables(q.dims()[2], offset, &q.device());
        (rotate(q, &cos, &sin), rotate(k, &cos, &sin))
    }

    /// `cos(p θ)` and `sin(p θ)` for `p` in `offset .. offset + time`, as `[1, 1, time, d_head]`.
    fn tables<B: Backend>(
        &self,
        time: usize,
        offset: usize,
        device: &B::Device,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let d = self.d_head;
        let half = d / 2;
        // Angles in f64 on the host, so long positions keep their precision.
        let (mut cos, mut sin) = (Vec::with_capacity(time * d), Vec::with_capacity(time * d));
        // Positions as floats: an offset near usize::MAX cannot overflow.
        for p in (0..time).map(|t| offset as f64 + t as f64) {
            for j in 0..d {
                let theta = self.base.powf(-2.0 * (j % half) as f64 / d as f64);
                let angle = p * theta;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        // [time, d] -> [1, 1, time, d]
        let table = |v: Vec<f32>| {
            Tensor::<B, 2>::from_data(TensorData::new(v, [time, d]), device).reshape([1, 1, time, d])
        };
        (table(cos), table(sin))
    }
}

/// `x ⊙ cos + [-x2, x1] ⊙ sin` over the last axis.
fn rotate<B: Backend>(x: Tensor<B, 4>, cos: &Tensor<B, 4>, sin: &Tensor<B, 4>) -> Tensor<B, 4> {
    let [batch, heads, time, d] = x.dims();
    let half = d / 2;
    let x1 = x.clone().slice([0..batch, 0..heads, 0..time, 0..half]);
    let x2 = x.clone().slice([0..batch, 0..heads, 0..time, half..d]);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    x * cos.clone() + rotated * sin.clone()
}
