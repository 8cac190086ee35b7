//! The autotuner: for each distinct conv layer shape on a device, compile and time every
//! applicable [`Lowering`] as a one-layer program, keep the fastest, and remember the choice
//! in a JSON cache keyed by (plugin, platform, device kind, shape).
//!
//! Cache file: `$PRUNEBENCH_CACHE_DIR/lowering.json`, else `$XDG_CACHE_HOME/prunebench/...`,
//! else `~/.cache/prunebench/lowering.json`. Delete it to re-tune.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{kernel, LayerShape, Lowering, ALL};
use crate::error::{Error, Result};
use crate::hlo::{Builder, DType, Shape};
use crate::pjrt::Buffer;
use crate::runtime::Session;

/// A candidate must beat the plain convolution by this factor to replace it, so noise on
/// layers where both are equal never flips the choice back and forth.
const MARGIN: f64 = 0.95;

/// Receives progress of a tuning run.
pub trait Progress {
    fn layer(&mut self, index: usize, total: usize, shape: &LayerShape);
    fn result(&mut self, shape: &LayerShape, timings: &[(Lowering, f64)], choice: Lowering);
}

/// Prints one line per tuned shape to stderr.
pub struct StderrProgress;

impl Progress for StderrProgress {
    fn layer(&mut self, index: usize, total: usize, shape: &LayerShape) {
        eprint!("tuning conv lowering {}/{total}: {shape} ... ", index + 1);
    }
    fn result(&mut self, _shape: &LayerShape, timings: &[(Lowering, f64)], choice: Lowering) {
        let t: Vec<String> = timings.iter().map(|(l, s)| format!("{l} {:.3} ms", s * 1e3)).collect();
        eprintln!("{} -> {choice}", t.join(", "));
    }
}

/// Reports nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn layer(&mut self, _: usize, _: usize, _: &LayerShape) {}
    fn result(&mut self, _: &LayerShape, _: &[(Lowering, f64)], _: Lowering) {}
}

/// One remembered decision.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Decision {
    pub choice: Lowering,
    /// Median seconds per call of each lowering measured.
    pub seconds: BTreeMap<Lowering, f64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    entries: BTreeMap<String, Decision>,
}

/// The cache file format this build reads and writes; a file of another version is ignored.
pub const CACHE_VERSION: u32 = 4;

/// The decisions of a cache file's text, by key (`plugin|platform|device kind|shape`); none
/// when the text is not a cache of this version: an old or damaged cache only costs a
/// re-tune, never a failure.
pub fn parse_cache(text: &str) -> BTreeMap<String, Decision> {
    match serde_json::from_str::<CacheFile>(text) {
        Ok(c) if c.version == CACHE_VERSION => c.entries,
        _ => BTreeMap::new(),
    }
}

/// Times lowerings on one device and remembers the winners.
pub struct Tuner<'a> {
    session: &'a Session,
    cache_path: Option<PathBuf>,
    cache: CacheFile,
    device_key: String,
    /// Each lowering is timed until it has this many samples...
    pub min_iters: usize,
    /// ...and this many seconds of samples (whichever is later), after one warm-up call.
    pub min_seconds: f64,
    /// Copies of the layer in each timed program (each on its own kernel copy), so that the
    /// fixed cost of one call is shared: 1 on the CPU, [`ACCELERATOR_REPEATS`] elsewhere.
    pub repeats: usize,
}

/// Layer copies per timed program off the CPU. A GPU call costs about 0.06 ms whatever it
/// runs, as much as a whole small layer: timed one per call, the H200's per-layer timings were
/// mostly that cost, and two tunings of the same network picked plans 3x apart.
pub const ACCELERATOR_REPEATS: usize = 8;

/// The default cache file.
pub fn default_cache_path() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("PRUNEBENCH_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|p| p.join("prunebench")))
        .or_else(|| env("HOME").map(|p| p.join(".cache").join("prunebench")))
        .map(|d| d.join("lowering.json"))
}

impl<'a> Tuner<'a> {
    /// A tuner using the default cache file (or none if no cache folder can be named).
    pub fn open_default(session: &'a Session) -> Result<Self> {
        Self::new(session, default_cache_path())
    }

    /// A tuner with the cache at `cache_path` (`None`: remember nothing).
    pub fn new(session: &'a Session, cache_path: Option<PathBuf>) -> Result<Self> {
        let cache = match &cache_path {
            Some(p) if p.exists() => {
                let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
                CacheFile { version: CACHE_VERSION, entries: parse_cache(&text) }
            }
            _ => CacheFile { version: CACHE_VERSION, ..Default::default() },
        };
        let platform = session.client.platform_name().unwrap_or_default();
        let device_key = format!("{}|{platform}|{}", session.found.path.display(), session.device.kind());
        let repeats = if platform.eq_ignore_ascii_case("cpu") { 1 } else { ACCELERATOR_REPEATS };
        Ok(Tuner { session, cache_path, cache, device_key, min_iters: 5, min_seconds: 0.2, repeats })
    }

    fn key(&self, shape: &LayerShape) -> String {
        format!("{}|{shape}", self.device_key)
    }

    /// The remembered decision for `shape`, if any.
    pub fn cached(&self, shape: &LayerShape) -> Option<&Decision> {
        self.cache.entries.get(&self.key(shape))
    }

    /// One lowering per layer: from the cache, or measured now (and cached).
    pub fn plan(&mut self, shapes: &[LayerShape], progress: &mut dyn Progress) -> Result<Vec<Lowering>> {
        let mut todo: Vec<&LayerShape> = shapes.iter().filter(|s| self.cached(s).is_none()).collect();
        todo.sort();
        todo.dedup();
        for (i, s) in todo.iter().enumerate() {
            progress.layer(i, todo.len(), s);
            let d = self.decide(s)?;
            let timings: Vec<(Lowering, f64)> = d.seconds.iter().map(|(l, t)| (*l, *t)).collect();
            progress.result(s, &timings, d.choice);
            let key = self.key(s);
            self.cache.entries.insert(key, d);
            self.save()?;
        }
        Ok(shapes.iter().map(|s| self.cached(s).expect("tuned above").choice).collect())
    }

    /// Measures every lowering on `shape` and picks one (not cached).
    pub fn decide(&self, shape: &LayerShape) -> Result<Decision> {
        let inputs = self.inputs(shape)?;
        let mut seconds = BTreeMap::new();
        let mut best = f64::INFINITY;
        for l in ALL.into_iter().filter(|&l| self.offers(l, shape)) {
            let t = self.time_layer(shape, &inputs, l, best)?;
            best = best.min(t);
            seconds.insert(l, t);
        }
        let reference = seconds[&Lowering::Direct];
        let mut choice = Lowering::Direct;
        let mut choice_t = reference;
        for (&l, &t) in &seconds {
            if l != Lowering::Direct && t < reference * MARGIN && t < choice_t {
                choice = l;
                choice_t = t;
            }
        }
        Ok(Decision { choice, seconds })
    }

    /// Whether `lowering` is a candidate for `shape` on this session: the custom kernel only
    /// where it is registered, in f32, on maps of at most [`kernel::MAX_PIXELS`] pixels.
    fn offers(&self, lowering: Lowering, shape: &LayerShape) -> bool {
        lowering != Lowering::Kernel
            || (self.session.kernel && shape.dtype == "f32" && shape.batch * shape.h * shape.w <= kernel::MAX_PIXELS)
    }

    fn save(&self) -> Result<()> {
        if let Some(p) = &self.cache_path {
            let text = serde_json::to_string_pretty(&self.cache).expect("cache serialises");
            crate::util::write_atomic(p, text.as_bytes())?;
        }
        Ok(())
    }

    /// Random inputs of `shape` on the device, shared by every lowering timed on it.
    fn inputs(&self, shape: &LayerShape) -> Result<LayerInputs> {
        let dtype: DType = shape.dtype.parse()?;
        let (n, h, w, ci, co) = (shape.batch as i64, shape.h as i64, shape.w as i64, shape.cin as i64, shape.cout as i64);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut rand = |len: i64| -> Vec<f32> { (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect() };
        let x = self.session.upload(&rand(n * h * w * ci), &[n, h, w, ci], dtype)?;
        let kernel = rand(9 * ci * co);
        let kernels = (0..cold_copies(kernel.len() * dtype.size_bytes()).max(self.repeats))
            .map(|_| self.session.upload(&kernel, &[3, 3, ci, co], dtype))
            .collect::<Result<Vec<_>>>()?;
        Ok(LayerInputs { x, kernels })
    }

    /// Median seconds of one layer of `lowering` on `shape`: each timed call runs
    /// [`repeats`](Self::repeats) independent copies of the layer, each on its own kernel
    /// copy, and counts for a share. Stops early (after two samples) once the lowering is
    /// clearly slower than `best_so_far`.
    fn time_layer(&self, shape: &LayerShape, inputs: &LayerInputs, lowering: Lowering, best_so_far: f64) -> Result<f64> {
        let dtype: DType = shape.dtype.parse()?;
        let (n, h, w, ci, co) = (shape.batch as i64, shape.h as i64, shape.w as i64, shape.cin as i64, shape.cout as i64);
        let reps = self.repeats.max(1);
        let mut b = Builder::new();
        let x = b.arg(Shape::new([n, h, w, ci], dtype));
        let ks: Vec<_> = (0..reps).map(|_| b.arg(Shape::new([3, 3, ci, co], dtype))).collect();
        let ys = ks.iter().map(|k| lowering.emit(&mut b, &x, k)).collect::<Result<Vec<_>>>()?;
        let exe = self.session.client.compile(&b.finish(&ys.iter().collect::<Vec<_>>()))?;
        let LayerInputs { x: xb, kernels } = inputs;
        let args = |call: usize| -> Vec<&Buffer> {
            std::iter::once(xb).chain((0..reps).map(|j| &kernels[(call * reps + j) % kernels.len()])).collect()
        };
        exe.execute(&args(0))?; // warm-up
        let mut samples = Vec::new();
        let start = Instant::now();
        loop {
            let a = args(samples.len() + 1);
            let t = Instant::now();
            exe.execute(&a)?;
            samples.push(t.elapsed().as_secs_f64() / reps as f64);
            let enough = samples.len() >= self.min_iters && start.elapsed().as_secs_f64() >= self.min_seconds;
            let hopeless = samples.len() >= 2 && median(&samples) > 2.0 * best_so_far;
            if enough || hopeless || samples.len() >= 1000 {
                break;
            }
        }
        Ok(median(&samples))
    }
}

/// A layer's input and the kernel copies its timed calls cycle through.
struct LayerInputs {
    x: Buffer,
    kernels: Vec<Buffer>,
}

/// Bytes of kernels a layer's timed calls cycle through, so that each call finds its kernel
/// out of cache, as it is in a network whose weights (59 MB for VGG-16) stream through the
/// caches once per call. Timed hot, a 2x2 or 4x4 layer with 9 MB of weights looks up to
/// twice as fast as it runs in the network, and the choice can differ.
const COLD_BYTES: usize = 96 << 20;

/// How many copies of a kernel of `bytes` to cycle through: enough for [`COLD_BYTES`], at
/// most 64 (tiny kernels are cheap to fetch anyway).
fn cold_copies(bytes: usize) -> usize {
    COLD_BYTES.div_ceil(bytes.max(1)).clamp(1, 64)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 { s[m] } else { (s[m - 1] + s[m]) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cold_copies_cover_the_eviction_budget_within_bounds() {
        let vgg_512 = 9 * 512 * 512 * 4; // one full-width 512->512 kernel, f32
        assert_eq!(cold_copies(vgg_512), 11);
        assert!(cold_copies(vgg_512) * vgg_512 >= COLD_BYTES);
        assert_eq!(cold_copies(9 * 3 * 64 * 4), 64, "tiny kernels stop at 64 copies");
        assert_eq!(cold_copies(COLD_BYTES * 2), 1);
        assert_eq!(cold_copies(0), 64);
    }
}
