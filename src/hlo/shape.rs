//! Element types and tensor shapes; `Display` prints the MLIR type.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F64,
    BF16,
    I32,
    Pred,
}

impl DType {
    /// The MLIR spelling (`f32`, `bf16`, `i1`, ...).
    pub fn mlir(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::BF16 => "bf16",
            DType::I32 => "i32",
            DType::Pred => "i1",
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::BF16)
    }

    pub fn size_bytes(self) -> usize {
        match self {
            DType::F64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::BF16 => 2,
            DType::Pred => 1,
        }
    }

    /// A literal of this type holding `v`, in the form MLIR's `dense<...>` accepts
    /// (non-finite floats as hex bit patterns).
    pub fn literal(self, v: f64) -> String {
        match self {
            DType::I32 => format!("{}", v as i32),
            DType::Pred => (if v != 0.0 { "true" } else { "false" }).to_string(),
            DType::F32 if !v.is_finite() => format!("0x{:08X}", (v as f32).to_bits()),
            DType::F64 if !v.is_finite() => format!("0x{:016X}", v.to_bits()),
            DType::BF16 if !v.is_finite() => format!("0x{:04X}", half::bf16::from_f64(v).to_bits()),
            DType::F32 | DType::BF16 => format!("{:.9e}", v as f32),
            DType::F64 => format!("{:.17e}", v),
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::Pred => "pred",
            d => d.mlir(),
        })
    }
}

impl FromStr for DType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" => Ok(DType::F32),
            "f64" | "float64" => Ok(DType::F64),
            "bf16" | "bfloat16" => Ok(DType::BF16),
            _ => Err(Error::invalid("dtype", s, "use one of: f32, bf16, f64")),
        }
    }
}

/// Dimensions plus element type of a tensor value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    pub dims: Vec<i64>,
    pub dtype: DType,
}

impl Shape {
    pub fn new(dims: impl Into<Vec<i64>>, dtype: DType) -> Self {
        Shape { dims: dims.into(), dtype }
    }
    pub fn scalar(dtype: DType) -> Self {
        Shape { dims: vec![], dtype }
    }
    pub fn rank(&self) -> usize {
        self.dims.len()
    }
    pub fn numel(&self) -> i64 {
        self.dims.iter().product()
    }
    pub fn with_dims(&self, dims: impl Into<Vec<i64>>) -> Self {
        Shape { dims: dims.into(), dtype: self.dtype }
    }
    pub fn with_dtype(&self, dtype: DType) -> Self {
        Shape { dims: self.dims.clone(), dtype }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tensor<")?;
        for d in &self.dims {
            write!(f, "{d}x")?;
        }
        write!(f, "{}>", self.dtype.mlir())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_mlir_types() {
        assert_eq!(Shape::new([2, 3], DType::F32).to_string(), "tensor<2x3xf32>");
        assert_eq!(Shape::scalar(DType::BF16).to_string(), "tensor<bf16>");
        assert_eq!(Shape::new([4], DType::Pred).to_string(), "tensor<4xi1>");
    }

    #[test]
    fn literals_have_a_dot_and_hex_for_infinities() {
        assert_eq!(DType::F32.literal(1.0), "1.000000000e0");
        assert_eq!(DType::F32.literal(f64::NEG_INFINITY), "0xFF800000");
        assert_eq!(DType::BF16.literal(f64::NEG_INFINITY), "0xFF80");
        assert_eq!(DType::F64.literal(f64::NEG_INFINITY), "0xFFF0000000000000");
        assert_eq!(DType::I32.literal(3.0), "3");
    }

    #[test]
    fn parses_dtype_names_and_rejects_others() {
        assert_eq!("bf16".parse::<DType>().unwrap(), DType::BF16);
        let e = "f16".parse::<DType>().unwrap_err().to_string();
        assert!(e.contains("'f16'") && e.contains("f32, bf16, f64"), "{e}");
    }
}
