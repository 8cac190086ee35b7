//! How one 3x3 pad-1 convolution layer becomes StableHLO.
//!
//! XLA lowers a plain `convolution` well on large maps and very badly on tiny ones (on CPU a
//! 2x2 map runs ~30-50x slower than the same layer as one matrix product). Every way of
//! lowering a layer is a variant of [`Lowering`] with its own file: the plain convolution,
//! im2col, gemm9 (a sum of 9 GEMMs), Winograd F(2x2, 3x3) (2.25x fewer multiplies) and
//! `kernel`, a custom call to prunebench's own CPU kernel for maps of few pixels (CPU plugin
//! only). Each handles every map size. The autotuner in [`tune`] times them all per layer shape on the
//! device, with the layer's weights out of cache as they are inside a network, and picks the
//! fastest.

mod direct;
mod gemm9;
mod im2col;
pub mod kernel;
pub mod tune;
mod winograd;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hlo::{Builder, DType, Value};

/// One way of lowering a conv layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lowering {
    /// A plain `stablehlo.convolution`: what JAX and every framework hands XLA.
    Direct,
    /// Pad, 9 shifted slices, concatenate, one `dot_general` against the kernel as `[9C, O]`.
    Im2col,
    /// Pad, then the sum of 9 `dot_general`s, one per kernel tap (no patch matrix).
    Gemm9,
    /// Winograd F(2x2, 3x3): 16 matrix products on transformed 4x4 tiles, 2.25x fewer
    /// multiplies than the direct form.
    Winograd,
    /// A custom call to prunebench's own CPU kernel for maps of few pixels (f32, CPU plugin
    /// only; see [`kernel`]).
    Kernel,
}

/// Every lowering, in the order the tuner tries them (the first is the reference).
pub const ALL: [Lowering; 5] =
    [Lowering::Direct, Lowering::Im2col, Lowering::Gemm9, Lowering::Winograd, Lowering::Kernel];

impl Lowering {
    pub fn name(self) -> &'static str {
        match self {
            Lowering::Direct => "direct",
            Lowering::Im2col => "im2col",
            Lowering::Gemm9 => "gemm9",
            Lowering::Winograd => "winograd",
            Lowering::Kernel => "kernel",
        }
    }

    /// Emits `conv3x3(x, kernel)` (NHWC x HWIO, stride 1, pad 1, no bias).
    pub fn emit(self, b: &mut Builder, x: &Value, kernel: &Value) -> Result<Value> {
        match self {
            Lowering::Direct => direct::emit(b, x, kernel),
            Lowering::Im2col => im2col::emit(b, x, kernel),
            Lowering::Gemm9 => gemm9::emit(b, x, kernel),
            Lowering::Winograd => winograd::emit(b, x, kernel),
            Lowering::Kernel => kernel::emit(b, x, kernel),
        }
    }
}

impl fmt::Display for Lowering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the user asks for: `--lowering xla|tuned|im2col|winograd`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Plain convolutions everywhere: the reference a JAX user gets.
    Xla,
    /// im2col everywhere.
    Im2col,
    /// Winograd F(2x2, 3x3) everywhere.
    Winograd,
    /// Per layer shape, the lowering measured fastest on this device (cached on disk).
    Tuned,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Xla => "xla",
            Mode::Im2col => "im2col",
            Mode::Winograd => "winograd",
            Mode::Tuned => "tuned",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "xla" | "direct" => Ok(Mode::Xla),
            "im2col" => Ok(Mode::Im2col),
            "winograd" => Ok(Mode::Winograd),
            "tuned" => Ok(Mode::Tuned),
            _ => Err(Error::invalid("lowering", s, "use xla, tuned, im2col or winograd")),
        }
    }
}

/// The shape of one conv layer as the tuner keys it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LayerShape {
    pub batch: usize,
    pub h: usize,
    pub w: usize,
    pub cin: usize,
    pub cout: usize,
    pub dtype: String,
}

impl LayerShape {
    pub fn new(batch: usize, h: usize, w: usize, cin: usize, cout: usize, dtype: DType) -> Self {
        LayerShape { batch, h, w, cin, cout, dtype: dtype.to_string() }
    }
}

impl fmt::Display for LayerShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{} {}x{} {}->{} {}", self.batch, self.h, self.w, self.cin, self.cout, self.dtype)
    }
}

/// Whether XLA's plain convolution falls off its cliff on an `h x w` map (4 pixels or fewer:
/// ~35-50x slower than a matrix product on CPU, forward and backward). The fixed plans that
/// do not tune avoid the plain convolution there.
pub fn plain_conv_is_slow(h: usize, w: usize) -> bool {
    h * w <= 4
}

/// `[n, h, w, c]` of a rank-4 (NHWC) value, or a shape error naming `op`.
pub(crate) fn nhwc(op: &str, v: &Value) -> Result<[i64; 4]> {
    match *v.dims() {
        [n, h, w, c] => Ok([n, h, w, c]),
        _ => Err(Error::shape(op, format!("{} is not NHWC", v.shape()))),
    }
}

/// `(n, h, w, c, o)` of a conv3x3 of NHWC `x` with HWIO `kernel` `[3, 3, c, o]`, or a shape
/// error naming `op`.
pub(crate) fn conv_dims(op: &str, x: &Value, kernel: &Value) -> Result<(i64, i64, i64, i64, i64)> {
    let [n, h, w, c] = nhwc(op, x)?;
    match *kernel.dims() {
        [3, 3, kc, o] if kc == c => Ok((n, h, w, c, o)),
        _ => Err(Error::shape(op, format!("kernel {} for input {}", kernel.shape(), x.shape()))),
    }
}

/// The 9 windows `[N, H, W, C]` of NHWC `x` padded by one pixel, shifted by each kernel tap
/// `(dy, dx)` in row-major order: the rows of an HWIO kernel reshaped to `[9C, O]`.
pub fn shifted_windows(b: &mut Builder, x: &Value) -> Result<Vec<Value>> {
    let [n, h, w, c] = nhwc("shifted_windows", x)?;
    let zero = b.scalar(0.0, x.dtype());
    let padded = b.pad(x, &zero, &[0, 1, 1, 0], &[0, 1, 1, 0])?;
    let mut taps = Vec::with_capacity(9);
    for dy in 0..3 {
        for dx in 0..3 {
            taps.push(b.slice(&padded, &[0, dy, dx, 0], &[n, dy + h, dx + w, c])?);
        }
    }
    Ok(taps)
}

/// Fixed per-layer lowering for the non-tuned modes.
pub fn fixed_plan(mode: Mode, layers: usize) -> Option<Vec<Lowering>> {
    match mode {
        Mode::Xla => Some(vec![Lowering::Direct; layers]),
        Mode::Im2col => Some(vec![Lowering::Im2col; layers]),
        Mode::Winograd => Some(vec![Lowering::Winograd; layers]),
        Mode::Tuned => None,
    }
}
