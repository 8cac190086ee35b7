//! Sharding a suite's plan: the shards partition it, the split is stable when variants are
//! added, and bad `K/N` values or batch-system variables are clear errors.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use prunebench::suite::shard::{select, Shard};
use prunebench::suite::{self, Suite};

fn smoke_ids() -> Vec<String> {
    let s = Suite::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("suites/smoke.yaml")).unwrap();
    suite::expand(&s).into_iter().map(|v| v.id).collect()
}

/// Ids like a large suite's: 3 methods x 9 ratios x 2 controls x 2 dtypes x 3 batches.
fn big_ids() -> Vec<String> {
    let mut v = vec!["unpruned/f32/b1/xla/gpu".to_string()];
    for m in ["l1", "fpgm", "bn_scale"] {
        for r in 1..10 {
            for c in ["", "-masked"] {
                for d in ["f32", "bf16"] {
                    for b in [1, 8, 32] {
                        v.push(format!("{m}-uniform-0.{r}-r8{c}/{d}/b{b}/tuned/gpu"));
                    }
                }
            }
        }
    }
    v
}

fn check_partition(ids: &[String], n: usize) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for k in 0..n {
        let shard = Shard::new(k, n).unwrap();
        let part = select(ids, |s| s.as_str(), shard);
        // Each shard keeps the plan's order.
        let pos: Vec<usize> = part.iter().map(|x| ids.iter().position(|y| y == *x).unwrap()).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "shard {shard} reorders the plan");
        for id in part {
            if let Some(other) = seen.insert(id.as_str(), k) {
                panic!("{id} is in shard {other}/{n} and {k}/{n}");
            }
        }
    }
    let all: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let got: HashSet<&str> = seen.keys().copied().collect();
    assert_eq!(got, all, "N = {n}: the union of the shards is not the plan");
}

#[test]
fn shards_partition_the_plan() {
    let smoke = smoke_ids();
    assert_eq!(smoke.len(), 20);
    let big = big_ids();
    for n in [1, 2, 3, 7] {
        check_partition(&smoke, n);
        check_partition(&big, n);
    }
    assert_eq!(select(&smoke, |s| s.as_str(), Shard::all()).len(), smoke.len());
    // No shard of the big plan is empty or holds most of it.
    for n in [2, 3, 7] {
        for k in 0..n {
            let len = select(&big, |s| s.as_str(), Shard::new(k, n).unwrap()).len();
            let even = big.len() / n;
            assert!(len > even / 2 && len < even * 2, "shard {k}/{n} holds {len} of {}", big.len());
        }
    }
}

#[test]
fn adding_a_variant_moves_no_other() {
    let before = big_ids();
    let mut after = before.clone();
    after.insert(5, "random-uniform-0.5-r8/f32/b1/tuned/gpu".into());
    after.push("l1-uniform-0.95-r8/f32/b64/tuned/gpu".into());
    for n in [2, 3, 7] {
        for k in 0..n {
            let shard = Shard::new(k, n).unwrap();
            let a: Vec<&String> = select(&before, |s| s.as_str(), shard);
            let b: Vec<&String> = select(&after, |s| s.as_str(), shard).into_iter().filter(|x| before.contains(x)).collect();
            assert_eq!(a, b, "shard {shard} changed");
        }
    }
}

#[test]
fn the_split_is_fixed_across_builds() {
    // FNV-1a of the id, mod N: these must never change, or re-running one shard of an older
    // run would measure other variants. (Computed independently of the crate.)
    let of = |id: &str| (0..4).find(|&k| Shard::new(k, 4).unwrap().contains(id)).unwrap();
    for (id, k) in [("unpruned/f32/b1/xla/cpu", 3), ("unpruned/f32/b1/im2col/cpu", 0), ("unpruned/f32/b4/xla/cpu", 0), ("unpruned/f32/b4/im2col/cpu", 1), ("l1-uniform-0.5-r1/f32/b1/xla/cpu", 0), ("l1-uniform-0.5-r1/f32/b4/xla/cpu", 3), ("l1-uniform-0.5-r1-masked/f32/b1/xla/cpu", 0), ("l1-uniform-0.5-r1-masked/f32/b4/xla/cpu", 3)] {
        assert_eq!(of(id), k, "{id}");
    }
}

#[test]
fn parses_k_of_n_zero_based() {
    for (t, k, n) in [("0/1", 0, 1), ("0/4", 0, 4), ("3/4", 3, 4), (" 2 / 7 ", 2, 7)] {
        let s: Shard = t.parse().unwrap();
        assert_eq!((s.index, s.count), (k, n), "{t}");
    }
    assert_eq!("1/3".parse::<Shard>().unwrap().to_string(), "1/3");
    for (t, needle) in [
        ("4/4", "0-based"),
        ("5/4", "0/4 ... 3/4"),
        ("0/0", "at least 1"),
        ("1", "K/N"),
        ("a/4", "K/N"),
        ("1/b", "K/N"),
        ("-1/4", "K/N"),
        ("", "K/N"),
        ("1/2/3", "K/N"),
    ] {
        let e = t.parse::<Shard>().unwrap_err().to_string();
        assert!(e.contains(&format!("'{t}'")) && e.contains(needle), "{t:?}: {e}");
    }
}

fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k| m.get(k).cloned()
}

#[test]
fn shard_from_batch_system_variables() {
    let from = |p: &[(&str, &str)], n: Option<usize>| Shard::from_vars(vars(p), n);
    // Nothing set: no shard; a count alone cannot say which shard.
    assert_eq!(from(&[], None).unwrap(), None);
    let e = from(&[], Some(4)).unwrap_err().to_string();
    assert!(e.contains("--shard K/N") && e.contains("JOB_COMPLETION_INDEX"), "{e}");

    // Kubernetes Indexed Job: the index from the environment, the count given.
    assert_eq!(from(&[("JOB_COMPLETION_INDEX", "2")], Some(4)).unwrap(), Some(Shard { index: 2, count: 4 }));
    let e = from(&[("JOB_COMPLETION_INDEX", "2")], None).unwrap_err().to_string();
    assert!(e.contains("--shards N"), "{e}");
    let e = from(&[("JOB_COMPLETION_INDEX", "4")], Some(4)).unwrap_err().to_string();
    assert!(e.contains("'4/4'"), "{e}");
    let e = from(&[("JOB_COMPLETION_INDEX", "two")], Some(4)).unwrap_err().to_string();
    assert!(e.contains("JOB_COMPLETION_INDEX") && e.contains("'two'"), "{e}");

    // Slurm array --array=0-3, and one that starts at 1 (--array=1-4), and a step (0-6:2).
    let slurm = |id: &str, min: &str, count: &str, step: &str, n: Option<usize>| {
        from(
            &[("SLURM_ARRAY_TASK_ID", id), ("SLURM_ARRAY_TASK_MIN", min), ("SLURM_ARRAY_TASK_COUNT", count), ("SLURM_ARRAY_TASK_STEP", step)],
            n,
        )
    };
    assert_eq!(slurm("3", "0", "4", "", None).unwrap(), Some(Shard { index: 3, count: 4 }));
    assert_eq!(slurm("1", "1", "4", "", None).unwrap(), Some(Shard { index: 0, count: 4 }));
    assert_eq!(slurm("4", "1", "4", "1", Some(4)).unwrap(), Some(Shard { index: 3, count: 4 }));
    assert_eq!(slurm("4", "0", "4", "2", None).unwrap(), Some(Shard { index: 2, count: 4 }));
    let e = slurm("3", "0", "4", "", Some(8)).unwrap_err().to_string();
    assert!(e.contains("SLURM_ARRAY_TASK_COUNT=4") && e.contains("'8'"), "{e}");
    let e = slurm("0", "1", "4", "", None).unwrap_err().to_string();
    assert!(e.contains("SLURM_ARRAY_TASK_MIN=1"), "{e}");
    assert_eq!(from(&[("SLURM_ARRAY_TASK_ID", "1")], Some(2)).unwrap(), Some(Shard { index: 1, count: 2 }));
    let e = from(&[("SLURM_ARRAY_TASK_ID", "1")], None).unwrap_err().to_string();
    assert!(e.contains("SLURM_ARRAY_TASK_COUNT") && e.contains("--shards N"), "{e}");
    // Kubernetes wins over a Slurm environment (a pod started from a Slurm job, say).
    assert_eq!(
        from(&[("JOB_COMPLETION_INDEX", "0"), ("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_COUNT", "4")], Some(2)).unwrap(),
        Some(Shard { index: 0, count: 2 })
    );
}

/// The runner's split of a real suite: every variant in exactly one shard, and all the
/// variants of one pruning configuration in the same shard (so it is fine-tuned once).
#[test]
fn suite_plan_splits_by_configuration() {
    use prunebench::suite::{expand, in_shard, Suite};
    let s = Suite::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/suites/smoke.yaml"))).unwrap();
    let all: Vec<String> = expand(&s).into_iter().map(|v| v.id).collect();
    for n in [1usize, 2, 3, 5] {
        let mut seen: Vec<String> = Vec::new();
        for k in 0..n {
            let part = in_shard(&s, expand(&s), Shard::new(k, n).unwrap());
            for v in &part {
                let cfg = s.pruning[v.prune].physical_key();
                for other in expand(&s).iter().filter(|o| s.pruning[o.prune].physical_key() == cfg) {
                    assert!(part.iter().any(|p| p.id == other.id), "{cfg} split across shards");
                }
            }
            seen.extend(part.into_iter().map(|v| v.id));
        }
        seen.sort();
        let mut want = all.clone();
        want.sort();
        assert_eq!(seen, want, "N = {n}");
    }
}
