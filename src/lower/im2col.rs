//! im2col: the 3x3 pad-1 convolution as one matrix product.
//!
//! Pad the NHWC input by one pixel, take the 9 shifted `[N, H, W, C]` windows, concatenate
//! them on the channel axis in (dy, dx, c) order, which is exactly the row order of the HWIO
//! kernel reshaped to `[9C, O]`, and contract that axis with one `dot_general`.

use super::{conv_dims, shifted_windows};
use crate::error::Result;
use crate::hlo::{Builder, Value};

pub fn emit(b: &mut Builder, x: &Value, kernel: &Value) -> Result<Value> {
    let (_, _, _, c, o) = conv_dims("im2col", x, kernel)?;
    let taps = shifted_windows(b, x)?;
    let refs: Vec<&Value> = taps.iter().collect();
    let patches = b.concatenate(&refs, 3)?;
    let k2 = b.reshape(kernel, &[9 * c, o])?;
    b.dot_general(&patches, &k2, (&[], &[]), (&[3], &[0]))
}
