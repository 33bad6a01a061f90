//! `oerkit license FILE|DIR`: the licence each file carries and whether a translation may be shared.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use oerkit_document::FormatKind;

use crate::doc_io::{expand_inputs, is_translatable};
use crate::licensing::file_license;

#[derive(clap::Args)]
pub struct LicenseArgs {
    /// Files or folders.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    #[arg(long)]
    pub format: Option<FormatKind>,
    /// Print JSON (one object per file, in a list).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: LicenseArgs) -> Result<ExitCode> {
    let mut rows = Vec::new();
    for input in expand_inputs(&args.inputs)?
        .iter()
        .filter(|i| is_translatable(&i.path, args.format))
    {
        rows.push(file_license(input, args.format, None)?);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for r in &rows {
            let id = r.policy.spdx.as_deref().unwrap_or("unknown");
            let verdict = if r.policy.may_translate {
                let mut v = "translation may be shared".to_string();
                if r.policy.share_alike {
                    v.push_str(" under the same licence");
                }
                if r.policy.non_commercial {
                    v.push_str(", non-commercially");
                }
                v
            } else {
                format!(
                    "translation may NOT be shared: {}",
                    r.policy.reason.as_deref().unwrap_or("")
                )
            };
            println!("{}\t{id}\t{verdict}", r.file.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
