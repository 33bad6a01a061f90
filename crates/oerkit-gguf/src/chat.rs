//! The chat template stored in a GGUF file (`tokenizer.chat_template`), rendered with minijinja the
//! way transformers renders it (trim_blocks, lstrip_blocks, one trailing newline dropped, Python
//! string methods). Files without a template fall back to llama.cpp's built-in template for their
//! architecture where llama.cpp has one (Gemma).

use minijinja::{Environment, ErrorKind, Value};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;

/// One chat turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// Where a template came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateSource {
    /// `tokenizer.chat_template` in the GGUF file.
    Gguf,
    /// llama.cpp's built-in template for the architecture (the file has none).
    BuiltinGemma,
}

/// llama.cpp's built-in `gemma` template (`llm_chat_apply_template`), written in Jinja: the system
/// text is merged into the first user turn, `assistant` is called `model`, contents are trimmed.
/// BOS is not part of it: the Gemma tokenizer adds BOS itself.
const GEMMA_BUILTIN: &str = r#"{%- if messages[0]['role'] == 'system' -%}
{%- set first_user_prefix = messages[0]['content'] | trim + '\n\n' -%}
{%- set loop_messages = messages[1:] -%}
{%- else -%}
{%- set first_user_prefix = '' -%}
{%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') + (message['content'] | trim) + '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{ '<start_of_turn>model\n' }}
{%- endif -%}"#;

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: TemplateSource,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles `template` (Jinja text). `bos_token`/`eos_token` are exposed to it, as transformers does.
    pub fn new(
        template: &str,
        source: TemplateSource,
        bos_token: &str,
        eos_token: &str,
    ) -> Result<Self> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(false)
            .build()
            .map_err(|e| Error::Template(format!("syntax settings: {e}")))?;
        env.set_syntax(syntax);
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> std::result::Result<Value, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_template_owned("chat", template.to_string())
            .map_err(|e| Error::Template(format!("cannot compile the template: {e:#}")))?;
        Ok(ChatTemplate {
            env,
            source,
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
        })
    }

    /// The template for a model: the GGUF's own, else a built-in one for the architecture, else
    /// `None` (the caller then has to tokenize plain prompts).
    pub fn for_model(
        gguf_template: Option<&str>,
        architecture: &str,
        bos_token: &str,
        eos_token: &str,
    ) -> Result<Option<Self>> {
        match gguf_template {
            Some(text) => Self::new(text, TemplateSource::Gguf, bos_token, eos_token).map(Some),
            None if architecture.starts_with("gemma") => Self::new(
                GEMMA_BUILTIN,
                TemplateSource::BuiltinGemma,
                bos_token,
                eos_token,
            )
            .map(Some),
            None => Ok(None),
        }
    }

    /// The template of a GGUF file, from its metadata (see [`ChatTemplate::for_model`]).
    pub fn from_metadata(
        md: &crate::meta::Metadata,
        tokenizer: &Tokenizer,
    ) -> Result<Option<Self>> {
        let template = crate::meta::opt_string(md, "tokenizer.chat_template")?;
        let architecture = crate::meta::string(md, "general.architecture")?;
        let text = |id: Option<u32>| {
            id.and_then(|id| tokenizer.token_text(id))
                .unwrap_or_default()
                .to_string()
        };
        Self::for_model(
            template.as_deref(),
            &architecture,
            &text(tokenizer.bos_id()),
            &text(tokenizer.eos_id()),
        )
    }

    /// Where the template came from.
    pub fn source(&self) -> TemplateSource {
        self.source
    }

    /// Renders the conversation; with `add_generation_prompt`, ends with the assistant's turn opener.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        if messages.is_empty() {
            return Err(Error::Template("no messages to render".to_string()));
        }
        let template = self
            .env
            .get_template("chat")
            .map_err(|e| Error::Template(e.to_string()))?;
        template
            .render(minijinja::context! {
                messages => Value::from(minijinja::value::Serde(messages)),
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos_token.as_str(),
                eos_token => self.eos_token.as_str(),
            })
            .map_err(|e| Error::Template(format!("cannot render: {e:#}")))
    }
}
