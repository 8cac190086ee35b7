//! Measurement: interleaved timing rounds, their statistics and intervals, the machine's load
//! during them, and whether a measurement is valid.
//!
//! - [`rounds`]: programs timed side by side in shuffled rounds until their p50s are tight.
//! - [`stats`]: percentiles and summaries; [`ci`]: intervals of a median and of a speed-up.
//! - [`load`]: other processes' and the hypervisor's share of the CPU during a measurement.
//! - [`validity`]: the rules a row is judged by (`valid` column).
//! - [`latency`]: a set of compiled models measured together; [`accuracy`]: top-1/top-5.

pub mod accuracy;
pub mod ci;
pub mod latency;
pub mod load;
pub mod rounds;
pub mod stats;
pub mod validity;

pub use rounds::Sampling;
pub use stats::Summary;
