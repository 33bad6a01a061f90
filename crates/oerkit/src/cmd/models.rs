//! `oerkit models list|fetch|info|verify`: what models are known, what is cached, fetching and
//! re-verifying them. Thin layer over `oerkit-models`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use oerkit_models::{CachedState, Catalog, ModelEntry, ModelStore, Progress};
use serde_json::json;

#[derive(clap::Args)]
pub struct ModelsArgs {
    /// A catalog file merged over the shipped one (an entry with a shipped id replaces it).
    #[arg(long, global = true, env = "OERKIT_CATALOG", value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// Machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: ModelsCommand,
}

#[derive(clap::Subcommand)]
pub enum ModelsCommand {
    /// Every known model: cached or not, size, licence, tasks, tested here or not.
    List,
    /// Download models into the cache (OERKIT_MODELS, default ~/.cache/oerkit/models), verified.
    Fetch {
        /// Catalog ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Everything the catalog says about one model, and its cache state.
    Info { id: String },
    /// Re-hash cached files against their sha256 (all cached models when no id is given).
    Verify { id: Option<String> },
}

fn human_size(bytes: Option<u64>) -> String {
    match bytes {
        None => "?".to_string(),
        Some(b) if b >= 1 << 30 => format!("{:.1} GB", b as f64 / f64::from(1u32 << 30)),
        Some(b) => format!("{:.0} MB", b as f64 / f64::from(1u32 << 20)),
    }
}

fn state_word(state: &CachedState) -> &'static str {
    match state {
        CachedState::Cached => "cached",
        CachedState::Missing => "-",
        CachedState::Invalid { .. } => "invalid",
        CachedState::NeedsRehash => "recheck",
    }
}

fn entry_json(entry: &ModelEntry, store: &ModelStore) -> serde_json::Value {
    let state = store.state(entry);
    json!({
        "id": entry.id,
        "name": entry.name,
        "tasks": entry.tasks,
        "architecture": entry.architecture,
        "format": entry.format,
        "licence": entry.licence,
        "tested": entry.tested,
        "size": entry.total_size(),
        "cached": state == CachedState::Cached,
        "state": state,
        "dir": store.model_dir(&entry.id),
    })
}

pub fn run(args: ModelsArgs) -> Result<ExitCode> {
    let catalog = Catalog::load(args.catalog.as_deref())?;
    let store = ModelStore::from_env()?;
    match args.command {
        ModelsCommand::List => list(&catalog, &store, args.json),
        ModelsCommand::Fetch { ids } => fetch(&catalog, &store, &ids, args.json),
        ModelsCommand::Info { id } => info(&catalog, &store, &id, args.json),
        ModelsCommand::Verify { id } => verify(&catalog, &store, id.as_deref(), args.json),
    }
}

fn list(catalog: &Catalog, store: &ModelStore, as_json: bool) -> Result<ExitCode> {
    if as_json {
        let rows: Vec<_> = catalog
            .entries()
            .iter()
            .map(|e| entry_json(e, store))
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<30} {:<8} {:>8} {:<20} {:<22} {:<20} tested",
        "id", "cache", "size", "arch", "licence", "tasks"
    );
    for entry in catalog.entries() {
        let tasks: Vec<&str> = entry.tasks.iter().map(|t| t.as_str()).collect();
        println!(
            "{:<30} {:<8} {:>8} {:<20} {:<22} {:<20} {}",
            entry.id,
            state_word(&store.state(entry)),
            human_size(entry.total_size()),
            format!("{}/{}", entry.architecture, entry.format),
            entry.licence,
            tasks.join(","),
            if entry.tested { "yes" } else { "untested here" }
        );
    }
    eprintln!("cache: {}", store.root().display());
    // Apertium pairs are models too (`--model apertium:PAIR`), installed by the system, not cached here.
    let apertium = oerkit_translate::apertium::ApertiumConfig::default();
    if let Ok(modes) = oerkit_translate::apertium::installed_modes(&apertium) {
        if !modes.is_empty() {
            eprintln!(
                "apertium pairs installed: {} (use --model apertium:PAIR)",
                modes.join(", ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn fetch(catalog: &Catalog, store: &ModelStore, ids: &[String], as_json: bool) -> Result<ExitCode> {
    // Check every id before fetching anything, so a typo does not cost a long download first.
    let entries = ids
        .iter()
        .map(|id| catalog.get(id))
        .collect::<Result<Vec<_>, _>>()?;
    for entry in entries {
        let was_cached = store.is_cached(entry);
        // The error already names the model and every source tried.
        let resolved = store.ensure(entry, &Progress::stderr())?;
        if as_json {
            println!(
                "{}",
                serde_json::to_string(&json!({
                    "id": resolved.id,
                    "dir": resolved.dir,
                    "files": resolved.files,
                    "primary_file": resolved.primary_file(),
                    "already_cached": was_cached,
                }))?
            );
        } else {
            eprintln!(
                "{}: {} {}",
                entry.id,
                if was_cached {
                    "already cached in"
                } else {
                    "fetched and verified into"
                },
                resolved.dir.display()
            );
            println!("{}", resolved.primary_file().display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn info(catalog: &Catalog, store: &ModelStore, id: &str, as_json: bool) -> Result<ExitCode> {
    let entry = catalog.get(id)?;
    let state = store.state(entry);
    if as_json {
        let mut value = serde_json::to_value(entry)?;
        if let Some(map) = value.as_object_mut() {
            map.insert("state".into(), serde_json::to_value(&state)?);
            map.insert("dir".into(), json!(store.model_dir(&entry.id)));
            map.insert("size".into(), json!(entry.total_size()));
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    let tasks: Vec<&str> = entry.tasks.iter().map(|t| t.as_str()).collect();
    println!("id:           {}", entry.id);
    println!("name:         {}", entry.name);
    println!("tasks:        {}", tasks.join(", "));
    println!("architecture: {}", entry.architecture);
    println!("format:       {}", entry.format);
    println!("licence:      {}", entry.licence);
    println!(
        "tested:       {}",
        if entry.tested {
            "yes"
        } else {
            "no (untested here)"
        }
    );
    if let Some(context) = entry.context_length {
        println!("context:      {context}");
    }
    if !entry.pairs.is_empty() {
        println!("pairs:        {}", entry.pairs.join(", "));
    }
    println!("size:         {}", human_size(entry.total_size()));
    println!("defined in:   {}:{}", entry.origin.path, entry.origin.line);
    println!(
        "cache:        {} ({})",
        store.model_dir(&entry.id).display(),
        state_word(&state)
    );
    if let CachedState::Invalid { reason } = &state {
        println!("              {reason}");
    }
    println!("files:");
    for file in &entry.files {
        println!(
            "  {} {} sha256 {}",
            file.name,
            human_size(file.size),
            file.sha256
                .as_deref()
                .unwrap_or("(not pinned: hub etag used)")
        );
    }
    println!("sources (in order):");
    for source in &entry.sources {
        println!("  {}", source.describe());
    }
    if let Some(notes) = &entry.notes {
        println!("notes:        {notes}");
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(
    catalog: &Catalog,
    store: &ModelStore,
    id: Option<&str>,
    as_json: bool,
) -> Result<ExitCode> {
    let entries: Vec<&ModelEntry> = match id {
        Some(id) => vec![catalog.get(id)?],
        None => catalog
            .entries()
            .iter()
            .filter(|e| store.state(e) != CachedState::Missing)
            .collect(),
    };
    if entries.is_empty() {
        eprintln!("no cached models in {}", store.root().display());
    }
    let mut failed = 0usize;
    for entry in entries {
        match store.verify(entry, &Progress::stderr()) {
            Ok(report) => {
                if as_json {
                    println!(
                        "{}",
                        serde_json::to_string(
                            &json!({"id": entry.id, "ok": true, "files": report.files})
                        )?
                    );
                } else {
                    eprintln!(
                        "{}: ok ({} files, sha256 match)",
                        entry.id,
                        report.files.len()
                    );
                }
            }
            Err(err) => {
                failed += 1;
                if as_json {
                    println!(
                        "{}",
                        serde_json::to_string(
                            &json!({"id": entry.id, "ok": false, "error": err.to_string()})
                        )?
                    );
                } else {
                    eprintln!("{}: FAILED: {err}", entry.id);
                }
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
