//! SIGINT (Ctrl-C), SIGTERM and SIGHUP for every command, handled in one place: a command
//! interrupted by a signal exits with status 130, never 0, so `prunebench finetune ... &&
//! prunebench eval ...` does not go on with a half-trained network.
//!
//! A command that can stop cleanly (`train`, `finetune`, `run`) asks for a [`stop_flag`]
//! with the line to print: the first signal sets the flag and prints the line, the command
//! stops at its next safe point and returns
//! [`Error::Interrupted`](crate::error::Error::Interrupted), which `main` turns into exit
//! status 130; a second signal exits at once. Every other command exits at once with status
//! 130 (its files are written atomically, so nothing half-written is left).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use anyhow::Context;

/// The exit status of an interrupted command (128 + SIGINT), as shells report it.
pub const EXIT_INTERRUPTED: u8 = 130;

static STOP: AtomicBool = AtomicBool::new(false);
/// The line a command that stops cleanly prints on the first signal; `None`: exit at once.
static GRACEFUL: Mutex<Option<String>> = Mutex::new(None);
static INSTALLED: OnceLock<()> = OnceLock::new();

/// Installs the handler (once per process; later calls do nothing).
pub fn install() -> anyhow::Result<()> {
    if INSTALLED.get().is_some() {
        return Ok(());
    }
    ctrlc::set_handler(|| {
        let line = GRACEFUL.lock().map(|g| g.clone()).unwrap_or(None);
        match line {
            Some(line) if !STOP.swap(true, Ordering::SeqCst) => eprintln!("\n{line} (interrupt again to quit now)"),
            Some(_) => {
                eprintln!("\ninterrupted twice: exiting now");
                std::process::exit(EXIT_INTERRUPTED.into());
            }
            None => {
                eprintln!("\ninterrupted");
                std::process::exit(EXIT_INTERRUPTED.into());
            }
        }
    })
    .context("installing the SIGINT/SIGTERM handler")?;
    let _ = INSTALLED.set(());
    Ok(())
}

/// Makes the first signal set the returned flag and print `line` (what the command does
/// now) instead of exiting; the command must stop soon after and return
/// [`Error::Interrupted`](crate::error::Error::Interrupted).
pub fn stop_flag(line: &str) -> &'static AtomicBool {
    if let Ok(mut g) = GRACEFUL.lock() {
        *g = Some(line.to_string());
    }
    &STOP
}
