//! The training-step program of any graph: forward in training mode (the forward emitter,
//! [`crate::model::emit`]), backward over the graph's nodes in reverse order with the rules
//! of [`grad`](super::grad), SGD with momentum, running-stat update, in one StableHLO module.
//!
//! Arguments, in order:
//! 1. images `[B, H, W, C]` (program dtype), labels `[B]` i32, learning rate (scalar f32);
//! 2. the parameters ([`param_specs`]): the trainable tensors of the graph's parameter table
//!    in its order (conv kernels HWIO and biases, BN gamma and beta, dense weights and
//!    biases);
//! 3. one momentum buffer per parameter, same shapes and order;
//! 4. the BN running statistics ([`stat_specs`]): per BN node, mean and variance.
//!
//! Outputs: loss and number correct (scalars, f64 for an f64 program, else f32), then the
//! updated parameters, momentum buffers and running statistics in the argument order, so
//! output `2 + i` ([`FIRST_STATE_OUTPUT`]) replaces argument `3 + i` ([`FIRST_STATE_ARG`]).
//! Loss and count are computed with the parameters before the update.
//!
//! [`grad_program`] is the same forward and backward pass without the update: the loss and
//! one gradient per parameter (what gradient-based pruning criteria read).

use super::grad::{self, BnCache, Tape};
use super::optim::{sgd_update, OptConfig};
use crate::error::{Error, Result};
use crate::graph::{Graph, Op};
use crate::hlo::{Builder, DType, Shape, Value};
use crate::lower::Lowering;
use crate::model::emit::{self, Forward, Mode};
use crate::model::Arch;

/// Index of the first state argument (parameters, then momentum, then stats).
pub const FIRST_STATE_ARG: usize = 3;
/// Index of the first state output.
pub const FIRST_STATE_OUTPUT: usize = 2;

/// One state tensor of the step program.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    /// Its name in the graph's parameter table, e.g. `features.0.weight`,
    /// `layer1.0.bn1.running_var`.
    pub name: String,
    pub shape: Shape,
    /// Whether weight decay applies (conv kernels and dense weights).
    pub decay: bool,
}

fn specs(g: &Graph, dtype: DType, statistics: bool) -> Vec<TensorSpec> {
    g.params()
        .iter()
        .filter(|p| p.role.is_statistic() == statistics)
        .map(|p| TensorSpec {
            name: p.name.clone(),
            shape: Shape::new(p.dims.iter().map(|&d| d as i64).collect::<Vec<_>>(), dtype),
            decay: p.role.decays(),
        })
        .collect()
}

/// The trainable tensors of `g` in table order (everything but BN running statistics):
/// the step program's parameters.
pub fn param_specs(g: &Graph, dtype: DType) -> Vec<TensorSpec> {
    specs(g, dtype, false)
}

/// The BN running statistics of `g` in table order (per BN node its mean, then its
/// variance; empty without BN).
pub fn stat_specs(g: &Graph, dtype: DType) -> Vec<TensorSpec> {
    specs(g, dtype, true)
}

/// The default lowering of each conv of `g` (graph order) in the step program: im2col for a
/// 3x3 stride-1 pad-1 one-group conv on a map of 4 pixels or fewer (XLA's CPU convolution
/// is ~35-50x slower there, forward and backward), the plain convolution everywhere else.
pub fn default_graph_plan(g: &Graph) -> Vec<Lowering> {
    g.convs()
        .map(|(n, c)| {
            let d = &g.node(n.inputs[0]).dims;
            let three = (c.kh, c.kw, c.stride, c.pad, c.groups) == (3, 3, 1, 1, 1);
            if three && crate::lower::plain_conv_is_slow(d[0], d[1]) { Lowering::Im2col } else { Lowering::Direct }
        })
        .collect()
}

/// [`default_graph_plan`] of an architecture's graph.
pub fn default_plan(arch: &Arch) -> Vec<Lowering> {
    arch.graph().map(|g| default_graph_plan(&g)).unwrap_or_default()
}

/// A printed step program and what its arguments and outputs are.
#[derive(Clone, Debug)]
pub struct TrainProgram {
    pub text: String,
    pub graph: Graph,
    pub batch: usize,
    pub dtype: DType,
    pub opt: OptConfig,
    pub plan: Vec<Lowering>,
    pub params: Vec<TensorSpec>,
    pub stats: Vec<TensorSpec>,
    pub args: Vec<Shape>,
    pub outputs: Vec<Shape>,
}

impl TrainProgram {
    /// Position of the parameter called `name` within the parameters.
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }
    /// Dtype of the loss and count outputs.
    pub fn metric_dtype(&self) -> DType {
        metric_dtype(self.dtype)
    }
}

fn metric_dtype(dtype: DType) -> DType {
    if dtype == DType::F64 { DType::F64 } else { DType::F32 }
}

/// The step program of `arch` for batches of `batch` in `dtype` with
/// [`default_plan`].
pub fn step_program(arch: &Arch, batch: usize, dtype: DType, opt: &OptConfig) -> Result<TrainProgram> {
    step_program_with(arch, batch, dtype, opt, &default_plan(arch))
}

/// Like [`step_program`] with conv `i` (forward and both gradients) lowered as `plan[i]`.
pub fn step_program_with(arch: &Arch, batch: usize, dtype: DType, opt: &OptConfig, plan: &[Lowering]) -> Result<TrainProgram> {
    graph_step_program(&arch.graph()?, batch, dtype, opt, plan)
}

/// What the shared forward and backward pass leaves for the caller.
struct ForwardBackward {
    /// Loss, top-1 count and logits gradient.
    xent: grad::Xent,
    /// One gradient per parameter, in [`param_specs`] order.
    grads: Vec<Value>,
    /// The forward values and BN caches.
    fwd: Forward,
}

/// Checks what the step and gradient programs both require.
fn check_program(g: &Graph, batch: usize, dtype: DType, plan: &[Lowering]) -> Result<()> {
    if !matches!(dtype, DType::F32 | DType::F64) {
        return Err(Error::invalid("training dtype", dtype, "train in f32 (or f64 for exact checks)"));
    }
    let has_bn = g.nodes().iter().any(|n| n.op == Op::BatchNorm);
    if batch < 2 && has_bn {
        return Err(Error::invalid("batch", batch, "batch norm in training mode needs a batch of at least 2"));
    }
    let convs = g.convs().count();
    if plan.len() != convs {
        return Err(Error::invalid("lowering plan", format!("{} entries", plan.len()), format!("give one lowering per conv ({convs})")));
    }
    if g.output().dims.len() != 1 {
        return Err(Error::invalid("graph output", format!("{:?}", g.output().dims), "a classifier's output is [classes]"));
    }
    Ok(())
}

/// Emits the training-mode forward pass of `g` ([`emit::forward`] in [`Mode::Train`]) on
/// `images` with the trainable tensors `p` ([`param_specs`] order), the softmax
/// cross-entropy against `labels`, then the backward pass: the nodes in reverse order, each
/// through its rule ([`grad::node_backward`]), a node's gradient summed over its consumers
/// (a value read twice, as by a residual add, receives both contributions). Conv `i`
/// (graph order) is lowered as `plan[i]`, forward and backward.
fn forward_backward(b: &mut Builder, g: &Graph, plan: &[Lowering], images: &Value, labels: &Value, p: &[Value]) -> Result<ForwardBackward> {
    let fwd = emit::forward(b, g, images, p, Mode::Train, plan)?;
    let xent = grad::softmax_xent(b, fwd.output(), labels)?;
    // Per node: its trainable tensors' positions in `p`, and its conv's lowering.
    let mut owned: Vec<Vec<usize>> = vec![Vec::new(); g.nodes().len()];
    for (k, param) in g.params().iter().filter(|q| q.is_trainable()).enumerate() {
        owned[param.node.0].push(k);
    }
    let mut lowering = vec![Lowering::Direct; g.nodes().len()];
    for ((n, _), &l) in g.convs().zip(plan) {
        lowering[n.id.0] = l;
    }
    let mut dys: Vec<Option<Value>> = vec![None; g.nodes().len()];
    dys[g.output().id.0] = Some(xent.dlogits.clone());
    let mut grads: Vec<Option<Value>> = vec![None; p.len()];
    for node in g.nodes().iter().rev() {
        if node.op == Op::Input {
            continue;
        }
        let dy = dys[node.id.0]
            .take()
            .ok_or_else(|| Error::shape("backward", format!("node '{}' does not lead to the output", node.name)))?;
        let tape = Tape {
            inputs: node.inputs.iter().map(|i| fwd.value(*i)).collect(),
            params: owned[node.id.0].iter().map(|&k| &p[k]).collect(),
            bn: fwd.bn[node.id.0].as_ref(),
        };
        // The image needs no gradient.
        let want: Vec<bool> = node.inputs.iter().map(|i| g.node(*i).op != Op::Input).collect();
        let ng = grad::node_backward(b, &node.op, &tape, &dy, &want, lowering[node.id.0])
            .map_err(|e| Error::shape("backward", format!("node '{}': {e}", node.name)))?;
        for (&k, gk) in owned[node.id.0].iter().zip(ng.params) {
            grads[k] = Some(gk);
        }
        for (i, gi) in node.inputs.iter().zip(ng.inputs) {
            if let Some(gi) = gi {
                let slot = &mut dys[i.0];
                *slot = Some(match slot.take() {
                    Some(acc) => b.add(&acc, &gi)?,
                    None => gi,
                });
            }
        }
    }
    let grads = grads
        .into_iter()
        .enumerate()
        .map(|(k, g)| g.ok_or_else(|| Error::shape("train step", format!("no gradient for parameter {k}"))))
        .collect::<Result<Vec<_>>>()?;
    Ok(ForwardBackward { xent, grads, fwd })
}

/// Declares the images `[batch, h, w, c]` and the labels `[batch]` (i32).
fn declare_batch(b: &mut Builder, g: &Graph, batch: usize, dtype: DType) -> (Value, Value, Vec<Shape>) {
    let [h, w, c] = g.input_dims();
    let bsz = batch as i64;
    let shapes = vec![Shape::new([bsz, h as i64, w as i64, c as i64], dtype), Shape::new([bsz], DType::I32)];
    let images = b.arg(shapes[0].clone());
    let labels = b.arg(shapes[1].clone());
    (images, labels, shapes)
}

/// The step program of any classifier graph `g`: training-mode forward, backward, SGD with
/// momentum and the BN running-statistics update, conv `i` (graph order) lowered as
/// `plan[i]` (see the module docs for its arguments and outputs).
///
/// Errors: a dtype other than f32/f64, a batch below 2 with BN, a plan without one
/// lowering per conv (or one that does not support its conv), an invalid `opt`.
pub fn graph_step_program(g: &Graph, batch: usize, dtype: DType, opt: &OptConfig, plan: &[Lowering]) -> Result<TrainProgram> {
    opt.validate()?;
    check_program(g, batch, dtype, plan)?;
    let params = param_specs(g, dtype);
    let stats = stat_specs(g, dtype);
    let mut b = Builder::new();
    let (images, labels, mut args) = declare_batch(&mut b, g, batch, dtype);
    let lr32 = b.arg(Shape::scalar(DType::F32));
    let lr = b.convert(&lr32, dtype);
    let p: Vec<Value> = params.iter().map(|s| b.arg(s.shape.clone())).collect();
    let mom: Vec<Value> = params.iter().map(|s| b.arg(s.shape.clone())).collect();
    let st: Vec<Value> = stats.iter().map(|s| b.arg(s.shape.clone())).collect();
    let ForwardBackward { xent, grads, fwd } = forward_backward(&mut b, g, plan, &images, &labels, &p)?;

    // ---- update ----
    let mut new_p = Vec::with_capacity(params.len());
    let mut new_m = Vec::with_capacity(params.len());
    for (k, s) in params.iter().enumerate() {
        let (pn, mn) = sgd_update(&mut b, opt, &p[k], &grads[k], &mom[k], &lr, s.decay)?;
        new_p.push(pn);
        new_m.push(mn);
    }
    // Running statistics: per BN node in graph order (the table's order), mean then var.
    let caches: Vec<(&BnCache, &Value)> = g
        .nodes()
        .iter()
        .filter_map(|n| fwd.bn[n.id.0].as_ref().map(|c| (c, fwd.value(n.inputs[0]))))
        .collect();
    if 2 * caches.len() != st.len() {
        return Err(Error::shape("train step", format!("{} BN caches for {} running statistics", caches.len(), st.len())));
    }
    let mut new_st = Vec::with_capacity(st.len());
    for (i, (cache, x)) in caches.iter().enumerate() {
        let m = x.dims()[..3].iter().product::<i64>() as f64;
        let shape = cache.mean.shape().clone();
        let keep = b.constant(1.0 - opt.bn_momentum, shape.clone());
        let take = b.constant(opt.bn_momentum, shape.clone());
        let unbias = b.constant(opt.bn_momentum * m / (m - 1.0).max(1.0), shape);
        let (rm, rv) = (&st[2 * i], &st[2 * i + 1]);
        let a = b.mul(&keep, rm)?;
        let c2 = b.mul(&take, &cache.mean)?;
        new_st.push(b.add(&a, &c2)?);
        let a = b.mul(&keep, rv)?;
        let c2 = b.mul(&unbias, &cache.var)?;
        new_st.push(b.add(&a, &c2)?);
    }

    let md = metric_dtype(dtype);
    let loss = b.convert(&xent.loss, md);
    let correct = b.convert(&xent.correct, md);
    let mut outs: Vec<&Value> = vec![&loss, &correct];
    outs.extend(new_p.iter());
    outs.extend(new_m.iter());
    outs.extend(new_st.iter());
    let outputs: Vec<Shape> = outs.iter().map(|v| v.shape().clone()).collect();
    args.push(Shape::scalar(DType::F32));
    args.extend(params.iter().map(|s| s.shape.clone()));
    args.extend(params.iter().map(|s| s.shape.clone()));
    args.extend(stats.iter().map(|s| s.shape.clone()));
    let text = b.finish(&outs);
    Ok(TrainProgram { text, graph: g.clone(), batch, dtype, opt: opt.clone(), plan: plan.to_vec(), params, stats, args, outputs })
}

/// A printed gradient program ([`grad_program`]) and what its arguments and outputs are.
#[derive(Clone, Debug)]
pub struct GradProgram {
    pub text: String,
    pub graph: Graph,
    pub batch: usize,
    pub dtype: DType,
    pub plan: Vec<Lowering>,
    pub params: Vec<TensorSpec>,
    pub args: Vec<Shape>,
    pub outputs: Vec<Shape>,
}

impl GradProgram {
    /// Position of the parameter called `name` within the parameters (argument `2 + i`,
    /// output `1 + i`).
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }
    /// Dtype of the loss output.
    pub fn metric_dtype(&self) -> DType {
        metric_dtype(self.dtype)
    }
}

/// The gradient program of `arch` ([`graph_grad_program`] of its graph).
pub fn grad_program(arch: &Arch, batch: usize, dtype: DType, plan: &[Lowering]) -> Result<GradProgram> {
    graph_grad_program(&arch.graph()?, batch, dtype, plan)
}

/// The loss and its gradients, without an update: the forward and backward pass of the
/// step program (training mode, BN with batch statistics) on its own.
///
/// Arguments: images `[B, H, W, C]` (`dtype`), labels `[B]` i32, then the parameters in
/// [`param_specs`] order. Outputs: the mean loss (scalar, f64 for an f64 program, else
/// f32), then one gradient per parameter in the same order and shape. Conv `i` is lowered
/// as `plan[i]` (see [`default_graph_plan`]). Errors as [`graph_step_program`].
pub fn graph_grad_program(g: &Graph, batch: usize, dtype: DType, plan: &[Lowering]) -> Result<GradProgram> {
    check_program(g, batch, dtype, plan)?;
    let params = param_specs(g, dtype);
    let mut b = Builder::new();
    let (images, labels, mut args) = declare_batch(&mut b, g, batch, dtype);
    let p: Vec<Value> = params.iter().map(|s| b.arg(s.shape.clone())).collect();
    let fb = forward_backward(&mut b, g, plan, &images, &labels, &p)?;
    let loss = b.convert(&fb.xent.loss, metric_dtype(dtype));
    let mut outs: Vec<&Value> = vec![&loss];
    outs.extend(fb.grads.iter());
    let outputs: Vec<Shape> = outs.iter().map(|v| v.shape().clone()).collect();
    args.extend(params.iter().map(|s| s.shape.clone()));
    let text = b.finish(&outs);
    Ok(GradProgram { text, graph: g.clone(), batch, dtype, plan: plan.to_vec(), params, args, outputs })
}
