//! The translation stage: a document's units go to a [`TranslationEngine`] in batches; every output is
//! checked for its placeholders and repaired when an engine broke them (never written broken); every
//! unit's result carries its provenance (engine, model file hash, decoding parameters, prompt version,
//! time); a journal makes an interrupted batch resume where it stopped.
//!
//! Depends on `oerkit-document` for units and placeholders, and on no engine: engines implement
//! [`TranslationEngine`] (the GGUF LLM adapter is [`llm::LlmTranslator`] over any [`llm::ChatModel`]);
//! [`apertium::ApertiumEngine`] drives an installed Apertium through its command line.

pub mod apertium;
pub mod engine;
pub mod journal;
pub mod languages;
pub mod llm;
pub mod pipeline;
pub mod prompts;

pub use engine::{EngineError, EngineInfo, TranslateOutput, TranslateRequest, TranslationEngine};
pub use pipeline::{translate_document, DocumentTranslation, PipelineOptions, Repair, UnitResult};
pub use prompts::{PromptSet, PromptTemplate};
