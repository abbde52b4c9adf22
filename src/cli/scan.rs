//! `tapedeck scan REC...`: the detectors over every instrument, summarised once per bucket
//! of the smallest detector timeframe: the highest volume ratios and the latest waves.
//!
//! On a terminal the table is redrawn in place (ANSI clear screen) at each bucket, paced
//! with `--speed`; on a pipe, or with `--json`, each bucket is one JSON line. What the
//! snapshots hold is decided in `crate::scan`; this file only wires, paces and prints.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::config::{Config, DetectArgs};
use crate::replay::{Filter, Merged, Pacer, Speed};
use crate::scan::{DEFAULT_DETECTORS, Scanner, render_table};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tapedeck scan recordings/bittrex --speed 600
  tapedeck scan recordings/bittrex --json --top 5 --detect volume:timeframe=5m,ma=20,k=3 \\
    --detect waves:amplitude=5,timeframe=5m | jq -c '.top_volume[0]'

Without --detect: volume:timeframe=5m,ma=20,k=3 and waves:amplitude=2,timeframe=5m.
The volume table follows the first volume detector (its timeframe and ma).")]
pub struct Args {
    /// Recording directories; several are merged by (ts_recv, recording order, seq)
    #[arg(required = true, value_name = "REC")]
    recs: Vec<PathBuf>,
    #[command(flatten)]
    detect: DetectArgs,
    /// Rows per table
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    top: u32,
    /// Replay speed: 1 = as recorded, 10 = ten times faster, max = as fast as possible
    #[arg(long, default_value = "max", value_parser = clap::value_parser!(Speed))]
    speed: Speed,
    /// Only these symbols, comma-separated (BTC/USDT or BTCUSDT)
    #[arg(long, value_delimiter = ',', value_name = "SYMBOLS")]
    symbols: Vec<String>,
    /// One JSON snapshot per line, also on a terminal
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = Config::load(args.detect.config.as_deref())?;
    let mut specs = args.detect.resolve(&config)?;
    if specs.is_empty() {
        specs = DEFAULT_DETECTORS.iter().map(|s| s.parse()).collect::<Result<_, _>>()?;
    }
    let filter = Filter { symbols: args.symbols.clone(), ..Filter::default() };
    let mut merged = Merged::open(&args.recs, filter)
        .map_err(|(path, e)| anyhow::anyhow!(e).context(format!("cannot open recording {}", path.display())))?;
    let mut scanner = Scanner::new(merged.symbols().clone(), &specs, args.top as usize)?;
    let (bucket_s, volume) = (scanner.bucket_s(), scanner.volume_params());
    let table = !args.json && std::io::IsTerminal::is_terminal(&std::io::stdout());
    // Paced output is watched as it comes, so each snapshot is flushed.
    let flush_each = table || args.speed != Speed::Max;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut print = |snapshot: &crate::scan::Snapshot| -> std::io::Result<()> {
        if table {
            write!(out, "\x1b[2J\x1b[H{}", render_table(snapshot, bucket_s, volume))?;
        } else {
            serde_json::to_writer(&mut out, snapshot)?;
            out.write_all(b"\n")?;
        }
        if flush_each { out.flush() } else { Ok(()) }
    };
    let mut pacer = Pacer::new(args.speed);
    let (mut records, mut snapshots) = (0u64, 0u64);
    let mut interrupted = false;
    for record in merged.by_ref() {
        pacer.wait(record.ts_recv);
        if let Some(snapshot) = scanner.on_record(&record) {
            print(&snapshot)?;
            snapshots += 1;
        }
        records += 1;
        if (records % 8192 == 0 || flush_each) && super::interrupt::requested() {
            interrupted = true;
            break;
        }
    }
    if let Some(e) = merged.take_error() {
        return Err(anyhow::anyhow!(e).context("scan stopped"));
    }
    // An interrupted scan stops mid-bucket: that bucket is not closed.
    if !interrupted {
        if let Some(snapshot) = scanner.finish() {
            print(&snapshot)?;
            snapshots += 1;
        }
    }
    out.flush()?;
    eprintln!(
        "scanned {records} records; {snapshots} snapshots of {} buckets{}",
        crate::model::time::format_timeframe(bucket_s),
        if interrupted { "; interrupted" } else { "" }
    );
    Ok(if interrupted { ExitCode::from(130) } else { ExitCode::SUCCESS })
}
