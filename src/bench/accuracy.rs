//! Top-1 / top-5 accuracy and mean cross-entropy of a compiled model on a dataset.

use serde::{Deserialize, Serialize};

use crate::data::{Batches, Dataset, LastBatch};
use crate::error::{Error, Result};
use crate::runtime::CompiledModel;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    pub images: usize,
    pub top1: f64,
    pub top5: f64,
    /// Mean softmax cross-entropy (natural log).
    pub loss: f64,
}

/// Scores of one batch of logits `[n, k]` against labels: (top-1 hits, top-5 hits, loss sum).
pub fn score(logits: &[f32], labels: &[i32], k: usize) -> (usize, usize, f64) {
    let (mut t1, mut t5, mut loss) = (0, 0, 0.0);
    for (row, &y) in logits.chunks_exact(k).zip(labels) {
        let y = y as usize;
        let target = row[y];
        // Rank of the true class: how many classes score strictly higher (ties favour it).
        let above = row.iter().filter(|&&v| v > target).count();
        t1 += usize::from(above == 0);
        t5 += usize::from(above < 5);
        let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
        let lse = m + row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
        loss += lse - target as f64;
    }
    (t1, t5, loss)
}

/// Evaluates `m` on every image of `data` (already normalised), the last partial batch
/// included.
pub fn evaluate(m: &CompiledModel, data: &Dataset) -> Result<Accuracy> {
    if data.n == 0 {
        return Err(Error::invalid("dataset", &data.name, "it holds no images"));
    }
    if data.classes > m.arch.classes {
        return Err(Error::invalid(
            "dataset",
            format!("{} ({} classes)", data.name, data.classes),
            format!("the network has {} outputs", m.arch.classes),
        ));
    }
    let k = m.arch.classes;
    let (mut t1, mut t5, mut loss) = (0, 0, 0.0);
    for b in Batches::new(data, m.batch, LastBatch::Pad)? {
        let input = m.upload_input(&b.images)?;
        let logits: Vec<f32> = m.run(&input)?.to_host()?;
        let (a, c, l) = score(&logits[..b.valid * k], &b.labels[..b.valid], k);
        t1 += a;
        t5 += c;
        loss += l;
    }
    let n = data.n as f64;
    Ok(Accuracy { images: data.n, top1: t1 as f64 / n, top5: t5 as f64 / n, loss: loss / n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_known_logits() {
        // 3 classes... k=6 so top-5 differs from top-1.
        let logits = [
            0.0, 1.0, 2.0, 3.0, 4.0, 5.0, // label 5: top-1
            5.0, 4.0, 3.0, 2.0, 1.0, 0.0, // label 4: rank 4 -> top-5 only
            5.0, 4.0, 3.0, 2.0, 1.0, 0.0, // label 5: rank 5 -> neither
        ];
        let (t1, t5, loss) = score(&logits, &[5, 4, 5], 6);
        assert_eq!((t1, t5), (1, 2));
        let lse = (0..6).map(|i| (i as f64).exp()).sum::<f64>().ln();
        let want = (lse - 5.0) + (lse - 1.0) + (lse - 0.0);
        assert!((loss - want).abs() < 1e-9);
    }
}
