//! `tapedeck serve` round trip: `tapedeck record` against a served recording captures the
//! same market records, and its book sync works against the served snapshot and diffs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use tapedeck::engine::Engine;
use tapedeck::log::{Reader, read_all};
use tapedeck::model::{Event, Instrument, Record, SymbolTable};

use crate::util::*;

/// The serve child, killed when the test ends however it ends.
pub(crate) struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `tapedeck serve` of a copy of the sample on a free port (a recording opens in one
/// process at a time, and tests run in parallel); returns the child, its address and the copy.
pub(crate) fn serve(extra: &[&str]) -> (Served, String, tempfile::TempDir) {
    let copy = copy_recording(&root().join(SAMPLE));
    let mut child = tapedeck()
        .args(["serve", copy.path().to_str().unwrap(), "--bind", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tapedeck serve");
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    // Keep draining: a closed pipe would make the server's next print fail and end it.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let addr = line
        .strip_prefix("listening on ws://")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (Served(child), addr, copy)
}

/// Market records (no Status) with their instrument spelled out.
fn market(dir: &std::path::Path) -> (Vec<(Instrument, Record)>, SymbolTable) {
    let symbols = Reader::open(dir).unwrap().symbols().clone();
    let records = read_all(dir)
        .unwrap()
        .into_iter()
        .filter(|r| !matches!(r.event, Event::Status(_)))
        .map(|r| (symbols.get(r.instrument).unwrap().clone(), r))
        .collect();
    (records, symbols)
}

/// What must survive the round trip. ts_recv is the capture host's clock, and seq the position
/// in a recording. Quotes and snapshots carry no time on Binance's wire, so their ts_exchange
/// is ts_recv too (see `exchange::binance::TS_NOTES`) and is left out for them.
fn key(instrument: &Instrument, r: &Record) -> String {
    let ts = match r.event {
        Event::Quote(_) | Event::BookSnapshot(_) => None,
        _ => Some(r.ts_exchange),
    };
    format!("{} {} {ts:?} {:?}", instrument.symbol, instrument.venue_symbol, r.event)
}

/// The final book of a recording, replayed through the engine.
fn final_book(dir: &std::path::Path) -> (bool, Option<u64>, Vec<String>) {
    let reader = Reader::open(dir).unwrap();
    let mut engine = Engine::new(reader.symbols().clone(), Vec::new());
    for record in read_all(dir).unwrap() {
        engine.on_record(&record);
    }
    let (id, _) = reader.symbols().iter().next().unwrap();
    let book = engine.book(id).unwrap();
    // The top 100 levels a side: a served live book is capped at the request's `limit`, so
    // levels deeper than that are unknown to the client, exactly as on Binance.
    let levels = book.bids(100).iter().chain(&book.asks(100)).map(|l| format!("{l:?}")).collect();
    (book.is_valid(), book.last_update_id(), levels)
}

#[test]
fn record_against_serve_round_trips_the_sample() {
    let (_served, addr, _copy) = serve(&["--speed", "max", "--start-on-connect"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("copy");
    let (ws, rest) = (format!("ws://{addr}"), format!("http://{addr}"));
    let run = record_binance(&ws, &rest, out.to_str().unwrap(), &["--duration", "8s"]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let (sample, _) = market(&root().join(SAMPLE));
    let (copy, _) = market(&out);
    assert_eq!(copy.len(), sample.len(), "every market record arrives once");
    // Streams come over one connection in the recording's order; the REST snapshot lands
    // wherever the capture's GET returned, so it is compared on its own.
    let streams = |rs: &[(Instrument, Record)]| -> Vec<String> {
        rs.iter().filter(|(_, r)| !matches!(r.event, Event::BookSnapshot(_))).map(|(i, r)| key(i, r)).collect()
    };
    let snapshots = |rs: &[(Instrument, Record)]| -> Vec<String> {
        rs.iter().filter(|(_, r)| matches!(r.event, Event::BookSnapshot(_))).map(|(i, r)| key(i, r)).collect()
    };
    let (a, b) = (streams(&sample), streams(&copy));
    if let Some(i) = (0..a.len().min(b.len())).find(|&i| a[i] != b[i]) {
        panic!("record {i} differs:\nsample {}\ncopy   {}", a[i], b[i]);
    }
    assert_eq!(a.len(), b.len());
    // Which book the GET sees depends on when it lands relative to the shared clock (the
    // recorded snapshot, or the live book a few diffs later); either must sync, which the
    // final-book check below proves.
    assert_eq!(snapshots(&copy).len(), snapshots(&sample).len(), "one snapshot per depth subscription");

    let (valid, last, levels) = final_book(&out);
    assert!(valid, "the captured book syncs against the served snapshot and diffs");
    assert_eq!((valid, last, levels), final_book(&root().join(SAMPLE)), "and ends equal to the sample's");
}

#[test]
fn websocket_control_and_rest() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let (_served, addr, _copy) = serve(&["--speed", "max"]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await.unwrap();
        let reply = async |ws: &mut _, text: &str| -> String {
            let ws: &mut tokio_tungstenite::WebSocketStream<_> = ws;
            ws.send(Message::text(text)).await.unwrap();
            loop {
                match ws.next().await.unwrap().unwrap() {
                    Message::Text(t) if t.contains("\"id\"") => return t.to_string(),
                    _ => continue,
                }
            }
        };
        let r = reply(&mut ws, r#"{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}"#).await;
        assert_eq!(r, r#"{"result":null,"id":1}"#);
        let r = reply(&mut ws, r#"{"method":"SUBSCRIBE","params":["nosuch@trade"],"id":2}"#).await;
        assert_eq!(r, r#"{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":2}"#);
        let r = reply(&mut ws, r#"{"method":"LIST_SUBSCRIPTIONS","id":3}"#).await;
        assert_eq!(r, r#"{"result":["btcusdt@trade"],"id":3}"#);
        ws.send(Message::Ping(b"hi".to_vec().into())).await.unwrap();
        let mut pong = false;
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Pong(p) = m {
                pong = p.as_ref() == b"hi";
                break;
            }
        }
        assert!(pong, "pings are answered");
    });
    let get = |path: &str| -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text.split_once("\r\n\r\n").unwrap().1.to_string()
    };
    assert_eq!(get("/api/v3/ping"), "{}");
    assert!(get("/api/v3/exchangeInfo").contains(r#""symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC""#));
    assert!(get("/api/v3/depth?symbol=BTCUSDT&limit=5").starts_with(r#"{"lastUpdateId":"#));
    assert_eq!(get("/api/v3/depth?symbol=NOPE"), r#"{"code":-1121,"msg":"Invalid symbol."}"#);
}

/// Messages per second served to one client at `--speed max` over loopback; run by
/// scripts/serve-speed.sh (ignored in the normal suite: it measures, it does not check).
#[test]
#[ignore]
fn serve_speed() {
    use futures_util::StreamExt;
    let (_served, addr, _copy) = serve(&["--speed", "max", "--loop", "--start-on-connect"]);
    let seconds: f64 = std::env::var("SERVE_SPEED_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (n, bytes, wall) = rt.block_on(async {
        // Trades and quotes only: a depth subscriber makes the clock wait at every recorded
        // snapshot (once per --loop pass) until it fetches one, which is not what this measures.
        let url = format!("ws://{addr}/stream?streams=btcusdt@trade/btcusdt@bookTicker");
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let _ = ws.next().await; // the clock starts on connect; time from the first message
        let start = std::time::Instant::now();
        let (mut n, mut bytes) = (0u64, 0u64);
        while start.elapsed().as_secs_f64() < seconds {
            if let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) = ws.next().await {
                n += 1;
                bytes += t.len() as u64;
            }
        }
        (n, bytes, start.elapsed().as_secs_f64())
    });
    println!(
        "serve --speed max, one client, loopback: {n} messages in {wall:.2} s = {:.0} messages/s ({:.1} MB/s)",
        n as f64 / wall,
        bytes as f64 / wall / 1e6
    );
}

/// Clients like ccxt connect to `/ws/<n>` (a connection index, not a stream) and SUBSCRIBE
/// afterwards; Binance accepts that, so serve must too, while an unknown market stream in the
/// path is still refused. And a depth subscriber's snapshot fetch is answered at once while
/// the clock holds at the recorded snapshot for it (the hold once kept the books lock, so the
/// fetch waited out the whole 5 s hold).
#[test]
fn ws_connection_index_path_and_prompt_snapshot_fetch() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let (_served, addr, _copy) = serve(&["--speed", "max", "--start-on-connect"]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // A diff subscription in the URL counts before the clock starts, so the clock holds at
    // the recorded snapshot (lastUpdateId 50093239218) until a GET fetches it.
    let depth_ws = rt.block_on(async {
        let url = format!("ws://{addr}/ws/btcusdt@depth@100ms");
        tokio_tungstenite::connect_async(url).await.unwrap().0
    });
    let start = std::time::Instant::now();
    let body = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(s, "GET /api/v3/depth?symbol=BTCUSDT&limit=5 HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text.split_once("\r\n\r\n").unwrap().1.to_string()
    };
    let waited = start.elapsed();
    assert!(body.starts_with(r#"{"lastUpdateId":50093239218,"#), "the recorded snapshot: {body}");
    assert!(waited < std::time::Duration::from_secs(4), "the snapshot fetch waited {waited:?}");
    drop(depth_ws);

    rt.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/0")).await.unwrap();
        let mut reply = async |text: &str| -> String {
            ws.send(Message::text(text)).await.unwrap();
            loop {
                match ws.next().await.unwrap().unwrap() {
                    Message::Text(t) if t.contains("\"id\"") => return t.to_string(),
                    _ => continue,
                }
            }
        };
        let r = reply(r#"{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}"#).await;
        assert_eq!(r, r#"{"result":null,"id":1}"#);
        let r = reply(r#"{"method":"LIST_SUBSCRIPTIONS","id":2}"#).await;
        assert_eq!(r, r#"{"result":["btcusdt@trade"],"id":2}"#, "`0` is no subscription");

        let (mut bad, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/nosuch@trade")).await.unwrap();
        let first = bad.next().await.unwrap().unwrap();
        assert_eq!(
            first.into_text().unwrap().as_str(),
            r#"{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":null}"#
        );
    });
}

/// A third-party client: ccxt's Python websocket client (`ccxt.pro.binance`) against a served
/// sample must get the recorded trades and a synced book equal to the recording's
/// (scripts/ccxt-check.sh runs scripts/ccxt_check.py, which says what it compared). Runs only
/// where `python3 -c "import ccxt"` works; CI (env CI set) installs the pinned ccxt from
/// scripts/requirements-ccxt.txt, so there a missing ccxt is a failure, not a skip.
#[test]
fn ccxt_client_sees_the_recording() {
    use std::process::Command;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let has_ccxt = Command::new(&python).args(["-c", "import ccxt"]).output().is_ok_and(|o| o.status.success());
    if !has_ccxt {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install ccxt: python3 -m pip install -r scripts/requirements-ccxt.txt"
        );
        eprintln!("skipped: ccxt is not installed (python3 -m pip install -r scripts/requirements-ccxt.txt)");
        return;
    }
    let out = Command::new("bash")
        .arg(root().join("scripts/ccxt-check.sh"))
        .env("TAPEDECK_BIN", env!("CARGO_BIN_EXE_tapedeck"))
        .env("PYTHON", &python)
        .current_dir(root())
        .output()
        .expect("run scripts/ccxt-check.sh");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "scripts/ccxt-check.sh failed ({}):\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("watch_trades: ") && stdout.contains("watch_order_book: "), "{stdout}");
    println!("{stdout}");
}

#[test]
fn serve_stops_cleanly_on_sigterm() {
    let (mut served, _addr, _copy) = serve(&["--loop"]);
    let pid = served.0.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = served.0.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "serve ignored SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
}

/// `scan --exchange X --all-symbols`: the scanner on a live capture (here of `serve`, which
/// lists the sample's one pair in its exchangeInfo), one JSON snapshot per closed bucket; the
/// kept `--record` scans again to the same snapshots.
#[test]
fn live_scan_of_all_symbols_prints_snapshots_and_replays_the_same() {
    let (_served, addr, _copy) = serve(&["--speed", "10", "--start-on-connect"]);
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("scanned");
    let detect = ["--detect", "volume:timeframe=1s,ma=3,k=1", "--detect", "waves:amplitude=0.01,timeframe=1s"];
    let (ws, rest) = (format!("ws://{addr}"), format!("http://{addr}"));
    let mut args = vec!["scan", "--exchange", "binance", "--all-symbols", "--ws-url", &ws, "--rest-url", &rest];
    args.extend(["--duration", "6s", "--json", "--record", rec.to_str().unwrap()]);
    args.extend(detect);
    let live = run(&args);
    assert_eq!(live.code, 0, "{}", live.stderr);
    let snapshots: Vec<serde_json::Value> = live.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(snapshots.len() >= 3, "one snapshot per closed 1s bucket: {}", live.stdout);
    // The first buckets close before the volume baseline exists, so their tables are empty.
    let listed: Vec<&serde_json::Value> = snapshots.iter().flat_map(|s| s["top_volume"].as_array().unwrap()).collect();
    assert!(!listed.is_empty() && listed.iter().all(|row| row["symbol"] == "BTC/USDT"), "{}", live.stdout);
    assert!(live.stderr.contains("live records"), "{}", live.stderr);

    let mut again = vec!["scan", rec.to_str().unwrap(), "--json"];
    again.extend(detect);
    let replayed = run(&again);
    assert_eq!(replayed.code, 0, "{}", replayed.stderr);
    let lines: Vec<&str> = replayed.stdout.lines().collect();
    assert_eq!(&lines[..snapshots.len()], live.stdout.lines().collect::<Vec<_>>(), "the recording scans the same");

    let bare = run(&["scan", "--exchange", "binance", "--ws-url", &ws]);
    assert_eq!(bare.code, 2);
    assert!(bare.stderr.contains("--symbols") && bare.stderr.trim().lines().count() == 1, "{}", bare.stderr);
}

/// `serve --protocol gate`: the Binance sample served as Gate.io spot v4 (the pair spelled
/// `BTC_USDT`), recorded by tapedeck's own Gate client. Every market record arrives with the
/// same prices, quantities, ids and sides; trades and diffs keep their exchange times (quotes
/// carry only milliseconds on Gate's wire); the book syncs against the served REST book and
/// ends equal to the sample's. Control frames are Gate's: acks, `spot.pong`, error replies.
#[test]
fn gate_protocol_round_trips_the_sample_through_tapedecks_gate_client() {
    let (_served, addr, _copy) = serve(&["--protocol", "gate", "--speed", "max", "--start-on-connect"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gate");
    let (ws, rest) = (format!("ws://{addr}/ws/v4/"), format!("http://{addr}"));
    let rec = record_venue("gate", "BTC_USDT", &ws, &rest, out.to_str().unwrap(), &["--duration", "8s", "--json"]);
    assert_eq!(rec.code, 0, "{}", rec.stderr);
    let summary: serde_json::Value = serde_json::from_str(&rec.stdout).unwrap();
    let gate = &summary["exchanges"]["gate"];
    assert_eq!(
        (gate["parse_errors"].as_u64(), gate["venue_errors"].as_u64(), gate["gaps"].as_u64()),
        (Some(0), Some(0), Some(0))
    );

    let comparable = |dir: &std::path::Path| -> Vec<String> {
        market(dir)
            .0
            .iter()
            .filter(|(_, r)| !matches!(r.event, Event::BookSnapshot(_)))
            .map(|(i, r)| {
                let ts = match r.event {
                    Event::Quote(_) => r.ts_exchange / 1_000_000 * 1_000_000,
                    _ => r.ts_exchange,
                };
                format!("{} {ts} {:?}", i.symbol, r.event)
            })
            .collect()
    };
    let (a, b) = (comparable(&root().join(SAMPLE)), comparable(&out));
    if let Some(i) = (0..a.len().min(b.len())).find(|&i| a[i] != b[i]) {
        panic!("record {i} differs:\nsample {}\ngate   {}", a[i], b[i]);
    }
    assert_eq!(a.len(), b.len(), "every market record arrives once");
    let (valid, last, levels) = final_book(&out);
    assert!(valid, "the Gate client's book syncs against the served order_book and diffs");
    assert_eq!((valid, last, levels), final_book(&root().join(SAMPLE)), "and ends equal to the sample's");

    // Gate's control protocol, spoken by a plain client.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/")).await.unwrap();
        let mut ask = async |text: &str| -> serde_json::Value {
            ws.send(Message::text(text)).await.unwrap();
            loop {
                if let Some(Ok(Message::Text(reply))) = ws.next().await {
                    let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
                    if v["event"] != "update" {
                        return v;
                    }
                }
            }
        };
        let pong = ask(r#"{"time":1,"channel":"spot.ping"}"#).await;
        assert_eq!(pong["channel"], "spot.pong");
        let ack = ask(r#"{"time":1,"channel":"spot.trades","event":"subscribe","payload":["BTC_USDT"]}"#).await;
        assert_eq!((ack["event"].as_str(), ack["result"]["status"].as_str()), (Some("subscribe"), Some("success")));
        let refused = ask(r#"{"time":1,"channel":"spot.trades","event":"subscribe","payload":["NOPE_USDT"]}"#).await;
        assert_eq!(refused["error"]["code"], 2, "{refused}");
    });
    let pairs = reqwest_get(&format!("{rest}/api/v4/spot/currency_pairs"));
    assert_eq!(pairs, r#"[{"id":"BTC_USDT","base":"BTC","quote":"USDT","trade_status":"tradable"}]"#);
}

/// A blocking GET of `url`'s body, for REST checks.
fn reqwest_get(url: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async { reqwest::get(url).await.unwrap().text().await.unwrap() })
}

/// `serve --protocol lbank`: the sample served as LBank V2 (pair `btc_usdt`), recorded by
/// tapedeck's own LBank client. Trades arrive with the sample's prices, sizes, sides and exchange
/// times (LBank's UTC+8 strings carry them to the nanosecond); the book arrives as LBank's
/// whole-book pushes, one per book change once the served book is valid, and the last equals the
/// sample's final book. Pings are echoed; unknown pairs get LBank's error.
#[test]
fn lbank_protocol_round_trips_the_sample_through_tapedecks_lbank_client() {
    let (_served, addr, _copy) = serve(&["--protocol", "lbank", "--speed", "max", "--start-on-connect"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lbank");
    let (ws, rest) = (format!("ws://{addr}/ws/V2/"), format!("http://{addr}"));
    let mut args = vec!["record", "--exchange", "lbank", "--symbols", "btc_usdt", "--streams", "trade,depth"];
    args.extend(["--ws-url", &ws, "--rest-url", &rest, "--out", out.to_str().unwrap(), "--duration", "8s", "--json"]);
    let rec = run(&args);
    assert_eq!(rec.code, 0, "{}", rec.stderr);
    let summary: serde_json::Value = serde_json::from_str(&rec.stdout).unwrap();
    let lbank = &summary["exchanges"]["lbank"];
    assert_eq!((lbank["parse_errors"].as_u64(), lbank["venue_errors"].as_u64()), (Some(0), Some(0)), "{summary}");

    let trades = |dir: &std::path::Path| -> Vec<String> {
        market(dir)
            .0
            .iter()
            .filter_map(|(i, r)| match &r.event {
                Event::Trade(t) => Some(format!("{} {} {} {} {:?}", i.symbol, r.ts_exchange, t.price, t.qty, t.side)),
                _ => None,
            })
            .collect()
    };
    let (a, b) = (trades(&root().join(SAMPLE)), trades(&out));
    assert_eq!(a.len(), 9757);
    assert!(a == b, "every trade arrives once, with its price, size, side and time");
    let snapshots = market(&out).0.iter().filter(|(_, r)| matches!(r.event, Event::BookSnapshot(_))).count();
    assert!(snapshots > 3000, "one whole-book push per book change: {snapshots}");
    let (valid, _, levels) = final_book(&out);
    let (_, _, expected) = final_book(&root().join(SAMPLE));
    assert!(valid);
    assert_eq!(levels, expected, "the last push is the sample's final book, 100 levels a side");

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/")).await.unwrap();
        let mut ask = async |text: &str| -> serde_json::Value {
            ws.send(Message::text(text)).await.unwrap();
            loop {
                if let Some(Ok(Message::Text(reply))) = ws.next().await {
                    let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
                    if v.get("type").is_none() {
                        return v;
                    }
                }
            }
        };
        assert_eq!(ask(r#"{"action":"ping","ping":"p-7"}"#).await, serde_json::json!({"action":"pong","pong":"p-7"}));
        let refused = ask(r#"{"action":"subscribe","subscribe":"trade","pair":"nope_usdt"}"#).await;
        assert_eq!(refused["status"], "error", "{refused}");
    });
    assert_eq!(
        reqwest_get(&format!("{rest}/v2/currencyPairs.do")).split(r#","ts""#).next().unwrap(),
        r#"{"result":"true","data":["btc_usdt"],"error_code":0"#
    );
}
