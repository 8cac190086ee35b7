//! SGD with momentum (the update emitted into the step program) and the learning-rate
//! schedule (computed on the host, so changing the rate needs no recompilation).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hlo::{Builder, Value};

/// Optimiser and batch-norm settings baked into a step program.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptConfig {
    /// Momentum `mu` of SGD (PyTorch form, no dampening): `v' = mu v + g`.
    pub momentum: f64,
    /// L2 weight decay added to the gradient, `g += wd * p`, **on conv kernels and dense
    /// weights only**: biases and BN gamma/beta are not decayed (the usual practice).
    pub weight_decay: f64,
    /// Nesterov momentum: the step is `g + mu v'` instead of `v'`.
    pub nesterov: bool,
    /// BN running-stat momentum (PyTorch convention): `r' = (1 - m) r + m batch_stat`;
    /// the running variance takes the unbiased batch variance.
    pub bn_momentum: f64,
}

impl Default for OptConfig {
    /// Momentum 0.9, weight decay 5e-4, no Nesterov, BN momentum 0.1.
    fn default() -> Self {
        OptConfig { momentum: 0.9, weight_decay: 5e-4, nesterov: false, bn_momentum: 0.1 }
    }
}

impl OptConfig {
    pub fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(Error::invalid("momentum", self.momentum, "use a value in [0, 1), e.g. 0.9"));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(Error::invalid("weight decay", self.weight_decay, "use a finite value >= 0, e.g. 5e-4"));
        }
        if self.nesterov && self.momentum == 0.0 {
            return Err(Error::invalid("nesterov", "with momentum 0", "Nesterov needs a momentum > 0"));
        }
        if !(self.bn_momentum > 0.0 && self.bn_momentum <= 1.0) {
            return Err(Error::invalid("BN momentum", self.bn_momentum, "use a value in (0, 1], e.g. 0.1"));
        }
        Ok(())
    }
}

/// Emits one SGD step for parameter `p` with gradient `g`, momentum buffer `v` and the
/// learning rate `lr` (a scalar of `p`'s dtype); `decay` says whether weight decay applies.
/// Returns `(p', v')`.
pub fn sgd_update(b: &mut Builder, opt: &OptConfig, p: &Value, g: &Value, v: &Value, lr: &Value, decay: bool) -> Result<(Value, Value)> {
    let shape = p.shape().clone();
    let g = if decay && opt.weight_decay != 0.0 {
        let wd = b.constant(opt.weight_decay, shape.clone());
        let d = b.mul(&wd, p)?;
        b.add(g, &d)?
    } else {
        g.clone()
    };
    let mu = b.constant(opt.momentum, shape.clone());
    let mv = b.mul(&mu, v)?;
    let v_new = b.add(&mv, &g)?;
    let dir = if opt.nesterov {
        let t = b.mul(&mu, &v_new)?;
        b.add(&g, &t)?
    } else {
        v_new.clone()
    };
    let lr_b = b.splat(lr, &shape.dims)?;
    let step = b.mul(&lr_b, &dir)?;
    let p_new = b.sub(p, &step)?;
    Ok((p_new, v_new))
}

/// How the learning rate decays after the warm-up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decay {
    /// The base rate throughout.
    Constant,
    /// Multiply by `gamma` every `every` steps (counted from the end of the warm-up).
    Step { every: usize, gamma: f64 },
    /// Cosine from the base rate down to `final_lr` at `total_steps`.
    Cosine { final_lr: f64 },
}

/// A learning-rate schedule: linear warm-up to `base` over `warmup_steps`, then `decay`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    pub base: f64,
    pub warmup_steps: usize,
    pub decay: Decay,
}

impl LrSchedule {
    pub fn constant(base: f64) -> Self {
        LrSchedule { base, warmup_steps: 0, decay: Decay::Constant }
    }
    pub fn cosine(base: f64, warmup_steps: usize) -> Self {
        LrSchedule { base, warmup_steps, decay: Decay::Cosine { final_lr: 0.0 } }
    }
    pub fn step(base: f64, warmup_steps: usize, every: usize, gamma: f64) -> Self {
        LrSchedule { base, warmup_steps, decay: Decay::Step { every, gamma } }
    }
}

/// The learning rate for step `step` (0-based) of `total_steps`. During the warm-up the
/// rate rises linearly, `base * (step + 1) / warmup_steps`, so the first step is not 0.
pub fn lr_at(schedule: &LrSchedule, step: usize, total_steps: usize) -> f32 {
    let s = schedule;
    if step < s.warmup_steps {
        return (s.base * (step + 1) as f64 / s.warmup_steps as f64) as f32;
    }
    let after = step - s.warmup_steps;
    let lr = match s.decay {
        Decay::Constant => s.base,
        Decay::Step { every, gamma } => s.base * gamma.powi((after / every.max(1)) as i32),
        Decay::Cosine { final_lr } => {
            let span = total_steps.saturating_sub(s.warmup_steps).max(1) as f64;
            let t = (after as f64 / span).min(1.0);
            final_lr + (s.base - final_lr) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
        }
    };
    lr as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        let s = LrSchedule::cosine(0.1, 10);
        assert!((lr_at(&s, 0, 110) - 0.01).abs() < 1e-7);
        assert!((lr_at(&s, 9, 110) - 0.1).abs() < 1e-7);
        assert!((lr_at(&s, 10, 110) - 0.1).abs() < 1e-7);
        assert!((lr_at(&s, 60, 110) - 0.05).abs() < 1e-6);
        assert!(lr_at(&s, 109, 110) < 1e-3);
        assert_eq!(lr_at(&s, 500, 110), 0.0);
    }

    #[test]
    fn step_decay() {
        let s = LrSchedule::step(0.1, 0, 30, 0.1);
        assert!((lr_at(&s, 29, 100) - 0.1).abs() < 1e-7);
        assert!((lr_at(&s, 30, 100) - 0.01).abs() < 1e-8);
        assert!((lr_at(&s, 65, 100) - 0.001).abs() < 1e-9);
        assert_eq!(lr_at(&LrSchedule::constant(0.3), 1000, 10), 0.3);
    }

    #[test]
    fn rejects_bad_options() {
        assert!(OptConfig::default().validate().is_ok());
        let o = OptConfig { momentum: 1.0, ..OptConfig::default() };
        assert!(o.validate().unwrap_err().to_string().contains("momentum"));
        let o = OptConfig { momentum: 0.0, nesterov: true, ..OptConfig::default() };
        assert!(o.validate().is_err());
    }
}
