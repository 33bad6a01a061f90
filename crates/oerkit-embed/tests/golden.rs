//! all-MiniLM-L6-v2 against `shared/fixtures/minilm-embeddings` (sentence-transformers
//! reference): exact word-piece ids, embeddings one at a time and batched, cosine pairs.
//! Needs the cached catalog model `all-minilm-l6-v2` (`scripts/fetch-models.sh`); fails, never
//! skips, when the fixture or the model is missing.

#![allow(clippy::unwrap_used)] // tests may unwrap

use oerkit_embed::{cosine, SentenceEmbedder};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    meta: Meta,
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Meta {
    model_safetensors_sha256: String,
    max_seq_length: usize,
}

#[derive(Deserialize)]
struct Item {
    idx: usize,
    text: String,
    ids: Vec<u32>,
    n_tokens_untruncated: usize,
    truncated: bool,
    embedding: Vec<f32>,
}

#[derive(Deserialize)]
struct Pair {
    a: usize,
    b: usize,
    cosine: f32,
}

fn fixture() -> Fixture {
    oerkit_testkit::require_shared();
    let path = oerkit_testkit::fixture("minilm-embeddings/embeddings.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (the golden fixture is required)", path.display()));
    serde_json::from_str(&text).expect("embeddings.json parses")
}

fn pairs() -> Vec<Pair> {
    let path = oerkit_testkit::fixture("minilm-embeddings/cosine_pairs.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (the golden fixture is required)", path.display()));
    serde_json::from_str(&text).expect("cosine_pairs.json parses")
}

fn embedder() -> SentenceEmbedder {
    SentenceEmbedder::load_cached("all-minilm-l6-v2").unwrap_or_else(|e| {
        panic!("{e}\n(run scripts/fetch-models.sh to put all-minilm-l6-v2 in the model cache)")
    })
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The fixture README's acceptance for a port: every element within 1e-5 or cosine >= 0.99999
/// (the issue asks for cosine >= 0.9999); we require both the element bound and the cosine.
fn assert_matches(item: &Item, got: &[f32], how: &str) {
    assert_eq!(got.len(), item.embedding.len(), "item {} ({how})", item.idx);
    let diff = max_abs_diff(got, &item.embedding);
    let cos = cosine(got, &item.embedding);
    assert!(
        diff <= 1e-5 && cos >= 0.99999,
        "item {} ({how}): max abs diff {diff:e}, cosine {cos} for {:?}",
        item.idx,
        item.text.chars().take(60).collect::<String>()
    );
}

#[test]
fn model_facts_match_the_fixture() {
    let fixture = fixture();
    let embedder = embedder();
    assert_eq!(embedder.dimension(), 384);
    assert_eq!(embedder.max_seq_len(), fixture.meta.max_seq_length);
    assert_eq!(
        embedder.model_sha256(),
        Some(fixture.meta.model_safetensors_sha256.as_str())
    );
}

#[test]
fn token_ids_match_exactly_including_truncation() {
    let fixture = fixture();
    let embedder = embedder();
    let mut truncated = 0;
    for item in &fixture.items {
        let ids = embedder.token_ids(&item.text).expect("tokenizes");
        assert_eq!(ids, item.ids, "item {} {:?}", item.idx, item.text);
        if item.truncated {
            truncated += 1;
            assert!(item.n_tokens_untruncated > embedder.max_seq_len());
            assert_eq!(ids.len(), embedder.max_seq_len());
            assert_eq!(
                ids.last(),
                Some(&102),
                "a truncated text still ends in [SEP]"
            );
        }
    }
    assert!(truncated >= 5, "the fixture exercises truncation");
}

#[test]
fn one_at_a_time_matches_the_reference() {
    let fixture = fixture();
    let embedder = embedder().with_batch_size(1);
    let texts: Vec<&str> = fixture.items.iter().map(|i| i.text.as_str()).collect();
    let got = embedder.embed(&texts).expect("embeds");
    assert_eq!(got.len(), fixture.items.len());
    for (item, vector) in fixture.items.iter().zip(&got) {
        assert_matches(item, vector, "batch 1");
        let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "item {} norm {norm}", item.idx);
    }
}

#[test]
fn padded_batches_match_the_reference_and_one_at_a_time() {
    let fixture = fixture();
    let texts: Vec<&str> = fixture.items.iter().map(|i| i.text.as_str()).collect();
    let single = embedder().with_batch_size(1).embed(&texts).expect("embeds");
    // 7 does not divide 80, and length-sorted batches of 7 still mix lengths.
    for batch_size in [7, 32] {
        let batched = embedder()
            .with_batch_size(batch_size)
            .embed(&texts)
            .expect("embeds");
        for ((item, b), s) in fixture.items.iter().zip(&batched).zip(&single) {
            assert_matches(item, b, &format!("batch {batch_size}"));
            let diff = max_abs_diff(b, s);
            assert!(
                diff <= 1e-5,
                "item {}: batch {batch_size} vs one at a time differ by {diff:e}",
                item.idx
            );
        }
    }
}

#[test]
fn cosine_pairs_match() {
    let fixture = fixture();
    let embedder = embedder();
    let texts: Vec<&str> = fixture.items.iter().map(|i| i.text.as_str()).collect();
    let got = embedder.embed(&texts).expect("embeds");
    let pairs = pairs();
    assert!(!pairs.is_empty());
    for pair in pairs {
        let ours = cosine(&got[pair.a], &got[pair.b]);
        assert!(
            (ours - pair.cosine).abs() <= 1e-5,
            "pair ({}, {}): ours {ours}, reference {}",
            pair.a,
            pair.b,
            pair.cosine
        );
    }
}

#[test]
fn empty_input_gives_no_vectors() {
    let embedder = embedder();
    assert!(embedder.embed(&[]).expect("embeds nothing").is_empty());
}
