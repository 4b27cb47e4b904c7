//! What a workflow declares about itself, read without running it: a one-line summary, whether it
//! writes to the repository, the `kind` of its JSON result, and its parameters (name, type,
//! default, one-line doc), all from the script's leading `//!` doc block:
//!
//! ```text
//! //! Consolidate per-service credentials into one source Secret per cluster.
//! //! writes
//! //! kind: Consolidation
//! //! param cluster: selector — cluster overlay; leave out for every cluster of the customer
//! //! param require_reflector: bool = true — refuse clusters that do not deploy Reflector
//! //! param source.*: path — local checkout of Flux source NAME (--set source.NAME=DIR)
//! ```
//!
//! A name ending in `.*` declares a family: `--set source.NAME=VALUE` for any non-empty NAME, each
//! value typed as declared, gathered into one map the script reads as `params.source` (NAME →
//! value; empty when none is given). Every other key is still checked exactly.
//!
//! Rhai's parser collects `//!` lines into the AST ([`rhai::AST::doc`]), so the host compiles the
//! script and reads them, but never evaluates anything to learn them. This module then checks the
//! `--set` values against the declaration (unknown, repeated, empty or mistyped values are usage
//! errors with a "did you mean"), and renders `run SCRIPT --help`. It never reads the repository.

use rhai::{Array, Dynamic, Map};
use std::fmt;

/// The parameter no workflow may take: it would land in shell history and process lists.
const FORBIDDEN: &str = "password";

/// What `--set format=json` was before `-o json` replaced it in every workflow.
const RETIRED_FORMAT: &str = "format";

/// The type of a declared parameter, as `--set` values are checked and scripts receive them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// Any string.
    String,
    /// `true` or `false`; a script gets a boolean.
    Bool,
    /// A whole number; a script gets an integer.
    Int,
    /// Comma-separated; a script gets an array of trimmed, non-empty strings.
    List,
    /// A selector (customer, cluster, context): never empty, because an empty value is almost
    /// always an unset shell variable, and must not widen what a run touches.
    Selector,
    /// A file or directory the user names: made absolute against the working directory, so it
    /// means what it meant in the user's shell wherever `--repo` points ("-", standard input, and
    /// "" stay as they are).
    Path,
}

impl ParamType {
    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "string" => ParamType::String,
            "bool" => ParamType::Bool,
            "int" => ParamType::Int,
            "list" => ParamType::List,
            "selector" => ParamType::Selector,
            "path" => ParamType::Path,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Bool => "bool",
            ParamType::Int => "int",
            ParamType::List => "list",
            ParamType::Selector => "selector",
            ParamType::Path => "path",
        }
    }
}

/// What ends a family's declared name: `source.*` takes `--set source.NAME=…`.
const FAMILY: &str = ".*";

/// One `//! param` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamDecl {
    /// The name, or for a family `prefix.*`.
    pub name: String,
    pub ty: ParamType,
    /// The value used when `--set` does not give one; None: the script sees no value (`()`).
    pub default: Option<String>,
    pub doc: String,
}

/// Everything a script declares about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declaration {
    pub summary: String,
    /// Whether the workflow stages changes to the repository.
    pub writes: bool,
    /// The `kind` of its `-o json` document.
    pub kind: Option<String>,
    pub params: Vec<ParamDecl>,
}

/// A `--set` problem: a usage error (exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Declaration {
    /// Parse the `//!` lines Rhai collected (each starts with `//!`). A malformed `param` line is
    /// an error naming it, so a typo in a declaration cannot silently drop a parameter.
    pub fn parse(doc: &str) -> Result<Self, String> {
        let mut decl = Declaration::default();
        let mut summary = Vec::new();
        for line in doc.lines() {
            let line = line.trim_start_matches("//!").trim();
            if let Some(rest) = line.strip_prefix("param ") {
                decl.params.push(parse_param(rest)?);
            } else if let Some(kind) = line.strip_prefix("kind:") {
                decl.kind = Some(kind.trim().to_string());
            } else if line == "writes" {
                decl.writes = true;
            } else if !line.is_empty() {
                summary.push(line);
            }
        }
        decl.summary = summary.join(" ");
        Ok(decl)
    }

    pub fn param(&self, name: &str) -> Option<&ParamDecl> {
        self.params.iter().find(|p| p.name == name)
    }

    /// The family `key` belongs to (`source.x` → `source.*`) and the member's name, if declared.
    fn family<'k>(&self, key: &'k str) -> Option<(&ParamDecl, &'k str)> {
        let (prefix, member) = key.split_once('.')?;
        let decl = self.param(&format!("{prefix}{FAMILY}"))?;
        Some((decl, member))
    }

    /// Check `--set` pairs (in command-line order) and return the script's `params` map: every
    /// given value typed, every missing one with a default filled in.
    pub fn bind(&self, given: &[(String, String)]) -> Result<Map, UsageError> {
        let mut map = Map::new();
        for decl in self.params.iter().filter(|p| p.family().is_some()) {
            map.insert(decl.family().unwrap_or_default().into(), Map::new().into());
        }
        for (key, value) in given {
            let twice = || UsageError(format!("--set {key} is given twice; give it once"));
            if let Some((decl, member)) = self.family(key) {
                if member.is_empty() {
                    return Err(UsageError(format!(
                        "--set {key}= names no member; give it as --set {}=VALUE",
                        decl.shown_name()
                    )));
                }
                let value = typed(decl, value)?;
                let prefix = decl.family().unwrap_or_default();
                let mut members = map[prefix].clone().cast::<Map>();
                if members.insert(member.into(), value).is_some() {
                    return Err(twice());
                }
                map.insert(prefix.into(), members.into());
                continue;
            }
            let decl = self.known(key)?;
            if map.contains_key(key.as_str()) {
                return Err(twice());
            }
            map.insert(key.as_str().into(), typed(decl, value)?);
        }
        for decl in &self.params {
            if let (false, Some(default)) = (map.contains_key(decl.name.as_str()), &decl.default) {
                let value = typed(decl, default).map_err(|e| {
                    UsageError(format!("the script's declared default is invalid: {e}"))
                })?;
                map.insert(decl.name.as_str().into(), value);
            }
        }
        Ok(map)
    }

    fn known(&self, key: &str) -> Result<&ParamDecl, UsageError> {
        if key == FORBIDDEN && self.param(key).is_none() {
            return Err(UsageError(
                "a password is never accepted on the command line (it would land in shell history and \
                 process lists); put it in a file and pass --set password_file=PATH, or --set password_file=- for stdin"
                    .to_string(),
            ));
        }
        self.param(key)
            .filter(|p| p.family().is_none())
            .ok_or_else(|| {
                let mut message = format!("unknown parameter `{key}`");
                if key == RETIRED_FORMAT {
                    message.push_str("; the output format is `-o json` (`--output json`) now");
                } else if let Some(near) = self.nearest(key) {
                    message.push_str(&format!("; did you mean `{near}`?"));
                }
                let names: Vec<String> = self.params.iter().map(ParamDecl::shown_name).collect();
                message.push_str(&format!(
                    " (this script takes: {}; see `ocitool run SCRIPT --help`)",
                    if names.is_empty() {
                        "no parameters".to_string()
                    } else {
                        names.join(", ")
                    }
                ));
                UsageError(message)
            })
    }

    /// The declared name closest to `key`, when it is close enough to be a typo.
    fn nearest(&self, key: &str) -> Option<String> {
        self.params
            .iter()
            .map(|p| {
                let name = p.family().unwrap_or(&p.name);
                let head = key.split('.').next().unwrap_or(key);
                let score = strsim::jaro_winkler(key, name).max(match p.family() {
                    Some(_) => strsim::jaro_winkler(head, name),
                    None => 0.0,
                });
                (score, p.shown_name())
            })
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, name)| name)
    }

    /// `ocitool run SCRIPT --help`.
    pub fn help(&self, script: &str) -> String {
        let mut out = format!("{script}: {}\n", self.summary);
        out.push_str(if self.writes {
            "Writes to the repository (preview with --dry-run).\n"
        } else {
            "Read-only: never changes the repository.\n"
        });
        out.push_str("\nParameters (--set NAME=VALUE):\n");
        if self.params.is_empty() {
            out.push_str("  (none)\n");
        }
        for p in &self.params {
            out.push_str(&format!("  {}\n", p.signature()));
            out.push_str(&format!("      {}\n", p.doc));
        }
        out
    }
}

impl ParamDecl {
    /// `name: type = default` (as declared; a family as `prefix.NAME`), for help and the API reference.
    pub fn signature(&self) -> String {
        let name = self.shown_name();
        match (&self.default, self.ty) {
            (Some(d), ParamType::Bool | ParamType::Int) => {
                format!("{name}: {} = {d}", self.ty.name())
            }
            (Some(d), _) => format!("{name}: {} = {d:?}", self.ty.name()),
            (None, _) => format!("{name}: {}", self.ty.name()),
        }
    }

    /// For a family (`source.*`), its prefix (`source`): the key of its map in `params`.
    pub fn family(&self) -> Option<&str> {
        self.name.strip_suffix(FAMILY)
    }

    /// The name as users type it: `source.NAME` for a family.
    fn shown_name(&self) -> String {
        match self.family() {
            Some(prefix) => format!("{prefix}.NAME"),
            None => self.name.clone(),
        }
    }
}

/// `name: type [= default] — doc` (an ASCII `--` may stand for the dash).
fn parse_param(text: &str) -> Result<ParamDecl, String> {
    let malformed = || {
        format!(
            "malformed declaration `//! param {text}`; expected `//! param NAME: TYPE [= DEFAULT] — DOC`"
        )
    };
    let (head, doc) = text
        .split_once(" — ")
        .or_else(|| text.split_once(" -- "))
        .ok_or_else(malformed)?;
    let (name, rest) = head.split_once(':').ok_or_else(malformed)?;
    let (ty, default) = match rest.split_once('=') {
        Some((ty, default)) => (ty, Some(unquote(default.trim()))),
        None => (rest, None),
    };
    let ty = ParamType::parse(ty.trim()).ok_or_else(|| {
        format!(
            "{}: unknown type `{}` (string, bool, int, list, selector, path)",
            malformed(),
            ty.trim()
        )
    })?;
    let decl = ParamDecl {
        name: name.trim().to_string(),
        ty,
        default,
        doc: doc.trim().to_string(),
    };
    if decl.family().is_some() && decl.default.is_some() {
        return Err(format!(
            "{}: a family (`NAME.*`) has no default; the script gets an empty map",
            malformed()
        ));
    }
    Ok(decl)
}

fn unquote(value: &str) -> String {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
        .to_string()
}

/// A `--set` value as the script receives it, or a usage error naming the parameter.
fn typed(decl: &ParamDecl, value: &str) -> Result<Dynamic, UsageError> {
    let name = &decl.name;
    let wrong = |expected: &str| UsageError(format!("--set {name}={value}: expected {expected}"));
    Ok(match decl.ty {
        ParamType::String => value.into(),
        ParamType::Selector if value.trim().is_empty() => {
            return Err(UsageError(format!(
                "--set {name}= is empty (an unset shell variable?); give a value, or leave --set {name} out"
            )));
        }
        ParamType::Selector => value.into(),
        ParamType::Path if value.is_empty() || value == "-" => value.into(),
        ParamType::Path => std::path::absolute(value)
            .map_err(|e| {
                UsageError(format!(
                    "--set {name}={value}: cannot resolve the path: {e}"
                ))
            })?
            .display()
            .to_string()
            .into(),
        ParamType::Bool => match value.to_ascii_lowercase().as_str() {
            "true" => true.into(),
            "false" => false.into(),
            _ => return Err(wrong("true or false")),
        },
        ParamType::Int => value
            .parse::<i64>()
            .map_err(|_| wrong("a whole number"))?
            .into(),
        ParamType::List => value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Dynamic::from(s.to_string()))
            .collect::<Array>()
            .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const DOC: &str = "//! Do a thing.\n//! writes\n//! kind: Thing\n\
        //! param cluster: selector — the cluster\n\
        //! param dry: bool = false — a flag\n\
        //! param prefer: list = \"\" — services\n\
        //! param file: path = \"\" — a file\n\
        //! param source.*: path — a checkout per source\n";

    fn set(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_the_doc_block() {
        let decl = Declaration::parse(DOC).unwrap();
        assert_eq!(decl.summary, "Do a thing.");
        assert!(decl.writes);
        assert_eq!(decl.kind.as_deref(), Some("Thing"));
        assert_eq!(decl.params[1].signature(), "dry: bool = false");
        assert_eq!(decl.params[2].signature(), "prefer: list = \"\"");
        assert!(Declaration::parse("//! param x string — no colon").is_err());
        assert!(Declaration::parse("//! param x: text — bad type").is_err());
    }

    #[test]
    fn binds_typed_values_and_defaults() {
        let decl = Declaration::parse(DOC).unwrap();
        let map = decl
            .bind(&set(&[("cluster", "prod"), ("prefer", "a, b,")]))
            .unwrap();
        assert_eq!(map["cluster"].to_string(), "prod");
        assert_eq!(map["prefer"].clone().into_array().unwrap().len(), 2);
        assert!(!map["dry"].as_bool().unwrap());
        let file = decl.bind(&set(&[("file", "a/b.yaml")])).unwrap()["file"].to_string();
        assert!(
            Path::new(&file).is_absolute() && file.ends_with("a/b.yaml"),
            "{file}"
        );
        assert_eq!(
            decl.bind(&set(&[("file", "-")])).unwrap()["file"].to_string(),
            "-"
        );
    }

    #[test]
    fn a_family_gathers_its_members_into_one_map() {
        let decl = Declaration::parse(DOC).unwrap();
        assert_eq!(decl.params[4].signature(), "source.NAME: path");
        let none = decl.bind(&[]).unwrap();
        assert!(none["source"].clone().cast::<Map>().is_empty());
        let map = decl
            .bind(&set(&[("source.base", "b"), ("source.apps-x", "/abs")]))
            .unwrap();
        let sources = map["source"].clone().cast::<Map>();
        assert!(
            sources["base"].to_string().ends_with("/b"),
            "typed as a path"
        );
        assert_eq!(sources["apps-x"].to_string(), "/abs");
        let err = |pairs: &[(&str, &str)]| decl.bind(&set(pairs)).unwrap_err().0;
        assert!(err(&[("source.a", "x"), ("source.a", "y")]).contains("given twice"));
        assert!(err(&[("source.", "x")]).contains("names no member"));
        assert!(err(&[("sourse.a", "x")]).contains("did you mean `source.NAME`?"));
        assert!(err(&[("source", "x")]).contains("did you mean `source.NAME`?"));
        assert!(err(&[("clster.a", "x")]).contains("unknown parameter `clster.a`"));
        assert!(Declaration::parse("//! param source.*: path = \"x\" — no default").is_err());
    }

    #[test]
    fn refuses_unknown_repeated_empty_and_mistyped_values() {
        let decl = Declaration::parse(DOC).unwrap();
        let err = |pairs: &[(&str, &str)]| decl.bind(&set(pairs)).unwrap_err().0;
        assert!(err(&[("clster", "prod")]).contains("did you mean `cluster`?"));
        assert!(err(&[("cluster", "a"), ("cluster", "b")]).contains("given twice"));
        assert!(err(&[("cluster", "")]).contains("is empty"));
        assert!(err(&[("dry", "yes")]).contains("expected true or false"));
        assert!(err(&[("format", "json")]).contains("`-o json`"));
        let password = err(&[("password", "hunter2")]);
        assert!(password.contains("password_file") && !password.contains("hunter2"));
    }
}
