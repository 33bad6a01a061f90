//! Subject taxonomies: the shipped ISCED-F 2013 fields of education, or a user's own (a national
//! curriculum, a repository's subject list) in one of three simple shapes:
//!
//! - TOML: `[taxonomy]` with `name` (and optional `url`), then `[[term]]` tables with `code`,
//!   `name`, optional `description`, optional `parent` (see `data/isced-f-2013.toml`);
//! - JSON: `{"name": …, "url": …, "terms": [{"code": …, "name": …, "description": …, "parent": …}]}`;
//! - CSV: a header row `code,name,description,parent` (`description` and `parent` may be left out or
//!   empty); the taxonomy is named after the file.
//!
//! A TOML or JSON term may also carry `translations`, its name and description in other languages
//! keyed by ISO 639-1 code (`translations.de = { name = "…", description = "…" }`); resources in
//! such a language are ranked against those as well (see `Tagger`).
//!
//! Terms without children are the ones resources are ranked against; their parents are reported
//! with them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::TagError;

/// The shipped ISCED-F 2013 data file.
const ISCED_F_2013: &str = include_str!("../data/isced-f-2013.toml");

/// One field or subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Term {
    pub code: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Name and description in other languages, keyed by ISO 639-1 code.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub translations: BTreeMap<String, TermText>,
}

/// A term's name and description in one language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermText {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

fn label(name: &str, description: Option<&str>) -> String {
    match description {
        Some(d) if !d.trim().is_empty() => format!("{}: {}", name, d.trim()),
        _ => name.to_string(),
    }
}

impl Term {
    /// What is embedded for the term: its name and description.
    pub fn embedding_text(&self) -> String {
        label(&self.name, self.description.as_deref())
    }

    /// The same in `language` (ISO 639-1), when the taxonomy translates the term.
    pub fn embedding_text_in(&self, language: &str) -> Option<String> {
        self.translations
            .get(language)
            .map(|t| label(&t.name, t.description.as_deref()))
    }
}

/// A named set of terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taxonomy {
    pub name: String,
    pub url: Option<String>,
    pub terms: Vec<Term>,
    index: HashMap<String, usize>,
}

/// How a record names its taxonomy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaxonomyRef {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    taxonomy: Header,
    #[serde(rename = "term")]
    terms: Vec<Term>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    name: String,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonFile {
    name: String,
    #[serde(default)]
    url: Option<String>,
    terms: Vec<Term>,
}

#[derive(Deserialize)]
struct CsvRow {
    code: String,
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parent: Option<String>,
}

impl Taxonomy {
    /// ISCED-F 2013 fields of education, as shipped with oerkit.
    pub fn isced_f_2013() -> Taxonomy {
        Self::from_toml_str(ISCED_F_2013, Path::new("data/isced-f-2013.toml"))
            .expect("the shipped ISCED-F 2013 file is valid (tested)")
    }

    /// Loads a user taxonomy; the format follows the extension (`.toml`, `.json`, `.csv`).
    pub fn load(path: &Path) -> Result<Taxonomy, TagError> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !matches!(extension.as_str(), "toml" | "json" | "csv") {
            return Err(TagError::TaxonomyFormat {
                path: path.to_path_buf(),
                extension,
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| TagError::TaxonomyIo {
            path: path.to_path_buf(),
            source,
        })?;
        match extension.as_str() {
            "toml" => Self::from_toml_str(&text, path),
            "json" => {
                let file: JsonFile =
                    serde_json::from_str(&text).map_err(|e| content(path, e.to_string()))?;
                Self::build(file.name, file.url, file.terms, path)
            }
            _ => Self::from_csv_str(&text, path),
        }
    }

    fn from_toml_str(text: &str, path: &Path) -> Result<Taxonomy, TagError> {
        let file: TomlFile = toml::from_str(text).map_err(|e| content(path, e.to_string()))?;
        Self::build(file.taxonomy.name, file.taxonomy.url, file.terms, path)
    }

    fn from_csv_str(text: &str, path: &Path) -> Result<Taxonomy, TagError> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut terms = Vec::new();
        for row in reader.deserialize::<CsvRow>() {
            let row = row.map_err(|e| {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                content(
                    path,
                    format!("line {line}: {e} (expected the columns code,name,description,parent)"),
                )
            })?;
            let none_if_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
            terms.push(Term {
                code: row.code,
                name: row.name,
                description: none_if_empty(row.description),
                parent: none_if_empty(row.parent),
                translations: BTreeMap::new(),
            });
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("taxonomy")
            .to_string();
        Self::build(name, None, terms, path)
    }

    fn build(
        name: String,
        url: Option<String>,
        terms: Vec<Term>,
        path: &Path,
    ) -> Result<Taxonomy, TagError> {
        if terms.is_empty() {
            return Err(content(path, "the taxonomy has no terms".into()));
        }
        let mut index = HashMap::new();
        for (i, t) in terms.iter().enumerate() {
            if t.code.trim().is_empty() || t.name.trim().is_empty() {
                return Err(content(
                    path,
                    format!("term {} has an empty code or name", i + 1),
                ));
            }
            if index.insert(t.code.clone(), i).is_some() {
                return Err(content(
                    path,
                    format!("the code {:?} appears twice", t.code),
                ));
            }
        }
        for t in &terms {
            if let Some(p) = &t.parent {
                if !index.contains_key(p) {
                    return Err(content(
                        path,
                        format!(
                            "term {:?} names the parent {p:?}, which is not in the file",
                            t.code
                        ),
                    ));
                }
            }
        }
        Ok(Taxonomy {
            name,
            url,
            terms,
            index,
        })
    }

    pub fn reference(&self) -> TaxonomyRef {
        TaxonomyRef {
            name: self.name.clone(),
            url: self.url.clone(),
        }
    }

    pub fn get(&self, code: &str) -> Option<&Term> {
        self.index.get(code).map(|&i| &self.terms[i])
    }

    /// The languages any term is translated into.
    pub fn translation_languages(&self) -> BTreeSet<String> {
        self.terms
            .iter()
            .flat_map(|t| t.translations.keys().cloned())
            .collect()
    }

    /// Indices of the terms no other term names as its parent, in file order.
    pub fn rankable(&self) -> Vec<usize> {
        let parents: HashSet<&str> = self
            .terms
            .iter()
            .filter_map(|t| t.parent.as_deref())
            .collect();
        (0..self.terms.len())
            .filter(|&i| !parents.contains(self.terms[i].code.as_str()))
            .collect()
    }

    /// The ancestors of a term, outermost first (a cycle in a user file stops the walk).
    pub fn ancestors(&self, term: &Term) -> Vec<&Term> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut current = term.parent.as_deref();
        while let Some(code) = current {
            if !seen.insert(code) {
                break;
            }
            match self.get(code) {
                Some(t) => {
                    out.push(t);
                    current = t.parent.as_deref();
                }
                None => break,
            }
        }
        out.reverse();
        out
    }
}

fn content(path: &Path, message: String) -> TagError {
    TagError::TaxonomyContent {
        path: path.to_path_buf(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_isced_file_is_consistent() {
        let t = Taxonomy::isced_f_2013();
        // 11 broad fields (00–10), each detailed code extends its narrow code, which extends its broad one.
        let broad: Vec<&Term> = t.terms.iter().filter(|t| t.parent.is_none()).collect();
        assert_eq!(broad.len(), 11);
        for term in &t.terms {
            if let Some(p) = &term.parent {
                assert!(term.code.starts_with(p.as_str()), "{} under {p}", term.code);
                assert_eq!(term.code.len(), p.len() + 1, "{}", term.code);
            }
        }
        for &i in &t.rankable() {
            let term = &t.terms[i];
            assert_eq!(
                term.code.len(),
                4,
                "detailed fields are ranked: {}",
                term.code
            );
            assert!(term
                .description
                .as_deref()
                .is_some_and(|d| d.ends_with('.')));
            // Every ranked field is described in each shipped language, so no language ranks a
            // mix of translated and English descriptions.
            for language in t.translation_languages() {
                let text = term.translations.get(&language);
                assert!(
                    text.is_some_and(|x| x
                        .description
                        .as_deref()
                        .is_some_and(|d| d.ends_with('.'))),
                    "{} lacks a {language} description",
                    term.code
                );
            }
        }
        assert!(t.translation_languages().contains("de"));
        let software = t.get("0613").expect("0613");
        assert_eq!(
            software.name,
            "Software and applications development and analysis"
        );
        let path: Vec<&str> = t
            .ancestors(software)
            .iter()
            .map(|a| a.code.as_str())
            .collect();
        assert_eq!(path, ["06", "061"]);
        assert_eq!(
            t.get("054").map(|t| t.name.as_str()),
            Some("Mathematics and statistics")
        );
    }

    #[test]
    fn user_taxonomies_load_from_toml_json_and_csv() {
        let dir = tempfile::tempdir().unwrap();
        let toml_path = dir.path().join("c.toml");
        std::fs::write(
            &toml_path,
            "[taxonomy]\nname = \"C\"\n[[term]]\ncode = \"M\"\nname = \"Maths\"\n[[term]]\ncode = \"M1\"\nname = \"Algebra\"\nparent = \"M\"\n",
        )
        .unwrap();
        let json_path = dir.path().join("c.json");
        std::fs::write(
            &json_path,
            r#"{"name": "C", "terms": [{"code": "M", "name": "Maths"}, {"code": "M1", "name": "Algebra", "parent": "M"}]}"#,
        )
        .unwrap();
        let csv_path = dir.path().join("c.csv");
        std::fs::write(
            &csv_path,
            "code,name,description,parent\nM,Maths,,\nM1,Algebra,Equations.,M\n",
        )
        .unwrap();
        for p in [&toml_path, &json_path, &csv_path] {
            let t = Taxonomy::load(p).unwrap();
            assert_eq!(t.terms.len(), 2, "{}", p.display());
            assert_eq!(t.rankable(), vec![1]);
        }
        let csv = Taxonomy::load(&csv_path).unwrap();
        assert_eq!(csv.name, "c");
        assert_eq!(csv.terms[1].embedding_text(), "Algebra: Equations.");
    }

    #[test]
    fn bad_taxonomies_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let xml = dir.path().join("t.xml");
        std::fs::write(&xml, "<x/>").unwrap();
        let err = Taxonomy::load(&xml).unwrap_err().to_string();
        assert!(
            err.contains("t.xml") && err.contains("unknown taxonomy format"),
            "{err}"
        );
        let orphan = dir.path().join("o.csv");
        std::fs::write(&orphan, "code,name,parent\nA,Alpha,Z\n").unwrap();
        let err = Taxonomy::load(&orphan).unwrap_err().to_string();
        assert!(err.contains("o.csv") && err.contains("\"Z\""), "{err}");
        let bad_csv = dir.path().join("b.csv");
        std::fs::write(&bad_csv, "code,title\nA,Alpha\n").unwrap();
        let err = Taxonomy::load(&bad_csv).unwrap_err().to_string();
        assert!(err.contains("b.csv") && err.contains("code,name"), "{err}");
        let bad_toml = dir.path().join("b.toml");
        std::fs::write(&bad_toml, "[taxonomy]\nname = \"x\"\n[[term]]\ncode = 1\n").unwrap();
        let err = Taxonomy::load(&bad_toml).unwrap_err().to_string();
        assert!(err.contains("b.toml") && err.contains("line 4"), "{err}");
    }
}
