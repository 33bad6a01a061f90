//! `translate` and `summarize` end to end with a real local model (SmolLM2-135M, fetched by
//! `scripts/fetch-models.sh` or on first use). Quality is not what these check — markup, validity,
//! alignment, provenance and resumption are.

use std::path::Path;

use crate::common::{oerkit, openstax_segments, path_str, run_ok, stdout};

const MODEL: &str = "smollm2-135m-instruct";

fn oer(rel: &str) -> std::path::PathBuf {
    oerkit_testkit::require_shared();
    oerkit_testkit::corpus("oer").join(rel)
}

fn translate(input: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "translate",
        path_str(input),
        "--to",
        "es",
        "--model",
        MODEL,
        "--out",
        path_str(out),
        "--max-tokens",
        "24",
    ];
    args.extend_from_slice(extra);
    run_ok(&args)
}

#[test]
fn translates_a_cnxml_module_with_math_and_metadata_intact() {
    let dir = tempfile::tempdir().unwrap();
    let src = oer("openstax-statistics/en/m46913.cnxml");
    translate(&src, dir.path(), &[]);
    let out = std::fs::read_to_string(dir.path().join("m46913.cnxml")).unwrap();
    let orig = std::fs::read_to_string(&src).unwrap();
    assert_eq!(
        out.matches("<m:math").count(),
        orig.matches("<m:math").count()
    );
    assert_eq!(out.matches("<para").count(), orig.matches("<para").count());
    assert!(out.contains("Translated from en to es by oerkit"));
    // Valid CNXML: oerkit reads it back.
    run_ok(&["extract", path_str(&dir.path().join("m46913.cnxml"))]);
    let prov: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("m46913.cnxml.oerkit.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(prov["engine"]["model"], MODEL);
    assert_eq!(
        prov["engine"]["model_sha256"],
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    );
    assert!(prov["engine"]["prompt"]
        .as_str()
        .unwrap()
        .starts_with("translate@"));
    assert!(!prov["segments"].as_array().unwrap().is_empty());
    assert!(
        !dir.path()
            .join(".oerkit-journal/m46913.cnxml.jsonl")
            .exists(),
        "journal left behind"
    );
}

#[test]
fn translates_a_carpentries_episode_with_markup_intact() {
    let dir = tempfile::tempdir().unwrap();
    let src = oer("carpentries-shell-novice/en/episodes/01-intro.md");
    translate(&src, dir.path(), &["--batch", "16"]);
    let out = std::fs::read_to_string(dir.path().join("01-intro.md")).unwrap();
    let orig = std::fs::read_to_string(&src).unwrap();
    assert_eq!(
        out.matches("```").count(),
        orig.matches("```").count(),
        "code fences"
    );
    for fence in orig.lines().filter(|l| l.starts_with(":::")) {
        assert!(out.contains(fence), "Carpentries div {fence} lost");
    }
    let units = stdout(&run_ok(&[
        "extract",
        path_str(&dir.path().join("01-intro.md")),
    ]));
    assert!(units.lines().count() > 20);
}

#[test]
fn translates_po_entries_into_msgstr_with_target_plural_forms() {
    let dir = tempfile::tempdir().unwrap();
    // The header and the first entries of a real Open edX catalogue, as its own (AGPL) course file.
    let po = std::fs::read_to_string(oer("openedx-ora2-po/en/djangojs.po")).unwrap();
    let entries: Vec<&str> = po.split("\n\n").take(9).collect();
    let course = dir.path().join("course");
    std::fs::create_dir_all(&course).unwrap();
    std::fs::write(course.join("djangojs.po"), entries.join("\n\n") + "\n").unwrap();
    let out_dir = dir.path().join("out");
    translate(
        &course.join("djangojs.po"),
        &out_dir,
        &["--license", "AGPL-3.0-only"],
    );
    let out = std::fs::read_to_string(out_dir.join("djangojs.po")).unwrap();
    assert!(out.contains("Language: es"), "{out}");
    assert!(out.contains("Plural-Forms: nplurals="));
    let units = stdout(&run_ok(&[
        "extract",
        path_str(&out_dir.join("djangojs.po")),
    ]));
    assert_eq!(
        units.lines().count(),
        stdout(&run_ok(&["extract", path_str(&course.join("djangojs.po"))]))
            .lines()
            .count()
    );
}

#[test]
fn lines_output_stays_line_aligned_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let src = openstax_segments(dir.path(), 0, 6);
    let out_dir = dir.path().join("out");
    // An interrupted earlier run left a journal for two of the lines: they are not translated again.
    let first = run_ok(&["extract", path_str(&src), "--format", "lines"]);
    let units: Vec<serde_json::Value> = stdout(&first)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let journal = out_dir.join(".oerkit-journal/segments.txt.jsonl");
    std::fs::create_dir_all(journal.parent().unwrap()).unwrap();
    let mut j = String::new();
    for u in &units[..2] {
        let source = u["text"].as_str().unwrap();
        let sha = oerkit_testkit_sha(source);
        j.push_str(&serde_json::json!({"source_sha256": sha, "unit_id": u["id"], "source": source, "text": "JOURNALED", "raw_output": "JOURNALED", "repair": "none", "seconds": 0.0}).to_string());
        j.push('\n');
    }
    std::fs::write(&journal, j).unwrap();
    translate(
        &src,
        &out_dir,
        &["--format", "lines", "--license", "CC-BY-4.0"],
    );
    let out = std::fs::read_to_string(out_dir.join("segments.txt")).unwrap();
    assert_eq!(out.lines().count(), 6, "{out}");
    // The journaled units (the first two sentences, of line 1) are reused, not translated again.
    assert_eq!(
        out.matches("JOURNALED").count(),
        2,
        "journal not reused: {out}"
    );
}

fn oerkit_testkit_sha(s: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn summarize_writes_an_abstract_with_provenance() {
    let out = run_ok(&[
        "summarize",
        path_str(&oer("carpentries-shell-novice/en/episodes/01-intro.md")),
        "--model",
        MODEL,
        "--words",
        "30",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert!(
        v["abstract"]
            .as_str()
            .is_some_and(|s| s.split_whitespace().count() >= 3),
        "{v}"
    );
    assert!(v["prompt"].as_str().unwrap().starts_with("summarize@"));
}

#[test]
fn bad_model_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let src = oer("openstax-statistics/en/m46913.cnxml");
    let out = oerkit()
        .args([
            "translate",
            path_str(&src),
            "--to",
            "es",
            "--model",
            "no-such-model",
            "--out",
            path_str(dir.path()),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("smollm2-135m-instruct"),
        "known ids listed"
    );
    let fake = dir.path().join("fake.gguf");
    std::fs::write(&fake, b"GGUF\x03\x00\x00\x00truncated").unwrap();
    let out = oerkit()
        .args([
            "translate",
            path_str(&src),
            "--to",
            "es",
            "--model",
            path_str(&fake),
            "--out",
            path_str(&dir.path().join("o")),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("fake.gguf"));
}

/// `translate --beam N` with a GGUF chat model: beam search really runs (no "ignored" warning,
/// provenance says beam/N) and the lines stay aligned. (Batching is not compared here: with the
/// default quantized weights, left padding perturbs the logits; `oerkit-gguf`'s tests check beam
/// batching where it must be exact.)
#[test]
fn gguf_beam_two_writes_aligned_lines_and_beam_provenance() {
    oerkit_testkit::require_shared();
    let dir = tempfile::tempdir().unwrap();
    let src = openstax_segments(dir.path(), 10, 3);

    let out_dir = dir.path().join("out");
    let output = translate(
        &src,
        &out_dir,
        &["--format", "lines", "--license", "CC-BY-4.0", "--beam", "2"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
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
