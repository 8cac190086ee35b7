//! im2col: a one-group convolution as one matrix product.
//!
//! Pad the NHWC input, take the `kh kw` shifted (and strided) `[N, OH, OW, C]` windows
//! ([`windows`]), concatenate them on the channel axis in (dy, dx, c) order, which is exactly
//! the row order of the HWIO kernel reshaped to `[kh kw C, O]`, and contract that axis with
//! one `dot_general`. A 1x1 stride-1 conv is the product itself.

use super::windows;
use crate::error::Result;
use crate::graph::ConvSpec;
use crate::hlo::{Builder, Value};

pub fn emit(b: &mut Builder, x: &Value, kernel: &Value, spec: &ConvSpec) -> Result<Value> {
    let [kh, kw, c, o] = [kernel.dims()[0], kernel.dims()[1], kernel.dims()[2], kernel.dims()[3]];
    let taps = windows(b, x, spec)?;
    let patches = if taps.len() == 1 {
        taps.into_iter().next().expect("one tap")
    } else {
        let refs: Vec<&Value> = taps.iter().collect();
        b.concatenate(&refs, 3)?
    };
    let k2 = b.reshape(kernel, &[kh * kw * c, o])?;
    b.dot_general(&patches, &k2, (&[], &[]), (&[3], &[0]))
}
