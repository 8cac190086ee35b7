//! The training-step program: forward in training mode, backward with the rules of
//! [`grad`](super::grad), SGD with momentum, running-stat update, in one StableHLO module.
//!
//! Arguments, in order:
//! 1. images `[B, H, W, C]` (program dtype), labels `[B]` i32, learning rate (scalar f32);
//! 2. the parameters ([`param_specs`]): per conv its kernel `[3, 3, in, out]`, bias `[out]`
//!    and, with BN, gamma and beta `[out]`; per dense layer its weight `[in, out]` and bias;
//! 3. one momentum buffer per parameter, same shapes and order;
//! 4. the BN running statistics ([`stat_specs`]): per conv with BN, mean and variance.
//!
//! Outputs: loss and number correct (scalars, f64 for an f64 program, else f32), then the
//! updated parameters, momentum buffers and running statistics in the argument order, so
//! output `2 + i` ([`FIRST_STATE_OUTPUT`]) replaces argument `3 + i` ([`FIRST_STATE_ARG`]).
//! Loss and count are computed with the parameters before the update.
//!
//! [`grad_program`] is the same forward and backward pass without the update: the loss and
//! one gradient per parameter (what gradient-based pruning criteria read).

use super::grad::{self, BnCache};
use super::optim::{sgd_update, OptConfig};
use crate::error::{Error, Result};
use crate::hlo::{Builder, DType, Shape, Value};
use crate::lower::Lowering;
use crate::model::weights::BN_EPS;
use crate::model::Arch;

/// Index of the first state argument (parameters, then momentum, then stats).
pub const FIRST_STATE_ARG: usize = 3;
/// Index of the first state output.
pub const FIRST_STATE_OUTPUT: usize = 2;

/// One state tensor of the step program.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    /// e.g. `conv0.kernel`, `conv3.gamma`, `dense1.weight`, `conv5.running_var`.
    pub name: String,
    pub shape: Shape,
    /// Whether weight decay applies (conv kernels and dense weights).
    pub decay: bool,
}

fn spec(name: String, dims: &[usize], dtype: DType, decay: bool) -> TensorSpec {
    let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
    TensorSpec { name, shape: Shape::new(dims, dtype), decay }
}

/// The trainable parameters of `arch`, in argument order.
pub fn param_specs(arch: &Arch, dtype: DType) -> Vec<TensorSpec> {
    let mut v = Vec::new();
    for i in 0..arch.channels.len() {
        let (cin, cout) = (arch.conv_in(i), arch.channels[i]);
        v.push(spec(format!("conv{i}.kernel"), &[3, 3, cin, cout], dtype, true));
        v.push(spec(format!("conv{i}.bias"), &[cout], dtype, false));
        if arch.batch_norm {
            v.push(spec(format!("conv{i}.gamma"), &[cout], dtype, false));
            v.push(spec(format!("conv{i}.beta"), &[cout], dtype, false));
        }
    }
    for (j, (din, dout)) in arch.dense_dims().into_iter().enumerate() {
        v.push(spec(format!("dense{j}.weight"), &[din, dout], dtype, true));
        v.push(spec(format!("dense{j}.bias"), &[dout], dtype, false));
    }
    v
}

/// The BN running statistics of `arch`, in argument order (empty without BN).
pub fn stat_specs(arch: &Arch, dtype: DType) -> Vec<TensorSpec> {
    let mut v = Vec::new();
    if arch.batch_norm {
        for (i, &c) in arch.channels.iter().enumerate() {
            v.push(spec(format!("conv{i}.running_mean"), &[c], dtype, false));
            v.push(spec(format!("conv{i}.running_var"), &[c], dtype, false));
        }
    }
    v
}

/// The default lowering of each conv in the step program: im2col where the map is 2x2 or
/// smaller (XLA's CPU convolution is ~35-50x slower there, forward and backward), plain
/// convolutions elsewhere.
pub fn default_plan(arch: &Arch) -> Vec<Lowering> {
    (0..arch.channels.len())
        .map(|i| {
            let (h, w) = arch.conv_hw(i);
            if crate::lower::plain_conv_is_slow(h, w) { Lowering::Im2col } else { Lowering::Direct }
        })
        .collect()
}

/// A printed step program and what its arguments and outputs are.
#[derive(Clone, Debug)]
pub struct TrainProgram {
    pub text: String,
    pub arch: Arch,
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

/// The step program of `arch` for batches of `batch` in `dtype` with [`default_plan`].
pub fn step_program(arch: &Arch, batch: usize, dtype: DType, opt: &OptConfig) -> Result<TrainProgram> {
    step_program_with(arch, batch, dtype, opt, &default_plan(arch))
}

/// Forward values one conv block keeps for its backward pass.
struct ConvTape {
    input: Value,
    bn: Option<BnCache>,
    /// Pre-activation (after bias / BN), for the ReLU mask.
    pre: Value,
    /// Post-ReLU map, for the max-pool gradient (only read when the block pools).
    act: Value,
}

/// What the shared forward and backward pass leaves for the caller.
struct ForwardBackward {
    /// Loss, top-1 count and logits gradient.
    xent: grad::Xent,
    /// One gradient per parameter, in [`param_specs`] order.
    grads: Vec<Value>,
    /// Per conv, its batch-norm cache (batch statistics) when the model has BN.
    bn: Vec<Option<BnCache>>,
}

/// Checks what the step and gradient programs both require.
fn check_program(arch: &Arch, batch: usize, dtype: DType, plan: &[Lowering]) -> Result<()> {
    arch.validate()?;
    if !matches!(dtype, DType::F32 | DType::F64) {
        return Err(Error::invalid("training dtype", dtype, "train in f32 (or f64 for exact checks)"));
    }
    if batch < 2 && arch.batch_norm {
        return Err(Error::invalid("batch", batch, "batch norm in training mode needs a batch of at least 2"));
    }
    if plan.len() != arch.channels.len() {
        return Err(Error::invalid(
            "lowering plan",
            format!("{} entries", plan.len()),
            format!("give one lowering per conv ({})", arch.channels.len()),
        ));
    }
    Ok(())
}

/// Emits the training-mode forward pass (BN with batch statistics) of `arch` on `images`
/// and `labels` with parameters `p` ([`param_specs`] order), then the backward pass with
/// the rules of [`grad`], conv `i` lowered as `plan[i]`.
fn forward_backward(
    b: &mut Builder,
    arch: &Arch,
    batch: usize,
    plan: &[Lowering],
    images: Value,
    labels: &Value,
    p: &[Value],
) -> Result<ForwardBackward> {
    let bsz = batch as i64;

    // ---- forward ----
    let per_conv = if arch.batch_norm { 4 } else { 2 };
    let mut tapes = Vec::with_capacity(arch.channels.len());
    let mut x = images;
    for i in 0..arch.channels.len() {
        let q = &p[i * per_conv..(i + 1) * per_conv];
        let z = plan[i].emit(b, &x, &q[0])?;
        let z = grad::bias_add(b, &z, &q[1], 3)?;
        let (pre, bn) = if arch.batch_norm {
            let (y, cache) = grad::batch_norm_train(b, &z, &q[2], &q[3], BN_EPS as f64)?;
            (y, Some(cache))
        } else {
            (z, None)
        };
        let act = b.relu(&pre)?;
        let next = if Arch::pools_after(i) { b.max_pool2(&act)? } else { act.clone() };
        tapes.push(ConvTape { input: x, bn, pre, act });
        x = next;
    }
    let feat_dims = x.dims().to_vec();
    let mut hcur = b.reshape(&x, &[bsz, arch.flat_features() as i64])?;
    let dense0 = arch.channels.len() * per_conv;
    let nd = arch.dense_dims().len();
    let mut dense_in = Vec::with_capacity(nd);
    let mut dense_pre = Vec::with_capacity(nd);
    for j in 0..nd {
        let (wt, bias) = (&p[dense0 + 2 * j], &p[dense0 + 2 * j + 1]);
        let y = b.matmul(&hcur, wt)?;
        let y = grad::bias_add(b, &y, bias, 1)?;
        dense_in.push(hcur);
        hcur = if j + 1 < nd { b.relu(&y)? } else { y.clone() };
        dense_pre.push(y);
    }
    let xent = grad::softmax_xent(b, &hcur, labels)?;

    // ---- backward ----
    let mut grads: Vec<Option<Value>> = vec![None; p.len()];
    let mut g = xent.dlogits.clone();
    for j in (0..nd).rev() {
        if j + 1 < nd {
            g = grad::relu_backward(b, &dense_pre[j], &g)?;
        }
        let (dx, dw, db) = grad::dense_backward(b, &dense_in[j], &p[dense0 + 2 * j], &g)?;
        grads[dense0 + 2 * j] = Some(dw);
        grads[dense0 + 2 * j + 1] = Some(db);
        g = dx;
    }
    g = grad::reshape_backward(b, &g, &feat_dims)?;
    for i in (0..arch.channels.len()).rev() {
        let t = &tapes[i];
        let base = i * per_conv;
        if Arch::pools_after(i) {
            g = grad::max_pool_backward(b, &t.act, &g, &crate::graph::PoolSpec::new(2, 2, 0))?;
        }
        g = grad::relu_backward(b, &t.pre, &g)?;
        if let Some(cache) = &t.bn {
            let (dx, dgamma, dbeta) = grad::batch_norm_backward(b, &g, &p[base + 2], cache)?;
            grads[base + 2] = Some(dgamma);
            grads[base + 3] = Some(dbeta);
            g = dx;
        }
        grads[base + 1] = Some(grad::bias_add_backward(b, &g, 3)?);
        let spec = crate::graph::ConvSpec::new(arch.channels[i], 3, 1, 1, true);
        grads[base] = Some(grad::conv_kernel(b, &t.input, &g, &spec, plan[i])?);
        if i > 0 {
            let [_, hh, ww, _] = t.input.dims() else { unreachable!() };
            g = grad::conv_input(b, &g, &p[base], &spec, [*hh as usize, *ww as usize], plan[i])?;
        }
    }
    let grads = grads
        .into_iter()
        .enumerate()
        .map(|(k, g)| g.ok_or_else(|| Error::shape("train step", format!("no gradient for parameter {k}"))))
        .collect::<Result<Vec<_>>>()?;
    Ok(ForwardBackward { xent, grads, bn: tapes.into_iter().map(|t| t.bn).collect() })
}

/// Like [`step_program`] with conv `i` (forward and both gradients) lowered as `plan[i]`.
pub fn step_program_with(arch: &Arch, batch: usize, dtype: DType, opt: &OptConfig, plan: &[Lowering]) -> Result<TrainProgram> {
    arch.validate()?;
    opt.validate()?;
    check_program(arch, batch, dtype, plan)?;
    let params = param_specs(arch, dtype);
    let stats = stat_specs(arch, dtype);
    let mut b = Builder::new();
    let [h, w, c] = arch.input;
    let bsz = batch as i64;
    let images = b.arg(Shape::new([bsz, h as i64, w as i64, c as i64], dtype));
    let labels = b.arg(Shape::new([bsz], DType::I32));
    let lr32 = b.arg(Shape::scalar(DType::F32));
    let lr = b.convert(&lr32, dtype);
    let p: Vec<Value> = params.iter().map(|s| b.arg(s.shape.clone())).collect();
    let mom: Vec<Value> = params.iter().map(|s| b.arg(s.shape.clone())).collect();
    let st: Vec<Value> = stats.iter().map(|s| b.arg(s.shape.clone())).collect();
    let ForwardBackward { xent, grads, bn } = forward_backward(&mut b, arch, batch, plan, images, &labels, &p)?;

    // ---- update ----
    let mut new_p = Vec::with_capacity(params.len());
    let mut new_m = Vec::with_capacity(params.len());
    for (k, s) in params.iter().enumerate() {
        let (pn, mn) = sgd_update(&mut b, opt, &p[k], &grads[k], &mom[k], &lr, s.decay)?;
        new_p.push(pn);
        new_m.push(mn);
    }
    let mut new_st = Vec::with_capacity(st.len());
    for (i, cache) in bn.iter().enumerate() {
        if let Some(cache) = cache {
            let (hh, ww) = arch.conv_hw(i);
            let m = (batch * hh * ww) as f64;
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
    }

    let md = metric_dtype(dtype);
    let loss = b.convert(&xent.loss, md);
    let correct = b.convert(&xent.correct, md);
    let mut outs: Vec<&Value> = vec![&loss, &correct];
    outs.extend(new_p.iter());
    outs.extend(new_m.iter());
    outs.extend(new_st.iter());
    let outputs: Vec<Shape> = outs.iter().map(|v| v.shape().clone()).collect();
    let args_shapes = {
        let mut a = vec![
            Shape::new([bsz, h as i64, w as i64, c as i64], dtype),
            Shape::new([bsz], DType::I32),
            Shape::scalar(DType::F32),
        ];
        a.extend(params.iter().map(|s| s.shape.clone()));
        a.extend(params.iter().map(|s| s.shape.clone()));
        a.extend(stats.iter().map(|s| s.shape.clone()));
        a
    };
    let text = b.finish(&outs);
    Ok(TrainProgram {
        text,
        arch: arch.clone(),
        batch,
        dtype,
        opt: opt.clone(),
        plan: plan.to_vec(),
        params,
        stats,
        args: args_shapes,
        outputs,
    })
}

/// A printed gradient program ([`grad_program`]) and what its arguments and outputs are.
#[derive(Clone, Debug)]
pub struct GradProgram {
    pub text: String,
    pub arch: Arch,
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

/// The loss and its gradients, without an update: the forward and backward pass of the
/// step program (training mode, BN with batch statistics) on its own.
///
/// Arguments: images `[B, H, W, C]` (`dtype`), labels `[B]` i32, then the parameters in
/// [`param_specs`] order. Outputs: the mean loss (scalar, f64 for an f64 program, else
/// f32), then one gradient per parameter in the same order and shape. Conv `i` is lowered
/// as `plan[i]` (see [`default_plan`]).
pub fn grad_program(arch: &Arch, batch: usize, dtype: DType, plan: &[Lowering]) -> Result<GradProgram> {
    check_program(arch, batch, dtype, plan)?;
    let params = param_specs(arch, dtype);
    let mut b = Builder::new();
    let [h, w, c] = arch.input;
    let bsz = batch as i64;
    let image_shape = Shape::new([bsz, h as i64, w as i64, c as i64], dtype);
    let images = b.arg(image_shape.clone());
    let labels = b.arg(Shape::new([bsz], DType::I32));
    let p: Vec<Value> = params.iter().map(|s| b.arg(s.shape.clone())).collect();
    let fb = forward_backward(&mut b, arch, batch, plan, images, &labels, &p)?;
    let loss = b.convert(&fb.xent.loss, metric_dtype(dtype));
    let mut outs: Vec<&Value> = vec![&loss];
    outs.extend(fb.grads.iter());
    let outputs: Vec<Shape> = outs.iter().map(|v| v.shape().clone()).collect();
    let mut args = vec![image_shape, Shape::new([bsz], DType::I32)];
    args.extend(params.iter().map(|s| s.shape.clone()));
    let text = b.finish(&outs);
    Ok(GradProgram { text, arch: arch.clone(), batch, dtype, plan: plan.to_vec(), params, args, outputs })
}
