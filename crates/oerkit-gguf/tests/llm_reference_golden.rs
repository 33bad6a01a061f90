//! Golden tests: greedy decoding against llama.cpp (`fixtures/gguf-llm-reference`), by the three
//! checks its README defines: teacher-forced, free-running stable prefix, first-position logits.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{TestModel, QWEN, SMOLLM2};
use oerkit_gguf::{GenerationConfig, GgufModel, LoadOptions, StopReason, WeightFormat};

fn reference(model: &TestModel) -> serde_json::Value {
    common::read_json("gguf-llm-reference/llm_reference.json")["models"][model.key].clone()
}

fn load(model: &TestModel, weights: WeightFormat) -> GgufModel {
    let options = LoadOptions {
        weights,
        ..LoadOptions::default()
    };
    GgufModel::load(&common::model_path(model), &options).unwrap()
}

/// llama.cpp's greedy tokens with the end-of-generation token appended when it stopped on one.
fn llama_tokens(prompt: &serde_json::Value) -> Vec<u32> {
    let l = &prompt["llamacpp"];
    let mut tokens = common::ids(&l["gen_ids"]);
    if let Some(eog) = l["eog_token"].as_u64() {
        tokens.push(eog as u32);
    }
    tokens
}

fn argmax(row: &[f32]) -> (usize, f32) {
    row.iter()
        .copied()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
}

/// Check 1 (teacher-forced) and check 3 (first position) from one forward pass per prompt.
fn teacher_forced_and_first_position(model: &TestModel, weights: WeightFormat) {
    let reference = reference(model);
    let engine = load(model, weights);
    let mut failures = Vec::new();
    let mut positions = 0;
    for prompt in reference["prompts"].as_array().unwrap() {
        let name = prompt["name"].as_str().unwrap();
        let prompt_ids = common::ids(&prompt["prompt_ids"]);
        let generated = llama_tokens(prompt);
        let margins: Vec<f64> = prompt["llamacpp"]["margins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_f64().unwrap())
            .collect();
        assert_eq!(margins.len(), generated.len(), "{name}: fixture shape");
        let mut input = prompt_ids.clone();
        input.extend(&generated[..generated.len() - 1]);
        let logits = engine.logits_all_positions(&input).unwrap();
        for (j, (&token, &margin)) in generated.iter().zip(&margins).enumerate() {
            positions += 1;
            let row = &logits[prompt_ids.len() - 1 + j];
            let (top, top_logit) = argmax(row);
            let gap = top_logit - row[token as usize];
            if gap > 0.5 {
                failures.push(format!(
                    "{name} pos {j}: llama.cpp token {token} is {gap:.3} below our top {top}"
                ));
            }
            if margin >= 1.0 && top != token as usize {
                failures.push(format!(
                    "{name} pos {j}: llama.cpp margin {margin:.3} but our top is {top}, not {token}"
                ));
            }
        }
        // Check 3: first generated position, raw logits of llama.cpp's top-10.
        let first = &prompt["llamacpp"]["top10_first3"][0];
        let ids = common::ids(&first["ids"]);
        let want: Vec<f64> = first["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let row = &logits[prompt_ids.len() - 1];
        if argmax(row).0 != ids[0] as usize {
            failures.push(format!("{name}: first-position top-1 differs"));
        }
        for (&id, &w) in ids.iter().zip(&want) {
            let diff = (row[id as usize] as f64 - w).abs();
            if diff > 1.0 {
                failures.push(format!(
                    "{name}: first-position logit of {id} is {} vs llama.cpp {w} (diff {diff:.3})",
                    row[id as usize]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}: {} failures over {positions} positions:\n{}",
        model.key,
        failures.len(),
        failures.join("\n")
    );
}

/// Check 2: free-running greedy output equals llama.cpp's over each prompt's stable prefix
/// (`stable_prefix_margin_0.25`). All prompts run as one batch, so this also covers padding.
fn free_running_stable_prefix(model: &TestModel) {
    let reference = reference(model);
    let engine = load(model, WeightFormat::Quantized);
    let prompts = reference["prompts"].as_array().unwrap();
    let prompt_ids: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| common::ids(&p["prompt_ids"]))
        .collect();
    let stable: Vec<usize> = prompts
        .iter()
        .map(|p| p["llamacpp"]["stable_prefix_margin_0.25"].as_u64().unwrap() as usize)
        .collect();
    let config = GenerationConfig {
        max_new_tokens: stable.iter().copied().max().unwrap(),
        batch_size: prompts.len(),
        ..GenerationConfig::default()
    };
    let generations = engine.generate_ids(&prompt_ids, &config).unwrap();
    for ((prompt, generation), &k) in prompts.iter().zip(&generations).zip(&stable) {
        let name = prompt["name"].as_str().unwrap();
        let want = llama_tokens(prompt);
        let mut ours = generation.token_ids.clone();
        if let StopReason::EndOfGeneration { token } = generation.stop_reason {
            ours.push(token);
        }
        let k = k.min(want.len());
        assert!(
            ours.len() >= k && ours[..k] == want[..k],
            "{}/{name}: first {k} tokens differ:\n ours {ours:?}\n llama.cpp {want:?}",
            model.key
        );
    }
}

#[test]
fn smollm2_teacher_forced_and_first_position_agree_with_llama_cpp() {
    teacher_forced_and_first_position(&SMOLLM2, WeightFormat::Quantized);
}

#[test]
fn smollm2_free_running_matches_llama_cpp_stable_prefix() {
    free_running_stable_prefix(&SMOLLM2);
}

#[test]
fn qwen_teacher_forced_and_first_position_agree_with_llama_cpp() {
    teacher_forced_and_first_position(&QWEN, WeightFormat::Quantized);
}

#[test]
fn qwen_free_running_matches_llama_cpp_stable_prefix() {
    free_running_stable_prefix(&QWEN);
}

/// Dequantized (f32) weights skip activation quantization, like transformers' fp32 run, which the
/// reference README shows passing the same checks.
#[test]
fn smollm2_dequantized_weights_agree_with_llama_cpp() {
    teacher_forced_and_first_position(&SMOLLM2, WeightFormat::Dequantized);
}
