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
        toml::from_str(&text).with_context(|| format!("--config {}", path.display()))
    }
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
