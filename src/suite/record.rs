//! The one result record: a row per measured variant, what every exporter writes.
//!
//! Columns, in order (also in `docs/csv-schema.md`). Empty means "not applicable or not
//! reported" (e.g. device peak bytes on the CPU plugin, accuracy when `eval_limit: 0`, every
//! measurement of an error row).
//!
//! | group | columns |
//! |---|---|
//! | identity | `suite`, `variant` (the stable id rows are resumed by), `method` (`none` unpruned), `schedule` (`none`, `uniform`, `global`, `layers`, `latency`), `ratio` (fraction removed; 13 space-separated values for `layers`; the target for `latency`), `round_to`, `control` (`physical`, `masked`), `lowering` (`xla`, `tuned`, `im2col`, `winograd`; `-` on the other runtimes), `lowering_plan` (per conv: `d` direct, `i` im2col, `g` gemm9, `w` winograd, `k` kernel; `-` on the other runtimes), `runtime` (`xla`, `onnxruntime`, `openvino`), `dtype`, `batch`, `device` (as asked: `cpu`, `gpu`, `tpu`, `auto`), `platform`, `device_kind` |
//! | model | `channels` (13 conv widths, space separated), `params`, `macs` (per image) |
//! | latency schedule | `latency_target` (fraction of the unpruned latency); in the setting its table was measured for: `predicted_fraction`, `predicted_ms`, `prediction_error` (measured / predicted - 1), `target_error` (measured / target - 1) |
//! | time | `compile_s` (seconds PJRT took to compile the program), `program_reused` (the program was compiled for an earlier variant with the same shapes; `compile_s` is that compile's), `latency_{min,mean,p50,p90,p95,p99,p999,max,std}_ms` (execute-and-await of one batch, input and weights already on the device), `latency_p50_ci_{low,high}_ms` (95% interval of the p50, order statistics) after `latency_p50_ms`, `samples`, `throughput_ips` (images/s at the median), `latency_with_copy_{p50,mean}_ms` (host-to-device copy of the input plus execute-and-await) |
//! | measurement | `rounds` (interleaved rounds), `measured_for` (the variant whose program measurement the row reports; rows sharing a program have identical latency columns), `speedup`, `speedup_ci_{low,high}` (p50 of the unpruned row of the same device/dtype/batch/lowering over this row's, 95% bootstrap interval), `valid` (`yes` or the reasons, `; ` separated), `load_other_cpu`, `load_steal` (fractions of all cores' time during the measurement) |
//! | memory | `argument_bytes`, `output_bytes`, `temp_bytes`, `code_bytes` (the compiled program's, from PJRT; empty on the other runtimes), `compiler_peak_bytes` (what PJRT's compiled memory stats call the peak, where given), `program_min_bytes` (argument + output + temp: the least one call must hold), `device_peak_bytes` (the device's peak in use so far, where the plugin reports it), `host_peak_rss_bytes` (this process's peak resident set so far, `VmHWM`) |
//! | accuracy | `eval_images`, `top1_before_ft`, `top5_before_ft`, `loss_before_ft` (pruned, before fine-tuning; for the unpruned network, its accuracy), `top1_after_ft`, `top5_after_ft`, `loss_after_ft`, `finetune_steps`, `finetune_s` (empty without fine-tuning) |
//! | cost | `flops` (PJRT cost analysis of the program, per batch, where given) |
//! | provenance | `timestamp` (UTC, RFC 3339, when the row was written), `prunebench_commit`, `plugin` (path), `pjrt_api` (`major.minor`), `runtime_version` (e.g. `onnxruntime 1.32.0`; empty on XLA), `host_cpu`, `suite_sha256` |
//! | outcome | `status` (`ok`, `error`), `error` (the message) |

use serde::{Deserialize, Serialize};

/// One row. Field order is column order; `Option::None` is an empty cell.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    // identity
    pub suite: String,
    pub variant: String,
    pub method: String,
    pub schedule: String,
    pub ratio: String,
    /// A multiple (`8`) or `auto`.
    pub round_to: String,
    pub control: String,
    pub lowering: String,
    pub lowering_plan: Option<String>,
    pub runtime: String,
    pub dtype: String,
    pub batch: usize,
    pub device: String,
    pub platform: Option<String>,
    pub device_kind: Option<String>,
    // model
    pub channels: Option<String>,
    pub params: Option<u64>,
    pub macs: Option<u64>,
    /// The latency schedule's target (fraction of the unpruned latency), and in the setting
    /// its table was measured for (batch, XLA lowering) the model's prediction as a fraction
    /// and in ms of this setting's unpruned p50, `measured / predicted - 1` and `measured /
    /// target - 1` (measured: this row's p50 over the unpruned row's, same rounds).
    pub latency_target: Option<f64>,
    pub predicted_fraction: Option<f64>,
    pub predicted_ms: Option<f64>,
    pub prediction_error: Option<f64>,
    pub target_error: Option<f64>,
    // time
    pub compile_s: Option<f64>,
    pub program_reused: Option<bool>,
    pub latency_min_ms: Option<f64>,
    pub latency_mean_ms: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p50_ci_low_ms: Option<f64>,
    pub latency_p50_ci_high_ms: Option<f64>,
    pub latency_p90_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_p999_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
    pub latency_std_ms: Option<f64>,
    pub samples: Option<usize>,
    pub throughput_ips: Option<f64>,
    pub latency_with_copy_p50_ms: Option<f64>,
    pub latency_with_copy_mean_ms: Option<f64>,
    pub rounds: Option<usize>,
    pub measured_for: Option<String>,
    pub speedup: Option<f64>,
    pub speedup_ci_low: Option<f64>,
    pub speedup_ci_high: Option<f64>,
    pub valid: Option<String>,
    pub load_other_cpu: Option<f64>,
    pub load_steal: Option<f64>,
    // memory
    pub argument_bytes: Option<i64>,
    pub output_bytes: Option<i64>,
    pub temp_bytes: Option<i64>,
    pub code_bytes: Option<i64>,
    pub compiler_peak_bytes: Option<i64>,
    pub program_min_bytes: Option<i64>,
    pub device_peak_bytes: Option<i64>,
    pub host_peak_rss_bytes: Option<u64>,
    // accuracy
    pub eval_images: Option<usize>,
    pub top1_before_ft: Option<f64>,
    pub top5_before_ft: Option<f64>,
    pub loss_before_ft: Option<f64>,
    pub top1_after_ft: Option<f64>,
    pub top5_after_ft: Option<f64>,
    pub loss_after_ft: Option<f64>,
    pub finetune_steps: Option<usize>,
    pub finetune_s: Option<f64>,
    // cost
    pub flops: Option<f64>,
    // provenance
    pub timestamp: String,
    pub prunebench_commit: String,
    pub plugin: Option<String>,
    pub pjrt_api: Option<String>,
    pub runtime_version: Option<String>,
    pub host_cpu: String,
    pub suite_sha256: String,
    // outcome
    pub status: Status,
    pub error: Option<String>,
}

/// Whether a row holds a measurement.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Ok,
    Error,
}

/// Columns that are filled in every `ok` row (the rest may be empty by design: device and
/// compiler peak bytes, load figures off Linux, accuracy, fine-tuning, flops, error).
pub const ALWAYS_FILLED_WHEN_OK: &[&str] = &[
    "suite", "variant", "method", "schedule", "ratio", "round_to", "control", "lowering", "lowering_plan", "runtime", "dtype",
    "batch", "device", "platform", "device_kind", "channels", "params", "macs", "compile_s", "program_reused",
    "latency_min_ms", "latency_mean_ms", "latency_p50_ms", "latency_p50_ci_low_ms", "latency_p50_ci_high_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms",
    "latency_p999_ms", "latency_max_ms", "latency_std_ms", "samples", "throughput_ips", "latency_with_copy_p50_ms",
    "latency_with_copy_mean_ms", "rounds", "measured_for", "speedup", "speedup_ci_low", "speedup_ci_high", "valid",
    "argument_bytes", "output_bytes", "temp_bytes", "code_bytes", "program_min_bytes", "host_peak_rss_bytes",
    "timestamp", "prunebench_commit", "plugin", "pjrt_api", "host_cpu", "suite_sha256", "status",
];

/// Of [`ALWAYS_FILLED_WHEN_OK`], the columns only XLA reports (PJRT's compiled memory
/// statistics): empty in the rows of the other runtimes.
pub const XLA_ONLY: &[&str] = &["argument_bytes", "output_bytes", "temp_bytes", "code_bytes", "program_min_bytes"];

/// Milliseconds from seconds, rounded to nanoseconds (keeps the CSV readable).
pub fn ms(seconds: f64) -> f64 {
    (seconds * 1e9).round() / 1e6
}

/// The column names, in order.
pub fn header() -> Vec<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.serialize(Record::default()).expect("a default record serialises");
    let bytes = w.into_inner().expect("in memory");
    let text = String::from_utf8(bytes).expect("utf-8");
    text.lines().next().unwrap_or_default().split(',').map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_holds_every_group() {
        let h = header();
        assert_eq!(h.first().map(String::as_str), Some("suite"));
        assert_eq!(h.last().map(String::as_str), Some("error"));
        for c in ALWAYS_FILLED_WHEN_OK {
            assert!(h.iter().any(|x| x == c), "{c} missing from {h:?}");
        }
        assert!(h.iter().any(|x| x == "top1_after_ft") && h.iter().any(|x| x == "device_peak_bytes"));
    }
}
