//! consolidate.rhai and validate.rhai on an openCenter-shaped fleet (fleetgen::opencenter): sops
//! configs as sops finds them (the overlay's own `.sops.yaml`), the prerequisites checked before
//! anything is written, and `--set prepare=true` making them true. Real sops, age and kubectl.

use crate::support::{self, Fleet};
use ocitool_devkit::fleetgen::opencenter::Spec;

const PROD: &str = "applications/overlays/prod";
const SOURCE: &str = "applications/overlays/prod/flux-system/oci-creds.yaml";

/// The single-customer fleet as openCenter lays it out: services with their own `oci-creds.yaml`,
/// a shared `services/global/harbor/oci-creds.yaml` included by keycloak and headlamp, and a
/// managed service.
fn spec() -> Spec {
    Spec::standard(None)
}

fn consolidate(fleet: &Fleet) -> support::Cmd {
    fleet
        .run("consolidate.rhai")
        .set("cluster", "prod")
        .set("require_reflector", "false")
}

fn yaml(text: &str) -> serde_yaml::Value {
    serde_yaml::from_str(text).unwrap()
}

fn recipients(encrypted: &str) -> Vec<String> {
    yaml(encrypted)["sops"]["age"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r["recipient"].as_str().unwrap().to_string())
        .collect()
}

fn kustomize(fleet: &Fleet, dir: &str) -> String {
    ocitool_adapters::kustomize::build(&fleet.path().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e:#}"))
}

#[test]
fn consolidate_refuses_before_writing_and_prints_the_exact_fix() {
    let (fleet, generated) = Fleet::opencenter(&spec());
    let before = fleet.snapshot();
    let out = consolidate(&fleet).fails(1).leaks_none(&spec().passwords());
    let prod_key = &generated.recipients[PROD];
    for needle in [
        format!("{PROD}/.sops.yaml: no creation rule matches {SOURCE}"),
        "`flux-system/oci-creds.yaml`".to_string(),
        format!("add this creation rule at the top of `creation_rules:` in {PROD}/.sops.yaml"),
        r"- path_regex: '^flux-system/oci-creds\.yaml$'".to_string(),
        "encrypted_regex: ^(data|stringData)$".to_string(),
        format!("age: {prod_key}"),
        format!(
            "Flux Kustomization `flux-system` ({PROD}/flux-system/gotk-sync.yaml) applies {PROD}/flux-system \
             without `spec.decryption.provider: sops`"
        ),
        format!("add this patch to {PROD}/flux-system/kustomization.yaml"),
        "path: /spec/decryption".to_string(),
        "name: sops-age".to_string(),
        "--set prepare=true".to_string(),
    ] {
        assert!(
            out.stderr.contains(&needle),
            "stderr lacks {needle:?}:\n{}",
            out.stderr
        );
    }
    assert_eq!(fleet.snapshot(), before, "nothing may be written");
}

#[test]
fn prepare_edits_both_files_and_the_overlay_rule_encrypts_the_source() {
    let (fleet, generated) = Fleet::opencenter(&spec());
    let prod_key = generated.recipients[PROD].clone();
    // A root rule that would match the source too, for the platform admin only: sops run from
    // the repository root would use it; run from the overlay it must not.
    let root = fleet.read(".sops.yaml").replacen(
        "creation_rules:\n",
        &format!(
            "creation_rules:\n  - path_regex: .*\\.ya?ml$\n    encrypted_regex: ^(data|stringData)$\n    age: {}\n",
            generated.admin_recipient
        ),
        1,
    );
    fleet.write(".sops.yaml", &root);
    let overlay_sops = fleet.read(&format!("{PROD}/.sops.yaml"));
    let sync = fleet.read(&format!("{PROD}/flux-system/gotk-sync.yaml"));
    let before = fleet.snapshot();

    let dry = consolidate(&fleet)
        .set("prepare", "true")
        .dry_run()
        .succeeds()
        .leaks_none(&spec().passwords());
    for needle in [
        format!("+++ b/{PROD}/.sops.yaml"),
        r"+  - path_regex: '^flux-system/oci-creds\.yaml$'".to_string(),
        format!("+++ b/{PROD}/flux-system/kustomization.yaml"),
        "+        path: /spec/decryption".to_string(),
        format!(
            "diff --ocitool a/{SOURCE} b/{SOURCE} (create)\n  registry.opencenter.example: added, "
        ),
    ] {
        assert!(
            dry.stdout.contains(&needle),
            "diff lacks {needle:?}:\n{}",
            dry.stdout
        );
    }
    assert!(
        !dry.stdout
            .contains(&format!("b/{PROD}/flux-system/gotk-sync.yaml")),
        "bootstrap output is never edited"
    );
    assert_eq!(fleet.snapshot(), before, "a dry run changes nothing");

    consolidate(&fleet)
        .set("prepare", "true")
        .succeeds()
        .stdout_has("prod: consolidated")
        .stdout_has(&format!(
            "prepared: {PROD}/.sops.yaml, {PROD}/flux-system/kustomization.yaml"
        ))
        .leaks_none(&spec().passwords());

    let source = fleet.read(SOURCE);
    assert_eq!(
        recipients(&source),
        std::slice::from_ref(&prod_key),
        "the overlay's rule, not the root's"
    );
    let value = yaml(&source)["data"][".dockerconfigjson"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(value.starts_with("ENC[AES256_GCM,"), "data is encrypted");
    let spec_read = ocitool_core::secret::read_source("source", &fleet.decrypt(SOURCE)).unwrap();
    assert_eq!(
        spec_read.namespaces(),
        [
            "cert-manager",
            "headlamp",
            "keycloak",
            "kyverno",
            "rackspace-system"
        ]
    );

    // The rule was prepended and nothing else in the config changed; bootstrap output is untouched.
    let edited = fleet.read(&format!("{PROD}/.sops.yaml"));
    let inserted = format!(
        "  # Added by ocitool: the consolidated registry Secret, values encrypted.\n  - path_regex: \
         '^flux-system/oci-creds\\.yaml$'\n    encrypted_regex: ^(data|stringData)$\n    age: {prod_key}\n"
    );
    assert_eq!(
        edited,
        overlay_sops.replacen(
            "creation_rules:\n",
            &format!("creation_rules:\n{inserted}"),
            1
        )
    );
    assert_eq!(
        fleet.read(&format!("{PROD}/flux-system/gotk-sync.yaml")),
        sync
    );

    // Flux applies the patched bootstrap: the flux-system Kustomization now decrypts.
    let built = kustomize(&fleet, &format!("{PROD}/flux-system"));
    let flux_system = ocitool_core::manifest::parse_documents("built", &built)
        .unwrap()
        .into_iter()
        .find(|d| d["kind"] == "Kustomization" && d["metadata"]["name"] == "flux-system")
        .expect("the flux-system Kustomization is built");
    assert_eq!(flux_system["spec"]["decryption"]["provider"], "sops");
    assert_eq!(
        flux_system["spec"]["decryption"]["secretRef"]["name"],
        "sops-age"
    );
    assert!(kustomize(&fleet, PROD).contains("name: flux-system"));

    // Once prepared and consolidated, a second run changes nothing and needs no prepare.
    let settled = fleet.snapshot();
    consolidate(&fleet)
        .succeeds()
        .stdout_has("prod: already consolidated");
    assert_eq!(fleet.snapshot(), settled);
}

#[test]
fn a_weak_root_rule_is_refused_naming_the_file_and_the_rule() {
    let (fleet, _) = Fleet::opencenter(&spec());
    std::fs::remove_file(fleet.path().join(PROD).join(".sops.yaml")).unwrap();
    // The root service rule, widened to reach flux-system/, keeps its weak encrypted_regex.
    let widened = fleet.read(".sops.yaml").replace(
        "(managed-services|services)/.*/",
        "(flux-system|managed-services|services)/(.*/)?",
    );
    fleet.write(".sops.yaml", &widened);
    let before = fleet.snapshot();
    consolidate(&fleet)
        .fails(1)
        .stderr_has(&format!(
            ".sops.yaml: creation rule #1 (path_regex `applications/overlays/[^/]+/(flux-system|managed-services|services)/(.*/)?.*\\.ya?ml$`) \
             applies to {SOURCE} and would leave data..dockerconfigjson and stringData..dockerconfigjson in clear text \
             (encrypted_regex: ^(secret)$)"
        ));
    assert_eq!(fleet.snapshot(), before);

    // prepare puts an exact rule for the source first, so the weak one no longer applies to it.
    consolidate(&fleet).set("prepare", "true").succeeds();
    assert!(
        fleet
            .read(".sops.yaml")
            .contains(r"- path_regex: '^applications/overlays/prod/flux-system/oci-creds\.yaml$'")
    );
    let value = yaml(&fleet.read(SOURCE))["data"][".dockerconfigjson"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(value.starts_with("ENC[AES256_GCM,"));
}

#[test]
fn validate_checks_recipients_against_the_nearest_config() {
    let (fleet, generated) = Fleet::opencenter(&spec());
    consolidate(&fleet).set("prepare", "true").succeeds();
    let validate = || fleet.run("validate.rhai").set("cluster", "prod").output();
    let out = validate();
    for wrong in [
        "assigns [",
        "no creation rule",
        "without `spec.decryption.provider: sops`",
    ] {
        assert!(!out.stdout.contains(wrong), "{wrong}:\n{}", out.stdout);
    }
    // The overlay's config now names dev's key for the source: validate reads that config.
    let dev_key = &generated.recipients["applications/overlays/dev"];
    let prod_key = &generated.recipients[PROD];
    let config = format!("{PROD}/.sops.yaml");
    let text =
        fleet
            .read(&config)
            .replacen(&format!("age: {prod_key}"), &format!("age: {dev_key}"), 1);
    fleet.write(&config, &text);
    let out = validate().code(1);
    let expected = format!(
        "encrypted for [{prod_key}] but {config} (creation rule #1 (path_regex `^flux-system/oci-creds\\.yaml$`)) \
         assigns [{dev_key}]; run `sops updatekeys flux-system/oci-creds.yaml` from {PROD}"
    );
    assert!(out.stdout.contains(&expected), "{}", out.stdout);
}
