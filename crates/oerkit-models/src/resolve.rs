//! One entry point for a `--model` argument: a local path or a catalog id.

use crate::catalog::Catalog;
use crate::error::{CatalogError, FetchError, ResolveError};
use crate::progress::Progress;
use crate::store::{resolve_local, ModelStore, ResolvedModel};
use std::path::Path;

/// Any failure to turn a `--model` argument into files.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
}

/// Resolves `spec` as given to `--model`: an existing file or directory is used in place (no
/// catalog, no hashing); otherwise it must be a catalog id, which is fetched if not cached.
/// Something that looks like a path (has a `/` or ends in `.gguf`) but does not exist is
/// reported as a missing path, not as an unknown id.
pub fn resolve_model(
    spec: &str,
    catalog: &Catalog,
    store: &ModelStore,
    progress: &Progress,
) -> Result<ResolvedModel, ModelError> {
    let path = Path::new(spec);
    if path.exists() {
        return Ok(resolve_local(path)?);
    }
    match catalog.get(spec) {
        Ok(entry) => Ok(store.ensure(entry, progress)?),
        Err(err) => {
            let looks_like_path = spec.contains(std::path::MAIN_SEPARATOR)
                || spec.contains('/')
                || spec.ends_with(".gguf")
                || spec.ends_with(".safetensors");
            if looks_like_path {
                Err(ResolveError::NotFound {
                    path: path.to_path_buf(),
                }
                .into())
            } else {
                Err(err.into())
            }
        }
    }
}
