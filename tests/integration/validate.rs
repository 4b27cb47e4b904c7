//! `validate.rhai` and `verify-cluster.rhai` end to end: the real binary, sops and kubectl against a
//! scratch copy of the example fleet, and saved `kubectl get -o json` fixtures for the cluster side.

use crate::support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use support::golden::{self, Mask};
use support::{Fleet, Output};

const SOURCE: &str = "acme/applications/overlays/prod/flux-system/oci-creds.yaml";
const PROD: &str = "acme/applications/overlays/prod";

/// The example fleet with prod consolidated.
fn consolidated() -> Fleet {
    let fleet = Fleet::example();
    fleet
        .run("consolidate.rhai")
        .set("customer", "acme")
        .set("cluster", "prod")
        .succeeds();
    fleet
}

fn validate_prod(fleet: &Fleet) -> support::Cmd {
    fleet
        .run("validate.rhai")
        .set("customer", "acme")
        .set("cluster", "prod")
}

/// Decrypt the source, edit its plaintext, and re-encrypt it for its path (plaintext only on pipes).
fn edit_source(fleet: &Fleet, edit: impl Fn(&str) -> String) {
    let plaintext = edit(&fleet.decrypt(SOURCE));
    let mut child =
        Command::new(ocitool_adapters::tools::find(ocitool_adapters::tools::SOPS).unwrap())
            .args(["encrypt", "--filename-override", SOURCE])
            .current_dir(fleet.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(plaintext.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "sops encrypt failed");
    fleet.write(SOURCE, &String::from_utf8(out.stdout).unwrap());
}

fn edit_file(fleet: &Fleet, rel: &str, from: &str, to: &str) {
    let text = fleet.read(rel);
    assert!(text.contains(from), "{rel} lacks {from:?}");
    fleet.write(rel, &text.replacen(from, to, 1));
}

/// Give cert-manager's HelmRepository a `spec.secretRef.namespace` (a field Flux does not have);
/// returns the file edited.
fn add_secret_ref_namespace(fleet: &Fleet) -> String {
    let rel = format!("{PROD}/services/cert-manager/helmrepository.yaml");
    edit_file(
        fleet,
        &rel,
        "    name: oci-creds",
        "    name: oci-creds\n    namespace: flux-system",
    );
    rel
}

fn errors_on(out: &Output, needle: &str) -> bool {
    out.stdout
        .lines()
        .any(|l| l.starts_with("error") && l.contains(needle))
}

#[test]
fn consolidated_fleet_validates_as_table_and_json() {
    let fleet = consolidated();
    let mask = Mask::default().path(fleet.path(), "<fleet>");
    let out = validate_prod(&fleet)
        .succeeds()
        .stdout_has("acme/prod")
        .matches_golden("validate/consolidated-acme-prod.txt", &mask);
    assert!(
        !out.stdout.lines().any(|l| l.starts_with("error")),
        "{}",
        out.stdout
    );

    let out = validate_prod(&fleet).json().succeeds();
    let doc: serde_json::Value =
        serde_json::from_str(&out.stdout).expect("stdout is one JSON document");
    let pretty = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    golden::assert_golden("validate/consolidated-acme-prod.json", &mask.apply(&pretty));
    assert_eq!(doc["errors"], 0);
    assert_eq!(doc["clusters"][0]["cluster"], "acme/prod");
    let findings = doc["clusters"][0]["findings"].as_array().unwrap();
    assert!(
        findings.iter().all(|f| f["severity"] != "error"),
        "{findings:?}"
    );
}

#[test]
fn unconsolidated_cluster_fails_with_copies_and_missing_source() {
    let fleet = Fleet::example();
    let out = validate_prod(&fleet).fails(1).matches_golden(
        "validate/unconsolidated-acme-prod.txt",
        &Mask::default().path(fleet.path(), "<fleet>"),
    );
    assert!(
        errors_on(&out, "services/cert-manager/oci-creds.yaml")
            && errors_on(&out, "per-service copy"),
        "{}",
        out.stdout
    );
    assert!(
        errors_on(&out, "source Secret is missing"),
        "{}",
        out.stdout
    );
}

#[test]
fn source_without_auto_enabled_is_an_error() {
    let fleet = consolidated();
    edit_source(&fleet, |text| {
        text.lines()
            .filter(|l| !l.contains("reflection-auto"))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    let out = validate_prod(&fleet).fails(1);
    assert!(
        errors_on(&out, "reflection-auto-enabled is not \"true\""),
        "{}",
        out.stdout
    );
}

/// A base repository with the `reflector` Flux Kustomization's path; `pod`: a workload there that
/// pulls with the source in reflector-system.
fn reflector_base(pod: bool) -> tempfile::TempDir {
    let base = tempfile::tempdir().unwrap();
    let reflector = base
        .path()
        .join("applications/base/managed-services/reflector");
    std::fs::create_dir_all(&reflector).unwrap();
    let mut resources = vec!["cm.yaml"];
    std::fs::write(
        reflector.join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: reflector-settings, namespace: reflector-system}\n",
    )
    .unwrap();
    if pod {
        resources.push("pod.yaml");
        std::fs::write(
            reflector.join("pod.yaml"),
            "apiVersion: v1\nkind: Pod\nmetadata: {name: puller, namespace: reflector-system}\n\
             spec:\n  imagePullSecrets: [{name: oci-creds}]\n  containers: [{name: c, image: x}]\n",
        )
        .unwrap();
    }
    std::fs::write(
        reflector.join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [{}]\n",
            resources.join(", ")
        ),
    )
    .unwrap();
    base
}

#[test]
fn namespace_lists_must_cover_needs_and_nothing_else() {
    let fleet = consolidated();
    edit_source(&fleet, |text| {
        text.replace("cert-manager,", "")
            .replace("vmware-system-csi", "vmware-system-csi,unused-ns")
    });
    let base = reflector_base(false);
    let out = validate_prod(&fleet)
        .set("base_repo", base.path().to_str().unwrap())
        .fails(1);
    assert!(
        errors_on(
            &out,
            "namespace cert-manager needs `oci-creds` (HelmRepository/cert-manager)"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.lines().any(|l| l.starts_with("warning")
            && l.contains("namespace unused-ns gets a mirror but nothing there needs it")),
        "{}",
        out.stdout
    );
    // Without the base, the `reflector` Kustomization (no targetNamespace) could deploy a user
    // of the Secret anywhere: the namespace is reported as not checked, never as removable.
    let out = validate_prod(&fleet).fails(1);
    assert!(
        out.stdout.lines().any(|l| l.starts_with("info")
            && l.contains(
                "namespace unused-ns gets a mirror; not checked whether anything there needs it"
            )),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("remove it from the namespace lists"),
        "{}",
        out.stdout
    );
}

#[test]
fn secret_ref_namespace_is_an_error() {
    let fleet = consolidated();
    let rel = add_secret_ref_namespace(&fleet);
    let out = validate_prod(&fleet).fails(1);
    assert!(
        errors_on(&out, &rel) && errors_on(&out, "spec.secretRef.namespace"),
        "{}",
        out.stdout
    );
}

#[test]
fn flux_system_without_sops_decryption_is_an_error() {
    let fleet = consolidated();
    let rel = format!("{PROD}/flux-system/gotk-sync.yaml");
    edit_file(
        &fleet,
        &rel,
        "  decryption:\n    provider: sops\n    secretRef:\n      name: sops-age\n",
        "",
    );
    let out = validate_prod(&fleet).fails(1);
    assert!(
        errors_on(&out, &rel) && errors_on(&out, "spec.decryption.provider: sops"),
        "{}",
        out.stdout
    );
}

#[test]
fn without_a_key_credentials_are_skipped_and_the_rest_checked() {
    let fleet = consolidated();
    let empty = fleet.path().join("empty.agekey");
    std::fs::write(&empty, "").unwrap();
    add_secret_ref_namespace(&fleet);
    let out = validate_prod(&fleet)
        .env("SOPS_AGE_KEY_FILE", empty.to_str().unwrap())
        .fails(1);
    assert!(
        out.stdout
            .contains("cannot decrypt (no key): skipped credential checks"),
        "{}",
        out.stdout
    );
    assert!(
        errors_on(&out, "spec.secretRef.namespace"),
        "{}",
        out.stdout
    );
}

/// A snapshot directory from the fixtures under tests/data/kubectl.
fn snapshot_dir(deployment: &str, secrets: &str, namespaces: &str) -> tempfile::TempDir {
    let fixtures = support::data_dir().join("kubectl");
    let dir = tempfile::tempdir().unwrap();
    for (from, to) in [
        (
            format!("reflector-deployment-{deployment}.json"),
            "reflector-deployment.json",
        ),
        (
            "reflector-pods-healthy.json".to_string(),
            "reflector-pods.json",
        ),
        ("source-secret.json".to_string(), "source-secret.json"),
        (format!("secrets-{secrets}.json"), "secrets.json"),
        (format!("namespaces-{namespaces}.json"), "namespaces.json"),
    ] {
        std::fs::copy(fixtures.join(from), dir.path().join(to)).unwrap();
    }
    dir
}

fn verify_offline(dir: &tempfile::TempDir) -> support::Cmd {
    // Offline verification never reads the repository, so the checkout itself serves as --repo.
    let root = env!("CARGO_MANIFEST_DIR");
    let script = format!("{root}/scripts/verify-cluster.rhai");
    support::Cmd::new(Path::new(root))
        .args(&["run", &script, "--repo", root])
        .set("snapshot_dir", dir.path().to_str().unwrap())
}

/// Secret material of the fixtures: the token and the base64 forms of the data.
fn fixture_secrets() -> Vec<String> {
    vec!["fixture-token".to_string(), "eyJhdXRocyI6".to_string()]
}

#[test]
fn verify_cluster_offline_healthy_passes() {
    let dir = snapshot_dir("healthy", "healthy", "healthy");
    verify_offline(&dir)
        .succeeds()
        .stdout_has("mirror up to date")
        .leaks_none(&fixture_secrets());
}

#[test]
fn verify_cluster_offline_broken_names_namespaces() {
    let dir = snapshot_dir("healthy", "broken", "broken");
    let out = verify_offline(&dir).fails(1).leaks_none(&fixture_secrets());
    for (ns, what) in [
        ("payments", "blocked"),
        ("team-b", "stale"),
        ("search", "missing"),
    ] {
        assert!(
            errors_on(&out, ns) && out.stdout.contains(what),
            "{ns}: {}",
            out.stdout
        );
    }
}

#[test]
fn verify_cluster_offline_reports_unavailable_reflector() {
    let dir = snapshot_dir("unavailable", "healthy", "healthy");
    let out = verify_offline(&dir).fails(1);
    assert!(
        errors_on(&out, "Reflector Deployment is not available"),
        "{}",
        out.stdout
    );
}

#[test]
fn base_repo_extends_the_analysis_beyond_the_overlay() {
    let fleet = consolidated();
    let out = validate_prod(&fleet).succeeds();
    assert!(
        out.stdout.lines().any(|l| l.starts_with("warning")
            && l.contains("not checked: Flux Kustomization(s) `reflector` (GitRepository/base)")),
        "{}",
        out.stdout
    );

    // A base workload that pulls with the source in a namespace the lists do not cover.
    let base = reflector_base(true);
    let out = validate_prod(&fleet)
        .set("base_repo", base.path().to_str().unwrap())
        .fails(1);
    assert!(!out.stdout.contains("not checked"), "{}", out.stdout);
    assert!(
        errors_on(
            &out,
            "namespace reflector-system needs `oci-creds` (Pod/puller)"
        ),
        "{}",
        out.stdout
    );
    // The same checkout named for the one source works alike.
    validate_prod(&fleet)
        .set("source.base", base.path().to_str().unwrap())
        .fails(1)
        .stdout_has("namespace reflector-system needs `oci-creds` (Pod/puller)");
}

#[test]
fn every_customer_is_validated_only_when_asked_for() {
    let fleet = consolidated();
    fleet
        .run("validate.rhai")
        .fails(1)
        .stderr_has("no customer named")
        .stderr_has("--all-customers");
    let out = fleet
        .run("validate.rhai")
        .args(&["--all-customers"])
        .fails(1);
    assert!(
        out.stdout.contains("== acme/prod") && out.stdout.contains("== acme/dev"),
        "{}",
        out.stdout
    );
}

#[test]
fn an_https_helm_repository_cannot_use_the_dockerconfigjson_source() {
    let fleet = consolidated();
    let rel = format!("{PROD}/services/keycloak/helmrepository.yaml");
    edit_file(&fleet, &rel, "  type: oci\n", "");
    edit_file(
        &fleet,
        &rel,
        "oci://harbor.acme.example/charts",
        "https://harbor.acme.example/chartrepo/charts",
    );
    let out = validate_prod(&fleet).fails(1);
    assert!(
        errors_on(&out, &rel) && errors_on(&out, "HTTPS chart index"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_source_that_cannot_be_decrypted_even_with_the_key_is_an_error() {
    let fleet = consolidated();
    let text = fleet.read(SOURCE);
    let mac_at = text
        .find("mac: ENC[AES256_GCM,data:")
        .expect("sops metadata has a mac")
        + "mac: ENC[AES256_GCM,data:".len();
    fleet.write(SOURCE, &format!("{}!{}", &text[..mac_at], &text[mac_at..]));
    let out = validate_prod(&fleet).fails(1);
    assert!(
        errors_on(&out, SOURCE) && errors_on(&out, "cannot decrypt, and Flux could not either"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("(no key)"), "{}", out.stdout);
}
