//! Sharding a suite's plan: the shards partition it, keep each pruning configuration
//! together, balance the estimated cost, and bad `K/N` values or batch-system variables are
//! clear errors.

use std::collections::HashMap;
use std::path::Path;

use prunebench::suite::shard::{balance, estimated_cost};
use prunebench::suite::{expand, in_shard, Shard, Suite};

fn suite(name: &str) -> Suite {
    Suite::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("suites").join(name)).unwrap()
}

/// Checks that the shards `0/n ... n-1/n` of `s` partition its plan in plan order, keep every
/// physical pruning configuration in one shard, and that their estimated costs differ by at
/// most the costliest configuration's. Returns the shard sizes in rows.
fn check_split(s: &Suite, n: usize) -> Vec<usize> {
    let plan = expand(s);
    let key = |v: &prunebench::suite::Variant| s.pruning[v.prune].physical_key();
    let cost: HashMap<String, f64> = estimated_cost(s, &plan).into_iter().collect();
    let mut owner: HashMap<String, usize> = HashMap::new();
    let mut groups_of: HashMap<String, usize> = HashMap::new();
    let mut sizes = Vec::new();
    let mut loads = Vec::new();
    for k in 0..n {
        let part = in_shard(s, plan.clone(), Shard::new(k, n).unwrap());
        let pos: Vec<usize> = part.iter().map(|x| plan.iter().position(|y| y.id == x.id).unwrap()).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "shard {k}/{n} reorders the plan");
        let mut load = 0.0;
        for v in &part {
            if let Some(other) = owner.insert(v.id.clone(), k) {
                panic!("{} is in shard {other}/{n} and {k}/{n}", v.id);
            }
            match groups_of.insert(key(v), k) {
                Some(j) if j != k => panic!("{} is split over shards {j} and {k} of {n}", key(v)),
                Some(_) => {}
                None => load += cost[&key(v)],
            }
        }
        sizes.push(part.len());
        loads.push(load);
    }
    assert_eq!(owner.len(), plan.len(), "N = {n}: the union of the shards is not the plan");
    let max = cost.values().cloned().fold(0.0, f64::max);
    let (hi, lo) = (loads.iter().cloned().fold(f64::MIN, f64::max), loads.iter().cloned().fold(f64::MAX, f64::min));
    assert!(hi - lo <= max + 1e-9, "N = {n}: estimated costs {loads:?} differ by more than the costliest group ({max})");
    // The same split every time (it depends on the suite only).
    let again: Vec<usize> = (0..n).map(|k| in_shard(s, plan.clone(), Shard::new(k, n).unwrap()).len()).collect();
    assert_eq!(again, sizes);
    sizes
}

#[test]
fn smoke_shards_are_balanced() {
    let s = suite("smoke.yaml");
    assert_eq!(expand(&s).len(), 20);
    // 5 groups of 4 rows (unpruned, l1 and fpgm at 0.5 and 0.75 with their masked twins).
    // Costs (full-width image passes): the 0.5 groups 287.5 each, unpruned 260, the 0.75
    // groups 244.375 each; LPT puts fpgm-0.5 | l1-0.5 | unpruned, then fpgm-0.75 on the
    // unpruned shard and l1-0.75 on fpgm-0.5's. (The old hash split gave 0, 12 and 8 rows.)
    assert_eq!(check_split(&s, 3), vec![8, 4, 8]);
    assert_eq!(check_split(&s, 1), vec![20]);
    assert_eq!(check_split(&s, 2), vec![8, 12]);
    assert_eq!(check_split(&s, 5), vec![4; 5]);
    // More shards than groups: the extra shards are empty.
    assert_eq!(check_split(&s, 7), vec![4, 4, 4, 4, 4, 0, 0]);
    let part = in_shard(&s, expand(&s), Shard::new(1, 3).unwrap());
    assert!(part.iter().all(|v| v.id.starts_with("l1-uniform-0.5-r1")), "{:?}", part.iter().map(|v| &v.id).collect::<Vec<_>>());
}

#[test]
fn fine_tuned_configurations_cost_more_and_are_spread() {
    let s = suite("quickstart.yaml");
    let cost: HashMap<String, f64> = estimated_cost(&s, &expand(&s)).into_iter().collect();
    assert_eq!(cost.len(), 13);
    // Fine-tuning makes a light pruning costlier than the unpruned network, and a lighter
    // pruning costlier than a heavier one.
    assert!(cost["l1-uniform-0.3-r8"] > cost["l1-uniform-0.5-r8"] && cost["l1-uniform-0.5-r8"] > cost["l1-uniform-0.75-r8"]);
    assert!(cost["l1-uniform-0.3-r8"] > cost["unpruned"], "{cost:?}");
    for n in [2, 3, 4, 5, 7, 13] {
        check_split(&s, n);
    }
    // With as many shards as groups, one group each.
    assert_eq!(check_split(&s, 13).iter().filter(|&&n| n == 0).count(), 0);
}

#[test]
fn balance_partitions_any_costs() {
    // Costs 1..=40 (and a zero) in a scrambled order: every group gets one shard, the loads
    // differ by at most the largest cost, and the input order does not matter.
    let groups: Vec<(String, f64)> = (0..41).map(|i| (format!("g{:02}", (i * 17) % 41), ((i * 17) % 41) as f64)).collect();
    for n in [1, 2, 3, 4, 6, 9] {
        let a = balance(&groups, n);
        assert!(a.iter().all(|&k| k < n));
        let mut load = vec![0.0; n];
        for (g, &k) in groups.iter().zip(&a) {
            load[k] += g.1;
        }
        let (hi, lo) = (load.iter().cloned().fold(f64::MIN, f64::max), load.iter().cloned().fold(f64::MAX, f64::min));
        assert!(hi - lo <= 40.0, "{n}: {load:?}");
        let mut sorted = groups.clone();
        sorted.sort_by(|x, y| x.0.cmp(&y.0));
        let b = balance(&sorted, n);
        let by_key: HashMap<&str, usize> = sorted.iter().map(|g| g.0.as_str()).zip(b).collect();
        assert!(groups.iter().zip(&a).all(|(g, &k)| by_key[g.0.as_str()] == k), "{n}: the split depends on the input order");
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
