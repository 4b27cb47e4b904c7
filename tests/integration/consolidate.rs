//! consolidate.rhai end to end: the real binary, real sops/age, copies of examples/fleet.

use crate::support;
use support::golden::Mask;
use support::{Fleet, example_passwords};

const PROD: &str = "acme/applications/overlays/prod";

fn consolidate(fleet: &Fleet) -> support::Cmd {
    fleet
        .run("consolidate.rhai")
        .set("customer", "acme")
        .set("cluster", "prod")
}

fn secret_needles() -> Vec<String> {
    ocitool_devkit::fleetgen::FleetSpec::example().secret_needles()
}

#[test]
fn consolidates_prod_into_one_source_secret() {
    let fleet = Fleet::example();
    let out = consolidate(&fleet)
        .succeeds()
        .stdout_has("acme/prod: consolidated")
        .leaks_none(&secret_needles());
    assert!(out.stdout.contains("services (12)"), "{}", out.stdout);
    assert!(
        out.stdout.contains("harbor.acme.example v2:"),
        "{}",
        out.stdout
    );

    let creds: Vec<String> = fleet
        .find("oci-creds.yaml")
        .into_iter()
        .filter(|p| p.starts_with(PROD))
        .collect();
    assert_eq!(creds, vec![format!("{PROD}/flux-system/oci-creds.yaml")]);
    // dev is untouched
    assert_eq!(
        fleet
            .find("oci-creds.yaml")
            .iter()
            .filter(|p| p.contains("/dev/"))
            .count(),
        12
    );

    let source = fleet.read(&format!("{PROD}/flux-system/oci-creds.yaml"));
    assert!(ocitool_core::sops_format::is_encrypted(&source));
    let plain = fleet.decrypt(&format!("{PROD}/flux-system/oci-creds.yaml"));
    let spec = ocitool_core::secret::read_source("source", &plain).unwrap();
    let expected_ns = [
        "cert-manager",
        "headlamp",
        "istio-system",
        "keycloak",
        "kyverno",
        "metallb-system",
        "observability",
        "postgres-operator",
        "rbac-system",
        "vmware-system-csi",
    ];
    assert_eq!(spec.namespaces(), expected_ns);
    assert_eq!(
        spec.credentials.registries(),
        vec!["ghcr.io", "harbor.acme.example"]
    );
    for key in [
        "reflection-allowed-namespaces",
        "reflection-auto-namespaces",
    ] {
        assert!(
            plain.contains(&format!(
                "reflector.v1.k8s.emberstack.com/{key}: {}",
                expected_ns.join(",")
            )),
            "{plain}"
        );
    }
    assert!(
        plain.contains("reflector.v1.k8s.emberstack.com/reflection-auto-enabled: \"true\""),
        "{plain}"
    );
    assert!(
        fleet
            .read(&format!("{PROD}/flux-system/kustomization.yaml"))
            .contains("- oci-creds.yaml")
    );
    fleet.assert_no_plaintext(
        &secret_needles()
            .into_iter()
            .filter(|s| s.contains("prod"))
            .collect::<Vec<_>>(),
    );
}

#[test]
fn edited_kustomizations_still_build_and_lost_only_the_entry() {
    let fleet = Fleet::example();
    let before = fleet.read(&format!("{PROD}/services/metallb/kustomization.yaml"));
    consolidate(&fleet).succeeds();
    let after = fleet.read(&format!("{PROD}/services/metallb/kustomization.yaml"));
    let removed: Vec<&str> = before
        .lines()
        .filter(|l| !after.lines().any(|a| a == *l))
        .collect();
    assert_eq!(
        removed.len(),
        1,
        "exactly one line removed:\n{before}\n---\n{after}"
    );
    assert!(removed[0].contains("oci-creds.yaml"));
    for dir in std::fs::read_dir(fleet.path().join(PROD).join("services")).unwrap() {
        let dir = dir.unwrap().path();
        ocitool_adapters::kustomize::build(&dir)
            .unwrap_or_else(|e| panic!("{}: {e:#}", dir.display()));
    }
    ocitool_adapters::kustomize::build(&fleet.path().join(PROD).join("flux-system")).unwrap();
    ocitool_adapters::kustomize::build(&fleet.path().join(PROD)).unwrap();
}

#[test]
fn second_run_changes_nothing_and_says_so() {
    let fleet = Fleet::example();
    consolidate(&fleet).succeeds();
    let before = fleet.snapshot();
    consolidate(&fleet)
        .succeeds()
        .stdout_has("already consolidated")
        .stderr_has("nothing to change");
    assert_eq!(
        before,
        fleet.snapshot(),
        "a no-op run must not rewrite the encrypted source"
    );
}

#[test]
fn dry_run_shows_a_redacted_diff_and_writes_nothing() {
    let fleet = Fleet::example();
    let before = fleet.snapshot();
    let out = consolidate(&fleet)
        .dry_run()
        .succeeds()
        .leaks_none(&secret_needles())
        .matches_golden(
            "consolidate/dry-run-acme-prod.txt",
            &Mask::default().path(fleet.path(), "<fleet>"),
        );
    // Encrypted Secrets show what changes in their credentials, never ciphertext.
    for expected in [
        format!(
            "diff --ocitool a/{PROD}/flux-system/oci-creds.yaml b/{PROD}/flux-system/oci-creds.yaml (create)\n  ghcr.io: added, acme-bot v2:0316afaa0a35\n  harbor.acme.example: added, robot$acme+flux-prod v2:40e3f3ea34a1\n"
        ),
        format!(
            "diff --ocitool a/{PROD}/services/keycloak/oci-creds.yaml b/{PROD}/services/keycloak/oci-creds.yaml (delete)\n  "
        ),
    ] {
        assert!(out.stdout.contains(&expected), "{expected}\n{}", out.stdout);
    }
    assert!(!out.stdout.contains("ENC["), "{}", out.stdout);
    // --diff raw: the files themselves, Secret values masked.
    let raw = consolidate(&fleet)
        .dry_run()
        .args(&["--diff", "raw"])
        .succeeds()
        .leaks_none(&secret_needles());
    assert!(
        raw.stdout
            .contains(&format!("+++ b/{PROD}/flux-system/oci-creds.yaml"))
            && raw
                .stdout
                .contains(&format!("--- a/{PROD}/services/keycloak/oci-creds.yaml")),
        "{}",
        raw.stdout
    );
    assert!(
        raw.stdout.contains("ENC[…]") || raw.stdout.contains("<redacted>"),
        "{}",
        raw.stdout
    );
    assert!(
        out.stderr.contains(
            "dry run: 26 file(s) would change (1 would be created, 13 modified, 12 deleted); nothing was written"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(before, fleet.snapshot());
}

#[test]
fn a_cluster_that_gains_a_service_file_later_is_merged_into_the_source() {
    let fleet = Fleet::example();
    consolidate(&fleet).succeeds();
    // Bring back one per-service file from the original example, in a new namespace.
    let original = std::fs::read_to_string(format!(
        "{}/{PROD}/services/kyverno/oci-creds.yaml",
        support::EXAMPLE_FLEET
    ))
    .unwrap();
    fleet.write(&format!("{PROD}/services/newsvc/oci-creds.yaml"), &original);
    fleet.write(
        &format!("{PROD}/services/newsvc/kustomization.yaml"),
        "namespace: new-ns\nresources:\n  - oci-creds.yaml\n",
    );
    let out = consolidate(&fleet).succeeds();
    assert!(
        out.stdout.contains("services (1): newsvc"),
        "{}",
        out.stdout
    );
    let spec = ocitool_core::secret::read_source(
        "s",
        &fleet.decrypt(&format!("{PROD}/flux-system/oci-creds.yaml")),
    )
    .unwrap();
    assert!(
        spec.namespaces().contains(&"new-ns".to_string())
            && spec.namespaces().contains(&"keycloak".to_string())
    );
    assert!(!fleet.exists(&format!("{PROD}/services/newsvc/oci-creds.yaml")));
}

#[test]
fn every_cluster_of_the_customer_when_no_cluster_is_given() {
    let fleet = Fleet::example();
    let out = fleet
        .run("consolidate.rhai")
        .set("customer", "acme")
        .succeeds();
    assert!(
        out.stdout.contains("acme/dev: consolidated")
            && out.stdout.contains("acme/prod: consolidated")
    );
    assert_eq!(fleet.find("oci-creds.yaml").len(), 2);
}

#[test]
fn unknown_customer_or_cluster_is_refused_naming_what_exists() {
    let fleet = Fleet::example();
    let before = fleet.snapshot();
    fleet
        .run("consolidate.rhai")
        .set("customer", "acme")
        .set("cluster", "staging")
        .fails(1)
        .stderr_has("clusters there: dev, prod");
    fleet
        .run("consolidate.rhai")
        .set("customer", "globex")
        .set("cluster", "prod")
        .fails(1)
        .stderr_has("customers here: acme");
    assert_eq!(before, fleet.snapshot());
}

#[test]
fn conflicting_credentials_are_refused_with_fingerprints_unless_a_winner_is_named() {
    let fleet = Fleet::example();
    // dev's harbor credentials differ from prod's: put dev's keycloak file into prod (re-encrypted for prod).
    let dev_plain = fleet.decrypt("acme/applications/overlays/dev/services/metallb/oci-creds.yaml");
    let target = format!("{PROD}/services/metallb/oci-creds.yaml");
    let sops = ocitool_adapters::sops::Sops::locate(fleet.path()).unwrap();
    fleet.write(&target, &sops.encrypt(&target, &dev_plain).unwrap());
    let before = fleet.snapshot();
    let out = consolidate(&fleet).fails(1).leaks_none(&secret_needles());
    assert!(
        out.stderr.contains("conflicting credentials"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("metallb (v2:") && out.stderr.contains("cert-manager (v2:"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--set prefer="), "{}", out.stderr);
    assert_eq!(before, fleet.snapshot());
    consolidate(&fleet).set("prefer", "metallb").succeeds();
}

#[test]
fn bad_inputs_get_clear_errors_and_leave_the_tree_untouched() {
    type Breakage = Box<dyn Fn(&Fleet)>;
    let cases: Vec<(&str, Breakage, &str)> = vec![
        (
            "malformed yaml",
            Box::new(|f: &Fleet| {
                f.write(
                    &format!("{PROD}/services/kyverno/helmrelease.yaml"),
                    "a: [\n",
                )
            }),
            "services/kyverno/helmrelease.yaml",
        ),
        (
            "wrong secret type",
            Box::new(|f: &Fleet| {
                f.write(&format!("{PROD}/services/kyverno/oci-creds.yaml"), "apiVersion: v1\nkind: Secret\nmetadata:\n  name: oci-creds\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: x\n  tls.key: y\n")
            }),
            "not a registry credential",
        ),
        (
            "invalid dockerconfigjson",
            Box::new(|f: &Fleet| {
                f.write(&format!("{PROD}/services/kyverno/oci-creds.yaml"), "apiVersion: v1\nkind: Secret\nmetadata:\n  name: oci-creds\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{\"registries\": {}}'\n")
            }),
            "services/kyverno/oci-creds.yaml: .dockerconfigjson is not valid",
        ),
        (
            "no matching sops rule",
            Box::new(|f: &Fleet| {
                f.write(".sops.yaml", "creation_rules:\n  - path_regex: ^nothing/.*$\n    age: age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\n")
            }),
            "creation rule",
        ),
        (
            "referenced as a patch",
            Box::new(|f: &Fleet| {
                let k = format!("{PROD}/services/kyverno/kustomization.yaml");
                let text = f.read(&k);
                f.write(&k, &format!("{text}patches:\n  - path: oci-creds.yaml\n"));
            }),
            "patches",
        ),
    ];
    for (name, break_it, expected) in cases {
        let fleet = Fleet::example();
        break_it(&fleet);
        let before = fleet.snapshot();
        let out = consolidate(&fleet).fails(1).leaks_none(&secret_needles());
        assert!(
            out.stderr.contains(expected),
            "{name}: stderr lacks {expected:?}:\n{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("nothing was changed"),
            "{name}: {}",
            out.stderr
        );
        assert_eq!(before, fleet.snapshot(), "{name}: tree changed");
    }
}

#[test]
fn missing_or_failing_sops_is_explained() {
    let fleet = Fleet::example();
    let before = fleet.snapshot();
    let empty = tempfile::tempdir().unwrap();
    // Consolidation builds with flux before it decrypts: without any tool, flux is named once.
    consolidate(&fleet)
        .env("OCITOOL_TOOLS_DIR", empty.path().to_str().unwrap())
        .env("PATH", "/usr/bin:/bin")
        .fails(1)
        .stderr_has("`flux` was not found on PATH; install the flux CLI");
    // With flux but no sops, sops is named.
    let only_flux = tempfile::tempdir().unwrap();
    let flux = ocitool_adapters::tools::find(ocitool_adapters::tools::FLUX).unwrap();
    std::os::unix::fs::symlink(flux, only_flux.path().join("flux")).unwrap();
    consolidate(&fleet)
        .env("OCITOOL_TOOLS_DIR", only_flux.path().to_str().unwrap())
        .env("PATH", "/usr/bin:/bin")
        .fails(1)
        .stderr_has("`sops` was not found")
        .stderr_has("go install github.com/getsops/sops");
    let no_key = empty.path().join("empty.agekey");
    std::fs::write(&no_key, "").unwrap();
    consolidate(&fleet)
        .env("SOPS_AGE_KEY_FILE", no_key.to_str().unwrap())
        .env("HOME", empty.path().to_str().unwrap())
        .fails(1)
        .stderr_has("sops could not decrypt");
    assert_eq!(before, fleet.snapshot());
}

#[test]
fn unencrypted_and_unreferenced_files_are_consolidated_with_warnings() {
    let fleet = Fleet::example();
    let plain = fleet.decrypt(&format!("{PROD}/services/kyverno/oci-creds.yaml"));
    fleet.write(&format!("{PROD}/services/kyverno/oci-creds.yaml"), &plain);
    let k = format!("{PROD}/services/istio/kustomization.yaml");
    let text = fleet.read(&k);
    fleet.write(
        &k,
        &text
            .lines()
            .filter(|l| !l.contains("oci-creds"))
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    );
    let out = consolidate(&fleet)
        .succeeds()
        .leaks_none(&example_passwords());
    assert!(
        out.stderr.contains("security:")
            && out
                .stderr
                .contains("kyverno/oci-creds.yaml is NOT sops-encrypted"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("istio/oci-creds.yaml: no kustomization lists it"),
        "{}",
        out.stderr
    );
    assert!(!fleet.exists(&format!("{PROD}/services/istio/oci-creds.yaml")));
    let spec = ocitool_core::secret::read_source(
        "s",
        &fleet.decrypt(&format!("{PROD}/flux-system/oci-creds.yaml")),
    )
    .unwrap();
    assert!(spec.namespaces().contains(&"istio-system".to_string()));
}

#[test]
fn a_source_with_only_the_allow_annotations_gets_the_auto_annotations() {
    let fleet = Fleet::example();
    consolidate(&fleet).succeeds();
    let path = format!("{PROD}/flux-system/oci-creds.yaml");
    let plain = fleet.decrypt(&path);
    let allow_only: String = plain
        .lines()
        .filter(|l| !l.contains("reflection-auto"))
        .map(|l| format!("{l}\n"))
        .collect();
    let sops = ocitool_adapters::sops::Sops::locate(fleet.path()).unwrap();
    fleet.write(&path, &sops.encrypt(&path, &allow_only).unwrap());
    consolidate(&fleet)
        .succeeds()
        .stdout_has("source: ")
        .stdout_has("(written)");
    let fixed = fleet.decrypt(&path);
    assert!(
        fixed.contains("reflection-auto-enabled: \"true\"")
            && fixed.contains("reflection-auto-namespaces: cert-manager,"),
        "{fixed}"
    );
}

#[test]
fn a_failing_cluster_is_rolled_back_while_the_others_are_consolidated() {
    let fleet = Fleet::example();
    let dev = "acme/applications/overlays/dev";
    fleet.write(
        &format!("{dev}/services/kyverno/helmrelease.yaml"),
        "a: [\n",
    );
    let dev_before = fleet.snapshot_under(dev);
    let out = fleet
        .run("consolidate.rhai")
        .set("customer", "acme")
        .fails(1);
    assert!(
        out.stdout.contains("acme/prod: consolidated"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("error: acme/dev:") && out.stderr.contains("kyverno/helmrelease.yaml"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("1 cluster(s) failed"), "{}", out.stderr);
    assert_eq!(
        dev_before,
        fleet.snapshot_under(dev),
        "the failed cluster must be untouched"
    );
    assert!(fleet.exists(&format!("{PROD}/flux-system/oci-creds.yaml")));
}

#[test]
fn a_fleet_wide_run_shows_progress_lines_and_a_final_report() {
    let fleet = Fleet::example();
    // Leaving the customer out never selects every customer in a repository that has customers.
    fleet
        .run("consolidate.rhai")
        .fails(1)
        .stderr_has("no customer named")
        .stderr_has("--all-customers");
    // No cluster, every customer (explicitly): every cluster of every customer in the repo.
    let out = fleet
        .run("consolidate.rhai")
        .args(&["--all-customers"])
        .succeeds();
    // stderr is a pipe here, not a terminal, so progress is one plain line per cluster.
    assert!(
        out.stderr.contains("[1/2] acme/dev\n") && out.stderr.contains("[2/2] acme/prod\n"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.ends_with("2 cluster(s): 2 consolidated\n"),
        "{}",
        out.stdout
    );
    let again = fleet
        .run("consolidate.rhai")
        .args(&["--all-customers"])
        .succeeds();
    assert!(
        again
            .stdout
            .ends_with("2 cluster(s): 2 already consolidated\n"),
        "{}",
        again.stdout
    );
}

fn json_of(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{stdout}"))
}

#[test]
fn output_json_is_one_document_on_stdout_even_in_a_dry_run() {
    let fleet = Fleet::example();
    let before = fleet.snapshot();
    let out = fleet
        .run("consolidate.rhai")
        .set("customer", "acme")
        .json()
        .dry_run()
        .succeeds()
        .leaks_none(&secret_needles())
        .stderr_has("diff --ocitool");
    let doc = json_of(&out.stdout);
    assert_eq!(doc["dryRun"], true);
    assert_eq!(doc["failures"], serde_json::json!([]));
    let clusters = doc["clusters"].as_array().unwrap();
    let statuses: Vec<_> = clusters
        .iter()
        .map(|c| {
            (
                c["cluster"].as_str().unwrap(),
                c["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [("acme/dev", "consolidated"), ("acme/prod", "consolidated")]
    );
    let prod_registries = clusters[1]["registries"].as_array().unwrap();
    assert!(
        prod_registries
            .iter()
            .any(|r| r["registry"] == "ghcr.io"
                && r["fingerprint"].as_str().unwrap().starts_with("v2:")),
        "{prod_registries:?}"
    );
    let source_created =
        serde_json::json!({"path": format!("{PROD}/flux-system/oci-creds.yaml"), "kind": "create"});
    assert!(doc["changes"].as_array().unwrap().contains(&source_created));
    assert_eq!(doc["changes"].as_array().unwrap().len(), 52);
    assert_eq!(before, fleet.snapshot(), "a dry run writes nothing");
}

#[test]
fn output_json_reports_a_failed_cluster_and_exits_1() {
    let (fleet, out) = support::consolidation_with_a_failed_cluster();
    let doc = json_of(&out.stdout);
    assert_eq!(doc["failures"].as_array().unwrap().len(), 1);
    let dev = &doc["clusters"][0];
    assert_eq!(
        (dev["cluster"].as_str(), dev["status"].as_str()),
        (Some("acme/dev"), Some("failed"))
    );
    assert!(
        dev["error"]
            .as_str()
            .unwrap()
            .contains("kyverno/helmrelease.yaml"),
        "{dev}"
    );
    assert_eq!(doc["clusters"][1]["status"], "consolidated");
    assert!(fleet.exists(&format!("{PROD}/flux-system/oci-creds.yaml")));
}

#[test]
fn on_a_terminal_the_progress_is_a_bar_and_printed_lines_stay_whole() {
    let fleet = Fleet::example();
    // `script` (util-linux) runs the command on a pseudo-terminal, as a person would see it.
    let command = format!(
        "{} run {}/scripts/consolidate.rhai --repo . --set customer=acme --dry-run",
        env!("CARGO_BIN_EXE_ocitool"),
        env!("CARGO_MANIFEST_DIR")
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(fleet.path())
        .env("SOPS_AGE_KEY_FILE", fleet.key_file())
        .output()
        .expect("run `script` (util-linux)");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains("1/2") && screen.contains("acme/prod"),
        "{screen}"
    );
    assert!(
        !screen.contains("[1/2] acme/dev"),
        "plain progress lines are for non-terminals"
    );
    // The bar is cleared (\r, erase line) before each printed line, so every line is whole.
    assert!(
        screen.contains("\u{1b}[2Kacme/prod: would be consolidated\r\n"),
        "{screen}"
    );
    assert!(
        screen.contains("\u{1b}[2K2 cluster(s): 2 would be consolidated\r\n"),
        "{screen}"
    );
}

/// `kubectl kustomize DIR` as Flux's kustomize-controller builds: without kustomize's default
/// root-only load restriction, so `../svc/x` file entries build (kustomize-controller runs krusty
/// with `opt.LoadRestrictions = kustypes.LoadRestrictionsNone`).
fn builds_like_flux(dir: &std::path::Path) {
    let out = std::process::Command::new("kubectl")
        .args(["kustomize", "--load-restrictor", "LoadRestrictionsNone"])
        .arg(dir)
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "{} does not build: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every kustomization directory of the prod overlay builds, so no entry names a deleted file.
fn every_kustomization_builds(fleet: &Fleet) {
    for k in fleet.find("kustomization.yaml") {
        if k.starts_with(PROD) {
            builds_like_flux(fleet.path().join(&k).parent().unwrap());
        }
    }
}

fn kustomization(service: &str) -> String {
    format!("{PROD}/services/{service}/kustomization.yaml")
}

/// Replace `from` (which must be there) by `to` in a service's kustomization.
fn respell(fleet: &Fleet, service: &str, from: &str, to: &str) {
    let text = fleet.read(&kustomization(service));
    assert!(text.contains(from), "{service}: {from:?} not in\n{text}");
    fleet.write(&kustomization(service), &text.replacen(from, to, 1));
}

#[test]
fn entries_are_removed_by_the_file_they_resolve_to_whatever_their_spelling() {
    let fleet = Fleet::example();
    respell(&fleet, "kyverno", "'oci-creds.yaml'", "./oci-creds.yaml");
    respell(
        &fleet,
        "istio",
        "\"oci-creds.yaml\"",
        "\"sub/../oci-creds.yaml\"",
    );
    respell(
        &fleet,
        "headlamp",
        "./oci-creds.yaml]",
        ".//oci-creds.yaml ]",
    );
    respell(&fleet, "metallb", "./oci-creds.yaml", "oci-creds.yaml   ");
    respell(
        &fleet,
        "keycloak",
        "./oci-creds.yaml",
        "'././oci-creds.yaml'",
    );
    // loki's file is listed only by a sibling service, as `../loki/oci-creds.yaml`, in place of
    // the sibling's own (listing both puts two Secrets `oci-creds` into one build, which kustomize
    // refuses, so Flux could never have applied that overlay: consolidate now refuses it too).
    respell(&fleet, "loki", "  - 'oci-creds.yaml'\n", "");
    respell(
        &fleet,
        "cert-manager",
        "  - oci-creds.yaml\n",
        "  - ../loki/oci-creds.yaml\n",
    );
    consolidate(&fleet).succeeds().leaks_none(&secret_needles());
    let left: Vec<String> = fleet
        .find("oci-creds.yaml")
        .into_iter()
        .filter(|f| f.starts_with(PROD))
        .collect();
    assert_eq!(left, [format!("{PROD}/flux-system/oci-creds.yaml")]);
    for service in [
        "kyverno",
        "istio",
        "headlamp",
        "metallb",
        "keycloak",
        "cert-manager",
    ] {
        let text = fleet.read(&kustomization(service));
        assert!(!text.contains("oci-creds"), "{service}:\n{text}");
        assert!(text.contains("helmrelease.yaml"), "{service}:\n{text}");
    }
    every_kustomization_builds(&fleet);
}

#[test]
fn an_absolute_entry_is_refused_naming_its_kustomization() {
    let fleet = Fleet::example();
    respell(&fleet, "kyverno", "'oci-creds.yaml'", "/oci-creds.yaml");
    let before = fleet.snapshot();
    let out = consolidate(&fleet).fails(1);
    let expected = format!(
        "{}: `resources:` entry `/oci-creds.yaml` is an absolute path",
        kustomization("kyverno")
    );
    assert!(out.stderr.contains(&expected), "{}", out.stderr);
    assert!(out.stderr.contains("nothing was changed"), "{}", out.stderr);
    assert_eq!(before, fleet.snapshot());
}

#[test]
fn symlinks_the_scan_cannot_see_through_are_refused_naming_the_link() {
    type Link = fn(&Fleet) -> String;
    let cases: Vec<(&str, Link)> = vec![
        ("symlinked credentials file", |f| {
            let creds = format!("{}/oci-creds.yaml", fleet_path("services/loki"));
            move_and_link(f, &creds, "shared/oci-creds.yaml");
            creds
        }),
        ("symlinked service directory", |f| {
            let dir = fleet_path("services/loki");
            move_and_link(f, &dir, "shared/loki");
            dir
        }),
        ("symlinked kustomization", |f| {
            let k = kustomization("loki");
            move_and_link(f, &k, "shared/kustomization.yaml");
            k
        }),
    ];
    for (name, link) in cases {
        let fleet = Fleet::example();
        let path = link(&fleet);
        let before = fleet.snapshot();
        let out = consolidate(&fleet).fails(1);
        assert!(
            out.stderr.contains(&format!("{path} is a symlink")),
            "{name}: {}",
            out.stderr
        );
        assert_eq!(before, fleet.snapshot(), "{name}: tree changed");
    }
}

fn fleet_path(rel: &str) -> String {
    format!("{PROD}/{rel}")
}

/// Move `rel` to `to` (repo-relative) and leave a relative symlink to it in its place.
fn move_and_link(fleet: &Fleet, rel: &str, to: &str) {
    let from = fleet.path().join(rel);
    let target = fleet.path().join(to);
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::rename(&from, &target).unwrap();
    let depth = rel.matches('/').count();
    let relative = format!("{}{to}", "../".repeat(depth));
    std::os::unix::fs::symlink(relative, &from).unwrap();
    assert!(from.exists(), "{rel} -> {to} dangles");
}

#[test]
fn files_starting_with_a_byte_order_mark_are_consolidated_and_keep_it() {
    let fleet = Fleet::example();
    let bom = |rel: &str| {
        let text = fleet.read(rel);
        fleet.write(rel, &format!("\u{feff}{text}"));
    };
    let creds = fleet_path("services/loki/oci-creds.yaml");
    bom(&creds);
    bom(&kustomization("loki"));
    bom(&kustomization("kyverno"));
    bom(&fleet_path("flux-system/kustomization.yaml"));
    consolidate(&fleet).succeeds().leaks_none(&secret_needles());
    assert!(!fleet.exists(&creds));
    for k in [
        kustomization("loki"),
        kustomization("kyverno"),
        fleet_path("flux-system/kustomization.yaml"),
    ] {
        let text = fleet.read(&k);
        assert!(text.starts_with('\u{feff}'), "{k} lost its BOM");
        assert_eq!(text.matches('\u{feff}').count(), 1, "{k}");
    }
    assert!(!fleet.read(&kustomization("loki")).contains("oci-creds"));
    assert!(
        fleet
            .read(&fleet_path("flux-system/kustomization.yaml"))
            .contains("oci-creds.yaml")
    );
    every_kustomization_builds(&fleet);
}
