//! Helpers for running the built `oerkit` binary.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub fn oerkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oerkit"))
}

pub fn run_ok(args: &[&str]) -> Output {
    let out = oerkit().args(args).output().expect("spawn oerkit");
    assert!(
        out.status.success(),
        "oerkit {args:?} failed: {}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Lines `skip..skip + take` of the OpenStax Statistics English test set, written to
/// `dir/segments.txt` (one segment per line, the `lines` format).
pub fn openstax_segments(dir: &Path, skip: usize, take: usize) -> std::path::PathBuf {
    let text: String = std::fs::read_to_string(oerkit_testkit::corpus(
        "parallel/openstax-statistics/eng-spa.eng",
    ))
    .unwrap()
    .lines()
    .skip(skip)
    .take(take)
    .map(|l| format!("{l}\n"))
    .collect();
    let path = dir.join("segments.txt");
    std::fs::write(&path, text).unwrap();
    path
}
