//! What the Flux Kustomizations of one overlay build, built as Flux builds them (the `flux` CLI,
//! see [`ocitool_adapters::flux`]), and who among the built objects uses the registry Secret.
//!
//! This module owns the mapping of each Kustomization's `sourceRef` to a checkout on this machine
//! ([`Sources`]: the fleet repository for GitRepository `flux-system`, `source.NAME` for one
//! source, `base_repo` for every other GitRepository), running the builds in parallel, resolving
//! `postBuild.substituteFrom` ConfigMaps from built output, and the namespace-level summary both
//! validate and consolidate act on ([`Analysis`]). A Kustomization without a checkout, or one that
//! does not build, makes what it deploys *unknown*: never "nothing there needs the Secret".
//!
//! It reads files on disk (flux reads the checkout itself), so callers analyse before they stage
//! anything. It never writes, never decrypts and never prints.
//!
//! Builds from checkouts other than the fleet repository are memoised for the run ([`Sources`] is
//! created once per run and shared by every cluster): ocitool never writes to those checkouts, so
//! the same Kustomization document built from the same checkout gives the same output. On an
//! openCenter fleet every cluster has a `<svc>-base` Kustomization per service building the same
//! base directory, so a fleet-wide run builds each of those once, not once per cluster.

use crate::repo::{FluxKustomization, OverlayIndex};
use ocitool_adapters::flux;
use ocitool_adapters::tools;
use ocitool_core::consumers::{self, Consumer, Use};
use ocitool_core::manifest;
use rayon::prelude::*;
use serde_yaml::{Mapping, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The namespace flux looks a Kustomization up in when its document names none (`-n` default).
const DEFAULT_NAMESPACE: &str = "flux-system";

/// Local checkouts of the sources Flux Kustomizations build from.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The checkout every GitRepository other than `flux-system` points at (`--set base_repo`).
    pub base_repo: Option<PathBuf>,
    /// Source name → its checkout (`--set source.NAME=DIR`); wins over `base_repo`.
    pub by_name: BTreeMap<String, PathBuf>,
    /// Builds of those checkouts so far; clones share it.
    memo: Memo,
}

impl Sources {
    pub fn new(base_repo: Option<PathBuf>, by_name: BTreeMap<String, PathBuf>) -> Sources {
        Sources {
            base_repo,
            by_name,
            memo: Memo::default(),
        }
    }

    /// `flux::build`, answered from the memo when `request` reads a checkout other than the
    /// fleet repository at `root` and was built before. A failure is kept as its message.
    fn build(&self, root: &Path, request: &flux::Request) -> Result<String, String> {
        if inside(request.source_root, root) {
            return flux::build(request).map_err(|e| e.to_string());
        }
        let key = MemoKey::of(request);
        if let Some(done) = self.memo.lock().get(&key) {
            return done.clone();
        }
        let built = flux::build(request).map_err(|e| e.to_string());
        self.memo.lock().insert(key, built.clone());
        built
    }
    /// The checkout `flux` builds from, or None when this machine has none.
    pub fn checkout(&self, root: &Path, flux: &FluxKustomization) -> Option<PathBuf> {
        if flux.is_own_source() {
            return Some(root.to_path_buf());
        }
        if let Some(dir) = self.by_name.get(&flux.source_name) {
            return Some(dir.clone());
        }
        (flux.source_kind == "GitRepository")
            .then(|| self.base_repo.clone())
            .flatten()
    }
}

/// Whether `dir` is `root` or under it, however either is spelled: a checkout inside the fleet
/// repository may change during the run (ocitool writes there), so its builds are not memoised.
fn inside(dir: &Path, root: &Path) -> bool {
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    real(dir).starts_with(real(root))
}

/// Everything a build's output depends on besides the checkout's files.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MemoKey {
    source_root: PathBuf,
    path: PathBuf,
    namespace: String,
    name: String,
    kustomization: String,
}

impl MemoKey {
    fn of(request: &flux::Request) -> MemoKey {
        MemoKey {
            source_root: request.source_root.to_path_buf(),
            path: request.path.to_path_buf(),
            namespace: request.namespace.to_string(),
            name: request.name.to_string(),
            kustomization: request.kustomization.to_string(),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Memo(Arc<Mutex<std::collections::HashMap<MemoKey, Result<String, String>>>>);

impl Memo {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<MemoKey, Result<String, String>>> {
        // A panic while holding the lock leaves the map as it was before the insert: still usable.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What became of one Flux Kustomization.
#[derive(Debug)]
pub enum Outcome {
    /// Its built documents.
    Built(Vec<Value>),
    /// flux refused it (or could not run): the command and flux's own words, for the reader.
    Failed(String),
    /// Its source has no checkout here.
    Unmapped,
}

/// One Flux Kustomization of the overlay and its build.
#[derive(Debug)]
pub struct Build<'a> {
    pub flux: &'a FluxKustomization,
    pub outcome: Outcome,
    /// `substituteFrom` references that could not be resolved (each `Kind/name: why`).
    pub unresolved: Vec<String>,
}

impl Build<'_> {
    pub fn docs(&self) -> &[Value] {
        match &self.outcome {
            Outcome::Built(docs) => docs,
            _ => &[],
        }
    }

    /// `` `name` (file) `` for messages.
    pub fn label(&self) -> String {
        format!("`{}` ({})", self.flux.name, self.flux.file)
    }

    /// `` `name` (Kind/source) ``: for messages about its source.
    pub fn source_label(&self) -> String {
        format!(
            "`{}` ({}/{})",
            self.flux.name, self.flux.source_kind, self.flux.source_name
        )
    }
}

/// Build every Flux Kustomization of the overlay, in parallel; then rebuild those whose
/// `substituteFrom` names ConfigMaps the first builds produced (flux's dry run skips them).
/// Without the `flux` CLI nothing can be built: that is one error (saying how to install it),
/// not a failure per Kustomization.
pub fn build_all<'a>(
    root: &Path,
    idx: &'a OverlayIndex,
    sources: &Sources,
) -> anyhow::Result<Vec<Build<'a>>> {
    let buildable = idx
        .flux_kustomizations
        .iter()
        .any(|f| sources.checkout(root, f).is_some());
    if buildable {
        tools::find(tools::FLUX)?;
    }
    let first: Vec<Build<'a>> = idx
        .flux_kustomizations
        .par_iter()
        .map(|flux| build_one(root, idx, sources, flux, &BTreeMap::new()))
        .collect();
    let config_maps = config_maps(&first);
    let builds = first
        .into_par_iter()
        .map(|build| {
            let Some(doc) = document(idx, build.flux) else {
                return build;
            };
            if substitute_from(doc).is_empty() {
                return build;
            }
            build_one(root, idx, sources, build.flux, &config_maps)
        })
        .collect();
    Ok(builds)
}

/// What a Kustomization sourced from the fleet repository at `root` applies, built as Flux builds
/// it (no `substituteFrom`); None when it does not build.
pub fn build_from_fleet(
    root: &Path,
    idx: &OverlayIndex,
    flux: &FluxKustomization,
) -> Option<Vec<Value>> {
    match build_one(root, idx, &Sources::default(), flux, &BTreeMap::new()).outcome {
        Outcome::Built(docs) => Some(docs),
        Outcome::Failed(_) | Outcome::Unmapped => None,
    }
}

/// (namespace, name) → data of every ConfigMap the builds produced.
fn config_maps(builds: &[Build]) -> BTreeMap<(String, String), Mapping> {
    let mut found = BTreeMap::new();
    for build in builds {
        for doc in build
            .docs()
            .iter()
            .filter(|d| manifest::is(d, "", "ConfigMap"))
        {
            let (Some(ns), Some(name)) = (manifest::namespace(doc), manifest::name(doc)) else {
                continue;
            };
            let data = doc.get("data").and_then(Value::as_mapping).cloned();
            found.insert((ns.to_string(), name.to_string()), data.unwrap_or_default());
        }
    }
    found
}

/// The Flux Kustomization's own document, as parsed from its file.
fn document<'i>(idx: &'i OverlayIndex, flux: &FluxKustomization) -> Option<&'i Value> {
    idx.documents.get(&flux.file)?.iter().find(|d| {
        manifest::is(d, crate::repo::FLUX_KUSTOMIZE_GROUP, "Kustomization")
            && manifest::name(d) == Some(flux.name.as_str())
    })
}

fn substitute_from(doc: &Value) -> Vec<Value> {
    manifest::at(doc, &["spec", "postBuild", "substituteFrom"])
        .and_then(Value::as_sequence)
        .cloned()
        .unwrap_or_default()
}

fn build_one<'a>(
    root: &Path,
    idx: &OverlayIndex,
    sources: &Sources,
    flux: &'a FluxKustomization,
    config_maps: &BTreeMap<(String, String), Mapping>,
) -> Build<'a> {
    let mut build = Build {
        flux,
        outcome: Outcome::Unmapped,
        unresolved: Vec::new(),
    };
    let Some(checkout) = sources.checkout(root, flux) else {
        return build;
    };
    let Some(doc) = document(idx, flux) else {
        build.outcome = Outcome::Failed("its document was not found again in its file".into());
        return build;
    };
    let namespace = manifest::namespace(doc).unwrap_or(DEFAULT_NAMESPACE);
    let (resolved, unresolved) = resolve_substitutions(doc, namespace, config_maps);
    build.unresolved = unresolved;
    let text = match serde_yaml::to_string(&resolved) {
        Ok(text) => text,
        Err(e) => {
            build.outcome = Outcome::Failed(format!("cannot serialise it: {e}"));
            return build;
        }
    };
    let request = flux::Request {
        name: &flux.name,
        namespace,
        kustomization: &text,
        source_root: &checkout,
        path: Path::new(flux.path.as_str()),
    };
    build.outcome = match sources.build(root, &request) {
        Ok(yaml) => match manifest::parse_documents(flux.file.as_str(), &yaml) {
            Ok(docs) => Outcome::Built(docs),
            Err(e) => Outcome::Failed(format!("flux printed YAML that does not parse: {e:#}")),
        },
        Err(message) => Outcome::Failed(message),
    };
    build
}

/// The Kustomization with `substituteFrom` ConfigMaps merged into `postBuild.substitute` the way
/// kustomize-controller merges them (fluxcd/pkg kustomize `LoadVariables`: references in order,
/// later keys win, newlines removed; then inline `substitute` wins over all), and the references
/// that could not be resolved. Secrets are never resolved: their values are encrypted in git and
/// would have to be decrypted for a build that only looks for consumers.
fn resolve_substitutions(
    doc: &Value,
    namespace: &str,
    config_maps: &BTreeMap<(String, String), Mapping>,
) -> (Value, Vec<String>) {
    let references = substitute_from(doc);
    if references.is_empty() {
        return (doc.clone(), Vec::new());
    }
    let mut vars = Mapping::new();
    let mut unresolved = Vec::new();
    for reference in &references {
        let kind = manifest::str_at(reference, &["kind"]).unwrap_or_default();
        let name = manifest::str_at(reference, &["name"]).unwrap_or_default();
        let optional = reference.get("optional").and_then(Value::as_bool) == Some(true);
        match (
            kind,
            config_maps.get(&(namespace.to_string(), name.to_string())),
        ) {
            ("ConfigMap", Some(data)) => {
                for (key, value) in data {
                    let value = value.as_str().unwrap_or_default().replace('\n', "");
                    vars.insert(key.clone(), value.into());
                }
            }
            ("ConfigMap", None) if optional => {}
            ("ConfigMap", None) => unresolved.push(format!(
                "ConfigMap/{name}: no build of this overlay produces it in namespace {namespace}"
            )),
            _ => unresolved.push(format!(
                "{kind}/{name}: ocitool does not decrypt Secrets for a build"
            )),
        }
    }
    let mut resolved = doc.clone();
    let inline = manifest::at(doc, &["spec", "postBuild", "substitute"])
        .and_then(Value::as_mapping)
        .cloned()
        .unwrap_or_default();
    vars.extend(inline);
    if let Some(post_build) = resolved
        .get_mut("spec")
        .and_then(|s| s.get_mut("postBuild"))
        .and_then(Value::as_mapping_mut)
    {
        post_build.insert("substitute".into(), Value::Mapping(vars));
    }
    (resolved, unresolved)
}

/// Who uses the Secret, namespace by namespace, and what could not be seen.
#[derive(Debug, Default)]
pub struct Analysis {
    /// Namespace → the objects there that pull with the Secret.
    pub needed: BTreeMap<String, BTreeSet<String>>,
    /// Objects that name the Secret but cannot use a dockerconfigjson, with the building file.
    pub misused: Vec<(String, Consumer, &'static str)>,
    /// Objects that pull with the Secret but land in no namespace, with their Kustomization.
    pub unplaced: Vec<(String, String)>,
    /// Namespace → Kustomizations that deploy into it but were not built (unknown contents).
    pub unknown: BTreeMap<String, Vec<String>>,
    /// Kustomizations not built that name no targetNamespace: they could deploy anywhere.
    pub unknown_anywhere: Vec<String>,
    /// Kustomizations whose source has no checkout here: `` `name` (GitRepository/source) ``.
    pub unmapped: Vec<String>,
    /// Kustomizations that do not build: (file, message).
    pub failed: Vec<(String, String)>,
    /// Unresolved `substituteFrom` references: (file, message).
    pub unresolved: Vec<(String, String)>,
}

impl Analysis {
    /// Whether what deploys into `namespace` is partly unknown.
    pub fn is_unknown(&self, namespace: &str) -> bool {
        self.unknown.contains_key(namespace) || !self.unknown_anywhere.is_empty()
    }

    /// The unchecked Kustomizations that may deploy into `namespace`.
    pub fn unknown_in(&self, namespace: &str) -> Vec<String> {
        let mut all: Vec<String> = self.unknown.get(namespace).cloned().unwrap_or_default();
        all.extend(self.unknown_anywhere.iter().cloned());
        all
    }
}

/// Summarise `builds` for the Secret `secret` kept in `source_namespace` (which needs no mirror).
pub fn analyse(builds: &[Build], secret: &str, source_namespace: &str) -> Analysis {
    let mut out = Analysis::default();
    for build in builds {
        let target = build.flux.target_namespace.as_deref();
        let file = build.flux.file.to_string();
        for (reference, why) in build.unresolved.iter().filter_map(|u| u.split_once(": ")) {
            out.unresolved.push((
                file.clone(),
                format!(
                    "Flux Kustomization `{}` was built without substituteFrom {reference} ({why}); \
                     objects using its variables may be missing from the analysis",
                    build.flux.name
                ),
            ));
        }
        match &build.outcome {
            Outcome::Built(docs) => {
                for consumer in consumers::consumers(docs, target, secret) {
                    record(&mut out, build, consumer);
                }
            }
            Outcome::Failed(message) => {
                out.failed.push((file, message.clone()));
                mark_unknown(&mut out, build);
            }
            Outcome::Unmapped => {
                out.unmapped.push(build.source_label());
                mark_unknown(&mut out, build);
            }
        }
    }
    out.needed.remove(source_namespace);
    out
}

fn record(out: &mut Analysis, build: &Build, consumer: Consumer) {
    match (consumer.uses.clone(), consumer.namespace.clone()) {
        (Use::WrongKind(why), _) => out
            .misused
            .push((build.flux.file.to_string(), consumer, why)),
        (Use::Pulls, Some(ns)) => {
            out.needed.entry(ns).or_default().insert(consumer.object);
        }
        (Use::Pulls, None) => out.unplaced.push((consumer.object, build.label())),
    }
}

fn mark_unknown(out: &mut Analysis, build: &Build) {
    match &build.flux.target_namespace {
        Some(ns) => out
            .unknown
            .entry(ns.clone())
            .or_default()
            .push(build.label()),
        None => out.unknown_anywhere.push(build.label()),
    }
}

/// The namespaces a consolidated source must be mirrored into, and what the reader should know.
#[derive(Debug, Clone, Default)]
pub struct NamespacePlan {
    /// Every namespace that had a per-service copy (migration loses nothing) and every namespace
    /// where built output uses the Secret; sorted.
    pub namespaces: Vec<String>,
    /// Of those, the ones only a consumer in built output asks for (no per-service copy).
    pub added: Vec<String>,
    /// Kept without a visible consumer, not checked, wrong kind, no namespace, unresolved vars.
    pub warnings: Vec<String>,
}

/// Plan the namespaces of a cluster's source from the namespaces of its per-service copies and
/// the analysis of its builds; a Kustomization that does not build is an error naming its file.
pub fn plan_namespaces(
    per_service: &[String],
    analysis: &Analysis,
    secret: &str,
) -> anyhow::Result<NamespacePlan> {
    if !analysis.failed.is_empty() {
        let lines: Vec<String> = analysis
            .failed
            .iter()
            .map(|(file, why)| format!("  {file}: {why}"))
            .collect();
        anyhow::bail!(
            "a Flux Kustomization does not build as Flux builds it, so who needs `{secret}` cannot be known:\n{}\n\
             fix it (or the source checkout given with --set base_repo/source.NAME) and run again; nothing was written",
            lines.join("\n")
        );
    }
    let kept: BTreeSet<&str> = per_service.iter().map(String::as_str).collect();
    let mut plan = NamespacePlan {
        added: analysis
            .needed
            .keys()
            .filter(|ns| !kept.contains(ns.as_str()))
            .cloned()
            .collect(),
        ..NamespacePlan::default()
    };
    let all: BTreeSet<&str> = kept
        .iter()
        .copied()
        .chain(analysis.needed.keys().map(String::as_str))
        .collect();
    plan.namespaces = all.into_iter().map(String::from).collect();
    for ns in kept.iter().filter(|ns| !analysis.needed.contains_key(**ns)) {
        plan.warnings.push(if analysis.is_unknown(ns) {
            format!(
                "namespace {ns} keeps its mirror (it had a per-service copy); not checked whether anything there \
                 uses `{secret}`: Flux Kustomization(s) {} were not built",
                analysis.unknown_in(ns).join(", ")
            )
        } else {
            format!(
                "namespace {ns} keeps its mirror (it had a per-service copy), but nothing built for this cluster \
                 uses `{secret}` there; remove it from the source's namespace lists once you know it is unused"
            )
        });
    }
    plan.warnings.extend(describe_unseen(analysis, secret));
    Ok(plan)
}

/// Warnings about what the analysis could not see or place.
fn describe_unseen(analysis: &Analysis, secret: &str) -> Vec<String> {
    let mut out = Vec::new();
    if !analysis.unmapped.is_empty() {
        out.push(format!(
            "not checked: Flux Kustomization(s) {} build from sources with no checkout here, so namespaces only \
             they use `{secret}` in are not added; pass --set base_repo=DIR (every other GitRepository) or \
             --set source.NAME=DIR (one source)",
            analysis.unmapped.join(", ")
        ));
    }
    for (file, consumer, why) in &analysis.misused {
        out.push(format!(
            "{} ({file}) uses `{secret}` but is {why}",
            consumer.object
        ));
    }
    for (object, kustomization) in &analysis.unplaced {
        out.push(format!(
            "{object}, built by Flux Kustomization {kustomization}, uses `{secret}` but has no namespace; \
             set targetNamespace or metadata.namespace"
        ));
    }
    out.extend(
        analysis
            .unresolved
            .iter()
            .map(|(file, m)| format!("{file}: {m}")),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real flux CLI: a memoised build of another checkout is not run again (the checkout
    /// changed, the answer did not), clones of `Sources` share the memo, and the fleet repository
    /// itself is built afresh every time.
    #[test]
    fn builds_of_other_checkouts_are_memoised_and_the_fleet_is_always_rebuilt() {
        let (fleet, base) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let write = |root: &Path, value: &str| {
            std::fs::create_dir_all(root.join("app")).unwrap();
            let config_map = format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: info}}\ndata: {{value: {value}}}\n"
            );
            std::fs::write(root.join("app/info.yaml"), config_map).unwrap();
        };
        write(fleet.path(), "first");
        write(base.path(), "first");
        let kustomization = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n\
             metadata: {name: app, namespace: flux-system}\n\
             spec: {interval: 5m, path: ./app, targetNamespace: apps, sourceRef: {kind: GitRepository, name: base}}\n";
        let fleet_root = fleet.path();
        let sources = Sources::new(Some(base.path().to_path_buf()), BTreeMap::new());
        let build = |sources: &Sources, source_root: &Path| {
            let request = flux::Request {
                name: "app",
                namespace: "flux-system",
                kustomization,
                source_root,
                path: Path::new("app"),
            };
            sources.build(fleet_root, &request).unwrap()
        };
        assert!(build(&sources, base.path()).contains("value: first"));
        assert!(build(&sources, fleet.path()).contains("value: first"));
        write(fleet.path(), "second");
        write(base.path(), "second");
        assert!(build(&sources.clone(), base.path()).contains("value: first"));
        assert!(build(&sources, fleet.path()).contains("value: second"));
        let fresh = Sources::new(Some(base.path().to_path_buf()), BTreeMap::new());
        assert!(build(&fresh, base.path()).contains("value: second"));
    }

    #[test]
    fn config_maps_merge_in_order_and_inline_values_win() {
        let doc: Value = serde_yaml::from_str(
            "spec:\n  postBuild:\n    substitute: {A: inline}\n    substituteFrom:\n\
             \x20     - {kind: ConfigMap, name: one}\n      - {kind: ConfigMap, name: two}\n\
             \x20     - {kind: ConfigMap, name: gone, optional: true}\n      - {kind: ConfigMap, name: missing}\n\
             \x20     - {kind: Secret, name: vars}\n",
        )
        .unwrap();
        let map = |yaml: &str| serde_yaml::from_str::<Mapping>(yaml).unwrap();
        let config_maps = BTreeMap::from([
            (
                ("apps".to_string(), "one".to_string()),
                map("{A: one, B: one, C: \"multi\\nline\"}"),
            ),
            (("apps".to_string(), "two".to_string()), map("{B: two}")),
        ]);
        let (resolved, unresolved) = resolve_substitutions(&doc, "apps", &config_maps);
        let vars = &resolved["spec"]["postBuild"]["substitute"];
        assert_eq!(vars["A"], "inline");
        assert_eq!(vars["B"], "two");
        assert_eq!(vars["C"], "multiline");
        assert_eq!(unresolved.len(), 2, "{unresolved:?}");
        assert!(unresolved[0].starts_with("ConfigMap/missing: "));
        assert!(unresolved[1].starts_with("Secret/vars: "));
    }
}
