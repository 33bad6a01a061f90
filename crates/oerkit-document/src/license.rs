//! Licences, because a translation is an adaptation: detect the licence of a resource, map it to an
//! SPDX id, decide whether a translation may be shared, and build the attribution notice.
//!
//! Detection order: an explicit `--license SPDX` given by the user; the licence the file states
//! (`doc.meta.license`: front matter, CNXML `md:license`, HTML `rel="license"`, H5P/PO metadata);
//! a `LICENSE`/`LICENCE` file (`.md`, `.txt` or none) in the file's folder or a parent, up to a root.
//! Licence texts are recognised by their Creative Commons URL or title, or the opening of the
//! MIT, Apache, GPL-family and CC0 texts.

use serde::Serialize;
use std::path::{Path, PathBuf};

use crate::document::Metadata;

/// A licence oerkit knows: SPDX id, name and canonical URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KnownLicense {
    pub spdx: &'static str,
    pub name: &'static str,
    pub url: &'static str,
}

const fn lic(spdx: &'static str, name: &'static str, url: &'static str) -> KnownLicense {
    KnownLicense { spdx, name, url }
}

/// Public domain material without an SPDX licence (e.g. the Creative Commons Public Domain Mark).
pub const PUBLIC_DOMAIN: &str = "LicenseRef-PublicDomain";

pub const KNOWN: &[KnownLicense] = &[
    lic(
        "CC-BY-4.0",
        "Creative Commons Attribution 4.0 International",
        "https://creativecommons.org/licenses/by/4.0/",
    ),
    lic(
        "CC-BY-SA-4.0",
        "Creative Commons Attribution-ShareAlike 4.0 International",
        "https://creativecommons.org/licenses/by-sa/4.0/",
    ),
    lic(
        "CC-BY-NC-4.0",
        "Creative Commons Attribution-NonCommercial 4.0 International",
        "https://creativecommons.org/licenses/by-nc/4.0/",
    ),
    lic(
        "CC-BY-NC-SA-4.0",
        "Creative Commons Attribution-NonCommercial-ShareAlike 4.0 International",
        "https://creativecommons.org/licenses/by-nc-sa/4.0/",
    ),
    lic(
        "CC-BY-ND-4.0",
        "Creative Commons Attribution-NoDerivatives 4.0 International",
        "https://creativecommons.org/licenses/by-nd/4.0/",
    ),
    lic(
        "CC-BY-NC-ND-4.0",
        "Creative Commons Attribution-NonCommercial-NoDerivatives 4.0 International",
        "https://creativecommons.org/licenses/by-nc-nd/4.0/",
    ),
    lic(
        "CC-BY-3.0",
        "Creative Commons Attribution 3.0 Unported",
        "https://creativecommons.org/licenses/by/3.0/",
    ),
    lic(
        "CC-BY-SA-3.0",
        "Creative Commons Attribution-ShareAlike 3.0 Unported",
        "https://creativecommons.org/licenses/by-sa/3.0/",
    ),
    lic(
        "CC-BY-NC-3.0",
        "Creative Commons Attribution-NonCommercial 3.0 Unported",
        "https://creativecommons.org/licenses/by-nc/3.0/",
    ),
    lic(
        "CC-BY-NC-SA-3.0",
        "Creative Commons Attribution-NonCommercial-ShareAlike 3.0 Unported",
        "https://creativecommons.org/licenses/by-nc-sa/3.0/",
    ),
    lic(
        "CC-BY-ND-3.0",
        "Creative Commons Attribution-NoDerivs 3.0 Unported",
        "https://creativecommons.org/licenses/by-nd/3.0/",
    ),
    lic(
        "CC-BY-NC-ND-3.0",
        "Creative Commons Attribution-NonCommercial-NoDerivs 3.0 Unported",
        "https://creativecommons.org/licenses/by-nc-nd/3.0/",
    ),
    lic(
        "CC0-1.0",
        "Creative Commons Zero v1.0 Universal",
        "https://creativecommons.org/publicdomain/zero/1.0/",
    ),
    lic(
        PUBLIC_DOMAIN,
        "Public Domain",
        "https://creativecommons.org/publicdomain/mark/1.0/",
    ),
    lic("MIT", "MIT License", "https://opensource.org/licenses/MIT"),
    lic(
        "Apache-2.0",
        "Apache License 2.0",
        "https://www.apache.org/licenses/LICENSE-2.0",
    ),
    lic(
        "GPL-2.0-only",
        "GNU General Public License v2.0",
        "https://www.gnu.org/licenses/old-licenses/gpl-2.0.html",
    ),
    lic(
        "GPL-3.0-only",
        "GNU General Public License v3.0",
        "https://www.gnu.org/licenses/gpl-3.0.html",
    ),
    lic(
        "LGPL-3.0-only",
        "GNU Lesser General Public License v3.0",
        "https://www.gnu.org/licenses/lgpl-3.0.html",
    ),
    lic(
        "AGPL-3.0-only",
        "GNU Affero General Public License v3.0",
        "https://www.gnu.org/licenses/agpl-3.0.html",
    ),
];

/// The known licence with this SPDX id (case-insensitive; `-or-later` variants and the deprecated
/// `GPL-3.0`/`AGPL-3.0` ids map to the same entry).
pub fn known(spdx: &str) -> Option<&'static KnownLicense> {
    let id = spdx.trim();
    let base = id
        .strip_suffix("-or-later")
        .or_else(|| id.strip_suffix("-only"))
        .or_else(|| id.strip_suffix('+'))
        .unwrap_or(id);
    KNOWN.iter().find(|k| {
        k.spdx.eq_ignore_ascii_case(id)
            || k.spdx
                .strip_suffix("-only")
                .is_some_and(|b| b.eq_ignore_ascii_case(base))
    })
}

/// The SPDX id of a licence statement: an SPDX id, a URL, or a name (`CC BY-SA 4.0`,
/// `Creative Commons Attribution 4.0 International`, `MIT License`, `Public Domain`).
pub fn spdx_from_statement(statement: &str) -> Option<&'static str> {
    let s = statement.trim();
    if let Some(k) = known(s) {
        return Some(k.spdx);
    }
    let lower = s.to_lowercase();
    if let Some(id) = spdx_from_cc_url(&lower) {
        return Some(id);
    }
    spdx_from_name(&lower)
}

/// `creativecommons.org/licenses/by-sa/4.0/…`, `…/publicdomain/zero/1.0`, and the other licences' URLs.
fn spdx_from_cc_url(lower: &str) -> Option<&'static str> {
    if let Some(pos) = lower.find("creativecommons.org/licenses/") {
        let rest = &lower[pos + "creativecommons.org/licenses/".len()..];
        let mut parts = rest.split('/');
        let kind = parts.next()?;
        let version = parts.next().unwrap_or("4.0");
        let version = if version.starts_with('3') {
            "3.0"
        } else {
            "4.0"
        };
        let id = format!("CC-{}-{version}", kind.to_uppercase());
        return known(&id).map(|k| k.spdx);
    }
    if lower.contains("creativecommons.org/publicdomain/zero") {
        return Some("CC0-1.0");
    }
    if lower.contains("creativecommons.org/publicdomain/mark") {
        return Some(PUBLIC_DOMAIN);
    }
    if lower.contains("opensource.org/licenses/mit") {
        return Some("MIT");
    }
    if lower.contains("apache.org/licenses/license-2.0") {
        return Some("Apache-2.0");
    }
    for (needle, id) in [
        ("gnu.org/licenses/agpl", "AGPL-3.0-only"),
        ("gnu.org/licenses/lgpl", "LGPL-3.0-only"),
        ("gnu.org/licenses/old-licenses/gpl-2.0", "GPL-2.0-only"),
        ("gnu.org/licenses/gpl", "GPL-3.0-only"),
    ] {
        if lower.contains(needle) {
            return Some(id);
        }
    }
    None
}

/// A Creative Commons licence named in words: `CC BY-NC-SA 4.0`, `Attribution-ShareAlike 4.0`.
fn spdx_from_name(lower: &str) -> Option<&'static str> {
    let flat: String = lower
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '.' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let words: Vec<&str> = flat.split_whitespace().collect();
    let has = |w: &str| words.contains(&w);
    let text = words.join(" ");
    if text.contains("cc0") || text.contains("cc zero") || text.contains("creative commons zero") {
        return Some("CC0-1.0");
    }
    if text.contains("public domain") {
        return Some(PUBLIC_DOMAIN);
    }
    let cc = has("cc") || text.contains("creative commons") || text.starts_with("attribution");
    if cc && (has("by") || text.contains("attribution")) {
        let nc = has("nc") || text.contains("noncommercial") || text.contains("non commercial");
        let nd = has("nd")
            || text.contains("noderivatives")
            || text.contains("noderivs")
            || text.contains("no derivatives");
        let sa = has("sa") || text.contains("sharealike") || text.contains("share alike");
        let version = if has("3.0") { "3.0" } else { "4.0" };
        let mut id = String::from("CC-BY");
        if nc {
            id.push_str("-NC");
        }
        if nd {
            id.push_str("-ND");
        } else if sa {
            id.push_str("-SA");
        }
        id.push('-');
        id.push_str(version);
        return known(&id).map(|k| k.spdx);
    }
    if text.starts_with("mit") || text.contains("mit license") {
        return Some("MIT");
    }
    if text.contains("apache license") {
        return Some("Apache-2.0");
    }
    if text.contains("affero general public license") {
        return Some("AGPL-3.0-only");
    }
    if text.contains("lesser general public license") {
        return Some("LGPL-3.0-only");
    }
    if text.contains("gnu general public license") {
        return Some(if text.contains("version 2") {
            "GPL-2.0-only"
        } else {
            "GPL-3.0-only"
        });
    }
    None
}

/// The SPDX id of a licence file's text. Creative Commons material often ships a LICENSE that
/// licenses the lessons under CC and their code under MIT (the Carpentries): the first licence the
/// text names wins, so the instructional material's licence is found.
pub fn spdx_from_license_text(text: &str) -> Option<&'static str> {
    let lower = text.to_lowercase();
    let head: String = lower.chars().take(4000).collect();
    // Unambiguous openings of well-known texts.
    let opening = head.trim_start_matches(|c: char| c.is_whitespace() || c == '#');
    for (start, id) in [
        ("cc0 1.0 universal", "CC0-1.0"),
        ("mit license", "MIT"),
        ("the mit license", "MIT"),
        ("gnu affero general public license", "AGPL-3.0-only"),
        ("gnu lesser general public license", "LGPL-3.0-only"),
        ("apache license", "Apache-2.0"),
    ] {
        if opening.starts_with(start) {
            return Some(id);
        }
    }
    if opening.starts_with("gnu general public license") {
        return spdx_from_name(&head.chars().take(200).collect::<String>());
    }
    // The first Creative Commons URL, else the first licence title in the text.
    if let Some(id) = spdx_from_cc_url(&head) {
        return Some(id);
    }
    for line in head.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.contains("attribution") || line.contains("cc by") || line.contains("cc-by") {
            if let Some(id) = spdx_from_name(line) {
                return Some(id);
            }
        }
    }
    if lower.contains("permission is hereby granted, free of charge") {
        return Some("MIT");
    }
    spdx_from_name(&head.chars().take(300).collect::<String>())
}

/// The licence file names looked for, in order.
pub const LICENSE_FILE_NAMES: &[&str] = &[
    "LICENSE.md",
    "LICENSE",
    "LICENSE.txt",
    "LICENCE.md",
    "LICENCE",
    "LICENCE.txt",
];

/// The nearest licence file for `path` (a file or folder): in its folder, then each parent up to and
/// including `root`.
pub fn find_license_file(path: &Path, root: &Path) -> Option<PathBuf> {
    let mut dir = if path.is_dir() {
        Some(path)
    } else {
        path.parent()
    };
    while let Some(d) = dir {
        for name in LICENSE_FILE_NAMES {
            let candidate = d.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
        if d == root || d.as_os_str().is_empty() {
            break;
        }
        dir = d.parent();
    }
    None
}

/// Where a detected licence came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum LicenseSource {
    /// `--license` on the command line.
    Explicit,
    /// The file states it (front matter, CNXML metadata, HTML `rel="license"`…).
    Metadata { stated: String },
    /// A licence file.
    File { path: PathBuf },
}

/// A detected licence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detected {
    /// SPDX id, or `None` when a statement or file was found but not recognised.
    pub spdx: Option<String>,
    pub source: LicenseSource,
}

/// Detects the licence of the resource at `path` (see the module doc). `None`: nothing found.
pub fn detect(
    meta: &Metadata,
    path: &Path,
    root: &Path,
    explicit: Option<&str>,
) -> Option<Detected> {
    if let Some(id) = explicit {
        let spdx = known(id).map_or_else(|| id.trim().to_string(), |k| k.spdx.to_string());
        return Some(Detected {
            spdx: Some(spdx),
            source: LicenseSource::Explicit,
        });
    }
    if let Some(stated) = meta.license.as_deref().filter(|s| !s.trim().is_empty()) {
        return Some(Detected {
            spdx: spdx_from_statement(stated).map(str::to_string),
            source: LicenseSource::Metadata {
                stated: stated.to_string(),
            },
        });
    }
    let file = find_license_file(path, root)?;
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    Some(Detected {
        spdx: spdx_from_license_text(&text).map(str::to_string),
        source: LicenseSource::File { path: file },
    })
}

/// What a licence allows a translator to do with a translation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub spdx: Option<String>,
    /// Whether a translation may be shared.
    pub may_translate: bool,
    /// Why not, when it may not.
    pub reason: Option<String>,
    /// The translation must carry the same licence.
    pub share_alike: bool,
    /// Non-commercial use only; the notice says so.
    pub non_commercial: bool,
    /// The licence is one oerkit knows.
    pub known: bool,
}

/// The translation policy of a licence (`None`: unknown; refused unless the user states one).
pub fn translation_policy(spdx: Option<&str>) -> Policy {
    let Some(id) = spdx else {
        return Policy {
            spdx: None,
            may_translate: false,
            reason: Some(
                "the licence is unknown: without one, sharing a translation is not permitted; \
                 pass --license SPDX if you know it"
                    .into(),
            ),
            share_alike: false,
            non_commercial: false,
            known: false,
        };
    };
    let upper = id.to_ascii_uppercase();
    let is_cc = upper.starts_with("CC-BY");
    let nd = is_cc && upper.contains("-ND");
    let k = known(id);
    let copyleft = ["GPL", "AGPL", "LGPL"].iter().any(|p| upper.starts_with(p));
    Policy {
        spdx: Some(k.map_or(id, |k| k.spdx).to_string()),
        may_translate: !nd,
        reason: nd.then(|| {
            format!(
                "{} ({id}) is a NoDerivatives licence: a translation is an adaptation and ND forbids \
                 sharing adaptations; ask the rights holder for permission",
                k.map_or(id, |k| k.name)
            )
        }),
        share_alike: (is_cc && upper.contains("-SA")) || copyleft,
        non_commercial: is_cc && upper.contains("-NC"),
        known: k.is_some(),
    }
}

/// What the attribution notice of a translation says (TASL: title, author, source, licence).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Attribution {
    pub title: Option<String>,
    pub authors: Vec<String>,
    pub source_url: Option<String>,
    pub license_spdx: Option<String>,
    pub source_language: Option<String>,
    pub target_language: String,
    /// Who or what translated: `oerkit 0.1 with <model>`, a person…
    pub translator: String,
    /// What else changed: `machine translation, not yet reviewed`…
    pub changes: Option<String>,
}

/// The attribution notice, in the form Creative Commons recommends (title, author, source, licence,
/// and the changes made), in English; each format embeds it as it can.
pub fn attribution_notice(a: &Attribution) -> String {
    let title = a
        .title
        .as_deref()
        .map_or_else(|| "This work".to_string(), |t| format!("\"{t}\""));
    let mut first = title;
    if !a.authors.is_empty() {
        first.push_str(&format!(" by {}", a.authors.join(", ")));
    }
    if let Some(url) = &a.source_url {
        first.push_str(&format!(" ({url})"));
    }
    let mut lines = Vec::new();
    match a.license_spdx.as_deref() {
        Some(id) => {
            let (name, url) = known(id).map_or((id, None), |k| (k.name, Some(k.url)));
            let mut licence = format!("{first} is licensed under {name}");
            if let Some(url) = url {
                licence.push_str(&format!(" ({url})"));
            }
            licence.push('.');
            lines.push(licence);
        }
        None => lines.push(format!("{first}.")),
    }
    let from = a
        .source_language
        .as_deref()
        .map(|l| format!(" from {l}"))
        .unwrap_or_default();
    let mut translated = format!(
        "Translated{from} to {} by {}",
        a.target_language, a.translator
    );
    if let Some(changes) = &a.changes {
        translated.push_str(&format!("; changes: {changes}"));
    }
    translated.push('.');
    lines.push(translated);
    let policy = translation_policy(a.license_spdx.as_deref());
    if policy.share_alike {
        if let Some(id) = &policy.spdx {
            lines.push(format!(
                "This translation is licensed under the same licence ({id})."
            ));
        }
    }
    if policy.non_commercial {
        lines.push("Non-commercial use only.".to_string());
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_map_to_spdx() {
        for (s, id) in [
            ("http://creativecommons.org/licenses/by/4.0/", "CC-BY-4.0"),
            (
                "https://creativecommons.org/licenses/by-nc-sa/3.0/deed.en",
                "CC-BY-NC-SA-3.0",
            ),
            (
                "https://creativecommons.org/publicdomain/zero/1.0/",
                "CC0-1.0",
            ),
            ("CC BY-SA 4.0", "CC-BY-SA-4.0"),
            ("cc-by-nd-4.0", "CC-BY-ND-4.0"),
            (
                "Creative Commons Attribution-NonCommercial-NoDerivatives 4.0 International",
                "CC-BY-NC-ND-4.0",
            ),
            ("Attribution 4.0 International", "CC-BY-4.0"),
            ("MIT", "MIT"),
            ("AGPL-3.0", "AGPL-3.0-only"),
            ("GPL-3.0-or-later", "GPL-3.0-only"),
            ("Public Domain", PUBLIC_DOMAIN),
        ] {
            assert_eq!(spdx_from_statement(s), Some(id), "{s}");
        }
        assert_eq!(spdx_from_statement("All rights reserved"), None);
    }

    #[test]
    fn policies() {
        let nd = translation_policy(Some("CC-BY-NC-ND-4.0"));
        assert!(!nd.may_translate);
        assert!(nd
            .reason
            .unwrap()
            .contains("ND forbids sharing adaptations"));
        let sa = translation_policy(Some("CC-BY-SA-4.0"));
        assert!(sa.may_translate && sa.share_alike && !sa.non_commercial);
        let nc = translation_policy(Some("CC-BY-NC-4.0"));
        assert!(nc.may_translate && nc.non_commercial && !nc.share_alike);
        let agpl = translation_policy(Some("AGPL-3.0-only"));
        assert!(agpl.may_translate && agpl.share_alike);
        let unknown = translation_policy(None);
        assert!(!unknown.may_translate && !unknown.known);
        assert!(translation_policy(Some("CC0-1.0")).may_translate);
    }

    #[test]
    fn notice_is_tasl() {
        let notice = attribution_notice(&Attribution {
            title: Some("The Unix Shell".into()),
            authors: vec!["The Carpentries".into()],
            source_url: Some("https://swcarpentry.github.io/shell-novice/".into()),
            license_spdx: Some("CC-BY-NC-SA-4.0".into()),
            source_language: Some("en".into()),
            target_language: "es".into(),
            translator: "oerkit 0.1 (machine translation)".into(),
            changes: Some("not yet reviewed by a person".into()),
        });
        assert_eq!(
            notice,
            "\"The Unix Shell\" by The Carpentries (https://swcarpentry.github.io/shell-novice/) is \
             licensed under Creative Commons Attribution-NonCommercial-ShareAlike 4.0 International \
             (https://creativecommons.org/licenses/by-nc-sa/4.0/).\n\
             Translated from en to es by oerkit 0.1 (machine translation); changes: not yet reviewed by a person.\n\
             This translation is licensed under the same licence (CC-BY-NC-SA-4.0).\n\
             Non-commercial use only."
        );
    }

    #[test]
    fn explicit_and_metadata_win_over_files() {
        let meta = Metadata {
            license: Some("http://creativecommons.org/licenses/by-sa/4.0/".into()),
            ..Default::default()
        };
        let p = Path::new("/nonexistent/x.md");
        let d = detect(&meta, p, Path::new("/nonexistent"), Some("cc-by-4.0")).unwrap();
        assert_eq!(d.spdx.as_deref(), Some("CC-BY-4.0"));
        assert_eq!(d.source, LicenseSource::Explicit);
        let d = detect(&meta, p, Path::new("/nonexistent"), None).unwrap();
        assert_eq!(d.spdx.as_deref(), Some("CC-BY-SA-4.0"));
        assert!(detect(&Metadata::default(), p, Path::new("/nonexistent"), None).is_none());
    }
}
