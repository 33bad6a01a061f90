//! Checks JSON-LD against the schema.org vocabulary file (`schemaorg-current-https.jsonld`, fetched
//! into the user cache by `scripts/fetch-schemaorg.sh`): every `@type` is a schema.org class, every
//! property exists and is not superseded, each property's `domainIncludes` covers the node's type
//! (or a supertype), and each value fits the property's `rangeIncludes`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::TagError;

/// The vocabulary file name, as schema.org releases name it.
pub const VOCABULARY_FILE: &str = "schemaorg-current-https.jsonld";
/// The script that fetches it.
pub const FETCH_SCRIPT: &str = "scripts/fetch-schemaorg.sh";

/// `$OERKIT_SCHEMAORG` (a folder), else `~/.cache/oerkit/schemaorg`, joined with [`VOCABULARY_FILE`].
pub fn default_path() -> PathBuf {
    let dir = std::env::var_os("OERKIT_SCHEMAORG")
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|c| c.join("oerkit").join("schemaorg")))
        .unwrap_or_else(|| PathBuf::from(".cache/oerkit/schemaorg"));
    dir.join(VOCABULARY_FILE)
}

#[derive(Debug, Default)]
struct Property {
    domains: Vec<String>,
    ranges: Vec<String>,
    superseded_by: Option<String>,
}

/// The classes and properties of schema.org.
#[derive(Debug, Default)]
pub struct Vocabulary {
    /// class → direct superclasses
    classes: HashMap<String, Vec<String>>,
    data_types: HashSet<String>,
    properties: HashMap<String, Property>,
}

fn ids(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().flat_map(|x| ids(Some(x))).collect(),
        Some(Value::Object(o)) => o
            .get("@id")
            .and_then(Value::as_str)
            .map(|s| vec![local(s)])
            .unwrap_or_default(),
        Some(Value::String(s)) => vec![local(s)],
        _ => Vec::new(),
    }
}

/// `schema:Thing` / `https://schema.org/Thing` → `Thing`; other prefixes kept.
fn local(id: &str) -> String {
    id.strip_prefix("schema:")
        .or_else(|| id.strip_prefix("https://schema.org/"))
        .or_else(|| id.strip_prefix("http://schema.org/"))
        .unwrap_or(id)
        .to_string()
}

impl Vocabulary {
    /// Loads the vocabulary; a missing file names the script that fetches it.
    pub fn load(path: &Path) -> Result<Vocabulary, TagError> {
        let text = std::fs::read_to_string(path).map_err(|e| TagError::Vocabulary {
            path: path.to_path_buf(),
            message: format!(
                "cannot read the schema.org vocabulary ({e}); run {FETCH_SCRIPT} to fetch it"
            ),
        })?;
        let json: Value = serde_json::from_str(&text).map_err(|e| TagError::Vocabulary {
            path: path.to_path_buf(),
            message: format!("not valid JSON ({e}); run {FETCH_SCRIPT} again"),
        })?;
        let graph = json
            .get("@graph")
            .and_then(Value::as_array)
            .ok_or_else(|| TagError::Vocabulary {
                path: path.to_path_buf(),
                message: format!("no @graph: not a schema.org vocabulary file; run {FETCH_SCRIPT}"),
            })?;
        let mut vocab = Vocabulary::default();
        for node in graph {
            let Some(id) = node.get("@id").and_then(Value::as_str) else {
                continue;
            };
            let id = local(id);
            let types = ids(node.get("@type"));
            if types.iter().any(|t| t == "rdfs:Class") {
                vocab
                    .classes
                    .insert(id.clone(), ids(node.get("rdfs:subClassOf")));
                if types.iter().any(|t| t == "DataType") {
                    vocab.data_types.insert(id);
                }
            } else if types.iter().any(|t| t == "rdf:Property") {
                vocab.properties.insert(
                    id,
                    Property {
                        domains: ids(node.get("schema:domainIncludes")),
                        ranges: ids(node.get("schema:rangeIncludes")),
                        superseded_by: ids(node.get("schema:supersededBy")).into_iter().next(),
                    },
                );
            }
        }
        if !vocab.classes.contains_key("Thing") || vocab.properties.is_empty() {
            return Err(TagError::Vocabulary {
                path: path.to_path_buf(),
                message: format!("has no schema.org classes or properties; run {FETCH_SCRIPT}"),
            });
        }
        Ok(vocab)
    }

    /// Whether `class` is `ancestor` or one of its subclasses.
    pub fn is_a(&self, class: &str, ancestor: &str) -> bool {
        let mut stack = vec![class.to_string()];
        let mut seen = HashSet::new();
        while let Some(c) = stack.pop() {
            if c == ancestor {
                return true;
            }
            if seen.insert(c.clone()) {
                if let Some(supers) = self.classes.get(&c) {
                    stack.extend(supers.iter().cloned());
                }
            }
        }
        false
    }

    fn is_data_type(&self, class: &str) -> bool {
        self.data_types.iter().any(|d| self.is_a(class, d))
    }

    /// Every problem of a JSON-LD document (empty: valid).
    pub fn check(&self, doc: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        match doc.get("@context").and_then(Value::as_str) {
            Some("https://schema.org" | "http://schema.org" | "https://schema.org/") => {}
            other => problems.push(format!(
                "@context is {other:?}, not \"https://schema.org\": the terms would not be schema.org's"
            )),
        }
        match doc.get("@graph").and_then(Value::as_array) {
            Some(nodes) => {
                for (i, n) in nodes.iter().enumerate() {
                    self.check_node(n, &format!("@graph[{i}]"), &mut problems);
                }
            }
            None => self.check_node(doc, "$", &mut problems),
        }
        problems
    }

    fn check_node(&self, node: &Value, path: &str, problems: &mut Vec<String>) {
        let Some(obj) = node.as_object() else {
            problems.push(format!("{path}: expected a JSON object"));
            return;
        };
        let types = ids(obj.get("@type"));
        let has_properties = obj.keys().any(|k| !k.starts_with('@'));
        if types.is_empty() {
            if has_properties {
                problems.push(format!("{path}: a node with properties but no @type"));
            }
            return;
        }
        for t in &types {
            if !self.classes.contains_key(t) {
                problems.push(format!("{path}: @type {t:?} is not a schema.org class"));
            }
        }
        for (key, value) in obj {
            if key.starts_with('@') {
                continue;
            }
            let here = format!("{path}.{key}");
            let Some(prop) = self.properties.get(key) else {
                problems.push(format!("{here}: {key:?} is not a schema.org property"));
                continue;
            };
            if let Some(newer) = &prop.superseded_by {
                problems.push(format!("{here}: {key:?} is superseded by {newer:?}"));
            }
            if !types
                .iter()
                .any(|t| prop.domains.iter().any(|d| self.is_a(t, d)))
            {
                problems.push(format!(
                    "{here}: {key:?} is not a property of {types:?} (its domain is {:?})",
                    prop.domains
                ));
            }
            let values: Vec<&Value> = match value {
                Value::Array(a) => a.iter().collect(),
                v => vec![v],
            };
            for (i, v) in values.iter().enumerate() {
                let at = if value.is_array() {
                    format!("{here}[{i}]")
                } else {
                    here.clone()
                };
                self.check_value(v, prop, key, &at, problems);
            }
        }
    }

    fn check_value(
        &self,
        v: &Value,
        prop: &Property,
        key: &str,
        at: &str,
        problems: &mut Vec<String>,
    ) {
        let fits = |pred: &dyn Fn(&str) -> bool| prop.ranges.iter().any(|r| pred(r));
        match v {
            Value::Object(o) => {
                let vtypes = ids(o.get("@type"));
                // A bare reference (`{"@id": …}`) is checked where the node is described.
                if !vtypes.is_empty() && !vtypes.iter().any(|vt| fits(&|r| self.is_a(vt, r))) {
                    problems.push(format!(
                        "{at}: a {vtypes:?} is not in the range of {key:?} ({:?})",
                        prop.ranges
                    ));
                }
                self.check_node(v, at, problems);
            }
            Value::String(_) => {
                if !fits(&|r| self.is_a(r, "Text") || self.is_data_type(r) && r != "Boolean") {
                    problems.push(format!(
                        "{at}: text is not in the range of {key:?} ({:?})",
                        prop.ranges
                    ));
                }
            }
            Value::Number(_) => {
                if !fits(&|r| self.is_a(r, "Number")) {
                    problems.push(format!("{at}: a number is not in the range of {key:?}"));
                }
            }
            Value::Bool(_) => {
                if !fits(&|r| self.is_a(r, "Boolean")) {
                    problems.push(format!("{at}: a boolean is not in the range of {key:?}"));
                }
            }
            Value::Null | Value::Array(_) => {
                problems.push(format!(
                    "{at}: null or nested arrays are not schema.org values"
                ));
            }
        }
    }
}
