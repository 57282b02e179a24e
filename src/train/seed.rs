//! Seeding parameter initialisation (Lightning's `seed_everything`).
//!
//! burn draws initial weights from the backend's random generator, which is unseeded until
//! `Backend::seed` is called, and initialises most parameters lazily (at their first use). Both
//! are handled here: the generator is seeded, and [`Trainer::new`](super::Trainer::new)
//! initialises every parameter that is still lazy right after seeding, in module order, so that
//! the initial weights are a function of the seed.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::data::SplitMix64;

/// Seeds `B`'s random generator, from which burn draws initial weights and dropout masks: call it
/// before `config.init(&device)` to make initialisation repeatable, as Lightning's
/// `seed_everything` does. The generator is global to the backend (every device of it).
pub fn seed_everything<B: Backend>(seed: u64, device: &B::Device) {
    B::seed(device, seed);
}

/// Seeds the backend from `seed` (a stream of its own, apart from the per-batch ones) and
/// initialises every parameter that is still lazy, in module order.
pub(crate) fn seed_initialisation<B: Backend, M: Module<B>>(model: &M, seed: u64, device: &B::Device) {
    struct Materialise;
    impl<B: Backend> ModuleVisitor<B> for Materialise {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if param.is_initialized() {
                return;
            }
            // `val()` runs the lazy initialiser once and keeps its value.
            let _ = param.val();
        }
    }
    B::seed(device, SplitMix64::derive(seed, &[0x1417]).next_u64());
    model.visit(&mut Materialise);
}
