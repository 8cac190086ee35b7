//! Fuzzing of every parser of outside input (issue #13): safetensors checkpoints and
//! torchvision imports (header, offsets, dtypes, metadata JSON and the architecture in it),
//! `.npy` images, IDX and CIFAR binary files (raw and gzip), ImageFolder images (PNG, JPEG),
//! suite YAML, result CSVs (`report`, `merge`), `rank --truth` CSVs and the tuner's cache.
//!
//! Each target starts from valid files made by the repo's own writers (or shipped in
//! `suites/` and `results/`) and applies structured edits chosen by proptest: bit flips,
//! byte sets, truncation, removal, insertion, splicing a chunk elsewhere, binary integer
//! fields set to edge values (0, 2^31, 2^32 - 1, 2^63, ...), decimal numbers in text headers
//! replaced by huge or odd ones, and dictionary tokens. Every execution must:
//! - return (Ok or the library's typed error), never panic: proptest catches a panic and
//!   shrinks the input to a minimal failing edit list;
//! - allocate, counted by this binary's global allocator on the target's thread, no single
//!   block and no peak above `64 x input + 4 MiB` (images: plus the decode cap of the
//!   config; gzip: times deflate's 1032:1 ratio), so a header claiming 10^12 elements never
//!   allocates them;
//! - finish: a watchdog aborts the binary, printing the target and input, if one execution
//!   runs for over [`HANG_SECONDS`] (a hang guard, not a timing check).
//!
//! Executions per target: `FUZZ_CASES` (default 250, a few seconds in all); seed of the
//! case generator: `FUZZ_SEED` (default fixed). `scripts/fuzz-long.sh` runs millions. Each
//! target prints `fuzz-count target=NAME executions=N seconds=S` to stderr.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ndarray::Array4;
use ndarray_npy::WriteNpyExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError, TestRunner};
use prunebench::data::cifar::append_records;
use prunebench::data::folder::eval_transform_bytes;
use prunebench::data::idx::{gunzip_if_gz, parse_idx};
use prunebench::data::{images_from_npy_bytes, CifarKind, FolderConfig, Normalize};
use prunebench::model::arch::Form;
use prunebench::model::{checkpoint, import, Arch, Network};

// ---------------------------------------------------------------------------------------
// Allocation counting

/// The system allocator, counting on each thread the bytes live, their peak and the largest
/// single request (recorded before the request is served, so an absurd one is seen even if
/// it fails).
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// Requests above this are refused (the process then aborts naming the size) instead of
/// being served, so a parser that allocates a stated 10^12 bytes fails loudly, not by OOM.
const REFUSE_ABOVE: usize = 1 << 32;

fn note(delta: isize, request: usize) {
    let _ = LIVE.try_with(|l| {
        let v = l.get() + delta;
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
    let _ = LARGEST.try_with(|m| m.set(m.get().max(request)));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(0, l.size());
        if l.size() > REFUSE_ABOVE {
            return std::ptr::null_mut();
        }
        let p = System.alloc(l);
        if !p.is_null() {
            note(l.size() as isize, 0);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note(0, l.size());
        if l.size() > REFUSE_ABOVE {
            return std::ptr::null_mut();
        }
        let p = System.alloc_zeroed(l);
        if !p.is_null() {
            note(l.size() as isize, 0);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
        note(-(l.size() as isize), 0);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        note(0, new);
        if new > REFUSE_ABOVE {
            return std::ptr::null_mut();
        }
        let q = System.realloc(p, l, new);
        if !q.is_null() {
            note(new as isize - l.size() as isize, 0);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns its result with the peak of bytes it held at once and its largest
/// single request, both on this thread.
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    LARGEST.with(|m| m.set(0));
    let out = f();
    let peak = (PEAK.with(Cell::get) - base).max(0) as usize;
    (out, peak, LARGEST.with(Cell::get))
}

// ---------------------------------------------------------------------------------------
// Inputs: a seed file and structured edits

/// One structured edit of a seed file. Positions are taken modulo the current length.
#[derive(Clone, Debug)]
enum Edit {
    Flip { at: usize, bit: u8 },
    Byte { at: usize, value: u8 },
    Truncate { at: usize },
    Remove { at: usize, len: usize },
    Insert { at: usize, bytes: Vec<u8> },
    /// Copies `len` bytes from `from` over the bytes at `to`.
    Splice { from: usize, to: usize, len: usize },
    /// Writes `value` as a `width`-byte integer at `at` (a length field, a dimension).
    Int { at: usize, width: usize, big_endian: bool, value: u64 },
    /// Replaces the `nth` run of ASCII digits (shapes and offsets in a JSON header, numbers
    /// in YAML or CSV) with `value`.
    Number { nth: usize, value: String },
    /// Inserts a dictionary token at `at`.
    Token { at: usize, token: &'static str },
}

/// Integers at the edges of what formats and parsers handle.
const EDGE_INTS: [u64; 16] = [
    0,
    1,
    2,
    0x7f,
    0xff,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    1 << 40,
    1 << 53,
    i64::MAX as u64,
    1 << 63,
    u64::MAX,
];

/// Numbers written into text headers.
const EDGE_NUMBERS: [&str; 16] = [
    "0",
    "1",
    "-1",
    "3",
    "13",
    "4294967295",
    "4294967296",
    "1000000000000",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "1e308",
    "-0",
    "0.5",
    "NaN",
];

/// Tokens of the formats fuzzed (JSON, YAML, CSV, safetensors dtypes, npy descriptors).
const TOKENS: [&str; 28] = [
    "\"", "{", "}", "[", "]", ",", ":", "\n", "\\", "null", "true", "F32", "F64", "BF16", "F16", "I64", "U8", "BOOL",
    "\"data_offsets\"", "\"shape\"", "\"dtype\"", "'<f4'", "'>f4'", "'<f8'", "- ", "&a ", "*a", "\"\"\"",
];

fn edit() -> impl Strategy<Value = Edit> {
    let ints = prop_oneof![3 => prop::sample::select(EDGE_INTS.to_vec()), 1 => any::<u64>()];
    prop_oneof![
        3 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Edit::Flip { at, bit }),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Edit::Byte { at, value }),
        1 => any::<usize>().prop_map(|at| Edit::Truncate { at }),
        1 => (any::<usize>(), 1usize..64).prop_map(|(at, len)| Edit::Remove { at, len }),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(at, bytes)| Edit::Insert { at, bytes }),
        1 => (any::<usize>(), any::<usize>(), 1usize..256).prop_map(|(from, to, len)| Edit::Splice { from, to, len }),
        3 => (any::<usize>(), prop::sample::select(vec![1usize, 2, 4, 8]), any::<bool>(), ints)
            .prop_map(|(at, width, big_endian, value)| Edit::Int { at, width, big_endian, value }),
        3 => (any::<usize>(), prop::sample::select(EDGE_NUMBERS.to_vec())).prop_map(|(nth, v)| Edit::Number { nth, value: v.to_string() }),
        2 => (any::<usize>(), prop::sample::select(TOKENS.to_vec())).prop_map(|(at, token)| Edit::Token { at, token }),
    ]
}

/// A seed (by index), the edits to apply to it in order, and whether to fix the header's
/// length field afterwards (for formats that have one).
#[derive(Clone, Debug)]
struct Input {
    seed: usize,
    edits: Vec<Edit>,
    fix_length: bool,
}

fn input(seeds: usize) -> impl Strategy<Value = Input> {
    (0..seeds, prop::collection::vec(edit(), 0..6), any::<bool>()).prop_map(|(seed, edits, fix_length)| Input { seed, edits, fix_length })
}

/// Moves a header's length field by how much the edits grew or shrank the file, so that edits
/// inside the header (a longer number in a shape) reach the parser behind the length check.
type FixLength = fn(seed: &[u8], out: &mut [u8]);

/// safetensors: the first 8 bytes are the JSON header's length, little-endian.
fn fix_safetensors(seed: &[u8], out: &mut [u8]) {
    if seed.len() >= 8 && out.len() >= 8 {
        let n = u64::from_le_bytes(seed[..8].try_into().unwrap()) as i64 + out.len() as i64 - seed.len() as i64;
        out[..8].copy_from_slice(&(n.max(0) as u64).to_le_bytes());
    }
}

/// `.npy`: after the magic and version, the header length, 2 bytes (version 1) or 4.
fn fix_npy(seed: &[u8], out: &mut [u8]) {
    let width = if seed.get(6) == Some(&1) { 2 } else { 4 };
    if seed.len() >= 8 + width && out.len() >= 8 + width {
        let mut old = [0u8; 8];
        old[..width].copy_from_slice(&seed[8..8 + width]);
        let n = u64::from_le_bytes(old) as i64 + out.len() as i64 - seed.len() as i64;
        out[8..8 + width].copy_from_slice(&(n.max(0) as u64).to_le_bytes()[..width]);
    }
}

/// The `nth` (modulo their count) run of ASCII digits in `b`, as a range.
fn digit_run(b: &[u8], nth: usize) -> Option<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            runs.push(s..i);
        } else {
            i += 1;
        }
    }
    (!runs.is_empty()).then(|| runs.swap_remove(nth % runs.len()))
}

fn apply(seed: &[u8], edits: &[Edit], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(seed);
    for e in edits {
        let n = out.len();
        match e {
            Edit::Flip { at, bit } if n > 0 => out[at % n] ^= 1 << bit,
            Edit::Byte { at, value } if n > 0 => out[at % n] = *value,
            Edit::Truncate { at } => out.truncate(at % (n + 1)),
            Edit::Remove { at, len } if n > 0 => {
                let s = at % n;
                out.drain(s..(s + len).min(n));
            }
            Edit::Insert { at, bytes } => {
                let s = at % (n + 1);
                out.splice(s..s, bytes.iter().copied());
            }
            Edit::Splice { from, to, len } if n > 0 => {
                let (f, t) = (from % n, to % n);
                let l = (*len).min(n - f).min(n - t);
                out.copy_within(f..f + l, t);
            }
            Edit::Int { at, width, big_endian, value } if n >= *width => {
                let s = at % (n - width + 1);
                let bytes = if *big_endian { value.to_be_bytes() } else { value.to_le_bytes() };
                let b = if *big_endian { &bytes[8 - width..] } else { &bytes[..*width] };
                out[s..s + width].copy_from_slice(b);
            }
            Edit::Number { nth, value } => {
                if let Some(r) = digit_run(out, *nth) {
                    out.splice(r, value.bytes());
                }
            }
            Edit::Token { at, token } => {
                let s = at % (n + 1);
                out.splice(s..s, token.bytes());
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// The runner: counts, allocation bound, hang guard

/// An execution running longer than this is a hang: the watchdog prints it and aborts.
const HANG_SECONDS: u64 = 60;

/// Allowed bytes for an input of `len` bytes: `64 x len + 4 MiB`.
fn default_bound(len: usize) -> usize {
    64 * len + (4 << 20)
}

/// deflate's largest expansion: 1032 output bytes per input byte.
const DEFLATE_MAX_RATIO: usize = 1032;

/// Allowed bytes for a gzip input of `len` bytes: the default bound of what it may inflate
/// to (with the doubling of a growing buffer).
fn gzip_bound(len: usize) -> usize {
    default_bound(2 * DEFLATE_MAX_RATIO * len)
}

fn cases() -> u32 {
    std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(250)
}

fn seed() -> u64 {
    std::env::var("FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed_f022)
}

/// What the watchdog sees: the execution in progress and when it started.
struct Watch {
    started_ms: AtomicU64,
    busy: AtomicBool,
    done: AtomicBool,
    current: Mutex<Vec<u8>>,
}

/// Runs `target` on seeds edited by proptest-chosen edits, checking the outcome and the
/// allocation bound of each execution; prints the count; fails with the minimal input.
/// `target` returns `Err(message)` for a typed error (fine) and panics only on a fault.
fn fuzz<E: std::fmt::Debug>(
    name: &str,
    seeds: &[Vec<u8>],
    bound: fn(usize) -> usize,
    fix: Option<FixLength>,
    target: impl Fn(&[u8]) -> Result<(), E>,
) {
    for (i, s) in seeds.iter().enumerate() {
        if let Err(e) = target(s) {
            panic!("{name}: seed #{i} (unedited) must parse, got {e:?}");
        }
    }
    let t0 = Instant::now();
    let watch = Arc::new(Watch {
        started_ms: AtomicU64::new(0),
        busy: AtomicBool::new(false),
        done: AtomicBool::new(false),
        current: Mutex::new(Vec::new()),
    });
    let dog = {
        let (watch, name) = (watch.clone(), name.to_string());
        std::thread::spawn(move || {
            while !watch.done.load(Ordering::Relaxed) {
                std::thread::park_timeout(Duration::from_millis(500));
                let now = t0.elapsed().as_millis() as u64;
                if watch.busy.load(Ordering::Relaxed) && now - watch.started_ms.load(Ordering::Relaxed) > HANG_SECONDS * 1000 {
                    let input = watch.current.lock().map(|c| c.clone()).unwrap_or_default();
                    let _ = writeln!(
                        std::io::stderr(),
                        "{name}: one execution ran over {HANG_SECONDS} s (a hang); its input ({} bytes): {input:?}",
                        input.len()
                    );
                    std::process::abort();
                }
            }
        })
    };
    let executions = Cell::new(0u64);
    let config = Config {
        cases: cases(),
        rng_algorithm: RngAlgorithm::XorShift,
        rng_seed: RngSeed::Fixed(seed()),
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let buf = std::cell::RefCell::new(Vec::new());
    let result = runner.run(&input(seeds.len()), |inp| {
        executions.set(executions.get() + 1);
        let mut buf = buf.borrow_mut();
        apply(&seeds[inp.seed], &inp.edits, &mut buf);
        if let (true, Some(fix)) = (inp.fix_length, fix) {
            fix(&seeds[inp.seed], &mut buf);
        }
        if let Ok(mut c) = watch.current.lock() {
            c.clone_from(&buf);
        }
        watch.started_ms.store(t0.elapsed().as_millis() as u64, Ordering::Relaxed);
        watch.busy.store(true, Ordering::Relaxed);
        let (_, peak, largest) = measured(|| {
            let _ = target(&buf);
        });
        watch.busy.store(false, Ordering::Relaxed);
        let limit = bound(buf.len());
        if peak > limit || largest > limit {
            return Err(TestCaseError::fail(format!(
                "{name}: a {}-byte input made a {largest}-byte allocation and held {peak} bytes at once; \
                 the bound is {limit}",
                buf.len()
            )));
        }
        Ok(())
    });
    let seconds = t0.elapsed().as_secs_f64();
    watch.done.store(true, Ordering::Relaxed);
    dog.thread().unpark();
    let _ = dog.join();
    eprintln!("fuzz-count target={name} executions={} seconds={seconds:.3}", executions.get());
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

// ---------------------------------------------------------------------------------------
// Seeds

/// A VGG-16 of one or two channels per conv and tiny dense layers: a valid file of a few KB.
fn tiny(form: Form, batch_norm: bool, width: usize) -> Network {
    let (input, hidden) = match form {
        Form::Cifar => ([32, 32, 1], vec![3]),
        Form::Imagenet => ([32, 32, 3], vec![3, 2]),
        other => unreachable!("tiny() makes VGG-16 checkpoints, not {other}"),
    };
    let arch = Arch { form, input, channels: vec![width; 13], batch_norm, hidden, classes: 2 };
    let mut v = Network::init(&arch, 7);
    v.randomize_bn(8);
    v
}

fn checkpoint_seeds() -> Vec<Vec<u8>> {
    let mut meta = std::collections::BTreeMap::new();
    meta.insert("prunebench.method".to_string(), "l1 0.5".to_string());
    vec![
        checkpoint::to_bytes(&tiny(Form::Cifar, false, 1), &Default::default()).unwrap(),
        checkpoint::to_bytes(&tiny(Form::Cifar, true, 2), &meta).unwrap(),
    ]
}

fn torchvision_seeds() -> Vec<Vec<u8>> {
    vec![common::torchvision_bytes(&tiny(Form::Imagenet, false, 1)), common::torchvision_bytes(&tiny(Form::Imagenet, true, 2))]
}

fn npy_seeds() -> Vec<Vec<u8>> {
    let a = Array4::from_shape_fn((2, 3, 2, 3), |(n, y, x, c)| (n * 27 + y * 9 + x * 3 + c) as f32 * 0.5);
    let mut bytes = Vec::new();
    a.write_npy(&mut bytes).unwrap();
    vec![bytes]
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx_seeds() -> Vec<Vec<u8>> {
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5];
    images.extend((0..60u8).map(|i| i.wrapping_mul(37)));
    let labels = vec![0, 0, 8, 1, 0, 0, 0, 3, 9, 0, 4];
    vec![gzip(&images), images, labels]
}

/// Records of `kind` with labels `0, 1, ...` and varied pixels.
fn cifar_records(kind: CifarKind, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for r in 0..n {
        out.extend(std::iter::repeat(r as u8).take(kind.label_bytes()));
        out.extend((0..3072).map(|i| (i * 7 + r * 13) as u8));
    }
    out
}

fn cifar_seeds() -> Vec<Vec<u8>> {
    vec![cifar_records(CifarKind::Cifar10, 2), cifar_records(CifarKind::Cifar100, 2), gzip(&cifar_records(CifarKind::Cifar10, 2))]
}

/// The transform the image target applies: small sizes and a small decode cap, so an
/// execution is cheap and the cap is what bounds memory.
fn image_config() -> FolderConfig {
    FolderConfig { resize: 8, crop: 6, normalize: Some(Normalize::imagenet()), threads: 1, max_pixels: 1 << 16 }
}

fn image_bound(len: usize) -> usize {
    default_bound(len) + 16 * image_config().max_pixels as usize
}

fn image_seeds() -> Vec<Vec<u8>> {
    let rgb = image::RgbImage::from_fn(9, 7, |x, y| image::Rgb([(x * 28) as u8, (y * 36) as u8, ((x + y) * 16) as u8]));
    let gray = image::GrayImage::from_fn(5, 11, |x, y| image::Luma([(x * 40 + y * 20) as u8]));
    let mut out = Vec::new();
    for (img, fmt) in [
        (image::DynamicImage::ImageRgb8(rgb.clone()), image::ImageFormat::Png),
        (image::DynamicImage::ImageLuma8(gray), image::ImageFormat::Png),
        (image::DynamicImage::ImageRgb8(rgb), image::ImageFormat::Jpeg),
    ] {
        let mut b = std::io::Cursor::new(Vec::new());
        img.write_to(&mut b, fmt).unwrap();
        out.push(b.into_inner());
    }
    out
}

/// The shipped suites that need no data set on disk.
fn suite_seeds() -> Vec<Vec<u8>> {
    [
        include_str!("../suites/smoke.yaml"),
        include_str!("../suites/quickstart.yaml"),
        include_str!("../suites/gpu-latency.yaml"),
        include_str!("../suites/gpu-imagenet-latency.yaml"),
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// The header and first rows of a result CSV written by a suite run.
fn csv_seeds() -> Vec<Vec<u8>> {
    let text = include_str!("../results/quickstart.csv");
    let lines: Vec<&str> = text.lines().collect();
    vec![lines[..4].join("\n").into_bytes(), [lines[0], lines[5], lines[6]].join("\n").into_bytes()]
}

fn truth_seeds() -> Vec<Vec<u8>> {
    vec![
        b"checkpoint,top1_after,finetune_seconds\nruns/a.safetensors,0.91,12.5\nb.safetensors,0.875,\n".to_vec(),
        b"top1_after,checkpoint\n0.5,x\n".to_vec(),
    ]
}

/// A tuner cache of the current version: three entries of a real (H200) cache.
fn cache_seeds() -> Vec<Vec<u8>> {
    let v: serde_json::Value = serde_json::from_str(include_str!("../results/lowering-gpu-h200.json")).unwrap();
    let entries: serde_json::Map<String, serde_json::Value> =
        v["entries"].as_object().unwrap().iter().take(3).map(|(k, v)| {
            // The committed GPU cache predates the evidence fields: add them as a tuning now writes them.
            let mut d = v.clone();
            let o = d.as_object_mut().unwrap();
            let samples: serde_json::Map<String, serde_json::Value> =
                o["seconds"].as_object().unwrap().keys().map(|l| (l.clone(), serde_json::json!(5))).collect();
            o.insert("samples".into(), samples.into());
            o.insert("margin".into(), serde_json::json!(1.3));
            o.insert("retimed".into(), serde_json::json!([]));
            o.insert("load".into(), serde_json::json!({"other_cpu": 0.01, "steal": 0.0}));
            o.insert("busy".into(), serde_json::Value::Null);
            (k.clone(), d)
        }).collect();
    let file = serde_json::json!({ "version": prunebench::tune::CACHE_VERSION, "entries": entries });
    vec![serde_json::to_vec_pretty(&file).unwrap()]
}

fn text(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

// ---------------------------------------------------------------------------------------
// Targets

#[test]
fn fuzz_checkpoint() {
    fuzz("checkpoint", &checkpoint_seeds(), default_bound, Some(fix_safetensors), |b| checkpoint::from_bytes(b).map(drop));
}

#[test]
fn fuzz_torchvision_import() {
    fuzz("torchvision", &torchvision_seeds(), default_bound, Some(fix_safetensors), |b| import::from_torchvision_bytes(b).map(drop));
}

#[test]
fn fuzz_npy() {
    fuzz("npy", &npy_seeds(), default_bound, Some(fix_npy), |b| images_from_npy_bytes(b).map(drop));
}

#[test]
fn fuzz_idx() {
    fuzz("idx", &idx_seeds(), gzip_bound, None, |b| parse_idx(gunzip_if_gz(b.to_vec())?).map(drop));
}

#[test]
fn fuzz_cifar() {
    fuzz("cifar", &cifar_seeds(), gzip_bound, None, |b| {
        let bytes = gunzip_if_gz(b.to_vec())?;
        // The kind a file is read as comes from the command line, not the file: try both.
        let (mut images, mut labels) = (Vec::new(), Vec::new());
        let ten = append_records(&bytes, CifarKind::Cifar10, &mut images, &mut labels);
        let hundred = append_records(&bytes, CifarKind::Cifar100, &mut images, &mut labels);
        ten.or(hundred)
    });
}

#[test]
fn fuzz_image() {
    let config = image_config();
    let mut dst = vec![0f32; 3 * 6 * 6];
    let dst = Mutex::new(&mut dst);
    fuzz("image", &image_seeds(), image_bound, None, |b| eval_transform_bytes(b, &config, &mut dst.lock().unwrap()));
}

#[test]
fn fuzz_suite_yaml() {
    fuzz("suite-yaml", &suite_seeds(), default_bound, None, |b| prunebench::suite::Suite::from_text(Path::new("fuzz.yaml"), &text(b)).map(drop));
}

#[test]
fn fuzz_report_csv() {
    fuzz("report-csv", &csv_seeds(), default_bound, None, |b| prunebench::report::input::parse(Path::new("fuzz.csv"), &text(b)).map(drop));
}

#[test]
fn fuzz_merge_csv() {
    let other = csv_seeds()[1].clone();
    fuzz("merge-csv", &csv_seeds(), default_bound, None, |b| {
        let force = b.len() % 2 == 1;
        let inputs = [(PathBuf::from("a.csv"), text(b).into_owned()), (PathBuf::from("b.csv"), String::from_utf8(other.clone()).unwrap())];
        prunebench::report::merge::merge_texts(&inputs, force).map(drop)
    });
}

#[test]
fn fuzz_rank_truth() {
    fuzz("rank-truth", &truth_seeds(), default_bound, None, |b| prunebench::rank::study::parse_truth(Path::new("truth.csv"), &text(b)).map(drop));
}

#[test]
fn fuzz_tuner_cache() {
    let seeds = cache_seeds();
    assert_eq!(prunebench::tune::parse_cache(&text(&seeds[0])).len(), 3, "the seed is a cache of this version");
    fuzz("tuner-cache", &seeds, default_bound, None, |b| {
        prunebench::tune::parse_cache(&text(b));
        Ok::<(), ()>(())
    });
}

// ---------------------------------------------------------------------------------------
// The machinery itself

#[test]
fn edits_do_what_they_say() {
    let mut out = Vec::new();
    apply(b"shape [12, 3]", &[Edit::Number { nth: 0, value: "4294967296".into() }], &mut out);
    assert_eq!(out, b"shape [4294967296, 3]");
    apply(b"abcdef", &[Edit::Int { at: 1, width: 2, big_endian: true, value: 0x0102 }, Edit::Truncate { at: 4 }], &mut out);
    assert_eq!(out, b"a\x01\x02d");
    apply(b"abcdef", &[Edit::Splice { from: 0, to: 4, len: 9 }, Edit::Flip { at: 7, bit: 0 }], &mut out);
    assert_eq!(out, b"abcdab".iter().enumerate().map(|(i, &c)| if i == 1 { c ^ 1 } else { c }).collect::<Vec<u8>>());
}

#[test]
fn the_counter_sees_an_allocation_from_a_stated_size() {
    let stated = 10usize << 20;
    let (_, peak, largest) = measured(|| std::hint::black_box(vec![0u8; stated]));
    assert!(largest >= stated && peak >= stated, "largest {largest}, peak {peak}");
    assert!(largest > default_bound(1000), "a 1000-byte input may not allocate {stated} bytes");
}

// ---------------------------------------------------------------------------------------
// Faults found (and fixed): each input, minimized

/// ndarray-npy's `read_npy` allocates the header's stated size before reading: a 200-byte
/// file claiming 10^12 x 3 x 2 x 3 floats asked for 72 TB. Now the shape is checked against
/// the bytes first.
#[test]
fn found_npy_header_claiming_a_huge_shape() {
    let mut b = Vec::new();
    let seed = &npy_seeds()[0];
    apply(seed, &[Edit::Number { nth: 1, value: "1000000000000".into() }], &mut b);
    fix_npy(seed, &mut b);
    assert!(String::from_utf8_lossy(&b).contains("(1000000000000, 3, 2, 3)"), "{}", String::from_utf8_lossy(&b));
    let (r, peak, largest) = measured(|| images_from_npy_bytes(&b));
    let e = r.unwrap_err();
    assert!(e.contains("expected a little-endian float32"), "{e}");
    assert!(peak <= default_bound(b.len()) && largest <= default_bound(b.len()), "peak {peak}, largest {largest}");
    // A version-2 header length of 4 GiB - 1 is checked against the file, not allocated.
    let (r, _, largest) = measured(|| images_from_npy_bytes(b"\x93NUMPY\x02\x00\xff\xff\xff\xff{'descr'"));
    assert!(r.unwrap_err().contains("header claims 4294967295 bytes"));
    assert!(largest < 1 << 20, "{largest}");
}

/// A torchvision file whose last conv has 0 output channels divided by zero (`flat % 0`).
#[test]
fn found_torchvision_conv_with_no_channels() {
    use safetensors::tensor::{Dtype, TensorView};
    let bytes = common::torchvision_bytes(&tiny(Form::Imagenet, false, 1));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    // The last conv (features.28) with 0 filters, and the classifier reading 0 features.
    let empty: [(&str, Vec<usize>); 3] = [("features.28.weight", vec![0, 1, 3, 3]), ("features.28.bias", vec![0]), ("classifier.0.weight", vec![3, 0])];
    let views: Vec<(String, TensorView)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| match empty.iter().find(|(e, _)| *e == n) {
            Some((_, shape)) => (n, TensorView::new(Dtype::F32, shape.clone(), &[]).unwrap()),
            None => (n, t),
        })
        .collect();
    let e = import::from_torchvision_bytes(&safetensors::serialize(views, &None).unwrap()).unwrap_err();
    assert!(e.contains("features.28.weight") && e.contains("0 output channels"), "{e}");
}

/// IDX dimensions whose product overflows usize wrapped (release) or panicked (debug); with
/// 0 items the wrapped size matched an empty body and the file was accepted.
#[test]
fn found_idx_dimensions_that_overflow() {
    let mut b = vec![0, 0, 8, 4, 0, 0, 0, 0];
    b.extend([0xff; 12]);
    let e = parse_idx(b).unwrap_err();
    assert!(e.contains("overflow"), "{e}");
}

/// A 1 x 3000 image resized so its shorter side is 64 would be 64 x 192,000 (12 Mpx, 37 MB
/// of RGB) before the crop; a 1 x 60000 one at the default 256 would be 46 GB. Now the
/// resized size is checked against `max_pixels` first.
#[test]
fn found_image_whose_resize_is_huge() {
    let img = image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(1, 3000, image::Luma([9])));
    let mut b = std::io::Cursor::new(Vec::new());
    img.write_to(&mut b, image::ImageFormat::Png).unwrap();
    let b = b.into_inner();
    let config = FolderConfig { resize: 64, crop: 8, normalize: None, threads: 1, max_pixels: 1 << 20 };
    let mut dst = vec![0f32; 3 * 8 * 8];
    let (r, peak, _) = measured(|| eval_transform_bytes(&b, &config, &mut dst));
    let e = r.unwrap_err();
    assert!(e.contains("1x3000") && e.contains("64x192000") && e.contains("max_pixels"), "{e}");
    assert!(peak < 4 << 20, "{peak}");
}
