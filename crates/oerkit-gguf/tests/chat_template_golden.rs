//! Golden tests: the chat template from GGUF metadata, rendered with minijinja, against
//! transformers' rendering and llama.cpp's ids (`fixtures/gguf-tokenizers`, `chat`).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{TestModel, GEMMA, QWEN, SMOLLM2};
use oerkit_gguf::{ChatMessage, ChatTemplate, TemplateSource, Tokenizer};

fn load(model: &TestModel) -> (serde_json::Value, Tokenizer, ChatTemplate) {
    let fixture = common::read_json(&format!("gguf-tokenizers/tokens.{}.json", model.key));
    let (content, _) = oerkit_gguf::meta::read_header(&common::model_path(model)).unwrap();
    let tok = Tokenizer::from_metadata(&content.metadata).unwrap();
    let template = ChatTemplate::from_metadata(&content.metadata, &tok)
        .unwrap()
        .expect("every shipped model has a template");
    (fixture["chat"].clone(), tok, template)
}

fn messages(chat: &serde_json::Value) -> Vec<ChatMessage> {
    serde_json::from_value(chat["messages"].clone()).unwrap()
}

fn check_gguf_template(model: &TestModel) {
    let (chat, tok, template) = load(model);
    assert_eq!(template.source(), TemplateSource::Gguf);
    let rendered = template.render(&messages(&chat), true).unwrap();
    assert_eq!(rendered, chat["hf_rendered"].as_str().unwrap());
    let ids = tok.encode(&rendered, true, true);
    assert_eq!(ids, common::ids(&chat["llamacpp_ids_of_hf_rendered"]));
    assert_eq!(ids, common::ids(&chat["hf_ids"]));
}

#[test]
fn smollm2_chat_template_matches_transformers() {
    check_gguf_template(&SMOLLM2);
}

#[test]
fn qwen_chat_template_matches_transformers() {
    check_gguf_template(&QWEN);
}

#[test]
fn gemma3_builtin_template_matches_llama_cpp() {
    let (chat, tok, template) = load(&GEMMA);
    assert_eq!(template.source(), TemplateSource::BuiltinGemma);
    let rendered = template.render(&messages(&chat), true).unwrap();
    assert_eq!(
        rendered,
        chat["llamacpp_builtin_rendered"].as_str().unwrap()
    );
    let ids = tok.encode(&rendered, true, true);
    assert_eq!(ids, common::ids(&chat["llamacpp_builtin_ids_add_bos"]));
}

#[test]
fn default_system_prompt_is_injected_without_system_message() {
    let (_, _, template) = load(&QWEN);
    let rendered = template.render(&[ChatMessage::user("Hola")], true).unwrap();
    assert_eq!(
        rendered,
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHola<|im_end|>\n<|im_start|>assistant\n"
    );
}
