//! `tapedeck runs` lists the stored backtests, sweeps and replays; `tapedeck runs show ID`
//! prints one: its parameters, metrics, recordings and trades.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::trading;
use crate::log::{ResultsStore, StoredRun};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tapedeck runs
  tapedeck runs --json | jq '.[] | select(.kind == \"backtest\")'
  tapedeck runs show 7
  TAPEDECK_RESULTS=./results tapedeck runs")]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// Results store (default: $TAPEDECK_RESULTS, or ~/.local/share/tapedeck/results)
    #[arg(long, value_name = "DIR", global = true)]
    results: Option<PathBuf>,
    /// Print JSON
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Show one run: parameters, metrics, recordings and trades
    Show {
        /// The run id, as `tapedeck runs` lists it
        id: u64,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dir = trading::results_dir(args.results.as_deref());
    if !dir.join("conf").is_file() {
        if args.json && args.action.is_none() {
            println!("[]");
        } else if args.action.is_none() {
            eprintln!("no runs stored yet in {}", dir.display());
        } else {
            anyhow::bail!("no results store at {} (see --results)", dir.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let store = ResultsStore::open(&dir).with_context(|| format!("cannot open {}", dir.display()))?;
    let runs = store.runs()?;
    match args.action {
        None => {
            if args.json {
                let list: Vec<_> = runs.iter().map(brief).collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:>4}  {:<9} {:<24} {:<48} {:>10} {:>8}",
                    "id", "kind", "created", "what", "return%", "sharpe"
                );
                for r in &runs {
                    let b = brief(r);
                    let num = |k: &str| b[k].as_f64().map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
                    println!(
                        "{:>4}  {:<9} {:<24} {:<48} {:>10} {:>8}",
                        r.id,
                        b["kind"].as_str().unwrap_or("-"),
                        b["created"].as_str().unwrap_or("-"),
                        truncate(b["what"].as_str().unwrap_or("-"), 48),
                        num("total_return_pct"),
                        num("sharpe")
                    );
                }
            }
        }
        Some(Action::Show { id }) => {
            let run = runs.iter().find(|r| r.id == id).ok_or_else(|| anyhow::anyhow!("runs show {id}: no such run"))?;
            if args.json {
                let mut v = run.summary.clone();
                v["id"] = id.into();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", show(run));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { s.chars().take(n - 1).collect::<String>() + "…" }
}

/// One line's worth of a run, whatever command stored it.
fn brief(r: &StoredRun) -> serde_json::Value {
    let s = &r.summary;
    let kind = s["kind"].as_str().unwrap_or(if s.get("digest").is_some() { "replay" } else { "-" });
    let what = match kind {
        "backtest" => format!("{} {}", s["strategy"].as_str().unwrap_or("?"), s["params"].as_str().unwrap_or("")),
        "sweep" => format!(
            "{} ({} points, by {})",
            s["strategy"].as_str().unwrap_or("?"),
            s["points"],
            s["metric"].as_str().unwrap_or("?")
        ),
        _ => s["detectors"]
            .as_array()
            .map_or_else(String::new, |d| d.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(" ")),
    };
    let best = if kind == "sweep" { &s["results"][0]["metrics"] } else { &s["metrics"] };
    serde_json::json!({
        "id": r.id,
        "kind": kind,
        "created": s["created"],
        "what": what,
        "records": s["records"],
        "total_return_pct": best["total_return_pct"],
        "sharpe": best["sharpe"],
        "signals": r.signals,
    })
}

fn show(r: &StoredRun) -> String {
    let s = &r.summary;
    let b = brief(r);
    let mut out = format!(
        "run        {}\nkind       {}\nwhat       {}\n",
        r.id,
        b["kind"].as_str().unwrap_or("-"),
        b["what"].as_str().unwrap_or("-")
    );
    if let Some(created) = s["created"].as_str() {
        out.push_str(&format!("created    {created}\n"));
    }
    for rec in s["recordings"].as_array().into_iter().flatten() {
        let path =
            rec.as_str().map(str::to_string).or_else(|| rec["path"].as_str().map(str::to_string)).unwrap_or_default();
        let created = rec["created"].as_str().map_or(String::new(), |c| format!(" (created {c})"));
        out.push_str(&format!("recording  {path}{created}\n"));
    }
    if let Some(records) = s["records"].as_u64() {
        out.push_str(&format!("records    {records}\n"));
    }
    if let Some(broker) = s["broker"].as_object() {
        let parts: Vec<String> = broker.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!("broker     {}\n", parts.join(" ")));
    }
    let metrics = if b["kind"] == "sweep" { &s["results"][0]["metrics"] } else { &s["metrics"] };
    if let Some(m) = metrics.as_object() {
        out.push_str(if b["kind"] == "sweep" { "\nbest point's metrics:\n" } else { "\nmetrics:\n" });
        for (k, v) in m {
            out.push_str(&format!("  {k:<18} {v}\n"));
        }
    }
    if let Some(trades) = s["trades"].as_array().filter(|t| !t.is_empty()) {
        out.push_str(&format!("\ntrades ({}):\n", trades.len()));
        for (i, t) in trades.iter().enumerate() {
            out.push_str(&format!(
                "  {:>3} {} {} @ {} -> {} @ {}  pnl {}\n",
                i + 1,
                t["symbol"].as_str().unwrap_or(""),
                t["entry_ts"],
                t["entry_price"],
                t["exit_ts"],
                t["exit_price"],
                t["pnl"]
            ));
        }
    }
    if let Some(results) = s["results"].as_array() {
        out.push_str(&format!("\nranked points ({}):\n", results.len()));
        for row in results.iter().take(20) {
            out.push_str(&format!(
                "  {:>3} {} value {}\n",
                row["rank"],
                row["params"].as_str().unwrap_or(""),
                row["value"]
            ));
        }
    }
    if let Some(d) = s["digest"].as_str() {
        out.push_str(&format!("\nsignals    {}\ndigest     {d}\n", r.signals));
    }
    out
}
