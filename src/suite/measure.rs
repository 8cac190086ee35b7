//! How a suite's rows are timed: the rows of one setting (device, dtype, batch) together.
//!
//! Latency depends on the program (channel list, batch, dtype, lowering plan, device), not on
//! the weights, so each distinct program of a setting is measured once and its result shared
//! by every row that uses it (`measured_for` names the row it was measured for). The masked
//! control keeps its own measurement (its program has the unpruned shapes but other weights,
//! and showing that it costs what the unpruned network costs is its point). The distinct
//! programs of a setting are timed side by side in interleaved rounds
//! ([`crate::bench::rounds`]) together with the unpruned network's program of each lowering,
//! so every speed-up compares two programs measured under the same load. When a setting has
//! more programs than `program_cache`, they are measured in chunks that each include the
//! unpruned programs again.
//!
//! This module holds the bookkeeping (grouping, program keys, chunks, filling a row from a
//! measurement), testable without a device; [`super::runner`] compiles and runs.

use std::rc::Rc;

use super::plan::Variant;
use super::record::{ms, Record};
use crate::bench::ci::ratio_of_medians;
use crate::bench::latency::{Latency, Measurement, MemoryFigures};
use crate::bench::validity::{verdict, Rules};
use crate::lower::Lowering;
use crate::model::Network;

/// A row made ready for timing: everything but the measurement filled in.
pub struct Pending {
    pub variant: Variant,
    pub rec: Record,
    /// The network whose program is timed.
    pub model: Rc<Network>,
    pub plan: Vec<Lowering>,
    /// The unpruned network (the speed-ups' reference).
    pub baseline: bool,
    /// The masked control: measured on its own.
    pub masked: bool,
    /// Written to the CSV (false for an unpruned row measured only as the reference of a
    /// setting whose unpruned row is already in the CSV).
    pub write: bool,
}

/// The variants grouped by setting (device, dtype, batch), in the order settings first appear.
pub fn settings<'v>(variants: &[&'v Variant]) -> Vec<Vec<&'v Variant>> {
    let mut groups: Vec<Vec<&Variant>> = Vec::new();
    for &v in variants {
        match groups.iter_mut().find(|g| (g[0].device, g[0].dtype, g[0].batch) == (v.device, v.dtype, v.batch)) {
            Some(g) => g.push(v),
            None => groups.push(vec![v]),
        }
    }
    groups
}

/// The key of a row's program within its setting: its channel list, runtime and lowering plan,
/// and for the masked control its own id (it is measured apart).
pub fn program_key(p: &Pending) -> String {
    let plan: String = p.plan.iter().map(|l| &l.name()[..1]).collect();
    let own = if p.masked { p.variant.id.as_str() } else { "" };
    format!("{:?}|{}|{plan}|{own}", p.model.arch.channels, p.variant.runtime)
}

/// The distinct programs of `rows`: for each row the index of its program, and for each
/// program the row it is measured for (the first that uses it).
pub fn programs(rows: &[Pending]) -> (Vec<usize>, Vec<usize>) {
    let keys: Vec<String> = rows.iter().map(program_key).collect();
    let mut first: Vec<usize> = Vec::new();
    let of_row = keys
        .iter()
        .enumerate()
        .map(|(r, k)| match first.iter().position(|&f| keys[f] == *k) {
            Some(p) => p,
            None => {
                first.push(r);
                first.len() - 1
            }
        })
        .collect();
    (of_row, first)
}

/// Programs `0..n` in chunks of at most `cap` (at least the baselines plus one), each chunk
/// the `baselines` first, then its share of the others. With no other program, one chunk of
/// the baselines.
pub fn chunks(n: usize, baselines: &[usize], cap: usize) -> Vec<Vec<usize>> {
    let others: Vec<usize> = (0..n).filter(|i| !baselines.contains(i)).collect();
    let room = cap.saturating_sub(baselines.len()).max(1);
    if others.is_empty() {
        return vec![baselines.to_vec()];
    }
    others.chunks(room).map(|c| baselines.iter().chain(c).copied().collect()).collect()
}

/// What a row's speed-up is measured against.
#[derive(Clone, Copy)]
pub enum Reference<'a> {
    /// The row's program is the unpruned one: the speed-up is 1.
    Itself,
    /// The unpruned program of the same runtime and lowering, measured in the same rounds.
    Of(&'a Latency),
    /// No unpruned measurement (it failed): no speed-up.
    Missing,
}

/// Fills `rec`'s measurement columns from `lat` (its program's result in `m`), the speed-up
/// against `reference` (bootstrap seeded with `seed`) and the verdict of `rules`.
pub fn fill(rec: &mut Record, lat: &Latency, m: &Measurement, measured_for: &str, reference: Reference, rules: &Rules, seed: u64) {
    let r = &lat.run;
    rec.latency_min_ms = Some(ms(r.min));
    rec.latency_mean_ms = Some(ms(r.mean));
    rec.latency_p50_ms = Some(ms(r.p50));
    rec.latency_p50_ci_low_ms = lat.p50_ci.map(|c| ms(c.0));
    rec.latency_p50_ci_high_ms = lat.p50_ci.map(|c| ms(c.1));
    rec.latency_p90_ms = Some(ms(r.p90));
    rec.latency_p95_ms = Some(ms(r.p95));
    rec.latency_p99_ms = Some(ms(r.p99));
    rec.latency_p999_ms = Some(ms(r.p999));
    rec.latency_max_ms = Some(ms(r.max));
    rec.latency_std_ms = Some(ms(r.std));
    rec.samples = Some(r.samples);
    rec.throughput_ips = Some((lat.throughput * 1e3).round() / 1e3);
    rec.latency_with_copy_p50_ms = Some(ms(lat.with_upload.p50));
    rec.latency_with_copy_mean_ms = Some(ms(lat.with_upload.mean));
    rec.rounds = Some(m.rounds);
    rec.measured_for = Some(measured_for.to_string());
    rec.program_reused = Some(measured_for != rec.variant);
    let round4 = |x: f64| (x * 1e4).round() / 1e4;
    let speedup = match reference {
        Reference::Itself => Some((1.0, (1.0, 1.0))),
        Reference::Of(b) => ratio_of_medians(&b.samples, &lat.samples, seed),
        Reference::Missing => None,
    };
    rec.speedup = speedup.map(|s| round4(s.0));
    // A latency-schedule row in the setting its table was measured for: prediction vs measurement.
    if let (Some(pf), Reference::Of(b)) = (rec.predicted_fraction, &reference) {
        rec.predicted_ms = Some(ms(pf * b.run.p50));
        rec.prediction_error = Some(round4(r.p50 / b.run.p50 / pf - 1.0));
        rec.target_error = rec.latency_target.map(|t| round4(r.p50 / b.run.p50 / t - 1.0));
    }
    rec.speedup_ci_low = speedup.map(|s| round4(s.1 .0));
    rec.speedup_ci_high = speedup.map(|s| round4(s.1 .1));
    rec.valid = Some(verdict(&lat.samples, m.load.as_ref(), rules));
    rec.load_other_cpu = m.load.map(|l| round4(l.other_cpu));
    rec.load_steal = m.load.map(|l| round4(l.steal));
    if let Some(mem) = &lat.memory {
        let f = MemoryFigures::of(mem);
        rec.argument_bytes = Some(mem.argument_bytes);
        rec.output_bytes = Some(mem.output_bytes);
        rec.temp_bytes = Some(mem.temp_bytes);
        rec.code_bytes = Some(mem.generated_code_bytes);
        rec.compiler_peak_bytes = f.compiler_peak;
        rec.program_min_bytes = Some(f.program_min);
    }
    rec.flops = lat.flops;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::load::Load;
    use crate::bench::rounds::Stop;
    use crate::bench::Summary;
    use crate::hlo::DType;
    use crate::lower::{Lowering, Mode};
    use crate::model::Arch;
    use crate::pjrt::DeviceChoice;

    fn variant(id: &str, batch: usize) -> Variant {
        Variant { id: id.into(), prune: 0, device: DeviceChoice::Cpu, dtype: DType::F32, batch, lowering: Mode::Xla, runtime: crate::engine::Runtime::Xla }
    }

    fn pending(id: &str, width: f64, masked: bool) -> Pending {
        let arch = Arch::cifar(width, 1, 10, vec![]).unwrap();
        Pending {
            variant: variant(id, 1),
            rec: Record { variant: id.into(), ..Record::default() },
            model: Rc::new(Network::init(&arch, 0)),
            plan: vec![Lowering::Direct; 13],
            baseline: false,
            masked,
            write: true,
        }
    }

    #[test]
    fn groups_by_setting_in_order() {
        let (a, b, c, d) = (variant("a", 1), variant("b", 4), variant("c", 1), variant("d", 4));
        let g = settings(&[&a, &b, &c, &d]);
        let ids: Vec<Vec<&str>> = g.iter().map(|g| g.iter().map(|v| v.id.as_str()).collect()).collect();
        assert_eq!(ids, [vec!["a", "c"], vec!["b", "d"]]);
    }

    #[test]
    fn same_program_is_shared_but_masked_rows_keep_their_own() {
        let rows = [
            pending("unpruned", 0.25, false),
            pending("l1", 0.125, false),
            pending("fpgm", 0.125, false),    // same channels as l1: shares its program
            pending("l1-masked", 0.25, true), // unpruned shapes, measured apart
            pending("fpgm-masked", 0.25, true),
        ];
        let (of_row, first) = programs(&rows);
        assert_eq!(of_row, [0, 1, 1, 2, 3]);
        assert_eq!(first, [0, 1, 3, 4]);
    }

    #[test]
    fn chunks_repeat_the_baselines() {
        assert_eq!(chunks(5, &[0, 3], 16), [vec![0, 3, 1, 2, 4]]);
        assert_eq!(chunks(5, &[0, 3], 3), [vec![0, 3, 1], vec![0, 3, 2], vec![0, 3, 4]]);
        assert_eq!(chunks(6, &[0], 3), [vec![0, 1, 2], vec![0, 3, 4], vec![0, 5]]);
        assert_eq!(chunks(2, &[0, 1], 4), [vec![0, 1]]);
        // A cap below the baselines still measures one other program per chunk.
        assert_eq!(chunks(3, &[0, 1], 1), [vec![0, 1, 2]]);
    }

    fn latency(samples: Vec<f64>) -> Latency {
        Latency {
            run: Summary::of(&samples),
            p50_ci: crate::bench::ci::median_ci(&samples),
            with_upload: Summary::of(&samples),
            throughput: 1.0 / Summary::of(&samples).p50,
            samples,
            memory: None,
            flops: None,
        }
    }

    #[test]
    fn fills_speedup_validity_and_sharing() {
        let base = latency((0..20).map(|i| 0.010 + i as f64 * 1e-5).collect());
        let fast = latency((0..20).map(|i| 0.005 + i as f64 * 5e-6).collect());
        let m = Measurement { models: vec![], rounds: 7, stop: Stop::Converged, load: Some(Load { other_cpu: 0.4, steal: 0.0 }) };
        let rules = Rules { min_samples: 10, target_ci: 0.02, busy_other_cpu: 0.25, busy_steal: 0.05 };
        let mut rec = Record { variant: "fpgm".into(), ..Record::default() };
        fill(&mut rec, &fast, &m, "l1", Reference::Of(&base), &rules, 0);
        assert_eq!(rec.measured_for.as_deref(), Some("l1"));
        assert_eq!((rec.program_reused, rec.rounds, rec.samples), (Some(true), Some(7), Some(20)));
        let s = rec.speedup.unwrap();
        assert!((s - 2.0).abs() < 1e-9, "{s}");
        assert!(rec.speedup_ci_low.unwrap() <= s && s <= rec.speedup_ci_high.unwrap());
        assert_eq!(rec.valid.as_deref(), Some("machine busy: other processes 40.0% of CPU > 25%"));
        assert_eq!((rec.load_other_cpu, rec.load_steal), (Some(0.4), Some(0.0)));
        let (lo, hi) = (rec.latency_p50_ci_low_ms.unwrap(), rec.latency_p50_ci_high_ms.unwrap());
        assert!(lo <= rec.latency_p50_ms.unwrap() && rec.latency_p50_ms.unwrap() <= hi);
        // The unpruned row itself: speed-up exactly 1, measured for itself.
        let mut own = Record { variant: "unpruned".into(), ..Record::default() };
        fill(&mut own, &base, &m, "unpruned", Reference::Itself, &rules, 0);
        assert_eq!((own.speedup, own.speedup_ci_low, own.speedup_ci_high), (Some(1.0), Some(1.0), Some(1.0)));
        assert_eq!(own.program_reused, Some(false));
    }
}
