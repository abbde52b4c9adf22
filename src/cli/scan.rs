//! `tapedeck scan REC... | --exchange X --all-symbols`: the detectors over every instrument,
//! summarised once per bucket of the smallest detector timeframe: the highest volume ratios
//! and the latest waves. From recordings, or live from a venue's capture (the same tap that
//! feeds `live`, so a live scan of `--record DIR` replays to the same snapshots).
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
  tapedeck scan --exchange binance --all-symbols --quote USDT --streams trade
  tapedeck scan recordings/bittrex --json --top 5 --detect volume:timeframe=5m,ma=20,k=3 \\
    --detect waves:amplitude=5,timeframe=5m | jq -c '.top_volume[0]'

Without --detect: volume:timeframe=5m,ma=20,k=3 and waves:amplitude=2,timeframe=5m.
The volume table follows the first volume detector (its timeframe and ma).")]
pub struct Args {
    /// Recordings (directories or nats:// URLs); several are merged by (ts_recv, recording
    /// order, seq). Or scan live with --exchange
    #[arg(required_unless_present = "exchange", conflicts_with = "exchange", value_name = "REC")]
    recs: Vec<PathBuf>,
    /// Scan live: capture this exchange (binance, gate or lbank) instead of reading recordings
    #[arg(long, value_name = "EXCHANGE")]
    exchange: Option<crate::model::Exchange>,
    /// Live: every tradable pair the venue lists
    #[arg(long, requires = "exchange", conflicts_with = "symbols")]
    all_symbols: bool,
    /// Live, with --all-symbols: only pairs quoted in this asset, e.g. USDT
    #[arg(long, value_name = "ASSET", requires = "all_symbols")]
    quote: Option<String>,
    /// Live: streams to capture (as for `record`); trades are what the detectors need
    #[arg(long, value_delimiter = ',', default_value = "trade", value_name = "STREAMS", requires = "exchange")]
    streams: Vec<crate::exchange::StreamKind>,
    /// Live: stop after this long (30s, 10m, 2h); default: until Ctrl-C
    #[arg(long, value_name = "DURATION", value_parser = super::capture::parse_duration, requires = "exchange")]
    duration: Option<std::time::Duration>,
    /// Live: WebSocket base URL instead of the venue's
    #[arg(long, value_name = "URL", requires = "exchange")]
    ws_url: Option<String>,
    /// Live: REST base URL instead of the venue's
    #[arg(long, value_name = "URL", requires = "exchange")]
    rest_url: Option<String>,
    /// Live: also keep the recording (a directory or nats:// URL); scanning it again gives
    /// the same snapshots
    #[arg(long, value_name = "REC", requires = "exchange")]
    record: Option<PathBuf>,
    #[command(flatten)]
    detect: DetectArgs,
    /// Rows per table
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    top: u32,
    /// Replay speed: 1 = as recorded, 10 = ten times faster, max = as fast as possible
    #[arg(long, default_value = "max", value_parser = clap::value_parser!(Speed))]
    speed: Speed,
    /// Only these symbols, comma-separated (BTC/USDT or BTCUSDT); live, the pairs to capture
    #[arg(long, value_delimiter = ',', value_name = "SYMBOLS")]
    symbols: Vec<String>,
    /// One JSON snapshot per line, also on a terminal
    #[arg(long)]
    json: bool,
}

/// Writes snapshots: a table redrawn in place on a terminal, else JSON lines.
struct Printer {
    table: bool,
    flush_each: bool,
    bucket_s: u32,
    volume: Option<(u32, usize)>,
    out: std::io::BufWriter<std::io::Stdout>,
}

impl Printer {
    fn new(json: bool, flush_each: bool, scanner: &Scanner) -> Printer {
        let table = !json && std::io::IsTerminal::is_terminal(&std::io::stdout());
        Printer {
            table,
            // Paced or live output is watched as it comes, so each snapshot is flushed.
            flush_each: table || flush_each,
            bucket_s: scanner.bucket_s(),
            volume: scanner.volume_params(),
            out: std::io::BufWriter::new(std::io::stdout()),
        }
    }

    fn print(&mut self, snapshot: &crate::scan::Snapshot) -> std::io::Result<()> {
        if self.table {
            write!(self.out, "\x1b[2J\x1b[H{}", render_table(snapshot, self.bucket_s, self.volume))?;
        } else {
            serde_json::to_writer(&mut self.out, snapshot)?;
            self.out.write_all(b"\n")?;
        }
        if self.flush_each { self.out.flush() } else { Ok(()) }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = Config::load(args.detect.config.as_deref())?;
    let mut specs = args.detect.resolve(&config)?;
    if specs.is_empty() {
        specs = DEFAULT_DETECTORS.iter().map(|s| s.parse()).collect::<Result<_, _>>()?;
    }
    if let Some(exchange) = args.exchange {
        return run_live(args, exchange, &specs);
    }
    let filter = Filter { symbols: args.symbols.clone(), ..Filter::default() };
    let mut merged = Merged::open(&args.recs, filter)
        .map_err(|(path, e)| anyhow::anyhow!(e).context(format!("cannot open recording {}", path.display())))?;
    let mut scanner = Scanner::new(merged.symbols().clone(), &specs, args.top as usize)?;
    let bucket_s = scanner.bucket_s();
    let mut printer = Printer::new(args.json, args.speed != Speed::Max, &scanner);
    let flush_each = printer.flush_each;
    let mut print = |snapshot: &crate::scan::Snapshot| printer.print(snapshot);
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
    printer.out.flush()?;
    eprintln!(
        "scanned {records} records; {snapshots} snapshots of {} buckets{}",
        crate::model::time::format_timeframe(bucket_s),
        if interrupted { "; interrupted" } else { "" }
    );
    Ok(if interrupted { ExitCode::from(130) } else { ExitCode::SUCCESS })
}

/// `scan --exchange X`: the scanner on the live capture's tap, until --duration or Ctrl-C.
fn run_live(
    args: Args,
    exchange: crate::model::Exchange,
    specs: &[crate::detect::DetectorSpec],
) -> anyhow::Result<ExitCode> {
    if args.symbols.is_empty() && !args.all_symbols {
        anyhow::bail!("--exchange: name the pairs with --symbols, or scan them all with --all-symbols");
    }
    let scanner = Scanner::new(crate::model::SymbolTable::new(), specs, args.top as usize)?;
    let bucket_s = scanner.bucket_s();
    let printer = Printer::new(args.json, true, &scanner);
    let source = super::capture::LiveSource {
        exchange,
        symbols: args.symbols.clone(),
        all_symbols: args.all_symbols,
        quote: args.quote.clone(),
        streams: args.streams.clone(),
        duration: args.duration,
        ws_url: args.ws_url.clone(),
        rest_url: args.rest_url.clone(),
    };
    let (summary, interrupted, scanned) =
        super::capture::capture_tapped(source, args.record.as_deref(), move |rx| -> std::io::Result<(u64, u64)> {
            let (mut scanner, mut printer) = (scanner, printer);
            let (mut records, mut snapshots) = (0u64, 0u64);
            for tapped in rx {
                match tapped {
                    crate::log::Tapped::Symbol(_, instrument) => scanner.intern(&instrument),
                    crate::log::Tapped::Record(record) => {
                        records += 1;
                        if let Some(snapshot) = scanner.on_record(&record) {
                            printer.print(&snapshot)?;
                            snapshots += 1;
                        }
                    }
                }
            }
            printer.out.flush()?;
            Ok((records, snapshots))
        })?;
    let (records, snapshots) = scanned?;
    // The bucket still open when the capture stops is not closed, as for an interrupted replay.
    eprintln!(
        "scanned {records} live records ({} captured); {snapshots} snapshots of {} buckets{}",
        summary.records_written,
        crate::model::time::format_timeframe(bucket_s),
        if interrupted { "; interrupted" } else { "" }
    );
    Ok(if interrupted { ExitCode::from(130) } else { ExitCode::SUCCESS })
}
