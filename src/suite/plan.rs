//! The plan: the product of a suite's axes, de-duplicated, each variant with a stable id.
//!
//! A pruning configuration whose ratios are all 0 is the unpruned network whatever its
//! method, rounding or control, so it collapses into the one `unpruned` configuration.
//!
//! Variant ids are readable and stable across runs (the CSV is resumed by them):
//! `<pruning>/<dtype>/b<batch>/<lowering>/<device>`, where `<pruning>` is `unpruned` or
//! `<method>-<schedule>-<ratio>-r<round_to>[-masked]` (the latency schedule: its target in
//! the ratio's place, `l1-latency-0.5-r1`), and a per-layer ratio list is written
//! as the first 10 hex digits of the SHA-256 of its text (`0.1,0.2,...`). E.g.
//! `l1-uniform-0.5-r8/f32/b1/tuned/cpu`, `fpgm-layers-3f2a9c01d4-r1-masked/bf16/b32/xla/gpu`.

use crate::hlo::DType;
use crate::engine::Runtime;
use crate::lower::Mode;
use crate::pjrt::DeviceChoice;
use crate::budget::RoundTo;
use crate::prune::{Control, Plan, Schedule};

use super::config::{PruneOptions, Suite};

/// One way of pruning (or not) the suite's network.
#[derive(Clone, Debug, PartialEq)]
pub struct PruneConfig {
    /// `None`: the unpruned network.
    pub method: Option<String>,
    pub schedule: Schedule,
    pub round_to: RoundTo,
    pub control: Control,
}

impl PruneConfig {
    pub fn baseline() -> Self {
        PruneConfig { method: None, schedule: Schedule::Uniform(0.0), round_to: RoundTo::Multiple(1), control: Control::Physical }
    }

    /// A configuration; all-zero ratios give [`PruneConfig::baseline`].
    /// (The latency schedule chooses its counts on the staircase itself: its `round_to` is 1.)
    pub fn new(method: &str, schedule: Schedule, round_to: RoundTo, control: Control) -> Self {
        let zero = match &schedule {
            Schedule::Uniform(r) | Schedule::Global(r) => *r == 0.0,
            Schedule::Layers(rs) => rs.iter().all(|&r| r == 0.0),
            Schedule::Latency(_) => false,
        };
        if zero {
            return Self::baseline();
        }
        let round_to = if matches!(schedule, Schedule::Latency(_)) { RoundTo::Multiple(1) } else { round_to };
        PruneConfig { method: Some(method.into()), schedule, round_to, control }
    }

    pub fn is_baseline(&self) -> bool {
        self.method.is_none()
    }

    /// The id part of the pruning without the control: configurations that differ only in
    /// the control share their kept channels (and their fine-tuning).
    pub fn physical_key(&self) -> String {
        match &self.method {
            None => "unpruned".into(),
            Some(m) => {
                let ratio = match &self.schedule {
                    Schedule::Uniform(r) | Schedule::Global(r) | Schedule::Latency(r) => r.to_string(),
                    Schedule::Layers(_) => {
                        crate::model::checkpoint::hex_sha256(self.schedule.ratios_text().as_bytes())[..10].to_string()
                    }
                };
                format!("{m}-{}-{ratio}-r{}", self.schedule.name(), self.round_to)
            }
        }
    }

    /// The id part of the pruning.
    pub fn key(&self) -> String {
        match self.control {
            Control::Physical => self.physical_key(),
            Control::Masked => format!("{}-masked", self.physical_key()),
        }
    }

    /// The pruning plan (not for the baseline).
    pub fn plan(&self, o: &PruneOptions) -> Option<Plan> {
        let m = self.method.as_ref()?;
        Some(Plan {
            criterion: m.clone(),
            schedule: self.schedule.clone(),
            // `auto` is applied by the runner on the pruned counts (a table is needed).
            round_to: self.round_to.multiple(),
            min_channels: o.min_channels,
            skip: o.skip.clone(),
            seed: o.seed,
            control: self.control,
        })
    }

    /// `method` column.
    pub fn method_name(&self) -> &str {
        self.method.as_deref().unwrap_or("none")
    }

    /// `schedule` column.
    pub fn schedule_name(&self) -> &'static str {
        if self.is_baseline() { "none" } else { self.schedule.name() }
    }

    /// `ratio` column: `0.5`, or the 13 per-layer ratios separated by spaces (the latency
    /// schedule: its target fraction; the `latency_target` column says so).
    pub fn ratio_text(&self) -> String {
        if self.is_baseline() { "0".into() } else { self.schedule.ratios_text().replace(',', " ") }
    }
}

/// One row of the result: a pruning configuration measured in one setting.
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    pub id: String,
    /// Index into [`Suite::pruning`].
    pub prune: usize,
    pub device: DeviceChoice,
    pub dtype: DType,
    pub batch: usize,
    /// The conv lowering on XLA (`Mode::Xla`, unused, on the other runtimes).
    pub lowering: Mode,
    pub runtime: Runtime,
}

impl Variant {
    /// The runtime and lowering as one label: the lowering on XLA (`xla`, `tuned`, ...), the
    /// runtime's name elsewhere. Rows compare their speed-ups within one label.
    pub fn engine_label(&self) -> &'static str {
        match self.runtime {
            Runtime::Xla => self.lowering.name(),
            other => other.name(),
        }
    }
}

/// Every variant of `suite`, in run order: device, pruning configuration (masked twins
/// right after their physical configuration), dtype, batch, lowering.
pub fn expand(suite: &Suite) -> Vec<Variant> {
    let mut out: Vec<Variant> = Vec::new();
    for &device in &suite.devices {
        for (pi, p) in suite.pruning.iter().enumerate() {
            let mut lowerings = suite.lowerings.clone();
            if p.is_baseline() {
                lowerings.extend(suite.baseline_lowerings.iter().filter(|l| !suite.lowerings.contains(l)));
            }
            for &dtype in &suite.dtypes {
                for &batch in &suite.batches {
                    for &runtime in &suite.runtimes {
                        // XLA once per lowering; the other runtimes once, labelled by name.
                        let modes: Vec<Mode> = if runtime == Runtime::Xla { lowerings.clone() } else { vec![Mode::Xla] };
                        for lowering in modes {
                            let label = if runtime == Runtime::Xla { lowering.name() } else { runtime.name() };
                            let id = format!("{}/{dtype}/b{batch}/{label}/{device}", p.key());
                            if out.iter().all(|v| v.id != id) {
                                out.push(Variant { id, prune: pi, device, dtype, batch, lowering, runtime });
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite(pruning: &str, measure: &str) -> Suite {
        let text = format!(
            "model: {{width: 0.0625, in_channels: 1}}\ninit: {{seed: 0}}\ndataset: {{eval_limit: 0}}\n{pruning}\n{measure}\n"
        );
        Suite::from_text(std::path::Path::new("t.yaml"), &text).unwrap()
    }

    #[test]
    fn ratio_zero_is_one_variant_and_ids_are_readable() {
        let s = suite(
            "pruning: {methods: [l1, fpgm], ratios: [0, 0.5], round_to: [1, 8], controls: [physical, masked]}",
            "measure: {devices: [cpu], batches: [1, 4], lowerings: [tuned], baseline_lowerings: [xla, tuned]}",
        );
        // unpruned + 2 methods x 1 nonzero ratio x 2 round_to x 2 controls.
        assert_eq!(s.pruning.len(), 1 + 8);
        let v = expand(&s);
        assert_eq!(v.len(), 2 * 2 + 8 * 2);
        let ids: Vec<&str> = v.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(ids[..4], ["unpruned/f32/b1/tuned/cpu", "unpruned/f32/b1/xla/cpu", "unpruned/f32/b4/tuned/cpu", "unpruned/f32/b4/xla/cpu"]);
        assert!(ids.contains(&"fpgm-uniform-0.5-r8-masked/f32/b4/tuned/cpu"), "{ids:?}");
        // The masked twin follows its physical configuration.
        let i = ids.iter().position(|&x| x == "l1-uniform-0.5-r1/f32/b4/tuned/cpu").unwrap();
        assert_eq!(ids[i + 1], "l1-uniform-0.5-r1-masked/f32/b1/tuned/cpu");
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
    }

    #[test]
    fn layer_lists_get_a_short_stable_id() {
        let l = "[0.1, 0.1, 0.2, 0.2, 0.3, 0.3, 0.3, 0.5, 0.5, 0.5, 0.7, 0.7, 0.7]";
        let s = suite(&format!("pruning: {{methods: [l1], layer_ratios: [{l}, [0,0,0,0,0,0,0,0,0,0,0,0,0]]}}"), "");
        assert_eq!(s.pruning.len(), 2);
        let k = s.pruning[1].key();
        assert!(k.starts_with("l1-layers-") && k.ends_with("-r1") && k.len() == "l1-layers-".len() + 10 + 3, "{k}");
        assert_eq!(k, suite(&format!("pruning: {{methods: [l1], layer_ratios: [{l}]}}"), "").pruning[1].key());
        assert_eq!(s.pruning[1].ratio_text().split(' ').count(), 13);
    }
}
