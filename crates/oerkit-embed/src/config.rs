//! Reading a sentence-transformers model folder: the BERT config, the sequence limit and the
//! pooling mode, with the same precedence sentence-transformers uses.

use crate::error::EmbedError;
use candle_transformers::models::bert;
use serde::Deserialize;
use std::fs;
use std::path::{Path, PathBuf};

/// What the folder says about how to run and pool the model.
#[derive(Debug, Clone)]
pub(crate) struct ModelFolder {
    pub bert: bert::Config,
    pub max_seq_len: usize,
    pub tokenizer_path: PathBuf,
    pub weights_path: PathBuf,
}

fn read_text(path: &Path) -> Result<String, EmbedError> {
    fs::read_to_string(path).map_err(|source| EmbedError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_json<T: for<'de> Deserialize<'de>>(
    path: &Path,
    what: &'static str,
) -> Result<T, EmbedError> {
    let text = read_text(path)?;
    serde_json::from_str(&text).map_err(|e| EmbedError::json(path.to_path_buf(), what, e))
}

fn required(dir: &Path, name: &str) -> Result<PathBuf, EmbedError> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(EmbedError::MissingFile { path })
    }
}

#[derive(Deserialize)]
struct ArchitectureProbe {
    model_type: Option<String>,
    #[serde(default)]
    architectures: Vec<String>,
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

#[derive(Deserialize)]
struct TokenizerConfig {
    model_max_length: Option<f64>,
}

#[derive(Deserialize)]
struct ModuleEntry {
    #[serde(default)]
    path: String,
    #[serde(rename = "type", default)]
    kind: String,
}

#[derive(Deserialize, Default)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
}

impl PoolingConfig {
    fn other_modes(&self) -> Vec<&'static str> {
        [
            (self.pooling_mode_cls_token, "cls_token"),
            (self.pooling_mode_max_tokens, "max_tokens"),
            (
                self.pooling_mode_mean_sqrt_len_tokens,
                "mean_sqrt_len_tokens",
            ),
            (self.pooling_mode_weightedmean_tokens, "weightedmean_tokens"),
            (self.pooling_mode_lasttoken, "lasttoken"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

impl ModelFolder {
    pub fn read(dir: &Path) -> Result<Self, EmbedError> {
        if !dir.is_dir() {
            return Err(EmbedError::ModelDirNotFound {
                path: dir.to_path_buf(),
            });
        }
        let config_path = required(dir, "config.json")?;
        let tokenizer_path = required(dir, "tokenizer.json")?;
        let weights_path = required(dir, "model.safetensors")?;

        // Check the architecture before the full parse, so a non-BERT config is reported as
        // such and not as a missing BERT field.
        let text = read_text(&config_path)?;
        let probe: ArchitectureProbe = serde_json::from_str(&text)
            .map_err(|e| EmbedError::json(config_path.clone(), "model config", e))?;
        let is_bert = match probe.model_type.as_deref() {
            Some(model_type) => model_type == "bert",
            None => probe.architectures.iter().any(|a| a.starts_with("Bert")),
        };
        if !is_bert {
            let found = probe
                .model_type
                .or_else(|| probe.architectures.first().cloned())
                .unwrap_or_else(|| "(none given)".to_string());
            return Err(EmbedError::UnsupportedArchitecture {
                path: config_path,
                found,
            });
        }
        let bert: bert::Config = serde_json::from_str(&text)
            .map_err(|e| EmbedError::json(config_path.clone(), "BERT config", e))?;

        check_pooling(dir)?;
        let max_seq_len = max_seq_len(dir, &bert)?;
        Ok(Self {
            bert,
            max_seq_len,
            tokenizer_path,
            weights_path,
        })
    }
}

/// sentence-transformers order: `sentence_bert_config.json` `max_seq_length`, else the
/// tokenizer's `model_max_length`, never beyond the position table.
fn max_seq_len(dir: &Path, bert: &bert::Config) -> Result<usize, EmbedError> {
    let positions = bert.max_position_embeddings;
    let st_path = dir.join("sentence_bert_config.json");
    if st_path.is_file() {
        let config: SentenceBertConfig = read_json(&st_path, "sentence-transformers config")?;
        if let Some(len) = config.max_seq_length {
            if len < 2 || len > positions {
                return Err(EmbedError::InvalidConfig {
                    path: st_path,
                    reason: format!(
                        "max_seq_length {len} must be between 2 and the model's \
                         max_position_embeddings ({positions})"
                    ),
                });
            }
            return Ok(len);
        }
    }
    let tok_path = dir.join("tokenizer_config.json");
    if tok_path.is_file() {
        let config: TokenizerConfig = read_json(&tok_path, "tokenizer config")?;
        // Tokenizers without a limit say 1e30 here; such values fall back to the positions.
        if let Some(len) = config.model_max_length.filter(|l| *l >= 2.0) {
            if len < positions as f64 {
                return Ok(len as usize);
            }
        }
    }
    Ok(positions)
}

/// The pooling module named in `modules.json` must be plain mean pooling; a folder without
/// `modules.json` (a bare Hugging Face model) is mean-pooled, as sentence-transformers does.
fn check_pooling(dir: &Path) -> Result<(), EmbedError> {
    let modules_path = dir.join("modules.json");
    if !modules_path.is_file() {
        return Ok(());
    }
    let modules: Vec<ModuleEntry> = read_json(&modules_path, "sentence-transformers modules list")?;
    let Some(pooling) = modules.iter().find(|m| m.kind.ends_with(".Pooling")) else {
        return Ok(());
    };
    let pooling_path = dir.join(&pooling.path).join("config.json");
    if !pooling_path.is_file() {
        return Err(EmbedError::MissingFile { path: pooling_path });
    }
    let config: PoolingConfig = read_json(&pooling_path, "pooling config")?;
    let others = config.other_modes();
    if !config.pooling_mode_mean_tokens || !others.is_empty() {
        let found = if others.is_empty() {
            "none".to_string()
        } else {
            others.join("+")
        };
        return Err(EmbedError::UnsupportedPooling {
            path: pooling_path,
            found,
        });
    }
    Ok(())
}
