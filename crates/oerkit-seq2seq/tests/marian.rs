//! Golden tests against `fixtures/marian-tiny-en-es` (reference outputs from transformers 5.23, see the
//! fixture's README): token ids, encoder states and first-step logits, greedy and beam-4 outputs, batched
//! generation, the sinusoidal table.

// Test helpers outside #[test] functions unwrap too: a failed setup step is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use candle_core::Device;
use oerkit_seq2seq::generate::{generate, pad_batch, GenerateOptions, Seq2SeqModel};
use oerkit_seq2seq::marian::{sinusoidal_positions, MarianCheckpoint, Precision};
use serde_json::Value;

const START: u32 = 1341;

fn fixture() -> PathBuf {
    oerkit_testkit::require_shared();
    oerkit_testkit::fixture("marian-tiny-en-es")
}

fn load() -> MarianCheckpoint {
    MarianCheckpoint::load(&fixture().join("model"), Precision::F32, &Device::Cpu).unwrap()
}

fn jsonl(name: &str) -> Vec<Value> {
    let path = fixture().join("reference").join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn json(name: &str) -> Value {
    let path = fixture().join("reference").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |best, i| if v[i] > v[best] { i } else { best })
}

/// Agreement with transformers' float32 values: returns whether every value is within 1e-4.
///
/// The fixture's random weights (std 2.0) give attention scores in the thousands, where the softmax
/// magnifies float32 rounding by ~1e5, so agreement depends on the exact summation order of every
/// matrix product. Measured with PyTorch itself (benches/seq2seq/marian_rounding_check.py;
/// transformers 5.24, torch 2.15, same weights; the fixture was made with 5.23 `sdpa`): `sdpa` 19/20
/// vectors within 1e-4 (greedy 60/60), `eager` 20/20 (greedy 59/60), eager with sdpa's softmax order
/// (as oerkit computes it) 18/20 (greedy 60/60), the same model with its Linear layers evaluated row by row
/// (same MKL, gemv instead of gemm) 13/20 (worst 2e-2), correctly rounded Linear layers 9/20, float64
/// 9/20 (worst 1e-2). Our products (candle's gemm for the Linear layers, multiply-add chains in
/// attention) round differently from MKL's, so we meet 1e-4 on 17/20 (worst 1.3e-3); scaling the queries before `q·kᵀ` instead of the scores (transformers 4.x order)
/// made it 11/20 (2e-2) — PyTorch patched the same way gives 11/20 too. Bound for every value: 5e-3.
fn check_close(got: &[f32], expected: &[f32], what: &str) -> bool {
    assert_eq!(got.len(), expected.len(), "{what}");
    let worst = max_abs_diff(got, expected);
    eprintln!("{what}: worst difference {worst:e}");
    assert!(worst < 5e-3, "{what}: differs by {worst}");
    worst <= 1e-4
}

fn opts(num_beams: usize) -> GenerateOptions {
    GenerateOptions {
        num_beams,
        max_new_tokens: 24,
        ..GenerateOptions::default()
    }
}

#[test]
fn tokenization_matches_marian_tokenizer() {
    let ckpt = load();
    let rows = jsonl("tokenization.jsonl");
    assert_eq!(rows.len(), 60);
    for row in &rows {
        let text = row["text"].as_str().unwrap();
        let name = row["name"].as_str().unwrap();
        assert_eq!(
            ckpt.tokenizer.encode(text).unwrap(),
            ids(&row["input_ids"]),
            "{name}"
        );
        assert_eq!(
            ckpt.tokenizer.decode(&ids(&row["input_ids"])),
            row["decode_input_ids"].as_str().unwrap(),
            "{name}"
        );
        if row["truncated"].as_bool().unwrap() {
            assert_eq!(
                ckpt.tokenizer.encode_with_limit(text, None).unwrap(),
                ids(&row["input_ids_untruncated"])
            );
            assert_eq!(
                ckpt.tokenizer.encode_with_limit(text, Some(32)).unwrap(),
                ids(&row["input_ids_max_length_32"])
            );
        }
    }
}

#[test]
fn tokenization_matches_on_all_ntrex_lines() {
    let ckpt = load();
    let rows = jsonl("tokenization_ntrex_eng.jsonl");
    assert_eq!(rows.len(), 1997);
    let mut mismatches = Vec::new();
    for row in &rows {
        let text = row["text"].as_str().unwrap();
        if ckpt.tokenizer.encode_with_limit(text, None).unwrap() != ids(&row["input_ids"]) {
            mismatches.push(row["line"].as_u64().unwrap());
        }
    }
    assert!(mismatches.is_empty(), "lines differing: {mismatches:?}");
}

#[test]
fn sinusoidal_positions_match_transformers() {
    let reference = json("sinusoidal_positions.json");
    let rows = reference["rows"].as_array().unwrap();
    let ours = sinusoidal_positions(rows.len(), 32);
    for (p, row) in rows.iter().enumerate() {
        assert_eq!(ours[p], floats(row), "position {p}");
    }
}

#[test]
fn encoder_states_and_first_step_logits_match() {
    let mut ckpt = load();
    let reference = json("logits.json");
    let rows = reference["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    let (mut vectors, mut within) = (0, 0);
    for row in rows {
        let input = ids(&row["input_ids"]);
        let (ids_t, mask) = pad_batch(std::slice::from_ref(&input), START, &Device::Cpu).unwrap();
        let hidden = ckpt.model.encoder_hidden(&ids_t, &mask).unwrap();
        let hidden: Vec<f32> = hidden.flatten_all().unwrap().to_vec1().unwrap();
        let expected: Vec<f32> = row["encoder_last_hidden_state"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(floats)
            .collect();
        assert!(
            check_close(
                &hidden,
                &expected,
                &format!("{} encoder state", row["name"]),
            ),
            "{} encoder state not within 1e-4",
            row["name"]
        );

        ckpt.model.encode(&ids_t, &mask).unwrap();
        for step in row["steps"].as_array().unwrap() {
            let dec_in = ids(&step["decoder_input_ids"]);
            let token = *dec_in.last().unwrap();
            let logits: Vec<f32> = ckpt
                .model
                .decode_step(&[token])
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let expected = floats(&step["all_logits"]);
            let what = format!("{} step {} logits", row["name"], step["step"]);
            vectors += 1;
            within += usize::from(check_close(&logits, &expected, &what));
            assert_eq!(
                argmax(&logits),
                step["argmax"].as_u64().unwrap() as usize,
                "{what}"
            );
        }
        ckpt.model.reset();
    }
    // Measured: 17 of the 20 logit vectors agree to 1e-4 everywhere (all 20 pick the same argmax).
    assert!(
        within >= 17,
        "only {within}/{vectors} logit vectors within 1e-4"
    );
}

/// Generates every fixture input alone; returns the names of inputs whose sequence differs.
fn check_generation(num_beams: usize, file: &str) -> Vec<String> {
    let mut ckpt = load();
    let rows = jsonl(file);
    assert_eq!(rows.len(), 60);
    let mut differing = Vec::new();
    for row in &rows {
        let name = row["name"].as_str().unwrap();
        let input = ids(&row["input_ids"]);
        let hyp = generate(&mut ckpt.model, &[input], &opts(num_beams), &Device::Cpu)
            .unwrap()
            .remove(0);
        let mut sequence = vec![START];
        sequence.extend(&hyp.tokens);
        if sequence != ids(&row["sequence"]) {
            differing.push(name.to_string());
            continue;
        }
        assert_eq!(
            ckpt.tokenizer.decode(&hyp.tokens),
            row["decoded"].as_str().unwrap(),
            "{name}"
        );
        if let Some(score) = row.get("sequence_score") {
            let expected = score.as_f64().unwrap() as f32;
            let got = hyp.score.unwrap();
            // A mean of per-step log-probabilities; the worst input drifts by 2.9e-3 (see check_close).
            assert!(
                (got - expected).abs() < 5e-3,
                "{name}: score {got} vs {expected}"
            );
        }
    }
    differing
}

#[test]
fn greedy_outputs_match_exactly() {
    assert_eq!(check_generation(1, "greedy.jsonl"), Vec::<String>::new());
}

#[test]
fn beam4_outputs_match_exactly() {
    assert_eq!(check_generation(4, "beam4.jsonl"), Vec::<String>::new());
}

#[test]
fn batched_generation_equals_unbatched() {
    let mut ckpt = load();
    let reference = json("batched.json");
    let inputs: Vec<Vec<u32>> = reference["input_ids"]
        .as_array()
        .unwrap()
        .iter()
        .zip(reference["attention_mask"].as_array().unwrap())
        .map(|(ids_row, mask_row)| {
            ids(ids_row)
                .into_iter()
                .zip(ids(mask_row))
                .filter(|&(_, m)| m == 1)
                .map(|(t, _)| t)
                .collect()
        })
        .collect();
    for (mode, beams) in [("greedy", 1), ("beam4", 4)] {
        let batched = generate(&mut ckpt.model, &inputs, &opts(beams), &Device::Cpu).unwrap();
        let rows = reference[mode]["rows"].as_array().unwrap();
        for ((hyp, row), input) in batched.iter().zip(rows).zip(&inputs) {
            let alone = generate(
                &mut ckpt.model,
                std::slice::from_ref(input),
                &opts(beams),
                &Device::Cpu,
            )
            .unwrap()
            .remove(0);
            assert_eq!(
                hyp.tokens, alone.tokens,
                "{mode} input {}: batched differs from unbatched",
                row["i"]
            );
            if let (Some(a), Some(b)) = (hyp.score, alone.score) {
                assert!(
                    (a - b).abs() < 1e-4,
                    "{mode} input {}: score {a} vs {b}",
                    row["i"]
                );
            }
            let mut sequence = vec![START];
            sequence.extend(&hyp.tokens);
            assert_eq!(
                sequence,
                ids(&row["batched_sequence"]),
                "{mode} input {}",
                row["i"]
            );
        }
        if beams > 1 {
            let scores = floats(&reference[mode]["sequences_scores"]);
            for (hyp, expected) in batched.iter().zip(scores) {
                assert!((hyp.score.unwrap() - expected).abs() < 5e-3);
            }
        }
    }
}

/// A mask that is not right padding (here left padding) keeps the padded positions and the mask: a
/// row decodes the same in a batch as alone with the same padding, also after the other source is
/// dropped (beam search's compaction of finished sources).
#[test]
fn left_padded_batches_decode_each_row_as_alone() {
    let mut ckpt = load();
    let rows = jsonl("greedy.jsonl");
    let (a, b) = (ids(&rows[3]["input_ids"]), ids(&rows[10]["input_ids"]));
    let width = a.len().max(b.len());
    let left_pad = |x: &[u32]| -> (Vec<u32>, Vec<u32>) {
        let pad = width - x.len();
        let mut ids = vec![START; pad];
        ids.extend_from_slice(x);
        let mut mask = vec![0u32; pad];
        mask.extend(std::iter::repeat_n(1u32, x.len()));
        (ids, mask)
    };
    let tensor = |rows: &[&Vec<u32>]| {
        let flat: Vec<u32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        candle_core::Tensor::from_vec(flat, (rows.len(), width), &Device::Cpu).unwrap()
    };
    let ((ia, ma), (ib, mb)) = (left_pad(&a), left_pad(&b));
    assert!(ma[0] == 0 || mb[0] == 0, "one input must be padded");
    let steps =
        |model: &mut dyn Seq2SeqModel, ids: &[&Vec<u32>], masks: &[&Vec<u32>], keep: &[u32]| {
            model.encode(&tensor(ids), &tensor(masks)).unwrap();
            let mut logits = Vec::new();
            let mut tokens = vec![START; ids.len()];
            for step in 0..3 {
                if step == 2 && keep.len() < tokens.len() {
                    model.select_rows(keep).unwrap();
                    tokens = keep.iter().map(|&r| tokens[r as usize]).collect();
                }
                let out: Vec<Vec<f32>> = model.decode_step(&tokens).unwrap().to_vec2().unwrap();
                tokens = out.iter().map(|r| argmax(r) as u32).collect();
                logits.push(out);
            }
            model.reset();
            logits
        };
    let batched = steps(&mut ckpt.model, &[&ia, &ib], &[&ma, &mb], &[1]);
    let alone_a = steps(&mut ckpt.model, &[&ia], &[&ma], &[0]);
    let alone_b = steps(&mut ckpt.model, &[&ib], &[&mb], &[0]);
    for step in 0..3 {
        // Until step 2 both rows decode; then only input b's row is kept.
        let b_row = if step < 2 { 1 } else { 0 };
        if step < 2 {
            assert!(max_abs_diff(&batched[step][0], &alone_a[step][0]) < 1e-4);
        }
        assert!(
            max_abs_diff(&batched[step][b_row], &alone_b[step][0]) < 1e-4,
            "step {step}"
        );
    }
}

#[test]
fn q8_mode_decodes_every_input_to_a_well_formed_sequence() {
    // Quantisation changes logits; the fixture's random weights (std 2.0) make it a hard case (9/60
    // greedy sequences identical to f32), so this only checks well-formed output. The layer's numerics
    // are checked in marian.rs's unit tests; agreement is measured by examples/q8_agreement.rs.
    let mut ckpt =
        MarianCheckpoint::load(&fixture().join("model"), Precision::Q8, &Device::Cpu).unwrap();
    let rows = jsonl("greedy.jsonl");
    let inputs: Vec<Vec<u32>> = rows.iter().map(|r| ids(&r["input_ids"])).collect();
    let hyps = generate(&mut ckpt.model, &inputs, &opts(1), &Device::Cpu).unwrap();
    assert_eq!(hyps.len(), 60);
    for h in &hyps {
        assert!(!h.tokens.is_empty() && h.tokens.len() <= 24);
        assert_eq!(*h.tokens.last().unwrap(), 0, "ends with EOS");
        assert!(!h.tokens.contains(&START), "pad never generated");
    }
}
