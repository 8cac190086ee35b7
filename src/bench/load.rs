//! How busy the machine was while something was measured: the CPU time used by other
//! processes and the time stolen by the hypervisor, from `/proc/stat` and this process's own
//! times (`/proc/self/stat`), as fractions of all cores' time over the interval.
//!
//! (Minimal version for the tuner's branch; the measurement branch owns the full one with the
//! same public interface.)

use serde::{Deserialize, Serialize};

/// CPU load of the whole machine over an interval, from /proc/stat and this process's times.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Load {
    /// Fraction (0..1) of all cores' time spent running other processes (user, nice, system,
    /// irq, softirq of the machine, less this process's user and system time).
    pub other_cpu: f64,
    /// Fraction (0..1) of all cores' time the hypervisor gave to other guests (`steal`).
    pub steal: f64,
}

/// Above this fraction of all cores' time used by other processes, the machine counts as busy.
pub const BUSY_OTHER_CPU: f64 = 0.25;
/// Above this fraction of stolen time, the machine counts as busy.
pub const BUSY_STEAL: f64 = 0.05;

impl Load {
    /// Why the machine counts as busy under this load (`other processes 40% of CPU; steal
    /// 12%`), or `None` when it was quiet (both at or below [`BUSY_OTHER_CPU`] and [`BUSY_STEAL`]).
    pub fn busy(&self) -> Option<String> {
        let mut why = Vec::new();
        if self.other_cpu > BUSY_OTHER_CPU {
            why.push(format!("other processes {:.0}% of CPU", self.other_cpu * 100.0));
        }
        if self.steal > BUSY_STEAL {
            why.push(format!("steal {:.0}%", self.steal * 100.0));
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

/// Clock-tick counters read at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Reading {
    /// Ticks the machine spent busy (user + nice + system + irq + softirq), all cores.
    busy: u64,
    steal: u64,
    /// Every tick counted (busy + idle + iowait + steal), all cores.
    total: u64,
    /// This process's user + system ticks.
    own: u64,
}

impl Reading {
    fn now() -> Option<Reading> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        parse(&stat, &own)
    }
}

/// A [`Reading`] from the text of `/proc/stat` and `/proc/self/stat`.
fn parse(stat: &str, self_stat: &str) -> Option<Reading> {
    let cpu = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = cpu.split_whitespace().skip(1).map(|v| v.parse().unwrap_or(0)).collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let busy = at(0) + at(1) + at(2) + at(5) + at(6);
    let steal = at(7);
    let total = busy + at(3) + at(4) + steal;
    // The command name (field 2) may hold spaces: fields count from after its ')'.
    let rest = &self_stat[self_stat.rfind(')')? + 1..];
    let g: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15, i.e. 12 and 13 after the ')'.
    let own = g.get(11)?.parse::<u64>().ok()? + g.get(12)?.parse::<u64>().ok()?;
    Some(Reading { busy, steal, total, own })
}

/// The load between two readings (`None` when no tick passed).
fn between(a: &Reading, b: &Reading) -> Option<Load> {
    let total = b.total.checked_sub(a.total).filter(|&t| t > 0)? as f64;
    let busy = b.busy.saturating_sub(a.busy);
    let own = b.own.saturating_sub(a.own);
    Some(Load {
        other_cpu: (busy.saturating_sub(own) as f64 / total).clamp(0.0, 1.0),
        steal: (b.steal.saturating_sub(a.steal) as f64 / total).clamp(0.0, 1.0),
    })
}

/// Readings taken at the start of an interval.
pub struct LoadProbe {
    start: Option<Reading>,
}

impl LoadProbe {
    /// Reads the counters now.
    pub fn start() -> LoadProbe {
        LoadProbe { start: Reading::now() }
    }

    /// The load since [`start`](Self::start); `None` off Linux (no `/proc`) or when less than
    /// one clock tick passed.
    pub fn finish(&self) -> Option<Load> {
        between(self.start.as_ref()?, &Reading::now()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(user: u64, idle: u64, steal: u64) -> String {
        format!("cpu  {user} 0 0 {idle} 0 0 0 {steal} 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
    }

    fn me(utime: u64) -> String {
        format!("42 (a (b) c) R 1 2 3 4 5 6 7 8 9 10 {utime} 0 0 0")
    }

    #[test]
    fn other_cpu_excludes_this_process_and_steal_is_its_share() {
        let a = parse(&stat(100, 1000, 0), &me(50)).unwrap();
        // 200 ticks pass: 80 busy (30 of them ours), 100 idle, 20 stolen.
        let b = parse(&stat(180, 1100, 20), &me(80)).unwrap();
        let l = between(&a, &b).unwrap();
        assert!((l.other_cpu - 50.0 / 200.0).abs() < 1e-12, "{l:?}");
        assert!((l.steal - 20.0 / 200.0).abs() < 1e-12, "{l:?}");
        assert_eq!(l.busy().unwrap(), "steal 10%");
        assert_eq!(between(&a, &a), None, "no tick passed");
    }

    #[test]
    fn busy_names_each_figure_over_its_threshold() {
        assert_eq!(Load { other_cpu: BUSY_OTHER_CPU, steal: BUSY_STEAL }.busy(), None);
        assert_eq!(Load { other_cpu: 0.4, steal: 0.12 }.busy().unwrap(), "other processes 40% of CPU; steal 12%");
    }
}
