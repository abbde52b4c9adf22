//! Alerts end to end against the local Bot API (`mock_telegram`): escaping and chat ids,
//! 429 `retry_after`, 5xx retries, bursts that coalesce without blocking the engine, bot
//! commands from foreign chats, the token never leaking from a real `tapedeck replay`, and the
//! `alerts-report` golden.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tapedeck::alert::queue::{Pacing, Retry};
use tapedeck::alert::telegram::Telegram;
use tapedeck::alert::token::BotToken;
use tapedeck::alert::{self, AlertSummary, AlertTap, CommandsSpec, Filter, Service, Settings, TargetSpec};
use tapedeck::engine::{Signal, SignalBody};
use tapedeck::model::{Exchange, Instrument, InstrumentId, Nanos, SymbolTable};

use crate::mock_telegram::{MockTelegram, Reply};
use crate::util::*;

const TOKEN: &str = "5550001234:AAH-test_SECRET-token-0123456789abcdef";
/// The part of the token that is actually secret.
const SECRET: &str = "AAH-test_SECRET-token-0123456789abcdef";
const T0: Nanos = 1_723_161_480_000_000_000;
const MS: Nanos = 1_000_000;

struct Setup {
    chat_id: i64,
    per_chat: Duration,
    capacity: usize,
    commands: bool,
    drain: Duration,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            chat_id: -1_001_234_567_890,
            per_chat: Duration::from_millis(50),
            capacity: 64,
            commands: false,
            drain: Duration::from_secs(60),
        }
    }
}

fn start(mock: &MockTelegram, setup: Setup) -> (AlertTap, Service) {
    let telegram = Arc::new(Telegram::new(BotToken::new(TOKEN), setup.chat_id, Some(&mock.url())).unwrap());
    let target = TargetSpec {
        notifier: telegram.clone(),
        pacing: Pacing::telegram(setup.chat_id, setup.per_chat, 20),
        capacity: setup.capacity,
        retry: Retry { base: Duration::from_millis(50), max: Duration::from_millis(400), attempts: 5 },
    };
    let commands =
        setup.commands.then(|| CommandsSpec { telegram: telegram.clone(), chat_id: setup.chat_id, reply_target: 0 });
    alert::start(Settings {
        filter: Filter::default(),
        cooldown: Duration::ZERO,
        targets: vec![target],
        commands,
        drain: setup.drain,
    })
    .unwrap()
}

/// A symbol table of `n` pairs; the first is `A<B/USDT` so escaping shows.
fn symbols(n: usize) -> SymbolTable {
    let mut table = SymbolTable::new();
    table.intern(&Instrument::new(Exchange::Binance, "A<B", "USDT", "A<BUSDT"));
    for i in 1..n {
        table.intern(&Instrument::new(Exchange::Binance, &format!("C{i}"), "USDT", &format!("C{i}USDT")));
    }
    table
}

fn volume(instrument: u32, ts: Nanos, ratio: f64) -> Signal {
    Signal {
        seq: ts / MS,
        ts,
        exchange: Exchange::Binance,
        instrument: InstrumentId(instrument),
        detector: "volume",
        params: "timeframe=10s,ma=20,k=3,min_quote=0".into(),
        body: SignalBody::Volume { bucket_start: ts, volume: 31.10322, baseline: 3.42845, ratio, quote_volume: 1.0 },
    }
}

fn custom(instrument: u32, ts: Nanos) -> Signal {
    let mut fields = serde_json::Map::new();
    fields.insert("note".into(), "<b>not bold</b> & co".into());
    Signal {
        seq: ts / MS,
        ts,
        exchange: Exchange::Binance,
        instrument: InstrumentId(instrument),
        detector: "my-strategy",
        params: "x=1&y=<2>".into(),
        body: SignalBody::Custom(fields),
    }
}

fn finish(service: Service) -> AlertSummary {
    service.finish().expect("alerts were set up")
}

#[test]
fn messages_arrive_with_the_chat_id_and_escaped_text() {
    let mock = MockTelegram::start();
    let (mut tap, service) = start(&mock, Setup::default());
    let table = symbols(2);
    tap.on_signal(&volume(0, T0, 9.07), &table);
    tap.on_signal(&custom(0, T0 + MS), &table);
    tap.on_signal(&volume(1, T0 + 2 * MS, 4.5), &table);
    drop(tap);
    let summary = finish(service);
    let sends = mock.delivered();
    assert_eq!(sends.len(), 3, "{sends:#?}");
    for send in &sends {
        assert_eq!(send.token, TOKEN);
        assert_eq!(send.method, "SendMessage", "teloxide's spelling");
        assert_eq!(send.body["chat_id"], -1_001_234_567_890i64);
        assert_eq!(send.body["parse_mode"], "HTML");
        assert_eq!(send.body["link_preview_options"]["is_disabled"], true);
    }
    let texts: Vec<&str> = sends.iter().map(|s| s.body["text"].as_str().unwrap()).collect();
    assert_eq!(
        texts[0],
        "<b>A&lt;B/USDT</b> · binance · volume\nvolume <b>31.10322</b>, baseline 3.42845, ratio <b>×9.07</b>\n\
         <i>timeframe=10s,ma=20,k=3,min_quote=0</i>\n2024-08-08T23:58:00.000Z"
    );
    assert_eq!(
        texts[1],
        "<b>A&lt;B/USDT</b> · binance · my-strategy\nnote: <b>&lt;b&gt;not bold&lt;/b&gt; &amp; co</b>\n\
         <i>x=1&amp;y=&lt;2&gt;</i>\n2024-08-08T23:58:00.001Z"
    );
    assert!(texts[2].starts_with("<b>C1/USDT</b> · binance · volume\n"), "{}", texts[2]);
    let t = &summary.targets[0];
    assert_eq!((t.target.as_str(), t.alerts, t.sent, t.dropped, t.failed), ("telegram", 3, 3, 0, 0));
    assert_eq!(summary.pipeline.alerts, 3);
}

#[test]
fn retry_after_is_honoured_and_nothing_is_lost() {
    let mock = MockTelegram::start();
    mock.script(&[Reply::RetryAfter(2)]);
    let (mut tap, service) = start(&mock, Setup::default());
    let table = symbols(2);
    tap.on_signal(&volume(0, T0, 9.0), &table);
    tap.on_signal(&volume(1, T0 + MS, 5.0), &table);
    drop(tap);
    let summary = finish(service);
    let sends = mock.sends();
    assert_eq!(sends.len(), 3, "the 429, its retry, the second alert: {sends:#?}");
    assert_eq!(sends.iter().map(|s| s.status).collect::<Vec<_>>(), vec![429, 200, 200]);
    let waited = sends[1].at.duration_since(sends[0].at);
    assert!(waited >= Duration::from_secs(2), "retried after {waited:?}, before retry_after");
    assert!(waited < Duration::from_secs(5), "retried only after {waited:?}");
    assert_eq!(sends[0].body, sends[1].body, "the same message is sent again");
    assert!(sends[1].body["text"].as_str().unwrap().contains("A&lt;B/USDT"));
    assert!(sends[2].body["text"].as_str().unwrap().contains("C1/USDT"));
    let t = &summary.targets[0];
    assert_eq!((t.sent, t.retries, t.dropped, t.failed), (2, 1, 0, 0));
}

/// teloxide itself waits 10 s after any 5xx before reading the body, so two 500s cost ~20 s.
#[test]
fn a_run_of_500s_is_retried_until_it_succeeds() {
    let mock = MockTelegram::start();
    mock.script(&[Reply::ServerError, Reply::ServerError]);
    let (mut tap, service) = start(&mock, Setup::default());
    tap.on_signal(&volume(0, T0, 9.0), &symbols(1));
    drop(tap);
    let summary = finish(service);
    let sends = mock.sends();
    assert_eq!(sends.iter().map(|s| s.status).collect::<Vec<_>>(), vec![500, 500, 200]);
    assert!(sends.windows(2).all(|w| w[0].body == w[1].body));
    let t = &summary.targets[0];
    assert_eq!((t.sent, t.retries, t.dropped, t.failed), (1, 2, 0, 0));
}

/// Pushes `n` alerts within one second of event time and returns how long the engine side took.
fn push_burst(tap: &mut AlertTap, table: &SymbolTable, n: u32) -> Duration {
    let started = Instant::now();
    for i in 0..n {
        tap.on_signal(&volume(i, T0 + i as Nanos * 10 * MS, 3.0 + i as f64), table);
    }
    started.elapsed()
}

/// Reads the count from a digest's `+N more:`.
fn digest_count(text: &str) -> Option<u64> {
    text.strip_prefix("<b>+")?.split_once(' ')?.0.parse().ok()
}

#[test]
fn a_burst_is_rate_limited_and_never_blocks_the_engine() {
    let table = symbols(100);
    let capacity = 8;
    let per_chat = Duration::from_millis(100);

    // A stalled Bot API: the first message hangs until released.
    let stalled = MockTelegram::start();
    stalled.stall(true);
    let (mut tap, service) = start(&stalled, Setup { capacity, per_chat, ..Setup::default() });
    let took_stalled = push_burst(&mut tap, &table, 100);
    // The engine side returned while the server still holds the first request unanswered.
    let seen = stalled.sends();
    assert!(seen.len() <= 1, "{seen:#?}");
    assert!(seen.iter().all(|s| s.status == 0), "nothing was answered yet: {seen:#?}");
    stalled.stall(false);
    drop(tap);
    let summary = finish(service);

    let sends = stalled.delivered();
    let texts: Vec<&str> = sends.iter().map(|s| s.body["text"].as_str().unwrap()).collect();
    let digests: Vec<u64> = texts.iter().filter_map(|t| digest_count(t)).collect();
    let singles = texts.len() - digests.len();
    assert!(!digests.is_empty(), "a full queue coalesces: {texts:#?}");
    assert!(singles <= capacity + 1, "{singles} single alerts: at most the queue plus the one in flight");
    assert_eq!(singles as u64 + digests.iter().sum::<u64>(), 100, "every alert is delivered once: {texts:#?}");
    for pair in sends.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= per_chat, "messages {gap:?} apart, under the per-chat pacing");
    }
    let t = &summary.targets[0];
    assert_eq!((t.alerts, t.sent, t.digests, t.dropped), (100, texts.len() as u64, digests.len() as u64, 0));
    assert_eq!(t.coalesced, digests.iter().sum::<u64>());

    // The same burst against a server that answers at once takes the engine no longer in
    // kind: both are a hundred non-blocking enqueues. (Timings are printed, not asserted.)
    let fast = MockTelegram::start();
    let (mut tap, service) = start(&fast, Setup { capacity, per_chat, ..Setup::default() });
    let took_fast = push_burst(&mut tap, &table, 100);
    drop(tap);
    finish(service);
    eprintln!(
        "engine side of a 100-alert burst: {took_stalled:?} with a stalled server, {took_fast:?} with a fast one"
    );
}

#[test]
fn commands_from_a_foreign_chat_are_ignored() {
    let me = 424_242;
    let stranger = 999_999;
    let mock = MockTelegram::start();
    mock.push_update(stranger, "/mute ETHUSDT 30");
    mock.push_update(stranger, "/status");
    mock.push_update(me, "/status");
    mock.push_update(me, "/mute A<BUSDT 5");
    let (mut tap, service) = start(&mock, Setup { chat_id: me, commands: true, ..Setup::default() });
    mock.wait_for(Duration::from_secs(15), "two replies", |r| {
        r.iter().filter(|r| r.method.eq_ignore_ascii_case("sendmessage") && r.status == 200).count() >= 2
    });
    // A signal now: A<B/USDT is muted (in event time, which live tracks by the wall clock).
    let now = tapedeck::alert::commands::wall_clock_ns();
    let table = symbols(2);
    tap.on_signal(&volume(0, now, 9.0), &table);
    tap.on_signal(&volume(1, now, 9.0), &table);
    drop(tap);
    let summary = finish(service);

    let sends = mock.delivered();
    assert!(sends.iter().all(|s| s.body["chat_id"] == me), "replies and alerts only go to the configured chat");
    let texts: Vec<&str> = sends.iter().map(|s| s.body["text"].as_str().unwrap()).collect();
    assert_eq!(texts.len(), 3, "{texts:#?}");
    assert!(texts[0].starts_with("<b>tapedeck live</b>\nuptime "), "{}", texts[0]);
    assert!(texts[1].starts_with("muted <b>A&lt;BUSDT</b> for 5 min"), "{}", texts[1]);
    assert!(texts[2].starts_with("<b>C1/USDT</b>"), "the unmuted symbol alerts: {}", texts[2]);
    assert_eq!(summary.pipeline.muted, 1);
    assert_eq!(summary.pipeline.alerts, 1, "the stranger's /mute ETHUSDT changed nothing");
    // Offsets advance past what was read: no update is handled twice.
    let offsets: Vec<i64> = mock
        .requests()
        .iter()
        .filter(|r| r.method.eq_ignore_ascii_case("getupdates"))
        .filter_map(|r| r.body["offset"].as_i64())
        .collect();
    assert!(offsets.contains(&500_004), "the offset after the last update: {offsets:?}");
}

fn tree_contains(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            hits.extend(tree_contains(&path, needle));
        } else if std::fs::read(&path).unwrap().windows(needle.len()).any(|w| w == needle) {
            hits.push(path.display().to_string());
        }
    }
    hits
}

/// A real `tapedeck replay --alert telegram --send-alerts` through a network error (whose
/// reqwest text quotes the URL with the token), a 401, and debug logging: the token shows up
/// nowhere it writes.
#[test]
fn the_token_never_leaks_from_a_replay() {
    let mock = MockTelegram::start();
    mock.script(&[Reply::Hangup, Reply::Ok, Reply::Unauthorized]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tapedeck.toml");
    std::fs::write(&config, "[telegram]\nper_chat_interval = \"50ms\"\n").unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let p = |name: &str| out_dir.join(name).display().to_string();
    let (alerts_file, signals_file, results) = (p("alerts.jsonl"), p("signals.jsonl"), p("results"));
    let output = tapedeck()
        .args(["replay", SAMPLE, "--detect", "waves:amplitude=0.05,timeframe=10s"])
        .args(["--detect", "volume:timeframe=10s,ma=20,k=3", "--config", config.to_str().unwrap()])
        .args(["--alert", "telegram", "--send-alerts", "--alert-cooldown", "0", "--telegram-api-url", &mock.url()])
        .args(["--alert", &format!("file:{alerts_file}"), "--signals-out", &signals_file, "--results", &results])
        .env("TAPEDECK_TELEGRAM_TOKEN", TOKEN)
        .env("TAPEDECK_TELEGRAM_CHAT_ID", "-1001234567890")
        .env("TAPEDECK_LOG", "debug")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // The run really went through the failure paths, with the token in its URLs.
    let sends = mock.sends();
    assert!(sends.iter().all(|s| s.token == TOKEN));
    assert_eq!(sends.iter().filter(|s| s.status == 200).count(), 7, "8 alerts, one refused with 401");
    assert!(stderr.contains("send failed, retrying"), "the network error is logged: {stderr}");
    assert!(stderr.contains("token:redacted/SendMessage)"), "with its URL, scrubbed: {stderr}");
    assert!(
        stderr.contains("telegram: 8 alerts, 7 messages sent (0 digests), 0 coalesced, 1 dropped, 1 retries, 1 failed"),
        "{stderr}"
    );
    for secret in [TOKEN, SECRET] {
        assert!(!stdout.contains(secret), "stdout leaks the token");
        assert!(!stderr.contains(secret), "stderr leaks the token: {stderr}");
        let hits = tree_contains(&out_dir, secret.as_bytes());
        assert!(hits.is_empty(), "files leak the token: {hits:?}");
    }
    assert_eq!(std::fs::read_to_string(&alerts_file).unwrap().lines().count(), 8);
}

#[test]
fn replay_prints_telegram_alerts_without_sending_them() {
    let mock = MockTelegram::start();
    let output = tapedeck()
        .args(["replay", SAMPLE, "--quiet", "--detect", "volume:timeframe=10s,ma=20,k=3"])
        .args(["--alert", "telegram", "--telegram-api-url", &mock.url()])
        .env("TAPEDECK_TELEGRAM_TOKEN", TOKEN)
        .env("TAPEDECK_TELEGRAM_CHAT_ID", "42")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(mock.requests().is_empty(), "nothing is sent without --send-alerts");
    assert!(
        stderr.contains(
            "--- telegram message, not sent (chat 42; --send-alerts sends it) ---\n<b>BTC/USDT</b> · binance · volume"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("alerts: 1 of 4 signals (0 filtered out, 0 muted, 3 within the cooldown)"), "{stderr}");
    assert!(!stderr.contains(SECRET));
}

#[test]
fn alerts_report_matches_golden() {
    let args = [
        "alerts-report",
        SAMPLE,
        "--detect",
        "waves:amplitude=0.05,timeframe=10s",
        "--detect",
        "volume:timeframe=10s,ma=20,k=3",
    ];
    let out = tapedeck().args(args).env_remove("TAPEDECK_TELEGRAM_CHAT_ID").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    check_golden("alerts_report_sample.txt", &String::from_utf8(out.stdout).unwrap());

    // Without the cooldown, as a group: every signal alerts; two share an event time, so one
    // waits its one-second turn.
    let out = tapedeck()
        .args(args)
        .args(["--alert-cooldown", "0", "--chat", "group", "--json"])
        .env_remove("TAPEDECK_TELEGRAM_CHAT_ID")
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["signals"].as_u64(), v["alerts"].as_u64(), v["suppressed"].as_u64()), (Some(8), Some(8), Some(0)));
    assert_eq!(v["pacing"]["chat"], "group");
    assert_eq!(v["pacing"]["per_minute"], 20);
    assert_eq!(v["per_day"]["2024-08-08"], 8);
    assert_eq!(v["per_symbol"][0]["per_detector"]["waves"], 4);
    assert_eq!(v["largest_burst"]["alerts"], 6);
    assert_eq!(v["largest_burst"]["window_start"], "2024-08-08T23:58:00.135Z");
    assert_eq!(v["queue"]["messages"], 8);
    assert_eq!(v["queue"]["delayed"], 1);
    assert_eq!(v["queue"]["delay_ms"]["max"], 1000.0);
}

/// `tapedeck live` against a local Binance and the local Bot API: alerts go out while the
/// capture runs, `/status` from the configured chat is answered, a stranger is ignored and
/// logged, and the summary counts what was sent.
#[test]
fn live_sends_alerts_and_answers_only_its_chat() {
    let me = -1_009_876_543_210i64;
    let stranger = 31_337;
    let binance = crate::mock_binance::start(crate::mock_binance::Options::default());
    let mock = MockTelegram::start();
    mock.push_update(stranger, "/status");
    mock.push_update(me, "/status");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tapedeck.toml");
    std::fs::write(&config, "[telegram]\nper_chat_interval = \"50ms\"\ncooldown = \"0\"\n").unwrap();
    let (ws, rest) = (binance.ws_url(), binance.rest_url());
    let output = tapedeck()
        .args(["live", "--exchange", "binance", "--symbols", "BTCUSDT", "--ws-url", &ws, "--rest-url", &rest])
        .args(["--duration", "4s", "--quiet", "--json", "--config", config.to_str().unwrap()])
        .args(["--detect", "waves:amplitude=0.05,timeframe=10s", "--detect", "volume:timeframe=10s,ma=20,k=3"])
        .args(["--alert", "telegram", "--telegram-api-url", &mock.url()])
        .env("TAPEDECK_TELEGRAM_TOKEN", TOKEN)
        .env("TAPEDECK_TELEGRAM_CHAT_ID", me.to_string())
        .env("TAPEDECK_LOG", "info")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let signals = summary["signals"].as_u64().unwrap();
    assert!(signals >= 8, "the capture yields signals: {summary}");
    let alerts = &summary["alerts"];
    assert_eq!(alerts["alerts"].as_u64(), Some(signals), "no cooldown: every signal alerts");
    assert_eq!(alerts["targets"][0]["sent"].as_u64(), Some(signals + 1), "the alerts and one reply: {alerts}");
    assert_eq!(alerts["targets"][0]["dropped"], 0);

    let sends = mock.delivered();
    assert!(sends.iter().all(|s| s.body["chat_id"] == me));
    let replies: Vec<&str> = sends
        .iter()
        .filter_map(|s| s.body["text"].as_str())
        .filter(|t| t.starts_with("<b>tapedeck live</b>"))
        .collect();
    assert_eq!(replies.len(), 1, "one /status answered: {sends:#?}");
    assert!(stderr.contains(&format!("ignoring a message from chat {stranger}")), "{stderr}");
    assert!(mock.requests().iter().any(|r| r.method.eq_ignore_ascii_case("getupdates")));
    for secret in [TOKEN, SECRET] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "the token leaks");
    }
}

#[test]
fn a_config_holding_a_token_is_warned_about_when_others_can_read_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tapedeck.toml");
    std::fs::write(&config, "[telegram]\ntoken = \"123456:SECRET-token-value\"\nchat_id = 42\n").unwrap();
    let report = |mode: u32| {
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(mode)).unwrap();
        crate::util::run(&[
            "alerts-report",
            crate::util::SAMPLE,
            "--detect",
            "volume:timeframe=10s",
            "--config",
            config.to_str().unwrap(),
        ])
    };
    let open = report(0o644);
    assert_eq!(open.code, 0, "{}", open.stderr);
    assert!(
        open.stderr.contains("readable by other users (mode 644)") && open.stderr.contains("chmod 600"),
        "{}",
        open.stderr
    );
    assert!(!open.stderr.contains("SECRET") && !open.stdout.contains("SECRET"));
    let private = report(0o600);
    assert_eq!(private.code, 0, "{}", private.stderr);
    assert!(!private.stderr.contains("readable by other users"), "{}", private.stderr);
}
