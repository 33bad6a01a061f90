//! `translate --model DIR` with Hugging Face encoder-decoder checkpoints (the tiny random OPUS-MT and
//! T5 fixtures): exactly the transformers reference texts, and clear errors for broken checkpoints.

use std::path::{Path, PathBuf};

use crate::common::{oerkit, path_str, run_ok};

fn fixture_dir(name: &str) -> PathBuf {
    oerkit_testkit::require_shared();
    oerkit_testkit::fixture(name)
}

fn fixture() -> PathBuf {
    fixture_dir("marian-tiny-en-es")
}

fn reference(fixture: &Path, name: &str) -> Vec<serde_json::Value> {
    let path = fixture.join("reference").join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Writes the fixture inputs as a lines file; returns it with the expected output lines.
fn inputs_and_expected(fixture: &Path, dir: &Path, expected_file: &str) -> (PathBuf, Vec<String>) {
    let inputs = reference(fixture, "inputs.jsonl");
    let expected = reference(fixture, expected_file);
    assert_eq!(inputs.len(), expected.len());
    let mut text = String::new();
    let mut want = Vec::new();
    for (input, out) in inputs.iter().zip(&expected) {
        let src = input["text"].as_str().unwrap();
        assert!(!src.contains('\n'), "one input per line");
        text.push_str(src);
        text.push('\n');
        // A line without letters is not sent to the engine and stays as it is.
        if src.chars().any(char::is_alphabetic) {
            // The engine translates the trimmed text and puts the model's text, itself trimmed (T5
            // decodes can end in a space), between the line's own outer spaces.
            let lead = &src[..src.len() - src.trim_start().len()];
            let trail = &src[src.trim_end().len()..];
            let decoded = out["decoded"].as_str().unwrap().trim();
            want.push(format!("{lead}{decoded}{trail}"));
        } else {
            want.push(src.to_string());
        }
    }
    let path = dir.join("inputs.txt");
    std::fs::write(&path, text).unwrap();
    (path, want)
}

/// Runs `oerkit translate --format lines` over a fixture's inputs (at most 24 new tokens, plus the
/// `extra` flags) in `dir`; returns the output lines, the lines `expected_file` gives and the output
/// folder.
fn translate_fixture_lines(
    fixture: &Path,
    dir: &Path,
    to: &str,
    expected_file: &str,
    extra: &[&str],
) -> (Vec<String>, Vec<String>, PathBuf) {
    let (input, want) = inputs_and_expected(fixture, dir, expected_file);
    let out = dir.join("out");
    let model = fixture.join("model");
    let mut args = vec![
        "translate",
        path_str(&input),
        "--to",
        to,
        "--from",
        "en",
        "--model",
        path_str(&model),
        "--format",
        "lines",
        "--segment",
        "paragraphs",
        "--license",
        "CC-BY-4.0",
        "--max-tokens",
        "24",
        "--out",
        path_str(&out),
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
    let got = std::fs::read_to_string(out.join("inputs.txt")).unwrap();
    let got = got.split_terminator('\n').map(str::to_string).collect();
    (got, want, out)
}

/// Compares every output line of `--beam beam` with the reference file.
fn translate_lines(fixture: &Path, to: &str, beam: &str, expected_file: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (got, want, _) =
        translate_fixture_lines(fixture, dir.path(), to, expected_file, &["--beam", beam]);
    assert_eq!(got.len(), want.len());
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "line {k}");
    }
}

#[test]
fn greedy_translation_equals_the_transformers_reference() {
    translate_lines(&fixture(), "es", "1", "greedy.jsonl");
}

#[test]
fn beam4_translation_equals_the_transformers_reference() {
    translate_lines(&fixture(), "es", "4", "beam4.jsonl");
}

/// The T5 fixture's inputs carry their own task prefixes (`summarize: `, `translate English to
/// German: `), which the engine keeps as written; all 40 outputs are exact, greedy and beam 4.
#[test]
fn t5_greedy_translation_equals_the_transformers_reference() {
    translate_lines(&fixture_dir("t5-tiny"), "de", "1", "greedy.jsonl");
}

#[test]
fn t5_beam4_translation_equals_the_transformers_reference() {
    translate_lines(&fixture_dir("t5-tiny"), "de", "4", "beam4.jsonl");
}

/// A writable copy of the fixture checkpoint to break.
fn checkpoint_copy(dir: &Path) -> PathBuf {
    let copy = dir.join("ckpt");
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(fixture().join("model")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    copy
}

fn translate_err(model: &Path) -> String {
    translate_err_with(model, &[])
}

/// stderr of a `translate --model <model>` (plus `extra` flags) that must fail.
fn translate_err_with(model: &Path, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "Probability is a number.\n").unwrap();
    let out = oerkit()
        .args([
            "translate",
            path_str(&input),
            "--to",
            "es",
            "--model",
            path_str(model),
            "--format",
            "lines",
            "--license",
            "CC-BY-4.0",
            "--out",
            path_str(&dir.path().join("out")),
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a broken checkpoint was accepted");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = checkpoint_copy(dir.path());
    std::fs::remove_file(ckpt.join("source.spm")).unwrap();
    let err = translate_err(&ckpt);
    assert!(
        err.contains("source.spm") && err.contains("missing"),
        "{err}"
    );
    std::fs::copy(fixture().join("model/source.spm"), ckpt.join("source.spm")).unwrap();
    std::fs::remove_file(ckpt.join("model.safetensors")).unwrap();
    let err = translate_err(&ckpt);
    assert!(
        err.contains("model.safetensors") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn vocabulary_of_another_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = checkpoint_copy(dir.path());
    let path = ckpt.join("vocab.json");
    let mut vocab: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    vocab.insert("▁extra".into(), serde_json::json!(vocab.len()));
    std::fs::write(&path, serde_json::to_string(&vocab).unwrap()).unwrap();
    let err = translate_err(&ckpt);
    assert!(
        err.contains("vocab.json")
            && err.contains("1343 entries")
            && err.contains("vocab_size 1342"),
        "{err}"
    );
}

#[test]
fn unsupported_model_type_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = checkpoint_copy(dir.path());
    let path = ckpt.join("config.json");
    let config = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"model_type\": \"marian\"", "\"model_type\": \"bart\"");
    std::fs::write(&path, config).unwrap();
    let err = translate_err(&ckpt);
    assert!(
        err.contains("config.json")
            && err.contains("\"bart\"")
            && err.contains("supported: marian"),
        "{err}"
    );
}

/// `--precision q8` runs the Marian checkpoint on Q8_0 weights: the provenance says so, the output is
/// line-aligned, and the int8 arithmetic shows (the fixture's std-2 random weights make its greedy
/// outputs differ from float32's on most lines, see crates/oerkit-seq2seq/tests/marian.rs; like
/// float32's, some are empty).
#[test]
fn q8_precision_is_used_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (got, want_f32, out) = translate_fixture_lines(
        &fixture(),
        dir.path(),
        "es",
        "greedy.jsonl",
        &["--precision", "q8"],
    );
    assert_eq!(got.len(), want_f32.len());
    let differing = got.iter().zip(&want_f32).filter(|(g, w)| g != w).count();
    assert!(
        differing > 0,
        "q8 output identical to float32 on every line"
    );
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("inputs.txt.oerkit.json")).unwrap())
            .unwrap();
    assert_eq!(
        sidecar["engine"]["decoding"]["precision"], "q8_0",
        "{sidecar}"
    );
}

/// T5 runs in float32 only: asking for q8 is a clear error, not a silent float32 run.
#[test]
fn q8_precision_with_t5_is_refused() {
    let model = fixture_dir("t5-tiny").join("model");
    let stderr = translate_err_with(&model, &["--precision", "q8"]);
    assert!(stderr.contains("float32"), "{stderr}");
}
