//! Binance spot as `tapedeck serve` speaks it: records rendered back into Binance JSON,
//! stream names, WebSocket control replies and REST v3 bodies.
//!
//! This is the one place outside `src/exchange/binance/` that knows Binance's wire format,
//! and it only writes it (the venue folder only reads it). It lives here rather than as a
//! `render.rs` in the venue folder because serving needs far more than rendering (stream-name
//! grammar, control replies, REST routes), none of which capture needs; putting it behind the
//! `Venue` trait would give Gate and LBank stub methods for a feature they do not have yet.
//! Shapes follow `shared/protocols/binance.md`. Decimals are written with `Decimal`'s
//! `Display`, so the exact strings of the recording come back; times are `ts_exchange` in ms.

use std::fmt::Write;

use crate::engine::Bar;
use crate::model::{BookDelta, Candle, Decimal, Level, NANOS_PER_MS, Nanos, Quote, Side, Ticker, Trade};

/// Kline intervals Binance offers, in seconds (`1M` is not representable in seconds).
pub const INTERVALS: [u32; 15] =
    [1, 60, 180, 300, 900, 1800, 3600, 7200, 14_400, 21_600, 28_800, 43_200, 86_400, 259_200, 604_800];

/// What a stream carries, independent of its symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKey {
    Trade,
    BookTicker,
    /// Both `@depth` and `@depth@100ms`: a recording holds one diff stream.
    Depth,
    /// Interval in seconds.
    Kline(u32),
    MiniTickerArr,
}

/// A parsed stream name: venue symbol (upper case, `None` for `!miniTicker@arr`) and kind.
pub fn parse_stream(name: &str) -> Option<(Option<String>, StreamKey)> {
    if name == "!miniTicker@arr" {
        return Some((None, StreamKey::MiniTickerArr));
    }
    let (sym, kind) = name.split_once('@')?;
    if sym.is_empty() || sym.chars().any(|c| c.is_uppercase()) {
        return None; // Binance stream names are lower case.
    }
    let key = match kind {
        "trade" => StreamKey::Trade,
        "bookTicker" => StreamKey::BookTicker,
        "depth" | "depth@100ms" => StreamKey::Depth,
        k => {
            let interval = k.strip_prefix("kline_")?;
            StreamKey::Kline(interval_seconds(interval)?)
        }
    };
    Some((Some(sym.to_uppercase()), key))
}

/// Seconds of a Binance interval name (`1m`, `4h`, `1d`...), if Binance offers it.
pub fn interval_seconds(name: &str) -> Option<u32> {
    crate::model::time::parse_timeframe(name).ok().filter(|s| INTERVALS.contains(s))
}

/// Binance's spelling of an interval (`1m`, `1h`, `1d`, `1w`), which `format_timeframe` matches.
pub fn interval_name(seconds: u32) -> String {
    crate::model::time::format_timeframe(seconds)
}

fn ms(ns: Nanos) -> u64 {
    ns / NANOS_PER_MS
}

fn levels(out: &mut String, levels: &[Level]) {
    out.push('[');
    for (i, l) in levels.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(out, "{sep}[\"{}\",\"{}\"]", l.price, l.qty);
    }
    out.push(']');
}

/// `<sym>@trade`. `E` is not recorded; the trade time stands in for it.
pub fn trade(out: &mut String, sym: &str, ts_exchange: Nanos, t: &Trade) {
    let (time, id) = (ms(ts_exchange), t.trade_id.unwrap_or(0));
    // `m` is "buyer is maker": true when the seller took liquidity.
    let maker = t.side == Side::Sell;
    let _ = write!(
        out,
        r#"{{"e":"trade","E":{time},"s":"{sym}","t":{id},"p":"{}","q":"{}","T":{time},"m":{maker},"M":true}}"#,
        t.price, t.qty
    );
}

/// `<sym>@bookTicker` (no time field, as on Binance).
pub fn book_ticker(out: &mut String, sym: &str, q: &Quote) {
    let _ = write!(
        out,
        r#"{{"u":{},"s":"{sym}","b":"{}","B":"{}","a":"{}","A":"{}"}}"#,
        q.update_id.unwrap_or(0),
        q.bid_price,
        q.bid_qty,
        q.ask_price,
        q.ask_qty
    );
}

/// `<sym>@depth` diff.
pub fn depth_update(out: &mut String, sym: &str, ts_exchange: Nanos, d: &BookDelta) {
    let _ = write!(
        out,
        r#"{{"e":"depthUpdate","E":{},"s":"{sym}","U":{},"u":{},"b":"#,
        ms(ts_exchange),
        d.first_update_id,
        d.last_update_id
    );
    levels(out, &d.bids);
    out.push_str(",\"a\":");
    levels(out, &d.asks);
    out.push('}');
}

/// One OHLCV bucket, from a recorded kline or a candle built from trades.
pub struct KlineFields<'a> {
    pub open_time: Nanos,
    pub interval_s: u32,
    pub open: &'a Decimal,
    pub high: &'a Decimal,
    pub low: &'a Decimal,
    pub close: &'a Decimal,
    pub volume: &'a Decimal,
    pub quote_volume: Option<&'a Decimal>,
    pub trades: u64,
    pub closed: bool,
}

impl<'a> KlineFields<'a> {
    pub fn from_candle(c: &'a Candle) -> Self {
        KlineFields {
            open_time: c.open_time,
            interval_s: c.interval_s,
            open: &c.open,
            high: &c.high,
            low: &c.low,
            close: &c.close,
            volume: &c.volume,
            quote_volume: c.quote_volume.as_ref(),
            trades: c.trade_count.unwrap_or(0),
            closed: c.closed,
        }
    }

    pub fn from_bar(b: &'a Bar) -> Self {
        KlineFields {
            open_time: b.open_time,
            interval_s: b.timeframe_s,
            open: &b.open,
            high: &b.high,
            low: &b.low,
            close: &b.close,
            volume: &b.volume,
            quote_volume: b.quote_volume.as_ref(),
            trades: b.trades,
            closed: true,
        }
    }

    fn open_ms(&self) -> u64 {
        ms(self.open_time)
    }

    fn close_ms(&self) -> u64 {
        ms(self.open_time) + u64::from(self.interval_s) * 1000 - 1
    }

    fn quote(&self) -> String {
        self.quote_volume.map_or_else(|| "0".to_string(), ToString::to_string)
    }
}

/// `<sym>@kline_<i>`. First/last trade ids and taker-buy volumes are not recorded: `-1` and `"0"`.
pub fn kline(out: &mut String, sym: &str, event_time: Nanos, k: &KlineFields) {
    let _ = write!(
        out,
        r#"{{"e":"kline","E":{},"s":"{sym}","k":{{"t":{},"T":{},"s":"{sym}","i":"{}","f":-1,"L":-1,"o":"{}","c":"{}","h":"{}","l":"{}","v":"{}","n":{},"x":{},"q":"{}","V":"0","Q":"0","B":"0"}}}}"#,
        ms(event_time),
        k.open_ms(),
        k.close_ms(),
        interval_name(k.interval_s),
        k.open,
        k.close,
        k.high,
        k.low,
        k.volume,
        k.trades,
        k.closed,
        k.quote()
    );
}

/// One `GET /api/v3/klines` row.
pub fn kline_row(k: &KlineFields) -> String {
    format!(
        r#"[{},"{}","{}","{}","{}","{}",{},"{}",{},"0","0","0"]"#,
        k.open_ms(),
        k.open,
        k.high,
        k.low,
        k.close,
        k.volume,
        k.close_ms(),
        k.quote(),
        k.trades
    )
}

/// `!miniTicker@arr` with one element. The 24 h open is not recorded: the last price stands in.
pub fn mini_ticker_arr(out: &mut String, sym: &str, ts_exchange: Nanos, t: &Ticker) {
    let _ = write!(
        out,
        r#"[{{"e":"24hrMiniTicker","E":{},"s":"{sym}","c":"{}","o":"{}","h":"{}","l":"{}","v":"{}","q":"{}"}}]"#,
        ms(ts_exchange),
        t.last,
        t.last,
        t.high_24h.as_ref().unwrap_or(&t.last),
        t.low_24h.as_ref().unwrap_or(&t.last),
        t.volume_24h,
        t.quote_volume_24h.map_or_else(|| "0".to_string(), |q| q.to_string())
    );
}

/// `GET /api/v3/depth` body.
pub fn depth_snapshot(last_update_id: u64, bids: &[Level], asks: &[Level]) -> String {
    let mut out = format!(r#"{{"lastUpdateId":{last_update_id},"bids":"#);
    levels(&mut out, bids);
    out.push_str(",\"asks\":");
    levels(&mut out, asks);
    out.push('}');
    out
}

/// What exchangeInfo says about one symbol.
pub struct SymbolSpec<'a> {
    pub venue_symbol: &'a str,
    pub base: &'a str,
    pub quote: &'a str,
    /// Decimal places the recording's prices and quantities are written with.
    pub price_scale: u8,
    pub qty_scale: u8,
    /// The finest price and quantity steps seen (`None`: nothing seen).
    pub tick: Option<Decimal>,
    pub step: Option<Decimal>,
}

/// `GET /api/v3/exchangeInfo` body.
pub fn exchange_info(server_time_ms: u64, symbols: &[SymbolSpec]) -> String {
    let rows: Vec<serde_json::Value> = symbols
        .iter()
        .map(|s| {
            let at = |d: Option<Decimal>, scale: u8| {
                d.and_then(|d| d.rescale(scale)).map_or_else(|| "0".to_string(), |d| d.to_string())
            };
            serde_json::json!({
                "symbol": s.venue_symbol,
                "status": "TRADING",
                "baseAsset": s.base,
                "baseAssetPrecision": s.qty_scale,
                "quoteAsset": s.quote,
                "quotePrecision": s.price_scale,
                "quoteAssetPrecision": s.price_scale,
                "orderTypes": ["LIMIT", "MARKET"],
                "isSpotTradingAllowed": true,
                "isMarginTradingAllowed": false,
                "permissions": ["SPOT"],
                "permissionSets": [["SPOT"]],
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": at(s.tick, s.price_scale),
                     "maxPrice": "0", "tickSize": at(s.tick, s.price_scale)},
                    {"filterType": "LOT_SIZE", "minQty": at(s.step, s.qty_scale),
                     "maxQty": "0", "stepSize": at(s.step, s.qty_scale)},
                ],
            })
        })
        .collect();
    serde_json::json!({
        "timezone": "UTC",
        "serverTime": server_time_ms,
        "rateLimits": [],
        "exchangeFilters": [],
        "symbols": rows,
    })
    .to_string()
}

/// A parsed WebSocket control message.
pub enum Control {
    Subscribe(Vec<String>),
    Unsubscribe(Vec<String>),
    List,
    SetCombined(bool),
    GetCombined,
}

/// Parses `{"method":..,"params":..,"id":..}`; `Err` is the error reply to send.
pub fn parse_control(text: &str) -> (serde_json::Value, Result<Control, String>) {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return (serde_json::Value::Null, Err(error_reply(3, &format!("Invalid JSON: {e}"), &Null))),
    };
    let id = value.get("id").cloned().unwrap_or(serde_json::Value::Null);
    let strings = |v: Option<&serde_json::Value>| -> Option<Vec<String>> {
        v?.as_array()?.iter().map(|s| s.as_str().map(str::to_string)).collect()
    };
    let control = match value.get("method").and_then(|m| m.as_str()) {
        Some("SUBSCRIBE") => strings(value.get("params")).map(Control::Subscribe),
        Some("UNSUBSCRIBE") => strings(value.get("params")).map(Control::Unsubscribe),
        Some("LIST_SUBSCRIPTIONS") => Some(Control::List),
        Some("SET_PROPERTY") => {
            let params = value.get("params").and_then(|p| p.as_array());
            match params.map(|p| (p.first().and_then(|k| k.as_str()), p.get(1).and_then(|v| v.as_bool()))) {
                Some((Some("combined"), Some(on))) => Some(Control::SetCombined(on)),
                _ => return (id.clone(), Err(error_reply(0, "Unknown property", &id))),
            }
        }
        Some("GET_PROPERTY") => Some(Control::GetCombined),
        _ => None,
    };
    match control {
        Some(c) => (id, Ok(c)),
        None => (id.clone(), Err(error_reply(2, "Invalid request: unknown method or bad params", &id))),
    }
}

#[allow(non_upper_case_globals)]
const Null: serde_json::Value = serde_json::Value::Null;

/// `{"result":..,"id":N}`.
pub fn result_reply(result: serde_json::Value, id: &serde_json::Value) -> String {
    serde_json::json!({"result": result, "id": id}).to_string()
}

/// `{"error":{"code":..,"msg":..},"id":N}`, the wrapped form.
pub fn error_reply(code: i64, msg: &str, id: &serde_json::Value) -> String {
    serde_json::json!({"error": {"code": code, "msg": msg}, "id": id}).to_string()
}

/// The reply to an unknown stream in SUBSCRIBE or a URL.
pub fn invalid_stream(id: &serde_json::Value) -> String {
    error_reply(2, "Invalid request: invalid stream", id)
}

/// REST error body, e.g. `{"code":-1121,"msg":"Invalid symbol."}`.
pub fn rest_error(code: i64, msg: &str) -> String {
    serde_json::json!({"code": code, "msg": msg}).to_string()
}

/// The combined-stream envelope.
pub fn envelope(stream: &str, payload: &str) -> String {
    let mut out = String::with_capacity(payload.len() + stream.len() + 22);
    let _ = write!(out, r#"{{"stream":"{stream}","data":{payload}}}"#);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn renders_the_shapes_the_capture_reads() {
        let mut out = String::new();
        let t =
            Trade { price: d("61837.63000000"), qty: d("0.02000000"), side: Side::Sell, trade_id: Some(3735683259) };
        trade(&mut out, "BTCUSDT", 1_723_161_255_342_000_000, &t);
        assert_eq!(
            out,
            r#"{"e":"trade","E":1723161255342,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}"#
        );
        out.clear();
        let delta = BookDelta {
            first_update_id: 5,
            last_update_id: 7,
            bids: vec![Level { price: d("1.0"), qty: d("0") }],
            asks: vec![],
        };
        depth_update(&mut out, "BTCUSDT", 2_000_000, &delta);
        assert_eq!(out, r#"{"e":"depthUpdate","E":2,"s":"BTCUSDT","U":5,"u":7,"b":[["1.0","0"]],"a":[]}"#);
        assert_eq!(envelope("x@trade", "{}"), r#"{"stream":"x@trade","data":{}}"#);
    }

    #[test]
    fn stream_names() {
        assert_eq!(parse_stream("btcusdt@depth@100ms"), Some((Some("BTCUSDT".into()), StreamKey::Depth)));
        assert_eq!(parse_stream("btcusdt@kline_1m"), Some((Some("BTCUSDT".into()), StreamKey::Kline(60))));
        assert_eq!(parse_stream("btcusdt@kline_2m"), None);
        assert_eq!(parse_stream("BTCUSDT@trade"), None);
        assert_eq!(parse_stream("!miniTicker@arr"), Some((None, StreamKey::MiniTickerArr)));
        assert_eq!(interval_name(3600), "1h");
    }

    #[test]
    fn control_messages() {
        let (id, c) = parse_control(r#"{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}"#);
        assert!(matches!(c, Ok(Control::Subscribe(s)) if s == ["btcusdt@trade"]));
        assert_eq!(result_reply(serde_json::Value::Null, &id), r#"{"result":null,"id":1}"#);
        assert_eq!(invalid_stream(&id), r#"{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":1}"#);
        assert!(parse_control(r#"{"method":"NOPE","id":2}"#).1.is_err());
    }
}
