//! Translation (and summaries) with an instruction LLM: prompts rendered from versioned templates, the
//! model's chat template applied by the model, outputs cleaned of the chatter small models add.

use std::time::Instant;

use serde_json::json;

use crate::engine::{
    EngineError, EngineInfo, TranslateOutput, TranslateRequest, TranslationEngine,
};
use crate::languages::language_name;
use crate::prompts::PromptSet;

/// One chat turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.to_string(),
            content: content.into(),
        }
    }
}

/// One generated reply.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatReply {
    pub text: String,
    pub tokens: usize,
}

/// An instruction LLM that answers several conversations at once (greedy unless configured otherwise).
pub trait ChatModel {
    /// Engine name, model id and file hash, decoding parameters.
    fn info(&self) -> EngineInfo;
    /// Answers each conversation; `max_new_tokens` bounds every reply, which also ends at any of `stop`.
    fn chat(
        &mut self,
        conversations: &[Vec<ChatMessage>],
        max_new_tokens: usize,
        stop: &[String],
    ) -> Result<Vec<ChatReply>, EngineError>;
    /// Tokens in `text` (to bound replies and fit the context).
    fn count_tokens(&self, text: &str) -> usize;
    /// The context window in tokens (prompt and reply together); `None`: unknown, no check.
    fn context_length(&self) -> Option<usize> {
        None
    }
    /// Tokens of the whole prompt of `conversation` as the model will see it (chat template
    /// included). The default counts the message texts only; models that know their template
    /// should count it exactly.
    fn count_prompt_tokens(&self, conversation: &[ChatMessage]) -> usize {
        conversation
            .iter()
            .map(|m| self.count_tokens(&m.content))
            .sum()
    }
}

/// Reply budget for a source of `source_tokens` tokens: translations rarely exceed twice the
/// source length in tokens; the floor covers short segments.
fn reply_budget(source_tokens: usize) -> usize {
    (source_tokens * 2 + 16).min(1024)
}

/// A [`TranslationEngine`] over a chat model.
pub struct LlmTranslator<M: ChatModel> {
    pub model: M,
    pub prompts: PromptSet,
    pub batch: usize,
}

impl<M: ChatModel> LlmTranslator<M> {
    pub fn new(model: M, prompts: PromptSet, batch: usize) -> Self {
        LlmTranslator {
            model,
            prompts,
            batch: batch.max(1),
        }
    }

    fn conversation(
        &self,
        req: &TranslateRequest,
    ) -> Result<(Vec<ChatMessage>, String), EngineError> {
        let vars = json!({
            "source": language_name(&req.source_lang),
            "target": language_name(&req.target_lang),
            "text": req.text,
            "context": req.context,
            "has_tags": oerkit_document::placeholder::contains_token(&req.text),
        });
        let prompt = self
            .prompts
            .render("translate", &vars)
            .map_err(|e| EngineError::Failed(e.to_string()))?;
        Ok((
            vec![
                ChatMessage::new("system", prompt.system),
                ChatMessage::new("user", prompt.user),
            ],
            prompt.id,
        ))
    }
}

impl<M: ChatModel> TranslationEngine for LlmTranslator<M> {
    fn info(&self) -> EngineInfo {
        let mut info = self.model.info();
        info.prompt = self
            .prompts
            .get("translate")
            .ok()
            .map(|t| format!("translate@{}", t.version));
        info
    }

    fn translate(
        &mut self,
        batch: &[TranslateRequest],
    ) -> Result<Vec<TranslateOutput>, EngineError> {
        let mut conversations = Vec::with_capacity(batch.len());
        let mut longest = 0;
        for req in batch {
            self.check_fits(req)?;
            conversations.push(self.conversation(req)?.0);
            longest = longest.max(self.model.count_tokens(&req.text));
        }
        let max_new = reply_budget(longest);
        let start = Instant::now();
        // A source without blank lines wants an answer without them: stopping at the first blank line saves the
        // tokens small models spend on notes after the translation.
        let stop = if batch.iter().all(|r| !r.text.contains("\n\n")) {
            vec!["\n\n".to_string()]
        } else {
            Vec::new()
        };
        let replies = self.model.chat(&conversations, max_new, &stop)?;
        let seconds = start.elapsed().as_secs_f64();
        let total_tokens: usize = replies.iter().map(|r| r.tokens).sum::<usize>().max(1);
        Ok(batch
            .iter()
            .zip(replies)
            .map(|(req, reply)| TranslateOutput {
                text: clean_reply(&reply.text, &req.text),
                tokens: Some(reply.tokens),
                seconds: seconds * reply.tokens as f64 / total_tokens as f64,
            })
            .collect())
    }

    fn preferred_batch(&self) -> usize {
        self.batch
    }

    /// The prompt plus the reply budget must fit the model's context window.
    fn check_fits(&self, request: &TranslateRequest) -> Result<(), EngineError> {
        let Some(limit) = self.model.context_length() else {
            return Ok(());
        };
        let (conversation, _) = self.conversation(request)?;
        let tokens = self.model.count_prompt_tokens(&conversation)
            + reply_budget(self.model.count_tokens(&request.text));
        if tokens > limit {
            Err(EngineError::TooLong { tokens, limit })
        } else {
            Ok(())
        }
    }
}

/// Writes an abstract of `text` in `target_lang` with at most about `words` words.
pub fn summarize<M: ChatModel>(
    model: &mut M,
    prompts: &PromptSet,
    text: &str,
    source_lang: &str,
    target_lang: &str,
    words: usize,
) -> Result<(String, String), EngineError> {
    let vars = json!({
        "source": language_name(source_lang),
        "target": language_name(target_lang),
        "text": text,
        "words": words,
    });
    let prompt = prompts
        .render("summarize", &vars)
        .map_err(|e| EngineError::Failed(e.to_string()))?;
    let conv = vec![
        ChatMessage::new("system", prompt.system),
        ChatMessage::new("user", prompt.user),
    ];
    // Words are ~1.5 tokens in European languages; leave room to finish the last sentence.
    let max_new = words * 2 + 32;
    let reply = model
        .chat(&[conv], max_new, &[])?
        .into_iter()
        .next()
        .ok_or_else(|| EngineError::Failed("no reply".into()))?;
    Ok((reply.text.trim().to_string(), prompt.id))
}

/// Removes what small chat models wrap around a translation: a "Translation:" label, quotes the source
/// did not have, and any further lines when the source is a single line.
pub fn clean_reply(reply: &str, source: &str) -> String {
    let mut text = reply.trim();
    for label in [
        "Translation:",
        "Traducción:",
        "Translated text:",
        "Here is the translation:",
    ] {
        if let Some(rest) = text.strip_prefix(label) {
            text = rest.trim_start();
        }
    }
    let mut text = text.to_string();
    if !source.contains("\n\n") {
        if let Some(pos) = text.find("\n\n") {
            text.truncate(pos);
        }
    }
    if !source.contains('\n') {
        if let Some(first) = text.lines().map(str::trim).find(|l| !l.is_empty()) {
            text = first.to_string();
        }
    }
    let quoted = |s: &str| {
        s.len() >= 2
            && ((s.starts_with('"') && s.ends_with('"'))
                || (s.starts_with('“') && s.ends_with('”')))
    };
    if quoted(&text) && !quoted(source.trim()) {
        let mut chars = text.chars();
        chars.next();
        chars.next_back();
        text = chars.as_str().to_string();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model whose tokens are words and whose context holds `context` of them.
    struct Words {
        context: Option<usize>,
    }

    impl ChatModel for Words {
        fn info(&self) -> EngineInfo {
            EngineInfo {
                engine: "test-words".into(),
                model: "none".into(),
                model_sha256: None,
                decoding: json!({}),
                prompt: None,
            }
        }
        fn chat(
            &mut self,
            conversations: &[Vec<ChatMessage>],
            _max_new_tokens: usize,
            _stop: &[String],
        ) -> Result<Vec<ChatReply>, EngineError> {
            Ok(conversations
                .iter()
                .map(|_| ChatReply {
                    text: "ok".into(),
                    tokens: 1,
                })
                .collect())
        }
        fn count_tokens(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
        fn context_length(&self) -> Option<usize> {
            self.context
        }
    }

    fn req(text: &str) -> TranslateRequest {
        TranslateRequest {
            text: text.into(),
            source_lang: "en".into(),
            target_lang: "es".into(),
            context: String::new(),
        }
    }

    #[test]
    fn prompt_and_reply_budget_must_fit_the_context() {
        let long = "word ".repeat(200);
        let mut t = LlmTranslator::new(Words { context: Some(300) }, PromptSet::shipped(), 4);
        assert!(t.check_fits(&req("A short sentence.")).is_ok());
        // 200 words of text alone need 200 + 2 * 200 + 16 tokens with the reply
        match t.check_fits(&req(&long)) {
            Err(EngineError::TooLong { tokens, limit }) => {
                assert!(tokens >= 616, "{tokens}");
                assert_eq!(limit, 300);
            }
            other => panic!("expected TooLong, got {other:?}"),
        }
        assert!(matches!(
            t.translate(&[req("fine"), req(&long)]),
            Err(EngineError::TooLong { .. })
        ));
        let unknown = LlmTranslator::new(Words { context: None }, PromptSet::shipped(), 4);
        assert!(unknown.check_fits(&req(&long)).is_ok());
    }

    #[test]
    fn cleans_labels_quotes_and_extra_lines() {
        assert_eq!(
            clean_reply("Translation: \"Hola\"\n\nNote: informal.", "Hello"),
            "Hola"
        );
        assert_eq!(clean_reply("\"Hola\"", "\"Hello\""), "\"Hola\"");
        assert_eq!(clean_reply("a\nb", "x\ny"), "a\nb");
    }
}
