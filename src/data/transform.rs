//! Transforms: per-channel normalisation, centred zero padding, and the seeded training
//! augmentation (random crop with zero padding, random horizontal flip).

use rand::RngCore;

use crate::error::{Error, Result};

use super::batch::below;
use super::dataset::Dataset;

/// Per-channel normalisation `x' = (x - mean[c]) / std[c]`, on NHWC pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalize {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalize {
    /// Checks that `mean` and `std` have one value per channel and every `std` is positive.
    pub fn new(mean: Vec<f32>, std: Vec<f32>) -> Result<Self> {
        if mean.is_empty() || mean.len() != std.len() {
            return Err(Error::invalid(
                "normalisation",
                format!("mean {mean:?}, std {std:?}"),
                "give one mean and one std per channel",
            ));
        }
        if let Some(s) = std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(Error::invalid("normalisation std", s, "every std must be a positive number"));
        }
        if let Some(m) = mean.iter().find(|m| !m.is_finite()) {
            return Err(Error::invalid("normalisation mean", m, "every mean must be a finite number"));
        }
        Ok(Normalize { mean, std })
    }

    /// ImageNet's statistics, for pixels in `[0, 1]`: mean (0.485, 0.456, 0.406),
    /// std (0.229, 0.224, 0.225).
    pub fn imagenet() -> Self {
        Normalize { mean: vec![0.485, 0.456, 0.406], std: vec![0.229, 0.224, 0.225] }
    }

    /// The per-channel mean and (population) standard deviation of `data`'s pixels, summed in
    /// `f64`. A channel that is constant gets std 1 so that normalising it stays finite.
    pub fn from_dataset(data: &Dataset) -> Self {
        let c = data.channels;
        let mut sum = vec![0f64; c];
        let mut sq = vec![0f64; c];
        for px in data.images.chunks_exact(c) {
            for k in 0..c {
                let v = px[k] as f64;
                sum[k] += v;
                sq[k] += v * v;
            }
        }
        let count = (data.images.len() / c).max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / count).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(s, m)| {
                let sd = (s / count - m * m).max(0.0).sqrt();
                if sd > 1e-12 {
                    sd as f32
                } else {
                    1.0
                }
            })
            .collect();
        Normalize { mean: mean.into_iter().map(|m| m as f32).collect(), std }
    }

    /// The channel count this normalisation is for.
    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    pub(crate) fn check_channels(&self, channels: usize, name: &str) -> Result<()> {
        if self.channels() != channels {
            return Err(Error::invalid(
                "normalisation",
                format!("{} channels", self.channels()),
                format!("dataset '{name}' has {channels} channels; give one mean and std per channel"),
            ));
        }
        Ok(())
    }

    /// Normalises NHWC pixels in place (any number of whole pixels).
    pub fn apply(&self, pixels: &mut [f32]) {
        let c = self.channels();
        let inv: Vec<f32> = self.std.iter().map(|s| 1.0 / s).collect();
        for px in pixels.chunks_exact_mut(c) {
            for k in 0..c {
                px[k] = (px[k] - self.mean[k]) * inv[k];
            }
        }
    }

    /// Normalises every image of `data` in place.
    pub fn apply_dataset(&self, data: &mut Dataset) -> Result<()> {
        self.check_channels(data.channels, &data.name)?;
        self.apply(&mut data.images);
        Ok(())
    }
}

/// Training augmentation: a random `h x w` crop of the image zero-padded by `pad` on every
/// side (a shift of `-pad..=pad` in each direction), then a horizontal flip with probability
/// 1/2. Both are switchable off; [`Augment::none`] is the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Augment {
    /// Zero padding of the random crop; 0 turns cropping off.
    pub pad: usize,
    /// Random horizontal flip.
    pub flip: bool,
}

impl Augment {
    /// The standard CIFAR augmentation: crop with padding 4, random flip.
    pub fn standard() -> Self {
        Augment { pad: 4, flip: true }
    }

    /// No augmentation.
    pub fn none() -> Self {
        Augment { pad: 0, flip: false }
    }

    /// Whether this changes anything.
    pub fn is_active(&self) -> bool {
        self.pad > 0 || self.flip
    }

    /// Writes the augmented `src` (one HWC image of size `hw` with `c` channels) into `dst`,
    /// which has the same size. Draws the crop offsets (if `pad > 0`) then the flip (if `flip`)
    /// from `rng`.
    pub fn apply(&self, src: &[f32], dst: &mut [f32], hw: (usize, usize), c: usize, rng: &mut impl RngCore) {
        let (h, w) = hw;
        assert_eq!(src.len(), h * w * c, "augment: source is not one {h}x{w}x{c} image");
        assert_eq!(dst.len(), src.len(), "augment: destination size differs from source");
        let (dy, dx) = if self.pad > 0 {
            let span = 2 * self.pad as u64 + 1;
            (below(rng, span) as isize - self.pad as isize, below(rng, span) as isize - self.pad as isize)
        } else {
            (0, 0)
        };
        let flip = self.flip && rng.next_u32() & 1 == 1;
        crop_shift(src, dst, hw, c, dy, dx, flip);
    }
}

/// `dst[y][x] = src[y + dy][x' + dx]` (zero outside), where `x' = w-1-x` if `flip` else `x`:
/// the crop at offset `(pad + dy, pad + dx)` of the zero-padded image, then flipped.
fn crop_shift(src: &[f32], dst: &mut [f32], (h, w): (usize, usize), c: usize, dy: isize, dx: isize, flip: bool) {
    for y in 0..h {
        let sy = y as isize + dy;
        let row = &mut dst[y * w * c..(y + 1) * w * c];
        if sy < 0 || sy >= h as isize {
            row.fill(0.0);
            continue;
        }
        let srow = &src[sy as usize * w * c..(sy as usize + 1) * w * c];
        for x in 0..w {
            let sx = if flip { (w - 1 - x) as isize } else { x as isize } + dx;
            let out = &mut row[x * c..(x + 1) * c];
            if sx < 0 || sx >= w as isize {
                out.fill(0.0);
            } else {
                out.copy_from_slice(&srow[sx as usize * c..(sx as usize + 1) * c]);
            }
        }
    }
}

impl Dataset {
    /// Pads every image with zeros to `h x w`, centred: `(h - old_h) / 2` rows on top (the
    /// rest below), likewise for columns. Fashion-MNIST's 28x28 becomes 32x32 with 2 on each
    /// side, the input size of VGG-16's CIFAR form.
    pub fn pad_to(&self, h: usize, w: usize) -> Result<Dataset> {
        let (oh, ow) = self.hw;
        if h < oh || w < ow {
            return Err(Error::invalid(
                "padded size",
                format!("{h}x{w}"),
                format!("dataset '{}' has {oh}x{ow} images; padding cannot shrink them", self.name),
            ));
        }
        let c = self.channels;
        let (top, left) = ((h - oh) / 2, (w - ow) / 2);
        let per_new = h * w * c;
        let mut images = vec![0f32; self.n * per_new];
        for (i, out) in images.chunks_exact_mut(per_new).enumerate() {
            let img = self.image(i);
            for y in 0..oh {
                let d = ((y + top) * w + left) * c;
                out[d..d + ow * c].copy_from_slice(&img[y * ow * c..(y + 1) * ow * c]);
            }
        }
        Ok(Dataset { images, hw: (h, w), ..self.clone_meta() })
    }

    fn clone_meta(&self) -> Dataset {
        Dataset {
            name: self.name.clone(),
            images: Vec::new(),
            labels: self.labels.clone(),
            n: self.n,
            hw: self.hw,
            channels: self.channels,
            classes: self.classes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::batch::keyed_rng;

    #[test]
    fn crop_shift_moves_and_zero_fills() {
        // 3x3, one channel, values 1..=9.
        let src: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut dst = vec![0.0; 9];
        crop_shift(&src, &mut dst, (3, 3), 1, 1, -1, false);
        assert_eq!(dst, vec![0.0, 4.0, 5.0, 0.0, 7.0, 8.0, 0.0, 0.0, 0.0]);
        crop_shift(&src, &mut dst, (3, 3), 1, 0, 0, true);
        assert_eq!(dst, vec![3.0, 2.0, 1.0, 6.0, 5.0, 4.0, 9.0, 8.0, 7.0]);
    }

    #[test]
    fn normalize_from_dataset_gives_zero_mean_unit_std() {
        let images: Vec<f32> = (0..2 * 4 * 2).map(|i| (i % 5) as f32 * 0.1 + (i % 2) as f32).collect();
        let mut d = Dataset::new("t", images, vec![0, 1], (2, 2), 2, 2).unwrap();
        let n = Normalize::from_dataset(&d);
        n.apply_dataset(&mut d).unwrap();
        let again = Normalize::from_dataset(&d);
        for k in 0..2 {
            assert!(again.mean[k].abs() < 1e-5, "{again:?}");
            assert!((again.std[k] - 1.0).abs() < 1e-4, "{again:?}");
        }
    }

    #[test]
    fn augment_none_is_identity() {
        let src: Vec<f32> = (0..2 * 2 * 3).map(|v| v as f32).collect();
        let mut dst = vec![0.0; src.len()];
        Augment::none().apply(&src, &mut dst, (2, 2), 3, &mut keyed_rng(0, 0, 0, 0));
        assert_eq!(dst, src);
    }
}
