//! `tapedeck record` and `tapedeck live`: capture flags, the writer, and (for live) the
//! engine fed from the writer's tap, so it sees exactly the records the log stores.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use super::config::{Config, DetectArgs, OutputArgs};
use crate::capture::{Capture, Limits, VenueConfig};
use crate::engine::Engine;
use crate::exchange::{Endpoints, StreamKind};
use crate::log::{RecordingMeta, Tapped, Writer, WriterConfig, spawn_writer};
use crate::model::Exchange;

#[derive(Debug, clap::Args)]
pub struct CaptureArgs {
    /// Exchange to capture from: binance, gate or lbank (repeat for several; or use --config)
    #[arg(long = "exchange", required_unless_present = "config", value_name = "EXCHANGE")]
    exchanges: Vec<Exchange>,
    /// Symbols, comma-separated, as the venue spells them (BTCUSDT, BTC_USDT) or BASE/QUOTE
    #[arg(long, value_delimiter = ',', value_name = "SYMBOLS", required_unless_present_any = ["all_symbols", "config"])]
    symbols: Vec<String>,
    /// Every tradable pair the venue lists (see also --quote)
    #[arg(long, conflicts_with = "symbols")]
    all_symbols: bool,
    /// With --all-symbols: only pairs quoted in this asset, e.g. USDT
    #[arg(long, value_name = "ASSET", requires = "all_symbols")]
    quote: Option<String>,
    /// Streams, comma-separated: trade, quote (best bid/ask), depth (diffs + REST snapshots),
    /// kline:<tf> (e.g. kline:1m), ticker (all-market 24h tickers)
    #[arg(long, value_delimiter = ',', default_value = "trade,quote,depth", value_name = "STREAMS")]
    streams: Vec<StreamKind>,
    /// Stop after this long (e.g. 30s, 10m, 2h); default: until Ctrl-C
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// WebSocket base URL instead of the venue's (tests, proxies); one --exchange only
    #[arg(long, value_name = "URL")]
    ws_url: Option<String>,
    /// REST base URL instead of the venue's; one --exchange only
    #[arg(long, value_name = "URL")]
    rest_url: Option<String>,
    /// Reconnect a connection that has sent nothing for this many seconds
    #[arg(long, default_value_t = 60, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    stale_after: u64,
    /// Also keep every frame exactly as received, to re-normalize after a parser fix
    #[arg(long)]
    keep_raw: bool,
    /// Most price levels a side accepted in one book update; larger updates are counted and refused
    #[arg(long, default_value_t = crate::exchange::DEFAULT_MAX_LEVELS, value_name = "N")]
    max_levels: usize,
    /// Largest WebSocket message accepted, in bytes
    #[arg(long, default_value_t = 16 << 20, value_name = "BYTES")]
    max_message_bytes: usize,
    /// Stop cleanly (everything flushed, exit 2) when the recording's disk has less free
    /// space than this: 64MiB, 1GiB, 500MB or bytes
    #[arg(long, default_value = "64MiB", value_name = "SIZE", value_parser = parse_size)]
    min_free_space: u64,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  tapedeck record --exchange binance --symbols BTCUSDT,ETHUSDT --streams trade,quote,depth,kline:1m \\
    --out recordings/majors --duration 10m")]
pub struct RecordArgs {
    #[command(flatten)]
    capture: CaptureArgs,
    /// TOML file declaring exchanges with their own symbols, streams and endpoints
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Recording to create or append to: a directory, or nats://host:4222/STREAM for a
    /// NATS JetStream stream
    #[arg(long, value_name = "REC")]
    out: PathBuf,
    /// Print the summary as JSON on stdout
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  tapedeck live --exchange binance --symbols BTCUSDT --detect waves:amplitude=0.5,timeframe=1m \\
    --record recordings/live-btc --signals-out signals.jsonl")]
pub struct LiveArgs {
    #[command(flatten)]
    capture: CaptureArgs,
    #[command(flatten)]
    detect: DetectArgs,
    /// Also keep the recording in DIR, or in nats://host:4222/STREAM (replaying it
    /// reproduces this run's signals exactly)
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    alert: super::alert::AlertArgs,
    /// Paper-trade this strategy (wave-follow, volume-breakout) with the simulated broker,
    /// printing fills and PnL as they happen; the broker flags are those of `backtest`
    #[arg(long, value_name = "NAME")]
    strategy: Option<String>,
    /// A strategy parameter, key=value (repeatable)
    #[arg(long = "param", value_name = "K=V", requires = "strategy", value_parser = super::trading::key_value)]
    params: Vec<String>,
    #[command(flatten)]
    broker: super::trading::BrokerArgs,
}

/// `64MiB`, `1GiB`, `500MB`, `4096`: a size in bytes.
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("invalid size {text:?} (expected e.g. 64MiB, 1GiB, 500MB)"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(format!("invalid size unit in {text:?} (use B, KB, MB, GB, KiB, MiB or GiB)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("size {text:?} is too large"))
}

pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::model::time::parse_timeframe(text).map(|s| Duration::from_secs(s as u64))
}

#[derive(Debug, Serialize)]
struct ExchangeSummary {
    frames: u64,
    records: u64,
    records_per_kind: std::collections::BTreeMap<&'static str, u64>,
    connects: u64,
    disconnects: u64,
    gaps: u64,
    resyncs: u64,
    parse_errors: u64,
    venue_errors: u64,
}

#[derive(Debug, Serialize)]
pub(super) struct Summary {
    recording: String,
    pub(super) records_written: u64,
    next_seq: u64,
    wall_seconds: f64,
    exchanges: std::collections::BTreeMap<String, ExchangeSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signals: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paper: Option<super::paper::PaperSummary>,
    /// Live only: frame read → signal emitted and signal → alert queued, ns.
    #[serde(skip_serializing_if = "Option::is_none")]
    latency: Option<crate::bench::LiveLatencyReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alerts: Option<crate::alert::AlertSummary>,
}

pub fn run_record(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(args.config.as_deref())?;
    let (summary, interrupted) = capture(&args.capture, &config, &args.out, None)?;
    report(&summary, args.json)?;
    Ok(if interrupted { ExitCode::from(130) } else { ExitCode::SUCCESS })
}

pub fn run_live(args: LiveArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(args.detect.config.as_deref())?;
    let specs = args.detect.resolve(&config)?;
    let scratch = tempfile_dir()?;
    let dir = args.record.clone().unwrap_or_else(|| scratch.clone());
    let mut signals = args.output.signals()?;
    let (tap_tx, tap_rx) = crossbeam_channel::bounded::<Tapped>(1 << 16);
    let strategy = args.strategy.as_deref().map(|name| super::trading::strategy(name, &args.params)).transpose()?;
    let mut specs = specs;
    for spec in strategy.iter().flat_map(|s| s.detectors()) {
        if !specs.contains(&spec) {
            specs.push(spec);
        }
    }
    let detectors = specs.iter().map(|s| s.build()).collect();
    let broker = args.broker.config();
    // Alerts: the tap rides on the engine thread and only queues; sending has its own thread.
    let (mut alerts, alert_service) = super::alert::start(&args.alert, &config, super::alert::Mode::Live)?;
    let latency = std::sync::Arc::new(std::sync::Mutex::new(crate::bench::LiveLatency::default()));
    super::live_stats::print_on_sigusr1(latency.clone());
    let engine_latency = latency.clone();
    let engine_thread = std::thread::Builder::new().name("tapedeck-engine".into()).spawn(move || {
        let mut engine = Engine::new(crate::model::SymbolTable::new(), detectors);
        if let Some(spec) = &strategy {
            engine = engine.with_strategies(vec![spec.build()], broker);
        }
        let mut paper = super::paper::Paper::new();
        let mut result = Ok(());
        for tapped in tap_rx {
            match tapped {
                Tapped::Symbol(_, instrument) => {
                    engine.symbols_mut().intern(&instrument);
                }
                Tapped::Record(record) => {
                    alerts.on_record(&record, engine.symbols());
                    let (emitted, symbols) = engine.on_record_with_symbols(&record);
                    for signal in emitted {
                        let emitted_at = crate::capture::now_ns();
                        let queued = std::time::Instant::now();
                        alerts.on_signal(signal, symbols);
                        if let Ok(mut l) = engine_latency.lock() {
                            l.signal(record.ts_recv, emitted_at);
                            l.alert(queued.elapsed());
                        }
                        if let Err(e) = signals.emit(signal, symbols) {
                            result = Err(e);
                        }
                    }
                    paper.after_record(&engine);
                }
            }
        }
        let digest = signals.finish();
        (result.and(digest), signals.total, signals, paper.summary(&engine))
    })?;
    let outcome = capture(&args.capture, &config, &dir, Some(tap_tx));
    let (digest, total, mut signals, paper) =
        engine_thread.join().map_err(|_| anyhow::anyhow!("the engine thread panicked"))?;
    if args.record.is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    let alert_summary = alert_service.finish();
    let (mut summary, interrupted) = outcome?;
    summary.alerts = alert_summary;
    summary.signals = Some(total);
    summary.paper = paper;
    summary.latency = latency.lock().ok().map(|l| l.report());
    summary.digest = Some(digest.context("writing signals")?);
    let mut stored = serde_json::to_value(&summary)?;
    stored["command_line"] = serde_json::json!(std::env::args().collect::<Vec<_>>());
    if let Some(id) = signals.finish_run(&stored)? {
        eprintln!("stored as run {id}");
    }
    report(&summary, args.output.json)?;
    if !args.output.json
        && let Ok(l) = latency.lock()
    {
        eprint!("latency (wall clock, capture host):\n{}", l.render());
    }
    Ok(if interrupted { ExitCode::from(130) } else { ExitCode::SUCCESS })
}

/// The capture flags `scan --exchange` takes, with every other setting at `record`'s default.
pub(super) struct LiveSource {
    pub exchange: Exchange,
    pub symbols: Vec<String>,
    pub all_symbols: bool,
    pub quote: Option<String>,
    pub streams: Vec<StreamKind>,
    pub duration: Option<Duration>,
    pub ws_url: Option<String>,
    pub rest_url: Option<String>,
}

/// Captures from `source` (into `record`, or a scratch recording removed afterwards) and
/// hands every stored symbol and record, in log order, to `consume` on its own thread.
/// Returns the capture summary, whether it was interrupted, and what `consume` returned.
pub(super) fn capture_tapped<T: Send + 'static>(
    source: LiveSource,
    record: Option<&std::path::Path>,
    consume: impl FnOnce(crossbeam_channel::Receiver<Tapped>) -> T + Send + 'static,
) -> anyhow::Result<(Summary, bool, T)> {
    let args = CaptureArgs {
        exchanges: vec![source.exchange],
        symbols: source.symbols,
        all_symbols: source.all_symbols,
        quote: source.quote,
        streams: source.streams,
        duration: source.duration,
        ws_url: source.ws_url,
        rest_url: source.rest_url,
        stale_after: 60,
        keep_raw: false,
        max_levels: crate::exchange::DEFAULT_MAX_LEVELS,
        max_message_bytes: 16 << 20,
        min_free_space: 64 << 20,
    };
    let scratch = tempfile_dir()?;
    let dir = record.map_or_else(|| scratch.clone(), std::path::Path::to_path_buf);
    let (tap_tx, tap_rx) = crossbeam_channel::bounded::<Tapped>(1 << 16);
    let consumer = std::thread::Builder::new().name("tapedeck-scan".into()).spawn(move || consume(tap_rx))?;
    let outcome = capture(&args, &Config::default(), &dir, Some(tap_tx));
    let consumed = consumer.join().map_err(|_| anyhow::anyhow!("the scan thread panicked"))?;
    if record.is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    let (summary, interrupted) = outcome?;
    Ok((summary, interrupted, consumed))
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("tapedeck-live-{}-{}", std::process::id(), crate::capture::now_ns()));
    Ok(dir)
}

/// Runs a capture into `dir` until the duration ends or the user interrupts.
fn capture(
    args: &CaptureArgs,
    file: &Config,
    dir: &std::path::Path,
    tap: Option<crossbeam_channel::Sender<Tapped>>,
) -> anyhow::Result<(Summary, bool)> {
    if args.exchanges.len() > 1 && (args.ws_url.is_some() || args.rest_url.is_some()) {
        anyhow::bail!("--ws-url and --rest-url apply to a single --exchange");
    }
    let mut configs = venue_configs_from_file(file)?;
    let from_flags: Vec<VenueConfig> = args
        .exchanges
        .iter()
        .map(|exchange| {
            let defaults = crate::exchange::venue(*exchange).map(|v| v.default_endpoints()).ok_or_else(|| {
                anyhow::anyhow!(
                    "--exchange {exchange}: this venue is import-only (no live capture; see `tapedeck import`)"
                )
            })?;
            Ok(VenueConfig {
                exchange: *exchange,
                endpoints: Endpoints {
                    ws: args.ws_url.clone().unwrap_or(defaults.ws),
                    rest: args.rest_url.clone().unwrap_or(defaults.rest),
                },
                symbols: args.symbols.clone(),
                all_symbols: args.all_symbols,
                quote: args.quote.clone(),
                streams: args.streams.clone(),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    configs.extend(from_flags);
    let limits = Limits {
        stale_after: Duration::from_secs(args.stale_after),
        max_message_bytes: args.max_message_bytes,
        keep_raw: args.keep_raw,
        max_levels: args.max_levels,
        ..Limits::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    // Symbols are resolved before the recording is touched, so a typo leaves nothing behind.
    let prepared = runtime.block_on(Capture::prepare(&configs))?;
    let mut meta = RecordingMeta::new("capture", crate::capture::now_ns());
    meta.command_lines.push(std::env::args().collect());
    meta.subscriptions = prepared.streams();
    meta.notes = prepared.ts_notes().into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let writer_config = WriterConfig { min_free_bytes: Some(args.min_free_space), ..WriterConfig::default() };
    let writer = Writer::open(dir, meta.clone(), writer_config)
        .with_context(|| format!("cannot open {} for writing", dir.display()))?;
    let (handle, writer_thread) = spawn_writer(writer, 1 << 16, tap);
    let started = Instant::now();
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let result: anyhow::Result<(Capture, bool)> = runtime.block_on(async {
        let capture = Capture::start(prepared, limits, handle.clone(), shutdown_rx);
        let bar = super::progress_bar(None, "capturing");
        let deadline = args.duration.map(|d| tokio::time::Instant::now() + d);
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut interrupted = false;
        let mut last_report = Instant::now();
        loop {
            tick.tick().await;
            if super::interrupt::requested() {
                interrupted = true;
                break;
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                break;
            }
            // The writer only stops early on a storage error (disk full, IO): stop capturing
            // at once rather than reading frames that can no longer be kept.
            if writer_thread.is_finished() {
                break;
            }
            if last_report.elapsed() >= Duration::from_secs(1) {
                last_report = Instant::now();
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                let parts: Vec<String> = capture
                    .counters
                    .iter()
                    .map(|(ex, c)| {
                        format!(
                            "{ex}: {:.0} msg/s, {} records, {} errors, {} reconnects",
                            c.frames.load(Ordering::Relaxed) as f64 / secs,
                            c.records.load(Ordering::Relaxed),
                            c.parse_errors.load(Ordering::Relaxed),
                            c.disconnects.load(Ordering::Relaxed),
                        )
                    })
                    .collect();
                bar.set_message(format!("{} | writer lag {} msgs", parts.join(" | "), handle.backlog()));
                bar.tick();
            }
        }
        bar.finish_and_clear();
        let _ = shutdown_tx.send(true);
        Ok((capture, interrupted))
    });
    let (capture, interrupted) = match result {
        Ok(v) => v,
        Err(e) => {
            drop(handle);
            let _ = writer_thread.join();
            return Err(e);
        }
    };
    let counters = capture.counters.clone();
    runtime.block_on(capture.join());
    drop(runtime);
    drop(handle);
    let stats = match writer_thread.join().map_err(|_| anyhow::anyhow!("the writer thread panicked"))? {
        Ok(stats) => stats,
        Err(crate::log::LogError::DiskFull { available, required }) => {
            anyhow::bail!(
                "capture stopped: the disk is full while writing {}: {available} bytes free, below \
                 --min-free-space ({required} bytes); every record received was flushed and the recording \
                 is readable (tapedeck verify)",
                dir.display()
            );
        }
        Err(e) => {
            let what = if e.is_disk_full() {
                "the disk is full"
            } else if matches!(e, crate::log::LogError::Stalled { .. }) {
                "the storage stalled (a full disk does this)"
            } else {
                "a storage error"
            };
            return Err(anyhow::anyhow!(e).context(format!(
                "capture stopped: {what} while writing {}; the recording keeps every record up to its last \
                 flush (at most ~100 ms lost) and reads back once space is freed (check it with `tapedeck verify`)",
                dir.display()
            )));
        }
    };
    let exchanges = counters
        .iter()
        .map(|(ex, c)| {
            let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            (
                ex.to_string(),
                ExchangeSummary {
                    frames: get(&c.frames),
                    records: get(&c.records),
                    records_per_kind: c.kinds(),
                    connects: get(&c.connects),
                    disconnects: get(&c.disconnects),
                    gaps: get(&c.gaps),
                    resyncs: get(&c.resyncs),
                    parse_errors: get(&c.parse_errors),
                    venue_errors: get(&c.venue_errors),
                },
            )
        })
        .collect();
    let summary = Summary {
        recording: dir.display().to_string(),
        records_written: stats.records,
        next_seq: stats.next_seq,
        wall_seconds: started.elapsed().as_secs_f64(),
        exchanges,
        signals: None,
        digest: None,
        paper: None,
        latency: None,
        alerts: None,
    };
    Ok((summary, interrupted))
}

/// The `[[exchange]]` tables of a config file.
fn venue_configs_from_file(file: &Config) -> anyhow::Result<Vec<VenueConfig>> {
    file.exchange
        .iter()
        .map(|e| {
            let exchange: Exchange = e.name.parse().map_err(|m: String| anyhow::anyhow!("--config: {m}"))?;
            let defaults = crate::exchange::venue(exchange)
                .map(|v| v.default_endpoints())
                .ok_or_else(|| anyhow::anyhow!("--config: capture is not implemented for {exchange} yet"))?;
            let streams = if e.streams.is_empty() {
                vec!["trade".into(), "quote".into(), "depth".into()]
            } else {
                e.streams.clone()
            };
            let streams = streams
                .iter()
                .map(|s| s.parse::<StreamKind>().map_err(|m| anyhow::anyhow!("--config {exchange}: {m}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if e.symbols.is_empty() && !e.all_symbols {
                anyhow::bail!("--config {exchange}: give symbols or all_symbols = true");
            }
            Ok(VenueConfig {
                exchange,
                endpoints: Endpoints {
                    ws: e.ws_url.clone().unwrap_or(defaults.ws),
                    rest: e.rest_url.clone().unwrap_or(defaults.rest),
                },
                symbols: e.symbols.clone(),
                all_symbols: e.all_symbols,
                quote: e.quote.clone(),
                streams,
            })
        })
        .collect()
}

pub(super) fn report(summary: &Summary, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(summary)?);
        return Ok(());
    }
    eprintln!(
        "recorded {} records into {} in {:.1} s",
        summary.records_written, summary.recording, summary.wall_seconds
    );
    for (ex, s) in &summary.exchanges {
        let kinds: Vec<String> =
            s.records_per_kind.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k} {n}")).collect();
        eprintln!(
            "  {ex}: {} frames; {}; {} gaps, {} resyncs, {} reconnects, {} parse errors, {} venue errors",
            s.frames,
            kinds.join(", "),
            s.gaps,
            s.resyncs,
            s.disconnects.saturating_sub(1),
            s.parse_errors,
            s.venue_errors
        );
    }
    if let (Some(n), Some(d)) = (summary.signals, &summary.digest) {
        eprintln!("{n} signals");
        eprintln!("digest: {d}");
    }
    if let Some(p) = &summary.paper {
        eprintln!(
            "paper {}: equity {:.2} ({:+.4}), {} fills, {} closed trades, realized {:+.4}, fees {:.4}, {} rejected",
            p.strategy, p.equity, p.pnl, p.fills, p.closed_trades, p.realized_pnl, p.fees_paid, p.rejections
        );
    }
    for line in summary.alerts.iter().flat_map(|a| a.lines()) {
        eprintln!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_parse() {
        let cases: [(&str, Result<u64, &str>); 7] = [
            ("64MiB", Ok(64 << 20)),
            ("1GiB", Ok(1 << 30)),
            ("500MB", Ok(500_000_000)),
            ("4096", Ok(4096)),
            ("0", Ok(0)),
            ("12XB", Err("invalid size unit")),
            ("MiB", Err("invalid size")),
        ];
        for (text, want) in cases {
            match (super::parse_size(text), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
                (Err(e), Err(prefix)) => assert!(e.starts_with(prefix), "{text}: {e}"),
                (got, want) => panic!("{text}: {got:?} vs {want:?}"),
            }
        }
    }
}
