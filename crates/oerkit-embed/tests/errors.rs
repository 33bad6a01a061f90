//! Bad model folders and ids give errors that name the file and say what to do.

#![allow(clippy::unwrap_used)] // tests may unwrap

use oerkit_embed::{EmbedError, SentenceEmbedder};
use std::fs;
use std::path::Path;

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, text).unwrap();
}

/// The three required files, with placeholder tokenizer and weights (the checks below fire
/// before either is read).
fn folder_with_config(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "config.json", config);
    write(dir.path(), "tokenizer.json", "{}");
    write(dir.path(), "model.safetensors", "");
    dir
}

const BERT_CONFIG: &str = r#"{
  "model_type": "bert", "architectures": ["BertModel"], "hidden_act": "gelu",
  "hidden_size": 384, "intermediate_size": 1536, "num_attention_heads": 12,
  "num_hidden_layers": 6, "max_position_embeddings": 512, "type_vocab_size": 2,
  "vocab_size": 30522, "hidden_dropout_prob": 0.1, "initializer_range": 0.02,
  "layer_norm_eps": 1e-12, "pad_token_id": 0
}"#;

fn load_err(dir: &Path) -> EmbedError {
    SentenceEmbedder::load(dir).expect_err("loading must fail")
}

#[test]
fn missing_folder_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-model");
    let err = load_err(&missing);
    assert!(
        matches!(err, EmbedError::ModelDirNotFound { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("no-such-model"), "{message}");
    assert!(message.contains("oerkit models fetch"), "{message}");
}

#[test]
fn each_missing_file_is_named() {
    for missing in ["config.json", "tokenizer.json", "model.safetensors"] {
        let dir = folder_with_config(BERT_CONFIG);
        fs::remove_file(dir.path().join(missing)).unwrap();
        let err = load_err(dir.path());
        match &err {
            EmbedError::MissingFile { path } => assert_eq!(path, &dir.path().join(missing)),
            other => panic!("{missing}: expected MissingFile, got {other:?}"),
        }
        assert!(err.to_string().contains(missing), "{err}");
    }
}

#[test]
fn unsupported_architecture_is_refused_by_name() {
    let dir =
        folder_with_config(r#"{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}"#);
    let err = load_err(dir.path());
    match &err {
        EmbedError::UnsupportedArchitecture { path, found } => {
            assert_eq!(path, &dir.path().join("config.json"));
            assert_eq!(found, "llama");
        }
        other => panic!("expected UnsupportedArchitecture, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("config.json") && message.contains("`llama`"),
        "{message}"
    );
    assert!(message.contains("bert"), "{message}");
}

#[test]
fn broken_config_json_reports_line_and_column() {
    let dir = folder_with_config("{\n  \"model_type\": \"bert\",\n  oops\n}");
    let err = load_err(dir.path());
    match &err {
        EmbedError::Json { line, column, .. } => {
            assert_eq!(*line, 3);
            assert!(*column > 0);
        }
        other => panic!("expected Json, got {other:?}"),
    }
    assert!(err.to_string().contains("config.json:3:"), "{err}");
}

#[test]
fn bert_config_missing_a_field_is_a_config_error() {
    let dir = folder_with_config(r#"{"model_type": "bert", "hidden_size": 384}"#);
    let err = load_err(dir.path());
    assert!(matches!(err, EmbedError::Json { .. }), "{err:?}");
    assert!(err.to_string().contains("BERT config"), "{err}");
}

#[test]
fn cls_pooling_is_refused() {
    let dir = folder_with_config(BERT_CONFIG);
    write(
        dir.path(),
        "modules.json",
        r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
            {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}]"#,
    );
    write(
        dir.path(),
        "1_Pooling/config.json",
        r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#,
    );
    let err = load_err(dir.path());
    match &err {
        EmbedError::UnsupportedPooling { path, found } => {
            assert_eq!(path, &dir.path().join("1_Pooling").join("config.json"));
            assert_eq!(found, "cls_token");
        }
        other => panic!("expected UnsupportedPooling, got {other:?}"),
    }
}

#[test]
fn sequence_limit_beyond_the_position_table_is_refused() {
    let dir = folder_with_config(BERT_CONFIG);
    write(
        dir.path(),
        "sentence_bert_config.json",
        r#"{"max_seq_length": 1024}"#,
    );
    let err = load_err(dir.path());
    assert!(matches!(err, EmbedError::InvalidConfig { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("sentence_bert_config.json") && message.contains("512"),
        "{message}"
    );
}

#[test]
fn unreadable_tokenizer_is_named() {
    let dir = folder_with_config(BERT_CONFIG);
    write(dir.path(), "tokenizer.json", "not json");
    let err = load_err(dir.path());
    match &err {
        EmbedError::Tokenizer { path, .. } => assert_eq!(path, &dir.path().join("tokenizer.json")),
        other => panic!("expected Tokenizer, got {other:?}"),
    }
}

/// A real tokenizer and config with truncated weights: the weights file is named.
#[test]
fn truncated_weights_are_named() {
    let cached = SentenceEmbedder::load_cached("all-minilm-l6-v2");
    assert!(
        cached.is_ok(),
        "needs the cached all-minilm-l6-v2: {cached:?}"
    );
    let store = oerkit_models::ModelStore::from_env().unwrap();
    let source = store.model_dir("all-minilm-l6-v2");
    let dir = tempfile::tempdir().unwrap();
    for name in ["config.json", "tokenizer.json"] {
        fs::copy(source.join(name), dir.path().join(name)).unwrap();
    }
    let weights = fs::read(source.join("model.safetensors")).unwrap();
    fs::write(
        dir.path().join("model.safetensors"),
        &weights[..weights.len() / 2],
    )
    .unwrap();
    let err = load_err(dir.path());
    match &err {
        EmbedError::Weights { path, .. } => {
            assert_eq!(path, &dir.path().join("model.safetensors"));
        }
        other => panic!("expected Weights, got {other:?}"),
    }
    assert!(err.to_string().contains("oerkit models verify"), "{err}");
}

#[test]
fn a_catalog_model_that_is_not_bert_is_refused_without_loading() {
    let err = SentenceEmbedder::load_cached("smollm2-135m-instruct").expect_err("not an encoder");
    assert!(
        matches!(err, EmbedError::NotAnEmbeddingModel { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("llama"), "{err}");
}

#[test]
fn an_unknown_model_id_is_named() {
    let err = SentenceEmbedder::load_cached("no-such-embedder").expect_err("unknown id");
    assert!(matches!(err, EmbedError::Model { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-embedder"), "{err}");
}
