//! gemm9: the 3x3 pad-1 convolution as the sum of 9 matrix products, one per kernel tap.
//!
//! Pad the NHWC input by one pixel; for each tap (dy, dx) multiply the shifted `[N, H, W, C]`
//! window by the kernel slice `[C, O]` and add the 9 products. Same arithmetic as im2col
//! without materialising the `[N, H, W, 9C]` patch matrix (but XLA copies each kernel slice).

use super::{conv_dims, shifted_windows};
use crate::error::Result;
use crate::hlo::{Builder, Value};

pub fn emit(b: &mut Builder, x: &Value, kernel: &Value) -> Result<Value> {
    let (_, _, _, c, o) = conv_dims("gemm9", x, kernel)?;
    let taps = shifted_windows(b, x)?;
    let mut sum: Option<Value> = None;
    for (t, tap) in (0i64..).zip(&taps) {
        let (dy, dx) = (t / 3, t % 3);
        let kt = b.slice(kernel, &[dy, dx, 0, 0], &[dy + 1, dx + 1, c, o])?;
        let kt = b.reshape(&kt, &[c, o])?;
        let y = b.dot_general(tap, &kt, (&[], &[]), (&[3], &[0]))?;
        sum = Some(match sum {
            None => y,
            Some(s) => b.add(&s, &y)?,
        });
    }
    Ok(sum.expect("nine taps"))
}
