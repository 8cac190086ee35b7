//! Every pruning criterion, one file each, registered in [`ALL`]. Adding a criterion is one
//! file here and one line in the list.

mod activation;
mod bn_scale;
mod fpgm;
mod norm;
mod random;
mod taylor;

use ndarray::{ArrayViewD, Axis};

use super::criterion::Criterion;
use crate::error::{Error, Result};

/// The registry, in the order `--help` lists them.
static ALL: &[&dyn Criterion] = &[
    &norm::L1,
    &norm::L2,
    &random::Random,
    &bn_scale::BnScale,
    &fpgm::Fpgm,
    &activation::Apoz,
    &activation::MeanActivation,
    &taylor::Taylor,
];

/// Every registered criterion.
pub fn criteria() -> &'static [&'static dyn Criterion] {
    ALL
}

/// The criterion called `name`, or an error that lists the valid names.
pub fn find(name: &str) -> Result<&'static dyn Criterion> {
    ALL.iter().copied().find(|c| c.name() == name).ok_or_else(|| {
        let names: Vec<&str> = ALL.iter().map(|c| c.name()).collect();
        Error::invalid("criterion", name, format!("use one of: {}", names.join(", ")))
    })
}

/// One score per filter of `w` (output channels on its last axis), each from the filter's
/// weights by `f`.
pub(crate) fn each_filter(w: ArrayViewD<f32>, f: impl Fn(ArrayViewD<f32>) -> f64) -> Vec<f64> {
    let last = Axis(w.ndim() - 1);
    w.axis_iter(last).map(f).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Arch, Network};
    use crate::prune::{keep_sets, Plan, Schedule, ScoreContext};

    /// A CIFAR net (conv 0 has 4 filters of 3x3x3) whose conv 0 filters are `f(j, flat)`.
    fn net_with(f: impl Fn(usize, usize) -> f32) -> Network {
        let mut v = Network::init(&Arch::cifar(0.0625, 3, 10, vec![]).unwrap(), 1);
        v.randomize_bn(2);
        for (j, mut filt) in v.tensor_mut("features.0.weight").unwrap().axis_iter_mut(Axis(3)).enumerate() {
            for (p, w) in filt.iter_mut().enumerate() {
                *w = f(j, p);
            }
        }
        v
    }

    /// Kept filters of conv 0 when `name` removes `removed` of its 4 and nothing elsewhere.
    fn keep0(v: &Network, name: &str, removed: usize) -> Vec<usize> {
        let mut r = vec![0.0; 13];
        r[0] = removed as f64 / 4.0;
        keep_sets(v, &Plan::new(name, Schedule::Layers(r)), &ScoreContext::weights_only()).unwrap()[0].clone()
    }

    #[test]
    fn l1_and_l2_rank_by_their_norm() {
        // 0: one weight of 3 (l1 3, l2 3); 1: 27 weights of 0.2 (l1 5.4, l2 1.04); 2: zero;
        // 3: 27 weights of -1 (l1 27, l2 5.2).
        let v = net_with(|j, p| match j {
            0 => {
                if p == 4 {
                    3.0
                } else {
                    0.0
                }
            }
            1 => 0.2,
            2 => 0.0,
            _ => -1.0,
        });
        assert_eq!(keep0(&v, "l1", 2), vec![1, 3]);
        assert_eq!(keep0(&v, "l2", 2), vec![0, 3]);
        assert_eq!(keep0(&v, "l1", 3), vec![3]);
    }

    #[test]
    fn fpgm_prunes_the_filter_nearest_the_median() {
        // Filters 5e, 5e+e', 5e-e', 0 (e, e' unit vectors): 5e is the geometric median; its
        // distance sum is 7, the others' 8.1, 8.1, 15.2. l1 would drop the zero filter.
        let v = net_with(|j, p| match (j, p) {
            (3, _) => 0.0,
            (_, 0) => 5.0,
            (1, 1) => 1.0,
            (2, 1) => -1.0,
            _ => 0.0,
        });
        assert_eq!(keep0(&v, "fpgm", 1), vec![1, 2, 3]);
        assert_eq!(keep0(&v, "l1", 1), vec![0, 1, 2]);
        let s = find("fpgm").unwrap().scores(&v, &ScoreContext::weights_only()).unwrap();
        // Group scores are the filter's distance sum over the mean of the four.
        let want = [7.0, 8.1, 8.1, 5.0 + 2.0 * 26f64.sqrt()];
        assert!((s[0][0] / s[0][3] - want[0] / want[3]).abs() < 1e-6, "{:?}", s[0]);
    }

    #[test]
    fn bn_scale_ranks_by_abs_gamma_and_needs_bn() {
        let mut v = net_with(|_, _| 1.0);
        *v.tensor_mut("features.0.bn.gamma").unwrap() = ndarray::arr1(&[0.1, -2.0, 0.5, 1.0]).into_dyn();
        assert_eq!(keep0(&v, "bn-scale", 2), vec![1, 3]);
        let no_bn = Network::init(&Arch::imagenet(1.0 / 32.0, 3, 5, false).unwrap(), 1);
        let plan = Plan::new("bn-scale", Schedule::Uniform(0.5));
        let e = keep_sets(&no_bn, &plan, &ScoreContext::weights_only()).unwrap_err().to_string();
        assert!(e.contains("bn-scale") && e.contains("no batch norm"), "{e}");
    }

    #[test]
    fn random_is_seeded() {
        let v = Network::init(&Arch::cifar(0.125, 3, 10, vec![]).unwrap(), 1);
        let mut plan = Plan::new("random", Schedule::Uniform(0.5));
        let ctx = ScoreContext::weights_only();
        let a = keep_sets(&v, &plan, &ctx).unwrap();
        assert_eq!(a, keep_sets(&v, &plan, &ctx).unwrap());
        plan.seed = 1;
        assert_ne!(a, keep_sets(&v, &plan, &ctx).unwrap());
        assert!(a.iter().zip(&v.arch.channels).all(|(k, &n)| k.len() == n / 2));
        assert_eq!(a.len(), 13, "VGG-16's pruned groups are its 13 convs");
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let e = find("l3").unwrap_err().to_string();
        for c in criteria() {
            assert!(e.contains(c.name()), "{e}");
        }
        let v = Network::init(&Arch::cifar(0.0625, 3, 10, vec![]).unwrap(), 1);
        let e = keep_sets(&v, &Plan::new("hessian", Schedule::Uniform(0.5)), &ScoreContext::weights_only()).unwrap_err();
        assert!(e.to_string().contains("'hessian'") && e.to_string().contains("l1, l2"), "{e}");
    }

    #[test]
    fn data_criteria_without_data_say_so() {
        let v = Network::init(&Arch::cifar(0.0625, 3, 10, vec![]).unwrap(), 1);
        for name in ["apoz", "mean-activation"] {
            assert_eq!(find(name).unwrap().needs(), crate::prune::Needs::Data);
            let e = keep_sets(&v, &Plan::new(name, Schedule::Uniform(0.5)), &ScoreContext::weights_only()).unwrap_err();
            assert!(e.to_string().contains(name) && e.to_string().contains("needs images"), "{e}");
        }
        assert_eq!(find("taylor").unwrap().needs(), crate::prune::Needs::Gradients);
        let e = keep_sets(&v, &Plan::new("taylor", Schedule::Uniform(0.5)), &ScoreContext::weights_only()).unwrap_err();
        assert!(e.to_string().contains("taylor") && e.to_string().contains("needs labelled images"), "{e}");
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = criteria().iter().map(|c| c.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), criteria().len());
    }
}
