//! Which Flux sources a cluster overlay defines in what Flux applies, and whether a Flux
//! Kustomization's `sourceRef` resolves to one: what `deploy-reflector` checks before it wires
//! Reflector, and what consolidate's `require_reflector` checks of the wiring it finds.
//!
//! What Flux applies is followed from the overlay root (the `flux-system` Kustomization's path)
//! through `resources:` entries, as kustomize does; a directory without a kustomization file gets
//! the one Flux generates (fluxcd/pkg/kustomize v1.35.6, `findOrGenerateKustomization` and
//! `scanManifests`: every YAML file, and each subdirectory holding a kustomization file as one
//! entry). This module only reads an [`OverlayIndex`]; it never decides what to write.

use crate::repo::{FLUX_SOURCE_GROUP, FluxKustomization, OWN_SOURCE, Overlay, OverlayIndex};
use anyhow::Result;
use ocitool_adapters::changeset::Changeset;
use ocitool_core::manifest;
use ocitool_core::repo_path::RepoPath;
use std::collections::{BTreeMap, BTreeSet};

pub const GIT_REPOSITORY: &str = "GitRepository";

/// A Flux source object (source.toolkit.fluxcd.io) in a file Flux applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FluxSource {
    pub file: RepoPath,
    pub kind: String,
    pub name: String,
    /// Where it lands: a kustomization's `namespace:` on the way, else its own `metadata.namespace`.
    pub namespace: Option<String>,
    pub url: Option<String>,
}

impl FluxSource {
    /// Whether it is `kind`/`name` in `namespace` (None: a namespace that cannot be told matches any).
    pub fn is(&self, kind: &str, name: &str, namespace: Option<&str>) -> bool {
        let same_namespace = match (namespace, self.namespace.as_deref()) {
            (Some(wanted), Some(found)) => wanted == found,
            _ => true,
        };
        self.kind == kind && self.name == name && same_namespace
    }

    /// "`name` in ns (file, url)", for listings in messages.
    pub fn describe(&self) -> String {
        let namespace = self.namespace.as_deref().unwrap_or("no namespace");
        let url = self.url.as_deref().unwrap_or("no url");
        format!("`{}` in {namespace} ({}, {url})", self.name, self.file)
    }
}

/// The files Flux applies from an overlay, each with the namespace a kustomization on the way
/// sets (the outermost wins: kustomize runs an outer kustomization's namespace transformer last).
#[derive(Debug, Default)]
pub struct Applied {
    files: BTreeMap<RepoPath, Option<String>>,
}

impl Applied {
    pub fn contains(&self, file: &RepoPath) -> bool {
        self.files.contains_key(file)
    }

    /// The namespace a kustomization sets for `file`, if any does.
    pub fn namespace_of(&self, file: &RepoPath) -> Option<&str> {
        self.files.get(file)?.as_deref()
    }
}

/// Follow the overlay's kustomizations from its root.
pub fn applied(idx: &OverlayIndex, overlay: &Overlay) -> Applied {
    let mut applied = Applied::default();
    let mut queue: Vec<(RepoPath, Option<String>)> = vec![(overlay.path.clone(), None)];
    let mut seen = BTreeSet::new();
    while let Some((path, namespace)) = queue.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        if let Some(k) = idx.kustomization_in(&path) {
            let namespace = namespace.or_else(|| k.namespace.clone());
            queue.extend(k.targets().map(|t| (t, namespace.clone())));
        } else if path == overlay.path {
            queue.extend(generated_entries(idx, &path).into_iter().map(|t| (t, None)));
        } else if idx.documents.contains_key(&path) {
            applied.files.entry(path).or_insert(namespace);
        }
    }
    applied
}

/// The entries of the kustomization Flux generates for `dir`: YAML files not below a
/// subdirectory with a kustomization file, and the topmost such subdirectories.
fn generated_entries(idx: &OverlayIndex, dir: &RepoPath) -> Vec<RepoPath> {
    let kustomized: BTreeSet<&RepoPath> = idx
        .kustomizations
        .iter()
        .map(|k| &k.dir)
        .filter(|d| *d != dir && d.starts_with(dir))
        .collect();
    let covered = |path: &RepoPath| kustomized.iter().any(|d| path != *d && path.starts_with(d));
    let dirs = kustomized.iter().copied().filter(|d| !covered(d)).cloned();
    let files = idx
        .documents
        .keys()
        .filter(|f| f.starts_with(dir) && !covered(f))
        .cloned();
    dirs.chain(files).collect()
}

/// Every Flux source in the files Flux applies.
pub fn sources(idx: &OverlayIndex, applied: &Applied) -> Vec<FluxSource> {
    let mut found = Vec::new();
    for (file, docs) in idx.documents.iter().filter(|(f, _)| applied.contains(f)) {
        for doc in docs.iter().filter(|d| is_source(d)) {
            let own = manifest::namespace(doc).map(String::from);
            found.push(FluxSource {
                file: file.clone(),
                kind: manifest::kind(doc).unwrap_or_default().to_string(),
                name: manifest::name(doc).unwrap_or_default().to_string(),
                namespace: applied.namespace_of(file).map(String::from).or(own),
                url: manifest::str_at(doc, &["spec", "url"]).map(String::from),
            });
        }
    }
    found
}

fn is_source(doc: &serde_yaml::Value) -> bool {
    manifest::api_group(doc) == FLUX_SOURCE_GROUP
}

/// Files defining `kind`/`name` that Flux does not apply (no kustomization lists them).
pub fn unapplied_definitions(
    idx: &OverlayIndex,
    applied: &Applied,
    kind: &str,
    name: &str,
) -> Vec<RepoPath> {
    idx.documents
        .iter()
        .filter(|(file, docs)| {
            !applied.contains(file)
                && docs.iter().any(|d| {
                    is_source(d)
                        && manifest::kind(d) == Some(kind)
                        && manifest::name(d) == Some(name)
                })
        })
        .map(|(file, _)| file.clone())
        .collect()
}

/// "`a` in ns (file, url); `b` …" for the GitRepositories in `sources`, or "none".
pub fn listing(sources: &[FluxSource]) -> String {
    let items: Vec<String> = sources
        .iter()
        .filter(|s| s.kind == GIT_REPOSITORY)
        .map(FluxSource::describe)
        .collect();
    if items.is_empty() {
        return "none".to_string();
    }
    items.join("; ")
}

/// Whether the overlay deploys Reflector in a way Flux can carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReflectorWiring {
    /// Nothing in the overlay deploys Reflector.
    Absent,
    /// A Flux Kustomization applying `…/managed-services/reflector` that Flux applies and whose
    /// source resolves, or a HelmRelease `reflector` among the overlay's files.
    Resolves,
    /// Found, but Flux could not carry it out; the message names the file and the fix.
    Dangling(String),
}

/// The Reflector wiring of `overlay`: the first Kustomization of `…/managed-services/reflector`
/// that resolves, else why the first one found does not.
pub fn reflector_wiring(
    cs: &Changeset,
    idx: &OverlayIndex,
    overlay: &Overlay,
) -> Result<ReflectorWiring> {
    let helm_release = idx.documents.values().flatten().any(|d| {
        manifest::is(d, "helm.toolkit.fluxcd.io", "HelmRelease")
            && manifest::name(d) == Some("reflector")
    });
    if helm_release {
        return Ok(ReflectorWiring::Resolves);
    }
    let applied = applied(idx, overlay);
    let sources = sources(idx, &applied);
    let mut first_problem = None;
    let wirings = idx
        .flux_kustomizations
        .iter()
        .filter(|f| f.path.as_str().ends_with("managed-services/reflector"));
    for wiring in wirings {
        match problem(cs, idx, overlay, &applied, &sources, wiring)? {
            None => return Ok(ReflectorWiring::Resolves),
            Some(problem) => {
                first_problem.get_or_insert(problem);
            }
        }
    }
    Ok(first_problem.map_or(ReflectorWiring::Absent, ReflectorWiring::Dangling))
}

/// Why Flux could not carry out `wiring`, or None when it can.
fn problem(
    cs: &Changeset,
    idx: &OverlayIndex,
    overlay: &Overlay,
    applied: &Applied,
    sources: &[FluxSource],
    wiring: &FluxKustomization,
) -> Result<Option<String>> {
    let what = format!(
        "{}: Flux Kustomization `{}` (applying {})",
        wiring.file, wiring.name, wiring.path
    );
    let fix = format!(
        "Wire Reflector to a source that exists (ocitool run deploy-reflector for this cluster, with \
         --set base_source=NAME, or --set base_url=URL to render one, and --set force=true to replace \
         {}), or pass --set require_reflector=false",
        wiring.file
    );
    if !applied.contains(&wiring.file) {
        return Ok(Some(format!(
            "{what} is in no kustomization reachable from {}, so Flux never applies it. {fix}",
            overlay.path
        )));
    }
    // "Namespace of the referent, defaults to the namespace of the Kubernetes resource object
    // that contains the reference" (kustomize-controller api v1.9.5, v1/reference_types.go).
    let own_namespace = applied
        .namespace_of(&wiring.file)
        .or(wiring.namespace.as_deref());
    let namespace = wiring.source_namespace.as_deref().or(own_namespace);
    let (kind, name) = (&wiring.source_kind, &wiring.source_name);
    if !sources.iter().any(|s| s.is(kind, name, namespace)) {
        let mut missing = format!(
            "{what} names {kind} `{name}` in {}, which Flux does not apply from {}",
            namespace.unwrap_or("its namespace"),
            overlay.path
        );
        for file in unapplied_definitions(idx, applied, kind, name) {
            missing += &format!(" ({file} defines it, but no kustomization lists that file)");
        }
        return Ok(Some(format!(
            "{missing}: the reference dangles, so Flux would never deploy Reflector and nothing would copy \
             the source Secret. GitRepositories Flux applies here: {}. {fix}",
            listing(sources)
        )));
    }
    if wiring.is_own_source() && cs.files_under(&wiring.path)?.is_empty() {
        return Ok(Some(format!(
            "{what} builds {path} of the fleet repository itself (GitRepository {OWN_SOURCE}), but {path} \
             does not exist in this repository, so Flux would fail to build it. Render the base here \
             (ocitool run deploy-reflector --repo <this repository>, without customer and cluster), or \
             point its sourceRef at the base repository's GitRepository",
            path = wiring.path
        )));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo;

    const ROOT: &str = "applications/overlays/prod";

    fn overlay() -> Overlay {
        Overlay {
            customer: None,
            cluster: "prod".into(),
            path: RepoPath::new(ROOT).unwrap(),
        }
    }

    fn changeset(files: &[(&str, &str)]) -> (tempfile::TempDir, Changeset) {
        let dir = tempfile::tempdir().unwrap();
        let mut cs = Changeset::new(dir.path()).unwrap();
        for (path, text) in files {
            cs.write(&RepoPath::new(&format!("{ROOT}/{path}")).unwrap(), text)
                .unwrap();
        }
        (dir, cs)
    }

    fn git_repository(name: &str, namespace: Option<&str>) -> String {
        let ns = namespace
            .map(|n| format!("  namespace: {n}\n"))
            .unwrap_or_default();
        format!(
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: {name}\n{ns}\
             spec:\n  url: https://git.example.com/{name}.git\n"
        )
    }

    const WIRING: &str = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  \
        name: reflector\n  namespace: flux-system\nspec:\n  path: ./applications/base/managed-services/reflector\n  \
        sourceRef:\n    kind: GitRepository\n    name: base\n";

    fn wiring(files: &[(&str, &str)]) -> ReflectorWiring {
        let (_dir, cs) = changeset(files);
        let idx = repo::index(&cs, &overlay()).unwrap();
        reflector_wiring(&cs, &idx, &overlay()).unwrap()
    }

    fn dangling(files: &[(&str, &str)]) -> String {
        match wiring(files) {
            ReflectorWiring::Dangling(message) => message,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_listed_wiring_with_its_source_resolves() {
        let base = git_repository("base", Some("flux-system"));
        let files = [
            (
                "kustomization.yaml",
                "resources:\n  - sources\n  - reflector.yaml\n",
            ),
            ("sources/kustomization.yaml", "resources:\n  - base.yaml\n"),
            ("sources/base.yaml", base.as_str()),
            ("reflector.yaml", WIRING),
        ];
        assert_eq!(wiring(&files), ReflectorWiring::Resolves);
        assert_eq!(wiring(&files[..1]), ReflectorWiring::Absent);
    }

    #[test]
    fn a_missing_source_dangles_naming_what_exists() {
        let other = git_repository("opencenter-cert-manager", Some("flux-system"));
        let message = dangling(&[
            (
                "kustomization.yaml",
                "resources:\n  - other.yaml\n  - reflector.yaml\n",
            ),
            ("other.yaml", other.as_str()),
            ("reflector.yaml", WIRING),
        ]);
        assert!(
            message.starts_with(&format!(
                "{ROOT}/reflector.yaml: Flux Kustomization `reflector` (applying applications/base/managed-services/reflector) \
                 names GitRepository `base` in flux-system, which Flux does not apply"
            )),
            "{message}"
        );
        assert!(
            message.contains(&format!(
                "`opencenter-cert-manager` in flux-system ({ROOT}/other.yaml, https://git.example.com/opencenter-cert-manager.git)"
            )),
            "{message}"
        );
        assert!(
            message.contains("--set require_reflector=false"),
            "{message}"
        );
    }

    #[test]
    fn a_source_in_another_namespace_or_in_an_unlisted_file_does_not_resolve() {
        let elsewhere = git_repository("base", Some("other"));
        let message = dangling(&[
            (
                "kustomization.yaml",
                "resources:\n  - base.yaml\n  - reflector.yaml\n",
            ),
            ("base.yaml", elsewhere.as_str()),
            ("reflector.yaml", WIRING),
        ]);
        assert!(message.contains("`base` in other"), "{message}");
        // A kustomization's namespace: moves it where the wiring looks.
        let moved = [
            (
                "kustomization.yaml",
                "namespace: flux-system\nresources:\n  - base.yaml\n  - reflector.yaml\n",
            ),
            ("base.yaml", elsewhere.as_str()),
            ("reflector.yaml", WIRING),
        ];
        assert_eq!(wiring(&moved), ReflectorWiring::Resolves);
        let base = git_repository("base", Some("flux-system"));
        let message = dangling(&[
            ("kustomization.yaml", "resources:\n  - reflector.yaml\n"),
            ("base.yaml", base.as_str()),
            ("reflector.yaml", WIRING),
        ]);
        assert!(
            message.contains(&format!(
                "({ROOT}/base.yaml defines it, but no kustomization lists that file)"
            )),
            "{message}"
        );
    }

    #[test]
    fn an_unlisted_wiring_is_never_applied() {
        let message = dangling(&[
            ("kustomization.yaml", "resources: []\n"),
            ("reflector.yaml", WIRING),
        ]);
        assert!(
            message.contains("is in no kustomization reachable from"),
            "{message}"
        );
    }

    #[test]
    fn without_a_root_kustomization_flux_generates_one() {
        let base = git_repository("base", Some("flux-system"));
        let files = [
            ("base.yaml", base.as_str()),
            ("fluxcd/reflector.yaml", WIRING),
            (
                "fluxcd/kustomization.yaml",
                "resources:\n  - reflector.yaml\n",
            ),
            ("unlisted/kustomization.yaml", "resources: []\n"),
            ("unlisted/base.yaml", "kind: ConfigMap\n"),
        ];
        assert_eq!(wiring(&files), ReflectorWiring::Resolves);
        let (_dir, cs) = changeset(&files);
        let idx = repo::index(&cs, &overlay()).unwrap();
        let applied = applied(&idx, &overlay());
        let at = |p: &str| RepoPath::new(&format!("{ROOT}/{p}")).unwrap();
        assert!(applied.contains(&at("fluxcd/reflector.yaml")));
        assert!(!applied.contains(&at("unlisted/base.yaml")));
    }

    #[test]
    fn the_fleet_repository_as_source_needs_the_base_path_in_it() {
        let own = WIRING.replace("name: base", "name: flux-system");
        let sync = git_repository("flux-system", Some("flux-system"));
        let files = [
            (
                "kustomization.yaml",
                "resources:\n  - gotk-sync.yaml\n  - reflector.yaml\n",
            ),
            ("gotk-sync.yaml", sync.as_str()),
            ("reflector.yaml", own.as_str()),
        ];
        let message = dangling(&files);
        assert!(
            message.contains(
                "builds applications/base/managed-services/reflector of the fleet repository itself"
            ),
            "{message}"
        );
        let (_dir, mut cs) = changeset(&files);
        cs.write(
            &RepoPath::new("applications/base/managed-services/reflector/kustomization.yaml")
                .unwrap(),
            "resources: []\n",
        )
        .unwrap();
        let idx = repo::index(&cs, &overlay()).unwrap();
        assert_eq!(
            reflector_wiring(&cs, &idx, &overlay()).unwrap(),
            ReflectorWiring::Resolves
        );
    }
}
