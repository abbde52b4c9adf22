//! Flags shared by the trading commands (`backtest`, `sweep`, `live --strategy`): the
//! strategy and its parameters, the simulated broker, and where runs are stored.

use std::path::{Path, PathBuf};

use crate::engine::BrokerConfig;
use crate::strategy::StrategySpec;

/// The simulated broker's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct BrokerArgs {
    /// Starting cash, in the quote currency
    #[arg(long, default_value = "10000", value_name = "AMOUNT", value_parser = positive, allow_negative_numbers = true)]
    pub cash: f64,
    /// Fee on notional, in basis points (10 = 0.1%)
    #[arg(long, default_value = "10", value_name = "BPS", value_parser = non_negative, allow_negative_numbers = true)]
    pub fee_bps: f64,
    /// Market-order slippage in basis points: buys pay more, sells get less
    #[arg(long, default_value = "0", value_name = "BPS", value_parser = non_negative, allow_negative_numbers = true)]
    pub slippage_bps: f64,
    /// Orders become active only for trades at least this many ms (event time) after submission
    #[arg(long, default_value = "0", value_name = "MS", value_parser = non_negative, allow_negative_numbers = true)]
    pub latency_ms: f64,
    /// Round order quantities down to a multiple of this lot size (default: fractional)
    #[arg(long, value_name = "SIZE", value_parser = positive, allow_negative_numbers = true)]
    pub lot: Option<f64>,
}

impl BrokerArgs {
    pub fn config(&self) -> BrokerConfig {
        BrokerConfig {
            cash: self.cash,
            fee_bps: self.fee_bps,
            slippage_bps: self.slippage_bps,
            latency_ns: (self.latency_ms * 1e6).round() as u64,
            lot: self.lot,
        }
    }
}

fn number(text: &str) -> Result<f64, String> {
    text.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| format!("{text:?} is not a number"))
}

fn positive(text: &str) -> Result<f64, String> {
    number(text).and_then(|x| if x > 0.0 { Ok(x) } else { Err(format!("must be > 0, got {text}")) })
}

fn non_negative(text: &str) -> Result<f64, String> {
    number(text).and_then(|x| if x >= 0.0 { Ok(x) } else { Err(format!("must be >= 0, got {text}")) })
}

/// `key=value` for `--param`.
pub fn key_value(text: &str) -> Result<String, String> {
    match text.split_once('=') {
        Some((k, _)) if !k.trim().is_empty() => Ok(text.trim().to_string()),
        _ => Err(format!("expected key=value, got {text:?}")),
    }
}

/// Parses the strategy flags into a spec.
///
/// # Errors
/// An unknown strategy or a bad parameter, naming the flag.
pub fn strategy(name: &str, params: &[String]) -> anyhow::Result<StrategySpec> {
    Ok(StrategySpec::parse(name, params)?)
}

/// The results store runs go to: `--results DIR`, else `$TAPEDECK_RESULTS`, else
/// `$XDG_DATA_HOME/tapedeck/results`, else `~/.local/share/tapedeck/results`.
pub fn results_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_path_buf();
    }
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = env("TAPEDECK_RESULTS") {
        return dir;
    }
    if let Some(data) = env("XDG_DATA_HOME") {
        return data.join("tapedeck").join("results");
    }
    match env("HOME") {
        Some(home) => home.join(".local/share/tapedeck/results"),
        None => PathBuf::from("tapedeck-results"),
    }
}

/// What identifies the recordings a run read: path, creation time, source.
pub fn recording_ids(paths: &[PathBuf]) -> Vec<serde_json::Value> {
    paths
        .iter()
        .map(|p| match crate::log::Reader::open(p) {
            Ok(r) => serde_json::json!({
                "path": p.display().to_string(),
                "created": crate::model::time::format_utc(r.meta().created_ns),
                "source": r.meta().source,
            }),
            Err(_) => serde_json::json!({"path": p.display().to_string()}),
        })
        .collect()
}

/// Stores a run summary in the results store; returns its id. A store that cannot be
/// opened is a warning, not a failure: the run's own output is already complete.
pub fn store_run(dir: &Path, summary: &serde_json::Value) -> Option<u64> {
    let stored = crate::log::ResultsStore::open(dir).and_then(|store| {
        let run = store.begin_run()?;
        let id = run.id;
        run.finish(summary)?;
        Ok(id)
    });
    match stored {
        Ok(id) => Some(id),
        Err(e) => {
            tracing::warn!("could not store the run in {}: {e}", dir.display());
            eprintln!("warning: run not stored in {}: {e}", dir.display());
            None
        }
    }
}

/// Wall-clock time for a stored run's `created` field (the CLI edge, never the engine).
pub fn now_utc() -> String {
    crate::model::time::format_utc(crate::capture::now_ns())
}
