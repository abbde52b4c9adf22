//! `tapedeck import FORMAT FILE... --symbol SYM --out REC`: build a recording from files.
//!
//! Formats: Binance public dumps (`binance-trades`, `binance-aggtrades`, `binance-klines`,
//! .csv or .zip), `ohlcv` (7-column candles of any venue, such as Bittrex's, one pair per
//! file, the pair from `--symbol` or each file's name) and `hftbacktest` (hftbacktest's
//! Binance collector output). Imports append to an existing recording, keeping seq
//! contiguous; file imports validate every row first, merge the files of several
//! instruments by time, and refuse time ranges that overlap what the recording holds,
//! unless `--allow-overlap`.

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
    /// Candles of any venue (needs --exchange): open_time_ms,open_time_utc,open,high,low,close,volume
    Ohlcv,
    /// hftbacktest collector files: gzip text, `<recv ns> <Binance combined-stream JSON>` per line
    Hftbacktest,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tapedeck import hftbacktest btcusdt_20240808.gz --symbol BTCUSDT --out recordings/btcusdt
  tapedeck import ohlcv ADA_BTC-5m.csv --exchange bittrex --symbol ADA/BTC --out recordings/ada
  tapedeck import ohlcv tests/fixtures/bittrex_5m_multi/*.csv --exchange bittrex --symbol-from-filename \\
    --out recordings/bittrex")]
pub struct Args {
    /// What wrote the files
    #[arg(value_enum)]
    source: Source,
    /// Input files; one instrument's rows keep the order given, instruments merge by time
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The venue symbol the files are about, as the venue spells it (BTCUSDT); for ohlcv,
    /// BASE/QUOTE (ADA/BTC)
    #[arg(long, required_unless_present = "symbol_from_filename")]
    symbol: Option<String>,
    /// ohlcv: each file's pair from its name (ADA_BTC-5m.csv is ADA/BTC), so files of
    /// several pairs import into one recording
    #[arg(long, conflicts_with_all = ["symbol", "canonical"])]
    symbol_from_filename: bool,
    /// Canonical BASE/QUOTE for --symbol; by default split on a known quote asset
    #[arg(long, value_name = "BASE/QUOTE")]
    canonical: Option<String>,
    /// The venue the files come from: required for ohlcv (e.g. bittrex); the other formats
    /// are Binance's
    #[arg(long, value_name = "EXCHANGE")]
    exchange: Option<Exchange>,
    /// Recording directory to create or append to
    #[arg(long, value_name = "REC")]
    out: PathBuf,
    /// Kline interval (binance-klines, ohlcv); by default read from the file name (ADABTC-1m-..., ADA_BTC-5m.csv)
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
    let exchange = resolve_exchange(&args)?;
    if args.symbol_from_filename && args.source != Source::Ohlcv {
        anyhow::bail!("--symbol-from-filename applies to ohlcv files (ADA_BTC-5m.csv)");
    }
    if args.source != Source::Hftbacktest {
        return run_files(&args, exchange);
    }
    let instrument = resolve_instrument(&args)?;
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
        Source::Ohlcv => "ohlcv",
        Source::Hftbacktest => "hftbacktest",
    }
}

/// Dumps and OHLCV files: validate every file, then append the instruments' rows merged by
/// time, so a bad row leaves nothing behind and seq order is time order.
fn run_files(args: &Args, exchange: Exchange) -> anyhow::Result<ExitCode> {
    use crate::import::binance::{Layout, interval_from_name, parse, read_text};
    let existing_last = match crate::log::Reader::open(&args.out) {
        Ok(reader) => reader.ts_recv_span()?.map(|(_, last)| last),
        Err(crate::log::LogError::NotARecording { .. }) => None,
        Err(e) => return Err(anyhow::anyhow!(e).context(format!("cannot open {}", args.out.display()))),
    };
    let fixed = if args.symbol_from_filename { None } else { Some(resolve_file_instrument(args, exchange, None)?) };
    // Keyed by instrument, so the merge breaks ties the same way whatever the file order.
    let mut streams: std::collections::BTreeMap<Instrument, Vec<crate::import::binance::Row>> =
        std::collections::BTreeMap::new();
    let bar = super::progress_bar(Some(args.files.len() as u64), "validating files");
    let mut skipped = 0;
    for file in &args.files {
        let instrument = match &fixed {
            Some(instrument) => instrument.clone(),
            None => resolve_file_instrument(args, exchange, Some(file))?,
        };
        let interval = || {
            args.interval
                .or_else(|| interval_from_name(file))
                .ok_or_else(|| anyhow::anyhow!("--interval is required: {} names no interval", file.display()))
        };
        let layout = match args.source {
            Source::BinanceTrades => Layout::Trades,
            Source::BinanceAggtrades => Layout::AggTrades,
            Source::Ohlcv => Layout::Ohlcv { interval_s: interval()? },
            _ => Layout::Klines { interval_s: interval()? },
        };
        let text = read_text(file)?;
        let parsed = parse(file, &text, layout, args.skip_bad_rows)?;
        for sample in &parsed.skipped_samples {
            eprintln!("skipped {sample}");
        }
        skipped += parsed.skipped;
        let stream = streams.entry(instrument).or_default();
        // Time only has to go forward per instrument: the merge interleaves instruments.
        let mut last_ts = stream.last().map(|r| r.ts_exchange).or(existing_last);
        for (i, row) in parsed.rows.iter().enumerate() {
            if !args.allow_overlap && last_ts.is_some_and(|last| row.ts_exchange < last) {
                let what = if i == 0 && stream.is_empty() {
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
        stream.extend(parsed.rows);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut meta = RecordingMeta::new(&format!("import:{}", source_name(args.source)), now_ns());
    meta.command_lines.push(std::env::args().collect());
    meta.notes.insert("import.ts_recv".into(), "equal to ts_exchange (imported, not received)".into());
    meta.notes.insert("import.timestamps".into(), "dump times in ms or µs (>= 10^14), converted to ns".into());
    if matches!(args.source, Source::BinanceKlines | Source::Ohlcv) {
        meta.notes.insert(
            "import.candles".into(),
            "closed candles at their close time: the file's close_time, or open_time + interval - 1 ms".into(),
        );
    }
    let config = WriterConfig {
        block_records: args.block_records as usize,
        compression: args.compression,
        flush_records: usize::MAX,
        ..WriterConfig::default()
    };
    let mut writer = Writer::open(&args.out, meta, config)
        .with_context(|| format!("cannot open {} for writing", args.out.display()))?;
    let ids = streams.keys().map(|instrument| writer.intern(instrument)).collect::<Result<Vec<_>, _>>()?;
    let first_seq = writer.next_seq();
    let instruments = streams.len();
    for (rank, row) in crate::import::merge_by_time(streams.into_values().collect()) {
        writer.append(crate::model::Record {
            seq: 0,
            ts_exchange: row.ts_exchange,
            ts_recv: row.ts_exchange,
            exchange,
            instrument: ids[rank],
            event: row.event,
        })?;
    }
    let stats = writer.close()?;
    eprintln!(
        "imported {} records (seq {}..{}{}) into {}{}",
        stats.next_seq - first_seq,
        first_seq,
        stats.next_seq,
        if instruments > 1 { format!(", {instruments} instruments") } else { String::new() },
        args.out.display(),
        if skipped > 0 { format!("; skipped {skipped} bad rows") } else { String::new() }
    );
    Ok(ExitCode::SUCCESS)
}

/// The venue of the files: ohlcv names it, every other format is Binance's.
fn resolve_exchange(args: &Args) -> anyhow::Result<Exchange> {
    match (args.source, args.exchange) {
        (Source::Ohlcv, Some(exchange)) => Ok(exchange),
        (Source::Ohlcv, None) => anyhow::bail!("--exchange is required for ohlcv files (e.g. --exchange bittrex)"),
        (_, None | Some(Exchange::Binance)) => Ok(Exchange::Binance),
        (source, Some(other)) => {
            anyhow::bail!(
                "--exchange {other}: {} files are Binance's (use ohlcv for other venues)",
                source_name(source)
            )
        }
    }
}

/// The instrument of `file` (None: of every file, from --symbol). OHLCV files carry no venue
/// spelling, so their venue symbol is the canonical one.
fn resolve_file_instrument(
    args: &Args,
    exchange: Exchange,
    file: Option<&std::path::Path>,
) -> anyhow::Result<Instrument> {
    if args.source != Source::Ohlcv {
        return resolve_instrument(args);
    }
    if args.canonical.is_some() {
        anyhow::bail!("--canonical applies to Binance symbols; ohlcv takes --symbol BASE/QUOTE");
    }
    let (base, quote) = match (file, &args.symbol) {
        (Some(file), _) => crate::import::ohlcv::pair_from_name(file).ok_or_else(|| {
            anyhow::anyhow!(
                "--symbol-from-filename: {} does not start with BASE_QUOTE- (as in ADA_BTC-5m.csv)",
                file.display()
            )
        })?,
        (None, Some(symbol)) => crate::import::ohlcv::parse_pair(symbol, &['/', '_', '-'])
            .ok_or_else(|| anyhow::anyhow!("--symbol {symbol}: ohlcv needs BASE/QUOTE, as in ADA/BTC"))?,
        (None, None) => anyhow::bail!("give --symbol BASE/QUOTE or --symbol-from-filename"),
    };
    let mut instrument = Instrument::new(exchange, &base, &quote, "");
    instrument.venue_symbol = instrument.symbol.clone();
    Ok(instrument)
}

fn resolve_instrument(args: &Args) -> anyhow::Result<Instrument> {
    let symbol = args.symbol.as_deref().ok_or_else(|| anyhow::anyhow!("--symbol is required"))?;
    match &args.canonical {
        Some(c) => {
            let (base, quote) = c
                .split_once('/')
                .filter(|(b, q)| !b.is_empty() && !q.is_empty())
                .ok_or_else(|| anyhow::anyhow!("--canonical must look like BASE/QUOTE, got {c:?}"))?;
            Ok(Instrument::new(Exchange::Binance, base, quote, symbol))
        }
        None => crate::exchange::binance::SymbolMap::default()
            .resolve(symbol)
            .map_err(|_| anyhow::anyhow!("--symbol {symbol}: no known quote asset; give --canonical BASE/QUOTE")),
    }
}

/// Wall-clock time for the meta's creation stamp; the CLI edge is the one place it is read.
pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}
