//! `tapedeck replay REC...`: drive the engine from recordings, with detectors, at a speed.
//!
//! Ends with a summary: records, signals per detector, wall time, events/s, and the
//! SHA-256 digest of the signals JSONL (identical across runs, speeds and thread counts).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use super::alert::AlertArgs;
use super::config::{Config, DetectArgs, OutputArgs};
use crate::engine::{Engine, EngineStats};
use crate::replay::{Filter, Merged, Pacer, Speed};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tapedeck replay recordings/binance-btcusdt-20240808 --detect waves:amplitude=0.1,timeframe=10s
  tapedeck replay REC --speed 10 --detect volume:timeframe=10s,ma=20,k=3 --signals-out signals.jsonl
  tapedeck replay A B --from 2024-08-08T23:55:00Z --to 2024-08-08T23:57:00Z --symbols BTC/USDT")]
pub struct Args {
    /// Recording directories; several are merged by (ts_recv, recording order, seq)
    #[arg(required = true, value_name = "REC")]
    recs: Vec<PathBuf>,
    /// Replay speed: 1 = as recorded, 10 = ten times faster, max = as fast as possible
    #[arg(long, default_value = "max", value_parser = clap::value_parser!(Speed))]
    speed: Option<Speed>,
    /// Start at this receive time: RFC 3339 UTC (2024-08-08T23:55:00Z) or ns since the epoch
    #[arg(long, value_name = "T", value_parser = parse_time)]
    from: Option<u64>,
    /// Stop after this receive time (same forms as --from)
    #[arg(long, value_name = "T", value_parser = parse_time)]
    to: Option<u64>,
    /// Only these symbols, comma-separated (BTC/USDT or BTCUSDT)
    #[arg(long, value_delimiter = ',', value_name = "SYMBOLS")]
    symbols: Vec<String>,
    /// Engine threads at --speed max: instruments are shared out among engines run in
    /// parallel, and their signals merged back by seq, so the output is the same for every
    /// value. 0 = automatic (all cores when the recordings hold 4 or more instruments)
    #[arg(long, default_value_t = 0, value_name = "N")]
    threads: usize,
    #[command(flatten)]
    detect: DetectArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    alert: AlertArgs,
}

/// Records handed to the sharded engines at a time: large enough that the fan-out costs
/// little per record, small enough that signals still stream out.
const CHUNK: usize = 16_384;

/// How many engine threads a replay uses (1 = the plain single engine).
fn engine_threads(requested: usize, speed: Speed, instruments: usize) -> usize {
    if speed != Speed::Max {
        return 1;
    }
    match requested {
        0 if instruments >= 4 => rayon::current_num_threads(),
        0 => 1,
        n => n,
    }
}

#[derive(Debug, Serialize)]
struct Summary {
    records: u64,
    signals: u64,
    signals_per_detector: std::collections::BTreeMap<String, u64>,
    wall_seconds: f64,
    events_per_second: f64,
    digest: String,
    engine: EngineStats,
    /// Engine threads used (see --threads).
    threads: usize,
    interrupted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    alerts: Option<crate::alert::AlertSummary>,
}

fn parse_time(text: &str) -> Result<u64, String> {
    crate::model::time::parse_utc(text).or_else(|_| {
        text.parse::<u64>().map_err(|_| {
            format!("invalid time {text:?} (expected RFC 3339 UTC such as 2024-08-08T23:55:00Z, or ns since the epoch)")
        })
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = Config::load(args.detect.config.as_deref())?;
    let specs = args.detect.resolve(&config)?;
    let speed = args.speed.unwrap_or(Speed::Max);
    let filter = Filter { from: args.from, to: args.to, symbols: args.symbols.clone() };
    let mut merged = Merged::open(&args.recs, filter)
        .map_err(|(path, e)| anyhow::anyhow!(e).context(format!("cannot open recording {}", path.display())))?;
    let threads = engine_threads(args.threads, speed, merged.symbols().len());
    let build = || specs.iter().map(|s| s.build()).collect::<Vec<_>>();
    let mut engine = Engine::new(merged.symbols().clone(), build());
    let mut signals = args.output.signals()?;
    let (mut alerts, alert_service) = super::alert::start(&args.alert, &config, super::alert::Mode::Replay)?;
    let bar = super::progress_bar(None, "records");
    let span = merged.span;
    if let Some((first, last)) = span {
        bar.set_length((last - first).max(1) / 1_000_000);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} replay [{bar:30}] {percent}% of the time span, {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
    }
    let mut pacer = Pacer::new(speed);
    let started = Instant::now();
    let mut n = 0u64;
    let mut interrupted = false;
    let progress = |n: u64, ts_recv: u64| {
        if let Some((first, _)) = span {
            bar.set_position(ts_recv.saturating_sub(first) / 1_000_000);
            bar.set_message(format!("{:.0} events/s", n as f64 / started.elapsed().as_secs_f64()));
        }
    };
    let mut sharded_stats = None;
    if threads > 1 {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("tapedeck-engine-{i}"))
            .build()
            .context("cannot start the engine threads")?;
        // More shards than threads evens out instruments of unequal activity.
        let mut sharded = crate::engine::sharded::Sharded::new(merged.symbols(), threads * 4, build);
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut out = Vec::new();
        loop {
            chunk.clear();
            chunk.extend(merged.by_ref().take(CHUNK));
            let Some(last) = chunk.last() else { break };
            let ts_recv = last.ts_recv;
            out.clear();
            pool.install(|| sharded.on_chunk(&chunk, &mut out));
            for signal in &out {
                signals.emit(signal, merged.symbols())?;
                alerts.on_signal(signal, merged.symbols());
            }
            n += chunk.len() as u64;
            progress(n, ts_recv);
            if super::interrupt::requested() {
                interrupted = true;
                break;
            }
        }
        sharded_stats = Some(sharded.stats());
    } else {
        let symbols = merged.symbols().clone();
        while let Some(record) = merged.next_ref() {
            pacer.wait(record.ts_recv);
            let ts_recv = record.ts_recv;
            for signal in engine.on_record(record) {
                signals.emit(signal, &symbols)?;
                alerts.on_signal(signal, &symbols);
            }
            n += 1;
            if n % 8192 == 0 {
                progress(n, ts_recv);
                if super::interrupt::requested() {
                    interrupted = true;
                    break;
                }
            }
        }
    }
    bar.finish_and_clear();
    if let Some(e) = merged.take_error() {
        signals.finish()?;
        return Err(anyhow::anyhow!(e).context("replay stopped"));
    }
    let digest = signals.finish()?;
    let wall = started.elapsed().as_secs_f64();
    // Alerts drain after the timing: waiting on Telegram's pacing is not replay speed.
    drop(alerts);
    let alert_summary = alert_service.finish();
    let summary = Summary {
        records: n,
        signals: signals.total,
        signals_per_detector: signals.per_detector.clone(),
        wall_seconds: wall,
        events_per_second: if wall > 0.0 { n as f64 / wall } else { 0.0 },
        digest,
        engine: sharded_stats.unwrap_or_else(|| engine.stats()),
        threads,
        interrupted,
        alerts: alert_summary,
    };
    let mut stored = serde_json::to_value(&summary)?;
    stored["recordings"] = serde_json::json!(args.recs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>());
    stored["detectors"] = serde_json::json!(specs.iter().map(|s| s.build().params()).collect::<Vec<_>>());
    stored["command_line"] = serde_json::json!(std::env::args().collect::<Vec<_>>());
    if let Some(id) = signals.finish_run(&stored)? {
        eprintln!("stored as run {id}");
    }
    if args.output.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        let per: Vec<String> = summary.signals_per_detector.iter().map(|(k, v)| format!("{k} {v}")).collect();
        eprintln!(
            "replayed {} records in {:.3} s ({:.0} events/s); {} signals{}{}",
            summary.records,
            wall,
            summary.events_per_second,
            summary.signals,
            if per.is_empty() { String::new() } else { format!(" ({})", per.join(", ")) },
            if interrupted { "; interrupted" } else { "" }
        );
        eprintln!("digest: {}", summary.digest);
        for line in summary.alerts.iter().flat_map(|a| a.lines()) {
            eprintln!("{line}");
        }
    }
    Ok(if interrupted { ExitCode::from(130) } else { ExitCode::SUCCESS })
}
