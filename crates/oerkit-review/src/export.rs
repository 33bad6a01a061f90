//! Exports of a job: the JSONL research dataset and a TMX 1.4 memory of approved pairs.
//! Files are written atomically (a temporary file in the same folder, then renamed).

use crate::error::{Result, ReviewError};
use crate::placeholders::{pieces, Piece, TokenKind};
use crate::store::ReviewStore;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

/// A stable pseudonym for a reviewer: `r-` and the first 16 hex digits of sha256(salt, NUL, name).
pub fn pseudonym(salt: &str, reviewer: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0u8]);
    h.update(reviewer.as_bytes());
    let digest = h.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("r-{hex}")
}

/// Writes `contents` to `path` atomically.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let io = |source| ReviewError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io)?;
    tmp.write_all(contents).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// The research dataset of a job as JSONL: one line per review with its unit, machine suggestion and
/// provenance. Reviewer names are replaced by salted-hash pseudonyms unless `names`.
pub fn jsonl(
    store: &dyn ReviewStore,
    job_id: i64,
    names: bool,
    salt: Option<&str>,
) -> Result<(String, usize)> {
    let stored_salt;
    let salt = match salt {
        Some(s) => s,
        None => {
            stored_salt = store.pseudonym_salt()?;
            &stored_salt
        }
    };
    let rows = store.research_rows(job_id)?;
    let mut out = String::new();
    for mut row in rows.iter().cloned() {
        if !names {
            row.reviewer = pseudonym(salt, &row.reviewer);
        }
        let line = serde_json::to_string(&row)
            .map_err(|e| ReviewError::Invalid(format!("cannot encode row: {e}")))?;
        out.push_str(&line);
        out.push('\n');
    }
    Ok((out, rows.len()))
}

fn escape_xml(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
}

/// A segment with placeholders as TMX inline elements: `<gN>` → `<bpt i="N">`, `</gN>` → `<ept i="N">`,
/// `<xN/>` → `<ph x="N">`, each holding the token itself as native code.
fn tmx_segment(text: &str) -> String {
    let mut out = String::new();
    for p in pieces(text) {
        match p {
            Piece::Text(s) => escape_xml(s, &mut out),
            Piece::Token(t) => {
                let (open, close) = match t.kind {
                    TokenKind::Open => (format!("<bpt i=\"{}\">", t.id), "</bpt>"),
                    TokenKind::Close => (format!("<ept i=\"{}\">", t.id), "</ept>"),
                    TokenKind::Standalone => (format!("<ph x=\"{}\">", t.id), "</ph>"),
                };
                out.push_str(&open);
                escape_xml(&t.to_string(), &mut out);
                out.push_str(close);
            }
        }
    }
    out
}

/// TMX 1.4 `creationdate` form (`YYYYMMDDThhmmssZ`) of an RFC 3339 UTC time.
fn tmx_date(rfc3339: &str) -> Option<String> {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()?;
    let t = t.to_offset(time::UtcOffset::UTC);
    Some(format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

/// A TMX 1.4 memory of the job's approved pairs.
pub fn tmx(store: &dyn ReviewStore, job_id: i64) -> Result<(String, usize)> {
    let job = store.job(&job_id.to_string())?;
    let pairs = store.approved_pairs(job_id)?;
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<tmx version=\"1.4\">\n");
    out.push_str("  <header creationtool=\"oerkit\" creationtoolversion=\"");
    escape_xml(env!("CARGO_PKG_VERSION"), &mut out);
    out.push_str("\" segtype=\"sentence\" o-tmf=\"oerkit-review\" adminlang=\"en\" srclang=\"");
    escape_xml(&job.src_lang, &mut out);
    out.push_str("\" datatype=\"plaintext\">\n    <prop type=\"x-oerkit-job\">");
    escape_xml(&job.name, &mut out);
    out.push_str("</prop>\n  </header>\n  <body>\n");
    for p in &pairs {
        out.push_str("    <tu tuid=\"");
        escape_xml(&p.ext_id, &mut out);
        out.push('"');
        if let Some(date) = p.approved_at.as_deref().and_then(tmx_date) {
            out.push_str(&format!(" changedate=\"{date}\""));
        }
        out.push_str(">\n      <tuv xml:lang=\"");
        escape_xml(&job.src_lang, &mut out);
        out.push_str("\"><seg>");
        out.push_str(&tmx_segment(&p.source));
        out.push_str("</seg></tuv>\n      <tuv xml:lang=\"");
        escape_xml(&job.tgt_lang, &mut out);
        out.push_str("\"><seg>");
        out.push_str(&tmx_segment(&p.target));
        out.push_str("</seg></tuv>\n    </tu>\n");
    }
    out.push_str("  </body>\n</tmx>\n");
    Ok((out, pairs.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmx_segments_escape_text_and_wrap_placeholders() {
        assert_eq!(
            tmx_segment("a < b & <g1>c</g1><x2/>"),
            "a &lt; b &amp; <bpt i=\"1\">&lt;g1&gt;</bpt>c<ept i=\"1\">&lt;/g1&gt;</ept><ph x=\"2\">&lt;x2/&gt;</ph>"
        );
    }

    #[test]
    fn tmx_dates() {
        assert_eq!(
            tmx_date("2026-11-25T01:02:03.456Z").as_deref(),
            Some("20261125T010203Z")
        );
    }

    #[test]
    fn pseudonyms_depend_on_salt_and_name() {
        assert_eq!(pseudonym("s", "ana"), pseudonym("s", "ana"));
        assert_ne!(pseudonym("s", "ana"), pseudonym("t", "ana"));
        assert_ne!(pseudonym("s", "ana"), pseudonym("s", "bo"));
        assert!(pseudonym("s", "ana").starts_with("r-") && pseudonym("s", "ana").len() == 18);
    }
}
