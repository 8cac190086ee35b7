//! A network of any form with its weights: the architecture, its graph and one tensor per
//! entry of the graph's parameter table (f32, host memory). Every command, checkpoint,
//! import, program and pruning goes through this type.

use ndarray::ArrayD;

use super::arch::Arch;
use crate::error::Result;
use crate::graph::{init, Graph};

/// An architecture, its graph, and its tensors in the order of `graph.params()`.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    pub arch: Arch,
    pub graph: Graph,
    pub tensors: Vec<ArrayD<f32>>,
}

impl Network {
    /// `arch` with `tensors`.
    ///
    /// Errors: a tensor count or shape that differs from the graph's table, naming the tensor
    /// and the shape it needs ([`Graph::check_tensors`]).
    pub fn new(arch: Arch, tensors: Vec<ArrayD<f32>>) -> Result<Network> {
        let graph = arch.graph()?;
        graph.check_tensors(&tensors, &arch.describe())?;
        Ok(Network { arch, graph, tensors })
    }

    /// Seeded initial weights ([`init::init`]: He-normal convs over their fan-in, zero
    /// biases, identity batch norms, dense std `sqrt(2 / in)`, the classifier `sqrt(1 / in)`).
    ///
    /// Panics: `arch` does not build its graph (an [`Arch`] made by its constructors always
    /// does).
    pub fn init(arch: &Arch, seed: u64) -> Network {
        let graph = arch.graph().expect("a validated Arch builds its graph");
        let tensors = init::init(&graph, seed);
        Network { arch: arch.clone(), graph, tensors }
    }

    /// Gives every bias and batch norm non-trivial values (seeded), so that tests catch a
    /// wrong BN: [`init::randomize_bn`]. Not used on real networks.
    pub fn randomize_bn(&mut self, seed: u64) {
        init::randomize_bn(&self.graph, &mut self.tensors, seed);
    }

    /// The tensor called `name` (e.g. `layer1.0.conv1.weight`).
    pub fn tensor(&self, name: &str) -> Option<&ArrayD<f32>> {
        self.graph.param_named(name).map(|i| &self.tensors[i])
    }

    /// The tensor called `name`, mutable.
    pub fn tensor_mut(&mut self, name: &str) -> Option<&mut ArrayD<f32>> {
        self.graph.param_named(name).map(|i| &mut self.tensors[i])
    }

    /// The inference argument list, BN folded ([`init::fold`]).
    pub fn folded(&self) -> Result<Vec<ArrayD<f32>>> {
        init::fold(&self.graph, &self.tensors)
    }

    /// One line: form, channels, head, input.
    pub fn describe(&self) -> String {
        self.arch.describe()
    }
}
