//! Naming a dataset on the command line and loading it in the form a network expects.
//!
//! `--dataset` takes `fashion-mnist` (the default; found by [`fashion_mnist_dir`]),
//! `cifar10:DIR`, `cifar100:DIR` or `folder:DIR` (an ImageFolder tree). Pixels are scaled to
//! [0, 1], padded to the network's input size where smaller (28x28 -> 32x32 for the CIFAR
//! form), then normalised per channel with fixed, documented statistics:
//! Fashion-MNIST mean 0.2860 std 0.3530 (its training split); CIFAR-10/100 the usual
//! (0.4914, 0.4822, 0.4465) / (0.2470, 0.2435, 0.2616); ImageFolder ImageNet's.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::{cifar10, cifar100, fashion_mnist, Dataset, FolderConfig, ImageFolder, Normalize, Split};
use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    FashionMnist,
    Cifar10(PathBuf),
    Cifar100(PathBuf),
    Folder(PathBuf),
}

impl FromStr for Source {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::invalid("dataset", s, "use fashion-mnist, cifar10:DIR, cifar100:DIR or folder:DIR");
        match s.split_once(':') {
            None if s == "fashion-mnist" || s == "fashion_mnist" => Ok(Source::FashionMnist),
            Some(("cifar10", d)) if !d.is_empty() => Ok(Source::Cifar10(d.into())),
            Some(("cifar100", d)) if !d.is_empty() => Ok(Source::Cifar100(d.into())),
            Some(("folder", d)) if !d.is_empty() => Ok(Source::Folder(d.into())),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::FashionMnist => f.write_str("fashion-mnist"),
            Source::Cifar10(d) => write!(f, "cifar10:{}", d.display()),
            Source::Cifar100(d) => write!(f, "cifar100:{}", d.display()),
            Source::Folder(d) => write!(f, "folder:{}", d.display()),
        }
    }
}

impl Source {
    /// The normalisation applied to this dataset's [0, 1] pixels.
    pub fn normalize(&self) -> Normalize {
        match self {
            Source::FashionMnist => Normalize { mean: vec![0.2860], std: vec![0.3530] },
            Source::Cifar10(_) | Source::Cifar100(_) => {
                Normalize { mean: vec![0.4914, 0.4822, 0.4465], std: vec![0.2470, 0.2435, 0.2616] }
            }
            Source::Folder(_) => Normalize::imagenet(),
        }
    }

    /// Loads `split` as raw [0, 1] pixels, padded to `input` (h, w, c) when smaller; checks
    /// the channel count. Normalisation is left to the caller (see [`Source::normalize`]).
    pub fn load(&self, split: Split, input: [usize; 3]) -> Result<Dataset> {
        self.load_limited(split, input, None)
    }

    /// [`Source::load`] of at most `limit` images. The file formats take their first `limit`
    /// images (their test splits are in mixed class order). An ImageFolder tree is listed
    /// class by class, so it takes `limit` images chosen with a fixed seed (kept in tree
    /// order) and decodes only those.
    pub fn load_limited(&self, split: Split, input: [usize; 3], limit: Option<usize>) -> Result<Dataset> {
        let d = match self {
            Source::FashionMnist => fashion_mnist(split)?,
            Source::Cifar10(dir) => cifar10(dir, split)?,
            Source::Cifar100(dir) => cifar100(dir, split)?,
            Source::Folder(dir) => {
                let cfg = FolderConfig { normalize: None, ..FolderConfig::default() };
                let tree = ImageFolder::open(&dir.join(split_dir(split))).or_else(|_| ImageFolder::open(dir))?;
                match limit {
                    Some(k) => tree.subset(k, FOLDER_LIMIT_SEED).load(&cfg)?,
                    None => tree.load(&cfg)?,
                }
            }
        };
        let d = match limit {
            Some(k) => d.take(k),
            None => d,
        };
        let [h, w, c] = input;
        if d.channels != c {
            return Err(Error::invalid(
                "dataset",
                format!("{self} ({} channels)", d.channels),
                format!("the network takes {c} input channels; make one with --in-channels {}", d.channels),
            ));
        }
        if d.hw == (h, w) {
            Ok(d)
        } else if d.hw.0 <= h && d.hw.1 <= w {
            d.pad_to(h, w)
        } else {
            Err(Error::invalid(
                "dataset",
                format!("{self} ({}x{} images)", d.hw.0, d.hw.1),
                format!("the network takes {h}x{w} input; use a model with a larger --input-size"),
            ))
        }
    }

    /// Loads (at most `limit` images, as [`Source::load_limited`]) and normalises in one go.
    pub fn load_normalized(&self, split: Split, input: [usize; 3], limit: Option<usize>) -> Result<Dataset> {
        let mut d = self.load_limited(split, input, limit)?;
        self.normalize().apply_dataset(&mut d)?;
        Ok(d)
    }
}

/// Seed of the images a limited ImageFolder load keeps.
pub const FOLDER_LIMIT_SEED: u64 = 0x004c_494d_4954; // "LIMIT"

fn split_dir(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Test => "val",
    }
}
