//! `scripts/deploy-reflector.rhai` end to end: the base in an empty base repo, the wiring of a
//! cluster overlay, hand edits that block (and `force` that overrides), refused parameters, and
//! consolidate.rhai's refusal of clusters that do not deploy Reflector until the wiring is there.

use crate::support;
use crate::support::kubeconform;

use ocitool_core::reflector::render::{self, BASE_PATH, OVERLAY_FILE, RenderOptions};
use support::Fleet;

const SCRIPT: &str = "deploy-reflector.rhai";
const OVERLAY: &str = "acme/applications/overlays/prod";

fn base_file(name: &str) -> String {
    format!("{BASE_PATH}/{name}")
}

fn overlay_file(rel: &str) -> String {
    format!("{OVERLAY}/{rel}")
}

/// The example fleet with prod's Reflector wiring removed, as a cluster that never had it.
fn fleet_without_reflector() -> Fleet {
    let fleet = Fleet::example();
    std::fs::remove_dir_all(fleet.path().join(overlay_file("managed-services/fluxcd"))).unwrap();
    let root = overlay_file("kustomization.yaml");
    let text = fleet
        .read(&root)
        .replace("  - managed-services/fluxcd\n", "");
    fleet.write(&root, &text);
    fleet
}

fn wire(fleet: &Fleet) -> support::Cmd {
    fleet
        .run(SCRIPT)
        .set("customer", "acme")
        .set("cluster", "prod")
}

// ---- the base ----

#[test]
fn base_in_an_empty_repo_is_the_default_render_and_the_checked_in_copy() {
    let fleet = Fleet::empty();
    fleet
        .run(SCRIPT)
        .succeeds()
        .stdout_has("written: applications/base/managed-services/reflector/helmrelease.yaml");
    let checked_in = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    for (name, text) in render::render(&RenderOptions::default()).unwrap() {
        assert_eq!(
            fleet.read(&base_file(&name)),
            text,
            "{name} differs from the render"
        );
        let copy = std::fs::read_to_string(checked_in.join(base_file(&name))).unwrap();
        assert_eq!(
            fleet.read(&base_file(&name)),
            copy,
            "{name} differs from manifests/"
        );
    }
    assert_eq!(fleet.snapshot().len(), 4);
}

#[test]
fn a_second_run_changes_nothing() {
    let fleet = Fleet::empty();
    fleet.run(SCRIPT).succeeds();
    let before = fleet.snapshot();
    fleet
        .run(SCRIPT)
        .succeeds()
        .stderr_has("nothing to change")
        .stdout_has("already deployed");
    assert_eq!(fleet.snapshot(), before);
}

#[test]
fn dry_run_shows_the_diff_and_writes_nothing() {
    let fleet = Fleet::empty();
    fleet
        .run(SCRIPT)
        .dry_run()
        .succeeds()
        .stdout_has("+kind: HelmRelease")
        .stderr_has("nothing was written");
    assert!(fleet.snapshot().is_empty());
}

#[test]
fn a_hand_edit_blocks_the_run_until_forced() {
    let fleet = Fleet::empty();
    fleet.run(SCRIPT).succeeds();
    let path = base_file("helmrelease.yaml");
    let edited = fleet.read(&path).replace("interval: 30m", "interval: 5m");
    fleet.write(&path, &edited);
    let before = fleet.snapshot();

    fleet
        .run(SCRIPT)
        .fails(1)
        .stdout_has(&format!(
            "left untouched: {path} (edited since ocitool generated it"
        ))
        .stderr_has("--set force=true");
    assert_eq!(fleet.snapshot(), before, "a blocked run writes nothing");

    fleet
        .run(SCRIPT)
        .set("force", "true")
        .dry_run()
        .succeeds()
        .stdout_has("-  interval: 5m");
    assert_eq!(fleet.snapshot(), before);
    fleet
        .run(SCRIPT)
        .set("force", "true")
        .succeeds()
        .stdout_has(&format!("overwritten (force): {path}"));
    assert!(fleet.read(&path).contains("interval: 30m"));
}

#[test]
fn bad_parameters_are_refused_naming_the_parameter() {
    let fleet = Fleet::empty();
    fleet.write("values.yaml", "replicas: 2\n");
    let before = fleet.snapshot();
    for (key, value, named) in [
        ("chart_version", "v7", "chart_version \"v7\""),
        (
            "reflector_namespace",
            "Bad_NS",
            "reflector_namespace \"Bad_NS\"",
        ),
        ("repository_url", "http://x", "repository_url \"http://x\""),
        ("values_file", "values.yaml", "values_file="),
        ("force", "yes", "--set force=yes: expected true or false"),
    ] {
        // A value of the wrong declared type is a usage error, refused before the script runs.
        let code = if key == "force" { 2 } else { 1 };
        fleet
            .run(SCRIPT)
            .set(key, value)
            .fails(code)
            .stderr_has(named);
        assert_eq!(
            fleet.snapshot(),
            before,
            "--set {key}={value} changed the tree"
        );
    }
    // A relative path is the user's, resolved against the working directory (here the fleet).
    let values = fleet.path().join("values.yaml");
    fleet
        .run(SCRIPT)
        .set("values_file", "values.yaml")
        .fails(1)
        .stderr_has(&format!("values_file={}", values.display()))
        .stderr_has("did you mean \"replicaCount\"");
}

#[test]
fn a_values_file_reaches_the_helmrelease() {
    let fleet = Fleet::empty();
    // Absolute: a values file kept outside the repository.
    let outside = tempfile::tempdir().unwrap();
    let values = outside.path().join("values.yaml");
    std::fs::write(&values, "replicaCount: 2\n").unwrap();
    fleet
        .run(SCRIPT)
        .set("values_file", values.to_str().unwrap())
        .succeeds();
    assert!(
        fleet
            .read(&base_file("helmrelease.yaml"))
            .contains("    replicaCount: 2\n")
    );
}

// ---- the overlay wiring ----

#[test]
fn wiring_an_overlay_registers_reflector_and_builds() {
    let fleet = fleet_without_reflector();
    let root = overlay_file("kustomization.yaml");
    assert!(fleet.read(&root).starts_with("# Cluster acme-prod"));
    wire(&fleet)
        .set("base_source", "platform")
        .succeeds()
        .stdout_has("acme/prod: Reflector wiring");

    let expected = render::overlay_kustomization("platform", &RenderOptions::default()).unwrap();
    assert_eq!(fleet.read(&overlay_file(OVERLAY_FILE)), expected);
    let fluxcd = fleet.read(&overlay_file("managed-services/fluxcd/kustomization.yaml"));
    assert!(
        fluxcd.contains("resources:\n  - reflector.yaml\n"),
        "{fluxcd}"
    );
    let root_text = fleet.read(&root);
    assert!(
        root_text.starts_with("# Cluster acme-prod"),
        "the comment survives:\n{root_text}"
    );
    assert!(
        root_text.contains("  - managed-services/fluxcd\n"),
        "{root_text}"
    );

    let built = ocitool_adapters::kustomize::build(&fleet.path().join(OVERLAY)).unwrap();
    assert!(
        built.contains("path: ./applications/base/managed-services/reflector"),
        "{built}"
    );
    kubeconform::validate(&[fleet.path().join(overlay_file(OVERLAY_FILE))]).unwrap();

    let before = fleet.snapshot();
    wire(&fleet)
        .set("base_source", "platform")
        .succeeds()
        .stderr_has("nothing to change");
    assert_eq!(fleet.snapshot(), before);
}

#[test]
fn an_existing_fluxcd_kustomization_gets_the_entry_appended() {
    let fleet = fleet_without_reflector();
    let kustomization = overlay_file("managed-services/fluxcd/kustomization.yaml");
    let original = "# Platform services, one Flux Kustomization each.\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  # monitoring first\n  - monitoring.yaml\n";
    fleet.write(&kustomization, original);
    fleet.write(
        &overlay_file("managed-services/fluxcd/monitoring.yaml"),
        "# placeholder\n",
    );
    let root_before = fleet.read(&overlay_file("kustomization.yaml"));

    wire(&fleet).succeeds();
    let text = fleet.read(&kustomization);
    assert_eq!(text, format!("{original}  - reflector.yaml\n"));
    // The directory's kustomization existed, so whoever made it decides whether the root lists it.
    assert_eq!(fleet.read(&overlay_file("kustomization.yaml")), root_before);
}

#[test]
fn a_hand_written_reflector_yaml_in_an_overlay_is_not_overwritten() {
    let fleet = Fleet::example();
    let before = fleet.snapshot();
    wire(&fleet).fails(1).stdout_has(&format!(
        "{} (not generated by ocitool)",
        overlay_file(OVERLAY_FILE)
    ));
    assert_eq!(fleet.snapshot(), before);
    wire(&fleet).set("force", "true").succeeds();
    assert!(
        fleet
            .read(&overlay_file(OVERLAY_FILE))
            .starts_with("# Generated by ocitool")
    );
}

// ---- consolidate.rhai and Reflector ----

fn consolidate(fleet: &Fleet) -> support::Cmd {
    fleet
        .run("consolidate.rhai")
        .set("customer", "acme")
        .set("cluster", "prod")
}

#[test]
fn consolidate_refuses_a_cluster_without_reflector() {
    let fleet = fleet_without_reflector();
    let before = fleet.snapshot();
    consolidate(&fleet)
        .fails(1)
        .stderr_has("does not deploy Reflector")
        .stderr_has("ocitool run deploy-reflector for this cluster");
    assert_eq!(fleet.snapshot(), before);
}

#[test]
fn consolidate_without_reflector_runs_when_allowed() {
    let fleet = fleet_without_reflector();
    consolidate(&fleet)
        .set("require_reflector", "false")
        .succeeds()
        .stdout_has("acme/prod: consolidated");
}

#[test]
fn consolidate_runs_once_reflector_is_wired() {
    let fleet = fleet_without_reflector();
    wire(&fleet).succeeds();
    consolidate(&fleet)
        .succeeds()
        .stdout_has("acme/prod: consolidated");
}
