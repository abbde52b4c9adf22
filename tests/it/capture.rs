//! Capture against a local Binance serving the real capture: exact counts, reconnects,
//! garbage frames, and live == replay.

use serde_json::Value;

use crate::mock_binance::{self, Options};
use crate::util::*;

fn record(mock: &mock_binance::MockBinance, out: &str, extra: &[&str]) -> Value {
    let ws = mock.ws_url();
    let rest = mock.rest_url();
    let mut args = vec![
        "record",
        "--exchange",
        "binance",
        "--symbols",
        "BTCUSDT",
        "--streams",
        "trade,quote,depth",
        "--ws-url",
        &ws,
        "--rest-url",
        &rest,
        "--out",
        out,
        "--duration",
        "4s",
        "--json",
    ];
    args.extend_from_slice(extra);
    let run = run(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

fn inspect(dir: &str) -> Value {
    let out = run(&["inspect", dir, "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap()
}

fn counts(summary: &Value) -> (u64, u64, u64, u64) {
    let c = &summary["instruments"].as_array().unwrap().iter().find(|i| i["symbol"] == "BTC/USDT").unwrap()["counts"];
    let get = |k: &str| c[k].as_u64().unwrap_or(0);
    (get("trade"), get("quote"), get("book_delta"), get("book_snapshot"))
}

#[test]
fn records_every_frame_of_the_real_capture() {
    let mock = mock_binance::start(Options::default());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec");
    let summary = record(&mock, out.to_str().unwrap(), &["--keep-raw"]);
    assert_eq!(summary["exchanges"]["binance"]["parse_errors"], 0);
    let info = inspect(out.to_str().unwrap());
    assert_eq!(counts(&info), (9757, 28_040, 3451, 1));
    assert_eq!(info["raw_frames"], 9757 + 28_040 + 3451, "--keep-raw keeps every frame");
    let raw = tapedeck::log::Reader::open(&out).unwrap().raw_frames().unwrap();
    let (frames, _) = mock_binance::fixture();
    assert!(raw.iter().map(|f| f.text.as_str()).eq(frames.iter().map(String::as_str)), "byte for byte, in order");
    let status = &info["status"];
    assert_eq!((status["connected"].as_u64(), status["subscribed"].as_u64()), (Some(1), Some(1)));
    assert_eq!(status["gaps"], 0, "the capture is gap-free");
    // Exact values survive: the first trade of the capture.
    let export = run(&["export", out.to_str().unwrap(), "--kind", "trade", "--limit", "1"]);
    let first: Value = serde_json::from_str(export.stdout.lines().next().unwrap()).unwrap();
    assert_eq!((first["price"].as_str(), first["qty"].as_str()), (Some("61837.63000000"), Some("0.02000000")));
    assert_eq!(first["ts_exchange"], 1_723_161_255_342_000_000u64);
}

#[test]
fn reconnects_and_loses_nothing_sent_after_the_reconnect() {
    let mock = mock_binance::start(Options { drop_after: Some(10_000), ..Options::default() });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec");
    let summary = record(&mock, out.to_str().unwrap(), &[]);
    let binance = &summary["exchanges"]["binance"];
    assert_eq!(binance["connects"], 2, "{summary}");
    let info = inspect(out.to_str().unwrap());
    assert_eq!(counts(&info), (9757, 28_040, 3451, 2), "every frame arrives; a second snapshot resyncs the book");
    assert_eq!(info["status"]["connected"], 2);
    assert_eq!(info["status"]["resyncs"], 1);
    assert!(info["status"]["disconnected"].as_u64().unwrap() >= 2, "the drop and the final shutdown");
}

#[test]
fn garbage_frames_are_counted_and_capture_goes_on() {
    let mock = mock_binance::start(Options { garbage_every: Some(1000), ..Options::default() });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec");
    let summary = record(&mock, out.to_str().unwrap(), &[]);
    assert_eq!(summary["exchanges"]["binance"]["parse_errors"], 41, "{summary}");
    let info = inspect(out.to_str().unwrap());
    assert_eq!(counts(&info), (9757, 28_040, 3451, 1));
    assert_eq!(info["status"]["parse_errors"], 41, "every failure is in the log as a ParseError count");
}

/// The proof of the one-code-path claim: live signals equal a replay of what live recorded.
#[test]
fn live_signals_equal_replay_of_the_live_recording() {
    let mock = mock_binance::start(Options::default());
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    let live_out = dir.path().join("live.jsonl");
    let replay_out = dir.path().join("replay.jsonl");
    let detect = [
        "--detect",
        "waves:amplitude=0.05,timeframe=10s",
        "--detect",
        "volume:timeframe=10s,ma=20,k=3",
        "--detect",
        "volatility:timeframe=10s,short=5,long=20",
    ];
    let (ws, rest) = (mock.ws_url(), mock.rest_url());
    let mut args = vec![
        "live",
        "--exchange",
        "binance",
        "--symbols",
        "BTCUSDT",
        "--ws-url",
        &ws,
        "--rest-url",
        &rest,
        "--duration",
        "4s",
        "--record",
        rec.to_str().unwrap(),
        "--signals-out",
        live_out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(&detect);
    let live = run(&args);
    assert_eq!(live.code, 0, "{}", live.stderr);
    let mut args = vec!["replay", rec.to_str().unwrap(), "--quiet", "--signals-out", replay_out.to_str().unwrap()];
    args.extend_from_slice(&detect);
    let replay = run(&args);
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    let live_signals = std::fs::read_to_string(&live_out).unwrap();
    let replay_signals = std::fs::read_to_string(&replay_out).unwrap();
    assert!(live_signals.lines().count() >= 8, "the capture yields signals:\n{live_signals}");
    assert_eq!(live_signals, replay_signals);
    let digest = |s: &str| s.lines().find_map(|l| l.strip_prefix("digest: ")).map(str::to_string);
    assert_eq!(digest(&live.stderr), digest(&replay.stderr));
}

#[test]
fn unknown_symbols_and_bad_streams_are_refused_clearly() {
    let mock = mock_binance::start(Options::default());
    let (ws, rest) = (mock.ws_url(), mock.rest_url());
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    let rec = rec.to_str().unwrap();
    let out = run(&[
        "record",
        "--exchange",
        "binance",
        "--symbols",
        "NOPEUSDT",
        "--ws-url",
        &ws,
        "--rest-url",
        &rest,
        "--out",
        rec,
    ]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("unknown symbol NOPEUSDT"), "{}", out.stderr);
    assert!(!std::path::Path::new(rec).exists(), "nothing is created when the symbols are wrong");
    let out = run(&["record", "--exchange", "binance", "--symbols", "BTCUSDT", "--streams", "trades", "--out", rec]);
    assert_eq!(out.code, 2);
    assert_eq!(out.stderr.lines().count(), 1);
    assert!(out.stderr.contains("--streams"), "{}", out.stderr);
}

#[test]
fn a_config_file_declares_the_exchanges() {
    let mock = mock_binance::start(Options::default());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("capture.toml");
    std::fs::write(
        &config,
        format!(
            "[[exchange]]\nname = \"binance\"\nsymbols = [\"BTC/USDT\"]\nstreams = [\"trade\"]\nws_url = \"{}\"\nrest_url = \"{}\"\n",
            mock.ws_url(),
            mock.rest_url()
        ),
    )
    .unwrap();
    let out = dir.path().join("rec");
    let run =
        run(&["record", "--config", config.to_str().unwrap(), "--out", out.to_str().unwrap(), "--duration", "3s"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(counts(&inspect(out.to_str().unwrap())), (9757, 0, 0, 0), "only the configured trade stream");
}

/// Load check, not run in CI (`scripts/burst.sh` runs it): 100k trade messages per second
/// for 10 s over loopback, recorded with zero loss.
#[test]
#[ignore = "load check; run with scripts/burst.sh"]
fn burst_of_100k_messages_per_second_loses_nothing() {
    let rate: u64 = std::env::var("BURST_RATE").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let secs: u64 = std::env::var("BURST_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let total = (rate * secs) as usize;
    let mock = mock_binance::start(Options { burst: Some((rate, total)), ..Options::default() });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec");
    let duration = format!("{}s", secs + 5);
    let started = std::time::Instant::now();
    let (ws, rest) = (mock.ws_url(), mock.rest_url());
    let run = run(&[
        "record",
        "--exchange",
        "binance",
        "--symbols",
        "BTCUSDT",
        "--streams",
        "trade",
        "--ws-url",
        &ws,
        "--rest-url",
        &rest,
        "--out",
        out.to_str().unwrap(),
        "--duration",
        &duration,
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary: Value = serde_json::from_str(&run.stdout).unwrap();
    let info = inspect(out.to_str().unwrap());
    let (trades, _, _, _) = counts(&info);
    println!(
        "burst: sent {total} trade frames at {rate}/s; recorded {trades} trades; frames read {}; parse errors {}; wall {:.1} s",
        summary["exchanges"]["binance"]["frames"],
        summary["exchanges"]["binance"]["parse_errors"],
        started.elapsed().as_secs_f64()
    );
    assert_eq!(trades as usize, total, "zero loss");
}

/// A diff the venue never delivered is a Gap record, followed by a Resync and a fresh snapshot.
#[test]
fn a_missing_depth_diff_is_a_gap_and_triggers_a_resync() {
    let mock = mock_binance::start(Options { skip_depth: Some(100), ..Options::default() });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec");
    let summary = record(&mock, out.to_str().unwrap(), &[]);
    assert_eq!(summary["exchanges"]["binance"]["gaps"], 1, "{summary}");
    let info = inspect(out.to_str().unwrap());
    assert_eq!(counts(&info), (9757, 28_040, 3450, 2));
    assert_eq!((info["status"]["gaps"].as_u64(), info["status"]["resyncs"].as_u64()), (Some(1), Some(1)));
    let export = run(&["export", out.to_str().unwrap(), "--kind", "status"]);
    let gap = export.stdout.lines().find(|l| l.contains("\"gap\"")).unwrap();
    let gap: Value = serde_json::from_str(gap).unwrap();
    assert_eq!(gap["stream"], "btcusdt@depth");
    assert!(gap["got"].as_u64().unwrap() > gap["expected"].as_u64().unwrap(), "{gap}");
}

#[test]
fn symbols_lists_the_venue_pairs() {
    let mock = mock_binance::start(Options::default());
    let rest = mock.rest_url();
    let out = run(&["symbols", "--exchange", "binance", "--rest-url", &rest, "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    let names: Vec<&str> =
        list.as_array().unwrap().iter().map(|s| s["instrument"]["symbol"].as_str().unwrap()).collect();
    assert_eq!(names, ["BTC/USDT", "ETH/USDT"]);
    assert_eq!(list[0]["status"], "TRADING");
    assert_eq!(list[0]["price_precision"], 8);
    let text = run(&["symbols", "--exchange", "binance", "--rest-url", &rest, "--quote", "BTC"]);
    assert_eq!(text.code, 0);
    assert!(text.stderr.contains("0 pairs"), "{}", text.stderr);
}

/// A connection that goes silent is dropped by the watchdog and reopened.
#[test]
fn the_stale_data_watchdog_reconnects_a_silent_connection() {
    let mock = mock_binance::start(Options::default());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec");
    let summary = record(&mock, out.to_str().unwrap(), &["--stale-after", "1"]);
    assert!(summary["exchanges"]["binance"]["connects"].as_u64().unwrap() >= 2, "{summary}");
    let export = run(&["export", out.to_str().unwrap(), "--kind", "status"]);
    assert!(export.stdout.contains("stale watchdog"), "{}", export.stdout);
    assert_eq!(counts(&inspect(out.to_str().unwrap())).0, 9757, "nothing is lost or duplicated");
}

/// SIGTERM (like Ctrl-C) stops capture cleanly: sockets closed, log flushed, summary printed.
#[test]
fn sigterm_flushes_and_leaves_a_readable_recording() {
    let mock = mock_binance::start(Options::default());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec");
    let (ws, rest) = (mock.ws_url(), mock.rest_url());
    let child = tapedeck()
        .args(["record", "--exchange", "binance", "--symbols", "BTCUSDT", "--ws-url", &ws, "--rest-url", &rest])
        .args(["--out", out.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let status = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("recorded"), "a summary is printed");
    let info = inspect(out.to_str().unwrap());
    assert_eq!(counts(&info), (9757, 28_040, 3451, 1));
    assert!(info["status"]["disconnected"].as_u64().unwrap() >= 1, "the shutdown is in the log");
}

/// Book updates over --max-levels are refused, counted and recorded as ParseError; the rest
/// of the capture goes on.
#[test]
fn book_updates_over_the_level_limit_are_counted_and_refused() {
    let mock = mock_binance::start(Options::default());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec");
    let summary = record(&mock, out.to_str().unwrap(), &["--max-levels", "50"]);
    // 284 diffs of the capture carry more than 50 levels a side; the 1000-level REST snapshot
    // is refused too (logged), so the book never syncs, which is what the limit asks for.
    assert_eq!(summary["exchanges"]["binance"]["parse_errors"], 284, "{summary}");
    let info = inspect(out.to_str().unwrap());
    assert_eq!(counts(&info), (9757, 28_040, 3451 - 284, 0));
    assert_eq!(info["status"]["parse_errors"], 284);
}
