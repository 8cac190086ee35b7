//! Dependency groups: the channels that must be removed together.
//!
//! Every node's output carries a *channel axis*; axes are joined (union-find) where the graph
//! ties them, and a group is one joined axis with every tensor axis that indexes it:
//! - a conv's (or dense layer's) output channels start a new axis;
//! - BN, ReLU, ReLU6, max/avg pools and the global average pool pass their input's axis on;
//! - an `Add` merges its inputs' axes (a residual connection ties the block's output to its
//!   shortcut);
//! - a depthwise conv ties its output axis to its input axis (output channel `j` reads only
//!   input channel `j`);
//! - a flatten's features belong to its input's channel axis through the NHWC index map:
//!   feature `(y * W + x) * C + c` is channel `c`, so a dense layer reading it has
//!   `H * W` rows per channel.
//!
//! A group lists its [`Member`]s: producers (conv and dense output channels, depthwise
//! convs, the batch norms on the channels) and consumers (conv input channels, dense input
//! rows). Removing channel `j` of a group removes index `j` (or, for dense rows, every row
//! mapped to `j`) from every member's tensors at once, which keeps every shape consistent.
//!
//! Groups that reach the network input or output are not prunable (their width is fixed by
//! the data and the classes), nor are the axes of a grouped conv that is not depthwise (its
//! channel coupling is per group; no network here has one).
//!
//! Groups are numbered in graph order of the first node whose output carries them: group 0
//! is always the input's.

use std::fmt::{self, Write as _};

use super::build::{Graph, NodeId};
use super::op::Op;

/// One tensor axis (or set of rows) of one node that a group's channels index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Member {
    /// Output channels of a conv or dense layer: HWIO kernel axis 3 or `[in, out]` weight
    /// axis 1, and the bias.
    Out(NodeId),
    /// A depthwise conv, whose output channel `j` reads only input channel `j`: kernel axis 3
    /// (its axis 2 has size 1) and the bias when it has one.
    Depthwise(NodeId),
    /// A batch norm on the channels: gamma, beta, running mean and running variance.
    Norm(NodeId),
    /// Input channels of a conv: HWIO kernel axis 2.
    ConvIn(NodeId),
    /// Input rows of a dense layer that reads the channels flattened over `spatial` positions
    /// in NHWC order: channel `c` of `C` is rows `p * C + c` for `p < spatial` (`spatial` is 1
    /// after a global pool, `H * W` after a flatten).
    DenseIn { node: NodeId, spatial: usize },
}

impl Member {
    /// The node whose tensors the member indexes.
    pub fn node(&self) -> NodeId {
        match *self {
            Member::Out(n) | Member::Depthwise(n) | Member::Norm(n) | Member::ConvIn(n) => n,
            Member::DenseIn { node, .. } => node,
        }
    }

    /// Whether the member makes the channels (its weights decide each channel's value):
    /// conv and dense outputs, depthwise convs and batch norms.
    pub fn is_producer(&self) -> bool {
        matches!(self, Member::Out(_) | Member::Depthwise(_) | Member::Norm(_))
    }

    /// Short tag for tables: `out`, `dw`, `bn`, `in`, `rows`.
    pub fn tag(&self) -> &'static str {
        match self {
            Member::Out(_) => "out",
            Member::Depthwise(_) => "dw",
            Member::Norm(_) => "bn",
            Member::ConvIn(_) => "in",
            Member::DenseIn { .. } => "rows",
        }
    }
}

/// Channels that must be pruned together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Position in [`Groups::all`].
    pub id: usize,
    /// Number of channels (the `C` of every member's indexed axis; a dense member has
    /// `spatial` rows per channel).
    pub channels: usize,
    /// Why the group cannot be pruned (`network input`, `network output`, ...); `None` when
    /// it can.
    pub fixed: Option<String>,
    /// Producers and consumers, in graph order (a node's consumer member before its
    /// producer member).
    pub members: Vec<Member>,
    /// Every node whose output carries these channels, in graph order.
    pub nodes: Vec<NodeId>,
}

impl Group {
    pub fn prunable(&self) -> bool {
        self.fixed.is_none()
    }

    /// The group's name for messages and tables: its first producer's node name (or its
    /// first node's, e.g. `input`).
    pub fn name<'g>(&self, g: &'g Graph) -> &'g str {
        let n = self.members.iter().find(|m| m.is_producer()).map(|m| m.node()).unwrap_or(self.nodes[0]);
        &g.node(n).name
    }
}

/// The dependency groups of a graph, with the group of every node's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Groups {
    groups: Vec<Group>,
    /// Per node, the group of its output channels.
    of_node: Vec<usize>,
}

impl Groups {
    /// Every group, by id.
    pub fn all(&self) -> &[Group] {
        &self.groups
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The group of `node`'s output channels.
    pub fn of(&self, node: NodeId) -> &Group {
        &self.groups[self.of_node[node.0]]
    }

    /// The prunable groups, by id.
    pub fn prunable(&self) -> impl Iterator<Item = &Group> {
        self.groups.iter().filter(|g| g.prunable())
    }

    /// The selection that keeps every channel of every group.
    pub fn keep_all(&self) -> Vec<Vec<usize>> {
        self.groups.iter().map(|g| (0..g.channels).collect()).collect()
    }
}

/// Disjoint sets of channel axes (an axis is named by the node that starts it), with path
/// halving.
struct Sets(Vec<usize>);

impl Sets {
    fn find(&mut self, mut a: usize) -> usize {
        while self.0[a] != a {
            self.0[a] = self.0[self.0[a]];
            a = self.0[a];
        }
        a
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        // The older axis stays the root, so a group is named after its first node.
        self.0[ra.max(rb)] = ra.min(rb);
    }
}

/// The dependency groups of `g` (see the module docs for the rules).
pub fn groups(g: &Graph) -> Groups {
    let n = g.nodes().len();
    let mut sets = Sets((0..n).collect());
    // Per node: the axis its output carries, and the positions per channel (flatten: H * W).
    let mut axis = vec![0; n];
    let mut spatial = vec![1; n];
    let mut fixed: Vec<(usize, String)> = vec![(0, "network input".into())];
    let mut members: Vec<(usize, Member)> = Vec::new();
    for node in g.nodes() {
        let id = node.id.0;
        let input = node.inputs.first().map(|i| i.0);
        match &node.op {
            Op::Input => axis[id] = id,
            Op::Conv(c) => {
                let x = input.expect("a conv has an input");
                if c.is_depthwise() {
                    axis[id] = axis[x];
                    members.push((axis[x], Member::Depthwise(node.id)));
                } else {
                    axis[id] = id;
                    members.push((axis[x], Member::ConvIn(node.id)));
                    members.push((id, Member::Out(node.id)));
                    if c.groups > 1 {
                        let why = format!("grouped conv '{}' ({} groups, not depthwise)", node.name, c.groups);
                        fixed.push((axis[x], why.clone()));
                        fixed.push((id, why));
                    }
                }
            }
            Op::Dense { .. } => {
                let x = input.expect("a dense layer has an input");
                axis[id] = id;
                members.push((axis[x], Member::DenseIn { node: node.id, spatial: spatial[x] }));
                members.push((id, Member::Out(node.id)));
            }
            Op::Add => {
                let (a, b) = (node.inputs[0].0, node.inputs[1].0);
                sets.union(axis[a], axis[b]);
                axis[id] = axis[a];
                spatial[id] = spatial[a];
                if spatial[a] != spatial[b] {
                    fixed.push((axis[a], format!("'{}' adds features flattened over {} and {} positions", node.name, spatial[a], spatial[b])));
                }
            }
            Op::Flatten => {
                let x = input.expect("a flatten has an input");
                let d = &g.node(NodeId(x)).dims;
                axis[id] = axis[x];
                spatial[id] = d[0] * d[1];
            }
            Op::BatchNorm | Op::Relu | Op::Relu6 | Op::MaxPool(_) | Op::AvgPool(_) | Op::GlobalAvgPool => {
                let x = input.expect("a unary op has an input");
                axis[id] = axis[x];
                spatial[id] = spatial[x];
                if node.op == Op::BatchNorm {
                    members.push((axis[x], Member::Norm(node.id)));
                }
            }
        }
    }
    fixed.push((axis[n - 1], "network output".into()));

    // Number the groups in graph order of their first node.
    let mut id_of_root = vec![usize::MAX; n];
    let mut out: Vec<Group> = Vec::new();
    let mut of_node = vec![0; n];
    for node in g.nodes() {
        let r = sets.find(axis[node.id.0]);
        if id_of_root[r] == usize::MAX {
            id_of_root[r] = out.len();
            let channels = node.channels() / spatial[node.id.0];
            out.push(Group { id: out.len(), channels, fixed: None, members: vec![], nodes: vec![] });
        }
        of_node[node.id.0] = id_of_root[r];
        out[id_of_root[r]].nodes.push(node.id);
    }
    for (a, m) in members {
        out[id_of_root[sets.find(a)]].members.push(m);
    }
    for (a, why) in fixed {
        let grp = &mut out[id_of_root[sets.find(a)]];
        grp.fixed.get_or_insert(why);
    }
    Groups { groups: out, of_node }
}

struct Row<'a>(&'a Graph, &'a Group);

impl fmt::Display for Row<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Row(g, grp) = self;
        let members: Vec<String> = grp
            .members
            .iter()
            .map(|m| match m {
                Member::DenseIn { spatial, .. } if *spatial > 1 => format!("rows {} (x{spatial})", g.node(m.node()).name),
                _ => format!("{} {}", m.tag(), g.node(m.node()).name),
            })
            .collect();
        let prunable = match &grp.fixed {
            None => "yes".to_string(),
            Some(why) => format!("no ({why})"),
        };
        write!(f, "{:>5}  {:>8}  {:<24}  {}", grp.id, grp.channels, prunable, members.join(", "))
    }
}

/// A readable table of `g`'s groups, one line each: id, channels, whether prunable (or why
/// not) and the members by node name (`out` conv/dense outputs, `dw` depthwise convs, `bn`
/// batch norms, `in` conv inputs, `rows` dense input rows with their positions per channel).
pub fn describe(g: &Graph) -> String {
    let gs = groups(g);
    let mut s = format!("{:>5}  {:>8}  {:<24}  members\n", "group", "channels", "prunable");
    for grp in gs.all() {
        let _ = writeln!(s, "{}", Row(g, grp));
    }
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::graph::nets::vgg::{vgg16, CHANNELS};
    use crate::graph::{ConvSpec, GraphBuilder, Naming};

    fn node(g: &Graph, name: &str) -> NodeId {
        g.find(name).unwrap_or_else(|| panic!("no node {name}")).id
    }

    #[test]
    fn vgg16_has_one_group_per_conv_and_maps_the_flatten_rows() {
        // 64 x 64 input: five pools leave a 2 x 2 map, so each last-conv channel owns 4 rows.
        let g = vgg16([64, 64, 3], &CHANNELS, true, &[], 10).unwrap();
        let gs = groups(&g);
        assert_eq!(gs.len(), 15);
        assert_eq!(gs.prunable().count(), 13);
        let input = &gs.all()[0];
        assert_eq!((input.channels, input.fixed.as_deref()), (3, Some("network input")));
        assert_eq!(input.members, [Member::ConvIn(node(&g, "features.0"))]);
        for (i, &c) in CHANNELS.iter().enumerate() {
            let grp = &gs.all()[i + 1];
            let conv = node(&g, &format!("features.{i}"));
            assert!(grp.prunable());
            assert_eq!(grp.channels, c);
            assert_eq!(gs.of(conv).id, i + 1);
            let next = if i < 12 {
                Member::ConvIn(node(&g, &format!("features.{}", i + 1)))
            } else {
                Member::DenseIn { node: node(&g, "classifier.0"), spatial: 4 }
            };
            assert_eq!(grp.members, [Member::Out(conv), Member::Norm(node(&g, &format!("features.{i}.bn"))), next]);
        }
        let out = &gs.all()[14];
        assert_eq!((out.channels, out.fixed.as_deref()), (10, Some("network output")));
        assert_eq!(out.members, [Member::Out(node(&g, "classifier.0"))]);
    }

    #[test]
    fn a_hidden_dense_layer_is_its_own_prunable_group() {
        let g = vgg16([32, 32, 1], &[4; 13], false, &[6], 10).unwrap();
        let gs = groups(&g);
        let hidden = gs.of(node(&g, "classifier.0"));
        assert!(hidden.prunable());
        assert_eq!(hidden.channels, 6);
        let rows = Member::DenseIn { node: node(&g, "classifier.1"), spatial: 1 };
        assert_eq!(hidden.members, [Member::Out(node(&g, "classifier.0")), rows]);
        // The last conv's channels reach the dense layer through a 1 x 1 map: one row each.
        let last = gs.of(node(&g, "features.12"));
        assert_eq!(last.members[1], Member::DenseIn { node: node(&g, "classifier.0"), spatial: 1 });
    }

    /// conv-bn-relu stem (4 channels) and two basic blocks with identity shortcuts, a global
    /// pool and a classifier.
    pub(crate) fn residual() -> Graph {
        let mut b = GraphBuilder::new([6, 6, 2], Naming::Torchvision).unwrap();
        let x = b.input();
        let c = b.conv("conv1", x, ConvSpec::new(4, 3, 1, 1, false)).unwrap();
        let n = b.batch_norm("bn1", c).unwrap();
        let mut x = b.relu(n).unwrap();
        for blk in 0..2 {
            let p = format!("layer1.{blk}");
            let c1 = b.conv(&format!("{p}.conv1"), x, ConvSpec::new(3, 3, 1, 1, false)).unwrap();
            let n1 = b.batch_norm(&format!("{p}.bn1"), c1).unwrap();
            let r1 = b.relu(n1).unwrap();
            let c2 = b.conv(&format!("{p}.conv2"), r1, ConvSpec::new(4, 3, 1, 1, false)).unwrap();
            let n2 = b.batch_norm(&format!("{p}.bn2"), c2).unwrap();
            let s = b.add(n2, x).unwrap();
            x = b.relu(s).unwrap();
        }
        let p = b.global_avg_pool(x).unwrap();
        b.dense("fc", p, 5, true).unwrap();
        b.finish().unwrap()
    }

    #[test]
    fn residual_adds_tie_the_stem_to_every_block_output() {
        let g = residual();
        let gs = groups(&g);
        assert_eq!(gs.len(), 5, "input, stem, two block interiors, output");
        let stem = gs.of(node(&g, "conv1"));
        assert_eq!(stem.id, 1);
        assert!(stem.prunable());
        assert_eq!(stem.channels, 4);
        let n = |s: &str| node(&g, s);
        assert_eq!(
            stem.members,
            [
                Member::Out(n("conv1")),
                Member::Norm(n("bn1")),
                Member::ConvIn(n("layer1.0.conv1")),
                Member::Out(n("layer1.0.conv2")),
                Member::Norm(n("layer1.0.bn2")),
                Member::ConvIn(n("layer1.1.conv1")),
                Member::Out(n("layer1.1.conv2")),
                Member::Norm(n("layer1.1.bn2")),
                Member::DenseIn { node: n("fc"), spatial: 1 },
            ]
        );
        for blk in 0..2 {
            let inner = gs.of(n(&format!("layer1.{blk}.conv1")));
            assert!(inner.prunable());
            assert_eq!(inner.channels, 3);
            assert_eq!(
                inner.members,
                [
                    Member::Out(n(&format!("layer1.{blk}.conv1"))),
                    Member::Norm(n(&format!("layer1.{blk}.bn1"))),
                    Member::ConvIn(n(&format!("layer1.{blk}.conv2"))),
                ]
            );
        }
        // Both adds and the pool carry the stem's channels.
        let adds: Vec<NodeId> = g.nodes().iter().filter(|x| x.op == Op::Add).map(|x| x.id).collect();
        assert!(adds.iter().all(|&a| gs.of(a).id == stem.id));
        assert_eq!(gs.of(g.output().id).fixed.as_deref(), Some("network output"));
    }

    /// A stem conv-bn-relu6 (8 channels) and one inverted residual: 1x1 expand to 24,
    /// depthwise 3x3, 1x1 project back to 8, added to the stem.
    pub(crate) fn inverted() -> Graph {
        let mut b = GraphBuilder::new([6, 6, 3], Naming::Torchvision).unwrap();
        let x = b.input();
        let c = b.conv("stem", x, ConvSpec::new(8, 3, 1, 1, false)).unwrap();
        let n = b.batch_norm("stem.bn", c).unwrap();
        let s = b.relu6(n).unwrap();
        let e = b.conv("expand", s, ConvSpec::new(24, 1, 1, 0, false)).unwrap();
        let e = b.batch_norm("expand.bn", e).unwrap();
        let e = b.relu6(e).unwrap();
        let d = b.depthwise("dw", e, 3, 1, 1).unwrap();
        let d = b.batch_norm("dw.bn", d).unwrap();
        let d = b.relu6(d).unwrap();
        let p = b.conv("project", d, ConvSpec::new(8, 1, 1, 0, false)).unwrap();
        let p = b.batch_norm("project.bn", p).unwrap();
        let a = b.add(p, s).unwrap();
        let f = b.flatten(a).unwrap();
        b.dense("fc", f, 3, true).unwrap();
        b.finish().unwrap()
    }

    #[test]
    fn a_depthwise_conv_joins_its_expand_conv() {
        let g = inverted();
        let gs = groups(&g);
        let n = |s: &str| node(&g, s);
        assert_eq!(gs.len(), 4, "input, stem + project, expand + depthwise, output");
        let expand = gs.of(n("expand"));
        assert_eq!(gs.of(n("dw")).id, expand.id);
        assert_eq!(expand.channels, 24);
        assert_eq!(
            expand.members,
            [
                Member::Out(n("expand")),
                Member::Norm(n("expand.bn")),
                Member::Depthwise(n("dw")),
                Member::Norm(n("dw.bn")),
                Member::ConvIn(n("project")),
            ]
        );
        let stem = gs.of(n("stem"));
        assert_eq!(
            stem.members,
            [
                Member::Out(n("stem")),
                Member::Norm(n("stem.bn")),
                Member::ConvIn(n("expand")),
                Member::Out(n("project")),
                Member::Norm(n("project.bn")),
                Member::DenseIn { node: n("fc"), spatial: 36 },
            ]
        );
        assert!(stem.prunable() && expand.prunable());
    }

    #[test]
    fn groups_reaching_the_input_or_a_grouped_conv_are_fixed() {
        // A shortcut from the input ties the block's output to the input channels.
        let mut b = GraphBuilder::new([4, 4, 2], Naming::Torchvision).unwrap();
        let x = b.input();
        let c = b.conv("c", x, ConvSpec::new(2, 3, 1, 1, false)).unwrap();
        let s = b.add(c, x).unwrap();
        let gconv = b.conv("g", s, ConvSpec { groups: 2, ..ConvSpec::new(4, 1, 1, 0, false) }).unwrap();
        let p = b.global_avg_pool(gconv).unwrap();
        let h = b.dense("h", p, 3, false).unwrap();
        b.dense("fc", h, 2, false).unwrap();
        let g = b.finish().unwrap();
        let gs = groups(&g);
        assert_eq!(gs.of(node(&g, "c")).fixed.as_deref(), Some("network input"));
        assert_eq!(gs.of(node(&g, "g")).fixed.as_deref(), Some("grouped conv 'g' (2 groups, not depthwise)"));
        assert!(gs.of(node(&g, "h")).prunable());
        assert_eq!(gs.prunable().count(), 1);
    }

    #[test]
    fn describe_lists_every_group_by_name() {
        let g = inverted();
        let t = describe(&g);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5, "{t}");
        assert!(lines[0].starts_with("group  channels  prunable"), "{t}");
        assert!(lines[1].contains("no (network input)") && lines[1].ends_with("in stem"), "{t}");
        assert!(lines[2].contains(" 8  yes") && lines[2].ends_with("rows fc (x36)"), "{t}");
        assert!(lines[3].contains("24  yes") && lines[3].contains("dw dw, bn dw.bn, in project"), "{t}");
        assert!(lines[4].contains("no (network output)") && lines[4].ends_with("out fc"), "{t}");
        let gs = groups(&g);
        assert_eq!((gs.all()[0].name(&g), gs.all()[2].name(&g)), ("input", "expand"));
    }

    #[test]
    fn resnet20_stages_are_groups_tied_by_adds_and_projections() {
        use crate::graph::nets::resnet::ResNet;
        let r = ResNet::resnet20();
        let g = r.graph([32, 32, 1], &r.channels(0.5), 10).unwrap();
        let gs = groups(&g);
        let n = |s: &str| node(&g, s);
        assert_eq!(gs.len(), 14, "input, stem (stage 1), 9 block interiors, stages 2 and 3, output");
        assert_eq!(gs.prunable().count(), 12);
        let mut want = vec![Member::Out(n("conv1")), Member::Norm(n("bn1"))];
        for b in 0..3 {
            let p = format!("layer1.{b}");
            want.extend([Member::ConvIn(n(&format!("{p}.conv1"))), Member::Out(n(&format!("{p}.conv2"))), Member::Norm(n(&format!("{p}.bn2")))]);
        }
        want.extend([Member::ConvIn(n("layer2.0.conv1")), Member::ConvIn(n("layer2.0.downsample.0"))]);
        assert_eq!(gs.of(n("conv1")).members, want);
        for s in 2..=3 {
            let stage = gs.of(n(&format!("layer{s}.0.conv2")));
            assert_eq!(gs.of(n(&format!("layer{s}.0.downsample.0"))).id, stage.id);
            let mut producers = vec![
                Member::Out(n(&format!("layer{s}.0.conv2"))),
                Member::Norm(n(&format!("layer{s}.0.bn2"))),
                Member::Out(n(&format!("layer{s}.0.downsample.0"))),
                Member::Norm(n(&format!("layer{s}.0.downsample.1"))),
            ];
            for b in 1..3 {
                producers.extend([Member::Out(n(&format!("layer{s}.{b}.conv2"))), Member::Norm(n(&format!("layer{s}.{b}.bn2")))]);
            }
            let got: Vec<Member> = stage.members.iter().copied().filter(|m| m.is_producer()).collect();
            assert_eq!(got, producers, "stage {s}");
            let last = stage.members.last().copied().unwrap();
            let want_last = if s == 3 { Member::DenseIn { node: n("fc"), spatial: 1 } } else { Member::ConvIn(n("layer3.0.downsample.0")) };
            assert_eq!(last, want_last, "stage {s}");
        }
        for s in 1..=3 {
            for b in 0..3 {
                let p = format!("layer{s}.{b}");
                let inner = gs.of(n(&format!("{p}.conv1")));
                assert_eq!(inner.members, [Member::Out(n(&format!("{p}.conv1"))), Member::Norm(n(&format!("{p}.bn1"))), Member::ConvIn(n(&format!("{p}.conv2")))]);
            }
        }
        // Every add carries its stage's group (stage 1's is the stem's).
        for a in g.nodes().iter().filter(|x| x.op == Op::Add) {
            let stage = &g.node(a.inputs[0]).name[.."layer1".len()];
            let head = if stage == "layer1" { n("conv1") } else { n(&format!("{stage}.0.conv2")) };
            assert_eq!(gs.of(a.id).id, gs.of(head).id, "the add after {}", g.node(a.inputs[0]).name);
        }
    }

    #[test]
    fn mobilenetv2_ties_each_expansion_to_its_depthwise_conv_and_the_residual_blocks_together() {
        use crate::graph::nets::mobilenet::{channels, mobilenet_v2, Variant};
        let g = mobilenet_v2([32, 32, 3], &channels(0.25), 10, Variant::Cifar).unwrap();
        let gs = groups(&g);
        let n = |s: &str| node(&g, s);
        // Block 2 (t = 6): expansion, its BN, the depthwise conv and its BN, the projection's input.
        let e = gs.of(n("features.2.conv.0.0"));
        assert_eq!(
            e.members,
            [
                Member::Out(n("features.2.conv.0.0")),
                Member::Norm(n("features.2.conv.0.1")),
                Member::Depthwise(n("features.2.conv.1.0")),
                Member::Norm(n("features.2.conv.1.1")),
                Member::ConvIn(n("features.2.conv.2")),
            ]
        );
        // Block 1 (t = 1): the depthwise conv joins the stem.
        assert_eq!(gs.of(n("features.1.conv.0.0")).id, gs.of(n("features.0.0")).id);
        // Blocks 2 and 3 (24 channels, block 3 residual): one group of both projections.
        let p = gs.of(n("features.2.conv.2"));
        assert_eq!(gs.of(n("features.3.conv.2")).id, p.id);
        assert!(p.members.contains(&Member::ConvIn(n("features.3.conv.0.0"))) && p.members.contains(&Member::ConvIn(n("features.4.conv.0.0"))));
        assert!(p.prunable());
        // The last conv's group reaches the classifier through the pool.
        let last = gs.of(n("features.18.0"));
        assert_eq!(last.members.last(), Some(&Member::DenseIn { node: n("classifier.1"), spatial: 1 }));
        assert_eq!(gs.of(g.output().id).fixed.as_deref(), Some("network output"));
    }
}
