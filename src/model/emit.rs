//! The one forward emitter: any [`Graph`] as StableHLO, in one of three [`Mode`]s, with every
//! node's value kept ([`Forward`]) so that statistics programs, the penultimate features and
//! the backward pass read what they need from the same walk.
//!
//! Modes, and the argument list each takes after the input `[B, H, W, C]` (all in the
//! program's dtype, layouts as in [`crate::graph::op`]):
//! - [`Mode::Inference`]: BN folded into the conv before it on the host
//!   ([`crate::graph::init::fold`]). Arguments ([`folded_dims`]): per conv node in graph order its kernel `[kh, kw, in / groups, out]`
//!   (BN folded in when the conv's only consumer is a BN) and a bias `[out]` (zeros when the
//!   conv has neither bias nor BN); per dense node its weight `[in, out]` and bias `[out]`
//!   (zeros when it has none). A BN node emits nothing: its value is its conv's.
//! - [`Mode::Running`]: every tensor of the parameter table in its order, BN with its running
//!   statistics (`(x - mean) / sqrt(var + eps) * gamma + beta`): the inference function
//!   without folding, where a conv's value is the BN input.
//! - [`Mode::Train`]: the trainable tensors of the table in order ([`Param::is_trainable`]),
//!   BN with batch statistics (biased variance, as training normalises), each BN's
//!   [`BnCache`] kept for its backward rule and the running-statistics update.
//!
//! Ops: convolution with any kernel size, stride, padding and groups (depthwise included),
//! each conv lowered as the plan says ([`Lowering::conv`]); max-pool with -inf padding;
//! average pool; global average pool; add; ReLU; ReLU6; flatten in NHWC order; dense.
//!
//! [`Param::is_trainable`]: crate::graph::Param::is_trainable

use crate::error::{Error, Result};
pub use crate::graph::init::folded_dims;
use crate::graph::{Graph, NodeId, Op, PoolSpec, BN_EPS};
use crate::hlo::{Builder, DType, ReduceOp, Shape, Value};
use crate::lower::{nhwc, LayerShape, Lowering};

/// What the forward pass computes and which tensors it takes (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// BN folded into the convs on the host; arguments [`folded_dims`].
    Inference,
    /// BN with running statistics, unfolded; arguments the whole parameter table.
    Running,
    /// BN with batch statistics; arguments the trainable tensors of the table.
    Train,
}

/// The forward values of one walk.
#[derive(Clone, Debug)]
pub struct Forward {
    /// Per node (indexed by [`NodeId`]), its output with the batch axis first: `[B, h, w, c]`
    /// or `[B, f]`, in the program's dtype. In [`Mode::Inference`] a folded conv and its BN
    /// share one value (the BN's output).
    pub values: Vec<Value>,
    /// Per node, the batch-norm forward cache: `Some` for BN nodes in [`Mode::Train`].
    pub bn: Vec<Option<BnCache>>,
}

impl Forward {
    /// The value of node `id`.
    pub fn value(&self, id: NodeId) -> &Value {
        &self.values[id.0]
    }

    /// The output node's value (the logits of a classifier).
    pub fn output(&self) -> &Value {
        self.values.last().expect("a graph has nodes")
    }
}

/// What batch norm's backward rule needs from its forward pass, plus the batch statistics
/// (for the running-stat update).
#[derive(Clone, Debug)]
pub struct BnCache {
    /// Normalised input `(x - mean) * rstd`, NHWC.
    pub xhat: Value,
    /// `1 / sqrt(var + eps)` per channel.
    pub rstd: Value,
    /// Batch mean per channel.
    pub mean: Value,
    /// Biased batch variance per channel (divides by `N*H*W`).
    pub var: Value,
}

/// Batch norm with batch statistics over N, H, W of an NHWC `x`:
/// `y = gamma * (x - mean) / sqrt(var + eps) + beta`, biased variance.
pub fn batch_norm_train(b: &mut Builder, x: &Value, gamma: &Value, beta: &Value, eps: f64) -> Result<(Value, BnCache)> {
    let [n, h, w, _] = nhwc("batch_norm_train", x)?;
    let m = (n * h * w) as f64;
    let inv_m = b.constant(1.0 / m, gamma.shape().clone());
    let s = b.reduce(x, &[0, 1, 2], ReduceOp::Sum)?;
    let mean = b.mul(&s, &inv_m)?;
    let mean_b = b.broadcast_along(&mean, x.shape(), 3)?;
    let xc = b.sub(x, &mean_b)?;
    let sq = b.mul(&xc, &xc)?;
    let ss = b.reduce(&sq, &[0, 1, 2], ReduceOp::Sum)?;
    let var = b.mul(&ss, &inv_m)?;
    let e = b.constant(eps, var.shape().clone());
    let ve = b.add(&var, &e)?;
    let rstd = b.rsqrt(&ve)?;
    let rstd_b = b.broadcast_along(&rstd, x.shape(), 3)?;
    let xhat = b.mul(&xc, &rstd_b)?;
    let y = scale_shift(b, &xhat, gamma, beta)?;
    Ok((y, BnCache { xhat, rstd, mean, var }))
}

/// `x * gamma + beta` per channel (the last axis).
fn scale_shift(b: &mut Builder, x: &Value, gamma: &Value, beta: &Value) -> Result<Value> {
    let axis = x.shape().rank() - 1;
    let g = b.broadcast_along(gamma, x.shape(), axis)?;
    let be = b.broadcast_along(beta, x.shape(), axis)?;
    let y = b.mul(x, &g)?;
    b.add(&y, &be)
}

/// Batch norm with running statistics: `(x - mean) / sqrt(var + eps) * gamma + beta`.
fn batch_norm_running(b: &mut Builder, x: &Value, p: [&Value; 4]) -> Result<Value> {
    let [gamma, beta, mean, var] = p;
    let e = b.constant(BN_EPS, var.shape().clone());
    let ve = b.add(var, &e)?;
    let rstd = b.rsqrt(&ve)?;
    let scale = b.mul(gamma, &rstd)?;
    let ms = b.mul(mean, &scale)?;
    let shift = b.sub(beta, &ms)?;
    scale_shift(b, x, &scale, &shift)
}

/// The dims of the arguments after the input in `mode`, in order.
pub fn arg_dims(g: &Graph, mode: Mode) -> Vec<Vec<usize>> {
    match mode {
        Mode::Inference => folded_dims(g),
        Mode::Running => g.params().iter().map(|p| p.dims.clone()).collect(),
        Mode::Train => g.params().iter().filter(|p| p.is_trainable()).map(|p| p.dims.clone()).collect(),
    }
}

/// The conv layers of `g` as the tuner keys them, in graph order, at `batch` in `dtype`.
pub fn layer_shapes(g: &Graph, batch: usize, dtype: DType) -> Vec<LayerShape> {
    g.convs()
        .map(|(n, c)| {
            let d = &g.node(n.inputs[0]).dims;
            LayerShape::of(batch, d[0], d[1], d[2], c, dtype)
        })
        .collect()
}

fn dims_i64(d: &[usize]) -> Vec<i64> {
    d.iter().map(|&x| x as i64).collect()
}

/// Declares the input `[batch, h, w, c]` and the arguments of `mode` (see [`arg_dims`]) in
/// `dtype`; returns the input and the arguments.
pub fn declare(b: &mut Builder, g: &Graph, batch: usize, dtype: DType, mode: Mode) -> Result<(Value, Vec<Value>)> {
    if batch == 0 {
        return Err(Error::invalid("batch", 0, "use a batch size of at least 1"));
    }
    let mut xd = vec![batch];
    xd.extend(g.input_dims());
    let x = b.arg(Shape::new(dims_i64(&xd), dtype));
    let args = arg_dims(g, mode).iter().map(|d| b.arg(Shape::new(dims_i64(d), dtype))).collect();
    Ok((x, args))
}

/// Emits the forward pass of `g` on `x` (`[B, h, w, c]`) with the arguments `args` of `mode`
/// ([`arg_dims`], e.g. from [`declare`]), lowering conv `i` (graph order) as `plan[i]`.
///
/// Errors: a plan without one lowering per conv, a lowering that does not support its conv
/// ([`Lowering::supports`]), arguments of other count or dims than `mode` takes, an input of
/// another shape than the graph's, or (in [`Mode::Inference`]) a BN that cannot be folded.
pub fn forward(b: &mut Builder, g: &Graph, x: &Value, args: &[Value], mode: Mode, plan: &[Lowering]) -> Result<Forward> {
    let convs = g.convs().count();
    if plan.len() != convs {
        return Err(Error::invalid("lowering plan", format!("{} entries", plan.len()), format!("give one lowering per conv ({convs})")));
    }
    if mode == Mode::Inference {
        crate::graph::init::check_foldable(g)?;
    }
    let want = arg_dims(g, mode);
    let got: Vec<Vec<usize>> = args.iter().map(|a| a.dims().iter().map(|&d| d as usize).collect()).collect();
    if got != want {
        return Err(Error::invalid(
            "forward arguments",
            format!("{} tensors {got:?}", got.len()),
            format!("{mode:?} mode takes {} tensors {want:?}", want.len()),
        ));
    }
    if x.dims().len() != 4 || x.dims()[1..] != dims_i64(&g.input_dims())[..] {
        return Err(Error::shape("forward", format!("input {} for a graph on {:?}", x.shape(), g.input_dims())));
    }
    let mut args = args.iter();
    let mut next = || args.next().expect("counted above");
    let mut values: Vec<Value> = Vec::with_capacity(g.nodes().len());
    let mut bn = vec![None; g.nodes().len()];
    let mut plan = plan.iter();
    for node in g.nodes() {
        let input = |k: usize| &values[node.inputs[k].0];
        let y = match &node.op {
            Op::Input => x.clone(),
            Op::Conv(spec) => {
                let lowering = *plan.next().expect("counted above");
                let k = next();
                let y = lowering.conv(b, input(0), k, spec).map_err(|e| in_node(e, &node.name))?;
                if mode == Mode::Inference || spec.bias {
                    let bias = next();
                    let bb = b.broadcast_along(bias, y.shape(), 3)?;
                    b.add(&y, &bb)?
                } else {
                    y
                }
            }
            Op::BatchNorm => match mode {
                Mode::Inference => input(0).clone(),
                Mode::Running => {
                    let p = [next(), next(), next(), next()];
                    batch_norm_running(b, input(0), p)?
                }
                Mode::Train => {
                    let (gamma, beta) = (next(), next());
                    let (y, cache) = batch_norm_train(b, input(0), gamma, beta, BN_EPS)?;
                    bn[node.id.0] = Some(cache);
                    y
                }
            },
            Op::Relu => b.relu(input(0))?,
            Op::Relu6 => {
                let r = b.relu(input(0))?;
                let six = b.constant(6.0, r.shape().clone());
                b.min(&r, &six)?
            }
            Op::MaxPool(p) => pool(b, input(0), p, ReduceOp::Max)?,
            Op::AvgPool(p) => {
                let s = pool(b, input(0), p, ReduceOp::Sum)?;
                let inv = b.constant(1.0 / (p.k * p.k) as f64, s.shape().clone());
                b.mul(&s, &inv)?
            }
            Op::GlobalAvgPool => {
                let [_, h, w, _] = nhwc("gap", input(0))?;
                let s = b.reduce(input(0), &[1, 2], ReduceOp::Sum)?;
                let inv = b.constant(1.0 / (h * w) as f64, s.shape().clone());
                b.mul(&s, &inv)?
            }
            Op::Add => b.add(input(0), input(1))?,
            Op::Flatten => {
                let [n, h, w, c] = nhwc("flatten", input(0))?;
                b.reshape(input(0), &[n, h * w * c])?
            }
            Op::Dense { bias, .. } => {
                let wt = next();
                let y = b.matmul(input(0), wt)?;
                if mode == Mode::Inference || *bias {
                    let bv = next();
                    let bb = b.broadcast_along(bv, y.shape(), 1)?;
                    b.add(&y, &bb)?
                } else {
                    y
                }
            }
        };
        values.push(y);
    }
    Ok(Forward { values, bn })
}

fn in_node(e: Error, node: &str) -> Error {
    Error::shape("forward", format!("conv '{node}': {e}"))
}

/// A `k x k` / `stride` pool with symmetric padding `pad` (padded positions hold the
/// reduction's identity: -inf for max, 0 for sum) over the spatial axes of NHWC `x`.
fn pool(b: &mut Builder, x: &Value, p: &PoolSpec, op: ReduceOp) -> Result<Value> {
    let (k, s, q) = (p.k as i64, p.stride as i64, p.pad as i64);
    b.reduce_window_padded(x, &[1, k, k, 1], &[1, s, s, 1], &[[0, 0], [q, q], [q, q], [0, 0]], op)
}

/// A printed program and the shapes of its arguments and outputs.
#[derive(Clone, Debug)]
pub struct Program {
    pub text: String,
    /// Every argument, the input first.
    pub args: Vec<Shape>,
    /// The first output (the logits of an inference program).
    pub output: Shape,
    /// Every output, in order (the first is [`output`](Self::output)).
    pub outputs: Vec<Shape>,
}

/// The inference program of `g` for batches of `batch` in `dtype`, conv `i` lowered as
/// `plan[i]`: arguments the input then [`folded_dims`] in `dtype`; one output, the logits
/// `[batch, classes]` in f32. Errors as [`forward`].
pub fn inference(g: &Graph, batch: usize, dtype: DType, plan: &[Lowering]) -> Result<Program> {
    inference_with(g, batch, dtype, plan, &[])
}

/// The node whose value feeds the last dense layer: the penultimate features.
///
/// Errors: a graph whose output is not a dense layer.
pub fn penultimate(g: &Graph) -> Result<NodeId> {
    match g.output().op {
        Op::Dense { .. } => Ok(g.output().inputs[0]),
        ref op => Err(Error::invalid("graph output", op.kind(), "the penultimate features are the input of a last dense layer")),
    }
}

/// Like [`inference`], with a second output: the penultimate features `[batch, d]` (f32),
/// the input of the last dense layer ([`penultimate`]).
pub fn inference_with_features(g: &Graph, batch: usize, dtype: DType, plan: &[Lowering]) -> Result<Program> {
    inference_with(g, batch, dtype, plan, &[penultimate(g)?])
}

/// Like [`inference`], with one more output per node of `hooks`, in order: that node's value
/// (batch first, f32). Errors as [`forward`], or a hook that is not a node of `g`.
pub fn inference_with(g: &Graph, batch: usize, dtype: DType, plan: &[Lowering], hooks: &[NodeId]) -> Result<Program> {
    program(g, batch, dtype, Mode::Inference, plan, hooks)
}

/// A program of `g` in `mode`: arguments the input then [`arg_dims`] in `dtype`; outputs the
/// graph's output, then each node of `hooks`, all converted to f32.
pub fn program(g: &Graph, batch: usize, dtype: DType, mode: Mode, plan: &[Lowering], hooks: &[NodeId]) -> Result<Program> {
    if let Some(h) = hooks.iter().find(|h| h.0 >= g.nodes().len()) {
        return Err(Error::invalid("output node", h.0, format!("the graph has {} nodes", g.nodes().len())));
    }
    let mut b = Builder::new();
    let (x, args) = declare(&mut b, g, batch, dtype, mode)?;
    let f = forward(&mut b, g, &x, &args, mode, plan)?;
    let outs: Vec<Value> = std::iter::once(f.output())
        .chain(hooks.iter().map(|&h| f.value(h)))
        .map(|v| b.convert(v, DType::F32))
        .collect();
    let mut arg_shapes = vec![x.shape().clone()];
    arg_shapes.extend(args.iter().map(|a| a.shape().clone()));
    let outputs: Vec<Shape> = outs.iter().map(|v| v.shape().clone()).collect();
    let text = b.finish(&outs.iter().collect::<Vec<_>>());
    Ok(Program { text, args: arg_shapes, output: outputs[0].clone(), outputs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{ConvSpec, GraphBuilder, Naming};

    fn residual() -> Graph {
        let mut b = GraphBuilder::new([8, 8, 3], Naming::Torchvision).unwrap();
        let x = b.input();
        let c = b.conv("conv1", x, ConvSpec::new(4, 3, 2, 1, false)).unwrap();
        let n = b.batch_norm("bn1", c).unwrap();
        let r = b.relu(n).unwrap();
        let d = b.depthwise("dw", r, 3, 1, 1).unwrap();
        let s = b.add(d, r).unwrap();
        let p = b.global_avg_pool(s).unwrap();
        b.dense("fc", p, 5, false).unwrap();
        b.finish().unwrap()
    }

    #[test]
    fn argument_lists_follow_the_mode() {
        let g = residual();
        assert_eq!(folded_dims(&g), vec![vec![3, 3, 3, 4], vec![4], vec![3, 3, 1, 4], vec![4], vec![4, 5], vec![5]]);
        assert_eq!(arg_dims(&g, Mode::Running).len(), g.params().len());
        assert_eq!(arg_dims(&g, Mode::Train), vec![vec![3, 3, 3, 4], vec![4], vec![4], vec![3, 3, 1, 4], vec![4, 5]]);
        let shapes = layer_shapes(&g, 2, DType::F32);
        assert_eq!(shapes[0].to_string(), "b2 8x8 3->4 3x3/2 p1 f32");
        assert_eq!(shapes[1].to_string(), "b2 4x4 4->4 3x3/1 p1 g4 f32");
    }

    #[test]
    fn programs_check_their_plan_and_arguments() {
        let g = residual();
        let e = inference(&g, 1, DType::F32, &[Lowering::Direct]).unwrap_err().to_string();
        assert!(e.contains("1 entries") && e.contains("one lowering per conv (2)"), "{e}");
        let e = inference(&g, 1, DType::F32, &[Lowering::Direct, Lowering::Im2col]).unwrap_err().to_string();
        assert!(e.contains("'dw'") && e.contains("use direct"), "{e}");
        let p = inference_with_features(&g, 3, DType::F64, &[Lowering::Im2col, Lowering::Direct]).unwrap();
        assert_eq!(p.args.len(), 7);
        assert_eq!(p.outputs.iter().map(|s| s.to_string()).collect::<Vec<_>>(), ["tensor<3x5xf32>", "tensor<3x4xf32>"]);
        let mut b = Builder::new();
        let (x, args) = declare(&mut b, &g, 1, DType::F32, Mode::Train).unwrap();
        let e = forward(&mut b, &g, &x, &args, Mode::Running, &[Lowering::Direct; 2]).unwrap_err().to_string();
        assert!(e.contains("Running mode takes 7 tensors"), "{e}");
        let f = forward(&mut b, &g, &x, &args, Mode::Train, &[Lowering::Direct; 2]).unwrap();
        assert!(f.bn[2].is_some() && f.bn.iter().filter(|c| c.is_some()).count() == 1);
        assert_eq!(f.value(NodeId(3)).dims(), [1, 4, 4, 4]);
    }

    #[test]
    fn a_bn_that_does_not_follow_a_lone_conv_is_not_folded() {
        let mut b = GraphBuilder::new([4, 4, 2], Naming::Torchvision).unwrap();
        let x = b.input();
        let c = b.conv("c", x, ConvSpec::new(2, 1, 1, 0, false)).unwrap();
        let n = b.batch_norm("bn", c).unwrap();
        let s = b.add(n, c).unwrap();
        let f = b.flatten(s).unwrap();
        b.dense("fc", f, 2, true).unwrap();
        let g = b.finish().unwrap();
        let e = inference(&g, 1, DType::F32, &[Lowering::Direct]).unwrap_err().to_string();
        assert!(e.contains("'bn' reads 'c' (conv, read by 2 nodes)") && e.contains("Mode::Running"), "{e}");
        program(&g, 1, DType::F32, Mode::Running, &[Lowering::Direct], &[]).unwrap();
    }
}
