//! `kernel`: the 3x3 pad-1 convolution as a call to prunebench's own CPU kernel, for maps of
//! few pixels, where every XLA lowering is bound by how it streams the weights.
//!
//! At batch 1 the 4x4 and 2x2 layers of VGG-16 multiply 16 or 4 pixels by 9.4 MB of f32
//! weights each. XLA's matrix-product libraries (Eigen, XNNPACK) re-pack the whole weight
//! matrix on every call and reach 10-15 GB/s; the 4x4 layers also do 31% of their multiplies
//! (56% at 2x2) against the zero padding. This kernel reads each weight row once, straight
//! from the HWIO layout, and multiplies it only into the output pixels whose input pixel for
//! that tap is inside the map:
//!
//! - the 9C weight rows are split in two halves (taps x input channels), each with its own
//!   `[pixels, O]` accumulator, summed at the end; the second half runs on XLA's own compute
//!   thread pool (`XLA_FFI_ThreadPool_Schedule`), so no thread of ours competes with XLA's,
//!   and if that pool is busy the calling thread takes it too;
//! - each half goes through its rows in chunks of [`CHUNK_ROWS`] rows of one tap: a chunk is
//!   first read through in order (so the hardware prefetchers stream it from memory), then a
//!   micro-kernel sweeps it for every block of 16 output channels and group of up to 6 valid
//!   pixels, with the 12 accumulators in AVX2 registers.
//!
//! It is emitted as `stablehlo.custom_call @prunebench_conv3x3` (typed XLA FFI; f32, and f64
//! through plain loops for exact checks) and works where the handler is registered: the CPU
//! plugin. The tuner offers it on maps of at most [`MAX_PIXELS`] pixels (batch x H x W). Its
//! gradients use the im2col forms.

use std::cell::UnsafeCell;
use std::collections::BTreeMap;
use std::os::raw::c_void;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::conv_dims;
use crate::error::{Error, Result};
use crate::hlo::{Builder, DType, Value};
use crate::pjrt::xla_ffi::{self, CallFrame, FfiError};
use crate::pjrt::Plugin;

/// The custom-call target the handler is registered under.
pub const TARGET: &str = "prunebench_conv3x3";

/// Largest `batch x H x W` the tuner tries the kernel on: beyond it the pixels no longer fit
/// the accumulators' cache budget and the GEMM libraries win anyway.
pub const MAX_PIXELS: usize = 512;

/// Emits the custom call. f32, or f64 (a plain single-threaded loop, for exact checks).
pub fn emit(b: &mut Builder, x: &Value, kernel: &Value) -> Result<Value> {
    let (_, _, _, _, o) = conv_dims("kernel", x, kernel)?;
    if !matches!(x.dtype(), DType::F32 | DType::F64) || kernel.dtype() != x.dtype() {
        return Err(Error::shape(
            "kernel",
            format!(
                "the kernel lowering takes f32 (or f64, for checks), got {} x {}; use im2col or direct",
                x.dtype(),
                kernel.dtype()
            ),
        ));
    }
    let mut out = x.dims().to_vec();
    out[3] = o;
    Ok(b.custom_call(TARGET, &[x, kernel], x.shape().with_dims(out)))
}

/// Registers the handler with `plugin` for platform `platform` (once per plugin file; later
/// calls return the first outcome). Only the CPU platform is supported: elsewhere this is an
/// error and the lowering is not offered.
pub fn register(plugin: &Plugin, platform: &str) -> Result<()> {
    static DONE: Mutex<BTreeMap<PathBuf, std::result::Result<(), String>>> = Mutex::new(BTreeMap::new());
    if !platform.eq_ignore_ascii_case("cpu") && !platform.eq_ignore_ascii_case("host") {
        return Err(Error::PjrtApi(format!("the kernel lowering runs on the CPU plugin only, not on {platform}")));
    }
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    let outcome = done
        .entry(plugin.path().to_path_buf())
        .or_insert_with(|| plugin.register_ffi_handler(TARGET, "Host", handler).map_err(|e| e.to_string()));
    outcome.clone().map_err(Error::PjrtApi)
}

/// The XLA FFI entry point.
unsafe extern "C" fn handler(frame: *mut CallFrame) -> *mut FfiError {
    if xla_ffi::answer_metadata(frame) || (*frame).stage != xla_ffi::STAGE_EXECUTE {
        return std::ptr::null_mut();
    }
    let outcome = std::panic::catch_unwind(|| execute(frame));
    match outcome {
        Ok(Ok(())) => std::ptr::null_mut(),
        Ok(Err(message)) => xla_ffi::error(frame, &format!("{TARGET}: {message}")),
        Err(_) => xla_ffi::error(frame, &format!("{TARGET}: the kernel panicked")),
    }
}

unsafe fn execute(frame: *mut CallFrame) -> std::result::Result<(), String> {
    let x = xla_ffi::arg(frame, 0)?;
    let k = xla_ffi::arg(frame, 1)?;
    let y = xla_ffi::ret(frame, 0)?;
    let shape = Shape::check(&x.dims, &k.dims, &y.dims)?;
    if x.dtype != k.dtype || x.dtype != y.dtype {
        return Err(format!("element types differ: {} x {} -> {}", x.dtype, k.dtype, y.dtype));
    }
    if x.dtype == xla_ffi::DTYPE_F64 {
        let xs = std::slice::from_raw_parts(x.data as *const f64, x.len());
        let ks = std::slice::from_raw_parts(k.data as *const f64, k.len());
        let ys = std::slice::from_raw_parts_mut(y.data as *mut f64, y.len());
        conv3x3_f64(shape, xs, ks, ys);
        return Ok(());
    }
    if x.dtype != xla_ffi::DTYPE_F32 {
        return Err(format!("element type {} is not supported (f32 and f64 are)", x.dtype));
    }
    let xs = std::slice::from_raw_parts(x.data as *const f32, x.len());
    let ks = std::slice::from_raw_parts(k.data as *const f32, k.len());
    let ys = std::slice::from_raw_parts_mut(y.data as *mut f32, y.len());
    let parts = if shape.rows() * shape.o >= PARALLEL_MIN_WEIGHTS { 2 } else { 1 };
    let job = Arc::new(Job::new(shape, xs, ks, parts));
    if parts > 1 {
        let helper = Arc::into_raw(job.clone()) as *mut c_void;
        if !xla_ffi::schedule(frame, help, helper) {
            drop(Arc::from_raw(helper as *const Job));
        }
    }
    job.run_parts();
    job.wait();
    if job.failed.load(Ordering::Acquire) {
        return Err("the kernel panicked".into());
    }
    job.sum_into(ys);
    Ok(())
}

/// Weight elements (9C x O) from which the rows are split over two threads.
const PARALLEL_MIN_WEIGHTS: usize = 1 << 16;

unsafe extern "C" fn help(data: *mut c_void) {
    let job = Arc::from_raw(data as *const Job);
    job.run_parts();
}

/// A convolution's sizes: input `[n, h, w, c]`, kernel `[3, 3, c, o]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub o: usize,
}

impl Shape {
    fn check(x: &[i64], k: &[i64], y: &[i64]) -> std::result::Result<Shape, String> {
        let ok = x.len() == 4 && k.len() == 4 && y.len() == 4 && k[0] == 3 && k[1] == 3 && k[2] == x[3];
        let ok = ok && y[..3] == x[..3] && y[3] == k[3] && x.iter().chain(k).all(|&d| d > 0);
        if !ok {
            return Err(format!("expected NHWC x [3,3,C,O] -> [N,H,W,O], got {x:?} x {k:?} -> {y:?}"));
        }
        let u = |d: i64| d as usize;
        Ok(Shape { n: u(x[0]), h: u(x[1]), w: u(x[2]), c: u(x[3]), o: u(k[3]) })
    }

    fn pixels(&self) -> usize {
        self.n * self.h * self.w
    }

    fn rows(&self) -> usize {
        9 * self.c
    }

    /// For each tap `(dy, dx)`, the `(output pixel, input pixel)` pairs inside the map.
    fn taps(&self) -> Vec<Vec<(u32, u32)>> {
        let mut taps = vec![Vec::new(); 9];
        for (t, pairs) in taps.iter_mut().enumerate() {
            let (dy, dx) = ((t / 3) as isize - 1, (t % 3) as isize - 1);
            for n in 0..self.n {
                for i in 0..self.h {
                    for j in 0..self.w {
                        let (si, sj) = (i as isize + dy, j as isize + dx);
                        if si >= 0 && sj >= 0 && (si as usize) < self.h && (sj as usize) < self.w {
                            let p = (n * self.h + i) * self.w + j;
                            let q = (n * self.h + si as usize) * self.w + sj as usize;
                            pairs.push((p as u32, q as u32));
                        }
                    }
                }
            }
        }
        taps
    }
}

/// One call's work, shared with the helper task: the weight rows split into `parts` ranges,
/// each summed into its own accumulator.
struct Job {
    shape: Shape,
    x: *const f32,
    k: *const f32,
    taps: Vec<Vec<(u32, u32)>>,
    parts: usize,
    next: AtomicUsize,
    done: AtomicUsize,
    failed: AtomicBool,
    acc: Vec<UnsafeCell<Vec<f32>>>,
}

// SAFETY: `x` and `k` are only read, and only while the call that made the job waits for
// every claimed part (see `wait`); each accumulator is written by the one thread that
// claimed its part.
unsafe impl Send for Job {}
unsafe impl Sync for Job {}

impl Job {
    fn new(shape: Shape, x: &[f32], k: &[f32], parts: usize) -> Job {
        let acc = (0..parts).map(|_| UnsafeCell::new(vec![0f32; shape.pixels() * shape.o])).collect();
        Job {
            shape,
            x: x.as_ptr(),
            k: k.as_ptr(),
            taps: shape.taps(),
            parts,
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
            acc,
        }
    }

    /// Claims and computes parts until none is left.
    fn run_parts(&self) {
        loop {
            let part = self.next.fetch_add(1, Ordering::AcqRel);
            if part >= self.parts {
                return;
            }
            let rows = self.shape.rows();
            let (r0, r1) = (rows * part / self.parts, rows * (part + 1) / self.parts);
            // SAFETY: part `part` was claimed by this thread alone; `x`/`k` are valid while
            // the owning call waits (it cannot return before `done` counts this part, which
            // happens even if the part panics).
            let computed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe {
                let s = self.shape;
                let x = std::slice::from_raw_parts(self.x, s.pixels() * s.c);
                let k = std::slice::from_raw_parts(self.k, s.rows() * s.o);
                accumulate(s, &self.taps, x, k, r0, r1, &mut *self.acc[part].get());
            }));
            if computed.is_err() {
                self.failed.store(true, Ordering::Release);
            }
            self.done.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Waits until every part is computed (a part claimed by the helper is running).
    fn wait(&self) {
        let mut spins = 0u32;
        while self.done.load(Ordering::Acquire) < self.parts {
            spins += 1;
            if spins < 1 << 14 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    fn sum_into(&self, y: &mut [f32]) {
        // SAFETY: every part is done; no thread writes the accumulators any more.
        let first = unsafe { &*self.acc[0].get() };
        y.copy_from_slice(first);
        for a in &self.acc[1..] {
            let a = unsafe { &*a.get() };
            for (yi, ai) in y.iter_mut().zip(a) {
                *yi += ai;
            }
        }
    }
}

/// Weight rows per chunk: a chunk (64 rows x O floats; 128 KB at O = 512) stays in L2 while
/// every pixel group and output block passes over it.
const CHUNK_ROWS: usize = 64;

/// `acc[p, :] += x[q, c] * k[t, c, :]` for weight rows `r0..r1` (row `r` = tap `r / C`,
/// channel `r % C`) and every valid `(p, q)` pair of the row's tap.
pub fn accumulate(s: Shape, taps: &[Vec<(u32, u32)>], x: &[f32], k: &[f32], r0: usize, r1: usize, acc: &mut [f32]) {
    assert!(x.len() == s.pixels() * s.c && k.len() == s.rows() * s.o && acc.len() == s.pixels() * s.o);
    assert!(r0 <= r1 && r1 <= s.rows());
    #[cfg(target_arch = "x86_64")]
    let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    let avx2 = false;
    let mut r = r0;
    while r < r1 {
        let (t, c) = (r / s.c, r % s.c);
        let len = (s.c - c).min(r1 - r).min(CHUNK_ROWS);
        let rows = &k[r * s.o..(r + len) * s.o];
        if avx2 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX2 and FMA; every index is checked against the slices.
            unsafe {
                chunk_avx2(s, &taps[t], x, c, len, rows, acc)
            };
        } else {
            chunk_scalar(s, &taps[t], x, c, rows, acc, 0);
        }
        r += len;
    }
}

/// The rows `rows` (channels `c..` of one tap) against the tap's valid pixels, output
/// channels `from..O`.
fn chunk_scalar(s: Shape, pairs: &[(u32, u32)], x: &[f32], c: usize, rows: &[f32], acc: &mut [f32], from: usize) {
    let len = rows.len() / s.o;
    for &(p, q) in pairs {
        let (p, q) = (p as usize, q as usize);
        let out = &mut acc[p * s.o + from..(p + 1) * s.o];
        for j in 0..len {
            let a = x[q * s.c + c + j];
            for (o, wv) in out.iter_mut().zip(&rows[j * s.o + from..(j + 1) * s.o]) {
                *o += a * wv;
            }
        }
    }
}

/// The AVX2 form of [`chunk_scalar`]: for each block of 16 output channels and each group of
/// up to 6 pixels, 12 accumulators stay in registers over all `len` rows (two weight vectors
/// and one broadcast input per row and pixel).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn chunk_avx2(
    s: Shape,
    pairs: &[(u32, u32)],
    x: &[f32],
    c: usize,
    len: usize,
    rows: &[f32],
    acc: &mut [f32],
) {
    use std::arch::x86_64::*;
    assert!(rows.len() == len * s.o && c + len <= s.c);
    assert!(pairs.iter().all(|&(p, q)| (p as usize) < s.pixels() && (q as usize) < s.pixels()));
    let o16 = s.o / 16 * 16;
    // Read one float of every cache line of the chunk in order first: the hardware
    // prefetchers then stream the rows from memory at full speed, where the column-wise
    // walk below would miss once per row (measured: 1.3 vs 2.0 ms for a cold 4x4 512->512
    // layer on one thread, better than software prefetching of the next chunk).
    let mut touched = _mm_setzero_ps();
    for line in rows.chunks(16) {
        touched = _mm_add_ss(touched, _mm_load_ss(&line[0]));
    }
    std::hint::black_box(touched);
    for ob in (0..o16).step_by(16) {
        let m = Micro { s, x: x.as_ptr(), c, len, w: rows.as_ptr().add(ob), acc: acc.as_mut_ptr(), ob };
        for g in pairs.chunks(6) {
            match g.len() {
                6 => micro::<6>(&m, g),
                5 => micro::<5>(&m, g),
                4 => micro::<4>(&m, g),
                3 => micro::<3>(&m, g),
                2 => micro::<2>(&m, g),
                _ => micro::<1>(&m, g),
            }
        }
    }
    if o16 < s.o {
        chunk_scalar(s, pairs, x, c, rows, acc, o16);
    }
}

/// What one micro-kernel call reads and writes: rows `c..c+len` (`w` points at row 0,
/// output channel `ob`), accumulators at output channel `ob`.
#[cfg(target_arch = "x86_64")]
struct Micro {
    s: Shape,
    x: *const f32,
    c: usize,
    len: usize,
    w: *const f32,
    acc: *mut f32,
    ob: usize,
}

/// `P` pixels x 16 output channels += their `len` inputs x the `len` weight rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn micro<const P: usize>(m: &Micro, pairs: &[(u32, u32)]) {
    use std::arch::x86_64::*;
    let out: [*mut f32; P] = std::array::from_fn(|i| m.acc.add(pairs[i].0 as usize * m.s.o + m.ob));
    let inp: [*const f32; P] = std::array::from_fn(|i| m.x.add(pairs[i].1 as usize * m.s.c + m.c));
    let mut lo: [__m256; P] = std::array::from_fn(|i| _mm256_loadu_ps(out[i]));
    let mut hi: [__m256; P] = std::array::from_fn(|i| _mm256_loadu_ps(out[i].add(8)));
    let mut w = m.w;
    for kk in 0..m.len {
        let w0 = _mm256_loadu_ps(w);
        let w1 = _mm256_loadu_ps(w.add(8));
        for i in 0..P {
            let a = _mm256_broadcast_ss(&*inp[i].add(kk));
            lo[i] = _mm256_fmadd_ps(a, w0, lo[i]);
            hi[i] = _mm256_fmadd_ps(a, w1, hi[i]);
        }
        w = w.add(m.s.o);
    }
    for i in 0..P {
        _mm256_storeu_ps(out[i], lo[i]);
        _mm256_storeu_ps(out[i].add(8), hi[i]);
    }
}

/// The f64 form, one thread, plain loops: exact reference checks run through it.
fn conv3x3_f64(s: Shape, x: &[f64], k: &[f64], y: &mut [f64]) {
    y.fill(0.0);
    for (t, pairs) in s.taps().iter().enumerate() {
        for &(p, q) in pairs {
            let (p, q) = (p as usize, q as usize);
            let out = &mut y[p * s.o..(p + 1) * s.o];
            for c in 0..s.c {
                let a = x[q * s.c + c];
                let row = &k[(t * s.c + c) * s.o..(t * s.c + c + 1) * s.o];
                for (o, w) in out.iter_mut().zip(row) {
                    *o += a * w;
                }
            }
        }
    }
}

/// The whole convolution on the host, split into `parts` row ranges as the handler does (for
/// tests).
pub fn conv3x3(s: Shape, x: &[f32], k: &[f32], parts: usize) -> Vec<f32> {
    let job = Job::new(s, x, k, parts.max(1));
    job.run_parts();
    job.wait();
    let mut y = vec![0f32; s.pixels() * s.o];
    job.sum_into(&mut y);
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The project's plain Rust reference (`graph::reference::conv`, 3x3 stride 1 pad 1), flattened.
    fn reference(s: Shape, x: &[f32], k: &[f32]) -> Vec<f64> {
        let x = ndarray::Array4::from_shape_fn((s.n, s.h, s.w, s.c), |(n, i, j, c)| x[((n * s.h + i) * s.w + j) * s.c + c] as f64);
        let k = ndarray::Array4::from_shape_fn((3, 3, s.c, s.o), |(u, v, c, o)| k[((u * 3 + v) * s.c + c) * s.o + o] as f64);
        let spec = crate::graph::ConvSpec::new(s.o, 3, 1, 1, false);
        crate::graph::reference::conv(&x, &k, None, &spec).iter().copied().collect()
    }

    #[test]
    fn host_kernel_matches_a_plain_loop_on_odd_sizes_and_splits() {
        // Channel counts that are and are not multiples of 8 exercise both block paths and the
        // output-channel tail; 3 parts split rows inside a tap.
        for &(n, h, w, c, o) in &[(1, 2, 2, 16, 24), (2, 3, 1, 13, 10), (1, 4, 4, 8, 8), (1, 1, 1, 5, 3)] {
            let s = Shape { n, h, w, c, o };
            let x: Vec<f32> = (0..s.pixels() * c).map(|i| ((i * 7 % 11) as f32 - 5.0) / 7.0).collect();
            let k: Vec<f32> = (0..9 * c * o).map(|i| ((i * 5 % 13) as f32 - 6.0) / 9.0).collect();
            let want = reference(s, &x, &k);
            for parts in [1, 2, 3] {
                let got = conv3x3(s, &x, &k, parts);
                for (g, w) in got.iter().zip(&want) {
                    assert!((*g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()), "{s:?} parts {parts}: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn taps_skip_the_padding() {
        let s = Shape { n: 1, h: 2, w: 2, c: 1, o: 1 };
        let taps = s.taps();
        // The centre tap sees all 4 pixels, each corner tap one.
        assert_eq!(taps[4].len(), 4);
        assert_eq!(taps.iter().map(Vec::len).sum::<usize>(), 16);
        assert_eq!(taps[0], vec![(3, 0)]);
    }
}
