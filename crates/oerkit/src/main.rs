//! `oerkit`: a thin command-line layer over the oerkit libraries. Each subcommand lives in
//! `cmd/<name>.rs`, turns its flags into library settings once, and calls the library.

mod cmd;
mod doc_io;
mod engines;
mod licensing;
mod progress;
mod queue;
mod util;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "oerkit", version, about, long_about = None)]
struct Cli {
    /// More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    // SUBCOMMANDS: one variant per subcommand; each helper adds its own lines here.
    /// Describe resources: language, ISCED-F subjects, keywords, level, type, licence; JSON or LRMI JSON-LD.
    Tag(cmd::tag::TagArgs),
    /// Print the translatable units of a file as JSONL.
    Extract(cmd::extract::ExtractArgs),
    /// Pseudo-translate files (the localisation check) or write them back unchanged (--identity).
    Pseudo(cmd::pseudo::PseudoArgs),
    /// Show each file's licence and whether a translation may be shared.
    License(cmd::license::LicenseArgs),
    /// Translate files or whole course folders with a local model.
    Translate(cmd::translate::TranslateArgs),
    /// Write an abstract of a resource with a local model.
    Summarize(cmd::summarize::SummarizeArgs),
    /// The human review queue: status, next, accept, edit, reject, comment, history, import-triples.
    Review(cmd::review::ReviewArgs),
    /// Export a reviewed job: TMX memory of approved pairs or the JSONL research dataset.
    Export(cmd::export::ExportArgs),
    /// Score a translation against references: BLEU, chrF, chrF++, TER exactly as sacrebleu.
    Eval(cmd::eval::EvalArgs),
    /// Local models: list, fetch, info, verify (catalog + verified cache).
    Models(cmd::models::ModelsArgs),
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// candle runs large elementwise ops on its own "barrier pool", whose caller busy-waits for its
/// workers, beside the rayon pool where the matrix products run (`--threads`). On a small or shared
/// machine the spinning workers take cores from the matrix products: GGUF decoding measured 45 vs
/// 36 generated tokens per CPU-second with and without this (Qwen2.5 0.5B, batch 16, 2 cores under
/// load). Unless the user sets CANDLE_NUM_THREADS, elementwise ops run on the calling thread.
fn keep_candle_elementwise_ops_on_the_calling_thread() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // Before any thread exists: nothing else reads or writes the environment yet.
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

fn main() -> std::process::ExitCode {
    keep_candle_elementwise_ops_on_the_calling_thread();
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result: anyhow::Result<std::process::ExitCode> = match cli.command {
        // DISPATCH: one arm per subcommand.
        Command::Tag(args) => cmd::tag::run(args),
        Command::Extract(args) => cmd::extract::run(args),
        Command::Pseudo(args) => cmd::pseudo::run(args),
        Command::License(args) => cmd::license::run(args),
        Command::Translate(args) => cmd::translate::run(args),
        Command::Summarize(args) => cmd::summarize::run(args),
        Command::Review(args) => cmd::review::run(args),
        Command::Export(args) => cmd::export::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Models(args) => cmd::models::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
