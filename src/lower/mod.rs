//! How one convolution layer becomes StableHLO.
//!
//! XLA lowers a plain `convolution` well on large maps and very badly on tiny ones (on CPU a
//! 2x2 map runs ~30-50x slower than the same layer as one matrix product). Every way of
//! lowering a layer is a variant of [`Lowering`] with its own file: the plain convolution,
//! im2col, gemm9 (a sum of 9 GEMMs), Winograd F(2x2, 3x3) (2.25x fewer multiplies) and
//! `kernel`, a custom call to prunebench's own CPU kernel for maps of few pixels (CPU plugin
//! only). Each declares the convolutions it handles ([`Lowering::supports`]): `direct` every
//! one (any kernel size, stride, padding and groups, depthwise included), im2col and gemm9
//! every one-group conv (any `kh x kw`, stride and padding), Winograd and `kernel` the 3x3
//! stride-1 pad-1 one-group conv only; each of those handles every map size. The autotuner
//! (`crate::tune`) times, per layer shape, the lowerings that support it, with the layer's
//! weights out of cache as they are inside a network, and picks the fastest.

mod direct;
mod gemm9;
mod im2col;
pub mod kernel;
mod winograd;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::graph::ConvSpec;
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

    /// Whether this lowering emits the conv `spec` on an `h x w` input map: `Direct` every
    /// conv; `Im2col` and `Gemm9` every one-group conv; `Winograd` and `Kernel` the 3x3
    /// stride-1 pad-1 one-group conv (the tuner further offers `Kernel` only in f32, on the
    /// CPU plugin, on small maps). Every lowering handles every map the conv fits.
    pub fn supports(self, spec: &ConvSpec, h: usize, w: usize) -> bool {
        let fits = spec.out_side(h, spec.kh).is_some() && spec.out_side(w, spec.kw).is_some();
        let three = spec.kh == 3 && spec.kw == 3 && spec.stride == 1 && spec.pad == 1 && spec.groups == 1;
        fits && match self {
            Lowering::Direct => true,
            Lowering::Im2col | Lowering::Gemm9 => spec.groups == 1,
            Lowering::Winograd | Lowering::Kernel => three,
        }
    }

    /// Emits the conv `spec` of NHWC `x` `[n, h, w, c]` with the HWIO `kernel`
    /// `[kh, kw, c / groups, out]`, without bias: `[n, oh, ow, out]`.
    ///
    /// Errors: a conv this lowering does not support (see [`supports`](Self::supports); use
    /// `direct`), or operands whose shapes do not fit `spec`.
    pub fn conv(self, b: &mut Builder, x: &Value, kernel: &Value, spec: &ConvSpec) -> Result<Value> {
        let [_, h, w, c] = nhwc(self.name(), x)?;
        let want = [spec.kh as i64, spec.kw as i64, c / spec.groups.max(1) as i64, spec.out as i64];
        if kernel.dims() != want {
            return Err(Error::shape(self.name(), format!("kernel {} for input {} and {spec} (want {want:?})", kernel.shape(), x.shape())));
        }
        if !self.supports(spec, h as usize, w as usize) {
            return Err(Error::invalid(
                "lowering",
                format!("{self} for {spec} on a {h}x{w} map"),
                "this lowering does not handle that convolution; use direct",
            ));
        }
        match self {
            Lowering::Direct => direct::emit(b, x, kernel, spec),
            Lowering::Im2col => im2col::emit(b, x, kernel, spec),
            Lowering::Gemm9 => gemm9::emit(b, x, kernel, spec),
            Lowering::Winograd => winograd::emit(b, x, kernel),
            Lowering::Kernel => kernel::emit(b, x, kernel),
        }
    }

    /// Emits `conv3x3(x, kernel)` (NHWC x HWIO `[3, 3, c, o]`, stride 1, pad 1, no bias):
    /// [`conv`](Self::conv) with that spec.
    pub fn emit(self, b: &mut Builder, x: &Value, kernel: &Value) -> Result<Value> {
        let o = kernel.dims().last().copied().unwrap_or(0).max(0) as usize;
        self.conv(b, x, kernel, &ConvSpec::new(o, 3, 1, 1, false))
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

/// The shape of one conv layer as the tuner keys it: batch, input map `h x w`, channels,
/// kernel size, stride, padding and groups, dtype.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LayerShape {
    pub batch: usize,
    pub h: usize,
    pub w: usize,
    pub cin: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    pub groups: usize,
    pub dtype: String,
}

impl LayerShape {
    /// A 3x3 stride-1 pad-1 one-group conv (every VGG-16 conv).
    pub fn new(batch: usize, h: usize, w: usize, cin: usize, cout: usize, dtype: DType) -> Self {
        Self::of(batch, h, w, cin, &ConvSpec::new(cout, 3, 1, 1, false), dtype)
    }

    /// The conv `spec` on `batch` input maps `[h, w, cin]`.
    pub fn of(batch: usize, h: usize, w: usize, cin: usize, spec: &ConvSpec, dtype: DType) -> Self {
        let s = spec;
        LayerShape {
            batch,
            h,
            w,
            cin,
            cout: s.out,
            kh: s.kh,
            kw: s.kw,
            stride: s.stride,
            pad: s.pad,
            groups: s.groups,
            dtype: dtype.to_string(),
        }
    }

    /// The conv's geometry (without bias).
    pub fn spec(&self) -> ConvSpec {
        ConvSpec { out: self.cout, kh: self.kh, kw: self.kw, stride: self.stride, pad: self.pad, groups: self.groups, bias: false }
    }

    /// HWIO kernel dims `[kh, kw, cin / groups, cout]`.
    pub fn kernel_dims(&self) -> [usize; 4] {
        [self.kh, self.kw, self.cin / self.groups.max(1), self.cout]
    }

    /// Whether `lowering` supports this layer ([`Lowering::supports`]).
    pub fn supports(&self, lowering: Lowering) -> bool {
        lowering.supports(&self.spec(), self.h, self.w)
    }
}

impl fmt::Display for LayerShape {
    /// `b1 8x8 4->4 3x3/1 p1 f32`, with ` g4` after the padding for grouped convs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{} {}x{} {}->{} {}x{}/{} p{}", self.batch, self.h, self.w, self.cin, self.cout, self.kh, self.kw, self.stride, self.pad)?;
        if self.groups != 1 {
            write!(f, " g{}", self.groups)?;
        }
        write!(f, " {}", self.dtype)
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
/// `(dy, dx)` in row-major order: the rows of an HWIO kernel reshaped to `[9C, O]`
/// ([`windows`] of a 3x3 stride-1 pad-1 conv).
pub fn shifted_windows(b: &mut Builder, x: &Value) -> Result<Vec<Value>> {
    windows(b, x, &ConvSpec::new(1, 3, 1, 1, false))
}

/// The `kh * kw` windows `[N, OH, OW, C]` of NHWC `x` padded by `spec.pad`, one per kernel
/// tap `(dy, dx)` in row-major order, each read at `spec.stride`: window `(dy, dx)` at
/// output pixel `(i, j)` is `x[stride i + dy - pad, stride j + dx - pad]` (zero outside).
/// Concatenated on the channel axis, they are the rows of the HWIO kernel reshaped to
/// `[kh kw C, O]`.
pub fn windows(b: &mut Builder, x: &Value, spec: &ConvSpec) -> Result<Vec<Value>> {
    let [n, h, w, c] = nhwc("windows", x)?;
    let (p, s) = (spec.pad as i64, spec.stride as i64);
    let (Some(oh), Some(ow)) = (spec.out_side(h as usize, spec.kh), spec.out_side(w as usize, spec.kw)) else {
        return Err(Error::shape("windows", format!("{spec} does not fit {}", x.shape())));
    };
    let (oh, ow) = (oh as i64, ow as i64);
    let padded = if p > 0 {
        let zero = b.scalar(0.0, x.dtype());
        b.pad(x, &zero, &[0, p, p, 0], &[0, p, p, 0])?
    } else {
        x.clone()
    };
    let mut taps = Vec::with_capacity(spec.kh * spec.kw);
    for dy in 0..spec.kh as i64 {
        for dx in 0..spec.kw as i64 {
            let limit = [n, dy + (oh - 1) * s + 1, dx + (ow - 1) * s + 1, c];
            taps.push(if s == 1 {
                b.slice(&padded, &[0, dy, dx, 0], &limit)?
            } else {
                b.slice_strided(&padded, &[0, dy, dx, 0], &limit, &[1, s, s, 1])?
            });
        }
    }
    Ok(taps)
}

/// Fixed per-layer lowering for the non-tuned modes, one per layer of `shapes`: the mode's
/// lowering where it supports the layer, `Direct` where it does not (e.g. Winograd on a
/// strided, 1x1 or depthwise conv). `None` for [`Mode::Tuned`].
pub fn fixed_plan(mode: Mode, shapes: &[LayerShape]) -> Option<Vec<Lowering>> {
    let want = match mode {
        Mode::Xla => Lowering::Direct,
        Mode::Im2col => Lowering::Im2col,
        Mode::Winograd => Lowering::Winograd,
        Mode::Tuned => return None,
    };
    Some(shapes.iter().map(|s| if s.supports(want) { want } else { Lowering::Direct }).collect())
}
