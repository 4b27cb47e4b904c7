//! STUB until the kustomize branch lands.
use anyhow::Result;
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherReference { pub field: String, pub detail: String }
pub fn entry_matches(entry: &str, file_name: &str) -> bool { entry.trim_matches(['"', '\'']).trim_start_matches("./") == file_name }
pub fn resources(origin: &str, text: &str) -> Result<Vec<String>> {
    let docs = crate::manifest::parse_documents(origin, text)?;
    Ok(docs.iter().filter_map(|d| d.get("resources")?.as_sequence().cloned()).flatten().filter_map(|v| v.as_str().map(String::from)).collect())
}
pub fn remove_resource(_origin: &str, _text: &str, _file_name: &str) -> Result<Option<String>> { todo!() }
pub fn add_resource(_origin: &str, _text: &str, _file_name: &str) -> Result<Option<String>> { todo!() }
pub fn other_references(_origin: &str, _text: &str, _file_name: &str) -> Result<Vec<OtherReference>> { Ok(vec![]) }
pub fn build(_dir: &std::path::Path) -> Result<String> { todo!() }
