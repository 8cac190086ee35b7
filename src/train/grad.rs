//! Every backward rule of the training step, written by hand, one small function each.
//!
//! Each rule takes the forward values it needs (kept by the caller) and the gradient of the
//! loss with respect to the layer's output (`dy`), and emits the ops for the gradients with
//! respect to the layer's inputs and parameters. Softmax cross-entropy has its forward
//! emitter here too, next to the rule that consumes what it keeps; batch norm's
//! training-mode forward is the forward emitter's ([`crate::model::emit`]). Every rule is checked against central finite differences in `tests/train.rs`.
//!
//! Layouts: activations NHWC, conv kernels HWIO `[3, 3, in, out]`, dense weights `[in, out]`.

use crate::error::{Error, Result};
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

// ---- convolution 3x3, stride 1, pad 1 ---------------------------------------------------

/// Input gradient of `y = conv3x3(x, k)`: the convolution of `dy` with the kernel reversed
/// in space and with its in/out features swapped, pad 1. `Direct` emits one `convolution`
/// whose kernel layout swaps the feature axes (no transpose); `Im2col` transposes the
/// reversed kernel to HWIO `[3, 3, out, in]` and reuses the im2col lowering.
pub fn conv3x3_input(b: &mut Builder, dy: &Value, kernel: &Value, lowering: Lowering) -> Result<Value> {
    let rev = b.reverse(kernel, &[0, 1])?;
    match lowering {
        Lowering::Direct => {
            let mut cd = ConvDims::same(1);
            // kernel: input feature = axis 3 (the forward's out), output feature = axis 2.
            cd.layout.kernel = [3, 2, 0, 1];
            b.convolution(dy, &rev, &cd)
        }
        Lowering::Im2col | Lowering::Gemm9 | Lowering::Winograd | Lowering::Kernel => {
            let swapped = b.transpose(&rev, &[0, 1, 3, 2])?;
            // The custom kernel has no gradient rule of its own: its backward is im2col's.
            let forward = if lowering == Lowering::Kernel { Lowering::Im2col } else { lowering };
            forward.emit(b, dy, &swapped)
        }
    }
}

/// Kernel gradient of `y = conv3x3(x, k)`: `dk[u, v, c, o] = sum_{n,i,j} xpad[n, i+u, j+v, c]
/// * dy[n, i, j, o]`. `Direct` emits it as one convolution that treats the channels of `x`
/// as its batch and the batch as the contracted feature (what JAX emits); `Im2col` takes the
/// 9 shifted windows of the padded input and contracts them with `dy` in one `dot_general`.
///
/// `Gemm9` and `Kernel` use the patch form; `Winograd` the convolution, except on maps of 4
/// pixels or fewer, where XLA's convolution has its cliff and the patch form is used.
pub fn conv3x3_kernel(b: &mut Builder, x: &Value, dy: &Value, lowering: Lowering) -> Result<Value> {
    let [_, h, w, c] = nhwc("conv3x3_kernel", x)?;
    let [_, _, _, o] = nhwc("conv3x3_kernel", dy)?;
    let patch_form = match lowering {
        Lowering::Direct => false,
        Lowering::Im2col | Lowering::Gemm9 | Lowering::Kernel => true,
        Lowering::Winograd => crate::lower::plain_conv_is_slow(h as usize, w as usize),
    };
    if !patch_form {
        let mut cd = ConvDims::same(1);
        cd.layout.input = [3, 0, 1, 2]; // batch = C, feature = N, spatial = H, W
        cd.layout.kernel = [0, 3, 1, 2]; // in = N, out = O, window = H, W
        cd.layout.output = [2, 3, 0, 1]; // HWIO
        return b.convolution(x, dy, &cd);
    }
    let taps = crate::lower::shifted_windows(b, x)?;
    let refs: Vec<&Value> = taps.iter().collect();
    let patches = b.concatenate(&refs, 3)?; // [N, H, W, 9C], (u, v, c) order
    let dk = b.dot_general(&patches, dy, (&[], &[]), (&[0, 1, 2], &[0, 1, 2]))?;
    b.reshape(&dk, &[3, 3, c, o])
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

// ---- ReLU, max-pool, flatten ------------------------------------------------------------

/// Input gradient of `y = max(x, 0)`: `dy` where `x > 0`, else 0.
pub fn relu_backward(b: &mut Builder, x: &Value, dy: &Value) -> Result<Value> {
    let zero = b.constant(0.0, x.shape().clone());
    let pos = b.compare(x, &zero, Compare::Gt)?;
    b.select(&pos, dy, &zero)
}

/// Input gradient of a 2x2/2 max-pool of NHWC `x`: each pooled gradient goes to the
/// position of its window's maximum in `x` (the first one on ties), via `select_and_scatter`.
pub fn max_pool2_backward(b: &mut Builder, x: &Value, dy: &Value) -> Result<Value> {
    b.max_pool_grad(x, dy, &[1, 2, 2, 1], &[1, 2, 2, 1])
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
