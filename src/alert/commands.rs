//! Bot commands in `live` mode: `/status`, `/mute SYMBOL [minutes]`, `/unmute SYMBOL`,
//! `/top`, `/help`.
//!
//! It owns parsing and answering, in [`parse`] and [`handle`]: pure functions of the text, the
//! sender's chat, the time and a [`BotState`], tested without a network. [`Poller`] is the
//! thin loop around them (getUpdates long polling with offsets). Only the configured chat
//! may command; anything else is ignored and logged by chat id. It must not reply anywhere
//! but the configured chat, and must not stall the engine: the engine side only `try_lock`s
//! or briefly locks [`BotState`], and replies go through the Telegram queue like alerts.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::format::{escape, number};
use super::queue::{Queue, QueueHandle, TargetSummary};
use super::telegram::Telegram;
use super::{Alert, SendError, normalize_symbol};
use crate::engine::SignalBody;
use crate::exchange::backoff::Backoff;
use crate::model::time::format_utc;
use crate::model::{Exchange, InstrumentId, NANOS_PER_SEC, Nanos, SymbolTable};

/// `/mute SYMBOL` without minutes.
pub const DEFAULT_MUTE_MINUTES: u64 = 60;
/// The longest mute: a week.
pub const MAX_MUTE_MINUTES: u64 = 7 * 24 * 60;
/// How far back `/top` looks, in event time.
pub const TOP_WINDOW_NS: Nanos = 15 * 60 * NANOS_PER_SEC;
/// Entries per detector in `/top`.
const TOP_PER_DETECTOR: usize = 5;

/// Wall-clock ns since the epoch, for uptime and mute expiry (live event time tracks it).
pub fn wall_clock_ns() -> Nanos {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as Nanos)
}

/// What the bot knows about the live run.
#[derive(Debug, Clone, Default)]
pub struct BotState {
    started_ns: Nanos,
    records: u64,
    last_event_ts: Nanos,
    /// `exchange SYMBOL kind` → records.
    streams: BTreeMap<String, u64>,
    last_signal: Option<Alert>,
    /// The latest signal per (exchange, symbol, detector), for `/top`.
    latest: BTreeMap<(Exchange, String, String), Alert>,
    /// Normalized symbol → (as the user typed it, muted until ns).
    mutes: BTreeMap<String, (String, Nanos)>,
}

impl BotState {
    pub fn new(started_ns: Nanos) -> BotState {
        BotState { started_ns, ..BotState::default() }
    }

    /// Takes the engine side's record counts.
    pub fn update_streams(
        &mut self,
        records: u64,
        last_event_ts: Nanos,
        streams: &BTreeMap<(Exchange, InstrumentId, &'static str), u64>,
        symbols: &SymbolTable,
    ) {
        self.records = records;
        self.last_event_ts = self.last_event_ts.max(last_event_ts);
        self.streams.clear();
        for ((exchange, instrument, kind), n) in streams {
            let symbol = symbols.get(*instrument).map_or("-", |i| i.symbol.as_str());
            *self.streams.entry(format!("{exchange} {symbol} {kind}")).or_default() += n;
        }
    }

    /// Notes a signal (every one, alerted or not).
    pub fn observe(&mut self, alert: &Alert) {
        self.last_event_ts = self.last_event_ts.max(alert.ts);
        self.latest.insert((alert.exchange, alert.symbol.clone(), alert.detector.clone()), alert.clone());
        self.last_signal = Some(alert.clone());
    }

    /// Whether alerts for `symbol` at event time `ts` are muted.
    pub fn is_muted(&self, symbol: &str, ts: Nanos) -> bool {
        self.mutes.get(&normalize_symbol(symbol)).is_some_and(|(_, until)| ts < *until)
    }
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Status,
    Mute { symbol: String, minutes: u64 },
    Unmute { symbol: String },
    Top,
    Help,
}

/// Parses a message. `None`: not a command (plain chat text, ignored without a reply).
/// `Some(Err(usage))`: a command used wrongly, answered with the usage.
pub fn parse(text: &str) -> Option<Result<Command, String>> {
    let text = text.trim();
    let rest = text.strip_prefix('/')?;
    let mut words = rest.split_whitespace();
    let head = words.next().unwrap_or("");
    // In groups Telegram appends the bot's name: /status@tapedeck_bot.
    let name = head.split('@').next().unwrap_or("").to_ascii_lowercase();
    let args: Vec<&str> = words.collect();
    let symbol_arg = |usage: &str| -> Result<String, String> {
        match args.first() {
            Some(s) if !normalize_symbol(s).is_empty() => Ok(s.to_string()),
            _ => Err(format!("usage: {usage}")),
        }
    };
    let command = match (name.as_str(), args.len()) {
        ("status", 0) => Ok(Command::Status),
        ("top", 0) => Ok(Command::Top),
        ("help" | "start", _) => Ok(Command::Help),
        ("mute", 1 | 2) => symbol_arg("/mute SYMBOL [minutes]").and_then(|symbol| {
            let minutes = match args.get(1) {
                None => DEFAULT_MUTE_MINUTES,
                Some(m) => m
                    .parse::<u64>()
                    .ok()
                    .filter(|m| (1..=MAX_MUTE_MINUTES).contains(m))
                    .ok_or_else(|| format!("minutes must be a whole number from 1 to {MAX_MUTE_MINUTES}"))?,
            };
            Ok(Command::Mute { symbol, minutes })
        }),
        ("mute", _) => Err("usage: /mute SYMBOL [minutes]".to_string()),
        ("unmute", 1) => symbol_arg("/unmute SYMBOL").map(|symbol| Command::Unmute { symbol }),
        ("unmute", _) => Err("usage: /unmute SYMBOL".to_string()),
        ("status" | "top", _) => Err(format!("/{name} takes no arguments")),
        _ => Err(format!("unknown command /{name}; try /help")),
    };
    Some(command)
}

/// What to do with one incoming message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not a command: nothing to say.
    Ignored,
    /// From a chat that may not command: ignored, and the caller logs the chat id.
    Foreign { chat_id: i64 },
    /// HTML to send to the configured chat.
    Reply(String),
}

const HELP: &str = "<b>tapedeck bot</b>\n/status — uptime, streams, records, last signal, alert counts\n\
/mute SYMBOL [minutes] — no alerts for SYMBOL (default 60 minutes)\n/unmute SYMBOL\n\
/top — the strongest recent anomalies";

/// Answers `text` from `chat_id` at wall time `now`. Only `allowed_chat` may command.
pub fn handle(
    chat_id: i64,
    text: &str,
    allowed_chat: i64,
    now: Nanos,
    state: &mut BotState,
    targets: &[TargetSummary],
) -> Outcome {
    if chat_id != allowed_chat {
        return Outcome::Foreign { chat_id };
    }
    let command = match parse(text) {
        None => return Outcome::Ignored,
        Some(Err(usage)) => return Outcome::Reply(escape(&usage)),
        Some(Ok(c)) => c,
    };
    Outcome::Reply(match command {
        Command::Help => HELP.to_string(),
        Command::Status => status(now, state, targets),
        Command::Top => top(state),
        Command::Mute { symbol, minutes } => {
            let until = now.saturating_add(minutes * 60 * NANOS_PER_SEC);
            state.mutes.insert(normalize_symbol(&symbol), (symbol.clone(), until));
            format!("muted <b>{}</b> for {minutes} min (until {})", escape(&symbol), format_utc(until))
        }
        Command::Unmute { symbol } => match state.mutes.remove(&normalize_symbol(&symbol)) {
            Some((typed, _)) => format!("unmuted <b>{}</b>", escape(&typed)),
            None => format!("<b>{}</b> was not muted", escape(&symbol)),
        },
    })
}

fn duration_text(ns: Nanos) -> String {
    let s = ns / NANOS_PER_SEC;
    let (d, h, m, s) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    if d > 0 { format!("{d}d {h:02}h {m:02}m") } else { format!("{h}h {m:02}m {s:02}s") }
}

/// `binance BTC/USDT volume ×9.07`: an alert's key number in one phrase, plain text.
pub fn headline(alert: &Alert) -> String {
    let what = match &alert.body {
        SignalBody::Wave { dir, change_pct, .. } => format!("wave {dir} {change_pct:+.3}%"),
        SignalBody::Volatility { regime, ratio, .. } => format!("{regime} ×{ratio:.2}"),
        SignalBody::Volume { ratio, volume, .. } => format!("×{ratio:.2} (volume {})", number(*volume)),
        SignalBody::Custom(_) => "signal".to_string(),
    };
    format!("{} {} {} {what}", alert.exchange, alert.symbol, alert.detector)
}

fn status(now: Nanos, state: &BotState, targets: &[TargetSummary]) -> String {
    let mut out = format!(
        "<b>tapedeck live</b>\nuptime {}\nrecords {}",
        duration_text(now.saturating_sub(state.started_ns)),
        state.records
    );
    if state.last_event_ts > 0 {
        let _ = write!(out, " (last event {})", format_utc(state.last_event_ts));
    }
    out.push_str("\nstreams:");
    if state.streams.is_empty() {
        out.push_str(" none yet");
    }
    for (stream, n) in &state.streams {
        let _ = write!(out, "\n  {} {n}", escape(stream));
    }
    match &state.last_signal {
        Some(a) => {
            let _ = write!(out, "\nlast signal: {} at {}", escape(&headline(a)), format_utc(a.ts));
        }
        None => out.push_str("\nlast signal: none yet"),
    }
    for t in targets {
        let _ = write!(
            out,
            "\nalerts to {}: {} sent, {} digests, {} coalesced, {} dropped",
            escape(&t.target),
            t.sent,
            t.digests,
            t.coalesced,
            t.dropped
        );
    }
    let mutes: Vec<String> = state
        .mutes
        .values()
        .filter(|(_, until)| *until > now)
        .map(|(typed, until)| format!("{} until {}", escape(typed), format_utc(*until)))
        .collect();
    if !mutes.is_empty() {
        let _ = write!(out, "\nmuted: {}", mutes.join(", "));
    }
    out
}

/// The strongest signal per stream over the last [`TOP_WINDOW_NS`] of event time, per
/// detector: volume and volatility by ratio, waves by the size of the move.
fn top(state: &BotState) -> String {
    let since = state.last_event_ts.saturating_sub(TOP_WINDOW_NS);
    let mut groups: BTreeMap<&str, Vec<(f64, &Alert)>> = BTreeMap::new();
    for alert in state.latest.values().filter(|a| a.ts >= since) {
        let score = match &alert.body {
            SignalBody::Volume { ratio, .. } | SignalBody::Volatility { ratio, .. } => *ratio,
            SignalBody::Wave { change_pct, .. } => change_pct.abs(),
            SignalBody::Custom(_) => continue,
        };
        groups.entry(alert.detector.as_str()).or_default().push((score, alert));
    }
    if groups.is_empty() {
        return "no anomalies in the last 15 minutes".to_string();
    }
    let mut out = "<b>top anomalies</b> (last 15 min of event time)".to_string();
    // Volume first: the question `/top` is most often asked about.
    let order = |d: &str| match d {
        "volume" => 0,
        "volatility" => 1,
        "waves" => 2,
        _ => 3,
    };
    let mut names: Vec<&str> = groups.keys().copied().collect();
    names.sort_by_key(|d| (order(d), *d));
    for name in names {
        let mut rows = groups.remove(name).unwrap_or_default();
        rows.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.symbol.cmp(&b.1.symbol)));
        let _ = write!(out, "\n<b>{}</b>", escape(name));
        for (i, (_, alert)) in rows.iter().take(TOP_PER_DETECTOR).enumerate() {
            let _ = write!(out, "\n{}. {} at {}", i + 1, escape(&headline(alert)), format_utc(alert.ts));
        }
    }
    out
}

/// How long one getUpdates call waits for messages. Under teloxide's 17 s client timeout.
pub const POLL_WAIT: Duration = Duration::from_secs(10);

/// The getUpdates loop: fetch, [`handle`], queue replies, advance the offset.
pub struct Poller {
    pub telegram: Arc<Telegram>,
    pub chat_id: i64,
    pub state: Arc<Mutex<BotState>>,
    pub replies: QueueHandle,
    /// Every target's queue, for `/status`.
    pub queues: Vec<Arc<Queue>>,
}

impl Poller {
    /// Polls until `stop` turns true.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        self.run_with(stop, POLL_WAIT).await;
    }

    /// [`Poller::run`] with a chosen long-poll wait (tests).
    pub async fn run_with(self, mut stop: watch::Receiver<bool>, wait: Duration) {
        let mut offset: Option<i32> = None;
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60), wall_clock_ns() | 1);
        loop {
            if *stop.borrow() {
                return;
            }
            let result = tokio::select! {
                r = self.telegram.get_updates(offset, wait) => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            let pause = match result {
                Ok(updates) => {
                    backoff.reset();
                    for update in updates {
                        offset = Some(update.update_id.saturating_add(1) as i32);
                        self.answer(update.chat_id, update.text.as_deref());
                    }
                    continue;
                }
                Err(SendError::RetryAfter(d)) => d,
                Err(e) => {
                    let d = backoff.next_delay();
                    tracing::warn!("bot commands: getUpdates failed, retrying in {d:?}: {e}");
                    d
                }
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    fn answer(&self, chat_id: Option<i64>, text: Option<&str>) {
        let (Some(chat_id), Some(text)) = (chat_id, text) else { return };
        let targets: Vec<TargetSummary> = self.queues.iter().map(|q| q.summary()).collect();
        let outcome = {
            let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            handle(chat_id, text, self.chat_id, wall_clock_ns(), &mut state, &targets)
        };
        match outcome {
            Outcome::Ignored => {}
            Outcome::Foreign { chat_id } => {
                tracing::warn!(
                    "bot commands: ignoring a message from chat {chat_id}: only the configured chat may command"
                )
            }
            Outcome::Reply(html) => self.replies.reply(html),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        let mute = |s: &str, m| Some(Ok(Command::Mute { symbol: s.into(), minutes: m }));
        let usage = |u: &str| Some(Err(u.to_string()));
        let cases: [(&str, Option<Result<Command, String>>); 20] = [
            ("/status", Some(Ok(Command::Status))),
            ("  /status  ", Some(Ok(Command::Status))),
            ("/status@tapedeck_bot", Some(Ok(Command::Status))),
            ("/STATUS", Some(Ok(Command::Status))),
            ("/top", Some(Ok(Command::Top))),
            ("/help", Some(Ok(Command::Help))),
            ("/start", Some(Ok(Command::Help))),
            ("/mute BTCUSDT", mute("BTCUSDT", 60)),
            ("/mute BTC/USDT 15", mute("BTC/USDT", 15)),
            ("/mute@bot eth_usdt 10080", mute("eth_usdt", 10080)),
            ("/mute", usage("usage: /mute SYMBOL [minutes]")),
            ("/mute BTCUSDT 0", usage("minutes must be a whole number from 1 to 10080")),
            ("/mute BTCUSDT ten", usage("minutes must be a whole number from 1 to 10080")),
            ("/mute BTCUSDT 10 20", usage("usage: /mute SYMBOL [minutes]")),
            ("/mute /// 5", usage("usage: /mute SYMBOL [minutes]")),
            ("/unmute BTCUSDT", Some(Ok(Command::Unmute { symbol: "BTCUSDT".into() }))),
            ("/unmute", usage("usage: /unmute SYMBOL")),
            ("/status now", usage("/status takes no arguments")),
            ("/launch", usage("unknown command /launch; try /help")),
            ("hello there", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), want, "{text:?}");
        }
    }

    fn volume(symbol: &str, ts: Nanos, ratio: f64) -> Alert {
        Alert {
            seq: 1,
            ts,
            exchange: Exchange::Binance,
            symbol: symbol.into(),
            detector: "volume".into(),
            params: String::new(),
            body: SignalBody::Volume { bucket_start: ts, volume: 3.0, baseline: 1.0, ratio, quote_volume: 0.0 },
            json: String::new(),
        }
    }

    const S: Nanos = NANOS_PER_SEC;
    const T0: Nanos = 1_723_161_480 * S;
    const ME: i64 = -1001;

    #[test]
    fn handling() {
        let mut state = BotState::new(T0 - 3725 * S);
        state.observe(&volume("BTC/USDT", T0 - 10 * S, 9.07));
        let targets = [TargetSummary {
            target: "telegram".into(),
            alerts: 3,
            sent: 2,
            digests: 1,
            coalesced: 4,
            dropped: 0,
            retries: 1,
            failed: 0,
        }];
        // (chat, text, what the outcome must be or contain)
        let cases: [(i64, &str, &str); 9] = [
            (42, "/status", "foreign 42"),
            (42, "/mute BTCUSDT", "foreign 42"),
            (ME, "just chatting", "ignored"),
            (ME, "/status", "uptime 1h 02m 05s"),
            (ME, "/status", "last signal: binance BTC/USDT volume ×9.07 (volume 3)"),
            (ME, "/status", "alerts to telegram: 2 sent, 1 digests, 4 coalesced, 0 dropped"),
            (ME, "/mute BTC/USDT 30", "muted <b>BTC/USDT</b> for 30 min (until 2024-08-09T00:28:00.000Z)"),
            (ME, "/unmute ETHUSDT", "<b>ETHUSDT</b> was not muted"),
            (ME, "/mute", "usage: /mute SYMBOL [minutes]"),
        ];
        for (chat, text, want) in cases {
            let got = match handle(chat, text, ME, T0, &mut state, &targets) {
                Outcome::Foreign { chat_id } => format!("foreign {chat_id}"),
                Outcome::Ignored => "ignored".into(),
                Outcome::Reply(html) => html,
            };
            assert!(got.contains(want), "{text:?} from {chat}: {got:?} lacks {want:?}");
        }
        // The foreign /mute changed nothing; ours did, in event time.
        assert!(state.is_muted("BTCUSDT", T0 + 29 * 60 * S));
        assert!(!state.is_muted("BTC/USDT", T0 + 30 * 60 * S));
        assert!(!state.is_muted("ETH/USDT", T0));
        match handle(ME, "/unmute btc_usdt", ME, T0, &mut state, &targets) {
            Outcome::Reply(html) => assert_eq!(html, "unmuted <b>BTC/USDT</b>"),
            other => panic!("{other:?}"),
        }
        assert!(!state.is_muted("BTCUSDT", T0 + S));
    }

    #[test]
    fn top_ranks_recent_anomalies() {
        let mut state = BotState::new(T0);
        assert_eq!(top(&state), "no anomalies in the last 15 minutes");
        state.observe(&volume("OLD/USDT", T0 - 20 * 60 * S, 50.0)); // outside the window
        state.observe(&volume("ETH/USDT", T0 - 60 * S, 4.0));
        state.observe(&volume("BTC/USDT", T0 - 30 * S, 9.0));
        state.observe(&volume("A<B/USDT", T0 - 5 * S, 6.0));
        let mut wave = volume("BTC/USDT", T0, 0.0);
        wave.detector = "waves".into();
        wave.body = SignalBody::Wave {
            dir: "down",
            start_ts: 0,
            start_price: 2.0,
            end_price: 1.0,
            end_ts: 0,
            change_pct: -0.5,
        };
        state.observe(&wave);
        let text = top(&state);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "<b>top anomalies</b> (last 15 min of event time)");
        assert_eq!(lines[1], "<b>volume</b>");
        assert!(lines[2].starts_with("1. binance BTC/USDT volume ×9.00"), "{}", lines[2]);
        assert!(lines[3].starts_with("2. binance A&lt;B/USDT volume ×6.00"), "{}", lines[3]);
        assert!(lines[4].starts_with("3. binance ETH/USDT volume ×4.00"), "{}", lines[4]);
        assert_eq!(lines[5], "<b>waves</b>");
        assert!(lines[6].starts_with("1. binance BTC/USDT waves wave down -0.500%"), "{}", lines[6]);
        assert!(!text.contains("OLD"));
    }
}
