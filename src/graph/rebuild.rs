//! The same network with other widths: replays a graph's ops through the [`GraphBuilder`]
//! (so every shape is checked again) with new output counts for some convs and dense layers.
//! A pruned network is its source graph rebuilt this way.

use std::collections::BTreeMap;

use super::build::{Graph, GraphBuilder, NodeId};
use super::op::{ConvSpec, Op};
use crate::error::{Error, Result};

impl Graph {
    /// This graph with `out[node]` output channels for each listed conv or dense node; the
    /// other nodes keep their ops, and a depthwise conv follows its input (`groups == out ==`
    /// the new input channels). Node names, and so tensor names, are unchanged.
    ///
    /// Errors: a listed node that is not a conv or dense layer, or is a depthwise conv (its
    /// width is its input's); a count of 0; widths the builder refuses (e.g. an `Add` of two
    /// inputs given different widths), named by node.
    pub fn with_channels(&self, out: &BTreeMap<NodeId, usize>) -> Result<Graph> {
        for (&id, &c) in out {
            let node = self.nodes().get(id.0).ok_or_else(|| Error::invalid("node", id.0, format!("the graph has {} nodes", self.nodes().len())))?;
            let ok = matches!(&node.op, Op::Conv(s) if !s.is_depthwise()) || matches!(node.op, Op::Dense { .. });
            if !ok {
                return Err(Error::invalid(
                    "node to resize",
                    &node.name,
                    "only convs (not depthwise: those follow their input) and dense layers have their own width",
                ));
            }
            if c == 0 {
                return Err(Error::invalid(format!("width of '{}'", node.name), 0, "keep at least one channel"));
            }
        }
        let mut b = GraphBuilder::new(self.input_dims(), self.naming())?;
        for node in &self.nodes()[1..] {
            let x = node.inputs[0];
            let width = out.get(&node.id).copied();
            let id = match &node.op {
                Op::Input => unreachable!("only node 0 is the input"),
                Op::Conv(s) if s.is_depthwise() => {
                    let c = b.dims(x).last().copied().unwrap_or(0);
                    b.conv(&node.name, x, ConvSpec { out: c, groups: c, ..*s })?
                }
                Op::Conv(s) => b.conv(&node.name, x, ConvSpec { out: width.unwrap_or(s.out), ..*s })?,
                Op::Dense { out, bias } => b.dense(&node.name, x, width.unwrap_or(*out), *bias)?,
                Op::BatchNorm => b.batch_norm(&node.name, x)?,
                Op::Relu => b.relu(x)?,
                Op::Relu6 => b.relu6(x)?,
                Op::MaxPool(p) => b.max_pool(x, *p)?,
                Op::AvgPool(p) => b.avg_pool(x, *p)?,
                Op::GlobalAvgPool => b.global_avg_pool(x)?,
                Op::Add => b.add(x, node.inputs[1])?,
                Op::Flatten => b.flatten(x)?,
            };
            debug_assert_eq!(id, node.id, "a replay adds the nodes in the same order");
        }
        b.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::nets::vgg::vgg16;
    use crate::graph::{GraphBuilder, Naming};

    #[test]
    fn replays_with_new_widths() {
        let g = vgg16([32, 32, 1], &[4; 13], true, &[6], 10).unwrap();
        assert_eq!(g.with_channels(&BTreeMap::new()).unwrap(), g);
        let mut w = [4; 13];
        w[3] = 2;
        let want = vgg16([32, 32, 1], &w, true, &[5], 10).unwrap();
        let out = BTreeMap::from([(g.find("features.3").unwrap().id, 2), (g.find("classifier.0").unwrap().id, 5)]);
        assert_eq!(g.with_channels(&out).unwrap(), want);
    }

    #[test]
    fn depthwise_convs_follow_and_bad_widths_are_named() {
        let mut b = GraphBuilder::new([5, 5, 3], Naming::Torchvision).unwrap();
        let x = b.input();
        let e = b.conv("e", x, ConvSpec::new(6, 1, 1, 0, false)).unwrap();
        let d = b.depthwise("dw", e, 3, 1, 1).unwrap();
        let p = b.conv("p", d, ConvSpec::new(6, 1, 1, 0, false)).unwrap();
        let s = b.add(p, e).unwrap();
        let f = b.flatten(s).unwrap();
        b.dense("fc", f, 2, true).unwrap();
        let g = b.finish().unwrap();
        let id = |n: &str| g.find(n).unwrap().id;
        let h = g.with_channels(&BTreeMap::from([(id("e"), 4), (id("p"), 4)])).unwrap();
        assert_eq!(h.find("dw").unwrap().conv().unwrap().groups, 4);
        assert_eq!(h.params()[h.param_named("dw.weight").unwrap()].dims, [3, 3, 1, 4]);
        assert_eq!(h.params()[h.param_named("fc.weight").unwrap()].dims, [100, 2]);
        let e = g.with_channels(&BTreeMap::from([(id("e"), 4)])).unwrap_err().to_string();
        assert!(e.contains("'p' [5, 5, 6]") && e.contains("[5, 5, 4]"), "{e}");
        let e = g.with_channels(&BTreeMap::from([(id("dw"), 4)])).unwrap_err().to_string();
        assert!(e.contains("'dw'") && e.contains("follow their input"), "{e}");
        let e = g.with_channels(&BTreeMap::from([(id("e"), 0)])).unwrap_err().to_string();
        assert!(e.contains("width of 'e'") && e.contains("at least one"), "{e}");
    }
}
