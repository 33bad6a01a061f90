//! The engine adapter and `open_checkpoint` on the Marian fixture: placeholders re-inserted around
//! translated runs, provenance, and clear errors for broken checkpoint directories.

// Test helpers outside #[test] functions unwrap too: a failed setup step is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use oerkit_seq2seq::{open_checkpoint, Seq2SeqOptions};
use oerkit_translate::TranslateRequest;

fn model_dir() -> PathBuf {
    oerkit_testkit::require_shared();
    oerkit_testkit::fixture("marian-tiny-en-es/model")
}

fn request(text: &str) -> TranslateRequest {
    TranslateRequest {
        text: text.into(),
        source_lang: "en".into(),
        target_lang: "es".into(),
        context: String::new(),
    }
}

fn greedy_reference(name: &str) -> String {
    let path = oerkit_testkit::fixture("marian-tiny-en-es/reference/greedy.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["name"] == name)
        .unwrap()["decoded"]
        .as_str()
        .unwrap()
        .to_string()
}

fn opts() -> Seq2SeqOptions {
    Seq2SeqOptions {
        num_beams: Some(1),
        max_new_tokens: Some(24),
        ..Seq2SeqOptions::default()
    }
}

#[test]
fn placeholders_are_kept_around_translated_runs() {
    let mut engine = open_checkpoint(&model_dir(), &opts()).unwrap();
    let out = engine
        .translate(&[
            request("<g1>Probability</g1> <x2/>"),
            request("Probability"),
        ])
        .unwrap();
    let word = greedy_reference("one-word");
    assert_eq!(out[1].text, word);
    assert_eq!(out[0].text, format!("<g1>{word}</g1> <x2/>"));
    let info = engine.info();
    assert_eq!(info.engine, "marian");
    assert_eq!(info.decoding["num_beams"], 1);
    let params: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(oerkit_testkit::fixture(
            "marian-tiny-en-es/reference/generation_params.json",
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        info.model_sha256.as_deref(),
        params["files_sha256"]["model.safetensors"].as_str()
    );
}

fn copy_checkpoint(dir: &Path) -> PathBuf {
    let copy = dir.join("ckpt");
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(model_dir()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    copy
}

fn open_err(dir: &Path) -> String {
    match open_checkpoint(dir, &opts()) {
        Ok(_) => panic!("{} was accepted", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn broken_checkpoints_are_refused_with_the_file_named() {
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = copy_checkpoint(tmp.path());
    std::fs::remove_file(ckpt.join("target.spm")).unwrap();
    let err = open_err(&ckpt);
    assert!(
        err.contains("target.spm") && err.contains("missing"),
        "{err}"
    );
    std::fs::write(ckpt.join("target.spm"), b"\x0a\xff").unwrap();
    let err = open_err(&ckpt);
    assert!(
        err.contains("target.spm") && err.contains("not a SentencePiece model"),
        "{err}"
    );
    std::fs::copy(model_dir().join("target.spm"), ckpt.join("target.spm")).unwrap();
    std::fs::write(ckpt.join("config.json"), "{\"model_type\": \"marian\",").unwrap();
    let err = open_err(&ckpt);
    assert!(
        err.contains("config.json") && err.contains("line 1"),
        "{err}"
    );
    std::fs::write(ckpt.join("config.json"), "{\"model_type\": \"bart\"}").unwrap();
    let err = open_err(&ckpt);
    assert!(
        err.contains("\"bart\"") && err.contains("supported: marian"),
        "{err}"
    );
    std::fs::write(ckpt.join("model.safetensors"), b"not safetensors").unwrap();
    std::fs::copy(model_dir().join("config.json"), ckpt.join("config.json")).unwrap();
    let err = open_err(&ckpt);
    assert!(
        err.contains("model.safetensors") && err.contains("cannot read the weights"),
        "{err}"
    );
    // A download cut short: the header is whole, the tensors it lists run past the end.
    let whole = std::fs::read(model_dir().join("model.safetensors")).unwrap();
    std::fs::write(ckpt.join("model.safetensors"), &whole[..whole.len() / 2]).unwrap();
    let err = open_err(&ckpt);
    assert!(
        err.contains("model.safetensors")
            && err.contains("past the end of the file")
            && err.contains("download it again"),
        "{err}"
    );
}
