//! Memory use of this process against the function's configured memory.

/// Resident set size in kB from the text of `/proc/self/status` (`VmRSS:  12345 kB`).
pub fn parse_vm_rss_kb(status: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix("VmRSS:")?;
        let mut parts = rest.split_whitespace();
        let n: u64 = parts.next()?.parse().ok()?;
        match parts.next() {
            Some("kB") | None => Some(n),
            _ => None,
        }
    })
}

/// This process's resident set size in MB, or `None` where `/proc` is unavailable.
pub fn resident_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss_kb(&status).map(|kb| kb as f64 / 1024.0)
}

/// Used memory as a percentage of `limit_mb`.
pub fn percent_of(used_mb: f64, limit_mb: u64) -> f64 {
    if limit_mb == 0 {
        return 0.0;
    }
    used_mb / limit_mb as f64 * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status() {
        let s = "Name:\tbootstrap\nVmPeak:\t  200000 kB\nVmRSS:\t   51200 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss_kb(s), Some(51200));
        assert_eq!(parse_vm_rss_kb("Name: x\n"), None);
        assert_eq!(parse_vm_rss_kb("VmRSS: lots kB\n"), None);
        assert!((percent_of(51200.0 / 1024.0, 128) - 39.0625).abs() < 1e-9);
    }

    #[test]
    fn reads_this_process() {
        // Linux CI: /proc exists and a test binary uses some memory.
        let mb = resident_mb().expect("/proc/self/status");
        assert!(mb > 0.5 && mb < 100_000.0, "{mb}");
    }
}
