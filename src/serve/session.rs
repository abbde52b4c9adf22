//! One port for both protocols: a request that asks for a WebSocket upgrade becomes a stream
//! session here, in the Binance, Gate or LBank protocol; anything else goes to `rest.rs`
//! (one request per connection, then `connection: close`, which every HTTP client handles
//! and keeps this server small).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::tungstenite::Message;

use super::binance::{self as wire, Control, StreamKey};
use super::clock::{Out, State};
use crate::model::InstrumentId;

/// Binance pings every 20 s.
const PING_EVERY: Duration = Duration::from_secs(20);
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
        super::rest::answer(stream, &shared).await;
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
