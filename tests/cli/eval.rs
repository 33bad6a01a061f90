//! `oerkit eval` end to end: fixture sets written to temporary files, scores and JSON shape
//! compared with the sacrebleu 2.5.1 golden values, and the error cases.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{oerkit, path_str, run_ok, stdout};

/// Writes a fixture set's hypotheses and reference streams to `dir`; returns the corpus.json.
fn write_set(dir: &Path, set: &str) -> (PathBuf, Vec<PathBuf>, Value) {
    oerkit_testkit::require_shared();
    let base = oerkit_testkit::fixture("metrics-sacrebleu/sets");
    let rows: Vec<Value> = std::fs::read_to_string(base.join(format!("{set}.jsonl")))
        .expect("fixture jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json row"))
        .collect();
    let corpus: Value = serde_json::from_str(
        &std::fs::read_to_string(base.join(format!("{set}.corpus.json"))).expect("corpus json"),
    )
    .expect("corpus json parses");
    let n_refs = rows[0]["refs"].as_array().expect("refs").len();
    let join = |f: &dyn Fn(&Value) -> String| rows.iter().map(|r| f(r) + "\n").collect::<String>();
    let hyp = dir.join("hyp.txt");
    std::fs::write(&hyp, join(&|r| r["hyp"].as_str().expect("hyp").to_string())).expect("write");
    let refs = (0..n_refs)
        .map(|k| {
            let p = dir.join(format!("ref{k}.txt"));
            std::fs::write(
                &p,
                join(&|r| r["refs"][k].as_str().expect("ref").to_string()),
            )
            .expect("write");
            p
        })
        .collect();
    (hyp, refs, corpus)
}

fn eval_args<'a>(hyp: &'a Path, refs: &'a [PathBuf]) -> Vec<&'a str> {
    let mut args = vec!["eval", "--hyp", path_str(hyp)];
    for r in refs {
        args.extend(["--ref", path_str(r)]);
    }
    args
}

#[test]
fn json_matches_sacrebleu_shape_and_values_on_multiref_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hyp, refs, corpus) = write_set(dir.path(), "multiref-ntrex-por");
    let mut args = eval_args(&hyp, &refs);
    args.extend([
        "--metrics",
        "bleu,chrf,chrf++,ter",
        "--json",
        "--width",
        "6",
    ]);
    let out = stdout(&run_ok(&args));
    let list: Value = serde_json::from_str(&out).expect("stdout is JSON");
    let list = list.as_array().expect("several metrics give a list");
    assert_eq!(list.len(), 4);
    for (obj, key) in list.iter().zip(["bleu", "chrf", "chrf_pp", "ter"]) {
        let want = &corpus["corpus"][key];
        let signature = want["signature"].as_str().expect("signature");
        assert_eq!(obj["signature"].as_str(), Some(signature), "{key}");
        let score = obj["score"].as_f64().expect("score");
        let want_score = want["score"].as_f64().expect("score");
        assert!(
            (score - want_score).abs() <= 5e-7,
            "{key}: {score} vs {want_score}"
        );
        // sacrebleu adds every signature field as its own key, in order, after name/score/signature
        for field in signature.split('|') {
            let (k, v) = field.split_once(':').expect("k:v");
            assert_eq!(obj[k].as_str(), Some(v), "{key}: field {k}");
        }
    }
    // key order as sacrebleu: name, score, signature, [verbose_score], signature fields
    assert_eq!(out.matches("{\n \"name\": \"").count(), 4, "{out}");
    assert!(
        out.starts_with("[\n{\n \"name\": \"BLEU\",\n \"score\": "),
        "{out}"
    );
    assert_eq!(list[0]["name"], "BLEU");
    assert_eq!(list[1]["name"], "chrF2");
    assert_eq!(list[2]["name"], "chrF2++");
    assert_eq!(list[3]["name"], "TER");
    let verbose = corpus["corpus"]["bleu"]["formatted"]
        .as_str()
        .expect("formatted");
    let verbose = verbose
        .split_once(' ')
        .expect("x")
        .1
        .split_once(' ')
        .expect("x")
        .1;
    let verbose = verbose.split_once(' ').expect("x").1;
    assert_eq!(list[0]["verbose_score"].as_str(), Some(verbose));
}

#[test]
fn single_metric_json_is_one_object_like_sacrebleu() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hyp, refs, corpus) = write_set(dir.path(), "mlqe-en-zh-dev300");
    let mut args = eval_args(&hyp, &refs);
    args.extend(["--metrics", "bleu", "--tokenize", "zh", "--json"]);
    let out = stdout(&run_ok(&args));
    // sacrebleu prints json.dumps(indent=1): one-space indentation, "key": value
    assert!(
        out.starts_with("{\n \"name\": \"BLEU\",\n \"score\": "),
        "{out}"
    );
    let obj: Value = serde_json::from_str(&out).expect("JSON object");
    let want = &corpus["corpus"]["bleu_tok_zh"];
    let want_1dp: f64 = format!("{:.1}", want["score"].as_f64().expect("score"))
        .parse()
        .expect("f64");
    assert_eq!(obj["score"].as_f64(), Some(want_1dp));
    assert_eq!(obj["tok"], "zh");
    assert_eq!(obj["signature"], want["signature"]);
}

#[test]
fn table_and_sentence_level_on_edge_cases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hyp, refs, corpus) = write_set(dir.path(), "edge-cases");
    let args = eval_args(&hyp, &refs);
    let table = stdout(&run_ok(&args));
    let want = format!(
        "{:.1}",
        corpus["corpus"]["ter"]["score"].as_f64().expect("score")
    );
    let ter_line = table
        .lines()
        .find(|l| l.starts_with("TER"))
        .expect("TER row");
    assert!(ter_line.contains(&want), "{ter_line} should show {want}");

    let mut args = eval_args(&hyp, &refs);
    args.extend([
        "--sentence",
        "--json",
        "--metrics",
        "bleu,ter",
        "--width",
        "9",
    ]);
    let out = stdout(&run_ok(&args));
    let fixture = std::fs::read_to_string(oerkit_testkit::fixture(
        "metrics-sacrebleu/sets/edge-cases.jsonl",
    ))
    .expect("fixture");
    let mut n = 0;
    for (line, row) in out.lines().zip(fixture.lines()) {
        let got: Value = serde_json::from_str(line).expect("JSONL");
        let row: Value = serde_json::from_str(row).expect("row");
        for (name, key) in [("BLEU", "bleu"), ("TER", "ter")] {
            let g = got[name].as_f64().expect("score");
            let w = row[key]["score"].as_f64().expect("score");
            assert!(
                (g - w).abs() <= 5e-9,
                "segment {}: {name} {g} vs {w}",
                n + 1
            );
        }
        n += 1;
    }
    assert_eq!(n, 33);
}

#[test]
fn baseline_adds_paired_bootstrap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hyp, refs, _) = write_set(dir.path(), "mlqe-en-de-dev300");
    // a better system: the baseline with every 40th line replaced by its post-edit
    let base_lines: Vec<String> = std::fs::read_to_string(&hyp)
        .expect("hyp")
        .lines()
        .map(String::from)
        .collect();
    let ref_lines: Vec<String> = std::fs::read_to_string(&refs[0])
        .expect("ref")
        .lines()
        .map(String::from)
        .collect();
    let better: String = base_lines
        .iter()
        .enumerate()
        .map(|(i, l)| if i % 40 == 0 { ref_lines[i].clone() } else { l.clone() } + "\n")
        .collect();
    let sys = dir.path().join("sys.txt");
    std::fs::write(&sys, better).expect("write");
    let args = vec![
        "eval",
        "--hyp",
        path_str(&sys),
        "--ref",
        path_str(&refs[0]),
        "--baseline",
        path_str(&hyp),
        "--metrics",
        "bleu",
        "--json",
    ];
    let out = stdout(&run_ok(&args));
    let v: Value = serde_json::from_str(&out).expect("JSON");
    let systems = v.as_array().expect("list");
    assert_eq!(systems.len(), 2);
    assert!(systems[0]["system"]
        .as_str()
        .expect("name")
        .starts_with("Baseline: "));
    assert!(systems[0]["BLEU"]["p_value"].is_null());
    // sacrebleu 2.5.1 --paired-bs on the same files: p = 0.04495504495504495
    let p = systems[1]["BLEU"]["p_value"].as_f64().expect("p");
    assert!((p - 0.04495504495504495).abs() <= 2.0 / 1001.0, "p = {p}");
    // deterministic for a fixed seed
    assert_eq!(stdout(&run_ok(&args)), out);
}

#[test]
fn errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hyp = dir.path().join("hyp.txt");
    let short = dir.path().join("short.txt");
    let empty = dir.path().join("empty.txt");
    let bad = dir.path().join("bad.txt");
    std::fs::write(&hyp, "a b c\nd e f\n").expect("write");
    std::fs::write(&short, "a b c\n").expect("write");
    std::fs::write(&empty, "").expect("write");
    std::fs::write(&bad, b"fine\nbro\xffken\n").expect("write");

    let fails = |args: &[&str], needles: &[&str]| {
        let out = oerkit().args(args).output().expect("spawn");
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        for n in needles {
            assert!(err.contains(n), "stderr {err:?} should mention {n:?}");
        }
    };
    fails(
        &["eval", "--hyp", path_str(&hyp), "--ref", path_str(&short)],
        &["short.txt", "1 lines", "2"],
    );
    fails(
        &["eval", "--hyp", path_str(&hyp), "--ref", path_str(&empty)],
        &["empty.txt", "empty"],
    );
    fails(
        &["eval", "--hyp", path_str(&bad), "--ref", path_str(&hyp)],
        &["bad.txt:2:4", "UTF-8"],
    );
    fails(
        &[
            "eval",
            "--hyp",
            path_str(&hyp),
            "--ref",
            path_str(&hyp),
            "--metrics",
            "meteor",
        ],
        &["meteor"],
    );
    fails(
        &[
            "eval",
            "--hyp",
            path_str(&hyp),
            "--ref",
            path_str(&hyp),
            "--tokenize",
            "moses",
        ],
        &["moses"],
    );
}

#[test]
fn ter_option_flags_reach_the_metric_and_its_signature() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hyp, refs, corpus) = write_set(dir.path(), "mlqe-en-zh-dev300");
    let run = |extra: &[&str]| -> Value {
        let mut args = eval_args(&hyp, &refs);
        args.extend(["--metrics", "ter", "--json", "--width", "6"]);
        args.extend(extra);
        serde_json::from_str(&stdout(&run_ok(&args))).expect("JSON object")
    };
    let plain = run(&[]);
    let want = &corpus["corpus"]["ter"];
    assert_eq!(plain["signature"], want["signature"]);
    let want_6dp: f64 = format!("{:.6}", want["score"].as_f64().expect("score"))
        .parse()
        .expect("f64");
    assert_eq!(plain["score"].as_f64(), Some(want_6dp));

    let all = run(&[
        "--ter-normalized",
        "--ter-no-punct",
        "--ter-asian-support",
        "--ter-case-sensitive",
    ]);
    assert_eq!(
        all["signature"],
        "nrefs:1|case:mixed|tok:tercom|norm:yes|punct:no|asian:yes|version:2.5.1"
    );
    assert_eq!(all["norm"], "yes");
    assert_eq!(all["punct"], "no");
    assert_eq!(all["asian"], "yes");
    // Chinese split into characters changes the edit counts a lot
    assert_ne!(all["score"], plain["score"]);
}
