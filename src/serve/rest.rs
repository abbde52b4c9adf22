//! The REST side of `tapedeck serve`: one request per connection, answered from the shared
//! clock's state (exchange info, served order books, klines) in the protocol the server
//! speaks, then `connection: close`. No WebSocket here; `session.rs` hands requests over.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::binance as wire;
use super::clock::State;
use super::session::Shared;
use crate::model::InstrumentId;

/// How long `GET /api/v3/depth` waits for the replay to reach a book.
const BOOK_WAIT: Duration = Duration::from_secs(5);

/// Reads one request and writes its answer.
pub(super) async fn answer(mut stream: TcpStream, shared: &Shared) {
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
