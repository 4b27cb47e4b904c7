//! `-o json`: every bundled workflow prints one document on stdout that docs/output.schema.json
//! describes, in success, dry run, per-cluster failure and early-error runs alike.

use crate::support;

use serde_json::Value;
use std::path::Path;
use support::{Fleet, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(Path::new(ROOT).join("docs/output.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

/// The document of `out`, checked against the schema; it must be of `kind`.
fn conforming(out: &Output, kind: &str) -> Value {
    let doc = out.document();
    let errors: Vec<String> = validator()
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{kind}: {errors:#?}\n{doc:#}");
    assert_eq!(doc["apiVersion"], "ocitool/v1");
    assert_eq!(doc["kind"], kind);
    doc
}

#[test]
fn the_schema_rejects_what_it_does_not_describe() {
    let validator = validator();
    let good = serde_json::json!({"apiVersion": "ocitool/v1", "kind": "Validation", "status": "succeeded",
        "dryRun": false, "changes": [], "failures": [], "clusters": [], "errors": 0});
    assert!(validator.is_valid(&good));
    for (key, bad) in [
        ("apiVersion", serde_json::json!("v1")),
        ("status", serde_json::json!("ok")),
        (
            "changes",
            serde_json::json!([{"path": "a", "kind": "rename"}]),
        ),
    ] {
        let mut doc = good.clone();
        doc[key] = bad;
        assert!(!validator.is_valid(&doc), "{key}");
    }
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("errors");
    assert!(
        !validator.is_valid(&missing),
        "a Validation needs its fields"
    );
}

#[test]
fn consolidation_rotation_and_validation_documents_conform() {
    let fleet = Fleet::example();
    let dry = fleet
        .run("consolidate.rhai")
        .set("customer", "acme")
        .dry_run()
        .json()
        .succeeds();
    let doc = conforming(&dry, "Consolidation");
    assert_eq!(doc["dryRun"], true);
    let registry = &doc["clusters"][1]["registries"][0];
    assert!(
        registry["fingerprint"].as_str().unwrap().starts_with("v2:"),
        "{registry}"
    );
    let done = fleet
        .run("consolidate.rhai")
        .set("customer", "acme")
        .json()
        .succeeds();
    assert_eq!(
        conforming(&done, "Consolidation")["changes"]
            .as_array()
            .unwrap()
            .len(),
        52
    );

    let valid = fleet
        .run("validate.rhai")
        .set("customer", "acme")
        .json()
        .succeeds();
    assert_eq!(conforming(&valid, "Validation")["errors"], 0);

    let fingerprint = doc["clusters"][1]["registries"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let report = fleet
        .run("rotate.rhai")
        .set("customer", "acme")
        .set("fingerprint", &fingerprint)
        .json()
        .succeeds();
    let rotation = conforming(&report, "Rotation");
    assert_eq!(rotation["fingerprint"]["clusters"][1]["status"], "carrying");
    let rotated = fleet
        .run("rotate.rhai")
        .set("customer", "acme")
        .set("registry", "ghcr.io")
        .set("username", "robot")
        .set("password_file", "-")
        .set("verify_login", "false")
        .stdin("schema-test-password-3x9\n")
        .json()
        .succeeds()
        .leaks_none(&["schema-test-password-3x9".to_string()]);
    let rotation = conforming(&rotated, "Rotation");
    assert_eq!(
        (rotation["registry"].as_str(), rotation["username"].as_str()),
        (Some("ghcr.io"), Some("robot"))
    );
}

#[test]
fn failed_clusters_and_failed_runs_conform() {
    let (fleet, out) = support::consolidation_with_a_failed_cluster();
    let doc = conforming(&out, "Consolidation");
    assert_eq!(
        (
            doc["status"].as_str(),
            doc["failures"][0]["cluster"].as_str()
        ),
        (Some("failed"), Some("acme/dev"))
    );

    let stopped = fleet
        .run("consolidate.rhai")
        .set("customer", "nobody")
        .json()
        .fails(1);
    let doc = conforming(&stopped, "Consolidation");
    assert!(
        doc["error"]
            .as_str()
            .unwrap()
            .contains("unknown customer `nobody`"),
        "{doc}"
    );
    assert_eq!(doc["changes"], serde_json::json!([]));
}

#[test]
fn deployment_and_verification_documents_conform() {
    let base = Fleet::empty();
    let out = base.run("deploy-reflector.rhai").json().succeeds();
    assert_eq!(
        conforming(&out, "ReflectorDeployment")["results"][0]["status"],
        "deployed"
    );

    let fleet = Fleet::example();
    // The example's prod wiring is hand-written: the run is blocked, and still one document.
    let wired = fleet
        .run("deploy-reflector.rhai")
        .set("customer", "acme")
        .set("cluster", "prod")
        .json()
        .fails(1);
    let doc = conforming(&wired, "ReflectorDeployment");
    assert_eq!(
        (doc["base"].as_bool(), doc["results"][0]["status"].as_str()),
        (Some(false), Some("blocked"))
    );

    let dir = tempfile::tempdir().unwrap();
    support::kubectl_snapshot(dir.path(), "broken");
    let verify = fleet
        .run("verify-cluster.rhai")
        .set("snapshot_dir", dir.path().to_str().unwrap())
        .json()
        .fails(1);
    let doc = conforming(&verify, "Verification");
    assert!(doc["errors"].as_u64().unwrap() > 0);
    assert!(
        verify.stderr.contains("error(s) found"),
        "{}",
        verify.stderr
    );
}

#[test]
fn other_secrets_in_consolidation_and_rotation_documents_conform() {
    let spec = ocitool_devkit::fleetgen::opencenter::Spec::standard(None);
    let (fleet, _) = Fleet::opencenter(&spec);
    let out = crate::layouts::consolidate_single(&fleet).json().succeeds();
    let doc = conforming(&out, "Consolidation");
    assert_eq!(
        doc["clusters"][0]["others"][0]["secret"], "registry-credentials",
        "{doc:#}"
    );
    let rotate = |also: &str| {
        fleet
            .run("rotate.rhai")
            .set("cluster", "prod")
            .set("verify_login", "false")
            .set("registry", "registry.opencenter.example")
            .set("username", "robot")
            .set("password_file", "-")
            .set("also", also)
            .stdin("demo-oc-schema-Xr8")
            .json()
            .succeeds()
    };
    let doc = conforming(&rotate("nothing-by-this-name"), "Rotation");
    assert_eq!(doc["clusters"][0]["stale"][0]["old"], true, "{doc:#}");
    let doc = conforming(&rotate("registry-credentials"), "Rotation");
    assert_eq!(
        doc["clusters"][0]["also_rotated"].as_array().unwrap().len(),
        2,
        "{doc:#}"
    );
}
