//! `tapedeck results DIR [--run N] [--json]`: list stored runs, or print one run's signals.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::log::ResultsStore;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  tapedeck replay REC --detect waves --results results/\n  tapedeck results results/\n  tapedeck results results/ --run 3 > run3.jsonl"
)]
pub struct Args {
    /// Results database written by `replay --results`
    dir: PathBuf,
    /// Print this run's signals as JSONL (exactly the lines of its --signals-out file)
    #[arg(long, value_name = "N")]
    run: Option<u64>,
    /// List runs as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.dir.join("conf").is_file() {
        anyhow::bail!("{}: not a results database", args.dir.display());
    }
    let store = ResultsStore::open(&args.dir).with_context(|| format!("cannot open {}", args.dir.display()))?;
    if let Some(id) = args.run {
        let lines = store.signals(id)?;
        if lines.is_empty() && !store.runs()?.iter().any(|r| r.id == id) {
            anyhow::bail!("--run {id}: no such run");
        }
        for line in lines {
            println!("{line}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let runs = store.runs()?;
    if args.json {
        let list: Vec<_> =
            runs.iter().map(|r| serde_json::json!({"id": r.id, "signals": r.signals, "summary": r.summary})).collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        println!(" run  signals    records  digest");
        for r in &runs {
            println!(
                "{:>4} {:>8} {:>10}  {}",
                r.id,
                r.signals,
                r.summary["records"].as_u64().unwrap_or(0),
                r.summary["digest"].as_str().unwrap_or("-")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
