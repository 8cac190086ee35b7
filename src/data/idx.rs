//! IDX files, the format of MNIST and Fashion-MNIST, gzip-compressed or raw.
//!
//! An IDX file is a 4-byte magic `00 00 TT DD` (`TT` the element type, `08` for u8; `DD` the
//! number of dimensions), `DD` big-endian u32 sizes, then the elements, row-major. Images are
//! `0x00000803` (n x rows x cols), labels `0x00000801` (n). Whether a file is gzip is decided by
//! its first two bytes (`1f 8b`), not by its name.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

use super::dataset::Dataset;

/// Magic of an IDX file of u8 images (3 dimensions: n x rows x cols).
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic of an IDX file of u8 labels (1 dimension: n).
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// Reads a whole file, decompressing it if it starts with the gzip magic `1f 8b`.
pub(crate) fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    gunzip_if_gz(raw).map_err(|m| Error::file(path, m))
}

/// `raw` itself, or its decompressed contents if it starts with the gzip magic `1f 8b`; the
/// error (a message without the file name) says where a corrupt or truncated stream broke.
pub fn gunzip_if_gz(raw: Vec<u8>) -> std::result::Result<Vec<u8>, String> {
    if raw.len() < 2 || raw[0] != 0x1f || raw[1] != 0x8b {
        return Ok(raw);
    }
    // Real IDX files grow about 1.8x (images) to 3x (labels) when inflated.
    let mut out = Vec::with_capacity(raw.len() * 2);
    flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out).map_err(|e| {
        format!("gzip stream is corrupt or truncated ({e}) after {} decompressed bytes", out.len())
    })?;
    Ok(out)
}

/// The contents of an IDX file of u8 elements: its magic, its dimensions, its elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    pub magic: u32,
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

impl IdxArray {
    /// Byte offset of the first element in the (decompressed) file.
    pub fn header_len(&self) -> usize {
        4 + 4 * self.dims.len()
    }
}

/// Reads an IDX file of u8 elements (gzip or raw), checking that its size matches its header
/// exactly: a short file names the first incomplete item and its byte offset, a long one the
/// offset where the extra bytes start. Offsets are in the decompressed stream.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    parse_idx(read_maybe_gz(path)?).map_err(|m| Error::file(path, m))
}

/// Parses the (decompressed) bytes of an IDX file of u8 elements, as [`read_idx`]; the error
/// is a message without the file name. Takes the bytes to reuse them as the data.
pub fn parse_idx(bytes: Vec<u8>) -> std::result::Result<IdxArray, String> {
    if bytes.len() < 4 {
        return Err(format!("truncated: {} bytes, an IDX header needs at least 4", bytes.len()));
    }
    let magic = u32::from_be_bytes(bytes[0..4].try_into().unwrap());
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(format!(
            "wrong magic 0x{magic:08x} at byte offset 0: not an IDX file (expected 0x{IDX_IMAGES_MAGIC:08x} \
             for images or 0x{IDX_LABELS_MAGIC:08x} for labels)"
        ));
    }
    if bytes[2] != 0x08 {
        return Err(format!(
            "IDX element type 0x{:02x} at byte offset 2 is not supported: only 0x08 (u8) is",
            bytes[2]
        ));
    }
    let ndims = bytes[3] as usize;
    if ndims == 0 {
        return Err("IDX header at byte offset 3 declares 0 dimensions".to_string());
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(format!(
            "truncated: {} bytes, but the header of {ndims} dimensions needs {header}",
            bytes.len()
        ));
    }
    let dims: Vec<usize> =
        (0..ndims).map(|d| u32::from_be_bytes(bytes[4 + 4 * d..8 + 4 * d].try_into().unwrap()) as usize).collect();
    let overflow = || format!("dimensions {dims:?} overflow: the data would be more than {} bytes", usize::MAX);
    let item = dims[1..].iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(overflow)?;
    let want = dims[0].checked_mul(item).ok_or_else(overflow)?;
    let have = bytes.len() - header;
    if have < want {
        let first_bad = have.checked_div(item).unwrap_or(0);
        return Err(format!(
            "truncated: the header (dimensions {dims:?}) promises {want} bytes of data from byte offset \
             {header}, but only {have} follow; item #{first_bad} at byte offset {} is incomplete",
            header + first_bad * item
        ));
    }
    if have > want {
        return Err(format!(
            "{} unexpected byte(s) after the last of {} items, from byte offset {}",
            have - want,
            dims[0],
            header + want
        ));
    }
    let mut data = bytes;
    data.drain(..header);
    Ok(IdxArray { magic, dims, data })
}

fn expect_magic(path: &Path, a: &IdxArray, want: u32, what: &str) -> Result<()> {
    if a.magic != want {
        return Err(Error::file(
            path,
            format!("wrong magic 0x{:08x} at byte offset 0: expected 0x{want:08x} ({what})", a.magic),
        ));
    }
    Ok(())
}

/// Loads an IDX images file and its labels file (each gzip or raw) as a one-channel dataset
/// with pixels scaled to `[0, 1]`. Checks the magics, that both files hold the same number of
/// samples, and that every label is `< classes`.
pub fn load_idx_pair(images_path: &Path, labels_path: &Path, classes: usize) -> Result<Dataset> {
    let imgs = read_idx(images_path)?;
    expect_magic(images_path, &imgs, IDX_IMAGES_MAGIC, "IDX u8 images, n x rows x cols")?;
    let labs = read_idx(labels_path)?;
    expect_magic(labels_path, &labs, IDX_LABELS_MAGIC, "IDX u8 labels, n")?;
    let (n, h, w) = (imgs.dims[0], imgs.dims[1], imgs.dims[2]);
    if labs.dims[0] != n {
        return Err(Error::file(
            labels_path,
            format!("holds {} labels but {} holds {n} images", labs.dims[0], images_path.display()),
        ));
    }
    if let Some((i, &l)) = labs.data.iter().enumerate().find(|(_, &l)| l as usize >= classes) {
        return Err(Error::file(
            labels_path,
            format!("label {l} of record #{i} (byte offset {}) is out of range 0..{classes}", labs.header_len() + i),
        ));
    }
    let lut: [f32; 256] = std::array::from_fn(|v| v as f32 / 255.0);
    let images = imgs.data.iter().map(|&b| lut[b as usize]).collect();
    let labels = labs.data.iter().map(|&l| l as u32).collect();
    let name =
        images_path.file_name().map(|f| f.to_string_lossy().trim_end_matches(".gz").to_string()).unwrap_or_default();
    Dataset::new(name, images, labels, (h, w), 1, classes)
}
