//! The one error type of the library. The CLI adds context with `anyhow`; everything below it
//! returns [`Error`], whose messages name the bad value and, where there is one, the fix.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ---- PJRT ----------------------------------------------------------------------------
    /// The plugin library could not be opened or does not look like a PJRT plugin.
    #[error("cannot load PJRT plugin {path}: {message}")]
    PluginLoad { path: PathBuf, message: String },

    /// No plugin was found for the requested device.
    #[error("no PJRT plugin found for device '{device}'. Searched:\n{searched}\nInstall one with: {install}")]
    PluginNotFound { device: String, searched: String, install: String },

    /// A PJRT call returned a `PJRT_Error`.
    #[error("PJRT {call} failed [{code}]: {message}")]
    Pjrt { call: &'static str, code: String, message: String },

    /// The plugin's API table is too old / too short / of another major version.
    #[error("PJRT plugin API mismatch: {0}")]
    PjrtApi(String),

    // ---- Other runtimes (ONNX Runtime, OpenVINO) ------------------------------------------
    /// A runtime's shared library was not found.
    #[error("no {runtime} library found. Searched:\n{searched}\nInstall it with: {install}")]
    RuntimeNotFound { runtime: String, searched: String, install: String },

    /// A runtime's call failed (loading its library, reading or compiling a model, a run).
    #[error("{runtime}: {message}")]
    Runtime { runtime: &'static str, message: String },

    // ---- StableHLO emitter -----------------------------------------------------------------
    /// An op was given operands of shapes it cannot take.
    #[error("shape error in {op}: {message}")]
    Shape { op: String, message: String },

    // ---- Model, checkpoints, user input ----------------------------------------------------
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: PathBuf, message: String },

    #[error("invalid {what} '{value}': {fix}")]
    Invalid { what: String, value: String, fix: String },

    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },

    // ---- Training ------------------------------------------------------------------------
    /// A training run diverged: a non-finite loss, parameter or BN statistic, or a loss that
    /// exploded (see [`crate::train::fit`]). Nothing of the diverged state is saved.
    #[error(
        "training diverged at step {step}: {what}. Nothing was saved from the diverged run (an earlier \
         checkpoint, if any, is intact); lower the learning rate (CLI --lr, suite lr:) or add warm-up steps"
    )]
    Diverged { step: usize, what: String },

    /// A run stopped by a signal (Ctrl-C, SIGTERM) at a safe point; `what` says where and
    /// what was kept. The CLI exits with status 130.
    #[error("interrupted {what}")]
    Interrupted { what: String },

    #[error("{path}: {source}")]
    Io { path: PathBuf, #[source] source: std::io::Error },

    /// Writing `path` failed (a full disk, a read-only folder); `kept` says what survived,
    /// e.g. "the 12 rows already written are kept".
    #[error("{path}: {source}; {kept}")]
    Write { path: PathBuf, #[source] source: std::io::Error, kept: String },

    /// Another process holds the output's lock: `holder` is what it wrote into the lock file
    /// (`pid N, started T`).
    #[error("{path} is being written by another prunebench run ({holder}); wait for it or use --out OTHER")]
    Busy { path: PathBuf, holder: String },
}

impl Error {
    pub fn shape(op: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Shape { op: op.into(), message: message.into() }
    }
    pub fn invalid(what: impl Into<String>, value: impl ToString, fix: impl Into<String>) -> Self {
        Error::Invalid { what: what.into(), value: value.to_string(), fix: fix.into() }
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
    pub fn write(path: impl Into<PathBuf>, source: std::io::Error, kept: impl Into<String>) -> Self {
        Error::Write { path: path.into(), source, kept: kept.into() }
    }
    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::File { path: path.into(), message: message.into() }
    }
    pub fn checkpoint(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Checkpoint { path: path.into(), message: message.into() }
    }
}
