//! gemm9: a one-group convolution as the sum of one matrix product per kernel tap (9 for a
//! 3x3 kernel, hence the name).
//!
//! Pad the NHWC input; for each tap (dy, dx) multiply the shifted (and strided)
//! `[N, OH, OW, C]` window ([`windows`]) by the kernel slice `[C, O]` and add the products.
//! Same arithmetic as im2col without materialising the `[N, OH, OW, kh kw C]` patch matrix
//! (but XLA copies each kernel slice).

use super::windows;
use crate::error::Result;
use crate::graph::ConvSpec;
use crate::hlo::{Builder, Value};

pub fn emit(b: &mut Builder, x: &Value, kernel: &Value, spec: &ConvSpec) -> Result<Value> {
    let [_, kw, c, o] = [kernel.dims()[0], kernel.dims()[1], kernel.dims()[2], kernel.dims()[3]];
    let taps = windows(b, x, spec)?;
    let mut sum: Option<Value> = None;
    for (t, tap) in (0i64..).zip(&taps) {
        let (dy, dx) = (t / kw, t % kw);
        let kt = b.slice(kernel, &[dy, dx, 0, 0], &[dy + 1, dx + 1, c, o])?;
        let kt = b.reshape(&kt, &[c, o])?;
        let y = b.dot_general(tap, &kt, (&[], &[]), (&[3], &[0]))?;
        sum = Some(match sum {
            None => y,
            Some(s) => b.add(&s, &y)?,
        });
    }
    Ok(sum.expect("at least one tap"))
}
