//! Small helpers shared by several layers.

use std::fs::File;
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

/// Writes `bytes` to `path` through a temporary file in the same folder (`.NAME.tmpPID`),
/// flushed to disk, then renamed over `path` (and the folder flushed), so readers never see
/// a half-written file and a crash or a full disk leaves the old file intact.
///
/// Errors name the path and say what was kept: "PATH: No space left on device (os error
/// 28); the previous PATH is kept". `path` must not be an existing folder or device (a
/// rename would replace it). A process killed mid-write leaves its `.NAME.tmpPID` file behind
/// (never `path` itself half-written); the next write of `path` removes the temporary files
/// of processes that no longer run.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let kept = match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => {
            return Err(Error::file(path, "exists and is not a regular file; write to a file path instead"))
        }
        Ok(_) => format!("the previous {} is kept", path.display()),
        Err(_) => "nothing was written".to_string(),
    };
    let dir = create_parent(path, &kept)?;
    let name = path.file_name().ok_or_else(|| Error::file(path, "not a file path"))?;
    let prefix = format!(".{}.tmp", name.to_string_lossy());
    remove_stale_temps(dir, &prefix);
    let tmp = dir.join(format!("{prefix}{}", std::process::id()));
    let mut f = File::create(&tmp).map_err(|e| Error::write(&tmp, e, &kept))?;
    let written = fill(&mut f, &tmp, bytes, &kept).and_then(|_| {
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| Error::write(path, e, &kept))
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    // The rename is durable once the folder is flushed (best effort: not every file system
    // lets a folder be opened for it).
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Creates the folder of `path` (and its parents) when missing, and returns it (`.` for a bare
/// file name). Errors name the folder and end with `kept`: a part of it that is a file
/// ("...: a file is in the way; nothing was written"), or the OS error (a read-only file
/// system).
pub fn create_parent<'a>(path: &'a Path, kept: &str) -> Result<&'a Path> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if let Some(file) = dir.ancestors().find(|a| a.is_file()) {
        return Err(Error::file(file, format!("is a file, not a folder, so {} cannot be written there; {kept}", path.display())));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e, kept))?;
    Ok(dir)
}

/// Removes the files `PREFIXpid` in `dir` whose process is gone (no `/proc/pid`): what
/// [`write_atomic`] leaves when its process is killed mid-write. Best effort.
fn remove_stale_temps(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(prefix)).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Writes all of `bytes` into `file` and flushes them to disk; an error names `path` and ends
/// with `kept` (what is still intact).
fn fill(file: &mut File, path: &Path, bytes: &[u8], kept: &str) -> Result<()> {
    file.write_all(bytes).and_then(|_| file.sync_all()).map_err(|e| Error::write(path, e, kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_names_the_path_and_what_is_kept() {
        let mut full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let e = fill(&mut full, Path::new("out/x.bin"), &[1; 64], "the previous out/x.bin is kept").unwrap_err();
        assert_eq!(e.to_string(), "out/x.bin: No space left on device (os error 28); the previous out/x.bin is kept");
    }

    #[test]
    fn replaces_whole_files_and_reports_unwritable_folders() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        // Only the file itself is in the folder: no temporary file is left.
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
        // A temporary file left by a killed process (pid 0 never names one) is removed; one
        // of a live process (this one's parent) is not.
        let dead = p.parent().unwrap().join(".b.txt.tmp0");
        let live = p.parent().unwrap().join(format!(".b.txt.tmp{}", std::os::unix::process::parent_id()));
        std::fs::write(&dead, b"half").unwrap();
        std::fs::write(&live, b"half").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert!(!dead.exists() && live.exists());
        std::fs::remove_file(&live).unwrap();
        // A folder that is a file.
        let bad = p.join("c.txt");
        let e = write_atomic(&bad, b"x").unwrap_err().to_string();
        assert_eq!(e, format!("{}: is a file, not a folder, so {} cannot be written there; nothing was written", p.display(), bad.display()));
        // A read-only file system.
        let e = write_atomic(Path::new("/proc/prunebench-test.txt"), b"x").unwrap_err().to_string();
        assert!(e.starts_with("/proc/") && e.ends_with("nothing was written"), "{e}");
        // Never replaces a device or a folder.
        let e = write_atomic(Path::new("/dev/null"), b"x").unwrap_err().to_string();
        assert!(e.contains("/dev/null") && e.contains("not a regular file"), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
    }

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

/// `v` without repeats, first occurrences in order.
pub fn dedup<T: PartialEq + Clone>(v: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(v.len());
    for x in v {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

/// Logits `[n, classes]` (row-major) of `n` images of shape `image` (`x`, row-major), computed by
/// `call` on full batches of `batch` images: the last partial batch is padded with zeros and
/// the padding's logits dropped. `call` gets one batch and returns its `batch * classes`
/// logits.
///
/// Errors: `x` is not `n` images (named); whatever `call` returns.
pub fn predict_in_batches(
    x: &[f32],
    n: usize,
    image: &[usize],
    batch: usize,
    classes: usize,
    mut call: impl FnMut(&[f32]) -> Result<Vec<f32>>,
) -> Result<Vec<f32>> {
    let per: usize = image.iter().product();
    if x.len() != n * per {
        return Err(Error::shape("predict", format!("{} values are not {n} images of {image:?}", x.len())));
    }
    let batch = batch.max(1);
    let mut out = Vec::with_capacity(n * classes);
    let mut padded = Vec::new();
    for start in (0..n).step_by(batch) {
        let m = batch.min(n - start);
        let chunk = &x[start * per..(start + m) * per];
        let logits = if m == batch {
            call(chunk)?
        } else {
            padded.clear();
            padded.extend_from_slice(chunk);
            padded.resize(batch * per, 0.0);
            call(&padded)?
        };
        out.extend_from_slice(&logits[..m * classes]);
    }
    Ok(out)
}
