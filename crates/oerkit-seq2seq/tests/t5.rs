//! Golden tests of the T5 model and tokenizer against transformers' outputs for the tiny random
//! flan-t5-style checkpoint in `shared/fixtures/t5-tiny` (see its README for how they were made).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use oerkit_seq2seq::generate::pad_batch;
use oerkit_seq2seq::t5::{relative_position_bucket, T5Model, T5Task, T5Tokenizer};
use oerkit_seq2seq::{generate, GenerateOptions, Seq2SeqModel};
use serde_json::Value;

fn fixture_dir() -> PathBuf {
    oerkit_testkit::require_shared();
    oerkit_testkit::fixture("t5-tiny")
}

fn model_dir() -> PathBuf {
    fixture_dir().join("model")
}

fn reference(name: &str) -> PathBuf {
    fixture_dir().join("reference").join(name)
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn ids(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect()
}

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

fn load_model() -> T5Model {
    T5Model::load(&model_dir()).unwrap()
}

fn load_tokenizer() -> T5Tokenizer {
    T5Tokenizer::load(&model_dir(), 900).unwrap()
}

/// The 40 inputs as text, by index.
fn input_texts() -> Vec<String> {
    read_jsonl(&reference("tokenization.jsonl"))
        .iter()
        .map(|row| row["text"].as_str().unwrap().to_string())
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn relative_position_buckets_match_transformers() {
    let reference = read_json(&reference("relative_position_buckets.json"));
    let positions: Vec<i64> = reference["relative_position"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(positions.len(), 601);
    for (key, bidirectional) in [("bidirectional", true), ("unidirectional", false)] {
        let expected = ids(&reference[key]);
        let ours: Vec<u32> = positions
            .iter()
            .map(|&p| relative_position_bucket(p, bidirectional, 32, 128))
            .collect();
        assert_eq!(ours, expected, "{key} buckets");
    }
}

#[test]
fn tokenizer_json_gives_reference_ids_and_decodes() {
    let tokenizer = load_tokenizer();
    let rows = read_jsonl(&reference("tokenization.jsonl"));
    assert_eq!(rows.len(), 40);
    for row in &rows {
        let text = row["text"].as_str().unwrap();
        let expected = ids(&row["input_ids"]);
        assert_eq!(tokenizer.encode(text).unwrap(), expected, "{}", row["name"]);
        assert_eq!(
            tokenizer.decode(&expected).unwrap(),
            row["decode_input_ids"].as_str().unwrap(),
            "{}",
            row["name"]
        );
    }
}

#[test]
fn tokenizers_match_reference_on_all_ntrex_lines() {
    let from_json = load_tokenizer();
    let from_spm = T5Tokenizer::from_spiece(&model_dir().join("spiece.model"), None, 900).unwrap();
    let rows = read_jsonl(&reference("tokenization_ntrex_eng.jsonl"));
    assert_eq!(rows.len(), 1997);
    for row in &rows {
        let text = row["text"].as_str().unwrap();
        let expected = ids(&row["input_ids"]);
        assert_eq!(
            from_json.encode(text).unwrap(),
            expected,
            "line {}",
            row["line"]
        );
        assert_eq!(
            from_spm.encode(text).unwrap(),
            expected,
            "spm, line {}",
            row["line"]
        );
    }
}

#[test]
fn spiece_model_tokenizer_equals_transformers_including_sentinels() {
    // Without tokenizer.json: pieces 0..799 from the spm, sentinels <extra_id_99>=800 … <extra_id_0>=899.
    let tokenizer = T5Tokenizer::from_spiece(&model_dir().join("spiece.model"), None, 900).unwrap();
    assert_eq!(tokenizer.token_id("<extra_id_0>"), Some(899));
    assert_eq!(tokenizer.token_id("<extra_id_99>"), Some(800));
    for row in read_jsonl(&reference("tokenization.jsonl")) {
        let text = row["text"].as_str().unwrap();
        let expected = ids(&row["input_ids"]);
        assert_eq!(tokenizer.encode(text).unwrap(), expected, "{}", row["name"]);
        assert_eq!(
            tokenizer.decode(&expected).unwrap(),
            row["decode_input_ids"].as_str().unwrap(),
            "{}",
            row["name"]
        );
    }
}

#[test]
fn task_prefixes() {
    let tokenizer = load_tokenizer();
    let translate = T5Task::Translate {
        source: "en".into(),
        target: "de".into(),
    };
    assert_eq!(
        tokenizer.prompt(&translate, "Hello.").unwrap(),
        "translate English to German: Hello."
    );
    assert_eq!(
        tokenizer.prompt(&T5Task::Summarize, "Text.").unwrap(),
        "summarize: Text."
    );
    // The fixture vocabulary has no MADLAD <2xx> tokens.
    assert!(!tokenizer.has_language_tokens());
    assert_eq!(tokenizer.language_token("de"), None);
}

#[test]
fn encoder_output_and_first_logits_within_1e4() {
    let mut model = load_model();
    let device = Device::Cpu;
    let reference = read_json(&reference("logits.json"));
    let rows = reference["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 12);
    for row in rows {
        let name = row["name"].as_str().unwrap();
        let input = ids(&row["input_ids"]);
        let (input_ids, mask) = pad_batch(std::slice::from_ref(&input), 0, &device).unwrap();
        let encoded = model.encoder_output(&input_ids, &mask).unwrap();
        let expected: Vec<f32> = row["encoder_last_hidden_state"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(floats)
            .collect();
        let ours: Vec<f32> = encoded.flatten_all().unwrap().to_vec1().unwrap();
        let diff = max_abs_diff(&ours, &expected);
        assert!(diff < 1e-4, "{name}: encoder output differs by {diff}");

        for step in row["steps"].as_array().unwrap() {
            let decoder_ids = ids(&step["decoder_input_ids"]);
            let expected = floats(&step["all_logits"]);
            // The whole prefix at once (causal mask, no cache), as the reference did.
            let mut state = model.start_decoding(&encoded, &mask).unwrap();
            let tokens = Tensor::new(decoder_ids.as_slice(), &device)
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            let logits = model.decode_with(&mut state, &tokens).unwrap();
            let ours: Vec<f32> = logits.flatten_all().unwrap().to_vec1().unwrap();
            let diff = max_abs_diff(&ours, &expected);
            assert!(
                diff < 1e-4,
                "{name} {decoder_ids:?}: logits differ by {diff}"
            );
            let argmax = step["argmax"].as_u64().unwrap() as usize;
            let best = ours
                .iter()
                .enumerate()
                .fold(0, |b, (i, &x)| if x > ours[b] { i } else { b });
            assert_eq!(best, argmax, "{name}: argmax");

            // The same through the cache, one token at a time, via the generation interface.
            model.encode(&input_ids, &mask).unwrap();
            let mut cached = Vec::new();
            for &token in &decoder_ids {
                cached = model
                    .decode_step(&[token])
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap();
            }
            let diff = max_abs_diff(&cached, &expected);
            assert!(
                diff < 1e-4,
                "{name} {decoder_ids:?} cached: logits differ by {diff}"
            );
        }
    }
}

fn options(num_beams: usize) -> GenerateOptions {
    GenerateOptions {
        num_beams,
        max_new_tokens: 24,
        ..GenerateOptions::default()
    }
}

/// Generates every reference input one at a time and compares whole outputs (and, for beam search,
/// scores) with transformers. T5 has no forced EOS: outputs that do not stop end after 24 tokens.
fn check_generation(file: &str, num_beams: usize) {
    let mut model = load_model();
    let tokenizer = load_tokenizer();
    let rows = read_jsonl(&reference(file));
    assert_eq!(rows.len(), 40);
    let mut ran_to_limit = 0;
    for row in &rows {
        let input = ids(&row["input_ids"]);
        let out = generate(&mut model, &[input], &options(num_beams), &Device::Cpu).unwrap();
        let expected = ids(&row["generated_ids"]);
        ran_to_limit += usize::from(expected.len() == 24 && expected.last() != Some(&1));
        assert_eq!(
            out[0].tokens, expected,
            "{} (beam {num_beams})",
            row["name"]
        );
        assert_eq!(
            tokenizer.decode(&out[0].tokens).unwrap(),
            row["decoded"].as_str().unwrap(),
            "{}",
            row["name"]
        );
        if let Some(score) = row.get("sequence_score").and_then(Value::as_f64) {
            let ours = out[0].score.expect("beam search scores its hypotheses");
            assert!(
                (f64::from(ours) - score).abs() < 1e-4,
                "{}: score {ours} vs {score}",
                row["name"]
            );
        }
    }
    // The outputs that run to the limit without EOS are the ones a forced EOS would change.
    assert!(ran_to_limit >= 1, "some reference outputs run to the limit");
}

#[test]
fn greedy_outputs_equal_reference() {
    check_generation("greedy.jsonl", 1);
}

#[test]
fn beam4_outputs_equal_reference() {
    check_generation("beam4.jsonl", 4);
}

/// A reference sequence without the start token, cut after its first EOS.
fn generated_part(sequence: &[u32]) -> Vec<u32> {
    let tail = &sequence[1..];
    match tail.iter().position(|&t| t == 1) {
        Some(eos) => tail[..=eos].to_vec(),
        None => tail.to_vec(),
    }
}

#[test]
fn batched_generation_equals_unbatched() {
    let mut model = load_model();
    let reference = read_json(&reference("batched.json"));
    let inputs: Vec<Vec<u32>> = reference["input_indices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap() as usize)
        .map(|i| load_tokenizer().encode(&input_texts()[i]).unwrap())
        .collect();
    assert_eq!(inputs.len(), 8);
    // Greedy: against transformers.
    let out = generate(&mut model, &inputs, &options(1), &Device::Cpu).unwrap();
    for (row, hyp) in reference["greedy"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&out)
    {
        let expected = generated_part(&ids(&row["unbatched_sequence"]));
        assert_eq!(
            generated_part(&ids(&row["batched_sequence"])),
            expected,
            "reference batched == unbatched"
        );
        assert_eq!(hyp.tokens, expected, "greedy: input {}", row["i"]);
    }
    // Beam 4: the padded batch gives exactly what each input gives alone.
    let batched = generate(&mut model, &inputs, &options(4), &Device::Cpu).unwrap();
    for (input, hyp) in inputs.iter().zip(&batched) {
        let alone = generate(
            &mut model,
            std::slice::from_ref(input),
            &options(4),
            &Device::Cpu,
        )
        .unwrap()
        .remove(0);
        assert_eq!(hyp.tokens, alone.tokens);
        let (a, b) = (hyp.score.unwrap(), alone.score.unwrap());
        assert!((a - b).abs() < 1e-5, "beam scores {a} vs {b}");
    }
}

/// A scratch copy of the fixture checkpoint (symlinks) whose `config.json` is `edit`ed.
fn checkpoint_with_config(edit: impl FnOnce(&mut Value)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(model_dir()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "config.json" {
            std::os::unix::fs::symlink(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
    }
    let mut config = read_json(&model_dir().join("config.json"));
    edit(&mut config);
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_string(&config).unwrap(),
    )
    .unwrap();
    dir
}

fn load_error(dir: &Path) -> String {
    match T5Model::load(dir) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_checkpoints_give_clear_errors() {
    let dir = checkpoint_with_config(|c| c["feed_forward_proj"] = "gated-swish".into());
    let err = load_error(dir.path());
    assert!(
        err.contains("config.json") && err.contains("gated-swish"),
        "{err}"
    );

    let dir = checkpoint_with_config(|c| c["model_type"] = "bart".into());
    let err = load_error(dir.path());
    assert!(err.contains("config.json") && err.contains("bart"), "{err}");

    let dir = checkpoint_with_config(|c| c["d_ff"] = 128.into());
    let err = load_error(dir.path());
    assert!(
        err.contains("model.safetensors") && err.contains("wi_0") && err.contains("128"),
        "{err}"
    );

    let dir = checkpoint_with_config(|_| {});
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("model.safetensors"), "{err}");

    // A tokenizer with more tokens than the model has embedding rows.
    let err = match T5Tokenizer::load(&model_dir(), 850) {
        Ok(_) => panic!("loaded"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("tokenizer.json") && err.contains("850"),
        "{err}"
    );
}

#[test]
fn tied_head_rescales_decoder_output() {
    // Original T5 (tie_word_embeddings absent = true): logits = (h * d_model^-0.5) · shared^T.
    // Checked against the untied model run with lm_head := shared, scaled by hand.
    let tied_dir = checkpoint_with_config(|c| {
        c.as_object_mut().unwrap().remove("tie_word_embeddings");
    });
    let mut tied = T5Model::load(tied_dir.path()).unwrap();
    let untied = load_model();
    let device = Device::Cpu;
    let input = load_tokenizer().encode("summarize: A short text.").unwrap();
    let (input_ids, mask) = pad_batch(&[input], 0, &device).unwrap();
    tied.encode(&input_ids, &mask).unwrap();
    let tied_logits: Vec<f32> = tied
        .decode_step(&[0])
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let encoded = untied.encoder_output(&input_ids, &mask).unwrap();
    let mut state = untied.start_decoding(&encoded, &mask).unwrap();
    let start = Tensor::new(&[[0u32]], &device).unwrap();
    let hidden = untied.decoder_hidden(&mut state, &start).unwrap();
    let manual: Vec<f32> = (hidden * 32f64.powf(-0.5))
        .unwrap()
        .matmul(&untied.embeddings().t().unwrap())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let diff = max_abs_diff(&tied_logits, &manual);
    assert!(diff < 1e-5, "tied logits differ by {diff}");
}

#[test]
fn translation_engine_runs_t5_checkpoints() {
    use oerkit_seq2seq::{open_checkpoint, Seq2SeqOptions};
    use oerkit_translate::TranslateRequest;
    let opts = Seq2SeqOptions {
        num_beams: Some(1),
        max_new_tokens: Some(24),
        ..Seq2SeqOptions::default()
    };
    let mut engine = open_checkpoint(&model_dir(), &opts).unwrap();
    assert_eq!(engine.info().engine, "t5");
    // Inputs that carry their own task prefix go in as written.
    let rows: Vec<Value> = read_jsonl(&reference("greedy.jsonl"));
    assert_eq!(rows.len(), 40);
    let texts = input_texts();
    let requests: Vec<TranslateRequest> = rows
        .iter()
        .map(|row| TranslateRequest {
            text: texts[row["i"].as_u64().unwrap() as usize].clone(),
            source_lang: "en".into(),
            target_lang: "de".into(),
            context: String::new(),
        })
        .filter(|r| r.text.starts_with("summarize: ") || r.text.starts_with("translate "))
        .collect();
    assert!(!requests.is_empty());
    let outputs = engine.translate(&requests).unwrap();
    let expected: Vec<&str> = rows
        .iter()
        .filter(|row| {
            let text = &texts[row["i"].as_u64().unwrap() as usize];
            text.starts_with("summarize: ") || text.starts_with("translate ")
        })
        .map(|row| row["decoded"].as_str().unwrap())
        .collect();
    let got: Vec<&str> = outputs.iter().map(|o| o.text.trim()).collect();
    let expected: Vec<&str> = expected.iter().map(|t| t.trim()).collect();
    assert_eq!(got, expected);
}
