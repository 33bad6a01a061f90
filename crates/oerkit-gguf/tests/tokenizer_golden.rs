//! Golden tests: the GGUF-metadata tokenizer against llama.cpp's ids and detokenization
//! (`fixtures/gguf-tokenizers`), for every shipped GGUF model.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{TestModel, GEMMA, QWEN, SMOLLM2};
use oerkit_gguf::Tokenizer;

fn check(model: &TestModel) {
    let fixture = common::read_json(&format!("gguf-tokenizers/tokens.{}.json", model.key));
    let (content, _) = oerkit_gguf::meta::read_header(&common::model_path(model)).unwrap();
    let tok = Tokenizer::from_metadata(&content.metadata).unwrap();

    let eog: Vec<u32> = fixture["meta"]["llamacpp_eog_ids"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.parse().unwrap())
        .collect();
    let ours: Vec<u32> = tok.end_of_generation_ids().iter().copied().collect();
    assert_eq!(ours, eog, "{}: end-of-generation set", model.key);

    let mut failures = Vec::new();
    let cases = fixture["cases"].as_array().unwrap();
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let name = case["source"].as_str().unwrap();
        let want = common::ids(&case["llamacpp_ids"]);
        let got = tok.encode(text, true, true);
        if got != want {
            failures.push(format!("{name} special: got {got:?}\n   want {want:?}"));
        }
        let want_plain = match case.get("llamacpp_ids_no_special") {
            Some(v) => common::ids(v),
            None => want.clone(),
        };
        let got_plain = tok.encode(text, true, false);
        if got_plain != want_plain {
            failures.push(format!(
                "{name} no-special: got {got_plain:?}\n   want {want_plain:?}"
            ));
        }
        let decoded = tok.decode(&want, false);
        let want_decoded = case["llamacpp_detokenize_special"].as_str().unwrap();
        if decoded != want_decoded {
            failures.push(format!(
                "{name} decode: got {decoded:?}\n   want {want_decoded:?}"
            ));
        }
        // transformers decodes with its own notion of "special": it keeps `</s>`, which llama.cpp
        // (and we) re-type as CONTROL end-of-generation. Compare only where that token is absent.
        let retyped = tok.token_id("</s>");
        let skipped = tok.decode(&want, true);
        let want_skipped = case["hf_decode_skip_special"].as_str().unwrap();
        if skipped != want_skipped && !retyped.is_some_and(|id| want.contains(&id)) {
            failures.push(format!(
                "{name} decode skip_special: got {skipped:?}\n   want {want_skipped:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}: {} of {} checks failed:\n{}",
        model.key,
        failures.len(),
        cases.len() * 4,
        failures.join("\n")
    );
}

#[test]
fn smollm2_tokenizer_matches_llama_cpp() {
    check(&SMOLLM2);
}

#[test]
fn qwen_tokenizer_matches_llama_cpp() {
    check(&QWEN);
}

#[test]
fn gemma3_tokenizer_matches_llama_cpp() {
    check(&GEMMA);
}
