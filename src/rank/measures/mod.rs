//! Every transferability measure, one file each, registered in [`ALL`]. Adding a measure is
//! one file here and one line in the list.

mod accuracy;
mod knn;
mod leep;
mod linear_probe;
mod logme;
mod nleep;

pub use knn::knn_accuracy;
pub use leep::leep;
pub use linear_probe::{linear_probe_accuracy, LogisticRegression};
pub use logme::{logme, logme_class, LogmeFit};
pub use nleep::nleep;

use super::measure::Measure;
use crate::error::{Error, Result};

/// The registry, in the order `--help` and the tables list them.
static ALL: &[&dyn Measure] = &[
    &nleep::Nleep,
    &leep::Leep,
    &logme::Logme,
    &linear_probe::LinearProbe,
    &knn::Knn,
    &accuracy::Accuracy,
    &accuracy::AccuracyRecal,
];

/// Every registered measure.
pub fn measures() -> &'static [&'static dyn Measure] {
    ALL
}

/// The measure called `name`, or an error that lists the valid names.
pub fn find(name: &str) -> Result<&'static dyn Measure> {
    ALL.iter().copied().find(|m| m.name() == name).ok_or_else(|| {
        let names: Vec<&str> = ALL.iter().map(|m| m.name()).collect();
        Error::invalid("measure", name, format!("use one of: {}", names.join(", ")))
    })
}

/// The measures named in a comma-separated list (`all` for every one), in list order,
/// without repeats.
pub fn parse_list(list: &str) -> Result<Vec<&'static dyn Measure>> {
    let mut out: Vec<&'static dyn Measure> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let found: Vec<&'static dyn Measure> = if name == "all" { ALL.to_vec() } else { vec![find(name)?] };
        for m in found {
            if !out.iter().any(|o| o.name() == m.name()) {
                out.push(m);
            }
        }
    }
    if out.is_empty() {
        return Err(Error::invalid("measure list", list, "name at least one measure, e.g. nleep,logme,accuracy"));
    }
    Ok(out)
}
