//! Test helpers shared by every oerkit crate: locating the read-only `shared/` tree
//! (corpora, fixtures) that lives beside the repository and is never copied into it.

use std::path::{Path, PathBuf};

/// Root of the shared corpora and fixtures: `$OERKIT_SHARED`, else `../shared` beside the workspace.
pub fn shared_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("OERKIT_SHARED") {
        return PathBuf::from(dir);
    }
    workspace_root().join("..").join("shared")
}

/// The workspace root (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

/// `shared_root()/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    shared_root().join("fixtures").join(rel)
}

/// `shared_root()/corpora/<rel>`.
pub fn corpus(rel: &str) -> PathBuf {
    shared_root().join("corpora").join(rel)
}

/// Fails loudly when the shared tree is missing: a golden test that silently skips cannot fail.
pub fn require_shared() -> PathBuf {
    let root = shared_root();
    assert!(
        root.join("fixtures").is_dir() && root.join("corpora").is_dir(),
        "shared test data not found at {} (set OERKIT_SHARED to the folder holding corpora/ and fixtures/)",
        root.display()
    );
    root
}
