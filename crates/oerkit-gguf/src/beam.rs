//! Beam search for decoder-only models, as Hugging Face `generate(num_beams=N, do_sample=False)` does it
//! (transformers' vectorised beam search, `early_stopping=False`): per prompt, the 2·N best
//! continuations over all running beams by summed log-softmax score; of those, the top N that hit a
//! stop criterion (end-of-generation token, stop string, length or context limit) become finished
//! hypotheses scored `sum_logprobs / generated_len^length_penalty` (the stopping token counted),
//! the best N that did not hit one run on. A prompt stops once N hypotheses are finished and the best
//! running beam, scored at the current length, cannot beat the worst of them.
//!
//! The loop only sees a [`BeamRows`] (next-token logits for rows, rows reordered with repeats), so it
//! runs the same over the real model and over a toy scorer in the tests. Prompts are independent:
//! beams of several prompts share one batch of rows, and a prompt that is done leaves the batch.

use crate::error::Result;

/// The model side of beam search: a batch of rows (token sequences in a KV cache), each with its
/// next-token logits.
pub trait BeamRows {
    /// Makes row `i` of the state a copy of the current row `rows[i]`; an index may repeat (a beam
    /// with two surviving continuations) or be left out (a beam that was dropped).
    fn select_rows(&mut self, rows: &[usize]) -> Result<()>;

    /// Appends `tokens[i]` to row `i`; returns each row's next-token logits (raw, not normalised).
    fn advance(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>>;
}

/// Beam search settings (Hugging Face's names).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeamSettings {
    pub num_beams: usize,
    /// Exponent of the generated length that divides a finished hypothesis' summed log-probability.
    pub length_penalty: f32,
}

/// The best hypothesis of one prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct BeamHypothesis<F> {
    /// Generated tokens, including the one that finished the hypothesis (e.g. the end-of-generation
    /// token).
    pub tokens: Vec<u32>,
    /// `sum_logprobs / tokens.len()^length_penalty`.
    pub score: f32,
    /// Why it finished, as the stop rule reported it; `None` only if decoding ended without any
    /// hypothesis finishing (a stop rule that never fires is a caller bug; the best running beam is
    /// returned then).
    pub finish: Option<F>,
}

/// Score offset transformers adds to rule a candidate out; kept as arithmetic, not a flag, because
/// the ordering it produces (e.g. among the initial copies of a prompt) is part of the semantics.
const EXCLUDED: f32 = -1.0e9;

struct Prompt<F> {
    /// Running beams: generated tokens and summed log-probability, N of them.
    running: Vec<(Vec<u32>, f32)>,
    /// Finished hypotheses, best first, at most N: tokens, normalised score, stop reason.
    finished: Vec<(Vec<u32>, f32, F)>,
}

/// Runs beam search for every prompt. `first_logits[p]` are the next-token logits after prompt `p`,
/// which is row `p` of `rows`. `stop(p, generated)` says whether the generated tokens of prompt `p`
/// (the newest last) end a hypothesis, and why; it must fire at the latest at a length limit.
/// Returns the best hypothesis of each prompt, in order.
pub fn beam_search<F: Clone>(
    rows: &mut dyn BeamRows,
    first_logits: Vec<Vec<f32>>,
    settings: &BeamSettings,
    mut stop: impl FnMut(usize, &[u32]) -> Option<F>,
) -> Result<Vec<BeamHypothesis<F>>> {
    let beams = settings.num_beams.max(1);
    let lp = settings.length_penalty;
    let mut prompts: Vec<Prompt<F>> = (0..first_logits.len())
        .map(|_| Prompt {
            // transformers copies each prompt N times with scores [0, -1e9, ...] so the first step
            // expands beam 0 alone; the copies here share the prompt's row instead of recomputing it.
            running: (0..beams)
                .map(|j| (Vec::new(), if j == 0 { 0.0 } else { EXCLUDED }))
                .collect(),
            finished: Vec::new(),
        })
        .collect();
    // Prompts still decoding, in row order; beam j of the prompt in slot s reads logits row
    // `row_of[s * beams + j]`.
    let mut active: Vec<usize> = (0..prompts.len()).collect();
    let mut row_of: Vec<usize> = (0..prompts.len())
        .flat_map(|p| std::iter::repeat_n(p, beams))
        .collect();
    let mut logits = first_logits;
    for row in logits.iter_mut() {
        log_softmax_in_place(row);
    }
    // Tokens generated so far by every running beam (the same for all: padding-free lengths).
    let mut generated_len = 0usize;
    let mut candidate = Vec::new();
    while !active.is_empty() {
        let n_generated = (generated_len + 1) as f32;
        let mut rows_next = Vec::with_capacity(active.len() * beams);
        let mut tokens_next = Vec::with_capacity(active.len() * beams);
        let mut active_next = Vec::with_capacity(active.len());
        for (slot, &p) in active.iter().enumerate() {
            let prompt = &mut prompts[p];
            // (score, beam * vocab + token): the 2N best over all beams, best first.
            let mut cands: Vec<(f32, usize, usize)> = Vec::with_capacity(2 * beams + 1);
            for (j, (_, base)) in prompt.running.iter().enumerate() {
                let row = &logits[row_of[slot * beams + j]];
                for (t, &s) in row.iter().enumerate() {
                    push_top(&mut cands, 2 * beams, (s + base, j, t));
                }
            }
            let mut hits: Vec<Option<F>> = Vec::with_capacity(cands.len());
            for &(_, j, t) in &cands {
                candidate.clear();
                candidate.extend_from_slice(&prompt.running[j].0);
                candidate.push(t as u32);
                hits.push(stop(p, &candidate));
            }
            // Only the top N candidates may finish.
            for ((&(score, j, t), hit), _) in cands.iter().zip(&hits).zip(0..beams) {
                let Some(reason) = hit else { continue };
                if !score.is_finite() {
                    continue;
                }
                let mut tokens = prompt.running[j].0.clone();
                tokens.push(t as u32);
                let normalised = score / n_generated.powf(lp);
                insert_finished(
                    &mut prompt.finished,
                    beams,
                    (tokens, normalised, reason.clone()),
                );
            }
            // Running beams for the next step: candidates that hit a stop rule sink by -1e9.
            let mut running: Vec<(f32, usize, usize)> = cands
                .iter()
                .zip(&hits)
                .map(|(&(s, j, t), hit)| (if hit.is_some() { s + EXCLUDED } else { s }, j, t))
                .collect();
            running.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
            running.truncate(beams);
            let all_hit = hits.iter().all(Option::is_some);
            prompt.running = running
                .iter()
                .map(|&(s, j, t)| {
                    let mut tokens = prompt.running[j].0.clone();
                    tokens.push(t as u32);
                    (tokens, s)
                })
                .collect();
            // early_stopping=False: done once the pool is full and the best running beam, scored at
            // the current length, cannot beat the worst finished hypothesis.
            let best_possible =
                prompt.running.first().map_or(f32::NEG_INFINITY, |b| b.1) / n_generated.powf(lp);
            let can_improve = prompt.finished.len() < beams
                || prompt
                    .finished
                    .last()
                    .is_some_and(|worst| best_possible > worst.1);
            if can_improve && !all_hit && prompt.running.len() == beams {
                active_next.push(p);
                for &(_, j, t) in &running {
                    rows_next.push(row_of[slot * beams + j]);
                    tokens_next.push(t as u32);
                }
            }
        }
        if active_next.is_empty() {
            break;
        }
        rows.select_rows(&rows_next)?;
        logits = rows.advance(&tokens_next)?;
        for row in logits.iter_mut() {
            log_softmax_in_place(row);
        }
        row_of = (0..rows_next.len()).collect();
        active = active_next;
        generated_len += 1;
    }
    Ok(prompts
        .into_iter()
        .map(|prompt| match prompt.finished.into_iter().next() {
            Some((tokens, score, reason)) => BeamHypothesis {
                tokens,
                score,
                finish: Some(reason),
            },
            None => {
                let (tokens, sum) = prompt.running.into_iter().next().unwrap_or_default();
                let len = tokens.len().max(1) as f32;
                BeamHypothesis {
                    tokens,
                    score: sum / len.powf(lp),
                    finish: None,
                }
            }
        })
        .collect())
}

/// `row - logsumexp(row)` in place (float32, as transformers computes it on float32 logits).
fn log_softmax_in_place(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|&x| (x - max).exp()).sum();
    let log_sum = sum.ln();
    for x in row.iter_mut() {
        *x = *x - max - log_sum;
    }
}

/// Keeps `cands` as the `limit` best by score, best first (ties: earlier beam, then lower token,
/// like a stable top-k over the flattened `beam * vocab + token` scores).
fn push_top(cands: &mut Vec<(f32, usize, usize)>, limit: usize, cand: (f32, usize, usize)) {
    if cand.0.is_nan() {
        return;
    }
    if cands.len() == limit {
        if cands.last().is_none_or(|worst| cand.0 <= worst.0) {
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
fn insert_finished<F>(pool: &mut Vec<(Vec<u32>, f32, F)>, limit: usize, hyp: (Vec<u32>, f32, F)) {
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

    /// Rows are token histories (prompt first); logits come from a function of the history.
    struct Toy<L: Fn(&[u32]) -> Vec<f32>> {
        rows: Vec<Vec<u32>>,
        logits: L,
        forward_rows: usize,
    }

    impl<L: Fn(&[u32]) -> Vec<f32>> Toy<L> {
        fn new(prompts: &[Vec<u32>], logits: L) -> (Self, Vec<Vec<f32>>) {
            let first = prompts.iter().map(|p| logits(p)).collect();
            let toy = Toy {
                rows: prompts.to_vec(),
                logits,
                forward_rows: 0,
            };
            (toy, first)
        }
    }

    impl<L: Fn(&[u32]) -> Vec<f32>> BeamRows for Toy<L> {
        fn select_rows(&mut self, rows: &[usize]) -> Result<()> {
            self.rows = rows.iter().map(|&r| self.rows[r].clone()).collect();
            Ok(())
        }

        fn advance(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
            assert_eq!(tokens.len(), self.rows.len());
            self.forward_rows += tokens.len();
            Ok(self
                .rows
                .iter_mut()
                .zip(tokens)
                .map(|(row, &t)| {
                    row.push(t);
                    (self.logits)(row)
                })
                .collect())
        }
    }

    const EOS: u32 = 0;

    /// Stop rule of the toys: token 0 ends a hypothesis, and so does reaching `limit` tokens.
    fn stop_at(limit: usize) -> impl FnMut(usize, &[u32]) -> Option<&'static str> {
        move |_, generated| {
            if generated.last() == Some(&EOS) {
                Some("eos")
            } else if generated.len() >= limit {
                Some("length")
            } else {
                None
            }
        }
    }

    fn run(
        prompts: &[Vec<u32>],
        logits: impl Fn(&[u32]) -> Vec<f32>,
        beams: usize,
        limit: usize,
    ) -> Vec<BeamHypothesis<&'static str>> {
        let (mut toy, first) = Toy::new(prompts, logits);
        let settings = BeamSettings {
            num_beams: beams,
            length_penalty: 1.0,
        };
        beam_search(&mut toy, first, &settings, stop_at(limit)).unwrap()
    }

    /// Vocabulary {0: end, 1: a, 2: b} after a one-token prompt. "a" is likelier first, but "b" is
    /// nearly always followed by the end: P(a end) = 0.55 * 0.4, P(b end) = 0.45 * 0.9.
    fn greedy_trap(history: &[u32]) -> Vec<f32> {
        let p: [f32; 3] = match &history[1..] {
            [] => [1e-4, 0.55, 0.45],
            [1] => [0.4, 0.3, 0.3],
            [2] => [0.9, 0.05, 0.05],
            _ => [0.34, 0.33, 0.33],
        };
        p.iter().map(|x| x.ln()).collect()
    }

    fn log_softmax(mut row: Vec<f32>) -> Vec<f32> {
        log_softmax_in_place(&mut row);
        row
    }

    #[test]
    fn beam_two_finds_the_sequence_greedy_misses() {
        let prompt = vec![vec![7]];
        let greedy = run(&prompt, greedy_trap, 1, 5);
        assert_eq!(greedy[0].tokens, vec![1, EOS]);
        let beam = run(&prompt, greedy_trap, 2, 5);
        assert_eq!(beam[0].tokens, vec![2, EOS]);
        assert_eq!(beam[0].finish, Some("eos"));
        let root = log_softmax(greedy_trap(&[7]));
        let after_b = log_softmax(greedy_trap(&[7, 2]));
        let expected = (root[2] + after_b[0]) / 2.0;
        assert!((beam[0].score - expected).abs() < 1e-6, "{}", beam[0].score);
        assert!(beam[0].score > greedy[0].score);
    }

    /// Pseudo-random logits determined by the whole history (FNV-1a, then a xorshift per token).
    fn hashed_logits(vocab: usize) -> impl Fn(&[u32]) -> Vec<f32> {
        move |history| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for &t in history {
                h = (h ^ u64::from(t)).wrapping_mul(0x0100_0000_01b3);
            }
            (0..vocab)
                .map(|_| {
                    h ^= h << 13;
                    h ^= h >> 7;
                    h ^= h << 17;
                    (h % 1000) as f32 / 250.0
                })
                .collect()
        }
    }

    /// Every hypothesis the stop rule allows (ending in EOS, or `limit` long), with its normalised
    /// score; the best one, ties to the first found.
    fn exhaustive_best(
        prompt: &[u32],
        logits: &dyn Fn(&[u32]) -> Vec<f32>,
        limit: usize,
    ) -> (Vec<u32>, f32) {
        fn walk(
            history: &mut Vec<u32>,
            prompt_len: usize,
            sum: f32,
            logits: &dyn Fn(&[u32]) -> Vec<f32>,
            limit: usize,
            best: &mut (Vec<u32>, f32),
        ) {
            let row = log_softmax(logits(history));
            for (t, &lp) in row.iter().enumerate() {
                history.push(t as u32);
                let generated = history.len() - prompt_len;
                let total = sum + lp;
                if t as u32 == EOS || generated >= limit {
                    let score = total / generated as f32;
                    if score > best.1 {
                        *best = (history[prompt_len..].to_vec(), score);
                    }
                } else {
                    walk(history, prompt_len, total, logits, limit, best);
                }
                history.pop();
            }
        }
        let mut best = (Vec::new(), f32::NEG_INFINITY);
        let mut history = prompt.to_vec();
        walk(&mut history, prompt.len(), 0.0, logits, limit, &mut best);
        best
    }

    #[test]
    fn beam_as_wide_as_the_search_space_finds_the_optimum() {
        let (vocab, limit) = (3usize, 3usize);
        let logits = hashed_logits(vocab);
        let beams = vocab.pow(limit as u32);
        let mut beam_beat_greedy = 0;
        for seed in 0..40u32 {
            let prompt = vec![seed, 100];
            let (best_tokens, best_score) = exhaustive_best(&prompt, &logits, limit);
            let found = run(std::slice::from_ref(&prompt), &logits, beams, limit);
            assert_eq!(found[0].tokens, best_tokens, "seed {seed}");
            assert!((found[0].score - best_score).abs() < 1e-5, "seed {seed}");
            let greedy = run(std::slice::from_ref(&prompt), &logits, 1, limit);
            assert!(greedy[0].score <= found[0].score + 1e-6);
            if greedy[0].score < found[0].score - 1e-6 {
                beam_beat_greedy += 1;
            }
        }
        // The toy is only a real check if greedy misses the optimum on some seeds.
        assert!(beam_beat_greedy > 0);
    }

    #[test]
    fn one_beam_is_greedy() {
        let logits = hashed_logits(5);
        for seed in 0..30u32 {
            let prompt = vec![seed];
            let found = run(std::slice::from_ref(&prompt), &logits, 1, 8);
            let mut history = prompt.clone();
            loop {
                let row = logits(&history);
                let best = (0..row.len())
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
                    .unwrap() as u32;
                history.push(best);
                if best == EOS || history.len() - prompt.len() >= 8 {
                    break;
                }
            }
            assert_eq!(found[0].tokens, history[1..], "seed {seed}");
        }
    }

    #[test]
    fn prompts_batched_together_equal_one_at_a_time() {
        let logits = hashed_logits(4);
        let prompts: Vec<Vec<u32>> = (0..6u32).map(|s| vec![s, s * 7 + 1]).collect();
        for beams in [2, 3, 4] {
            let together = run(&prompts, &logits, beams, 6);
            for (prompt, batched) in prompts.iter().zip(&together) {
                let alone = run(std::slice::from_ref(prompt), &logits, beams, 6);
                assert_eq!(&alone[0], batched, "beams {beams}, prompt {prompt:?}");
            }
        }
    }

    #[test]
    fn a_prompt_stops_once_no_running_beam_can_win() {
        // After the prompt the end token is almost certain: both finished slots fill at step 1 and 2
        // and no running beam can come close, so decoding stops long before the limit.
        let logits = |history: &[u32]| -> Vec<f32> {
            let end = if history.len() < 3 { 0.98 } else { 0.5 };
            [end, (1.0 - end) / 2.0, (1.0 - end) / 2.0]
                .iter()
                .map(|x: &f32| x.ln())
                .collect()
        };
        let (mut toy, first) = Toy::new(&[vec![9]], logits);
        let settings = BeamSettings {
            num_beams: 2,
            length_penalty: 1.0,
        };
        let found = beam_search(&mut toy, first, &settings, stop_at(100)).unwrap();
        assert_eq!(found[0].tokens, vec![EOS]);
        assert!(toy.forward_rows <= 4, "{} rows decoded", toy.forward_rows);
    }

    #[test]
    fn push_top_keeps_best_in_order() {
        let mut c = Vec::new();
        for (i, s) in [1.0, 5.0, 3.0, 5.0, 0.5, 4.0, f32::NAN].iter().enumerate() {
            push_top(&mut c, 3, (*s, 0, i));
        }
        assert_eq!(c, vec![(5.0, 0, 1), (5.0, 0, 3), (4.0, 0, 5)]);
    }
}
