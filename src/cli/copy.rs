//! `tapedeck copy SRC DST`: move a recording between a sled directory and a JetStream
//! stream, in either direction. Argument handling and output only; the copy itself is
//! [`crate::log::copy`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

use crate::log::{Compression, WriterConfig};

#[derive(Debug, clap::Args)]
#[command(after_help = "Locations are a recording directory or nats://host:4222/STREAM[?prefix=P&replicas=N].

Examples:
  tapedeck copy recordings/binance-btcusdt-20240808 nats://127.0.0.1:4222/BTC
  tapedeck copy nats://127.0.0.1:4222/BTC recordings/btc-from-nats
  tapedeck copy recordings/a nats://nats1:4222/A?replicas=3    # an R3 stream on a cluster")]
pub struct Args {
    /// The recording to read (directory or nats:// URL)
    src: PathBuf,
    /// The new recording to write (an empty or absent directory, or a nats:// URL of an empty stream)
    dst: PathBuf,
    /// Block compression in the destination
    #[arg(long, value_enum, default_value_t = Compression::None)]
    compression: Compression,
    /// Print the summary as JSON on stdout
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct Summary {
    src: String,
    dst: String,
    records: u64,
    symbols: usize,
    seconds: f64,
    records_per_s: f64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let total = crate::log::Reader::open(&args.src)
        .and_then(|r| r.record_count())
        .with_context(|| format!("cannot open {}", args.src.display()))?;
    let bar = super::progress_bar(Some(total), "copying");
    let started = Instant::now();
    let config = WriterConfig { compression: args.compression, flush_records: usize::MAX, ..WriterConfig::default() };
    let report = crate::log::copy(&args.src, &args.dst, config, |n| bar.set_position(n))
        .with_context(|| format!("cannot copy {} to {}", args.src.display(), args.dst.display()))?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let summary = Summary {
        src: args.src.display().to_string(),
        dst: args.dst.display().to_string(),
        records: report.records,
        symbols: report.symbols,
        seconds,
        records_per_s: report.records as f64 / seconds.max(1e-9),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        eprintln!(
            "copied {} records ({} symbols) from {} to {} in {:.2} s ({:.0} records/s)",
            summary.records, summary.symbols, summary.src, summary.dst, seconds, summary.records_per_s
        );
    }
    Ok(ExitCode::SUCCESS)
}
