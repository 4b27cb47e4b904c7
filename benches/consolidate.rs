//! Consolidation benchmark: a synthetic fleet of N clusters × 12 services (N from
//! `OCITOOL_BENCH_CLUSTERS`, default 100), encrypted with real sops/age, consolidated by ocitool
//! (`scripts/consolidate.rhai` through the library, no cluster parameter, then applied) and by the
//! naive shell pipeline in `benches/consolidate.sh`, each on its own fresh copy.
//!
//! Prints wall time, CPU time inside sops and flux (getrusage of the child processes), scan+plan
//! time per 1,000 files, peak memory, the speed-up over the shell pipeline, and PASS/MISS per
//! target. The shell pipeline only merges the per-service files; ocitool also builds every Flux
//! Kustomization with flux to find the namespaces that use the Secret (issue 9), so the speed-up
//! compares unequal work. It never asserts: figures depend on the machine.
//! Run: `OCITOOL_BENCH_CLUSTERS=20 cargo bench --bench consolidate`; validate: `benches/validate.rs`.

use ocitool::script;
use ocitool::script::builtin::{self, ScriptSource};
use ocitool_adapters::changeset::{Changeset, RepoLock};
use ocitool_adapters::kubectl::Kubectl;
use ocitool_devkit::fleetgen::{self, FleetSpec};
use ocitool_devkit::instrument;
use ocitool_orchestration::repo;
use ocitool_orchestration::workspace::Workspace;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

const SERVICES: usize = 12;
const CUSTOMER: &str = "bench";
const SHELL_PIPELINE: &str = include_str!("consolidate.sh");

/// What one ocitool consolidation run cost.
struct Run {
    wall: Duration,
    sops: Duration,
    peak_bytes: Option<u64>,
}

fn main() {
    let (clusters, cores) = (instrument::bench_clusters(), instrument::cores());
    let work = tempfile::tempdir().expect("tempdir");
    let pristine = work.path().join("pristine");
    eprintln!("generating {clusters} clusters × {SERVICES} services (not timed)…");
    let generated = fleetgen::generate(&pristine, &FleetSpec::synthetic(clusters, SERVICES))
        .expect("generate the fleet");
    // Set before any thread starts: sops (ours and the shell's) decrypts with every cluster's key.
    unsafe { std::env::set_var("SOPS_AGE_KEY_FILE", &generated.key_file) };
    let files = count_files(&pristine);

    let scan = time_scan(&fresh_copy(&pristine, work.path(), "scan"));
    let run = run_ocitool(&fresh_copy(&pristine, work.path(), "ocitool"));
    let shell = run_shell(&fresh_copy(&pristine, work.path(), "shell"), work.path());
    report(clusters, cores, files, scan, &run, shell);
}

/// A copy of the pristine fleet, so every measurement starts from the same unconsolidated tree.
fn fresh_copy(pristine: &Path, work: &Path, name: &str) -> PathBuf {
    let target = work.join(name);
    for entry in walkdir::WalkDir::new(pristine).into_iter().flatten() {
        let to = target.join(entry.path().strip_prefix(pristine).expect("under pristine"));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&to).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &to).expect("copy");
        }
    }
    target
}

fn count_files(root: &Path) -> usize {
    walkdir::WalkDir::new(root)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .count()
}

/// Scanning and planning without sops: list the overlays and index/scan each one.
fn time_scan(root: &Path) -> Duration {
    let started = Instant::now();
    let cs = Changeset::new(root).expect("open the copy");
    for overlay in repo::overlays(&cs, Some(CUSTOMER)).expect("overlays") {
        repo::scan(&cs, &overlay).expect("scan");
    }
    started.elapsed()
}

/// consolidate.rhai over every cluster, then apply; peak RSS is measured from a reset high-water mark.
fn run_ocitool(root: &Path) -> Run {
    reset_peak_memory();
    let script = ScriptSource::Builtin(builtin::find("consolidate").expect("built in"));
    let params = [("customer".to_string(), CUSTOMER.to_string())];
    let cpu_before = instrument::children_cpu_time();
    let started = Instant::now();
    let lock = RepoLock::acquire(root, Duration::ZERO).expect("lock the copy");
    let workspace = Rc::new(RefCell::new(Workspace::open(root).expect("open the copy")));
    script::run(
        &script,
        workspace.clone(),
        &params,
        &Kubectl::default(),
        false,
    )
    .unwrap_or_else(|e| panic!("consolidate.rhai: {e}"));
    let ws = workspace.borrow_mut();
    ws.apply(&lock).expect("apply");
    let wall = started.elapsed();
    assert!(
        ws.failures().is_empty(),
        "failed clusters: {:?}",
        ws.failures()
    );
    let sops = instrument::children_cpu_time() - cpu_before;
    Run {
        wall,
        sops,
        peak_bytes: peak_memory(),
    }
}

/// The shell baseline, written to a temp file and run with bash; sops and jq must be on PATH.
fn run_shell(root: &Path, work: &Path) -> Option<Duration> {
    let script = work.join("consolidate.sh");
    std::fs::write(&script, SHELL_PIPELINE).expect("write the shell pipeline");
    let tools = std::env::var("OCITOOL_TOOLS_DIR").unwrap_or_default();
    let path = format!("{tools}:{}", std::env::var("PATH").unwrap_or_default());
    let started = Instant::now();
    let status = Command::new("bash")
        .arg(&script)
        .arg(root)
        .env("PATH", path)
        .status()
        .expect("run bash");
    let wall = started.elapsed();
    if status.success() {
        Some(wall)
    } else {
        eprintln!("the shell pipeline failed ({status}); no speed-up figure");
        None
    }
}

/// Linux: writing 5 to clear_refs resets VmHWM, so generating the fleet does not count.
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// VmHWM of this process in bytes (Linux only).
fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

fn report(
    clusters: usize,
    cores: usize,
    files: usize,
    scan: Duration,
    run: &Run,
    shell: Option<Duration>,
) {
    let secs = |d: Duration| d.as_secs_f64();
    let sops_per_core = secs(run.sops) / cores as f64;
    let overhead = secs(run.wall) / sops_per_core;
    let scan_per_k = secs(scan) * 1000.0 * 1000.0 / files as f64;
    println!(
        "\n== consolidate: {clusters} clusters × {SERVICES} services, {files} files, {cores} core(s) =="
    );
    println!("ocitool wall            {:>9.3} s", secs(run.wall));
    println!(
        "CPU inside sops, flux   {:>9.3} s  ({sops_per_core:.3} s per core)",
        secs(run.sops)
    );
    println!(
        "wall ÷ (CPU ÷ cores)    {overhead:>9.2} ×  target ≤ 1.3×   {}",
        verdict(overhead <= 1.3)
    );
    match shell {
        Some(shell) => {
            let speedup = secs(shell) / secs(run.wall);
            println!("shell pipeline wall     {:>9.3} s", secs(shell));
            println!(
                "speed-up vs shell       {speedup:>9.2} ×  target ≥ 3×     {}",
                verdict(speedup >= 3.0)
            );
        }
        None => println!("speed-up vs shell             n/a  target ≥ 3×     MISS (shell failed)"),
    }
    println!(
        "scan+plan               {:>9.3} ms total, {scan_per_k:.2} ms per 1,000 files  target < 50 ms   {}",
        secs(scan) * 1000.0,
        verdict(scan_per_k < 50.0)
    );
    match run.peak_bytes {
        Some(bytes) => {
            let mb = bytes as f64 / 1_000_000.0;
            println!(
                "peak memory (VmHWM)     {mb:>9.1} MB  target < 100 MB  {}",
                verdict(mb < 100.0)
            );
        }
        None => println!("peak memory                   n/a  (no /proc/self/status)"),
    }
}
