//! A per-file journal of finished units (JSONL, appended and flushed after every batch), so a batch
//! that crashed or was interrupted resumes where it stopped instead of paying for the model again.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::pipeline::UnitResult;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    source_sha256: String,
    #[serde(flatten)]
    result: UnitResult,
}

pub struct Journal {
    path: PathBuf,
    file: File,
    done: HashMap<String, Entry>,
}

impl Journal {
    /// Opens (or creates) the journal; lines that do not parse (a write cut short by a crash) are skipped.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut done = HashMap::new();
        if path.exists() {
            for line in BufReader::new(File::open(path)?).lines() {
                let line = line?;
                if let Ok(entry) = serde_json::from_str::<Entry>(&line) {
                    done.insert(entry.result.unit_id.clone(), entry);
                }
            }
        }
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        // A crash can leave a partial last line: start ours on a fresh one.
        if std::fs::metadata(path)?.len() > 0 {
            file.write_all(b"\n")?;
        }
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            done,
        })
    }

    /// A finished result for this unit, if its source text is still the same.
    pub fn get(&self, unit_id: &str, source: &str) -> Option<&UnitResult> {
        self.done
            .get(unit_id)
            .filter(|e| e.source_sha256 == sha(source))
            .map(|e| &e.result)
    }

    pub fn len(&self) -> usize {
        self.done.len()
    }

    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    /// Records results durably before the caller goes on.
    pub fn record(&mut self, results: &[UnitResult]) -> std::io::Result<()> {
        let mut buf = String::new();
        for r in results {
            let entry = Entry {
                source_sha256: sha(&r.source),
                result: r.clone(),
            };
            buf.push_str(&serde_json::to_string(&entry).map_err(std::io::Error::other)?);
            buf.push('\n');
            self.done.insert(r.unit_id.clone(), entry);
        }
        self.file.write_all(buf.as_bytes())?;
        self.file.sync_data()
    }

    /// Removes the journal once its file has been written.
    pub fn finish(self) -> std::io::Result<()> {
        drop(self.file);
        std::fs::remove_file(&self.path)
    }
}

fn sha(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}
