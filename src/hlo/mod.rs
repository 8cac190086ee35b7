//! A typed StableHLO emitter that prints MLIR text.
//!
//! [`Builder`] hands out [`Value`]s that know their [`Shape`]; every op checks its operands
//! when it is added, so a shape mistake is reported with the op and the shapes instead of
//! surfacing later as a parse error inside the PJRT plugin. The module is printed once, at
//! [`Builder::finish`]. Ops are printed in MLIR's generic form (`"stablehlo.add"(...)`),
//! which is the most stable spelling across StableHLO versions.

mod builder;
mod shape;

pub use builder::{Builder, Compare, ConvDims, ReduceOp, Value};
pub use shape::{DType, Shape};
