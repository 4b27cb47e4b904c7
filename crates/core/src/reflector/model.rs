//! What Reflector does with a source Secret, as Reflector's own source code defines it.
//!
//! This module owns the rules — which namespaces a source may be reflected to, which get an automatic
//! mirror, which are blocked by a Secret that is already there, and what a mirror looks like — so that
//! planning and cluster verification agree with the controller instead of with the README. It never
//! talks to a cluster and never reveals secret data: data is compared and shown only as a hash
//! ([`data_fingerprint`]), and the `Debug` output of every type here that holds data prints that hash.
//!
//! Source of truth: emberstack/kubernetes-reflector as shipped in v7.1.x (Helm chart 7.1.288), files
//! under `src/ES.Kubernetes.Reflector/Core/`:
//! - `Mirroring/Extensions/ReflectorExtensions.cs` reads the annotations (`GetReflectionProperties`);
//! - `Extensions/MetadataExtensions.cs` `TryGet<T>` converts them: `Convert.ChangeType(raw.Trim(), typeof(T))`;
//! - `Mirroring/Extensions/ReflectionStatusExtensions.cs` has `CanBeReflectedToNamespace`,
//!   `CanBeAutoReflectedToNamespace` and `PatternListMatch`;
//! - `Mirroring/ResourceMirror.cs` `AutoReflectionForSource` / `ResourceReflect` decide create/update/skip;
//! - `Resources/KubeRef.cs` parses the `reflects` annotation;
//! - `SecretMirror.cs` clones `Type` and `Data` and ignores `helm.sh/*` Secrets.
//!
//! The later 9.x line (`Mirroring/Core/MirroringPropertiesExtensions.cs`) keeps the same name-pattern
//! rules and adds label selectors, which 7.1.288 does not have and this model does not implement.

use super::{
    ALLOWED, ALLOWED_NAMESPACES, AUTO_ENABLED, AUTO_NAMESPACES, AUTO_REFLECTS, REFLECTED_AT,
    REFLECTED_VERSION, REFLECTS, split_namespace_list,
};
use anyhow::{Result, anyhow, bail};
use regex::Regex;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// One entry of a namespace-list annotation: a .NET regular expression, compiled for Rust.
#[derive(Debug, Clone)]
pub struct NamespacePattern {
    source: String,
    regex: Regex,
}

impl NamespacePattern {
    /// Compile `pattern`, or fail naming it when Rust's `regex` cannot reproduce .NET's reading of it.
    pub fn parse(pattern: &str) -> Result<Self> {
        if let Some(why) = dotnet_only_class_syntax(pattern) {
            bail!("namespace pattern `{pattern}` cannot be checked by ocitool: {why}");
        }
        let regex = Regex::new(pattern).map_err(|e| {
            anyhow!(
                "namespace pattern `{pattern}` uses regex syntax ocitool cannot evaluate \
                 (lookaround, backreferences, atomic groups and .NET-only constructs are unsupported): {e}"
            )
        })?;
        Ok(Self {
            source: pattern.to_string(),
            regex,
        })
    }

    /// The pattern text as written in the annotation (trimmed).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the pattern is a plain namespace name (DNS-label characters only), which can only
    /// ever match itself. `-` is literal outside a character class in both engines.
    pub fn is_literal(&self) -> bool {
        self.source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    }

    /// Reflector's test: `Regex.Match(value, pattern)` succeeds and `match.Value.Length == value.Length`.
    /// Only the *first* match counts, so `a|ab` does not match `ab`. Rust's `find` is leftmost-first,
    /// which picks the same match as .NET's backtracking engine for the syntax we accept.
    pub fn matches(&self, namespace: &str) -> bool {
        self.regex
            .find(namespace)
            .is_some_and(|m| m.start() == 0 && m.end() == namespace.len())
    }
}

/// Inside `[...]`, .NET reads `[`, `&&`, `--` and `~~` literally (or as subtraction `-[...]`), while Rust
/// reads nested classes and set operations. Both would compile, with different meanings, so refuse.
fn dotnet_only_class_syntax(pattern: &str) -> Option<&'static str> {
    let mut in_class = false;
    let mut prev = '\0';
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
                prev = '\0';
                continue;
            }
            '[' if !in_class => in_class = true,
            '[' => {
                return Some(
                    "`[` inside a character class (class subtraction or nesting) differs between .NET and Rust",
                );
            }
            ']' if in_class => in_class = false,
            '&' | '-' | '~' if in_class && prev == c => {
                return Some(
                    "`&&`, `--` or `~~` inside a character class differs between .NET and Rust",
                );
            }
            _ => {}
        }
        prev = c;
    }
    None
}

/// A namespace-list annotation (`reflection-allowed-namespaces`, `reflection-auto-namespaces`).
#[derive(Debug, Clone)]
pub struct NamespaceList {
    /// `PatternListMatch` returns true before splitting when the annotation is missing or `""`.
    all: bool,
    patterns: Vec<NamespacePattern>,
}

impl NamespaceList {
    /// Parse an annotation value: split on `,`, entries trimmed, blank entries dropped.
    ///
    /// Only a missing or literally empty value means "every namespace" (`string.IsNullOrEmpty`). A value
    /// with only blanks or commas (`" "`, `","`) leaves no patterns, and Reflector then matches nothing.
    pub fn parse(value: &str) -> Result<Self> {
        let patterns = split_namespace_list(value)
            .iter()
            .map(|p| NamespacePattern::parse(p))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            all: value.is_empty(),
            patterns,
        })
    }

    /// The list for a missing annotation: every namespace.
    pub fn all() -> Self {
        Self {
            all: true,
            patterns: Vec::new(),
        }
    }

    /// True when the list puts no restriction on namespaces.
    pub fn is_all(&self) -> bool {
        self.all
    }

    /// The patterns, in annotation order.
    pub fn patterns(&self) -> &[NamespacePattern] {
        &self.patterns
    }

    /// Does `namespace` pass this list?
    pub fn matches(&self, namespace: &str) -> bool {
        self.all || self.patterns.iter().any(|p| p.matches(namespace))
    }
}

/// Reflector's boolean annotations go through `Convert.ChangeType(raw.Trim(), typeof(bool))`, i.e.
/// `bool.Parse`: case-insensitive `true`/`false` with surrounding whitespace (and NULs) ignored.
/// Anything else (`yes`, `1`, `on`) throws, `TryGet` returns false, and the setting is off.
pub fn parse_dotnet_bool(value: &str) -> bool {
    value
        .trim_matches(|c: char| c.is_whitespace() || c == '\0')
        .eq_ignore_ascii_case("true")
}

/// Parse a `reflects` annotation like `KubeRef.TryParse`: trim, split on `/` dropping empty parts;
/// one part is a bare name (namespace empty), two are namespace and name, more is invalid.
pub fn parse_reflects(value: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = value.trim().split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        [name] => Some((String::new(), name.trim().to_string())),
        [ns, name] => Some((ns.trim().to_string(), name.trim().to_string())),
        _ => None,
    }
}

/// The four settings a source carries (`ReflectorProperties` in Reflector).
#[derive(Debug, Clone)]
pub struct ReflectionSettings {
    pub allowed: bool,
    pub allowed_namespaces: NamespaceList,
    pub auto_enabled: bool,
    pub auto_namespaces: NamespaceList,
}

impl ReflectionSettings {
    /// Read the settings from a source's annotations; fails only on a pattern ocitool cannot evaluate.
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Result<Self> {
        let flag = |key: &str| annotations.get(key).is_some_and(|v| parse_dotnet_bool(v));
        let list = |key: &str| match annotations.get(key) {
            Some(v) => NamespaceList::parse(v),
            None => Ok(NamespaceList::all()),
        };
        Ok(Self {
            allowed: flag(ALLOWED),
            allowed_namespaces: list(ALLOWED_NAMESPACES)?,
            auto_enabled: flag(AUTO_ENABLED),
            auto_namespaces: list(AUTO_NAMESPACES)?,
        })
    }

    /// `CanBeReflectedToNamespace`: allowed and the allowed list matches.
    pub fn can_reflect_to(&self, namespace: &str) -> bool {
        self.allowed && self.allowed_namespaces.matches(namespace)
    }

    /// `CanBeAutoReflectedToNamespace`: reflectable, auto-enabled, and the auto list matches.
    pub fn can_auto_reflect_to(&self, namespace: &str) -> bool {
        self.can_reflect_to(namespace)
            && self.auto_enabled
            && self.auto_namespaces.matches(namespace)
    }
}

/// The source Secret as ocitool sees it. `Debug` shows the data's fingerprint, never the data.
#[derive(Clone, PartialEq, Eq)]
pub struct SourceSecret {
    pub namespace: String,
    pub name: String,
    pub type_: String,
    pub annotations: BTreeMap<String, String>,
    pub data: BTreeMap<String, Vec<u8>>,
    pub resource_version: String,
}

impl fmt::Debug for SourceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceSecret")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("type_", &self.type_)
            .field("annotations", &self.annotations)
            .field("data", &data_fingerprint(&self.data))
            .field("resource_version", &self.resource_version)
            .finish()
    }
}

/// A Secret already present in some namespace with the source's name (data is not needed to plan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingSecret {
    pub namespace: String,
    pub name: String,
    pub annotations: BTreeMap<String, String>,
}

impl ExistingSecret {
    /// The source this Secret claims to reflect, resolved like `GetReflectionProperties`: a bare name
    /// means a source in the Secret's own namespace.
    pub fn reflects(&self) -> Option<(String, String)> {
        let (ns, name) = parse_reflects(self.annotations.get(REFLECTS)?)?;
        let ns = if ns.is_empty() {
            self.namespace.clone()
        } else {
            ns
        };
        Some((ns, name))
    }

    /// Reflector manages this Secret for `source` (it is in the create/update/skip sets, not ignored).
    pub fn is_reflection_of(&self, source: &SourceSecret) -> bool {
        self.reflects()
            .is_some_and(|(ns, name)| ns == source.namespace && name == source.name)
    }

    /// `auto-reflects` parses as .NET `true` (Reflector writes `"True"`).
    pub fn is_auto_reflection(&self) -> bool {
        self.annotations
            .get(AUTO_REFLECTS)
            .is_some_and(|v| parse_dotnet_bool(v))
    }
}

/// What Reflector does about one namespace for a given source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An automatic mirror is (or will be) kept there.
    Mirror,
    /// The namespace qualifies, but a Secret of the same name that is not a reflection of this source
    /// is already there. Reflector leaves it alone and does not report it (see [`plan`]).
    Blocked { reason: String },
    /// `reflection-allowed` is off or the allowed list does not match.
    NotAllowed,
    /// Reflection is allowed, but auto-reflection is off or the auto list does not match.
    NotAuto,
    /// The source's own namespace: never mirrored into.
    Source,
}

/// Decide, for every namespace in `namespaces`, what Reflector does with `source`.
///
/// Mirrors `AutoReflectionForSource`: create in namespaces that pass `CanBeAutoReflectedToNamespace`
/// and hold no Secret of that name; update/skip Secrets whose `reflects` resolves to the source.
/// A same-named Secret that reflects something else (or nothing) is in none of those sets, so it is
/// silently skipped — 7.1.x logs no warning for it; only the "Created/Updated/Validated" counts show it.
pub fn plan(
    source: &SourceSecret,
    namespaces: &[String],
    existing: &[ExistingSecret],
) -> Result<BTreeMap<String, Outcome>> {
    check_is_source(source)?;
    let settings = ReflectionSettings::from_annotations(&source.annotations)?;
    Ok(namespaces
        .iter()
        .map(|ns| (ns.clone(), outcome_for(source, &settings, ns, existing)))
        .collect())
}

/// Reflector only auto-reflects Secrets that are not themselves reflections, and ignores Helm's.
fn check_is_source(source: &SourceSecret) -> Result<()> {
    if source.type_.starts_with("helm.sh") {
        bail!(
            "{}/{} has type {}; Reflector ignores helm.sh Secrets",
            source.namespace,
            source.name,
            source.type_
        );
    }
    if let Some(r) = source
        .annotations
        .get(REFLECTS)
        .filter(|r| parse_reflects(r).is_some())
    {
        bail!(
            "{}/{} carries `{REFLECTS}: {r}`, so Reflector treats it as a mirror, not a source; remove that annotation",
            source.namespace,
            source.name
        );
    }
    Ok(())
}

fn outcome_for(
    source: &SourceSecret,
    settings: &ReflectionSettings,
    namespace: &str,
    existing: &[ExistingSecret],
) -> Outcome {
    if namespace == source.namespace {
        return Outcome::Source;
    }
    if !settings.can_reflect_to(namespace) {
        return Outcome::NotAllowed;
    }
    if !settings.can_auto_reflect_to(namespace) {
        return Outcome::NotAuto;
    }
    let blocker = existing
        .iter()
        .find(|e| e.namespace == namespace && e.name == source.name && !e.is_reflection_of(source));
    match blocker {
        Some(e) => Outcome::Blocked {
            reason: blocked_reason(e, source),
        },
        None => Outcome::Mirror,
    }
}

fn blocked_reason(existing: &ExistingSecret, source: &SourceSecret) -> String {
    let claim = match existing.reflects() {
        Some((ns, name)) => format!("it reflects {ns}/{name}"),
        None => "it is not a reflection".to_string(),
    };
    format!(
        "Secret {}/{} already exists and {claim}, not {}/{}; Reflector will not overwrite it",
        existing.namespace, existing.name, source.namespace, source.name
    )
}

/// The Secret Reflector creates in a target namespace. `Debug` shows the data's fingerprint only.
#[derive(Clone, PartialEq, Eq)]
pub struct MirrorSecret {
    pub namespace: String,
    pub name: String,
    pub type_: String,
    pub annotations: BTreeMap<String, String>,
    pub data: BTreeMap<String, Vec<u8>>,
}

impl fmt::Debug for MirrorSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MirrorSecret")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("type_", &self.type_)
            .field("annotations", &self.annotations)
            .field("data", &data_fingerprint(&self.data))
            .finish()
    }
}

/// The mirror of `source` in `namespace`, as `ResourceReflect` creates it: `OnResourceClone` copies only
/// `type` and `data`; the annotations are exactly the four reflection ones. `auto-reflects` is C#'s
/// `true.ToString()`, i.e. `"True"`. `reflected_at` is passed through: 7.1.x writes
/// `JsonConvert.SerializeObject(DateTimeOffset.UtcNow)`, a timestamp *with* its JSON quotes.
pub fn mirror_of(source: &SourceSecret, namespace: &str, reflected_at: &str) -> MirrorSecret {
    let annotations = [
        (AUTO_REFLECTS, "True".to_string()),
        (REFLECTS, format!("{}/{}", source.namespace, source.name)),
        (REFLECTED_VERSION, source.resource_version.clone()),
        (REFLECTED_AT, reflected_at.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    MirrorSecret {
        namespace: namespace.to_string(),
        name: source.name.clone(),
        type_: source.type_.clone(),
        annotations,
        data: source.data.clone(),
    }
}

/// A short, stable hash of a Secret's data (`sha256:` + 12 hex digits) to compare and show instead of
/// the data. Keys and values are length-prefixed so different maps cannot collide by concatenation.
pub fn data_fingerprint(data: &BTreeMap<String, Vec<u8>>) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in data {
        hasher.update((key.len() as u64).to_be_bytes());
        hasher.update(key.as_bytes());
        hasher.update((value.len() as u64).to_be_bytes());
        hasher.update(value);
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn source(annotations: BTreeMap<String, String>) -> SourceSecret {
        SourceSecret {
            namespace: "flux-system".into(),
            name: "oci-creds".into(),
            type_: "kubernetes.io/dockerconfigjson".into(),
            annotations,
            data: BTreeMap::from([(".dockerconfigjson".into(), b"{\"auths\":{}}".to_vec())]),
            resource_version: "4711".into(),
        }
    }

    fn list_matches(list: &str, ns: &str) -> bool {
        NamespaceList::parse(list).unwrap().matches(ns)
    }

    #[test]
    fn first_match_must_span_the_whole_name() {
        let table = [
            ("a|ab", "ab", false),
            ("ab|a", "ab", true),
            ("a|ab", "a", true),
            ("team-.*", "team-a", true),
            ("team-.*", "my-team-a", false),
            ("team", "team-a", false),
            ("team", "my-team", false),
            (".*", "anything", true),
            ("^team-a$", "team-a", true),
            ("^team", "team-a", false),
            ("team-a", "Team-A", false),
            ("(?i)team-a", "Team-A", true),
            ("team-[ab]", "team-b", true),
            ("team-[ab]", "team-c", false),
            ("a+?", "aaa", false),
            ("a+", "aaa", true),
        ];
        for (pattern, ns, want) in table {
            assert_eq!(list_matches(pattern, ns), want, "{pattern} vs {ns}");
        }
    }

    #[test]
    fn literal_patterns_are_plain_names() {
        for (p, want) in [
            ("team-a", true),
            ("billing", true),
            ("team-.*", false),
            ("a|b", false),
            ("^a$", false),
        ] {
            assert_eq!(
                NamespacePattern::parse(p).unwrap().is_literal(),
                want,
                "{p}"
            );
        }
    }

    #[test]
    fn lists_are_trimmed_and_any_entry_may_match() {
        assert!(list_matches(" team-a , payments ", "payments"));
        assert!(list_matches("team-a,,payments,", "team-a"));
        assert!(!list_matches("team-a,payments", "billing"));
    }

    #[test]
    fn only_an_empty_or_missing_list_means_all() {
        assert!(NamespaceList::parse("").unwrap().is_all());
        assert!(list_matches("", "whatever"));
        assert!(NamespaceList::all().matches("whatever"));
        for blank in [" ", ",", " , "] {
            let list = NamespaceList::parse(blank).unwrap();
            assert!(!list.is_all(), "{blank:?}");
            assert!(
                !list.matches("whatever"),
                "{blank:?} matches nothing in Reflector"
            );
        }
    }

    #[test]
    fn unsupported_patterns_are_errors_naming_the_pattern() {
        for bad in [
            "(?=team)team-a",
            "(?!kube).*",
            "(?<=x)y",
            "(a)\\1",
            "(?>a|ab)",
            "[a-z-[aeiou]]",
            "[[:alpha:]]+",
            "[a&&b]",
        ] {
            let err = NamespaceList::parse(&format!("ok,{bad}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(bad), "{err}");
        }
        assert!(NamespacePattern::parse("a\\[b]").is_ok());
        assert!(NamespacePattern::parse("[a-z]-[0-9]").is_ok());
    }

    #[test]
    fn booleans_follow_dotnet_bool_parse() {
        for (raw, want) in [
            ("true", true),
            ("True", true),
            ("TRUE", true),
            (" true ", true),
            ("\ttrue\n", true),
            ("false", false),
            ("yes", false),
            ("1", false),
            ("on", false),
            ("", false),
            ("truee", false),
        ] {
            assert_eq!(parse_dotnet_bool(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn settings_default_to_off_and_all_namespaces() {
        let s = ReflectionSettings::from_annotations(&BTreeMap::new()).unwrap();
        assert!(!s.allowed && !s.auto_enabled);
        assert!(s.allowed_namespaces.is_all() && s.auto_namespaces.is_all());
        assert!(!s.can_reflect_to("x"));
    }

    #[test]
    fn reflects_parses_like_kuberef() {
        assert_eq!(parse_reflects(" a/b "), Some(("a".into(), "b".into())));
        assert_eq!(parse_reflects("b"), Some(("".into(), "b".into())));
        assert_eq!(parse_reflects("/a//b/"), Some(("a".into(), "b".into())));
        assert_eq!(parse_reflects("a/b/c"), None);
        assert_eq!(parse_reflects("  "), None);
    }

    fn full_annotations(allowed: &str, auto: &str) -> BTreeMap<String, String> {
        ann(&[
            (ALLOWED, "true"),
            (ALLOWED_NAMESPACES, allowed),
            (AUTO_ENABLED, "True"),
            (AUTO_NAMESPACES, auto),
        ])
    }

    fn existing(ns: &str, pairs: &[(&str, &str)]) -> ExistingSecret {
        ExistingSecret {
            namespace: ns.into(),
            name: "oci-creds".into(),
            annotations: ann(pairs),
        }
    }

    #[test]
    fn plan_covers_every_outcome() {
        let src = source(full_annotations(
            "team-.*,payments,flux-system",
            "team-.*,flux-system",
        ));
        let namespaces: Vec<String> = [
            "flux-system",
            "team-a",
            "team-b",
            "team-c",
            "payments",
            "kube-system",
        ]
        .map(String::from)
        .to_vec();
        let existing = vec![
            existing("team-b", &[]),
            existing("team-c", &[(REFLECTS, "flux-system/oci-creds")]),
        ];
        let plan = plan(&src, &namespaces, &existing).unwrap();
        assert_eq!(plan["flux-system"], Outcome::Source);
        assert_eq!(plan["team-a"], Outcome::Mirror);
        assert!(
            matches!(&plan["team-b"], Outcome::Blocked { reason } if reason.contains("team-b/oci-creds"))
        );
        assert_eq!(
            plan["team-c"],
            Outcome::Mirror,
            "a direct reflection of the source is updated, not blocking"
        );
        assert_eq!(plan["payments"], Outcome::NotAuto);
        assert_eq!(plan["kube-system"], Outcome::NotAllowed);
    }

    #[test]
    fn a_mirror_of_another_source_or_a_bare_name_blocks() {
        let src = source(full_annotations("", ""));
        let ns = vec!["a".to_string(), "b".to_string()];
        let existing = vec![
            existing(
                "a",
                &[(REFLECTS, "other/oci-creds"), (AUTO_REFLECTS, "True")],
            ),
            existing("b", &[(REFLECTS, "oci-creds")]),
        ];
        let plan = plan(&src, &ns, &existing).unwrap();
        assert!(
            matches!(&plan["a"], Outcome::Blocked { reason } if reason.contains("other/oci-creds"))
        );
        assert!(
            matches!(&plan["b"], Outcome::Blocked { reason } if reason.contains("b/oci-creds"))
        );
    }

    #[test]
    fn plan_refuses_sources_reflector_would_not_treat_as_sources() {
        let mut src = source(full_annotations("", ""));
        src.annotations.insert(REFLECTS.into(), "x/y".into());
        assert!(plan(&src, &[], &[]).is_err());
        let mut helm = source(full_annotations("", ""));
        helm.type_ = "helm.sh/release.v1".into();
        assert!(plan(&helm, &[], &[]).is_err());
    }

    #[test]
    fn mirror_copies_type_and_data_and_sets_the_four_annotations() {
        let src = source(full_annotations("", ""));
        let m = mirror_of(&src, "team-a", "\"2025-01-01T00:00:00+00:00\"");
        assert_eq!(
            (m.namespace.as_str(), m.name.as_str()),
            ("team-a", "oci-creds")
        );
        assert_eq!((&m.type_, &m.data), (&src.type_, &src.data));
        assert_eq!(m.annotations.len(), 4);
        assert_eq!(m.annotations[AUTO_REFLECTS], "True");
        assert_eq!(m.annotations[REFLECTS], "flux-system/oci-creds");
        assert_eq!(m.annotations[REFLECTED_VERSION], "4711");
        let as_existing = ExistingSecret {
            namespace: m.namespace.clone(),
            name: m.name.clone(),
            annotations: m.annotations.clone(),
        };
        assert!(as_existing.is_reflection_of(&src) && as_existing.is_auto_reflection());
    }

    #[test]
    fn fingerprint_is_short_stable_and_debug_hides_data() {
        let src = source(BTreeMap::new());
        let fp = data_fingerprint(&src.data);
        assert!(fp.starts_with("sha256:") && fp.len() == 19, "{fp}");
        assert_eq!(fp, data_fingerprint(&src.data.clone()));
        let split = BTreeMap::from([("a".to_string(), b"bc".to_vec())]);
        let joined = BTreeMap::from([("ab".to_string(), b"c".to_vec())]);
        assert_ne!(data_fingerprint(&split), data_fingerprint(&joined));
        let debug = format!("{src:?} {:?}", mirror_of(&src, "x", "t"));
        assert!(!debug.contains("auths") && debug.contains(&fp), "{debug}");
    }

    // ---- Property 5 -------------------------------------------------------------------------

    const NAMES: [&str; 10] = [
        "flux-system",
        "team-a",
        "team-b",
        "team-ab",
        "prod-1",
        "prod-2",
        "payments",
        "pay",
        "a",
        "ab",
    ];

    /// A list entry, with its oracle: the set of NAMES it matches, written by hand.
    fn entry() -> impl Strategy<Value = (String, BTreeSet<&'static str>)> {
        let set = |names: &[&'static str]| names.iter().copied().collect::<BTreeSet<_>>();
        prop_oneof![
            prop::sample::select(NAMES.to_vec()).prop_map(move |n| (n.to_string(), set(&[n]))),
            Just(("team-.*".to_string(), set(&["team-a", "team-b", "team-ab"]))),
            Just(("prod-[0-9]+".to_string(), set(&["prod-1", "prod-2"]))),
            Just(("pay|payments".to_string(), set(&["pay"]))),
            Just(("payments|pay".to_string(), set(&["pay", "payments"]))),
            Just(("a|ab".to_string(), set(&["a"]))),
            Just(("ab|a".to_string(), set(&["a", "ab"]))),
            Just(("team".to_string(), set(&[]))),
        ]
    }

    /// An annotation value (entries joined with `, `) and its oracle; `None` means the empty list (all).
    fn list() -> impl Strategy<Value = (String, Option<BTreeSet<&'static str>>)> {
        prop::collection::vec(entry(), 0..4).prop_map(|entries| {
            if entries.is_empty() {
                return (String::new(), None);
            }
            let text = entries
                .iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>()
                .join(" , ");
            let set = entries.into_iter().flat_map(|(_, s)| s).collect();
            (text, Some(set))
        })
    }

    fn oracle_allows(set: &Option<BTreeSet<&str>>, ns: &str) -> bool {
        set.as_ref().is_none_or(|s| s.contains(ns))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(100))]

        #[test]
        fn property_5_mirrors_exactly_where_both_lists_match_and_nothing_blocks(
            present in prop::sample::subsequence(NAMES.to_vec(), 0..=NAMES.len()),
            (allowed_text, allowed_set) in list(),
            (auto_text, auto_set) in list(),
            blockers in prop::sample::subsequence(NAMES.to_vec(), 0..=4),
            old_mirrors in prop::sample::subsequence(NAMES.to_vec(), 0..=4),
        ) {
            let src = source(full_annotations(&allowed_text, &auto_text));
            let namespaces: Vec<String> = present.iter().map(|s| s.to_string()).collect();
            let blocked: BTreeSet<&str> =
                blockers.iter().copied().filter(|b| !old_mirrors.contains(b)).collect();
            let mut secrets: Vec<ExistingSecret> =
                blocked.iter().map(|b| existing(b, &[("team", "hand-made")])).collect();
            secrets.extend(old_mirrors.iter().map(|m| existing(m, &[
                (REFLECTS, "flux-system/oci-creds"), (AUTO_REFLECTS, "True"), (REFLECTED_VERSION, "1"),
            ])));

            let plan = plan(&src, &namespaces, &secrets).unwrap();

            let expected: BTreeSet<&str> = present.iter().copied().filter(|ns| {
                *ns != "flux-system"
                    && oracle_allows(&allowed_set, ns)
                    && oracle_allows(&auto_set, ns)
                    && !blocked.contains(ns)
            }).collect();
            let mirrored: BTreeSet<&str> = plan.iter()
                .filter(|(_, o)| **o == Outcome::Mirror).map(|(ns, _)| ns.as_str()).collect();
            prop_assert_eq!(&mirrored, &expected);
            prop_assert_eq!(plan.len(), present.len());

            for ns in &mirrored {
                let m = mirror_of(&src, ns, "\"2025-01-01T00:00:00+00:00\"");
                prop_assert_eq!(&m.data, &src.data);
                prop_assert_eq!(&m.type_, &src.type_);
                prop_assert_eq!(m.annotations[REFLECTS].as_str(), "flux-system/oci-creds");
                prop_assert_eq!(m.annotations[AUTO_REFLECTS].as_str(), "True");
                prop_assert_eq!(&m.annotations[REFLECTED_VERSION], &src.resource_version);
                prop_assert!(m.annotations.contains_key(REFLECTED_AT));
            }
        }
    }
}
