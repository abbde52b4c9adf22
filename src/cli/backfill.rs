//! `tapedeck backfill`: kline and trade history over a venue's REST API into a recording,
//! resumable by rerunning the same command. Flags, validation, the writer, the progress bar,
//! Ctrl-C and the summary; paging, pacing and resume are `crate::backfill`'s.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use crate::backfill::{Backfill, BackfillError, Config, Progress, Retry, Summary, wall_ms};
use crate::exchange::HistoryKind;
use crate::log::{Writer, WriterConfig};
use crate::model::Exchange;
use crate::model::time::{days_from_civil, format_timeframe, parse_timeframe, parse_utc};

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  tapedeck backfill --exchange binance --symbols BTCUSDT,ETHUSDT --kline 1m --trades \\
    --from 2024-08-01 --to 2024-08-08 --out recordings/history

Rerun the same command to continue after an interruption: progress is read back from the
recording, so nothing is fetched into it twice. Candles whose bucket has not ended are left
for a later run. Buckets the venue skips become gap status records.")]
pub struct Args {
    /// Exchange to fetch from: binance, gate or lbank (bittrex is import-only)
    #[arg(long, value_name = "EXCHANGE")]
    exchange: Exchange,
    /// Symbols, comma-separated, as the venue spells them (ADABTC, BTC_USDT) or BASE/QUOTE
    #[arg(long, value_delimiter = ',', required = true, value_name = "SYMBOLS")]
    symbols: Vec<String>,
    /// Kline length to fetch, e.g. 1m, 1h, 1d
    #[arg(long, value_name = "TF", value_parser = parse_timeframe, required_unless_present = "trades")]
    kline: Option<u32>,
    /// Also fetch public trades (Binance: aggregate trades)
    #[arg(long)]
    trades: bool,
    /// Start, inclusive: a UTC date (2024-08-01) or time (2024-08-01T12:00:00Z)
    #[arg(long, value_name = "WHEN", value_parser = parse_from)]
    from: u64,
    /// End, exclusive: a UTC date or time, or `now` (--to 2024-08-08 stops before that day)
    #[arg(long, value_name = "WHEN", value_parser = parse_to)]
    to: u64,
    /// Recording directory to create or continue
    #[arg(long, value_name = "REC")]
    out: PathBuf,
    /// REST base URL instead of the venue's (tests, proxies)
    #[arg(long, value_name = "URL")]
    rest_url: Option<String>,
    /// Print the summary as JSON on stdout
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    recording: String,
    first_seq: u64,
    next_seq: u64,
    wall_seconds: f64,
    #[serde(flatten)]
    summary: &'a Summary,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.exchange.has_capture() {
        anyhow::bail!(
            "--exchange {}: import-only venue (tapedeck import ohlcv); it has no REST history",
            args.exchange
        );
    }
    let symbols: Vec<String> = args.symbols.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    if symbols.is_empty() {
        anyhow::bail!("--symbols: no symbols given");
    }
    if args.to <= args.from {
        anyhow::bail!("--to must be after --from");
    }
    let rest_url = match &args.rest_url {
        Some(url) => url.clone(),
        None => crate::exchange::venue(args.exchange).map(|v| v.default_endpoints().rest).unwrap_or_default(),
    };
    let config = Config {
        exchange: args.exchange,
        rest_url,
        symbols,
        kline_s: args.kline,
        trades: args.trades,
        from_ms: args.from,
        to_ms: args.to,
        now_ms: wall_ms(),
        budget: None,
        retry: Retry::default(),
    };
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // Symbols and the recording's progress are checked before anything is written.
    let mut backfill = runtime.block_on(Backfill::prepare(config, &args.out)).map_err(|e| name_flag(e, &args))?;
    let meta = backfill.meta(std::env::args().collect(), wall_ms().saturating_mul(1_000_000));
    let writer_config = WriterConfig {
        flush_records: usize::MAX,
        flush_interval: Duration::from_secs(3600),
        ..WriterConfig::default()
    };
    let mut writer = Writer::open(&args.out, meta, writer_config)
        .with_context(|| format!("cannot open {} for writing", args.out.display()))?;
    let first_seq = writer.next_seq();
    let bar = super::progress_bar(Some(0), "minutes of history");
    let mut last_wait = None;
    let mut progress = |p: &Progress| {
        bar.set_length(p.total_ms / 60_000);
        bar.set_position(p.done_ms / 60_000);
        if p.waiting.is_some() && p.waiting != last_wait {
            bar.println(p.waiting.clone().unwrap_or_default());
        }
        last_wait.clone_from(&p.waiting);
    };
    let outcome = runtime.block_on(backfill.run(&mut writer, &super::interrupt::requested, &mut progress));
    bar.finish_and_clear();
    // Close (flush) whatever happened: what was written is kept, and a rerun continues from it.
    let stats = writer.close()?;
    let summary = outcome.map_err(|e| name_flag(e, &args))?;
    let report = Report {
        recording: args.out.display().to_string(),
        first_seq,
        next_seq: stats.next_seq,
        wall_seconds: started.elapsed().as_secs_f64(),
        summary: &summary,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_human(&report);
    }
    Ok(if summary.interrupted { ExitCode::from(130) } else { ExitCode::SUCCESS })
}

/// Venue refusals name the flag that asked for them.
fn name_flag(error: BackfillError, args: &Args) -> anyhow::Error {
    match &error {
        BackfillError::Unsupported { kind: HistoryKind::Klines(s), detail } => {
            anyhow::anyhow!("--kline {}: {detail}", format_timeframe(*s))
        }
        BackfillError::Unsupported { kind: HistoryKind::Trades, detail } => anyhow::anyhow!("--trades: {detail}"),
        BackfillError::UnknownSymbol { .. } => anyhow::anyhow!("--symbols: {error}"),
        BackfillError::Foreign { .. } => anyhow::anyhow!("--out: {error}"),
        _ if args.rest_url.is_some() => anyhow::Error::new(error).context("backfill failed (--rest-url in use)"),
        _ => anyhow::Error::new(error).context("backfill failed; rerun the same command to continue"),
    }
}

fn print_human(report: &Report) {
    let s = report.summary;
    eprintln!(
        "backfilled {} records (seq {}..{}) into {} in {:.1} s: {} requests, {} retries, {} throttled, {} pauses{}",
        s.records_written,
        report.first_seq,
        report.next_seq,
        report.recording,
        report.wall_seconds,
        s.requests,
        s.retries,
        s.throttled,
        s.paced,
        if s.interrupted { " (interrupted: rerun to continue)" } else { "" }
    );
    for st in &s.streams {
        let span = match (&st.first, &st.last) {
            (Some(first), Some(last)) => format!(" {first} .. {last}"),
            _ => String::new(),
        };
        let state = if st.stopped_at_open_candle {
            "up to the open candle"
        } else if st.complete {
            "complete"
        } else {
            "incomplete"
        };
        let rows = if st.stream.ends_with(":trades") {
            format!("{} trades", st.trades)
        } else {
            format!("{} candles", st.candles)
        };
        eprintln!(
            "  {} ({}): {rows}, {} gaps, {} already held; {state}{span}",
            st.stream, st.symbol, st.gaps, st.held_before
        );
    }
}

/// A UTC date (`2024-08-01`, its midnight) or RFC 3339 UTC time, in ms since the epoch.
fn parse_from(text: &str) -> Result<u64, String> {
    let bad = || {
        format!("invalid time {text:?} (expected a UTC date such as 2024-08-01 or a time such as 2024-08-01T12:00:00Z)")
    };
    if let [y, m, d] = text.split('-').collect::<Vec<_>>()[..]
        && y.len() == 4
        && let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i64>(), m.parse::<u32>(), d.parse::<u32>())
    {
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1970 {
            return Err(bad());
        }
        return Ok(days_from_civil(y, m, d) as u64 * 86_400_000);
    }
    parse_utc(text).map(|ns| ns / 1_000_000).map_err(|_| bad())
}

/// Like [`parse_from`], or `now`.
fn parse_to(text: &str) -> Result<u64, String> {
    if text == "now" { Ok(wall_ms()) } else { parse_from(text) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_table() {
        let cases = [
            ("2024-08-01", Ok(1_722_470_400_000)),
            ("2021-11-27", Ok(1_637_971_200_000)),
            ("2024-08-01T12:00:00Z", Ok(1_722_513_600_000)),
            ("2024-08-01T12:00:00.250Z", Ok(1_722_513_600_250)),
        ];
        for (text, ms) in cases {
            assert_eq!(parse_from(text), ms, "{text}");
        }
        for bad in ["2024-13-01", "2024-08-32", "24-08-01", "yesterday", "2024-08-01T12:00:00", ""] {
            let err = parse_from(bad).unwrap_err();
            assert!(err.starts_with("invalid time"), "{bad}: {err}");
        }
        assert!(parse_to("now").unwrap() > 1_722_470_400_000);
    }
}
