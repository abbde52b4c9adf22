//! `tapedeck verify REC [--json]` and `tapedeck repair REC --out REC2`.
//!
//! verify exits 0 when the recording is healthy, 1 when it has gaps, outages or corruption,
//! and 2 on error. repair never modifies the original.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::model::time::format_utc;
use crate::verify::{Report, repair, verify};

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Recording directory
    dir: PathBuf,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  tapedeck repair recordings/damaged --out recordings/repaired")]
pub struct RepairArgs {
    /// The damaged recording (read only)
    dir: PathBuf,
    /// Where to write the repaired copy (must not exist)
    #[arg(long, value_name = "REC")]
    out: PathBuf,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

pub fn run_verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let report =
        verify(&args.dir, crate::capture::now_ns()).with_context(|| format!("cannot verify {}", args.dir.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(if report.healthy { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub fn run_repair(args: RepairArgs) -> anyhow::Result<ExitCode> {
    let report = repair(&args.dir, &args.out).with_context(|| format!("cannot repair {}", args.dir.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        eprintln!("kept {} records in {}", report.kept_records, args.out.display());
        for b in &report.dropped_blocks {
            eprintln!("dropped block {} (from seq {}): {}", b.ordinal, b.first_seq, b.detail);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn render(r: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "recording   {}", r.path);
    let _ = writeln!(out, "blocks      {} ({} corrupt), {} records", r.blocks, r.corrupt_blocks.len(), r.records);
    for b in &r.corrupt_blocks {
        let _ = writeln!(out, "  corrupt block {} ({})", b.ordinal, b.detail);
    }
    for p in &r.seq_problems {
        let _ = writeln!(out, "  seq: {p}");
    }
    let _ = writeln!(out, "timestamps  {} problems", r.timestamp_problems);
    for p in &r.timestamp_samples {
        let _ = writeln!(out, "  {p}");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<9} {:<14} {:<6} {:>10} {:>6} {:>9} {:>9}",
        "exchange", "symbol", "stream", "messages", "gaps", "gaps/M", "coverage"
    );
    for s in &r.streams {
        let _ = writeln!(
            out,
            "{:<9} {:<14} {:<6} {:>10} {:>6} {:>9.1} {:>8.2}%",
            s.exchange,
            s.symbol,
            s.stream,
            s.messages,
            s.gaps.len(),
            s.gaps_per_million,
            s.coverage_pct
        );
        for g in s.gaps.iter().take(10) {
            let _ = writeln!(
                out,
                "  gap at seq {} ({}): expected {}, got {} [{}]",
                g.seq,
                format_utc(g.ts),
                g.expected,
                g.got,
                g.source
            );
        }
    }
    if r.disconnects.is_empty() {
        let _ = writeln!(out, "disconnects none");
    }
    for o in &r.disconnects {
        let _ =
            writeln!(out, "disconnect  {} {} for {:.1} s: {}", o.exchange, format_utc(o.from_ns), o.seconds, o.reason);
    }
    let _ = writeln!(out, "verdict     {}", if r.healthy { "healthy" } else { "NOT healthy" });
    out
}
