//! [`Dataset`]: images and labels in memory, the one form every loader returns.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

use super::batch::random_indices;

/// Which part of a dataset: the training split or the test (evaluation) split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Test,
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Test => "test",
        })
    }
}

impl FromStr for Split {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "train" => Ok(Split::Train),
            "test" | "t10k" | "val" | "eval" => Ok(Split::Test),
            _ => Err(Error::invalid("split", s, "use 'train' or 'test'")),
        }
    }
}

/// Images and labels held in memory.
///
/// `images` is NHWC row-major: image `i` is `images[i * h * w * c ..][.. h * w * c]`, pixel
/// `(y, x)` of it starts at `(y * w + x) * c`. Loaders give pixels in `[0, 1]`; after
/// [`Normalize::apply_dataset`](super::Normalize::apply_dataset) they are normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Short name for reports, e.g. `fashion-mnist-train`.
    pub name: String,
    /// `n * h * w * channels` values, NHWC.
    pub images: Vec<f32>,
    /// `n` labels, each `< classes`.
    pub labels: Vec<u32>,
    pub n: usize,
    /// `(height, width)` of every image.
    pub hw: (usize, usize),
    pub channels: usize,
    pub classes: usize,
}

impl Dataset {
    /// Builds a dataset after checking that the sizes agree and every label is `< classes`.
    pub fn new(
        name: impl Into<String>,
        images: Vec<f32>,
        labels: Vec<u32>,
        hw: (usize, usize),
        channels: usize,
        classes: usize,
    ) -> Result<Self> {
        let name = name.into();
        let per = hw.0 * hw.1 * channels;
        if per == 0 {
            return Err(Error::invalid(
                "image shape",
                format!("{}x{}x{}", hw.0, hw.1, channels),
                "height, width and channels must all be at least 1",
            ));
        }
        if classes == 0 {
            return Err(Error::invalid("class count", 0, "a dataset needs at least one class"));
        }
        let n = labels.len();
        if images.len() != n * per {
            return Err(Error::invalid(
                format!("image buffer of dataset '{name}'"),
                format!("{} values", images.len()),
                format!("{n} labels of {}x{}x{channels} images need {} values", hw.0, hw.1, n * per),
            ));
        }
        if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l as usize >= classes) {
            return Err(Error::invalid(
                format!("label of sample {i} in dataset '{name}'"),
                l,
                format!("labels must be in 0..{classes}"),
            ));
        }
        Ok(Dataset { name, images, labels, n, hw, channels, classes })
    }

    /// Values per image: `h * w * channels`.
    pub fn image_len(&self) -> usize {
        self.hw.0 * self.hw.1 * self.channels
    }

    /// The pixels of image `i`, HWC.
    pub fn image(&self, i: usize) -> &[f32] {
        let per = self.image_len();
        &self.images[i * per..(i + 1) * per]
    }

    /// How many samples each class has.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// The samples at `indices`, in that order (indices may repeat).
    ///
    /// # Panics
    /// If an index is `>= n`.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let per = self.image_len();
        let mut images = Vec::with_capacity(indices.len() * per);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            images.extend_from_slice(self.image(i));
            labels.push(self.labels[i]);
        }
        Dataset {
            name: self.name.clone(),
            images,
            labels,
            n: indices.len(),
            hw: self.hw,
            channels: self.channels,
            classes: self.classes,
        }
    }

    /// The first `k` samples (all of them when `k >= n`).
    pub fn take(&self, k: usize) -> Dataset {
        let k = k.min(self.n);
        let per = self.image_len();
        Dataset {
            name: self.name.clone(),
            images: self.images[..k * per].to_vec(),
            labels: self.labels[..k].to_vec(),
            n: k,
            hw: self.hw,
            channels: self.channels,
            classes: self.classes,
        }
    }

    /// `k` samples drawn without replacement, chosen by `seed` (all of them when `k >= n`),
    /// kept in their original order. The same `(n, k, seed)` always picks the same samples.
    pub fn sample(&self, k: usize, seed: u64) -> Dataset {
        let mut idx = random_indices(self.n, k.min(self.n), seed);
        idx.sort_unstable();
        self.select(&idx)
    }
}
