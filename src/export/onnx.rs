//! A network as a standard ONNX model: opset [`OPSET`], NCHW activations (what ONNX runtimes
//! expect), OIHW conv kernels, a dynamic batch axis named `batch`, f32 weights as
//! initializers. The protobuf is encoded by `prost` ([`super::onnx_proto`]).
//!
//! Graph input `input` `[batch, C, H, W]`, output `logits` `[batch, classes]`. Per op:
//! conv -> `Conv` (kernel HWIO `[kh, kw, in/g, out]` transposed to `[out, in/g, kh, kw]`,
//! `group`, symmetric `pads`); batch norm -> folded into the conv before it
//! ([`Bn::Fold`], the default, the same arithmetic as the XLA program's weights) or
//! `BatchNormalization` (eps 1e-5, [`Bn::Keep`]); ReLU -> `Relu`; ReLU6 -> `Clip(0, 6)`;
//! pools -> `MaxPool` / `AveragePool` (floor mode); global average pool -> `GlobalAveragePool`
//! + `Flatten`; add -> `Add`; flatten -> `Flatten` (NCHW order), with the rows of the dense
//! layer that reads it permuted from prunebench's NHWC order `(y, x, c)` to `(c, y, x)` so
//! the function is unchanged; dense -> `Gemm` (`W [in, out]`, no transpose).

use std::collections::HashMap;

use ndarray::{ArrayD, Axis, IxDyn};
use prost::Message;

use super::onnx_proto::*;
use crate::error::{Error, Result};
use crate::graph::{init, Graph, NodeId, Op, Role, BN_EPS};
use crate::model::Network;

/// The ONNX operator set the graph is written against (the `ai.onnx` domain).
pub const OPSET: i64 = 17;
/// The IR version that opset 17 comes with (ONNX 1.12).
pub const IR_VERSION: i64 = 8;
/// The graph input's name.
pub const INPUT: &str = "input";
/// The graph output's name.
pub const OUTPUT: &str = "logits";

/// What happens to batch norms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Bn {
    /// Folded into the conv before it (`k * s`, `b * s + beta - mean * s`, `s = gamma /
    /// sqrt(var + eps)`): the weights prunebench's own programs run.
    #[default]
    Fold,
    /// Kept as `BatchNormalization` nodes with the running statistics (for tools that fold
    /// or fine-tune themselves).
    Keep,
}

impl std::str::FromStr for Bn {
    type Err = Error;
    fn from_str(s: &str) -> Result<Bn> {
        match s {
            "fold" => Ok(Bn::Fold),
            "keep" => Ok(Bn::Keep),
            other => Err(Error::invalid("--bn", other, "use fold (BN folded into the convs) or keep")),
        }
    }
}

/// Encodes `net` as ONNX model bytes (see the module docs).
///
/// Errors: with [`Bn::Fold`], a batch norm that does not follow a conv read by nothing else.
pub fn to_bytes(net: &Network, bn: Bn) -> Result<Vec<u8>> {
    Ok(to_model(net, bn)?.encode_to_vec())
}

/// The ONNX model of `net` (see the module docs).
pub fn to_model(net: &Network, bn: Bn) -> Result<ModelProto> {
    let g = &net.graph;
    let folded = match bn {
        Bn::Fold => Some(init::fold(g, &net.tensors)?),
        Bn::Keep => None,
    };
    let param = |id: NodeId, role: Role| g.param_index(id, role).map(|i| &net.tensors[i]);
    let mut w = Writer { nodes: Vec::new(), inits: Vec::new(), names: HashMap::new() };
    // Per conv / dense node in graph order, its (weight, bias) in the folded list.
    let mut folded_pairs = folded.as_ref().map(|f| f.chunks(2));
    for node in g.nodes() {
        let xs: Vec<String> = node.inputs.iter().map(|i| w.names[i].clone()).collect();
        let x = |i: usize| xs[i].clone();
        let out = match &node.op {
            Op::Input => INPUT.to_string(),
            Op::Conv(spec) => {
                let (kernel, bias) = match folded_pairs.as_mut() {
                    Some(pairs) => {
                        let p = pairs.next().expect("one folded pair per conv and dense");
                        (p[0].clone(), Some(p[1].clone()))
                    }
                    None => (param(node.id, Role::Kernel).expect("conv kernel").clone(), param(node.id, Role::Bias).cloned()),
                };
                // HWIO -> OIHW.
                let oihw = kernel.permuted_axes(IxDyn(&[3, 2, 0, 1]));
                let mut inputs = vec![x(0), w.init(&format!("{}.weight", node.name), &oihw)];
                if let Some(b) = bias {
                    inputs.push(w.init(&format!("{}.bias", node.name), &b));
                }
                let p = spec.pad as i64;
                let attrs = vec![
                    ints("kernel_shape", &[spec.kh as i64, spec.kw as i64]),
                    ints("strides", &[spec.stride as i64; 2]),
                    ints("pads", &[p, p, p, p]),
                    ints("dilations", &[1, 1]),
                    int("group", spec.groups as i64),
                ];
                w.node("Conv", &node.name, inputs, attrs)
            }
            Op::BatchNorm => {
                if folded.is_some() {
                    // Folded into the conv it reads: the same value.
                    x(0)
                } else {
                    let mut inputs = vec![x(0)];
                    for (role, suffix) in [
                        (Role::Gamma, "scale"),
                        (Role::Beta, "bias"),
                        (Role::RunningMean, "mean"),
                        (Role::RunningVar, "var"),
                    ] {
                        let t = param(node.id, role).expect("BN tensor").clone();
                        inputs.push(w.init(&format!("{}.{suffix}", node.name), &t));
                    }
                    w.node("BatchNormalization", &node.name, inputs, vec![float("epsilon", BN_EPS as f32)])
                }
            }
            Op::Relu => w.node("Relu", &node.name, vec![x(0)], vec![]),
            Op::Relu6 => {
                let lo = w.init(&format!("{}.min", node.name), &ArrayD::from_elem(IxDyn(&[]), 0.0));
                let hi = w.init(&format!("{}.max", node.name), &ArrayD::from_elem(IxDyn(&[]), 6.0));
                w.node("Clip", &node.name, vec![x(0), lo, hi], vec![])
            }
            Op::MaxPool(p) | Op::AvgPool(p) => {
                let kind = if matches!(node.op, Op::MaxPool(_)) { "MaxPool" } else { "AveragePool" };
                let q = p.pad as i64;
                let attrs = vec![
                    ints("kernel_shape", &[p.k as i64; 2]),
                    ints("strides", &[p.stride as i64; 2]),
                    ints("pads", &[q, q, q, q]),
                ];
                w.node(kind, &node.name, vec![x(0)], attrs)
            }
            Op::GlobalAvgPool => {
                let pooled = w.node("GlobalAveragePool", &format!("{}.pool", node.name), vec![x(0)], vec![]);
                w.node("Flatten", &node.name, vec![pooled], vec![int("axis", 1)])
            }
            Op::Add => w.node("Add", &node.name, vec![x(0), x(1)], vec![]),
            Op::Flatten => w.node("Flatten", &node.name, vec![x(0)], vec![int("axis", 1)]),
            Op::Dense { .. } => {
                let (weight, bias) = match folded_pairs.as_mut() {
                    Some(pairs) => {
                        let p = pairs.next().expect("one folded pair per conv and dense");
                        (p[0].clone(), Some(p[1].clone()))
                    }
                    None => (param(node.id, Role::Weight).expect("dense weight").clone(), param(node.id, Role::Bias).cloned()),
                };
                let weight = nchw_rows(g, node.inputs[0], weight)?;
                let mut inputs = vec![x(0), w.init(&format!("{}.weight", node.name), &weight)];
                if let Some(b) = bias {
                    inputs.push(w.init(&format!("{}.bias", node.name), &b));
                }
                w.node("Gemm", &node.name, inputs, vec![])
            }
        };
        w.names.insert(node.id, out);
    }
    // The last node writes the graph output: rename its value.
    let last = g.output().id;
    let last_name = w.names[&last].clone();
    for n in &mut w.nodes {
        for o in n.output.iter_mut().chain(n.input.iter_mut()) {
            if *o == last_name {
                *o = OUTPUT.to_string();
            }
        }
    }
    let [h, wd, c] = g.input_dims();
    let graph = GraphProto {
        node: w.nodes,
        name: net.arch.form.to_string(),
        initializer: w.inits,
        doc_string: net.describe(),
        input: vec![value_info(INPUT, &[None, Some(c), Some(h), Some(wd)])],
        output: vec![value_info(OUTPUT, &[None, Some(g.classes())])],
    };
    Ok(ModelProto {
        ir_version: IR_VERSION,
        producer_name: "prunebench".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        domain: String::new(),
        model_version: 1,
        doc_string: format!("{} (BN {})", net.describe(), if folded.is_some() { "folded" } else { "kept" }),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET }],
        metadata_props: vec![
            StringStringEntryProto { key: "prunebench.form".into(), value: net.arch.form.to_string() },
            StringStringEntryProto {
                key: "prunebench.channels".into(),
                value: net.arch.channels.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(" "),
            },
        ],
    })
}

/// A dense weight `[in, out]` whose input is `src`: when `src` flattens an `[h, w, c]` map
/// with `h * w > 1`, its rows reordered from NHWC `(y, x, ch)` to ONNX's NCHW flatten order
/// `(ch, y, x)`; otherwise unchanged.
fn nchw_rows(g: &Graph, src: NodeId, weight: ArrayD<f32>) -> Result<ArrayD<f32>> {
    let s = g.node(src);
    if s.op != Op::Flatten {
        return Ok(weight);
    }
    let dims = &g.node(s.inputs[0]).dims;
    let (h, w, c) = (dims[0], dims[1], dims[2]);
    if h * w == 1 {
        return Ok(weight);
    }
    if weight.shape()[0] != h * w * c {
        return Err(Error::shape("onnx export", format!("'{}' has {} rows, not {h}x{w}x{c}", s.name, weight.shape()[0])));
    }
    // ONNX row r = ch * (h w) + p reads prunebench row p * c + ch.
    let rows: Vec<usize> = (0..h * w * c).map(|r| (r % (h * w)) * c + r / (h * w)).collect();
    Ok(weight.select(Axis(0), &rows))
}

struct Writer {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    /// The ONNX value each graph node's output is.
    names: HashMap<NodeId, String>,
}

impl Writer {
    /// Adds an f32 initializer; returns its name.
    fn init(&mut self, name: &str, t: &ArrayD<f32>) -> String {
        let raw: Vec<u8> = t.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.inits.push(TensorProto {
            dims: t.shape().iter().map(|&d| d as i64).collect(),
            data_type: data_type::FLOAT,
            name: name.to_string(),
            raw_data: raw,
        });
        name.to_string()
    }

    /// Adds a node writing one value named after it; returns the value's name.
    fn node(&mut self, op: &str, name: &str, input: Vec<String>, attribute: Vec<AttributeProto>) -> String {
        self.nodes.push(NodeProto {
            input,
            output: vec![name.to_string()],
            name: name.to_string(),
            op_type: op.to_string(),
            attribute,
            domain: String::new(),
        });
        name.to_string()
    }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), ints: v.to_vec(), r#type: attribute_type::INTS, ..Default::default() }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: name.into(), i: v, r#type: attribute_type::INT, ..Default::default() }
}

fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto { name: name.into(), f: v, r#type: attribute_type::FLOAT, ..Default::default() }
}

/// A float tensor value of `dims`, `None` for the dynamic batch axis.
fn value_info(name: &str, dims: &[Option<usize>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(n) => DimensionValue::DimValue(*n as i64),
                None => DimensionValue::DimParam("batch".into()),
            }),
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto { elem_type: data_type::FLOAT, shape: Some(TensorShapeProto { dim }) }),
        }),
    }
}
