//! Golden tests: every corpus-level and sentence-level value in
//! `shared/fixtures/metrics-sacrebleu` (produced by sacrebleu 2.5.1, see its README and
//! generate.py) is reproduced — statistics exactly, scores to 1e-9 relative — and so are the
//! signatures and formatted score lines.
#![allow(clippy::unwrap_used)]

use oerkit_metrics::{
    Bleu, BleuConfig, BleuScore, Chrf, ChrfConfig, Metric, MetricScore, Smoothing, Ter, TerConfig,
    Tokenizer,
};
use serde_json::Value;

fn fixture_dir() -> std::path::PathBuf {
    oerkit_testkit::require_shared();
    oerkit_testkit::fixture("metrics-sacrebleu")
}

struct Set {
    name: String,
    rows: Vec<Value>,
    corpus: Value,
}

fn load_sets() -> Vec<Set> {
    let dir = fixture_dir();
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).unwrap()).unwrap();
    let sets = index["sets"].as_object().unwrap();
    assert_eq!(sets.len(), 8, "fixture index lists 8 sets");
    sets.iter()
        .map(|(name, n)| {
            let rows: Vec<Value> = std::fs::read_to_string(dir.join(format!("sets/{name}.jsonl")))
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(rows.len() as u64, n.as_u64().unwrap(), "{name}: row count");
            let corpus: Value = serde_json::from_str(
                &std::fs::read_to_string(dir.join(format!("sets/{name}.corpus.json"))).unwrap(),
            )
            .unwrap();
            Set {
                name: name.clone(),
                rows,
                corpus,
            }
        })
        .collect()
}

fn hyps_and_refs(set: &Set) -> (Vec<String>, Vec<Vec<String>>) {
    let hyps: Vec<String> = set
        .rows
        .iter()
        .map(|r| r["hyp"].as_str().unwrap().to_string())
        .collect();
    let n_refs = set.rows[0]["refs"].as_array().unwrap().len();
    let streams = (0..n_refs)
        .map(|k| {
            set.rows
                .iter()
                .map(|r| r["refs"][k].as_str().unwrap().to_string())
                .collect()
        })
        .collect();
    (hyps, streams)
}

/// Collects mismatches instead of stopping at the first one, so a failure shows the pattern.
#[derive(Default)]
struct Check {
    compared: usize,
    failures: Vec<String>,
}

impl Check {
    fn num(&mut self, what: &str, got: f64, want: &Value) {
        self.compared += 1;
        let want = want.as_f64().unwrap_or(f64::NAN);
        let ok = got == want || (got - want).abs() <= 1e-9 * got.abs().max(want.abs());
        if !ok {
            self.failures
                .push(format!("{what}: got {got:?}, want {want:?}"));
        }
    }

    fn exact(&mut self, what: &str, got: &[f64], want: &Value) {
        self.compared += 1;
        let want: Vec<f64> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        if got != want.as_slice() {
            self.failures
                .push(format!("{what}: got {got:?}, want {want:?}"));
        }
    }

    fn text(&mut self, what: &str, got: &str, want: &Value) {
        self.compared += 1;
        if Some(got) != want.as_str() {
            self.failures
                .push(format!("{what}: got {got:?}, want {want}"));
        }
    }

    fn finish(self, min_compared: usize) {
        assert!(
            self.compared >= min_compared,
            "only {} values compared (expected at least {min_compared})",
            self.compared
        );
        assert!(
            self.failures.is_empty(),
            "{} of {} values differ from sacrebleu; first ones:\n{}",
            self.failures.len(),
            self.compared,
            self.failures
                .iter()
                .take(25)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

fn check_bleu(c: &mut Check, what: &str, s: &BleuScore, want: &Value) {
    c.num(&format!("{what} score"), s.score, &want["score"]);
    c.exact(&format!("{what} counts"), &s.counts, &want["counts"]);
    c.exact(&format!("{what} totals"), &s.totals, &want["totals"]);
    c.num(
        &format!("{what} sys_len"),
        s.sys_len as f64,
        &want["sys_len"],
    );
    c.num(
        &format!("{what} ref_len"),
        s.ref_len as f64,
        &want["ref_len"],
    );
    for n in 0..4 {
        c.num(
            &format!("{what} precision {n}"),
            s.precisions[n],
            &want["precisions"][n],
        );
    }
    c.num(&format!("{what} bp"), s.bp, &want["bp"]);
    c.num(&format!("{what} ratio"), s.ratio, &want["ratio"]);
}

fn bleu_for(kwargs: &Value) -> Bleu {
    let mut cfg = BleuConfig::default();
    if let Some(t) = kwargs.get("tokenize") {
        cfg.tokenizer = t.as_str().unwrap().parse::<Tokenizer>().unwrap();
    }
    if let Some(s) = kwargs.get("smooth_method") {
        cfg.smoothing = s.as_str().unwrap().parse::<Smoothing>().unwrap();
    }
    cfg.lowercase = kwargs
        .get("lowercase")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    cfg.effective_order = kwargs
        .get("effective_order")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Bleu::new(cfg)
}

fn chrf_for(kwargs: &Value) -> Chrf {
    let mut cfg = ChrfConfig::default();
    if let Some(w) = kwargs.get("word_order") {
        cfg.word_order = w.as_u64().unwrap() as usize;
    }
    Chrf::new(cfg).unwrap()
}

fn ter_for(kwargs: &Value) -> Ter {
    let flag = |name: &str| kwargs.get(name).and_then(Value::as_bool).unwrap_or(false);
    Ter::new(TerConfig {
        case_sensitive: flag("case_sensitive"),
        normalized: flag("normalized"),
        no_punct: flag("no_punct"),
        asian_support: flag("asian_support"),
    })
}

/// Checks the summed statistics, the score fields and all signature/format strings.
#[allow(clippy::too_many_arguments)]
fn check_corpus<M: Metric>(
    c: &mut Check,
    what: &str,
    metric: &M,
    hyps: &[String],
    refs: &[Vec<String>],
    want: &Value,
    stats_vec: impl Fn(&M::Stats) -> Vec<f64>,
    fields: impl Fn(&mut Check, &M::Score),
) {
    let seg = metric.corpus_statistics(hyps, refs).unwrap();
    let total = oerkit_metrics::sum_stats(&seg);
    c.exact(&format!("{what} stats"), &stats_vec(&total), &want["stats"]);
    let score = metric.score_from_stats(&total);
    c.num(&format!("{what} score"), score.score(), &want["score"]);
    fields(c, &score);
    let sig = metric.signature(refs.len());
    c.text(
        &format!("{what} signature"),
        &sig.format(false),
        &want["signature"],
    );
    c.text(
        &format!("{what} signature_short"),
        &sig.format(true),
        &want["signature_short"],
    );
    c.text(
        &format!("{what} formatted"),
        &score.format(2, None),
        &want["formatted"],
    );
    c.text(
        &format!("{what} formatted_with_signature"),
        &score.format(2, Some(&sig.format(false))),
        &want["formatted_with_signature"],
    );
}

#[test]
fn corpus_level_values_match_sacrebleu() {
    let mut c = Check::default();
    for set in load_sets() {
        let (hyps, refs) = hyps_and_refs(&set);
        let configs = set.corpus["corpus"].as_object().unwrap();
        assert_eq!(configs.len(), 14, "{}: 14 corpus configurations", set.name);
        for (key, want) in configs {
            let what = format!("{}/{key}", set.name);
            let kwargs = &want["kwargs"];
            match want["metric"].as_str().unwrap() {
                "BLEU" => check_corpus(
                    &mut c,
                    &what,
                    &bleu_for(kwargs),
                    &hyps,
                    &refs,
                    want,
                    |s| s.to_vec(),
                    |c, s| check_bleu(c, &what, s, want),
                ),
                "CHRF" => check_corpus(
                    &mut c,
                    &what,
                    &chrf_for(kwargs),
                    &hyps,
                    &refs,
                    want,
                    |s| s.0.iter().map(|&x| x as f64).collect(),
                    |c, s| {
                        c.num(
                            &format!("{what} char_order"),
                            s.char_order as f64,
                            &want["char_order"],
                        );
                        c.num(
                            &format!("{what} word_order"),
                            s.word_order as f64,
                            &want["word_order"],
                        );
                        c.num(&format!("{what} beta"), s.beta as f64, &want["beta"]);
                    },
                ),
                "TER" => check_corpus(
                    &mut c,
                    &what,
                    &ter_for(kwargs),
                    &hyps,
                    &refs,
                    want,
                    |s| vec![s.num_edits as f64, s.ref_length],
                    |c, s| {
                        c.num(
                            &format!("{what} num_edits"),
                            s.num_edits as f64,
                            &want["num_edits"],
                        );
                        c.num(
                            &format!("{what} ref_length"),
                            s.ref_length,
                            &want["ref_length"],
                        );
                    },
                ),
                other => panic!("unexpected metric {other}"),
            }
        }
    }
    c.finish(8 * 14 * 8);
}

#[test]
fn sentence_level_values_match_sacrebleu() {
    let bleu = Bleu::new(BleuConfig::sentence());
    let chrf = Chrf::new(ChrfConfig::default()).unwrap();
    let chrf_pp = Chrf::new(ChrfConfig::plus_plus()).unwrap();
    let ter = Ter::default();
    let ter_cs = Ter::new(TerConfig {
        case_sensitive: true,
        ..Default::default()
    });
    let mut c = Check::default();
    let mut rows = 0;
    for set in load_sets() {
        let sigs = &set.corpus["sentence_level"];
        let n_refs = set.rows[0]["refs"].as_array().unwrap().len();
        c.text(
            "sentence bleu signature",
            &bleu.signature(n_refs).format(false),
            &sigs["bleu"]["signature"],
        );
        c.text(
            "sentence chrf signature",
            &chrf.signature(n_refs).format(false),
            &sigs["chrf"]["signature"],
        );
        c.text(
            "sentence chrf++ signature",
            &chrf_pp.signature(n_refs).format(false),
            &sigs["chrf_pp"]["signature"],
        );
        c.text(
            "sentence ter signature",
            &ter.signature(n_refs).format(false),
            &sigs["ter"]["signature"],
        );
        c.text(
            "sentence ter_cs signature",
            &ter_cs.signature(n_refs).format(false),
            &sigs["ter_cs"]["signature"],
        );
        for row in &set.rows {
            rows += 1;
            let id = format!(
                "{}#{}({})",
                set.name,
                row["i"],
                row["id"].as_str().unwrap_or("")
            );
            let hyp = row["hyp"].as_str().unwrap();
            let refs: Vec<&str> = row["refs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();

            let st = bleu.segment_statistics(hyp, &refs);
            c.exact(
                &format!("{id} bleu stats"),
                &st.to_vec(),
                &row["bleu"]["stats"],
            );
            check_bleu(
                &mut c,
                &format!("{id} bleu"),
                &bleu.score_from_stats(&st),
                &row["bleu"],
            );

            for (key, m) in [("chrf", &chrf), ("chrf_pp", &chrf_pp)] {
                let st = m.segment_statistics(hyp, &refs);
                let v: Vec<f64> = st.0.iter().map(|&x| x as f64).collect();
                c.exact(&format!("{id} {key} stats"), &v, &row[key]["stats"]);
                c.num(
                    &format!("{id} {key} score"),
                    m.score_from_stats(&st).score,
                    &row[key]["score"],
                );
            }
            for (key, m) in [("ter", &ter), ("ter_cs", &ter_cs)] {
                let st = m.segment_statistics(hyp, &refs);
                c.exact(
                    &format!("{id} {key} stats"),
                    &[st.num_edits as f64, st.ref_length],
                    &row[key]["stats"],
                );
                let s = m.score_from_stats(&st);
                c.num(&format!("{id} {key} score"), s.score, &row[key]["score"]);
                c.num(
                    &format!("{id} {key} num_edits"),
                    s.num_edits as f64,
                    &row[key]["num_edits"],
                );
            }
        }
    }
    assert_eq!(rows, 5 * 300 + 33 + 200 + 50);
    c.finish(rows * 20);
}

#[test]
fn edge_cases_include_cjk_and_long_line() {
    // guards against a fixture that silently lost the cases the README promises
    let sets = load_sets();
    let edge = sets.iter().find(|s| s.name == "edge-cases").unwrap();
    let ids: Vec<&str> = edge
        .rows
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for needed in [
        "cjk_chinese",
        "cjk_chinese_mixed",
        "very_long_line",
        "unicode_case",
        "empty_ref",
    ] {
        assert!(ids.contains(&needed), "edge case {needed} missing");
    }
    assert!(sets.iter().any(|s| s.name == "mlqe-en-zh-dev300"));
}
