//! The format-independent model of a resource.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

use crate::format::FormatKind;
use crate::placeholder::{Escape, Placeholder};

/// What a file says about itself. Every field is optional: formats say different things.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub title: Option<String>,
    pub authors: Vec<String>,
    /// BCP-47-ish language code as the file states it (`en`, `es_419`, `de-DE`).
    pub language: Option<String>,
    /// The licence as the file states it (a URL, an SPDX id or a name); see `oerkit_document::license`.
    pub license: Option<String>,
    pub source_url: Option<String>,
}

/// One translatable piece of text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// Stable id: the same input gives the same ids (see [`Document::assign_ids`]).
    pub id: String,
    /// Source text with inline markup replaced by placeholder tokens.
    pub text: String,
    /// Where the unit sits: heading path, element name, JSON path, PO msgctxt...
    pub context: String,
    /// The markup behind each placeholder token of `text`.
    pub placeholders: Vec<Placeholder>,
    /// A note for translators the file carries (PO extracted comments, XLIFF notes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// A key the format itself gives the unit (PO msgctxt+msgid, XLIFF unit id, JSON path), used for ids.
    #[serde(skip)]
    pub key: Option<String>,
    /// How translated text is escaped when written back.
    #[serde(skip)]
    pub escape: Escape,
    /// The unit's bytes exactly as they were in the file; written back when the text is unchanged.
    #[serde(skip)]
    pub raw: String,
}

impl Unit {
    /// A unit whose text is `text`, with no placeholders; formats fill the rest.
    pub fn new(
        text: impl Into<String>,
        raw: impl Into<String>,
        context: impl Into<String>,
        escape: Escape,
    ) -> Self {
        Unit {
            id: String::new(),
            text: text.into(),
            context: context.into(),
            placeholders: Vec::new(),
            note: None,
            key: None,
            escape,
            raw: raw.into(),
        }
    }
}

/// The file as a sequence of untouched bytes and translatable units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Bytes written back as they are.
    Raw(String),
    /// `units[i]`.
    Unit(usize),
    /// A unit split into sentences: `raw` is the whole original unit, written when every part is unchanged.
    Segmented { raw: String, parts: Vec<Piece> },
    /// A language code the file states (e.g. `<html lang="en">`): replaced by the target language.
    Language(String),
    /// Where the attribution notice of a translation goes (empty in the source).
    Attribution,
    /// Format-specific content a format's own writer renders (e.g. PO plural `msgstr[n]` lines).
    Custom {
        kind: String,
        raw: String,
        units: Vec<usize>,
    },
}

/// A resource: metadata plus units, and the pieces that put it back together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub format: FormatKind,
    pub meta: Metadata,
    pub units: Vec<Unit>,
    pub pieces: Vec<Piece>,
}

impl Document {
    pub fn new(format: FormatKind) -> Self {
        Document {
            format,
            meta: Metadata::default(),
            units: Vec::new(),
            pieces: Vec::new(),
        }
    }

    /// Appends raw bytes, merging with a preceding raw piece.
    pub fn push_raw(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        if let Some(Piece::Raw(prev)) = self.pieces.last_mut() {
            prev.push_str(s);
        } else {
            self.pieces.push(Piece::Raw(s.to_string()));
        }
    }

    /// Appends a unit and its piece; returns its index.
    pub fn push_unit(&mut self, unit: Unit) -> usize {
        let index = self.units.len();
        self.units.push(unit);
        self.pieces.push(Piece::Unit(index));
        index
    }

    /// Gives every unit a stable id: the format's key when it has one and it is unique in the file,
    /// else a short hash of context and text, with `-2`, `-3`… for repeats, so the same input always
    /// yields the same ids and an edit elsewhere in the file does not renumber a unit.
    pub fn assign_ids(&mut self) {
        let mut key_counts: HashMap<&str, usize> = HashMap::new();
        for unit in &self.units {
            if let Some(key) = unit.key.as_deref() {
                *key_counts.entry(key).or_default() += 1;
            }
        }
        let unique_keys: Vec<Option<String>> = self
            .units
            .iter()
            .map(|u| {
                u.key
                    .clone()
                    .filter(|k| key_counts.get(k.as_str()) == Some(&1))
            })
            .collect();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (unit, key) in self.units.iter_mut().zip(unique_keys) {
            let base = match key {
                Some(k) => k,
                None => content_hash(&unit.context, &unit.text),
            };
            let n = seen.entry(base.clone()).or_default();
            *n += 1;
            unit.id = if *n == 1 { base } else { format!("{base}-{n}") };
        }
    }

    /// The source text of every unit, in order: the identity translation.
    pub fn source_texts(&self) -> Vec<String> {
        self.units.iter().map(|u| u.text.clone()).collect()
    }
}

fn content_hash(context: &str, text: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(context.as_bytes());
    hasher.update([0u8]);
    hasher.update(text.as_bytes());
    let digest = hasher.finalize();
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_unique() {
        let mut doc = Document::new(FormatKind::Text);
        for t in ["a", "b", "a"] {
            doc.push_unit(Unit::new(t, t, "p", Escape::None));
        }
        doc.assign_ids();
        let ids: Vec<_> = doc.units.iter().map(|u| u.id.clone()).collect();
        assert_ne!(ids[0], ids[1]);
        assert_eq!(ids[2], format!("{}-2", ids[0]));
        let mut again = doc.clone();
        again.assign_ids();
        assert_eq!(doc, again);
    }

    #[test]
    fn duplicate_keys_fall_back_to_hashes() {
        let mut doc = Document::new(FormatKind::Text);
        for (t, k) in [("a", "k"), ("b", "k"), ("c", "z")] {
            let mut u = Unit::new(t, t, "p", Escape::None);
            u.key = Some(k.to_string());
            doc.push_unit(u);
        }
        doc.assign_ids();
        assert_ne!(doc.units[0].id, "k");
        assert_eq!(doc.units[2].id, "z");
    }
}
