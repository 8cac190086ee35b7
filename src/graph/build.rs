//! A network graph and the builder that checks it: every node's shape is inferred when it is
//! added, and a bad graph is refused with the node and the shapes named.

use serde::{Deserialize, Serialize};

use super::op::{ConvSpec, Op, PoolSpec, Role};
use super::params::{Naming, Param};
use crate::error::{Error, Result};

/// Index of a node in its graph (nodes are stored in topological order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub usize);

/// One node: its op, its inputs and the shape of its output for one image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub id: NodeId,
    /// Unique name. Parameter-owning nodes carry their module path (`layer1.0.conv1`,
    /// `features.3`), which prefixes their tensors' names; the others get `{kind}{id}`.
    pub name: String,
    pub op: Op,
    pub inputs: Vec<NodeId>,
    /// Output shape per image: `[h, w, c]` for feature maps, `[f]` for flat features.
    pub dims: Vec<usize>,
}

impl Node {
    /// Channels of the output (last axis).
    pub fn channels(&self) -> usize {
        *self.dims.last().expect("every node has a shape")
    }

    /// The conv spec, when the node is a conv.
    pub fn conv(&self) -> Option<&ConvSpec> {
        match &self.op {
            Op::Conv(c) => Some(c),
            _ => None,
        }
    }
}

/// A checked network: nodes in topological order (node 0 the input, the output last), every
/// node but the output used, and the parameter table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Graph {
    nodes: Vec<Node>,
    params: Vec<Param>,
    naming: Naming,
    /// Per node, the nodes that read it, in graph order.
    consumers: Vec<Vec<NodeId>>,
}

impl Graph {
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    /// The input node (always node 0).
    pub fn input(&self) -> &Node {
        &self.nodes[0]
    }

    /// The output node (always the last; its shape is `[classes]` for a classifier).
    pub fn output(&self) -> &Node {
        self.nodes.last().expect("a graph has an input")
    }

    /// Every tensor, in the one order (see [`super::params`]).
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The naming the tensor names follow.
    pub fn naming(&self) -> Naming {
        self.naming
    }

    /// Position in [`Graph::params`] of `node`'s tensor of `role`.
    pub fn param_index(&self, node: NodeId, role: Role) -> Option<usize> {
        self.params.iter().position(|p| p.node == node && p.role == role)
    }

    /// Position in [`Graph::params`] of the tensor called `name`.
    pub fn param_named(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }

    /// The nodes that read `id`'s output, in graph order.
    pub fn consumers(&self, id: NodeId) -> &[NodeId] {
        &self.consumers[id.0]
    }

    /// The conv nodes in graph order, with their specs.
    pub fn convs(&self) -> impl Iterator<Item = (&Node, &ConvSpec)> {
        self.nodes.iter().filter_map(|n| n.conv().map(|c| (n, c)))
    }

    /// The node called `name`.
    pub fn find(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Input shape `[h, w, c]`.
    pub fn input_dims(&self) -> [usize; 3] {
        let d = &self.input().dims;
        [d[0], d[1], d[2]]
    }

    /// Number of classes (the output's width).
    pub fn classes(&self) -> usize {
        self.output().channels()
    }

    /// Checks that `tensors` follow the parameter table: one per entry, each of its shape.
    /// `what` names the network in the errors (e.g. its [`describe`](crate::model::Arch::describe)).
    ///
    /// Errors: another count (`tensor list`, with the count the table needs in parentheses),
    /// or the first tensor of another shape (named, with the shape it needs).
    pub fn check_tensors<T>(&self, tensors: &[ndarray::ArrayD<T>], what: &str) -> Result<()> {
        let n = self.params.len();
        if tensors.len() != n {
            return Err(Error::invalid("tensor list", format!("{} tensors", tensors.len()), format!("{what} has one per parameter ({n})")));
        }
        if let Some((p, t)) = self.params.iter().zip(tensors).find(|(p, t)| t.shape() != p.dims.as_slice()) {
            return Err(Error::invalid(format!("tensor '{}'", p.name), format!("{:?}", t.shape()), format!("{what} needs {:?}", p.dims)));
        }
        Ok(())
    }
}

/// Builds a [`Graph`] node by node; each method checks its input shapes and returns the new
/// node's id. Parameter-owning nodes take a module path that names their tensors.
#[derive(Debug)]
pub struct GraphBuilder {
    nodes: Vec<Node>,
    naming: Naming,
}

fn map_dims(op: &str, name: &str, dims: &[usize]) -> Result<[usize; 3]> {
    match *dims {
        [h, w, c] => Ok([h, w, c]),
        _ => Err(Error::shape(op, format!("'{name}' reads {dims:?}, not a feature map [h, w, c]"))),
    }
}

impl GraphBuilder {
    /// A builder whose node 0 is an input of `[h, w, c]`.
    pub fn new(input: [usize; 3], naming: Naming) -> Result<Self> {
        if input.contains(&0) {
            return Err(Error::invalid("input shape", format!("{input:?}"), "height, width and channels must be at least 1"));
        }
        let node = Node { id: NodeId(0), name: "input".into(), op: Op::Input, inputs: vec![], dims: input.to_vec() };
        Ok(GraphBuilder { nodes: vec![node], naming })
    }

    /// The input node.
    pub fn input(&self) -> NodeId {
        NodeId(0)
    }

    /// Output shape of `id`.
    pub fn dims(&self, id: NodeId) -> &[usize] {
        &self.nodes[id.0].dims
    }

    fn get(&self, id: NodeId) -> Result<&Node> {
        self.nodes.get(id.0).ok_or_else(|| Error::shape("graph", format!("no node {}", id.0)))
    }

    fn push(&mut self, name: Option<&str>, op: Op, inputs: Vec<NodeId>, dims: Vec<usize>) -> Result<NodeId> {
        let id = NodeId(self.nodes.len());
        let name = match name {
            Some(n) => n.to_string(),
            None => format!("{}{}", op.kind(), id.0),
        };
        if self.nodes.iter().any(|n| n.name == name) {
            return Err(Error::shape("graph", format!("two nodes are called '{name}'")));
        }
        if let Some(z) = dims.iter().position(|&d| d == 0) {
            return Err(Error::shape(op.kind(), format!("'{name}' would have an empty axis {z}: {dims:?}")));
        }
        self.nodes.push(Node { id, name, op, inputs, dims });
        Ok(id)
    }

    /// A convolution named `name` of `x`.
    pub fn conv(&mut self, name: &str, x: NodeId, spec: ConvSpec) -> Result<NodeId> {
        let [h, w, c] = map_dims("conv", name, &self.get(x)?.dims)?;
        if spec.out == 0 || spec.kh == 0 || spec.kw == 0 || spec.stride == 0 || spec.groups == 0 {
            return Err(Error::shape("conv", format!("'{name}': {spec} has a zero size")));
        }
        if c % spec.groups != 0 || spec.out % spec.groups != 0 {
            return Err(Error::shape(
                "conv",
                format!("'{name}': {} groups do not divide {c} input and {} output channels", spec.groups, spec.out),
            ));
        }
        let (Some(oh), Some(ow)) = (spec.out_side(h, spec.kh), spec.out_side(w, spec.kw)) else {
            return Err(Error::shape("conv", format!("'{name}': a {}x{} window does not fit a {h}x{w} map", spec.kh, spec.kw)));
        };
        self.push(Some(name), Op::Conv(spec), vec![x], vec![oh, ow, spec.out])
    }

    /// A depthwise `k x k` conv (one filter per channel, no bias) named `name` of `x`.
    pub fn depthwise(&mut self, name: &str, x: NodeId, k: usize, stride: usize, pad: usize) -> Result<NodeId> {
        let c = self.get(x)?.dims.last().copied().unwrap_or(0);
        self.conv(name, x, ConvSpec { out: c, kh: k, kw: k, stride, pad, groups: c, bias: false })
    }

    /// Batch norm named `name` of the feature map `x`.
    pub fn batch_norm(&mut self, name: &str, x: NodeId) -> Result<NodeId> {
        let d = map_dims("batch_norm", name, &self.get(x)?.dims)?;
        self.push(Some(name), Op::BatchNorm, vec![x], d.to_vec())
    }

    fn unary(&mut self, op: Op, x: NodeId) -> Result<NodeId> {
        let d = self.get(x)?.dims.clone();
        self.push(None, op, vec![x], d)
    }

    pub fn relu(&mut self, x: NodeId) -> Result<NodeId> {
        self.unary(Op::Relu, x)
    }

    pub fn relu6(&mut self, x: NodeId) -> Result<NodeId> {
        self.unary(Op::Relu6, x)
    }

    fn pool(&mut self, op: Op, p: PoolSpec, x: NodeId) -> Result<NodeId> {
        let kind = op.kind();
        let [h, w, c] = map_dims(kind, kind, &self.get(x)?.dims)?;
        if p.k == 0 || p.stride == 0 || 2 * p.pad > p.k {
            return Err(Error::shape(kind, format!("window {} stride {} pad {} (pad must be at most half the window)", p.k, p.stride, p.pad)));
        }
        let (Some(oh), Some(ow)) = (p.out_side(h), p.out_side(w)) else {
            return Err(Error::shape(kind, format!("a {}x{} window does not fit a {h}x{w} map", p.k, p.k)));
        };
        self.push(None, op, vec![x], vec![oh, ow, c])
    }

    pub fn max_pool(&mut self, x: NodeId, p: PoolSpec) -> Result<NodeId> {
        self.pool(Op::MaxPool(p), p, x)
    }

    /// Average pool without padding.
    pub fn avg_pool(&mut self, x: NodeId, p: PoolSpec) -> Result<NodeId> {
        if p.pad != 0 {
            return Err(Error::shape("avgpool", "average pools here do not pad; give pad 0"));
        }
        self.pool(Op::AvgPool(p), p, x)
    }

    /// Mean over the spatial axes: `[h, w, c] -> [c]`.
    pub fn global_avg_pool(&mut self, x: NodeId) -> Result<NodeId> {
        let [_, _, c] = map_dims("gap", "gap", &self.get(x)?.dims)?;
        self.push(None, Op::GlobalAvgPool, vec![x], vec![c])
    }

    /// `a + b`, of equal shapes.
    pub fn add(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        let (da, db) = (self.get(a)?.dims.clone(), self.get(b)?.dims.clone());
        if da != db {
            let (na, nb) = (&self.nodes[a.0].name, &self.nodes[b.0].name);
            return Err(Error::shape("add", format!("'{na}' {da:?} and '{nb}' {db:?} differ")));
        }
        self.push(None, Op::Add, vec![a, b], da)
    }

    /// `[h, w, c] -> [h * w * c]` in NHWC order.
    pub fn flatten(&mut self, x: NodeId) -> Result<NodeId> {
        let [h, w, c] = map_dims("flatten", "flatten", &self.get(x)?.dims)?;
        self.push(None, Op::Flatten, vec![x], vec![h * w * c])
    }

    /// A dense layer named `name` of the flat features `x`.
    pub fn dense(&mut self, name: &str, x: NodeId, out: usize, bias: bool) -> Result<NodeId> {
        let d = &self.get(x)?.dims;
        if d.len() != 1 {
            return Err(Error::shape("dense", format!("'{name}' reads {d:?}; flatten or pool to [f] first")));
        }
        self.push(Some(name), Op::Dense { out, bias }, vec![x], vec![out])
    }

    /// Checks that the last node is the output, that every other node is read by some node
    /// and that tensor names are unique; derives the parameter table.
    pub fn finish(self) -> Result<Graph> {
        let n = self.nodes.len();
        let mut consumers = vec![Vec::new(); n];
        for node in &self.nodes {
            for &i in &node.inputs {
                consumers[i.0].push(node.id);
            }
        }
        if let Some(dead) = (0..n.saturating_sub(1)).find(|&i| consumers[i].is_empty()) {
            return Err(Error::shape("graph", format!("node '{}' is computed but never used", self.nodes[dead].name)));
        }
        let mut params = Vec::new();
        for node in &self.nodes {
            for &role in node.op.roles() {
                let dims = param_dims(&self.nodes, node, role);
                let name = format!("{}.{}", node.name, self.naming.suffix(role));
                params.push(Param { node: node.id, role, name, dims });
            }
        }
        let mut names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::shape("graph", format!("two tensors are called '{}'", w[0])));
        }
        Ok(Graph { nodes: self.nodes, params, naming: self.naming, consumers })
    }
}

fn param_dims(nodes: &[Node], node: &Node, role: Role) -> Vec<usize> {
    let input = |k: usize| &nodes[node.inputs[k].0].dims;
    match (&node.op, role) {
        (Op::Conv(c), Role::Kernel) => vec![c.kh, c.kw, input(0)[2] / c.groups, c.out],
        (Op::Dense { out, .. }, Role::Weight) => vec![input(0)[0], *out],
        _ => vec![node.channels()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> Graph {
        let mut b = GraphBuilder::new([8, 8, 3], Naming::Torchvision).unwrap();
        let x = b.input();
        let c = b.conv("conv1", x, ConvSpec::new(4, 3, 1, 1, false)).unwrap();
        let n = b.batch_norm("bn1", c).unwrap();
        let r = b.relu(n).unwrap();
        let c2 = b.conv("conv2", r, ConvSpec::new(4, 3, 1, 1, false)).unwrap();
        let s = b.add(c2, r).unwrap();
        let p = b.global_avg_pool(s).unwrap();
        b.dense("fc", p, 10, true).unwrap();
        b.finish().unwrap()
    }

    #[test]
    fn shapes_and_table_follow_the_ops() {
        let g = block();
        let names: Vec<&str> = g.params().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "conv2.weight", "fc.weight", "fc.bias"]
        );
        assert_eq!(g.params()[0].dims, [3, 3, 3, 4]);
        assert_eq!(g.params()[6].dims, [4, 10]);
        assert_eq!(g.output().dims, [10]);
        let relu = g.nodes().iter().find(|n| n.op == Op::Relu).unwrap();
        assert_eq!(g.consumers(relu.id).len(), 2, "the ReLU feeds conv2 and the add");
    }

    #[test]
    fn strided_and_grouped_shapes() {
        let mut b = GraphBuilder::new([7, 9, 8], Naming::Torchvision).unwrap();
        let x = b.input();
        let c = b.conv("c", x, ConvSpec::new(16, 3, 2, 1, false)).unwrap();
        assert_eq!(b.dims(c), [4, 5, 16]);
        let d = b.depthwise("dw", c, 3, 2, 1).unwrap();
        assert_eq!(b.dims(d), [2, 3, 16]);
        let m = b.max_pool(d, PoolSpec::new(3, 2, 1)).unwrap();
        assert_eq!(b.dims(m), [1, 2, 16]);
        let f = b.flatten(m).unwrap();
        b.dense("fc", f, 3, false).unwrap();
        let g = b.finish().unwrap();
        assert_eq!(g.params()[1].dims, [3, 3, 1, 16], "depthwise kernel reads one channel per group");
    }

    #[test]
    fn bad_graphs_are_refused_by_name() {
        let mut b = GraphBuilder::new([8, 8, 3], Naming::Torchvision).unwrap();
        let x = b.input();
        let c = b.conv("a", x, ConvSpec::new(4, 3, 2, 1, false)).unwrap();
        let e = b.add(c, x).unwrap_err().to_string();
        assert!(e.contains("'a' [4, 4, 4]") && e.contains("'input' [8, 8, 3]"), "{e}");
        let e = b.conv("g", x, ConvSpec { groups: 2, ..ConvSpec::new(4, 1, 1, 0, false) }).unwrap_err().to_string();
        assert!(e.contains("2 groups do not divide 3"), "{e}");
        assert!(b.conv("a", x, ConvSpec::new(4, 3, 1, 1, false)).unwrap_err().to_string().contains("two nodes"));
        let e = b.conv("big", x, ConvSpec::new(4, 11, 1, 0, false)).unwrap_err().to_string();
        assert!(e.contains("11x11 window does not fit a 8x8"), "{e}");
        let f = b.flatten(x).unwrap();
        b.dense("fc", f, 2, true).unwrap();
        let e = b.finish().unwrap_err().to_string();
        assert!(e.contains("'a' is computed but never used"), "{e}");
    }
}
