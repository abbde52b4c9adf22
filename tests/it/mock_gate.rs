//! A local Gate spot v4 on 127.0.0.1:0, speaking Gate's own protocol
//! (`shared/protocols/gate.md`), serving the real 2021 cryptofeed capture.
//!
//! WebSocket (any path; tapedeck uses `/ws/v4/`): `{"time","channel","event":"subscribe","payload"}`
//! requests are checked the way Gate documents them (`time` within 60 s of the server clock,
//! channel-specific payloads, listed pairs) and answered with the documented ack
//! `{"time","time_ms","channel","event":"subscribe","error":null,"result":{"status":"success"}}`,
//! or with an `error` object when refused. `spot.ping` gets the documented `spot.pong`. The
//! stream is the capture's server frames (`tests/fixtures/gateio_spot/GATEIO.ws.1.0`) verbatim,
//! in capture order, filtered to what the client subscribed; the capture's own acks are
//! skipped, since this mock acks what it is sent. Sequencing, `drop_after` and `garbage_every`:
//! see `mock_venue`.
//!
//! REST: `/api/v4/spot/currency_pairs` lists the capture's 10 pairs as tradable, one documented
//! CurrencyPair object each; `/api/v4/spot/order_book?currency_pair=X&..&with_id=true` returns the
//! capture's snapshot body for X (`GATEIO.http.0.0`).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::mock_venue::{self, Client, Frame, Options, Protocol, Server, now_ms, query_param};
use crate::util::root;

pub const WS_FIXTURE: &str = "tests/fixtures/gateio_spot/GATEIO.ws.1.0";
pub const HTTP_FIXTURE: &str = "tests/fixtures/gateio_spot/GATEIO.http.0.0";

/// The capture's pairs, in the order it subscribed them.
pub const PAIRS: [&str; 10] = [
    "INK_USDT",
    "HAI_ETH",
    "BTC_USDC",
    "NANO_USDT",
    "QTUM3S_USDT",
    "DIS_USDT",
    "NEO_BTC",
    "FAST_USDT",
    "ZKS_ETH",
    "OMG_USDT",
];

/// The WS candlestick intervals (§2).
const CANDLE_INTERVALS: [&str; 10] = ["10s", "1m", "5m", "15m", "30m", "1h", "4h", "8h", "1d", "7d"];

/// What the mock was sent.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Accepted subscribe requests, as received.
    pub subscribes: Vec<String>,
    /// Refused requests, with the reason sent back.
    pub rejected: Vec<String>,
    /// `spot.ping` requests answered with `spot.pong`.
    pub pings: usize,
}

pub struct MockGate {
    pub server: Server,
    seen: Arc<Mutex<Seen>>,
}

impl MockGate {
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws/v4/", self.server.ws)
    }

    pub fn rest_url(&self) -> String {
        self.server.rest_url()
    }

    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }
}

/// The capture's update frames in order, keyed by the stream that carries them (tapedeck's
/// stream names: `spot.trades NEO_BTC`, `spot.candlesticks 1m_NEO_BTC`, ..). Line 1 is the
/// connect header, client frames contain ` <- `, server lines are `<unix s>: <json>`; the
/// capture's subscribe acks are left out.
pub fn fixture_frames() -> Vec<Frame> {
    let text = std::fs::read_to_string(root().join(WS_FIXTURE)).unwrap();
    let mut frames = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty() && !l.contains(" <- ")) {
        let (_, frame) = line.split_once(": ").unwrap();
        let value: Value = serde_json::from_str(frame).unwrap();
        if value["event"] != "update" {
            continue;
        }
        let channel = value["channel"].as_str().unwrap();
        let result = &value["result"];
        let subject = match channel {
            "spot.trades" | "spot.tickers" => &result["currency_pair"],
            "spot.order_book_update" | "spot.book_ticker" => &result["s"],
            "spot.candlesticks" => &result["n"],
            other => panic!("unexpected channel {other} in {WS_FIXTURE}"),
        };
        let key = format!("{channel} {}", subject.as_str().unwrap());
        frames.push(Frame { key: Some(key), text: frame.to_string() });
    }
    frames
}

/// The capture's REST depth snapshot body per pair.
pub fn fixture_snapshots() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root().join(HTTP_FIXTURE)).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (url, rest) = l.split_once(" -> ").unwrap();
            let (_, body) = rest.split_once(": ").unwrap();
            (query_param(url, "currency_pair").unwrap().to_string(), body.to_string())
        })
        .collect()
}

pub fn start(options: Options) -> MockGate {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let gate = Gate { snapshots: fixture_snapshots(), seen: seen.clone() };
    assert_eq!(gate.snapshots.len(), PAIRS.len(), "one snapshot per pair");
    MockGate { server: mock_venue::start(Arc::new(gate), fixture_frames(), options), seen }
}

struct Gate {
    snapshots: BTreeMap<String, String>,
    seen: Arc<Mutex<Seen>>,
}

impl Gate {
    /// The stream keys a subscribe payload names, or Gate's error text.
    fn keys(channel: &str, payload: &Value) -> Result<Vec<String>, String> {
        let items: Vec<&str> = payload
            .as_array()
            .and_then(|a| a.iter().map(Value::as_str).collect())
            .ok_or_else(|| "payload must be an array of strings".to_string())?;
        let pair = |p: &str| {
            if PAIRS.contains(&p) { Ok(p.to_string()) } else { Err(format!("unknown currency pair {p}")) }
        };
        match (channel, items.as_slice()) {
            ("spot.trades" | "spot.tickers" | "spot.book_ticker", pairs) if !pairs.is_empty() => {
                pairs.iter().map(|p| Ok(format!("{channel} {}", pair(p)?))).collect()
            }
            ("spot.order_book_update", [p, interval]) if ["20ms", "100ms"].contains(interval) => {
                Ok(vec![format!("{channel} {}", pair(p)?)])
            }
            // Interval first here, unlike the order book.
            ("spot.candlesticks", [interval, p]) if CANDLE_INTERVALS.contains(interval) => {
                Ok(vec![format!("{channel} {interval}_{}", pair(p)?)])
            }
            (
                "spot.trades" | "spot.tickers" | "spot.book_ticker" | "spot.order_book_update" | "spot.candlesticks",
                _,
            ) => Err(format!("invalid payload {payload} for {channel}")),
            _ => Err(format!("unknown channel {channel}")),
        }
    }
}

impl Protocol for Gate {
    fn on_message(&self, text: &str, subscribed: &mut HashSet<String>) -> (Vec<String>, Client) {
        let now = now_ms();
        let mut seen = self.seen.lock().unwrap();
        let Ok(request) = serde_json::from_str::<Value>(text) else {
            seen.rejected.push(format!("not json: {text}"));
            let error = json!({"time": now / 1000, "time_ms": now, "channel": "", "event": "",
                "error": {"code": 1, "message": "invalid request body format"}, "result": null});
            return (vec![error.to_string()], Client::Other);
        };
        let channel = request["channel"].as_str().unwrap_or_default();
        let event = request["event"].as_str().unwrap_or_default();
        if channel == "spot.ping" {
            seen.pings += 1;
            let pong = json!({"time": now / 1000, "channel": "spot.pong", "event": "", "error": null, "result": null});
            return (vec![pong.to_string()], Client::Other);
        }
        let reply = |error: Value, result: Value| {
            let mut reply = json!({"time": now / 1000, "time_ms": now});
            if let Some(id) = request.get("id") {
                reply["id"] = id.clone();
            }
            reply["channel"] = channel.into();
            reply["event"] = event.into();
            reply["error"] = error;
            reply["result"] = result;
            reply.to_string()
        };
        let kind = if event == "subscribe" { Client::Subscribe } else { Client::Other };
        let outcome = match (event, request["time"].as_u64()) {
            ("subscribe" | "unsubscribe", Some(t)) if t.abs_diff(now / 1000) <= 60 => {
                Self::keys(channel, &request["payload"])
            }
            ("subscribe" | "unsubscribe", time) => Err(format!("time {time:?} is not within 60 s of the server's")),
            _ => Err(format!("unsupported event {event:?}")),
        };
        match outcome {
            Ok(keys) => {
                for key in keys {
                    if event == "subscribe" {
                        subscribed.insert(key);
                    } else {
                        subscribed.remove(&key);
                    }
                }
                seen.subscribes.push(text.to_string());
                (vec![reply(Value::Null, json!({"status": "success"}))], kind)
            }
            Err(message) => {
                seen.rejected.push(format!("{message}: {text}"));
                (vec![reply(json!({"code": 2, "message": message}), Value::Null)], kind)
            }
        }
    }

    fn garbage(&self) -> &'static str {
        r#"{"time":1619093543,"channel":"spot.trades","event":"update","result":{not json"#
    }

    fn rest(&self, path: &str) -> (&'static str, String) {
        let error = |label: &str, message: String| json!({"label": label, "message": message}).to_string();
        if path == "/api/v4/spot/currency_pairs" {
            let pairs: Vec<Value> = PAIRS.iter().map(|p| currency_pair(p, &self.snapshots[*p])).collect();
            return ("200 OK", Value::from(pairs).to_string());
        }
        if path.starts_with("/api/v4/spot/order_book?") {
            let pair = query_param(path, "currency_pair").unwrap_or_default();
            return match (self.snapshots.get(pair), query_param(path, "with_id")) {
                (Some(body), Some("true")) => ("200 OK", body.clone()),
                (Some(_), _) => {
                    ("400 Bad Request", error("INVALID_PARAM_VALUE", "the mock serves with_id=true".into()))
                }
                (None, _) => {
                    ("400 Bad Request", error("INVALID_CURRENCY_PAIR", format!("Invalid currency pair {pair}")))
                }
            };
        }
        ("404 Not Found", error("NOT_FOUND", format!("no route for {path}")))
    }
}

/// A CurrencyPair object as documented (§4), tradable, with the precisions (decimal places) the
/// pair's snapshot actually uses.
fn currency_pair(pair: &str, snapshot: &str) -> Value {
    let (base, quote) = pair.split_once('_').unwrap();
    let book: Value = serde_json::from_str(snapshot).unwrap();
    let decimals = |column: usize| {
        ["asks", "bids"]
            .iter()
            .flat_map(|side| book[side].as_array().unwrap())
            .map(|level| level[column].as_str().unwrap().split_once('.').map_or(0, |(_, f)| f.len()))
            .max()
            .unwrap_or(0)
    };
    json!({
        "id": pair, "base": base, "quote": quote, "fee": "0.2",
        "min_base_amount": null, "min_quote_amount": "1", "max_base_amount": null, "max_quote_amount": null,
        "amount_precision": decimals(1), "precision": decimals(0), "trade_status": "tradable",
        "sell_start": 0, "buy_start": 0, "type": "normal"
    })
}
