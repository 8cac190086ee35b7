//! Whether a latency measurement can be trusted, in the spirit of MLPerf LoadGen's
//! VALID/INVALID: `yes`, or every reason it cannot, separated by `; `.
//!
//! The rules, all in [`verdict`]:
//! - **too few samples**: fewer than the asked minimum, or fewer than the 6 a 95% interval
//!   of the median needs ([`super::ci::MIN_SAMPLES_FOR_CI`]);
//! - **interval wider than the target**: the p50's 95% interval half-width over the p50
//!   exceeds `target_ci` (e.g. `ci 3.1% > 2%`);
//! - **machine busy**: other processes' CPU time or the hypervisor's steal time during the
//!   measurement above the thresholds (see [`super::load`]). Where the load could not be read
//!   (off Linux) this rule is not applied.

use super::ci::MIN_SAMPLES_FOR_CI;
use super::load::Load;
use super::rounds::p50_spread;

/// The thresholds a measurement is judged by.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rules {
    /// Fewest samples of a program.
    pub min_samples: usize,
    /// Largest relative half-width of the p50's 95% interval (0.02: +-2%).
    pub target_ci: f64,
    /// Largest share of all cores' time used by other processes (0..1).
    pub busy_other_cpu: f64,
    /// Largest share of CPU time stolen by the hypervisor (0..1).
    pub busy_steal: f64,
}

/// `yes`, or the reasons the measurement of `samples` (seconds) under `load` is not valid.
pub fn verdict(samples: &[f64], load: Option<&Load>, r: &Rules) -> String {
    let mut why = Vec::new();
    let need = r.min_samples.max(MIN_SAMPLES_FOR_CI);
    if samples.len() < need {
        why.push(format!("too few samples: {} < {need}", samples.len()));
    } else {
        let spread = p50_spread(samples);
        if spread > r.target_ci {
            why.push(format!("ci {} > {}", above(spread, r.target_ci), pct(r.target_ci)));
        }
    }
    if let Some(b) = load.and_then(|l| l.busy_above(r.busy_other_cpu, r.busy_steal)) {
        why.push(b);
    }
    if why.is_empty() { "yes".into() } else { why.join("; ") }
}

/// `0.031` as `3.1%`, `0.02` as `2%`.
/// `x` as a percentage with as many decimals (1 to 3) as it takes to read as more than
/// `threshold` (`ci 2.04% > 2%`, never `ci 2% > 2%`).
fn above(x: f64, threshold: f64) -> String {
    let shown = |d: usize| format!("{:.*}", d, x * 100.0);
    let d = (1..=3).find(|&d| shown(d).parse::<f64>().is_ok_and(|v| v > threshold * 100.0)).unwrap_or(3);
    format!("{}%", shown(d))
}

fn pct(x: f64) -> String {
    format!("{}%", super::load::percent(x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::load::{BUSY_OTHER_CPU, BUSY_STEAL};

    const RULES: Rules = Rules { min_samples: 10, target_ci: 0.02, busy_other_cpu: BUSY_OTHER_CPU, busy_steal: BUSY_STEAL };

    #[test]
    fn quiet_tight_measurement_is_valid() {
        // 1.00, 1.001, ..., 1.019: ranks 6 and 15 of 20 give (1.005, 1.014) around 1.0095.
        let s: Vec<f64> = (0..20).map(|i| 1.0 + i as f64 * 0.001).collect();
        assert_eq!(verdict(&s, Some(&Load { other_cpu: 0.05, steal: 0.01 }), &RULES), "yes");
        assert_eq!(verdict(&s, None, &RULES), "yes");
    }

    #[test]
    fn each_rule_names_its_reason() {
        let few = [1.0; 5];
        assert_eq!(verdict(&few, None, &RULES), "too few samples: 5 < 10");
        // 1..=20: interval (6, 15) around 10.5, half-width 4.5 / 10.5 = 42.9%.
        let wide: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(verdict(&wide, None, &RULES), "ci 42.9% > 2%");
        assert_eq!(above(0.0204, 0.02), "2.04%");
        assert_eq!(above(0.02001, 0.02), "2.001%");
        assert_eq!(above(0.031, 0.02), "3.1%");
        let busy = Load { other_cpu: 0.5, steal: 0.12 };
        assert_eq!(
            verdict(&wide, Some(&busy), &RULES),
            "ci 42.9% > 2%; machine busy: other processes 50.0% of CPU > 25%, steal 12.0% > 5%"
        );
        // The CI needs 6 samples even when fewer are asked for.
        assert_eq!(verdict(&few, None, &Rules { min_samples: 1, ..RULES }), "too few samples: 5 < 6");
        assert_eq!(pct(0.031), "3.1%");
    }
}
