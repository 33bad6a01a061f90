//! Model-independent decoding: the [`Seq2SeqModel`] seam an encoder-decoder implements, and greedy and
//! beam search that reproduce Hugging Face `generate` (transformers 5.x, vectorised beam search) token
//! for token: logits processors `NoBadWords` (pad), `MinNewTokensLength`, `ForcedEOS` at the last step
//! (only for checkpoints that configure `forced_eos_token_id`, as Marian does and T5 does not);
//! beam search keeps 2·num_beams candidates per step, lets only the top num_beams finish, scores a
//! finished hypothesis `sum_logprobs / n_generated^length_penalty`, and stops a batch item with the
//! `early_stopping=False` heuristic. Rows of a batch are independent, so finished rows and batch items
//! are dropped from the model's state instead of being decoded on as padding (same result, less work).

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use crate::cpu::{exp_nonpositive, with_f32_slices};
use crate::error::{Result, Seq2SeqError};

/// The generation-relevant facts of a checkpoint (config.json / generation_config.json).
#[derive(Debug, Clone, PartialEq)]
pub struct Seq2SeqConfig {
    pub decoder_start_token_id: u32,
    pub eos_token_id: u32,
    pub pad_token_id: u32,
    /// Width of the logits.
    pub vocab_size: usize,
    /// Most decoder positions (start token included) the model supports.
    pub max_length: usize,
    /// Single-token `bad_words_ids` (multi-token entries are not supported and are left out).
    pub bad_words_ids: Vec<u32>,
    /// The token forced at the last step allowed by the length limit (HF's `ForcedEOSTokenLogitsProcessor`,
    /// present only when the checkpoint configures `forced_eos_token_id`); `None`: an output that does not
    /// stop by itself simply ends at the limit.
    pub forced_eos_token_id: Option<u32>,
}

/// An encoder-decoder that decodes one position at a time with a cache. The model owns its state:
/// the encoder output of the current batch, its padding mask, and the decoder's key/value caches.
pub trait Seq2SeqModel {
    fn config(&self) -> &Seq2SeqConfig;

    /// Encodes a right-padded batch: `input_ids` u32 `[batch, src_len]`, `attention_mask` u32
    /// `[batch, src_len]` (1 = token, 0 = padding). Clears any previous decoder state.
    fn encode(&mut self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<()>;

    /// Feeds one token per row at the next decoder position; returns raw float32 logits `[rows, vocab]`
    /// for that position (no logits processor applied).
    fn decode_step(&mut self, tokens: &[u32]) -> Result<Tensor>;

    /// Keeps the given rows of every per-row state (encoder output, mask, caches), in that order;
    /// an index may repeat (beam search expands a batch item into its beams this way).
    fn select_rows(&mut self, rows: &[u32]) -> Result<()>;

    /// Drops all batch state.
    fn reset(&mut self);
}

/// Decoding settings, with Hugging Face's names and meanings.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// 1 = greedy.
    pub num_beams: usize,
    pub length_penalty: f32,
    pub early_stopping: bool,
    /// Tokens generated after the start token, EOS included; with a `forced_eos_token_id` the last one is
    /// forced to be that token.
    pub max_new_tokens: usize,
    /// EOS is banned until this many tokens were generated.
    pub min_new_tokens: usize,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            num_beams: 1,
            length_penalty: 1.0,
            early_stopping: false,
            max_new_tokens: 256,
            min_new_tokens: 0,
        }
    }
}

/// One output: the generated ids after the start token (ending with EOS unless the model's position
/// limit cut it) and, for beam search, the length-penalised score.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    pub tokens: Vec<u32>,
    pub score: Option<f32>,
}

/// Pads a batch of id sequences on the right with `pad`; returns `(input_ids, attention_mask)`.
pub fn pad_batch(batch: &[Vec<u32>], pad: u32, device: &Device) -> Result<(Tensor, Tensor)> {
    let width = batch.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut ids = Vec::with_capacity(batch.len() * width);
    let mut mask = Vec::with_capacity(batch.len() * width);
    for row in batch {
        ids.extend_from_slice(row);
        mask.extend(std::iter::repeat_n(1u32, row.len()));
        ids.extend(std::iter::repeat_n(pad, width - row.len()));
        mask.extend(std::iter::repeat_n(0u32, width - row.len()));
    }
    Ok((
        Tensor::from_vec(ids, (batch.len(), width), device)?,
        Tensor::from_vec(mask, (batch.len(), width), device)?,
    ))
}

/// Generates for every input (already tokenised, each with its EOS); one hypothesis per input.
pub fn generate(
    model: &mut dyn Seq2SeqModel,
    inputs: &[Vec<u32>],
    opts: &GenerateOptions,
    device: &Device,
) -> Result<Vec<Hypothesis>> {
    if inputs.is_empty() {
        return Ok(Vec::new());
    }
    let cfg = model.config().clone();
    // max_length as generate() computes it from max_new_tokens (start token + new tokens), capped by the
    // model's positions.
    let max_length = (1 + opts.max_new_tokens).min(cfg.max_length);
    let (ids, mask) = pad_batch(inputs, cfg.pad_token_id, device)?;
    model.reset();
    model.encode(&ids, &mask)?;
    let result = if opts.num_beams <= 1 {
        greedy(model, inputs.len(), &cfg, opts, max_length)
    } else {
        beam_search(model, inputs.len(), &cfg, opts, max_length)
    };
    model.reset();
    result
}

/// What the logits processors allow at one step.
struct StepRules<'a> {
    banned: &'a [u32],
    eos: u32,
    ban_eos: bool,
    /// The token that is the only choice at this step, if any.
    forced: Option<u32>,
}

impl<'a> StepRules<'a> {
    fn new(
        cfg: &'a Seq2SeqConfig,
        opts: &GenerateOptions,
        cur_len: usize,
        max_length: usize,
    ) -> Self {
        Self {
            banned: &cfg.bad_words_ids,
            eos: cfg.eos_token_id,
            ban_eos: cur_len - 1 < opts.min_new_tokens,
            // ForcedEOSTokenLogitsProcessor: when the sequence (start token included) has max_length - 1
            // tokens, only the forced token remains, with score 0.
            forced: cfg
                .forced_eos_token_id
                .filter(|_| cur_len == max_length - 1),
        }
    }

    /// The processed score of token `t` whose unprocessed score is `value` (what the processors
    /// would leave there).
    #[inline]
    fn processed(&self, t: usize, value: f32) -> f32 {
        if let Some(forced) = self.forced {
            return if t == forced as usize {
                0.0
            } else {
                f32::NEG_INFINITY
            };
        }
        if self.banned.contains(&(t as u32)) || (self.ban_eos && t == self.eos as usize) {
            f32::NEG_INFINITY
        } else {
            value
        }
    }

    /// First index of the maximum processed score of a row of unprocessed scores, like
    /// `torch.argmax` after the processors. Processing only lowers scores, so a score that does not
    /// beat the best so far unprocessed cannot beat it processed: most of the row costs a compare.
    fn argmax(&self, row: &[f32]) -> u32 {
        let Some(&first) = row.first() else {
            return 0;
        };
        let (mut best, mut best_score) = (0, self.processed(0, first));
        for (t, &x) in row.iter().enumerate().skip(1) {
            if x > best_score {
                let s = self.processed(t, x);
                if s > best_score {
                    (best, best_score) = (t, s);
                }
            }
        }
        best as u32
    }
}

/// `f(row index, row)` for every row of the logits `[rows, vocab]`, rows in parallel, read in place
/// (no copy of rows x vocab values per step).
fn map_rows<T: Send>(logits: &Tensor, f: impl Fn(usize, &[f32]) -> T + Sync) -> Result<Vec<T>> {
    let logits = logits.contiguous()?;
    let width = logits.dim(1)?;
    if width == 0 {
        return Err(Seq2SeqError::Other(
            "the model gave rows of 0 logits".into(),
        ));
    }
    with_f32_slices(std::slice::from_ref(&logits), |s| {
        Ok(s[0]
            .par_chunks(width)
            .enumerate()
            .map(|(row, scores)| f(row, scores))
            .collect())
    })
}

fn greedy(
    model: &mut dyn Seq2SeqModel,
    batch: usize,
    cfg: &Seq2SeqConfig,
    opts: &GenerateOptions,
    max_length: usize,
) -> Result<Vec<Hypothesis>> {
    let mut outputs: Vec<Vec<u32>> = vec![Vec::new(); batch];
    // `active[r]` = the batch item decoded in model row r.
    let mut active: Vec<usize> = (0..batch).collect();
    let mut last: Vec<u32> = vec![cfg.decoder_start_token_id; batch];
    let mut cur_len = 1;
    while cur_len < max_length && !active.is_empty() {
        let logits = model.decode_step(&last)?;
        let rules = StepRules::new(cfg, opts, cur_len, max_length);
        let tokens = map_rows(&logits, |_, row| rules.argmax(row))?;
        let mut keep = Vec::with_capacity(active.len());
        let mut next_active = Vec::with_capacity(active.len());
        last.clear();
        for (row, token) in tokens.into_iter().enumerate() {
            let item = active[row];
            outputs[item].push(token);
            if token != cfg.eos_token_id {
                keep.push(row as u32);
                next_active.push(item);
                last.push(token);
            }
        }
        if next_active.len() != active.len() && !next_active.is_empty() {
            model.select_rows(&keep)?;
        }
        active = next_active;
        cur_len += 1;
    }
    Ok(outputs
        .into_iter()
        .map(|tokens| Hypothesis {
            tokens,
            score: None,
        })
        .collect())
}

/// Score offset transformers adds to rule a candidate out (kept as arithmetic, not a flag, where the
/// ordering it produces matters).
const EXCLUDED: f32 = -1.0e9;

struct BeamItem {
    /// Running beams: generated tokens and cumulative log-probability.
    running: Vec<(Vec<u32>, f32)>,
    /// Finished hypotheses, best first, at most num_beams.
    finished: Vec<(Vec<u32>, f32)>,
    done: bool,
}

/// `Σ exp(x - max)` over a row (x ≤ max), eight running sums at a time.
///
/// By hand because libm's `expf` is a call per value that the compiler cannot vectorize: over a
/// 58k-token vocabulary this sum was most of beam search's own work. The exponential is Cephes'
/// `expf` (Cody-Waite reduction, degree-6 polynomial, within 2 ulp on the range used), written
/// branch-free so that the loop vectorizes.
fn exp_sum(row: &[f32], max: f32) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = row.chunks_exact(8);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += exp_nonpositive(x - max);
        }
    }
    let mut sum = lanes.iter().sum::<f32>();
    for &x in rest {
        sum += exp_nonpositive(x - max);
    }
    sum
}

/// `max` and `ln Σ exp(x - max)` of a row: its log-softmax is `x - max - ln Σ`.
fn log_softmax_terms(row: &[f32]) -> (f32, f32) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (max, exp_sum(row, max).ln())
}

/// The `limit` best `(log_softmax(row)[t] processed + base, beam * vocab + t)`, best first, ties to
/// the lower index (what pushing every token in order through [`push_top`] keeps). The log-softmax
/// is `x - max - ln Σ exp(x - max)`, evaluated only for tokens that can enter: every step of it is
/// monotone, so once the list is full a token whose raw score is below the raw score of the worst
/// entry cannot beat that entry (processing only lowers scores, and a tie does not enter).
fn beam_row_candidates(
    row: &[f32],
    rules: &StepRules,
    base: f32,
    beam: usize,
    limit: usize,
) -> Vec<(f32, usize)> {
    let vocab = row.len();
    let (max, log_sum) = log_softmax_terms(row);
    let mut cands: Vec<(f32, usize)> = Vec::with_capacity(limit + 1);
    let mut threshold = f32::NEG_INFINITY;
    // A forced step gives one token 0 whatever its raw score: no shortcut there.
    let monotone = rules.forced.is_none();
    for (t, &x) in row.iter().enumerate() {
        if monotone && x < threshold {
            continue;
        }
        let score = rules.processed(t, x - max - log_sum) + base;
        push_top(&mut cands, limit, (score, beam * vocab + t));
        if monotone && cands.len() == limit {
            let (worst, idx) = cands[limit - 1];
            // A worst entry ruled out by a processor says nothing about raw scores.
            threshold = if worst.is_finite() {
                row[idx - beam * vocab]
            } else {
                f32::NEG_INFINITY
            };
        }
    }
    cands
}

fn beam_search(
    model: &mut dyn Seq2SeqModel,
    batch: usize,
    cfg: &Seq2SeqConfig,
    opts: &GenerateOptions,
    max_length: usize,
) -> Result<Vec<Hypothesis>> {
    let k = opts.num_beams;
    let vocab = cfg.vocab_size;
    let expand: Vec<u32> = (0..batch as u32)
        .flat_map(|b| std::iter::repeat_n(b, k))
        .collect();
    model.select_rows(&expand)?;
    let mut items: Vec<BeamItem> = (0..batch)
        .map(|_| BeamItem {
            // Only beam 0 is live at first; the others start at -1e9 so step 1 expands beam 0 alone.
            running: (0..k)
                .map(|j| (Vec::new(), if j == 0 { 0.0 } else { EXCLUDED }))
                .collect(),
            finished: Vec::new(),
            done: false,
        })
        .collect();
    // Items whose beams are rows of the model, in row order (k rows each).
    let mut active: Vec<usize> = (0..batch).collect();
    let mut cur_len = 1;
    let mut last: Vec<u32> = vec![cfg.decoder_start_token_id; batch * k];
    while cur_len < max_length && !active.is_empty() {
        let logits = model.decode_step(&last)?;
        if logits.dim(1)? != vocab {
            return Err(Seq2SeqError::Other(format!(
                "the model gave {} logits per row; its config says the vocabulary has {vocab}",
                logits.dim(1)?
            )));
        }
        let rules = StepRules::new(cfg, opts, cur_len, max_length);
        // Each row's 2k best continuations, rows in parallel (the log-softmax and scan over the
        // vocabulary are most of a step's work outside the model). An item's 2k best over all its
        // beams are among its rows' 2k best, so merging those gives the same candidates.
        let row_candidates = map_rows(&logits, |row, scores| {
            let j = row % k;
            let base = items[active[row / k]].running[j].1;
            beam_row_candidates(scores, &rules, base, j, 2 * k)
        })?;
        let n_generated = cur_len as f32; // tokens after the start once this step's token is added
        let mut rows_next: Vec<u32> = Vec::new();
        let mut active_next = Vec::new();
        last.clear();
        for (slot, &item_idx) in active.iter().enumerate() {
            let item = &mut items[item_idx];
            // (score, flat index beam * vocab + token), the 2k best over all beams: the rows' own
            // best pushed in flat-index order, as a scan of every score would push them (ties
            // resolve the same way).
            let mut merged: Vec<(f32, usize)> = row_candidates[slot * k..(slot + 1) * k]
                .iter()
                .flatten()
                .copied()
                .collect();
            merged.sort_by_key(|&(_, idx)| idx);
            let mut cands: Vec<(f32, usize)> = Vec::with_capacity(2 * k + 1);
            for cand in merged {
                push_top(&mut cands, 2 * k, cand);
            }
            let hits: Vec<bool> = cands
                .iter()
                .map(|&(_, idx)| {
                    (idx % vocab) as u32 == cfg.eos_token_id || cur_len + 1 >= max_length
                })
                .collect();
            let seq_of = |idx: usize| {
                let mut s = item.running[idx / vocab].0.clone();
                s.push((idx % vocab) as u32);
                s
            };
            // Finished hypotheses: only the top k candidates may finish; nothing enters once the item
            // can no longer improve.
            let pool_full = item.finished.len() == k;
            let closed = item.done || (opts.early_stopping && pool_full);
            if !closed {
                for (c, &(score, idx)) in cands.iter().enumerate().take(k) {
                    if !hits[c] || !score.is_finite() {
                        continue;
                    }
                    let normalised = score / n_generated.powf(opts.length_penalty);
                    insert_finished(&mut item.finished, k, (seq_of(idx), normalised));
                }
            }
            // Running beams for the next step: candidates that hit a stop criterion sink by -1e9.
            let mut running: Vec<(f32, usize)> = cands
                .iter()
                .zip(&hits)
                .map(|(&(score, idx), &hit)| (if hit { score + EXCLUDED } else { score }, idx))
                .collect();
            running.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            running.truncate(k);
            let new_running: Vec<(Vec<u32>, f32)> =
                running.iter().map(|&(s, idx)| (seq_of(idx), s)).collect();
            let parents: Vec<usize> = running.iter().map(|&(_, idx)| idx / vocab).collect();
            item.running = new_running;
            // Early-stop heuristic (early_stopping=False): stop once the best running beam, scored at
            // the current length, cannot beat the worst finished hypothesis.
            let n_now = cur_len as f32;
            let best_possible = item.running[0].1 / n_now.powf(opts.length_penalty);
            let pool_full = item.finished.len() == k;
            let can_improve = !pool_full
                || item
                    .finished
                    .last()
                    .is_some_and(|worst| best_possible > worst.1);
            if !can_improve || (opts.early_stopping && pool_full) {
                item.done = true;
            }
            let all_hit = hits.iter().all(|&h| h);
            if !item.done && !all_hit {
                active_next.push(item_idx);
                for (j, &parent) in parents.iter().enumerate() {
                    rows_next.push((slot * k + parent) as u32);
                    last.push(*item.running[j].0.last().expect("a token was just pushed"));
                }
            }
        }
        if active_next.is_empty() {
            break;
        }
        model.select_rows(&rows_next)?;
        active = active_next;
        cur_len += 1;
    }
    Ok(items
        .into_iter()
        .map(|item| match item.finished.into_iter().next() {
            Some((tokens, score)) => Hypothesis {
                tokens,
                score: Some(score),
            },
            // Only when the model's position limit ended decoding before any EOS.
            None => {
                let (tokens, score) = item.running.into_iter().next().unwrap_or_default();
                Hypothesis {
                    tokens,
                    score: Some(score / (cur_len as f32).powf(opts.length_penalty)),
                }
            }
        })
        .collect())
}

/// Keeps `cands` as the `limit` best by score (ties: lower flat index first, like a stable top-k).
fn push_top(cands: &mut Vec<(f32, usize)>, limit: usize, cand: (f32, usize)) {
    if cands.len() == limit {
        let worst = cands[limit - 1];
        if cand.0 <= worst.0 || cand.0.is_nan() {
            return;
        }
        cands.pop();
    }
    let pos = cands
        .iter()
        .position(|c| cand.0 > c.0)
        .unwrap_or(cands.len());
    cands.insert(pos, cand);
}

/// Inserts a finished hypothesis if it is among the `limit` best (existing ones win ties).
fn insert_finished(pool: &mut Vec<(Vec<u32>, f32)>, limit: usize, hyp: (Vec<u32>, f32)) {
    let pos = pool.iter().position(|h| hyp.1 > h.1).unwrap_or(pool.len());
    if pos < limit {
        pool.insert(pos, hyp);
        pool.truncate(limit);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn push_top_keeps_best_in_order() {
        let mut c = Vec::new();
        for (i, s) in [1.0, 5.0, 3.0, 5.0, 0.5, 4.0].iter().enumerate() {
            push_top(&mut c, 3, (*s, i));
        }
        assert_eq!(c, vec![(5.0, 1), (5.0, 3), (4.0, 5)]);
    }

    #[test]
    fn forced_eos_and_bans() {
        let cfg = Seq2SeqConfig {
            decoder_start_token_id: 3,
            eos_token_id: 0,
            pad_token_id: 3,
            vocab_size: 4,
            max_length: 10,
            bad_words_ids: vec![3],
            forced_eos_token_id: Some(0),
        };
        let opts = GenerateOptions {
            min_new_tokens: 2,
            ..Default::default()
        };
        let s = [9.0, 1.0, 2.0, 10.0];
        assert_eq!(StepRules::new(&cfg, &opts, 1, 5).argmax(&s), 2);
        assert_eq!(StepRules::new(&cfg, &opts, 3, 5).argmax(&s), 0);
        let s = [-9.0, 1.0, 2.0, 10.0];
        let last = StepRules::new(&cfg, &opts, 4, 5);
        assert_eq!(
            processed(&last, &s),
            vec![0.0, f32::NEG_INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY]
        );
        assert_eq!(last.argmax(&s), 0);
        // Without a forced EOS the last step is an ordinary one.
        let unforced = Seq2SeqConfig {
            forced_eos_token_id: None,
            ..cfg
        };
        assert_eq!(StepRules::new(&unforced, &opts, 4, 5).argmax(&s), 2);
    }

    fn processed(rules: &StepRules, row: &[f32]) -> Vec<f32> {
        row.iter()
            .enumerate()
            .map(|(t, &x)| rules.processed(t, x))
            .collect()
    }

    /// The unshortened computation: log-softmax of the whole row, processors, every token pushed.
    fn all_candidates(
        row: &[f32],
        rules: &StepRules,
        base: f32,
        beam: usize,
        limit: usize,
    ) -> Vec<(f32, usize)> {
        let (max, log_sum) = log_softmax_terms(row);
        let log_probs: Vec<f32> = row.iter().map(|&x| x - max - log_sum).collect();
        let mut cands = Vec::new();
        for (t, s) in processed(rules, &log_probs).into_iter().enumerate() {
            push_top(&mut cands, limit, (s + base, beam * row.len() + t));
        }
        cands
    }

    /// The shortcut in `beam_row_candidates` keeps exactly what pushing every token keeps: rows with
    /// many ties (scores on a coarse grid), banned tokens among the best, EOS banned, a forced step.
    #[test]
    fn beam_row_candidates_equal_the_full_scan() {
        let cfg = Seq2SeqConfig {
            decoder_start_token_id: 7,
            eos_token_id: 0,
            pad_token_id: 7,
            vocab_size: 40,
            max_length: 10,
            bad_words_ids: vec![7, 3],
            forced_eos_token_id: Some(0),
        };
        let opts = GenerateOptions {
            min_new_tokens: 2,
            ..Default::default()
        };
        let mut state = 12345u32;
        for case in 0..300 {
            let row: Vec<f32> = (0..40)
                .map(|_| {
                    state = state.wrapping_mul(1664525).wrapping_add(1013904223);
                    ((state >> 24) % 9) as f32 * 0.5
                })
                .collect();
            let cur_len = 1 + case % 4; // 1-2: EOS banned, 3: ordinary, 4: forced
            let rules = StepRules::new(&cfg, &opts, cur_len, 5);
            for (limit, base, beam) in [(8, -1.5, 2), (3, 0.0, 0), (40, -0.25, 1)] {
                assert_eq!(
                    beam_row_candidates(&row, &rules, base, beam, limit),
                    all_candidates(&row, &rules, base, beam, limit),
                    "case {case} limit {limit}"
                );
            }
        }
    }
}
