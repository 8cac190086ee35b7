//! VGG-16 as data ([`Arch`]), its weights ([`Vgg`]), counts, checkpoints, the inference
//! program, and a plain Rust reference forward pass.

pub mod arch;
pub mod checkpoint;
pub mod counts;
pub mod emit;
pub mod import;
pub mod network;
pub mod program;
pub mod reference;
pub mod weights;

pub use arch::{Arch, Form};
pub use checkpoint::{Checkpoint, NetCheckpoint};
pub use network::Network;
pub use weights::{BatchNorm, Conv, Dense, Vgg};
