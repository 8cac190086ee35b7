//! A compiled training step whose parameters, momentum buffers and BN running statistics
//! stay on the device between steps: each step's outputs replace its state inputs.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use ndarray::{ArrayD, IxDyn};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use super::optim::OptConfig;
use super::step::{default_plan, graph_step_program, TrainProgram, FIRST_STATE_OUTPUT};
use crate::error::{Error, Result};
use crate::hlo::DType;
use crate::lower::Lowering;
use crate::model::{Arch, Network};
use crate::pjrt::{Buffer, Executable};
use crate::runtime::Session;

/// The step program of one architecture, compiled, with its state on the device.
pub struct Trainer {
    session: Session,
    exe: Executable,
    /// The architecture the program was built from ([`Trainer::network`] rebuilds it).
    arch: Arch,
    program: TrainProgram,
    /// Parameters, then momentum buffers, then running statistics (argument order).
    state: Vec<Buffer>,
    /// Steps taken so far.
    pub steps: u64,
    /// Wall seconds `PJRT_Client_Compile` took.
    pub compile_seconds: f64,
}

/// Host tensors, row-major f32, in step-program order.
type HostTensors = Vec<Vec<f32>>;

/// Host copies of `net`'s parameters and running statistics in step-program order: its
/// tensors (the graph's parameter table) split into the trainable ones and the BN running
/// statistics, each in table order.
pub(crate) fn host_state(net: &Network) -> (HostTensors, HostTensors) {
    let (mut params, mut stats) = (Vec::new(), Vec::new());
    for (p, a) in net.graph.params().iter().zip(&net.tensors) {
        let data = a.iter().copied().collect();
        if p.is_trainable() { params.push(data) } else { stats.push(data) }
    }
    (params, stats)
}

/// The name the trainer gave a VGG tensor before its state followed the graph's parameter
/// table (`features.{i}.weight` was `conv{i}.kernel`, `features.{i}.bias` `conv{i}.bias`,
/// `features.{i}.bn.gamma` / `.beta` `conv{i}.gamma` / `.beta`, `classifier.{j}.weight` /
/// `.bias` `dense{j}.weight` / `.bias`); `None` for a name of no VGG tensor.
pub fn legacy_vgg_name(name: &str) -> Option<String> {
    let parts: Vec<&str> = name.split('.').collect();
    match parts.as_slice() {
        ["features", i, "weight"] => Some(format!("conv{i}.kernel")),
        ["features", i, "bias"] => Some(format!("conv{i}.bias")),
        ["features", i, "bn", role @ ("gamma" | "beta")] => Some(format!("conv{i}.{role}")),
        ["classifier", j, role @ ("weight" | "bias")] => Some(format!("dense{j}.{role}")),
        _ => None,
    }
}

/// Downloads a float buffer of either dtype as f32.
fn download_f32(buf: &Buffer, dtype: DType) -> Result<Vec<f32>> {
    match dtype {
        DType::F64 => Ok(buf.to_host::<f64>()?.into_iter().map(|x| x as f32).collect()),
        _ => buf.to_host::<f32>(),
    }
}

fn scalar(buf: &Buffer, dtype: DType) -> Result<f32> {
    download_f32(buf, dtype)?
        .first()
        .copied()
        .ok_or_else(|| Error::PjrtApi("the step program returned an empty scalar".into()))
}

impl Trainer {
    /// Compiles the f32 step program for `net`'s architecture (with [`default_plan`]) and
    /// uploads its weights; momentum buffers start at zero.
    pub fn new(session: &Session, net: &Network, batch: usize, opt: &OptConfig) -> Result<Trainer> {
        Self::with_plan(session, net, batch, opt, DType::F32, &default_plan(&net.arch))
    }

    /// Like [`new`](Self::new) with a dtype (f32 or f64) and a lowering plan.
    pub fn with_plan(
        session: &Session,
        net: &Network,
        batch: usize,
        opt: &OptConfig,
        dtype: DType,
        plan: &[Lowering],
    ) -> Result<Trainer> {
        let program = graph_step_program(&net.graph, batch, dtype, opt, plan)?;
        let t = Instant::now();
        let exe = session.client.compile(&program.text)?;
        let compile_seconds = t.elapsed().as_secs_f64();
        let (params, stats) = host_state(net);
        let mut state = Vec::with_capacity(2 * params.len() + stats.len());
        for (data, s) in params.iter().zip(&program.params) {
            state.push(session.upload(data, &s.shape.dims, dtype)?);
        }
        for s in &program.params {
            state.push(session.upload(&vec![0.0; s.shape.numel() as usize], &s.shape.dims, dtype)?);
        }
        for (data, s) in stats.iter().zip(&program.stats) {
            state.push(session.upload(data, &s.shape.dims, dtype)?);
        }
        Ok(Trainer { session: session.clone(), exe, arch: net.arch.clone(), program, state, steps: 0, compile_seconds })
    }

    pub fn program(&self) -> &TrainProgram {
        &self.program
    }

    pub fn arch(&self) -> &Arch {
        &self.arch
    }

    pub fn batch(&self) -> usize {
        self.program.batch
    }

    /// One SGD step on `batch` NHWC images and their labels at learning rate `lr`.
    /// Returns the batch's mean loss and number of top-1 correct predictions, both computed
    /// with the parameters before the update.
    pub fn step(&mut self, images: &[f32], labels: &[i32], lr: f32) -> Result<(f32, f32)> {
        let p = &self.program;
        let [h, w, c] = p.graph.input_dims();
        let n = p.batch;
        if images.len() != n * h * w * c || labels.len() != n {
            return Err(Error::shape(
                "train step",
                format!(
                    "{} image values and {} labels for a batch of {n} images of {h}x{w}x{c}",
                    images.len(),
                    labels.len()
                ),
            ));
        }
        if let Some(&bad) = labels.iter().find(|&&l| l < 0 || l as usize >= p.graph.classes()) {
            return Err(Error::invalid("label", bad, format!("labels must lie in 0..{}", p.graph.classes())));
        }
        let x = self.session.upload(images, &[n as i64, h as i64, w as i64, c as i64], p.dtype)?;
        let y = self.session.client.upload(labels, &[n as i64], &self.session.device)?;
        let lr_buf = self.session.client.upload(&[lr], &[], &self.session.device)?;
        let mut args: Vec<&Buffer> = Vec::with_capacity(3 + self.state.len());
        args.push(&x);
        args.push(&y);
        args.push(&lr_buf);
        args.extend(self.state.iter());
        let mut out = self.exe.execute(&args)?;
        if out.len() != FIRST_STATE_OUTPUT + self.state.len() {
            return Err(Error::PjrtApi(format!(
                "the step program returned {} outputs, expected {}",
                out.len(),
                FIRST_STATE_OUTPUT + self.state.len()
            )));
        }
        let md = p.metric_dtype();
        let loss = scalar(&out[0], md)?;
        let correct = scalar(&out[1], md)?;
        self.state = out.split_off(FIRST_STATE_OUTPUT);
        self.steps += 1;
        Ok((loss, correct))
    }

    /// The current parameter called `name` (its name in the graph's parameter table, e.g.
    /// `features.0.weight`, `features.3.bn.gamma`, `classifier.0.weight`), downloaded as f32.
    pub fn param(&self, name: &str) -> Result<Vec<f32>> {
        let i = self.program.param_index(name).ok_or_else(|| {
            Error::invalid("parameter", name, "use a name of the parameter table, like features.0.weight, features.3.bn.gamma or classifier.0.weight")
        })?;
        download_f32(&self.state[i], self.program.dtype)
    }

    /// The momentum buffers, downloaded as f32, in parameter order.
    pub fn momentum(&self) -> Result<Vec<Vec<f32>>> {
        let np = self.program.params.len();
        self.state[np..2 * np].iter().map(|b| download_f32(b, self.program.dtype)).collect()
    }

    /// Writes the momentum buffers to a safetensors file (one f32 tensor per parameter,
    /// named like the parameter, e.g. `features.0.weight`), atomically.
    pub fn save_momentum(&self, path: &Path) -> Result<()> {
        let host = self.momentum()?;
        let bytes: Vec<Vec<u8>> = host.iter().map(|d| d.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
        let mut views = Vec::with_capacity(host.len());
        for (s, b) in self.program.params.iter().zip(&bytes) {
            let shape: Vec<usize> = s.shape.dims.iter().map(|&d| d as usize).collect();
            let view = TensorView::new(Dtype::F32, shape, b).map_err(|e| Error::file(path, format!("{}: {e}", s.name)))?;
            views.push((s.name.clone(), view));
        }
        let mut meta = HashMap::new();
        meta.insert("prunebench.momentum.arch".to_string(), self.arch.describe());
        let out = safetensors::serialize(views, &Some(meta)).map_err(|e| Error::file(path, e.to_string()))?;
        crate::util::write_atomic(path, &out)
    }

    /// Replaces the momentum buffers with those saved by [`save_momentum`](Self::save_momentum)
    /// for the same architecture. Files written before the step program was built from the
    /// graph name the tensors `conv{i}.kernel`, `conv{i}.gamma`, `dense{j}.weight`, ...; they
    /// are read too (see [`legacy_vgg_name`]).
    pub fn load_momentum(&mut self, path: &Path) -> Result<()> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| Error::file(path, format!("not a safetensors file: {e}")))?;
        let np = self.program.params.len();
        let mut bufs = Vec::with_capacity(np);
        for s in &self.program.params {
            let t = st
                .tensor(&s.name)
                .or_else(|e| legacy_vgg_name(&s.name).map_or(Err(e), |old| st.tensor(&old)))
                .map_err(|_| Error::file(path, format!("momentum tensor '{}' missing", s.name)))?;
            let shape: Vec<usize> = s.shape.dims.iter().map(|&d| d as usize).collect();
            if t.dtype() != Dtype::F32 || t.shape() != shape.as_slice() {
                return Err(Error::file(
                    path,
                    format!("momentum '{}' is {:?} {:?}, expected F32 {shape:?}", s.name, t.dtype(), t.shape()),
                ));
            }
            let data: Vec<f32> = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            bufs.push(self.session.upload(&data, &s.shape.dims, self.program.dtype)?);
        }
        for (slot, b) in self.state[np..2 * np].iter_mut().zip(bufs) {
            *slot = b;
        }
        Ok(())
    }

    /// Downloads the current weights and running statistics into a [`Network`].
    pub fn network(&self) -> Result<Network> {
        let p = &self.program;
        let np = p.params.len();
        let host: Vec<Vec<f32>> = self.state.iter().map(|b| download_f32(b, p.dtype)).collect::<Result<_>>()?;
        let (mut params, mut stats) = (host[..np].iter(), host[2 * np..].iter());
        let mut tensors = Vec::with_capacity(p.graph.params().len());
        for t in p.graph.params() {
            let data = if t.is_trainable() { params.next() } else { stats.next() };
            let data = data.ok_or_else(|| Error::shape("download weights", format!("no state for '{}'", t.name)))?;
            tensors.push(ArrayD::from_shape_vec(IxDyn(&t.dims), data.clone()).map_err(|e| Error::shape("download weights", format!("'{}': {e}", t.name)))?);
        }
        Network::new(self.arch.clone(), tensors)
    }
}
