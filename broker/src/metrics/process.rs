//! The process's own resource use, read from `/proc/self` (Linux). Anything that cannot
//! be read is left out rather than reported as zero.

/// CPU time, memory and file descriptors of this process.
#[derive(Debug, Default, PartialEq)]
pub struct ProcessStats {
    /// User plus system CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    /// Seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
    pub threads: Option<u64>,
}

pub fn read() -> ProcessStats {
    let mut s = ProcessStats::default();
    // The figures are the process's real ones even in a simulation build, where the
    // admin listener does not run at all.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|t| boot_time(&t));
        parse_stat(&stat, ticks, page, boot, &mut s);
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        s.open_fds = Some(dir.count() as u64);
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        s.max_fds = Some(lim.rlim_cur);
    }
    s
}

/// `btime` of `/proc/stat`: boot time, seconds since the epoch.
fn boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Fields of `/proc/self/stat` (proc(5)); the command name may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_stat(stat: &str, ticks: i64, page: i64, boot: Option<u64>, s: &mut ProcessStats) {
    let Some(close) = stat.rfind(')') else {
        return;
    };
    // Field 3 (state) is the first after the name.
    let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { f.get(n - 3).and_then(|v| v.parse().ok()) };
    if ticks > 0 {
        if let (Some(u), Some(k)) = (field(14), field(15)) {
            s.cpu_seconds = Some((u + k) as f64 / ticks as f64);
        }
        if let (Some(start), Some(boot)) = (field(22), boot) {
            s.start_time_seconds = Some(boot as f64 + start as f64 / ticks as f64);
        }
    }
    s.threads = field(20);
    s.virtual_bytes = field(23);
    if page > 0 {
        s.resident_bytes = field(24).map(|p| p * page as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        let stat = "4242 (str om) (x)) S 1 4242 4242 0 -1 4194560 2000 0 0 0 250 50 0 0 20 0 7 0 1000 123456789 3000 18446744073709551615";
        let mut s = ProcessStats::default();
        parse_stat(stat, 100, 4096, Some(1_700_000_000), &mut s);
        assert_eq!(s.cpu_seconds, Some(3.0));
        assert_eq!(s.threads, Some(7));
        assert_eq!(s.start_time_seconds, Some(1_700_000_010.0));
        assert_eq!(s.virtual_bytes, Some(123_456_789));
        assert_eq!(s.resident_bytes, Some(3000 * 4096));
        assert_eq!(
            boot_time("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn this_process_is_measured() {
        let s = read();
        assert!(s.resident_bytes.unwrap() > 0);
        assert!(s.open_fds.unwrap() > 0);
        assert!(s.start_time_seconds.unwrap() > 1e9);
    }
}
