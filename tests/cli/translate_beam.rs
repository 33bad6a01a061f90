//! `translate --beam N` with a GGUF chat model (SmolLM2-135M): beam search really runs (no "ignored"
//! warning, provenance says beam/N) and the lines stay aligned. (Batching is not compared here: with
//! the default quantized weights, left padding perturbs the logits; `oerkit-gguf`'s tests check
//! beam batching where it must be exact.)

use std::path::Path;

use crate::common::{openstax_segments, path_str, run_ok};

const MODEL: &str = "smollm2-135m-instruct";

/// Translates `src` into `out` with `--beam 2`; returns stderr.
fn translate_beam(src: &Path, out: &Path) -> String {
    let output = run_ok(&[
        "translate",
        path_str(src),
        "--to",
        "es",
        "--model",
        MODEL,
        "--out",
        path_str(out),
        "--format",
        "lines",
        "--license",
        "CC-BY-4.0",
        "--max-tokens",
        "24",
        "--beam",
        "2",
    ]);
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn gguf_beam_two_writes_aligned_lines_and_beam_provenance() {
    oerkit_testkit::require_shared();
    let dir = tempfile::tempdir().unwrap();
    let src = openstax_segments(dir.path(), 10, 3);

    let out_dir = dir.path().join("out");
    let stderr = translate_beam(&src, &out_dir);
    assert!(!stderr.contains("ignored"), "{stderr}");
    let out = std::fs::read_to_string(out_dir.join("segments.txt")).unwrap();
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.lines().all(|l| !l.trim().is_empty()), "{out}");
    let prov: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("segments.txt.oerkit.json")).unwrap(),
    )
    .unwrap();
    let decoding = &prov["engine"]["decoding"];
    assert_eq!(decoding["strategy"], "beam", "{decoding}");
    assert_eq!(decoding["num_beams"], 2, "{decoding}");
}
