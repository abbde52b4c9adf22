//! `tapedeck import FORMAT FILE... --symbol SYM --out REC`: build a recording from files.
//!
//! Formats: Binance public dumps (`binance-trades`, `binance-aggtrades`, `binance-klines`,
//! .csv or .zip) and `hftbacktest` (hftbacktest's Binance collector output). Imports append
//! to an existing recording, keeping seq contiguous; dump imports validate every row first
//! and refuse time ranges that overlap what the recording holds, unless `--allow-overlap`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::log::{Compression, RecordingMeta, Writer, WriterConfig};
use crate::model::{Exchange, Instrument};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// data.binance.vision trades: id,price,qty,quote_qty,time,is_buyer_maker,is_best_match
    BinanceTrades,
    /// data.binance.vision aggTrades: agg_id,price,qty,first_id,last_id,time,is_buyer_maker,is_best_match
    BinanceAggtrades,
    /// data.binance.vision klines (12 columns), or open_time_ms,open_time_utc,open,high,low,close,volume
    BinanceKlines,
    /// hftbacktest collector files: gzip text, `<recv ns> <Binance combined-stream JSON>` per line
    Hftbacktest,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  tapedeck import hftbacktest btcusdt_20240808.gz --symbol BTCUSDT --out recordings/btcusdt"
)]
pub struct Args {
    /// What wrote the files
    #[arg(value_enum)]
    source: Source,
    /// Input files, imported in the order given
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The venue symbol the files are about, as the venue spells it (BTCUSDT)
    #[arg(long)]
    symbol: String,
    /// Canonical BASE/QUOTE for --symbol; by default split on a known quote asset
    #[arg(long, value_name = "BASE/QUOTE")]
    canonical: Option<String>,
    /// Recording directory to create or append to
    #[arg(long, value_name = "REC")]
    out: PathBuf,
    /// Kline interval (binance-klines); by default read from the file name (ADABTC-1m-...)
    #[arg(long, value_name = "TF", value_parser = crate::model::time::parse_timeframe)]
    interval: Option<u32>,
    /// Accept rows older than what the recording already holds
    #[arg(long)]
    allow_overlap: bool,
    /// Skip malformed rows (counted and reported) instead of failing
    #[arg(long)]
    skip_bad_rows: bool,
    /// Records per stored block
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    block_records: u32,
    /// Block compression
    #[arg(long, value_enum, default_value_t = Compression::None)]
    compression: Compression,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let instrument = resolve_instrument(&args)?;
    if args.source != Source::Hftbacktest {
        return run_dump(&args, &instrument);
    }
    let mut meta = RecordingMeta::new(&format!("import:{}", source_name(args.source)), now_ns());
    meta.command_lines.push(std::env::args().collect());
    let config = WriterConfig {
        block_records: args.block_records as usize,
        compression: args.compression,
        flush_records: usize::MAX,
        ..WriterConfig::default()
    };
    let mut writer = Writer::open(&args.out, meta, config)
        .with_context(|| format!("cannot open {} for writing", args.out.display()))?;
    let first_seq = writer.next_seq();
    let bar = super::progress_bar(None, "lines");
    for file in &args.files {
        let stats = crate::import::hftbacktest::import_file(file, &instrument, &mut writer, &|n| bar.set_position(n))?;
        if stats.parse_errors > 0 {
            eprintln!(
                "{}: {} frames did not normalize (recorded as parse_error status)",
                file.display(),
                stats.parse_errors
            );
        }
        if super::interrupt::requested() {
            break;
        }
    }
    bar.finish_and_clear();
    let stats = writer.close()?;
    eprintln!(
        "imported {} records (seq {}..{}) into {}",
        stats.next_seq - first_seq,
        first_seq,
        stats.next_seq,
        args.out.display()
    );
    Ok(if super::interrupt::requested() { ExitCode::from(130) } else { ExitCode::SUCCESS })
}

fn source_name(source: Source) -> &'static str {
    match source {
        Source::BinanceTrades => "binance-trades",
        Source::BinanceAggtrades => "binance-aggtrades",
        Source::BinanceKlines => "binance-klines",
        Source::Hftbacktest => "hftbacktest",
    }
}

/// Binance dumps: validate every file, then append, so a bad row leaves nothing behind.
fn run_dump(args: &Args, instrument: &Instrument) -> anyhow::Result<ExitCode> {
    use crate::import::binance::{Layout, interval_from_name, parse, read_text};
    let mut last_ts = match crate::log::Reader::open(&args.out) {
        Ok(reader) => reader.ts_recv_span()?.map(|(_, last)| last),
        Err(crate::log::LogError::NotARecording { .. }) => None,
        Err(e) => return Err(anyhow::anyhow!(e).context(format!("cannot open {}", args.out.display()))),
    };
    let existing_last = last_ts;
    let bar = super::progress_bar(Some(args.files.len() as u64), "validating files");
    let mut files = Vec::new();
    let mut skipped = 0;
    for file in &args.files {
        let layout = match args.source {
            Source::BinanceTrades => Layout::Trades,
            Source::BinanceAggtrades => Layout::AggTrades,
            _ => Layout::Klines {
                interval_s: args
                    .interval
                    .or_else(|| interval_from_name(file))
                    .ok_or_else(|| anyhow::anyhow!("--interval is required: {} names no interval", file.display()))?,
            },
        };
        let text = read_text(file)?;
        let parsed = parse(file, &text, layout, args.skip_bad_rows)?;
        for sample in &parsed.skipped_samples {
            eprintln!("skipped {sample}");
        }
        skipped += parsed.skipped;
        for (i, row) in parsed.rows.iter().enumerate() {
            if !args.allow_overlap && last_ts.is_some_and(|last| row.ts_exchange < last) {
                let what = if i == 0 && existing_last == last_ts && existing_last.is_some() {
                    "starts before the end of what the recording already holds"
                } else {
                    "goes back in time"
                };
                anyhow::bail!(
                    "{}: row {} {what} ({} < {}); pass --allow-overlap to import anyway",
                    file.display(),
                    i + 1,
                    crate::model::time::format_utc(row.ts_exchange),
                    crate::model::time::format_utc(last_ts.unwrap_or(0))
                );
            }
            last_ts = Some(row.ts_exchange);
        }
        files.push(parsed.rows);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut meta = RecordingMeta::new(&format!("import:{}", source_name(args.source)), now_ns());
    meta.command_lines.push(std::env::args().collect());
    meta.notes.insert("import.ts_recv".into(), "equal to ts_exchange (imported, not received)".into());
    meta.notes.insert("import.timestamps".into(), "dump times in ms or µs (>= 10^14), converted to ns".into());
    let config = WriterConfig {
        block_records: args.block_records as usize,
        compression: args.compression,
        flush_records: usize::MAX,
        ..WriterConfig::default()
    };
    let mut writer = Writer::open(&args.out, meta, config)
        .with_context(|| format!("cannot open {} for writing", args.out.display()))?;
    let id = writer.intern(instrument)?;
    let first_seq = writer.next_seq();
    for row in files.into_iter().flatten() {
        writer.append(crate::model::Record {
            seq: 0,
            ts_exchange: row.ts_exchange,
            ts_recv: row.ts_exchange,
            exchange: Exchange::Binance,
            instrument: id,
            event: row.event,
        })?;
    }
    let stats = writer.close()?;
    eprintln!(
        "imported {} records (seq {}..{}) into {}{}",
        stats.next_seq - first_seq,
        first_seq,
        stats.next_seq,
        args.out.display(),
        if skipped > 0 { format!("; skipped {skipped} bad rows") } else { String::new() }
    );
    Ok(ExitCode::SUCCESS)
}

fn resolve_instrument(args: &Args) -> anyhow::Result<Instrument> {
    match &args.canonical {
        Some(c) => {
            let (base, quote) = c
                .split_once('/')
                .filter(|(b, q)| !b.is_empty() && !q.is_empty())
                .ok_or_else(|| anyhow::anyhow!("--canonical must look like BASE/QUOTE, got {c:?}"))?;
            Ok(Instrument::new(Exchange::Binance, base, quote, &args.symbol))
        }
        None => crate::exchange::binance::SymbolMap::default().resolve(&args.symbol).map_err(|_| {
            anyhow::anyhow!("--symbol {}: no known quote asset; give --canonical BASE/QUOTE", args.symbol)
        }),
    }
}

/// Wall-clock time for the meta's creation stamp; the CLI edge is the one place it is read.
pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}
