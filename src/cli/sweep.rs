//! `tapedeck sweep REC... --strategy NAME --grid key=values...`: decode the recordings
//! once, run every grid point as a backtest in parallel (rayon) over the shared records,
//! print a ranked table and write a CSV. Results are identical for any `--threads`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context as _;

use super::trading::{self, BrokerArgs};
use crate::backtest::sweep::{self, Axis, PointResult};
use crate::model::Record;
use crate::replay::{Filter, Merged};

#[derive(Debug, clap::Args)]
#[command(after_help = "Grid axes:
  key=start:end:step   an inclusive range, e.g. amplitude=0.1:1.0:0.1
  key=v1,v2,...        a list, e.g. ma=1,5,20 or timeframe=10s,1m

Examples:
  tapedeck sweep recordings/binance-btcusdt-20240808 --strategy wave-follow \\
      --param timeframe=10s --grid amplitude=0.02:0.2:0.02 --grid ma=1,3,5
  tapedeck sweep REC --strategy volume-breakout --grid k=2,3,4 --grid hold=1:5:1 \\
      --metric total_return --threads 2 --out sweep.csv

Metrics: sharpe, sortino, total_return, max_drawdown (lower ranks first), profit_factor,
win_rate, final_equity, trades. Points without a value (e.g. no trades) rank last.")]
pub struct Args {
    #[arg(required = true, value_name = "REC")]
    recs: Vec<PathBuf>,
    /// The strategy: wave-follow or volume-breakout
    #[arg(long, value_name = "NAME")]
    strategy: String,
    /// A grid axis, key=start:end:step or key=v1,v2,... (repeatable; the grid is their product)
    #[arg(long = "grid", value_name = "AXIS", required = true, value_parser = sweep::parse_axis)]
    grid: Vec<Axis>,
    /// A fixed strategy parameter, key=value (repeatable; --grid wins for the same key)
    #[arg(long = "param", value_name = "K=V", value_parser = trading::key_value)]
    params: Vec<String>,
    /// The metric to rank by
    #[arg(long, default_value = "sharpe", value_parser = clap::builder::PossibleValuesParser::new(sweep::METRICS))]
    metric: String,
    /// Worker threads (default: one per core)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Write every point, ranked, as CSV to FILE
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Rows of the ranked table to print
    #[arg(long, default_value = "20", value_name = "N")]
    top: usize,
    #[command(flatten)]
    broker: BrokerArgs,
    /// Print every point as JSON on stdout
    #[arg(long)]
    json: bool,
    /// Only these symbols, comma-separated
    #[arg(long, value_delimiter = ',', value_name = "SYMBOLS")]
    symbols: Vec<String>,
    /// Results store to record the sweep in
    #[arg(long, value_name = "DIR")]
    results: Option<PathBuf>,
    /// Do not store the sweep
    #[arg(long)]
    no_store: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Validate every grid point before decoding anything.
    let points = sweep::points(&args.grid);
    for point in &points {
        let mut params = args.params.clone();
        params.extend(point.iter().cloned());
        trading::strategy(&args.strategy, &params)?;
    }
    let ids = trading::recording_ids(&args.recs);
    let filter = Filter { from: None, to: None, symbols: args.symbols.clone() };
    let mut merged = Merged::open(&args.recs, filter)
        .map_err(|(path, e)| anyhow::anyhow!(e).context(format!("cannot open recording {}", path.display())))?;
    let symbols = merged.symbols().clone();
    let started = Instant::now();
    let decode_bar = super::progress_bar(None, "decoding");
    let mut records: Vec<Record> = Vec::new();
    for record in merged.by_ref() {
        records.push(record);
        if records.len() % 65_536 == 0 {
            decode_bar.set_position(records.len() as u64);
        }
    }
    decode_bar.finish_and_clear();
    if let Some(e) = merged.take_error() {
        return Err(anyhow::anyhow!(e).context("sweep stopped while decoding"));
    }
    let decoded = started.elapsed().as_secs_f64();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.map_or(0, usize::from))
        .build()
        .context("--threads")?;
    let bar = super::progress_bar(Some(points.len() as u64), "grid points");
    let done = AtomicU64::new(0);
    let progress = || {
        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
        bar.set_position(n);
    };
    let grid_started = Instant::now();
    let mut results = pool.install(|| {
        sweep::run(&records, &symbols, &args.strategy, &args.params, &args.grid, args.broker.config(), &progress)
    })?;
    bar.finish_and_clear();
    let grid_wall = grid_started.elapsed().as_secs_f64();
    sweep::rank(&mut results, &args.metric);
    let csv = to_csv(&results, &args.grid, &args.metric);
    if let Some(path) = &args.out {
        std::fs::write(path, &csv).with_context(|| format!("--out {}", path.display()))?;
    }
    let rows: Vec<serde_json::Value> = results
        .iter()
        .enumerate()
        .map(|(rank, r)| {
            serde_json::json!({
                "rank": rank + 1,
                "grid": r.assignment,
                "params": r.outcome.params,
                "value": sweep::metric_value(&r.outcome, &args.metric),
                "metrics": r.outcome.metrics,
            })
        })
        .collect();
    let summary = serde_json::json!({
        "kind": "sweep",
        "strategy": args.strategy,
        "metric": args.metric,
        "points": results.len(),
        "records": records.len(),
        "broker": args.broker.config(),
        "recordings": ids,
        "created": trading::now_utc(),
        "command_line": std::env::args().collect::<Vec<_>>(),
        "results": rows,
    });
    let run_id =
        if args.no_store { None } else { trading::store_run(&trading::results_dir(args.results.as_deref()), &summary) };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"run": run_id, "metric": args.metric, "results": rows}))?
        );
    } else {
        print!("{}", table(&results, &args.metric, args.top));
        eprintln!(
            "{} points over {} records: decode {:.3} s, grid {:.3} s on {} threads",
            results.len(),
            records.len(),
            decoded,
            grid_wall,
            pool.current_num_threads()
        );
        if let Some(id) = run_id {
            eprintln!("stored as run {id} (tapedeck runs show {id})");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(String::new, |v| v.to_string())
}

/// Every point, ranked: grid values, then the metrics.
fn to_csv(results: &[PointResult], axes: &[Axis], metric: &str) -> String {
    let mut s = String::from("rank");
    for a in axes {
        s.push(',');
        s.push_str(&a.key);
    }
    s.push_str(",value,total_return_pct,max_drawdown_pct,sharpe,sortino,trades,win_rate_pct,profit_factor,fees_paid,final_equity\n");
    for (rank, r) in results.iter().enumerate() {
        let m = &r.outcome.metrics;
        s.push_str(&(rank + 1).to_string());
        for v in &r.assignment {
            s.push(',');
            s.push_str(v.split_once('=').map_or("", |(_, v)| v));
        }
        s.push_str(&format!(
            ",{},{},{},{},{},{},{},{},{},{}\n",
            fmt_opt(sweep::metric_value(&r.outcome, metric)),
            m.total_return_pct,
            m.max_drawdown_pct,
            fmt_opt(m.sharpe),
            fmt_opt(m.sortino),
            m.trades,
            fmt_opt(m.win_rate_pct),
            fmt_opt(m.profit_factor),
            m.fees_paid,
            m.final_equity
        ));
    }
    s
}

fn table(results: &[PointResult], metric: &str, top: usize) -> String {
    let opt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
    let mut s = format!(
        "{:>4}  {:<36} {:>10} {:>10} {:>9} {:>8} {:>7}\n",
        "rank", "grid", metric, "return%", "maxdd%", "sharpe", "trades"
    );
    for (rank, r) in results.iter().enumerate().take(top) {
        let m = &r.outcome.metrics;
        s.push_str(&format!(
            "{:>4}  {:<36} {:>10} {:>10.3} {:>9.3} {:>8} {:>7}\n",
            rank + 1,
            r.assignment.join(","),
            opt(sweep::metric_value(&r.outcome, metric)),
            m.total_return_pct,
            m.max_drawdown_pct,
            opt(m.sharpe),
            m.trades
        ));
    }
    if results.len() > top {
        s.push_str(&format!("({} more; --top N or --out FILE for all)\n", results.len() - top));
    }
    s
}
