//! `random`: uniform random scores from the plan's seed; the baseline every other
//! criterion must beat.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::prune::criterion::{Criterion, Needs, WeightRule};

pub struct Random;

impl Criterion for Random {
    fn name(&self) -> &'static str {
        "random"
    }
    fn about(&self) -> &'static str {
        "uniform random scores, reproducible from --seed"
    }
    fn needs(&self) -> Needs {
        Needs::Weights
    }
    fn weight_rule(&self) -> Option<WeightRule> {
        Some(WeightRule::Random(draws))
    }
}

/// Uniform draws in `[0, 1)` from `seed`: one list of `n` per entry of `sizes`, in order.
fn draws(seed: u64, sizes: &[usize]) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    sizes.iter().map(|&n| (0..n).map(|_| rng.random::<f64>()).collect()).collect()
}
