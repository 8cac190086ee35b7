//! Networks: their architecture ([`Arch`], which builds the graph), a network with its weights
//! ([`Network`]), counts, checkpoints, imports, the forward emitter and the inference program.

pub mod arch;
pub mod checkpoint;
pub mod counts;
pub mod emit;
pub mod import;
pub mod network;
pub mod program;

pub use arch::{Arch, Form};
pub use checkpoint::Checkpoint;
pub use network::Network;
