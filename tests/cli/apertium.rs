//! `translate --model apertium:eng-spa` end to end on a Carpentries lesson. Needs Apertium with the
//! eng-spa pair (`scripts/setup.sh` installs it; CI runs it): without it these tests fail, and the error
//! they show names scripts/setup.sh.

use std::path::Path;

use crate::common::{oerkit, path_str, run_ok, stdout};

const MODEL: &str = "apertium:eng-spa";

fn lesson(rel: &str) -> std::path::PathBuf {
    oerkit_testkit::require_shared();
    oerkit_testkit::corpus("oer/carpentries-shell-novice/en").join(rel)
}

fn units(file: &Path) -> Vec<serde_json::Value> {
    stdout(&run_ok(&[
        "extract",
        path_str(file),
        "--segment",
        "paragraphs",
    ]))
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect()
}

/// The fenced code blocks of a Markdown file, fences included.
fn code_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in markdown.lines() {
        let fence = line.trim_start().starts_with("```");
        match (&mut current, fence) {
            (None, true) => current = Some(vec![line]),
            (Some(lines), true) => {
                lines.push(line);
                blocks.push(lines.join("\n"));
                current = None;
            }
            (Some(lines), false) => lines.push(line),
            (None, false) => {}
        }
    }
    blocks
}

fn apertium_translate(src: &Path, out: &Path) {
    let out_str = path_str(out);
    let result = oerkit()
        .args([
            "translate",
            path_str(src),
            "--to",
            "es",
            "--from",
            "en",
            "--model",
            MODEL,
            "--segment",
            "paragraphs",
            "--batch",
            "64",
            "--out",
            out_str,
        ])
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "oerkit translate --model {MODEL} failed (Apertium with eng-spa is needed: run scripts/setup.sh):\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
}

#[test]
fn translates_a_carpentries_lesson_with_markup_intact() {
    let dir = tempfile::tempdir().unwrap();
    let src = lesson("episodes/02-filedir.md");
    apertium_translate(&src, dir.path());
    let out_file = dir.path().join("02-filedir.md");
    let out = std::fs::read_to_string(&out_file).unwrap();
    let orig = std::fs::read_to_string(&src).unwrap();

    // The output re-parses into the same units with the same placeholders (links, code spans,
    // emphasis: their original markup included).
    let before = units(&src);
    let after = units(&out_file);
    assert_eq!(before.len(), after.len(), "unit count");
    let mut changed = 0;
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(
            b["placeholders"], a["placeholders"],
            "placeholders of {} -> {}",
            b["text"], a["text"]
        );
        if b["text"] != a["text"] {
            changed += 1;
        }
    }
    assert!(
        changed * 2 > before.len(),
        "only {changed} of {} units changed",
        before.len()
    );

    // Code blocks come through byte for byte; Carpentries divs stay.
    let blocks = code_blocks(&orig);
    assert!(blocks.len() > 10, "the lesson has code blocks");
    for block in &blocks {
        assert!(out.contains(block.as_str()), "code block changed:\n{block}");
    }
    for fence in orig.lines().filter(|l| l.starts_with(":::")) {
        assert!(out.contains(fence), "Carpentries div {fence} lost");
    }

    // The text is Spanish: a known sentence of the lesson, as Apertium eng-spa translates it.
    assert!(orig.contains("is called the **file system**."));
    assert!(
        out.contains("La parte del sistema operativo responsable"),
        "{out}"
    );
    assert!(out.contains("**sistema de lima**"), "{out}");
    assert!(out.contains("Translated from en to es by oerkit"));

    // The provenance names the engine, the pair and the pair's package version.
    let prov: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("02-filedir.md.oerkit.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(prov["engine"]["engine"], "apertium", "{prov}");
    assert_eq!(prov["engine"]["model"], MODEL);
    assert_eq!(prov["engine"]["decoding"]["package"], "apertium-eng-spa");
    assert!(prov["engine"]["decoding"]["package_version"]
        .as_str()
        .is_some_and(|v| !v.is_empty()));
    assert!(!prov["segments"].as_array().unwrap().is_empty());
}

#[test]
fn the_same_input_gives_the_same_output() {
    let dir = tempfile::tempdir().unwrap();
    let src = lesson("episodes/01-intro.md");
    apertium_translate(&src, &dir.path().join("a"));
    apertium_translate(&src, &dir.path().join("b"));
    assert_eq!(
        std::fs::read(dir.path().join("a/01-intro.md")).unwrap(),
        std::fs::read(dir.path().join("b/01-intro.md")).unwrap()
    );
}

#[test]
fn missing_apertium_or_pair_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let src = lesson("episodes/01-intro.md");
    let run = |model: &str, program: Option<&str>| {
        let mut cmd = oerkit();
        cmd.args([
            "translate",
            path_str(&src),
            "--to",
            "es",
            "--model",
            model,
            "--out",
            path_str(dir.path()),
        ]);
        if let Some(p) = program {
            cmd.env("OERKIT_APERTIUM", p);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let no_program = run(MODEL, Some("/nonexistent/apertium"));
    assert!(
        no_program.contains("Apertium is not installed")
            && no_program.contains("scripts/setup.sh")
            && no_program.contains("apt-get install apertium apertium-eng-spa"),
        "{no_program}"
    );
    let no_pair = run("apertium:eng-xxx", None);
    assert!(
        no_pair.contains("'eng-xxx' is not installed") && no_pair.contains("eng-spa"),
        "installed modes listed: {no_pair}"
    );
    assert!(!dir.path().join("01-intro.md").exists());
}
