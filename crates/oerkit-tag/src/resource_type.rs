//! The learning resource type, read from the structure: exercise and challenge blocks, quiz markup
//! (LiaScript quiz fields, H5P question content types), glossaries (CNXML `<glossary>`, HTML `<dl>`,
//! term/definition lists), lesson scaffolding (objectives, key points), textbook modules and tables
//! of contents. Each type comes with how many markers were found.

use std::sync::LazyLock;

use oerkit_document::{Document, FormatKind};
use regex::Regex;
use serde::Serialize;

/// One type with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceType {
    /// `textbook`, `textbook chapter`, `lesson`, `exercise`, `quiz`, `glossary`, `assessment`,
    /// `interactive resource` or `reading`.
    pub name: &'static str,
    /// Markers found.
    pub evidence: usize,
}

struct Rule {
    name: &'static str,
    pattern: Regex,
}

fn rule(name: &'static str, pattern: &str) -> Rule {
    Rule {
        name,
        pattern: Regex::new(pattern).expect("resource-type patterns are valid (tested)"),
    }
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    vec![
        // Carpentries fenced divs and kramdown classes, HTML classes, CNXML elements.
        rule(
            "exercise",
            r"(?mi)^:{3,}\s*\{?\s*\.?(challenge|exercise)\b|\{:\s*\.challenge\}|class=\x22[^\x22]*\b(challenge|exercise)\b|<exercise\b",
        ),
        // LiaScript quiz fields ([[x]], [( )], [[___]], [[answer]] on their own line), H5P question types.
        rule(
            "quiz",
            r"(?m)^[ \t>]*(\[\[[ xX]\]\]|\[\([ xX]\)\]|\[\[[^\[\]\n]{1,40}\]\]\s*$)|\x22H5P\.(MultiChoice|QuestionSet|Blanks|TrueFalse|DragQuestion|DragText|MarkTheWords|SingleChoiceSet|Essay|FreeTextQuestion|Summary)\b",
        ),
        rule("glossary", r"(?mi)<glossary\b|<dl\b|^\s*term:\s|^:[ \t]+\S"),
        rule(
            "assessment",
            r"(?i)class=\x22[^\x22]*\b(practice|homework|free-response|review-questions)\b|\brubric\b",
        ),
        rule(
            "lesson",
            r"(?mi)^:{3,}\s*\{?\s*\.?(objectives|keypoints|questions)\b|class=\x22[^\x22]*\b(objectives|keypoints)\b|^#+\s*(learning objectives|lernziele|objetivos|objectifs)\b",
        ),
        rule(
            "interactive resource",
            r"\x22H5P\.(InteractiveVideo|CoursePresentation|InteractiveBook)\b",
        ),
    ]
});

/// Headings that name exercises in the languages oerkit detects.
static EXERCISE_HEADING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(exercises?|übung(en)?|aufgaben?|ejercicios?|exercices?|exercícios?|esercizi|zoezi)\b")
        .expect("valid pattern")
});

/// The types of a resource, most evidence first (ties: alphabetical); never empty.
pub fn resource_types(doc: &Document, raw: &str) -> Vec<ResourceType> {
    let mut found: Vec<ResourceType> = RULES
        .iter()
        .map(|r| ResourceType {
            name: r.name,
            evidence: r.pattern.find_iter(raw).count(),
        })
        .collect();
    let exercise_headings = doc
        .units
        .iter()
        .filter(|u| u.context.ends_with("heading") || u.context.contains("heading "))
        .filter(|u| EXERCISE_HEADING.is_match(&u.text))
        .count();
    if let Some(e) = found.iter_mut().find(|t| t.name == "exercise") {
        e.evidence += exercise_headings;
    }
    if doc.format == FormatKind::Cnxml {
        if raw.contains("<col:collection") || raw.contains("collxml") {
            found.push(ResourceType {
                name: "textbook",
                evidence: raw.matches("<col:module").count().max(1),
            });
        } else {
            found.push(ResourceType {
                name: "textbook chapter",
                evidence: raw.matches("<section").count().max(1),
            });
        }
    }
    found.retain(|t| t.evidence > 0);
    if found.is_empty() {
        found.push(ResourceType {
            name: "reading",
            evidence: 0,
        });
    }
    found.sort_by(|a, b| b.evidence.cmp(&a.evidence).then(a.name.cmp(b.name)));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(name: &str, text: &str) -> Vec<&'static str> {
        let doc = oerkit_document::load_str(std::path::Path::new(name), text, None).unwrap();
        resource_types(&doc, text)
            .into_iter()
            .map(|t| t.name)
            .collect()
    }

    #[test]
    fn patterns_compile() {
        assert_eq!(RULES.len(), 6);
        assert!(EXERCISE_HEADING.is_match("Übungen"));
    }

    #[test]
    fn carpentries_lesson_with_challenges() {
        let md = "---\ntitle: Intro\n---\n\n::: objectives\n- Learn\n:::\n\nText here.\n\n::: challenge\n## Try\nDo it.\n:::\n\n::: challenge\nAgain.\n:::\n";
        assert_eq!(types("a.md", md), ["exercise", "lesson"]);
    }

    #[test]
    fn liascript_quiz_fields() {
        let md = "# Quiz\n\nWas ist 2+2?\n\n    [[4]]\n\nWelche?\n\n    [[x]] A\n- [[x]] ja\n\n[( )] nein\n[(X)] doch\n";
        assert_eq!(types("q.md", md)[0], "quiz");
    }

    #[test]
    fn plain_prose_is_reading() {
        assert_eq!(types("p.md", "# Title\n\nJust some prose.\n"), ["reading"]);
    }
}
