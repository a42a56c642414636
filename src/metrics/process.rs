//! The standard `process_*` families (CPU time, resident and virtual memory, open and maximum
//! file descriptors, start time), read from `/proc/self` at scrape time. Off Linux, or when
//! `/proc` cannot be read, the families are simply absent.

use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Kernel clock ticks per second (`USER_HZ`): 100 on every Linux architecture trustgate
/// builds for (reading `sysconf` would need `unsafe`).
const TICKS_PER_SECOND: f64 = 100.0;

/// What `/proc/self` says about this process.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessStats {
    /// User plus system CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    /// Resident set size, bytes.
    pub resident_bytes: Option<f64>,
    /// Virtual memory size, bytes.
    pub virtual_bytes: Option<f64>,
    /// Open file descriptors.
    pub open_fds: Option<f64>,
    /// The soft limit on open file descriptors.
    pub max_fds: Option<f64>,
    /// Start time, Unix seconds.
    pub start_time: Option<f64>,
}

impl ProcessStats {
    /// Reads `/proc/self` (every value that cannot be read stays `None`).
    pub fn read() -> ProcessStats {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let boot = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let mut s = ProcessStats::parse(&stat, &status, &limits, &boot);
        s.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as f64);
        s
    }

    /// Parses the text of `/proc/self/stat`, `/proc/self/status`, `/proc/self/limits` and
    /// `/proc/stat` (for `btime`). Unparseable input gives `None`s, never a panic.
    pub fn parse(stat: &str, status: &str, limits: &str, boot: &str) -> ProcessStats {
        // Fields after the command name (which is in parentheses and may hold spaces).
        let fields: Vec<&str> = stat
            .rfind(')')
            .map(|i| stat[i + 1..].split_whitespace().collect())
            .unwrap_or_default();
        // Field numbers of proc(5), counted from 1 with `pid` and `comm`: the slice starts at 3.
        let field = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse::<f64>().ok() };
        let cpu_seconds = match (field(14), field(15)) {
            (Some(u), Some(s)) => Some((u + s) / TICKS_PER_SECOND),
            _ => None,
        };
        let kib = |key: &str| -> Option<f64> {
            let line = status.lines().find(|l| l.starts_with(key))?;
            let value = line[key.len()..].split_whitespace().next()?;
            Some(value.parse::<f64>().ok()? * 1024.0)
        };
        let btime = boot
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        let start_time = match (btime, field(22)) {
            (Some(b), Some(ticks)) => Some(b + ticks / TICKS_PER_SECOND),
            _ => None,
        };
        let max_fds = limits
            .lines()
            .find_map(|l| l.strip_prefix("Max open files"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok());
        ProcessStats {
            cpu_seconds,
            resident_bytes: kib("VmRSS:"),
            virtual_bytes: kib("VmSize:"),
            open_fds: None,
            max_fds,
            start_time,
        }
    }
}

/// The collector registered on the root registry (the `process_` names are the convention).
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessCollector;

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: Option<f64>,
) -> Result<(), std::fmt::Error> {
    let Some(value) = value else {
        return Ok(());
    };
    let metric = ConstGauge::new(value);
    let e = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(e)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = ProcessStats::read();
        if let Some(cpu) = s.cpu_seconds {
            let metric = ConstCounter::new(cpu);
            let e = encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                metric.metric_type(),
            )?;
            metric.encode(e)?;
        }
        let e = &mut encoder;
        gauge(
            e,
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            s.resident_bytes,
        )?;
        gauge(
            e,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            s.virtual_bytes,
        )?;
        gauge(
            e,
            "process_open_fds",
            "Number of open file descriptors",
            s.open_fds,
        )?;
        gauge(
            e,
            "process_max_fds",
            "Maximum number of open file descriptors",
            s.max_fds,
        )?;
        gauge(
            e,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch in seconds",
            s.start_time,
        )?;
        Ok(())
    }
}

/// Seconds since the Unix epoch, now.
pub(super) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat =
            "42 (trust gate) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 1000 12345 678";
        let status = "Name:\ttrustgate\nVmSize:\t  2048 kB\nVmRSS:\t    1024 kB\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        let boot = "cpu  1 2 3\nbtime 1700000000\n";
        let s = ProcessStats::parse(stat, status, limits, boot);
        assert_eq!(s.cpu_seconds, Some(3.0));
        assert_eq!(s.resident_bytes, Some(1024.0 * 1024.0));
        assert_eq!(s.virtual_bytes, Some(2048.0 * 1024.0));
        assert_eq!(s.max_fds, Some(1024.0));
        assert_eq!(s.start_time, Some(1_700_000_010.0));
    }

    #[test]
    fn garbage_gives_nothing() {
        let s = ProcessStats::parse("x", "VmRSS: lots", "", "btime soon");
        assert_eq!(s, ProcessStats::default());
    }

    #[test]
    fn reads_this_process() {
        let s = ProcessStats::read();
        if cfg!(target_os = "linux") {
            assert!(s.resident_bytes.unwrap_or(0.0) > 0.0, "{s:?}");
            assert!(s.open_fds.unwrap_or(0.0) > 0.0, "{s:?}");
            assert!(s.start_time.unwrap_or(0.0) > 1.0e9, "{s:?}");
        }
    }
}
