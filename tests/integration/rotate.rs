//! `scripts/rotate.rhai` end to end on the bundled example fleet (customer acme, clusters prod and
//! dev): rotating, adding and removing one registry's credentials in the consolidated source,
//! reading the password from a file or stdin, the fleet-wide fingerprint report, and that no
//! password ever shows up in output or in a file.

use crate::support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;
use support::{Fleet, Output};

const HARBOR: &str = "harbor.acme.example";
const PROD_USER: &str = "robot$acme+flux-prod";
const PROD_SOURCE: &str = "acme/applications/overlays/prod/flux-system/oci-creds.yaml";
const DEV: &str = "acme/applications/overlays/dev";
/// Rotate prod's Harbor credentials with the password on standard input.
const PROD_HARBOR_FROM_STDIN: [(&str, &str); 4] = [
    ("cluster", "prod"),
    ("registry", HARBOR),
    ("username", PROD_USER),
    ("password_file", "-"),
];
const NEW_PASSWORD: &str = "rotated-harbor-Pw9Xk2Lm7Qz4";

/// The example fleet with the given clusters consolidated.
fn consolidated(clusters: &[&str]) -> Fleet {
    let fleet = Fleet::example();
    for cluster in clusters {
        fleet
            .run("consolidate.rhai")
            .set("customer", "acme")
            .set("cluster", cluster)
            .succeeds();
    }
    fleet
}

/// A private password file outside the fleet (so the fleet's plaintext check stays meaningful).
fn password_file(password: &str) -> (tempfile::TempDir, String) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("password");
    std::fs::write(&path, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (dir, path.to_str().unwrap().to_string())
}

/// `rotate.rhai` for acme with the given `--set` pairs. The example's registries do not exist, so
/// the login check of the new credential is off (the live tier, `e2e::registry`, runs it).
fn rotate(fleet: &Fleet, sets: &[(&str, &str)]) -> support::Cmd {
    sets.iter().fold(
        fleet
            .run("rotate.rhai")
            .set("customer", "acme")
            .set("verify_login", "false"),
        |cmd, (k, v)| cmd.set(k, v),
    )
}

/// Every secret that must never appear: the example's and the new password.
fn needles() -> Vec<String> {
    let mut all = ocitool_devkit::fleetgen::FleetSpec::example().secret_needles();
    all.extend(support::example_passwords());
    all.push(NEW_PASSWORD.to_string());
    all
}

/// The decrypted source Secret: its metadata and its `auths` map.
fn source(fleet: &Fleet, rel: &str) -> (Yaml, Json) {
    let doc: Yaml = serde_yaml::from_str(&fleet.decrypt(rel)).unwrap();
    let encoded = doc["data"][".dockerconfigjson"].as_str().unwrap();
    let json: Json = serde_json::from_slice(&BASE64.decode(encoded).unwrap()).unwrap();
    (doc["metadata"].clone(), json["auths"].clone())
}

/// The `old:`/`new:` fingerprint a rotation printed.
fn printed(out: &Output, label: &str) -> String {
    let line = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .expect(label);
    line.split_whitespace().nth(1).unwrap().to_string()
}

#[test]
fn rotating_one_registry_keeps_everything_else_and_leaks_nothing() {
    let fleet = consolidated(&["prod"]);
    let (meta_before, auths_before) = source(&fleet, PROD_SOURCE);
    let (_dir, file) = password_file(NEW_PASSWORD);
    let sets = [
        ("cluster", "prod"),
        ("registry", HARBOR),
        ("username", PROD_USER),
        ("password_file", file.as_str()),
    ];
    let out = rotate(&fleet, &sets)
        .succeeds()
        .stdout_has(&format!("acme/prod: rotated {HARBOR}"))
        .leaks_none(&needles());
    assert_ne!(printed(&out, "old:"), printed(&out, "new:"));
    assert!(printed(&out, "new:").starts_with("v2:"), "{}", out.stdout);

    let (meta_after, auths_after) = source(&fleet, PROD_SOURCE);
    assert_eq!(
        meta_after, meta_before,
        "labels, annotations and namespaces are kept"
    );
    assert_eq!(auths_after[HARBOR]["password"], NEW_PASSWORD);
    assert_eq!(auths_after[HARBOR]["username"], PROD_USER);
    assert_eq!(auths_after["ghcr.io"], auths_before["ghcr.io"]);
    fleet.assert_no_plaintext(&needles());

    // The same password again: nothing to change, the ciphertext is left byte for byte.
    let ciphertext = fleet.read(PROD_SOURCE);
    rotate(&fleet, &sets)
        .succeeds()
        .stdout_has("nothing to change")
        .leaks_none(&needles());
    assert_eq!(fleet.read(PROD_SOURCE), ciphertext);
}

#[test]
fn the_password_can_come_from_standard_input() {
    let fleet = consolidated(&["prod"]);
    rotate(&fleet, &PROD_HARBOR_FROM_STDIN)
        .stdin(&format!("{NEW_PASSWORD}\n"))
        .succeeds()
        .leaks_none(&needles());
    assert_eq!(
        source(&fleet, PROD_SOURCE).1[HARBOR]["password"],
        NEW_PASSWORD
    );
    fleet.assert_no_plaintext(&needles());
}

#[test]
fn an_empty_password_is_refused_and_nothing_changes() {
    let fleet = consolidated(&["prod"]);
    let before = fleet.snapshot();
    rotate(&fleet, &PROD_HARBOR_FROM_STDIN)
        .stdin("\n")
        .fails(1)
        .stderr_has("empty");
    assert!(fleet.snapshot() == before);
}

#[test]
fn a_registry_the_source_lacks_is_refused_unless_added_on_purpose() {
    let fleet = consolidated(&["prod"]);
    let before = fleet.snapshot();
    // A typo of harbor.acme.example: without `add` nothing is written and the old credential stays.
    let typo = [
        ("cluster", "prod"),
        ("registry", "harbor.acme.exmaple"),
        ("username", "robot"),
        ("password_file", "-"),
    ];
    rotate(&fleet, &typo)
        .stdin(&format!("{NEW_PASSWORD}\n"))
        .fails(1)
        .stderr_has("has no registry harbor.acme.exmaple (it has ghcr.io, harbor.acme.example)")
        .stderr_has("--set add=true")
        .leaks_none(&needles());
    assert!(fleet.snapshot() == before);
    let added = rotate(&fleet, &[typo.as_slice(), &[("add", "true")]].concat())
        .stdin(&format!("{NEW_PASSWORD}\n"))
        .succeeds()
        .stdout_has("acme/prod: added harbor.acme.exmaple")
        .leaks_none(&needles());
    assert_eq!(printed(&added, "old:"), "(absent)");
    fleet.assert_no_plaintext(&needles());
}

#[test]
fn a_dry_run_shows_what_changes_in_the_credentials_not_ciphertext() {
    let fleet = consolidated(&["prod"]);
    let preview = rotate(&fleet, &PROD_HARBOR_FROM_STDIN)
        .stdin(&format!("{NEW_PASSWORD}\n"))
        .dry_run()
        .succeeds()
        .leaks_none(&needles());
    let line = format!("  {HARBOR}: {PROD_USER} v2:40e3f3ea34a1 → {PROD_USER} v2:");
    assert!(preview.stdout.contains(&line), "{}", preview.stdout);
    assert!(!preview.stdout.contains("ENC["), "{}", preview.stdout);
    // --diff raw: the file diff itself (sops metadata and all, Secret values masked).
    let raw = rotate(&fleet, &PROD_HARBOR_FROM_STDIN)
        .stdin(&format!("{NEW_PASSWORD}\n"))
        .dry_run()
        .args(&["--diff", "raw"])
        .succeeds()
        .leaks_none(&needles());
    assert!(
        raw.stdout.contains("-----BEGIN AGE ENCRYPTED FILE-----") && !raw.stdout.contains(&line),
        "{}",
        raw.stdout
    );
}

#[test]
fn a_skipped_login_check_is_said() {
    let fleet = consolidated(&["prod"]);
    rotate(&fleet, &PROD_HARBOR_FROM_STDIN)
        .stdin(&format!("{NEW_PASSWORD}\n"))
        .succeeds()
        .stderr_has("login check of the new harbor.acme.example credential skipped (--set verify_login=false)");
}

#[test]
fn a_password_on_the_command_line_is_refused_without_echoing_it() {
    let fleet = Fleet::example();
    let out = rotate(
        &fleet,
        &[("registry", HARBOR), ("password", "cli-secret-Hx81")],
    )
    .fails(2);
    assert!(!out.stdout.contains("cli-secret-Hx81") && !out.stderr.contains("cli-secret-Hx81"));
}

#[test]
fn remove_drops_only_that_registry() {
    let fleet = consolidated(&["prod"]);
    let (_, before) = source(&fleet, PROD_SOURCE);
    rotate(
        &fleet,
        &[
            ("cluster", "prod"),
            ("registry", "ghcr.io"),
            ("remove", "true"),
        ],
    )
    .succeeds()
    .stdout_has("acme/prod: removed ghcr.io")
    .leaks_none(&needles());
    let (_, after) = source(&fleet, PROD_SOURCE);
    assert!(after.get("ghcr.io").is_none());
    assert_eq!(after[HARBOR], before[HARBOR]);
}

#[test]
fn without_a_cluster_only_consolidated_clusters_change_and_the_report_tracks_the_rest() {
    let fleet = consolidated(&["prod"]);
    let dev_before = fleet.snapshot_under(DEV);
    let (_dir, file) = password_file(NEW_PASSWORD);
    let sets = [
        ("registry", "ghcr.io"),
        ("username", "acme-bot"),
        ("password_file", file.as_str()),
    ];
    let out = rotate(&fleet, &sets)
        .succeeds()
        .stdout_has("acme/prod: rotated ghcr.io")
        .stdout_has("acme/dev: not consolidated; run consolidate.rhai first")
        .stdout_has("2 cluster(s): 1 not consolidated; run consolidate.rhai first, 1 rotated")
        .leaks_none(&needles());
    assert!(fleet.snapshot_under(DEV) == dev_before, "dev was touched");

    // Consolidate dev now: it still carries the old ghcr.io token, prod no longer does.
    fleet
        .run("consolidate.rhai")
        .set("customer", "acme")
        .set("cluster", "dev")
        .succeeds();
    let old = printed(&out, "old:");
    let before = fleet.snapshot();
    rotate(&fleet, &[("fingerprint", old.as_str())])
        .succeeds()
        .stdout_has("acme/dev: still carries it (ghcr.io)")
        .stdout_has("acme/prod: clear")
        .stdout_has("1 of 2 consolidated cluster(s) still carry")
        .leaks_none(&needles());
    assert!(fleet.snapshot() == before, "a report changes nothing");
}

#[test]
fn dry_run_writes_nothing_and_a_password_file_others_can_read_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let fleet = consolidated(&["prod"]);
    let before = fleet.snapshot();
    let (_dir, file) = password_file(NEW_PASSWORD);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let sets = [
        ("cluster", "prod"),
        ("registry", HARBOR),
        ("username", PROD_USER),
        ("password_file", file.as_str()),
    ];
    rotate(&fleet, &sets)
        .dry_run()
        .succeeds()
        .stdout_has(&format!("acme/prod: would be rotated {HARBOR}"))
        .stderr_has("dry run")
        .stderr_has("accessible to other users (mode 644)")
        .leaks_none(&needles());
    assert!(fleet.snapshot() == before);
}
