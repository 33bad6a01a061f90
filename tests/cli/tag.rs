//! `oerkit tag` end to end on the OER corpus with the real MiniLM embedding model: subjects of known
//! courses, languages against the corpus manifest, JSON-LD checked against the schema.org vocabulary
//! (scripts/fetch-schemaorg.sh), bad inputs, and the JSON-LD `oerkit translate` writes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oerkit_tag::schemaorg::{default_path, Vocabulary};
use serde_json::Value;

use crate::common::{oerkit, path_str, run_ok, stdout};

fn oer(rel: &str) -> PathBuf {
    oerkit_testkit::require_shared();
    oerkit_testkit::corpus("oer").join(rel)
}

/// Runs `oerkit tag` and returns one JSON value per output line.
fn tag(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["tag", "--threads", "2"];
    all.extend_from_slice(args);
    stdout(&run_ok(&all))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn file_name(record: &Value) -> String {
    record["file"].as_str().unwrap().to_string()
}

/// The codes of the `n` best subjects.
fn top_codes(record: &Value, n: usize) -> Vec<String> {
    record["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .take(n)
        .map(|s| s["code"].as_str().unwrap().to_string())
        .collect()
}

/// Asserts that one of the record's `n` best subjects lies under the ISCED-F code `prefix`.
fn assert_subject_in_top(record: &Value, prefix: &str, n: usize) {
    let top = top_codes(record, n);
    assert!(
        top.iter().any(|c| c.starts_with(prefix)),
        "{}: top subjects {top:?}",
        file_name(record)
    );
}

/// Languages of the corpus files, from its MANIFEST.tsv (`es_419` → `es`).
fn manifest_languages() -> HashMap<PathBuf, String> {
    let manifest = std::fs::read_to_string(oer("MANIFEST.tsv")).unwrap();
    manifest
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let rel = cols[0].strip_prefix("oer/")?;
            let lang = cols[6].split(['-', '_']).next()?.to_ascii_lowercase();
            Some((oer(rel), lang))
        })
        .collect()
}

fn assert_languages_match_manifest(records: &[Value]) {
    let languages = manifest_languages();
    for r in records {
        let file = PathBuf::from(file_name(r));
        // Site configuration (Jekyll `config.yaml`): no YAML reader exists, the file is sniffed as
        // Markdown because it opens with `#` comments, and those comments are the English lesson
        // template's in every language (es/config.yaml translates only a few values). MANIFEST.tsv
        // gives the lesson's language (es), not the language of the file's text (en). YAML files
        // without a leading comment (LiaScript's metadata.yml) are not read at all.
        if file.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            continue;
        }
        let expected = languages
            .get(&file)
            .unwrap_or_else(|| panic!("{} is not in MANIFEST.tsv", file.display()));
        assert_eq!(
            r["language"]["code"].as_str().unwrap(),
            expected,
            "{}",
            file.display()
        );
    }
}

#[test]
fn carpentries_shell_lesson_is_ict() {
    let records = tag(&[path_str(&oer("carpentries-shell-novice/en/episodes"))]);
    assert_eq!(records.len(), 7);
    let mut with_exercises = 0;
    for r in &records {
        assert_subject_in_top(r, "06", 2);
        assert!(r["keywords"].as_array().unwrap().len() >= 5, "{r}");
        assert_eq!(r["readability"]["formula"], "flesch-reading-ease");
        assert_eq!(r["licence"]["spdx"], "CC-BY-4.0", "{}", file_name(r));
        let types: Vec<&str> = r["resource_types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert!(types.contains(&"lesson"), "{}: {types:?}", file_name(r));
        if types.contains(&"exercise") {
            with_exercises += 1;
        }
    }
    // Most episodes carry challenge blocks.
    assert!(with_exercises >= 5, "{with_exercises} of 7 with exercises");
    assert_languages_match_manifest(&records);
}

#[test]
fn openstax_statistics_modules_are_mathematics_and_statistics() {
    let records = tag(&[path_str(&oer("openstax-statistics/en"))]);
    assert_eq!(records.len(), 9);
    for r in &records {
        assert_subject_in_top(r, "054", 2);
    }
    assert_languages_match_manifest(&records);
}

/// The embedding model is English-only: this passes through the German ISCED-F descriptions in the
/// taxonomy file and the course context (the README's whole text is "Übersicht zur Vorlesung
/// (Sommersemester 2026)"), see `Tagger` in oerkit-tag.
#[test]
fn german_liascript_course_is_ict_software() {
    let records = tag(&[path_str(&oer("liascript-tubaf-softwareentwicklung"))]);
    assert!(records.len() >= 8, "{}", records.len());
    for r in &records {
        assert_subject_in_top(r, "06", 2);
        assert_eq!(r["readability"]["formula"], "amstad");
    }
    assert_languages_match_manifest(&records);
}

#[test]
fn languages_of_translated_course_files_are_right() {
    let records = tag(&[
        path_str(&oer("carpentries-shell-novice/es")),
        path_str(&oer("h5p-interactive-video/language")),
        path_str(&oer("openedx-ora2-po/fr/djangojs.po")),
        path_str(&oer("openedx-ora2-po/sw_KE/djangojs.po")),
    ]);
    assert!(records.len() >= 20, "{}", records.len());
    assert_languages_match_manifest(&records);
}

#[test]
fn jsonld_uses_only_schema_org_terms_and_is_deterministic() {
    let vocab = Vocabulary::load(&default_path()).unwrap_or_else(|e| {
        panic!("{e}\n(the schema.org vocabulary is fetched by scripts/fetch-schemaorg.sh)")
    });
    let files = [
        oer("carpentries-shell-novice/en/episodes/03-create.md"),
        oer("openstax-statistics/es/m46913.cnxml"),
        oer("liascript-tubaf-softwareentwicklung/00_Einfuehrung.md"),
    ];
    let mut args = vec!["--jsonld"];
    args.extend(files.iter().map(|f| path_str(f)));
    let first = tag(&args);
    assert_eq!(first.len(), 3);
    for doc in &first {
        let problems = vocab.check(doc);
        assert!(problems.is_empty(), "{doc:#}\n{problems:#?}");
        assert_eq!(doc["about"][0]["inDefinedTermSet"]["name"], "ISCED-F 2013");
        assert!(doc["educationalLevel"]["description"]
            .as_str()
            .unwrap()
            .starts_with("Estimate"));
    }
    assert_eq!(first, tag(&args), "tagging is not deterministic");
}

#[test]
fn user_taxonomy_in_csv_ranks_its_own_terms() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("curriculum.csv");
    std::fs::write(
        &csv,
        "code,name,description,parent\n\
         CS,Computing,,\n\
         CS1,Command line,\"Using the shell: files, directories, pipes and scripts.\",CS\n\
         BIO,Biology,\"Cells, genes and evolution.\",\n\
         ART,Painting,\"Colours, brushes and canvas.\",\n",
    )
    .unwrap();
    let records = tag(&[
        "--taxonomy",
        path_str(&csv),
        path_str(&oer(
            "carpentries-shell-novice/en/episodes/04-pipefilter.md",
        )),
    ]);
    assert_eq!(top_codes(&records[0], 1), ["CS1"]);
    assert_eq!(records[0]["subjects"][0]["within"][0]["code"], "CS");
    assert_eq!(records[0]["taxonomy"]["name"], "curriculum");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.md");
    std::fs::write(&empty, "").unwrap();
    let code_only = dir.path().join("code-only.md");
    std::fs::write(&code_only, "```bash\nls -l\ncd ..\n```\n").unwrap();
    let taxonomy = dir.path().join("subjects.xml");
    std::fs::write(&taxonomy, "<subjects/>").unwrap();
    let cases: [(Vec<&str>, &Path, &str); 3] = [
        (vec![path_str(&empty)], &empty, "the file is empty"),
        (vec![path_str(&code_only)], &code_only, "has no text"),
        (
            vec!["--taxonomy", path_str(&taxonomy), path_str(&code_only)],
            &taxonomy,
            "unknown taxonomy format",
        ),
    ];
    for (args, named, message) in cases {
        let out = oerkit().arg("tag").args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            stderr.contains(path_str(named)) && stderr.contains(message),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn translate_writes_lrmi_metadata_beside_each_translation() {
    let vocab = Vocabulary::load(&default_path()).unwrap_or_else(|e| {
        panic!("{e}\n(the schema.org vocabulary is fetched by scripts/fetch-schemaorg.sh)")
    });
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src").join("lesson.md");
    std::fs::create_dir_all(src.parent().unwrap()).unwrap();
    std::fs::write(
        &src,
        "---\ntitle: Files\nauthors: [Ada Lovelace]\n---\n\n# Files\n\nThe shell lists files.\n\nA directory holds files.\n",
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    run_ok(&[
        "translate",
        path_str(&src),
        "--to",
        "es",
        "--model",
        "smollm2-135m-instruct",
        "--out",
        path_str(&out_dir),
        "--max-tokens",
        "16",
        "--license",
        "CC-BY-4.0",
    ]);
    let output = out_dir.join("lesson.md");
    let metadata: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("lesson.md.jsonld")).unwrap())
            .unwrap();
    let problems = vocab.check(&metadata);
    assert!(problems.is_empty(), "{metadata:#}\n{problems:#?}");
    let source_sha = {
        use sha2::{Digest, Sha256};
        Sha256::digest(std::fs::read(&src).unwrap())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let source = &metadata["translationOfWork"];
    assert_eq!(source["@id"], format!("urn:sha256:{source_sha}"));
    assert_eq!(source["inLanguage"], "en");
    assert_eq!(source["workTranslation"]["@id"], metadata["@id"]);
    assert_eq!(
        metadata["license"],
        "https://creativecommons.org/licenses/by/4.0/"
    );
    let translator = &metadata["translator"][0];
    assert!(translator["name"]
        .as_str()
        .unwrap()
        .starts_with("smollm2-135m-instruct"));
    // `oerkit tag` on the translation reads the provenance sidecar and says the same.
    let tagged = tag(&["--jsonld", path_str(&output)]);
    assert_eq!(tagged[0]["translationOfWork"]["@id"], source["@id"]);
    assert!(vocab.check(&tagged[0]).is_empty());
}
