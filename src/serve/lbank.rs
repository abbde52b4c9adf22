//! LBank spot WebSocket V2 for `serve --protocol lbank`: records rendered back into LBank's
//! pushes, its subscribe and ping messages parsed, and the pairs list for REST.
//!
//! Like `binance.rs` and `gate.rs`, a deliberate exception to "only `src/exchange/lbank/`
//! knows LBank's wire format": serving needs the server side. LBank pushes whole books
//! (`depth`), not diffs, so the clock sends the served book's top levels after every book
//! change. Times are LBank's zone-less UTC+8 strings, to the nanosecond when the recorded
//! time is not a whole millisecond; prices and sizes are bare JSON numbers written with the
//! recorded digits. No IO here.

use std::fmt::Write;

use crate::model::time::format_utc;
use crate::model::{Level, NANOS_PER_SEC, Nanos, Side, SymbolTable, Trade};

/// Levels a side in a served `depth` push (LBank's largest subscription).
pub const DEPTH_LEVELS: usize = 100;

/// LBank's spelling of a canonical pair: `BTC/USDT` → `btc_usdt`.
pub fn pair(symbol: &str) -> String {
    symbol.replace('/', "_").to_lowercase()
}

/// `ts` as LBank writes times: UTC+8, no zone, 3 fractional digits or 9 when needed.
pub fn ts(ts: Nanos) -> String {
    let shifted = ts + 8 * 3600 * NANOS_PER_SEC;
    let text = format_utc(shifted);
    let seconds = &text[..text.len() - 5];
    if shifted % 1_000_000 == 0 {
        format!("{seconds}.{:03}", shifted % NANOS_PER_SEC / 1_000_000)
    } else {
        format!("{seconds}.{:09}", shifted % NANOS_PER_SEC)
    }
}

fn levels(out: &mut String, levels: &[Level]) {
    out.push('[');
    for (i, l) in levels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "[{},{}]", l.price, l.qty);
    }
    out.push(']');
}

/// A `trade` push; the deal time is both the inner and the envelope `TS`.
pub fn trade(out: &mut String, pair: &str, time: Nanos, t: &Trade) {
    let direction = match t.side {
        Side::Buy => "buy",
        Side::Sell => "sell",
        _ => "unknown",
    };
    let at = ts(time);
    let _ = write!(
        out,
        r#"{{"trade":{{"volume":{},"price":{},"direction":"{direction}","TS":"{at}"}},"type":"trade","pair":"{pair}","SERVER":"V2","TS":"{at}"}}"#,
        t.qty, t.price
    );
}

/// A `depth` push: the whole book, best levels first.
pub fn depth(out: &mut String, pair: &str, time: Nanos, bids: &[Level], asks: &[Level]) {
    out.push_str(r#"{"depth":{"asks":"#);
    levels(out, asks);
    out.push_str(r#","bids":"#);
    levels(out, bids);
    let _ = write!(
        out,
        r#"}},"count":{},"type":"depth","pair":"{pair}","SERVER":"V2","TS":"{}"}}"#,
        bids.len().max(asks.len()),
        ts(time)
    );
}

/// What a client sent on the WebSocket.
#[derive(Debug, PartialEq, Eq)]
pub enum Control {
    Subscribe {
        stream: String,
        pair: String,
    },
    Unsubscribe {
        stream: String,
        pair: String,
    },
    /// `ping` with the value to echo.
    Ping(serde_json::Value),
    /// The client's answer to our ping.
    Pong,
}

/// Parses a client message; an error is the reply to send.
pub fn parse_control(text: &str, now: Nanos) -> Result<Control, String> {
    let request: serde_json::Value =
        serde_json::from_str(text).map_err(|_| error_reply("invalid request: not JSON", now))?;
    let field = |k: &str| request[k].as_str().map(str::to_string);
    match request["action"].as_str() {
        Some("ping") => Ok(Control::Ping(request["ping"].clone())),
        Some("pong") => Ok(Control::Pong),
        Some(action @ ("subscribe" | "unsubscribe")) => {
            let (Some(stream), Some(pair)) = (field(action), field("pair")) else {
                return Err(error_reply(&format!("invalid {action}: needs \"{action}\" and \"pair\""), now));
            };
            Ok(if action == "subscribe" {
                Control::Subscribe { stream, pair }
            } else {
                Control::Unsubscribe { stream, pair }
            })
        }
        _ => Err(error_reply("unknown action", now)),
    }
}

pub fn pong(value: &serde_json::Value) -> String {
    format!(r#"{{"action":"pong","pong":{value}}}"#)
}

pub fn error_reply(message: &str, now: Nanos) -> String {
    format!(r#"{{"SERVER":"V2","message":{},"status":"error","TS":"{}"}}"#, serde_json::Value::from(message), ts(now))
}

/// `GET /v2/currencyPairs.do`.
pub fn currency_pairs(symbols: &SymbolTable, now_ms: u64) -> String {
    let pairs: Vec<String> = symbols.iter().map(|(_, i)| pair(&i.symbol)).collect();
    format!(r#"{{"result":"true","data":{},"error_code":0,"ts":{now_ms}}}"#, serde_json::json!(pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_plus_8_without_a_zone() {
        // 2019-06-28T11:55:49.460Z is 19:55:49.460 in UTC+8.
        let ms = 1_561_722_949_460 * 1_000_000;
        assert_eq!(ts(ms), "2019-06-28T19:55:49.460");
        assert_eq!(ts(ms + 123), "2019-06-28T19:55:49.460000123");
    }

    #[test]
    fn pushes_and_control() {
        let mut out = String::new();
        let t =
            Trade { price: "12129".parse().unwrap(), qty: "6.3607".parse().unwrap(), side: Side::Sell, trade_id: None };
        trade(&mut out, "btc_usdt", 1_561_722_949_460_000_000, &t);
        assert_eq!(
            out,
            r#"{"trade":{"volume":6.3607,"price":12129,"direction":"sell","TS":"2019-06-28T19:55:49.460"},"type":"trade","pair":"btc_usdt","SERVER":"V2","TS":"2019-06-28T19:55:49.460"}"#
        );
        let sub = r#"{"action":"subscribe","subscribe":"depth","depth":"100","pair":"btc_usdt"}"#;
        assert_eq!(parse_control(sub, 0), Ok(Control::Subscribe { stream: "depth".into(), pair: "btc_usdt".into() }));
        assert_eq!(parse_control(r#"{"action":"ping","ping":"a-1"}"#, 0), Ok(Control::Ping("a-1".into())));
        assert_eq!(pong(&"a-1".into()), r#"{"action":"pong","pong":"a-1"}"#);
        assert!(parse_control(r#"{"action":"subscribe","pair":"x"}"#, 0).unwrap_err().contains(r#""status":"error""#));
    }
}
