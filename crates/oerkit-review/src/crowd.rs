//! Crowd review: how the reviews of several reviewers decide a unit, and how much they agree.
//!
//! # The decision rule (documented for reviewers and researchers)
//!
//! * Only each reviewer's **latest decisive** review of a unit counts (accept, edit, reject; comments never
//!   decide). Earlier reviews stay in the log; a reviewer may change their mind.
//! * `accept` approves the text the reviewer was shown (recorded as its final text); `edit` approves the
//!   reviewer's own text. Approvals are grouped by **exact final text**: two reviewers who type the same
//!   correction support the same candidate.
//! * A unit is **approved** when one candidate text has at least the job's `approvals_needed` approvals. If
//!   several do, the one with the most approvals wins; ties go to the candidate that reached the threshold
//!   first (lowest review id of its deciding approval), so the outcome never depends on arrival order later.
//! * Otherwise it is **rejected** when at least `approvals_needed` reviewers reject it.
//! * Otherwise it is in **conflict** when two or more different candidate texts have approvals: the next
//!   reviewer is shown the leading candidate (most approvals, ties to the earliest) and can accept it or
//!   edit; the conflict ends when a candidate reaches the threshold.
//! * Otherwise it is **in_review** (some decisive reviews, no decision yet), **suggested** (a suggestion,
//!   no review) or **pending** (nothing yet).

use serde::Serialize;
use std::collections::BTreeMap;

/// The status of a unit, derived from its suggestions and reviews.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitStatus {
    Pending,
    Suggested,
    InReview,
    Conflict,
    Approved,
    Rejected,
}

impl UnitStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UnitStatus::Pending => "pending",
            UnitStatus::Suggested => "suggested",
            UnitStatus::InReview => "in_review",
            UnitStatus::Conflict => "conflict",
            UnitStatus::Approved => "approved",
            UnitStatus::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => UnitStatus::Pending,
            "suggested" => UnitStatus::Suggested,
            "in_review" => UnitStatus::InReview,
            "conflict" => UnitStatus::Conflict,
            "approved" => UnitStatus::Approved,
            "rejected" => UnitStatus::Rejected,
            _ => return None,
        })
    }
}

/// A reviewer's decision as the rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vote {
    Approve(String),
    Reject,
}

/// One decisive review, in log order (`review_id` grows with time).
#[derive(Debug, Clone)]
pub struct Ballot {
    pub review_id: i64,
    pub reviewer: String,
    pub vote: Vote,
}

/// A candidate text and who supports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub text: String,
    pub approvals: u32,
    pub reviewers: Vec<String>,
    /// Review id of the approval that brought it to the threshold, if it got there.
    #[serde(skip)]
    reached_threshold_at: Option<i64>,
    #[serde(skip)]
    first_review_id: i64,
}

/// The outcome of the decision rule for one unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub status: UnitStatus,
    pub approved_text: Option<String>,
    /// Candidates ordered leading first (most approvals, ties to the earliest).
    pub candidates: Vec<Candidate>,
    pub rejections: u32,
}

impl Decision {
    /// The text a reviewer should be shown next: the approved or leading candidate.
    pub fn leading_text(&self) -> Option<&str> {
        self.approved_text
            .as_deref()
            .or_else(|| self.candidates.first().map(|c| c.text.as_str()))
    }
}

/// Each reviewer's latest ballot, from ballots in log order.
pub fn latest_ballots(ballots: &[Ballot]) -> Vec<Ballot> {
    let mut latest: BTreeMap<&str, &Ballot> = BTreeMap::new();
    for b in ballots {
        match latest.get(b.reviewer.as_str()) {
            Some(prev) if prev.review_id > b.review_id => {}
            _ => {
                latest.insert(&b.reviewer, b);
            }
        }
    }
    let mut out: Vec<Ballot> = latest.into_values().cloned().collect();
    out.sort_by_key(|b| b.review_id);
    out
}

/// Applies the decision rule (see the module documentation) to a unit's ballots.
pub fn decide(ballots: &[Ballot], approvals_needed: u32, has_suggestion: bool) -> Decision {
    let needed = approvals_needed.max(1);
    let latest = latest_ballots(ballots);
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut rejections = 0u32;
    for b in &latest {
        match &b.vote {
            Vote::Reject => rejections += 1,
            Vote::Approve(text) => {
                let idx = match candidates.iter().position(|c| &c.text == text) {
                    Some(i) => i,
                    None => {
                        candidates.push(Candidate {
                            text: text.clone(),
                            approvals: 0,
                            reviewers: Vec::new(),
                            reached_threshold_at: None,
                            first_review_id: b.review_id,
                        });
                        candidates.len() - 1
                    }
                };
                let c = &mut candidates[idx];
                c.approvals += 1;
                c.reviewers.push(b.reviewer.clone());
                if c.approvals == needed {
                    c.reached_threshold_at = Some(b.review_id);
                }
            }
        }
    }
    candidates.sort_by(|a, b| {
        b.approvals
            .cmp(&a.approvals)
            .then(
                a.reached_threshold_at
                    .unwrap_or(i64::MAX)
                    .cmp(&b.reached_threshold_at.unwrap_or(i64::MAX)),
            )
            .then(a.first_review_id.cmp(&b.first_review_id))
    });
    let approved_text = candidates
        .first()
        .filter(|c| c.approvals >= needed)
        .map(|c| c.text.clone());
    let status = if approved_text.is_some() {
        UnitStatus::Approved
    } else if rejections >= needed {
        UnitStatus::Rejected
    } else if candidates.len() >= 2 {
        UnitStatus::Conflict
    } else if !latest.is_empty() {
        UnitStatus::InReview
    } else if has_suggestion {
        UnitStatus::Suggested
    } else {
        UnitStatus::Pending
    };
    Decision {
        status,
        approved_text,
        candidates,
        rejections,
    }
}

/// Agreement between reviewers over the units that two or more reviewers decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agreement {
    /// Units with at least two decisive reviewers.
    pub units_compared: usize,
    /// Reviewer pairs compared (summed over units).
    pub pairs: usize,
    /// Share of pairs that made the same approve/reject decision.
    pub decision_agreement: Option<f64>,
    /// Share of pairs that approved the very same text (pairs where both approved).
    pub text_agreement: Option<f64>,
    /// Mean character-level similarity (normalised Levenshtein) of the final texts of pairs where both
    /// approved.
    pub mean_text_similarity: Option<f64>,
    /// Krippendorff's alpha (nominal) over the categories: rejected or each distinct approved text.
    /// `None` when there is no variation to measure.
    pub krippendorff_alpha: Option<f64>,
}

/// Agreement statistics over many units; each element is one unit's ballots (any order of reviewers).
pub fn agreement(units: &[Vec<Ballot>]) -> Agreement {
    let mut units_compared = 0;
    let mut pairs = 0usize;
    let mut same_decision = 0usize;
    let mut both_approved = 0usize;
    let mut same_text = 0usize;
    let mut similarity_sum = 0.0;
    // Krippendorff's coincidence counts over nominal values (per-unit labels).
    let mut coincidence: BTreeMap<(String, String), f64> = BTreeMap::new();
    for ballots in units {
        let latest = latest_ballots(ballots);
        let m = latest.len();
        if m < 2 {
            continue;
        }
        units_compared += 1;
        let label = |v: &Vote| match v {
            Vote::Reject => "\u{0}reject".to_string(),
            Vote::Approve(t) => t.clone(),
        };
        for i in 0..m {
            for j in 0..m {
                if i == j {
                    continue;
                }
                let key = (label(&latest[i].vote), label(&latest[j].vote));
                *coincidence.entry(key).or_default() += 1.0 / (m as f64 - 1.0);
                if j < i {
                    continue;
                }
                pairs += 1;
                match (&latest[i].vote, &latest[j].vote) {
                    (Vote::Reject, Vote::Reject) => same_decision += 1,
                    (Vote::Approve(a), Vote::Approve(b)) => {
                        same_decision += 1;
                        both_approved += 1;
                        if a == b {
                            same_text += 1;
                        }
                        similarity_sum += strsim::normalized_levenshtein(a, b);
                    }
                    _ => {}
                }
            }
        }
    }
    let ratio = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);
    Agreement {
        units_compared,
        pairs,
        decision_agreement: ratio(same_decision, pairs),
        text_agreement: ratio(same_text, both_approved),
        mean_text_similarity: (both_approved > 0).then(|| similarity_sum / both_approved as f64),
        krippendorff_alpha: krippendorff_nominal(&coincidence),
    }
}

fn krippendorff_nominal(coincidence: &BTreeMap<(String, String), f64>) -> Option<f64> {
    let mut marginals: BTreeMap<&str, f64> = BTreeMap::new();
    let mut n = 0.0;
    let mut observed_disagreement = 0.0;
    for ((a, b), count) in coincidence {
        *marginals.entry(a.as_str()).or_default() += count;
        n += count;
        if a != b {
            observed_disagreement += count;
        }
    }
    if n <= 1.0 {
        return None;
    }
    let sum_sq: f64 = marginals.values().map(|v| v * v).sum();
    // alpha = 1 - D_o / D_e with D_o = o / n and D_e = (n^2 - sum n_c^2) / (n (n - 1)).
    let pairs_of_different_values = n * n - sum_sq;
    if pairs_of_different_values <= 0.0 {
        return None;
    }
    Some(1.0 - (n - 1.0) * observed_disagreement / pairs_of_different_values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approve(id: i64, who: &str, text: &str) -> Ballot {
        Ballot {
            review_id: id,
            reviewer: who.into(),
            vote: Vote::Approve(text.into()),
        }
    }
    fn reject(id: i64, who: &str) -> Ballot {
        Ballot {
            review_id: id,
            reviewer: who.into(),
            vote: Vote::Reject,
        }
    }

    #[test]
    fn differing_edits_are_a_conflict_until_one_reaches_the_threshold() {
        let ballots = vec![approve(1, "ana", "A"), approve(2, "bo", "B")];
        let d = decide(&ballots, 2, true);
        assert_eq!(d.status, UnitStatus::Conflict);
        assert_eq!(
            d.leading_text(),
            Some("A"),
            "ties go to the earliest candidate"
        );
        let mut more = ballots.clone();
        more.push(approve(3, "cy", "B"));
        let d = decide(&more, 2, true);
        assert_eq!(d.status, UnitStatus::Approved);
        assert_eq!(d.approved_text.as_deref(), Some("B"));
    }

    #[test]
    fn latest_ballot_per_reviewer_counts() {
        let ballots = vec![
            approve(1, "ana", "A"),
            approve(2, "bo", "A"),
            reject(3, "ana"),
        ];
        let d = decide(&ballots, 2, true);
        assert_eq!(d.status, UnitStatus::InReview);
        assert_eq!(d.rejections, 1);
        let d = decide(&[reject(1, "ana"), reject(2, "bo")], 2, true);
        assert_eq!(d.status, UnitStatus::Rejected);
    }

    #[test]
    fn ties_at_threshold_go_to_the_first_to_reach_it() {
        let ballots = vec![
            approve(1, "a", "X"),
            approve(2, "b", "Y"),
            approve(3, "c", "Y"),
            approve(4, "d", "X"),
        ];
        let d = decide(&ballots, 2, true);
        assert_eq!(d.approved_text.as_deref(), Some("Y"));
    }

    #[test]
    fn status_without_reviews() {
        assert_eq!(decide(&[], 1, false).status, UnitStatus::Pending);
        assert_eq!(decide(&[], 1, true).status, UnitStatus::Suggested);
    }

    #[test]
    fn agreement_counts_pairs_and_alpha() {
        let units = vec![
            vec![approve(1, "a", "X"), approve(2, "b", "X")],
            vec![approve(3, "a", "Y"), reject(4, "b")],
            vec![reject(5, "a"), reject(6, "b")],
            vec![approve(7, "a", "Z")],
        ];
        let s = agreement(&units);
        assert_eq!(s.units_compared, 3);
        assert_eq!(s.pairs, 3);
        assert!((s.decision_agreement.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.text_agreement, Some(1.0));
        // Coincidences: X-X 2, rej-rej 2, Y-rej 1, rej-Y 1; n = 6; marginals X 2, rej 3, Y 1.
        // Disagreeing coincidences o = 2; alpha = 1 - (n - 1) o / (n^2 - sum n_c^2) = 1 - 5 * 2 / 22.
        let alpha = s.krippendorff_alpha.unwrap();
        assert!((alpha - (1.0 - 5.0 * 2.0 / 22.0)).abs() < 1e-12, "{alpha}");
    }
}
