//! The inference program of a network: StableHLO text whose arguments are the input batch
//! and the weights, so one compiled program serves every checkpoint with the same shapes.
//!
//! Argument order: input `[B, H, W, C]`, then per conv the BN-folded kernel `[3, 3, in, out]`
//! and bias `[out]`, then per dense layer its weight `[in, out]` and bias `[out]` (the order of
//! [`Vgg::inference_weights`](super::Vgg::inference_weights)). All in the program's dtype; the
//! single output is the logits `[B, classes]` in f32.

use super::arch::Arch;
use crate::error::{Error, Result};
use crate::hlo::{Builder, DType, Shape, Value};
use crate::lower::{LayerShape, Lowering};

/// A printed program and the shapes of its arguments and output.
#[derive(Clone, Debug)]
pub struct Program {
    pub text: String,
    pub args: Vec<Shape>,
    pub output: Shape,
}

/// The shape of every conv layer of `arch` at `batch` (what the tuner keys on).
pub fn layer_shapes(arch: &Arch, batch: usize, dtype: DType) -> Vec<LayerShape> {
    (0..arch.channels.len())
        .map(|i| {
            let (h, w) = arch.conv_hw(i);
            LayerShape::new(batch, h, w, arch.conv_in(i), arch.channels[i], dtype)
        })
        .collect()
}

/// The conv trunk of `arch` applied to `x`, the one walk every forward-style program shares
/// (inference, activation statistics, BN recalibration): conv `i` is whatever `layer(b, i, x,
/// cin, cout)` emits (it declares the layer's arguments, lowers the conv and applies its bias,
/// norm and ReLU, keeping anything else it wants as outputs), then a 2x2 max-pool follows
/// where VGG pools. Returns the last feature map.
pub fn conv_trunk<F>(b: &mut Builder, arch: &Arch, x: Value, mut layer: F) -> Result<Value>
where
    F: FnMut(&mut Builder, usize, &Value, i64, i64) -> Result<Value>,
{
    let mut x = x;
    for i in 0..arch.channels.len() {
        let y = layer(b, i, &x, arch.conv_in(i) as i64, arch.channels[i] as i64)?;
        x = if Arch::pools_after(i) { b.max_pool2(&y)? } else { y };
    }
    Ok(x)
}

/// Builds the inference program of `arch` for batches of `batch` in `dtype`, lowering conv
/// `i` as `plan[i]`.
pub fn inference(arch: &Arch, batch: usize, dtype: DType, plan: &[Lowering]) -> Result<Program> {
    emit(arch, batch, dtype, plan, false)
}

/// Like [`inference`], with a second output: the penultimate features `[B, d]` (f32), the
/// input of the last dense layer.
pub fn inference_with_features(arch: &Arch, batch: usize, dtype: DType, plan: &[Lowering]) -> Result<Program> {
    emit(arch, batch, dtype, plan, true)
}

fn emit(arch: &Arch, batch: usize, dtype: DType, plan: &[Lowering], with_features: bool) -> Result<Program> {
    if plan.len() != arch.channels.len() {
        return Err(Error::invalid(
            "lowering plan",
            format!("{} entries", plan.len()),
            format!("give one lowering per conv ({})", arch.channels.len()),
        ));
    }
    if batch == 0 {
        return Err(Error::invalid("batch", 0, "use a batch size of at least 1"));
    }
    let mut b = Builder::new();
    let [h, w, c] = arch.input;
    let bsz = batch as i64;
    let input = b.arg(Shape::new([bsz, h as i64, w as i64, c as i64], dtype));
    let x = conv_trunk(&mut b, arch, input, |b, i, x, cin, cout| {
        let k = b.arg(Shape::new([3, 3, cin, cout], dtype));
        let bias = b.arg(Shape::new([cout], dtype));
        let y = plan[i].emit(b, x, &k)?;
        let bias = b.broadcast_along(&bias, y.shape(), 3)?;
        let y = b.add(&y, &bias)?;
        b.relu(&y)
    })?;
    let mut hcur = b.reshape(&x, &[bsz, arch.flat_features() as i64])?;
    let dims = arch.dense_dims();
    let mut features = None;
    for (j, &(din, dout)) in dims.iter().enumerate() {
        let wt = b.arg(Shape::new([din as i64, dout as i64], dtype));
        let bias = b.arg(Shape::new([dout as i64], dtype));
        if j + 1 == dims.len() && with_features {
            features = Some(b.convert(&hcur, DType::F32));
        }
        let y = b.matmul(&hcur, &wt)?;
        let bias = b.broadcast_along(&bias, y.shape(), 1)?;
        let y = b.add(&y, &bias)?;
        hcur = if j + 1 < dims.len() { b.relu(&y)? } else { y };
    }
    let logits = b.convert(&hcur, DType::F32);
    let output = logits.shape().clone();
    let mut outs = vec![&logits];
    outs.extend(features.as_ref());
    let text = b.finish(&outs);
    Ok(Program { args: arg_shapes(arch, batch, dtype), output, text })
}

/// Argument shapes of the inference program, in order.
pub fn arg_shapes(arch: &Arch, batch: usize, dtype: DType) -> Vec<Shape> {
    let [h, w, c] = arch.input;
    let mut v = vec![Shape::new([batch as i64, h as i64, w as i64, c as i64], dtype)];
    for i in 0..arch.channels.len() {
        let (cin, cout) = (arch.conv_in(i) as i64, arch.channels[i] as i64);
        v.push(Shape::new([3, 3, cin, cout], dtype));
        v.push(Shape::new([cout], dtype));
    }
    for (din, dout) in arch.dense_dims() {
        v.push(Shape::new([din as i64, dout as i64], dtype));
        v.push(Shape::new([dout as i64], dtype));
    }
    v
}
