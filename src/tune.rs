//! The autotuner: for each distinct conv layer shape on a device, compile and time every
//! [`Lowering`] that supports the layer ([`LayerShape::supports`]: kernel size, stride,
//! padding and groups) as a one-layer program, pick one, and remember the choice in a JSON
//! cache keyed by (plugin, platform, device kind, shape). A 1x1, strided, 7x7 or depthwise
//! conv is timed on the lowerings that handle it (at least `direct`), so it gets a measured
//! choice too.
//!
//! It sits above [`crate::runtime`] (it needs a [`Session`] to time things) and below the
//! commands; [`crate::lower`] knows nothing of devices.
//!
//! Choices are made to be stable from run to run:
//! - **Simplicity order**: direct < im2col < gemm9 < winograd < kernel (the order of
//!   [`ALL`]: a plain convolution, then one matrix product, nine of them, a transform around
//!   sixteen, and last code of our own). A lowering is chosen over a simpler one only when it
//!   is more than [`NEAR_TIE`] (5%) faster; see [`pick`].
//! - **Near ties are timed again**: when the best two are within [`NEAR_TIE`], every lowering
//!   in that band is timed again in interleaved rounds (A B, B A, A B, ...; cold weights as in
//!   the first pass), so drift in machine load falls on all of them alike, and the pick uses
//!   the new medians. Still tied, the simpler lowering wins.
//! - **Each choice keeps its evidence** in the cache ([`Decision`]): every median, the
//!   samples, the margin (runner-up time / chosen time) and the machine load during tuning
//!   ([`crate::bench::load`]: other processes' CPU and hypervisor steal from `/proc`).
//! - **Choices made on a busy machine** (load above [`BUSY_OTHER_CPU`] or [`BUSY_STEAL`]) are
//!   flagged (`busy` in the cache, shown by `prunebench tune`) and tuned again the next time
//!   they are used on a quiet machine (a half-second probe of the load), or at once with
//!   `prunebench tune --retune-busy` (`--force` re-tunes everything).
//!
//! Cache file: `$PRUNEBENCH_CACHE_DIR/lowering.json`, else `$XDG_CACHE_HOME/prunebench/...`,
//! else `~/.cache/prunebench/lowering.json`. Delete it to re-tune. A cache of another
//! version (older prunebench) is ignored with a message on stderr: everything is tuned again.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::lower::{kernel, LayerShape, Lowering, ALL};
use crate::bench::load::{Load, LoadProbe};
#[allow(unused_imports)] // named in the module docs
use crate::bench::load::{BUSY_OTHER_CPU, BUSY_STEAL};
use crate::error::{Error, Result};
use crate::hlo::{Builder, DType, Shape};
use crate::pjrt::{Buffer, Executable};
use crate::runtime::Session;

/// Lowerings whose median times are within this fraction of the fastest count as tied: they
/// are timed again, interleaved, and a lowering is only chosen over a simpler one when it is
/// more than this much faster. 5%, so noise where two lowerings are equal never flips the
/// choice back and forth.
pub const NEAR_TIE: f64 = 0.05;

/// Receives progress of a tuning run.
pub trait Progress {
    fn layer(&mut self, index: usize, total: usize, shape: &LayerShape);
    /// `timings`: median seconds per lowering measured; `choice`: the pick.
    fn result(&mut self, shape: &LayerShape, timings: &[(Lowering, f64)], choice: Lowering);
    /// The whole decision for `shape` (by default passed on to [`result`](Self::result)).
    fn decided(&mut self, shape: &LayerShape, d: &Decision) {
        let timings: Vec<(Lowering, f64)> = d.seconds.iter().map(|(l, t)| (*l, *t)).collect();
        self.result(shape, &timings, d.choice);
    }
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
    fn decided(&mut self, _shape: &LayerShape, d: &Decision) {
        let t: Vec<String> = d.seconds.iter().map(|(l, s)| format!("{l} {:.3} ms", s * 1e3)).collect();
        eprintln!("{} -> {}{}", t.join(", "), d.choice, d.flags().map(|f| format!(" ({f})")).unwrap_or_default());
    }
}

/// Reports nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn layer(&mut self, _: usize, _: usize, _: &LayerShape) {}
    fn result(&mut self, _: &LayerShape, _: &[(Lowering, f64)], _: Lowering) {}
}

/// One remembered decision, with its evidence.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Decision {
    pub choice: Lowering,
    /// Median seconds per layer of each lowering measured (after re-timing, for those timed
    /// again).
    pub seconds: BTreeMap<Lowering, f64>,
    /// Timed samples behind each median (first pass and re-timing together).
    pub samples: BTreeMap<Lowering, usize>,
    /// The fastest other lowering's seconds / the chosen one's: above 1, how much slower the
    /// runner-up was; below 1, a faster but more complex lowering lost by the near-tie rule
    /// ([`pick`]). `None` when only one lowering was measured.
    pub margin: Option<f64>,
    /// The lowerings timed again as a near tie (empty when the best two were not within
    /// [`NEAR_TIE`]).
    pub retimed: Vec<Lowering>,
    /// Machine load during the tuning of this shape (`None` where `/proc` is not readable).
    pub load: Option<Load>,
    /// Why the machine counted as busy while tuning ([`Load::busy`]); such a choice is tuned
    /// again on a quiet machine (see [`needs_tuning`]).
    pub busy: Option<String>,
}

impl Decision {
    /// What to flag about this choice, for people: `near tie (margin 1.02x)`, `tuned on a busy
    /// machine: steal 12%`; `None` when nothing.
    pub fn flags(&self) -> Option<String> {
        let mut f = Vec::new();
        if !self.retimed.is_empty() {
            let names: Vec<&str> = self.retimed.iter().map(|l| l.name()).collect();
            f.push(format!("near tie {} re-timed", names.join("/")));
        }
        if let Some(b) = &self.busy {
            f.push(format!("tuned on a busy machine: {b}"));
        }
        (!f.is_empty()).then(|| f.join("; "))
    }
}

/// How choices flagged busy are treated when they are next used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetuneBusy {
    /// Tune again if the machine is quiet now (the default).
    WhenQuiet,
    /// Tune again now, whatever the load (`prunebench tune --retune-busy`).
    Always,
    /// Keep them.
    Never,
}

/// Whether a shape must be tuned (again): it has no decision, or its decision was made on a
/// busy machine and `policy` says to re-tune now (`quiet_now` is asked only then: whether the
/// machine is quiet at the moment).
pub fn needs_tuning(decision: Option<&Decision>, policy: RetuneBusy, quiet_now: impl FnOnce() -> bool) -> bool {
    match decision {
        None => true,
        Some(d) if d.busy.is_none() => false,
        Some(_) => match policy {
            RetuneBusy::Always => true,
            RetuneBusy::Never => false,
            RetuneBusy::WhenQuiet => quiet_now(),
        },
    }
}

/// The pick among measured lowerings (median seconds): the simplest (first in [`ALL`]) whose
/// time is within [`NEAR_TIE`] of the fastest's, i.e. a lowering wins over a simpler one only
/// when it is more than 5% faster. `None` for an empty map.
pub fn pick(seconds: &BTreeMap<Lowering, f64>) -> Option<Lowering> {
    let fastest = seconds.values().copied().min_by(f64::total_cmp)?;
    // BTreeMap order is the enum's: the simplicity order.
    seconds.iter().find(|(_, &t)| t * (1.0 - NEAR_TIE) <= fastest).map(|(&l, _)| l)
}

/// The near tie to time again: every lowering within [`NEAR_TIE`] of the fastest, in
/// simplicity order, when there are at least two of them (else empty).
pub fn near_tie(seconds: &BTreeMap<Lowering, f64>) -> Vec<Lowering> {
    let Some(fastest) = seconds.values().copied().min_by(f64::total_cmp) else { return Vec::new() };
    let tied: Vec<Lowering> = seconds.iter().filter(|(_, &t)| t * (1.0 - NEAR_TIE) <= fastest).map(|(&l, _)| l).collect();
    if tied.len() >= 2 { tied } else { Vec::new() }
}

/// The fastest other lowering's seconds / `choice`'s (`None` when there is no other).
pub fn margin(seconds: &BTreeMap<Lowering, f64>, choice: Lowering) -> Option<f64> {
    let chosen = *seconds.get(&choice)?;
    let other = seconds.iter().filter(|(&l, _)| l != choice).map(|(_, &t)| t).min_by(f64::total_cmp)?;
    Some(other / chosen)
}

/// The order of lowerings within interleaved round `round`: as given on even rounds,
/// reversed on odd ones (A B, B A, ...), so neither always runs right after the other.
pub fn round_order(tied: &[Lowering], round: usize) -> Vec<Lowering> {
    let mut v = tied.to_vec();
    if round % 2 == 1 {
        v.reverse();
    }
    v
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    entries: BTreeMap<String, Decision>,
}

/// The cache file format this build reads and writes; a file of another version is ignored.
/// 5: decisions carry samples, margin, re-timed near ties and the machine load. 6: shapes
/// carry kernel size, stride, padding and groups (a version-5 key named only 3x3 stride-1
/// pad-1 convs).
pub const CACHE_VERSION: u32 = 6;

/// Why a cache file's text is not read: `Some("version 5, this build reads version 6")`, or
/// `Some("not a cache file: ...")`; `None` when it is a cache of this version.
pub fn cache_refusal(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    match serde_json::from_str::<Version>(text) {
        Ok(v) if v.version == CACHE_VERSION => match serde_json::from_str::<CacheFile>(text) {
            Ok(_) => None,
            Err(e) => Some(format!("not a cache file of version {CACHE_VERSION}: {e}")),
        },
        Ok(v) => Some(format!("version {}, this build reads version {CACHE_VERSION}", v.version)),
        Err(e) => Some(format!("not a cache file: {e}")),
    }
}

/// The decisions of a cache file's text, by key (`plugin|platform|device kind|shape`); none
/// when the text is not a cache of this version: an old or damaged cache only costs a
/// re-tune, never a failure.
pub fn parse_cache(text: &str) -> BTreeMap<String, Decision> {
    match serde_json::from_str::<CacheFile>(text) {
        Ok(c) if c.version == CACHE_VERSION => c.entries,
        _ => BTreeMap::new(),
    }
}

/// How long the load is probed to decide whether the machine is quiet enough to re-tune.
const QUIET_PROBE: Duration = Duration::from_millis(500);

/// Whether the machine is quiet now (no [`Load::busy`] reason over [`QUIET_PROBE`]); false
/// where the load cannot be read.
pub fn machine_quiet() -> bool {
    let probe = LoadProbe::start();
    std::thread::sleep(QUIET_PROBE);
    probe.finish().is_some_and(|l| l.busy().is_none())
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
    /// A near tie is timed again for at least this many interleaved rounds (one sample of
    /// each tied lowering per round)...
    pub tie_rounds: usize,
    /// ...and this many seconds.
    pub tie_seconds: f64,
    /// What to do with cached choices made on a busy machine.
    pub retune_busy: RetuneBusy,
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
                if let Some(why) = cache_refusal(&text) {
                    eprintln!("lowering cache {} ignored ({why}): its layers are tuned again", p.display());
                }
                CacheFile { version: CACHE_VERSION, entries: parse_cache(&text) }
            }
            _ => CacheFile { version: CACHE_VERSION, ..Default::default() },
        };
        let platform = session.client.platform_name().unwrap_or_default();
        let device_key = format!("{}|{platform}|{}", session.found.path.display(), session.device.kind());
        let repeats = if platform.eq_ignore_ascii_case("cpu") { 1 } else { ACCELERATOR_REPEATS };
        Ok(Tuner {
            session,
            cache_path,
            cache,
            device_key,
            min_iters: 5,
            min_seconds: 0.2,
            repeats,
            tie_rounds: 15,
            tie_seconds: 0.6,
            retune_busy: RetuneBusy::WhenQuiet,
        })
    }

    fn key(&self, shape: &LayerShape) -> String {
        format!("{}|{shape}", self.device_key)
    }

    /// The remembered decision for `shape`, if any.
    pub fn cached(&self, shape: &LayerShape) -> Option<&Decision> {
        self.cache.entries.get(&self.key(shape))
    }

    /// One lowering per layer: from the cache, or measured now (and cached). A cached choice
    /// flagged busy is measured again as [`retune_busy`](Self::retune_busy) says.
    pub fn plan(&mut self, shapes: &[LayerShape], progress: &mut dyn Progress) -> Result<Vec<Lowering>> {
        let mut quiet: Option<bool> = None;
        let policy = self.retune_busy;
        let mut todo: Vec<&LayerShape> = shapes
            .iter()
            .filter(|s| needs_tuning(self.cached(s), policy, || *quiet.get_or_insert_with(machine_quiet)))
            .collect();
        todo.sort();
        todo.dedup();
        for (i, s) in todo.iter().enumerate() {
            progress.layer(i, todo.len(), s);
            let d = self.decide(s)?;
            progress.decided(s, &d);
            let key = self.key(s);
            self.cache.entries.insert(key, d);
            self.save()?;
        }
        Ok(shapes.iter().map(|s| self.cached(s).expect("tuned above").choice).collect())
    }

    /// Measures every lowering on `shape`, times a near tie again, and picks one (see the
    /// module docs; not cached).
    pub fn decide(&self, shape: &LayerShape) -> Result<Decision> {
        let probe = LoadProbe::start();
        let inputs = self.inputs(shape)?;
        let mut exes = BTreeMap::new();
        let mut all_samples: BTreeMap<Lowering, Vec<f64>> = BTreeMap::new();
        let mut best = f64::INFINITY;
        for l in offered(shape, self.session.kernel) {
            let exe = self.compile_layer(shape, l)?;
            let s = self.time_layer(&exe, &inputs, best)?;
            best = best.min(median(&s));
            all_samples.insert(l, s);
            exes.insert(l, exe);
        }
        let first: BTreeMap<Lowering, f64> = all_samples.iter().map(|(&l, s)| (l, median(s))).collect();
        let retimed = near_tie(&first);
        let mut seconds = first;
        if !retimed.is_empty() {
            let again = self.time_interleaved(&retimed, &exes, &inputs)?;
            for (l, s) in again {
                seconds.insert(l, median(&s));
                all_samples.get_mut(&l).expect("timed above").extend(s);
            }
        }
        let choice = pick(&seconds).expect("the plain convolution supports every layer");
        let load = probe.finish();
        Ok(Decision {
            choice,
            margin: margin(&seconds, choice),
            samples: all_samples.iter().map(|(&l, s)| (l, s.len())).collect(),
            seconds,
            retimed,
            busy: load.and_then(|l| l.busy()),
            load,
        })
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
        let (n, h, w, ci) = (shape.batch as i64, shape.h as i64, shape.w as i64, shape.cin as i64);
        let kd = shape.kernel_dims().map(|d| d as i64);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut rand = |len: i64| -> Vec<f32> { (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect() };
        let x = self.session.upload(&rand(n * h * w * ci), &[n, h, w, ci], dtype)?;
        let kernel = rand(kd.iter().product());
        let kernels = (0..cold_copies(kernel.len() * dtype.size_bytes()).max(self.repeats))
            .map(|_| self.session.upload(&kernel, &kd, dtype))
            .collect::<Result<Vec<_>>>()?;
        Ok(LayerInputs { x, kernels })
    }

    /// The one-layer program of `lowering` on `shape`: [`repeats`](Self::repeats)
    /// independent copies of the layer, each on its own kernel argument.
    fn compile_layer(&self, shape: &LayerShape, lowering: Lowering) -> Result<Executable> {
        let dtype: DType = shape.dtype.parse()?;
        let (n, h, w, ci) = (shape.batch as i64, shape.h as i64, shape.w as i64, shape.cin as i64);
        let kd = shape.kernel_dims().map(|d| d as i64);
        let spec = shape.spec();
        let mut b = Builder::new();
        let x = b.arg(Shape::new([n, h, w, ci], dtype));
        let ks: Vec<_> = (0..self.repeats.max(1)).map(|_| b.arg(Shape::new(kd, dtype))).collect();
        let ys = ks.iter().map(|k| lowering.conv(&mut b, &x, k, &spec)).collect::<Result<Vec<_>>>()?;
        self.session.client.compile(&b.finish(&ys.iter().collect::<Vec<_>>()))
    }

    /// Seconds of one layer in one timed call of `exe` (the `call`-th: it takes the next
    /// kernel copies, so each call finds its weights out of cache).
    fn sample(&self, exe: &Executable, inputs: &LayerInputs, call: usize) -> Result<f64> {
        let reps = self.repeats.max(1);
        let LayerInputs { x, kernels } = inputs;
        let args: Vec<&Buffer> =
            std::iter::once(x).chain((0..reps).map(|j| &kernels[(call * reps + j) % kernels.len()])).collect();
        let t = Instant::now();
        exe.execute(&args)?;
        Ok(t.elapsed().as_secs_f64() / reps as f64)
    }

    /// Samples of one layer (seconds each), after one warm-up call. Stops early (after two
    /// samples) once the lowering is clearly slower than `best_so_far`.
    fn time_layer(&self, exe: &Executable, inputs: &LayerInputs, best_so_far: f64) -> Result<Vec<f64>> {
        self.sample(exe, inputs, 0)?; // warm-up
        let mut samples = Vec::new();
        let start = Instant::now();
        loop {
            samples.push(self.sample(exe, inputs, samples.len() + 1)?);
            let enough = samples.len() >= self.min_iters && start.elapsed().as_secs_f64() >= self.min_seconds;
            let hopeless = samples.len() >= 2 && median(&samples) > 2.0 * best_so_far;
            if enough || hopeless || samples.len() >= 1000 {
                break;
            }
        }
        Ok(samples)
    }

    /// More samples of the `tied` lowerings in interleaved rounds ([`round_order`]), at least
    /// [`tie_rounds`](Self::tie_rounds) rounds and [`tie_seconds`](Self::tie_seconds).
    fn time_interleaved(
        &self,
        tied: &[Lowering],
        exes: &BTreeMap<Lowering, Executable>,
        inputs: &LayerInputs,
    ) -> Result<BTreeMap<Lowering, Vec<f64>>> {
        let mut out: BTreeMap<Lowering, Vec<f64>> = tied.iter().map(|&l| (l, Vec::new())).collect();
        let start = Instant::now();
        let (mut round, mut call) = (0, 0);
        while round < self.tie_rounds || (start.elapsed().as_secs_f64() < self.tie_seconds && round < 1000) {
            for l in round_order(tied, round) {
                // Every call takes the next kernel copies, so the second of a round does not
                // find the first one's weights in cache.
                call += 1;
                let t = self.sample(&exes[&l], inputs, call)?;
                out.get_mut(&l).expect("tied").push(t);
            }
            round += 1;
        }
        Ok(out)
    }
}

/// The lowerings the tuner times on `shape`, in simplicity order: those that support the
/// layer ([`LayerShape::supports`]), the custom kernel only where it is registered
/// (`kernel_registered`), in f32, on maps of at most [`kernel::MAX_PIXELS`] pixels.
pub fn offered(shape: &LayerShape, kernel_registered: bool) -> Vec<Lowering> {
    let small = shape.batch * shape.h * shape.w <= kernel::MAX_PIXELS;
    ALL.into_iter()
        .filter(|&l| shape.supports(l))
        .filter(|&l| l != Lowering::Kernel || (kernel_registered && shape.dtype == "f32" && small))
        .collect()
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
    use Lowering::*;

    fn ms(v: &[(Lowering, f64)]) -> BTreeMap<Lowering, f64> {
        v.iter().map(|&(l, t)| (l, t * 1e-3)).collect()
    }

    fn decision(busy: Option<&str>) -> Decision {
        Decision {
            choice: Im2col,
            seconds: ms(&[(Direct, 2.0), (Im2col, 1.0)]),
            samples: [(Direct, 5), (Im2col, 20)].into_iter().collect(),
            margin: Some(2.0),
            retimed: vec![],
            load: Some(Load { other_cpu: 0.5, steal: 0.0 }),
            busy: busy.map(String::from),
        }
    }

    #[test]
    fn a_lowering_beats_a_simpler_one_only_by_more_than_the_tie_band() {
        // winograd 4% faster than im2col: a near tie, the simpler im2col wins.
        let s = ms(&[(Direct, 2.0), (Im2col, 1.00), (Gemm9, 1.5), (Winograd, 0.96)]);
        assert_eq!(pick(&s), Some(Im2col));
        assert_eq!(near_tie(&s), vec![Im2col, Winograd]);
        let m = margin(&s, Im2col).unwrap();
        assert!((m - 0.96).abs() < 1e-12, "the faster one lost by the tie rule: margin {m} < 1");
        // 10% faster: winograd wins, no tie, margin = runner-up / choice.
        let s = ms(&[(Direct, 2.0), (Im2col, 1.0), (Winograd, 0.9)]);
        assert_eq!(pick(&s), Some(Winograd));
        assert!(near_tie(&s).is_empty());
        assert!((margin(&s, Winograd).unwrap() - 1.0 / 0.9).abs() < 1e-12);
        // The plain convolution keeps its place unless beaten by more than 5% (as before).
        let s = ms(&[(Direct, 1.0), (Kernel, 0.951)]);
        assert_eq!(pick(&s), Some(Direct));
        assert_eq!(pick(&ms(&[(Direct, 1.0), (Kernel, 0.949)])), Some(Kernel));
        // The two runs of the issue, 'd' against 'w' at one layer: whichever measured a
        // little faster, the same pick.
        assert_eq!(pick(&ms(&[(Direct, 1.00), (Winograd, 0.97)])), pick(&ms(&[(Direct, 0.97), (Winograd, 1.00)])));
        assert_eq!(pick(&BTreeMap::new()), None);
        assert_eq!(margin(&ms(&[(Direct, 1.0)]), Direct), None);
    }

    #[test]
    fn interleaved_rounds_alternate_the_order() {
        let tied = [Im2col, Winograd, Kernel];
        assert_eq!(round_order(&tied, 0), vec![Im2col, Winograd, Kernel]);
        assert_eq!(round_order(&tied, 1), vec![Kernel, Winograd, Im2col]);
        assert_eq!(round_order(&tied, 2), vec![Im2col, Winograd, Kernel]);
    }

    #[test]
    fn busy_choices_are_retuned_as_the_policy_says() {
        let never = || -> bool { panic!("the load is probed only for a busy choice") };
        assert!(needs_tuning(None, RetuneBusy::Never, never));
        assert!(!needs_tuning(Some(&decision(None)), RetuneBusy::Always, never));
        let busy = decision(Some("other processes 50% of CPU"));
        assert!(needs_tuning(Some(&busy), RetuneBusy::WhenQuiet, || true), "quiet now: re-tune");
        assert!(!needs_tuning(Some(&busy), RetuneBusy::WhenQuiet, || false), "still busy: keep");
        assert!(needs_tuning(Some(&busy), RetuneBusy::Always, || false));
        assert!(!needs_tuning(Some(&busy), RetuneBusy::Never, || true));
        assert_eq!(busy.flags().unwrap(), "tuned on a busy machine: other processes 50% of CPU");
    }

    #[test]
    fn cache_round_trips_the_evidence_and_ignores_old_versions() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = decision(Some("steal 12%"));
        d.retimed = vec![Direct, Im2col];
        let file = CacheFile { version: CACHE_VERSION, entries: [("k".to_string(), d.clone())].into_iter().collect() };
        let path = dir.path().join("lowering.json");
        std::fs::write(&path, serde_json::to_string_pretty(&file).unwrap()).unwrap();
        let back = parse_cache(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(back["k"], d);
        assert_eq!(d.flags().unwrap(), "near tie direct/im2col re-timed; tuned on a busy machine: steal 12%");
        assert_eq!(cache_refusal(&std::fs::read_to_string(&path).unwrap()), None);
        // A version-4 cache (no evidence) is dropped: everything is tuned again.
        std::fs::write(&path, r#"{"version":4,"entries":{"k":{"choice":"direct","seconds":{"direct":0.001}}}}"#).unwrap();
        assert!(parse_cache(&std::fs::read_to_string(&path).unwrap()).is_empty());
        // So is a version-5 cache, whose keys named only 3x3 stride-1 pad-1 convs; the
        // message says which version it is.
        let v5 = serde_json::to_string(&file).unwrap().replacen(&format!("\"version\":{CACHE_VERSION}"), "\"version\":5", 1);
        assert!(parse_cache(&v5).is_empty());
        assert_eq!(cache_refusal(&v5).unwrap(), format!("version 5, this build reads version {CACHE_VERSION}"));
        assert!(cache_refusal("{ not json").unwrap().starts_with("not a cache file"));
    }

    #[test]
    fn only_the_lowerings_that_support_a_layer_are_timed() {
        use crate::graph::ConvSpec;
        let f32 = crate::hlo::DType::F32;
        let vgg = LayerShape::new(1, 4, 4, 8, 8, f32);
        assert_eq!(offered(&vgg, true), ALL.to_vec());
        assert_eq!(offered(&vgg, false), vec![Direct, Im2col, Gemm9, Winograd]);
        assert_eq!(offered(&LayerShape::new(9, 8, 8, 8, 8, f32), true), vec![Direct, Im2col, Gemm9, Winograd], "512 pixels max");
        let strided = LayerShape::of(1, 8, 8, 8, &ConvSpec::new(16, 3, 2, 1, false), f32);
        assert_eq!(offered(&strided, true), vec![Direct, Im2col, Gemm9]);
        let stem = LayerShape::of(1, 32, 32, 3, &ConvSpec::new(16, 7, 2, 3, false), f32);
        assert_eq!(offered(&stem, true), vec![Direct, Im2col, Gemm9]);
        let one = LayerShape::of(1, 8, 8, 8, &ConvSpec::new(16, 1, 1, 0, false), f32);
        assert_eq!(offered(&one, true), vec![Direct, Im2col, Gemm9]);
        let dw = LayerShape::of(1, 8, 8, 8, &ConvSpec { groups: 8, ..ConvSpec::new(8, 3, 1, 1, false) }, f32);
        assert_eq!(offered(&dw, true), vec![Direct]);
        assert_eq!(dw.to_string(), "b1 8x8 8->8 3x3/1 p1 g8 f32");
        assert_eq!(vgg.to_string(), "b1 4x4 8->8 3x3/1 p1 f32");
        assert_ne!(dw.to_string(), LayerShape::new(1, 8, 8, 8, 8, f32).to_string(), "the key tells groups apart");
    }

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
