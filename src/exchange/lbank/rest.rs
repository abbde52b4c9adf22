//! LBank REST v2 bodies (the currency-pair list, depth snapshots and kline pages for backfill)
//! and pair id → instrument.
//!
//! Owns the v2 envelope rule (success is `error_code == 0`; errors come with HTTP 200) and the
//! canonical naming of LBank pairs. Must not do HTTP, sleep or retry: the caller fetches the
//! body and decides what a rate-limit error ([`RATE_LIMITED`]) means for it.

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::normalize::{levels, num};
use super::wire::{KlineRow, RestDepth, RestEnvelope};
use crate::exchange::{HistoryRow, NormalizeError, Normalized, ms_to_ns};
use crate::model::{BookSnapshot, Candle, Event, Exchange, Instrument, Nanos};

/// `error_code` for "request too frequent": LBank's throttle signal (no 429, no Retry-After).
pub const RATE_LIMITED: i64 = 10004;

/// Why a REST body gave no data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestError {
    /// The venue answered with a non-zero `error_code`.
    #[error("lbank error code {code}: {msg}")]
    Venue { code: i64, msg: String },
    #[error(transparent)]
    Body(#[from] NormalizeError),
}

impl RestError {
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, RestError::Venue { code: RATE_LIMITED, .. })
    }
}

/// The instrument for an LBank pair id: `btc_usdt` → `BTC/USDT`, venue symbol kept as sent.
/// Splits at the last `_`, because quote assets never contain one (ccxt splits at the first,
/// which would break on a base with an underscore).
///
/// # Errors
/// When the id is not `base_quote` with alphanumeric parts.
pub fn instrument_for(pair: &str) -> Result<Instrument, NormalizeError> {
    let alnum = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    match pair.rsplit_once('_') {
        Some((base, quote)) if alnum(base) && alnum(quote) && !base.ends_with('_') => {
            Ok(Instrument::new(Exchange::Lbank, base, quote, pair))
        }
        _ => Err(NormalizeError::Symbol(pair.to_string())),
    }
}

/// Parses a `GET /v2/currencyPairs.do` body (`data`: `["btc_usdt", ...]`) into instruments,
/// in the venue's order. There is no status field: listed is taken to mean tradable.
///
/// # Errors
/// On a venue error, a body of another shape, or any id that is not a pair (nothing is
/// skipped silently).
pub fn parse_currency_pairs(body: &str) -> Result<Vec<Instrument>, RestError> {
    let ids: Vec<Cow<str>> = parse(data(body)?.get())?;
    Ok(ids.iter().map(|id| instrument_for(id)).collect::<Result<_, _>>()?)
}

/// Parses a `GET /v2/depth.do` body for `instrument`, received at `ts_recv`. `ts_exchange`
/// is the body's `timestamp` (Unix ms), or `ts_recv` when it has none. There is no update
/// id: like the WS depth push, this is a standalone snapshot.
///
/// # Errors
/// On a venue error, or when the body is not a depth snapshot or a level does not parse.
pub fn parse_depth_snapshot(body: &str, instrument: &Instrument, ts_recv: Nanos) -> Result<Normalized, RestError> {
    let depth: RestDepth = parse(data(body)?.get())?;
    Ok(Normalized {
        instrument: Some(instrument.clone()),
        ts_exchange: depth.timestamp.map_or(ts_recv, ms_to_ns),
        event: Event::BookSnapshot(BookSnapshot {
            last_update_id: None,
            bids: levels(&depth.bids, "bids")?,
            asks: levels(&depth.asks, "asks")?,
        }),
    })
}

/// Parses a `GET /v2/kline.do` body of `interval_s` candles: rows `[t (Unix s), open, high,
/// low, close, volume]`. There is no closed flag, quote volume or trade count.
///
/// # Errors
/// On a venue error (a throttle is [`RestError::is_rate_limited`]), or a row that does not parse.
pub fn parse_klines(body: &str, interval_s: u32) -> Result<Vec<HistoryRow>, RestError> {
    let rows: Vec<KlineRow> = parse(data(body)?.get())?;
    let candle = |row: &KlineRow| -> Result<HistoryRow, NormalizeError> {
        if row.len() < 6 {
            return Err(NormalizeError::Malformed(format!("kline row has {} fields, expected 6", row.len())));
        }
        let secs = num(row[0], "t")?;
        let open_time = crate::model::time::whole_seconds_to_ns(&secs)
            .ok_or_else(|| NormalizeError::Number { field: "t", detail: format!("{secs} is not a time in s") })?;
        Ok(HistoryRow::Candle(Candle {
            interval_s,
            open_time,
            open: num(row[1], "open")?,
            high: num(row[2], "high")?,
            low: num(row[3], "low")?,
            close: num(row[4], "close")?,
            volume: num(row[5], "volume")?,
            quote_volume: None,
            trade_count: None,
            closed: true,
        }))
    };
    Ok(rows.iter().map(candle).collect::<Result<_, _>>()?)
}

/// Whether `body` is LBank's throttle answer (`error_code` [`RATE_LIMITED`], sent with HTTP 200).
pub fn is_rate_limited(body: &str) -> bool {
    data(body).is_err_and(|e| e.is_rate_limited())
}

/// The `data` of a successful v2 response. `result` is `"true"` on most endpoints and `true`
/// on some, and `msg` may be null, so `error_code` decides; `result` is only consulted when
/// a body has no `error_code` at all.
fn data(body: &str) -> Result<&RawValue, RestError> {
    let envelope: RestEnvelope = parse(body)?;
    match envelope.error_code {
        Some(0) => {}
        Some(code) => {
            let msg = envelope.msg.map_or_else(|| "no message".to_string(), Cow::into_owned);
            return Err(RestError::Venue { code, msg });
        }
        None if envelope.result.is_some_and(|r| matches!(r.get(), "true" | "\"true\"")) => {}
        None => return Err(NormalizeError::Malformed("response has no error_code and no true result".into()).into()),
    }
    envelope.data.ok_or_else(|| NormalizeError::Malformed("response has no data".into()).into())
}

fn parse<'a, T: serde::Deserialize<'a>>(text: &'a str) -> Result<T, NormalizeError> {
    serde_json::from_str(text).map_err(|e| NormalizeError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Level;

    #[test]
    fn pair_ids_table() {
        let cases = [
            ("btc_usdt", Some("BTC/USDT")),
            ("eth_btc", Some("ETH/BTC")),
            ("lbk_usdt", Some("LBK/USDT")),
            ("BTC_USDT", Some("BTC/USDT")),
            ("1inch_usdt", Some("1INCH/USDT")),
            ("a_b_usdt", Some("A_B/USDT")),
            ("btcusdt", None),
            ("_usdt", None),
            ("btc_", None),
            ("btc__usdt", None),
            ("btc-usdt_x", None),
            ("", None),
        ];
        for (pair, symbol) in cases {
            match (instrument_for(pair), symbol) {
                (Ok(i), Some(symbol)) => {
                    assert_eq!(
                        (i.exchange, i.symbol.as_str(), i.venue_symbol.as_str()),
                        (Exchange::Lbank, symbol, pair)
                    );
                }
                (got, None) => assert_eq!(got, Err(NormalizeError::Symbol(pair.to_string())), "{pair}"),
                (Err(e), Some(_)) => panic!("{pair}: {e}"),
            }
        }
        assert_eq!(instrument_for("btc_usdt"), Ok(Instrument::new(Exchange::Lbank, "BTC", "USDT", "btc_usdt")));
    }

    #[test]
    fn currency_pairs_body() {
        // Envelope and ids as in protocols/lbank.md §4.
        let body = r#"{"result":"true","data":["btc_usdt","eth_btc","lbk_usdt"],"error_code":0,"ts":1692157328820}"#;
        let symbols: Vec<String> = parse_currency_pairs(body).unwrap().into_iter().map(|i| i.symbol).collect();
        assert_eq!(symbols, ["BTC/USDT", "ETH/BTC", "LBK/USDT"]);
        let bad_id = r#"{"result":"true","data":["btc_usdt","nounderscore"],"error_code":0}"#;
        assert_eq!(parse_currency_pairs(bad_id), Err(RestError::Body(NormalizeError::Symbol("nounderscore".into()))));
    }

    #[test]
    fn depth_snapshot_body() {
        // The documented depth.do shape: string levels, ms timestamp.
        let body = r#"{"result":"true","data":{"asks":[["29243.37","2.8783"],["29243.40","0.0100"]],"bids":[["29243.36","1.5258"]],"timestamp":1692157328820},"error_code":0,"ts":1692157328821}"#;
        let instrument = instrument_for("btc_usdt").unwrap();
        let n = parse_depth_snapshot(body, &instrument, 5).unwrap();
        assert_eq!(n.ts_exchange, 1_692_157_328_820_000_000);
        let Event::BookSnapshot(book) = n.event else { panic!("not a snapshot") };
        let s = |l: &Level| (l.price.to_string(), l.qty.to_string());
        assert_eq!(
            book.asks.iter().map(s).collect::<Vec<_>>(),
            [("29243.37".into(), "2.8783".into()), ("29243.40".into(), "0.0100".into())]
        );
        assert_eq!(book.bids.iter().map(s).collect::<Vec<_>>(), [("29243.36".to_string(), "1.5258".to_string())]);
        assert_eq!(book.last_update_id, None);

        // No timestamp: the receive time stands in. Numbers instead of strings parse too.
        let body = r#"{"result":true,"data":{"asks":[[29243.37,2.8783]],"bids":[]},"error_code":0}"#;
        assert_eq!(parse_depth_snapshot(body, &instrument, 5).unwrap().ts_exchange, 5);
    }

    #[test]
    fn kline_pages() {
        // The documented kline.do row, numbers as JSON numbers.
        let body = r#"{"result":"true","data":[[1482311500,5423.23,5472.80,5516.09,5462,234.3250],[1482311560,1.5E-7,2,1,1.5,0]],"error_code":0,"ts":1692157328820}"#;
        let rows = parse_klines(body, 60).unwrap();
        let HistoryRow::Candle(c) = &rows[0] else { panic!("not a candle") };
        assert_eq!(c.open_time, 1_482_311_500_000_000_000);
        assert_eq!(
            [c.open.to_string(), c.high.to_string(), c.low.to_string(), c.close.to_string(), c.volume.to_string()],
            ["5423.23", "5472.80", "5516.09", "5462", "234.3250"]
        );
        let HistoryRow::Candle(c) = &rows[1] else { panic!("not a candle") };
        assert_eq!(c.open.to_string(), "0.00000015");
        let throttled = parse_klines(r#"{"result":"false","error_code":10004,"msg":null}"#, 60).unwrap_err();
        assert!(throttled.is_rate_limited());
        assert!(matches!(
            parse_klines(r#"{"result":"true","data":[[1482311500,1,2]],"error_code":0}"#, 60),
            Err(RestError::Body(NormalizeError::Malformed(_)))
        ));
        assert!(matches!(
            parse_klines(r#"{"result":"true","data":[[1482311500.5,1,2,1,1,1]],"error_code":0}"#, 60),
            Err(RestError::Body(NormalizeError::Number { field: "t", .. }))
        ));
    }

    #[test]
    fn envelope_errors_table() {
        let venue = |code: i64, msg: &str| Err(RestError::Venue { code, msg: msg.into() });
        let cases = [
            (r#"{"result":"false","error_code":10003,"msg":"Illegal parameter"}"#, venue(10003, "Illegal parameter")),
            (r#"{"result":"false","error_code":10004,"msg":null}"#, venue(10004, "no message")),
            (r#"{"result":"false","error_code":10008}"#, venue(10008, "no message")),
        ];
        for (body, expected) in cases {
            assert_eq!(parse_currency_pairs(body), expected, "{body}");
        }
        assert!(parse_currency_pairs(r#"{"result":"false","error_code":10004}"#).unwrap_err().is_rate_limited());
        assert_eq!(parse_currency_pairs(r#"{"result":"true","data":["btc_usdt"]}"#).map(|v| v.len()), Ok(1));
        for malformed in
            [r#"{"result":"false","data":[]}"#, r#"{"error_code":0}"#, "<html>", r#"{"error_code":0,"data":{}}"#]
        {
            let err = parse_currency_pairs(malformed).unwrap_err();
            assert!(matches!(err, RestError::Body(NormalizeError::Malformed(_))), "{malformed}: {err}");
            assert!(!err.is_rate_limited());
        }
        let instrument = instrument_for("btc_usdt").unwrap();
        let bad_level = r#"{"data":{"asks":[["1.2.3","1"]],"bids":[]},"error_code":0}"#;
        assert!(matches!(
            parse_depth_snapshot(bad_level, &instrument, 0),
            Err(RestError::Body(NormalizeError::Number { field: "asks", .. }))
        ));
    }
}
