//! Ranking pruned candidates without fine-tuning them: transferability measures score a
//! checkpoint from one forward pass over labelled data, and [`metrics`] scores how well each
//! measure's ranking predicted the truth (accuracy after fine-tuning).
//!
//! - [`measure`]: the [`Measure`] trait and the [`Probe`] it reads (penultimate features and
//!   logits of one candidate on the probe set).
//! - [`measures`]: every measure, one file each, registered in one list (`nleep`, `leep`,
//!   `logme`, `linear-probe`, `knn`, and the `accuracy` / `accuracy-recal` baselines).
//! - [`features`]: the program that returns logits and penultimate features.
//! - [`recal`]: BN recalibration (PyTorch train-mode semantics, cumulative average).
//! - [`linalg`], [`gmm`]: the small numerics (symmetric eigen via nalgebra, PCA, diagonal GMM by EM).
//! - [`metrics`]: Kendall tau-b, weighted tau, Pearson, recall@k, rel@k.
//! - [`study`]: candidates, scoring loop, truth file, ranking quality.
//!
//! The numerics are written here rather than taken from the linfa crates: linfa-clustering's
//! mixture is full-covariance only (ill-conditioned at 5 components per class on a few
//! thousand points) and the family would add a second `rand` major version; what NLEEP,
//! LogME and the probes need is a few hundred lines, each tested on known answers.

pub mod features;
pub mod gmm;
pub mod linalg;
pub mod measure;
pub mod measures;
pub mod metrics;
pub mod recal;
pub mod study;

pub use measure::{Measure, Probe, View};
pub use measures::{find, measures, parse_list};
pub use metrics::Quality;
pub use study::{Candidate, RankConfig, ScoreRow, Truth};
