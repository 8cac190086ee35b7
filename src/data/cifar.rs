//! CIFAR-10 and CIFAR-100 in their binary form ("CIFAR-10 binary version (suitable for C
//! programs)").
//!
//! A file is a sequence of fixed-size records: the label byte(s), then 3072 pixel bytes CHW
//! (the 1024 red values of the 32x32 image row by row, then green, then blue). CIFAR-10 records
//! have one label byte (0..10): `data_batch_1.bin` .. `data_batch_5.bin` (train) and
//! `test_batch.bin`, 10,000 records each. CIFAR-100 records have two, coarse (0..20) then fine
//! (0..100), of which we keep the fine one: `train.bin` (50,000) and `test.bin` (10,000).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

use super::dataset::{Dataset, Split};
use super::idx::read_maybe_gz;

const SIDE: usize = 32;
const PLANE: usize = SIDE * SIDE;
const PIXELS: usize = 3 * PLANE;

/// Which CIFAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarKind {
    /// 1 label byte per record, 10 classes.
    Cifar10,
    /// 2 label bytes per record (coarse, fine); the fine label, 100 classes, is used.
    Cifar100,
}

impl CifarKind {
    /// Label bytes per record.
    pub fn label_bytes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 1,
            CifarKind::Cifar100 => 2,
        }
    }

    /// Bytes per record: label bytes + 3072.
    pub fn record_len(self) -> usize {
        self.label_bytes() + PIXELS
    }

    /// Classes of the label we keep.
    pub fn classes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 10,
            CifarKind::Cifar100 => 100,
        }
    }

    /// The data set's usual short name.
    pub fn name(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "cifar10",
            CifarKind::Cifar100 => "cifar100",
        }
    }

    /// The file names of a split, in load order.
    pub fn files(self, split: Split) -> Vec<String> {
        match (self, split) {
            (CifarKind::Cifar10, Split::Train) => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
            (CifarKind::Cifar10, Split::Test) => vec!["test_batch.bin".into()],
            (CifarKind::Cifar100, Split::Train) => vec!["train.bin".into()],
            (CifarKind::Cifar100, Split::Test) => vec!["test.bin".into()],
        }
    }

    /// The folder the official archive extracts to.
    fn archive_dir(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "cifar-10-batches-bin",
            CifarKind::Cifar100 => "cifar-100-binary",
        }
    }
}

/// Appends one file's records to `images` (NHWC, `[0, 1]`) and `labels`, checking its size and
/// its labels.
fn append_file(path: &Path, kind: CifarKind, images: &mut Vec<f32>, labels: &mut Vec<u32>) -> Result<()> {
    append_records(&read_maybe_gz(path)?, kind, images, labels).map_err(|m| Error::file(path, m))
}

/// Appends the records of one (decompressed) CIFAR binary file to `images` (NHWC, `[0, 1]`,
/// 3072 values per record) and `labels`, as [`load_cifar_files`] does for each file. The error
/// (a message without the file name) names the record and byte offset that is wrong; on error the
/// records before the wrong one stay appended.
pub fn append_records(
    bytes: &[u8],
    kind: CifarKind,
    images: &mut Vec<f32>,
    labels: &mut Vec<u32>,
) -> std::result::Result<(), String> {
    let rec = kind.record_len();
    if bytes.is_empty() {
        return Err(format!("empty: a {} file holds {rec}-byte records", kind.name()));
    }
    if bytes.len() % rec != 0 {
        let whole = bytes.len() / rec;
        return Err(format!(
            "{} bytes is not a multiple of the {rec}-byte {} record: record #{whole} at byte offset {} \
             is incomplete ({} of {rec} bytes); the file is truncated or not {} binary",
            bytes.len(),
            kind.name(),
            whole * rec,
            bytes.len() - whole * rec,
            kind.name()
        ));
    }
    let lut: [f32; 256] = std::array::from_fn(|v| v as f32 / 255.0);
    let n = bytes.len() / rec;
    images.reserve(n * PIXELS);
    labels.reserve(n);
    for (i, r) in bytes.chunks_exact(rec).enumerate() {
        let bad = |what: &str, v: u8, max: usize| {
            format!("record #{i} (byte offset {}): {what} {v} is out of range 0..{max}", i * rec)
        };
        let label = match kind {
            CifarKind::Cifar10 => r[0],
            CifarKind::Cifar100 => {
                if r[0] >= 20 {
                    return Err(bad("coarse label", r[0], 20));
                }
                r[1]
            }
        };
        if label as usize >= kind.classes() {
            return Err(bad(if kind == CifarKind::Cifar100 { "fine label" } else { "label" }, label, kind.classes()));
        }
        labels.push(label as u32);
        let px = &r[kind.label_bytes()..];
        let (red, rest) = px.split_at(PLANE);
        let (green, blue) = rest.split_at(PLANE);
        for p in 0..PLANE {
            images.extend_from_slice(&[lut[red[p] as usize], lut[green[p] as usize], lut[blue[p] as usize]]);
        }
    }
    Ok(())
}

/// Loads CIFAR binary files, in order, into one 32x32x3 dataset with pixels in `[0, 1]`.
/// A file may be gzip-compressed (detected by its magic).
pub fn load_cifar_files(paths: &[PathBuf], kind: CifarKind, name: &str) -> Result<Dataset> {
    if paths.is_empty() {
        return Err(Error::invalid("CIFAR file list", "[]", "give at least one .bin file"));
    }
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for p in paths {
        append_file(p, kind, &mut images, &mut labels)?;
    }
    Dataset::new(name, images, labels, (SIDE, SIDE), 3, kind.classes())
}

/// The folder of `dir` that holds the split's files: `dir` itself or the folder the official
/// archive extracts to (`cifar-10-batches-bin/`, `cifar-100-binary/`).
fn split_dir(dir: &Path, kind: CifarKind, split: Split) -> Result<PathBuf> {
    let first = &kind.files(split)[0];
    let candidates = [dir.to_path_buf(), dir.join(kind.archive_dir())];
    candidates.iter().find(|d| d.join(first).is_file()).cloned().ok_or_else(|| {
        Error::file(
            dir,
            format!(
                "no {first} here nor in {}/: CIFAR is in no registry here; download the binary version \
                 from https://www.cs.toronto.edu/~kriz/cifar.html and extract it",
                kind.archive_dir()
            ),
        )
    })
}

/// CIFAR-10 from `dir` (or `dir/cifar-10-batches-bin/`): train is `data_batch_1..5.bin`,
/// 50,000 images; test is `test_batch.bin`, 10,000.
pub fn cifar10(dir: &Path, split: Split) -> Result<Dataset> {
    load_split(dir, CifarKind::Cifar10, split)
}

/// CIFAR-100 from `dir` (or `dir/cifar-100-binary/`) with its fine labels: `train.bin`,
/// 50,000 images; `test.bin`, 10,000.
pub fn cifar100(dir: &Path, split: Split) -> Result<Dataset> {
    load_split(dir, CifarKind::Cifar100, split)
}

fn load_split(dir: &Path, kind: CifarKind, split: Split) -> Result<Dataset> {
    let d = split_dir(dir, kind, split)?;
    let paths: Vec<PathBuf> = kind.files(split).iter().map(|f| d.join(f)).collect();
    load_cifar_files(&paths, kind, &format!("{}-{split}", kind.name()))
}
