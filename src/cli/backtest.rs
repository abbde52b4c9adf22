//! `tapedeck backtest REC... --strategy NAME`: one strategy over recordings with the
//! simulated broker; metrics table (or `--json`), CSVs and an HTML report in `--report DIR`,
//! and the run stored in the results store.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;

use super::config::{Config, DetectArgs};
use super::trading::{self, BrokerArgs};
use crate::backtest::{self, BacktestConfig};
use crate::replay::{Filter, Merged};

#[derive(Debug, clap::Args)]
#[command(after_help = "Strategies:
  wave-follow       buy when a down wave is confirmed, sell all when an up wave is confirmed
                    params: amplitude (%), timeframe, ma, size (fraction of equity, default 1)
  volume-breakout   buy on a volume anomaly whose candle closed up; exit after hold candles or
                    at stop_pct/take_pct from the entry. params: timeframe, ma, k, min_quote,
                    hold (5), size (1), stop_pct (1), take_pct (2)

Examples:
  tapedeck backtest recordings/binance-btcusdt-20240808 --strategy wave-follow \\
      --param amplitude=0.05 --param timeframe=10s --report report/
  tapedeck backtest REC --strategy volume-breakout --param timeframe=1m --param hold=3 \\
      --fee-bps 7.5 --slippage-bps 2 --latency-ms 50 --json

Metrics are defined in docs/backtest.md. Runs are stored in the results store
($TAPEDECK_RESULTS, or ~/.local/share/tapedeck/results); list them with `tapedeck runs`.")]
pub struct Args {
    /// Recording directories; several are merged by (ts_recv, recording order, seq)
    #[arg(required = true, value_name = "REC")]
    recs: Vec<PathBuf>,
    /// The strategy: wave-follow or volume-breakout
    #[arg(long, value_name = "NAME")]
    strategy: String,
    /// A strategy parameter, key=value (repeatable)
    #[arg(long = "param", value_name = "K=V", value_parser = trading::key_value)]
    params: Vec<String>,
    #[command(flatten)]
    broker: BrokerArgs,
    /// Write trades.csv, fills.csv, equity.csv, report.html and SVG charts into DIR
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// Print the result as JSON on stdout
    #[arg(long)]
    json: bool,
    /// Only these symbols, comma-separated (BTC/USDT or BTCUSDT)
    #[arg(long, value_delimiter = ',', value_name = "SYMBOLS")]
    symbols: Vec<String>,
    /// Results store to record the run in (default: $TAPEDECK_RESULTS or ~/.local/share/tapedeck/results)
    #[arg(long, value_name = "DIR")]
    results: Option<PathBuf>,
    /// Do not store the run
    #[arg(long)]
    no_store: bool,
    #[command(flatten)]
    detect: DetectArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let spec = trading::strategy(&args.strategy, &args.params)?;
    let config_file = Config::load(args.detect.config.as_deref())?;
    let detectors = args.detect.resolve(&config_file)?;
    let ids = trading::recording_ids(&args.recs);
    let filter = Filter { from: None, to: None, symbols: args.symbols.clone() };
    let mut merged = Merged::open(&args.recs, filter)
        .map_err(|(path, e)| anyhow::anyhow!(e).context(format!("cannot open recording {}", path.display())))?;
    let symbols = merged.symbols().clone();
    let config = BacktestConfig {
        strategy: spec,
        broker: args.broker.config(),
        detectors,
        keep_chart_data: args.report.is_some(),
    };
    let bar = super::progress_bar(None, "records");
    let started = Instant::now();
    let mut n = 0u64;
    let mut interrupted = false;
    let records = std::iter::from_fn(|| {
        n += 1;
        if n % 65_536 == 0 {
            bar.set_position(n);
            if super::interrupt::requested() {
                interrupted = true;
                return None;
            }
        }
        merged.next()
    });
    let outcome = backtest::run(records, &symbols, &config);
    bar.finish_and_clear();
    if let Some(e) = merged.take_error() {
        return Err(anyhow::anyhow!(e).context("backtest stopped"));
    }
    if interrupted {
        eprintln!("interrupted: results cover the records read so far");
    }
    let wall = started.elapsed().as_secs_f64();
    if let Some(dir) = &args.report {
        backtest::write_csv(dir, &outcome).with_context(|| format!("--report {}", dir.display()))?;
        let recs: Vec<String> = args.recs.iter().map(|p| p.display().to_string()).collect();
        let data = backtest::report_data(
            &outcome,
            format!("{} {}", outcome.strategy, outcome.params),
            format!(
                "{} | cash {} | fee {} bps | slippage {} bps | latency {} ms",
                recs.join(", "),
                args.broker.cash,
                args.broker.fee_bps,
                args.broker.slippage_bps,
                args.broker.latency_ms
            ),
        );
        backtest::report::write(dir, &data).with_context(|| format!("--report {}", dir.display()))?;
    }
    let mut result = serde_json::to_value(&outcome)?;
    result["recordings"] = serde_json::json!(ids);
    let mut stored = result.clone();
    stored["kind"] = "backtest".into();
    stored["created"] = trading::now_utc().into();
    stored["command_line"] = serde_json::json!(std::env::args().collect::<Vec<_>>());
    stored["trades"] = serde_json::to_value(&outcome.trips)?;
    let run_id =
        if args.no_store { None } else { trading::store_run(&trading::results_dir(args.results.as_deref()), &stored) };
    if args.json {
        result["run"] = serde_json::json!(run_id);
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print!("{}", table(&outcome));
        eprintln!("{} records in {:.3} s", outcome.records, wall);
        if let Some(dir) = &args.report {
            eprintln!("report: {}", dir.join("report.html").display());
        }
        if let Some(id) = run_id {
            eprintln!("stored as run {id} (tapedeck runs show {id})");
        }
    }
    Ok(if interrupted { ExitCode::from(130) } else { ExitCode::SUCCESS })
}

/// The terminal table: metrics, then the closed trades.
pub fn table(out: &backtest::Outcome) -> String {
    let m = &out.metrics;
    let opt = |v: Option<f64>, unit: &str| v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}{unit}"));
    let rows = [
        ("strategy", format!("{} {}", out.strategy, out.params)),
        ("records", out.records.to_string()),
        ("initial cash", format!("{:.2}", m.initial_cash)),
        ("final equity", format!("{:.2}", m.final_equity)),
        ("total return", format!("{:.3}%", m.total_return_pct)),
        ("max drawdown", format!("{:.3}%", m.max_drawdown_pct)),
        ("sharpe", opt(m.sharpe, "")),
        ("sortino", opt(m.sortino, "")),
        ("trades", m.trades.to_string()),
        ("win rate", opt(m.win_rate_pct, "%")),
        ("profit factor", opt(m.profit_factor, "")),
        ("average trade", opt(m.average_trade, "")),
        ("exposure", format!("{:.1}%", m.exposure_pct)),
        ("fees paid", format!("{:.4}", m.fees_paid)),
        ("fills", m.fills.to_string()),
        ("rejections", m.rejections.to_string()),
    ];
    let mut s = String::new();
    for (k, v) in rows {
        s.push_str(&format!("{k:<14} {v}\n"));
    }
    if !out.trips.is_empty() {
        s.push_str(&format!(
            "\n{:>5}  {:<10} {:<24} {:>14} {:<24} {:>14} {:>12} {:>9}\n",
            "trade", "symbol", "entry", "entry price", "exit", "exit price", "pnl", "return"
        ));
        for (i, t) in out.trips.iter().enumerate() {
            s.push_str(&format!(
                "{:>5}  {:<10} {:<24} {:>14.4} {:<24} {:>14.4} {:>12.4} {:>8.3}%\n",
                i + 1,
                t.symbol,
                crate::model::time::format_utc(t.entry_ts),
                t.entry_price,
                crate::model::time::format_utc(t.exit_ts),
                t.exit_price,
                t.pnl,
                t.return_pct
            ));
        }
    }
    s
}
