//! The library's types as Rhai sees them: read-only properties and doc comments, under their
//! Rust names (see [`super::script_type`]).
//!
//! `CustomType` is implemented here, not in the domain modules, so those stay free of Rhai. Only
//! read access is offered; every change goes through the `repo` functions in [`super::api`].
//! [`Credentials`] shows registries and fingerprints only: no property reveals a secret.

use super::Repo;
use super::script_type::{ScriptType, ScriptVisible, TypeRegistry};
use ocitool_adapters::kubectl::Kubectl;
use ocitool_core::creds::{Credentials, Merged, Password};
use ocitool_core::reflector::SourceOptions;
use ocitool_core::reflector::base_repo::BaseRepo;
use ocitool_core::reflector::render::RenderOptions;
use ocitool_core::reflector::verify::ClusterSnapshot;
use ocitool_core::repo_path::RepoPath;
use ocitool_core::secret::SourceSpec;
use ocitool_orchestration::deploy::{DeployReport, HandEdit};
use ocitool_orchestration::flux_builds::{NamespacePlan, Sources};
use ocitool_orchestration::login::LoginCheck;
use ocitool_orchestration::others::OtherCredentials;
use ocitool_orchestration::repo::{CredFile, Overlay, Scan};
use ocitool_orchestration::target::{Customers, Target};
use ocitool_orchestration::validate::Finding;
use rhai::{Array, Dynamic, Engine};

pub fn register(engine: &mut Engine) {
    let mut types = TypeRegistry::new(engine);
    types
        .add::<Repo>()
        .add::<Overlay>()
        .add::<CredFile>()
        .add::<Scan>()
        .add::<OtherCredentials>()
        .add::<Credentials>()
        .add::<Merged>()
        .add::<SourceSpec>()
        .add::<SourceOptions>()
        .add::<Sources>()
        .add::<NamespacePlan>()
        .add::<Target>()
        .add::<RenderOptions>()
        .add::<BaseRepo>()
        .add::<DeployReport>()
        .add::<Finding>()
        .add::<Kubectl>()
        .add::<ClusterSnapshot>()
        .add::<Password>()
        .add::<LoginCheck>();
    types.finish();
}

fn strings<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Array {
    items.into_iter().map(|s| Dynamic::from(s.into())).collect()
}

fn optional(value: Option<String>) -> Dynamic {
    value.map(Dynamic::from).unwrap_or(Dynamic::UNIT)
}

impl ScriptVisible for Repo {
    fn describe(b: &mut ScriptType<Self>) {
        b.with_comments(&["/// The repository the script runs against (`repo` in scope). Reads see staged changes; writes are staged and applied by the host at the end."])
            .with_get("root", |r: &mut Repo| r.0.borrow().root().display().to_string())
            .and_comments(&["/// Absolute path of the repository root."]);
    }
}

impl ScriptVisible for Overlay {
    fn describe(b: &mut ScriptType<Self>) {
        b.with_comments(&["/// One cluster's overlay: `[<customer>/]applications/overlays/<cluster>`."])
            .with_get("customer", |o: &mut Overlay| o.customer.clone().unwrap_or_default())
            .and_comments(&["/// Customer name, or \"\" in a single-customer repo."])
            .with_get("cluster", |o: &mut Overlay| o.cluster.clone())
            .and_comments(&["/// Cluster name (the overlay directory's name)."])
            .with_get("path", |o: &mut Overlay| o.path.to_string())
            .and_comments(&["/// Repo-relative path of the overlay directory."])
            .with_get("label", |o: &mut Overlay| o.label())
            .and_comments(&["/// `customer/cluster` (or `cluster`), for messages."])
            .with_get("source_path", |o: &mut Overlay| o.source_path().to_string())
            .and_comments(&["/// Repo-relative path of the consolidated source Secret, `<overlay>/flux-system/oci-creds.yaml`."])
            .on_print(|o: &mut Overlay| o.label());
    }
}

impl ScriptVisible for CredFile {
    fn describe(b: &mut ScriptType<Self>) {
        b.with_comments(&["/// A per-service `oci-creds.yaml`: where it is, what it declares, which namespace it serves."])
            .with_get("service", |f: &mut CredFile| f.service.clone())
            .and_comments(&["/// Service directory under `services/` (`global/<name>` for a shared folder), or `managed-services/<name>`."])
            .with_get("path", |f: &mut CredFile| f.path.to_string())
            .and_comments(&["/// Repo-relative path of the file."])
            .with_get("dir", |f: &mut CredFile| f.dir.to_string())
            .and_comments(&["/// Repo-relative service directory."])
            .with_get("secret_name", |f: &mut CredFile| f.secret_name.clone())
            .and_comments(&["/// `metadata.name` of the Secret."])
            .with_get("secret_type", |f: &mut CredFile| f.secret_type.clone())
            .and_comments(&["/// `type` of the Secret (Opaque when absent)."])
            .with_get("encrypted", |f: &mut CredFile| f.encrypted)
            .and_comments(&["/// Whether the file is sops-encrypted."])
            .with_get("namespace", |f: &mut CredFile| f.namespace.clone())
            .and_comments(&["/// The first of `namespaces`."])
            .with_get("namespaces", |f: &mut CredFile| strings(f.namespaces.clone()))
            .and_comments(&["/// Every namespace Flux deploys it to, sorted: per Flux Kustomization including it, targetNamespace > kustomization namespace > Secret namespace (several for a shared folder)."])
            .with_get("namespace_source", |f: &mut CredFile| f.namespace_source.describe().to_string())
            .and_comments(&["/// Where the namespace came from."])
            .with_get("kustomization", |f: &mut CredFile| optional(f.kustomization.as_ref().map(RepoPath::to_string)))
            .and_comments(&["/// The first of `kustomizations`, or () when none lists it."])
            .with_get("kustomizations", |f: &mut CredFile| strings(f.kustomizations.iter().map(RepoPath::to_string)))
            .and_comments(&["/// Every repo-relative kustomization file listing it under `resources:` (several for a shared file)."])
            .with_get("resource_entry", |f: &mut CredFile| optional(f.resource_entry()))
            .and_comments(&["/// The file's path relative to that kustomization's directory (what `remove_resource` takes), or ()."])
            .on_print(|f: &mut CredFile| format!("{} ({})", f.path, f.namespaces.join(", ")));
    }
}

impl ScriptVisible for OtherCredentials {
    fn describe(b: &mut ScriptType<Self>) {
        b.with_comments(&["/// Another dockerconfigjson Secret of an overlay (e.g. `registry-credentials.yaml`), not consolidated: where it is and the credentials it carries (decrypted in memory; shown as registries and fingerprints only)."])
            .with_get("path", |o: &mut OtherCredentials| o.secret.path.to_string())
            .and_comments(&["/// Repo-relative path of the file."])
            .with_get("secret_name", |o: &mut OtherCredentials| o.secret.secret_name.clone())
            .and_comments(&["/// `metadata.name` of the Secret."])
            .with_get("stem", |o: &mut OtherCredentials| o.secret.stem().to_string())
            .and_comments(&["/// The file name without `.yaml`, e.g. `registry-credentials`."])
            .with_get("credentials", |o: &mut OtherCredentials| o.credentials.clone().ok().map(Dynamic::from).unwrap_or(Dynamic::UNIT))
            .and_comments(&["/// The Credentials it carries, or () when they could not be read (see `problem`)."])
            .with_get("problem", |o: &mut OtherCredentials| optional(o.credentials.as_ref().err().cloned()))
            .and_comments(&["/// Why its credentials could not be read (no key, not a registry credential), or ()."])
            .with_fn("is_named", |o: &mut OtherCredentials, name: &str| o.secret.is_named(name))
            .and_comments(&["/// Whether `name` (an entry of `--set also=`) is its file stem or its Secret name."])
            .with_fn("shared_registries", |o: &mut OtherCredentials, of: Credentials| strings(o.shared_registries(&of)))
            .and_comments(&["/// The registries of `of` it carries too, sorted (empty when unreadable)."])
            .on_print(|o: &mut OtherCredentials| format!("{} (Secret {})", o.secret.path, o.secret.secret_name));
    }
}

impl ScriptVisible for Scan {
    fn describe(b: &mut ScriptType<Self>) {
        b.with_comments(&["/// What `repo.scan(overlay)` found in one overlay."])
            .with_get("overlay", |s: &mut Scan| s.overlay.clone())
            .and_comments(&["/// The overlay scanned."])
            .with_get("files", |s: &mut Scan| s.files.iter().cloned().map(Dynamic::from).collect::<Array>())
            .and_comments(&["/// Every per-service credentials file (array of CredFile)."])
            .with_get("namespaces", |s: &mut Scan| strings(s.namespaces()))
            .and_comments(&["/// The sorted, deduplicated namespaces of those files."])
            .with_get("source", |s: &mut Scan| optional(s.source.as_ref().map(RepoPath::to_string)))
            .and_comments(&["/// Path of the existing consolidated source, or () when there is none."])
            .with_get("deploys_reflector", |s: &mut Scan| s.deploys_reflector)
            .and_comments(&["/// Whether the overlay deploys Reflector in a way Flux can carry out: a Flux Kustomization of `managed-services/reflector` that a kustomization lists and whose `sourceRef` names a source Flux applies from the overlay (for the fleet repository itself: whose path exists in it), or a HelmRelease `reflector`."])
            .with_get("reflector_problem", |s: &mut Scan| optional(s.reflector_problem.clone()))
            .and_comments(&["/// Why the Reflector deployment found cannot work (a dangling `sourceRef`, an unlisted file, a missing path), naming the file and the fix; () when it works or there is none."])
            .with_get("warnings", |s: &mut Scan| strings(s.warnings.clone()))
            .and_comments(&["/// Findings worth telling the user (unreferenced or unencrypted files)."]);
    }
}

impl ScriptVisible for Credentials {
    fn describe(b: &mut ScriptType<Self>) {
        b.with_comments(&["/// Decrypted registry credentials. Opaque: prints as registries and fingerprints, never as values."])
            .with_get("registries", |c: &mut Credentials| strings(c.registries()))
            .and_comments(&["/// Registry hosts, sorted."])
            .with_get("origin", |c: &mut Credentials| c.origin().to_string())
            .and_comments(&["/// Where they came from (a service, a file)."])
            .with_fn("fingerprint", |c: &mut Credentials, registry: &str| optional(c.fingerprint(registry)))
            .and_comments(&["/// `v2:` + 12 hex digits (Argon2id of username and password) identifying one registry's credentials, or () when absent."])
            .with_fn("registries_with", |c: &mut Credentials, fingerprint: &str| strings(c.registries_with(fingerprint)))
            .and_comments(&["/// The registries whose credentials have this fingerprint (`v2:`, or the older `sha256:`), sorted."])
            .with_fn("carries", |c: &mut Credentials, fingerprint: &str| c.carries(fingerprint))
            .and_comments(&["/// Whether any registry has credentials with this fingerprint."])
            .with_fn("summary", |c: &mut Credentials| registry_summary(c))
            .and_comments(&["/// One map per registry, sorted: `#{registry, username, fingerprint}` (never the password)."])
            .on_print(|c: &mut Credentials| c.to_string())
            .on_debug(|c: &mut Credentials| format!("{c:?}"));
    }
}

fn registry_summary(creds: &Credentials) -> Array {
    creds
        .registries()
        .into_iter()
        .filter_map(|registry| {
            let auth = creds.get(&registry)?;
            let map = rhai::Map::from([
                ("registry".into(), Dynamic::from(registry.clone())),
                ("username".into(), auth.username().to_string().into()),
                ("fingerprint".into(), auth.fingerprint().into()),
            ]);
            Some(Dynamic::from_map(map))
        })
        .collect()
}

impl ScriptVisible for Merged {
    fn describe(b: &mut ScriptType<Self>) {
        b.with_comments(&["/// The result of `merge_credentials`: the merged Credentials and the conflicts `prefer` settled."])
            .with_get("credentials", |m: &mut Merged| m.credentials.clone())
            .and_comments(&["/// The merged credentials."])
            .with_get("resolved", |m: &mut Merged| {
                strings(m.resolved.iter().map(|(c, winner)| format!("{c} -> kept {winner}")))
            })
            .and_comments(&["/// One line per settled conflict: registry, holders with fingerprints, and the winner."]);
    }
}

impl ScriptVisible for SourceSpec {
    fn describe(b: &mut ScriptType<Self>) {
        b.with_comments(&["/// The consolidated source Secret: name, Reflector namespaces, credentials, kept labels and annotations."])
            .with_get("name", |s: &mut SourceSpec| s.name().to_string())
            .and_comments(&["/// Secret name."])
            .with_get("namespace", |s: &mut SourceSpec| s.namespace().to_string())
            .and_comments(&["/// Secret namespace."])
            .with_get("namespaces", |s: &mut SourceSpec| strings(s.namespaces().to_vec()))
            .and_comments(&["/// Namespaces Reflector may and will mirror into (both annotation lists), sorted and deduplicated."])
            .with_get("credentials", |s: &mut SourceSpec| s.credentials.clone())
            .and_comments(&["/// The credentials it carries."])
            .on_print(|s: &mut SourceSpec| format!("{}/{} {}", s.namespace(), s.name(), s.credentials));
    }
}

impl ScriptVisible for SourceOptions {
    fn describe(b: &mut ScriptType<Self>) {
        b.with_comments(&["/// The source Secret's name and namespace and the Reflector's namespace (see `source_options`): the names consolidation, deployment, validation and verification share."])
            .with_get("source_name", |o: &mut SourceOptions| o.source_name().to_string())
            .and_comments(&["/// Name of the source Secret and of every mirror."])
            .with_get("source_namespace", |o: &mut SourceOptions| o.source_namespace().to_string())
            .and_comments(&["/// Namespace of the source Secret."])
            .with_get("reflector_namespace", |o: &mut SourceOptions| o.reflector_namespace().to_string())
            .and_comments(&["/// Namespace Reflector runs in."])
            .on_print(|o: &mut SourceOptions| o.to_string());
    }
}

impl ScriptVisible for Sources {
    fn describe(b: &mut ScriptType<Self>) {
        b.with_comments(&["/// Local checkouts of the sources Flux Kustomizations build from (see `source_checkouts`): the fleet itself for GitRepository `flux-system`, `base_repo` for every other GitRepository, `source.NAME` for one source."])
            .with_get("base_repo", |s: &mut Sources| optional(s.base_repo.as_ref().map(|p| p.display().to_string())))
            .and_comments(&["/// The checkout every other GitRepository maps to, or ()."])
            .with_get("names", |s: &mut Sources| strings(s.by_name.keys().cloned()))
            .and_comments(&["/// The sources mapped one by one (`--set source.NAME=DIR`), sorted."]);
    }
}

impl ScriptVisible for NamespacePlan {
    fn describe(b: &mut ScriptType<Self>) {
        b.with_comments(&["/// What `repo.plan_namespaces` decided: the namespaces the source is mirrored into and why."])
            .with_get("namespaces", |p: &mut NamespacePlan| strings(p.namespaces.clone()))
            .and_comments(&["/// Every namespace with a per-service copy and every namespace where built output uses the Secret, sorted."])
            .with_get("added", |p: &mut NamespacePlan| strings(p.added.clone()))
            .and_comments(&["/// The namespaces only a consumer in built output asks for (no per-service copy)."])
            .with_get("warnings", |p: &mut NamespacePlan| strings(p.warnings.clone()))
            .and_comments(&["/// Namespaces kept without a visible consumer, Kustomizations not checked, wrong kinds of use."]);
    }
}

impl ScriptVisible for Target {
    fn describe(b: &mut ScriptType<Self>) {
        b.with_comments(&["/// Which cluster overlays a workflow works on (see `target`)."])
            .with_get("customer", |t: &mut Target| match t.customers() {
                Customers::Unnamed => String::new(),
                Customers::Named(name) => name.clone(),
                Customers::All => ocitool_orchestration::target::ALL_CUSTOMERS.to_string(),
            })
            .and_comments(&["/// The customer named, \"*\" for every customer, or \"\" when none was named (a single-customer repo)."])
            .with_get("cluster", |t: &mut Target| optional(t.cluster().map(str::to_string)))
            .and_comments(&["/// The one cluster named, or () for every cluster."])
            .on_print(|t: &mut Target| t.to_string());
    }
}

impl ScriptVisible for RenderOptions {
    fn describe(b: &mut ScriptType<Self>) {
        b.with_comments(&["/// Validated parameters the Reflector manifests are rendered from (see `render_options`)."])
            .with_get("chart_version", |o: &mut RenderOptions| o.chart_version.clone())
            .and_comments(&["/// Reflector Helm chart version."])
            .with_get("namespace", |o: &mut RenderOptions| o.namespace.clone())
            .and_comments(&["/// Namespace Reflector runs in."])
            .with_get("repository_name", |o: &mut RenderOptions| o.repository_name.clone())
            .and_comments(&["/// Name of the HelmRepository."])
            .with_get("repository_url", |o: &mut RenderOptions| o.repository_url.clone())
            .and_comments(&["/// https URL of the Helm chart repository."])
            .on_print(|o: &mut RenderOptions| format!("reflector {} in {}", o.chart_version, o.namespace));
    }
}

impl ScriptVisible for BaseRepo {
    fn describe(b: &mut ScriptType<Self>) {
        b.with_comments(&["/// The GitRepository a cluster's Reflector wiring applies the base from (see `base_repo`)."])
            .with_get("name", |r: &mut BaseRepo| r.name.clone())
            .and_comments(&["/// Its name, in flux-system."])
            .with_get("url", |r: &mut BaseRepo| optional(r.remote.as_ref().map(|m| m.url.clone())))
            .and_comments(&["/// The base repository's URL when ocitool renders the GitRepository, or () when it must exist."])
            .on_print(|r: &mut BaseRepo| r.to_string());
    }
}

fn hand_edits(edits: &[HandEdit]) -> Array {
    strings(edits.iter().map(ToString::to_string))
}

impl ScriptVisible for DeployReport {
    fn describe(b: &mut ScriptType<Self>) {
        b.with_comments(&["/// What `deploy_reflector_base` or `wire_reflector` staged, by repo-relative path."])
            .with_get("written", |r: &mut DeployReport| strings(r.written.clone()))
            .and_comments(&["/// Files created or changed (overwritten hand edits included)."])
            .with_get("unchanged", |r: &mut DeployReport| strings(r.unchanged.clone()))
            .and_comments(&["/// Files already as they should be."])
            .with_get("hand_edited", |r: &mut DeployReport| hand_edits(&r.hand_edited))
            .and_comments(&["/// `path (reason)` of each differing file left untouched because force was not given."])
            .with_get("overwritten", |r: &mut DeployReport| hand_edits(&r.overwritten))
            .and_comments(&["/// `path (reason)` of each differing file replaced because force was given."])
            .with_get("warnings", |r: &mut DeployReport| strings(r.warnings.clone()))
            .and_comments(&["/// What the user should know about the result, e.g. a wiring no kustomization reachable from the overlay root includes."]);
    }
}

impl ScriptVisible for Finding {
    fn describe(b: &mut ScriptType<Self>) {
        b.with_comments(&[
            "/// One validation or verification result: severity, where, and what to do.",
        ])
        .with_get("severity", |f: &mut Finding| f.severity.to_string())
        .and_comments(&["/// \"error\", \"warning\" or \"info\"."])
        .with_get("file", |f: &mut Finding| f.file.clone())
        .and_comments(&[
            "/// Repo-relative file to fix (for cluster findings: the namespace concerned).",
        ])
        .with_get("message", |f: &mut Finding| f.message.clone())
        .and_comments(&["/// What is wrong and how to fix it; never contains secret values."])
        .with_fn("to_map", |f: &mut Finding| {
            rhai::Map::from([
                ("severity".into(), f.severity.to_string().into()),
                ("file".into(), f.file.clone().into()),
                ("message".into(), f.message.clone().into()),
            ])
        })
        .and_comments(&["/// `#{severity, file, message}`; `json` converts Findings through it."])
        .on_print(|f: &mut Finding| format!("{}: {}: {}", f.severity, f.file, f.message));
    }
}

impl ScriptVisible for Kubectl {
    fn describe(b: &mut ScriptType<Self>) {
        b.with_comments(&["/// kubectl bound to one kubeconfig context (`kubectl(context)`): how scripts reach a live cluster."])
            .with_get("context", |k: &mut Kubectl| {
                k.context.clone().unwrap_or_default()
            })
            .and_comments(&["/// The kubeconfig context, or \"\" for the current one."]);
    }
}

impl ScriptVisible for ClusterSnapshot {
    fn describe(b: &mut ScriptType<Self>) {
        b.with_comments(&[
            "/// The kubectl documents cluster verification reads; pass it to `verify_snapshot`. Holds Secret data: it has no properties and does not print.",
        ])
        .on_print(|_: &mut ClusterSnapshot| "ClusterSnapshot".to_string())
        .on_debug(|_: &mut ClusterSnapshot| "ClusterSnapshot".to_string());
    }
}

impl ScriptVisible for Password {
    fn describe(b: &mut ScriptType<Self>) {
        b.with_comments(&["/// A new registry password from `read_password`. Opaque: prints as `<password>`; pass it to `with_registry`."])
            .on_print(|p: &mut Password| p.to_string())
            .on_debug(|p: &mut Password| format!("{p:?}"));
    }
}

impl ScriptVisible for LoginCheck {
    fn describe(b: &mut ScriptType<Self>) {
        b.with_comments(&["/// What one registry said about one credential (`check_logins`). Holds no secret."])
            .with_get("registry", |c: &mut LoginCheck| c.registry.clone())
            .and_comments(&["/// The registry key as the credentials hold it."])
            .with_get("username", |c: &mut LoginCheck| c.username.clone())
            .and_comments(&["/// The username that was tried."])
            .with_get("fingerprint", |c: &mut LoginCheck| c.fingerprint.clone())
            .and_comments(&["/// Fingerprint of the credential that was tried."])
            .with_get("verdict", |c: &mut LoginCheck| c.verdict().as_str().to_string())
            .and_comments(&["/// \"logs-in\", \"not-checked\" (the registry asks for no credential), \"rejected\" or \"unknown\" (unreachable or an unexpected answer)."])
            .with_get("detail", |c: &mut LoginCheck| c.result.to_string())
            .and_comments(&["/// One line: endpoint, auth scheme and outcome (HTTP status or why it could not be reached)."])
            .with_fn("finding", |c: &mut LoginCheck, file: &str| c.finding(file))
            .and_comments(&["/// This check as a Finding on `file`: rejected is an error, unanswered a warning, the rest info."])
            .on_print(|c: &mut LoginCheck| c.to_string());
    }
}
