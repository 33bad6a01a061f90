//! Licence detection on the corpus's real licence files and metadata, and synthetic ND/NC/SA cases.

use std::path::Path;

use oerkit_document::license::{
    detect, find_license_file, spdx_from_license_text, translation_policy, LicenseSource,
};
use oerkit_document::{load, Metadata};

#[test]
fn corpus_licence_files_are_recognised() {
    oerkit_testkit::require_shared();
    let oer = oerkit_testkit::corpus("oer");
    for (file, root, spdx) in [
        (
            "carpentries-shell-novice/en/episodes/01-intro.md",
            "carpentries-shell-novice",
            "CC-BY-4.0",
        ),
        (
            "carpentries-glosario/glossary.yml",
            "carpentries-glosario",
            "CC-BY-4.0",
        ),
        (
            "openstax-statistics/en/m46909.cnxml",
            "openstax-statistics",
            "CC-BY-4.0",
        ),
        (
            "liascript-tubaf-softwareentwicklung/00_Einfuehrung.md",
            "liascript-tubaf-softwareentwicklung",
            "CC0-1.0",
        ),
        (
            "h5p-interactive-video/language/de.json",
            "h5p-interactive-video",
            "MIT",
        ),
        (
            "openedx-ora2-po/fr/django.po",
            "openedx-ora2-po",
            "AGPL-3.0-only",
        ),
    ] {
        let path = oer.join(file);
        assert!(path.is_file(), "{}", path.display());
        let found = find_license_file(&path, &oer.join(root))
            .unwrap_or_else(|| panic!("no licence file for {file}"));
        let text = std::fs::read_to_string(&found).unwrap();
        assert_eq!(
            spdx_from_license_text(&text),
            Some(spdx),
            "{}",
            found.display()
        );
        let detected = detect(&Metadata::default(), &path, &oer.join(root), None).unwrap();
        assert_eq!(detected.spdx.as_deref(), Some(spdx));
        assert!(matches!(detected.source, LicenseSource::File { .. }));
        assert!(translation_policy(Some(spdx)).may_translate);
    }
    // The search stops at the root: nothing above it is used.
    let episodes = oer.join("carpentries-shell-novice/en/episodes");
    assert!(find_license_file(&episodes.join("01-intro.md"), &episodes).is_none());
}

#[test]
fn cnxml_collection_states_its_licence_url() {
    let path =
        oerkit_testkit::corpus("oer/openstax-statistics/en/introductory-statistics.collection.xml");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("<md:license url=\"").unwrap() + "<md:license url=\"".len();
    let url = &text[start..start + text[start..].find('"').unwrap()];
    let meta = Metadata {
        license: Some(url.to_string()),
        ..Default::default()
    };
    let d = detect(&meta, &path, path.parent().unwrap(), None).unwrap();
    assert_eq!(d.spdx.as_deref(), Some("CC-BY-4.0"));
    assert!(matches!(d.source, LicenseSource::Metadata { .. }));
    // And the PO header/H5P library metadata path: library.json states "MIT".
    let lib = load(
        &oerkit_testkit::corpus("oer/h5p-interactive-video/library.json"),
        None,
    )
    .unwrap();
    let d = detect(&lib.meta, Path::new("library.json"), Path::new("."), None).unwrap();
    assert_eq!(d.spdx.as_deref(), Some("MIT"));
}

#[test]
fn synthetic_nd_nc_sa_and_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let course = dir.path().join("course");
    std::fs::create_dir_all(course.join("lessons")).unwrap();
    let lesson = course.join("lessons/a.md");
    std::fs::write(&lesson, "# A\n").unwrap();
    for (text, spdx, may, sa, nc) in [
        (
            "This work is licensed under CC BY-NC-ND 4.0.",
            "CC-BY-NC-ND-4.0",
            false,
            false,
            true,
        ),
        (
            "Licensed under https://creativecommons.org/licenses/by-nd/3.0/",
            "CC-BY-ND-3.0",
            false,
            false,
            false,
        ),
        (
            "Creative Commons Attribution-NonCommercial 4.0 International",
            "CC-BY-NC-4.0",
            true,
            false,
            true,
        ),
        (
            "# License\n\nCC BY-SA 4.0",
            "CC-BY-SA-4.0",
            true,
            true,
            false,
        ),
    ] {
        std::fs::write(course.join("LICENSE.md"), text).unwrap();
        let d = detect(&Metadata::default(), &lesson, dir.path(), None).unwrap();
        assert_eq!(d.spdx.as_deref(), Some(spdx), "{text}");
        let p = translation_policy(d.spdx.as_deref());
        assert_eq!(
            (p.may_translate, p.share_alike, p.non_commercial),
            (may, sa, nc),
            "{text}"
        );
        if !may {
            assert!(p
                .reason
                .unwrap()
                .contains("a translation is an adaptation and ND forbids sharing adaptations"));
        }
    }
    std::fs::write(course.join("LICENSE.md"), "All rights reserved.").unwrap();
    let d = detect(&Metadata::default(), &lesson, dir.path(), None).unwrap();
    assert_eq!(d.spdx, None);
    assert!(!translation_policy(None).may_translate);
    let d = detect(&Metadata::default(), &lesson, dir.path(), Some("CC-BY-4.0")).unwrap();
    assert_eq!(d.spdx.as_deref(), Some("CC-BY-4.0"));
}
