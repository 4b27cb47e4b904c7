//! `scripts/verify-cluster.rhai` through the real binary against a real kube-apiserver: each
//! finding it can report, `measure_lag` with a mirror updater and without one, the read-only RBAC
//! of manifests/rbac/ocitool-verify.yaml (the operator guide's, 5.3: enough, and each rule needed),
//! and the operator guide's own cluster commands.
//!
//! Reflector is a .NET program and cannot run here, and there is no kubelet: the test plays both.
//! It writes the Reflector Deployment's and pod's status through the status subresource, and
//! creates and updates mirrors exactly as Reflector 7.1.288 would ([`reflect`]). verify-cluster
//! runs the machine's kubectl (ocitool's tool lookup) with `KUBECONFIG` pointing at the harness.

use super::{LiveDir, started};
use crate::docs::{self, DocsWorkdir, Expect};
use crate::support::{Fleet, Output};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ocitool_devkit::live::{KubeApi, Kubectl, TokenUser};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const MIRRORED: [&str; 2] = ["team-a", "team-b"];
/// The registry password inside the source: must never show in verify-cluster's output.
const SOURCE_PASSWORD: &str = "e2e-cluster-robot-Fv5Kd8Ws";
const PREFIX: &str = "reflector.v1.k8s.emberstack.com";
const RBAC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/manifests/rbac/ocitool-verify.yaml"
);

/// A started cluster with the namespaces of the scenario and an empty fleet repo for `--repo`.
struct Cluster {
    // Drop order is field order: the servers stop before their temp dir goes.
    api: KubeApi,
    admin: Kubectl,
    repo: Fleet,
    live: LiveDir,
}

impl Cluster {
    #[track_caller]
    fn start(users: &[TokenUser]) -> Cluster {
        let live = LiveDir::new();
        let api = KubeApi::start(live.path(), &live.pki, users).unwrap();
        started(&api.describe());
        let admin = api.admin();
        for ns in ["flux-system", "reflector-system", "team-a", "team-b"] {
            admin.run(&["create", "namespace", ns]).unwrap();
        }
        Cluster {
            api,
            admin,
            repo: Fleet::empty(),
            live,
        }
    }

    /// A healthy cluster: Reflector available and Ready, the source, and up-to-date mirrors.
    #[track_caller]
    fn make_healthy(&self) {
        self.install_reflector();
        self.admin
            .run_with_stdin(
                &["create", "-f", "-"],
                Some(&source_secret(&MIRRORED).to_string()),
            )
            .unwrap();
        for ns in MIRRORED {
            reflect(&self.admin, ns).unwrap();
        }
    }

    /// The chart's Deployment and one pod, their status written as the controllers and kubelet
    /// would (there are none here): available and Ready.
    #[track_caller]
    fn install_reflector(&self) {
        let labels = json!({
            "app.kubernetes.io/name": "reflector",
            "app.kubernetes.io/instance": "reflector"
        });
        let container =
            json!([{ "name": "reflector", "image": "emberstack/kubernetes-reflector:7.1.288" }]);
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "reflector", "namespace": "reflector-system", "labels": labels },
            "spec": {
                "replicas": 1,
                "selector": { "matchLabels": labels },
                "template": { "metadata": { "labels": labels }, "spec": { "containers": container } }
            }
        });
        self.admin
            .run_with_stdin(&["create", "-f", "-"], Some(&deployment.to_string()))
            .unwrap();
        self.set_reflector_available(true);
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "reflector-6d9c8b7f5d-x7k2p", "namespace": "reflector-system", "labels": labels },
            "spec": { "containers": container, "automountServiceAccountToken": false }
        });
        // The ServiceAccount admission plugin refuses pods until kube-controller-manager has
        // created the namespace's `default` ServiceAccount.
        retry("the Reflector pod", || {
            self.admin
                .run_with_stdin(&["create", "-f", "-"], Some(&pod.to_string()))
        });
        let ready = json!({ "status": { "phase": "Running", "conditions": [{ "type": "Ready", "status": "True" }] } });
        self.patch_status("pod/reflector-6d9c8b7f5d-x7k2p", &ready);
    }

    /// The Deployment status the deployment controller writes when its pod is (not) available.
    #[track_caller]
    fn set_reflector_available(&self, available: bool) {
        let status = if available {
            json!({ "status": {
                "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1,
                "availableReplicas": 1, "unavailableReplicas": null,
                "conditions": [{ "type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                                 "message": "Deployment has minimum availability." }]
            }})
        } else {
            json!({ "status": {
                "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": null,
                "availableReplicas": null, "unavailableReplicas": 1,
                "conditions": [{ "type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                                 "message": "Deployment does not have minimum availability." }]
            }})
        };
        self.patch_status("deployment/reflector", &status);
    }

    #[track_caller]
    fn patch_status(&self, object: &str, patch: &Value) {
        self.admin
            .run(&[
                "-n",
                "reflector-system",
                "patch",
                object,
                "--subresource=status",
                "--type=merge",
                "-p",
                &patch.to_string(),
            ])
            .unwrap();
    }

    /// A kubeconfig whose context `live` uses `token`.
    fn kubeconfig(&self, name: &str, token: &str) -> PathBuf {
        self.api
            .kubeconfig_for(&format!("{name}.kubeconfig"), token)
            .unwrap()
    }

    /// `verify-cluster.rhai --set context=live` as the holder of `kubeconfig`, with more `--set`s.
    fn verify(&self, kubeconfig: &Path, sets: &[(&str, &str)]) -> Output {
        let cmd = self
            .repo
            .run("verify-cluster.rhai")
            .set("context", "live")
            .env("KUBECONFIG", kubeconfig.to_str().unwrap());
        let out = sets
            .iter()
            .fold(cmd, |cmd, (k, v)| cmd.set(k, v))
            .output()
            .leaks_none(&[SOURCE_PASSWORD.to_string()]);
        let who = kubeconfig.file_stem().unwrap_or_default().to_string_lossy();
        eprintln!("e2e: verify-cluster as {who} {sets:?}: exit {}", out.code);
        out
    }

    /// A kubeconfig as the operator guide assumes one: contexts `acme-prod` and `acme-dev`
    /// (current: acme-prod), both this cluster as the holder of `token`.
    fn guide_kubeconfig(&self, token: &str) -> String {
        let context =
            |name: &str| format!("- name: {name}\n  context: {{cluster: live, user: live}}\n");
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: live\n  cluster: {{server: \"https://127.0.0.1:{}\", certificate-authority: \"{}\"}}\n\
             users:\n- name: live\n  user: {{token: \"{token}\"}}\ncontexts:\n{}{}current-context: acme-prod\n",
            self.api.port,
            self.live.ca(),
            context("acme-prod"),
            context("acme-dev"),
        )
    }

    fn verify_as_admin(&self) -> Output {
        self.verify(&self.api.admin_kubeconfig, &[])
    }
}

/// The source Secret as Flux applies it: a dockerconfigjson, reflection allowed and automatic
/// for `namespaces`.
fn source_secret(namespaces: &[&str]) -> Value {
    let list = namespaces.join(",");
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {
            "name": "oci-creds", "namespace": "flux-system",
            "annotations": {
                format!("{PREFIX}/reflection-allowed"): "true",
                format!("{PREFIX}/reflection-allowed-namespaces"): list,
                format!("{PREFIX}/reflection-auto-enabled"): "true",
                format!("{PREFIX}/reflection-auto-namespaces"): list,
            }
        },
        "type": "kubernetes.io/dockerconfigjson",
        "data": { ".dockerconfigjson": dockerconfigjson(SOURCE_PASSWORD) }
    })
}

fn dockerconfigjson(password: &str) -> String {
    let auth = BASE64.encode(format!("fleet-bot:{password}"));
    BASE64.encode(json!({ "auths": { "registry.e2e.example": { "auth": auth } } }).to_string())
}

/// What Reflector 7.1.288 does for one auto-reflection into `namespace`
/// (src/ES.Kubernetes.Reflector/Core/Mirroring/ResourceMirror.cs `ResourceReflect`, and
/// `SecretMirror`'s clone and patch): a new mirror is a clone of the source's type and data
/// carrying the annotations auto-reflects "True", reflects "flux-system/oci-creds",
/// reflected-version (the source's resourceVersion) and reflected-at (a JSON-quoted .NET
/// DateTimeOffset); an existing mirror gets those annotations merged into its own and its data
/// replaced, by a JSON patch. Written independently of ocitool's model, which it checks.
fn reflect(admin: &Kubectl, namespace: &str) -> anyhow::Result<String> {
    let source: Value = serde_json::from_str(&admin.run(&[
        "-n",
        "flux-system",
        "get",
        "secret",
        "oci-creds",
        "-o",
        "json",
    ])?)?;
    let version = source["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ours = json!({
        format!("{PREFIX}/auto-reflects"): "True",
        format!("{PREFIX}/reflects"): "flux-system/oci-creds",
        format!("{PREFIX}/reflected-version"): version,
        format!("{PREFIX}/reflected-at"): reflected_at(),
    });
    let existing = admin.run(&[
        "-n",
        namespace,
        "get",
        "secret",
        "oci-creds",
        "-o",
        "json",
        "--ignore-not-found",
    ])?;
    if existing.trim().is_empty() {
        let mirror = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": "oci-creds", "namespace": namespace, "annotations": ours },
            "type": source["type"], "data": source["data"]
        });
        admin.run_with_stdin(&["create", "-f", "-"], Some(&mirror.to_string()))?;
    } else {
        let mirror: Value = serde_json::from_str(&existing)?;
        let mut annotations = mirror["metadata"]["annotations"].clone();
        if !annotations.is_object() {
            annotations = json!({});
        }
        for (key, value) in ours.as_object().unwrap() {
            annotations[key] = value.clone();
        }
        let patch = json!([
            { "op": "replace", "path": "/metadata/annotations", "value": annotations },
            { "op": "replace", "path": "/data", "value": source["data"] },
        ]);
        admin.run(&[
            "-n",
            namespace,
            "patch",
            "secret",
            "oci-creds",
            "--type=json",
            "-p",
            &patch.to_string(),
        ])?;
    }
    Ok(version)
}

/// `JsonConvert.SerializeObject(DateTimeOffset.UtcNow)`: `"2025-03-04T10:15:23.4412345+00:00"`.
fn reflected_at() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+\"%Y-%m-%dT%H:%M:%S.%7N+00:00\""])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Retry `attempt` every 200 ms for up to 60 s (servers on a loaded machine settle slowly).
#[track_caller]
fn retry<T>(what: &str, mut attempt: impl FnMut() -> anyhow::Result<T>) -> T {
    let started = Instant::now();
    loop {
        match attempt() {
            Ok(value) => return value,
            Err(e) if started.elapsed() > Duration::from_secs(60) => panic!("{what}: {e:#}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// A thread that plays Reflector's watch: whenever the source's resourceVersion moves, it
/// reflects the source into every mirrored namespace. Stopped (and joined) by [`Updater::stop`].
struct Updater {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<usize>,
}

impl Updater {
    /// Start watching; the mirrors are taken to be up to date with the source as it is now.
    #[track_caller]
    fn spawn(kubeconfig: PathBuf) -> Updater {
        let admin = Kubectl { kubeconfig };
        let mut reflected = source_version(&admin).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut passes = 0;
            while !flag.load(Ordering::Relaxed) {
                let version = source_version(&admin).unwrap_or_default();
                if !version.is_empty() && version != reflected {
                    // A failed pass (a write conflict) is retried on the next poll, as Reflector would.
                    if MIRRORED
                        .iter()
                        .all(|ns| reflect(&admin, ns).is_ok_and(|v| v == version))
                    {
                        reflected = version;
                        passes += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            passes
        });
        Updater { stop, handle }
    }

    /// Stop the thread; how many times it brought the mirrors up to date.
    fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("updater thread")
    }
}

fn source_version(admin: &Kubectl) -> anyhow::Result<String> {
    admin.run(&[
        "-n",
        "flux-system",
        "get",
        "secret",
        "oci-creds",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ])
}

/// The findings verify-cluster printed: (severity, namespace, message) per table line.
fn findings(out: &Output) -> Vec<(String, String, String)> {
    out.stdout
        .lines()
        .filter_map(|line| {
            let (severity, rest) = line.split_once(char::is_whitespace)?;
            let (scope, message) = rest.trim_start().split_once(char::is_whitespace)?;
            ["info", "warning", "error"]
                .contains(&severity)
                .then(|| (severity.into(), scope.into(), message.trim().into()))
        })
        .collect()
}

/// Expect a finding of `severity` about `scope` whose message contains `phrase`.
#[track_caller]
fn has_finding(out: &Output, severity: &str, scope: &str, phrase: &str) {
    assert!(
        findings(out)
            .iter()
            .any(|(s, n, m)| s == severity && n == scope && m.contains(phrase)),
        "no `{severity} {scope} …{phrase}…` finding\n--- stdout\n{}\n--- stderr\n{}",
        out.stdout,
        out.stderr
    );
}

/// Expect no error finding at all.
#[track_caller]
fn no_errors(out: &Output) {
    let errors: Vec<_> = findings(out)
        .into_iter()
        .filter(|f| f.0 == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{}", out.stderr);
}

#[test]
#[ignore = "live tier: make e2e"]
fn verify_cluster_reports_each_defect_of_a_real_cluster() {
    let cluster = Cluster::start(&[]);
    cluster.make_healthy();

    let healthy = cluster.verify_as_admin().code(0);
    no_errors(&healthy);
    has_finding(
        &healthy,
        "info",
        "reflector-system",
        "Reflector Deployment available (1 replica(s))",
    );
    has_finding(
        &healthy,
        "info",
        "reflector-system",
        "1 Reflector pod(s) Ready",
    );
    has_finding(
        &healthy,
        "info",
        "flux-system",
        "source exists at resourceVersion",
    );
    for ns in MIRRORED {
        has_finding(&healthy, "info", ns, "mirror up to date");
    }

    // Stale: the source changes and nothing reflects it.
    let admin = &cluster.admin;
    let new_data =
        json!({ "data": { ".dockerconfigjson": dockerconfigjson("e2e-cluster-robot-new-Qm2") } });
    admin
        .run(&[
            "-n",
            "flux-system",
            "patch",
            "secret",
            "oci-creds",
            "--type=merge",
            "-p",
            &new_data.to_string(),
        ])
        .unwrap();
    let stale = cluster.verify_as_admin().code(1);
    for ns in MIRRORED {
        has_finding(&stale, "error", ns, "mirror is stale: reflected-version");
        has_finding(&stale, "error", ns, "differs from the source's");
    }
    reflect(admin, "team-a").unwrap();
    let one_stale = cluster.verify_as_admin().code(1);
    has_finding(&one_stale, "info", "team-a", "mirror up to date");
    has_finding(&one_stale, "error", "team-b", "mirror is stale");
    reflect(admin, "team-b").unwrap();

    // Missing: a mirror deleted and not recreated.
    admin
        .run(&["-n", "team-b", "delete", "secret", "oci-creds"])
        .unwrap();
    let missing = cluster.verify_as_admin().code(1);
    has_finding(
        &missing,
        "error",
        "team-b",
        "mirror team-b/oci-creds is missing",
    );
    has_finding(&missing, "info", "team-a", "mirror up to date");
    reflect(admin, "team-b").unwrap();

    // Blocked: a Secret of the same name that is not a mirror, where the source now reflects to.
    admin.run(&["create", "namespace", "team-c"]).unwrap();
    admin
        .run(&[
            "-n",
            "team-c",
            "create",
            "secret",
            "generic",
            "oci-creds",
            "--from-literal=note=hand-made",
        ])
        .unwrap();
    let widened = "team-a,team-b,team-c";
    admin
        .run(&[
            "-n",
            "flux-system",
            "annotate",
            "secret",
            "oci-creds",
            "--overwrite",
            &format!("{PREFIX}/reflection-allowed-namespaces={widened}"),
            &format!("{PREFIX}/reflection-auto-namespaces={widened}"),
        ])
        .unwrap();
    for ns in MIRRORED {
        reflect(admin, ns).unwrap();
    }
    let blocked = cluster.verify_as_admin().code(1);
    has_finding(&blocked, "error", "team-c", "blocked:");
    has_finding(
        &blocked,
        "error",
        "team-c",
        "delete the Secret team-c/oci-creds",
    );
    for ns in MIRRORED {
        has_finding(&blocked, "info", ns, "mirror up to date");
    }
    // The fix the finding names: delete it, and Reflector (here: the test) mirrors the source.
    admin
        .run(&["-n", "team-c", "delete", "secret", "oci-creds"])
        .unwrap();
    reflect(admin, "team-c").unwrap();
    no_errors(&cluster.verify_as_admin().code(0));

    // Reflector unavailable.
    cluster.set_reflector_available(false);
    let down = cluster.verify_as_admin().code(1);
    has_finding(
        &down,
        "error",
        "reflector-system",
        "Reflector Deployment is not available (availableReplicas=0: Deployment does not have minimum availability.)",
    );
    cluster.set_reflector_available(true);
    no_errors(&cluster.verify_as_admin().code(0));
}

/// A static token user in `groups`.
fn user(name: &str, groups: &[&str]) -> TokenUser {
    TokenUser {
        token: format!("{name}-token-{}", std::process::id()),
        name: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

/// The read-only part of the shipped RBAC less one rule, as one variant per rule of the
/// `ocitool-verify` roles: the objects renamed `<name>-without-<k>` and bound to the group
/// `without-<k>`. Each comes with the verb and resource of the rule it lacks.
struct Variant {
    group: String,
    yaml: String,
    verb: String,
    resource: String,
}

fn rbac_variants() -> Vec<Variant> {
    let text = std::fs::read_to_string(RBAC).unwrap();
    let docs: Vec<serde_yaml::Value> = text
        .split("\n---\n")
        .map(|doc| serde_yaml::from_str(doc).unwrap())
        .filter(|doc: &serde_yaml::Value| doc["metadata"]["name"] == "ocitool-verify")
        .collect();
    let rules: Vec<(usize, usize)> = docs
        .iter()
        .enumerate()
        .flat_map(|(d, doc)| {
            let count = doc["rules"].as_sequence().map_or(0, Vec::len);
            (0..count).map(move |r| (d, r))
        })
        .collect();
    let text = |v: &serde_yaml::Value| v.as_str().unwrap().to_string();
    rules
        .into_iter()
        .enumerate()
        .map(|(k, (doc_index, rule_index))| {
            let suffix = format!("without-{k}");
            let rule = &docs[doc_index]["rules"][rule_index];
            let (verb, resource) = (text(&rule["verbs"][0]), text(&rule["resources"][0]));
            let yaml = docs
                .iter()
                .enumerate()
                .map(|(d, doc)| {
                    let mut doc = doc.clone();
                    doc["metadata"]["name"] = format!("ocitool-verify-{suffix}").into();
                    if d == doc_index {
                        doc["rules"].as_sequence_mut().unwrap().remove(rule_index);
                    }
                    if doc.get("roleRef").is_some() {
                        doc["roleRef"]["name"] = format!("ocitool-verify-{suffix}").into();
                        doc["subjects"][0]["name"] = suffix.clone().into();
                    }
                    serde_yaml::to_string(&doc).unwrap()
                })
                .collect::<Vec<_>>()
                .join("---\n");
            Variant {
                group: suffix,
                yaml,
                verb,
                resource,
            }
        })
        .collect()
}

#[test]
#[ignore = "live tier: make e2e"]
fn verify_cluster_needs_every_rule_of_the_documented_read_only_rbac_and_no_more() {
    let reader = user("ocitool-reader", &["ocitool-verify"]);
    let prober = user("ocitool-prober", &["ocitool-verify", "ocitool-measure-lag"]);
    let variants = rbac_variants();
    assert_eq!(variants.len(), 6, "the rules verify-cluster needs");
    let partial: Vec<TokenUser> = variants
        .iter()
        .map(|v| user(&v.group, &[&v.group]))
        .collect();
    let mut users = vec![reader.clone(), prober.clone()];
    users.extend(partial.iter().cloned());
    let cluster = Cluster::start(&users);
    cluster.make_healthy();
    cluster.admin.run(&["apply", "-f", RBAC]).unwrap();
    let as_reader = cluster.kubeconfig("reader", &reader.token);
    let as_prober = cluster.kubeconfig("prober", &prober.token);

    // The read-only role is all verify-cluster needs, its log read included.
    let read = cluster.verify(&as_reader, &[]).code(0);
    no_errors(&read);
    assert!(
        !read.stderr.to_lowercase().contains("forbidden") && !read.stderr.contains("cannot read"),
        "{}",
        read.stderr
    );
    // …and it cannot write: measure_lag's probe annotation is refused.
    let refused = cluster
        .verify(&as_reader, &[("measure_lag", "true"), ("lag_timeout", "5")])
        .code(1);
    assert!(
        refused.stdout.contains("error    lag")
            && refused
                .stdout
                .contains(r#"cannot patch resource "secrets""#),
        "{}\n{}",
        refused.stdout,
        refused.stderr
    );

    // With the measure-lag role and a mirror updater, the lag is measured.
    let updater = Updater::spawn(cluster.api.admin_kubeconfig.clone());
    let lag = cluster.verify(
        &as_prober,
        &[("measure_lag", "true"), ("lag_timeout", "60")],
    );
    let passes = updater.stop();
    lag.code(0).stdout_has("reflection lag: ");
    assert!(passes >= 1, "the updater never reflected the probe");
    // Without one, it times out and says so.
    let timeout = cluster
        .verify(&as_prober, &[("measure_lag", "true"), ("lag_timeout", "2")])
        .code(1);
    assert!(
        timeout
            .stdout
            .contains("error    lag  mirrors had not caught up with resourceVersion"),
        "{}",
        timeout.stdout
    );

    // The probe moved the source on: bring the mirrors up to date again.
    for ns in MIRRORED {
        reflect(&cluster.admin, ns).unwrap();
    }

    // One permission short: kubectl's Forbidden names it, and ocitool says to check RBAC. Only the
    // log is optional: without it verify-cluster warns and still judges the cluster.
    for (variant, token_user) in variants.iter().zip(&partial) {
        cluster.admin.apply(&variant.yaml).unwrap();
        let kubeconfig = cluster.kubeconfig(&variant.group, &token_user.token);
        let out = cluster.verify(&kubeconfig, &[]);
        let named = format!(r#"cannot {} resource "{}""#, variant.verb, variant.resource);
        assert!(
            out.stderr.contains(&named),
            "without {named}: {}",
            out.stderr
        );
        if variant.resource == "pods/log" {
            out.code(0).stderr_has("cannot read Reflector's log");
        } else {
            out.code(1).stderr_has("check RBAC");
        }
    }
}

#[test]
#[ignore = "live tier: make e2e"]
fn the_operator_guide_cluster_commands_run_against_a_real_cluster() {
    const GUIDE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/oci-credentials-with-reflector.md"
    );
    let markdown = std::fs::read_to_string(GUIDE).unwrap();
    let (setup, kubectl): (Vec<_>, Vec<_>) =
        docs::commands_where(&markdown, |text| text.starts_with("kubectl "))
            .into_iter()
            .filter(|c| c.text.starts_with("kubectl "))
            .partition(|c| c.text.contains(" apply -f manifests/rbac/"));
    let live: Vec<_> = docs::doc_commands(&markdown)
        .into_iter()
        .filter(|c| c.expect == Expect::LiveCluster)
        .collect();
    assert!(
        setup.len() == 1 && kubectl.len() >= 7 && live.len() >= 2,
        "the guide's cluster commands: {setup:?} {kubectl:?} {live:?}"
    );
    // Everything but the RBAC set-up runs as a user holding only the guide's RBAC. The `flux`
    // lines are left out: they need Flux's CRDs and controllers, which this cluster does not run.
    let prober = user("ocitool-prober", &["ocitool-verify", "ocitool-measure-lag"]);
    let cluster = Cluster::start(std::slice::from_ref(&prober));
    cluster.make_healthy();
    let workdir = DocsWorkdir::new();
    let run = |command: &docs::DocCommand| {
        let out = workdir
            .run(command)
            .leaks_none(&[SOURCE_PASSWORD.to_string()]);
        eprintln!(
            "e2e: guide line {}: exit {}: {}",
            command.line, out.code, command.text
        );
        out.code(0)
    };
    std::fs::write(
        workdir.kubeconfig(),
        cluster.guide_kubeconfig(&cluster.api.admin_token()),
    )
    .unwrap();
    run(&setup[0]);
    std::fs::write(
        workdir.kubeconfig(),
        cluster.guide_kubeconfig(&prober.token),
    )
    .unwrap();
    let updater = Updater::spawn(cluster.api.admin_kubeconfig.clone());
    let outputs: Vec<(String, Output)> = kubectl
        .iter()
        .chain(&live)
        .map(|c| (c.text.clone(), run(c)))
        .collect();
    assert!(
        updater.stop() >= 1,
        "measure_lag's probe was never reflected"
    );
    let listed = outputs
        .iter()
        .find(|(text, _)| text.contains("custom-columns") && !text.contains("--context"))
        .map(|(_, out)| &out.stdout)
        .unwrap();
    for ns in MIRRORED {
        assert!(
            listed
                .lines()
                .any(|l| l.starts_with(ns) && l.contains("flux-system/oci-creds")),
            "{listed}"
        );
    }
    let lag = outputs
        .iter()
        .find(|(text, _)| text.contains("measure_lag=true"))
        .map(|(_, out)| &out.stdout)
        .unwrap();
    assert!(lag.contains("reflection lag: "), "{lag}");
}
