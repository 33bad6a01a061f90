//! The hub source against a local stand-in for the Hugging Face `resolve` endpoint, speaking the
//! headers hf-hub reads (`x-repo-commit`, `etag`, `content-range`, ranged GETs). Checks that a
//! file without a pinned sha256 is verified against the hub's etag, and that a wrong one is
//! rejected and leaves nothing in the cache.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step should just fail the test

use oerkit_models::{Catalog, FetchOptions, ModelEntry, ModelStore, Progress};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

/// Serves `body` for any `resolve` URL, with `etag` as its etag, until the test ends.
fn fake_hub(body: Vec<u8>, etag: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut start = 0usize;
            let mut end = body.len().saturating_sub(1);
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
                let lower = header.to_ascii_lowercase();
                if let Some(range) = lower.trim().strip_prefix("range: bytes=") {
                    let (from, to) = range.split_once('-').unwrap();
                    start = from.parse().unwrap();
                    if !to.is_empty() {
                        end = to.parse().unwrap();
                    }
                }
            }
            if !request_line.contains("/resolve/") {
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
                continue;
            }
            let chunk = &body[start..=end.min(body.len() - 1)];
            let head = format!(
                "HTTP/1.1 206 Partial Content\r\nx-repo-commit: {}\r\netag: \"{etag}\"\r\ncontent-range: bytes {start}-{end}/{}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                "0123456789abcdef0123456789abcdef01234567",
                body.len(),
                chunk.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(chunk);
        }
    });
    format!("http://{address}")
}

fn sha(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, bytes).unwrap();
    oerkit_models::sha256_file(&path).unwrap().1
}

fn hub_entry(pinned_sha: Option<&str>) -> ModelEntry {
    let sha_field = pinned_sha.map_or(String::new(), |s| format!(", sha256 = \"{s}\""));
    let text = format!(
        "[[model]]\nid = \"hubbed\"\ntasks = [\"translate\"]\narchitecture = \"qwen2\"\nformat = \"gguf\"\nlicence = \"MIT\"\nfiles = [{{ name = \"w.gguf\"{sha_field} }}]\nsources = [{{ kind = \"hub\", repo = \"someone/model\", revision = \"main\" }}]\n"
    );
    Catalog::parse(&text, "hub.toml").unwrap().entries()[0].clone()
}

fn store_for(root: &std::path::Path, endpoint: String) -> ModelStore {
    ModelStore::with_options(
        root,
        FetchOptions {
            pip: vec!["false".into()],
            hub_endpoint: endpoint,
            hub_timeout: Duration::from_secs(2),
        },
    )
}

#[test]
fn hub_download_is_verified_against_the_etag() {
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let endpoint = fake_hub(body.clone(), sha(&body));
    let dir = tempfile::tempdir().unwrap();
    let store = store_for(dir.path(), endpoint);
    let entry = hub_entry(None);
    let resolved = store.ensure(&entry, &Progress::hidden()).unwrap();
    assert_eq!(std::fs::read(resolved.primary_file()).unwrap(), body);
    // The hub's cache layout was only scaffolding: the model dir holds the file and manifest.
    let mut names: Vec<String> = std::fs::read_dir(&resolved.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["oerkit-manifest.json", "w.gguf"]);
    let report = store.verify(&entry, &Progress::hidden()).unwrap();
    assert_eq!(report.files[0].sha256, sha(&body));
}

#[test]
fn hub_file_differing_from_its_etag_is_rejected() {
    let body = b"these bytes do not match the etag".to_vec();
    let endpoint = fake_hub(body, sha(b"something else"));
    let dir = tempfile::tempdir().unwrap();
    let store = store_for(dir.path(), endpoint);
    let err = store
        .ensure(&hub_entry(None), &Progress::hidden())
        .unwrap_err();
    assert!(
        err.to_string().contains("differs from the hub's etag"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn hub_file_differing_from_the_pinned_sha_is_rejected() {
    let body = b"hub content".to_vec();
    let endpoint = fake_hub(body.clone(), sha(&body));
    let dir = tempfile::tempdir().unwrap();
    let store = store_for(dir.path(), endpoint);
    let pinned = sha(b"what the catalog expects");
    let err = store
        .ensure(&hub_entry(Some(&pinned)), &Progress::hidden())
        .unwrap_err();
    assert!(err.to_string().contains(&pinned), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
