//! The alert flags shared by `replay` and `live` (`--alert`, `--send-alerts`, filters,
//! `--telegram-api-url`), and their resolution against the environment and the `[telegram]`
//! table of `--config` into a running [`crate::alert::Service`].
//!
//! Precedence: flags, then environment (`TAPEDECK_TELEGRAM_TOKEN`, `TAPEDECK_TELEGRAM_CHAT_ID`,
//! `TAPEDECK_TELEGRAM_API_URL`, `TELOXIDE_API_URL`), then the config file, then defaults.
//! Nothing here prints or returns the token: errors name where a value came from, never it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::config::{Config, TelegramConfig};
use crate::alert::local::{DryRun, JsonlFile, Stdout};
use crate::alert::queue::{self, Pacing, Retry};
use crate::alert::telegram::Telegram;
use crate::alert::token::BotToken;
use crate::alert::{self, AlertTap, CommandsSpec, Filter, Service, Settings, TargetSpec, parse_duration};

pub const ENV_TOKEN: &str = "TAPEDECK_TELEGRAM_TOKEN";
pub const ENV_CHAT_ID: &str = "TAPEDECK_TELEGRAM_CHAT_ID";
pub const ENV_API_URL: &str = "TAPEDECK_TELEGRAM_API_URL";
/// teloxide's own variable, honoured too so an existing setup keeps working.
pub const ENV_TELOXIDE_API_URL: &str = "TELOXIDE_API_URL";

/// Where alerts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Telegram,
    Stdout,
    File(PathBuf),
}

fn parse_target(text: &str) -> Result<Target, String> {
    match text {
        "telegram" => Ok(Target::Telegram),
        "stdout" => Ok(Target::Stdout),
        _ => match text.strip_prefix("file:") {
            Some(path) if !path.is_empty() => Ok(Target::File(path.into())),
            _ => Err(format!("unknown alert target {text:?} (expected telegram, stdout or file:PATH)")),
        },
    }
}

/// Which signals become alerts; shared with `alerts-report`.
#[derive(Debug, clap::Args)]
pub struct AlertFilterArgs {
    /// Only alert for these detectors, comma-separated (default: [telegram] detectors, else all)
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub alert_detectors: Vec<String>,
    /// Only alert for these symbols, comma-separated, BTC/USDT or BTCUSDT (default: [telegram]
    /// symbols, else all)
    #[arg(long, value_delimiter = ',', value_name = "SYMBOLS")]
    pub alert_symbols: Vec<String>,
    /// At most one alert per exchange, symbol and detector per this much event time, e.g. 5m,
    /// 30s, 0 for none (default: [telegram] cooldown, else 5m)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub alert_cooldown: Option<Duration>,
}

/// `--alert` and friends.
#[derive(Debug, clap::Args)]
pub struct AlertArgs {
    /// Send alerts formed from signals to telegram, stdout or file:PATH (JSONL); repeatable.
    /// Telegram credentials: TAPEDECK_TELEGRAM_TOKEN and TAPEDECK_TELEGRAM_CHAT_ID, or [telegram]
    /// in --config
    #[arg(long = "alert", value_name = "TARGET", value_parser = parse_target)]
    pub alert: Vec<Target>,
    /// replay: really send Telegram alerts (without it, replay prints each message it would send
    /// on stderr); live always sends
    #[arg(long, requires = "alert")]
    pub send_alerts: bool,
    /// Telegram Bot API base URL instead of https://api.telegram.org (also TAPEDECK_TELEGRAM_API_URL,
    /// TELOXIDE_API_URL, or api_url in [telegram])
    #[arg(long, value_name = "URL")]
    pub telegram_api_url: Option<String>,
    #[command(flatten)]
    pub filter: AlertFilterArgs,
}

/// Who is starting alerts: replay only sends to Telegram with `--send-alerts`; live always
/// sends and also answers bot commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Replay,
    Live,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn config_duration(value: Option<&String>, key: &str, default: Duration) -> anyhow::Result<Duration> {
    match value {
        None => Ok(default),
        Some(text) => parse_duration(text).map_err(|e| anyhow::anyhow!("--config [telegram] {key}: {e}")),
    }
}

/// The filter and cooldown from flags, else the config, else defaults.
pub fn filter_and_cooldown(args: &AlertFilterArgs, config: &Config) -> anyhow::Result<(Filter, Duration)> {
    let table = config.telegram.as_ref();
    let pick = |flag: &Vec<String>, file: Option<&Vec<String>>| {
        if flag.is_empty() { file.cloned().unwrap_or_default() } else { flag.clone() }
    };
    let filter = Filter {
        detectors: pick(&args.alert_detectors, table.map(|t| &t.detectors)),
        symbols: pick(&args.alert_symbols, table.map(|t| &t.symbols)),
    };
    let cooldown = match args.alert_cooldown {
        Some(d) => d,
        None => config_duration(
            table.and_then(|t| t.cooldown.as_ref()),
            "cooldown",
            Duration::from_nanos(alert::dedupe::DEFAULT_COOLDOWN_NS),
        )?,
    };
    Ok((filter, cooldown))
}

/// The chat id from the environment, else the config.
pub fn chat_id(table: Option<&TelegramConfig>) -> anyhow::Result<Option<i64>> {
    match env(ENV_CHAT_ID) {
        Some(text) => text
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("{ENV_CHAT_ID} must be a numeric chat id (groups are negative)")),
        None => Ok(table.and_then(|t| t.chat_id)),
    }
}

/// Pacing and queue size for a Telegram chat, from the config or Telegram's advice.
pub fn telegram_pacing(table: Option<&TelegramConfig>, chat_id: i64) -> anyhow::Result<(Pacing, usize)> {
    let per_chat = config_duration(
        table.and_then(|t| t.per_chat_interval.as_ref()),
        "per_chat_interval",
        queue::DEFAULT_PER_CHAT,
    )?;
    let per_minute = table.and_then(|t| t.group_per_minute).unwrap_or(queue::DEFAULT_GROUP_PER_MINUTE);
    let capacity = table.and_then(|t| t.queue).unwrap_or(queue::DEFAULT_CAPACITY);
    if capacity == 0 {
        anyhow::bail!("--config [telegram] queue must be at least 1");
    }
    Ok((Pacing::telegram(chat_id, per_chat, per_minute), capacity))
}

/// Starts alerting as the flags ask; with no `--alert`, an inert tap and service.
///
/// # Errors
/// Bad config values, missing credentials for real sending, an unwritable alert file.
pub fn start(args: &AlertArgs, config: &Config, mode: Mode) -> anyhow::Result<(AlertTap, Service)> {
    if args.alert.is_empty() {
        return Ok(alert::inert());
    }
    let table = config.telegram.as_ref();
    let (filter, cooldown) = filter_and_cooldown(&args.filter, config)?;
    let drain = config_duration(table.and_then(|t| t.drain.as_ref()), "drain", Duration::from_secs(30))?;
    let mut targets: Vec<TargetSpec> = Vec::new();
    let mut seen: Vec<&Target> = Vec::new();
    let mut commands = None;
    for target in &args.alert {
        if seen.contains(&target) {
            continue;
        }
        seen.push(target);
        let local = |notifier: Arc<dyn alert::Notifier>| TargetSpec {
            notifier,
            pacing: Pacing::NONE,
            capacity: queue::LOCAL_CAPACITY,
            retry: Retry::default(),
        };
        match target {
            Target::Stdout => targets.push(local(Arc::new(Stdout))),
            Target::File(path) => targets.push(local(Arc::new(JsonlFile::create(path)?))),
            Target::Telegram if mode == Mode::Replay && !args.send_alerts => {
                targets.push(local(Arc::new(DryRun { chat_id: chat_id(table)? })));
            }
            Target::Telegram => {
                let telegram = Arc::new(telegram(args, table)?);
                let (pacing, capacity) = telegram_pacing(table, telegram.chat_id())?;
                if mode == Mode::Live {
                    commands = Some(CommandsSpec {
                        telegram: telegram.clone(),
                        chat_id: telegram.chat_id(),
                        reply_target: targets.len(),
                    });
                }
                targets.push(TargetSpec { notifier: telegram, pacing, capacity, retry: Retry::default() });
            }
        }
    }
    Ok(alert::start(Settings { filter, cooldown, targets, commands, drain })?)
}

/// The Telegram client from flags, environment and config.
fn telegram(args: &AlertArgs, table: Option<&TelegramConfig>) -> anyhow::Result<Telegram> {
    let token = env(ENV_TOKEN).map(|t| BotToken::new(&t)).or_else(|| table.and_then(|t| t.token.clone()));
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        anyhow::bail!(
            "--alert telegram needs a bot token: set {ENV_TOKEN} or token in the [telegram] table of --config"
        );
    };
    let Some(chat_id) = chat_id(table)? else {
        anyhow::bail!(
            "--alert telegram needs a chat id: set {ENV_CHAT_ID} or chat_id in the [telegram] table of --config"
        );
    };
    let api_url = args
        .telegram_api_url
        .clone()
        .or_else(|| env(ENV_API_URL))
        .or_else(|| env(ENV_TELOXIDE_API_URL))
        .or_else(|| table.and_then(|t| t.api_url.clone()));
    Ok(Telegram::new(token, chat_id, api_url.as_deref())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let cases = [
            ("telegram", Ok(Target::Telegram)),
            ("stdout", Ok(Target::Stdout)),
            ("file:alerts.jsonl", Ok(Target::File("alerts.jsonl".into()))),
            ("file:", Err(())),
            ("email", Err(())),
        ];
        for (text, want) in cases {
            assert_eq!(parse_target(text).map_err(|_| ()), want, "{text}");
        }
    }
}
