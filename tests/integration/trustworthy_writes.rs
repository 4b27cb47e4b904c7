//! Trustworthy writes, attacked through the real binary: a sops that fails, hangs, prints nothing,
//! garbage or its plaintext; SIGKILL at random points of a large apply; two runs at once; a file
//! edited by hand while a run is under way. The tree must always be old-or-new per cluster, with
//! nothing in clear and nothing lost. Each test prints its figures (eprintln) so a run shows how
//! hard it pushed.

use crate::support;

use ocitool_core::repo_path::RepoPath;
use ocitool_devkit::fleetgen::FleetSpec;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use support::{Cmd, Fleet, Output};

const OVERLAYS: [&str; 2] = [
    "acme/applications/overlays/dev",
    "acme/applications/overlays/prod",
];
const PROD: &str = "acme/applications/overlays/prod";
const SOURCE: &str = "flux-system/oci-creds.yaml";
const REFUSED_BY_LOCK: &str = "another ocitool run";

fn secrets() -> Vec<String> {
    let mut all = FleetSpec::example().secret_needles();
    all.extend(support::example_passwords());
    all
}

/// A sops stand-in, placed first through OCITOOL_TOOLS_DIR, that runs the real sops except at its
/// `at`-th `encrypt` call, where it runs `action` (shell) instead.
struct FakeSops {
    dir: tempfile::TempDir,
}

impl FakeSops {
    fn new(at: u32, action: &str) -> FakeSops {
        use std::os::unix::fs::PermissionsExt;
        let real = ocitool_adapters::tools::find(ocitool_adapters::tools::SOPS).unwrap();
        let dir = tempfile::tempdir().unwrap();
        // The other pinned tools stay reachable beside the fake.
        if let Some(tools) = std::env::var_os("OCITOOL_TOOLS_DIR") {
            for entry in std::fs::read_dir(tools).unwrap().flatten() {
                if entry.file_name() != "sops" {
                    std::os::unix::fs::symlink(entry.path(), dir.path().join(entry.file_name()))
                        .unwrap();
                }
            }
        }
        let counter = dir.path().join("encrypt-calls");
        let script = format!(
            "#!/bin/sh\n\
             case \" $* \" in *\" encrypt \"*) is_encrypt=1 ;; *) is_encrypt= ;; esac\n\
             if [ -n \"$is_encrypt\" ]; then\n\
               n=$(( $(cat '{counter}' 2>/dev/null || echo 0) + 1 ))\n\
               echo \"$n\" > '{counter}'\n\
               if [ \"$n\" = {at} ]; then\n\
                 {action}\n\
               fi\n\
             fi\n\
             exec '{real}' \"$@\"\n",
            counter = counter.display(),
            real = real.display(),
        );
        let path = dir.path().join("sops");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        FakeSops { dir }
    }

    fn on(&self, cmd: Cmd) -> Cmd {
        cmd.env("OCITOOL_TOOLS_DIR", self.dir.path().to_str().unwrap())
    }

    fn encrypt_calls(&self) -> u32 {
        std::fs::read_to_string(self.dir.path().join("encrypt-calls"))
            .ok()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }
}

fn consolidate(fleet: &Fleet) -> Cmd {
    fleet.run("consolidate.rhai").set("customer", "acme")
}

/// Whether `overlay` is as it was in `before` (old) or fully consolidated (new); panics otherwise.
fn old_or_new(fleet: &Fleet, before: &BTreeMap<String, Vec<u8>>, overlay: &str) -> &'static str {
    let now = fleet.snapshot_under(overlay);
    let was: BTreeMap<_, _> = before
        .iter()
        .filter(|(p, _)| p.starts_with(&format!("{overlay}/")))
        .map(|(p, b)| (p.clone(), b.clone()))
        .collect();
    if now == was {
        return "old";
    }
    let per_service = now
        .keys()
        .filter(|p| p.ends_with("/oci-creds.yaml") && !p.ends_with(SOURCE))
        .count();
    let source = format!("{overlay}/{SOURCE}");
    assert_eq!(per_service, 0, "{overlay} is half consolidated");
    assert!(
        ocitool_core::sops_format::is_encrypted(&fleet.read(&source)),
        "{source} is not encrypted"
    );
    let spec = ocitool_core::secret::read_source(&source, &fleet.decrypt(&source)).unwrap();
    assert!(!spec.credentials.registries().is_empty());
    assert_all_listed_files_exist(fleet);
    "new"
}

/// Every `resources:` entry of every kustomization in the fleet names something that exists.
fn assert_all_listed_files_exist(fleet: &Fleet) {
    for rel in fleet.find("kustomization.yaml") {
        let dir = Path::new(&rel).parent().unwrap();
        let entries = ocitool_core::kustomize::resources(&rel, &fleet.read(&rel)).unwrap();
        for entry in entries.iter().filter(|e| !e.contains("://")) {
            assert!(
                fleet.path().join(dir).join(entry).exists(),
                "{rel} lists {entry}, which does not exist"
            );
        }
    }
}

/// ocitool's own files that must never outlive a run that ended (killed runs may leave the lock
/// file, which the next run takes over and removes).
fn leftovers(root: &Path) -> Vec<String> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .flatten()
        .map(|e| {
            e.path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|p| {
            let name = p.rsplit('/').next().unwrap();
            name.starts_with(".ocitool") || name == "ocitool-journal" || name == "ocitool.lock"
        })
        .collect()
}

#[test]
fn a_misbehaving_sops_leaves_each_cluster_old_or_new_with_nothing_in_clear() {
    let actions = [
        ("fails", "cat >/dev/null; echo 'fake sops: no' >&2; exit 1"),
        ("prints nothing", "cat >/dev/null; exit 0"),
        (
            "prints garbage",
            "cat >/dev/null; echo '%% [garbage'; exit 0",
        ),
        ("echoes its plaintext", "cat; exit 0"),
    ];
    let mut cases = 0;
    for (what, action) in actions {
        let fleet = Fleet::example();
        let before = fleet.snapshot();
        let sops = FakeSops::new(1, action);
        let out = sops.on(consolidate(&fleet)).fails(1).leaks_none(&secrets());
        assert!(out.stderr.contains("failed"), "{what}: {}", out.stderr);
        let states: Vec<_> = OVERLAYS
            .iter()
            .map(|o| old_or_new(&fleet, &before, o))
            .collect();
        assert_eq!(states, ["old", "new"], "sops {what}: {}", out.stderr);
        fleet.assert_no_plaintext(&secrets());
        assert!(leftovers(fleet.path()).is_empty(), "{what}");
        // With a working sops, the rest follows.
        consolidate(&fleet).succeeds().leaks_none(&secrets());
        let states: Vec<_> = OVERLAYS
            .iter()
            .map(|o| old_or_new(&fleet, &before, o))
            .collect();
        assert_eq!(states, ["new", "new"], "{what}");
        cases += 1;
    }
    eprintln!("misbehaving sops: {cases} case(s), each cluster old or new, nothing in clear");
}

#[test]
fn a_hanging_sops_killed_leaves_the_tree_and_the_lock_free() {
    let fleet = Fleet::example();
    let before = fleet.snapshot();
    let sops = FakeSops::new(1, "exec sleep 20");
    let mut run = sops.on(consolidate(&fleet).set("cluster", "prod")).spawn();
    let started = Instant::now();
    while sops.encrypt_calls() == 0 && !run.finished() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "sops never called"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    run.kill();
    let mut after = fleet.snapshot();
    after.remove(".ocitool.lock");
    assert_eq!(
        after, before,
        "a killed run that had not applied changed nothing"
    );
    // The orphaned `sleep` must not hold the lock: the next run gets it at once.
    let out = consolidate(&fleet)
        .set("cluster", "prod")
        .env("OCITOOL_LOCK_TIMEOUT", "2")
        .succeeds();
    assert_eq!(old_or_new(&fleet, &before, PROD), "new", "{}", out.stderr);
    assert!(leftovers(fleet.path()).is_empty());
    eprintln!("hanging sops: killed while encrypting; tree unchanged, lock free for the next run");
}

#[test]
fn a_file_edited_during_a_run_is_kept_and_nothing_is_written() {
    let mut cases = 0;
    for victim in [
        "services/keycloak/kustomization.yaml",
        "services/keycloak/oci-creds.yaml",
    ] {
        let fleet = Fleet::example();
        let before = fleet.snapshot();
        let victim = format!("{PROD}/{victim}");
        // Absolute: sops encrypts from a private directory holding the applicable .sops.yaml.
        let edit = format!(
            "printf '# hand edit\\n' >> '{}'",
            fleet.path().join(&victim).display()
        );
        let sops = FakeSops::new(1, &edit);
        let out = sops
            .on(consolidate(&fleet).set("cluster", "prod"))
            .fails(1)
            .stderr_has(&victim)
            .stderr_has("changed on disk");
        let mut expected = before.clone();
        expected
            .get_mut(&victim)
            .unwrap()
            .extend_from_slice(b"# hand edit\n");
        assert_eq!(fleet.snapshot(), expected, "{}", out.stderr);
        cases += 1;
    }
    eprintln!("hand edits during a run: {cases} refused, each edit kept, nothing else written");
}

#[test]
fn a_held_lock_refuses_a_second_run_naming_the_holder() {
    let fleet = Fleet::example();
    let before = fleet.snapshot();
    let held =
        ocitool_adapters::changeset::RepoLock::acquire(fleet.path(), Duration::ZERO).unwrap();
    let holder = format!("pid {}", std::process::id());
    for cmd in [consolidate(&fleet), consolidate(&fleet).dry_run()] {
        let started = Instant::now();
        cmd.env("OCITOOL_LOCK_TIMEOUT", "0.5")
            .fails(1)
            .stderr_has(REFUSED_BY_LOCK)
            .stderr_has(&holder)
            .stderr_has("OCITOOL_LOCK_TIMEOUT");
        assert!(started.elapsed() >= Duration::from_millis(500), "it waited");
    }
    consolidate(&fleet)
        .env("OCITOOL_LOCK_TIMEOUT", "soon")
        .fails(2);
    let mut now = fleet.snapshot();
    now.remove(".ocitool.lock");
    assert_eq!(now, before);
    drop(held);
    consolidate(&fleet).succeeds();
}

/// Two runs started together: each exits 0, or is refused by the lock; never anything else.
fn race(first: Cmd, second: Cmd) -> [Output; 2] {
    let (a, b) = (first.spawn(), second.spawn());
    let outs = [a.wait(), b.wait()];
    for out in &outs {
        assert!(
            out.code == 0 || (out.code == 1 && out.stderr.contains(REFUSED_BY_LOCK)),
            "exit {}: {}",
            out.code,
            out.stderr
        );
    }
    assert!(outs.iter().any(|o| o.code == 0), "one of them ran");
    outs
}

#[test]
fn concurrent_consolidations_never_lose_a_result() {
    let (mut waited, mut refused) = (0, 0);
    for pair in 0..3 {
        let fleet = Fleet::example();
        let before = fleet.snapshot();
        // Half the pairs give the second run no patience, so both outcomes get exercised.
        let patience = if pair % 2 == 0 { "30" } else { "0" };
        let outs = race(
            consolidate(&fleet).set("cluster", "prod"),
            consolidate(&fleet)
                .set("cluster", "prod")
                .env("OCITOOL_LOCK_TIMEOUT", patience),
        );
        match outs.iter().filter(|o| o.code == 0).count() {
            2 => waited += 1,
            _ => refused += 1,
        }
        assert_eq!(old_or_new(&fleet, &before, PROD), "new");
        assert!(leftovers(fleet.path()).is_empty());
    }
    eprintln!(
        "consolidate races: {} pair(s): {waited} ran one after the other, {refused} refused the second",
        waited + refused
    );
}

#[test]
fn concurrent_rotations_of_different_registries_both_land() {
    let consolidated = Fleet::example();
    consolidate(&consolidated).set("cluster", "prod").succeeds();
    let rotate = |fleet: &Fleet, registry: &str, user: &str, password: &str| {
        fleet
            .run("rotate.rhai")
            .set("customer", "acme")
            .set("cluster", "prod")
            .set("registry", registry)
            .set("username", user)
            .set("password_file", "-")
            .set("verify_login", "false")
            .stdin(&format!("{password}\n"))
    };
    let (mut both, mut refused) = (0, 0);
    for pair in 0..3 {
        let fleet = consolidated.copy();
        let harbor_pw = format!("race-harbor-{pair}-Qx7");
        let ghcr_pw = format!("race-ghcr-{pair}-Mz4");
        let outs = race(
            rotate(&fleet, "harbor.acme.example", "robot", &harbor_pw),
            rotate(&fleet, "ghcr.io", "bot", &ghcr_pw)
                .env("OCITOOL_LOCK_TIMEOUT", if pair == 2 { "0" } else { "30" }),
        );
        let auths = auths(&fleet.decrypt(&format!("{PROD}/{SOURCE}")));
        for (out, (registry, password)) in outs
            .iter()
            .zip([("harbor.acme.example", &harbor_pw), ("ghcr.io", &ghcr_pw)])
        {
            let landed = auths[registry]["password"] == password.as_str();
            assert_eq!(
                landed,
                out.code == 0,
                "{registry}: exit {}, landed {landed}",
                out.code
            );
        }
        if outs.iter().all(|o| o.code == 0) {
            both += 1;
        } else {
            refused += 1;
        }
    }
    eprintln!(
        "rotate races: {} pair(s): {both} with both rotations kept, {refused} with the second refused",
        both + refused
    );
}

/// The `auths` of a decrypted source Secret (its `.dockerconfigjson`, base64 under `data`).
fn auths(plaintext: &str) -> serde_json::Value {
    use base64::Engine as _;
    let doc: serde_yaml::Value = serde_yaml::from_str(plaintext).unwrap();
    let encoded = doc["data"][".dockerconfigjson"].as_str().unwrap();
    let json = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&json).unwrap()["auths"].clone()
}

/// A small deterministic generator (xorshift64*): kill delays that a seed reproduces.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: Duration) -> Duration {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        bound.mul_f64((x >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// A tree as the tests compare it: plain files by bytes, sops files by their decrypted YAML
/// (ciphertext differs on every encryption). ocitool's own files and `.git` are left out.
fn meaning(fleet: &Fleet) -> BTreeMap<String, String> {
    let files: Vec<(String, Vec<u8>)> = fleet
        .snapshot()
        .into_iter()
        .filter(|(p, _)| !p.starts_with(".git/"))
        .collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .iter()
            .map(|(path, bytes)| {
                scope.spawn(move || {
                    let text = String::from_utf8_lossy(bytes).into_owned();
                    if ocitool_core::sops_format::is_encrypted(&text) {
                        let plain = fleet.decrypt(path);
                        let doc: serde_yaml::Value = serde_yaml::from_str(&plain).unwrap();
                        (path.clone(), format!("{doc:?}"))
                    } else {
                        (path.clone(), text)
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Every per-service kustomization that no longer lists its `oci-creds.yaml` belongs to a cluster
/// whose flux-system already lists the source: no service is ever left without credentials.
fn assert_no_service_lost_its_credentials(fleet: &Fleet, spec: &FleetSpec) {
    let lists = |rel: &str| {
        let kustomization = RepoPath::new(rel).unwrap();
        let target = kustomization
            .parent()
            .unwrap_or_else(RepoPath::root)
            .join("oci-creds.yaml")
            .unwrap();
        ocitool_core::kustomize::resources(rel, &fleet.read(rel))
            .unwrap()
            .iter()
            .any(|e| ocitool_core::kustomize::points_at(&kustomization, e, &target))
    };
    for cluster in &spec.clusters {
        let flux = format!("{}/flux-system/kustomization.yaml", cluster.overlay_path());
        if lists(&flux) {
            continue;
        }
        for service in &cluster.services {
            let creds = cluster.creds_path(service);
            let kustomization = creds.replace("oci-creds.yaml", "kustomization.yaml");
            assert!(
                lists(&kustomization),
                "{kustomization} unlisted its credentials before the source was listed"
            );
        }
    }
}

#[test]
fn sigkill_anywhere_then_a_rerun_reaches_the_uninterrupted_result() {
    let number = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    // OCITOOL_TEST_KILLS=200 for a longer hunt; the default keeps the suite quick on 2 cores.
    let kills = number("OCITOOL_TEST_KILLS", 24);
    let seed = number("OCITOOL_TEST_KILL_SEED", 0x5eed_0ca7);
    // Per-service files in clear keep planning short (no decrypts), so the time goes to applying,
    // where the kills aim; it also proves the journal never copies a plaintext file it deletes.
    let mut spec = FleetSpec::synthetic(3, 10);
    for service in spec.clusters.iter_mut().flat_map(|c| c.services.iter_mut()) {
        service.encrypted = false;
    }
    let passwords = spec.passwords();
    let original = Fleet::generated(&spec);
    // A git checkout, so the lock and journal live under .git/.
    let git = std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(original.path())
        .status()
        .unwrap();
    assert!(git.success());
    let journal = |fleet: &Fleet| fleet.path().join(".git/ocitool-journal/journal.json");
    let run = |fleet: &Fleet| fleet.run("consolidate.rhai").set("customer", "bench");

    // The uninterrupted run, timed: how long it plans, and how long it applies once journaled.
    let reference = original.copy();
    let started = Instant::now();
    let mut running = run(&reference).spawn();
    let mut journaled_at = None;
    while !running.finished() {
        if journaled_at.is_none() && journal(&reference).exists() {
            journaled_at = Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let total = started.elapsed();
    running.wait().code(0);
    let planning = journaled_at.unwrap_or(total);
    let applying = (total - planning).max(Duration::from_millis(5));
    let expected = meaning(&reference);

    let hunt = Instant::now();
    let mut rng = Rng(seed | 1);
    let (mut mid_apply, mut rolled_forward, mut temp_files, mut before_apply) = (0, 0, 0, 0);
    for kill in 0..kills {
        let fleet = original.copy();
        let started = Instant::now();
        let running = run(&fleet).spawn();
        // Four kills in five aim at the apply (after the journal appears); the rest anywhere.
        if kill % 5 != 0 {
            while !journal(&fleet).exists() && started.elapsed() < total * 4 {
                std::thread::sleep(Duration::from_micros(200));
            }
            std::thread::sleep(rng.below(applying));
        } else {
            std::thread::sleep(rng.below(total));
        }
        running.kill();

        let journaled = journal(&fleet).exists();
        if journaled {
            let text = std::fs::read_to_string(journal(&fleet)).unwrap();
            assert!(
                !passwords.iter().any(|p| text.contains(p.as_str())),
                "plaintext in the journal"
            );
        }
        let temps = leftovers(fleet.path())
            .iter()
            .filter(|p| p.contains(".ocitool-tmp-"))
            .count();
        assert_all_listed_files_exist(&fleet);
        assert_no_service_lost_its_credentials(&fleet, &spec);
        let out = run(&fleet).succeeds();
        if journaled {
            mid_apply += 1;
            assert!(out.stderr.contains("was interrupted"), "{}", out.stderr);
            rolled_forward += usize::from(out.stderr.contains("file(s) written now"));
        } else {
            before_apply += 1;
        }
        if temps > 0 {
            temp_files += temps;
            assert!(out.stderr.contains("temporary file(s)"), "{}", out.stderr);
        }
        assert!(
            leftovers(fleet.path()).is_empty(),
            "{:?}",
            leftovers(fleet.path())
        );
        assert_eq!(meaning(&fleet), expected, "kill {kill} (seed {seed:#x})");
    }
    eprintln!(
        "SIGKILL: {kills} kill(s) survived in {:.0?} (seed {seed:#x}; planning {planning:.0?}, \
         applying {applying:.0?}): {mid_apply} mid-apply ({rolled_forward} rolled forward by the re-run), \
         {before_apply} before the journal, {temp_files} temp file(s) cleaned up; every re-run \
         reached the uninterrupted result",
        hunt.elapsed()
    );
}
