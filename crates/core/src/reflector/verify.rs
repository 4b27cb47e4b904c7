//! Checking a live cluster against the Reflector model, as pure functions over `kubectl get -o json`.
//!
//! [`ocitool_adapters::kubectl`] fetches the documents; this module turns them into a [`VerifyReport`] of findings,
//! each with the fix to apply. It never talks to a cluster itself and never shows secret data: Secret
//! data is decoded only to be hashed with [`data_fingerprint`], and no finding contains more than that.

use super::model::{
    ExistingSecret, Outcome, ReflectionSettings, SourceSecret, data_fingerprint, plan,
};
use super::{AUTO_NAMESPACES, REFLECTED_VERSION, SourceOptions};
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use regex::Regex;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Ok,
    Warning,
    Error,
}

/// One observation, with the namespace it concerns (if any) and, for problems, the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub namespace: Option<String>,
    pub message: String,
}

/// Everything `verify` found, in check order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    fn push(&mut self, severity: Severity, namespace: Option<&str>, message: impl Into<String>) {
        self.findings.push(Finding {
            severity,
            namespace: namespace.map(String::from),
            message: message.into(),
        });
    }

    /// Findings of exactly `severity`.
    pub fn with_severity(&self, severity: Severity) -> Vec<&Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .collect()
    }

    /// Findings about `namespace`.
    pub fn for_namespace(&self, namespace: &str) -> Vec<&Finding> {
        self.findings
            .iter()
            .filter(|f| f.namespace.as_deref() == Some(namespace))
            .collect()
    }

    /// True when nothing is an error (warnings allowed).
    pub fn is_healthy(&self) -> bool {
        self.findings.iter().all(|f| f.severity != Severity::Error)
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            let label = match finding.severity {
                Severity::Ok => "ok",
                Severity::Warning => "warning",
                Severity::Error => "error",
            };
            let scope = finding.namespace.as_deref().unwrap_or("-");
            writeln!(f, "{label:<7} {scope:<20} {}", finding.message)?;
        }
        Ok(())
    }
}

/// The `kubectl get -o json` documents `verify` needs, and the names they were fetched for.
#[derive(Debug, Clone)]
pub struct ClusterSnapshot {
    /// The source Secret and Reflector namespace the documents below were fetched for.
    pub options: SourceOptions,
    /// `get deployment reflector -n <reflector namespace>`; `None` when kubectl said NotFound.
    pub reflector_deployment: Option<Value>,
    /// `get pods -n <reflector namespace> -l app.kubernetes.io/name=reflector` (a List).
    pub reflector_pods: Value,
    /// `get secret <source name> -n <source namespace>`; `None` when kubectl said NotFound.
    pub source: Option<Value>,
    /// `get secrets -A --field-selector metadata.name=<source name>` (a List).
    pub secrets: Value,
    /// `get namespaces` (a List).
    pub namespaces: Value,
}

/// Check Reflector's health and every namespace the model expects a mirror in.
/// Fails only when a document is not shaped like kubectl's output.
pub fn verify(snapshot: &ClusterSnapshot) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let options = &snapshot.options;
    let (source_namespace, source_name) = (options.source_namespace(), options.source_name());
    let reflector_namespace = options.reflector_namespace();
    check_deployment(
        reflector_namespace,
        snapshot.reflector_deployment.as_ref(),
        &mut report,
    );
    check_pods(reflector_namespace, &snapshot.reflector_pods, &mut report)?;
    let Some(source) = snapshot.source.as_ref() else {
        report.push(
            Severity::Error,
            Some(source_namespace),
            format!(
                "source Secret {source_namespace}/{source_name} does not exist; \
                 check the Flux Kustomization that applies it (`flux get kustomizations -A`)"
            ),
        );
        return Ok(report);
    };
    let source = secret_from_json(source)?;
    report.push(
        Severity::Ok,
        Some(source_namespace),
        format!(
            "source exists at resourceVersion {} with data {}",
            source.resource_version,
            data_fingerprint(&source.data)
        ),
    );
    let secrets = list_items(&snapshot.secrets)?
        .iter()
        .map(secret_from_json)
        .collect::<Result<Vec<_>>>()?;
    let namespaces = namespace_names(&snapshot.namespaces)?;
    check_mirrors(&source, &secrets, &namespaces, &mut report);
    Ok(report)
}

fn check_deployment(namespace: &str, deployment: Option<&Value>, report: &mut VerifyReport) {
    let ns = Some(namespace);
    let Some(deployment) = deployment else {
        report.push(
            Severity::Error,
            ns,
            format!("Reflector Deployment not found; check the reflector HelmRelease (`flux get helmreleases -n {namespace}`)"),
        );
        return;
    };
    let available = deployment["status"]["availableReplicas"]
        .as_u64()
        .unwrap_or(0);
    let condition = find_condition(&deployment["status"]["conditions"], "Available");
    let condition_true = condition.is_some_and(|c| c["status"] == "True");
    if available >= 1 && condition_true {
        report.push(
            Severity::Ok,
            ns,
            format!("Reflector Deployment available ({available} replica(s))"),
        );
        return;
    }
    let why = condition
        .and_then(|c| c["message"].as_str())
        .unwrap_or("no Available condition");
    report.push(
        Severity::Error,
        ns,
        format!(
            "Reflector Deployment is not available (availableReplicas={available}: {why}); nothing is being \
             reflected — check `kubectl -n {namespace} describe deployment` and the pod logs"
        ),
    );
}

fn check_pods(namespace: &str, pods: &Value, report: &mut VerifyReport) -> Result<()> {
    let ns = Some(namespace);
    let items = list_items(pods)?;
    let not_ready: Vec<String> = items
        .iter()
        .filter(|p| !pod_ready(p))
        .map(pod_problem)
        .collect();
    if items.is_empty() {
        report.push(
            Severity::Error,
            ns,
            "no Reflector pods found; check the Deployment's ReplicaSet events",
        );
    } else if not_ready.len() == items.len() {
        report.push(
            Severity::Error,
            ns,
            format!("no Reflector pod is Ready: {}; check `kubectl -n {namespace} logs <pod> --previous`", not_ready.join(", ")),
        );
    } else if !not_ready.is_empty() {
        report.push(
            Severity::Warning,
            ns,
            format!(
                "some Reflector pods are not Ready: {}",
                not_ready.join(", ")
            ),
        );
    } else {
        report.push(
            Severity::Ok,
            ns,
            format!("{} Reflector pod(s) Ready", items.len()),
        );
    }
    Ok(())
}

fn find_condition<'a>(conditions: &'a Value, kind: &str) -> Option<&'a Value> {
    conditions.as_array()?.iter().find(|c| c["type"] == kind)
}

fn pod_ready(pod: &Value) -> bool {
    find_condition(&pod["status"]["conditions"], "Ready").is_some_and(|c| c["status"] == "True")
}

/// `name (reason)`, the reason taken from a waiting container (e.g. CrashLoopBackOff) when there is one.
fn pod_problem(pod: &Value) -> String {
    let name = pod["metadata"]["name"].as_str().unwrap_or("?");
    let waiting = pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|c| c["state"]["waiting"]["reason"].as_str());
    match waiting {
        Some(reason) => format!("{name} ({reason})"),
        None => format!("{name} (not Ready)"),
    }
}

fn check_mirrors(
    source: &SourceSecret,
    secrets: &[SourceSecret],
    namespaces: &[String],
    report: &mut VerifyReport,
) {
    let existing: Vec<ExistingSecret> = secrets
        .iter()
        .filter(|s| s.namespace != source.namespace || s.name != source.name)
        .map(as_existing)
        .collect();
    let outcomes = match plan(source, namespaces, &existing) {
        Ok(outcomes) => outcomes,
        Err(e) => {
            report.push(
                Severity::Error,
                Some(&source.namespace),
                format!("cannot evaluate the source's annotations: {e:#}"),
            );
            return;
        }
    };
    for (ns, outcome) in &outcomes {
        let found = secrets
            .iter()
            .find(|s| &s.namespace == ns && s.name == source.name);
        check_namespace(source, ns, outcome, found, report);
    }
    check_listed_namespaces_exist(source, namespaces, report);
}

fn check_namespace(
    source: &SourceSecret,
    ns: &str,
    outcome: &Outcome,
    found: Option<&SourceSecret>,
    report: &mut VerifyReport,
) {
    match (outcome, found) {
        (Outcome::Mirror, Some(mirror)) => check_mirror(source, mirror, report),
        (Outcome::Mirror, None) => report.push(
            Severity::Error,
            Some(ns),
            format!(
                "mirror {ns}/{} is missing; check the Reflector logs, then touch the source so Reflector reconciles",
                source.name
            ),
        ),
        (Outcome::Blocked { reason }, _) => report.push(
            Severity::Error,
            Some(ns),
            format!(
                "blocked: {reason}. Fix: delete the Secret {ns}/{} (or let Flux prune it), then touch the source so Reflector reconciles",
                source.name
            ),
        ),
        (Outcome::NotAllowed | Outcome::NotAuto, Some(s)) if as_existing(s).is_reflection_of(source) => report.push(
            Severity::Warning,
            Some(ns),
            format!("{ns}/{} reflects the source, but the source no longer selects this namespace; Reflector deletes such mirrors on its next pass", s.name),
        ),
        _ => {}
    }
}

fn check_mirror(source: &SourceSecret, mirror: &SourceSecret, report: &mut VerifyReport) {
    let ns = Some(mirror.namespace.as_str());
    let before = report.findings.len();
    if !as_existing(mirror).is_auto_reflection() {
        report.push(Severity::Warning, ns, "mirror is a direct reflection, not an auto-reflection; Reflector marks it auto-reflects=True on its next update");
    }
    let reflected = mirror
        .annotations
        .get(REFLECTED_VERSION)
        .map_or("none", String::as_str);
    if reflected != source.resource_version {
        report.push(
            Severity::Error,
            ns,
            format!(
                "mirror is stale: reflected-version {reflected}, source is at {}; check Reflector is running, then touch the source",
                source.resource_version
            ),
        );
    }
    let (theirs, ours) = (
        data_fingerprint(&mirror.data),
        data_fingerprint(&source.data),
    );
    if theirs != ours {
        report.push(
            Severity::Error,
            ns,
            format!("mirror data {theirs} differs from the source's {ours}"),
        );
    }
    if mirror.type_ != source.type_ {
        report.push(Severity::Error, ns, format!("mirror type {} differs from the source's {}; delete the mirror so Reflector recreates it", mirror.type_, source.type_));
    }
    if report.findings.len() == before {
        report.push(
            Severity::Ok,
            ns,
            format!("mirror up to date (version {reflected}, data {ours})"),
        );
    }
}

/// Names written literally in the auto list are promises; a missing namespace means the list is out of date.
fn check_listed_namespaces_exist(
    source: &SourceSecret,
    namespaces: &[String],
    report: &mut VerifyReport,
) {
    let Ok(settings) = ReflectionSettings::from_annotations(&source.annotations) else {
        return;
    };
    for pattern in settings
        .auto_namespaces
        .patterns()
        .iter()
        .filter(|p| p.is_literal())
    {
        let name = pattern.as_str();
        if name != source.namespace && !namespaces.iter().any(|n| n == name) {
            report.push(
                Severity::Warning,
                Some(name),
                format!("namespace {name} is listed in {AUTO_NAMESPACES} but does not exist; create it or drop it from the list"),
            );
        }
    }
}

fn as_existing(secret: &SourceSecret) -> ExistingSecret {
    ExistingSecret {
        namespace: secret.namespace.clone(),
        name: secret.name.clone(),
        annotations: secret.annotations.clone(),
    }
}

/// The `items` of a `kubectl get -o json` List.
pub fn list_items(list: &Value) -> Result<&Vec<Value>> {
    if list["kind"].as_str().is_none_or(|k| !k.ends_with("List")) {
        bail!(
            "expected a kubectl List document, got kind {}",
            list["kind"]
        );
    }
    list["items"]
        .as_array()
        .ok_or_else(|| anyhow!("List document has no items array"))
}

/// Namespace names from `kubectl get namespaces -o json`.
pub fn namespace_names(list: &Value) -> Result<Vec<String>> {
    list_items(list)?
        .iter()
        .map(|ns| {
            ns["metadata"]["name"]
                .as_str()
                .map(String::from)
                .ok_or_else(|| anyhow!("Namespace without metadata.name"))
        })
        .collect()
}

/// A Secret document as a [`SourceSecret`] (data base64-decoded; only ever hashed).
pub fn secret_from_json(doc: &Value) -> Result<SourceSecret> {
    let meta = &doc["metadata"];
    let field = |v: &Value, what: &str| {
        v.as_str()
            .map(String::from)
            .ok_or_else(|| anyhow!("Secret without {what}"))
    };
    let name = field(&meta["name"], "metadata.name")?;
    let namespace = field(&meta["namespace"], "metadata.namespace")?;
    let annotations = string_map(&meta["annotations"]);
    let mut data = BTreeMap::new();
    for (key, value) in doc["data"].as_object().into_iter().flatten() {
        let encoded = value.as_str().unwrap_or_default();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .with_context(|| format!("Secret {namespace}/{name} key {key} is not base64"))?;
        data.insert(key.clone(), decoded);
    }
    Ok(SourceSecret {
        type_: doc["type"].as_str().unwrap_or("Opaque").to_string(),
        resource_version: meta["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        namespace,
        name,
        annotations,
        data,
    })
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

/// True once every mirror carries `reflected-version == source_version`. With no mirrors there is
/// nothing to measure, so the answer is false rather than a vacuous true.
pub fn lag_caught_up(source_version: &str, mirrors: &[ExistingSecret]) -> bool {
    !mirrors.is_empty()
        && mirrors.iter().all(|m| {
            m.annotations
                .get(REFLECTED_VERSION)
                .is_some_and(|v| v == source_version)
        })
}

/// Warning and error lines from Reflector's log, duplicates collapsed with a count, in first-seen order.
///
/// Reflector 7.1.x logs through Serilog's console sink with the template
/// `{Timestamp:yyyy-MM-dd HH:mm:ss.fff zzz} [{Level:u3}] ({SourceContext}) {Message:lj}` (its
/// `reflector.logging.json`), so levels read `[WRN]`, `[ERR]`, `[FTL]`. Also understood: the
/// Microsoft.Extensions.Logging simple console (`warn: Category[0]` with the message on the next,
/// indented line; `fail:`, `crit:`) and JSON lines (MEL `LogLevel`/`Message`, Serilog compact `@l`/`@m`).
pub fn summarise_logs(text: &str) -> Vec<String> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(entry) = log_entry(line, lines.get(i + 1).copied()) else {
            continue;
        };
        match counts.iter_mut().find(|(e, _)| *e == entry) {
            Some((_, n)) => *n += 1,
            None => counts.push((entry, 1)),
        }
    }
    counts
        .into_iter()
        .map(|(entry, n)| {
            if n > 1 {
                format!("{entry} (x{n})")
            } else {
                entry
            }
        })
        .collect()
}

/// Serilog's `[{Level:u3}]` marker for warning and worse, and what follows it.
static SERILOG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[(WRN|ERR|FTL)\]\s+(.*)$").expect("static regex"));
/// MEL simple console header (`warn: Category[0]`), optionally after a timestamp.
static MEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:[0-9][0-9:.TZ+\- ]*\s)?(warn|fail|crit):\s+(.*)$").expect("static regex")
});

/// `LEVEL message` for a warning-or-worse line, without timestamp; `next` completes MEL's two-line form.
fn log_entry(line: &str, next: Option<&str>) -> Option<String> {
    if line.trim_start().starts_with('{') {
        return json_log_entry(line);
    }
    if let Some(c) = SERILOG.captures(line) {
        return Some(format!("{} {}", &c[1], squash(&c[2])));
    }
    let c = MEL.captures(line.trim_start())?;
    let level = level_code(&c[1])?;
    let mut message = squash(&c[2]);
    if let Some(body) = next.filter(|n| n.starts_with(char::is_whitespace) && !n.trim().is_empty())
    {
        message = format!("{message} {}", squash(body));
    }
    Some(format!("{level} {message}"))
}

fn json_log_entry(line: &str) -> Option<String> {
    let v: Value = serde_json::from_str(line.trim()).ok()?;
    let pick = |keys: &[&str]| keys.iter().find_map(|k| v[*k].as_str().map(String::from));
    let level = level_code(&pick(&["LogLevel", "@l", "Level", "level"])?)?;
    let message = pick(&[
        "Message",
        "@m",
        "RenderedMessage",
        "@mt",
        "MessageTemplate",
        "message",
        "msg",
    ])?;
    let category = pick(&["Category", "SourceContext"])
        .map(|c| format!("({c}) "))
        .unwrap_or_default();
    Some(format!("{level} {category}{}", squash(&message)))
}

/// Map any spelling of a level to Serilog's three-letter code, or `None` below warning.
fn level_code(level: &str) -> Option<&'static str> {
    match level.to_ascii_lowercase().as_str() {
        "warn" | "warning" | "wrn" => Some("WRN"),
        "fail" | "error" | "err" => Some("ERR"),
        "crit" | "critical" | "fatal" | "ftl" => Some("FTL"),
        _ => None,
    }
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Value {
        serde_json::from_str(text).expect("fixture is JSON")
    }

    const SOURCE: &str = include_str!("../../../../tests/data/kubectl/source-secret.json");
    const SECRETS_HEALTHY: &str =
        include_str!("../../../../tests/data/kubectl/secrets-healthy.json");
    const SECRETS_BROKEN: &str = include_str!("../../../../tests/data/kubectl/secrets-broken.json");
    const NS_HEALTHY: &str = include_str!("../../../../tests/data/kubectl/namespaces-healthy.json");
    const NS_BROKEN: &str = include_str!("../../../../tests/data/kubectl/namespaces-broken.json");
    const DEPLOY_OK: &str =
        include_str!("../../../../tests/data/kubectl/reflector-deployment-healthy.json");
    const DEPLOY_DOWN: &str =
        include_str!("../../../../tests/data/kubectl/reflector-deployment-unavailable.json");
    const PODS_OK: &str =
        include_str!("../../../../tests/data/kubectl/reflector-pods-healthy.json");
    const PODS_CRASH: &str =
        include_str!("../../../../tests/data/kubectl/reflector-pods-crashloop.json");

    fn healthy() -> ClusterSnapshot {
        ClusterSnapshot {
            options: SourceOptions::default(),
            reflector_deployment: Some(doc(DEPLOY_OK)),
            reflector_pods: doc(PODS_OK),
            source: Some(doc(SOURCE)),
            secrets: doc(SECRETS_HEALTHY),
            namespaces: doc(NS_HEALTHY),
        }
    }

    fn broken() -> ClusterSnapshot {
        ClusterSnapshot {
            secrets: doc(SECRETS_BROKEN),
            namespaces: doc(NS_BROKEN),
            ..healthy()
        }
    }

    fn messages(report: &VerifyReport, ns: &str, severity: Severity) -> Vec<String> {
        report
            .for_namespace(ns)
            .into_iter()
            .filter(|f| f.severity == severity)
            .map(|f| f.message.clone())
            .collect()
    }

    #[test]
    fn healthy_cluster_has_only_ok_findings() {
        let report = verify(&healthy()).unwrap();
        assert!(report.is_healthy(), "{report}");
        assert!(
            report.with_severity(Severity::Warning).is_empty(),
            "{report}"
        );
        for ns in ["billing", "payments", "search", "team-a", "team-b"] {
            let ok = messages(&report, ns, Severity::Ok);
            assert!(
                ok.len() == 1 && ok[0].starts_with("mirror up to date"),
                "{ns}: {report}"
            );
        }
        assert!(report.for_namespace("default").is_empty(), "{report}");
    }

    #[test]
    fn broken_cluster_reports_blocked_stale_missing_and_absent_namespace() {
        let report = verify(&broken()).unwrap();
        assert!(!report.is_healthy());
        let blocked = messages(&report, "payments", Severity::Error);
        assert_eq!(blocked.len(), 1, "{report}");
        assert!(blocked[0].contains("delete the Secret payments/oci-creds (or let Flux prune it), then touch the source so Reflector reconciles"));
        let stale = messages(&report, "team-b", Severity::Error);
        assert!(
            stale
                .iter()
                .any(|m| m.contains("stale") && m.contains("39110") && m.contains("48213")),
            "{report}"
        );
        assert!(stale.iter().any(|m| m.contains("data sha256:")), "{report}");
        let missing = messages(&report, "search", Severity::Error);
        assert!(
            missing.len() == 1 && missing[0].contains("missing"),
            "{report}"
        );
        let absent = messages(&report, "billing", Severity::Warning);
        assert!(
            absent.len() == 1 && absent[0].contains("does not exist"),
            "{report}"
        );
        assert!(
            report
                .for_namespace("billing")
                .iter()
                .all(|f| f.severity == Severity::Warning)
        );
        assert_eq!(
            messages(&report, "team-a", Severity::Ok).len(),
            1,
            "{report}"
        );
        assert_eq!(report.with_severity(Severity::Error).len(), 4, "{report}");
    }

    #[test]
    fn unavailable_reflector_is_an_error() {
        let snapshot = ClusterSnapshot {
            reflector_deployment: Some(doc(DEPLOY_DOWN)),
            reflector_pods: doc(PODS_CRASH),
            ..healthy()
        };
        let report = verify(&snapshot).unwrap();
        let errors = messages(&report, "reflector-system", Severity::Error);
        assert_eq!(errors.len(), 2, "{report}");
        assert!(errors[0].contains("not available") && errors[0].contains("minimum availability"));
        assert!(errors[1].contains("reflector-6d9c8b7f5d-x2k9p (CrashLoopBackOff)"));
        let missing = ClusterSnapshot {
            reflector_deployment: None,
            ..healthy()
        };
        let report = verify(&missing).unwrap();
        assert!(messages(&report, "reflector-system", Severity::Error)[0].contains("HelmRelease"));
    }

    #[test]
    fn a_mirror_the_source_no_longer_selects_is_a_warning() {
        let mut source = doc(SOURCE);
        let lists = "billing,payments,search,team-a";
        source["metadata"]["annotations"][AUTO_NAMESPACES] = Value::from(lists);
        let report = verify(&ClusterSnapshot {
            source: Some(source),
            ..healthy()
        })
        .unwrap();
        let warned = messages(&report, "team-b", Severity::Warning);
        assert!(
            warned.len() == 1 && warned[0].contains("no longer selects"),
            "{report}"
        );
        assert!(report.is_healthy());
    }

    #[test]
    fn missing_source_stops_after_saying_so() {
        let report = verify(&ClusterSnapshot {
            source: None,
            ..healthy()
        })
        .unwrap();
        let errors = report.with_severity(Severity::Error);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("does not exist"));
        assert!(report.for_namespace("team-a").is_empty());
    }

    #[test]
    fn report_never_shows_secret_data() {
        let mut reports = vec![verify(&healthy()).unwrap(), verify(&broken()).unwrap()];
        reports.push(
            verify(&ClusterSnapshot {
                reflector_deployment: Some(doc(DEPLOY_DOWN)),
                ..broken()
            })
            .unwrap(),
        );
        let shown: String = reports.iter().map(|r| format!("{r}\n{r:?}")).collect();
        for list in [SECRETS_HEALTHY, SECRETS_BROKEN] {
            for item in list_items(&doc(list)).unwrap() {
                let encoded = item["data"][".dockerconfigjson"].as_str().unwrap();
                let decoded = String::from_utf8(
                    base64::engine::general_purpose::STANDARD
                        .decode(encoded)
                        .unwrap(),
                )
                .unwrap();
                let inner: Value = serde_json::from_str(&decoded).unwrap();
                let creds = &inner["auths"]["ghcr.io"];
                for secret in [
                    encoded,
                    &decoded,
                    creds["password"].as_str().unwrap(),
                    creds["auth"].as_str().unwrap(),
                ] {
                    assert!(!shown.contains(secret), "report leaks fixture data");
                }
                assert!(!shown.contains(&encoded[..24]));
            }
        }
        assert!(!shown.contains("fixture-token"));
    }

    #[test]
    fn documents_must_be_kubectl_lists() {
        assert!(list_items(&doc(SOURCE)).is_err());
        assert_eq!(namespace_names(&doc(NS_BROKEN)).unwrap().len(), 10);
        let source = secret_from_json(&doc(SOURCE)).unwrap();
        assert_eq!(source.resource_version, "48213");
        assert_eq!(source.type_, "kubernetes.io/dockerconfigjson");
    }

    #[test]
    fn lag_is_caught_up_when_every_mirror_has_the_source_version() {
        let mirrors: Vec<ExistingSecret> = list_items(&doc(SECRETS_HEALTHY))
            .unwrap()
            .iter()
            .map(|s| as_existing(&secret_from_json(s).unwrap()))
            .filter(|s| s.namespace != "flux-system")
            .collect();
        assert!(lag_caught_up("48213", &mirrors));
        assert!(!lag_caught_up("48299", &mirrors));
        assert!(!lag_caught_up("48213", &[]));
        let mut one_behind = mirrors.clone();
        one_behind[0].annotations.remove(REFLECTED_VERSION);
        assert!(!lag_caught_up("48213", &one_behind));
    }

    #[test]
    fn serilog_lines_are_filtered_and_collapsed() {
        let log = "\
2025-03-04 10:15:22.101 +00:00 [INF] (ES.Kubernetes.Reflector.Core.SecretMirror) Auto-reflected flux-system/oci-creds where permitted. Created 1 - Updated 0 - Deleted 0 - Validated 3.
2025-03-04 10:15:23.000 +00:00 [WRN] (ES.Kubernetes.Reflector.Core.SecretMirror) Could not update team-b/oci-creds - Source flux-system/oci-creds could not be found.
2025-03-04 10:16:23.000 +00:00 [WRN] (ES.Kubernetes.Reflector.Core.SecretMirror) Could not update team-b/oci-creds - Source flux-system/oci-creds could not be found.
2025-03-04 10:17:00.000 +00:00 [ERR] (ES.Kubernetes.Reflector.Core.SecretMirror) Could not reflect flux-system/oci-creds to search/oci-creds due to exception.
k8s.Autorest.HttpOperationException: Operation returned an invalid status code 'Forbidden'
   at k8s.Kubernetes.SendRequestRaw(String requestContent, HttpRequestMessage httpRequest, CancellationToken cancellationToken)
2025-03-04 10:18:00.000 +00:00 [DBG] (ES.Kubernetes.Reflector.Core.SecretMirror) Skipping team-a/oci-creds - Source flux-system/oci-creds matches reflected version
";
        assert_eq!(
            summarise_logs(log),
            [
                "WRN (ES.Kubernetes.Reflector.Core.SecretMirror) Could not update team-b/oci-creds - Source flux-system/oci-creds could not be found. (x2)",
                "ERR (ES.Kubernetes.Reflector.Core.SecretMirror) Could not reflect flux-system/oci-creds to search/oci-creds due to exception.",
            ]
        );
    }

    #[test]
    fn mel_console_and_json_lines_are_understood() {
        let log = "\
info: ES.Kubernetes.Reflector.Mirroring.SecretMirror[0]
      Created team-a/oci-creds as a reflection of flux-system/oci-creds
warn: ES.Kubernetes.Reflector.Mirroring.SecretMirror[0]
      Could not update team-b/oci-creds - Source flux-system/oci-creds does not permit it.
2025-03-04T10:15:23Z fail: ES.Kubernetes.Reflector.Watchers.SecretWatcher[0]
      Faulted due to exception.
{\"EventId\":0,\"LogLevel\":\"Warning\",\"Category\":\"ES.Kubernetes.Reflector.Mirroring.SecretMirror\",\"Message\":\"Could not update x/y - Source a/b could not be found.\",\"State\":{}}
{\"@t\":\"2025-03-04T10:15:23Z\",\"@l\":\"Error\",\"@m\":\"Watcher faulted\",\"SourceContext\":\"ES.Kubernetes.Reflector.Core.SecretWatcher\"}
{\"@t\":\"2025-03-04T10:15:23Z\",\"@m\":\"information has no @l\"}
not json {
";
        assert_eq!(
            summarise_logs(log),
            [
                "WRN ES.Kubernetes.Reflector.Mirroring.SecretMirror[0] Could not update team-b/oci-creds - Source flux-system/oci-creds does not permit it.",
                "ERR ES.Kubernetes.Reflector.Watchers.SecretWatcher[0] Faulted due to exception.",
                "WRN (ES.Kubernetes.Reflector.Mirroring.SecretMirror) Could not update x/y - Source a/b could not be found.",
                "ERR (ES.Kubernetes.Reflector.Core.SecretWatcher) Watcher faulted",
            ]
        );
    }
}
