//! Which PJRT plugin to load for `--device auto|cpu|gpu|tpu`.
//!
//! Search order, first hit wins:
//!
//! 1. An explicit path: `--plugin PATH`, then the environment variable `PRUNEBENCH_PLUGIN`.
//!    The device is the one asked for; with `auto` it is read from the file name (`tpu` if
//!    it contains "tpu", `gpu` if it contains "cuda", "rocm" or "gpu", else `cpu`).
//! 2. For each device, its plugin file under a `.pjrt/` folder, looked for in
//!    `$PRUNEBENCH_HOME`, then in the current directory and each of its parents, then in the
//!    folder of the running executable and each of its parents (so `target/release/prunebench`
//!    finds the project's `.pjrt/` without any setting):
//!    - CPU: `.pjrt/cpu/xla_plugins/xla_cpu_pjrt/xla_cpu_pjrt.so`
//!    - GPU: `.pjrt/gpu/jax_plugins/xla_cuda13/xla_cuda_plugin.so`, then `.../xla_cuda12/...`
//!    - TPU: `.pjrt/tpu/libtpu/libtpu.so`
//! 3. Then Python package folders (`$VIRTUAL_ENV`, `$CONDA_PREFIX`, `/opt/conda`,
//!    `~/.local`, `/usr/local`, `/usr`: `lib/python3*/site-packages` and `dist-packages`):
//!    - CPU: `xla_plugins/xla_cpu_pjrt/xla_cpu_pjrt.so` (pip package `xla-cpu-pjrt`)
//!    - GPU: `jax_plugins/xla_cuda13/xla_cuda_plugin.so`, `jax_plugins/xla_cuda12/...`
//!    - TPU: `libtpu/libtpu.so` (pip package `libtpu`)
//!
//! `auto` picks TPU if TPU hardware is detected and libtpu is found, else GPU if a GPU is
//! visible (`/dev/nvidia0` exists or `/proc/driver/nvidia/gpus` is not empty) and a GPU
//! plugin is found, else CPU.
//!
//! TPU hardware means `/dev/accel*` or `/dev/vfio/<number>` devices, or `TPU_ACCELERATOR_TYPE`
//! or `TPU_NAME` set. Without it libtpu is never loaded, whatever is asked: off a TPU host it
//! contacts a cloud metadata server and hangs for minutes.
//!
//! When nothing is found the error lists every path searched and the command that installs
//! the plugin: `bash scripts/setup.sh` (CPU), `bash scripts/setup.sh --gpu`,
//! `bash scripts/setup.sh --tpu`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, Result};

/// The `--device` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceChoice {
    #[default]
    Auto,
    Cpu,
    Gpu,
    Tpu,
}

impl DeviceChoice {
    /// The command that installs this device's plugin.
    pub fn install_command(self) -> &'static str {
        match self {
            DeviceChoice::Auto | DeviceChoice::Cpu => "bash scripts/setup.sh",
            DeviceChoice::Gpu => "bash scripts/setup.sh --gpu",
            DeviceChoice::Tpu => "bash scripts/setup.sh --tpu",
        }
    }

    /// Plugin paths relative to a project folder (the one holding `.pjrt/`).
    fn project_files(self) -> &'static [&'static str] {
        match self {
            DeviceChoice::Auto | DeviceChoice::Cpu => {
                &[".pjrt/cpu/xla_plugins/xla_cpu_pjrt/xla_cpu_pjrt.so"]
            }
            DeviceChoice::Gpu => &[
                ".pjrt/gpu/jax_plugins/xla_cuda13/xla_cuda_plugin.so",
                ".pjrt/gpu/jax_plugins/xla_cuda12/xla_cuda_plugin.so",
            ],
            DeviceChoice::Tpu => &[".pjrt/tpu/libtpu/libtpu.so"],
        }
    }

    /// Plugin paths relative to a Python site-packages folder.
    fn package_files(self) -> &'static [&'static str] {
        match self {
            DeviceChoice::Auto | DeviceChoice::Cpu => &["xla_plugins/xla_cpu_pjrt/xla_cpu_pjrt.so"],
            DeviceChoice::Gpu => &[
                "jax_plugins/xla_cuda13/xla_cuda_plugin.so",
                "jax_plugins/xla_cuda12/xla_cuda_plugin.so",
            ],
            DeviceChoice::Tpu => &["libtpu/libtpu.so"],
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceChoice::Auto => "auto",
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Gpu => "gpu",
            DeviceChoice::Tpu => "tpu",
        })
    }
}

impl FromStr for DeviceChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "gpu" | "cuda" => Ok(DeviceChoice::Gpu),
            "tpu" => Ok(DeviceChoice::Tpu),
            _ => Err(Error::invalid(
                "device",
                s,
                "expected one of: auto, cpu, gpu, tpu",
            )),
        }
    }
}

/// The plugin chosen: a concrete device (never `Auto`) and its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub device: DeviceChoice,
    pub path: PathBuf,
}

/// Finds the plugin for `choice` on this machine (see the module documentation).
pub fn find_plugin(choice: DeviceChoice, explicit: Option<&Path>) -> Result<Found> {
    Probe::system().find(choice, explicit)
}

/// Environment variables the search reads.
const ENV_KEYS: [&str; 7] = [
    "PRUNEBENCH_PLUGIN",
    "PRUNEBENCH_HOME",
    "TPU_ACCELERATOR_TYPE",
    "TPU_NAME",
    "HOME",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
];

/// Everything the search looks at, so tests can point it at fake folders.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    /// The file system root for `/dev`, `/proc`, `/usr`, `/opt` (`/` on a real system).
    pub root: PathBuf,
    pub cwd: Option<PathBuf>,
    /// Folder of the running executable.
    pub exe_dir: Option<PathBuf>,
    /// The environment (only the variables in use need to be present).
    pub env: BTreeMap<String, String>,
}

impl Probe {
    /// This machine, this process.
    pub fn system() -> Probe {
        let env = ENV_KEYS
            .iter()
            .filter_map(|&k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        Probe {
            root: PathBuf::from("/"),
            cwd: std::env::current_dir().ok(),
            exe_dir: std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf)),
            env,
        }
    }

    /// A non-empty environment variable.
    pub fn var(&self, key: &str) -> Option<&str> {
        self.env
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn sys(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }

    /// TPU hardware: `/dev/accel*`, `/dev/vfio/<number>`, `TPU_ACCELERATOR_TYPE` or `TPU_NAME`.
    pub fn tpu_hardware(&self) -> bool {
        let names = |dir: PathBuf| -> Vec<String> {
            std::fs::read_dir(dir)
                .map(|it| {
                    it.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        names(self.sys("dev"))
            .iter()
            .any(|n| n.starts_with("accel"))
            || names(self.sys("dev/vfio"))
                .iter()
                .any(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            || self.var("TPU_ACCELERATOR_TYPE").is_some()
            || self.var("TPU_NAME").is_some()
    }

    /// What [`tpu_hardware`](Self::tpu_hardware) checks, for messages.
    pub fn tpu_checks(&self) -> String {
        format!(
            "{}*, {}/<number>, $TPU_ACCELERATOR_TYPE, $TPU_NAME",
            self.sys("dev/accel").display(),
            self.sys("dev/vfio").display()
        )
    }

    /// An NVIDIA GPU: `/dev/nvidia0` exists or `/proc/driver/nvidia/gpus` is not empty.
    pub fn gpu_visible(&self) -> bool {
        self.sys("dev/nvidia0").exists()
            || std::fs::read_dir(self.sys("proc/driver/nvidia/gpus"))
                .is_ok_and(|mut it| it.next().is_some())
    }

    /// Folders that may hold `.pjrt/`, in search order.
    fn project_dirs(&self) -> Vec<PathBuf> {
        self.folders_holding(".pjrt")
    }

    /// Folders that may hold the project folder `marker` (`.pjrt`, `.runtimes`), in search
    /// order: `$PRUNEBENCH_HOME`, then the current folder and its parents, then the
    /// executable's folder and its parents, each where `marker` exists; when none has it, the
    /// current folder (where `scripts/setup.sh` would install).
    pub fn folders_holding(&self, marker: &str) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut push = |d: PathBuf| {
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        };
        if let Some(home) = self.var("PRUNEBENCH_HOME") {
            push(PathBuf::from(home));
        }
        let mut walked_any = false;
        for start in [&self.cwd, &self.exe_dir].into_iter().flatten() {
            for dir in start.ancestors() {
                if dir.join(marker).is_dir() {
                    push(dir.to_path_buf());
                    walked_any = true;
                }
            }
        }
        // No `marker` anywhere: still name the place `scripts/setup.sh` would install to.
        if !walked_any {
            if let Some(cwd) = &self.cwd {
                push(cwd.clone());
            }
        }
        dirs
    }

    /// Python package folders that exist, in search order.
    fn site_packages(&self) -> Vec<PathBuf> {
        let mut prefixes: Vec<PathBuf> = Vec::new();
        for key in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
            if let Some(p) = self.var(key) {
                prefixes.push(PathBuf::from(p));
            }
        }
        prefixes.push(self.sys("opt/conda"));
        if let Some(home) = self.var("HOME") {
            prefixes.push(Path::new(home).join(".local"));
        }
        prefixes.push(self.sys("usr/local"));
        prefixes.push(self.sys("usr"));
        let mut out = Vec::new();
        for prefix in prefixes {
            for py in python_dirs(&prefix.join("lib")) {
                for kind in ["site-packages", "dist-packages"] {
                    let d = py.join(kind);
                    if d.is_dir() && !out.contains(&d) {
                        out.push(d);
                    }
                }
            }
        }
        out
    }

    /// Every candidate file for a concrete device, in search order (existing or not).
    pub fn candidates(&self, device: DeviceChoice) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for dir in self.project_dirs() {
            out.extend(device.project_files().iter().map(|f| dir.join(f)));
        }
        for dir in self.site_packages() {
            out.extend(device.package_files().iter().map(|f| dir.join(f)));
        }
        out
    }

    fn search(&self, device: DeviceChoice) -> Result<Found> {
        let candidates = self.candidates(device);
        if let Some(path) = candidates.iter().find(|p| p.is_file()) {
            return Ok(Found {
                device,
                path: path.clone(),
            });
        }
        let mut searched: Vec<String> =
            candidates.iter().map(|p| p.display().to_string()).collect();
        if self.site_packages().is_empty() {
            searched.push("(no Python site-packages folder found)".to_string());
        }
        Err(Error::PluginNotFound {
            device: device.to_string(),
            searched: searched.join("\n"),
            install: device.install_command().to_string(),
        })
    }

    fn no_tpu_error(&self) -> Error {
        Error::invalid(
            "device",
            "tpu",
            format!(
                "no TPU hardware was detected (checked {}); libtpu is only loaded on a TPU host. \
                 Use --device cpu or gpu here",
                self.tpu_checks()
            ),
        )
    }

    /// The search of [`find_plugin`] on this probe. Never loads anything.
    pub fn find(&self, choice: DeviceChoice, explicit: Option<&Path>) -> Result<Found> {
        let given = explicit
            .map(Path::to_path_buf)
            .or_else(|| self.var("PRUNEBENCH_PLUGIN").map(PathBuf::from));
        if let Some(path) = given {
            let device = match choice {
                DeviceChoice::Auto => device_from_file_name(&path),
                other => other,
            };
            if device == DeviceChoice::Tpu && !self.tpu_hardware() {
                return Err(self.no_tpu_error());
            }
            if !path.is_file() {
                let source = if explicit.is_some() {
                    "--plugin"
                } else {
                    "PRUNEBENCH_PLUGIN"
                };
                return Err(Error::PluginLoad {
                    path,
                    message: format!("no such file (given by {source})"),
                });
            }
            return Ok(Found { device, path });
        }
        match choice {
            DeviceChoice::Tpu if !self.tpu_hardware() => Err(self.no_tpu_error()),
            DeviceChoice::Auto => {
                if self.tpu_hardware() {
                    if let Ok(found) = self.search(DeviceChoice::Tpu) {
                        return Ok(found);
                    }
                }
                if self.gpu_visible() {
                    if let Ok(found) = self.search(DeviceChoice::Gpu) {
                        return Ok(found);
                    }
                }
                self.search(DeviceChoice::Cpu)
            }
            device => self.search(device),
        }
    }
}

/// The device a plugin file is for, from its name.
fn device_from_file_name(path: &Path) -> DeviceChoice {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.contains("tpu") {
        DeviceChoice::Tpu
    } else if ["cuda", "rocm", "gpu"].iter().any(|k| name.contains(k)) {
        DeviceChoice::Gpu
    } else {
        DeviceChoice::Cpu
    }
}

/// `lib/python3*` folders, newest Python first.
fn python_dirs(lib: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(lib) else {
        return Vec::new();
    };
    let mut dirs: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let rest = name.strip_prefix("python3")?;
            let minor = rest
                .strip_prefix('.')
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            e.path().is_dir().then(|| (minor, e.path()))
        })
        .collect();
    dirs.sort_by(|a, b| b.cmp(a));
    dirs.into_iter().map(|(_, p)| p).collect()
}
