//! The fleet repository as ocitool sees it: customers, cluster overlays, Flux Kustomizations,
//! kustomization files, and every credentials file with its service, namespace and references.
//!
//! Layout: overlays at `applications/overlays/<cluster>/` (a single-customer repo),
//! `customers/<customer>/applications/overlays/<cluster>/` (as openCenter-cli lays out customer
//! repositories) or `<customer>/applications/overlays/<cluster>/`; per-service credentials at
//! `<overlay>/services/<service>/oci-creds.yaml` and `<overlay>/managed-services/<service>/oci-creds.yaml`,
//! or in a shared folder (`services/global/<name>/oci-creds.yaml`) that several services'
//! kustomizations include; the consolidated source at `<overlay>/flux-system/oci-creds.yaml`. Everything is read through a
//! [`Changeset`], so a scan sees what the script has staged. This module only reads; it never
//! decrypts (that needs keys, see [`ocitool_adapters::sops`]) and never decides what to change.

use crate::flux_sources::{self, ReflectorWiring};
use anyhow::{Context, Result, bail};
use ocitool_adapters::changeset::Changeset;
use ocitool_core::kustomize;
use ocitool_core::manifest;
use ocitool_core::repo_path::RepoPath;
use ocitool_core::secret::{self, FILE_NAME};
use serde_yaml::Value;
use std::collections::BTreeMap;

const OVERLAYS: &str = "applications/overlays";
const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
pub const FLUX_KUSTOMIZE_GROUP: &str = "kustomize.toolkit.fluxcd.io";
pub const FLUX_SOURCE_GROUP: &str = "source.toolkit.fluxcd.io";
/// The overlay's own GitRepository: Flux Kustomizations sourced from it have repo-root-relative paths.
pub const OWN_SOURCE: &str = "flux-system";

/// One cluster's overlay directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    pub customer: Option<String>,
    pub cluster: String,
    /// Repo-relative, e.g. `customers/acme/applications/overlays/prod`.
    pub path: RepoPath,
}

impl Overlay {
    /// `acme/prod`, or `prod` in a single-customer repo.
    pub fn label(&self) -> String {
        match &self.customer {
            Some(c) => format!("{c}/{}", self.cluster),
            None => self.cluster.clone(),
        }
    }

    /// `rel` inside the overlay. `rel` is a layout path ocitool itself spells (`flux-system/…`,
    /// `services/`), never user input, so climbing out of the overlay is a programming error.
    #[track_caller]
    pub fn join(&self, rel: &str) -> RepoPath {
        match self.path.join(rel) {
            Ok(path) if path.starts_with(&self.path) => path,
            _ => panic!("{rel}: not a path inside overlay {}", self.path),
        }
    }

    /// Where the consolidated source Secret lives.
    pub fn source_path(&self) -> RepoPath {
        self.join(&format!("flux-system/{FILE_NAME}"))
    }
}

fn subdirs(cs: &Changeset, rel: &str) -> Vec<String> {
    let dir = if rel.is_empty() {
        cs.root().to_path_buf()
    } else {
        cs.root().join(rel)
    };
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().to_str().map(String::from))
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// Where customers' directories may sit: `customers/<customer>/` or `<customer>/` at the root.
const CUSTOMER_PARENTS: [&str; 2] = ["customers/", ""];

/// `applications/overlays` of `customer` at every place it exists (one, or two when ambiguous).
fn customer_roots(cs: &Changeset, customer: &str) -> Vec<String> {
    CUSTOMER_PARENTS
        .iter()
        .map(|parent| format!("{parent}{customer}/{OVERLAYS}"))
        .filter(|root| cs.root().join(root).is_dir())
        .collect()
}

/// The overlays directory of `customer`, or of the repo itself (a single-customer repo).
fn overlays_root(cs: &Changeset, customer: Option<&str>) -> Result<String> {
    let Some(customer) = customer else {
        return Ok(OVERLAYS.to_string());
    };
    match customer_roots(cs, customer).as_slice() {
        [one] => Ok(one.clone()),
        [] => {
            let known = customers(cs);
            bail!(
                "unknown customer `{customer}`: {} has no customers/{customer}/{OVERLAYS}/ nor {customer}/{OVERLAYS}/ \
                 (customers here: {})",
                cs.root().display(),
                list_or_none(&known)
            )
        }
        both => bail!(
            "customer `{customer}` is ambiguous: both {} exist; keep one of them (move or remove the other) \
             and run again",
            both.iter()
                .map(|r| format!("{r}/"))
                .collect::<Vec<_>>()
                .join(" and ")
        ),
    }
}

/// `a, b`, or `none`.
pub(crate) fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

/// Customers of a multi-customer repo: directories with `applications/overlays`, either at the
/// top level or under `customers/` (sorted, each name once even when both places have it).
pub fn customers(cs: &Changeset) -> Vec<String> {
    let mut names: Vec<String> = CUSTOMER_PARENTS
        .iter()
        .flat_map(|parent| {
            subdirs(cs, parent.trim_end_matches('/'))
                .into_iter()
                .filter(move |c| cs.root().join(format!("{parent}{c}/{OVERLAYS}")).is_dir())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Every cluster overlay of `customer`; with no customer, those of a single-customer repo plus
/// those of every customer.
pub fn overlays(cs: &Changeset, customer: Option<&str>) -> Result<Vec<Overlay>> {
    let owners: Vec<Option<String>> = match customer {
        Some(c) => vec![Some(c.to_string())],
        None => std::iter::once(None)
            .chain(customers(cs).into_iter().map(Some))
            .collect(),
    };
    let mut all = Vec::new();
    for owner in owners {
        let root = overlays_root(cs, owner.as_deref())?;
        for cluster in subdirs(cs, &root) {
            all.push(Overlay {
                customer: owner.clone(),
                path: RepoPath::new(&format!("{root}/{cluster}"))?,
                cluster,
            });
        }
    }
    Ok(all)
}

/// The overlay of one cluster, or an error listing the clusters there are.
pub fn overlay(cs: &Changeset, customer: Option<&str>, cluster: &str) -> Result<Overlay> {
    let candidates = overlays(cs, customer)?;
    let scope: Vec<&Overlay> = candidates
        .iter()
        .filter(|o| o.customer.as_deref() == customer)
        .collect();
    if let Some(found) = scope.iter().find(|o| o.cluster == cluster) {
        return Ok((*found).clone());
    }
    let known: Vec<String> = scope.iter().map(|o| o.cluster.clone()).collect();
    let where_ = overlays_root(cs, customer)?;
    bail!(
        "unknown cluster `{cluster}`: there is no {where_}/{cluster}/ (clusters there: {}){}",
        list_or_none(&known),
        if customer.is_none() {
            "; in a multi-customer repo pass --set customer=<name>"
        } else {
            ""
        }
    )
}

/// A `kustomization.yaml` file: its directory, namespace and resources.
#[derive(Debug, Clone)]
pub struct KustomizationFile {
    pub path: RepoPath,
    pub dir: RepoPath,
    pub text: String,
    pub namespace: Option<String>,
    pub resources: Vec<String>,
    /// Its documents, parsed once by [`index`].
    pub docs: Vec<Value>,
}

/// A Flux `Kustomization` (kustomize.toolkit.fluxcd.io) found in the overlay.
#[derive(Debug, Clone)]
pub struct FluxKustomization {
    pub file: RepoPath,
    pub name: String,
    /// `metadata.namespace`, if the manifest sets it.
    pub namespace: Option<String>,
    /// `spec.path` as Flux resolves it (`./a/b/` → `a/b`, see [`RepoPath::within_root`]):
    /// relative to the root of its source.
    pub path: RepoPath,
    pub target_namespace: Option<String>,
    pub source_kind: String,
    pub source_name: String,
    /// `spec.sourceRef.namespace`; when absent Flux uses the Kustomization's own namespace.
    pub source_namespace: Option<String>,
    pub decryption_provider: Option<String>,
    /// `spec.decryption.secretRef.name`: the Secret holding the cluster's sops key.
    pub decryption_secret: Option<String>,
}

impl FluxKustomization {
    /// Whether it builds from the fleet repository itself (GitRepository `flux-system`, as
    /// `flux bootstrap` names it), so its `spec.path` is repo-root-relative.
    pub fn is_own_source(&self) -> bool {
        self.source_kind == "GitRepository" && self.source_name == OWN_SOURCE
    }
}

/// Everything YAML in the overlay, parsed once.
#[derive(Debug, Default)]
pub struct OverlayIndex {
    pub kustomizations: Vec<KustomizationFile>,
    pub flux_kustomizations: Vec<FluxKustomization>,
    /// Every document of every other YAML file, by file.
    pub documents: BTreeMap<RepoPath, Vec<Value>>,
    /// What the fleet-sourced Flux Kustomizations reach, computed on first use ([`Self::reached`]).
    reached: std::sync::OnceLock<Reached>,
}

/// Path → (index into `flux_kustomizations`, the outermost `namespace:` on the chain) for every
/// `resources:` chain from a fleet-sourced Flux Kustomization's path to that path.
type Reached = BTreeMap<RepoPath, Vec<(usize, Option<String>)>>;

impl KustomizationFile {
    /// The repository paths its `resources:` entries resolve to (URLs and entries that cannot
    /// resolve left out; [`Self::check_entries`] refuses the latter).
    pub fn targets(&self) -> impl Iterator<Item = RepoPath> + '_ {
        self.resources
            .iter()
            .filter_map(|e| kustomize::resolve_entry(&self.path, e).ok().flatten())
    }

    /// An error naming this file when an entry cannot build (an absolute path).
    pub fn check_entries(&self) -> Result<()> {
        for entry in &self.resources {
            kustomize::resolve_entry(&self.path, entry)?;
        }
        Ok(())
    }
}

fn is_yaml(path: &RepoPath) -> bool {
    path.as_str().ends_with(".yaml") || path.as_str().ends_with(".yml")
}

fn is_kustomization_file(path: &RepoPath) -> bool {
    path.file_name()
        .is_some_and(|name| KUSTOMIZATION_FILES.contains(&name))
}

/// Parse every YAML file of the overlay (through the changeset's view).
pub fn index(cs: &Changeset, overlay: &Overlay) -> Result<OverlayIndex> {
    let mut idx = OverlayIndex::default();
    for path in cs.files_under(&overlay.path)? {
        let kustomization = is_kustomization_file(&path);
        if !is_yaml(&path) && !kustomization {
            continue;
        }
        let text = cs.read(&path)?.unwrap_or_default();
        let docs = manifest::parse_documents(path.as_str(), &text)?;
        if kustomization {
            idx.kustomizations.push(KustomizationFile {
                dir: kustomize::dir_of(&path),
                namespace: docs
                    .first()
                    .and_then(|d| manifest::str_at(d, &["namespace"]))
                    .map(String::from),
                resources: kustomize::resources_in(path.as_str(), &docs)?,
                docs,
                path,
                text,
            });
            continue;
        }
        idx.flux_kustomizations
            .extend(docs.iter().filter_map(|d| flux_kustomization(&path, d)));
        idx.documents.insert(path, docs);
    }
    Ok(idx)
}

fn flux_kustomization(file: &RepoPath, doc: &Value) -> Option<FluxKustomization> {
    if !manifest::is(doc, FLUX_KUSTOMIZE_GROUP, "Kustomization") {
        return None;
    }
    let spec = |p: &[&str]| manifest::str_at(doc, &[&["spec"], p].concat()).map(String::from);
    Some(FluxKustomization {
        file: file.clone(),
        name: manifest::name(doc).unwrap_or_default().to_string(),
        namespace: manifest::namespace(doc).map(String::from),
        path: RepoPath::within_root(&spec(&["path"]).unwrap_or_default()).ok()?,
        target_namespace: spec(&["targetNamespace"]),
        source_kind: spec(&["sourceRef", "kind"]).unwrap_or_default(),
        source_name: spec(&["sourceRef", "name"]).unwrap_or_default(),
        source_namespace: spec(&["sourceRef", "namespace"]),
        decryption_provider: spec(&["decryption", "provider"]),
        decryption_secret: spec(&["decryption", "secretRef", "name"]),
    })
}

impl OverlayIndex {
    /// Kustomization files with a `resources:` entry resolving to `file`, however it is spelled.
    pub fn referencing(&self, file: &RepoPath) -> Vec<&KustomizationFile> {
        self.kustomizations
            .iter()
            .filter(|k| k.targets().any(|t| &t == file))
            .collect()
    }

    /// The kustomization file of directory `dir`, if any.
    pub fn kustomization_in(&self, dir: &RepoPath) -> Option<&KustomizationFile> {
        self.kustomizations.iter().find(|k| &k.dir == dir)
    }

    /// The Flux Kustomization that builds `dir`: the one whose `spec.path` is `dir` or its nearest ancestor.
    pub fn flux_kustomization_for(&self, dir: &RepoPath) -> Option<&FluxKustomization> {
        self.flux_kustomizations
            .iter()
            .filter(|f| !f.path.is_root() && dir.starts_with(&f.path))
            .max_by_key(|f| f.path.as_str().len())
    }

    /// The Flux Kustomizations (sourced from the fleet repository) that apply directory `dir`:
    /// its `spec.path` is `dir`, or a `resources:` chain from there reaches it ([`Self::reached`]).
    pub fn appliers(&self, dir: &RepoPath) -> Vec<&FluxKustomization> {
        let by_chain: std::collections::BTreeSet<usize> = self
            .reached()
            .get(dir)
            .into_iter()
            .flatten()
            .map(|(i, _)| *i)
            .collect();
        self.flux_kustomizations
            .iter()
            .enumerate()
            .filter(|(i, f)| f.is_own_source() && (&f.path == dir || by_chain.contains(i)))
            .map(|(_, f)| f)
            .collect()
    }

    /// The namespaces Flux applies `file` into: one for every chain of `resources:` entries by
    /// which a Flux Kustomization sourced from the fleet repository reaches it (a shared folder
    /// included by several services has several). Per chain, Flux's precedence: the Flux
    /// Kustomization's `targetNamespace`, else the outermost kustomization `namespace:` on the
    /// chain (kustomize applies an including kustomization's namespace transformer after the
    /// included one's), else the Secret's own `metadata.namespace`. A chain with none of them
    /// gives nothing (Flux would not know where to apply it). Empty when no Flux Kustomization
    /// reaches the file through kustomization files (e.g. it builds a directory without one).
    pub fn applied_namespaces(
        &self,
        file: &RepoPath,
        meta: &secret::SecretMeta,
    ) -> Vec<(String, NamespaceSource)> {
        let own = meta
            .namespace
            .clone()
            .filter(|n| !n.is_empty() && !n.starts_with("ENC["));
        let chains = self
            .reached()
            .get(file)
            .map(Vec::as_slice)
            .unwrap_or_default();
        chains
            .iter()
            .filter_map(|(i, outer)| {
                let flux = &self.flux_kustomizations[*i];
                [
                    (
                        flux.target_namespace.clone(),
                        NamespaceSource::FluxTargetNamespace,
                    ),
                    (outer.clone(), NamespaceSource::KustomizationNamespace),
                    (own.clone(), NamespaceSource::SecretMetadata),
                ]
                .into_iter()
                .find_map(|(ns, source)| ns.filter(|n| !n.is_empty()).map(|n| (n, source)))
            })
            .collect()
    }

    /// Every chain end of every fleet-sourced Flux Kustomization, walked once per index: a scan
    /// asks for each credentials file, and walking every chain per file made the scan of a
    /// 100-cluster fleet half again slower.
    fn reached(&self) -> &Reached {
        self.reached.get_or_init(|| {
            let mut all = Reached::new();
            for (i, flux) in self.flux_kustomizations.iter().enumerate() {
                if !flux.is_own_source() {
                    continue;
                }
                for (path, outer) in self.chain_ends(&flux.path) {
                    all.entry(path).or_default().push((i, outer));
                }
            }
            all
        })
    }

    /// Every path the chains from directory `start` list, each with the outermost `namespace:`
    /// on its chain, once per distinct (directory, namespace) on the way.
    fn chain_ends(&self, start: &RepoPath) -> Vec<(RepoPath, Option<String>)> {
        let mut found = Vec::new();
        let mut stack = vec![(start.clone(), None::<String>)];
        let mut seen = std::collections::BTreeSet::new();
        while let Some((dir, outer)) = stack.pop() {
            let Some(k) = self.kustomization_in(&dir) else {
                continue;
            };
            if !seen.insert((dir.clone(), outer.clone())) {
                continue;
            }
            let outer = outer.or_else(|| k.namespace.clone());
            for target in k.targets() {
                found.push((target.clone(), outer.clone()));
                stack.push((target, outer.clone()));
            }
        }
        found
    }

    /// A warning when `file` is all that the folder a Flux Kustomization builds lists: once it
    /// is moved, kustomize refuses the folder's kustomization ("kustomization.yaml is empty") and
    /// Flux reports that Kustomization failing, so the operator must decide what the folder holds.
    pub fn left_building_nothing(&self, file: &CredFile) -> Option<String> {
        let k = self.kustomization_in(&file.dir)?;
        if !k.targets().all(|t| t == file.path) || k.targets().next().is_none() {
            return None;
        }
        let flux = self
            .flux_kustomizations
            .iter()
            .find(|f| f.path == file.dir)?;
        Some(format!(
            "{}: it is all that {} lists, and Flux Kustomization `{}` ({}) builds that folder; after \
             consolidation the folder builds nothing and Flux reports `{}` failing: remove that Flux \
             Kustomization, or give the folder what it should apply",
            file.path, k.path, flux.name, flux.file, flux.name
        ))
    }

    /// `secretRef.name` → registry host, from OCI HelmRepositories/OCIRepositories under `dir`.
    pub fn oci_registries_under(&self, dir: &RepoPath) -> BTreeMap<String, String> {
        let mut found = BTreeMap::new();
        for (path, docs) in &self.documents {
            if path.parent().as_ref() != Some(dir) {
                continue;
            }
            for doc in docs {
                let is_repo = is_registry_source(doc);
                let url = manifest::str_at(doc, &["spec", "url"]).unwrap_or_default();
                let secret = manifest::str_at(doc, &["spec", "secretRef", "name"]);
                if let (true, Some(host), Some(secret)) = (is_repo, oci_host(url), secret) {
                    found.insert(secret.to_string(), host);
                }
            }
        }
        found
    }
}

/// A Flux HelmRepository or OCIRepository: the sources that pull with a `secretRef`.
pub fn is_registry_source(doc: &Value) -> bool {
    manifest::is(doc, FLUX_SOURCE_GROUP, "HelmRepository")
        || manifest::is(doc, FLUX_SOURCE_GROUP, "OCIRepository")
}

/// `oci://host[:port]/path` → `host[:port]`.
pub fn oci_host(url: &str) -> Option<String> {
    let rest = url.strip_prefix("oci://")?;
    let host = rest.split('/').next().filter(|h| !h.is_empty())?;
    Some(host.to_string())
}

/// Where a service's namespace came from (Flux's precedence, highest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceSource {
    FluxTargetNamespace,
    KustomizationNamespace,
    SecretMetadata,
}

impl NamespaceSource {
    pub fn describe(self) -> &'static str {
        match self {
            NamespaceSource::FluxTargetNamespace => "Flux Kustomization targetNamespace",
            NamespaceSource::KustomizationNamespace => "kustomization.yaml namespace",
            NamespaceSource::SecretMetadata => "Secret metadata.namespace",
        }
    }
}

/// A per-service credentials file.
#[derive(Debug, Clone)]
pub struct CredFile {
    /// The service directory relative to `services/` (usually one name, `global/<name>` for a
    /// shared folder), or `managed-services/<name>` for a managed service.
    pub service: String,
    pub dir: RepoPath,
    pub path: RepoPath,
    pub secret_name: String,
    pub secret_type: String,
    pub encrypted: bool,
    /// The first of [`Self::namespaces`].
    pub namespace: String,
    pub namespace_source: NamespaceSource,
    /// Every namespace Flux applies it into, sorted: one per service that includes a shared folder.
    pub namespaces: Vec<String>,
    /// The first of [`Self::kustomizations`], if any.
    pub kustomization: Option<RepoPath>,
    /// Every kustomization file listing it under `resources:` (several for a shared file).
    pub kustomizations: Vec<RepoPath>,
    /// `secretRef.name` → registry of OCI repositories in the service directory (for basic-auth Secrets).
    pub oci_registries: BTreeMap<String, String>,
}

impl CredFile {
    /// How its kustomization's `resources:` entry names it: the path relative to that file's
    /// directory (`oci-creds.yaml`, or `../loki/oci-creds.yaml` from a sibling).
    pub fn resource_entry(&self) -> Option<String> {
        let kustomization = self.kustomization.as_ref()?;
        Some(self.path.relative_to(&kustomize::dir_of(kustomization)))
    }
}

/// What a scan of one overlay found.
#[derive(Debug, Clone)]
pub struct Scan {
    pub overlay: Overlay,
    pub files: Vec<CredFile>,
    /// The existing consolidated source, if the cluster was consolidated before.
    pub source: Option<RepoPath>,
    /// Whether the overlay deploys Reflector in a way Flux can carry out (see
    /// [`flux_sources::reflector_wiring`]).
    pub deploys_reflector: bool,
    /// Why the Reflector deployment found cannot work (a dangling `sourceRef`, …), naming the file.
    pub reflector_problem: Option<String>,
    pub warnings: Vec<String>,
}

impl Scan {
    /// The sorted, deduplicated namespaces of the per-service files.
    pub fn namespaces(&self) -> Vec<String> {
        let set: std::collections::BTreeSet<&str> = self
            .files
            .iter()
            .flat_map(|f| f.namespaces.iter().map(String::as_str))
            .collect();
        set.into_iter().map(String::from).collect()
    }
}

/// Find every per-service credentials file of `overlay` and everything ocitool needs to know about it.
pub fn scan(cs: &Changeset, overlay: &Overlay) -> Result<Scan> {
    refuse_hiding_symlinks(cs, overlay)?;
    let idx = index(cs, overlay)?;
    for k in &idx.kustomizations {
        k.check_entries()?;
    }
    let wiring = flux_sources::reflector_wiring(cs, &idx, overlay)?;
    let mut scan = Scan {
        overlay: overlay.clone(),
        files: Vec::new(),
        source: cs
            .exists(&overlay.source_path())?
            .then(|| overlay.source_path()),
        deploys_reflector: wiring == ReflectorWiring::Resolves,
        reflector_problem: match wiring {
            ReflectorWiring::Dangling(problem) => Some(problem),
            _ => None,
        },
        warnings: Vec::new(),
    };
    // The index has already listed and parsed every YAML file of the overlay, these included.
    for (path, docs) in &idx.documents {
        if path.file_name() != Some(FILE_NAME) {
            continue;
        }
        if let Some(service) = service_of(overlay, path) {
            let file = cred_file(&idx, path, docs, service)?;
            if file.kustomization.is_none() {
                scan.warnings.push(format!(
                    "{path}: no kustomization lists it, so it was never applied; it will be removed and \
                     its namespace `{}` still included",
                    file.namespace
                ));
            }
            scan.warnings.extend(idx.left_building_nothing(&file));
            if !file.encrypted {
                scan.warnings.push(format!(
                    "security: {path} is NOT sops-encrypted: its credentials are in git history in plaintext; \
                     rotate them after consolidating"
                ));
            }
            scan.files.push(file);
        }
    }
    Ok(scan)
}

/// The scan lists files without following symlinks (a link may lead anywhere, even out of the
/// repository), so a symlinked directory would hide its credentials and kustomizations, and a
/// symlinked kustomization or credentials file would be skipped while the file it shares with
/// other places stays listed. Either is refused, naming the link, rather than skipped.
fn refuse_hiding_symlinks(cs: &Changeset, overlay: &Overlay) -> Result<()> {
    for link in cs.symlinks_under(&overlay.path)? {
        let path = &link.path;
        let what = if link.to_dir {
            "a symlinked directory: ocitool does not follow symlinks, so it cannot see the \
             credentials and kustomizations it holds"
        } else if is_kustomization_file(path) || path.file_name() == Some(FILE_NAME) {
            "a symlink: ocitool edits and deletes regular files only (editing through the link \
             would change every place that shares its target, and the entries of a linked \
             kustomization resolve against the link's directory, not the target's)"
        } else {
            continue;
        };
        bail!(
            "{path} is {what}. Replace the link with a copy of what it points to (or consolidate \
             this cluster by hand) and run again"
        );
    }
    Ok(())
}

/// The service label of a per-service credentials file: its directory relative to `services/`,
/// or `managed-services/<name>`; None for a file elsewhere in the overlay (the source, say).
fn service_of(overlay: &Overlay, path: &RepoPath) -> Option<String> {
    let dir = kustomize::dir_of(path);
    let services = overlay.join("services");
    let managed = overlay.join("managed-services");
    if dir.starts_with(&services) && dir != services {
        Some(dir.relative_to(&services))
    } else if dir.starts_with(&managed) && dir != managed {
        Some(format!("managed-services/{}", dir.relative_to(&managed)))
    } else {
        None
    }
}

fn cred_file(
    idx: &OverlayIndex,
    path: &RepoPath,
    docs: &[Value],
    service: String,
) -> Result<CredFile> {
    let origin = path.as_str();
    let meta = secret::meta(origin, secret::the_secret(origin, docs)?)?;
    let dir = kustomize::dir_of(path);
    refuse_other_references(idx, path, &service)?;
    let referencing = idx.referencing(path);
    let no_namespace = || {
        format!(
            "service `{service}` ({path}): no namespace found; set `targetNamespace` on its Flux Kustomization, \
             `namespace:` in {dir}/kustomization.yaml, or metadata.namespace on the Secret"
        )
    };
    let mut found = idx.applied_namespaces(path, &meta);
    if found.is_empty() {
        found.extend(resolve_namespace(
            idx,
            &dir,
            referencing.first().copied(),
            &meta,
        ));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.dedup_by(|a, b| a.0 == b.0);
    let (namespace, namespace_source) = found.first().cloned().with_context(no_namespace)?;
    let namespaces: Vec<String> = found.into_iter().map(|(ns, _)| ns).collect();
    let kustomizations: Vec<RepoPath> = referencing.iter().map(|k| k.path.clone()).collect();
    Ok(CredFile {
        service,
        path: path.clone(),
        secret_name: meta.name,
        secret_type: meta.type_,
        encrypted: ocitool_core::sops_format::carries_sops_metadata(docs),
        namespace,
        namespace_source,
        namespaces,
        kustomization: kustomizations.first().cloned(),
        kustomizations,
        oci_registries: idx.oci_registries_under(&dir),
        dir,
    })
}

/// Flux's precedence: the building Flux Kustomization's `targetNamespace`, then the kustomization's
/// `namespace:`, then the Secret's own `metadata.namespace`.
fn resolve_namespace(
    idx: &OverlayIndex,
    dir: &RepoPath,
    referencing: Option<&KustomizationFile>,
    meta: &secret::SecretMeta,
) -> Option<(String, NamespaceSource)> {
    let flux = idx
        .flux_kustomization_for(dir)
        .and_then(|f| f.target_namespace.clone());
    let kustomization = referencing
        .or_else(|| idx.kustomization_in(dir))
        .and_then(|k| k.namespace.clone());
    let secret = meta.namespace.clone().filter(|n| !n.starts_with("ENC["));
    [
        (flux, NamespaceSource::FluxTargetNamespace),
        (kustomization, NamespaceSource::KustomizationNamespace),
        (secret, NamespaceSource::SecretMetadata),
    ]
    .into_iter()
    .find_map(|(ns, source)| ns.filter(|n| !n.is_empty()).map(|n| (n, source)))
}

fn refuse_other_references(idx: &OverlayIndex, path: &RepoPath, service: &str) -> Result<()> {
    let name = path.file_name().unwrap_or_default();
    // Any spelling of a reference ends in the file's name, so a kustomization without it in its
    // text cannot refer to the file; that spares parsing every kustomization once per file.
    for k in idx.kustomizations.iter().filter(|k| k.text.contains(name)) {
        let others = kustomize::other_references_in(&k.path, &k.docs, path);
        if let Some(first) = others.first() {
            let relative = path.relative_to(&k.dir);
            bail!(
                "service `{service}`: {} refers to {relative} as `{}` ({}), not as a plain resource; \
                 ocitool only moves files listed under `resources:`. Remove that reference (or consolidate \
                 this service by hand) and run again",
                k.path,
                first.field,
                first.detail
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(path: &str) -> RepoPath {
        RepoPath::new(path).unwrap()
    }

    #[test]
    fn entries_are_resolved_against_their_kustomization() {
        let k = KustomizationFile {
            path: at("o/services/grafana/kustomization.yaml"),
            dir: at("o/services/grafana"),
            text: String::new(),
            docs: Vec::new(),
            namespace: None,
            resources: [
                "./a.yaml",
                "../loki/oci-creds.yaml",
                "https://x/y.yaml",
                "/abs.yaml",
            ]
            .map(String::from)
            .to_vec(),
        };
        let targets: Vec<RepoPath> = k.targets().collect();
        assert_eq!(
            targets,
            [
                at("o/services/grafana/a.yaml"),
                at("o/services/loki/oci-creds.yaml")
            ]
        );
        let err = k.check_entries().unwrap_err().to_string();
        assert!(
            err.contains("o/services/grafana/kustomization.yaml: `resources:` entry `/abs.yaml`"),
            "{err}"
        );
        let idx = OverlayIndex {
            kustomizations: vec![k],
            ..OverlayIndex::default()
        };
        assert_eq!(
            idx.referencing(&at("o/services/loki/oci-creds.yaml")).len(),
            1
        );
    }

    fn kustomization(path: &str, namespace: Option<&str>, resources: &[&str]) -> KustomizationFile {
        let path = at(path);
        KustomizationFile {
            dir: kustomize::dir_of(&path),
            path,
            text: String::new(),
            docs: Vec::new(),
            namespace: namespace.map(String::from),
            resources: resources.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn flux(name: &str, path: &str, target_namespace: Option<&str>) -> FluxKustomization {
        FluxKustomization {
            file: at("o/services/fluxcd/x.yaml"),
            name: name.into(),
            namespace: Some("flux-system".into()),
            path: at(path),
            target_namespace: target_namespace.map(String::from),
            source_kind: "GitRepository".into(),
            source_name: OWN_SOURCE.into(),
            source_namespace: None,
            decryption_provider: None,
            decryption_secret: None,
        }
    }

    #[test]
    fn a_shared_folder_takes_the_namespace_of_every_service_including_it() {
        let shared = at("o/services/global/harbor/oci-creds.yaml");
        let idx = OverlayIndex {
            kustomizations: vec![
                kustomization(
                    "o/services/a/kustomization.yaml",
                    None,
                    &["v.yaml", "../global/harbor"],
                ),
                // No targetNamespace: the outer kustomization's namespace wins over the inner one's.
                kustomization(
                    "o/services/b/kustomization.yaml",
                    Some("b-ns"),
                    &["../global/harbor"],
                ),
                kustomization(
                    "o/services/c/kustomization.yaml",
                    None,
                    &["../global/harbor/oci-creds.yaml"],
                ),
                kustomization(
                    "o/services/global/harbor/kustomization.yaml",
                    Some("inner"),
                    &["oci-creds.yaml"],
                ),
            ],
            flux_kustomizations: vec![
                flux("a", "o/services/a", Some("a-ns")),
                flux("b", "o/services/b", None),
                flux("c", "o/services/c", None),
                flux("other", "o/services/d", Some("d-ns")),
            ],
            ..OverlayIndex::default()
        };
        let meta = secret::SecretMeta {
            namespace: Some("own".into()),
            ..Default::default()
        };
        let mut found = idx.applied_namespaces(&shared, &meta);
        found.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(
            found,
            [
                ("a-ns".to_string(), NamespaceSource::FluxTargetNamespace),
                ("b-ns".to_string(), NamespaceSource::KustomizationNamespace),
                ("own".to_string(), NamespaceSource::SecretMetadata),
            ]
        );
        assert_eq!(idx.referencing(&shared).len(), 2);
        assert!(
            idx.applied_namespaces(&at("o/services/d/oci-creds.yaml"), &meta)
                .is_empty()
        );
    }

    #[test]
    fn overlay_paths_stay_inside_the_overlay() {
        let overlay = Overlay {
            customer: None,
            cluster: "prod".into(),
            path: at("applications/overlays/prod"),
        };
        assert_eq!(
            overlay.source_path(),
            "applications/overlays/prod/flux-system/oci-creds.yaml"
        );
        let escape = std::panic::catch_unwind(|| overlay.join("../dev"));
        assert!(escape.is_err());
    }

    #[test]
    fn oci_hosts_come_from_oci_urls_only() {
        assert_eq!(
            oci_host("oci://ghcr.io/acme/charts").as_deref(),
            Some("ghcr.io")
        );
        assert_eq!(
            oci_host("oci://harbor.example:8443/x").as_deref(),
            Some("harbor.example:8443")
        );
        assert_eq!(oci_host("https://charts.example"), None);
    }
}
