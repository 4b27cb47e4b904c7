//! Benchmark instrumentation that the product must not carry: how much CPU time the external
//! programs this process started (sops, flux, kubectl) have used.
//!
//! The kernel already keeps the figure: `getrusage(RUSAGE_CHILDREN)` adds up the user and system
//! time of every child process that has been waited for. So a benchmark reads it before and after
//! a run, and nothing in ocitool's own code has to count. Read-only; Unix only.

use std::time::Duration;

/// User + system CPU time of all waited-for child processes of this process so far.
pub fn children_cpu_time() -> Duration {
    // SAFETY: getrusage only writes into the zeroed struct we hand it.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_when_a_child_burns_cpu() {
        let before = children_cpu_time();
        let status = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"])
            .status()
            .unwrap();
        assert!(status.success());
        assert!(children_cpu_time() > before);
    }
}
