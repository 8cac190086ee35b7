//! `.npy` image arrays: little-endian float32, shape `[N, H, W, C]` (NHWC), C order.
//!
//! The header's shape is checked against the bytes that follow before anything is allocated
//! from it, so a file that claims 10^12 elements is an error, not a 4 TB allocation
//! (`ndarray_npy::read_npy` allocates the stated size first; here the data is viewed in place
//! and copied once).

use std::path::Path;

use ndarray::Array4;
use ndarray_npy::ViewNpyExt;

use crate::error::{Error, Result};

/// `\x93NUMPY`, then the major and minor version bytes.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The length of the header dictionary and where it starts: version 1 stores it in 2 bytes,
/// versions 2 and 3 in 4 (little-endian), right after the 8 bytes of magic and version.
fn header_extent(bytes: &[u8]) -> std::result::Result<(usize, usize), String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a .npy file: it must start with the magic '\\x93NUMPY' and a version".into());
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(format!(".npy version {v}.{} is not supported (1, 2 or 3 are)", bytes[7])),
    };
    Ok((len, start))
}

/// Parses `.npy` bytes holding a float32 `[N, H, W, C]` array. Errors (a message without
/// the file name) say what is wrong: magic, a header longer than the file, a dtype other
/// than little-endian `<f4`, the wrong number of dimensions, or data shorter or longer than
/// the shape states. Allocates one copy of the data, never more than the input's size.
pub fn images_from_npy_bytes(bytes: &[u8]) -> std::result::Result<Array4<f32>, String> {
    let (len, start) = header_extent(bytes)?;
    if len > bytes.len() - start {
        return Err(format!(
            "truncated: the header claims {len} bytes from byte offset {start}, but the file has {} in all",
            bytes.len()
        ));
    }
    // The data is viewed in place, which needs 4-byte alignment: copy into u32 words first.
    let mut words = vec![0u32; bytes.len().div_ceil(4)];
    let aligned: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
    aligned[..bytes.len()].copy_from_slice(bytes);
    let aligned = &aligned[..bytes.len()];
    let view = ndarray::ArrayView4::<f32>::view_npy(aligned).map_err(|e| match e {
        ndarray_npy::ViewNpyError::NonNativeEndian => {
            "the array is big-endian float32; save it little-endian ('<f4', numpy's default on x86 and ARM)".to_string()
        }
        other => format!("{other} (expected a little-endian float32 array of 4 dimensions, NHWC)"),
    })?;
    Ok(view.to_owned())
}

/// Reads a float32 `[N, H, W, C]` `.npy` file (see [`images_from_npy_bytes`]); errors name
/// the file.
pub fn read_images_npy(path: &Path) -> Result<Array4<f32>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    images_from_npy_bytes(&bytes).map_err(|m| Error::file(path, m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray_npy::WriteNpyExt;

    fn npy(a: &Array4<f32>) -> Vec<u8> {
        let mut out = Vec::new();
        a.write_npy(&mut out).unwrap();
        out
    }

    #[test]
    fn round_trips_and_rejects_wrong_sizes() {
        let a = Array4::from_shape_fn((2, 3, 4, 1), |(n, y, x, _)| (n * 100 + y * 10 + x) as f32);
        let bytes = npy(&a);
        assert_eq!(images_from_npy_bytes(&bytes).unwrap(), a);
        let e = images_from_npy_bytes(&bytes[..bytes.len() - 4]).unwrap_err();
        assert!(e.contains("expected a little-endian float32"), "{e}");
        let e = images_from_npy_bytes(b"\x93NUMPY\x02\x00\xff\xff\xff\xff{").unwrap_err();
        assert!(e.contains("header claims 4294967295 bytes"), "{e}");
        let e = images_from_npy_bytes(b"PK\x03\x04 a zip").unwrap_err();
        assert!(e.contains("not a .npy file"), "{e}");
    }
}
