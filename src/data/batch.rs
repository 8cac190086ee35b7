//! Fixed-size batches for a compiled program, and the seeded orders they are drawn in.
//!
//! A compiled XLA program has one batch size, so every [`Batch`] holds exactly `batch` images.
//! Evaluation keeps the last partial batch, padded with zero images and label 0, and says in
//! [`Batch::valid`] how many are real; training drops it ([`LastBatch`]).
//!
//! All randomness is ChaCha8 keyed by `(seed, purpose, epoch)` with the batch index as the
//! stream, and integers are drawn with our own unbiased [`below`], so the same seed gives the
//! same epoch orders and the same augmentations on every machine and `rand` version.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

use super::dataset::Dataset;
use super::transform::{Augment, Normalize};

/// Splits `count` images, in order, into `ceil(count / max_batch)` consecutive batches of
/// near-equal size (sizes differ by at most one, larger first), so a statistic computed
/// batch by batch sees every image and needs at most two compiled batch sizes: 40 images
/// with `max_batch` 32 are two batches of 20, 70 are 24, 23, 23. Returns image index ranges;
/// empty when `count` is 0. `max_batch` 0 is taken as 1.
pub fn even_batches(count: usize, max_batch: usize) -> Vec<std::ops::Range<usize>> {
    let k = count.div_ceil(max_batch.max(1));
    let mut start = 0;
    (0..k)
        .map(|i| {
            let len = count / k + usize::from(i < count % k);
            start += len;
            start - len..start
        })
        .collect()
}

/// Purposes, so that the shuffle, the subset and the augmentation of one seed are independent.
const SHUFFLE: u64 = 0x5348_5546_464c_4531; // "SHUFFLE1"
const SUBSET: u64 = 0x5355_4253_4554_3031; // "SUBSET01"
const AUGMENT: u64 = 0x4155_474d_454e_5431; // "AUGMENT1"

/// The generator for one `(seed, purpose, epoch, stream)`.
pub(crate) fn keyed_rng(seed: u64, purpose: u64, epoch: u64, stream: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[0..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&purpose.to_le_bytes());
    key[16..24].copy_from_slice(&epoch.to_le_bytes());
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(stream);
    rng
}

/// A uniform integer in `0..n` (`n > 0`), without modulo bias (Lemire's method).
pub(crate) fn below(rng: &mut impl RngCore, n: u64) -> u64 {
    debug_assert!(n > 0);
    let mut m = rng.next_u64() as u128 * n as u128;
    if (m as u64) < n {
        let threshold = n.wrapping_neg() % n;
        while (m as u64) < threshold {
            m = rng.next_u64() as u128 * n as u128;
        }
    }
    (m >> 64) as u64
}

/// The order in which epoch `epoch` visits `n` samples: a permutation of `0..n`, a
/// Fisher–Yates shuffle keyed by `(seed, epoch)`. Same arguments, same order.
pub fn epoch_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = keyed_rng(seed, SHUFFLE, epoch, 0);
    for i in (1..n).rev() {
        let j = below(&mut rng, i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

/// `k <= n` distinct indices of `0..n` chosen by `seed` (a partial Fisher–Yates shuffle).
pub(crate) fn random_indices(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let k = k.min(n);
    let mut all: Vec<usize> = (0..n).collect();
    let mut rng = keyed_rng(seed, SUBSET, 0, 0);
    for i in 0..k {
        let j = i + below(&mut rng, (n - i) as u64) as usize;
        all.swap(i, j);
    }
    all.truncate(k);
    all
}

/// What to do with the last batch when the sample count is not a multiple of the batch size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastBatch {
    /// Keep it, padded with zero images and label 0 (evaluation).
    Pad,
    /// Leave it out (training).
    Drop,
}

/// One batch: exactly `batch` images (NHWC) and labels, of which the first `valid` are real.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub images: Vec<f32>,
    pub labels: Vec<i32>,
    pub valid: usize,
}

/// An iterator over the batches of a [`Dataset`]. Build one with [`Batches::new`] or the
/// shortcuts [`Dataset::eval_batches`] and [`Dataset::train_batches`], then optionally
/// [`shuffled`](Batches::shuffled), [`augmented`](Batches::augmented) and
/// [`normalized`](Batches::normalized). Each image is copied, augmented, then normalised, so
/// the crop padding is zero in pixel space, as with torchvision's `RandomCrop(padding=4)`
/// before `Normalize`.
#[derive(Debug, Clone)]
pub struct Batches<'a> {
    data: &'a Dataset,
    order: Vec<usize>,
    batch: usize,
    last: LastBatch,
    augment: Option<(Augment, u64, u64)>,
    normalize: Option<Normalize>,
    next: usize,
}

impl<'a> Batches<'a> {
    /// Batches of `batch` samples in dataset order.
    pub fn new(data: &'a Dataset, batch: usize, last: LastBatch) -> Result<Self> {
        if batch == 0 {
            return Err(Error::invalid("batch size", 0, "use a batch size of at least 1"));
        }
        Ok(Batches { data, order: (0..data.n).collect(), batch, last, augment: None, normalize: None, next: 0 })
    }

    /// Visit the samples in [`epoch_order`]`(n, seed, epoch)`.
    pub fn shuffled(mut self, seed: u64, epoch: u64) -> Self {
        self.order = epoch_order(self.data.n, seed, epoch);
        self
    }

    /// Visit the samples at `order` (indices may repeat or be left out).
    pub fn with_order(mut self, order: Vec<usize>) -> Result<Self> {
        if let Some(&bad) = order.iter().find(|&&i| i >= self.data.n) {
            return Err(Error::invalid(
                "sample index",
                bad,
                format!("dataset '{}' has {} samples", self.data.name, self.data.n),
            ));
        }
        self.order = order;
        Ok(self)
    }

    /// Apply `augment` to every image; batch `b` of epoch `epoch` draws its crops and flips
    /// from a generator keyed by `(seed, epoch, b)`. A disabled `augment` changes nothing.
    pub fn augmented(mut self, augment: Augment, seed: u64, epoch: u64) -> Self {
        self.augment = augment.is_active().then_some((augment, seed, epoch));
        self
    }

    /// Normalise every real image (after augmentation); padding images stay zero.
    pub fn normalized(mut self, normalize: Normalize) -> Result<Self> {
        normalize.check_channels(self.data.channels, &self.data.name)?;
        self.normalize = Some(normalize);
        Ok(self)
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch
    }

    /// How many batches the whole pass yields.
    pub fn num_batches(&self) -> usize {
        match self.last {
            LastBatch::Pad => self.order.len().div_ceil(self.batch),
            LastBatch::Drop => self.order.len() / self.batch,
        }
    }

    fn make(&self, b: usize) -> Batch {
        let d = self.data;
        let per = d.image_len();
        let start = b * self.batch;
        let valid = self.batch.min(self.order.len() - start);
        let mut images = vec![0f32; self.batch * per];
        let mut labels = vec![0i32; self.batch];
        let mut rng = self.augment.map(|(_, seed, epoch)| keyed_rng(seed, AUGMENT, epoch, b as u64));
        for (k, &i) in self.order[start..start + valid].iter().enumerate() {
            let dst = &mut images[k * per..(k + 1) * per];
            match (&self.augment, rng.as_mut()) {
                (Some((aug, _, _)), Some(rng)) => aug.apply(d.image(i), dst, d.hw, d.channels, rng),
                _ => dst.copy_from_slice(d.image(i)),
            }
            if let Some(norm) = &self.normalize {
                norm.apply(dst);
            }
            labels[k] = d.labels[i] as i32;
        }
        Batch { images, labels, valid }
    }
}

impl Iterator for Batches<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.next >= self.num_batches() {
            return None;
        }
        let b = self.make(self.next);
        self.next += 1;
        Some(b)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.num_batches().saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Batches<'_> {}

impl Dataset {
    /// Evaluation batches: dataset order, last batch padded, no augmentation.
    pub fn eval_batches(&self, batch: usize) -> Result<Batches<'_>> {
        Batches::new(self, batch, LastBatch::Pad)
    }

    /// Training batches of epoch `epoch`: shuffled by `(seed, epoch)`, last partial batch
    /// dropped, `augment` applied with generators keyed by `(seed, epoch, batch index)`.
    pub fn train_batches(&self, batch: usize, seed: u64, epoch: u64, augment: Augment) -> Result<Batches<'_>> {
        Ok(Batches::new(self, batch, LastBatch::Drop)?.shuffled(seed, epoch).augmented(augment, seed, epoch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_batches_cover_every_image_with_at_most_two_sizes() {
        assert_eq!(even_batches(40, 32), vec![0..20, 20..40]);
        assert_eq!(even_batches(70, 32), vec![0..24, 24..47, 47..70]);
        assert_eq!(even_batches(64, 32), vec![0..32, 32..64]);
        assert_eq!(even_batches(5, 32), vec![0..5]);
        assert_eq!(even_batches(0, 32), Vec::<std::ops::Range<usize>>::new());
        for n in 1..200 {
            for b in 1..40 {
                let r = even_batches(n, b);
                assert_eq!(r.len(), n.div_ceil(b));
                assert_eq!((r[0].start, r[r.len() - 1].end), (0, n));
                assert!(r.windows(2).all(|w| w[0].end == w[1].start));
                let sizes: Vec<usize> = r.iter().map(|x| x.len()).collect();
                assert!(sizes.iter().all(|&s| s <= b && s + 1 >= sizes[0] && s <= sizes[0]), "{n} {b} {sizes:?}");
            }
        }
    }

    #[test]
    fn epoch_order_is_a_seeded_permutation() {
        let a = epoch_order(1000, 7, 3);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_eq!(a, epoch_order(1000, 7, 3));
        assert_ne!(a, epoch_order(1000, 7, 4));
        assert_ne!(a, epoch_order(1000, 8, 3));
        assert_ne!(a, (0..1000).collect::<Vec<_>>());
        assert!(epoch_order(0, 1, 1).is_empty());
        assert_eq!(epoch_order(1, 1, 1), vec![0]);
    }

    #[test]
    fn below_is_roughly_uniform_and_in_range() {
        let mut rng = keyed_rng(1, 2, 3, 4);
        let mut counts = [0usize; 7];
        for _ in 0..70_000 {
            counts[below(&mut rng, 7) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn random_indices_are_distinct() {
        let idx = random_indices(100, 30, 5);
        let mut s = idx.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 30);
        assert!(s.iter().all(|&i| i < 100));
        assert_eq!(idx, random_indices(100, 30, 5));
        assert_eq!(random_indices(3, 10, 1).len(), 3);
    }
}
