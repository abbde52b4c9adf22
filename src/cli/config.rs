//! Settings from `--config FILE` (TOML): detectors with named presets, and the exchanges
//! to capture, each with its own symbols, streams and endpoints.
//!
//! Flags win over the file. A config file looks like:
//! ```toml
//! detect = ["waves:amplitude=0.5,timeframe=1m"]
//! [presets.fast]
//! detect = ["waves:amplitude=0.05,timeframe=10s", "volume:timeframe=10s"]
//!
//! [[exchange]]
//! name = "binance"
//! symbols = ["BTCUSDT", "ETHUSDT"]
//! streams = ["trade", "quote", "depth", "kline:1m"]
//!
//! [[exchange]]
//! name = "gate"
//! all_symbols = true
//! quote = "USDT"
//! streams = ["ticker"]
//! # ws_url = "ws://127.0.0.1:9000"   (endpoint overrides, per exchange)
//!
//! [telegram]            # alerts: see docs/alerts.md
//! chat_id = -1001234567890
//! cooldown = "5m"
//! detectors = ["volume", "waves"]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::detect::DetectorSpec;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub detect: Vec<String>,
    #[serde(default)]
    pub presets: BTreeMap<String, Preset>,
    /// Exchanges to capture (`record`, `live`).
    #[serde(default)]
    pub exchange: Vec<ExchangeConfig>,
    /// Alerts (`--alert`, `alerts-report`): Telegram credentials, pacing, cooldown, filters.
    pub telegram: Option<TelegramConfig>,
}

/// The `[telegram]` table; see docs/alerts.md. Environment variables win over the token and
/// chat id here, and flags over the rest.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// Prefer `TAPEDECK_TELEGRAM_TOKEN`; prints as `***` everywhere.
    pub token: Option<crate::alert::token::BotToken>,
    pub chat_id: Option<i64>,
    pub api_url: Option<String>,
    /// Least time between two messages to the chat, e.g. "1s".
    pub per_chat_interval: Option<String>,
    /// Most messages per minute to a group (negative chat id).
    pub group_per_minute: Option<u32>,
    /// One alert per exchange, symbol and detector per this much event time, e.g. "5m".
    pub cooldown: Option<String>,
    /// Alerts that may wait before they are coalesced into a digest.
    pub queue: Option<usize>,
    /// How long a run waits at its end for queued alerts, e.g. "30s".
    pub drain: Option<String>,
    #[serde(default)]
    pub detectors: Vec<String>,
    #[serde(default)]
    pub symbols: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    pub name: String,
    #[serde(default)]
    pub symbols: Vec<String>,
    #[serde(default)]
    pub all_symbols: bool,
    pub quote: Option<String>,
    #[serde(default)]
    pub streams: Vec<String>,
    pub ws_url: Option<String>,
    pub rest_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    #[serde(default)]
    pub detect: Vec<String>,
}

impl Config {
    /// # Errors
    /// When the file cannot be read or is not valid config TOML.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let Some(path) = path else { return Ok(Config::default()) };
        let text = std::fs::read_to_string(path).with_context(|| format!("--config {}", path.display()))?;
        let config: Config = toml::from_str(&text).with_context(|| format!("--config {}", path.display()))?;
        if config.telegram.as_ref().is_some_and(|t| t.token.is_some())
            && let Some(mode) = others_can_read(path)
        {
            tracing::warn!("config {} holds a Telegram token and is readable by others", path.display());
            eprintln!(
                "warning: --config {} holds a Telegram token and is readable by other users (mode {mode:o}); \
                 run `chmod 600 {}` or use TAPEDECK_TELEGRAM_TOKEN",
                path.display(),
                path.display()
            );
        }
        Ok(config)
    }
}

/// The file's permission bits when users other than its owner may read it.
#[cfg(unix)]
fn others_can_read(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o044 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn others_can_read(_path: &Path) -> Option<u32> {
    None
}

/// The detector flags shared by replay, live and bench.
#[derive(Debug, clap::Args)]
pub struct DetectArgs {
    /// A detector and its parameters, e.g. waves:amplitude=0.5,timeframe=1m,ma=1 (repeatable).
    /// Detectors: waves (amplitude %, timeframe, ma), volatility (timeframe, short, long,
    /// high, low), volume (timeframe, ma, k, min_quote)
    #[arg(long, value_name = "SPEC", value_parser = parse_spec)]
    pub detect: Vec<DetectorSpec>,
    /// Read detectors (and presets) from a TOML file
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Use the named preset from --config
    #[arg(long, value_name = "NAME", requires = "config")]
    pub preset: Option<String>,
}

fn parse_spec(text: &str) -> Result<DetectorSpec, String> {
    text.parse::<DetectorSpec>().map_err(|e| e.message_for_flag())
}

impl crate::detect::SpecError {
    fn message_for_flag(&self) -> String {
        format!("{}: {}", self.detector, self.message)
    }
}

impl DetectArgs {
    /// Flags if given, else the preset, else the file's top-level list.
    ///
    /// # Errors
    /// When a preset is missing or a spec in the file is invalid.
    pub fn resolve(&self, config: &Config) -> anyhow::Result<Vec<DetectorSpec>> {
        if !self.detect.is_empty() {
            return Ok(self.detect.clone());
        }
        let list = match &self.preset {
            Some(name) => {
                &config
                    .presets
                    .get(name)
                    .ok_or_else(|| anyhow::anyhow!("--preset {name}: no such preset in --config"))?
                    .detect
            }
            None => &config.detect,
        };
        list.iter().map(|s| s.parse::<DetectorSpec>().map_err(anyhow::Error::from)).collect()
    }
}

/// Where signals go, shared by replay and live.
#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// Write every signal as one JSON object per line to FILE
    #[arg(long, value_name = "FILE")]
    pub signals_out: Option<PathBuf>,
    /// Also store this run (summary and signals) in a results database at DIR
    #[arg(long, value_name = "DIR")]
    pub results: Option<PathBuf>,
    /// Do not print signals on the terminal
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the summary as JSON on stdout (signals then only go to --signals-out)
    #[arg(long)]
    pub json: bool,
}

impl OutputArgs {
    /// The signal sinks these flags ask for: human lines on a terminal, JSONL on a pipe.
    ///
    /// # Errors
    /// When the signals file or the results store cannot be opened.
    pub fn signals(&self) -> anyhow::Result<crate::output::Signals> {
        use crate::output::{Signals, Terminal};
        let terminal = if self.quiet || self.json {
            Terminal::Off
        } else if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            Terminal::Human
        } else {
            Terminal::Json
        };
        let mut signals = Signals::new(self.signals_out.as_deref(), terminal).with_context(|| {
            format!("--signals-out {}", self.signals_out.as_ref().map_or(String::new(), |p| p.display().to_string()))
        })?;
        if let Some(dir) = &self.results {
            let store = crate::log::ResultsStore::open(dir).with_context(|| format!("--results {}", dir.display()))?;
            signals = signals.with_results(store.begin_run()?);
        }
        Ok(signals)
    }
}
