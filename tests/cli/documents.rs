//! `extract`, `pseudo` and `license` end to end on the OER corpus.

use std::path::Path;

use crate::common::{oerkit, path_str, run_ok, stdout};

fn oer(rel: &str) -> std::path::PathBuf {
    oerkit_testkit::require_shared();
    oerkit_testkit::corpus("oer").join(rel)
}

fn files_under(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().unwrap().to_string_lossy().starts_with('.') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn extract_prints_units_as_jsonl() {
    let out = run_ok(&[
        "extract",
        path_str(&oer("openstax-statistics/en/m46913.cnxml")),
    ]);
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() > 5);
    for l in &lines {
        assert!(l["id"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(l["text"].as_str().is_some());
        assert!(
            !l["text"].as_str().unwrap().contains("<m:math"),
            "MathML entered unit text: {l}"
        );
    }
    let again = run_ok(&[
        "extract",
        path_str(&oer("openstax-statistics/en/m46913.cnxml")),
    ]);
    assert_eq!(out.stdout, again.stdout, "ids and units are stable");
}

#[test]
fn pseudo_identity_gives_every_corpus_file_back_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let root = oer("");
    run_ok(&[
        "pseudo",
        path_str(&root),
        "--out",
        path_str(dir.path()),
        "--identity",
    ]);
    let inputs = files_under(&root);
    assert!(inputs.len() >= 90);
    for input in inputs {
        let rel = input.strip_prefix(&root).unwrap();
        let out = std::fs::read(dir.path().join(rel)).unwrap();
        assert!(
            out == std::fs::read(&input).unwrap(),
            "{} differs after the identity round trip",
            rel.display()
        );
    }
}

#[test]
fn pseudo_writes_valid_files_with_the_markup_and_an_attribution() {
    let dir = tempfile::tempdir().unwrap();
    let src = oer("carpentries-shell-novice/en");
    run_ok(&["pseudo", path_str(&src), "--out", path_str(dir.path())]);
    let md = std::fs::read_to_string(dir.path().join("episodes/01-intro.md")).unwrap();
    let orig = std::fs::read_to_string(src.join("episodes/01-intro.md")).unwrap();
    assert!(md.contains('⟦'), "no pseudo text");
    assert_eq!(
        md.matches("```").count(),
        orig.matches("```").count(),
        "code fences changed"
    );
    assert!(
        md.contains("Creative Commons Attribution 4.0"),
        "attribution notice missing"
    );
    // The licence text itself is copied, never adapted.
    assert_eq!(
        std::fs::read(dir.path().join("LICENSE.md")).unwrap(),
        std::fs::read(src.join("LICENSE.md")).unwrap()
    );
    // The pseudo output is itself a valid document: extract reads it.
    run_ok(&[
        "extract",
        path_str(&dir.path().join("episodes/01-intro.md")),
    ]);
}

#[test]
fn license_reports_spdx_and_policy() {
    let out = run_ok(&[
        "license",
        path_str(&oer("carpentries-shell-novice/en")),
        "--json",
    ]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(!rows.is_empty());
    for r in &rows {
        assert_eq!(r["policy"]["spdx"], "CC-BY-4.0", "{r}");
        assert_eq!(r["policy"]["may_translate"], true);
    }
    let out = run_ok(&[
        "license",
        path_str(&oer("openstax-statistics/en/m46913.cnxml")),
        "--json",
    ]);
    assert!(
        stdout(&out).contains("CC-BY-4.0"),
        "the LICENSE two levels up is found"
    );
}

fn lesson_with_licence(dir: &Path, licence: &str) -> std::path::PathBuf {
    let course = dir.join("course");
    std::fs::create_dir_all(&course).unwrap();
    let lesson =
        std::fs::read_to_string(oer("carpentries-shell-novice/en/episodes/01-intro.md")).unwrap();
    let body = lesson
        .split_once("\n---\n")
        .map(|(_, b)| b)
        .unwrap_or(&lesson);
    std::fs::write(
        course.join("lesson.md"),
        format!("---\ntitle: Intro\nlicense: {licence}\n---\n{body}"),
    )
    .unwrap();
    course
}

#[test]
fn no_derivatives_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let course = lesson_with_licence(
        dir.path(),
        "https://creativecommons.org/licenses/by-nd/4.0/",
    );
    let out_dir = dir.path().join("out");
    let out = oerkit()
        .args(["pseudo", path_str(&course), "--out", path_str(&out_dir)])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("NoDerivatives") && err.contains("lesson.md"),
        "{err}"
    );
    assert!(!out_dir.exists(), "something was written");
}

#[test]
fn share_alike_is_carried_and_stated() {
    let dir = tempfile::tempdir().unwrap();
    let course = lesson_with_licence(dir.path(), "CC-BY-SA-4.0");
    let out_dir = dir.path().join("out");
    run_ok(&["pseudo", path_str(&course), "--out", path_str(&out_dir)]);
    let md = std::fs::read_to_string(out_dir.join("lesson.md")).unwrap();
    assert!(
        md.contains("ShareAlike"),
        "{}",
        &md[md.len().saturating_sub(600)..]
    );
    assert!(
        md.contains("license: CC-BY-SA-4.0"),
        "the licence stays in the front matter"
    );
}

#[test]
fn unknown_licence_is_refused_unless_given() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("notes.md");
    std::fs::write(&f, "# Notes\n\nSome text to adapt.\n").unwrap();
    let out_dir = dir.path().join("out");
    let out = oerkit()
        .args(["pseudo", path_str(&f), "--out", path_str(&out_dir)])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--license"));
    run_ok(&[
        "pseudo",
        path_str(&f),
        "--out",
        path_str(&out_dir),
        "--license",
        "CC0-1.0",
    ]);
    assert!(std::fs::read_to_string(out_dir.join("notes.md"))
        .unwrap()
        .contains('⟦'));
}

#[test]
fn bad_input_gives_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, &[u8], &str)> = vec![
        (
            "bad.md",
            b"# ok\n\xff\xfe bad\n",
            "bad.md:2:1: invalid UTF-8",
        ),
        ("bin.md", b"\x00\x01\x02", "binary"),
        ("empty.md", b"", "empty"),
        (
            "broken.cnxml",
            b"<document xmlns=\"http://cnx.rice.edu/cnxml\"><para>open\n",
            "broken.cnxml:",
        ),
        ("broken.json", b"{\"a\": [1, 2\n", "broken.json:"),
        ("file.xyz", b"hello", "unknown format"),
    ];
    for (name, bytes, expected) in cases {
        let f = dir.path().join(name);
        std::fs::write(&f, bytes).unwrap();
        let out = oerkit().args(["extract", path_str(&f)]).output().unwrap();
        assert!(!out.status.success(), "{name} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{name}: {err}");
    }
}

#[test]
fn an_oversized_file_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("big.txt");
    let file = std::fs::File::create(&f).unwrap();
    file.set_len(50 * 1024 * 1024).unwrap();
    let out = oerkit().args(["extract", path_str(&f)]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("limit"));
}
