//! `oerkit models …` end to end: a temporary cache (OERKIT_MODELS), a user catalog of small local
//! models (OERKIT_CATALOG / --catalog), and sources that cannot work offline.

use crate::common::{oerkit, path_str, stdout};
use std::path::Path;
use std::process::Output;

fn sha256_hex(path: &Path) -> String {
    use std::io::Read;
    // The models library is the code under test; compute the reference with the system tool.
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    let mut text = String::new();
    out.stdout
        .as_slice()
        .read_to_string(&mut text)
        .expect("utf-8");
    text.split_whitespace().next().expect("hash").to_string()
}

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    /// A user catalog with one local model `tiny-local` and one `unreachable` model whose every
    /// source fails offline.
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let weights = dir.path().join("tiny.gguf");
        std::fs::write(&weights, b"GGUF tiny test weights").expect("write");
        let catalog = format!(
            "[[model]]\nid = \"tiny-local\"\ntasks = [\"translate\"]\narchitecture = \"llama\"\nformat = \"gguf\"\nlicence = \"MIT\"\ntested = true\nrank = 1\nfiles = [{{ name = \"tiny.gguf\", size = 22, sha256 = \"{}\" }}]\nsources = [{{ kind = \"local\", path = \"{}\" }}]\n\n[[model]]\nid = \"unreachable\"\ntasks = [\"summarize\"]\narchitecture = \"qwen2\"\nformat = \"gguf\"\nlicence = \"MIT\"\nfiles = [{{ name = \"u.gguf\" }}]\n[[model.sources]]\nkind = \"hub\"\nrepo = \"nobody/nothing\"\n[[model.sources]]\nkind = \"pypi\"\npackages = [\"nothing==1.0\"]\nmember_prefix = \"nothing/\"\n",
            sha256_hex(&weights),
            weights.display()
        );
        std::fs::write(dir.path().join("catalog.toml"), catalog).expect("write");
        Self { dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        oerkit()
            .args(args)
            .env("OERKIT_MODELS", self.dir.path().join("cache"))
            .env("OERKIT_CATALOG", self.dir.path().join("catalog.toml"))
            .env("HF_ENDPOINT", "http://127.0.0.1:9")
            .env("OERKIT_PIP", "false")
            .env_remove("RUST_LOG")
            .output()
            .expect("spawn oerkit")
    }

    fn run_ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "oerkit {args:?} failed\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn list_shows_shipped_and_user_models_with_cache_state() {
    let setup = Setup::new();
    let out = setup.run_ok(&["models", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let rows = rows.as_array().expect("array");
    let find = |id: &str| {
        rows.iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing from list"))
    };
    let smollm = find("smollm2-135m-instruct");
    assert_eq!(smollm["cached"], false);
    assert_eq!(smollm["tested"], true);
    assert_eq!(smollm["size"], 98_362_432);
    assert_eq!(smollm["licence"], "Apache-2.0");
    assert_eq!(find("qwen2.5-3b-instruct")["tested"], false);
    assert_eq!(find("tiny-local")["cached"], false);

    setup.run_ok(&["models", "fetch", "tiny-local"]);
    let out = setup.run_ok(&["models", "list"]);
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.starts_with("tiny-local"))
        .expect("tiny-local row");
    assert!(line.contains("cached"), "{line}");
    assert!(text.contains("untested here"), "{text}");
}

#[test]
fn fetch_info_verify_and_tamper() {
    let setup = Setup::new();
    let out = setup.run_ok(&["models", "fetch", "tiny-local", "--json"]);
    let fetched: serde_json::Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    let file = setup.dir.path().join("cache/tiny-local/tiny.gguf");
    assert_eq!(fetched["primary_file"], path_str(&file));
    assert_eq!(fetched["already_cached"], false);
    assert_eq!(
        std::fs::read(&file).expect("read"),
        b"GGUF tiny test weights"
    );

    let out = setup.run_ok(&["models", "fetch", "tiny-local"]);
    assert!(stderr(&out).contains("already cached"), "{}", stderr(&out));

    let out = setup.run_ok(&["models", "info", "tiny-local", "--json"]);
    let info: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(info["state"]["state"], "cached");
    assert_eq!(info["architecture"], "llama");

    let out = setup.run_ok(&["models", "verify", "--json"]);
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    assert_eq!(report["id"], "tiny-local");
    assert_eq!(report["ok"], true);

    std::fs::write(&file, b"GGUF evil test weights").expect("tamper");
    let out = setup.run(&["models", "verify", "tiny-local"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("sha256"), "{}", stderr(&out));
    assert!(stderr(&out).contains("tiny.gguf"), "{}", stderr(&out));
    // Invalidated: the next fetch restores the good copy from the source.
    setup.run_ok(&["models", "fetch", "tiny-local"]);
    assert_eq!(
        std::fs::read(&file).expect("read"),
        b"GGUF tiny test weights"
    );
}

#[test]
fn unknown_id_lists_known_ids() {
    let setup = Setup::new();
    let out = setup.run(&["models", "fetch", "no-such-model"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("unknown model id `no-such-model`"), "{err}");
    assert!(err.contains("smollm2-135m-instruct"), "{err}");
    assert!(err.contains("tiny-local"), "{err}");
}

#[test]
fn all_sources_failing_names_each_one() {
    let setup = Setup::new();
    let out = setup.run(&["models", "fetch", "unreachable"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("1. hub nobody/nothing@main: hub unreachable"),
        "{err}"
    );
    assert!(err.contains("2. pypi nothing==1.0"), "{err}");
    assert!(err.contains("exit status: 1"), "{err}");
    let cache = setup.dir.path().join("cache");
    let leftovers: Vec<_> = std::fs::read_dir(&cache)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn bad_catalog_is_reported_with_file_and_line() {
    let setup = Setup::new();
    let bad = setup.dir.path().join("bad.toml");
    std::fs::write(&bad, "[[model]]\nid = \"x\"\ntasks = [\"fly\"]\n").expect("write");
    let out = setup.run(&["models", "list", "--catalog", path_str(&bad)]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&format!("{}:3:", bad.display())), "{err}");
}
