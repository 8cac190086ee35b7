//! The architectures, each a function from its sizes (input, per-conv output channels,
//! classes) to a checked [`Graph`](super::Graph). A pruned network is the same function with
//! other channel counts.

pub mod vgg;
