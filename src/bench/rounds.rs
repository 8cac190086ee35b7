//! Interleaved timing: several programs timed in rounds, `A B C  C A B  B C A ...`, so that
//! drift in the machine's load falls on all of them alike.
//!
//! Each program first gets `warmup` untimed calls. Then each round visits every program once,
//! in an order shuffled per round (ChaCha8 seeded with [`Sampling::seed`], so a run's order is
//! reproducible), and times `calls_per_round` calls of it (after one untimed call, so the first
//! timed call does not pay for the previous program having evicted its weights from cache).
//! Rounds go on until every program's p50 has a 95% interval (see [`super::ci`]) whose half
//! width is within `target_ci` of the p50 and the minimum rounds, samples and seconds are met,
//! or the time cap is reached, or a program has `max_samples`.
//!
//! The scheduling takes closures (one call of program `i`, and a clock), so it is tested on
//! synthetic timings without a device.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::ci::{median_ci, relative_half_width};
use super::stats::percentile;
use crate::error::Result;

/// How to time a set of programs. Seconds are wall-clock seconds of the rounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    /// Untimed calls of each program before the first round.
    pub warmup: usize,
    /// Timed calls of each program per round (after one untimed call).
    pub calls_per_round: usize,
    /// At least this many rounds...
    pub min_rounds: usize,
    /// ...and at least this many samples of each program...
    pub min_samples: usize,
    /// ...and at least this many seconds of rounds.
    pub min_seconds: f64,
    /// Stop once every p50's interval half-width is at most this fraction of the p50 (0.02: +-2%).
    pub target_ci: f64,
    /// Stop adding rounds after this many seconds, converged or not.
    pub time_cap_s: f64,
    /// Stop once a program has this many samples.
    pub max_samples: usize,
    /// Seed of the per-round order.
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            warmup: 3,
            calls_per_round: 3,
            min_rounds: 4,
            min_samples: 10,
            min_seconds: 0.0,
            target_ci: 0.02,
            time_cap_s: 25.0,
            max_samples: 100_000,
            seed: 0,
        }
    }
}

/// Why the rounds ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Every interval within the target, the minimums met.
    Converged,
    /// The time cap was reached first.
    TimeCap,
    /// A program reached `max_samples`.
    MaxSamples,
    /// The stop flag was set (Ctrl-C); the samples are incomplete.
    Interrupted,
}

/// What the rounds measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Rounds {
    /// Seconds of every timed call, per program, in the order they were made.
    pub samples: Vec<Vec<f64>>,
    /// The order programs were visited in, per round.
    pub orders: Vec<Vec<usize>>,
    pub stop: Stop,
}

impl Rounds {
    pub fn rounds(&self) -> usize {
        self.orders.len()
    }
}

/// The relative half-width of program samples' p50 interval; infinite while there is none.
pub fn p50_spread(samples: &[f64]) -> f64 {
    let Some(ci) = median_ci(samples) else { return f64::INFINITY };
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    relative_half_width(ci, percentile(&s, 50.0))
}

/// Whether rounds may stop now, and why.
fn stop_now(s: &Sampling, samples: &[Vec<f64>], rounds: usize, seconds: f64) -> Option<Stop> {
    if samples.iter().any(|v| v.len() >= s.max_samples) {
        return Some(Stop::MaxSamples);
    }
    let minimums = rounds >= s.min_rounds.max(1) && seconds >= s.min_seconds && samples.iter().all(|v| v.len() >= s.min_samples);
    if minimums && samples.iter().all(|v| p50_spread(v) <= s.target_ci) {
        return Some(Stop::Converged);
    }
    (minimums && seconds >= s.time_cap_s).then_some(Stop::TimeCap)
}

/// Times `n` programs in interleaved rounds. `call(i)` runs program `i` once and returns the
/// seconds it took; `clock()` returns seconds since any fixed instant. A set `stop` ends the
/// rounds after the current program's calls ([`Stop::Interrupted`]).
pub fn interleave(
    n: usize,
    s: &Sampling,
    stop: &AtomicBool,
    mut call: impl FnMut(usize) -> Result<f64>,
    clock: impl Fn() -> f64,
) -> Result<Rounds> {
    for i in 0..n {
        for _ in 0..s.warmup {
            call(i)?;
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut orders = Vec::new();
    let start = clock();
    let k = s.calls_per_round.max(1);
    loop {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        for &i in &order {
            call(i)?; // untimed: refills caches after the previous program
            for _ in 0..k {
                samples[i].push(call(i)?);
            }
            if stop.load(Ordering::Relaxed) {
                orders.push(order);
                return Ok(Rounds { samples, orders, stop: Stop::Interrupted });
            }
        }
        orders.push(order);
        if n == 0 {
            return Ok(Rounds { samples, orders, stop: Stop::Converged });
        }
        if let Some(stop) = stop_now(s, &samples, orders.len(), clock() - start) {
            return Ok(Rounds { samples, orders, stop });
        }
    }
}

/// [`interleave`] on the wall clock, with `run(i)` the untimed body of one call of program `i`.
pub fn interleave_timed(
    n: usize,
    s: &Sampling,
    stop: &AtomicBool,
    mut run: impl FnMut(usize) -> Result<()>,
) -> Result<Rounds> {
    let t0 = Instant::now();
    interleave(
        n,
        s,
        stop,
        |i| {
            let t = Instant::now();
            run(i)?;
            Ok(t.elapsed().as_secs_f64())
        },
        || t0.elapsed().as_secs_f64(),
    )
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// Runs the scheduler on synthetic programs: program `i` "takes" `base[i]` seconds times a
    /// deterministic jitter of `+-jitter`; the clock advances by each call's time.
    fn synthetic(base: &[f64], jitter: f64, s: &Sampling) -> (Rounds, Vec<usize>) {
        synthetic_until(base, jitter, s, usize::MAX)
    }

    /// [`synthetic`], with the stop flag set at call number `stop_at`.
    fn synthetic_until(base: &[f64], jitter: f64, s: &Sampling, stop_at: usize) -> (Rounds, Vec<usize>) {
        let now = Cell::new(0.0);
        let mut calls = Vec::new();
        let mut count = 0usize;
        let stop = AtomicBool::new(false);
        let r = interleave(
            base.len(),
            s,
            &stop,
            |i| {
                count += 1;
                if count >= stop_at {
                    stop.store(true, Ordering::Relaxed);
                }
                calls.push(i);
                let t = base[i] * (1.0 + jitter * (((count * 7919) % 101) as f64 / 50.0 - 1.0));
                now.set(now.get() + t);
                Ok(t)
            },
            || now.get(),
        )
        .unwrap();
        (r, calls)
    }

    #[test]
    fn each_round_is_a_seeded_permutation() {
        let s = Sampling { warmup: 2, calls_per_round: 2, min_rounds: 6, min_samples: 1, ..Sampling::default() };
        let (r, calls) = synthetic(&[1.0, 2.0, 3.0, 4.0], 0.0, &s);
        assert_eq!((r.rounds(), r.stop), (6, Stop::Converged));
        for o in &r.orders {
            let mut sorted = o.clone();
            sorted.sort();
            assert_eq!(sorted, [0, 1, 2, 3], "{o:?}");
        }
        assert!(r.orders.iter().any(|o| o != &r.orders[0]), "the order changes between rounds: {:?}", r.orders);
        // Warm-up first, in program order; then per visit one untimed and two timed calls.
        assert_eq!(calls[..8], [0, 0, 1, 1, 2, 2, 3, 3]);
        let visits: Vec<usize> = calls[8..].chunks(3).map(|c| c[0]).collect();
        assert!(calls[8..].chunks(3).all(|c| c[0] == c[1] && c[1] == c[2]));
        assert_eq!(visits, r.orders.concat());
        assert!(r.samples.iter().all(|v| v.len() == 12));
        // Same seed, same orders; another seed, other orders.
        assert_eq!(synthetic(&[1.0, 2.0, 3.0, 4.0], 0.0, &s).0.orders, r.orders);
        let other = synthetic(&[1.0, 2.0, 3.0, 4.0], 0.0, &Sampling { seed: 1, ..s }).0;
        assert_ne!(other.orders, r.orders);
    }

    #[test]
    fn stops_when_intervals_are_tight() {
        // +-1% jitter: every interval is within +-2% as soon as the minimums are met.
        let s = Sampling { warmup: 0, calls_per_round: 1, min_rounds: 3, min_samples: 10, ..Sampling::default() };
        let (r, _) = synthetic(&[0.01, 0.02], 0.01, &s);
        assert_eq!((r.stop, r.rounds()), (Stop::Converged, 10));
        assert!(r.samples.iter().all(|v| p50_spread(v) <= 0.02));
    }

    #[test]
    fn wide_spread_runs_to_the_time_cap() {
        // +-60% jitter never gets within +-0.1% before 5 synthetic seconds pass.
        let s = Sampling { warmup: 0, target_ci: 0.001, time_cap_s: 5.0, ..Sampling::default() };
        let (r, _) = synthetic(&[0.01, 0.05], 0.6, &s);
        assert_eq!(r.stop, Stop::TimeCap);
        // Each round costs 2 x (0.01 + 0.05) x 4 calls ~ 0.24 s: ~21 rounds.
        assert!((18..=25).contains(&r.rounds()), "{}", r.rounds());
        assert!(r.samples.iter().all(|v| p50_spread(v) > 0.001));
        // The minimums hold even past the cap.
        let s = Sampling { min_rounds: 40, time_cap_s: 0.0, ..s };
        assert_eq!(synthetic(&[0.01, 0.05], 0.6, &s).0.rounds(), 40);
        // And max_samples ends it first.
        let s = Sampling { max_samples: 9, ..s };
        let (r, _) = synthetic(&[0.01, 0.05], 0.6, &s);
        assert_eq!((r.stop, r.samples[0].len()), (Stop::MaxSamples, 9));
        // The stop flag ends it after the program being timed: set at call 2 (no warm-up), in
        // the first visit of round 1, so one program has its 3 samples and the other none.
        let (r, calls) = synthetic_until(&[0.01, 0.05], 0.6, &Sampling { max_samples: 100, ..s }, 2);
        assert_eq!((r.stop, r.rounds(), calls.len()), (Stop::Interrupted, 1, 4));
        assert_eq!(r.samples.iter().map(Vec::len).sum::<usize>(), 3);
    }
}
