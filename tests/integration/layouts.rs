//! Real openCenter layouts end to end (issue 9, item 5), on fleetgen::opencenter fleets with the
//! real binary, sops, age and kubectl: customers under `customers/<c>/` and `<c>/` selected with
//! `--set customer=`, managed services, a shared credentials folder included by several services,
//! other Secrets for the same registry reported by consolidate and validate, and rotate reporting
//! (or, with `--set also=`, rotating) them. Every second run changes nothing.

use crate::support::{self, Fleet};
use ocitool_devkit::fleetgen::opencenter::{Generated, Prefix, Spec};

const REGISTRY: &str = "registry.opencenter.example";
const NEW_PASSWORD: &str = "demo-oc-rotated-Qp4Lm9Zt";

fn acme(prefix: Prefix) -> Spec {
    let mut spec = Spec::standard(Some("acme"));
    spec.prefix = prefix;
    spec
}

fn needles(spec: &Spec) -> Vec<String> {
    let mut all = spec.passwords();
    all.push(NEW_PASSWORD.to_string());
    all
}

fn consolidate(fleet: &Fleet, cluster: &str) -> support::Cmd {
    fleet
        .run("consolidate.rhai")
        .set("customer", "acme")
        .set("cluster", cluster)
        .set("require_reflector", "false")
        .set("prepare", "true")
}

/// consolidate.rhai for cluster prod of a single-customer openCenter fleet, prepared.
pub(crate) fn consolidate_single(fleet: &Fleet) -> support::Cmd {
    fleet
        .run("consolidate.rhai")
        .set("cluster", "prod")
        .set("require_reflector", "false")
        .set("prepare", "true")
}

fn kustomize(fleet: &Fleet, dir: &str) -> String {
    ocitool_adapters::kustomize::build(&fleet.path().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e:#}"))
}

fn consolidated(spec: &Spec) -> (Fleet, Generated) {
    let (fleet, generated) = Fleet::opencenter(spec);
    consolidate(&fleet, "prod")
        .succeeds()
        .leaks_none(&needles(spec));
    (fleet, generated)
}

#[test]
fn both_customer_prefixes_consolidate_services_managed_services_and_the_shared_folder() {
    for (prefix, root) in [
        (Prefix::CustomersDir, "customers/acme"),
        (Prefix::TopLevel, "acme"),
    ] {
        let spec = acme(prefix);
        let (fleet, _) = Fleet::opencenter(&spec);
        let prod = format!("{root}/applications/overlays/prod");
        let out = consolidate(&fleet, "prod")
            .succeeds()
            .stdout_has("acme/prod: consolidated")
            .stdout_has(
                "services (4): managed-services/alert-proxy, cert-manager, global/harbor, kyverno",
            )
            .stdout_has(
                "namespaces (5): cert-manager, headlamp, keycloak, kyverno, rackspace-system",
            )
            .leaks_none(&needles(&spec));
        assert!(!out.stdout.contains("dev"), "{}", out.stdout);

        let source = ocitool_core::secret::read_source(
            "source",
            &fleet.decrypt(&format!("{prod}/flux-system/oci-creds.yaml")),
        )
        .unwrap();
        assert_eq!(
            source.namespaces(),
            [
                "cert-manager",
                "headlamp",
                "keycloak",
                "kyverno",
                "rackspace-system"
            ]
        );
        // Every per-service copy is gone, the shared folder with it, and nothing lists them.
        for gone in [
            "services/cert-manager/oci-creds.yaml",
            "services/global/harbor/oci-creds.yaml",
            "services/global/harbor/kustomization.yaml",
            "managed-services/alert-proxy/oci-creds.yaml",
        ] {
            assert!(!fleet.exists(&format!("{prod}/{gone}")), "{gone}");
        }
        for service in ["keycloak", "headlamp"] {
            let text = fleet.read(&format!("{prod}/services/{service}/kustomization.yaml"));
            assert!(!text.contains("global"), "{service}: {text}");
            assert!(text.contains(&format!("{service}-values.yaml")), "{text}");
        }
        // Every overlay directory Flux builds still builds.
        for dir in [
            prod.clone(),
            format!("{prod}/services/keycloak"),
            format!("{prod}/services/headlamp"),
            format!("{prod}/services/kyverno"),
            format!("{prod}/managed-services/alert-proxy"),
        ] {
            kustomize(&fleet, &dir);
        }
        // The other cluster was not touched; a second run changes nothing.
        assert!(fleet.exists(&format!(
            "{root}/applications/overlays/dev/services/global/harbor/oci-creds.yaml"
        )));
        let settled = fleet.snapshot();
        consolidate(&fleet, "prod")
            .succeeds()
            .stdout_has("acme/prod: already consolidated");
        assert_eq!(fleet.snapshot(), settled, "{root}: a second run is a no-op");

        // Every cluster of the customer, without naming one.
        fleet
            .run("consolidate.rhai")
            .set("customer", "acme")
            .set("require_reflector", "false")
            .set("prepare", "true")
            .succeeds()
            .stdout_has("acme/dev: consolidated")
            .stdout_has("acme/prod: already consolidated");
    }
}

#[test]
fn unknown_and_ambiguous_customers_are_refused_naming_the_places() {
    let spec = acme(Prefix::CustomersDir);
    let (fleet, _) = Fleet::opencenter(&spec);
    fleet
        .run("validate.rhai")
        .set("customer", "acne")
        .fails(1)
        .stderr_has("unknown customer `acne`")
        .stderr_has("customers here: acme");
    fleet
        .run("validate.rhai")
        .set("customer", "acme")
        .set("cluster", "qa")
        .fails(1)
        .stderr_has(
            "there is no customers/acme/applications/overlays/qa/ (clusters there: dev, prod)",
        );
    std::fs::create_dir_all(fleet.path().join("acme/applications/overlays/prod")).unwrap();
    let before = fleet.snapshot();
    consolidate(&fleet, "prod").fails(1).stderr_has(
        "customer `acme` is ambiguous: both customers/acme/applications/overlays/ and \
         acme/applications/overlays/ exist",
    );
    assert_eq!(fleet.snapshot(), before);
}

#[test]
fn other_secrets_for_the_same_registry_are_reported_by_consolidate_and_validate() {
    let spec = Spec::standard(None);
    let (fleet, _) = Fleet::opencenter(&spec);
    let out = consolidate_single(&fleet)
        .succeeds()
        .leaks_none(&needles(&spec));
    for service in ["cert-manager", "kyverno"] {
        let line = format!(
            "also carrying {REGISTRY}: applications/overlays/prod/services/{service}/registry-credentials.yaml \
             (Secret registry-credentials); not consolidated"
        );
        assert!(out.stdout.contains(&line), "{line}:\n{}", out.stdout);
    }
    let validation = fleet
        .run("validate.rhai")
        .set("cluster", "prod")
        .output()
        .leaks_none(&needles(&spec));
    let line = validation
        .stdout
        .lines()
        .find(|l| l.contains("services/kyverno/registry-credentials.yaml"))
        .unwrap_or_else(|| panic!("no finding:\n{}", validation.stdout));
    assert!(
        line.starts_with("warning")
            && line.contains(&format!(
                "Secret `registry-credentials` also carries {REGISTRY}"
            )),
        "{line}"
    );
    assert!(
        validation
            .stdout
            .contains("--set also=registry-credentials")
    );
}

fn rotate(fleet: &Fleet, also: Option<&str>) -> support::Cmd {
    let cmd = fleet
        .run("rotate.rhai")
        .set("customer", "acme")
        .set("cluster", "prod")
        .set("verify_login", "false")
        .set("registry", REGISTRY)
        .set("username", "robot$opencenter+rotated")
        .set("password_file", "-")
        .stdin(NEW_PASSWORD);
    match also {
        Some(names) => cmd.set("also", names),
        None => cmd,
    }
}

fn fingerprint_of(fleet: &Fleet, rel: &str) -> String {
    ocitool_core::secret::read_credentials(rel, &fleet.decrypt(rel), None)
        .unwrap()
        .fingerprint(REGISTRY)
        .unwrap()
}

#[test]
fn rotate_reports_other_secrets_on_the_old_credential_and_rotates_them_with_also() {
    let spec = acme(Prefix::CustomersDir);
    let (fleet, generated) = consolidated(&spec);
    let prod = spec.overlay("prod");
    let kyverno = format!("{prod}/services/kyverno/registry-credentials.yaml");
    let cert_manager = format!("{prod}/services/cert-manager/registry-credentials.yaml");
    let old = fingerprint_of(&fleet, &kyverno);
    let before = fleet.read(&kyverno);

    rotate(&fleet, None)
        .succeeds()
        .leaks_none(&needles(&spec))
        .stdout_has("acme/prod: rotated")
        .stdout_has(&format!(
            "still carries the old credential ({old}): {kyverno} (Secret registry-credentials); rotate it with \
             --set also=registry-credentials"
        ));
    assert_eq!(fleet.read(&kyverno), before, "only reported");
    // Tracking the old credential names the other Secrets still carrying it.
    fleet
        .run("rotate.rhai")
        .set("customer", "acme")
        .set("fingerprint", &old)
        .succeeds()
        .stdout_has("acme/prod: clear")
        .stdout_has(&format!("also in {kyverno} (not consolidated"));

    // With also=: both other Secrets follow, encrypted for the overlay's own recipient.
    let dry = rotate(&fleet, Some("registry-credentials"))
        .dry_run()
        .succeeds()
        .stdout_has(&format!("also would be rotated: {kyverno}"));
    assert_eq!(fleet.read(&kyverno), before, "{}", dry.stdout);
    rotate(&fleet, Some("registry-credentials"))
        .succeeds()
        .stdout_has(&format!("also rotated: {cert_manager}"))
        .stdout_has(&format!("also rotated: {kyverno}"))
        .leaks_none(&needles(&spec));
    let new = fingerprint_of(&fleet, &format!("{prod}/flux-system/oci-creds.yaml"));
    assert_ne!(new, old);
    for file in [&kyverno, &cert_manager] {
        assert_eq!(fingerprint_of(&fleet, file), new, "{file}");
        let doc: serde_yaml::Value = serde_yaml::from_str(&fleet.read(file)).unwrap();
        assert_eq!(
            doc["sops"]["age"][0]["recipient"].as_str().unwrap(),
            generated.recipients[&prod],
            "{file}: the overlay's .sops.yaml rule"
        );
        let value = doc["stringData"][".dockerconfigjson"].as_str().unwrap();
        assert!(
            value.starts_with("ENC[AES256_GCM,"),
            "{file}: stays in stringData, encrypted"
        );
    }
    fleet.assert_no_plaintext(&needles(&spec));

    // A second run changes nothing and reports nothing stale.
    let settled = fleet.snapshot();
    let again = rotate(&fleet, Some("registry-credentials"))
        .succeeds()
        .stdout_has("acme/prod: nothing to change");
    assert!(!again.stdout.contains("old credential"), "{}", again.stdout);
    assert_eq!(fleet.snapshot(), settled);
}

#[test]
fn a_flux_folder_left_with_nothing_to_apply_is_warned_about() {
    let spec = Spec::standard(None);
    let (fleet, _) = Fleet::opencenter(&spec);
    let folder = "applications/overlays/prod/managed-services/alert-proxy";
    std::fs::remove_file(fleet.path().join(folder).join("alert-proxy-values.yaml")).unwrap();
    fleet.write(
        &format!("{folder}/kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - oci-creds.yaml\n",
    );
    consolidate_single(&fleet)
        .dry_run()
        .succeeds()
        .stderr_has(&format!(
            "{folder}/oci-creds.yaml: it is all that {folder}/kustomization.yaml lists, and Flux Kustomization \
             `alert-proxy` (applications/overlays/prod/managed-services/fluxcd/alert-proxy.yaml) builds that folder"
        ));
}
