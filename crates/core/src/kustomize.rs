//! Kustomization files: reading them, editing their `resources:` list *format-preserving*, and
//! building them with `kubectl kustomize`.
//!
//! Platform teams review every change ocitool makes as a git diff, so an edit must differ from the
//! original only by the entry it adds or removes. This module therefore never reformats or
//! re-serializes a kustomization file (a round trip through serde_yaml loses comments, quoting and
//! layout): a small line-oriented scanner finds the top-level `resources:` key and edits bytes, and
//! every edit is then checked by re-parsing both texts; if the parsed result is not exactly the
//! original with that one entry changed, the edit is refused rather than written. It never touches
//! any file other than the kustomization text it is handed (callers do the writing).

use crate::manifest;
use crate::repo_path::RepoPath;
use anyhow::{Result, bail};
use serde_yaml::Value;
use std::ops::Range;

/// One way a kustomization refers to a file other than a plain `resources:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherReference {
    /// Field path inside the kustomization, e.g. `patches[1].path`.
    pub field: String,
    /// Human-readable `field: value`, e.g. `patches[1].path: oci-creds.yaml`.
    pub detail: String,
}

/// Where a `resources:` entry of the kustomization file `kustomization` points, resolved the way
/// kustomize resolves it: joined onto the kustomization's directory and cleaned lexically
/// (kustomize's file loader: `filepath.Join(root, path)`, then `filepath.Clean`), so `x`, `./x`,
/// `sub/../x` and `.//x` are one file and `../svc/x` is the sibling directory's. The entry is the
/// parsed YAML string: quoting and a plain scalar's trailing spaces are the parser's business.
///
/// `Ok(None)` when the entry names nothing in this repository: a URL (kustomize fetches
/// `http(s)://` entries and git repositories remotely) or a path climbing above the repository
/// root. An absolute entry is an error: kustomize reads `/x` from the filesystem of the machine
/// that builds (`new root '/x' cannot be absolute` for a directory, checked with
/// `kubectl kustomize`, kustomize v5.5.0), never from the repository, so the overlay cannot build.
pub fn resolve_entry(kustomization: &RepoPath, entry: &str) -> Result<Option<RepoPath>> {
    if entry.starts_with('/') {
        let meant = RepoPath::new(entry.trim_start_matches('/'))
            .map(|p| {
                format!(
                    " (`{}` if you meant {p})",
                    p.relative_to(&dir_of(kustomization))
                )
            })
            .unwrap_or_default();
        bail!(
            "{kustomization}: `resources:` entry `{entry}` is an absolute path: kustomize reads it from \
             the filesystem of the machine that builds, not from the repository, so this overlay cannot \
             build and ocitool cannot tell which file it means. Write it relative to the kustomization's \
             directory{meant} and run again"
        );
    }
    if entry.is_empty() || entry.contains("://") {
        return Ok(None);
    }
    Ok(dir_of(kustomization).join(entry).ok())
}

/// The directory a kustomization file's entries are relative to.
pub fn dir_of(kustomization: &RepoPath) -> RepoPath {
    kustomization.parent().unwrap_or_default()
}

/// Whether `entry` of `kustomization` resolves to `target` (entries that resolve to no repository
/// path, or cannot resolve, point at nothing here).
pub fn points_at(kustomization: &RepoPath, entry: &str, target: &RepoPath) -> bool {
    resolve_entry(kustomization, entry).is_ok_and(|p| p.as_ref() == Some(target))
}

/// The `resources:` entries of a kustomization text (unquoted values, in order).
pub fn resources(origin: &str, text: &str) -> Result<Vec<String>> {
    resources_in(origin, &manifest::parse_documents(origin, text)?)
}

/// [`resources`] of a kustomization's already parsed documents.
pub fn resources_in(origin: &str, docs: &[Value]) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for doc in docs {
        match doc.get("resources") {
            None | Some(Value::Null) => {}
            Some(Value::Sequence(seq)) => {
                for (i, entry) in seq.iter().enumerate() {
                    let Some(entry) = entry.as_str() else {
                        bail!("{origin}: resources[{i}] is not a string; fix the kustomization")
                    };
                    found.push(entry.to_string());
                }
            }
            Some(_) => bail!("{origin}: `resources:` is not a list; fix the kustomization"),
        }
    }
    Ok(found)
}

/// Whether a kustomization text produces nothing: no `resources:` entries and no field beyond
/// `apiVersion`, `kind`, `metadata` and `namespace` (a generator, patch or component would still
/// contribute or need something to act on). A folder whose kustomization says nothing else can go.
pub fn builds_nothing(origin: &str, text: &str) -> Result<bool> {
    const INERT: [&str; 5] = ["apiVersion", "kind", "metadata", "namespace", "resources"];
    let docs = manifest::parse_documents(origin, text)?;
    let inert = docs.iter().all(|doc| {
        doc.as_mapping().is_some_and(|m| {
            m.keys()
                .all(|k| k.as_str().is_some_and(|k| INERT.contains(&k)))
        })
    });
    Ok(inert && resources_in(origin, &docs)?.is_empty())
}

/// Remove every `resources:` entry of `kustomization` that resolves to `target`, whatever its
/// spelling; `Ok(None)` when there is none. The result differs from `text` only by the removed
/// entries (see the module header).
pub fn remove_resource(
    kustomization: &RepoPath,
    text: &str,
    target: &RepoPath,
) -> Result<Option<String>> {
    let origin = kustomization.as_str();
    let matches = |entry: &str| points_at(kustomization, entry, target);
    let mut expected = manifest::parse_documents(origin, text)?;
    let mut removals = 0;
    for doc in &mut expected {
        if let Some(Value::Sequence(seq)) = doc.get_mut("resources") {
            let before = seq.len();
            seq.retain(|e| !e.as_str().is_some_and(matches));
            removals += before - seq.len();
        }
    }
    if removals == 0 {
        return Ok(None);
    }
    // One entry at a time, rescanning in between, so edit offsets never go stale.
    let mut edited = text.to_string();
    for _ in 0..removals {
        match removal_edits(&edited, &matches) {
            Some(edits) => edited = apply(&edited, edits),
            None => break,
        }
    }
    verify(origin, &edited, &expected)?;
    Ok(Some(edited))
}

/// Add a `resources:` entry for `target` unless one already resolves to it (`Ok(None)` then),
/// spelled relative to the kustomization's directory, in the layout and quoting style of the
/// existing entries.
pub fn add_resource(
    kustomization: &RepoPath,
    text: &str,
    target: &RepoPath,
) -> Result<Option<String>> {
    let origin = kustomization.as_str();
    let mut expected = manifest::parse_documents(origin, text)?;
    if resources_in(origin, &expected)?
        .iter()
        .any(|e| points_at(kustomization, e, target))
    {
        return Ok(None);
    }
    let file_name = &target.relative_to(&dir_of(kustomization));
    expect_added(&mut expected, file_name);
    let Some(edits) = addition_edits(text, file_name) else {
        return Err(unsafe_edit(origin).into());
    };
    let edited = apply(text, edits);
    verify(origin, &edited, &expected)?;
    Ok(Some(edited))
}

/// Append a `patches:` entry to the first document (adding the key after its last line when it
/// has none) unless an equal entry is already there (`Ok(None)` then). `entry` is the item as
/// YAML lines starting with `- ` at column 0; it is indented like the existing items. Checked by
/// re-parsing like every edit here.
pub fn add_patch(origin: &str, text: &str, entry: &str) -> Result<Option<String>> {
    let mut expected = manifest::parse_documents(origin, text)?;
    let value = serde_yaml::from_str::<Vec<Value>>(entry)
        .ok()
        .and_then(|mut items| items.pop())
        .ok_or_else(|| anyhow::anyhow!("{origin}: the patch to add is not one YAML list item"))?;
    let Some(Value::Mapping(first)) = expected.first_mut() else {
        return Err(unsafe_edit(origin).into());
    };
    match first.get_mut("patches") {
        Some(Value::Sequence(items)) if items.contains(&value) => return Ok(None),
        Some(Value::Sequence(items)) => items.push(value),
        Some(slot @ Value::Null) => *slot = Value::Sequence(vec![value]),
        Some(_) => return Err(unsafe_edit(origin).into()),
        None => {
            first.insert("patches".into(), Value::Sequence(vec![value]));
        }
    }
    let Some(edit) = patch_edit(text, entry) else {
        return Err(unsafe_edit(origin).into());
    };
    let edited = apply(text, vec![edit]);
    verify(origin, &edited, &expected)?;
    Ok(Some(edited))
}

/// The edit appending `entry` to the first document's block `patches:` list, or adding the key.
fn patch_edit(text: &str, entry: &str) -> Option<Edit> {
    let scan = Scanner::new(text);
    let doc = scan.documents().into_iter().next()?;
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let indented = |indent: &str| -> String {
        let lines: Vec<String> = entry.lines().map(|l| format!("{indent}{l}")).collect();
        lines.join(eol)
    };
    match scan.layout_of(&doc, "patches") {
        Some(Layout::Block { key, items, .. }) => Some(match items.last() {
            Some(last) => {
                let dash = last.prefix.len() - last.prefix.trim_start().len();
                line_after(
                    text,
                    &scan.lines[last.last],
                    &indented(&last.prefix[..dash]),
                    eol,
                )
            }
            None => line_after(text, &scan.lines[key], &indented("  "), eol),
        }),
        Some(_) => None,
        None => {
            let last = (doc.start..doc.end)
                .rev()
                .find(|&i| !scan.body(i).trim().is_empty())?;
            let block = format!("patches:{eol}{}", indented("  "));
            Some(line_after(text, &scan.lines[last], &block, eol))
        }
    }
}

/// What the parsed documents must look like after adding: mirrors `addition_edits`' choice of document.
fn expect_added(docs: &mut Vec<Value>, file_name: &str) {
    let entry = Value::String(file_name.to_string());
    if let Some(doc) = docs.iter_mut().find(|d| d.get("resources").is_some()) {
        match doc.get_mut("resources") {
            Some(Value::Sequence(seq)) => seq.push(entry),
            Some(slot @ Value::Null) => *slot = Value::Sequence(vec![entry]),
            _ => {} // not a list: the self-check will refuse the edit
        }
    } else if let Some(Value::Mapping(map)) = docs.first_mut() {
        map.insert("resources".into(), Value::Sequence(vec![entry]));
    } else if docs.is_empty() {
        let mut map = serde_yaml::Mapping::new();
        map.insert("resources".into(), Value::Sequence(vec![entry]));
        docs.push(Value::Mapping(map));
    }
}

/// A kustomization edit refused because it could not be proven to change only the one entry:
/// a typed error callers can tell from other failures (`downcast_ref::<UnsafeEdit>()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafeEdit {
    /// The kustomization file.
    pub file: String,
}

impl std::fmt::Display for UnsafeEdit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "could not edit {} safely; edit it by hand (its `resources:` list has a layout \
             ocitool does not recognise, so it refused to risk a corrupt file)",
            self.file
        )
    }
}

impl std::error::Error for UnsafeEdit {}

fn unsafe_edit(origin: &str) -> UnsafeEdit {
    UnsafeEdit {
        file: origin.to_string(),
    }
}

/// The self-check: the edited text must parse to exactly the expected documents.
fn verify(origin: &str, edited: &str, expected: &[Value]) -> Result<()> {
    match manifest::parse_documents(origin, edited) {
        Ok(after) if after == expected => Ok(()),
        _ => Err(unsafe_edit(origin).into()),
    }
}

/// Every reference to `target` in the kustomization `kustomization` other than `resources:`
/// entries, with its field path; resolved like entries, so any spelling counts.
pub fn other_references(
    kustomization: &RepoPath,
    text: &str,
    target: &RepoPath,
) -> Result<Vec<OtherReference>> {
    let docs = manifest::parse_documents(kustomization.as_str(), text)?;
    Ok(other_references_in(kustomization, &docs, target))
}

/// [`other_references`] in the kustomization's already parsed documents.
pub fn other_references_in(
    kustomization: &RepoPath,
    docs: &[Value],
    target: &RepoPath,
) -> Vec<OtherReference> {
    let mut found = Vec::new();
    for doc in docs {
        for (field, value, key_value) in reference_fields(doc) {
            let path = match value.split_once('=') {
                Some((_, path)) if key_value => path,
                _ => value,
            };
            if points_at(kustomization, value, target) || points_at(kustomization, path, target) {
                let detail = format!("{field}: {value}");
                found.push(OtherReference { field, detail });
            }
        }
    }
    found
}

/// Every string field of a kustomization that names a file: (field path, value, may be `key=path`).
fn reference_fields(doc: &Value) -> Vec<(String, &str, bool)> {
    let mut out = Vec::new();
    for key in [
        "patchesStrategicMerge",
        "generators",
        "components",
        "transformers",
        "validators",
        "crds",
        "configurations",
        "bases",
    ] {
        push_list(&mut out, key, doc.get(key), false);
    }
    for (key, sub) in [
        ("patches", "path"),
        ("patchesJson6902", "path"),
        ("replacements", "path"),
        ("helmCharts", "valuesFile"),
    ] {
        for (i, item) in seq(doc, key).enumerate() {
            if let Some(s) = item.get(sub).and_then(Value::as_str) {
                out.push((format!("{key}[{i}].{sub}"), s, false));
            }
        }
    }
    for (i, chart) in seq(doc, "helmCharts").enumerate() {
        let field = format!("helmCharts[{i}].additionalValuesFiles");
        push_list(&mut out, &field, chart.get("additionalValuesFiles"), false);
    }
    for key in ["secretGenerator", "configMapGenerator"] {
        for (i, generator) in seq(doc, key).enumerate() {
            push_list(
                &mut out,
                &format!("{key}[{i}].files"),
                generator.get("files"),
                true,
            );
            push_list(
                &mut out,
                &format!("{key}[{i}].envs"),
                generator.get("envs"),
                false,
            );
            if let Some(s) = generator.get("env").and_then(Value::as_str) {
                out.push((format!("{key}[{i}].env"), s, false));
            }
        }
    }
    if let Some(s) = manifest::str_at(doc, &["openapi", "path"]) {
        out.push(("openapi.path".to_string(), s, false));
    }
    out
}

fn push_list<'a>(
    out: &mut Vec<(String, &'a str, bool)>,
    field: &str,
    value: Option<&'a Value>,
    key_value: bool,
) {
    let items = value.and_then(Value::as_sequence).into_iter().flatten();
    for (i, item) in items.enumerate() {
        if let Some(s) = item.as_str() {
            out.push((format!("{field}[{i}]"), s, key_value));
        }
    }
}

fn seq<'a>(doc: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    doc.get(key)
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
}

// ---------------------------------------------------------------------------------------------
// The line-oriented scanner. Offsets are byte offsets into the text, so an edit is a splice and
// every byte outside it (comments, CRLF, quoting, blank lines) survives untouched.

/// A line: `start..body_end` is its content without the line ending, `body_end..end` the ending.
#[derive(Debug, Clone, Copy)]
struct Line {
    start: usize,
    body_end: usize,
    end: usize,
}

fn lines(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    // A UTF-8 byte order mark belongs to no line: the first line starts after it, so the key
    // scanner sees `resources:` at column 0 and every splice leaves the mark byte-exact.
    let mut start = text.len() - text.trim_start_matches(manifest::BOM).len();
    for piece in text[start..].split_inclusive('\n') {
        let end = start + piece.len();
        let body = piece.trim_end_matches('\n').trim_end_matches('\r');
        out.push(Line {
            start,
            body_end: start + body.len(),
            end,
        });
        start = end;
    }
    out
}

/// How the top-level `resources:` key of one document is laid out.
enum Layout {
    /// `resources:` followed by `- entry` lines (possibly none: a null value).
    Block {
        key: usize,
        colon: usize,
        items: Vec<BlockItem>,
    },
    /// `resources: [a, b]`, possibly spanning lines; `open` is the offset just after `[`.
    Flow { open: usize, items: Vec<FlowItem> },
    /// Anything else (`resources: null`, anchors, ...): left for the self-check to refuse.
    Unsupported,
}

struct BlockItem {
    /// Index of the `- ` line and of the last line belonging to the item (continuations).
    first: usize,
    last: usize,
    /// Indentation, dash and spaces, e.g. `  - `.
    prefix: String,
    raw: String,
    value: Option<String>,
}

struct FlowItem {
    raw: Range<usize>,
    value: Option<String>,
}

struct Scanner<'a> {
    text: &'a str,
    lines: Vec<Line>,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Scanner {
            text,
            lines: lines(text),
        }
    }

    fn body(&self, i: usize) -> &'a str {
        &self.text[self.lines[i].start..self.lines[i].body_end]
    }

    /// Line ranges of the YAML documents (separated by `---` / `...` marker lines).
    fn documents(&self) -> Vec<Range<usize>> {
        let mut docs = Vec::new();
        let mut start = 0;
        for i in 0..self.lines.len() {
            let body = self.body(i);
            let marker = body == "---"
                || body.starts_with("--- ")
                || body.starts_with("---\t")
                || body == "...";
            if marker {
                docs.push(start..i);
                start = i + 1;
            }
        }
        docs.push(start..self.lines.len());
        docs
    }

    /// The layout of the top-level `resources:` key in `doc`, if the document has one.
    fn layout(&self, doc: &Range<usize>) -> Option<Layout> {
        self.layout_of(doc, "resources")
    }

    /// The layout of the top-level key `name` in `doc`, if the document has one.
    fn layout_of(&self, doc: &Range<usize>, name: &str) -> Option<Layout> {
        let (key, colon) = doc
            .clone()
            .find_map(|i| Some((i, key_colon(self.body(i), name)?)))?;
        let rest = &self.body(key)[colon..];
        let value = rest.trim_start();
        if value.is_empty() || value.starts_with('#') {
            let items = self.block_items(key + 1..doc.end);
            let colon = self.lines[key].start + colon;
            return Some(Layout::Block { key, colon, items });
        }
        if value.starts_with('[') {
            let open = self.lines[key].start + colon + (rest.len() - value.len()) + 1;
            let limit = self.lines[doc.end - 1].end;
            return Some(match scan_flow(self.text, open, limit) {
                Some(items) => Layout::Flow { open, items },
                None => Layout::Unsupported,
            });
        }
        Some(Layout::Unsupported)
    }

    /// The `- entry` lines following a block `resources:` key, up to the next less-indented content.
    fn block_items(&self, range: Range<usize>) -> Vec<BlockItem> {
        let mut items: Vec<BlockItem> = Vec::new();
        let mut dash_indent = None;
        for i in range {
            let body = self.body(i);
            let content = body.trim_start();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let indent = body.len() - body.trim_start_matches(' ').len();
            let is_dash = content == "-" || content.starts_with("- ") || content.starts_with("-\t");
            match (dash_indent, items.last_mut()) {
                (Some(d), Some(item)) if indent > d => {
                    // A continuation (multi-line scalar, nested node): never match such an item.
                    item.last = i;
                    item.value = None;
                }
                (Some(d), _) if !(is_dash && indent == d) => break,
                (None, _) if !is_dash => break,
                _ => {
                    dash_indent = Some(indent);
                    items.push(block_item(i, body, indent));
                }
            }
        }
        items
    }
}

/// Offset just after the colon when `body` is the line of top-level key `name` (e.g. `resources:`).
fn key_colon(body: &str, name: &str) -> Option<usize> {
    let after = [name.to_string(), format!("\"{name}\""), format!("'{name}'")]
        .iter()
        .find_map(|spelling| body.strip_prefix(spelling.as_str()))?;
    let colon = after.trim_start_matches([' ', '\t']).strip_prefix(':')?;
    if !(colon.is_empty() || colon.starts_with([' ', '\t'])) {
        return None; // `resources:x` is a plain scalar, not a key
    }
    Some(body.len() - colon.len())
}

fn block_item(line: usize, body: &str, indent: usize) -> BlockItem {
    let after_dash = &body[indent + 1..];
    let rest = after_dash.trim_start_matches([' ', '\t']);
    let prefix = body[..body.len() - rest.len()].to_string();
    let raw = scalar_extent(rest).map(|n| &rest[..n]).unwrap_or("");
    BlockItem {
        first: line,
        last: line,
        prefix,
        raw: raw.to_string(),
        value: scalar_value(raw),
    }
}

/// Length of the scalar at the start of `rest` when only spaces and a comment follow it.
fn scalar_extent(rest: &str) -> Option<usize> {
    let bytes = rest.as_bytes();
    let len = match bytes.first()? {
        b'\'' | b'"' => skip_quoted(bytes, 0, bytes.len())?,
        _ => {
            let comment = (1..bytes.len())
                .find(|&i| bytes[i] == b'#' && bytes[i - 1].is_ascii_whitespace())
                .unwrap_or(bytes.len());
            rest[..comment].trim_end().len()
        }
    };
    let tail = rest[len..].trim_start();
    (tail.is_empty() || tail.starts_with('#')).then_some(len)
}

/// The string a scalar spells, letting serde_yaml do the unquoting; None for non-strings.
fn scalar_value(raw: &str) -> Option<String> {
    if raw.is_empty() {
        return None;
    }
    match serde_yaml::from_str::<Value>(raw).ok()? {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// Offset just past the closing quote of the quoted scalar starting at `at`.
fn skip_quoted(bytes: &[u8], at: usize, limit: usize) -> Option<usize> {
    let quote = bytes[at];
    let mut i = at + 1;
    while i < limit {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 2,
            b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b if b == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The items of a flow sequence whose `[` ends at `open`; None when it is not closed before `limit`.
fn scan_flow(text: &str, open: usize, limit: usize) -> Option<Vec<FlowItem>> {
    let bytes = text.as_bytes();
    let mut items = Vec::new();
    let (mut start, mut end, mut depth) = (None, 0, 0i32);
    let mut i = open;
    while i < limit {
        match bytes[i] {
            b'#' if bytes[i - 1].is_ascii_whitespace() => {
                while i < limit && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'\'' | b'"' => {
                start.get_or_insert(i);
                i = skip_quoted(bytes, i, limit)?;
                end = i;
                continue;
            }
            b',' | b']' if depth == 0 => {
                if let Some(s) = start.take() {
                    let value = scalar_value(&text[s..end]);
                    items.push(FlowItem { raw: s..end, value });
                }
                if bytes[i] == b']' {
                    return Some(items);
                }
                i += 1;
                continue;
            }
            b if b.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth -= 1,
            _ => {}
        }
        start.get_or_insert(i);
        i += 1;
        end = i;
    }
    None
}

type Edit = (Range<usize>, String);

/// Splice `edits` (non-overlapping) into `text`.
fn apply(text: &str, mut edits: Vec<Edit>) -> String {
    // Back to front, so earlier offsets stay valid; at equal starts the wider edit goes first.
    edits.sort_by_key(|(range, _)| std::cmp::Reverse((range.start, range.end)));
    let mut out = text.to_string();
    for (range, replacement) in edits {
        out.replace_range(range, &replacement);
    }
    out
}

/// The edits removing the first `resources:` entry whose value `wanted`, if the scanner finds one.
fn removal_edits(text: &str, wanted: &dyn Fn(&str) -> bool) -> Option<Vec<Edit>> {
    let scan = Scanner::new(text);
    let matches = |v: &Option<String>| v.as_deref().is_some_and(wanted);
    for doc in scan.documents() {
        match scan.layout(&doc) {
            Some(Layout::Block { colon, items, .. }) => {
                if let Some(index) = items.iter().position(|item| matches(&item.value)) {
                    let item = &items[index];
                    let last = scan.lines[item.last];
                    let mut start = scan.lines[item.first].start;
                    if last.end == last.body_end && item.first > 0 {
                        // The file has no final newline: the line before becomes the last one
                        // and must lose its line ending too.
                        start = scan.lines[item.first - 1].body_end;
                    }
                    let gone = start..last.end;
                    let mut edits = vec![(gone, String::new())];
                    if items.len() == 1 {
                        // An empty block would mean `resources: null`; keep it a list.
                        edits.push((colon..colon, " []".to_string()));
                    }
                    return Some(edits);
                }
            }
            Some(Layout::Flow { items, .. }) => {
                if let Some(index) = items.iter().position(|item| matches(&item.value)) {
                    return Some(vec![(flow_removal(text, &items, index), String::new())]);
                }
            }
            _ => {}
        }
    }
    None
}

/// The byte range to delete to drop flow item `index`, keeping the sequence valid.
fn flow_removal(text: &str, items: &[FlowItem], index: usize) -> Range<usize> {
    let item = &items[index].raw;
    let line_start = text[..item.start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[item.end..]
        .find('\n')
        .map_or(text.len(), |i| item.end + i + 1);
    let before = &text[line_start..item.start];
    let after = text[item.end..line_end].trim_end();
    let after = after.strip_prefix(',').unwrap_or(after).trim_start();
    if before.trim().is_empty()
        && (after.is_empty() || after.starts_with('#'))
        && line_end > item.end
    {
        // The item has its own line: drop the line; a trailing comma left before `]` is valid YAML.
        return line_start..line_end;
    }
    let comma_after = text[item.end..].trim_start().starts_with(',');
    if index + 1 < items.len() || comma_after {
        // Drop the item, its comma and the spaces up to the next item on the same line.
        let rest = &text[item.end..];
        let skip = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        let rest = &rest[skip..];
        let comma = usize::from(rest.starts_with(','));
        let rest = &rest[comma..];
        let spaces = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        return item.start..item.end + skip + comma + spaces;
    }
    match index.checked_sub(1).map(|i| &items[i].raw) {
        // Last item: drop it together with the comma after the previous one, unless a comment
        // or line break sits in between (then a trailing comma stays, which is valid YAML).
        Some(prev) if !text[prev.end..item.start].contains(['#', '\n']) => prev.end..item.end,
        _ => item.clone(),
    }
}

/// The edits adding `file_name` to the first document with a `resources:` key (or the first
/// document with content when none has one).
fn addition_edits(text: &str, file_name: &str) -> Option<Vec<Edit>> {
    let scan = Scanner::new(text);
    let docs = scan.documents();
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let keyed = docs.iter().find_map(|doc| scan.layout(doc));
    let edit = match keyed {
        Some(Layout::Block { key, items, .. }) => match items.last() {
            Some(last) => {
                let entry = format!("{}{}", last.prefix, render(file_name, &last.raw, false));
                line_after(text, &scan.lines[last.last], &entry, eol)
            }
            None => line_after(
                text,
                &scan.lines[key],
                &format!("- {}", plain_or_quoted(file_name, false)),
                eol,
            ),
        },
        Some(Layout::Flow { open, items }) => match items.last() {
            Some(last) => {
                let raw = &text[last.raw.clone()];
                let entry = format!(", {}", render(file_name, raw, true));
                (last.raw.end..last.raw.end, entry)
            }
            None => (open..open, plain_or_quoted(file_name, true)),
        },
        Some(Layout::Unsupported) => return None,
        None => {
            let entry = plain_or_quoted(file_name, false);
            let block = format!("resources:{eol}- {entry}");
            let content = |i: usize| {
                let body = scan.body(i).trim();
                !body.is_empty() && !body.starts_with('#')
            };
            let doc = docs.iter().find(|doc| Range::clone(doc).any(content));
            match doc {
                Some(doc) => line_after(text, &scan.lines[doc.end - 1], &block, eol),
                None if text.is_empty() || text.ends_with('\n') => {
                    (text.len()..text.len(), format!("{block}{eol}"))
                }
                None => (text.len()..text.len(), format!("{eol}{block}")),
            }
        }
    };
    Some(vec![edit])
}

/// Insert `body` as a new line after `line`, keeping a missing final newline missing.
fn line_after(text: &str, line: &Line, body: &str, eol: &str) -> Edit {
    if line.end > line.body_end {
        let own_eol = &text[line.body_end..line.end];
        (line.end..line.end, format!("{body}{own_eol}"))
    } else {
        (line.end..line.end, format!("{eol}{body}"))
    }
}

/// `file_name` in the quoting style of the existing entry `like`.
fn render(file_name: &str, like: &str, flow: bool) -> String {
    match like.chars().next() {
        Some('\'') if !file_name.contains('\n') => format!("'{}'", file_name.replace('\'', "''")),
        Some('"') => double_quoted(file_name),
        _ => plain_or_quoted(file_name, flow),
    }
}

/// `file_name` unquoted when YAML reads it back as the same string, double-quoted otherwise.
fn plain_or_quoted(file_name: &str, flow: bool) -> String {
    let probe = if flow {
        format!("[{file_name}]")
    } else {
        format!("- {file_name}")
    };
    let same = serde_yaml::from_str::<Vec<Value>>(&probe)
        .is_ok_and(|v| v == [Value::String(file_name.to_string())]);
    if same && !file_name.contains(['#', '\n']) {
        file_name.to_string()
    } else {
        double_quoted(file_name)
    }
}

fn double_quoted(s: &str) -> String {
    // A JSON string literal is a valid YAML double-quoted scalar.
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kustomization_with_no_entries_and_nothing_else_builds_nothing() {
        let empty = "# shared\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n";
        assert!(builds_nothing("k", empty).unwrap());
        assert!(!builds_nothing("k", &format!("{empty}  - a.yaml\n")).unwrap());
        let generator = format!("{empty}configMapGenerator:\n  - name: x\n    literals: [a=b]\n");
        assert!(!builds_nothing("k", &generator).unwrap());
    }
    use proptest::prelude::*;

    const OCI: &str = "oci-creds.yaml";

    fn at(path: &str) -> RepoPath {
        RepoPath::new(path).unwrap()
    }

    /// Whether `entry` of a kustomization at the repository root points at `oci-creds.yaml`.
    fn entry_matches(entry: &str, file: &str) -> bool {
        points_at(&at("k.yaml"), entry, &at(file))
    }

    const PATCH: &str = "- patch: |\n    - op: add\n      path: /spec/x\n      value: 1\n  target:\n    kind: Kustomization\n    name: flux-system\n";

    #[test]
    fn patches_are_appended_in_the_file_s_layout_once() {
        let bootstrap = "# bootstrap\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - gotk-components.yaml\n  - gotk-sync.yaml\n";
        let edited = add_patch("k", bootstrap, PATCH).unwrap().unwrap();
        assert!(edited.starts_with(bootstrap), "{edited}");
        assert!(edited.ends_with("patches:\n  - patch: |\n      - op: add\n        path: /spec/x\n        value: 1\n    target:\n      kind: Kustomization\n      name: flux-system\n"), "{edited}");
        assert_eq!(add_patch("k", &edited, PATCH).unwrap(), None);
        // An existing list at column 0 gets the entry after its last item, CRLF kept.
        let listed = "resources:\r\n- a.yaml\r\npatches:\r\n- path: p.yaml\r\n  target:\r\n    kind: Deployment\r\n# end\r\n";
        let edited = add_patch("k", listed, PATCH).unwrap().unwrap();
        assert!(
            edited.contains("    kind: Deployment\r\n- patch: |\r\n    - op: add"),
            "{edited}"
        );
        assert!(
            edited.ends_with("name: flux-system\r\n# end\r\n"),
            "{edited}"
        );
        assert_eq!(edited.matches('\n').count(), edited.matches("\r\n").count());
        assert!(add_patch("k", "patches: [{path: p.yaml}]\n", PATCH).is_err());
    }

    fn removed(text: &str) -> String {
        remove_resource(&at("k.yaml"), text, &at(OCI))
            .unwrap()
            .expect("an entry to remove")
    }

    fn added(text: &str) -> String {
        add_resource(&at("k.yaml"), text, &at(OCI))
            .unwrap()
            .expect("an entry to add")
    }

    #[test]
    fn entry_spellings_match() {
        for entry in [
            "oci-creds.yaml",
            "./oci-creds.yaml",
            ".//oci-creds.yaml",
            "a/../oci-creds.yaml",
            "./a/./../oci-creds.yaml",
        ] {
            assert!(entry_matches(entry, OCI), "{entry}");
        }
        // Quotes inside the parsed string and spaces kept by quoting are part of the file name
        // for kustomize (YAML quoting itself is undone by the parser before entries get here).
        for entry in [
            "oci-creds.yml",
            "sub/oci-creds.yaml",
            "../oci-creds.yaml",
            "x",
            "'oci-creds.yaml'",
            "oci-creds.yaml ",
            "https://example.com/oci-creds.yaml",
        ] {
            assert!(!entry_matches(entry, OCI), "{entry}");
        }
        assert!(entry_matches("./sub//x.yaml", "sub/x.yaml"));
    }

    #[test]
    fn entries_resolve_against_the_kustomization_directory() {
        let k = at("o/services/grafana/kustomization.yaml");
        let loki = at("o/services/loki/oci-creds.yaml");
        for entry in [
            "../loki/oci-creds.yaml",
            "./../loki/./oci-creds.yaml",
            "x/../../loki/oci-creds.yaml",
        ] {
            assert!(points_at(&k, entry, &loki), "{entry}");
        }
        assert!(!points_at(&k, "oci-creds.yaml", &loki));
        assert_eq!(resolve_entry(&k, "../../../../../x").unwrap(), None);
        let err = resolve_entry(&k, "/o/services/loki/oci-creds.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("o/services/grafana/kustomization.yaml: `resources:` entry"),
            "{err}"
        );
        assert!(
            err.contains("absolute path") && err.contains("`../loki/oci-creds.yaml` if you meant"),
            "{err}"
        );
    }

    #[test]
    fn removal_and_addition_go_by_resolved_path() {
        let k = at("o/services/grafana/kustomization.yaml");
        let loki = at("o/services/loki/oci-creds.yaml");
        let text =
            "resources:\n- a.yaml\n- \"../loki/oci-creds.yaml\"\n- ../loki/./oci-creds.yaml\n";
        let out = remove_resource(&k, text, &loki).unwrap().unwrap();
        assert_eq!(out, "resources:\n- a.yaml\n");
        assert_eq!(
            remove_resource(&k, &out, &at("o/services/grafana/oci-creds.yaml")).unwrap(),
            None
        );
        let back = add_resource(&k, &out, &loki).unwrap().unwrap();
        assert_eq!(back, "resources:\n- a.yaml\n- ../loki/oci-creds.yaml\n");
    }

    #[test]
    fn a_byte_order_mark_survives_edits_byte_exact() {
        let text = "\u{feff}resources:\r\n- a.yaml\r\n- oci-creds.yaml\r\n";
        let out = removed(text);
        assert_eq!(out, "\u{feff}resources:\r\n- a.yaml\r\n");
        assert_eq!(added(&out), text);
        assert_eq!(
            added("\u{feff}kind: Kustomization\n"),
            "\u{feff}kind: Kustomization\nresources:\n- oci-creds.yaml\n"
        );
    }

    #[test]
    fn resources_lists_unquoted_entries_in_order() {
        let text = "resources:\n- a.yaml\n- 'b.yaml'\n- \"./c.yaml\"\nnested:\n  resources: [d]\n";
        assert_eq!(
            resources("k.yaml", text).unwrap(),
            ["a.yaml", "b.yaml", "./c.yaml"]
        );
        assert!(resources("k.yaml", "namespace: x\n").unwrap().is_empty());
    }

    #[test]
    fn malformed_yaml_error_names_origin() {
        let err = resources("apps/kustomization.yaml", "resources: [a\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("apps/kustomization.yaml"), "{err}");
    }

    #[test]
    fn remove_table() {
        let cases: &[(&str, &str)] = &[
            // indented block, plain
            (
                "resources:\n  - a.yaml\n  - oci-creds.yaml\n  - b.yaml\n",
                "resources:\n  - a.yaml\n  - b.yaml\n",
            ),
            // non-indented block, ./ prefix, trailing comment on the item
            (
                "resources:\n- ./oci-creds.yaml  # creds\n- a.yaml\n",
                "resources:\n- a.yaml\n",
            ),
            // single and double quotes, comment lines between items
            (
                "resources:\n  # first\n  - 'a.yaml'\n  # creds\n  - 'oci-creds.yaml'\n",
                "resources:\n  # first\n  - 'a.yaml'\n  # creds\n",
            ),
            (
                "resources:\n- \"./oci-creds.yaml\"\n- \"a.yaml\"\n",
                "resources:\n- \"a.yaml\"\n",
            ),
            // only entry: becomes an empty flow list, keeping the key comment
            (
                "namespace: x\nresources: # the list\n- oci-creds.yaml\nnamePrefix: p-\n",
                "namespace: x\nresources: [] # the list\nnamePrefix: p-\n",
            ),
            // flow sequences
            (
                "resources: [./a.yaml, \"./oci-creds.yaml\"]\n",
                "resources: [./a.yaml]\n",
            ),
            (
                "resources: [oci-creds.yaml, a.yaml]\n",
                "resources: [a.yaml]\n",
            ),
            (
                "resources: [a.yaml, 'oci-creds.yaml', b.yaml] # c\n",
                "resources: [a.yaml, b.yaml] # c\n",
            ),
            ("resources: [oci-creds.yaml]\n", "resources: []\n"),
            (
                "resources: [\n  a.yaml,\n  oci-creds.yaml, # creds\n  b.yaml\n]\n",
                "resources: [\n  a.yaml,\n  b.yaml\n]\n",
            ),
            (
                "resources: [\n  a.yaml,\n  oci-creds.yaml\n]\n",
                "resources: [\n  a.yaml,\n]\n",
            ),
            // nested `resources` keys are not the kustomization's
            (
                "helm:\n  resources:\n  - oci-creds.yaml\nresources:\n- oci-creds.yaml\n- a.yaml\n",
                "helm:\n  resources:\n  - oci-creds.yaml\nresources:\n- a.yaml\n",
            ),
            // leading document marker and every matching entry
            (
                "---\nresources:\n- oci-creds.yaml\n- a.yaml\n- ./oci-creds.yaml\n",
                "---\nresources:\n- a.yaml\n",
            ),
            // second document holds the key
            (
                "# header\n---\napiVersion: v1\nkind: Kustomization\n---\nresources:\n- oci-creds.yaml\n- a.yaml\n",
                "# header\n---\napiVersion: v1\nkind: Kustomization\n---\nresources:\n- a.yaml\n",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(&removed(input), want, "input:\n{input}");
        }
    }

    #[test]
    fn remove_nothing_to_do() {
        let text = "resources:\n- a.yaml\nhelm:\n  resources: [oci-creds.yaml]\n";
        assert_eq!(
            remove_resource(&at("k.yaml"), text, &at(OCI)).unwrap(),
            None
        );
        assert_eq!(
            remove_resource(&at("k.yaml"), "kind: X\n", &at(OCI)).unwrap(),
            None
        );
    }

    #[test]
    fn add_table() {
        let cases: &[(&str, &str)] = &[
            (
                "resources:\n  - a.yaml\n  # trailing\nnamespace: x\n",
                "resources:\n  - a.yaml\n  - oci-creds.yaml\n  # trailing\nnamespace: x\n",
            ),
            (
                "resources:\n- a.yaml\n",
                "resources:\n- a.yaml\n- oci-creds.yaml\n",
            ),
            (
                "resources:\n-   'a.yaml'  # a\n",
                "resources:\n-   'a.yaml'  # a\n-   'oci-creds.yaml'\n",
            ),
            (
                "resources:\n  - \"./a.yaml\"\n",
                "resources:\n  - \"./a.yaml\"\n  - \"oci-creds.yaml\"\n",
            ),
            (
                "resources: [./a.yaml, \"b.yaml\"]\n",
                "resources: [./a.yaml, \"b.yaml\", \"oci-creds.yaml\"]\n",
            ),
            (
                "resources: [ a.yaml ] # c\n",
                "resources: [ a.yaml, oci-creds.yaml ] # c\n",
            ),
            ("resources: []\n", "resources: [oci-creds.yaml]\n"),
            (
                "resources: [] # none\n",
                "resources: [oci-creds.yaml] # none\n",
            ),
            (
                "resources:\nkind: K\n",
                "resources:\n- oci-creds.yaml\nkind: K\n",
            ),
            (
                "namespace: x\n",
                "namespace: x\nresources:\n- oci-creds.yaml\n",
            ),
            ("namespace: x", "namespace: x\nresources:\n- oci-creds.yaml"),
            ("", "resources:\n- oci-creds.yaml\n"),
            (
                "---\nkind: Kustomization\n# end\n",
                "---\nkind: Kustomization\n# end\nresources:\n- oci-creds.yaml\n",
            ),
            (
                "kind: Kustomization\n---\nkind: Other\n",
                "kind: Kustomization\nresources:\n- oci-creds.yaml\n---\nkind: Other\n",
            ),
            (
                "resources:\n- a.yaml",
                "resources:\n- a.yaml\n- oci-creds.yaml",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(&added(input), want, "input:\n{input}");
        }
    }

    #[test]
    fn key_spellings_and_multiline_flow() {
        assert_eq!(
            removed("\"resources\" :\n- oci-creds.yaml\n- a\n"),
            "\"resources\" :\n- a\n"
        );
        assert_eq!(
            added("resources: [\n  a.yaml,  # a\n  b.yaml  # b\n]\n"),
            "resources: [\n  a.yaml,  # a\n  b.yaml, oci-creds.yaml  # b\n]\n"
        );
        // Both documents lose the entry; `...` and `---` markers survive.
        let text = "resources:\n- oci-creds.yaml\n...\n---\nresources: [oci-creds.yaml]\n";
        assert_eq!(removed(text), "resources: []\n...\n---\nresources: []\n");
    }

    #[test]
    fn add_quotes_names_that_need_it() {
        let text = "resources:\n- a.yaml\n";
        let out = add_resource(&at("k.yaml"), text, &at("x: y.yaml"))
            .unwrap()
            .unwrap();
        assert_eq!(out, "resources:\n- a.yaml\n- \"x: y.yaml\"\n");
        let out = add_resource(&at("k.yaml"), "resources: [a]\n", &at("b,c"))
            .unwrap()
            .unwrap();
        assert_eq!(out, "resources: [a, \"b,c\"]\n");
    }

    #[test]
    fn add_existing_is_a_no_op() {
        for text in [
            "resources:\n- ./oci-creds.yaml\n",
            "resources: ['oci-creds.yaml']\n",
        ] {
            assert_eq!(
                add_resource(&at("k.yaml"), text, &at(OCI)).unwrap(),
                None,
                "{text}"
            );
        }
    }

    #[test]
    fn crlf_survives_on_every_line() {
        let text = "# c\r\nresources:\r\n  - a.yaml\r\n  - oci-creds.yaml # x\r\n  - b.yaml\r\nnamespace: n\r\n";
        let out = removed(text);
        assert_eq!(
            out,
            "# c\r\nresources:\r\n  - a.yaml\r\n  - b.yaml\r\nnamespace: n\r\n"
        );
        let back = added(&out);
        assert_eq!(
            back,
            "# c\r\nresources:\r\n  - a.yaml\r\n  - b.yaml\r\n  - oci-creds.yaml\r\nnamespace: n\r\n"
        );
        for text in [
            out,
            back,
            added("kind: K\r\n"),
            removed("resources:\r\n- oci-creds.yaml\r\n"),
        ] {
            assert!(!text.replace("\r\n", "").contains('\n'), "{text:?}");
        }
    }

    #[test]
    fn missing_final_newline_survives() {
        assert_eq!(
            removed("resources:\n- a.yaml\n- oci-creds.yaml"),
            "resources:\n- a.yaml"
        );
        assert_eq!(removed("resources:\r\n- oci-creds.yaml"), "resources: []");
        // The removed line carried no newline; the one before keeps its own, as the line itself.
        assert_eq!(
            removed("resources:\n- oci-creds.yaml\n- a.yaml"),
            "resources:\n- a.yaml"
        );
        assert_eq!(
            added("resources:\r\n- a.yaml"),
            "resources:\r\n- a.yaml\r\n- oci-creds.yaml"
        );
    }

    #[test]
    fn semantic_difference_is_only_the_entry() {
        let text = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: apps # ns\nresources:\n  - a.yaml\n  # creds below\n  - ./oci-creds.yaml # creds\n  - b/\npatches:\n  - path: p.yaml\n";
        let before: Value = serde_yaml::from_str(text).unwrap();
        let after: Value = serde_yaml::from_str(&removed(text)).unwrap();
        let mut expected = before.clone();
        let list = expected["resources"].as_sequence_mut().unwrap();
        list.remove(1);
        assert_eq!(after, expected);
        assert_ne!(after, before);
        let again: Value = serde_yaml::from_str(&added(&removed(text))).unwrap();
        let mut expected_again = expected.clone();
        let list = expected_again["resources"].as_sequence_mut().unwrap();
        list.push(Value::String(OCI.into()));
        assert_eq!(again, expected_again);
    }

    #[test]
    fn unrecognised_layout_is_refused_not_corrupted() {
        // An anchored list the scanner does not understand: the self-check must refuse.
        let text = "resources: &r\n  - oci-creds.yaml\n";
        let err = remove_resource(&at("apps/k.yaml"), text, &at("apps/oci-creds.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("could not edit apps/k.yaml safely; edit it by hand"),
            "{err}"
        );
        let text = "resources: null\n";
        let err = add_resource(&at("apps/k.yaml"), text, &at("apps/oci-creds.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("could not edit apps/k.yaml safely"), "{err}");
        // Indented top-level mapping: no column-0 key for the scanner.
        let text = "  resources:\n  - oci-creds.yaml\n";
        assert!(remove_resource(&at("k.yaml"), text, &at(OCI)).is_err());
    }

    #[test]
    fn verify_rejects_a_wrong_edit() {
        let expected = manifest::parse_documents("k", "resources: [a]\n").unwrap();
        assert!(verify("k", "resources: [a]\n", &expected).is_ok());
        let err = verify("k", "resources: [b]\n", &expected).unwrap_err();
        assert!(err.to_string().contains("could not edit k safely"));
        assert_eq!(
            err.downcast_ref::<UnsafeEdit>(),
            Some(&UnsafeEdit { file: "k".into() }),
            "callers match the type, not the text"
        );
    }

    #[test]
    fn other_references_finds_non_resource_uses() {
        let text = r#"
resources:
- oci-creds.yaml
patches:
- path: a.yaml
- path: ./oci-creds.yaml
  target: {kind: Secret}
patchesStrategicMerge:
- oci-creds.yaml
patchesJson6902:
- path: 'oci-creds.yaml'
secretGenerator:
- name: s
  files:
  - .dockerconfigjson=oci-creds.yaml
  - other.txt
  envs: [oci-creds.yaml]
  env: oci-creds.yaml
configMapGenerator:
- name: c
  files: [oci-creds.yaml]
generators: [oci-creds.yaml]
components:
- ../x
- ./oci-creds.yaml
transformers: [oci-creds.yaml]
validators: [oci-creds.yaml]
crds: [oci-creds.yaml]
configurations: [oci-creds.yaml]
replacements:
- path: oci-creds.yaml
openapi:
  path: oci-creds.yaml
helmCharts:
- name: c
  valuesFile: oci-creds.yaml
bases: [oci-creds.yaml]
"#;
        let refs = other_references(&at("k.yaml"), text, &at(OCI)).unwrap();
        let fields: Vec<&str> = refs.iter().map(|r| r.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "patchesStrategicMerge[0]",
                "generators[0]",
                "components[1]",
                "transformers[0]",
                "validators[0]",
                "crds[0]",
                "configurations[0]",
                "bases[0]",
                "patches[1].path",
                "patchesJson6902[0].path",
                "replacements[0].path",
                "helmCharts[0].valuesFile",
                "secretGenerator[0].files[0]",
                "secretGenerator[0].envs[0]",
                "secretGenerator[0].env",
                "configMapGenerator[0].files[0]",
                "openapi.path",
            ]
        );
        assert_eq!(refs[8].detail, "patches[1].path: ./oci-creds.yaml");
        assert_eq!(
            refs[12].detail,
            "secretGenerator[0].files[0]: .dockerconfigjson=oci-creds.yaml"
        );
        let only_resources = "resources:\n- oci-creds.yaml\n";
        assert!(
            other_references(&at("k.yaml"), only_resources, &at(OCI))
                .unwrap()
                .is_empty()
        );
    }

    // ---- property test -------------------------------------------------------------------

    /// A generated kustomization: rendered with and without the creds entry, so the exact
    /// expected text after removal is known.
    #[derive(Debug, Clone)]
    struct Kust {
        others: Vec<(String, bool)>, // spelling, comment line before it
        oci: String,
        oci_at: usize,
        oci_comment_before: bool,
        oci_trailing_comment: bool,
        indent: usize,
        style: u8, // 0 block, 1 flow on one line, 2 flow over several lines
        crlf: bool,
        leading_marker: bool,
        before_keys: bool,
        after_keys: bool,
        decoy: bool,
        final_newline: bool,
    }

    impl Kust {
        fn render(&self, with_oci: bool) -> String {
            // (spelling, comment line before it, trailing comment, present in the text)
            let mut items: Vec<(String, bool, bool, bool)> = self
                .others
                .iter()
                .map(|(s, c)| (s.clone(), *c, false, true))
                .collect();
            let at = self.oci_at % (items.len() + 1);
            let oci = self.oci.clone();
            // Without the entry, the comment line before it stays where it was.
            items.insert(
                at,
                (
                    oci,
                    self.oci_comment_before,
                    self.oci_trailing_comment,
                    with_oci,
                ),
            );
            let mut lines: Vec<String> = Vec::new();
            if self.leading_marker {
                lines.push("---".into());
            }
            if self.before_keys {
                lines.push("apiVersion: kustomize.config.k8s.io/v1beta1".into());
                lines.push("kind: Kustomization # k".into());
            }
            if self.decoy {
                lines.push("helm:".into());
                lines.push("  resources:".into());
                lines.push("  - oci-creds.yaml".into());
            }
            let pad = " ".repeat(self.indent);
            let real: Vec<_> = items.iter().filter(|i| i.3).collect();
            match self.style {
                0 => {
                    lines.push(
                        if real.is_empty() {
                            "resources: []"
                        } else {
                            "resources:"
                        }
                        .into(),
                    );
                    for (spelling, comment_before, trailing, present) in &items {
                        if *comment_before {
                            lines.push(format!(
                                "{pad}# about {}",
                                spelling.trim_matches(['\'', '"'])
                            ));
                        }
                        if *present {
                            let tail = if *trailing { "  # creds" } else { "" };
                            lines.push(format!("{pad}- {spelling}{tail}"));
                        }
                    }
                }
                1 => {
                    let joined: Vec<&str> = real.iter().map(|i| i.0.as_str()).collect();
                    lines.push(format!("resources: [{}]", joined.join(", ")));
                }
                _ => {
                    lines.push("resources: [".into());
                    for (spelling, _, trailing, _) in &real {
                        let tail = if *trailing { " # creds" } else { "" };
                        lines.push(format!("  {spelling},{tail}"));
                    }
                    lines.push("]".into());
                }
            }
            if self.after_keys {
                lines.push("namespace: apps".into());
                lines.push("namePrefix: p-  # prefix".into());
            }
            let eol = if self.crlf { "\r\n" } else { "\n" };
            let mut text = lines.join(eol);
            if self.final_newline {
                text.push_str(eol);
            }
            text
        }
    }

    fn spelling(name: &'static str) -> impl Strategy<Value = String> {
        (any::<bool>(), 0..3u8).prop_map(move |(dot, quote)| {
            let path = if dot {
                format!("./{name}")
            } else {
                name.to_string()
            };
            match quote {
                0 => path,
                1 => format!("'{path}'"),
                _ => format!("\"{path}\""),
            }
        })
    }

    fn kust() -> impl Strategy<Value = Kust> {
        let other =
            prop::sample::select(vec!["a.yaml", "base/", "../shared", "apps/b.yaml", "c.yml"])
                .prop_flat_map(spelling);
        let oci = prop::sample::select(vec![
            "oci-creds.yaml".to_string(),
            "./oci-creds.yaml".to_string(),
            "'oci-creds.yaml'".to_string(),
            "\"./oci-creds.yaml\"".to_string(),
            ".//oci-creds.yaml".to_string(),
            "sub/../oci-creds.yaml".to_string(),
        ]);
        (
            prop::collection::vec((other, any::<bool>()), 0..5),
            oci,
            0..6usize,
            any::<[bool; 2]>(),
            prop::sample::select(vec![0usize, 2]),
            0..3u8,
            any::<[bool; 6]>(),
            any::<bool>(),
        )
            .prop_map(
                |(others, oci, oci_at, [cb, tc], indent, style, flags, crlf)| {
                    let others = if style == 0 {
                        others
                    } else {
                        others.into_iter().map(|(s, _)| (s, false)).collect()
                    };
                    Kust {
                        others,
                        oci,
                        oci_at,
                        oci_comment_before: cb && style == 0,
                        oci_trailing_comment: tc && style != 1,
                        indent,
                        style,
                        crlf,
                        leading_marker: flags[0],
                        before_keys: flags[1],
                        after_keys: flags[2],
                        decoy: flags[3],
                        final_newline: flags[4] || flags[5],
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn remove_and_add_round_trip(k in kust()) {
            let text = k.render(true);
            let out = remove_resource(&at("k.yaml"), &text, &at(OCI)).unwrap().expect("entry to remove");
            // Exact text: every other line, comment and ending is untouched.
            prop_assert_eq!(&out, &k.render(false), "input:\n{}", text);
            // Parsed value: the original minus that one entry.
            let mut expected: Value = serde_yaml::from_str(&text).unwrap();
            expected["resources"]
                .as_sequence_mut()
                .unwrap()
                .retain(|e| !entry_matches(e.as_str().unwrap(), OCI));
            prop_assert_eq!(serde_yaml::from_str::<Value>(&out).unwrap(), expected);
            // Removing twice is a no-op; adding back re-contains the entry.
            prop_assert_eq!(remove_resource(&at("k.yaml"), &out, &at(OCI)).unwrap(), None);
            let back = add_resource(&at("k.yaml"), &out, &at(OCI)).unwrap().expect("entry to add");
            let entries = resources("k.yaml", &back).unwrap();
            prop_assert!(entries.iter().any(|e| entry_matches(e, OCI)));
            prop_assert_eq!(add_resource(&at("k.yaml"), &back, &at(OCI)).unwrap(), None);
            prop_assert_eq!(back.ends_with('\n'), text.ends_with('\n'));
            // A one-line result without a final newline keeps no line ending to learn CRLF from.
            if out.contains('\n') {
                prop_assert_eq!(back.contains("\r\n"), k.crlf);
            }
        }
    }
}
