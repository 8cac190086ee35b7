//! Every backward rule of the training step, written by hand, one small function each.
//!
//! [`node_backward`] is the table: one `match` on the graph's [`Op`] that picks the rule of a
//! node. Each rule takes the forward values it needs (kept by the caller) and the gradient of the
//! loss with respect to the layer's output (`dy`), and emits the ops for the gradients with
//! respect to the layer's inputs and parameters. Softmax cross-entropy has its forward
//! emitter here too, next to the rule that consumes what it keeps; batch norm's
//! training-mode forward is the forward emitter's ([`crate::model::emit`]). Every rule is checked against central finite differences in `tests/train.rs`.
//!
//! Layouts: activations NHWC, conv kernels HWIO `[kh, kw, in / groups, out]`, dense weights
//! `[in, out]`.

use crate::error::{Error, Result};
use crate::graph::{ConvSpec, Op, PoolSpec};
use crate::hlo::{Builder, Compare, ConvDims, DType, ReduceOp, Shape, Value};
use crate::lower::{nhwc, Lowering};

/// Sum of all elements: a scalar.
pub fn sum_all(b: &mut Builder, x: &Value) -> Result<Value> {
    let axes: Vec<i64> = (0..x.shape().rank() as i64).collect();
    b.reduce(x, &axes, ReduceOp::Sum)
}

/// Sums `x` over every axis but `axis`: shape `[x.dims[axis]]`.
pub fn sum_except(b: &mut Builder, x: &Value, axis: usize) -> Result<Value> {
    let axes: Vec<i64> = (0..x.shape().rank() as i64).filter(|&a| a != axis as i64).collect();
    b.reduce(x, &axes, ReduceOp::Sum)
}

// ---- convolution -------------------------------------------------------------------------

/// Whether `spec` is the 3x3 stride-1 pad-1 single-group conv that the lowerings other than
/// `Direct` handle (VGG's convs): their backward pass has its own fast paths there.
fn has_fast_path(spec: &ConvSpec, lowering: Lowering) -> bool {
    lowering != Lowering::Direct && (spec.kh, spec.kw, spec.stride, spec.pad, spec.groups) == (3, 3, 1, 1, 1)
}

/// The rows or columns a conv of window `k`, `stride` and `pad` leaves unread at the end of
/// an input side `n`: `(n + 2 pad - k) mod stride`.
fn unread(n: i64, k: usize, spec: &ConvSpec) -> i64 {
    (n + 2 * spec.pad as i64 - k as i64).rem_euclid(spec.stride as i64)
}

/// Input gradient of `y = conv(x, kernel)` (NHWC x HWIO `[kh, kw, in / groups, out]`, any
/// window, stride, padding and groups; `dy` NHWC of the output's shape, `in_hw` the input's
/// height and width): the convolution of `dy`, dilated by the stride, with the kernel
/// reversed in space and its in/out features swapped within each group, padded by
/// `k - 1 - pad` (plus the rows the forward left unread at the end).
///
/// `Direct` emits that one `convolution` as JAX does (`lhs_dilation` = stride,
/// `feature_group_count` = groups; with one group the kernel layout swaps the feature axes
/// instead of a transpose). The other lowerings, on a 3x3 stride-1 pad-1 one-group conv,
/// transpose the reversed kernel to HWIO `[3, 3, out, in]` and emit the forward lowering
/// (the custom `Kernel` has no gradient of its own: its backward is im2col's); on any other
/// conv they fall back to `Direct`.
///
/// Errors: a kernel whose shape does not fit `spec` or `dy`.
pub fn conv_input(b: &mut Builder, dy: &Value, kernel: &Value, spec: &ConvSpec, in_hw: [usize; 2], lowering: Lowering) -> Result<Value> {
    let &[kh, kw, cig, o] = kernel.dims() else {
        return Err(Error::shape("conv_input", format!("kernel {} is not HWIO", kernel.shape())));
    };
    let g = spec.groups as i64;
    if (kh, kw, o) != (spec.kh as i64, spec.kw as i64, spec.out as i64) || o % g != 0 {
        return Err(Error::shape("conv_input", format!("kernel {} for {spec}", kernel.shape())));
    }
    if has_fast_path(spec, lowering) {
        let rev = b.reverse(kernel, &[0, 1])?;
        let swapped = b.transpose(&rev, &[0, 1, 3, 2])?;
        let forward = if lowering == Lowering::Kernel { Lowering::Im2col } else { lowering };
        return forward.emit(b, dy, &swapped);
    }
    let mut cd = ConvDims::same(0);
    let rev = if g == 1 {
        // kernel: input feature = axis 3 (the forward's out), output feature = axis 2.
        cd.layout.kernel = [3, 2, 0, 1];
        b.reverse(kernel, &[0, 1])?
    } else {
        // [kh, kw, in/g, g, out/g] -> [kh, kw, out/g, g, in/g] -> HWIO [kh, kw, out/g, in].
        let split = b.reshape(kernel, &[kh, kw, cig, g, o / g])?;
        let t = b.transpose(&split, &[0, 1, 4, 3, 2])?;
        let k = b.reshape(&t, &[kh, kw, o / g, cig * g])?;
        cd.groups = g;
        b.reverse(&k, &[0, 1])?
    };
    let s = spec.stride as i64;
    for (axis, (n, k)) in [(in_hw[0] as i64, spec.kh), (in_hw[1] as i64, spec.kw)].into_iter().enumerate() {
        let lo = k as i64 - 1 - spec.pad as i64;
        cd.padding[axis] = [lo, lo + unread(n, k, spec)];
        cd.lhs_dilation[axis] = s;
    }
    let dx = b.convolution(dy, &rev, &cd)?;
    if dx.dims()[1..3] != [in_hw[0] as i64, in_hw[1] as i64] {
        return Err(Error::shape("conv_input", format!("gradient {} for an input of {in_hw:?} under {spec}", dx.shape())));
    }
    Ok(dx)
}

/// Kernel gradient of `y = conv(x, kernel)` (any window, stride, padding and groups):
/// `dk[u, v, c, o] = sum_{n,i,j} xpad[n, i*s + u, j*s + v, g(o)*in/groups + c] * dy[n, i, j, o]`,
/// shape `[kh, kw, in / groups, out]`.
///
/// `Direct` emits it as one convolution that treats the channels of `x` as its batch and the
/// batch as the contracted feature, with the window dilated by the stride and
/// `batch_group_count` = groups (what JAX emits). On a 3x3 stride-1 pad-1 one-group conv,
/// `Im2col`, `Gemm9` and `Kernel` take the 9 shifted windows of the padded input and
/// contract them with `dy` in one `dot_general`; `Winograd` uses the convolution, except on
/// maps of 4 pixels or fewer, where XLA's convolution has its cliff.
///
/// Errors: `x` or `dy` not NHWC, or not fitting `spec`.
pub fn conv_kernel(b: &mut Builder, x: &Value, dy: &Value, spec: &ConvSpec, lowering: Lowering) -> Result<Value> {
    let [_, h, w, c] = nhwc("conv_kernel", x)?;
    let [_, _, _, o] = nhwc("conv_kernel", dy)?;
    let patch_form = has_fast_path(spec, lowering)
        && match lowering {
            Lowering::Winograd => crate::lower::plain_conv_is_slow(h as usize, w as usize),
            _ => true,
        };
    if patch_form {
        let taps = crate::lower::shifted_windows(b, x)?;
        let refs: Vec<&Value> = taps.iter().collect();
        let patches = b.concatenate(&refs, 3)?; // [N, H, W, 9C], (u, v, c) order
        let dk = b.dot_general(&patches, dy, (&[], &[]), (&[0, 1, 2], &[0, 1, 2]))?;
        return b.reshape(&dk, &[3, 3, c, o]);
    }
    let mut cd = ConvDims::same(0);
    cd.layout.input = [3, 0, 1, 2]; // batch = C, feature = N, spatial = H, W
    cd.layout.kernel = [0, 3, 1, 2]; // in = N, out = O, window = H, W
    cd.layout.output = [2, 3, 0, 1]; // HWIO
    cd.batch_groups = spec.groups as i64;
    let p = spec.pad as i64;
    for (axis, (n, k)) in [(h, spec.kh), (w, spec.kw)].into_iter().enumerate() {
        // The rows the forward never read are cut by a negative high padding.
        cd.padding[axis] = [p, p - unread(n, k, spec)];
        cd.rhs_dilation[axis] = spec.stride as i64;
    }
    let dk = b.convolution(x, dy, &cd)?;
    let want = [spec.kh as i64, spec.kw as i64, c / spec.groups as i64, o];
    if dk.dims() != want {
        return Err(Error::shape("conv_kernel", format!("gradient {} for a kernel {want:?} under {spec}", dk.shape())));
    }
    Ok(dk)
}

// ---- bias add ---------------------------------------------------------------------------

/// Forward `y = x + bias` with `bias` along `axis`.
pub fn bias_add(b: &mut Builder, x: &Value, bias: &Value, axis: usize) -> Result<Value> {
    let bb = b.broadcast_along(bias, x.shape(), axis)?;
    b.add(x, &bb)
}

/// Bias gradient of `y = x + bias` (bias along `axis`): `dy` summed over the other axes.
/// The input gradient is `dy` itself.
pub fn bias_add_backward(b: &mut Builder, dy: &Value, axis: usize) -> Result<Value> {
    sum_except(b, dy, axis)
}

// ---- batch norm, training mode ----------------------------------------------------------

// The forward pass (batch statistics, and the cache its backward reads) is the forward
// emitter's ([`crate::model::emit`]); re-exported here next to its backward rule.
pub use crate::model::emit::{batch_norm_train, BnCache};

/// Gradients `(dx, dgamma, dbeta)` of training-mode batch norm, with `M = N*H*W`:
/// `dbeta = sum dy`, `dgamma = sum dy * xhat`,
/// `dx = gamma * rstd / M * (M * dy - dbeta - xhat * dgamma)`.
pub fn batch_norm_backward(b: &mut Builder, dy: &Value, gamma: &Value, cache: &BnCache) -> Result<(Value, Value, Value)> {
    let [n, h, w, _] = nhwc("batch_norm_backward", dy)?;
    let m = (n * h * w) as f64;
    let shape = dy.shape().clone();
    let dbeta = sum_except(b, dy, 3)?;
    let p = b.mul(dy, &cache.xhat)?;
    let dgamma = sum_except(b, &p, 3)?;
    let mc = b.constant(m, shape.clone());
    let t = b.mul(&mc, dy)?;
    let dbeta_b = b.broadcast_along(&dbeta, &shape, 3)?;
    let t = b.sub(&t, &dbeta_b)?;
    let dgamma_b = b.broadcast_along(&dgamma, &shape, 3)?;
    let xg = b.mul(&cache.xhat, &dgamma_b)?;
    let t = b.sub(&t, &xg)?;
    let inv_m = b.constant(1.0 / m, gamma.shape().clone());
    let k = b.mul(gamma, &cache.rstd)?;
    let k = b.mul(&k, &inv_m)?;
    let k = b.broadcast_along(&k, &shape, 3)?;
    let dx = b.mul(&k, &t)?;
    Ok((dx, dgamma, dbeta))
}

// ---- activations, pools, flatten ---------------------------------------------------------

/// Input gradient of `y = max(x, 0)`: `dy` where `x > 0`, else 0.
pub fn relu_backward(b: &mut Builder, x: &Value, dy: &Value) -> Result<Value> {
    let zero = b.constant(0.0, x.shape().clone());
    let pos = b.compare(x, &zero, Compare::Gt)?;
    b.select(&pos, dy, &zero)
}

/// Input gradient of `y = min(max(x, 0), 6)`: `dy` where `0 < x < 6`, else 0.
pub fn relu6_backward(b: &mut Builder, x: &Value, dy: &Value) -> Result<Value> {
    let below = relu_backward(b, x, dy)?;
    let six = b.constant(6.0, x.shape().clone());
    let zero = b.constant(0.0, x.shape().clone());
    let inside = b.compare(x, &six, Compare::Lt)?;
    b.select(&inside, &below, &zero)
}

/// Input gradient of a max-pool `p` of NHWC `x` (padded with -inf): each pooled gradient
/// goes to the position of its window's maximum in `x` (the first one on ties; never a
/// padded position), summed where windows overlap, via `select_and_scatter`.
pub fn max_pool_backward(b: &mut Builder, x: &Value, dy: &Value, p: &PoolSpec) -> Result<Value> {
    let (k, s, pad) = (p.k as i64, p.stride as i64, p.pad as i64);
    b.max_pool_grad(x, dy, &[1, k, k, 1], &[1, s, s, 1], &[[0, 0], [pad, pad], [pad, pad], [0, 0]])
}

/// Input gradient of an average pool `p` (no padding) whose input is `[N, in_hw, C]`: each
/// pooled gradient spread evenly, `1 / k^2` each, over its window. It is the input gradient
/// of a depthwise conv with a constant kernel of `1 / k^2`, and emitted as one.
pub fn avg_pool_backward(b: &mut Builder, dy: &Value, p: &PoolSpec, in_hw: [usize; 2]) -> Result<Value> {
    let [_, _, _, c] = nhwc("avg_pool_backward", dy)?;
    let k = p.k as i64;
    let spec = ConvSpec { out: c as usize, kh: p.k, kw: p.k, stride: p.stride, pad: 0, groups: c as usize, bias: false };
    let ones = b.constant(1.0 / (k * k) as f64, Shape::new([k, k, 1, c], dy.dtype()));
    conv_input(b, dy, &ones, &spec, in_hw, Lowering::Direct)
}

/// Input gradient of a global average pool of `[N, H, W, C]` (`in_hw` = `[H, W]`): `dy`
/// `[N, C]` broadcast over the map and divided by `H * W`.
pub fn global_avg_pool_backward(b: &mut Builder, dy: &Value, in_hw: [usize; 2]) -> Result<Value> {
    let &[n, c] = dy.dims() else {
        return Err(Error::shape("global_avg_pool_backward", format!("gradient {} is not [N, C]", dy.shape())));
    };
    let dims = [n, in_hw[0] as i64, in_hw[1] as i64, c];
    let spread = b.broadcast_in_dim(dy, &dims, &[0, 3])?;
    let inv = b.constant(1.0 / (in_hw[0] * in_hw[1]) as f64, spread.shape().clone());
    b.mul(&spread, &inv)
}

/// Input gradient of a reshape (flatten): `dy` reshaped back to the input's dims.
pub fn reshape_backward(b: &mut Builder, dy: &Value, input_dims: &[i64]) -> Result<Value> {
    b.reshape(dy, input_dims)
}

// ---- dense ------------------------------------------------------------------------------

/// Gradients `(dx, dw, db)` of `y = x W + b` with `x: [B, in]`, `W: [in, out]`:
/// `dx = dy W^T`, `dW = x^T dy`, `db = sum_B dy`.
pub fn dense_backward(b: &mut Builder, x: &Value, w: &Value, dy: &Value) -> Result<(Value, Value, Value)> {
    let dx = b.dot_general(dy, w, (&[], &[]), (&[1], &[1]))?;
    let dw = b.dot_general(x, dy, (&[], &[]), (&[0], &[0]))?;
    let db = sum_except(b, dy, 1)?;
    Ok((dx, dw, db))
}

// ---- softmax cross-entropy --------------------------------------------------------------

/// Softmax cross-entropy of `logits: [B, K]` against integer `labels: [B]` (i32), averaged
/// over the batch.
#[derive(Clone, Debug)]
pub struct Xent {
    /// Mean loss, a scalar of the logits' dtype.
    pub loss: Value,
    /// Number of rows whose label logit is the largest (ties count as correct), a scalar of
    /// the logits' dtype.
    pub correct: Value,
    /// Gradient of `loss` with respect to the logits: `(softmax - onehot) / B`.
    pub dlogits: Value,
}

/// Emits the loss, the top-1 count and the logits gradient. The one-hot matrix is
/// `iota(axis 1) == broadcast(labels)`; the log-softmax subtracts the row maximum first.
pub fn softmax_xent(b: &mut Builder, logits: &Value, labels: &Value) -> Result<Xent> {
    let (bs, k) = match *logits.dims() {
        [bs, k] => (bs, k),
        _ => return Err(Error::shape("softmax_xent", format!("logits {} are not [B, K]", logits.shape()))),
    };
    if labels.dims() != [bs] || labels.dtype() != DType::I32 {
        return Err(Error::shape("softmax_xent", format!("labels {} for logits {}", labels.shape(), logits.shape())));
    }
    let dt = logits.dtype();
    let dims = [bs, k];
    let ids = b.iota(Shape::new(dims, DType::I32), 1)?;
    let lab = b.broadcast_in_dim(labels, &dims, &[0])?;
    let hit = b.compare(&ids, &lab, Compare::Eq)?;
    let one = b.constant(1.0, logits.shape().clone());
    let zero = b.constant(0.0, logits.shape().clone());
    let onehot = b.select(&hit, &one, &zero)?;

    let mx = b.reduce(logits, &[1], ReduceOp::Max)?;
    let mx_b = b.broadcast_in_dim(&mx, &dims, &[0])?;
    let shifted = b.sub(logits, &mx_b)?;
    let ex = b.exp(&shifted)?;
    let se = b.reduce(&ex, &[1], ReduceOp::Sum)?;
    let lse = b.log(&se)?;
    let lse_b = b.broadcast_in_dim(&lse, &dims, &[0])?;
    let logp = b.sub(&shifted, &lse_b)?;
    let picked = b.mul(&onehot, &logp)?;
    let total = sum_all(b, &picked)?;
    let neg_inv_b = b.scalar(-1.0 / bs as f64, dt);
    let loss = b.mul(&total, &neg_inv_b)?;

    let se_b = b.broadcast_in_dim(&se, &dims, &[0])?;
    let sm = b.div(&ex, &se_b)?;
    let d = b.sub(&sm, &onehot)?;
    let inv_b = b.constant(1.0 / bs as f64, logits.shape().clone());
    let dlogits = b.mul(&d, &inv_b)?;

    let lz = b.mul(&onehot, logits)?;
    let label_logit = b.reduce(&lz, &[1], ReduceOp::Sum)?;
    let ok = b.compare(&label_logit, &mx, Compare::Ge)?;
    let one_b = b.constant(1.0, label_logit.shape().clone());
    let zero_b = b.constant(0.0, label_logit.shape().clone());
    let okf = b.select(&ok, &one_b, &zero_b)?;
    let correct = sum_all(b, &okf)?;
    Ok(Xent { loss, correct, dlogits })
}

// ---- the table ----------------------------------------------------------------------------

/// The forward values one node's backward rule reads.
#[derive(Clone, Debug)]
pub struct Tape<'a> {
    /// The values of the node's inputs (batch first), in `node.inputs` order.
    pub inputs: Vec<&'a Value>,
    /// The node's trainable tensors in [`Op::roles`] order (running statistics left out).
    pub params: Vec<&'a Value>,
    /// The batch-norm cache of a BN node (training mode).
    pub bn: Option<&'a BnCache>,
}

/// The gradients one node's rule returns.
#[derive(Clone, Debug, Default)]
pub struct NodeGrads {
    /// Per input of the node (`node.inputs` order): the gradient of the loss with respect to
    /// it, `None` where it was not asked for.
    pub inputs: Vec<Option<Value>>,
    /// Per trainable tensor of the node, in [`Tape::params`] order.
    pub params: Vec<Value>,
}

fn map_hw(what: &str, x: &Value) -> Result<[usize; 2]> {
    let [_, h, w, _] = nhwc(what, x)?;
    Ok([h as usize, w as usize])
}

/// The backward rule of one node computing `op`: given its [`Tape`] and `dy` (the gradient
/// of the loss with respect to its output, batch first), the gradients of its inputs where
/// `want[i]` asks for them and of its trainable tensors. A conv lowers its gradients as
/// `lowering` says (see [`conv_input`], [`conv_kernel`]; other ops ignore it).
///
/// Errors: a tape that does not fit the op (missing inputs, tensors or BN cache), or shapes
/// the rules refuse.
pub fn node_backward(b: &mut Builder, op: &Op, tape: &Tape, dy: &Value, want: &[bool], lowering: Lowering) -> Result<NodeGrads> {
    let missing = || Error::shape("backward", format!("the tape of a {} node lacks a value it needs", op.kind()));
    let x = |k: usize| tape.inputs.get(k).copied().ok_or_else(missing);
    let w = |k: usize| tape.params.get(k).copied().ok_or_else(missing);
    let wants = |k: usize| want.get(k).copied().unwrap_or(false);
    let one = |g: Option<Value>| NodeGrads { inputs: vec![g], params: vec![] };
    let grads = match op {
        Op::Input => NodeGrads::default(),
        Op::Conv(spec) => {
            let mut params = vec![conv_kernel(b, x(0)?, dy, spec, lowering)?];
            if spec.bias {
                params.push(bias_add_backward(b, dy, 3)?);
            }
            let dx = if wants(0) { Some(conv_input(b, dy, w(0)?, spec, map_hw("conv", x(0)?)?, lowering)?) } else { None };
            NodeGrads { inputs: vec![dx], params }
        }
        Op::BatchNorm => {
            let cache = tape.bn.ok_or_else(missing)?;
            let (dx, dgamma, dbeta) = batch_norm_backward(b, dy, w(0)?, cache)?;
            NodeGrads { inputs: vec![Some(dx)], params: vec![dgamma, dbeta] }
        }
        Op::Relu => one(Some(relu_backward(b, x(0)?, dy)?)),
        Op::Relu6 => one(Some(relu6_backward(b, x(0)?, dy)?)),
        Op::MaxPool(p) => one(Some(max_pool_backward(b, x(0)?, dy, p)?)),
        Op::AvgPool(p) => one(Some(avg_pool_backward(b, dy, p, map_hw("avgpool", x(0)?)?)?)),
        Op::GlobalAvgPool => one(Some(global_avg_pool_backward(b, dy, map_hw("gap", x(0)?)?)?)),
        Op::Add => NodeGrads { inputs: vec![Some(dy.clone()), Some(dy.clone())], params: vec![] },
        Op::Flatten => one(Some(reshape_backward(b, dy, x(0)?.dims())?)),
        Op::Dense { bias, .. } => {
            let (dx, dw, db) = dense_backward(b, x(0)?, w(0)?, dy)?;
            let params = if *bias { vec![dw, db] } else { vec![dw] };
            NodeGrads { inputs: vec![Some(dx)], params }
        }
    };
    // Gradients nobody asked for are dropped (XLA removes the ops that made them).
    let inputs = grads.inputs.into_iter().enumerate().map(|(k, g)| g.filter(|_| wants(k))).collect();
    Ok(NodeGrads { inputs, params: grads.params })
}
