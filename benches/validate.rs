//! Validation benchmark (issue 9, item 8): an openCenter-shaped fleet of N clusters × 12 services
//! (N from `OCITOOL_BENCH_CLUSTERS`, default 100) and its base repository, consolidated (not
//! timed), then `scripts/validate.rhai` over every cluster with `base_repo` set, so every Flux
//! Kustomization (`<svc>-base` from the base repo with its enterprise component, `<svc>-override`
//! from the fleet) is built by the real flux CLI and every source decrypted by the real sops.
//!
//! Prints the wall time, the CPU time inside the programs validate starts (flux and sops, read
//! with `getrusage(RUSAGE_CHILDREN)`, see `ocitool_devkit::instrument`), how many flux builds
//! the run needed, and the target: wall ≤ 1.3 × (that CPU time ÷ cores), i.e. ocitool
//! keeps every core busy with the tools' work and adds little of its own. It never asserts:
//! figures depend on the machine. Run: `OCITOOL_BENCH_CLUSTERS=10 cargo bench --bench validate`.

use ocitool::script;
use ocitool::script::builtin::{self, ScriptSource};
use ocitool_adapters::changeset::RepoLock;
use ocitool_adapters::kubectl::Kubectl;
use ocitool_devkit::fleetgen::opencenter::{
    self, Credentials, Prefix, Service, SharedFolder, Spec,
};
use ocitool_devkit::instrument;
use ocitool_orchestration::workspace::Workspace;
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

const SERVICES: usize = 12;

fn main() {
    let (clusters, cores) = (instrument::bench_clusters(), instrument::cores());
    let work = tempfile::tempdir().expect("tempdir");
    let (fleet, base) = (work.path().join("fleet"), work.path().join("base"));
    eprintln!(
        "generating {clusters} openCenter clusters × {SERVICES} services and consolidating them (not timed)…"
    );
    let generated =
        opencenter::generate(&fleet, &base, &bench_spec(clusters)).expect("generate the fleet");
    // Set before any thread starts: sops decrypts with every cluster's key.
    unsafe { std::env::set_var("SOPS_AGE_KEY_FILE", &generated.key_file) };
    let base_repo = base.display().to_string();
    let consolidate = [
        ("prepare", "true"),
        ("require_reflector", "false"),
        ("base_repo", base_repo.as_str()),
    ];
    run_script(&fleet, "consolidate", &consolidate, true);

    let cpu_before = instrument::children_cpu_time();
    let started = Instant::now();
    run_script(&fleet, "validate", &[("base_repo", &base_repo)], false);
    let wall = started.elapsed();
    let tools = instrument::children_cpu_time() - cpu_before;
    report(clusters, cores, wall, tools);
}

/// 12 services in the proportions of an openCenter cluster: most with credentials of their own,
/// some through the shared folder, some consuming only through the base's enterprise component,
/// one whose base directory has no kustomization.yaml; plus one managed service.
fn bench_spec(clusters: usize) -> Spec {
    let kinds = [
        Credentials::Own,
        Credentials::Own,
        Credentials::Shared,
        Credentials::BaseOnly,
    ];
    Spec {
        customer: None,
        prefix: Prefix::CustomersDir,
        clusters: (0..clusters).map(|i| format!("c{i:03}")).collect(),
        services: (0..SERVICES)
            .map(|i| Service {
                name: format!("svc{i:02}"),
                namespace: format!("svc{i:02}-system"),
                credentials: kinds[i % kinds.len()],
                plain_base: i == SERVICES - 1,
            })
            .collect(),
        managed: vec![("alert-proxy".into(), "rackspace-system".into())],
        shared: SharedFolder {
            name: "harbor".into(),
            file: "oci-creds.yaml".into(),
        },
    }
}

/// A built-in workflow over every cluster, applied when `apply`. Its report (hundreds of lines
/// that are not the measurement) is silenced; a failure is printed, since figures of a run
/// that stopped early would mislead.
fn run_script(fleet: &Path, name: &str, params: &[(&str, &str)], apply: bool) {
    let script = ScriptSource::Builtin(builtin::find(name).expect("built in"));
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lock = RepoLock::acquire(fleet, Duration::ZERO).expect("lock the fleet");
    let workspace = Rc::new(RefCell::new(
        Workspace::open(fleet).expect("open the fleet"),
    ));
    let result = instrument::with_stdout_silenced(|| {
        script::run(
            &script,
            workspace.clone(),
            &params,
            &Kubectl::default(),
            false,
        )
    });
    if let Err(e) = result {
        eprintln!("{name}.rhai: {e}");
    }
    if apply {
        workspace.borrow_mut().apply(&lock).expect("apply");
    }
}

fn report(clusters: usize, cores: usize, wall: Duration, tools: Duration) {
    let secs = |d: Duration| d.as_secs_f64();
    let per_core = secs(tools) / cores as f64;
    let ratio = secs(wall) / per_core;
    println!(
        "\n== validate with Flux builds: {clusters} openCenter clusters × {SERVICES} services, base_repo set, {cores} core(s) =="
    );
    println!("validate wall                {:>9.3} s", secs(wall));
    println!(
        "CPU inside flux and sops     {:>9.3} s  ({per_core:.3} s per core)",
        secs(tools)
    );
    println!(
        "wall ÷ (CPU ÷ cores)         {ratio:>9.2} ×  target ≤ 1.3×   {}",
        if ratio <= 1.3 { "PASS" } else { "MISS" }
    );
}
