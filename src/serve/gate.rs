//! Gate.io spot v4 for `serve --protocol gate`: records rendered back into Gate's WebSocket
//! updates and REST bodies, and Gate's subscribe/ping control messages parsed.
//!
//! Like `binance.rs`, this is a deliberate exception to "only `src/exchange/gate/` knows
//! Gate's wire format": serving needs the server side (acks, pongs, the pairs list), which
//! capture never writes. Served: `spot.trades`, `spot.book_ticker`, `spot.order_book_update`
//! (diffs, `100ms`), `GET /api/v4/spot/currency_pairs` and `GET /api/v4/spot/order_book`.
//! Decimals are the recorded strings; times are the recorded ones (trades to the nanosecond
//! through `create_time_ms`). No IO here.

use std::fmt::Write;

use crate::model::{BookDelta, Level, Nanos, Quote, Side, SymbolTable, Trade};

/// Gate's spelling of a canonical pair: `BTC/USDT` → `BTC_USDT`.
pub fn pair(symbol: &str) -> String {
    symbol.replace('/', "_")
}

fn head(out: &mut String, channel: &str, ts: Nanos) {
    let _ = write!(
        out,
        r#"{{"time":{},"time_ms":{},"channel":"{channel}","event":"update","result":"#,
        ts / 1_000_000_000,
        ts / 1_000_000
    );
}

fn levels(out: &mut String, levels: &[Level]) {
    out.push('[');
    for (i, l) in levels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, r#"["{}","{}"]"#, l.price, l.qty);
    }
    out.push(']');
}

/// A `spot.trades` update. `create_time_ms` carries the recorded time to the nanosecond.
pub fn trade(out: &mut String, pair: &str, ts: Nanos, t: &Trade) {
    head(out, "spot.trades", ts);
    let side = match t.side {
        Side::Buy => "buy",
        Side::Sell => "sell",
        _ => "unknown",
    };
    let _ = write!(
        out,
        r#"{{"id":{},"create_time":{},"create_time_ms":"{}.{:06}","side":"{side}","currency_pair":"{pair}","amount":"{}","price":"{}"}}}}"#,
        t.trade_id.unwrap_or(0),
        ts / 1_000_000_000,
        ts / 1_000_000,
        ts % 1_000_000,
        t.qty,
        t.price
    );
}

/// A `spot.book_ticker` update.
pub fn book_ticker(out: &mut String, pair: &str, ts: Nanos, q: &Quote) {
    head(out, "spot.book_ticker", ts);
    let _ = write!(out, r#"{{"t":{}"#, ts / 1_000_000);
    if let Some(u) = q.update_id {
        let _ = write!(out, r#","u":{u}"#);
    }
    let _ = write!(
        out,
        r#","s":"{pair}","b":"{}","B":"{}","a":"{}","A":"{}"}}}}"#,
        q.bid_price, q.bid_qty, q.ask_price, q.ask_qty
    );
}

/// A `spot.order_book_update` diff.
pub fn depth_update(out: &mut String, pair: &str, ts: Nanos, d: &BookDelta) {
    head(out, "spot.order_book_update", ts);
    let _ = write!(
        out,
        r#"{{"t":{},"e":"update","E":{},"s":"{pair}","U":{},"u":{},"b":"#,
        ts / 1_000_000,
        ts / 1_000_000_000,
        d.first_update_id,
        d.last_update_id
    );
    levels(out, &d.bids);
    out.push_str(r#","a":"#);
    levels(out, &d.asks);
    out.push_str("}}");
}

/// What a client sent on the WebSocket.
#[derive(Debug, PartialEq, Eq)]
pub enum Control {
    Subscribe { channel: String, payload: Vec<String> },
    Unsubscribe { channel: String, payload: Vec<String> },
    Ping,
}

/// Parses a client message; an error is the reply to send.
pub fn parse_control(text: &str, now_ms: u64) -> Result<Control, String> {
    let request: serde_json::Value =
        serde_json::from_str(text).map_err(|_| error_reply("", "", 2, "invalid request", now_ms))?;
    let channel = request["channel"].as_str().unwrap_or_default().to_string();
    let event = request["event"].as_str().unwrap_or_default().to_string();
    if channel == "spot.ping" {
        return Ok(Control::Ping);
    }
    let payload: Option<Vec<String>> = request["payload"]
        .as_array()
        .map(|items| items.iter().map(|v| v.as_str().map(str::to_string)).collect::<Option<Vec<_>>>())
        .unwrap_or(None);
    match (event.as_str(), payload) {
        ("subscribe", Some(payload)) => Ok(Control::Subscribe { channel, payload }),
        ("unsubscribe", Some(payload)) => Ok(Control::Unsubscribe { channel, payload }),
        ("subscribe" | "unsubscribe", None) => Err(error_reply(&channel, &event, 2, "invalid payload", now_ms)),
        _ => Err(error_reply(&channel, &event, 2, "unknown event", now_ms)),
    }
}

/// The acknowledgement of a (un)subscribe.
pub fn ack(channel: &str, event: &str, now_ms: u64) -> String {
    format!(
        r#"{{"time":{},"time_ms":{now_ms},"channel":"{channel}","event":"{event}","error":null,"result":{{"status":"success"}}}}"#,
        now_ms / 1000
    )
}

pub fn pong(now_ms: u64) -> String {
    format!(
        r#"{{"time":{},"time_ms":{now_ms},"channel":"spot.pong","event":"","error":null,"result":null}}"#,
        now_ms / 1000
    )
}

pub fn error_reply(channel: &str, event: &str, code: u32, message: &str, now_ms: u64) -> String {
    format!(
        r#"{{"time":{},"time_ms":{now_ms},"channel":{},"event":{},"error":{{"code":{code},"message":{}}},"result":null}}"#,
        now_ms / 1000,
        serde_json::Value::from(channel),
        serde_json::Value::from(event),
        serde_json::Value::from(message)
    )
}

/// `GET /api/v4/spot/currency_pairs`: every instrument of the recording, tradable.
pub fn currency_pairs(symbols: &SymbolTable) -> String {
    let rows: Vec<serde_json::Value> = symbols
        .iter()
        .map(|(_, i)| {
            let (base, quote) = i.symbol.split_once('/').unwrap_or((&i.symbol, ""));
            serde_json::json!({"id": pair(&i.symbol), "base": base, "quote": quote, "trade_status": "tradable"})
        })
        .collect();
    serde_json::Value::from(rows).to_string()
}

/// `GET /api/v4/spot/order_book?with_id=true`: the served book, `id` its last update id.
pub fn order_book(last_update_id: u64, bids: &[Level], asks: &[Level], now_ms: u64) -> String {
    let mut out = format!(r#"{{"id":{last_update_id},"current":{now_ms},"update":{now_ms},"asks":"#);
    levels(&mut out, asks);
    out.push_str(r#","bids":"#);
    levels(&mut out, bids);
    out.push('}');
    out
}

/// A REST error body, as Gate writes them.
pub fn rest_error(label: &str, message: &str) -> String {
    serde_json::json!({"label": label, "message": message}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Decimal;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn updates_carry_the_recorded_strings_and_times() {
        let mut out = String::new();
        let t = Trade { price: d("0.000812"), qty: d("121.5800000000"), side: Side::Sell, trade_id: Some(7) };
        trade(&mut out, "NEO_BTC", 1_619_093_543_708_264_200, &t);
        assert_eq!(
            out,
            r#"{"time":1619093543,"time_ms":1619093543708,"channel":"spot.trades","event":"update","result":{"id":7,"create_time":1619093543,"create_time_ms":"1619093543708.264200","side":"sell","currency_pair":"NEO_BTC","amount":"121.5800000000","price":"0.000812"}}"#
        );
        out.clear();
        let delta = BookDelta {
            first_update_id: 5,
            last_update_id: 6,
            bids: vec![Level { price: d("1.10"), qty: d("0") }],
            asks: vec![],
        };
        depth_update(&mut out, "A_B", 2_000_000, &delta);
        assert!(
            out.ends_with(r#""result":{"t":2,"e":"update","E":0,"s":"A_B","U":5,"u":6,"b":[["1.10","0"]],"a":[]}}"#),
            "{out}"
        );
    }

    #[test]
    fn control_messages_parse_or_get_an_error_reply() {
        let sub = r#"{"time":1,"channel":"spot.order_book_update","event":"subscribe","payload":["BTC_USDT","100ms"]}"#;
        assert_eq!(
            parse_control(sub, 0),
            Ok(Control::Subscribe {
                channel: "spot.order_book_update".into(),
                payload: vec!["BTC_USDT".into(), "100ms".into()]
            })
        );
        assert_eq!(parse_control(r#"{"time":1,"channel":"spot.ping"}"#, 0), Ok(Control::Ping));
        for bad in ["nope", r#"{"channel":"spot.trades","event":"subscribe","payload":[1]}"#, r#"{"event":"x"}"#] {
            let reply = parse_control(bad, 5000).unwrap_err();
            assert!(reply.contains(r#""error":{"code":2"#), "{reply}");
        }
    }
}
