//! Static validation of one cluster overlay: is its consolidated source Secret where Flux applies
//! it, encrypted for the right recipients, carrying valid credentials, and annotated so Reflector
//! mirrors it into exactly the namespaces whose objects need it?
//!
//! The answer is a list of [`Finding`]s, each naming the file to fix and saying how. This module
//! only reads: it never stages or writes anything, never prints, and never puts a secret value into
//! a finding (credentials are decrypted into memory only to check that they parse). Flux
//! Kustomizations are built as Flux builds them ([`flux_builds`], the `flux` CLI), and who needs
//! the Secret is read from that output ([`ocitool_core::consumers`]); what could not be built is
//! reported as not checked, never as "nothing needs it". Kustomization directories of the overlay
//! that no Flux Kustomization applies are still built with `kubectl kustomize` (Flux never builds
//! them, but a broken one is worth knowing). Builds read the files on disk, so validate a
//! repository before staging changes to it.

use crate::flux_builds::{self, Analysis, Build, Sources};
use crate::flux_sources::{self, ReflectorWiring};
use crate::prerequisites;
use crate::repo::{self, Overlay, OverlayIndex, is_registry_source};
use crate::sops_rules::{self, Coverage};
use crate::workspace::Workspace;
use anyhow::Result;
use ocitool_adapters::kustomize;
use ocitool_adapters::sops::SopsError;
use ocitool_core::manifest;
use ocitool_core::reflector::SourceOptions;
use ocitool_core::reflector::model::{Outcome, ReflectionSettings, SourceSecret, plan};
use ocitool_core::reflector::verify::{self, VerifyReport};
use ocitool_core::reflector::{ALLOWED, ALLOWED_NAMESPACES, AUTO_ENABLED, AUTO_NAMESPACES};
use ocitool_core::secret::{self, DOCKERCONFIGJSON_TYPE, FILE_NAME, SecretMeta};
use rayon::prelude::*;
use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// How bad a finding is. `Info` is context (what was skipped), never a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One observation: the file (or, for a cluster, the namespace) it concerns and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub file: String,
    pub message: String,
}

/// What to look at beyond the overlay.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Local checkouts of the sources Flux Kustomizations build from (beside the fleet itself).
    pub sources: Sources,
    /// The source Secret's name and namespace the overlay must use.
    pub source: SourceOptions,
}

/// Findings in order, without duplicates (two Flux Kustomizations may build the same object).
#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn push(&mut self, severity: Severity, file: &str, message: impl Into<String>) {
        let finding = Finding {
            severity,
            file: file.to_string(),
            message: message.into(),
        };
        if !self.0.contains(&finding) {
            self.0.push(finding);
        }
    }
}

/// Validate `overlay`; fails only when the overlay cannot be read at all, or the `flux` CLI is missing.
pub fn validate(ws: &mut Workspace, overlay: &Overlay, options: &Options) -> Result<Vec<Finding>> {
    let idx = repo::index(ws.changeset(), overlay)?;
    let mut out = Findings::default();
    let source = check_single_source(ws, overlay, &mut out)?;
    let builds = build_all(ws.root(), &idx, &options.sources, &mut out)?;
    report_unmapped(overlay, &builds, &mut out);
    check_secret_ref_namespaces(&idx, &builds, &mut out);
    if let Some(text) = source {
        check_reachable(ws.root(), overlay, &idx, &mut out);
        check_reflector_wiring(ws, overlay, &idx, &mut out)?;
        check_source(ws, overlay, &text, &idx, &builds, &options.source, &mut out);
        check_other_secrets(ws, overlay, &mut out);
    }
    Ok(out.0)
}

/// Other dockerconfigjson Secrets for the source's registries ([`crate::others`]): a rotation of
/// the source leaves them on the old credential, so each is reported with its Secret name and the
/// registries it shares (never a value). Skipped when the source cannot be decrypted (the
/// credential checks say why).
fn check_other_secrets(ws: &mut Workspace, overlay: &Overlay, out: &mut Findings) {
    let Ok(Some(source)) = ws.source_of(overlay) else {
        return;
    };
    let Ok(others) = ws.other_secrets(overlay) else {
        return;
    };
    for other in others {
        let shared = other.shared_registries(&source.credentials);
        if shared.is_empty() {
            continue;
        }
        out.push(
            Severity::Warning,
            other.secret.path.as_str(),
            format!(
                "Secret `{}` also carries {} (a registry of the source); rotating the source does not change it: \
                 rotate it in the same run with `--set also={}`, or remove it if nothing uses it",
                other.secret.secret_name,
                shared.join(", "),
                other.secret.stem()
            ),
        );
    }
}

/// Exactly one `oci-creds.yaml`, in `flux-system/`; returns the source's text when it exists.
fn check_single_source(
    ws: &Workspace,
    overlay: &Overlay,
    out: &mut Findings,
) -> Result<Option<String>> {
    let source_path = overlay.source_path();
    let run = consolidate_command(overlay);
    for path in ws.changeset().files_under(&overlay.path)? {
        if path.file_name() == Some(FILE_NAME) && path != source_path {
            out.push(
                Severity::Error,
                path.as_str(),
                format!(
                    "per-service copy of the registry credentials; a cluster keeps exactly one source at \
                     {source_path} (Property 7). Run `{run}` to move it there"
                ),
            );
        }
    }
    let source = ws.read(&source_path)?;
    if source.is_none() {
        out.push(
            Severity::Error,
            source_path.as_str(),
            format!("the source Secret is missing; run `{run}` to create it"),
        );
    }
    Ok(source)
}

fn consolidate_command(overlay: &Overlay) -> String {
    let customer = overlay
        .customer
        .as_ref()
        .map(|c| format!(" --set customer={c}"))
        .unwrap_or_default();
    format!(
        "ocitool run scripts/consolidate.rhai{customer} --set cluster={}",
        overlay.cluster
    )
}

// ---------------------------------------------------------------------------------------------
// Builds

/// Build every Flux Kustomization with flux, and with `kubectl kustomize` every kustomization
/// directory of the overlay no Flux Kustomization reaches (in parallel); report what does not
/// build or was not built, and return the Flux builds.
fn build_all<'a>(
    root: &Path,
    idx: &'a OverlayIndex,
    sources: &Sources,
    out: &mut Findings,
) -> Result<Vec<Build<'a>>> {
    let (builds, unreached) = rayon::join(
        || flux_builds::build_all(root, idx, sources),
        || build_unreached(root, idx),
    );
    let builds = builds?;
    for (file, error) in unreached {
        out.push(Severity::Error, &file, error);
    }
    for build in &builds {
        if let flux_builds::Outcome::Failed(why) = &build.outcome {
            out.push(
                Severity::Error,
                build.flux.file.as_str(),
                format!(
                    "Flux Kustomization `{}` does not build as Flux builds it (spec.path {}, source {}/{}): {why}; \
                     fix what flux names and run again",
                    build.flux.name, build.flux.path, build.flux.source_kind, build.flux.source_name
                ),
            );
        }
    }
    Ok(builds)
}

/// The Flux Kustomizations whose source has no checkout here: what they deploy is unknown.
fn report_unmapped(overlay: &Overlay, builds: &[Build], out: &mut Findings) {
    let unmapped: Vec<String> = builds
        .iter()
        .filter(|b| matches!(b.outcome, flux_builds::Outcome::Unmapped))
        .map(Build::source_label)
        .collect();
    if !unmapped.is_empty() {
        out.push(
            Severity::Warning,
            overlay.path.as_str(),
            format!(
                "not checked: Flux Kustomization(s) {} build from sources with no checkout here, so what they \
                 deploy is unknown; pass --set base_repo=DIR (every other GitRepository) or --set source.NAME=DIR (one source)",
                unmapped.join(", ")
            ),
        );
    }
}

/// `kubectl kustomize` over the overlay's kustomization directories that no Flux Kustomization
/// sourced from the fleet reaches: (kustomization file, error) for each that does not build.
fn build_unreached(root: &Path, idx: &OverlayIndex) -> Vec<(String, String)> {
    let dirs: BTreeMap<PathBuf, String> = idx
        .kustomizations
        .iter()
        .filter(|k| idx.appliers(&k.dir).is_empty())
        .map(|k| (root.join(&k.dir), k.path.to_string()))
        .collect();
    dirs.into_par_iter()
        .filter_map(|(dir, file)| {
            let e = kustomize::build(&dir).err()?;
            let rel = dir.strip_prefix(root).unwrap_or(&dir).display().to_string();
            Some((file, format!("{rel} does not build: {e:#}")))
        })
        .collect()
}

/// The overlay file that declares `doc` (same kind and name), for naming it in a finding.
fn origin_of(idx: &OverlayIndex, doc: &Value) -> Option<String> {
    let object = format!(
        "{}/{}",
        manifest::kind(doc).unwrap_or_default(),
        manifest::name(doc).unwrap_or_default()
    );
    origin_by_name(idx, &object)
}

/// `secretRef.namespace` is not in the Flux schema: the field is dropped and the ref stays local.
fn check_secret_ref_namespaces(idx: &OverlayIndex, builds: &[Build], out: &mut Findings) {
    for built in builds {
        for doc in built.docs().iter().filter(|d| is_registry_source(d)) {
            if manifest::str_at(doc, &["spec", "secretRef", "namespace"]).is_none() {
                continue;
            }
            let file = origin_of(idx, doc).unwrap_or_else(|| built.flux.file.to_string());
            out.push(
                Severity::Error,
                &file,
                format!(
                    "{} `{}` sets spec.secretRef.namespace, a field the Flux schema does not have (secret refs \
                     are local to the object's namespace); remove it: Reflector mirrors the secret into that namespace",
                    manifest::kind(doc).unwrap_or_default(),
                    manifest::name(doc).unwrap_or_default()
                ),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Who needs the secret (read from the builds, see ocitool_core::consumers)

/// What the builds say about the Secret `secret`, with findings for what is wrong or unseen.
fn consumers(
    idx: &OverlayIndex,
    builds: &[Build],
    secret: &str,
    source_namespace: &str,
    out: &mut Findings,
) -> Analysis {
    let analysis = flux_builds::analyse(builds, secret, source_namespace);
    for (file, message) in &analysis.unresolved {
        out.push(Severity::Info, file, message.clone());
    }
    for (file, consumer, why) in &analysis.misused {
        out.push(
            Severity::Error,
            &origin_by_name(idx, &consumer.object).unwrap_or_else(|| file.clone()),
            format!("{} uses `{secret}` but is {why}", consumer.object),
        );
    }
    for (object, kustomization) in &analysis.unplaced {
        out.push(
            Severity::Warning,
            &origin_by_name(idx, object).unwrap_or_else(|| kustomization.clone()),
            format!(
                "{object} needs `{secret}` but has no namespace: set `targetNamespace` on Flux Kustomization \
                 {kustomization} or metadata.namespace, so Flux can apply it and the mirror can follow"
            ),
        );
    }
    analysis
}

/// The overlay file that declares `Kind/name`, for naming it in a finding.
fn origin_by_name(idx: &OverlayIndex, object: &str) -> Option<String> {
    let (kind, name) = object.split_once('/')?;
    idx.documents
        .iter()
        .find(|(_, docs)| {
            docs.iter()
                .any(|d| manifest::kind(d) == Some(kind) && manifest::name(d) == Some(name))
        })
        .map(|(file, _)| file.to_string())
}

// ---------------------------------------------------------------------------------------------
// Reachability: Flux must apply the source, and decrypt it while doing so

/// A consolidated cluster needs Reflector, or no namespace gets its mirror: the wiring must exist
/// and resolve as Flux would apply it ([`flux_sources::reflector_wiring`], what consolidate's
/// `require_reflector` checks too).
fn check_reflector_wiring(
    ws: &Workspace,
    overlay: &Overlay,
    idx: &OverlayIndex,
    out: &mut Findings,
) -> Result<()> {
    match flux_sources::reflector_wiring(ws.changeset(), idx, overlay)? {
        ReflectorWiring::Resolves => {}
        ReflectorWiring::Dangling(problem) => {
            out.push(Severity::Error, overlay.path.as_str(), problem);
        }
        ReflectorWiring::Absent => out.push(
            Severity::Warning,
            overlay.path.as_str(),
            format!(
                "the overlay does not deploy Reflector (no Flux Kustomization of managed-services/reflector, no \
                 HelmRelease `reflector`), so nothing mirrors the source unless Reflector runs from elsewhere; \
                 wire it with `ocitool run deploy-reflector --set cluster={}`",
                overlay.cluster
            ),
        ),
    }
    Ok(())
}

fn check_reachable(root: &Path, overlay: &Overlay, idx: &OverlayIndex, out: &mut Findings) {
    let dir = overlay.join("flux-system");
    let listed = idx
        .kustomization_in(&dir)
        .is_some_and(|k| k.targets().any(|t| t == overlay.source_path()));
    if !listed {
        out.push(
            Severity::Error,
            &format!("{dir}/kustomization.yaml"),
            format!("does not list {FILE_NAME} under `resources:`, so Flux never applies the source; add `- {FILE_NAME}`"),
        );
    }
    let builders = idx.appliers(&dir);
    if builders.is_empty() {
        out.push(
            Severity::Error,
            overlay.path.as_str(),
            format!("no Flux Kustomization (sourceRef {}) builds {dir}, so the source is never applied; point one's spec.path at it or at a kustomization that includes it", repo::OWN_SOURCE),
        );
    } else if !builders
        .iter()
        .any(|f| prerequisites::decrypts(root, idx, f))
    {
        for flux in builders {
            out.push(
                Severity::Error,
                flux.file.as_str(),
                format!(
                    "Flux Kustomization `{}` applies {dir} without `spec.decryption.provider: sops`, so Flux would \
                     apply the source's ciphertext; add `decryption: {{provider: sops, secretRef: {{name: sops-age}}}}` \
                     (for `flux bootstrap` output, as a patch in its kustomization: consolidate.rhai --set prepare=true writes it)",
                    flux.name
                ),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The source Secret itself

fn check_source(
    ws: &mut Workspace,
    overlay: &Overlay,
    text: &str,
    idx: &OverlayIndex,
    builds: &[Build],
    source: &SourceOptions,
    out: &mut Findings,
) {
    let source_path = overlay.source_path();
    let path = source_path.as_str();
    let meta = match secret::secret_document(path, text).and_then(|s| secret::meta(path, &s)) {
        Ok(meta) => meta,
        Err(e) => return out.push(Severity::Error, path, format!("{e:#}")),
    };
    check_source_names(path, &meta, source, out);
    if meta.type_ != DOCKERCONFIGJSON_TYPE {
        out.push(
            Severity::Error,
            path,
            format!(
                "the source has type `{}`; it must be {DOCKERCONFIGJSON_TYPE} (re-run `{}`)",
                meta.type_,
                consolidate_command(overlay)
            ),
        );
    }
    let encrypted = ocitool_core::sops_format::is_encrypted(text);
    if encrypted {
        check_recipients(ws, path, text, out);
    } else {
        out.push(
            Severity::Error,
            path,
            "is NOT sops-encrypted: its credentials are in git in plaintext; encrypt it with \
             `sops encrypt -i` and rotate the credentials",
        );
    }
    check_credentials(ws, path, text, encrypted, out);
    let analysis = consumers(idx, builds, &meta.name, source.source_namespace(), out);
    check_reflection(path, &meta, &analysis, source.source_namespace(), out);
}

/// The source must be the Secret the workloads' `secretRef`s and Reflector's mirrors are named
/// after, in the namespace the options give (a namespace-less Secret lands in flux-system's
/// Kustomization namespace, which is not checked here).
fn check_source_names(path: &str, meta: &SecretMeta, source: &SourceOptions, out: &mut Findings) {
    if meta.name != source.source_name() {
        out.push(
            Severity::Error,
            path,
            format!(
                "the source is named `{}`, expected `{}`; rename it, or pass --set source_name={}",
                meta.name,
                source.source_name(),
                meta.name
            ),
        );
    }
    if let Some(ns) = meta
        .namespace
        .as_deref()
        .filter(|ns| *ns != source.source_namespace())
    {
        out.push(
            Severity::Error,
            path,
            format!(
                "the source is in namespace `{ns}`, expected `{}`; move it, or pass --set source_namespace={ns}",
                source.source_namespace()
            ),
        );
    }
}

/// The recipients a sops file is encrypted for (`sops.age[].recipient`).
fn file_recipients(text: &str) -> BTreeSet<String> {
    let doc: Value = serde_yaml::from_str(text).unwrap_or_default();
    doc["sops"]["age"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|r| r["recipient"].as_str().map(String::from))
        .collect()
}

/// The source must be encrypted for the recipients of the creation rule sops applies to it: the
/// nearest `.sops.yaml`'s first matching rule (see [`sops_rules`]), which must also encrypt its values.
fn check_recipients(ws: &Workspace, path: &str, text: &str, out: &mut Findings) {
    let coverage = match sops_rules::coverage(ws.changeset(), path, &prerequisites::SOURCE_KEYS) {
        Ok(c) => c,
        Err(e) => return out.push(Severity::Error, path, format!("{e:#}")),
    };
    if let Some(problem) = coverage.problem(path) {
        let fix = match &coverage {
            Coverage::InClear { .. } => format!(
                "add a rule for it with `encrypted_regex: {}` ahead of this one and run `sops updatekeys`",
                ocitool_core::sops_config::SECRET_VALUES_REGEX
            ),
            _ => "add one with the cluster's age recipient".to_string(),
        };
        return out.push(Severity::Error, path, format!("{problem}; {fix}"));
    }
    let Some(applicable) = coverage.applicable() else {
        return;
    };
    let Ok(Some(rule)) = applicable.rule() else {
        return;
    };
    let expected: BTreeSet<String> = rule.age.iter().cloned().collect();
    let actual = file_recipients(text);
    if actual != expected {
        let list = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>().join(", ");
        out.push(
            Severity::Error,
            path,
            format!(
                "encrypted for [{}] but {} ({}) assigns [{}]; run `sops updatekeys {}` from {}",
                list(&actual),
                applicable.config_path,
                rule.describe(),
                list(&expected),
                applicable.relative,
                config_dir(&applicable.config_path)
            ),
        );
    }
}

/// The directory of a repo-relative config path, `.` for the root (where to run sops from).
fn config_dir(config_path: &str) -> &str {
    config_path.rsplit_once('/').map(|(d, _)| d).unwrap_or(".")
}

/// Decrypt (in memory) and parse the credentials; without a key, say so and go on.
fn check_credentials(
    ws: &mut Workspace,
    path: &str,
    text: &str,
    encrypted: bool,
    out: &mut Findings,
) {
    let plaintext = if encrypted {
        match ws.sops().and_then(|s| Ok(s.decrypt(path, text)?)) {
            Ok(p) => p.expose().to_string(),
            Err(e) => return report_decrypt_failure(path, &e, out),
        }
    } else {
        text.to_string()
    };
    match secret::read_source(path, &plaintext) {
        Ok(spec) if spec.credentials.is_empty() => out.push(
            Severity::Error,
            path,
            "decrypts to a dockerconfigjson without any `auths`; re-run consolidate.rhai or add the registry credentials",
        ),
        Ok(_) => {}
        Err(e) => out.push(
            Severity::Error,
            path,
            format!("does not decrypt to valid registry credentials: {e:#}"),
        ),
    }
}

/// Without a key the credential checks are skipped (a warning: validate runs fine on a machine
/// without cluster keys); any other failure — no sops, a broken MAC, corrupted ciphertext — is an
/// error that Flux would hit too, reported with sops's own reason.
fn report_decrypt_failure(path: &str, err: &anyhow::Error, out: &mut Findings) {
    if let Some(SopsError::NoKey { .. }) = err.downcast_ref::<SopsError>() {
        out.push(
            Severity::Warning,
            path,
            "cannot decrypt (no key): skipped credential checks; set SOPS_AGE_KEY_FILE to this cluster's key to run them",
        );
    } else {
        out.push(
            Severity::Error,
            path,
            format!("cannot decrypt, and Flux could not either: {err:#}"),
        );
    }
}

/// Reflector must be allowed and auto-enabled, mirror into every namespace that needs the secret
/// (by the model's rules), and into nothing else (least privilege).
fn check_reflection(
    path: &str,
    meta: &SecretMeta,
    analysis: &Analysis,
    source_namespace: &str,
    out: &mut Findings,
) {
    let settings = match ReflectionSettings::from_annotations(&meta.annotations) {
        Ok(s) => s,
        Err(e) => return out.push(Severity::Error, path, format!("{e:#}")),
    };
    for (enabled, key) in [
        (settings.allowed, ALLOWED),
        (settings.auto_enabled, AUTO_ENABLED),
    ] {
        if !enabled {
            out.push(
                Severity::Error,
                path,
                format!("annotation {key} is not \"true\", so Reflector creates no mirrors; set it to \"true\" (consolidate.rhai writes all four annotations)"),
            );
        }
    }
    if !(settings.allowed && settings.auto_enabled) {
        return;
    }
    check_needed_namespaces(path, meta, &analysis.needed, source_namespace, out);
    check_unneeded_namespaces(path, &settings, analysis, out);
}

fn check_needed_namespaces(
    path: &str,
    meta: &SecretMeta,
    needed: &BTreeMap<String, BTreeSet<String>>,
    source_namespace: &str,
    out: &mut Findings,
) {
    let source = SourceSecret {
        namespace: source_namespace.to_string(),
        name: meta.name.clone(),
        type_: meta.type_.clone(),
        annotations: meta.annotations.clone(),
        data: BTreeMap::new(),
        resource_version: String::new(),
    };
    let namespaces: Vec<String> = needed.keys().cloned().collect();
    let outcomes = match plan(&source, &namespaces, &[]) {
        Ok(o) => o,
        Err(e) => return out.push(Severity::Error, path, format!("{e:#}")),
    };
    for (ns, outcome) in outcomes {
        if matches!(outcome, Outcome::Mirror | Outcome::Source) {
            continue;
        }
        let who: Vec<&str> = needed[&ns].iter().map(String::as_str).collect();
        out.push(
            Severity::Error,
            path,
            format!(
                "namespace {ns} needs `{}` ({}) but Reflector will not mirror it there; add {ns} to both \
                 {ALLOWED_NAMESPACES} and {AUTO_NAMESPACES}",
                meta.name,
                who.join(", ")
            ),
        );
    }
}

/// Least privilege: a listed namespace where no built object uses the Secret gets a warning, unless
/// something that deploys there was not built (then it is reported as not checked: removing its
/// mirror could break what could not be seen), or something there names it with the wrong kind
/// (already an error with its own fix).
fn check_unneeded_namespaces(
    path: &str,
    settings: &ReflectionSettings,
    analysis: &Analysis,
    out: &mut Findings,
) {
    if settings.auto_namespaces.is_all() || settings.allowed_namespaces.is_all() {
        out.push(
            Severity::Warning,
            path,
            "a namespace list is empty, so the credentials are mirrored into every namespace; list only the namespaces that need them",
        );
    }
    let listed: BTreeSet<&str> = settings
        .allowed_namespaces
        .patterns()
        .iter()
        .chain(settings.auto_namespaces.patterns())
        .filter(|p| p.is_literal())
        .map(|p| p.as_str())
        .collect();
    let misused: BTreeSet<&str> = analysis
        .misused
        .iter()
        .filter_map(|(_, c, _)| c.namespace.as_deref())
        .collect();
    for ns in listed
        .into_iter()
        .filter(|ns| !analysis.needed.contains_key(*ns) && !misused.contains(ns))
    {
        let message = if analysis.is_unknown(ns) {
            (
                Severity::Info,
                format!(
                    "namespace {ns} gets a mirror; not checked whether anything there needs it: Flux Kustomization(s) {} \
                     were not built (see above), so keep it until they are",
                    analysis.unknown_in(ns).join(", ")
                ),
            )
        } else {
            (
                Severity::Warning,
                format!(
                    "namespace {ns} gets a mirror but nothing there needs it; remove it from the namespace lists (least privilege)"
                ),
            )
        };
        out.push(message.0, path, message.1);
    }
}

// ---------------------------------------------------------------------------------------------
// Presentation

/// Cluster verification findings in the same shape; `file` holds the namespace concerned.
pub fn from_verify(report: &VerifyReport) -> Vec<Finding> {
    report
        .findings
        .iter()
        .map(|f| Finding {
            severity: match f.severity {
                verify::Severity::Ok => Severity::Info,
                verify::Severity::Warning => Severity::Warning,
                verify::Severity::Error => Severity::Error,
            },
            file: f.namespace.clone().unwrap_or_else(|| "-".to_string()),
            message: f.message.clone(),
        })
        .collect()
}

/// A plain-text table, one finding per line, aligned on the file column.
pub fn render_table(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return "ok       -  no findings\n".to_string();
    }
    let width = findings.iter().map(|f| f.file.len()).max().unwrap_or(0);
    findings
        .iter()
        .map(|f| {
            format!(
                "{:<8} {:<width$}  {}\n",
                f.severity.to_string(),
                f.file,
                f.message
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_say_ok_when_empty() {
        assert!(render_table(&[]).starts_with("ok"));
        let table = render_table(&[Finding {
            severity: Severity::Error,
            file: "a.yaml".into(),
            message: "fix it".into(),
        }]);
        assert_eq!(table, "error    a.yaml  fix it\n");
    }
}
