//! The Apertium engine: rule-based, deterministic translation through the `apertium` command line
//! (Debian `apertium` plus a pair package such as `apertium-eng-spa`).
//!
//! Placeholder protection uses Apertium's own format mechanism: the engine writes Apertium's stream
//! format itself (`apertium -f none`), with the text escaped as `apertium-destxt` escapes it and every
//! `<gN>`/`</gN>`/`<xN/>` token inside a *superblank* (`[...]`). Apertium passes superblanks through
//! untouched and in order, so the tokens always come back exactly once each, balanced and in source
//! order (the words between them may be reordered by the pair's transfer rules, as with any Apertium
//! formatting). A whole batch goes through ONE `apertium` process: each segment is followed by an end
//! marker superblank and a NUL (`-z`, null flush), which makes every stage of the pipeline finish the
//! segment before the next starts, so no transfer rule can reach across segments and the output splits
//! back by the markers.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use oerkit_document::placeholder::{spans, Span, TagKind};
use serde_json::json;

use crate::engine::{
    EngineError, EngineInfo, TranslateOutput, TranslateRequest, TranslationEngine,
};

/// What to tell a user who has no Apertium.
pub const INSTALL_HINT: &str =
    "install it with `apt-get install apertium apertium-eng-spa` (Debian/Ubuntu) or run scripts/setup.sh";

/// The superblank content that closes every segment in the stream.
const SEGMENT_END: &str = "<oerkit-segment-end/>";

/// Characters Apertium's stream format reserves; `apertium-destxt` escapes the same set.
const RESERVED: &[char] = &['[', ']', '\\', '^', '$', '/', '<', '>', '@', '{', '}'];

#[derive(Debug, thiserror::Error)]
pub enum ApertiumError {
    #[error("Apertium is not installed: cannot run `{program}` ({source}); {INSTALL_HINT}")]
    NotInstalled {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the Apertium pair '{pair}' is not installed; installed modes: {}; install the pair's package \
         (e.g. `apt-get install apertium-{pair}`) or run scripts/setup.sh",
        if installed.is_empty() { "none".to_string() } else { installed.join(", ") }
    )]
    PairNotInstalled {
        pair: String,
        installed: Vec<String>,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("`{command}`: {source}")]
    Io {
        command: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where Apertium lives; the defaults are the Debian installation.
#[derive(Debug, Clone)]
pub struct ApertiumConfig {
    /// The `apertium` program (a name on PATH or a path).
    pub program: PathBuf,
    /// A linguistic data directory holding `modes/` (`apertium -d`); `None`: the installed data.
    pub data_dir: Option<PathBuf>,
}

impl Default for ApertiumConfig {
    fn default() -> Self {
        ApertiumConfig {
            program: PathBuf::from("apertium"),
            data_dir: None,
        }
    }
}

/// The identity of the linguistic data behind a pair, recorded with every output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairIdentity {
    /// `Apertium 3.8.3`.
    pub apertium_version: String,
    /// The Debian package holding the pair's mode file and its version (`apertium-eng-spa`, `0.8.1-2`);
    /// `None` for data outside dpkg (a `-d` directory, a source build).
    pub package: Option<(String, String)>,
}

/// Translation through an installed Apertium pair (`eng-spa`, `spa-eng`, …).
pub struct ApertiumEngine {
    config: ApertiumConfig,
    pair: String,
    identity: PairIdentity,
}

impl ApertiumEngine {
    /// Opens `pair` (an Apertium mode such as `eng-spa`), checking that Apertium and the pair exist.
    pub fn open(pair: &str, config: ApertiumConfig) -> Result<Self, ApertiumError> {
        let installed = installed_modes(&config)?;
        if !installed.iter().any(|m| m == pair) {
            return Err(ApertiumError::PairNotInstalled {
                pair: pair.to_string(),
                installed,
            });
        }
        let apertium_version = run_capture(&config.program, &["-V"])
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let mode_file = data_dir(&config).join("modes").join(format!("{pair}.mode"));
        let identity = PairIdentity {
            apertium_version,
            package: debian_package(&mode_file),
        };
        tracing::info!(pair, ?identity, "apertium pair opened");
        Ok(ApertiumEngine {
            config,
            pair: pair.to_string(),
            identity,
        })
    }

    pub fn pair(&self) -> &str {
        &self.pair
    }

    pub fn identity(&self) -> &PairIdentity {
        &self.identity
    }

    /// Translates raw segments (placeholder tokens allowed) in one `apertium` process.
    pub fn translate_texts(&self, texts: &[&str]) -> Result<Vec<String>, ApertiumError> {
        // Segments without letters or digits are not worth a trip (and an empty one would be ambiguous).
        let work: Vec<usize> = (0..texts.len())
            .filter(|&i| texts[i].chars().any(char::is_alphanumeric))
            .collect();
        let mut out: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        if work.is_empty() {
            return Ok(out);
        }
        let mut stream = String::new();
        for &i in &work {
            stream.push_str(&encode_segment(texts[i]));
        }
        let mut args: Vec<String> = Vec::new();
        if let Some(dir) = &self.config.data_dir {
            args.push("-d".into());
            args.push(dir.display().to_string());
        }
        // -u: no `*`/`#` marks on unknown words; -z: null flush; -f none: we write the stream format.
        args.extend(["-u", "-z", "-f", "none"].map(String::from));
        args.push(self.pair.clone());
        let output = run_with_input(&self.config.program, &args, stream.into_bytes())?;
        let decoded = decode_stream(&output);
        let command = command_line(&self.config.program, &args);
        if decoded.segments.len() != work.len() {
            return Err(ApertiumError::Failed {
                command,
                status: "exit status 0".into(),
                stderr: format!(
                    "returned {} segments for {} (the segment end markers did not come back)",
                    decoded.segments.len(),
                    work.len()
                ),
            });
        }
        if !decoded.trailing.trim().is_empty() {
            return Err(ApertiumError::Failed {
                command,
                status: "exit status 0".into(),
                stderr: format!(
                    "unexpected text after the last segment: {:?}",
                    decoded.trailing
                ),
            });
        }
        let mut emptied = Vec::new();
        for (i, text) in work.into_iter().zip(decoded.segments) {
            out[i] = restore_tag_spacing(texts[i], &text);
            if empties_a_pair(texts[i], &out[i]) {
                emptied.push(i);
            }
        }
        // Where the pair merged the words a tag pair held into words outside it ("there <g1>is</g1>" ->
        // "hay <g1></g1>"), the markup would be lost: translate the runs between the tokens one by one
        // (one more process for all such segments) and keep the tokens where the source has them.
        if !emptied.is_empty() {
            let mut runs: Vec<&str> = Vec::new();
            for &i in &emptied {
                runs.extend(spans(texts[i]).into_iter().filter_map(|s| match s {
                    Span::Text(t) => Some(t),
                    Span::Token { .. } => None,
                }));
            }
            let trimmed: Vec<&str> = runs.iter().map(|r| r.trim()).collect();
            let translated = self.translate_texts_plain(&trimmed)?;
            let mut next = translated.into_iter();
            for &i in &emptied {
                let mut text = String::new();
                for span in spans(texts[i]) {
                    match span {
                        Span::Text(run) => {
                            let body = next.next().unwrap_or_default();
                            let lead = &run[..run.len() - run.trim_start().len()];
                            let trail = &run[run.trim_end().len()..];
                            text.push_str(lead);
                            text.push_str(&body);
                            if !body.is_empty() || lead.is_empty() {
                                text.push_str(trail);
                            }
                        }
                        Span::Token { text: token, .. } => text.push_str(token),
                    }
                }
                out[i] = text;
            }
        }
        Ok(out)
    }

    /// [`Self::translate_texts`] for texts without tokens (no repair pass).
    fn translate_texts_plain(&self, texts: &[&str]) -> Result<Vec<String>, ApertiumError> {
        debug_assert!(texts
            .iter()
            .all(|t| !oerkit_document::placeholder::contains_token(t)));
        self.translate_texts(texts)
    }

    fn check_languages(&self, request: &TranslateRequest) -> Result<(), EngineError> {
        let Some((src, tgt)) = self.pair.split_once('-') else {
            return Ok(());
        };
        let matches = |code: &str, mode_lang: &str| {
            // `spa-eng_US`: the language is what precedes the variant.
            let mode_base = mode_lang.split(['_', '-']).next().unwrap_or(mode_lang);
            iso639_3(code).is_none_or(|c| c == mode_base)
        };
        if matches(&request.source_lang, src) && matches(&request.target_lang, tgt) {
            Ok(())
        } else {
            Err(EngineError::Failed(format!(
                "the Apertium pair '{}' translates {src} to {tgt}, not {} to {}; choose the matching pair \
                 (installed: `apertium -l`)",
                self.pair, request.source_lang, request.target_lang
            )))
        }
    }
}

impl TranslationEngine for ApertiumEngine {
    fn info(&self) -> EngineInfo {
        let (package, package_version) = match &self.identity.package {
            Some((p, v)) => (Some(p.clone()), Some(v.clone())),
            None => (None, None),
        };
        EngineInfo {
            engine: "apertium".into(),
            model: format!("apertium:{}", self.pair),
            model_sha256: None,
            decoding: json!({
                "strategy": "rule-based",
                "apertium": self.identity.apertium_version,
                "package": package,
                "package_version": package_version,
                "data_dir": self.config.data_dir,
                "unknown_word_marks": false,
            }),
            prompt: None,
        }
    }

    fn translate(
        &mut self,
        batch: &[TranslateRequest],
    ) -> Result<Vec<TranslateOutput>, EngineError> {
        for request in batch {
            self.check_languages(request)?;
        }
        let start = Instant::now();
        let texts: Vec<&str> = batch.iter().map(|r| r.text.as_str()).collect();
        let translated = self
            .translate_texts(&texts)
            .map_err(|e| EngineError::Failed(e.to_string()))?;
        // One process for the batch: share its time out by source length.
        let seconds = start.elapsed().as_secs_f64();
        let total_chars: usize = texts
            .iter()
            .map(|t| t.chars().count())
            .sum::<usize>()
            .max(1);
        Ok(translated
            .into_iter()
            .zip(&texts)
            .map(|(text, source)| TranslateOutput {
                text,
                tokens: None,
                seconds: seconds * source.chars().count() as f64 / total_chars as f64,
            })
            .collect())
    }

    fn preferred_batch(&self) -> usize {
        // Each call starts an Apertium pipeline (~0.3 s); segments themselves are cheap.
        256
    }
}

/// The modes `apertium -l` lists (`eng-spa`, `spa-eng`, …).
pub fn installed_modes(config: &ApertiumConfig) -> Result<Vec<String>, ApertiumError> {
    let mut args: Vec<String> = Vec::new();
    if let Some(dir) = &config.data_dir {
        args.push("-d".into());
        args.push(dir.display().to_string());
    }
    args.push("-l".into());
    let listing = run_capture(&config.program, &args)?;
    Ok(listing
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

fn data_dir(config: &ApertiumConfig) -> PathBuf {
    config.data_dir.clone().unwrap_or_else(|| {
        std::env::var_os("APERTIUM_DATADIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/share/apertium"))
    })
}

/// The Debian package owning `mode_file` and its version, when dpkg knows the file.
fn debian_package(mode_file: &Path) -> Option<(String, String)> {
    let owner = run_capture(Path::new("dpkg-query"), &[Path::new("-S"), mode_file]).ok()?;
    // `apertium-eng-spa: /usr/share/apertium/modes/eng-spa.mode`
    let package = owner.lines().next()?.split_once(':')?.0.trim().to_string();
    let version = run_capture(
        Path::new("dpkg-query"),
        &["-W", "-f=${Version}", package.as_str()],
    )
    .ok()?;
    let version = version.trim().to_string();
    (!package.is_empty() && !version.is_empty()).then_some((package, version))
}

/// ISO 639-3 code of a language tag (`en`, `es-419`, `eng`); `None` when unknown (then not checked).
fn iso639_3(code: &str) -> Option<&'static str> {
    let base = code
        .split(['-', '_'])
        .next()
        .unwrap_or(code)
        .to_ascii_lowercase();
    Some(match base.as_str() {
        "en" | "eng" => "eng",
        "es" | "spa" => "spa",
        "ca" | "cat" => "cat",
        "fr" | "fra" | "fre" => "fra",
        "pt" | "por" => "por",
        "it" | "ita" => "ita",
        "gl" | "glg" => "glg",
        "eu" | "eus" | "baq" => "eus",
        "oc" | "oci" => "oci",
        "de" | "deu" | "ger" => "deu",
        "nl" | "nld" | "dut" => "nld",
        "ro" | "ron" | "rum" => "ron",
        "eo" | "epo" => "epo",
        "cy" | "cym" | "wel" => "cym",
        "br" | "bre" => "bre",
        "nb" | "nob" => "nob",
        "nn" | "nno" => "nno",
        "sv" | "swe" => "swe",
        "da" | "dan" => "dan",
        "is" | "isl" | "ice" => "isl",
        "ru" | "rus" => "rus",
        "uk" | "ukr" => "ukr",
        "kk" | "kaz" => "kaz",
        "tt" | "tat" => "tat",
        "mt" | "mlt" => "mlt",
        "ar" | "ara" => "ara",
        "hi" | "hin" => "hin",
        "ur" | "urd" => "urd",
        _ => return None,
    })
}

/// Transfer rules reorder words around the superblanks, and the blank between two moved words can land
/// inside a tag pair (`<g1>directorio de raíz </g1>`), which Markdown no longer reads as the same markup.
/// Where the source had no whitespace inside a tag pair (after `<gN>`, before `</gN>`), whitespace there
/// moves outside it; whitespace is never moved into a pair.
fn restore_tag_spacing(source: &str, translated: &str) -> String {
    let source_spans = spans(source);
    let mut tight = std::collections::HashMap::new();
    for (i, span) in source_spans.iter().enumerate() {
        if let Span::Token { id, kind, .. } = span {
            let space_before = i
                .checked_sub(1)
                .and_then(|p| source_spans.get(p))
                .is_some_and(|s| matches!(s, Span::Text(t) if t.ends_with(char::is_whitespace)));
            let space_after = source_spans
                .get(i + 1)
                .is_some_and(|s| matches!(s, Span::Text(t) if t.starts_with(char::is_whitespace)));
            tight.insert((*id, *kind), (!space_before, !space_after));
        }
    }
    // Text pieces between tokens; `pieces[2k]` is text, `pieces[2k+1]` a token.
    let mut texts: Vec<String> = vec![String::new()];
    let mut tokens = Vec::new();
    for span in spans(translated) {
        match span {
            Span::Text(t) => texts.last_mut().expect("never empty").push_str(t),
            Span::Token { id, kind, text } => {
                tokens.push((id, kind, text.to_string()));
                texts.push(String::new());
            }
        }
    }
    for (k, (id, kind, _)) in tokens.iter().enumerate() {
        let Some(&(tight_before, tight_after)) = tight.get(&(*id, *kind)) else {
            continue;
        };
        if tight_before && *kind == TagKind::Close {
            let before = &mut texts[k];
            let kept = before.trim_end().len();
            if kept < before.len() && kept > 0 {
                let space: String = before.split_off(kept);
                let after = &mut texts[k + 1];
                if !after.starts_with(char::is_whitespace) {
                    after.insert_str(0, &space);
                }
            }
        }
        if tight_after && *kind == TagKind::Open {
            let after = &mut texts[k + 1];
            let trimmed = after.len() - after.trim_start().len();
            if trimmed > 0 && trimmed < after.len() {
                let space: String = after.drain(..trimmed).collect();
                let before = &mut texts[k];
                if !before.ends_with(char::is_whitespace) {
                    before.push_str(&space);
                }
            }
        }
    }
    let mut out = String::with_capacity(translated.len());
    for (k, text) in texts.iter().enumerate() {
        out.push_str(text);
        if let Some((_, _, token)) = tokens.get(k) {
            out.push_str(token);
        }
    }
    out
}

/// True when a tag pair that held letters in `source` holds none in `translated`.
fn empties_a_pair(source: &str, translated: &str) -> bool {
    let contents = |text: &str| {
        let mut open: std::collections::HashMap<u32, bool> = std::collections::HashMap::new();
        let mut result = Vec::new();
        for span in spans(text) {
            match span {
                Span::Token {
                    id,
                    kind: TagKind::Open,
                    ..
                } => {
                    open.insert(id, false);
                }
                Span::Token {
                    id,
                    kind: TagKind::Close,
                    ..
                } => {
                    result.push((id, open.remove(&id).unwrap_or(false)));
                }
                Span::Token { .. } => {}
                Span::Text(t) => {
                    if t.chars().any(char::is_alphanumeric) {
                        open.values_mut().for_each(|has| *has = true);
                    }
                }
            }
        }
        result
    };
    let before: std::collections::HashMap<u32, bool> = contents(source).into_iter().collect();
    contents(translated)
        .into_iter()
        .any(|(id, has)| !has && before.get(&id).copied().unwrap_or(false))
}

/// One segment in Apertium's stream format, closed by the end marker and a NUL (null flush).
fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    for span in spans(text) {
        match span {
            Span::Text(t) => {
                for c in t.chars() {
                    match c {
                        // As apertium-destxt does: `~` drives some pairs' post-generation rules, so it
                        // travels as formatting.
                        '~' => out.push_str("[~]"),
                        c if RESERVED.contains(&c) => {
                            out.push('\\');
                            out.push(c);
                        }
                        // A NUL would end the segment early (null flush).
                        '\0' => {}
                        c => out.push(c),
                    }
                }
            }
            Span::Token { text: token, .. } => push_superblank(&mut out, token),
        }
    }
    push_superblank(&mut out, SEGMENT_END);
    out.push('\0');
    out
}

fn push_superblank(out: &mut String, content: &str) {
    out.push('[');
    for c in content.chars() {
        if RESERVED.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out.push(']');
}

/// Apertium's output split at the end markers, unescaped and with the superblanks' content restored.
#[derive(Debug, Default, PartialEq)]
struct DecodedStream {
    segments: Vec<String>,
    /// Anything after the last marker (NULs removed): whitespace only, on a healthy run.
    trailing: String,
}

fn decode_stream(output: &str) -> DecodedStream {
    let mut decoded = DecodedStream::default();
    let mut current = String::new();
    let mut chars = output.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            '[' => {
                let mut content = String::new();
                while let Some(b) = chars.next() {
                    match b {
                        '\\' => {
                            if let Some(next) = chars.next() {
                                content.push(next);
                            }
                        }
                        ']' => break,
                        b => content.push(b),
                    }
                }
                if content == SEGMENT_END {
                    decoded.segments.push(std::mem::take(&mut current));
                } else {
                    current.push_str(&content);
                }
            }
            // Null-flush separators (every stage echoes its own at the end).
            '\0' => {}
            c => current.push(c),
        }
    }
    decoded.trailing = current;
    decoded
}

fn command_line<S: AsRef<std::ffi::OsStr>>(program: &Path, args: &[S]) -> String {
    let mut s = program.display().to_string();
    for a in args {
        s.push(' ');
        s.push_str(&a.as_ref().to_string_lossy());
    }
    s
}

fn spawn_error(program: &Path, command: String, source: std::io::Error) -> ApertiumError {
    if source.kind() == std::io::ErrorKind::NotFound {
        ApertiumError::NotInstalled {
            program: program.display().to_string(),
            source,
        }
    } else {
        ApertiumError::Io { command, source }
    }
}

/// Runs a short query command and returns its stdout.
fn run_capture<S: AsRef<std::ffi::OsStr>>(
    program: &Path,
    args: &[S],
) -> Result<String, ApertiumError> {
    let command = command_line(program, args);
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_error(program, command.clone(), e))?;
    if !output.status.success() {
        return Err(ApertiumError::Failed {
            command,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs `program` with `input` on stdin; stdin is written from a thread so that a large batch cannot
/// deadlock against a full stdout pipe.
fn run_with_input(
    program: &Path,
    args: &[String],
    input: Vec<u8>,
) -> Result<String, ApertiumError> {
    let command = command_line(program, args);
    let io_error = |source| ApertiumError::Io {
        command: command.clone(),
        source,
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error(program, command.clone(), e))?;
    let mut stdin = child.stdin.take().expect("stdin was piped");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let mut stderr = child.stderr.take().expect("stderr was piped");
    let stderr_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        stderr.read_to_end(&mut s).map(|_| s)
    });
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .expect("stdout was piped")
        .read_to_end(&mut stdout)
        .map_err(io_error)?;
    let status = child.wait().map_err(io_error)?;
    let stderr = stderr_reader
        .join()
        .map_err(|_| io_error(std::io::Error::other("stderr reader panicked")))?
        .map_err(io_error)?;
    let written = writer
        .join()
        .map_err(|_| io_error(std::io::Error::other("stdin writer panicked")))?;
    if !status.success() {
        return Err(ApertiumError::Failed {
            command,
            status: status.to_string(),
            stderr: String::from_utf8_lossy(&stderr).trim().to_string(),
        });
    }
    written.map_err(io_error)?;
    String::from_utf8(stdout).map_err(|e| ApertiumError::Failed {
        command,
        status: status.to_string(),
        stderr: format!("output is not UTF-8: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oerkit_document::placeholder::{validate, Placeholder};

    #[test]
    fn encodes_text_escaped_and_tokens_as_superblanks() {
        let s = encode_segment("a <g1>b/c</g1> [d] $5 <x2/> e~f");
        assert_eq!(
            s,
            "a [\\<g1\\>]b\\/c[\\<\\/g1\\>] \\[d\\] \\$5 [\\<x2\\/\\>] e[~]f[\\<oerkit-segment-end\\/\\>]\0"
        );
    }

    #[test]
    fn decoding_inverts_encoding() {
        let texts = [
            "Plain text.",
            "a <g1>b/c</g1> [d] \\ ^x$ {y} @z <x2/> <notatag> e~f",
            "  spaces kept  ",
            "line one\nline two",
        ];
        let stream: String = texts.iter().map(|t| encode_segment(t)).collect();
        // Apertium echoes a NUL per stage at the end of its input.
        let decoded = decode_stream(&format!("{stream}\0\0\0"));
        assert_eq!(decoded.segments, texts);
        assert_eq!(decoded.trailing, "");
    }

    #[test]
    fn decoding_counts_only_end_markers() {
        let decoded = decode_stream(
            "uno [\\<g1\\>]dos[\\<\\/g1\\>]\0tres[\\<oerkit-segment-end\\/\\>]\0cola",
        );
        assert_eq!(decoded.segments, vec!["uno <g1>dos</g1>tres"]);
        assert_eq!(decoded.trailing, "cola");
    }

    #[test]
    fn whitespace_moves_out_of_tags_that_hugged_their_words() {
        let source = "the <g1>root directory</g1>\nthat <x2/> x";
        assert_eq!(
            restore_tag_spacing(source, "el <g1>directorio de raíz </g1>\nque <x2/> x"),
            "el <g1>directorio de raíz</g1>\nque <x2/> x"
        );
        assert_eq!(
            restore_tag_spacing(source, "el<g1> directorio</g1> que"),
            "el <g1>directorio</g1> que"
        );
        assert_eq!(
            restore_tag_spacing("a <g1>b</g1>", "<g1> b </g1>"),
            " <g1>b</g1> "
        );
        // Apertium dropped the genitive after the pair: the space stays outside.
        assert_eq!(
            restore_tag_spacing("the <g1>x</g1>'s y", "el <g1>x</g1>  las y"),
            "el <g1>x</g1>  las y"
        );
        assert_eq!(restore_tag_spacing("a<x1/>b", "a <x1/> b"), "a <x1/> b");
    }

    #[test]
    fn emptied_pairs_are_noticed() {
        assert!(empties_a_pair("there <g1>is</g1> a", "hay <g1></g1> un"));
        assert!(!empties_a_pair("a <g1>b</g1>", "a <g1>c</g1>"));
        assert!(!empties_a_pair("a <g1><x2/></g1>", "a <g1><x2/></g1>"));
    }

    #[test]
    fn a_pair_apertium_empties_is_translated_run_by_run() {
        let out = engine()
            .translate_texts(&["No: there <g1>is</g1> a directory <x2/> in <x3/>."])
            .unwrap();
        assert!(
            !empties_a_pair("there <g1>is</g1>", &out[0]),
            "{:?}",
            out[0]
        );
        assert!(
            out[0].contains("<g1>") && out[0].contains("<x3/>"),
            "{:?}",
            out[0]
        );
    }

    // The tests below run the installed Apertium (CI installs it with scripts/setup.sh); they fail,
    // never skip, without it.

    fn engine() -> ApertiumEngine {
        match ApertiumEngine::open("eng-spa", ApertiumConfig::default()) {
            Ok(e) => e,
            Err(e) => panic!("{e}\n(these tests need Apertium with eng-spa: run scripts/setup.sh)"),
        }
    }

    fn placeholders(text: &str) -> Vec<Placeholder> {
        spans(text)
            .into_iter()
            .filter_map(|s| match s {
                Span::Token { id, kind, text } => Some(Placeholder::new(id, kind, text)),
                Span::Text(_) => None,
            })
            .collect()
    }

    const TAGGED: &[&str] = &[
        "Hello <g1>world</g1>, this is a <x2/> test.",
        "The <g1>big red</g1> dog <g2>runs</g2> fast!",
        "Click <g1><g2>Save</g2></g1> to keep the <x3/>file.",
        "<g1>Statistics</g1>",
        "A mean of <x1/> and a median of <x2/>.",
        "Use the [brackets] and $dollars$ and a/b and <notatag> and {braces} and @handles.",
        "The student’s data set is <g1>not</g1> normal.",
    ];

    #[test]
    fn placeholders_survive_and_text_is_spanish() {
        let mut e = engine();
        let requests: Vec<TranslateRequest> = TAGGED
            .iter()
            .map(|t| TranslateRequest {
                text: t.to_string(),
                source_lang: "en".into(),
                target_lang: "es".into(),
                context: String::new(),
            })
            .collect();
        let outputs = e.translate(&requests).unwrap();
        assert_eq!(outputs.len(), TAGGED.len());
        for (source, out) in TAGGED.iter().zip(&outputs) {
            let issues = validate(&placeholders(source), &out.text);
            assert!(
                issues.is_empty(),
                "{source:?} -> {:?}: {issues:?}",
                out.text
            );
            let tokens = |t: &str| -> Vec<String> {
                spans(t)
                    .into_iter()
                    .filter_map(|s| match s {
                        Span::Token { text, .. } => Some(text.to_string()),
                        Span::Text(_) => None,
                    })
                    .collect()
            };
            assert_eq!(tokens(source), tokens(&out.text), "token order kept");
        }
        assert!(
            outputs[0].text.starts_with("Hola <g1>"),
            "{:?}",
            outputs[0].text
        );
        // As `apertium eng-spa` translates these (a rule-based pair: "mean" comes out as "malo").
        assert_eq!(outputs[3].text, "<g1>Estadística</g1>");
        assert!(outputs[4].text.contains(" y "), "{:?}", outputs[4].text);
        // Reserved stream characters come back as text, not as stream syntax.
        for needle in ["[", "]", "$", "/", "{", "}", "@", "<notatag>"] {
            assert!(
                outputs[5].text.contains(needle),
                "{needle} in {:?}",
                outputs[5].text
            );
        }
    }

    #[test]
    fn one_batch_equals_segment_by_segment_and_is_deterministic() {
        let e = engine();
        let batch = e.translate_texts(TAGGED).unwrap();
        let again = e.translate_texts(TAGGED).unwrap();
        assert_eq!(batch, again);
        for (t, b) in TAGGED.iter().zip(&batch) {
            assert_eq!(&e.translate_texts(&[t]).unwrap()[0], b, "{t:?}");
        }
    }

    #[test]
    fn segments_without_letters_pass_through() {
        let e = engine();
        let out = e.translate_texts(&["", "  ", "<x1/>", "The cat."]).unwrap();
        assert_eq!(&out[..3], &["", "  ", "<x1/>"]);
        assert_eq!(out[3], "El gato.");
    }

    #[test]
    fn info_names_the_pair_and_its_package_version() {
        let info = engine().info();
        assert_eq!(info.engine, "apertium");
        assert_eq!(info.model, "apertium:eng-spa");
        assert_eq!(info.decoding["package"], "apertium-eng-spa");
        assert!(info.decoding["package_version"]
            .as_str()
            .is_some_and(|v| !v.is_empty()));
    }

    #[test]
    fn wrong_languages_are_refused() {
        let mut e = engine();
        let err = e
            .translate(&[TranslateRequest {
                text: "Hello".into(),
                source_lang: "en".into(),
                target_lang: "fr".into(),
                context: String::new(),
            }])
            .unwrap_err();
        assert!(
            err.to_string().contains("eng to spa, not en to fr"),
            "{err}"
        );
    }

    #[test]
    fn missing_pair_lists_installed_modes() {
        let err = ApertiumEngine::open("eng-xxx", ApertiumConfig::default())
            .err()
            .expect("no such pair");
        let msg = err.to_string();
        assert!(msg.contains("'eng-xxx' is not installed"), "{msg}");
        assert!(msg.contains("eng-spa"), "{msg}");
    }

    #[test]
    fn missing_program_says_how_to_install() {
        let config = ApertiumConfig {
            program: PathBuf::from("/nonexistent/apertium"),
            data_dir: None,
        };
        let msg = ApertiumEngine::open("eng-spa", config)
            .err()
            .expect("no program")
            .to_string();
        assert!(msg.contains("Apertium is not installed"), "{msg}");
        assert!(msg.contains("scripts/setup.sh"), "{msg}");
        assert!(
            msg.contains("apt-get install apertium apertium-eng-spa"),
            "{msg}"
        );
    }
}
