//! Streaming sha256: files are hashed while they are written, so a 500 MB model is read once.

use indicatif::ProgressBar;
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use std::path::Path;

/// Lower-case hex of a digest.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// A writer that hashes and counts what passes through it and advances a progress bar.
pub(crate) struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
    bar: ProgressBar,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W, bar: ProgressBar) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
            bar,
        }
    }

    /// Flushes and returns (inner writer, bytes written, sha256 hex).
    pub(crate) fn finish(mut self) -> io::Result<(W, u64, String)> {
        self.inner.flush()?;
        let digest = to_hex(&self.hasher.finalize());
        Ok((self.inner, self.bytes, digest))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.bytes += written as u64;
        self.bar.inc(written as u64);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes a file: returns (size in bytes, sha256 hex).
pub fn sha256_file(path: &Path) -> io::Result<(u64, String)> {
    sha256_file_with_progress(path, &ProgressBar::hidden())
}

pub(crate) fn sha256_file_with_progress(
    path: &Path,
    bar: &ProgressBar,
) -> io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut writer = HashingWriter::new(io::sink(), bar.clone());
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buf)?;
        if read == 0 {
            break;
        }
        writer.write_all(&buf[..read])?;
    }
    let (_, size, digest) = writer.finish()?;
    Ok((size, digest))
}
