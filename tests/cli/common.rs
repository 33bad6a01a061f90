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
