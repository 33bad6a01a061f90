//! Subjects by embedding similarity: the resource's vector (the mean of its chunks' vectors) against
//! each rankable term's vector (its name and description).

use serde::Serialize;

use crate::taxonomy::Taxonomy;

/// A term's code and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TermRef {
    pub code: String,
    pub name: String,
}

/// One ranked subject.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subject {
    pub code: String,
    pub name: String,
    /// Cosine similarity, rounded to 4 decimals.
    pub score: f32,
    /// The enclosing fields, outermost first (ISCED-F: broad, then narrow).
    pub within: Vec<TermRef>,
}

/// The L2-normalised mean of unit vectors (zero vector for none).
pub fn centroid(vectors: &[Vec<f32>]) -> Vec<f32> {
    let Some(first) = vectors.first() else {
        return Vec::new();
    };
    let mut sum = vec![0f32; first.len()];
    for v in vectors {
        for (s, x) in sum.iter_mut().zip(v) {
            *s += x;
        }
    }
    let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        sum.iter_mut().for_each(|x| *x /= norm);
    }
    sum
}

/// The `top` terms most similar to `doc_vector`; ties go to the earlier term in the file.
pub fn rank(
    taxonomy: &Taxonomy,
    ranked_terms: &[usize],
    term_vectors: &[Vec<f32>],
    doc_vector: &[f32],
    top: usize,
) -> Vec<Subject> {
    let mut scored: Vec<(usize, f32)> = ranked_terms
        .iter()
        .zip(term_vectors)
        .map(|(&i, v)| (i, crate::dot(v, doc_vector)))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored
        .into_iter()
        .take(top)
        .map(|(i, score)| {
            let term = &taxonomy.terms[i];
            Subject {
                code: term.code.clone(),
                name: term.name.clone(),
                score: (score * 10_000.0).round() / 10_000.0,
                within: taxonomy
                    .ancestors(term)
                    .into_iter()
                    .map(|a| TermRef {
                        code: a.code.clone(),
                        name: a.name.clone(),
                    })
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_by_cosine_and_reports_ancestors() {
        let t = Taxonomy::isced_f_2013();
        let ranked = t.rankable();
        // Axis-aligned vectors: the document points at the second rankable term, then the first.
        let vectors: Vec<Vec<f32>> = (0..ranked.len())
            .map(|k| {
                let mut v = vec![0f32; ranked.len()];
                v[k] = 1.0;
                v
            })
            .collect();
        let doc = centroid(&[vectors[1].clone(), vectors[1].clone(), vectors[0].clone()]);
        let subjects = rank(&t, &ranked, &vectors, &doc, 3);
        assert_eq!(subjects[0].code, t.terms[ranked[1]].code);
        assert_eq!(subjects[1].code, t.terms[ranked[0]].code);
        assert!(subjects[0].score > subjects[1].score && subjects[1].score > subjects[2].score);
        assert_eq!(subjects[0].within.len(), 2);
    }
}
