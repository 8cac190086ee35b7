//! winograd: the 3x3 pad-1 convolution by Winograd's minimal filtering F(2x2, 3x3).
//!
//! The padded input is cut into overlapping 4x4 tiles at stride 2, one per 2x2 block of
//! output. Each tile `d` becomes `V = Bᵀ d B` and each 3x3 kernel slice `g` becomes
//! `U = G g Gᵀ` (16 numbers per (in, out) pair); the 16 positions of the transformed tile
//! are then 16 independent matrix products `M[t] = V[t] · U[t]` (`[P, C] x [C, O]`, P = number
//! of tiles), and `Y = Aᵀ M A` gives the 2x2 output block back. That is 16 multiplies per 2x2
//! outputs where the direct form needs 36: 2.25x less arithmetic, paid for with elementwise
//! transforms and a kernel 16/9 as large.
//!
//! Every transform is written as whole-tensor adds of strided slices, so XLA fuses each of
//! the 16 `V[t]`, the 16 `U[t]` and the output (with its 2x2 interleave) into one loop each.
//! The products are 16 separate `dot`s rather than one batched `dot_general` of
//! `[16, P, C] x [16, C, O]`: stacking the operand takes a `concatenate` that XLA's CPU
//! backend does not fuse, one more copy of the transformed tiles (4x the input's size), which
//! made the batched form up to 2x slower on 16x16 and 32x32 maps (measured on the CPU plugin).
//!
//! An odd height or width is padded up by one zero row/column (which is exactly the
//! convolution's own zero padding) and the extra output row/column is sliced off, so the
//! lowering applies to every map size.
//!
//! Transforms (Lavin & Gray, 2016):
//! ```text
//! Bᵀ = [1  0 -1  0]    G = [ 1    0    0 ]    Aᵀ = [1  1  1  0]
//!      [0  1  1  0]        [1/2  1/2  1/2]         [0  1 -1 -1]
//!      [0 -1  1  0]        [1/2 -1/2  1/2]
//!      [0  1  0 -1]        [ 0    0    1 ]
//! ```

use crate::error::{Error, Result};
use crate::hlo::{Builder, Value};

const BT: [[f64; 4]; 4] = [[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, -1.0, 1.0, 0.0], [0.0, 1.0, 0.0, -1.0]];
const G: [[f64; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];
const AT: [[f64; 4]; 2] = [[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]];

/// `sum_i coefs[i] * vals[i]` over the non-zero coefficients, which must share one
/// magnitude `s` (true of every row of `Bᵀ`, `Aᵀ` and `G ⊗ G`): adds and subtracts, then one
/// multiply by `s` unless it is 1.
fn combine(b: &mut Builder, coefs: &[f64], vals: &[&Value]) -> Result<Value> {
    let mut acc: Option<Value> = None;
    let mut scale = 0.0;
    for (&c, v) in coefs.iter().zip(vals) {
        if c == 0.0 {
            continue;
        }
        debug_assert!(scale == 0.0 || scale == c.abs(), "mixed coefficient magnitudes {coefs:?}");
        scale = c.abs();
        acc = Some(match (acc, c > 0.0) {
            (None, true) => (*v).clone(),
            (None, false) => b.neg(v)?,
            (Some(a), true) => b.add(&a, v)?,
            (Some(a), false) => b.sub(&a, v)?,
        });
    }
    let acc = acc.ok_or_else(|| Error::shape("winograd", "a transform row with no terms"))?;
    if scale == 1.0 {
        return Ok(acc);
    }
    let s = b.constant(scale, acc.shape().clone());
    b.mul(&acc, &s)
}

/// `t · x · tᵀ` for a 4x4 grid `x` of equal-shaped tensors and a transform `t` of 4 or 2
/// rows: the 1-D transform along the grid's first index, then its second, as elementwise
/// ops on whole tensors.
fn transform_2d(b: &mut Builder, t: &[[f64; 4]], x: &[Vec<Value>]) -> Result<Vec<Vec<Value>>> {
    let mut rows = Vec::with_capacity(t.len());
    for coefs in t {
        let mut row = Vec::with_capacity(x[0].len());
        for j in 0..x[0].len() {
            let col: Vec<&Value> = x.iter().map(|r| &r[j]).collect();
            row.push(combine(b, coefs, &col)?);
        }
        rows.push(row);
    }
    let mut out = Vec::with_capacity(t.len());
    for row in &rows {
        let refs: Vec<&Value> = row.iter().collect();
        let mut o = Vec::with_capacity(t.len());
        for coefs in t {
            o.push(combine(b, coefs, &refs)?);
        }
        out.push(o);
    }
    Ok(out)
}

/// The transformed kernel `U = G g Gᵀ` as a 4x4 grid of `[C, O]`, from an HWIO `[3, 3, C, O]`
/// kernel. Each `U[a][b]` is one sum over the 9 taps with the coefficients `G[a][u] G[b][v]`
/// (not the two 1-D passes), so each fuses into one loop reading the kernel directly.
fn kernel_transform(b: &mut Builder, kernel: &Value, c: i64, o: i64) -> Result<Vec<Vec<Value>>> {
    let mut taps = Vec::with_capacity(9);
    for u in 0..3 {
        for v in 0..3 {
            let s = b.slice(kernel, &[u, v, 0, 0], &[u + 1, v + 1, c, o])?;
            taps.push(b.reshape(&s, &[c, o])?);
        }
    }
    let refs: Vec<&Value> = taps.iter().collect();
    let mut grid = Vec::with_capacity(4);
    for ga in &G {
        let mut row = Vec::with_capacity(4);
        for gb in &G {
            let coefs: Vec<f64> = (0..9).map(|k| ga[k / 3] * gb[k % 3]).collect();
            row.push(combine(b, &coefs, &refs)?);
        }
        grid.push(row);
    }
    Ok(grid)
}

pub fn emit(b: &mut Builder, x: &Value, kernel: &Value) -> Result<Value> {
    let (n, h, w, c, o) = super::conv_dims("winograd", x, kernel)?;
    // Even map (he, we) = (h, w) rounded up; tiles (th, tw); P tiles in all.
    let (he, we) = (h + h % 2, w + w % 2);
    let (th, tw) = (he / 2, we / 2);
    let p = n * th * tw;

    let zero = b.scalar(0.0, x.dtype());
    let padded = b.pad(x, &zero, &[0, 1, 1, 0], &[0, 1 + h % 2, 1 + w % 2, 0])?; // [n, he+2, we+2, c]
    // d[u][v][n, i, j, c] = padded[n, 2i + u, 2j + v, c]: element (u, v) of every tile.
    let mut d = Vec::with_capacity(4);
    for u in 0..4 {
        let mut row = Vec::with_capacity(4);
        for v in 0..4 {
            let start = [0, u, v, 0];
            let limit = [n, u + 2 * th - 1, v + 2 * tw - 1, c];
            let s = b.slice_strided(&padded, &start, &limit, &[1, 2, 2, 1])?;
            row.push(b.reshape(&s, &[p, c])?);
        }
        d.push(row);
    }
    let v = transform_2d(b, &BT, &d)?; // 4x4 of [P, C]
    let u = kernel_transform(b, kernel, c, o)?; // 4x4 of [C, O]
    let mut m = Vec::with_capacity(4);
    for (vr, ur) in v.iter().zip(&u) {
        m.push(vr.iter().zip(ur).map(|(vt, ut)| b.matmul(vt, ut)).collect::<Result<Vec<_>>>()?);
    }
    let y = transform_2d(b, &AT, &m)?; // 2x2 of [P, O]
    // y[i][j][(n, ti, tj), o] is output pixel (2 ti + i, 2 tj + j): interleave into [n, he, we, o].
    let mut rows = Vec::with_capacity(2);
    for yi in &y {
        let cols: Vec<Value> = yi.iter().map(|t| b.reshape(t, &[n, th, 1, tw, 1, o])).collect::<Result<_>>()?;
        let refs: Vec<&Value> = cols.iter().collect();
        rows.push(b.concatenate(&refs, 4)?);
    }
    let refs: Vec<&Value> = rows.iter().collect();
    let out = b.concatenate(&refs, 2)?; // [n, th, 2, tw, 2, o]
    let out = b.reshape(&out, &[n, he, we, o])?;
    if (he, we) == (h, w) {
        Ok(out)
    } else {
        b.slice(&out, &[0, 0, 0, 0], &[n, h, w, o])
    }
}
