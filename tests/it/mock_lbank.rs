//! A local LBank spot (WebSocket V2 + REST v2) on 127.0.0.1:0, speaking LBank's own protocol
//! (`shared/protocols/lbank.md`).
//!
//! WebSocket (any path; tapedeck uses `/ws/V2/`): `{"action":"subscribe","subscribe":..,"pair":..}`
//! requests (with `depth` 10/50/100 or a `kbar` slot where the channel needs one) are checked
//! and, as documented, not acknowledged; a refused one gets the documented error frame
//! `{"SERVER":"V2","message":..,"status":"error","TS":..}`. A client `ping` is answered with
//! `{"action":"pong","pong":<same value>}`. The server pings with the doc's
//! `{"action":"ping","ping":"<id>"}` and records which pongs came back exactly as documented,
//! `{"action":"pong","pong":"<id>"}` ([`Seen::pongs_ok`]).
//!
//! Frames: there is no real LBank capture, only the doc's one example push per channel
//! (`tests/fixtures/lbank/lbank_v2_ws_push_doc_examples.jsonl`). They are repeated
//! deterministically: [`ROUNDS`] rounds, each with every example (kbar, depth, trade, tick, in
//! file order) once per pair of [`PAIRS`], relabelled to that pair (`"pair"` only; the values
//! are the example's, so eth_btc trades carry the btc_usdt example's price), with every `TS`
//! in the frame moved [`STEP_MS`] ms later per round. The doc's server ping opens the stream
//! and comes again every [`PING_EVERY_ROUNDS`] rounds, with a fresh id (the first is the
//! doc's). Sequencing, `drop_after` and `garbage_every`: see `mock_venue`.
//!
//! REST: `/v2/currencyPairs.do` lists [`PAIRS`] plus `lbk_usdt` (listed, never pushed) in the
//! v2 envelope; `/v2/depth.do?symbol=X&size=N` serves the depth example's levels as the
//! documented string-valued body. Errors come with HTTP 200 and an `error_code`, as on LBank.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::mock_venue::{self, Client, Frame, Options, Protocol, Server, now_ms, query_param};
use crate::util::root;

pub const PUSHES: &str = "tests/fixtures/lbank/lbank_v2_ws_push_doc_examples.jsonl";

/// Pairs that get frames, in the order each round sends them.
pub const PAIRS: [&str; 2] = ["eth_btc", "btc_usdt"];
/// Listed by currencyPairs.do but never pushed.
pub const SILENT_PAIR: &str = "lbk_usdt";
/// Copies of each example per pair.
pub const ROUNDS: usize = 50;
/// How much later every `TS` is in each round.
pub const STEP_MS: u64 = 100;
/// A server ping before round 0 and before every this many rounds.
pub const PING_EVERY_ROUNDS: usize = 10;
/// The doc's ping id.
pub const DOC_PING_ID: &str = "0ca8f854-7ba7-4341-9d86-d3327e52804e";

const KBAR_SLOTS: [&str; 10] = ["1min", "5min", "15min", "30min", "1hr", "4hr", "day", "week", "month", "year"];

/// What the mock was sent.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Accepted subscribe requests, as received.
    pub subscribes: Vec<String>,
    /// Refused requests, with the reason sent back.
    pub rejected: Vec<String>,
    /// Client pings answered.
    pub client_pings: usize,
    /// Ids of server pings answered with exactly the documented pong, in arrival order.
    pub pongs_ok: Vec<String>,
    /// Any other pong.
    pub pongs_bad: Vec<String>,
}

pub struct MockLbank {
    pub server: Server,
    seen: Arc<Mutex<Seen>>,
}

impl MockLbank {
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws/V2/", self.server.ws)
    }

    pub fn rest_url(&self) -> String {
        self.server.rest_url()
    }

    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }
}

/// The id of the `n`th server ping: the doc's first, then fresh ones of the same shape.
pub fn ping_id(n: usize) -> String {
    if n == 0 { DOC_PING_ID.to_string() } else { format!("0ca8f854-7ba7-4341-9d86-{n:012x}") }
}

/// The frames the mock streams, in order (see the module doc). Pings have no key; pushes
/// are keyed by tapedeck's stream names (`trade btc_usdt`, `depth 100 eth_btc`, `kbar 5min ..`).
pub fn frames() -> Vec<Frame> {
    let text = std::fs::read_to_string(root().join(PUSHES)).unwrap();
    let ping = text.lines().find(|l| l.contains(r#""action":"ping""#)).unwrap();
    let pushes: Vec<(String, String, &str)> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && *l != ping)
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            let kind = v["type"].as_str().unwrap();
            let channel = match kind {
                "depth" => format!("depth {}", v["count"]),
                "kbar" => format!("kbar {}", v["kbar"]["slot"].as_str().unwrap()),
                other => other.to_string(),
            };
            (channel, format!(r#""pair":"{}""#, v["pair"].as_str().unwrap()), line)
        })
        .collect();
    assert_eq!(pushes.len(), 4, "one example per channel");
    let mut frames = Vec::new();
    for round in 0..ROUNDS {
        if round % PING_EVERY_ROUNDS == 0 {
            let id = ping_id(round / PING_EVERY_ROUNDS);
            frames.push(Frame { key: None, text: ping.replace(DOC_PING_ID, &id) });
        }
        for (channel, pair_field, line) in &pushes {
            for pair in PAIRS {
                let relabelled = line.replace(pair_field.as_str(), &format!(r#""pair":"{pair}""#));
                let text = shift_ts(&relabelled, round as u64 * STEP_MS);
                frames.push(Frame { key: Some(format!("{channel} {pair}")), text });
            }
        }
    }
    frames
}

/// Every server ping id in [`frames`], in order.
pub fn ping_ids() -> Vec<String> {
    (0..ROUNDS.div_ceil(PING_EVERY_ROUNDS)).map(ping_id).collect()
}

/// `text` with every `"TS":"<time>"` moved `ms` later (same day; LBank's zone-less format).
pub fn shift_ts(text: &str, ms: u64) -> String {
    const KEY: &str = r#""TS":""#;
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        let (head, tail) = rest.split_at(at + KEY.len());
        out.push_str(head);
        let end = tail.find('"').unwrap();
        out.push_str(&later(&tail[..end], ms));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// `2019-06-28T19:55:49.460` plus `ms`.
fn later(ts: &str, ms: u64) -> String {
    let (date, time) = ts.split_once('T').unwrap();
    let (hms, frac) = time.split_once('.').unwrap();
    assert_eq!(frac.len(), 3, "{ts}");
    let hms: Vec<u64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    let t = ((hms[0] * 60 + hms[1]) * 60 + hms[2]) * 1000 + frac.parse::<u64>().unwrap() + ms;
    assert!(t < 86_400_000, "{ts} + {ms} ms leaves the day");
    format!("{date}T{:02}:{:02}:{:02}.{:03}", t / 3_600_000, t / 60_000 % 60, t / 1000 % 60, t % 1000)
}

pub fn start(options: Options) -> MockLbank {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let lbank = Lbank { pings: ping_ids(), seen: seen.clone() };
    MockLbank { server: mock_venue::start(Arc::new(lbank), frames(), options), seen }
}

struct Lbank {
    pings: Vec<String>,
    seen: Arc<Mutex<Seen>>,
}

fn listed(pair: &str) -> bool {
    PAIRS.contains(&pair) || pair == SILENT_PAIR
}

/// The stream key a (un)subscribe request names, or the error message.
fn key(request: &Value) -> Result<String, String> {
    let field = |name: &str| request[name].as_str().ok_or_else(|| format!("Missing parameter ['{name}']"));
    let channel = field("subscribe")?;
    let pair = field("pair")?;
    if !listed(pair) {
        return Err(format!("Invalid pair ['{pair}']"));
    }
    match channel {
        "trade" | "tick" => Ok(format!("{channel} {pair}")),
        "depth" => match field("depth")? {
            size @ ("10" | "50" | "100") => Ok(format!("depth {size} {pair}")),
            other => Err(format!("Invalid depth ['{other}']")),
        },
        "kbar" => match field("kbar")? {
            slot if KBAR_SLOTS.contains(&slot) => Ok(format!("kbar {slot} {pair}")),
            other => Err(format!("Invalid kbar ['{other}']")),
        },
        other => Err(format!("Invalid subscribe ['{other}']")),
    }
}

/// The documented error frame. Its `TS` is the ccxt-quoted example's: clients read no time
/// from error frames.
fn error_frame(message: &str) -> String {
    json!({"SERVER": "V2", "message": message, "status": "error", "TS": "2024-01-16T08:09:43.314"}).to_string()
}

impl Protocol for Lbank {
    fn on_message(&self, text: &str, subscribed: &mut HashSet<String>) -> (Vec<String>, Client) {
        let mut seen = self.seen.lock().unwrap();
        let request: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        match request["action"].as_str() {
            Some(action @ ("subscribe" | "unsubscribe")) => match key(&request) {
                Ok(key) => {
                    if action == "subscribe" {
                        subscribed.insert(key);
                    } else {
                        subscribed.remove(&key);
                    }
                    seen.subscribes.push(text.to_string());
                    (Vec::new(), Client::Subscribe)
                }
                Err(message) => {
                    seen.rejected.push(format!("{message}: {text}"));
                    (vec![error_frame(&message)], Client::Subscribe)
                }
            },
            Some("ping") => {
                seen.client_pings += 1;
                (vec![json!({"action": "pong", "pong": request["ping"]}).to_string()], Client::Other)
            }
            Some("pong") => {
                match self.pings.iter().find(|id| text == format!(r#"{{"action":"pong","pong":"{id}"}}"#)) {
                    Some(id) => seen.pongs_ok.push(id.clone()),
                    None => seen.pongs_bad.push(text.to_string()),
                }
                (Vec::new(), Client::Other)
            }
            _ => {
                seen.rejected.push(format!("unknown request: {text}"));
                (vec![error_frame("Invalid action")], Client::Other)
            }
        }
    }

    fn garbage(&self) -> &'static str {
        r#"{"type":"trade","pair":"btc_usdt","SERVER":"V2","trade":{not json"#
    }

    fn rest(&self, path: &str) -> (&'static str, String) {
        let now = now_ms();
        if path == "/v2/currencyPairs.do" {
            let mut pairs: Vec<&str> = PAIRS.to_vec();
            pairs.push(SILENT_PAIR);
            return ("200 OK", json!({"result": "true", "data": pairs, "error_code": 0, "ts": now}).to_string());
        }
        if path.starts_with("/v2/depth.do?") {
            let symbol = query_param(path, "symbol").unwrap_or_default();
            let size = query_param(path, "size").and_then(|s| s.parse::<usize>().ok());
            let body = match size {
                Some(size @ 1..=200) if listed(symbol) => {
                    let data = depth_example(size, now);
                    json!({"result": "true", "data": data, "error_code": 0, "ts": now})
                }
                Some(1..=200) => {
                    json!({"result": "false", "error_code": 10008, "msg": "invalid trading pair", "ts": now})
                }
                _ => json!({"result": "false", "error_code": 10003, "msg": "Illegal parameter", "ts": now}),
            };
            return ("200 OK", body.to_string());
        }
        ("404 Not Found", json!({"result": "false", "error_code": 10001, "msg": "no such endpoint"}).to_string())
    }
}

/// The WS depth example's levels as a `depth.do` `data` object: prices and quantities as strings.
fn depth_example(size: usize, now: u64) -> Value {
    let text = std::fs::read_to_string(root().join(PUSHES)).unwrap();
    let depth: Value =
        text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).find(|v| v["type"] == "depth").unwrap();
    let side = |name: &str| -> Vec<[String; 2]> {
        depth["depth"][name]
            .as_array()
            .unwrap()
            .iter()
            .take(size)
            .map(|level| [level[0].to_string(), level[1].to_string()])
            .collect()
    };
    json!({"asks": side("asks"), "bids": side("bids"), "timestamp": now})
}
