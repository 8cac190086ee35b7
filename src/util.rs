//! Small helpers shared by several layers.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// How [`count_of`] turns a fractional count into a whole one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// The largest whole count not above the fraction's count.
    Down,
    /// The smallest whole count not below it.
    Up,
    /// The nearest whole count, halves away from zero.
    Nearest,
}

/// `fraction` of `n` things as a whole count, exact for fractions written with a few
/// decimals: `0.29` of 100 is 29 (in f64, `0.29 * 100` is 28.999999999999996, whose floor
/// is 28). A product within 1e-9 (relative) of a whole number, or for
/// [`Rounding::Nearest`] of a half, is taken to be that number before rounding. This is the
/// one place in prunebench where a ratio becomes a count (pruning schedules, the global
/// threshold, epochs to steps, probe splits, width multipliers).
///
/// `fraction` must be finite and non-negative; the callers validate it first.
pub fn count_of(fraction: f64, n: usize, rounding: Rounding) -> usize {
    debug_assert!(fraction.is_finite() && fraction >= 0.0, "count_of({fraction}, {n})");
    let snap = |x: f64| {
        let r = x.round();
        if (x - r).abs() <= 1e-9 * r.abs().max(1.0) {
            r
        } else {
            x
        }
    };
    let x = fraction * n as f64;
    let c = match rounding {
        Rounding::Down => snap(x).floor(),
        Rounding::Up => snap(x).ceil(),
        Rounding::Nearest => (snap(2.0 * x) / 2.0).round(),
    };
    c as usize
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so
/// readers never see a half-written file and a crash leaves the old file intact.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let name = path.file_name().ok_or_else(|| Error::file(path, "not a file path"))?;
    let tmp = dir.join(format!(".{}.tmp{}", name.to_string_lossy(), std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_of_is_exact_for_decimal_ratios() {
        // The reported case: floor(0.29 * 100) in f64 is 28.
        assert_eq!(0.29f64 * 100.0, 28.999999999999996);
        assert_eq!(count_of(0.29, 100, Rounding::Down), 29);
        assert_eq!(count_of(0.28, 100, Rounding::Down), 28);
        assert_eq!(count_of(0.1, 10, Rounding::Down), 1);
        assert_eq!(count_of(0.7, 10, Rounding::Down), 7);
        assert_eq!(count_of(0.7, 10, Rounding::Up), 7);
        assert_eq!(count_of(0.57, 100, Rounding::Down), 57); // 56.99999999999999 in f64
        assert_eq!(count_of(0.07, 100, Rounding::Up), 7); // 7.000000000000001 in f64
        // A fraction of a count that is not whole still floors / ceils / rounds.
        assert_eq!(count_of(1.0 / 3.0, 10, Rounding::Down), 3);
        assert_eq!(count_of(1.0 / 3.0, 10, Rounding::Up), 4);
        assert_eq!(count_of(1.0 / 3.0, 3, Rounding::Down), 1);
        assert_eq!(count_of(2.0 / 3.0, 3, Rounding::Up), 2);
        assert_eq!(count_of(0.55, 10, Rounding::Down), 5);
        assert_eq!(count_of(0.55, 10, Rounding::Up), 6);
        // Nearest: halves written in decimals go up even when the product falls just short.
        assert_eq!(count_of(0.145, 100, Rounding::Nearest), 15); // 14.499999999999998 in f64
        assert_eq!(count_of(0.35, 10, Rounding::Nearest), 4);
        assert_eq!(count_of(0.34, 10, Rounding::Nearest), 3);
        assert_eq!(count_of(0.0, 7, Rounding::Up), 0);
        assert_eq!(count_of(1.0, 7, Rounding::Down), 7);
    }

    #[test]
    fn count_of_matches_exact_rational_arithmetic_for_two_decimal_ratios() {
        // Every ratio k/100 of every n up to 600: floor and ceil of k * n / 100 in integers.
        for k in 0..100usize {
            let r: f64 = format!("0.{k:02}").parse().unwrap();
            for n in 1..=600usize {
                assert_eq!(count_of(r, n, Rounding::Down), k * n / 100, "{r} of {n}");
                assert_eq!(count_of(r, n, Rounding::Up), (k * n).div_ceil(100), "{r} of {n}");
            }
        }
    }
}
