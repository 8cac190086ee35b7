//! gemm9: the 3x3 pad-1 convolution as the sum of 9 matrix products, one per kernel tap.
//!
//! Pad the NHWC input by one pixel; for each tap (dy, dx) multiply the shifted `[N, H, W, C]`
//! window by the kernel slice `[C, O]` and add the 9 products. Same arithmetic as im2col
//! without materialising the `[N, H, W, 9C]` patch matrix.

use crate::error::{Error, Result};
use crate::hlo::{Builder, Value};

pub fn emit(b: &mut Builder, x: &Value, kernel: &Value) -> Result<Value> {
    let (n, h, w, c) = match *x.dims() {
        [n, h, w, c] => (n, h, w, c),
        _ => return Err(Error::shape("gemm9", format!("input {} is not NHWC", x.shape()))),
    };
    let k = kernel.dims();
    if k.len() != 4 || k[0] != 3 || k[1] != 3 || k[2] != c {
        return Err(Error::shape("gemm9", format!("kernel {} for input {}", kernel.shape(), x.shape())));
    }
    let o = k[3];
    let zero = b.scalar(0.0, x.dtype());
    let padded = b.pad(x, &zero, &[0, 1, 1, 0], &[0, 1, 1, 0])?;
    let mut sum: Option<Value> = None;
    for dy in 0..3 {
        for dx in 0..3 {
            let tap = b.slice(&padded, &[0, dy, dx, 0], &[n, dy + h, dx + w, c])?;
            let kt = b.slice(kernel, &[dy, dx, 0, 0], &[dy + 1, dx + 1, c, o])?;
            let kt = b.reshape(&kt, &[c, o])?;
            let y = b.dot_general(&tap, &kt, (&[], &[]), (&[3], &[0]))?;
            sum = Some(match sum {
                None => y,
                Some(s) => b.add(&s, &y)?,
            });
        }
    }
    Ok(sum.expect("nine taps"))
}
