//! OpenVINO (CPU device) through the `openvino` crate with runtime linking: `libopenvino_c`
//! is loaded on first use from [`super::find_library`].

use std::sync::OnceLock;
use std::time::Instant;

use openvino::{Core, DeviceType, ElementType, InferRequest, RwPropertyKey, Shape, Tensor};

use super::{Loaded, Runtime};
use crate::bench::latency::Timed;
use crate::error::{Error, Result};

fn err(e: impl std::fmt::Display) -> Error {
    Error::Runtime { runtime: "openvino", message: e.to_string() }
}

/// Loads `libopenvino_c` once per process; returns its version.
fn library() -> Result<&'static str> {
    static LIB: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    let r = LIB.get_or_init(|| {
        let path = super::find_library(Runtime::OpenVino).map_err(|e| e.to_string())?;
        // openvino-sys panics on a library without its functions (e.g. libopenvino.so, the
        // C++ library beside it): look for two of them first.
        // SAFETY: opening a shared library runs its initialisers, as loading it for use would.
        unsafe {
            let lib = libloading::Library::new(&path).map_err(|e| e.to_string())?;
            for sym in [&b"ov_get_openvino_version"[..], b"ov_core_create"] {
                if lib.get::<unsafe extern "C" fn()>(sym).is_err() {
                    return Err(format!(
                        "{} is not OpenVINO's C library (no {}); use libopenvino_c.so* from the wheel's openvino/libs",
                        path.display(),
                        String::from_utf8_lossy(sym)
                    ));
                }
            }
        }
        openvino_sys::library::load_from(&path).map_err(|e| format!("loading {}: {e}", path.display()))?;
        Ok(openvino::version().build_number)
    });
    r.as_deref().map_err(err)
}

/// The loaded library's version (loads it on first use).
pub fn version() -> Result<&'static str> {
    library()
}

/// An ONNX model compiled for OpenVINO's CPU device, with one infer request whose input
/// tensor holds the resident batch.
pub struct OvModel {
    request: InferRequest,
    dims: [usize; 3],
    classes: usize,
    batch: usize,
    version: String,
    load_seconds: f64,
    // Kept alive for the request.
    _compiled: openvino::CompiledModel,
    _core: Core,
}

impl OvModel {
    /// The ONNX model `bytes` reshaped to batch `batch` and compiled for the CPU, threads and
    /// precision as [`super`] documents.
    pub fn new(bytes: &[u8], input: [usize; 3], classes: usize, batch: usize) -> Result<Self> {
        let version = library()?.to_string();
        let t = Instant::now();
        let mut core = Core::new().map_err(err)?;
        let cpu = DeviceType::CPU;
        for (k, v) in [
            (RwPropertyKey::InferenceNumThreads, super::threads().to_string()),
            (RwPropertyKey::NumStreams, "1".to_string()),
            (RwPropertyKey::HintPerformanceMode, "LATENCY".to_string()),
            (RwPropertyKey::HintInferencePrecision, "f32".to_string()),
        ] {
            core.set_property(&cpu, &k, &v).map_err(|e| err(format!("setting {k:?} = {v}: {e}")))?;
        }
        let empty = Tensor::new(ElementType::U8, &Shape::new(&[0]).map_err(err)?).map_err(err)?;
        let mut model = core.read_model_from_buffer(bytes, Some(&empty)).map_err(err)?;
        let [h, w, c] = input;
        let shape = openvino::PartialShape::new_static(4, &[batch as i64, c as i64, h as i64, w as i64]).map_err(err)?;
        model.reshape_single_input(&shape).map_err(err)?;
        let mut compiled = core.compile_model(&model, cpu).map_err(err)?;
        let request = compiled.create_infer_request().map_err(err)?;
        Ok(OvModel {
            request,
            dims: input,
            classes,
            batch,
            version,
            load_seconds: t.elapsed().as_secs_f64(),
            _compiled: compiled,
            _core: core,
        })
    }

    fn input_tensor(&self, nchw: &[f32]) -> Result<Tensor> {
        let [h, w, c] = self.dims;
        let shape = Shape::new(&[self.batch as i64, c as i64, h as i64, w as i64]).map_err(err)?;
        let mut t = Tensor::new(ElementType::F32, &shape).map_err(err)?;
        t.get_data_mut::<f32>().map_err(err)?.copy_from_slice(nchw);
        Ok(t)
    }
}

impl Timed for OvModel {
    fn batch(&self) -> usize {
        self.batch
    }
    fn input_len(&self) -> usize {
        self.batch * self.dims.iter().product::<usize>()
    }
    fn set_input(&mut self, x: &[f32]) -> Result<()> {
        let t = self.input_tensor(&super::nhwc_to_nchw(x, self.batch, self.dims))?;
        self.request.set_input_tensor(&t).map_err(err)
    }
    fn call(&mut self) -> Result<()> {
        self.request.infer().map_err(err)
    }
}

impl Loaded for OvModel {
    fn timed(&mut self) -> &mut dyn Timed {
        self
    }
    fn version(&self) -> String {
        format!("openvino {}", self.version)
    }
    fn load_seconds(&self) -> f64 {
        self.load_seconds
    }
    fn predict(&mut self, x: &[f32], n: usize) -> Result<Vec<f32>> {
        let (dims, batch, classes) = (self.dims, self.batch, self.classes);
        crate::util::predict_in_batches(x, n, &dims, batch, classes, |b| {
            let t = self.input_tensor(&super::nhwc_to_nchw(b, batch, dims))?;
            self.request.set_input_tensor(&t).map_err(err)?;
            self.request.infer().map_err(err)?;
            let out = self.request.get_output_tensor_by_index(0).map_err(err)?;
            Ok(out.get_data::<f32>().map_err(err)?.to_vec())
        })
    }
}
