//! `random`: uniform random scores from the plan's seed; the baseline every other
//! criterion must beat.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::model::Vgg;
use crate::prune::criterion::{Criterion, Needs, ScoreContext};

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
    fn scores(&self, v: &Vgg, ctx: &ScoreContext) -> Result<Vec<Vec<f64>>> {
        let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed);
        Ok(v.arch.channels.iter().map(|&n| (0..n).map(|_| rng.random::<f64>()).collect()).collect())
    }
}
