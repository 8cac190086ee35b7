//! im2col: the 3x3 pad-1 convolution as one matrix product.
//!
//! Pad the NHWC input by one pixel, take the 9 shifted `[N, H, W, C]` windows, concatenate
//! them on the channel axis in (dy, dx, c) order, which is exactly the row order of the HWIO
//! kernel reshaped to `[9C, O]`, and contract that axis with one `dot_general`.

use crate::error::{Error, Result};
use crate::hlo::{Builder, Value};

pub fn emit(b: &mut Builder, x: &Value, kernel: &Value) -> Result<Value> {
    let (n, h, w, c) = match *x.dims() {
        [n, h, w, c] => (n, h, w, c),
        _ => return Err(Error::shape("im2col", format!("input {} is not NHWC", x.shape()))),
    };
    let k = kernel.dims();
    if k.len() != 4 || k[0] != 3 || k[1] != 3 || k[2] != c {
        return Err(Error::shape("im2col", format!("kernel {} for input {}", kernel.shape(), x.shape())));
    }
    let o = k[3];
    let zero = b.scalar(0.0, x.dtype());
    let padded = b.pad(x, &zero, &[0, 1, 1, 0], &[0, 1, 1, 0])?;
    let mut taps = Vec::with_capacity(9);
    for dy in 0..3 {
        for dx in 0..3 {
            taps.push(b.slice(&padded, &[0, dy, dx, 0], &[n, dy + h, dx + w, c])?);
        }
    }
    let refs: Vec<&Value> = taps.iter().collect();
    let patches = b.concatenate(&refs, 3)?;
    let k2 = b.reshape(kernel, &[9 * c, o])?;
    b.dot_general(&patches, &k2, (&[], &[]), (&[3], &[0]))
}
