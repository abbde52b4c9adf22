//! Alerts: signals turned into short messages for people, delivered to Telegram, stdout or a
//! JSONL file, with filters, a cooldown, pacing within Telegram's limits, bot commands, and a
//! backtest of all that over a recording.
//!
//! It owns everything between a `Signal` and a delivered message. It must not be called from
//! inside the engine, must not block the thread that runs the engine (that thread only calls
//! [`AlertTap::on_signal`], which filters, applies the cooldown and does a non-blocking
//! `try_send`; sending happens on its own thread and tokio runtime), must not decide anything
//! by the wall clock that replay has to reproduce (the cooldown runs in event time), and must
//! never let the bot token reach logs, errors, `Debug` output, recordings or results.
//!
//! Pieces: `format` (HTML), `token` (the redacting secret), `dedupe` (cooldown), `queue`
//! (bounded queue, pacing, sender), `telegram` (teloxide transport), `local` (stdout, file,
//! dry run), `commands` (`/status`, `/mute`, `/unmute`, `/top`), `report` (`alerts-report`).

pub mod commands;
pub mod dedupe;
pub mod format;
pub mod local;
pub mod queue;
pub mod report;
pub mod telegram;
pub mod token;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::engine::{Signal, SignalBody};
use crate::model::{Exchange, InstrumentId, Nanos, Record, SymbolTable};
use commands::BotState;
use dedupe::{Admit, Cooldown};
use queue::{Pacing, Queue, QueueHandle, Retry, TargetSummary};

/// A signal that passed the filters and the cooldown, with what a message needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub seq: u64,
    /// The signal's event time, ns.
    pub ts: Nanos,
    pub exchange: Exchange,
    /// Canonical `BASE/QUOTE`.
    pub symbol: String,
    pub detector: String,
    pub params: String,
    pub body: SignalBody,
    /// The signal's one JSON rendering (`Signal::to_json`), for the JSONL sink.
    #[serde(skip)]
    pub json: String,
}

impl Alert {
    pub fn from_signal(signal: &Signal, symbols: &SymbolTable) -> Alert {
        Alert {
            seq: signal.seq,
            ts: signal.ts,
            exchange: signal.exchange,
            symbol: symbols.get(signal.instrument).map_or_else(|| "-".to_string(), |i| i.symbol.clone()),
            detector: signal.detector.to_string(),
            params: signal.params.clone(),
            body: signal.body.clone(),
            json: signal.to_json(symbols),
        }
    }
}

/// What kind of message goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutgoingKind {
    Alert,
    Digest,
    Reply,
}

/// One message for a [`Notifier`].
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub kind: OutgoingKind,
    /// Telegram HTML, escaped and at most 4096 characters.
    pub html: String,
    /// How many alerts it carries (1, a digest's count, or 0 for a command reply).
    pub alerts: u64,
    /// The alert itself, for sinks that keep the signal.
    pub alert: Option<Alert>,
}

/// Why a send failed, as far as retrying is concerned. Texts are already free of the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Flood control (HTTP 429): wait this long, then send the same message again.
    #[error("flood control: retry after {0:?}")]
    RetryAfter(Duration),
    /// May pass (5xx, network): retry with backoff.
    #[error("{0}")]
    Transient(String),
    /// Will not pass (bad request, wrong chat, bad token): give the message up.
    #[error("{0}")]
    Fatal(String),
}

/// A boxed send, so notifiers of different kinds share one queue loop.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>;

/// Somewhere messages go. Implementations may take their time: they run on the alert
/// sender's runtime, never on the engine's thread.
pub trait Notifier: Send + Sync {
    /// The target as the user named it (`telegram`, `stdout`, `file:alerts.jsonl`).
    fn target(&self) -> String;
    fn send<'a>(&'a self, message: &'a Outgoing) -> SendFuture<'a>;
}

/// Errors setting alerts up. Messages never contain the token.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("{0}")]
    Config(String),
    #[error("alert file {path}: {source}")]
    File { path: std::path::PathBuf, source: std::io::Error },
    #[error("cannot start the alert sender: {0}")]
    Runtime(std::io::Error),
}

/// Parses `0`, `250ms`, `1s`, `5m`, `2h`.
///
/// # Errors
/// When the text is not a whole number with one of those units.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("invalid duration {text:?} (expected e.g. 250ms, 1s, 5m, 2h or 0)");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let ms = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad()),
    };
    n.checked_mul(ms).map(Duration::from_millis).ok_or_else(bad)
}

/// A symbol reduced to upper-case letters and digits, so `BTC/USDT`, `btcusdt` and
/// `BTC_USDT` name the same pair in filters and `/mute`.
pub fn normalize_symbol(symbol: &str) -> String {
    symbol.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect()
}

/// Which signals may become alerts: by detector name and by symbol; empty lists allow all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Filter {
    pub detectors: Vec<String>,
    pub symbols: Vec<String>,
}

impl Filter {
    pub fn allows(&self, symbol: &str, detector: &str) -> bool {
        let detector_ok = self.detectors.is_empty() || self.detectors.iter().any(|d| d == detector);
        let symbol_ok = self.symbols.is_empty() || {
            let wanted = normalize_symbol(symbol);
            self.symbols.iter().any(|s| normalize_symbol(s) == wanted)
        };
        detector_ok && symbol_ok
    }
}

/// What happened to signals on the way to becoming alerts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PipelineCounts {
    pub signals: u64,
    /// Not in `--alert-detectors` / `--alert-symbols`.
    pub filtered: u64,
    /// Muted with `/mute`.
    pub muted: u64,
    /// Inside the cooldown of an earlier alert of the same exchange, symbol and detector.
    pub suppressed: u64,
    pub alerts: u64,
}

/// Filter, mutes, cooldown: the deterministic part of turning signals into alerts, shared by
/// live, replay and the backtest.
#[derive(Debug, Clone)]
pub struct Pipeline {
    filter: Filter,
    cooldown: Cooldown,
    pub counts: PipelineCounts,
}

impl Pipeline {
    pub fn new(filter: Filter, cooldown: Duration) -> Pipeline {
        Pipeline { filter, cooldown: Cooldown::new(cooldown.as_nanos() as Nanos), counts: PipelineCounts::default() }
    }

    /// The alert for `signal`, if it is one. `muted` says whether a symbol is muted at an
    /// event time (live `/mute`; always false elsewhere).
    pub fn admit(
        &mut self,
        signal: &Signal,
        symbols: &SymbolTable,
        muted: impl Fn(&str, Nanos) -> bool,
    ) -> Option<Alert> {
        self.counts.signals += 1;
        let symbol = symbols.get(signal.instrument).map_or("-", |i| i.symbol.as_str());
        if !self.filter.allows(symbol, signal.detector) {
            self.counts.filtered += 1;
            return None;
        }
        if muted(symbol, signal.ts) {
            self.counts.muted += 1;
            return None;
        }
        if self.cooldown.admit(signal.exchange, symbol, signal.detector, signal.ts) == Admit::Suppressed {
            self.counts.suppressed += 1;
            return None;
        }
        self.counts.alerts += 1;
        Some(Alert::from_signal(signal, symbols))
    }
}

/// One place alerts go, with its queue settings.
pub struct TargetSpec {
    pub notifier: Arc<dyn Notifier>,
    pub pacing: Pacing,
    pub capacity: usize,
    pub retry: Retry,
}

/// Live bot commands: where they come from and who may give them.
pub struct CommandsSpec {
    pub telegram: Arc<telegram::Telegram>,
    /// The one chat allowed to command; also where replies go.
    pub chat_id: i64,
    /// Index into the targets of the Telegram queue replies go through.
    pub reply_target: usize,
}

/// Everything [`start`] needs.
pub struct Settings {
    pub filter: Filter,
    pub cooldown: Duration,
    pub targets: Vec<TargetSpec>,
    pub commands: Option<CommandsSpec>,
    /// How long [`Service::finish`] waits for the queues to empty.
    pub drain: Duration,
}

/// Pipeline counters the engine side publishes for the summary.
#[derive(Debug, Default)]
struct SharedCounts([AtomicU64; 5]);

impl SharedCounts {
    fn store(&self, c: &PipelineCounts) {
        for (slot, v) in self.0.iter().zip([c.signals, c.filtered, c.muted, c.suppressed, c.alerts]) {
            slot.store(v, Ordering::Relaxed);
        }
    }

    fn load(&self) -> PipelineCounts {
        let v: Vec<u64> = self.0.iter().map(|a| a.load(Ordering::Relaxed)).collect();
        PipelineCounts { signals: v[0], filtered: v[1], muted: v[2], suppressed: v[3], alerts: v[4] }
    }
}

/// How often the engine side publishes stream counts for `/status`.
const PUBLISH_EVERY: u64 = 4096;

/// The engine side: lives on the thread that runs the engine and never waits on the network.
pub struct AlertTap {
    pipeline: Pipeline,
    queues: Vec<QueueHandle>,
    counts: Arc<SharedCounts>,
    bot: Option<Arc<Mutex<BotState>>>,
    records: u64,
    streams: BTreeMap<(Exchange, InstrumentId, &'static str), u64>,
}

impl AlertTap {
    /// Whether anything is listening (no `--alert`: every call returns at once).
    pub fn is_active(&self) -> bool {
        !self.queues.is_empty() || self.bot.is_some()
    }

    /// Counts records per stream for `/status`; cheap, and only when bot commands run.
    pub fn on_record(&mut self, record: &Record, symbols: &SymbolTable) {
        let Some(bot) = &self.bot else { return };
        self.records += 1;
        *self.streams.entry((record.exchange, record.instrument, record.event.kind().as_str())).or_default() += 1;
        if self.records % PUBLISH_EVERY == 1 {
            // try_lock: a command being answered must never hold up the engine; the next
            // publish catches up.
            if let Ok(mut state) = bot.try_lock() {
                state.update_streams(self.records, record.ts_exchange, &self.streams, symbols);
            }
        }
    }

    /// Turns a signal into an alert if it is one and hands it to every target's queue.
    pub fn on_signal(&mut self, signal: &Signal, symbols: &SymbolTable) {
        if !self.is_active() {
            return;
        }
        let alert = match &self.bot {
            Some(bot) => {
                let mut state = bot.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                state.update_streams(self.records, signal.ts, &self.streams, symbols);
                state.observe(&Alert::from_signal(signal, symbols));
                self.pipeline.admit(signal, symbols, |symbol, ts| state.is_muted(symbol, ts))
            }
            None => self.pipeline.admit(signal, symbols, |_, _| false),
        };
        self.counts.store(&self.pipeline.counts);
        if let Some(alert) = alert {
            for queue in &self.queues {
                queue.try_send(alert.clone());
            }
        }
    }
}

/// The alert sender thread and its queues; [`Service::finish`] drains them and reports.
pub struct Service {
    thread: Option<std::thread::JoinHandle<()>>,
    queues: Vec<Arc<Queue>>,
    abort: watch::Sender<bool>,
    stop_commands: watch::Sender<bool>,
    counts: Arc<SharedCounts>,
    drain: Duration,
}

/// The alert part of a run summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertSummary {
    #[serde(flatten)]
    pub pipeline: PipelineCounts,
    pub targets: Vec<TargetSummary>,
}

impl AlertSummary {
    /// One line per target for the terminal summary.
    pub fn lines(&self) -> Vec<String> {
        let p = &self.pipeline;
        let mut lines = vec![format!(
            "alerts: {} of {} signals ({} filtered out, {} muted, {} within the cooldown)",
            p.alerts, p.signals, p.filtered, p.muted, p.suppressed
        )];
        for t in &self.targets {
            lines.push(format!(
                "  {}: {} alerts, {} messages sent ({} digests), {} coalesced, {} dropped, {} retries, {} failed",
                t.target, t.alerts, t.sent, t.digests, t.coalesced, t.dropped, t.retries, t.failed
            ));
        }
        lines
    }
}

/// Nothing configured: a tap that ignores everything and a service with nothing to finish.
pub fn inert() -> (AlertTap, Service) {
    let counts = Arc::new(SharedCounts::default());
    let tap = AlertTap {
        pipeline: Pipeline::new(Filter::default(), Duration::ZERO),
        queues: Vec::new(),
        counts: counts.clone(),
        bot: None,
        records: 0,
        streams: BTreeMap::new(),
    };
    let service = Service {
        thread: None,
        queues: Vec::new(),
        abort: watch::channel(false).0,
        stop_commands: watch::channel(false).0,
        counts,
        drain: Duration::ZERO,
    };
    (tap, service)
}

/// Starts the sender thread (one tokio runtime, one task per target, plus the command
/// poller) and returns the engine-side tap and the service that finishes it.
///
/// # Errors
/// When the runtime or thread cannot be created.
pub fn start(settings: Settings) -> Result<(AlertTap, Service), AlertError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(AlertError::Runtime)?;
    let (abort, abort_rx) = watch::channel(false);
    let (stop_commands, stop_rx) = watch::channel(false);
    let queues: Vec<Arc<Queue>> =
        settings.targets.iter().map(|t| Queue::new(t.notifier.target(), t.capacity)).collect();
    let bot = settings.commands.as_ref().map(|_| Arc::new(Mutex::new(BotState::new(commands::wall_clock_ns()))));
    let counts = Arc::new(SharedCounts::default());
    let tap = AlertTap {
        pipeline: Pipeline::new(settings.filter, settings.cooldown),
        queues: queues.iter().cloned().map(QueueHandle).collect(),
        counts: counts.clone(),
        bot: bot.clone(),
        records: 0,
        streams: BTreeMap::new(),
    };
    let senders: Vec<_> =
        settings.targets.into_iter().zip(&queues).map(|(t, q)| (q.clone(), t.notifier, t.pacing, t.retry)).collect();
    let poller = match (settings.commands, bot) {
        (Some(c), Some(bot)) => {
            let replies = QueueHandle(queues[c.reply_target].clone());
            Some(commands::Poller {
                telegram: c.telegram,
                chat_id: c.chat_id,
                state: bot,
                replies,
                queues: queues.clone(),
            })
        }
        _ => None,
    };
    let thread = std::thread::Builder::new()
        .name("tapedeck-alerts".into())
        .spawn(move || {
            runtime.block_on(async move {
                let mut tasks = Vec::new();
                for (queue, notifier, pacing, retry) in senders {
                    tasks.push(tokio::spawn(queue::run_sender(queue, notifier, pacing, retry, abort_rx.clone())));
                }
                if let Some(poller) = poller {
                    tasks.push(tokio::spawn(poller.run(stop_rx)));
                }
                for task in tasks {
                    let _ = task.await;
                }
            });
        })
        .map_err(AlertError::Runtime)?;
    let service = Service { thread: Some(thread), queues, abort, stop_commands, counts, drain: settings.drain };
    Ok((tap, service))
}

impl Service {
    /// Stops the command poller, lets the queues empty for up to the drain time, then stops
    /// the senders (what is still waiting counts as dropped). `None` when nothing was set up.
    pub fn finish(mut self) -> Option<AlertSummary> {
        let thread = self.thread.take()?;
        let _ = self.stop_commands.send(true);
        for queue in &self.queues {
            queue.close();
        }
        let deadline = std::time::Instant::now() + self.drain;
        while !thread.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if !thread.is_finished() {
            let waiting: u64 = self.queues.iter().map(|q| q.backlog()).sum();
            tracing::warn!("alerts: gave up waiting for {} queued alerts after {:?}", waiting, self.drain);
        }
        let _ = self.abort.send(true);
        if thread.join().is_err() {
            tracing::error!("the alert sender thread panicked");
        }
        Some(AlertSummary { pipeline: self.counts.load(), targets: self.queues.iter().map(|q| q.summary()).collect() })
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // An error path that never called finish: stop at once rather than leave a thread.
        let _ = self.stop_commands.send(true);
        let _ = self.abort.send(true);
        for queue in &self.queues {
            queue.close();
        }
    }
}

/// A volume alert for unit tests of the queue and the report.
#[cfg(test)]
pub(crate) fn test_alert(symbol: &str, ts: Nanos) -> Alert {
    Alert {
        seq: 0,
        ts,
        exchange: Exchange::Binance,
        symbol: symbol.into(),
        detector: "volume".into(),
        params: String::new(),
        body: SignalBody::Volume { bucket_start: 0, volume: 1.0, baseline: 1.0, ratio: 2.0, quote_volume: 1.0 },
        json: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Instrument;

    #[test]
    fn durations() {
        let cases = [
            ("0", Some(Duration::ZERO)),
            ("250ms", Some(Duration::from_millis(250))),
            ("1s", Some(Duration::from_secs(1))),
            ("5m", Some(Duration::from_secs(300))),
            ("2h", Some(Duration::from_secs(7200))),
            ("1.5s", None),
            ("5", None),
            ("m", None),
            ("-1s", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text).ok(), want, "{text:?}");
        }
    }

    #[test]
    fn filters() {
        let f = |d: &[&str], s: &[&str]| Filter {
            detectors: d.iter().map(|x| x.to_string()).collect(),
            symbols: s.iter().map(|x| x.to_string()).collect(),
        };
        let cases = [
            (f(&[], &[]), "BTC/USDT", "waves", true),
            (f(&["volume"], &[]), "BTC/USDT", "waves", false),
            (f(&["volume", "waves"], &[]), "BTC/USDT", "waves", true),
            (f(&[], &["BTCUSDT"]), "BTC/USDT", "waves", true),
            (f(&[], &["btc_usdt"]), "BTC/USDT", "waves", true),
            (f(&[], &["ETH/USDT"]), "BTC/USDT", "waves", false),
            (f(&["waves"], &["ETH/USDT"]), "ETH/USDT", "volume", false),
        ];
        for (filter, symbol, detector, want) in cases {
            assert_eq!(filter.allows(symbol, detector), want, "{filter:?} {symbol} {detector}");
        }
    }

    fn volume_signal(instrument: u32, ts: Nanos) -> Signal {
        Signal {
            seq: ts,
            ts,
            exchange: Exchange::Binance,
            instrument: InstrumentId(instrument),
            detector: "volume",
            params: "timeframe=10s".into(),
            body: SignalBody::Volume { bucket_start: ts, volume: 5.0, baseline: 1.0, ratio: 5.0, quote_volume: 1.0 },
        }
    }

    #[test]
    fn pipeline_counts_every_decision() {
        let mut symbols = SymbolTable::new();
        symbols.intern(&Instrument::new(Exchange::Binance, "BTC", "USDT", "BTCUSDT"));
        symbols.intern(&Instrument::new(Exchange::Binance, "ETH", "USDT", "ETHUSDT"));
        let filter = Filter { detectors: vec![], symbols: vec!["BTCUSDT".into()] };
        let mut p = Pipeline::new(filter, Duration::from_secs(60));
        let s = 1_000_000_000;
        let mut admitted = Vec::new();
        // 1 s alerts; 2 s is in its cooldown; ETH is filtered out; 70 and 71 s are muted (and
        // muted signals do not start a cooldown); 140 s alerts.
        for (instrument, ts) in [(0, s), (0, 2 * s), (1, 3 * s), (0, 70 * s), (0, 71 * s), (0, 140 * s)] {
            let alert = p.admit(&volume_signal(instrument, ts), &symbols, |_, t| (65 * s..75 * s).contains(&t));
            admitted.extend(alert.map(|a| a.ts / s));
        }
        assert_eq!(admitted, vec![1, 140]);
        assert_eq!(p.counts, PipelineCounts { signals: 6, filtered: 1, muted: 2, suppressed: 1, alerts: 2 });
    }
}
