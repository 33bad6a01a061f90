//! The seam between the translation stage and the engines that produce text.

use serde::{Deserialize, Serialize};

/// What produced a translation, recorded with every output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineInfo {
    /// `gguf`, `marian`, `apertium`…
    pub engine: String,
    /// Catalog id or path of the model.
    pub model: String,
    /// sha256 of the model file, when there is one file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_sha256: Option<String>,
    /// Decoding parameters (temperature, top_p, seed, max tokens, beam…).
    pub decoding: serde_json::Value,
    /// `name@version` of the prompt template, for prompt-driven engines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
}

/// One segment to translate. `text` carries placeholder tokens (`<g1>…</g1>`, `<x2/>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateRequest {
    pub text: String,
    pub source_lang: String,
    pub target_lang: String,
    /// Where the text sits (heading path, element), which may help the engine.
    pub context: String,
}

/// One engine output.
#[derive(Debug, Clone, PartialEq)]
pub struct TranslateOutput {
    pub text: String,
    /// Generated tokens, when the engine counts them.
    pub tokens: Option<usize>,
    /// Wall time spent on this segment (a batch's time shared out by generated length).
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Failed(String),
    #[error("the text is too long for the model's context ({tokens} tokens, {limit} allowed)")]
    TooLong { tokens: usize, limit: usize },
}

/// Anything that turns source segments into target segments.
pub trait TranslationEngine {
    fn info(&self) -> EngineInfo;

    /// Translates a batch; one output per request, in order.
    fn translate(
        &mut self,
        batch: &[TranslateRequest],
    ) -> Result<Vec<TranslateOutput>, EngineError>;

    /// Whether `request` fits what the engine can take in one go (an LLM's context window, with
    /// room for the reply): `Err(EngineError::TooLong)` when it does not, and the pipeline then
    /// translates the unit in pieces. Engines without such a limit keep the default.
    fn check_fits(&self, _request: &TranslateRequest) -> Result<(), EngineError> {
        Ok(())
    }

    /// How many requests the engine prefers per call.
    fn preferred_batch(&self) -> usize {
        8
    }
}
