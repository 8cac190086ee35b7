//! A device session and a compiled model whose weights live on the device.

use std::path::Path;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::hlo::DType;
use crate::lower::Lowering;
use crate::model::{program, Arch, Network};
use crate::pjrt::{Buffer, Client, Device, DeviceChoice, Executable, Found, Plugin};

/// An open plugin, its client and the device programs run on.
#[derive(Clone)]
pub struct Session {
    pub found: Found,
    pub client: Client,
    pub device: Device,
    /// Whether programs compiled here may use the `kernel` lowering (prunebench's own CPU
    /// kernel, registered with the plugin as an XLA FFI handler): true on the CPU plugin.
    pub kernel: bool,
}

impl Session {
    /// Finds and loads the plugin for `choice` (see [`crate::pjrt::discover`]) and opens a
    /// client on its first device.
    pub fn open(choice: DeviceChoice, plugin: Option<&Path>) -> Result<Session> {
        let found = crate::pjrt::find_plugin(choice, plugin)?;
        let plugin = Plugin::load(&found.path)?;
        let client = plugin.client()?;
        let device = client
            .devices()?
            .into_iter()
            .next()
            .ok_or_else(|| Error::PjrtApi(format!("plugin {} reports no devices", found.path.display())))?;
        let platform = client.platform_name().unwrap_or_default();
        // Only the CPU plugin runs host code (`register` refuses other platforms); where it
        // fails the lowering is simply not offered.
        let kernel = crate::lower::kernel::register(&plugin, &platform).is_ok();
        Ok(Session { found, client, device, kernel })
    }

    /// `platform (device kind)`, e.g. `cpu (cpu)`.
    pub fn describe(&self) -> String {
        let platform = self.client.platform_name().unwrap_or_else(|_| "?".into());
        format!("{platform} ({})", self.device.kind())
    }

    /// Uploads f32 host data as a `dtype` buffer of `dims`.
    pub fn upload(&self, data: &[f32], dims: &[i64], dtype: DType) -> Result<Buffer> {
        match dtype {
            DType::F32 => self.client.upload(data, dims, &self.device),
            DType::F64 => {
                let v: Vec<f64> = data.iter().map(|&x| x as f64).collect();
                self.client.upload(&v, dims, &self.device)
            }
            DType::BF16 => {
                let v: Vec<half::bf16> = data.iter().map(|&x| half::bf16::from_f32(x)).collect();
                self.client.upload(&v, dims, &self.device)
            }
            other => Err(Error::invalid("upload dtype", other, "use f32, f64 or bf16")),
        }
    }

    /// Uploads a host tensor (any shape, row-major) as a `dtype` buffer of its shape.
    pub fn upload_tensor(&self, t: &ndarray::ArrayD<f32>, dtype: DType) -> Result<Buffer> {
        let dims: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
        match t.as_slice() {
            Some(data) => self.upload(data, &dims, dtype),
            None => self.upload(&t.iter().copied().collect::<Vec<f32>>(), &dims, dtype),
        }
    }

    /// Uploads f64 host data as an f64 buffer (for exact reference checks).
    pub fn upload_f64(&self, data: &[f64], dims: &[i64]) -> Result<Buffer> {
        self.client.upload(data, dims, &self.device)
    }
}

/// The inference program of one architecture, compiled for one batch size and dtype, with
/// a network's weights uploaded once.
pub struct CompiledModel {
    session: Session,
    exe: Executable,
    weights: Vec<Buffer>,
    pub arch: Arch,
    pub batch: usize,
    pub dtype: DType,
    pub plan: Vec<Lowering>,
    /// Wall seconds `PJRT_Client_Compile` took.
    pub compile_seconds: f64,
}

impl CompiledModel {
    /// Compiles the inference program for `net`'s architecture and uploads its weights.
    pub fn new(session: &Session, net: &Network, batch: usize, dtype: DType, plan: &[Lowering]) -> Result<Self> {
        let prog = program::inference(&net.arch, batch, dtype, plan)?;
        Self::from_program(session, net, batch, dtype, plan, &prog)
    }

    /// Compiles `prog`, a program with the inference program's arguments (e.g.
    /// [`program::inference_with_features`]), and uploads `net`'s weights.
    pub fn from_program(
        session: &Session,
        net: &Network,
        batch: usize,
        dtype: DType,
        plan: &[Lowering],
        prog: &program::Program,
    ) -> Result<Self> {
        let t = Instant::now();
        let exe = session.client.compile(&prog.text)?;
        let compile_seconds = t.elapsed().as_secs_f64();
        let mut m = CompiledModel {
            session: session.clone(),
            exe,
            weights: Vec::new(),
            arch: net.arch.clone(),
            batch,
            dtype,
            plan: plan.to_vec(),
            compile_seconds,
        };
        m.set_weights(net)?;
        Ok(m)
    }

    /// Replaces the weights on the device with `net`'s, BN folded (same architecture).
    pub fn set_weights(&mut self, net: &Network) -> Result<()> {
        if net.arch != self.arch {
            return Err(Error::invalid(
                "weights",
                net.arch.describe(),
                format!("this program was compiled for {}", self.arch.describe()),
            ));
        }
        self.weights = net.folded()?.iter().map(|t| self.session.upload_tensor(t, self.dtype)).collect::<Result<_>>()?;
        Ok(())
    }

    pub fn executable(&self) -> &Executable {
        &self.exe
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Dims of one input batch `[B, H, W, C]`.
    pub fn input_dims(&self) -> [i64; 4] {
        let [h, w, c] = self.arch.input;
        [self.batch as i64, h as i64, w as i64, c as i64]
    }

    /// Uploads one input batch (NHWC f32, exactly `batch` images) in the program's dtype.
    pub fn upload_input(&self, x: &[f32]) -> Result<Buffer> {
        self.session.upload(x, &self.input_dims(), self.dtype)
    }

    /// Runs one batch already on the device; returns the logits buffer `[B, classes]` f32.
    pub fn run(&self, input: &Buffer) -> Result<Buffer> {
        self.run_outputs(input)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::PjrtApi("the program returned no output".into()))
    }

    /// Runs one batch already on the device; returns every output of the program.
    pub fn run_outputs(&self, input: &Buffer) -> Result<Vec<Buffer>> {
        let mut args: Vec<&Buffer> = Vec::with_capacity(1 + self.weights.len());
        args.push(input);
        args.extend(self.weights.iter());
        self.exe.execute(&args)
    }

    /// Logits `[n, classes]` (row-major) for `n` NHWC images, batched internally; the last
    /// partial batch is padded with zeros and the padding dropped.
    pub fn predict(&self, x: &[f32], n: usize) -> Result<Vec<f32>> {
        crate::util::predict_in_batches(x, n, &self.arch.input, self.batch, self.arch.classes, |b| {
            self.run(&self.upload_input(b)?)?.to_host()
        })
    }
}
