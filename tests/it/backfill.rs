//! `tapedeck backfill` against a local REST server on 127.0.0.1:0 serving real data in the
//! venues' response shapes: the ADABTC 1m klines (data.binance.vision 12-column rows, two days
//! apart, so the venue itself is missing a day) and the XRPETH aggregate trades. The server caps
//! page sizes, reports used weight, and can answer 429/418/500 on chosen requests.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tapedeck::backfill::{Backfill, Config, Retry, wall_ms};
use tapedeck::exchange::Venue;
use tapedeck::log::{Writer, WriterConfig};
use tapedeck::model::{Event, Exchange, NANOS_PER_MS, Record, Side, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::util::{SAMPLE, copy_recording, root, run, tapedeck};

const KLINES: [&str; 2] = ["ADABTC-1m-2021-11-27.csv", "ADABTC-1m-2021-11-28.csv"];
const AGG_TRADES: &str = "xrpeth_freqtrade/XRPETH-aggTrades-2019-10-11_2019-10-13.csv";
/// 2021-11-27T00:00:00Z and 2021-11-29T00:00:00Z.
const FROM: u64 = 1_637_971_200_000;
const TO: u64 = 1_638_144_000_000;

fn fixture(name: &str) -> Vec<Vec<String>> {
    let path = root().join("tests/fixtures/historical/binance_spot").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().map(|l| l.split(',').map(str::to_string).collect()).collect()
}

fn kline_rows() -> Vec<Vec<String>> {
    KLINES.iter().flat_map(|f| fixture(&format!("klines_1m/{f}"))).collect()
}

#[derive(Clone, Default)]
struct Options {
    /// Most rows a page holds, whatever `limit` asked for (klines; trades when `trade_cap` is 0).
    cap: usize,
    trade_cap: usize,
    /// Time before each answer.
    delay_ms: u64,
    /// (request number, status, Retry-After) answered instead of data.
    faults: Vec<(usize, u16, Option<u64>)>,
    /// (request number, X-MBX-USED-WEIGHT-1M) reported instead of the running total.
    weight_at: Vec<(usize, u32)>,
    /// Speak Gate's v4 REST instead of Binance's.
    gate: bool,
}

#[derive(Clone, Debug)]
struct Hit {
    path: String,
    received_ms: u64,
    sent_ms: u64,
    status: u16,
}

struct Server {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Server {
    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    fn paths(&self, prefix: &str) -> Vec<String> {
        self.hits().into_iter().filter(|h| h.path.starts_with(prefix) && h.status == 200).map(|h| h.path).collect()
    }
}

fn start(options: Options) -> Server {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let hits = Arc::new(Mutex::new(Vec::new()));
    let (klines, trades) = (Arc::new(kline_rows()), Arc::new(fixture(AGG_TRADES)));
    let (count, weight) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicU32::new(0)));
    let log = hits.clone();
    runtime.spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (klines, trades, count, weight, log, options) =
                (klines.clone(), trades.clone(), count.clone(), weight.clone(), log.clone(), options.clone());
            tokio::spawn(async move {
                let (mut buf, mut head) = (vec![0u8; 4096], Vec::new());
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let received_ms = wall_ms();
                let path = String::from_utf8_lossy(&head).split_whitespace().nth(1).unwrap_or("/").to_string();
                let n = count.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(options.delay_ms)).await;
                let (status, mut headers, body) = match options.faults.iter().find(|f| f.0 == n) {
                    Some(&(_, code, retry_after)) => {
                        let headers: Vec<String> = retry_after.map(|s| format!("retry-after: {s}")).into_iter().collect();
                        (code, headers, fault_body(code))
                    }
                    None => answer(&path, &klines, &trades, &options),
                };
                let used = weight.fetch_add(weight_of(&path), Ordering::SeqCst) + weight_of(&path);
                let used = options.weight_at.iter().find(|w| w.0 == n).map_or(used, |w| w.1);
                headers.push(format!("x-mbx-used-weight-1m: {used}"));
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{}\r\nconnection: close\r\n\r\n{body}",
                    body.len(),
                    headers.join("\r\n")
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
                log.lock().unwrap().push(Hit { path, received_ms, sent_ms: wall_ms(), status });
            });
        }
    });
    Server { url: format!("http://{addr}"), hits, _runtime: runtime }
}

fn weight_of(path: &str) -> u32 {
    [("/api/v3/exchangeInfo", 20), ("/api/v3/klines", 2), ("/api/v3/aggTrades", 4)]
        .iter()
        .find(|(p, _)| path.starts_with(p))
        .map_or(1, |(_, w)| *w)
}

/// Binance's documented error bodies for these statuses.
fn fault_body(status: u16) -> String {
    let msg = match status {
        429 => "Too many requests; current limit of IP(127.0.0.1) is 6000 requests per minute.",
        418 => "Way too many requests; IP(127.0.0.1) banned until 1700000000000.",
        _ => "Internal error; unable to process your request. Please try again.",
    };
    format!(r#"{{"code":-1003,"msg":"{msg}"}}"#)
}

fn answer(path: &str, klines: &[Vec<String>], trades: &[Vec<String>], o: &Options) -> (u16, Vec<String>, String) {
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let q = |key: &str| {
        query.split('&').find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('='))).map(str::to_string)
    };
    let num = |key: &str| q(key).and_then(|v| v.parse::<u64>().ok());
    let page = |rows: Vec<String>| {
        let cap = if route == "/api/v3/aggTrades" && o.trade_cap > 0 { o.trade_cap } else { o.cap };
        let limit = num("limit").unwrap_or(500) as usize;
        format!("[{}]", rows.into_iter().take(limit.min(cap)).collect::<Vec<_>>().join(","))
    };
    let ok = |body: String| (200, Vec::new(), body);
    match route {
        "/api/v3/exchangeInfo" => ok(r#"{"timezone":"UTC","serverTime":1638144000000,"rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000}],"symbols":[{"symbol":"ADABTC","status":"TRADING","baseAsset":"ADA","baseAssetPrecision":8,"quoteAsset":"BTC","quoteAssetPrecision":8},{"symbol":"XRPETH","status":"TRADING","baseAsset":"XRP","baseAssetPrecision":8,"quoteAsset":"ETH","quoteAssetPrecision":8}]}"#.into()),
        "/api/v3/klines" if q("symbol").as_deref() == Some("ADABTC") => {
            let (start, end) = (num("startTime").unwrap_or(0), num("endTime").unwrap_or(u64::MAX));
            let rows = klines.iter().filter(|r| (start..=end).contains(&r[0].parse().unwrap()));
            ok(page(rows.map(|r| binance_kline(r)).collect()))
        }
        "/api/v3/aggTrades" if q("symbol").as_deref() == Some("XRPETH") => {
            let keep = |r: &&Vec<String>| match num("fromId") {
                Some(from) => r[0].parse::<u64>().unwrap() >= from,
                None => (num("startTime").unwrap_or(0)..=num("endTime").unwrap_or(u64::MAX)).contains(&r[5].parse().unwrap()),
            };
            ok(page(trades.iter().filter(keep).map(|r| binance_agg_trade(r)).collect()))
        }
        "/api/v3/klines" | "/api/v3/aggTrades" => ok("[]".into()),
        "/api/v4/spot/currency_pairs" if o.gate => ok(r#"[{"id":"ADA_BTC","base":"ADA","quote":"BTC","fee":"0.2","min_base_amount":"1","min_quote_amount":"0.0001","amount_precision":1,"precision":8,"trade_status":"tradable","sell_start":0,"buy_start":0}]"#.into()),
        "/api/v4/spot/candlesticks" if o.gate => {
            let (from, to) = (num("from").unwrap() * 1000, num("to").unwrap() * 1000);
            let rows = klines.iter().filter(|r| (from..=to).contains(&r[0].parse().unwrap()));
            ok(page(rows.map(|r| gate_candle(r)).collect()))
        }
        _ => (400, Vec::new(), r#"{"code":-1121,"msg":"Invalid symbol."}"#.into()),
    }
}

/// `/api/v3/klines` row: times and the trade count as integers, every decimal as a string.
fn binance_kline(r: &[String]) -> String {
    let cells: Vec<String> = r
        .iter()
        .enumerate()
        .map(|(i, c)| if matches!(i, 0 | 6 | 8) { c.clone() } else { format!("\"{c}\"") })
        .collect();
    format!("[{}]", cells.join(","))
}

/// `/api/v3/aggTrades` row from `a,p,q,f,l,T,m,M`.
fn binance_agg_trade(r: &[String]) -> String {
    let b = |s: &str| s.eq_ignore_ascii_case("true");
    format!(
        r#"{{"a":{},"p":"{}","q":"{}","f":{},"l":{},"T":{},"m":{},"M":{}}}"#,
        r[0],
        r[1],
        r[2],
        r[3],
        r[4],
        r[5],
        b(&r[6]),
        b(&r[7])
    )
}

/// Gate `/spot/candlesticks` row: `[t s, quote volume, close, high, low, open, base amount, closed]`.
fn gate_candle(r: &[String]) -> String {
    let t = r[0].parse::<u64>().unwrap() / 1000;
    format!(r#"["{t}","{}","{}","{}","{}","{}","{}","true"]"#, r[7], r[4], r[2], r[3], r[1], r[5])
}

fn read(dir: &std::path::Path) -> Vec<Record> {
    tapedeck::log::read_all(dir).unwrap()
}

/// Everything backfill promises about a finished recording, checked against the fixture rows.
fn check(records: &[Record], trades: &[Vec<String>], gaps: &[(&str, u64, u64)], trade_counts: bool) {
    assert!(records.iter().enumerate().all(|(i, r)| r.seq == i as u64), "seq is contiguous from 0");
    assert!(records.iter().all(|r| r.ts_recv == r.ts_exchange), "ts_recv = ts_exchange");
    assert!(records.windows(2).all(|w| w[0].ts_recv <= w[1].ts_recv), "time-ordered across streams");
    let candles: Vec<_> =
        records.iter().filter_map(|r| if let Event::Candle(c) = &r.event { Some((r, c)) } else { None }).collect();
    let expected = kline_rows();
    assert_eq!(candles.len(), expected.len());
    for ((record, c), row) in candles.iter().zip(&expected) {
        let open_ms: u64 = row[0].parse().unwrap();
        assert_eq!((c.open_time, record.ts_exchange), (open_ms * NANOS_PER_MS, (open_ms + 60_000) * NANOS_PER_MS));
        let got = [&c.open, &c.high, &c.low, &c.close, &c.volume].map(|d| d.to_string());
        assert_eq!(got, [&row[1], &row[2], &row[3], &row[4], &row[5]].map(|s| s.to_string()), "{open_ms}");
        assert_eq!(c.quote_volume.map(|q| q.to_string()).as_deref(), Some(row[7].as_str()));
        assert_eq!(c.trade_count, trade_counts.then(|| row[8].parse().unwrap()));
        assert!(c.closed && c.interval_s == 60);
    }
    let got_trades: Vec<_> =
        records.iter().filter_map(|r| if let Event::Trade(t) = &r.event { Some((r, t)) } else { None }).collect();
    assert_eq!(got_trades.len(), trades.len());
    for ((record, t), row) in got_trades.iter().zip(trades) {
        let side = if row[6] == "True" { Side::Sell } else { Side::Buy };
        assert_eq!(
            (t.trade_id, t.price.to_string(), t.qty.to_string(), t.side, record.ts_exchange / NANOS_PER_MS),
            (Some(row[0].parse().unwrap()), row[1].clone(), row[2].clone(), side, row[5].parse().unwrap())
        );
    }
    let got_gaps: Vec<(String, u64, u64)> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Status(Status::Gap { stream, expected, got }) => Some((stream.clone(), *expected, *got)),
            _ => None,
        })
        .collect();
    let gaps: Vec<(String, u64, u64)> = gaps.iter().map(|(s, e, g)| (s.to_string(), *e, *g)).collect();
    assert_eq!(got_gaps, gaps);
    assert_eq!(records.len(), candles.len() + got_trades.len() + gaps.len(), "nothing else is recorded");
}

/// The venue's missing day: 2021-11-27 00:10 .. 2021-11-28 00:00 (bucket open times in ms).
const MISSING_DAY: (&str, u64, u64) = ("ADABTC:kline_1m", 1_637_971_800_000, 1_638_057_600_000);

fn args<'a>(server: &'a Server, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["backfill", "--exchange", "binance", "--symbols", "ADABTC", "--kline", "1m"];
    args.extend_from_slice(extra);
    args.extend(["--from", "2021-11-27", "--to", "2021-11-29", "--out", out, "--rest-url", &server.url, "--json"]);
    args
}

#[test]
fn pages_klines_under_a_server_cap_and_records_the_missing_day_as_a_gap() {
    let server = start(Options { cap: 4, ..Options::default() });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec");
    let result = run(&args(&server, out.to_str().unwrap(), &[]));
    assert_eq!(result.code, 0, "{}", result.stderr);
    check(&read(&out), &[], &[MISSING_DAY], true);
    // 21 rows at 4 a page: 6 pages, each starting right after the last row, then an empty one.
    let starts: Vec<u64> = server
        .paths("/api/v3/klines")
        .iter()
        .map(|p| p.split("startTime=").nth(1).unwrap().split('&').next().unwrap().parse().unwrap())
        .collect();
    let min = |m: u64| FROM + m * 60_000;
    let day2 = |m: u64| 1_638_057_600_000 + m * 60_000;
    assert_eq!(starts, [min(0), min(4), min(8), day2(2), day2(6), day2(10), day2(11)]);
    assert!(server.paths("/api/v3/klines").iter().all(|p| p.contains("&endTime=1638143999999&limit=1000")));
    let summary: serde_json::Value = serde_json::from_str(&result.stdout).unwrap();
    assert_eq!((summary["records_written"].as_u64(), summary["requests"].as_u64()), (Some(22), Some(8)));
    assert_eq!(summary["streams"][0]["gaps"], 1);
    let reader = tapedeck::log::Reader::open(&out).unwrap();
    assert_eq!(reader.meta().source, "backfill:binance");
    assert!(reader.meta().notes["backfill.gap"].contains("bucket open times in ms"));
    assert!(reader.meta().notes.contains_key("binance.backfill.klines"));
    assert_eq!(reader.symbols().iter().map(|(_, i)| i.symbol.clone()).collect::<Vec<_>>(), ["ADA/BTC"]);
    drop(reader);
    // A rerun finds everything held and fetches nothing but the symbol list.
    let again = run(&args(&server, out.to_str().unwrap(), &[]));
    assert_eq!(again.code, 0, "{}", again.stderr);
    let summary: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(
        (summary["records_written"].as_u64(), summary["streams"][0]["held_before"].as_u64()),
        (Some(0), Some(21))
    );
    assert_eq!(read(&out).len(), 22);
}

#[test]
fn waits_out_429_and_418_retry_after_and_retries_a_500() {
    let faults = vec![(2, 429, Some(1)), (4, 418, Some(1)), (6, 500, None)];
    let server = start(Options { cap: 4, faults, ..Options::default() });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec");
    let result = run(&args(&server, out.to_str().unwrap(), &[]));
    assert_eq!(result.code, 0, "{}", result.stderr);
    check(&read(&out), &[], &[MISSING_DAY], true);
    let hits = server.hits();
    for (fault, least_ms) in [(2, 1000), (4, 1000), (6, 200)] {
        let (refused, retried) = (&hits[fault], &hits[fault + 1]);
        assert_ne!(refused.status, 200);
        assert_eq!((retried.status, &retried.path), (200, &refused.path), "the same page is asked again");
        let waited = retried.received_ms - refused.sent_ms;
        assert!(waited >= least_ms, "request {fault}: retried after {waited} ms");
    }
    let summary: serde_json::Value = serde_json::from_str(&result.stdout).unwrap();
    assert_eq!((summary["retries"].as_u64(), summary["throttled"].as_u64()), (Some(3), Some(2)));
    assert!(summary["waited_ms"].as_u64().unwrap() >= 2000);
}

#[test]
fn slows_down_when_the_used_weight_header_nears_the_limit() {
    // The weight window shortened to 2 s (the venue's is a minute); the server reports 5990 of
    // 6000 used on the second kline page, so the next request must wait for the next window.
    let server = start(Options { cap: 4, weight_at: vec![(2, 5990)], ..Options::default() });
    let dir = tempfile::tempdir().unwrap();
    let budget = tapedeck::exchange::RestBudget {
        window: Duration::from_secs(2),
        ..tapedeck::exchange::binance::BinanceVenue.rest_budget()
    };
    let config = Config {
        exchange: Exchange::Binance,
        rest_url: server.url.clone(),
        symbols: vec!["ADA/BTC".into()],
        kline_s: Some(60),
        trades: false,
        from_ms: FROM,
        to_ms: TO,
        now_ms: wall_ms(),
        budget: Some(budget),
        retry: Retry::default(),
    };
    // Start early in a window, so the high report and the next request share it unless paced.
    std::thread::sleep(Duration::from_millis(2000 - wall_ms() % 2000 + 50));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut backfill = runtime.block_on(Backfill::prepare(config, dir.path())).unwrap();
    let mut writer = Writer::open(dir.path(), backfill.meta(vec!["test".into()], 0), WriterConfig::default()).unwrap();
    let mut waits = Vec::new();
    let summary =
        runtime.block_on(backfill.run(&mut writer, &|| false, &mut |p| waits.extend(p.waiting.clone()))).unwrap();
    writer.close().unwrap();
    check(&read(dir.path()), &[], &[MISSING_DAY], true);
    let hits = server.hits();
    let window = |ms: u64| ms / 2000;
    assert!(window(hits[3].received_ms) > window(hits[2].sent_ms), "{:?}", &hits[2..4]);
    assert!(window(hits[2].received_ms) == window(hits[1].sent_ms), "no pause before the report");
    assert_eq!(summary.paced, 1);
    assert!(waits.iter().any(|w| w.starts_with("pacing")), "{waits:?}");
}

#[test]
fn resumes_after_an_interrupt_and_a_kill_without_loss_or_duplicates() {
    // The 12,477 XRPETH aggregate trades (1000 a page, by fromId), then the ADABTC klines (2 a
    // page), 50 ms a page. Trades are from 2019, so every trade is written before any candle.
    let server = start(Options { cap: 2, trade_cap: 1000, delay_ms: 50, ..Options::default() });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec");
    let out = out.to_str().unwrap();
    let args = [
        "backfill",
        "--exchange",
        "binance",
        "--symbols",
        "XRPETH,ADABTC",
        "--kline",
        "1m",
        "--trades",
        "--from",
        "2019-10-11",
        "--to",
        "2021-11-29",
        "--out",
        out,
        "--rest-url",
        &server.url,
        "--json",
    ];
    let stop_after = |requests: usize, signal: &str| {
        let child = tapedeck().args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(8);
        while server.hits().len() < requests && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let status = std::process::Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let output = child.wait_with_output().unwrap();
        (output.status.code(), String::from_utf8(output.stdout).unwrap())
    };
    let kinds = |records: &[Record]| {
        let count = |f: fn(&Event) -> bool| records.iter().filter(|r| f(&r.event)).count();
        (count(|e| matches!(e, Event::Trade(_))), count(|e| matches!(e, Event::Candle(_))))
    };
    // Ctrl-C: stops cleanly (flushed, summary printed, exit 130).
    let (code, stdout) = stop_after(6, "-INT");
    assert_eq!(code, Some(130));
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["interrupted"], true);
    let records = read(Path::new(out));
    assert_eq!(summary["next_seq"].as_u64(), Some(records.len() as u64));
    assert!(kinds(&records).0 > 0);
    // SIGKILL in the middle of the klines: no chance to flush; the rerun asks again.
    let (code, _) = stop_after(server.hits().len() + 18, "-KILL");
    assert_eq!(code, None, "killed by a signal");
    let records = read(Path::new(out));
    let (trades_held, candles_held) = kinds(&records);
    assert_eq!(trades_held, 12_477, "all trades were in before the klines");
    assert!((1..21).contains(&candles_held), "killed mid-klines: {candles_held} candles held");
    let result = run(&args);
    assert_eq!(result.code, 0, "{}", result.stderr);
    let summary: serde_json::Value = serde_json::from_str(&result.stdout).unwrap();
    let held: Vec<u64> =
        summary["streams"].as_array().unwrap().iter().map(|s| s["held_before"].as_u64().unwrap()).collect();
    assert_eq!(held, [0, 12_477, candles_held as u64, 0], "XRPETH klines, XRPETH trades, ADABTC klines, ADABTC trades");
    assert_eq!(summary["first_seq"].as_u64(), Some(records.len() as u64));
    let records = read(Path::new(out));
    assert_eq!(summary["next_seq"].as_u64(), Some(records.len() as u64));
    check(&records, &fixture(AGG_TRADES), &[MISSING_DAY], true);
    let ids: BTreeSet<u64> =
        records.iter().filter_map(|r| if let Event::Trade(t) = &r.event { t.trade_id } else { None }).collect();
    assert_eq!(ids.len(), 12_477, "no duplicate trade");
}

#[test]
fn gate_pages_candles_by_window() {
    let server = start(Options { cap: 1000, gate: true, ..Options::default() });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec");
    let out = out.to_str().unwrap();
    let result = run(&[
        "backfill",
        "--exchange",
        "gate",
        "--symbols",
        "ADA_BTC",
        "--kline",
        "1m",
        "--from",
        "2021-11-27",
        "--to",
        "2021-11-29",
        "--out",
        out,
        "--rest-url",
        &server.url,
    ]);
    assert_eq!(result.code, 0, "{}", result.stderr);
    check(&read(std::path::Path::new(out)), &[], &[("ADA_BTC:kline_1m", MISSING_DAY.1, MISSING_DAY.2)], false);
    let windows: Vec<String> = server
        .paths("/api/v4/spot/candlesticks")
        .iter()
        .map(|p| p.split("&from=").nth(1).unwrap().to_string())
        .collect();
    // Windows of 1000 buckets; after rows, the next starts right after the last one.
    // An empty window moves on to its end: the missing day costs one request.
    let expected = [
        "1637971200&to=1638031199",
        "1637971800&to=1638031799",
        "1638031800&to=1638091799",
        "1638058260&to=1638118259",
    ];
    assert_eq!(windows, [&expected[..], &["1638118260&to=1638143999"]].concat());
}

#[test]
fn bad_input_gets_one_line_naming_the_flag_and_writes_nothing() {
    let server = start(Options { cap: 1000, ..Options::default() });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec");
    let out = out.to_str().unwrap();
    fn base<'a>(symbols: &'a str, from: &'a str, to: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["backfill", "--exchange", "binance", "--symbols", symbols, "--from", from, "--to", to];
        a.extend_from_slice(extra);
        a
    }
    let foreign = copy_recording(&root().join(SAMPLE));
    let (foreign_out, url) = (foreign.path().to_str().unwrap(), server.url.as_str());
    let (day1, day3) = ("2021-11-27", "2021-11-29");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (base("ADABTC", day1, day3, &["--kline", "2m", "--out", out]), "--kline 2m: binance has no 2m klines"),
        (base("ADABTC", day1, day3, &["--out", out]), "--kline"),
        (base("ADABTC", "2021-13-01", day3, &["--kline", "1m", "--out", out]), "--from"),
        (base("ADABTC", day1, "2021-11-26", &["--kline", "1m", "--out", out]), "--to must be after --from"),
        (
            [
                "backfill",
                "--exchange",
                "gate",
                "--symbols",
                "ADA_BTC",
                "--trades",
                "--from",
                day1,
                "--to",
                "now",
                "--out",
                out,
            ]
            .to_vec(),
            "--trades: gate: trade backfill",
        ),
        (
            [base("NOPE", day1, day3, &["--kline", "1m", "--out", out]), vec!["--rest-url", url]].concat(),
            "--symbols: binance: unknown symbol NOPE",
        ),
        (
            [base("ADABTC", day1, day3, &["--kline", "1m", "--out", foreign_out]), vec!["--rest-url", url]].concat(),
            "--out: ",
        ),
    ];
    for (args, expected) in cases {
        let result = run(&args);
        assert_eq!(result.code, 2, "{args:?}: {}", result.stderr);
        let lines: Vec<&str> = result.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {}", result.stderr);
        assert!(lines[0].contains(expected), "{args:?}: {}", lines[0]);
        assert!(!std::path::Path::new(out).exists(), "{args:?} left {out} behind");
    }
    assert_eq!(read(foreign.path()).len(), read(&root().join(SAMPLE)).len(), "the capture recording is untouched");
}
