//! Sharding: split a suite's plan over N machines (a Slurm array, a Kubernetes Indexed Job,
//! or by hand) so that each measures its own part and writes its own CSV; `prunebench merge`
//! joins the CSVs.
//!
//! A shard is `K/N` with a **0-based** index: `0/4`, `1/4`, `2/4`, `3/4` are the four shards
//! of a 4-way split (the index Kubernetes and a `--array=0-3` Slurm array hand out).
//!
//! A variant belongs to shard `fnv1a64(id) % N`. The split depends only on the variant's id,
//! not on its position in the plan, so adding or removing a variant never moves the others
//! to another shard (a re-run of one shard after the suite grew resumes its CSV), and the
//! hash is fixed (FNV-1a, 64 bit), so every build of prunebench on every machine agrees.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Shard `index` of `count` (0-based: `index < count`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

const FORMAT: &str = "write K/N with a 0-based shard index K < N, e.g. 0/4 ... 3/4 for 4 shards";

impl Shard {
    /// Shard `index` of `count`; `count >= 1`, `index < count`.
    pub fn new(index: usize, count: usize) -> Result<Shard> {
        let text = format!("{index}/{count}");
        if count == 0 {
            return Err(Error::invalid("shard", text, "the shard count N must be at least 1"));
        }
        if index >= count {
            return Err(Error::invalid(
                "shard",
                text,
                format!("the index is 0-based and must be below the count: 0/{count} ... {}/{count}", count - 1),
            ));
        }
        Ok(Shard { index, count })
    }

    /// The whole plan as one shard.
    pub fn all() -> Shard {
        Shard { index: 0, count: 1 }
    }

    /// Whether the item with this id belongs to this shard.
    pub fn contains(&self, id: &str) -> bool {
        (fnv1a64(id.as_bytes()) % self.count as u64) as usize == self.index
    }

    /// The shard this process is, from the environment of a batch system, or `None` when
    /// there is none. `count` is the shard count when it is given separately (`--shards N`).
    ///
    /// - Kubernetes Indexed Job: `JOB_COMPLETION_INDEX` is the index; the count must be given
    ///   (the Job's `completions`), as Kubernetes does not export it.
    /// - Slurm array: `SLURM_ARRAY_TASK_ID` minus `SLURM_ARRAY_TASK_MIN` (0 when unset),
    ///   divided by `SLURM_ARRAY_TASK_STEP` (1 when unset), of `SLURM_ARRAY_TASK_COUNT`
    ///   tasks (or `count`; when both are set they must agree).
    ///
    /// Kubernetes is looked at first. With `count` but neither system, it is an error (a
    /// count alone does not say which shard this is).
    pub fn from_env(count: Option<usize>) -> Result<Option<Shard>> {
        Shard::from_vars(|k| std::env::var(k).ok(), count)
    }

    /// [`Shard::from_env`] reading variables through `var` (for tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>, count: Option<usize>) -> Result<Option<Shard>> {
        let num = |name: &str| -> Result<Option<usize>> {
            match var(name) {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<usize>()
                    .map(Some)
                    .map_err(|_| Error::invalid(name, &v, "expected a non-negative whole number")),
            }
        };
        if let Some(index) = num("JOB_COMPLETION_INDEX")? {
            let Some(count) = count else {
                return Err(Error::invalid(
                    "JOB_COMPLETION_INDEX",
                    index,
                    "a Kubernetes Indexed Job gives the shard index but not the count: pass --shards N \
                     with N = the Job's completions",
                ));
            };
            return Shard::new(index, count).map(Some);
        }
        if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let step = num("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
            if id < min {
                return Err(Error::invalid(
                    "SLURM_ARRAY_TASK_ID",
                    id,
                    format!("below SLURM_ARRAY_TASK_MIN={min}"),
                ));
            }
            if (id - min) % step != 0 {
                return Err(Error::invalid(
                    "SLURM_ARRAY_TASK_ID",
                    id,
                    format!("not on the array's step (SLURM_ARRAY_TASK_MIN={min}, SLURM_ARRAY_TASK_STEP={step})"),
                ));
            }
            let index = (id - min) / step;
            let slurm_count = num("SLURM_ARRAY_TASK_COUNT")?;
            let count = match (slurm_count, count) {
                (Some(a), Some(b)) if a != b => {
                    return Err(Error::invalid(
                        "--shards",
                        b,
                        format!("the Slurm array has SLURM_ARRAY_TASK_COUNT={a} tasks; give the same count or leave it out"),
                    ))
                }
                (Some(a), _) => a,
                (None, Some(b)) => b,
                (None, None) => {
                    return Err(Error::invalid(
                        "SLURM_ARRAY_TASK_ID",
                        id,
                        "SLURM_ARRAY_TASK_COUNT is not set (an old Slurm?): pass --shards N",
                    ))
                }
            };
            return Shard::new(index, count).map(Some);
        }
        match count {
            None => Ok(None),
            Some(n) => Err(Error::invalid(
                "--shards",
                n,
                "neither JOB_COMPLETION_INDEX (Kubernetes Indexed Job) nor SLURM_ARRAY_TASK_ID (Slurm array) \
                 is set, so the shard index is unknown: give the shard explicitly with --shard K/N",
            )),
        }
    }
}

impl FromStr for Shard {
    type Err = Error;

    /// `K/N`, 0-based: `0/4` is the first of four shards.
    fn from_str(s: &str) -> Result<Shard> {
        let t = s.trim();
        let Some((k, n)) = t.split_once('/') else {
            return Err(Error::invalid("shard", s, FORMAT));
        };
        let k: usize = k.trim().parse().map_err(|_| Error::invalid("shard", s, FORMAT))?;
        let n: usize = n.trim().parse().map_err(|_| Error::invalid("shard", s, FORMAT))?;
        Shard::new(k, n).map_err(|e| match e {
            Error::Invalid { fix, .. } => Error::invalid("shard", s, fix),
            e => e,
        })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The items of `items` that belong to `shard`, in their order, by the stable hash of
/// `id(item)`. The shards `0/N ... N-1/N` partition `items`.
pub fn select<T>(items: &[T], id: impl Fn(&T) -> &str, shard: Shard) -> Vec<&T> {
    items.iter().filter(|it| shard.contains(id(it))).collect()
}

/// FNV-1a, 64 bit: a fixed, tiny hash (unlike `DefaultHasher`, whose output may change
/// between Rust versions).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_reference_values() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }
}
