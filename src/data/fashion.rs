//! Where Fashion-MNIST is on this machine, and loading its splits.
//!
//! Searched in order: the folder in `PRUNEBENCH_FASHION_MNIST`; `<project>/.data/fashion-mnist/`
//! (and `<project>/.data/fashion-mnist/usr/share/datasets/fashion-mnist/`, where `dpkg -x` of
//! Debian's `dataset-fashion-mnist` puts the files without root), `<project>` being the
//! nearest folder holding `.data` above the working directory or the executable; then
//! `/usr/share/datasets/fashion-mnist/`, where `apt-get install dataset-fashion-mnist` puts
//! them. Each file may be gzip (`NAME.gz`) or raw (`NAME`).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

use super::dataset::{Dataset, Split};
use super::idx::load_idx_pair;

/// The environment variable naming a folder that holds the Fashion-MNIST IDX files.
pub const FASHION_MNIST_ENV: &str = "PRUNEBENCH_FASHION_MNIST";
/// Where Debian's `dataset-fashion-mnist` installs the files.
pub const FASHION_MNIST_SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// Fashion-MNIST's class names, by label.
pub const FASHION_MNIST_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

const FIX: &str = "bash scripts/setup.sh (installs Debian's dataset-fashion-mnist), or set \
                   PRUNEBENCH_FASHION_MNIST to a folder holding the four IDX files";

/// The base names of a split's (images, labels) files.
fn split_files(split: Split) -> (&'static str, &'static str) {
    match split {
        Split::Train => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        Split::Test => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
}

/// `dir/NAME.gz` if it exists, else `dir/NAME` if it exists.
fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(format!("{name}.gz")), dir.join(name)].into_iter().find(|p| p.is_file())
}

/// Whether `dir` holds the images of at least one split.
fn holds_fashion_mnist(dir: &Path) -> bool {
    [Split::Train, Split::Test].iter().any(|&s| find_file(dir, split_files(s).0).is_some())
}

/// The nearest ancestors (self included) of each of `starts` that contain a `.data` folder.
fn project_roots(starts: &[PathBuf]) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    for start in starts {
        if let Some(root) = start.ancestors().find(|a| a.join(".data").is_dir()) {
            if !roots.iter().any(|r: &PathBuf| r == root) {
                roots.push(root.to_path_buf());
            }
        }
    }
    roots
}

/// The folders searched, in order, for the given environment value, start folders and system
/// folder. Separated from the environment so tests can drive it.
pub(crate) fn candidate_dirs(env: Option<PathBuf>, starts: &[PathBuf], system: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = env.into_iter().collect();
    for root in project_roots(starts) {
        let base = root.join(".data").join("fashion-mnist");
        let extracted = base.join("usr/share/datasets/fashion-mnist");
        dirs.push(base);
        dirs.push(extracted);
    }
    dirs.push(system.to_path_buf());
    dirs
}

/// The first of `candidates` that holds Fashion-MNIST; `env` (if given) must, since the user
/// named it. Not found: an error listing every folder searched and the fix.
pub(crate) fn find_dir(env: Option<PathBuf>, starts: &[PathBuf], system: &Path) -> Result<PathBuf> {
    if let Some(dir) = &env {
        if !holds_fashion_mnist(dir) {
            return Err(Error::file(
                dir,
                format!(
                    "{FASHION_MNIST_ENV} names this folder, but it holds neither \
                     train-images-idx3-ubyte[.gz] nor t10k-images-idx3-ubyte[.gz]. Fix: {FIX}"
                ),
            ));
        }
    }
    let dirs = candidate_dirs(env, starts, system);
    if let Some(d) = dirs.iter().find(|d| holds_fashion_mnist(d)) {
        return Ok(d.clone());
    }
    let searched: String = dirs.iter().map(|d| format!("\n  {}", d.display())).collect();
    Err(Error::file("fashion-mnist", format!("dataset not found. Searched:{searched}\nFix: {FIX}")))
}

/// The folder holding Fashion-MNIST (see the module docs for the search order).
pub fn fashion_mnist_dir() -> Result<PathBuf> {
    let env = std::env::var_os(FASHION_MNIST_ENV).filter(|v| !v.is_empty()).map(PathBuf::from);
    let mut starts = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    if let Some(dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
        starts.push(dir);
    }
    find_dir(env, &starts, Path::new(FASHION_MNIST_SYSTEM_DIR))
}

/// Loads a Fashion-MNIST split from `dir`: 28x28x1 images in `[0, 1]`, 10 classes.
pub fn fashion_mnist_from(dir: &Path, split: Split) -> Result<Dataset> {
    let (img, lab) = split_files(split);
    let missing =
        |name: &str| Error::file(dir.join(name), format!("missing (neither {name}.gz nor {name} exists). Fix: {FIX}"));
    let img_path = find_file(dir, img).ok_or_else(|| missing(img))?;
    let lab_path = find_file(dir, lab).ok_or_else(|| missing(lab))?;
    let mut data = load_idx_pair(&img_path, &lab_path, 10)?;
    data.name = format!("fashion-mnist-{split}");
    Ok(data)
}

/// Loads a Fashion-MNIST split from [`fashion_mnist_dir`]: 28x28x1 images in `[0, 1]`,
/// 10 classes (60,000 train, 10,000 test). Use [`Dataset::pad_to`]`(32, 32)` for VGG's CIFAR
/// form.
pub fn fashion_mnist(split: Split) -> Result<Dataset> {
    fashion_mnist_from(&fashion_mnist_dir()?, split)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_order_and_not_found_message() {
        let tmp = tempfile::tempdir().unwrap();
        let project = tmp.path().join("proj");
        let deep = vec![project.join("a/b")];
        std::fs::create_dir_all(&deep[0]).unwrap();
        std::fs::create_dir_all(project.join(".data")).unwrap();
        let system = tmp.path().join("system");

        let err = find_dir(None, &deep, &system).unwrap_err().to_string();
        assert!(err.contains(&project.join(".data/fashion-mnist").display().to_string()), "{err}");
        assert!(err.contains(&system.display().to_string()), "{err}");
        assert!(err.contains("bash scripts/setup.sh"), "{err}");

        // The system folder is found last.
        std::fs::create_dir_all(&system).unwrap();
        std::fs::write(system.join("t10k-images-idx3-ubyte.gz"), b"").unwrap();
        assert_eq!(find_dir(None, &deep, &system).unwrap(), system);

        // The dpkg -x extraction under the project wins over the system folder.
        let extracted = project.join(".data/fashion-mnist/usr/share/datasets/fashion-mnist");
        std::fs::create_dir_all(&extracted).unwrap();
        std::fs::write(extracted.join("train-images-idx3-ubyte"), b"").unwrap();
        assert_eq!(find_dir(None, &deep, &system).unwrap(), extracted);

        // The environment wins over everything, and must be right when given.
        let env = tmp.path().join("env");
        std::fs::create_dir_all(&env).unwrap();
        let err = find_dir(Some(env.clone()), &deep, &system).unwrap_err().to_string();
        assert!(err.contains(FASHION_MNIST_ENV), "{err}");
        std::fs::write(env.join("t10k-images-idx3-ubyte.gz"), b"").unwrap();
        assert_eq!(find_dir(Some(env.clone()), &deep, &system).unwrap(), env);
    }
}
