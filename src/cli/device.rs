//! `--device` / `--plugin` handling and the `devices` command.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::pjrt::{DeviceChoice, Plugin};
use crate::runtime::Session;

/// Where programs run.
#[derive(Args, Debug, Clone)]
pub struct DeviceArgs {
    /// Device: auto (TPU > GPU > CPU, whichever plugin and hardware are found), cpu, gpu, tpu.
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    pub device: DeviceChoice,
    /// Path of a PJRT plugin (.so) to use instead of searching; also read from the
    /// environment variable PRUNEBENCH_PLUGIN.
    #[arg(long, value_name = "PATH")]
    pub plugin: Option<PathBuf>,
}

fn parse_device(s: &str) -> Result<DeviceChoice, String> {
    s.parse::<DeviceChoice>().map_err(|e| e.to_string())
}

impl DeviceArgs {
    pub fn open(&self) -> anyhow::Result<Session> {
        Session::open(self.device, self.plugin.as_deref()).context("opening the PJRT device")
    }
}

pub fn devices(a: &DeviceArgs) -> anyhow::Result<()> {
    let found = crate::pjrt::find_plugin(a.device, a.plugin.as_deref())?;
    let plugin = Plugin::load(&found.path)?;
    let (major, minor) = plugin.api_version();
    println!("plugin:      {}", found.path.display());
    println!("device kind: {:?}", found.device);
    println!("PJRT API:    {major}.{minor}");
    if let Ok(attrs) = plugin.attributes() {
        for (k, v) in attrs {
            println!("attribute:   {k} = {v}");
        }
    }
    let client = plugin.client()?;
    println!("platform:    {} {}", client.platform_name()?, client.platform_version().unwrap_or_default());
    for d in client.devices()? {
        let mem = match d.memory_stats() {
            Ok(Some(m)) => format!(", {} bytes in use", m.bytes_in_use),
            _ => String::new(),
        };
        println!("device {}:    {}{mem}", d.id(), d.kind());
    }
    Ok(())
}
