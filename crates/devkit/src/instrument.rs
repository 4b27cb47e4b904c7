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

/// How many clusters a fleet-scale benchmark generates: `OCITOOL_BENCH_CLUSTERS`, default 100
/// (the fleet size the speed targets are set for).
pub fn bench_clusters() -> usize {
    std::env::var("OCITOOL_BENCH_CLUSTERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

/// The cores the tools' CPU time is divided by.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `f` with file descriptor 1 pointing at /dev/null, then restores it: a benchmark's
/// workflow report (hundreds of lines) is not the measurement, and the figures go to stdout after.
pub fn with_stdout_silenced<T>(f: impl FnOnce() -> T) -> T {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let Ok(null) = std::fs::File::create("/dev/null") else {
        return f();
    };
    let _ = std::io::stdout().flush();
    // SAFETY: dup/dup2/close on descriptors that are open (1, the /dev/null file, the saved
    // copy); the saved copy is restored and closed before returning.
    let saved = unsafe { libc::dup(1) };
    if saved < 0 {
        return f();
    }
    unsafe { libc::dup2(null.as_raw_fd(), 1) };
    let out = f();
    let _ = std::io::stdout().flush();
    unsafe {
        libc::dup2(saved, 1);
        libc::close(saved);
    }
    out
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
