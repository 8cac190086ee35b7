//! The features program: the inference program with a second output, the penultimate
//! activations (the input of the last dense layer: the flattened conv features when the head
//! has no hidden layer, else the last hidden layer after its ReLU).
//!
//! Arguments are exactly the inference program's ([`program::arg_shapes`]); outputs are the
//! logits `[B, classes]` and the features `[B, d]`, both f32.

use std::time::Instant;

use ndarray::Array2;

use super::measure::Probe;
use crate::data::{Batches, Dataset, LastBatch};
use crate::error::{Error, Result};
use crate::hlo::{Builder, DType, Shape};
use crate::lower::Lowering;
use crate::model::program::{self, Program};
use crate::model::{Arch, Vgg};
use crate::pjrt::{Buffer, Executable};
use crate::runtime::Session;

/// Width of the penultimate features of `arch`.
pub fn feature_dim(arch: &Arch) -> usize {
    arch.dense_dims().last().expect("a VGG head has at least the classifier").0
}

/// Builds the features program of `arch` for batches of `batch` in `dtype`, conv `i`
/// lowered as `plan[i]`. `Program::output` is the logits' shape.
pub fn features_program(arch: &Arch, batch: usize, dtype: DType, plan: &[Lowering]) -> Result<Program> {
    arch.validate()?;
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
    let mut x = b.arg(Shape::new([bsz, h as i64, w as i64, c as i64], dtype));
    for (i, lowering) in plan.iter().enumerate() {
        let (cin, cout) = (arch.conv_in(i) as i64, arch.channels[i] as i64);
        let k = b.arg(Shape::new([3, 3, cin, cout], dtype));
        let bias = b.arg(Shape::new([cout], dtype));
        let y = lowering.emit(&mut b, &x, &k)?;
        let bias = b.broadcast_along(&bias, y.shape(), 3)?;
        let y = b.add(&y, &bias)?;
        let y = b.relu(&y)?;
        x = if Arch::pools_after(i) { b.max_pool2(&y)? } else { y };
    }
    let mut hcur = b.reshape(&x, &[bsz, arch.flat_features() as i64])?;
    let dims = arch.dense_dims();
    let mut feats = hcur.clone();
    for (j, &(din, dout)) in dims.iter().enumerate() {
        let wt = b.arg(Shape::new([din as i64, dout as i64], dtype));
        let bias = b.arg(Shape::new([dout as i64], dtype));
        if j + 1 == dims.len() {
            feats = hcur.clone();
        }
        let y = b.matmul(&hcur, &wt)?;
        let bias = b.broadcast_along(&bias, y.shape(), 1)?;
        let y = b.add(&y, &bias)?;
        hcur = if j + 1 < dims.len() { b.relu(&y)? } else { y };
    }
    let logits = b.convert(&hcur, DType::F32);
    let feats = b.convert(&feats, DType::F32);
    let output = logits.shape().clone();
    let text = b.finish(&[&logits, &feats]);
    Ok(Program { args: program::arg_shapes(arch, batch, dtype), output, text })
}

/// A compiled features program with one network's weights on the device.
pub struct FeatureModel {
    session: Session,
    exe: Executable,
    weights: Vec<Buffer>,
    pub arch: Arch,
    pub batch: usize,
    pub dtype: DType,
    pub compile_seconds: f64,
}

impl FeatureModel {
    pub fn new(session: &Session, vgg: &Vgg, batch: usize, dtype: DType, plan: &[Lowering]) -> Result<Self> {
        let prog = features_program(&vgg.arch, batch, dtype, plan)?;
        let t = Instant::now();
        let exe = session.client.compile(&prog.text)?;
        let compile_seconds = t.elapsed().as_secs_f64();
        let weights = vgg
            .inference_weights()
            .iter()
            .map(|(dims, data)| session.upload(data, dims, dtype))
            .collect::<Result<_>>()?;
        Ok(FeatureModel { session: session.clone(), exe, weights, arch: vgg.arch.clone(), batch, dtype, compile_seconds })
    }

    /// Replaces the weights (same architecture), e.g. after BN recalibration.
    pub fn set_weights(&mut self, vgg: &Vgg) -> Result<()> {
        if vgg.arch != self.arch {
            return Err(Error::invalid("weights", vgg.arch.describe(), format!("compiled for {}", self.arch.describe())));
        }
        self.weights = vgg
            .inference_weights()
            .iter()
            .map(|(dims, data)| self.session.upload(data, dims, self.dtype))
            .collect::<Result<_>>()?;
        Ok(())
    }

    /// Logits and features of every image of `data` (already normalised) as a [`Probe`].
    pub fn probe(&self, data: &Dataset) -> Result<Probe> {
        if data.n == 0 {
            return Err(Error::invalid("probe set", format!("{} (0 images)", data.name), "score on at least a few labelled images"));
        }
        if data.classes != self.arch.classes {
            return Err(Error::invalid(
                "dataset",
                format!("{} ({} classes)", data.name, data.classes),
                format!("the candidate has {} outputs; rank candidates on the dataset they were trained for", self.arch.classes),
            ));
        }
        let (k, d) = (self.arch.classes, feature_dim(&self.arch));
        let [h, w, c] = self.arch.input;
        let dims = [self.batch as i64, h as i64, w as i64, c as i64];
        let mut logits = Vec::with_capacity(data.n * k);
        let mut feats = Vec::with_capacity(data.n * d);
        for b in Batches::new(data, self.batch, LastBatch::Pad)? {
            let input = self.session.upload(&b.images, &dims, self.dtype)?;
            let mut args: Vec<&Buffer> = vec![&input];
            args.extend(self.weights.iter());
            let out = self.exe.execute(&args)?;
            if out.len() != 2 {
                return Err(Error::PjrtApi(format!("the features program returned {} outputs, expected 2", out.len())));
            }
            let l: Vec<f32> = out[0].to_host()?;
            let f: Vec<f32> = out[1].to_host()?;
            logits.extend(l[..b.valid * k].iter().map(|&v| v as f64));
            feats.extend(f[..b.valid * d].iter().map(|&v| v as f64));
        }
        let logits = Array2::from_shape_vec((data.n, k), logits).expect("n x classes");
        let feats = Array2::from_shape_vec((data.n, d), feats).expect("n x d");
        Probe::new(feats, logits, data.labels.iter().map(|&l| l as usize).collect(), data.classes)
    }
}
