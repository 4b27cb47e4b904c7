//! Who needs the registry Secret, read from what Flux builds (issue 9, items 1 and 2), on the
//! openCenter-shaped fleet and its base repository (fleetgen::opencenter): `rbac-system` uses
//! `oci-creds` only through the base repo's enterprise component (a HelmRepository `type: oci`),
//! with no per-service file. Real flux, sops, age and kubectl.

use crate::support::{Fleet, Output};
use ocitool_devkit::fleetgen::opencenter::Spec;

const PROD: &str = "applications/overlays/prod";
const SOURCE: &str = "applications/overlays/prod/flux-system/oci-creds.yaml";

/// The single-customer fleet; its shared folder carries `registry-credentials.yaml` and it has
/// no managed services (layouts are another test's concern), so the per-service `oci-creds.yaml`
/// copies are cert-manager's and kyverno's.
fn spec() -> Spec {
    let mut spec = Spec::standard(None);
    spec.shared.file = "registry-credentials.yaml".into();
    spec.managed.clear();
    spec
}

fn consolidate(fleet: &Fleet) -> crate::support::Cmd {
    fleet
        .run("consolidate.rhai")
        .set("cluster", "prod")
        .set("require_reflector", "false")
        .set("prepare", "true")
}

fn validate(fleet: &Fleet) -> crate::support::Cmd {
    fleet.run("validate.rhai").set("cluster", "prod")
}

fn base(fleet: &Fleet) -> String {
    fleet.base().to_str().unwrap().to_string()
}

fn source_namespaces(fleet: &Fleet) -> Vec<String> {
    ocitool_core::secret::read_source("source", &fleet.decrypt(SOURCE))
        .unwrap()
        .namespaces()
        .to_vec()
}

fn lines<'a>(out: &'a Output, severity: &str, needle: &str) -> Vec<&'a str> {
    out.stdout
        .lines()
        .filter(|l| l.starts_with(severity) && l.contains(needle))
        .collect()
}

#[test]
fn consolidate_with_base_repo_adds_every_namespace_with_a_consumer() {
    let (fleet, _) = Fleet::opencenter(&spec());
    consolidate(&fleet)
        .set("base_repo", &base(&fleet))
        .succeeds()
        .stdout_has("namespaces (4): cert-manager, keycloak, kyverno, rbac-system")
        .stdout_has("added for consumers in built output: keycloak, rbac-system")
        .leaks_none(&spec().passwords());
    assert_eq!(
        source_namespaces(&fleet),
        ["cert-manager", "keycloak", "kyverno", "rbac-system"]
    );
    let out = validate(&fleet).set("base_repo", &base(&fleet)).succeeds();
    for quiet in ["not checked", "nothing there needs it", "does not build"] {
        assert!(!out.stdout.contains(quiet), "{quiet}:\n{}", out.stdout);
    }
}

#[test]
fn consolidate_without_base_repo_keeps_every_copy_and_says_what_it_did_not_check() {
    let (fleet, _) = Fleet::opencenter(&spec());
    let out = consolidate(&fleet).succeeds();
    assert_eq!(source_namespaces(&fleet), ["cert-manager", "kyverno"]);
    for needle in [
        "not checked: Flux Kustomization(s) `cert-manager-base` (GitRepository/opencenter-cert-manager)",
        "`rbac-manager-base` (GitRepository/opencenter-rbac-manager)",
        "pass --set base_repo=DIR",
        "namespace kyverno keeps its mirror (it had a per-service copy); not checked whether anything there uses `oci-creds`",
    ] {
        assert!(out.stderr.contains(needle), "{needle}:\n{}", out.stderr);
    }
}

#[test]
fn one_source_can_be_mapped_by_name() {
    let (fleet, _) = Fleet::opencenter(&spec());
    let out = consolidate(&fleet)
        .set("source.opencenter-rbac-manager", &base(&fleet))
        .succeeds()
        .stdout_has("added for consumers in built output: rbac-system");
    assert!(
        out.stderr
            .contains("`keycloak-base` (GitRepository/opencenter-keycloak)")
            && !out.stderr.contains("`rbac-manager-base` (GitRepository"),
        "{}",
        out.stderr
    );
    fleet
        .run("consolidate.rhai")
        .set("sources.opencenter-x", "/tmp")
        .fails(2)
        .stderr_has("did you mean `source.NAME`?");
}

/// The defect a migration without the base repo leaves: rbac-system uses the Secret, but the
/// source's Reflector lists do not name it. validate sees it only when it builds the base.
#[test]
fn validate_with_base_repo_catches_a_consumer_namespace_missing_from_the_lists() {
    let (fleet, _) = Fleet::opencenter(&spec());
    consolidate(&fleet).succeeds();

    let out = validate(&fleet).succeeds();
    assert!(
        lines(&out, "warning", "not checked: Flux Kustomization(s)").len() == 1,
        "{}",
        out.stdout
    );
    for ns in ["cert-manager", "kyverno"] {
        let kept =
            format!("namespace {ns} gets a mirror; not checked whether anything there needs it");
        assert_eq!(lines(&out, "info", &kept).len(), 1, "{}", out.stdout);
    }
    assert!(
        !out.stdout.contains("remove it from the namespace lists"),
        "never advise removing what could not be checked:\n{}",
        out.stdout
    );

    let out = validate(&fleet).set("base_repo", &base(&fleet)).fails(1);
    for ns in ["rbac-system", "keycloak"] {
        let missing = format!(
            "namespace {ns} needs `oci-creds` (HelmRepository/opencenter-cloud) but Reflector will not mirror it there"
        );
        assert_eq!(lines(&out, "error", &missing).len(), 1, "{}", out.stdout);
    }
    assert!(!out.stdout.contains("not checked"), "{}", out.stdout);
}

#[test]
fn a_base_kustomization_that_does_not_build_is_named_and_nothing_is_written() {
    let (fleet, _) = Fleet::opencenter(&spec());
    let kustomization = fleet
        .base()
        .join("applications/base/services/kyverno/kustomization.yaml");
    let text = std::fs::read_to_string(&kustomization).unwrap();
    std::fs::write(&kustomization, format!("{text}  - missing.yaml\n")).unwrap();
    let before = fleet.snapshot();
    let out = consolidate(&fleet).set("base_repo", &base(&fleet)).fails(1);
    for needle in [
        "a Flux Kustomization does not build as Flux builds it",
        &format!("{PROD}/services/fluxcd/kyverno.yaml: `flux build kustomization kyverno-base`"),
        "missing.yaml",
        "nothing was written",
    ] {
        assert!(out.stderr.contains(needle), "{needle}:\n{}", out.stderr);
    }
    assert_eq!(fleet.snapshot(), before, "the tree is unchanged");

    let out = validate(&fleet).set("base_repo", &base(&fleet)).fails(1);
    let named = lines(
        &out,
        "error",
        "Flux Kustomization `kyverno-base` does not build as Flux builds it",
    );
    assert!(
        named.len() == 1 && named[0].contains(&format!("{PROD}/services/fluxcd/kyverno.yaml")),
        "{}",
        out.stdout
    );
}

/// `postBuild.substituteFrom` a ConfigMap the fleet itself applies: flux's dry run skips it, so
/// ocitool resolves it from the built ConfigMap (as kustomize-controller would read it from the
/// cluster), and the ServiceAccount whose pull secret is a variable is seen as a consumer.
#[test]
fn substitute_from_a_config_map_in_the_fleet_is_resolved() {
    let (fleet, _) = Fleet::opencenter(&spec());
    let at = |rel: &str| format!("{PROD}/{rel}");
    fleet.write(
        &at("flux-system/cluster-vars.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cluster-vars\n  namespace: flux-system\n\
         data:\n  PULL_SECRET: oci-creds\n",
    );
    let bootstrap = fleet.read(&at("flux-system/kustomization.yaml"));
    fleet.write(
        &at("flux-system/kustomization.yaml"),
        &format!("{bootstrap}- cluster-vars.yaml\n"),
    );
    fleet.write(
        &at("services/fluxcd/puller.yaml"),
        &format!(
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: puller\n  namespace: flux-system\n\
             spec:\n  interval: 5m\n  path: ./{PROD}/services/puller\n  prune: true\n  targetNamespace: team-x\n  \
             sourceRef:\n    kind: GitRepository\n    name: flux-system\n  postBuild:\n    substituteFrom:\n      \
             - kind: ConfigMap\n        name: cluster-vars\n"
        ),
    );
    let fluxcd = fleet.read(&at("services/fluxcd/kustomization.yaml"));
    fleet.write(
        &at("services/fluxcd/kustomization.yaml"),
        &format!("{fluxcd}  - puller.yaml\n"),
    );
    fleet.write(
        &at("services/puller/serviceaccount.yaml"),
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: puller\nimagePullSecrets:\n  - name: ${PULL_SECRET}\n",
    );
    consolidate(&fleet)
        .set("base_repo", &base(&fleet))
        .succeeds()
        .stdout_has("added for consumers in built output: keycloak, rbac-system, team-x");
}
