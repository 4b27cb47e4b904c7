//! `scripts/deploy-reflector.rhai` end to end: the base in an empty base repo, the wiring of a
//! cluster overlay (to a GitRepository that exists, or one it renders), hand edits that block (and
//! `force` that overrides), refused parameters (a source that does not exist, a chart version or
//! values that change Reflector), and consolidate.rhai's refusal of clusters that do not deploy
//! Reflector, or whose wiring dangles, until the wiring resolves; on the example fleet and on an
//! openCenter-shaped one.

use crate::support;
use crate::support::kubeconform;

use ocitool_core::reflector::base_repo::SOURCE_FILE;
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
    // The default base_source, `base`, is the GitRepository in flux-system/base-repo.yaml.
    wire(&fleet)
        .succeeds()
        .stdout_has("acme/prod: Reflector wiring (reflector 7.1.288 in reflector-system, from GitRepository flux-system/base)");

    let expected = render::overlay_kustomization("base", &RenderOptions::default()).unwrap();
    assert_eq!(fleet.read(&overlay_file(OVERLAY_FILE)), expected);
    assert!(
        !fleet.exists(&overlay_file(SOURCE_FILE)),
        "an existing source is not rendered"
    );
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
    wire(&fleet).succeeds().stderr_has("nothing to change");
    assert_eq!(fleet.snapshot(), before);
}

#[test]
fn a_base_source_that_does_not_exist_is_refused_naming_what_exists() {
    let fleet = fleet_without_reflector();
    let before = fleet.snapshot();
    for dry_run in [true, false] {
        let mut cmd = wire(&fleet).set("base_source", "platform");
        if dry_run {
            cmd = cmd.dry_run();
        }
        cmd.fails(1)
            .stderr_has("base_source `platform`: no GitRepository of that name in flux-system is applied by Flux from acme/applications/overlays/prod")
            .stderr_has(&format!(
                "GitRepositories found: `base` in flux-system ({OVERLAY}/flux-system/base-repo.yaml, \
                 ssh://git@git.example.com/platform/base.git); `flux-system` in flux-system"
            ))
            .stderr_has("--set base_source=reflector-base --set base_url=ssh://git@git.example.com/platform/base.git");
        assert_eq!(fleet.snapshot(), before, "a refused wiring writes nothing");
    }
}

#[test]
fn a_base_url_renders_the_source_beside_the_wiring() {
    let fleet = fleet_without_reflector();
    let url = "https://git.example.com/platform/base.git";
    let render_source = || {
        wire(&fleet)
            .set("base_source", "reflector-base")
            .set("base_url", url)
            .set("base_ref", "tag:v1.4.0")
    };
    let before = fleet.snapshot();
    render_source()
        .dry_run()
        .succeeds()
        .stdout_has(&format!("+++ b/{}", overlay_file(SOURCE_FILE)))
        .stdout_has("+kind: GitRepository")
        .stdout_has("+  name: reflector-base")
        .stdout_has("+    tag: v1.4.0")
        .stdout_has("+  - reflector-source.yaml");
    assert_eq!(fleet.snapshot(), before, "a dry run changes nothing");

    render_source()
        .succeeds()
        .stdout_has(&format!("written: {}", overlay_file(SOURCE_FILE)));
    let source = fleet.read(&overlay_file(SOURCE_FILE));
    assert!(source.starts_with("# Generated by ocitool"), "{source}");
    kubeconform::validate(&[
        fleet.path().join(overlay_file(SOURCE_FILE)),
        fleet.path().join(overlay_file(OVERLAY_FILE)),
    ])
    .unwrap();
    let built = ocitool_adapters::kustomize::build(&fleet.path().join(OVERLAY)).unwrap();
    let docs = ocitool_core::manifest::parse_documents("built", &built).unwrap();
    let repository = docs
        .iter()
        .find(|d| d["kind"] == "GitRepository" && d["metadata"]["name"] == "reflector-base")
        .expect("the rendered GitRepository is built");
    assert_eq!(repository["spec"]["url"], url);
    let wiring = docs
        .iter()
        .find(|d| d["kind"] == "Kustomization" && d["metadata"]["name"] == "reflector")
        .unwrap();
    assert_eq!(wiring["spec"]["sourceRef"]["name"], "reflector-base");

    let settled = fleet.snapshot();
    render_source().succeeds().stderr_has("nothing to change");
    assert_eq!(fleet.snapshot(), settled, "idempotent");
    consolidate(&fleet)
        .succeeds()
        .stdout_has("acme/prod: consolidated");
}

#[test]
fn a_base_url_for_a_name_another_file_defines_is_refused() {
    let fleet = fleet_without_reflector();
    let before = fleet.snapshot();
    wire(&fleet)
        .set("base_url", "https://git.example.com/other.git")
        .fails(1)
        .stderr_has(&format!(
            "base_source `base` is already defined, as {OVERLAY}/flux-system/base-repo.yaml \
             (url ssh://git@git.example.com/platform/base.git)"
        ))
        .stderr_has("--set base_source=NAME");
    assert_eq!(fleet.snapshot(), before);
}

#[test]
fn bad_base_repository_parameters_are_refused_naming_each() {
    let fleet = fleet_without_reflector();
    let before = fleet.snapshot();
    for (pairs, needle) in [
        (
            &[("base_url", "http://git.example.com/b.git")][..],
            "base_url \"http://git.example.com/b.git\" must be an https:// or ssh:// URL",
        ),
        (
            &[("base_url", "git@git.example.com:b.git")][..],
            "scp-style",
        ),
        (
            &[("base_url", "ssh://git@git.example.com/b.git")][..],
            "add --set base_secret=NAME",
        ),
        (
            &[("base_url", "https://h/b.git"), ("base_ref", "tags:v1")][..],
            "unknown ref kind `tags`",
        ),
        (
            &[("base_ref", "main")][..],
            "--set base_ref describes a GitRepository for ocitool to render",
        ),
        (
            &[
                ("base_source", "flux-system"),
                ("base_url", "https://h/b.git"),
            ][..],
            "flux bootstrap made",
        ),
    ] {
        let mut cmd = wire(&fleet);
        if !pairs.iter().any(|(key, _)| *key == "base_source") {
            cmd = cmd.set("base_source", "reflector-base");
        }
        for (key, value) in pairs {
            cmd = cmd.set(key, value);
        }
        cmd.fails(1).stderr_has(needle);
        assert_eq!(fleet.snapshot(), before, "{pairs:?} changed the tree");
    }
    // The base (no cluster) has no GitRepository to render.
    let empty = Fleet::empty();
    empty
        .run(SCRIPT)
        .set("base_url", "https://h/b.git")
        .fails(1)
        .stderr_has("give them with --set cluster");
    assert!(empty.snapshot().is_empty());
}

#[test]
fn the_fleet_repository_as_base_source_needs_the_base_in_it() {
    let fleet = fleet_without_reflector();
    let before = fleet.snapshot();
    wire(&fleet)
        .set("base_source", "flux-system")
        .fails(1)
        .stderr_has(&format!(
            "base_source `flux-system` is the fleet repository itself, but it has no {BASE_PATH}"
        ));
    assert_eq!(fleet.snapshot(), before);
    // Rendered into the fleet repository itself, the base resolves.
    fleet.run(SCRIPT).succeeds();
    wire(&fleet).set("base_source", "flux-system").succeeds();
    consolidate(&fleet).succeeds();
}

#[test]
fn chart_versions_and_values_that_change_reflector_are_refused_with_the_reason() {
    let fleet = fleet_without_reflector();
    let before = fleet.snapshot();
    wire(&fleet)
        .set("chart_version", "9.1.0")
        .fails(1)
        .stderr_has(
            "chart_version \"9.1.0\" is refused: ocitool supports the Reflector chart 7.1.288 only",
        );
    assert_eq!(fleet.snapshot(), before);
    let outside = tempfile::tempdir().unwrap();
    for (values, reason) in [
        (
            "cron:\n  enabled: true\n",
            "cron.enabled: true removes Reflector's Deployment: in chart 7.1.288 templates/deployment.yaml renders only `if not .Values.cron.enabled`",
        ),
        (
            "replicaCount: 0\n",
            "replicaCount: 0 leaves Reflector without a running pod",
        ),
        (
            "rbac:\n  enabled: false\n",
            "templates/clusterRole.yaml and clusterRoleBinding.yaml render only `if .Values.rbac.enabled`",
        ),
        (
            "nameOverride: mirror\n",
            "would name Reflector's Deployment `reflector-mirror`",
        ),
        (
            "image:\n  tag: 9.1.0\n",
            "image.tag: 9.1.0 would run another Reflector than 7.1.288",
        ),
    ] {
        let file = outside.path().join("values.yaml");
        std::fs::write(&file, values).unwrap();
        for cmd in [fleet.run(SCRIPT), wire(&fleet)] {
            cmd.set("values_file", file.to_str().unwrap())
                .fails(1)
                .stderr_has(&format!("values_file={}", file.display()))
                .stderr_has(reason);
        }
        assert_eq!(fleet.snapshot(), before, "{values} changed the tree");
    }
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

    wire(&fleet).succeeds().stderr_has(&format!(
        "{} is listed in {kustomization}, but no kustomization reachable from {OVERLAY}/kustomization.yaml \
         includes managed-services/fluxcd, so Flux would not apply it",
        overlay_file(OVERLAY_FILE)
    ));
    let text = fleet.read(&kustomization);
    assert_eq!(text, format!("{original}  - reflector.yaml\n"));
    // The directory's kustomization existed, so whoever made it decides whether the root lists it.
    assert_eq!(fleet.read(&overlay_file("kustomization.yaml")), root_before);
    // Until it does, the wiring is never applied, and consolidate says so.
    consolidate(&fleet).fails(1).stderr_has(&format!(
        "{}: Flux Kustomization `reflector` (applying applications/base/managed-services/reflector) is in no \
         kustomization reachable from {OVERLAY}",
        overlay_file(OVERLAY_FILE)
    ));
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
    validate(&fleet)
        .succeeds()
        .stdout_has("the overlay does not deploy Reflector")
        .stdout_has("ocitool run deploy-reflector --set cluster=prod");
}

fn validate(fleet: &Fleet) -> support::Cmd {
    fleet
        .run("validate.rhai")
        .set("customer", "acme")
        .set("cluster", "prod")
}

#[test]
fn consolidate_runs_once_reflector_is_wired() {
    let fleet = fleet_without_reflector();
    wire(&fleet).succeeds();
    consolidate(&fleet)
        .succeeds()
        .stdout_has("acme/prod: consolidated");
}

#[test]
fn consolidate_refuses_a_wiring_whose_source_dangles_naming_the_file() {
    let fleet = Fleet::example();
    let wiring = overlay_file(OVERLAY_FILE);
    let text = fleet
        .read(&wiring)
        .replace("    name: base\n", "    name: platform-base\n");
    fleet.write(&wiring, &text);
    let before = fleet.snapshot();
    consolidate(&fleet)
        .fails(1)
        .stderr_has(&format!(
            "acme/prod: {wiring}: Flux Kustomization `reflector` (applying applications/base/managed-services/reflector) \
             names GitRepository `platform-base` in flux-system, which Flux does not apply from {OVERLAY}"
        ))
        .stderr_has(&format!("`base` in flux-system ({OVERLAY}/flux-system/base-repo.yaml"))
        .stderr_has("--set require_reflector=false")
        .leaks_none(&support::example_passwords());
    assert_eq!(fleet.snapshot(), before);
    consolidate(&fleet)
        .set("require_reflector", "false")
        .succeeds();
    validate(&fleet).fails(1).stdout_has(
        "names GitRepository `platform-base` in flux-system, which Flux does not apply",
    );
}

#[test]
fn consolidate_refuses_a_source_no_kustomization_lists() {
    let fleet = Fleet::example();
    let flux_system = overlay_file("flux-system/kustomization.yaml");
    let text = fleet.read(&flux_system).replace("  - base-repo.yaml\n", "");
    fleet.write(&flux_system, &text);
    let before = fleet.snapshot();
    consolidate(&fleet).fails(1).stderr_has(&format!(
        "({OVERLAY}/flux-system/base-repo.yaml defines it, but no kustomization lists that file)"
    ));
    assert_eq!(fleet.snapshot(), before);
    // Wiring it again refuses too, for the same reason, until the file is listed.
    wire(&fleet)
        .set("force", "true")
        .fails(1)
        .stderr_has("base-repo.yaml defines it, but no kustomization lists that file");
    assert_eq!(fleet.snapshot(), before);
}

// ---- an openCenter-shaped fleet: one GitRepository per service, none named `base` ----

mod opencenter {
    use super::*;
    use ocitool_devkit::fleetgen::opencenter::{BASE_REPO_URL, Spec};

    const PROD: &str = "applications/overlays/prod";

    fn fleet() -> Fleet {
        Fleet::opencenter(&Spec::standard(None)).0
    }

    fn wire(fleet: &Fleet) -> support::Cmd {
        fleet.run(SCRIPT).set("cluster", "prod")
    }

    fn consolidate(fleet: &Fleet) -> support::Cmd {
        fleet
            .run("consolidate.rhai")
            .set("cluster", "prod")
            .set("prepare", "true")
    }

    #[test]
    fn the_default_base_source_is_refused_listing_the_service_sources() {
        let fleet = fleet();
        let before = fleet.snapshot();
        let out = wire(&fleet).fails(1);
        for needle in [
            format!(
                "base_source `base`: no GitRepository of that name in flux-system is applied by Flux from {PROD}"
            ),
            format!(
                "`opencenter-cert-manager` in flux-system ({PROD}/services/sources/opencenter-cert-manager.yaml, {BASE_REPO_URL})"
            ),
            format!("--set base_source=reflector-base --set base_url={BASE_REPO_URL}"),
        ] {
            assert!(
                out.stderr.contains(&needle),
                "lacks {needle:?}:\n{}",
                out.stderr
            );
        }
        assert_eq!(fleet.snapshot(), before);
        consolidate(&fleet)
            .fails(1)
            .stderr_has("prod: the overlay does not deploy Reflector");
        assert_eq!(fleet.snapshot(), before);
    }

    #[test]
    fn a_service_source_of_the_base_repository_can_be_named() {
        let fleet = fleet();
        let fluxcd = format!("{PROD}/managed-services/fluxcd/kustomization.yaml");
        let original = fleet.read(&fluxcd);
        wire(&fleet)
            .set("base_source", "opencenter-cert-manager")
            .succeeds();
        assert_eq!(
            fleet.read(&fluxcd),
            format!("{original}  - reflector.yaml\n")
        );
        assert!(!fleet.exists(&format!("{PROD}/{SOURCE_FILE}")));
        let built = ocitool_adapters::kustomize::build(&fleet.path().join(PROD)).unwrap();
        assert!(
            built.contains("name: opencenter-cert-manager\n    namespace: flux-system"),
            "{built}"
        );
        consolidate(&fleet)
            .succeeds()
            .stdout_has("prod: consolidated")
            .leaks_none(&Spec::standard(None).passwords());
    }

    #[test]
    fn a_rendered_source_wires_reflector_and_consolidate_accepts_it() {
        let fleet = fleet();
        let render = || {
            wire(&fleet)
                .set("base_source", "opencenter-reflector")
                .set("base_url", BASE_REPO_URL)
        };
        let before = fleet.snapshot();
        render()
            .dry_run()
            .succeeds()
            .stdout_has(&format!("+++ b/{PROD}/{SOURCE_FILE}"))
            .stdout_has(&format!("+  url: {BASE_REPO_URL}"));
        assert_eq!(fleet.snapshot(), before);
        render().succeeds();
        let settled = fleet.snapshot();
        render().succeeds().stderr_has("nothing to change");
        assert_eq!(fleet.snapshot(), settled);
        consolidate(&fleet)
            .succeeds()
            .stdout_has("prod: consolidated")
            .leaks_none(&Spec::standard(None).passwords());

        // A hand edit renaming the source leaves the wiring dangling: consolidate names the file.
        let source = format!("{PROD}/{SOURCE_FILE}");
        let renamed = fleet.read(&source).replace(
            "name: opencenter-reflector",
            "name: opencenter-reflector-old",
        );
        fleet.write(&source, &renamed);
        let before = fleet.snapshot();
        consolidate(&fleet)
            .fails(1)
            .stderr_has(&format!(
                "{PROD}/{OVERLAY_FILE}: Flux Kustomization `reflector` (applying applications/base/managed-services/reflector) \
                 names GitRepository `opencenter-reflector` in flux-system, which Flux does not apply from {PROD}"
            ));
        assert_eq!(fleet.snapshot(), before);
    }
}
