//! Shared helpers of the integration tests: where model files and fixtures are.
#![allow(dead_code)]

use std::path::PathBuf;

/// A test model: catalog id (the cache folder name) and file name, as in `fixtures/MODELS.md`.
pub struct TestModel {
    pub key: &'static str,
    pub id: &'static str,
    pub file: &'static str,
}

pub const SMOLLM2: TestModel = TestModel {
    key: "smollm2",
    id: "smollm2-135m-instruct",
    file: "SmolLM2-135M-Instruct.Q4_1.gguf",
};
pub const QWEN: TestModel = TestModel {
    key: "qwen25coder",
    id: "qwen2.5-coder-0.5b-instruct",
    file: "qwen2.5-coder-0.5b-instruct-awq-q4_k_m.gguf",
};
pub const GEMMA: TestModel = TestModel {
    key: "gemma3",
    id: "gemma-3-270m",
    file: "gemma-3-270m-q4_k_m.gguf",
};

/// The model cache: `$OERKIT_MODELS`, else `<user cache>/oerkit/models` (as `oerkit-models` uses).
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("OERKIT_MODELS") {
        return PathBuf::from(dir);
    }
    dirs::cache_dir()
        .expect("no user cache directory; set OERKIT_MODELS")
        .join("oerkit")
        .join("models")
}

/// Path of a cached model file; fails (never skips) when it is absent.
pub fn model_path(model: &TestModel) -> PathBuf {
    let path = models_dir().join(model.id).join(model.file);
    assert!(
        path.is_file(),
        "model file {} not found: run scripts/fetch-models.sh (or `oerkit models fetch {}`), or set OERKIT_MODELS",
        path.display(),
        model.id
    );
    path
}

pub fn read_json(rel: &str) -> serde_json::Value {
    oerkit_testkit::require_shared();
    let path = oerkit_testkit::fixture(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn ids(value: &serde_json::Value) -> Vec<u32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect()
}

/// Four OpenStax-style sentences of different lengths, the prompts the engine tests decode.
pub const TEXTS: &[&str] = &[
    "The mean is the sum of the values divided by the number of values.",
    "Hello.",
    "A statistics professor collects information about the classification of her students.",
    "Data are individual items of information that come from a population or sample.",
];

/// Each text in a translate-to-Spanish chat prompt rendered with the model's template.
pub fn chat_prompts(model: &oerkit_gguf::GgufModel, texts: &[&str]) -> Vec<String> {
    texts
        .iter()
        .map(|t| {
            model
                .render_chat(&[
                    oerkit_gguf::ChatMessage::system("Translate the user's text into Spanish."),
                    oerkit_gguf::ChatMessage::user(*t),
                ])
                .expect("the chat template renders")
        })
        .collect()
}
