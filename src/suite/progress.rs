//! Progress of a suite run: an indicatif bar on a terminal (variant i/n, the current step,
//! ETA), one line per row otherwise, or nothing.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::record::{Record, Status};
use crate::tune;
use crate::lower::LayerShape;

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Display {
    /// A progress bar on stderr, and a line per finished row above it.
    Bar,
    /// A line per finished row on stderr (logs, CI).
    Lines,
    /// As `Lines`, and a line `step VARIANT: STEP` each time a step starts (prune, fine-tune
    /// i/n, tune, compile, measure, eval): a log that shows where a run was when it stopped.
    Steps,
    Quiet,
}

impl Display {
    /// A bar when stderr is a terminal, lines otherwise.
    pub fn auto() -> Display {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() { Display::Bar } else { Display::Lines }
    }
}

pub struct Progress {
    display: Display,
    bar: ProgressBar,
    total: usize,
}

impl Progress {
    pub fn new(total: usize, display: Display) -> Progress {
        let bar = match display {
            Display::Bar => {
                let b = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
                b.set_style(
                    ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:25}] {pos}/{len} ETA {eta} {wide_msg}")
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                b.enable_steady_tick(Duration::from_millis(200));
                b
            }
            _ => ProgressBar::hidden(),
        };
        Progress { display, bar, total }
    }

    /// The variant being worked on and its current step (prune, fine-tune, tune, compile,
    /// measure, eval).
    pub fn step(&self, variant: &str, step: &str) {
        match self.display {
            Display::Bar => self.bar.set_message(format!("{variant}: {step}")),
            Display::Steps => eprintln!("step {variant}: {step}"),
            Display::Lines | Display::Quiet => {}
        }
    }

    /// A message that is not a row (training progress, notes).
    pub fn note(&self, text: &str) {
        match self.display {
            Display::Bar => self.bar.println(text),
            Display::Lines | Display::Steps => eprintln!("{text}"),
            Display::Quiet => {}
        }
    }

    /// A row was written.
    pub fn row(&self, r: &Record) {
        let i = self.bar.position() + 1;
        let line = match r.status {
            Status::Ok => {
                let acc = match (r.top1_after_ft, r.top1_before_ft) {
                    (Some(a), Some(b)) => format!("  top-1 {:.1}% -> {:.1}%", 100.0 * b, 100.0 * a),
                    (None, Some(b)) => format!("  top-1 {:.1}%", 100.0 * b),
                    _ => String::new(),
                };
                format!(
                    "[{i}/{}] {}  p50 {:.3} ms  {:.1} img/s{acc}",
                    self.total,
                    r.variant,
                    r.latency_p50_ms.unwrap_or(f64::NAN),
                    r.throughput_ips.unwrap_or(f64::NAN)
                )
            }
            Status::Error => format!("[{i}/{}] {}  ERROR: {}", self.total, r.variant, r.error.as_deref().unwrap_or("")),
        };
        self.note(&line);
        self.bar.inc(1);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Tuner progress shown as the bar's step.
pub struct TuneProgress<'a> {
    pub progress: &'a Progress,
    pub variant: &'a str,
}

impl tune::Progress for TuneProgress<'_> {
    fn layer(&mut self, index: usize, total: usize, shape: &LayerShape) {
        self.progress.step(self.variant, &format!("tune {}/{total} {shape}", index + 1));
    }
    fn result(&mut self, _: &LayerShape, _: &[(crate::lower::Lowering, f64)], _: crate::lower::Lowering) {}
}
