//! A network of any form with its weights: the architecture, its graph and one tensor per
//! entry of the graph's parameter table (f32, host memory). Every form's checkpoints,
//! imports and programs go through this type; [`Vgg`] is VGG-16's structured view of the
//! same tensors.

use ndarray::ArrayD;

use super::arch::Arch;
use super::weights::Vgg;
use crate::error::{Error, Result};
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
    /// and the shape it needs.
    pub fn new(arch: Arch, tensors: Vec<ArrayD<f32>>) -> Result<Network> {
        let graph = arch.graph()?;
        let want = graph.params();
        if tensors.len() != want.len() {
            return Err(Error::invalid(
                "tensor list",
                format!("{} tensors", tensors.len()),
                format!("{} has {} tensors", arch.describe(), want.len()),
            ));
        }
        if let Some((p, t)) = want.iter().zip(&tensors).find(|(p, t)| t.shape() != p.dims.as_slice()) {
            return Err(Error::invalid(
                format!("tensor '{}'", p.name),
                format!("{:?}", t.shape()),
                format!("{} needs {:?}", arch.describe(), p.dims),
            ));
        }
        Ok(Network { arch, graph, tensors })
    }

    /// Seeded initial weights ([`init::init`]).
    pub fn init(arch: &Arch, seed: u64) -> Result<Network> {
        let graph = arch.graph()?;
        let tensors = init::init(&graph, seed);
        Ok(Network { arch: arch.clone(), graph, tensors })
    }

    /// The tensor called `name` (e.g. `layer1.0.conv1.weight`).
    pub fn tensor(&self, name: &str) -> Option<&ArrayD<f32>> {
        self.graph.param_named(name).map(|i| &self.tensors[i])
    }

    /// The inference argument list, BN folded ([`init::fold`]).
    pub fn folded(&self) -> Result<Vec<ArrayD<f32>>> {
        init::fold(&self.graph, &self.tensors)
    }

    /// The same tensors as VGG-16's structured view.
    pub fn from_vgg(v: &Vgg) -> Result<Network> {
        Network::new(v.arch.clone(), v.to_tensors())
    }

    /// VGG-16's structured view of these tensors.
    ///
    /// Errors: `what` (a command or step) is VGG-only and this network is another form.
    pub fn to_vgg(&self, what: &str) -> Result<Vgg> {
        self.arch.form.require_vgg(what)?;
        Vgg::from_tensors(&self.arch, self.tensors.clone())
    }
}
