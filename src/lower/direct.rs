//! The plain lowering: one `stablehlo.convolution`.

use crate::error::Result;
use crate::hlo::{Builder, ConvDims, Value};

pub fn emit(b: &mut Builder, x: &Value, kernel: &Value) -> Result<Value> {
    b.convolution(x, kernel, &ConvDims::same(1))
}
