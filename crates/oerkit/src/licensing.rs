//! Licence checks before any adaptation is written: translation (and pseudo-translation) is an
//! adaptation, so ND works are refused, unknown licences need `--license`, SA is carried over and NC
//! is stated in the attribution notice of every output.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use oerkit_document::license::{
    attribution_notice, detect, translation_policy, Attribution, Detected, Policy,
};
use oerkit_document::{FormatKind, Metadata};

use crate::doc_io::{is_translatable, InputFile};

/// The licence facts of one file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileLicense {
    pub file: PathBuf,
    pub detected: Option<Detected>,
    pub policy: Policy,
}

/// Detects the licence of one input file (from its own metadata, a licence file up to its folder
/// argument, or `--license`).
pub fn file_license(
    input: &InputFile,
    format: Option<FormatKind>,
    explicit: Option<&str>,
) -> Result<FileLicense> {
    let doc = oerkit_document::load(&input.path, format)?;
    // A file named alone is often one of a course whose licence file sits a level or two up
    // (`course/LICENSE`, `course/en/page.md`): look up to its grandparent folder.
    let root = input
        .root
        .clone()
        .unwrap_or_else(|| grandparent_dir(&input.path));
    let detected = detect(&doc.meta, &input.path, &root, explicit);
    let policy = translation_policy(detected.as_ref().and_then(|d| d.spdx.as_deref()));
    Ok(FileLicense {
        file: input.path.clone(),
        detected,
        policy,
    })
}

/// The folder two levels above `file`'s own (or as high as the path goes): where a course's licence
/// file usually sits relative to one of its pages.
pub fn grandparent_dir(file: &Path) -> PathBuf {
    let mut dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    for _ in 0..2 {
        match dir.parent() {
            Some(up) if !up.as_os_str().is_empty() => dir = up.to_path_buf(),
            _ => break,
        }
    }
    dir
}

/// The licences of a job that may go ahead.
#[derive(Debug, Clone)]
pub struct Adaptation {
    spdx: HashMap<PathBuf, Option<String>>,
    /// Who or what adapts (`machine translation`, `oerkit pseudo-translation`).
    what: String,
    target_lang: String,
}

impl Adaptation {
    pub fn spdx_for(&self, path: &Path) -> Option<String> {
        self.spdx.get(path).cloned().flatten()
    }

    /// The notice for a pseudo-translated file.
    pub fn notice_for(&self, meta: &Metadata) -> String {
        self.notice(
            meta,
            meta.language.clone(),
            &self.target_lang,
            &format!("oerkit {}", env!("CARGO_PKG_VERSION")),
            None,
        )
    }

    /// The notice for a machine-translated file.
    pub fn notice_for_translation(
        &self,
        meta: &Metadata,
        source_lang: &str,
        target_lang: &str,
        model: &str,
    ) -> String {
        self.notice(
            meta,
            Some(source_lang.to_string()),
            target_lang,
            &format!(
                "oerkit {} with the model {model}",
                env!("CARGO_PKG_VERSION")
            ),
            Some(format!("{}, not yet reviewed by a person", self.what)),
        )
    }

    fn notice(
        &self,
        meta: &Metadata,
        from: Option<String>,
        to: &str,
        translator: &str,
        changes: Option<String>,
    ) -> String {
        let spdx = meta
            .license
            .as_deref()
            .and_then(oerkit_document::license::spdx_from_statement)
            .map(str::to_string)
            .or_else(|| self.spdx.values().flatten().next().cloned());
        attribution_notice(&Attribution {
            title: meta.title.clone(),
            authors: meta.authors.clone(),
            source_url: meta.source_url.clone(),
            license_spdx: spdx,
            source_language: from,
            target_language: to.to_string(),
            translator: translator.to_string(),
            changes: changes.or_else(|| Some(self.what.clone())),
        })
    }
}

/// Checks every translatable input before anything is written; refuses the whole job when any file may
/// not be adapted.
pub fn check_adaptation(
    inputs: &[InputFile],
    format: Option<FormatKind>,
    explicit: Option<&str>,
    what: &str,
    target_lang: &str,
) -> Result<Adaptation> {
    let mut spdx = HashMap::new();
    for input in inputs.iter().filter(|i| is_translatable(&i.path, format)) {
        let lic = file_license(input, format, explicit)?;
        if !lic.policy.may_translate {
            let reason = lic.policy.reason.clone().unwrap_or_default();
            bail!(
                "{}: refusing to translate: {reason}. Nothing was written.",
                input.path.display()
            );
        }
        if lic.policy.non_commercial {
            eprintln!(
                "note: {}: {} is non-commercial; the output says so",
                input.path.display(),
                lic.policy.spdx.as_deref().unwrap_or("?")
            );
        }
        spdx.insert(input.path.clone(), lic.policy.spdx.clone());
    }
    Ok(Adaptation {
        spdx,
        what: what.to_string(),
        target_lang: target_lang.to_string(),
    })
}
