//! A network as a graph: ops as data ([`Op`]), nodes with shapes checked when the graph is
//! built ([`GraphBuilder`]), one parameter table ([`Param`]), exact counts ([`counts`]) and
//! the architectures ([`nets`]).
//!
//! This is the one definition of a network. The forward emitter, the backward rules, the
//! f64 reference interpreter, the statistics programs, checkpoints, import and pruning all
//! walk the same graph and its parameter table.

pub mod build;
pub mod counts;
pub mod init;
pub mod nets;
pub mod op;
pub mod params;
pub mod reference;

pub use build::{Graph, GraphBuilder, Node, NodeId};
pub use op::{ConvSpec, Op, PoolSpec, Role, BN_EPS};
pub use params::{Naming, Param};
