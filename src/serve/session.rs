//! One port for both protocols: a request that asks for a WebSocket upgrade becomes a stream
//! session, anything else is answered as a REST call (one request per connection, then
//! `connection: close`, which every HTTP client handles and keeps this server small).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::tungstenite::Message;

use super::binance::{self as wire, Control, StreamKey};
use super::clock::{Out, State};
use crate::model::InstrumentId;

/// Binance pings every 20 s.
const PING_EVERY: Duration = Duration::from_secs(20);
/// How long `GET /api/v3/depth` waits for the replay to reach a book.
const BOOK_WAIT: Duration = Duration::from_secs(5);
/// Messages written before a flush: batching is what makes `--speed max` fast.
const BATCH: usize = 1024;

pub struct Shared {
    pub state: Arc<State>,
    pub symbols: Arc<Vec<wire::SymbolSpec<'static>>>,
}

/// Reads the request head without consuming it, then hands the connection to one side.
pub async fn handle(stream: TcpStream, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 8192];
    let mut waited = 0;
    let head = loop {
        let Ok(n) = stream.peek(&mut buf).await else { return };
        if n == 0 {
            return;
        }
        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") || n == buf.len() || waited > 5000 {
            break String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
        }
        // `peek` returns at once with what is there; wait for the rest of the head.
        tokio::time::sleep(Duration::from_millis(1)).await;
        waited += 1;
    };
    if head.lines().any(|l| l.starts_with("upgrade:") && l.contains("websocket")) {
        websocket(stream, shared).await;
    } else {
        rest(stream, &shared).await;
    }
}

/// One subscription of a session.
struct Sub {
    name: String,
    instrument: Option<InstrumentId>,
    key: StreamKey,
}

struct Session {
    shared: Arc<Shared>,
    subs: Vec<Sub>,
    combined: bool,
}

impl Session {
    fn resolve(&self, name: &str) -> Option<Sub> {
        let (sym, key) = wire::parse_stream(name)?;
        let instrument = match sym {
            Some(sym) => Some(*self.shared.state.by_symbol.get(&sym)?),
            None => None,
        };
        Some(Sub { name: name.to_string(), instrument, key })
    }

    /// Subscribes to every name, or to none if one is invalid (as Binance does).
    fn subscribe(&mut self, names: &[String]) -> bool {
        let Some(subs) = names.iter().map(|n| self.resolve(n)).collect::<Option<Vec<Sub>>>() else { return false };
        let state = &self.shared.state;
        for sub in subs {
            if self.subs.iter().any(|s| s.name == sub.name) {
                continue;
            }
            match (sub.key, sub.instrument) {
                (StreamKey::Depth, Some(i)) => {
                    state.awaiting_snapshot[i.0 as usize].fetch_add(1, Ordering::AcqRel);
                }
                (StreamKey::Kline(s), _) => state.want_klines(s),
                _ => {}
            }
            self.subs.push(sub);
        }
        true
    }

    fn control(&mut self, text: &str) -> String {
        let (id, control) = wire::parse_control(text);
        match control {
            Err(reply) => reply,
            Ok(Control::Subscribe(names)) => {
                if self.subscribe(&names) {
                    wire::result_reply(serde_json::Value::Null, &id)
                } else {
                    wire::invalid_stream(&id)
                }
            }
            Ok(Control::Unsubscribe(names)) => {
                self.subs.retain(|s| !names.contains(&s.name));
                wire::result_reply(serde_json::Value::Null, &id)
            }
            Ok(Control::List) => {
                let names: Vec<&str> = self.subs.iter().map(|s| s.name.as_str()).collect();
                wire::result_reply(serde_json::json!(names), &id)
            }
            Ok(Control::SetCombined(on)) => {
                self.combined = on;
                wire::result_reply(serde_json::Value::Null, &id)
            }
            Ok(Control::GetCombined) => wire::result_reply(serde_json::json!(self.combined), &id),
        }
    }

    /// What `out` looks like on this session for `sub`.
    fn frame(&self, sub: &Sub, out: &Out) -> String {
        if self.combined { wire::envelope(&sub.name, &out.payload) } else { out.payload.clone() }
    }
}

async fn websocket(stream: TcpStream, shared: Arc<Shared>) {
    let mut uri = String::new();
    #[allow(clippy::result_large_err)] // the signature is tungstenite's
    let callback = |req: &tokio_tungstenite::tungstenite::handshake::server::Request, resp| {
        uri = req.uri().to_string();
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else { return };
    // Subscribe to the clock before anything can start it, so no record is missed.
    let mut rx = shared.state.tx.subscribe();
    match shared.state.protocol {
        super::Protocol::Gate => return gate_websocket(ws, rx, shared).await,
        super::Protocol::LBank => return lbank_websocket(ws, rx, shared).await,
        super::Protocol::Binance => {}
    }
    let mut session = Session { shared: shared.clone(), subs: Vec::new(), combined: false };
    let (path, query) = uri.split_once('?').unwrap_or((&uri, ""));
    let names: Vec<String> = if let Some(list) = query.split('&').find_map(|kv| kv.strip_prefix("streams=")) {
        session.combined = path.starts_with("/stream");
        list.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect()
    } else if let Some(list) = path.strip_prefix("/ws/") {
        // Binance accepts any name here, not only market streams: a user-data listenKey, or
        // the connection index ccxt puts there before it SUBSCRIBEs (`/ws/0`). A name without
        // `@` cannot be a market stream; it carries nothing here.
        list.split('/').filter(|s| s.contains('@')).map(str::to_string).collect()
    } else if path == "/ws" || path == "/ws/" || path == "/stream" {
        session.combined = path == "/stream";
        Vec::new()
    } else {
        let _ = ws
            .send(Message::text(wire::error_reply(2, "Invalid request: unknown path", &serde_json::Value::Null)))
            .await;
        let _ = ws.close(None).await;
        return;
    };
    if !session.subscribe(&names) {
        let _ = ws.send(Message::text(wire::invalid_stream(&serde_json::Value::Null))).await;
        let _ = ws.close(None).await;
        return;
    }
    shared.state.started.store(true, Ordering::Release);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut lost = 0u64;
    loop {
        tokio::select! {
            message = ws.next() => match message {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(Message::Ping(payload))) => {
                    if ws.send(Message::Pong(payload)).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    let reply = session.control(&text);
                    if ws.send(Message::text(reply)).await.is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
            },
            received = rx.recv() => {
                let batch = match take_batch(received, &mut rx, &shared.state, &mut lost) {
                    Some(batch) => batch,
                    None => break,
                };
                // Collected before the write: a lazy iterator over `session` held across the
                // await would make the task's future not `Send`.
                let frames: Vec<String> = batch
                    .iter()
                    .flat_map(|out| session.subs.iter().filter(|sub| sub.key == out.key && sub.instrument == out.instrument).map(|sub| session.frame(sub, out)))
                    .collect();
                if !send_all(&mut ws, frames).await {
                    break;
                }
            }
            _ = ping.tick() => {
                if ws.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
        }
    }
    for sub in &session.subs {
        if let (StreamKey::Depth, Some(i)) = (sub.key, sub.instrument) {
            let _ =
                shared.state.awaiting_snapshot[i.0 as usize]
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
    }
}

/// A Gate session: any path; `{"channel","event":"subscribe","payload"}` requests acked as
/// Gate acks them, `spot.ping` answered with `spot.pong`, updates sent as rendered.
async fn gate_websocket(
    mut ws: tokio_tungstenite::WebSocketStream<TcpStream>,
    mut rx: tokio::sync::broadcast::Receiver<Arc<Out>>,
    shared: Arc<Shared>,
) {
    use super::gate::{self, Control};
    let state = &shared.state;
    let mut subs: Vec<(StreamKey, InstrumentId)> = Vec::new();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut lost = 0u64;
    loop {
        tokio::select! {
            message = ws.next() => match message {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(Message::Ping(payload))) => {
                    if ws.send(Message::Pong(payload)).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    let now = state.now_ms();
                    let reply = match gate::parse_control(&text, now) {
                        Err(reply) => reply,
                        Ok(Control::Ping) => gate::pong(now),
                        Ok(Control::Subscribe { channel, payload }) => match gate_subs(state, &channel, &payload) {
                            Ok(wanted) => {
                                for sub in wanted {
                                    if subs.contains(&sub) {
                                        continue;
                                    }
                                    if sub.0 == StreamKey::Depth {
                                        state.awaiting_snapshot[sub.1.0 as usize].fetch_add(1, Ordering::AcqRel);
                                    }
                                    subs.push(sub);
                                }
                                state.started.store(true, Ordering::Release);
                                gate::ack(&channel, "subscribe", now)
                            }
                            Err(message) => gate::error_reply(&channel, "subscribe", 2, &message, now),
                        },
                        Ok(Control::Unsubscribe { channel, payload }) => match gate_subs(state, &channel, &payload) {
                            Ok(gone) => {
                                subs.retain(|s| !gone.contains(s));
                                gate::ack(&channel, "unsubscribe", now)
                            }
                            Err(message) => gate::error_reply(&channel, "unsubscribe", 2, &message, now),
                        },
                    };
                    if ws.send(Message::text(reply)).await.is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
            },
            received = rx.recv() => {
                let batch = match take_batch(received, &mut rx, state, &mut lost) {
                    Some(batch) => batch,
                    None => break,
                };
                if !send_all(&mut ws, subscribed(&batch, &subs)).await {
                    break;
                }
            }
            _ = ping.tick() => {
                if ws.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
        }
    }
    for (key, id) in &subs {
        if *key == StreamKey::Depth {
            let _ = state.awaiting_snapshot[id.0 as usize]
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
    }
}

/// An LBank session: any path; `{"action":"subscribe","subscribe":"trade|depth","pair"}`
/// (no ack, as LBank), `{"action":"ping","ping":X}` answered with the same X.
async fn lbank_websocket(
    mut ws: tokio_tungstenite::WebSocketStream<TcpStream>,
    mut rx: tokio::sync::broadcast::Receiver<Arc<Out>>,
    shared: Arc<Shared>,
) {
    use super::lbank::{self, Control};
    let state = &shared.state;
    let mut subs: Vec<(StreamKey, InstrumentId)> = Vec::new();
    let mut lost = 0u64;
    loop {
        tokio::select! {
            message = ws.next() => match message {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(Message::Ping(payload))) => {
                    if ws.send(Message::Pong(payload)).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    let now = state.clock.load(Ordering::Relaxed);
                    let reply = match lbank::parse_control(&text, now) {
                        Err(reply) => Some(reply),
                        Ok(Control::Ping(value)) => Some(lbank::pong(&value)),
                        Ok(Control::Pong) => None,
                        Ok(Control::Subscribe { stream, pair }) => lbank_subscribe(state, &mut subs, true, &stream, &pair, now),
                        Ok(Control::Unsubscribe { stream, pair }) => {
                            lbank_subscribe(state, &mut subs, false, &stream, &pair, now)
                        }
                    };
                    if let Some(reply) = reply
                        && ws.send(Message::text(reply)).await.is_err()
                    {
                        break;
                    }
                }
                Some(Ok(_)) => {}
            },
            received = rx.recv() => {
                let batch = match take_batch(received, &mut rx, state, &mut lost) {
                    Some(batch) => batch,
                    None => break,
                };
                if !send_all(&mut ws, subscribed(&batch, &subs)).await {
                    break;
                }
            }
        }
    }
}

/// Adds or removes an LBank subscription; the error reply for an unknown stream or pair.
fn lbank_subscribe(
    state: &State,
    subs: &mut Vec<(StreamKey, InstrumentId)>,
    subscribe: bool,
    stream: &str,
    pair: &str,
    now: u64,
) -> Option<String> {
    let key = match stream {
        "trade" => StreamKey::Trade,
        "depth" => StreamKey::Depth,
        _ => return Some(super::lbank::error_reply(&format!("stream {stream} is not served (trade, depth are)"), now)),
    };
    let Some(id) = state.by_symbol.get(pair).copied() else {
        return Some(super::lbank::error_reply(&format!("Invalid pair ['{pair}']"), now));
    };
    if subscribe {
        if !subs.contains(&(key, id)) {
            subs.push((key, id));
        }
        state.started.store(true, Ordering::Release);
    } else {
        subs.retain(|s| *s != (key, id));
    }
    None
}

/// The message just received plus whatever else is queued, up to `BATCH`, to send with one
/// flush. Empty after a lag (the loss is counted and logged); `None` when the clock is gone.
fn take_batch(
    received: Result<Arc<Out>, RecvError>,
    rx: &mut tokio::sync::broadcast::Receiver<Arc<Out>>,
    state: &State,
    lost: &mut u64,
) -> Option<Vec<Arc<Out>>> {
    let first = match received {
        Ok(out) => out,
        Err(RecvError::Lagged(n)) => {
            *lost += n;
            state.drops.fetch_add(n, Ordering::Relaxed);
            tracing::warn!(lost = n, total_lost = *lost, "a slow client lost messages");
            return Some(Vec::new());
        }
        Err(RecvError::Closed) => return None,
    };
    let mut batch = vec![first];
    while batch.len() < BATCH {
        match rx.try_recv() {
            Ok(out) => batch.push(out),
            Err(_) => break,
        }
    }
    Some(batch)
}

/// Writes `frames` and flushes once; false when the client is gone.
async fn send_all(
    ws: &mut tokio_tungstenite::WebSocketStream<TcpStream>,
    frames: impl IntoIterator<Item = String>,
) -> bool {
    for frame in frames {
        if ws.feed(Message::text(frame)).await.is_err() {
            return false;
        }
    }
    ws.flush().await.is_ok()
}

/// The already-rendered payloads of `batch` that a Gate or LBank session subscribed to.
fn subscribed<'a>(batch: &'a [Arc<Out>], subs: &'a [(StreamKey, InstrumentId)]) -> impl Iterator<Item = String> + 'a {
    batch
        .iter()
        .filter(|out| subs.iter().any(|(key, id)| *key == out.key && Some(*id) == out.instrument))
        .map(|out| out.payload.clone())
}

/// The (stream, instrument) pairs a Gate subscribe names, or the error message.
fn gate_subs(state: &State, channel: &str, payload: &[String]) -> Result<Vec<(StreamKey, InstrumentId)>, String> {
    let resolve =
        |pair: &str| state.by_symbol.get(&pair.to_uppercase()).copied().ok_or(format!("unknown currency pair {pair}"));
    match channel {
        "spot.trades" | "spot.book_ticker" => {
            let key = if channel == "spot.trades" { StreamKey::Trade } else { StreamKey::BookTicker };
            payload.iter().map(|p| resolve(p).map(|id| (key, id))).collect()
        }
        "spot.order_book_update" => match payload {
            [pair, _interval] => Ok(vec![(StreamKey::Depth, resolve(pair)?)]),
            _ => Err("payload must be [currency_pair, interval]".into()),
        },
        other => {
            Err(format!("channel {other} is not served (spot.trades, spot.book_ticker, spot.order_book_update are)"))
        }
    }
}

async fn rest(mut stream: TcpStream, shared: &Shared) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65_536 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
    let (status, body) = if method == "GET" {
        route(target, shared).await
    } else {
        (405, wire::rest_error(-1000, "Only GET is served."))
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json;charset=UTF-8\r\ncontent-length: {}\r\n\
         x-mbx-used-weight-1m: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
}

async fn route(target: &str, shared: &Shared) -> (u16, String) {
    match shared.state.protocol {
        super::Protocol::Gate => return gate_route(target, shared).await,
        super::Protocol::LBank => {
            return match target.split_once('?').map_or(target, |(path, _)| path) {
                "/v2/currencyPairs.do" => {
                    (200, super::lbank::currency_pairs(&shared.state.symbols, shared.state.now_ms()))
                }
                _ => (404, r#"{"result":"false","error_code":10009,"msg":"not served by tapedeck"}"#.to_string()),
            };
        }
        super::Protocol::Binance => {}
    }
    let state = &shared.state;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let symbol = || {
        let sym = param(query, "symbol").unwrap_or("").to_uppercase();
        state.by_symbol.get(&sym).copied().ok_or((400, wire::rest_error(-1121, "Invalid symbol.")))
    };
    let result = match path {
        "/api/v3/ping" => Ok("{}".to_string()),
        "/api/v3/time" => Ok(format!(r#"{{"serverTime":{}}}"#, state.now_ms())),
        "/api/v3/exchangeInfo" => Ok(wire::exchange_info(state.now_ms(), &shared.symbols)),
        "/api/v3/depth" => match symbol() {
            Ok(id) => depth(state, id, param(query, "limit")).await,
            Err(e) => Err(e),
        },
        "/api/v3/klines" => symbol().and_then(|id| klines(state, id, query)),
        _ => Err((404, wire::rest_error(-1000, "Not served by tapedeck."))),
    };
    match result {
        Ok(body) => (200, body),
        Err(e) => e,
    }
}

async fn gate_route(target: &str, shared: &Shared) -> (u16, String) {
    use super::gate;
    let state = &shared.state;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let result = match path {
        "/api/v4/spot/currency_pairs" => Ok(gate::currency_pairs(&state.symbols)),
        "/api/v4/spot/order_book" => {
            let pair = param(query, "currency_pair").unwrap_or("").to_uppercase();
            match state.by_symbol.get(&pair).copied() {
                None => Err((400, gate::rest_error("INVALID_CURRENCY_PAIR", &format!("invalid currency pair {pair}")))),
                Some(id) => match served_book(state, id, param(query, "limit"), 100).await {
                    Ok((last, bids, asks)) => Ok(gate::order_book(last, &bids, &asks, state.now_ms())),
                    Err(BookError::Limit) => Err((400, gate::rest_error("INVALID_PARAM_VALUE", "invalid limit"))),
                    Err(BookError::NoBook) => {
                        Err((503, gate::rest_error("SERVER_ERROR", "no valid book at the current replay time")))
                    }
                },
            }
        }
        _ => Err((404, gate::rest_error("NOT_FOUND", "not served by tapedeck"))),
    };
    match result {
        Ok(body) => (200, body),
        Err(e) => e,
    }
}

/// Why no book could be served.
enum BookError {
    Limit,
    NoBook,
}

/// The served book at the current replay time, at most `limit` levels a side (default
/// `default_limit`); before the recording's first snapshot this waits for the clock to reach it.
async fn served_book(
    state: &State,
    id: InstrumentId,
    limit: Option<&str>,
    default_limit: usize,
) -> Result<(u64, Vec<crate::model::Level>, Vec<crate::model::Level>), BookError> {
    let limit = match limit.map(str::parse::<usize>) {
        None => default_limit,
        Some(Ok(n)) if (1..=5000).contains(&n) => n,
        Some(_) => return Err(BookError::Limit),
    };
    let deadline = tokio::time::Instant::now() + BOOK_WAIT;
    loop {
        {
            let books = state.books.lock().expect("books lock");
            if let Some(book) = books[id.0 as usize].depth(limit) {
                // Release the clock if it holds at a snapshot for this fetch.
                state.awaiting_snapshot[id.0 as usize].store(0, Ordering::Release);
                return Ok(book);
            }
        }
        if tokio::time::Instant::now() > deadline || state.finished.load(Ordering::Acquire) {
            return Err(BookError::NoBook);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The book at the current replay time; before the recording's first snapshot this waits for
/// the clock to reach it (a client syncing a book asks right after subscribing to diffs).
async fn depth(state: &State, id: InstrumentId, limit: Option<&str>) -> Result<String, (u16, String)> {
    match served_book(state, id, limit, 100).await {
        Ok((last, bids, asks)) => Ok(wire::depth_snapshot(last, &bids, &asks)),
        Err(BookError::Limit) => Err((400, wire::rest_error(-1100, "Illegal characters found in parameter 'limit'."))),
        Err(BookError::NoBook) => Err((503, wire::rest_error(-1003, "No valid book at the current replay time."))),
    }
}

/// Closed klines built so far; an interval asked for the first time is built from then on.
fn klines(state: &State, id: InstrumentId, query: &str) -> Result<String, (u16, String)> {
    let bad = |what: &str| (400, wire::rest_error(-1120, &format!("Invalid {what}.")));
    let interval = param(query, "interval").and_then(wire::interval_seconds).ok_or_else(|| bad("interval"))?;
    state.want_klines(interval);
    let num = |k: &str| param(query, k).map(|v| v.parse::<u64>().map_err(|_| bad(k))).transpose();
    let limit = num("limit")?.unwrap_or(500).clamp(1, 1000) as usize;
    let (start, end) = (num("startTime")?.unwrap_or(0), num("endTime")?.unwrap_or(u64::MAX));
    let klines = state.klines.lock().expect("klines lock");
    let rows: Vec<&str> = klines
        .get(&(id, interval))
        .map(|series| {
            let matching: Vec<&str> =
                series.iter().filter(|(t, _)| *t >= start && *t <= end).map(|(_, r)| r.as_str()).collect();
            // Without startTime Binance returns the most recent rows.
            if param(query, "startTime").is_some() {
                matching.into_iter().take(limit).collect()
            } else {
                matching[matching.len().saturating_sub(limit)..].to_vec()
            }
        })
        .unwrap_or_default();
    Ok(format!("[{}]", rows.join(",")))
}
