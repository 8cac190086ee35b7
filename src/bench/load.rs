//! How busy the machine was during a measurement: other processes' CPU time and the
//! hypervisor's steal time, from `/proc` (Linux).
//!
//! A [`LoadProbe`] reads, at its start and at [`LoadProbe::finish`]:
//! - the first `cpu` line of `/proc/stat` (jiffies of all cores: user, nice, system, idle,
//!   iowait, irq, softirq, steal; guest time is already inside user), and
//! - this process's `utime + stime` from `/proc/self/stat` (fields 14 and 15, all threads, in
//!   the same clock ticks as `/proc/stat`).
//!
//! Over the interval, with `total` the change of the sum of the eight fields (all cores' time):
//! - `steal = d(steal) / total`: time the hypervisor gave our virtual CPUs to someone else;
//! - `other_cpu = (d(user + nice + system + irq + softirq) - d(own)) / total`: busy time
//!   that was not this process, i.e. other processes and the kernel's work for them.
//!
//! Both are fractions of all cores' time (0..1): a single-threaded hog on a 2-core machine
//! reads about 0.5. Off Linux (no `/proc`) [`LoadProbe::finish`] gives `None`.

use serde::{Deserialize, Serialize};

/// Above this share of all cores' time used by other processes, a measurement counts as
/// made on a busy machine. A quarter of the machine leaves room for the kernel and small
/// daemons (a few percent) but flags one busy core of four, or a hog on one core of two.
pub const BUSY_OTHER_CPU: f64 = 0.25;

/// Above this share of CPU time stolen by the hypervisor, a measurement counts as made on
/// a busy machine (our calls were paused for someone else's work).
pub const BUSY_STEAL: f64 = 0.05;

/// CPU load of the whole machine over an interval, from /proc/stat and this process's times.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Load {
    /// Fraction (0..1) of all cores' time used by other processes.
    pub other_cpu: f64,
    /// Fraction (0..1) of all cores' time stolen by the hypervisor.
    pub steal: f64,
}

impl Load {
    /// Why the machine counts as busy under the default thresholds ([`BUSY_OTHER_CPU`],
    /// [`BUSY_STEAL`]), e.g. `machine busy: other processes 48.0% of CPU > 25%, steal 12.3% > 5%`; `None`
    /// when quiet.
    pub fn busy(&self) -> Option<String> {
        self.busy_above(BUSY_OTHER_CPU, BUSY_STEAL)
    }

    /// [`Load::busy`] with the given thresholds (fractions 0..1).
    pub fn busy_above(&self, other_cpu: f64, steal: f64) -> Option<String> {
        let mut why = Vec::new();
        if self.other_cpu > other_cpu {
            why.push(format!("other processes {:.1}% of CPU > {}%", self.other_cpu * 100.0, percent(other_cpu)));
        }
        if self.steal > steal {
            why.push(format!("steal {:.1}% > {}%", self.steal * 100.0, percent(steal)));
        }
        (!why.is_empty()).then(|| format!("machine busy: {}", why.join(", ")))
    }

    /// The load between two readings; `None` if no time passed or the counters went back.
    pub fn between(a: &Reading, b: &Reading) -> Option<Load> {
        let total = b.cpu.total().checked_sub(a.cpu.total())? as f64;
        if total <= 0.0 {
            return None;
        }
        let busy = b.cpu.busy().checked_sub(a.cpu.busy())? as f64;
        let own = b.own.checked_sub(a.own)? as f64;
        let steal = b.cpu.steal.checked_sub(a.cpu.steal)? as f64;
        Some(Load { other_cpu: ((busy - own) / total).clamp(0.0, 1.0), steal: (steal / total).clamp(0.0, 1.0) })
    }
}

/// A fraction as a percentage for messages, to 0.1: 0.05 -> `5`, 0.025 -> `2.5`
/// (also the threshold text of [`super::validity`]).
pub(crate) fn percent(fraction: f64) -> f64 {
    (fraction * 1000.0).round() / 10.0
}

/// Jiffies of all cores from the `cpu` line of `/proc/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

impl CpuTimes {
    /// All cores' time.
    pub fn total(&self) -> u64 {
        self.busy() + self.idle + self.iowait + self.steal
    }

    /// Time some process (or the kernel for it) ran, steal excluded.
    pub fn busy(&self) -> u64 {
        self.user + self.nice + self.system + self.irq + self.softirq
    }
}

/// One reading of the machine and of this process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reading {
    pub cpu: CpuTimes,
    /// This process's user + system time, in the same ticks.
    pub own: u64,
}

impl Reading {
    /// Reads `/proc/stat` and `/proc/self/stat`; `None` where they are missing or unreadable.
    pub fn now() -> Option<Reading> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        Some(Reading { cpu: parse_proc_stat(&stat)?, own: parse_self_stat(&own)? })
    }
}

/// The aggregate `cpu` line of `/proc/stat` text (older kernels without steal read it as 0).
pub fn parse_proc_stat(text: &str) -> Option<CpuTimes> {
    let line = text.lines().find(|l| l.split_whitespace().next() == Some("cpu"))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).map(str::parse).collect::<Result<_, _>>().ok()?;
    let f = |i: usize| v.get(i).copied().unwrap_or(0);
    (v.len() >= 4).then(|| CpuTimes {
        user: f(0),
        nice: f(1),
        system: f(2),
        idle: f(3),
        iowait: f(4),
        irq: f(5),
        softirq: f(6),
        steal: f(7),
    })
}

/// `utime + stime` (fields 14 and 15) of `/proc/<pid>/stat` text. The command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last `)`.
pub fn parse_self_stat(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': field 3 (state) is f[0], so field 14 is f[11] and field 15 is f[12].
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Readings at the start of a measurement.
#[derive(Clone, Copy, Debug)]
pub struct LoadProbe {
    start: Option<Reading>,
}

impl LoadProbe {
    /// Takes the first reading (none off Linux).
    pub fn start() -> LoadProbe {
        LoadProbe { start: Reading::now() }
    }

    /// The load since [`LoadProbe::start`]; `None` off Linux or when no tick passed.
    pub fn finish(&self) -> Option<Load> {
        Load::between(self.start.as_ref()?, &Reading::now()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT_A: &str = "cpu  1000 0 500 8000 100 0 0 400 0 0\ncpu0 500 0 250 4000 50 0 0 200 0 0\nintr 1\n";
    // 1000 ticks later: +300 user, +100 system, +440 idle, +0 iowait, +160 steal.
    const STAT_B: &str = "cpu  1300 0 600 8440 100 0 0 560 0 0\ncpu0 650 0 300 4220 50 0 0 280 0 0\n";

    #[test]
    fn parses_proc_text() {
        let a = parse_proc_stat(STAT_A).unwrap();
        assert_eq!((a.user, a.system, a.idle, a.iowait, a.steal), (1000, 500, 8000, 100, 400));
        assert_eq!(a.total(), 10_000);
        // Old kernels: four fields, no steal.
        assert_eq!(parse_proc_stat("cpu 1 2 3 4\n").unwrap().steal, 0);
        assert_eq!(parse_proc_stat("cpu0 1 2 3 4\n"), None);
        assert_eq!(parse_proc_stat("cpu 1 x 3 4\n"), None);
        // A command name with spaces and a ')' inside.
        let own = "4242 (pr (une) bench) R 1 2 3 4 5 6 7 8 9 10 120 30 0 0 20 0 9 0 5 6 7";
        assert_eq!(parse_self_stat(own), Some(150));
        assert_eq!(parse_self_stat("1 (x) R 1 2"), None);
    }

    #[test]
    fn load_between_synthetic_readings() {
        let (a, b) = (parse_proc_stat(STAT_A).unwrap(), parse_proc_stat(STAT_B).unwrap());
        // Busy +400 of 1000 ticks; we used 150 of them: others 250 -> 25%; steal 160 -> 16%.
        let l = Load::between(&Reading { cpu: a, own: 50 }, &Reading { cpu: b, own: 200 }).unwrap();
        assert!((l.other_cpu - 0.25).abs() < 1e-12 && (l.steal - 0.16).abs() < 1e-12, "{l:?}");
        assert_eq!(l.busy().as_deref(), Some("machine busy: steal 16.0% > 5%"));
        assert_eq!(l.busy_above(0.2, 0.5).as_deref(), Some("machine busy: other processes 25.0% of CPU > 20%"));
        assert_eq!(l.busy_above(0.2, 0.1).as_deref(), Some("machine busy: other processes 25.0% of CPU > 20%, steal 16.0% > 10%"));
        assert_eq!(Load { other_cpu: 0.02, steal: 0.0 }.busy(), None);
        // No time passed, or counters reset: no figure.
        assert_eq!(Load::between(&Reading { cpu: a, own: 0 }, &Reading { cpu: a, own: 0 }), None);
        assert_eq!(Load::between(&Reading { cpu: b, own: 0 }, &Reading { cpu: a, own: 0 }), None);
    }

    #[test]
    fn probe_reads_this_machine() {
        let p = LoadProbe::start();
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 50 {
            x = x.wrapping_add(1);
        }
        assert!(x > 0);
        if cfg!(target_os = "linux") {
            // The clock ticks 100 times a second, so 50 ms of spinning moves the counters.
            let l = p.finish().expect("a Linux /proc");
            assert!((0.0..=1.0).contains(&l.other_cpu) && (0.0..=1.0).contains(&l.steal), "{l:?}");
        }
    }
}
