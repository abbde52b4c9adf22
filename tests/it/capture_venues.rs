//! Capture against local Gate and LBank mocks speaking each venue's own protocol: exact counts,
//! exact values, reconnects that lose nothing, garbage frames counted, LBank's JSON pings
//! answered. The mocks are `mock_gate` (the real 2021 Gate capture) and `mock_lbank` (the doc
//! examples, repeated; see there).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::mock_venue::Options;
use crate::util::*;
use crate::{mock_gate, mock_lbank};

const GATE_STREAMS: &str = "trade,depth,kline:1m,ticker";
const LBANK_STREAMS: &str = "trade,depth,kline:5m,ticker";

/// `tapedeck record` for 4 s; the `--json` summary.
fn record(exchange: &str, ws: &str, rest: &str, symbols: &str, streams: &str, out: &str) -> Value {
    let args = [
        "record",
        "--exchange",
        exchange,
        "--symbols",
        symbols,
        "--streams",
        streams,
        "--ws-url",
        ws,
        "--rest-url",
        rest,
        "--out",
        out,
        "--duration",
        "4s",
        "--json",
    ];
    let run = run(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

fn inspect(dir: &str) -> Value {
    let out = run(&["inspect", dir, "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap()
}

/// Market-data records per kind, summed over instruments (statuses left out).
fn totals(info: &Value) -> BTreeMap<String, u64> {
    let mut totals = BTreeMap::new();
    for instrument in info["instruments"].as_array().unwrap() {
        for (kind, n) in instrument["counts"].as_object().unwrap() {
            if kind != "status" && n.as_u64().unwrap() > 0 {
                *totals.entry(kind.clone()).or_insert(0) += n.as_u64().unwrap();
            }
        }
    }
    totals
}

/// One instrument's non-zero counts, by venue symbol.
fn counts(info: &Value, venue_symbol: &str) -> BTreeMap<String, u64> {
    let instrument =
        info["instruments"].as_array().unwrap().iter().find(|i| i["venue_symbol"] == venue_symbol).unwrap();
    instrument["counts"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, n)| n.as_u64().unwrap() > 0)
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
        .collect()
}

fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

/// Every record of these kinds, in seq order.
fn export(dir: &str, kinds: &str) -> Vec<Value> {
    let out = run(&["export", dir, "--kind", kinds]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Market-data records per kind after the last `connected` status.
fn after_last_connect(records: &[Value]) -> BTreeMap<String, u64> {
    let start = records.iter().rposition(|r| r["status"] == "connected").unwrap();
    let mut kinds = BTreeMap::new();
    for r in &records[start..] {
        if r["kind"] != "status" {
            *kinds.entry(r["kind"].as_str().unwrap().to_string()).or_insert(0) += 1;
        }
    }
    kinds
}

// ---------------------------------------------------------------------------------------------
// Gate

/// The capture's 217 update frames: 9 trades, 172 book diffs, 14 candles, 22 tickers; plus one
/// REST snapshot per pair and connection.
fn gate_totals(snapshots: u64) -> BTreeMap<String, u64> {
    map(&[("trade", 9), ("book_delta", 172), ("book_snapshot", snapshots), ("candle", 14), ("ticker", 22)])
}

#[test]
fn gate_records_every_frame_of_the_real_capture() {
    let mock = mock_gate::start(Options::default());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec");
    let out = out.to_str().unwrap();
    let symbols = mock_gate::PAIRS.join(",");
    let summary = record("gate", &mock.ws_url(), &mock.rest_url(), &symbols, GATE_STREAMS, out);
    let gate = &summary["exchanges"]["gate"];
    assert_eq!(gate["parse_errors"], 0, "{summary}");
    assert_eq!(gate["venue_errors"], 0, "{summary}");
    assert_eq!((gate["connects"].as_u64(), gate["gaps"].as_u64()), (Some(1), Some(0)));
    assert_eq!(gate["frames"], 22 + 1 + 217, "22 subscribe acks, 1 spot.pong, 217 updates: {summary}");

    // What the mock saw: 22 stamped subscribe requests (1 trades, 10 order book, 10 candles,
    // 1 tickers), one spot.ping, one symbol list and one snapshot per pair.
    let seen = mock.seen();
    assert!(seen.rejected.is_empty(), "{:?}", seen.rejected);
    assert_eq!((seen.subscribes.len(), seen.pings), (22, 1));
    let requests = mock.server.requests();
    assert_eq!(requests.len(), 11, "{requests:?}");
    assert_eq!(requests[0], "/api/v4/spot/currency_pairs");
    assert!(requests.contains(&"/api/v4/spot/order_book?currency_pair=NEO_BTC&limit=100&with_id=true".to_string()));
    assert_eq!(mock.server.ws_paths(), ["/ws/v4/"]);
    assert_eq!(mock.server.sent(), [217]);

    let info = inspect(out);
    assert_eq!(totals(&info), gate_totals(10));
    assert_eq!(
        counts(&info, "NEO_BTC"),
        map(&[("trade", 5), ("book_delta", 39), ("book_snapshot", 1), ("candle", 2), ("ticker", 9)])
    );
    assert_eq!(
        counts(&info, "OMG_USDT"),
        map(&[("book_delta", 51), ("book_snapshot", 1), ("candle", 1), ("ticker", 5)])
    );
    assert_eq!(counts(&info, "INK_USDT"), map(&[("book_delta", 1), ("book_snapshot", 1), ("candle", 1)]));
    let status = &info["status"];
    assert_eq!((status["connected"].as_u64(), status["subscribed"].as_u64()), (Some(1), Some(1)));
    assert_eq!((status["gaps"].as_u64(), status["resyncs"].as_u64()), (Some(0), Some(0)));
    assert_eq!(status["parse_errors"], 0);
    assert_eq!(info["subscriptions"].as_array().unwrap().len(), 40);

    // Exact values: the capture's first trade (create_time_ms "1619093543708.2642", to the ns)...
    let trades = export(out, "trade");
    let first = &trades[0];
    assert_eq!(first["venue_symbol"], "DIS_USDT");
    assert_eq!((first["price"].as_str(), first["qty"].as_str()), (Some("121.5800000000"), Some("0.2010000000")));
    assert_eq!((first["side"].as_str(), first["trade_id"].as_u64()), (Some("sell"), Some(816_995_772)));
    assert_eq!(first["ts_exchange"], 1_619_093_543_708_264_200u64);
    // ...the REST snapshot's id, and the first diff of that pair starting right after it.
    let books = export(out, "book_snapshot,book_delta");
    let hai = |kind: &str| books.iter().find(|r| r["venue_symbol"] == "HAI_ETH" && r["kind"] == kind).unwrap();
    assert_eq!(hai("book_snapshot")["last_update_id"], 2_691_446);
    assert_eq!(
        (hai("book_delta")["first_update_id"].as_u64(), hai("book_delta")["last_update_id"].as_u64()),
        (Some(2_691_446), Some(2_691_446))
    );
    assert_eq!(hai("book_delta")["ts_exchange"], 1_619_093_532_978_000_000u64);
    // ...and the first candle (its 1m bucket start, quote volume "0", no base amount in 2021).
    let candle = &export(out, "candle")[0];
    assert_eq!(candle["venue_symbol"], "DIS_USDT");
    assert_eq!(
        (candle["interval_s"].as_u64(), candle["open_time"].as_u64()),
        (Some(60), Some(1_619_093_520_000_000_000))
    );
    assert_eq!((candle["close"].as_str(), candle["quote_volume"].as_str()), (Some("120.92"), Some("0")));
}

#[test]
fn gate_reconnects_resyncs_and_loses_nothing_sent_after_the_reconnect() {
    let mock = mock_gate::start(Options { drop_after: Some(100), ..Options::default() });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec");
    let out = out.to_str().unwrap();
    let symbols = mock_gate::PAIRS.join(",");
    let summary = record("gate", &mock.ws_url(), &mock.rest_url(), &symbols, GATE_STREAMS, out);
    let gate = &summary["exchanges"]["gate"];
    assert_eq!((gate["connects"].as_u64(), gate["disconnects"].as_u64()), (Some(2), Some(2)), "{summary}");
    assert_eq!((gate["resyncs"].as_u64(), gate["gaps"].as_u64()), (Some(10), Some(0)), "{summary}");
    assert_eq!(gate["parse_errors"], 0);
    // The first connection got frames 0..100, the second 100..217; every request was resent
    // (stamped afresh) on the second.
    assert_eq!(mock.server.sent(), [100, 117]);
    let seen = mock.seen();
    assert!(seen.rejected.is_empty(), "{:?}", seen.rejected);
    assert_eq!((seen.subscribes.len(), seen.pings), (44, 2));
    assert_eq!(mock.server.requests().len(), 1 + 20, "a second snapshot per pair");

    let info = inspect(out);
    assert_eq!(totals(&info), gate_totals(20), "every frame arrives; a second snapshot per pair resyncs its book");
    let status = &info["status"];
    assert_eq!((status["connected"].as_u64(), status["subscribed"].as_u64()), (Some(2), Some(2)));
    assert_eq!((status["disconnected"].as_u64(), status["resyncs"].as_u64()), (Some(2), Some(10)));
    assert_eq!(status["gaps"], 0);

    // Everything the server sent after the reconnect is in the log after the second Connected,
    // with one fresh snapshot per pair: frames 100..217 are 6 trades, 95 diffs, 4 candles, 12 tickers.
    let records = export(out, "status,trade,book_delta,book_snapshot,candle,ticker");
    let resyncs: Vec<&str> =
        records.iter().filter(|r| r["status"] == "resync").map(|r| r["stream"].as_str().unwrap()).collect();
    assert_eq!(resyncs.len(), 10);
    assert!(resyncs.contains(&"NEO_BTC:depth"), "{resyncs:?}");
    assert_eq!(
        after_last_connect(&records),
        map(&[("trade", 6), ("book_delta", 95), ("book_snapshot", 10), ("candle", 4), ("ticker", 12)])
    );
}

#[test]
fn gate_garbage_frames_are_counted_and_capture_goes_on() {
    let mock = mock_gate::start(Options { garbage_every: Some(10), ..Options::default() });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec");
    let out = out.to_str().unwrap();
    // Two pairs, two streams: only their 95 frames go out (5 trades, 90 diffs), so 9 garbage frames.
    let summary = record("gate", &mock.ws_url(), &mock.rest_url(), "NEO_BTC,OMG_USDT", "trade,depth", out);
    assert_eq!(summary["exchanges"]["gate"]["parse_errors"], 9, "{summary}");
    assert_eq!(summary["exchanges"]["gate"]["venue_errors"], 0, "{summary}");
    assert_eq!(mock.server.sent(), [95]);
    assert_eq!(mock.seen().subscribes.len(), 3, "1 trades message for both pairs, 1 order book message per pair");
    let info = inspect(out);
    assert_eq!(totals(&info), map(&[("trade", 5), ("book_delta", 90), ("book_snapshot", 2)]));
    assert_eq!(info["status"]["parse_errors"], 9, "every failure is in the log as a ParseError count");
    assert_eq!(info["status"]["gaps"], 0, "garbage breaks no sequence");
}

// ---------------------------------------------------------------------------------------------
// LBank

/// Per pair: one of each example per round.
fn lbank_pair_counts() -> BTreeMap<String, u64> {
    let n = mock_lbank::ROUNDS as u64;
    map(&[("trade", n), ("book_snapshot", n), ("candle", n), ("ticker", n)])
}

#[test]
fn lbank_records_every_frame_and_answers_the_server_pings() {
    let mock = mock_lbank::start(Options::default());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec");
    let out = out.to_str().unwrap();
    let summary = record("lbank", &mock.ws_url(), &mock.rest_url(), "btc_usdt,eth_btc", LBANK_STREAMS, out);
    let lbank = &summary["exchanges"]["lbank"];
    assert_eq!((lbank["parse_errors"].as_u64(), lbank["venue_errors"].as_u64()), (Some(0), Some(0)), "{summary}");
    assert_eq!((lbank["connects"].as_u64(), lbank["resyncs"].as_u64()), (Some(1), Some(0)), "{summary}");
    assert_eq!(lbank["frames"], 400 + 5 + 1, "400 pushes, 5 server pings, 1 pong to tapedeck's ping: {summary}");

    // Every server ping came back as the documented pong, echoing its id.
    let seen = mock.seen();
    assert_eq!(seen.pongs_ok, mock_lbank::ping_ids());
    assert_eq!(seen.pongs_ok[0], mock_lbank::DOC_PING_ID);
    assert!(seen.pongs_bad.is_empty(), "{:?}", seen.pongs_bad);
    assert!(seen.rejected.is_empty(), "{:?}", seen.rejected);
    assert_eq!((seen.subscribes.len(), seen.client_pings), (8, 1), "4 channels x 2 pairs, one message each");
    assert_eq!(
        seen.subscribes[..2],
        [
            r#"{"action":"subscribe","subscribe":"trade","pair":"btc_usdt"}"#,
            r#"{"action":"subscribe","subscribe":"trade","pair":"eth_btc"}"#
        ]
    );
    assert_eq!(mock.server.requests(), ["/v2/currencyPairs.do"], "depth pushes are snapshots: no REST depth");
    assert_eq!(mock.server.ws_paths(), ["/ws/V2/"]);

    let info = inspect(out);
    assert_eq!(counts(&info, "btc_usdt"), lbank_pair_counts());
    assert_eq!(counts(&info, "eth_btc"), lbank_pair_counts());
    let status = &info["status"];
    assert_eq!((status["connected"].as_u64(), status["subscribed"].as_u64()), (Some(1), Some(1)));
    assert_eq!((status["gaps"].as_u64(), status["resyncs"].as_u64()), (Some(0), Some(0)));
    assert_eq!(status["parse_errors"], 0);

    // Exact values. Trades: the doc example's, its deal time (UTC+8) moved 100 ms per round.
    let trades = export(out, "trade");
    let btc: Vec<&Value> = trades.iter().filter(|t| t["venue_symbol"] == "btc_usdt").collect();
    assert_eq!((btc[0]["price"].as_str(), btc[0]["qty"].as_str()), (Some("12129"), Some("6.3607")));
    assert_eq!((btc[0]["side"].as_str(), btc[0]["symbol"].as_str()), (Some("sell"), Some("BTC/USDT")));
    assert_eq!(btc[0]["trade_id"], Value::Null, "LBank trades carry no id");
    // 2019-06-28T19:55:49.460 in UTC+8.
    assert_eq!(btc[0]["ts_exchange"], 1_561_722_949_460_000_000u64);
    assert_eq!(btc[49]["ts_exchange"], 1_561_722_949_460_000_000u64 + 49 * 100_000_000);
    // Depth pushes are snapshots with no update id; levels exactly as sent.
    let books = export(out, "book_snapshot");
    let eth = books.iter().find(|b| b["venue_symbol"] == "eth_btc").unwrap();
    assert_eq!(eth["last_update_id"], Value::Null);
    assert_eq!(eth["ts_exchange"], 1_561_715_362_722_000_000u64, "push TS 2019-06-28T17:49:22.722 UTC+8");
    let level = |side: &str, i: usize| {
        let l = &eth[side][i];
        (l["price"].as_str().unwrap().to_string(), l["qty"].as_str().unwrap().to_string())
    };
    assert_eq!(level("bids", 0), ("0.025135".to_string(), "3.962".to_string()));
    assert_eq!(level("asks", 1), ("0.025215".to_string(), "4.377".to_string()));
    // The kbar: 5 min, bar start 2019-06-28T17:45:00 UTC+8, 272 trades, never closed.
    let candle = export(out, "candle").into_iter().find(|c| c["venue_symbol"] == "eth_btc").unwrap();
    assert_eq!(
        (candle["interval_s"].as_u64(), candle["open_time"].as_u64()),
        (Some(300), Some(1_561_715_100_000_000_000))
    );
    assert_eq!((candle["volume"].as_str(), candle["trade_count"].as_u64()), (Some("2481.1912"), Some(272)));
    assert_eq!(candle["closed"], false);
}

#[test]
fn lbank_reconnects_and_loses_nothing_sent_after_the_reconnect() {
    let mock = mock_lbank::start(Options { drop_after: Some(150), ..Options::default() });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec");
    let out = out.to_str().unwrap();
    let summary = record("lbank", &mock.ws_url(), &mock.rest_url(), "btc_usdt,eth_btc", LBANK_STREAMS, out);
    let lbank = &summary["exchanges"]["lbank"];
    assert_eq!((lbank["connects"].as_u64(), lbank["disconnects"].as_u64()), (Some(2), Some(2)), "{summary}");
    assert_eq!((lbank["resyncs"].as_u64(), lbank["parse_errors"].as_u64()), (Some(0), Some(0)), "no REST depth sync");
    assert_eq!(mock.server.sent(), [150, 255], "405 frames in all, none twice");
    let seen = mock.seen();
    assert_eq!(seen.pongs_ok, mock_lbank::ping_ids(), "pings on both connections answered");
    assert!(seen.pongs_bad.is_empty() && seen.rejected.is_empty(), "{seen:?}");
    assert_eq!(seen.subscribes.len(), 16, "everything resubscribed");

    let info = inspect(out);
    assert_eq!(counts(&info, "btc_usdt"), lbank_pair_counts());
    assert_eq!(counts(&info, "eth_btc"), lbank_pair_counts());
    let status = &info["status"];
    assert_eq!((status["connected"].as_u64(), status["subscribed"].as_u64()), (Some(2), Some(2)));
    assert_eq!((status["disconnected"].as_u64(), status["resyncs"].as_u64()), (Some(2), Some(0)));

    // The second connection's 255 frames: 3 pings (rounds 20, 30, 40) and 252 pushes, the
    // first 4 of them the tail of round 18 (its trade and tick frames), then rounds 19..49.
    let records = export(out, "status,trade,book_snapshot,candle,ticker");
    assert_eq!(
        after_last_connect(&records),
        map(&[("trade", 64), ("book_snapshot", 62), ("candle", 62), ("ticker", 64)])
    );
}

#[test]
fn lbank_garbage_frames_are_counted_and_capture_goes_on() {
    let mock = mock_lbank::start(Options { garbage_every: Some(10), ..Options::default() });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec");
    let out = out.to_str().unwrap();
    // One pair, two streams: 50 trades, 50 depth pushes and the 5 pings go out, so 10 garbage frames.
    let summary = record("lbank", &mock.ws_url(), &mock.rest_url(), "ETH/BTC", "trade,depth", out);
    assert_eq!(summary["exchanges"]["lbank"]["parse_errors"], 10, "{summary}");
    assert_eq!(mock.server.sent(), [105]);
    assert_eq!(mock.seen().pongs_ok, mock_lbank::ping_ids(), "pings are still answered");
    let info = inspect(out);
    assert_eq!(totals(&info), map(&[("trade", 50), ("book_snapshot", 50)]));
    assert_eq!(info["status"]["parse_errors"], 10, "every failure is in the log as a ParseError count");
}

#[test]
fn lbank_refuses_the_quote_stream_before_touching_anything() {
    let mock = mock_lbank::start(Options::default());
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    let rec = rec.to_str().unwrap();
    let (ws, rest) = (mock.ws_url(), mock.rest_url());
    let args = [
        "record",
        "--exchange",
        "lbank",
        "--symbols",
        "btc_usdt",
        "--streams",
        "trade,quote",
        "--ws-url",
        &ws,
        "--rest-url",
        &rest,
        "--out",
        rec,
        "--duration",
        "1s",
    ];
    let out = run(&args);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("lbank has no best bid/ask stream"), "{}", out.stderr);
    assert!(!std::path::Path::new(rec).exists(), "nothing is created");
    assert!(mock.server.requests().is_empty(), "refused before any request");
    assert!(mock.server.ws_paths().is_empty());
}

// ---------------------------------------------------------------------------------------------
// The mocks themselves: they hold clients to the documented protocol, so the captures above
// passing means tapedeck spoke it.

/// Drives a mock from a plain WebSocket client.
fn client<F: std::future::Future<Output = ()>>(body: impl FnOnce() -> F) {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(body());
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send(ws: &mut Socket, text: &str) {
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::text(text)).await.unwrap();
}

async fn next(ws: &mut Socket) -> Value {
    use futures_util::StreamExt;
    let message = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
    serde_json::from_str(message.to_text().unwrap()).unwrap()
}

fn unix_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn gate_mock_acks_pongs_and_refuses_like_gate() {
    let mock = mock_gate::start(Options::default());
    client(|| async {
        let (mut ws, _) = tokio_tungstenite::connect_async(mock.ws_url()).await.unwrap();
        // Unstamped (`time` 0, as tapedeck's plan has it before `stamp`): refused.
        send(&mut ws, r#"{"time":0,"channel":"spot.trades","event":"subscribe","payload":["NEO_BTC"]}"#).await;
        let refused = next(&mut ws).await;
        assert_eq!((refused["error"]["code"].as_u64(), &refused["result"]), (Some(2), &Value::Null), "{refused}");
        let now = unix_s();
        send(
            &mut ws,
            &format!(r#"{{"time":{now},"channel":"spot.trades","event":"subscribe","payload":["GIBBERISH_USD"]}}"#),
        )
        .await;
        assert_eq!(next(&mut ws).await["error"]["message"], "unknown currency pair GIBBERISH_USD");
        let request =
            format!(r#"{{"time":{now},"id":7,"channel":"spot.trades","event":"subscribe","payload":["NEO_BTC"]}}"#);
        send(&mut ws, &request).await;
        let ack = next(&mut ws).await;
        assert_eq!(
            (&ack["channel"], &ack["event"], &ack["id"]),
            (&"spot.trades".into(), &"subscribe".into(), &7.into())
        );
        assert_eq!((&ack["error"], &ack["result"]["status"]), (&Value::Null, &"success".into()), "{ack}");
        send(&mut ws, &format!(r#"{{"time":{now},"channel":"spot.ping"}}"#)).await;
        let pong = next(&mut ws).await;
        assert_eq!((&pong["channel"], &pong["event"], &pong["error"]), (&"spot.pong".into(), &"".into(), &Value::Null));
        // Then the capture's 5 NEO_BTC trades, verbatim, and nothing else.
        for _ in 0..5 {
            let trade = next(&mut ws).await;
            assert_eq!(
                (&trade["channel"], &trade["result"]["currency_pair"]),
                (&"spot.trades".into(), &"NEO_BTC".into())
            );
        }
    });
    let seen = mock.seen();
    assert_eq!((seen.subscribes.len(), seen.rejected.len(), seen.pings), (1, 2, 1));
    assert_eq!(mock.server.sent(), [5]);
}

#[test]
fn lbank_mock_refuses_and_checks_pongs_like_lbank() {
    let mock = mock_lbank::start(Options::default());
    client(|| async {
        let (mut ws, _) = tokio_tungstenite::connect_async(mock.ws_url()).await.unwrap();
        send(&mut ws, r#"{"action":"subscribe","subscribe":"kbar","pair":"eth_btc"}"#).await;
        let refused = next(&mut ws).await;
        assert_eq!((&refused["status"], &refused["message"]), (&"error".into(), &"Missing parameter ['kbar']".into()));
        // Accepted subscriptions get no ack; a client ping gets its pong.
        send(&mut ws, r#"{"action":"subscribe","subscribe":"trade","pair":"eth_btc"}"#).await;
        send(&mut ws, r#"{"action":"ping","ping":"abc"}"#).await;
        assert_eq!(next(&mut ws).await, serde_json::json!({"action": "pong", "pong": "abc"}));
        // The stream: 5 server pings among the 50 eth_btc trades, 100 ms apart.
        let (mut trades, mut pings) = (Vec::new(), Vec::new());
        while trades.len() < 50 {
            let frame = next(&mut ws).await;
            if let Some(id) = frame["ping"].as_str() {
                // The first one is answered wrongly (not echoing the id), the rest as documented.
                let reply = if pings.is_empty() { "nope".to_string() } else { id.to_string() };
                send(&mut ws, &format!(r#"{{"action":"pong","pong":"{reply}"}}"#)).await;
                pings.push(id.to_string());
            } else {
                assert_eq!((&frame["type"], &frame["pair"]), (&"trade".into(), &"eth_btc".into()));
                trades.push(frame["TS"].as_str().unwrap().to_string());
            }
        }
        assert_eq!(pings, mock_lbank::ping_ids());
        assert_eq!((trades[0].as_str(), trades[49].as_str()), ("2019-06-28T19:55:49.466", "2019-06-28T19:55:54.366"));
        // Wait for the mock to read the pongs.
        for _ in 0..100 {
            if mock.seen().pongs_ok.len() + mock.seen().pongs_bad.len() == 5 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    let seen = mock.seen();
    assert_eq!(seen.pongs_bad, [r#"{"action":"pong","pong":"nope"}"#]);
    assert_eq!(seen.pongs_ok, mock_lbank::ping_ids()[1..]);
    assert_eq!((seen.subscribes.len(), seen.rejected.len(), seen.client_pings), (1, 1, 1));
}
