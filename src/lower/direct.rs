//! The plain lowering: one `stablehlo.convolution` (any kernel size, stride, padding and
//! feature groups).

use crate::error::Result;
use crate::graph::ConvSpec;
use crate::hlo::{Builder, ConvDims, Value};

pub fn emit(b: &mut Builder, x: &Value, kernel: &Value, spec: &ConvSpec) -> Result<Value> {
    b.convolution(x, kernel, &ConvDims::strided(spec.stride as i64, spec.pad as i64, spec.groups as i64))
}
