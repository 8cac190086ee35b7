//! prunebench: structured pruning of VGG-16, compiled with XLA through PJRT and measured.
//!
//! Layers, bottom up: [`pjrt`] (plugin loading and the C API), [`hlo`] (a typed StableHLO
//! emitter), [`graph`] (networks as graphs), [`lower`] (how each conv becomes HLO), [`model`]
//! (architectures, weights, checkpoints, the forward emitter and its programs), [`runtime`]
//! (a compiled model with its weights on a device), [`tune`] (the autotuner, which times
//! lowerings on a device), and the CLI on top.

pub mod bench;
pub mod budget;
pub mod cli;
pub mod data;
pub mod engine;
pub mod error;
pub mod export;
pub mod graph;
pub mod hlo;
pub mod lower;
pub mod model;
pub mod pjrt;
pub mod rank;
pub mod prune;
pub mod report;
pub mod runtime;
pub mod suite;
pub mod train;
pub mod tune;
pub mod util;

pub use error::{Error, Result};
