//! An openCenter-shaped fleet and the base repository its clusters deploy from, written from the
//! published facts of how openCenter-cli lays out customer repositories (issue 9) — by us, not
//! copied from openCenter:
//! - overlays at `applications/overlays/<cluster>/` (single-customer repo),
//!   `customers/<customer>/applications/overlays/<cluster>/` or (with [`Prefix::TopLevel`])
//!   `<customer>/applications/overlays/<cluster>/`;
//! - `flux-system/` as `flux bootstrap` writes it: `gotk-components.yaml` (a small stand-in with
//!   bootstrap's header), `gotk-sync.yaml` with the `flux-system` GitRepository and Kustomization
//!   (which has **no** `decryption`), and a kustomization listing both;
//! - per service, `services/fluxcd/<svc>.yaml` with `<svc>-base` (GitRepository
//!   `opencenter-<svc>` from `services/sources/`, the base repo path, `components:
//!   [components/enterprise]`, `targetNamespace`) and, for most, `<svc>-override` (the overlay's
//!   `services/<svc>` with sops decryption); services carry `oci-creds.yaml` and
//!   `registry-credentials.yaml`, or include a shared `../global/<name>/` credentials folder;
//!   `managed-services/<svc>/oci-creds.yaml` too;
//! - a root `.sops.yaml` whose service rule encrypts only keys named `secret` (so it would leave
//!   `data` in clear), and one `.sops.yaml` per overlay with rules relative to the overlay
//!   (`^services/…`), which is what operators use: they run sops from the overlay directory.
//!   No rule covers `flux-system/`.
//!
//! Secrets are encrypted by the real sops exactly as an operator would: run in the overlay
//! directory, so sops finds the per-overlay `.sops.yaml` on its own — an oracle independent of
//! ocitool's own config lookup. Plaintext reaches sops on standard input only, never the disk.

use super::{
    AgeKey, DEMO_KEY_WARNING, KEY_DIR, README_MARKER, Registry, age_keygen, check_root,
    dockerconfigjson, write_file,
};
use anyhow::{Context, Result, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ocitool_adapters::tools;
use ocitool_core::secret::{DOCKERCONFIGJSON_KEY, DOCKERCONFIGJSON_TYPE};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the base repository is served from (the `opencenter-<svc>` GitRepositories point here).
pub const BASE_REPO_URL: &str = "https://git.example.com/opencenter/openCenter-gitops-base.git";
/// Age key of the platform team, listed in the root `.sops.yaml` rules only: a file encrypted
/// with a root rule carries it, one encrypted with a per-overlay rule does not.
const ADMIN_KEY_FILE: &str = "demo-keys/platform-admin.agekey";

/// How a service gets its registry credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// `<svc>-base` only: no overlay directory, no per-service file (consumes through the
    /// enterprise component's HelmRepository).
    BaseOnly,
    /// Its own `oci-creds.yaml` and `registry-credentials.yaml`.
    Own,
    /// Includes the shared `../global/<name>/` folder instead of files of its own.
    Shared,
}

/// One openCenter service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub namespace: String,
    pub credentials: Credentials,
    /// The base directory has no kustomization.yaml (Flux generates one) and no components.
    pub plain_base: bool,
}

/// The shared credentials folder `services/global/<name>/`, holding one Secret file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFolder {
    pub name: String,
    /// `oci-creds.yaml` (the realistic case) or e.g. `registry-credentials.yaml`.
    pub file: String,
}

/// Where a customer's directory sits in the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// `customers/<customer>/applications/overlays/…`, as openCenter-cli lays them out.
    CustomersDir,
    /// `<customer>/applications/overlays/…` at the repository root.
    TopLevel,
}

/// An openCenter customer repository and its clusters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// None: a single-customer repo; Some(c): overlays under the customer's directory (`prefix`).
    pub customer: Option<String>,
    /// Where the customer's directory is (ignored without a customer).
    pub prefix: Prefix,
    pub clusters: Vec<String>,
    pub services: Vec<Service>,
    /// Managed services with `managed-services/<svc>/oci-creds.yaml`: (name, namespace).
    pub managed: Vec<(String, String)>,
    pub shared: SharedFolder,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct Generated {
    /// Every identity (clusters and platform admin), usable as `SOPS_AGE_KEY_FILE`.
    pub key_file: PathBuf,
    /// Overlay path → that cluster's age recipient.
    pub recipients: BTreeMap<String, String>,
    /// The platform admin's age recipient (root `.sops.yaml` rules only).
    pub admin_recipient: String,
}

fn service(name: &str, namespace: &str, credentials: Credentials, plain_base: bool) -> Service {
    Service {
        name: name.into(),
        namespace: namespace.into(),
        credentials,
        plain_base,
    }
}

impl Spec {
    /// Clusters `prod` and `dev` with every variation: own, shared and no credentials, a plain
    /// base directory, a managed service. `customer` None gives the single-customer layout.
    pub fn standard(customer: Option<&str>) -> Spec {
        use Credentials::*;
        Spec {
            customer: customer.map(String::from),
            prefix: Prefix::CustomersDir,
            clusters: vec!["prod".into(), "dev".into()],
            services: vec![
                service("cert-manager", "cert-manager", Own, false),
                service("kyverno", "kyverno", Own, false),
                service("keycloak", "keycloak", Shared, false),
                service("headlamp", "headlamp", Shared, true),
                service("rbac-manager", "rbac-system", BaseOnly, false),
            ],
            managed: vec![("alert-proxy".into(), "rackspace-system".into())],
            shared: SharedFolder {
                name: "harbor".into(),
                file: "oci-creds.yaml".into(),
            },
        }
    }

    /// Repo-relative overlay directory of `cluster`.
    pub fn overlay(&self, cluster: &str) -> String {
        format!("{}applications/overlays/{cluster}", self.prefix())
    }

    fn prefix(&self) -> String {
        match (&self.customer, self.prefix) {
            (None, _) => String::new(),
            (Some(c), Prefix::CustomersDir) => format!("customers/{c}/"),
            (Some(c), Prefix::TopLevel) => format!("{c}/"),
        }
    }

    fn key_stem(&self, cluster: &str) -> String {
        match &self.customer {
            Some(c) => format!("{c}-{cluster}"),
            None => cluster.to_string(),
        }
    }

    /// The registry credentials of `cluster` (fixed, obviously fake values tests search for).
    pub fn registry(&self, cluster: &str) -> Registry {
        let stem = self.key_stem(cluster);
        Registry::new(
            "registry.opencenter.example",
            &format!("robot$opencenter+{stem}"),
            &format!("demo-oc-{stem}-harbor-Vb7Qx2"),
        )
    }

    /// Every plaintext password, for leak searches.
    pub fn passwords(&self) -> Vec<String> {
        self.clusters
            .iter()
            .map(|c| self.registry(c).password)
            .collect()
    }
}

/// A file to write; `encrypt` files go through sops run in `sops_dir` (repo-relative).
struct Planned {
    path: String,
    text: String,
    sops_dir: Option<String>,
}

fn plain(path: String, text: String) -> Planned {
    Planned {
        path,
        text,
        sops_dir: None,
    }
}

/// Write the fleet under `root` and the base repository under `base` (both empty or absent).
pub fn generate(root: &Path, base: &Path, spec: &Spec) -> Result<Generated> {
    check_root(root)?;
    check_root(base)?;
    let keys: Vec<AgeKey> = spec
        .clusters
        .par_iter()
        .map(|_| age_keygen())
        .collect::<Result<_>>()?;
    let admin = age_keygen()?;
    let files = plan(spec, &keys, &admin);
    for file in files.iter().filter(|f| f.sops_dir.is_none()) {
        write_file(root, &file.path, &file.text)?;
    }
    files
        .par_iter()
        .filter_map(|f| Some((f, f.sops_dir.as_ref()?)))
        .try_for_each(|(file, dir)| {
            let ciphertext =
                encrypt_as_operator(&root.join(dir), &relative(dir, &file.path), &file.text)?;
            write_file(root, &file.path, &ciphertext)
        })?;
    for (path, text) in base_files(spec) {
        write_file(base, &path, &text)?;
    }
    Ok(Generated {
        key_file: root.join(super::ALL_KEYS_FILE),
        recipients: spec
            .clusters
            .iter()
            .zip(&keys)
            .map(|(c, k)| (spec.overlay(c), k.public.clone()))
            .collect(),
        admin_recipient: admin.public,
    })
}

fn relative(dir: &str, path: &str) -> String {
    path.strip_prefix(&format!("{dir}/"))
        .unwrap_or(path)
        .to_string()
}

/// `sops encrypt --filename-override <relative>` in `dir`, as an operator runs it there: sops
/// finds the nearest `.sops.yaml` itself. The plaintext goes to its standard input only.
fn encrypt_as_operator(dir: &Path, relative: &str, plaintext: &str) -> Result<String> {
    let mut child = Command::new(tools::find(tools::SOPS)?)
        .args(["encrypt", "--filename-override", relative])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("could not start sops")?;
    let mut stdin = child.stdin.take().expect("piped");
    let input = plaintext.to_string();
    let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().context("sops did not finish")?;
    let _ = feeder.join();
    ensure!(
        output.status.success(),
        "sops encrypt {relative} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8(output.stdout)?)
}

fn plan(spec: &Spec, keys: &[AgeKey], admin: &AgeKey) -> Vec<Planned> {
    let mut files = vec![
        plain("README.md".into(), readme(spec)),
        plain(".sops.yaml".into(), root_sops_config(spec, keys, admin)),
        plain(ADMIN_KEY_FILE.into(), key_text("platform admin", admin)),
    ];
    let mut all = format!("{DEMO_KEY_WARNING}\n# Every identity of this fleet.\n");
    for (cluster, key) in spec.clusters.iter().zip(keys) {
        let stem = spec.key_stem(cluster);
        files.push(plain(
            format!("{KEY_DIR}/{stem}.agekey"),
            key_text(&stem, key),
        ));
        all += &format!("{}\n", key.identity);
        files.extend(overlay_files(spec, cluster, key));
    }
    all += &format!("{}\n", admin.identity);
    files.push(plain(super::ALL_KEYS_FILE.into(), all));
    files
}

fn key_text(owner: &str, key: &AgeKey) -> String {
    format!(
        "{DEMO_KEY_WARNING}\n# age identity of {owner}\n# public key: {}\n{}\n",
        key.public, key.identity
    )
}

fn readme(spec: &Spec) -> String {
    format!(
        "{README_MARKER}\n# openCenter-shaped fleet (synthetic)\n\nWritten by `ocitool_devkit::fleetgen::opencenter` \
         for tests: clusters {} under `{}applications/overlays/`. DEMO-ONLY keys in `{KEY_DIR}/`.\n",
        spec.clusters.join(", "),
        spec.prefix()
    )
}

/// The root rules: one per-service rule per layout that encrypts only `secret` keys (too weak
/// for Secrets) and a catch-all for the rest of the repository; recipients: every cluster and
/// the platform admin.
fn root_sops_config(spec: &Spec, keys: &[AgeKey], admin: &AgeKey) -> String {
    let mut recipients: Vec<&str> = keys.iter().map(|k| k.public.as_str()).collect();
    recipients.push(&admin.public);
    let age = recipients.join(",");
    let prefix = spec.prefix();
    format!(
        "# Repository-wide SOPS rules (operators run sops from each overlay, whose own .sops.yaml wins there).\n\
         creation_rules:\n\
         \x20 # Service and managed-service secrets of every cluster\n\
         \x20 - path_regex: {prefix}applications/overlays/[^/]+/(managed-services|services)/.*/.*\\.ya?ml$\n\
         \x20   encrypted_regex: \"^(secret)$\"\n\
         \x20   age: {age}\n\
         \x20 - path_regex: {prefix}secrets/.*\\.ya?ml$\n\
         \x20   encrypted_regex: \"^(data|stringData)$\"\n\
         \x20   age: {age}\n"
    )
}

/// The overlay's own rules, relative to the overlay: the cluster's key only.
fn overlay_sops_config(key: &AgeKey) -> String {
    format!(
        "# SOPS rules for this cluster; paths are relative to this directory (run sops from here).\n\
         creation_rules:\n\
         \x20 - path_regex: ^services/.*/.*\\.ya?ml$\n\
         \x20   encrypted_regex: \"^(data|stringData|credentials)$\"\n\
         \x20   age: {pk}\n\
         \x20 - path_regex: ^managed-services/.*/.*\\.ya?ml$\n\
         \x20   encrypted_regex: \"^(data|stringData|credentials)$\"\n\
         \x20   age: {pk}\n",
        pk = key.public
    )
}

fn kustomization(comment: &str, resources: &[String]) -> String {
    let list: String = resources.iter().map(|r| format!("  - {r}\n")).collect();
    format!(
        "# {comment}\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n{list}"
    )
}

fn overlay_files(spec: &Spec, cluster: &str, key: &AgeKey) -> Vec<Planned> {
    let overlay = spec.overlay(cluster);
    let at = |rel: &str| format!("{overlay}/{rel}");
    let mut root_resources = vec!["./flux-system".to_string(), "./services/fluxcd".to_string()];
    if !spec.managed.is_empty() {
        root_resources.push("./managed-services/fluxcd".into());
    }
    let mut files = vec![
        plain(at(".sops.yaml"), overlay_sops_config(key)),
        plain(at("kustomization.yaml"), kustomization(&format!("Cluster {cluster}"), &root_resources)),
        plain(at("flux-system/gotk-components.yaml"), GOTK_COMPONENTS.into()),
        plain(at("flux-system/gotk-sync.yaml"), gotk_sync(spec, &overlay)),
        plain(
            at("flux-system/kustomization.yaml"),
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- gotk-components.yaml\n- gotk-sync.yaml\n".into(),
        ),
    ];
    let mut fluxcd = vec!["../sources".to_string()];
    let mut sources = Vec::new();
    for svc in &spec.services {
        fluxcd.push(format!("{}.yaml", svc.name));
        sources.push(format!("opencenter-{}.yaml", svc.name));
        files.push(plain(
            at(&format!("services/fluxcd/{}.yaml", svc.name)),
            service_flux(&overlay, svc),
        ));
        files.push(plain(
            at(&format!("services/sources/opencenter-{}.yaml", svc.name)),
            git_repository(svc),
        ));
        files.extend(service_dir(spec, cluster, &overlay, svc));
    }
    files.push(plain(
        at("services/fluxcd/kustomization.yaml"),
        kustomization("Flux Kustomizations of the services", &fluxcd),
    ));
    files.push(plain(
        at("services/sources/kustomization.yaml"),
        kustomization("Base repository sources, one per service", &sources),
    ));
    if spec
        .services
        .iter()
        .any(|s| s.credentials == Credentials::Shared)
    {
        let dir = format!("services/global/{}", spec.shared.name);
        files.push(plain(
            at(&format!("{dir}/kustomization.yaml")),
            kustomization(
                "Registry credentials shared by several services",
                std::slice::from_ref(&spec.shared.file),
            ),
        ));
        files.push(secret_file(
            &overlay,
            &format!("{dir}/{}", spec.shared.file),
            &spec.registry(cluster),
            SecretShape::Data,
        ));
    }
    files.extend(managed_files(spec, cluster, &overlay));
    files
}

fn service_flux(overlay: &str, svc: &Service) -> String {
    let components = if svc.plain_base {
        String::new()
    } else {
        "  components:\n    - components/enterprise\n".into()
    };
    let mut text = format!(
        "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: {n}-base\n  namespace: flux-system\n\
         spec:\n  interval: 5m\n  path: applications/base/services/{n}\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    \
         name: opencenter-{n}\n    namespace: flux-system\n{components}  targetNamespace: {ns}\n",
        n = svc.name,
        ns = svc.namespace
    );
    if svc.credentials != Credentials::BaseOnly {
        text += &format!(
            "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: {n}-override\n  namespace: flux-system\n\
             spec:\n  dependsOn:\n    - name: {n}-base\n  interval: 5m\n  decryption:\n    provider: sops\n    secretRef:\n      name: sops-age\n  \
             path: ./{overlay}/services/{n}\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n    namespace: flux-system\n  \
             targetNamespace: {ns}\n",
            n = svc.name,
            ns = svc.namespace
        );
    }
    text
}

fn git_repository(svc: &Service) -> String {
    format!(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: opencenter-{}\n  namespace: flux-system\n\
         spec:\n  interval: 15m\n  url: {BASE_REPO_URL}\n  ref:\n    branch: main\n",
        svc.name
    )
}

fn service_dir(spec: &Spec, cluster: &str, overlay: &str, svc: &Service) -> Vec<Planned> {
    if svc.credentials == Credentials::BaseOnly {
        return Vec::new();
    }
    let dir = format!("services/{}", svc.name);
    let values = format!("{}-values.yaml", svc.name);
    let (mut resources, mut files) = (vec![values.clone()], Vec::new());
    files.push(plain(
        format!("{overlay}/{dir}/{values}"),
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {}-overrides\ndata:\n  values.yaml: |\n    replicaCount: 2\n", svc.name),
    ));
    match svc.credentials {
        Credentials::BaseOnly => {}
        Credentials::Own => {
            let registry = spec.registry(cluster);
            resources.extend([
                "oci-creds.yaml".to_string(),
                "registry-credentials.yaml".to_string(),
            ]);
            files.push(secret_file(
                overlay,
                &format!("{dir}/oci-creds.yaml"),
                &registry,
                SecretShape::Data,
            ));
            files.push(secret_file(
                overlay,
                &format!("{dir}/registry-credentials.yaml"),
                &registry,
                SecretShape::StringData,
            ));
        }
        Credentials::Shared => resources.push(format!("../global/{}", spec.shared.name)),
    }
    files.push(plain(
        format!("{overlay}/{dir}/kustomization.yaml"),
        kustomization(
            &format!("{} overrides for this cluster", svc.name),
            &resources,
        ),
    ));
    files
}

fn managed_files(spec: &Spec, cluster: &str, overlay: &str) -> Vec<Planned> {
    if spec.managed.is_empty() {
        return Vec::new();
    }
    let mut index = Vec::new();
    let mut files = Vec::new();
    for (name, namespace) in &spec.managed {
        index.push(format!("{name}.yaml"));
        files.push(plain(
            format!("{overlay}/managed-services/fluxcd/{name}.yaml"),
            format!(
                "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: {name}\n  namespace: flux-system\n\
                 spec:\n  interval: 5m\n  decryption:\n    provider: sops\n    secretRef:\n      name: sops-age\n  path: ./{overlay}/managed-services/{name}\n  \
                 prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n  targetNamespace: {namespace}\n"
            ),
        ));
        files.push(plain(
            format!("{overlay}/managed-services/{name}/kustomization.yaml"),
            kustomization(
                &format!("{name}, managed by the platform team"),
                &[format!("{name}-values.yaml"), "oci-creds.yaml".to_string()],
            ),
        ));
        files.push(plain(
            format!("{overlay}/managed-services/{name}/{name}-values.yaml"),
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-overrides\ndata:\n  values.yaml: |\n    replicaCount: 1\n"),
        ));
        files.push(secret_file(
            overlay,
            &format!("managed-services/{name}/oci-creds.yaml"),
            &spec.registry(cluster),
            SecretShape::Data,
        ));
    }
    files.push(plain(
        format!("{overlay}/managed-services/fluxcd/kustomization.yaml"),
        kustomization("Managed services", &index),
    ));
    files
}

#[derive(Clone, Copy)]
enum SecretShape {
    Data,
    StringData,
}

/// A dockerconfigjson Secret named after its file, encrypted from the overlay directory.
fn secret_file(overlay: &str, rel: &str, registry: &Registry, shape: SecretShape) -> Planned {
    let name = rel
        .rsplit('/')
        .next()
        .unwrap_or(rel)
        .trim_end_matches(".yaml");
    let json = dockerconfigjson(std::slice::from_ref(registry));
    let (section, value) = match shape {
        SecretShape::Data => ("data", BASE64.encode(json)),
        SecretShape::StringData => ("stringData", json),
    };
    let mut values = serde_yaml::Mapping::new();
    values.insert(DOCKERCONFIGJSON_KEY.into(), value.into());
    let mut metadata = serde_yaml::Mapping::new();
    metadata.insert("name".into(), name.into());
    let mut doc = serde_yaml::Mapping::new();
    doc.insert("apiVersion".into(), "v1".into());
    doc.insert("kind".into(), "Secret".into());
    doc.insert("metadata".into(), metadata.into());
    doc.insert("type".into(), DOCKERCONFIGJSON_TYPE.into());
    doc.insert(section.into(), values.into());
    Planned {
        path: format!("{overlay}/{rel}"),
        text: serde_yaml::to_string(&doc).expect("a mapping of strings serializes"),
        sops_dir: Some(overlay.to_string()),
    }
}

/// `flux bootstrap`'s sync manifests for an overlay: no decryption, as bootstrap writes them.
fn gotk_sync(spec: &Spec, overlay: &str) -> String {
    let owner = spec.customer.as_deref().unwrap_or("platform");
    format!(
        "# This manifest was generated by flux. DO NOT EDIT.\n---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  \
         name: flux-system\n  namespace: flux-system\nspec:\n  interval: 1m0s\n  ref:\n    branch: main\n  secretRef:\n    name: flux-system\n  \
         url: ssh://git@git.example.com/{owner}/fleet.git\n---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  \
         name: flux-system\n  namespace: flux-system\nspec:\n  interval: 10m0s\n  path: ./{overlay}\n  prune: true\n  sourceRef:\n    \
         kind: GitRepository\n    name: flux-system\n"
    )
}

/// A stand-in for bootstrap's controller manifests: its header and the namespace only.
const GOTK_COMPONENTS: &str = "---\n# This manifest was generated by flux. DO NOT EDIT.\n# Flux Version: v2.9.5\n# Components: source-controller,kustomize-controller,helm-controller,notification-controller\n\
# (stand-in: the controllers' manifests are omitted from this synthetic fleet)\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n  labels:\n    \
app.kubernetes.io/instance: flux-system\n    app.kubernetes.io/part-of: flux\n";

/// The base repository: per service an upstream chart (HTTPS HelmRepository + HelmRelease) and
/// the enterprise component repointing it at `opencenter-cloud`, an OCI HelmRepository pulling
/// with `oci-creds` in the target namespace.
fn base_files(spec: &Spec) -> Vec<(String, String)> {
    let mut files = vec![(
        "applications/base/shared/platform-info.yaml".to_string(),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: opencenter-platform-info\ndata:\n  platform: opencenter\n".to_string(),
    )];
    for svc in &spec.services {
        let dir = format!("applications/base/services/{}", svc.name);
        files.push((format!("{dir}/helmrepository.yaml"), format!(
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: {n}\nspec:\n  interval: 1h\n  url: https://charts.example.com/{n}\n",
            n = svc.name
        )));
        files.push((format!("{dir}/helmrelease.yaml"), format!(
            "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: {n}\nspec:\n  interval: 10m\n  chart:\n    spec:\n      chart: {n}\n      \
             version: \"1.2.3\"\n      sourceRef:\n        kind: HelmRepository\n        name: {n}\n",
            n = svc.name
        )));
        if svc.plain_base {
            continue; // Flux generates the kustomization.yaml of a directory without one.
        }
        // Flux loads files from anywhere in the source: one base reaches outside its directory.
        let mut resources = vec![
            "helmrepository.yaml".to_string(),
            "helmrelease.yaml".to_string(),
        ];
        if svc.name == "keycloak" {
            resources.push("../../shared/platform-info.yaml".into());
        }
        files.push((
            format!("{dir}/kustomization.yaml"),
            kustomization(&format!("{} from upstream", svc.name), &resources),
        ));
        files.push((format!("{dir}/components/enterprise/kustomization.yaml"), format!(
            "# Enterprise edition: charts from the openCenter registry, pulled with oci-creds.\napiVersion: kustomize.config.k8s.io/v1alpha1\n\
             kind: Component\nresources:\n  - helmrepository.yaml\npatches:\n  - target:\n      kind: HelmRelease\n      name: {n}\n    patch: |\n      \
             - op: replace\n        path: /spec/chart/spec/sourceRef/name\n        value: opencenter-cloud\n",
            n = svc.name
        )));
        files.push((format!("{dir}/components/enterprise/helmrepository.yaml"),
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: opencenter-cloud\nspec:\n  type: oci\n  interval: 1h\n  \
             url: oci://registry.opencenter.example/charts\n  secretRef:\n    name: oci-creds\n".to_string()));
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sops_doc(root: &Path, rel: &str) -> serde_yaml::Value {
        serde_yaml::from_str(&std::fs::read_to_string(root.join(rel)).unwrap()).unwrap()
    }

    fn recipients(doc: &serde_yaml::Value) -> Vec<String> {
        doc["sops"]["age"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|r| r["recipient"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn both_layouts_are_encrypted_by_the_overlay_rule_and_build() {
        for customer in [None, Some("acme")] {
            let dir = tempfile::tempdir().unwrap();
            let (root, base) = (dir.path().join("fleet"), dir.path().join("base"));
            let spec = Spec::standard(customer);
            let generated = generate(&root, &base, &spec).unwrap();
            for cluster in &spec.clusters {
                let overlay = spec.overlay(cluster);
                let own = &generated.recipients[&overlay];
                for rel in [
                    "services/cert-manager/oci-creds.yaml",
                    "services/kyverno/registry-credentials.yaml",
                    "services/global/harbor/oci-creds.yaml",
                    "managed-services/alert-proxy/oci-creds.yaml",
                ] {
                    let doc = sops_doc(&root, &format!("{overlay}/{rel}"));
                    // The overlay's rule (cluster key only), not the root one (which adds the admin).
                    assert_eq!(
                        recipients(&doc),
                        std::slice::from_ref(own),
                        "{overlay}/{rel}"
                    );
                    let values = doc["data"]
                        .as_mapping()
                        .or(doc["stringData"].as_mapping())
                        .unwrap();
                    assert!(
                        values
                            .values()
                            .all(|v| v.as_str().unwrap().starts_with("ENC[")),
                        "{rel}"
                    );
                }
                assert!(
                    !root
                        .join(format!("{overlay}/flux-system/oci-creds.yaml"))
                        .exists()
                );
                let sync = std::fs::read_to_string(
                    root.join(format!("{overlay}/flux-system/gotk-sync.yaml")),
                )
                .unwrap();
                assert!(sync.contains("DO NOT EDIT") && !sync.contains("decryption"));
                for built in [
                    overlay.clone(),
                    format!("{overlay}/services/keycloak"),
                    format!("{overlay}/flux-system"),
                ] {
                    let out = tools::command(tools::KUBECTL)
                        .unwrap()
                        .args(["kustomize", &built])
                        .current_dir(&root)
                        .output()
                        .unwrap();
                    assert!(
                        out.status.success(),
                        "{built}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
            let component = base.join("applications/base/services/rbac-manager");
            let out = tools::command(tools::KUBECTL)
                .unwrap()
                .arg("kustomize")
                .arg(&component)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            for password in spec.passwords() {
                for entry in walkdir::WalkDir::new(&root)
                    .into_iter()
                    .flatten()
                    .filter(|e| e.file_type().is_file())
                {
                    let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                    assert!(
                        !text.contains(&password),
                        "{} leaks",
                        entry.path().display()
                    );
                }
            }
        }
    }
}
