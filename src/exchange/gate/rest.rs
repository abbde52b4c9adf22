//! Gate spot v4 REST bodies: order-book snapshots (`with_id=true`), the currency-pair list and
//! candlestick pages (for backfill), plus the mapping from a Gate pair id to a canonical instrument.
//!
//! Owns body parsing only: no HTTP and no clock (callers fetch the body and pass its receive
//! time). Must not guess at symbols: Gate ids are `BASE_QUOTE`, split on the one `_`.

use super::normalize::{levels, parse};
use serde_json::value::RawValue;

use super::wire::{CandleRow, CurrencyPairRow, OrderBookBody, RestError};
use crate::exchange::{HistoryRow, NormalizeError, Normalized, ms_to_ns};
use crate::model::{BookSnapshot, Candle, Decimal, Event, Exchange, Instrument, Nanos};

/// The instrument for a Gate pair id such as `BTC_USDT` (documented as `BASE_QUOTE`).
///
/// # Errors
/// When the id is not two non-empty parts joined by exactly one `_`.
pub fn parse_symbol(venue_symbol: &str) -> Result<Instrument, NormalizeError> {
    match venue_symbol.split_once('_') {
        Some((base, quote)) if !base.is_empty() && !quote.is_empty() && !quote.contains('_') => {
            Ok(Instrument::new(Exchange::Gate, base, quote, venue_symbol))
        }
        _ => Err(NormalizeError::Symbol(venue_symbol.to_string())),
    }
}

/// One row of the currency-pair list.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CurrencyPair {
    pub instrument: Instrument,
    /// `untradable`, `buyable`, `sellable` or `tradable`.
    pub trade_status: String,
    /// Decimal places of prices (`precision`) and amounts (`amount_precision`).
    pub price_precision: Option<u32>,
    pub qty_precision: Option<u32>,
}

impl CurrencyPair {
    pub fn is_tradable(&self) -> bool {
        self.trade_status == "tradable"
    }
}

/// Parses a `GET /api/v4/spot/currency_pairs` body (every status included), sorted by instrument.
///
/// # Errors
/// When the body is not a currency-pair list, or a row has neither base/quote nor a valid id.
pub fn parse_currency_pairs(body: &str) -> Result<Vec<CurrencyPair>, NormalizeError> {
    let rows: Vec<CurrencyPairRow> = parse(body).map_err(|e| rest_error(body, e))?;
    let mut pairs = rows
        .into_iter()
        .map(|row| {
            // The doc prefers the explicit fields; they agree with splitting the id today.
            let instrument = match (&row.base, &row.quote) {
                (Some(base), Some(quote)) => Instrument::new(Exchange::Gate, base, quote, &row.id),
                _ => parse_symbol(&row.id)?,
            };
            Ok(CurrencyPair {
                instrument,
                trade_status: row.trade_status.unwrap_or_default(),
                price_precision: row.precision,
                qty_precision: row.amount_precision,
            })
        })
        .collect::<Result<Vec<_>, NormalizeError>>()?;
    pairs.sort();
    Ok(pairs)
}

/// Parses a `GET /api/v4/spot/order_book?...&with_id=true` body for `instrument`, received at
/// `ts_recv`. `last_update_id` is the body's `id` (comparable to the diff stream's `U`/`u`);
/// `ts_exchange` is `current` (ms) when present, else `ts_recv`.
///
/// # Errors
/// When the body is not an order book (a Gate error body is named) or a level does not parse.
pub fn parse_depth_snapshot(body: &str, instrument: &Instrument, ts_recv: Nanos) -> Result<Normalized, NormalizeError> {
    let snap: OrderBookBody = parse(body).map_err(|e| rest_error(body, e))?;
    Ok(Normalized {
        instrument: Some(instrument.clone()),
        ts_exchange: snap.current.map_or(ts_recv, ms_to_ns),
        event: Event::BookSnapshot(BookSnapshot {
            last_update_id: snap.id,
            bids: levels(&snap.bids, "bids")?,
            asks: levels(&snap.asks, "asks")?,
        }),
    })
}

/// Parses a `GET /spot/candlesticks` body of `interval_s` candles. `closed` is the
/// row's own flag (field 8) where sent, else true (the caller checks the clock as well).
/// `volume` is the base amount (field 7), `quote_volume` field 2; there is no trade count.
///
/// # Errors
/// When the body is not a candle list (a Gate error body is named), a row has no base amount
/// (the oldest body shape: its volume is in the quote currency only), or a field does not parse.
pub fn parse_candlesticks(body: &str, interval_s: u32) -> Result<Vec<HistoryRow>, NormalizeError> {
    let rows: Vec<CandleRow> = parse(body).map_err(|e| rest_error(body, e))?;
    rows.iter()
        .map(|row| {
            let is_flag = |t: &RawValue| matches!(t.get(), "\"true\"" | "\"false\"" | "true" | "false");
            if row.len() < 7 || is_flag(row[6]) {
                return Err(NormalizeError::Malformed(format!(
                    "candlestick row has no base amount (field 7): {}",
                    row.iter().map(|t| t.get()).collect::<Vec<_>>().join(",")
                )));
            }
            let secs = dec(row[0], "t")?;
            let open_time = crate::model::time::whole_seconds_to_ns(&secs)
                .ok_or_else(|| NormalizeError::Number { field: "t", detail: format!("{secs} is not a time in s") })?;
            Ok(HistoryRow::Candle(Candle {
                interval_s,
                open_time,
                open: dec(row[5], "open")?,
                high: dec(row[3], "high")?,
                low: dec(row[4], "low")?,
                close: dec(row[2], "close")?,
                volume: dec(row[6], "amount")?,
                quote_volume: Some(dec(row[1], "volume")?),
                trade_count: None,
                closed: row.get(7).is_none_or(|t| !matches!(t.get(), "\"false\"" | "false")),
            }))
        })
        .collect()
}

fn dec(token: &RawValue, field: &'static str) -> Result<Decimal, NormalizeError> {
    Decimal::parse_json_token(token.get()).map_err(|e| NormalizeError::Number { field, detail: e.to_string() })
}

/// Names Gate's `{"label":..,"message":..}` error body instead of a serde complaint about it.
fn rest_error(body: &str, fallback: NormalizeError) -> NormalizeError {
    match parse::<RestError>(body) {
        Ok(err) => NormalizeError::Malformed(format!("gate error {}: {}", err.label, err.message)),
        Err(_) => fallback,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::engine::book::{Applied, OrderBook};
    use crate::exchange::Normalizer;
    use crate::exchange::gate::GateNormalizer;
    use crate::exchange::gate::fixtures::{self, http_lines, server_frames};
    use crate::model::{Decimal, Status};

    fn pair_of(url: &str) -> &str {
        let start = url.find("currency_pair=").expect("a pair in the url") + "currency_pair=".len();
        url[start..].split('&').next().unwrap()
    }

    #[test]
    fn symbols_table() {
        let cases = [
            ("BTC_USDT", Some("BTC/USDT")),
            ("BTC3L_USDT", Some("BTC3L/USDT")),
            ("gt_usdt", Some("GT/USDT")),
            ("BTCUSDT", None),
            ("_USDT", None),
            ("BTC_", None),
            ("A_B_C", None),
        ];
        for (venue, canonical) in cases {
            let got = parse_symbol(venue);
            assert_eq!(got.as_ref().ok().map(|i| i.symbol.as_str()), canonical, "{venue}");
            if let Ok(i) = got {
                assert_eq!((i.exchange, i.venue_symbol.as_str()), (Exchange::Gate, venue));
            }
        }
    }

    #[test]
    fn every_snapshot_in_the_http_capture() {
        // (pair, id, bid levels, ask levels), read off GATEIO.http.0.0.
        let expected = [
            ("HAI_ETH", 2691446, 35, 38),
            ("QTUM3S_USDT", 69526951, 75, 60),
            ("FAST_USDT", 1138115, 55, 100),
            ("OMG_USDT", 59231869, 100, 100),
            ("ZKS_ETH", 11077661, 42, 100),
            ("NEO_BTC", 31244065, 100, 100),
            ("INK_USDT", 2509482, 48, 100),
            ("DIS_USDT", 1750468, 100, 100),
            ("BTC_USDC", 13035634, 46, 43),
            ("NANO_USDT", 8008158, 99, 100),
        ];
        let lines = http_lines(fixtures::SPOT_HTTP);
        assert_eq!(lines.len(), expected.len());
        for ((url, ts_recv, body), (pair, id, nb, na)) in lines.into_iter().zip(expected) {
            assert_eq!(pair_of(url), pair);
            let snap = parse_depth_snapshot(body, &parse_symbol(pair).unwrap(), ts_recv).unwrap();
            assert_eq!(snap.ts_exchange, ts_recv, "2021 bodies carry no `current`");
            let Event::BookSnapshot(book) = snap.event else { panic!("not a snapshot") };
            assert_eq!((book.last_update_id, book.bids.len(), book.asks.len()), (Some(id), nb, na), "{pair}");
            // Best first on both sides, and not crossed.
            assert!(book.bids.windows(2).all(|w| w[0].price > w[1].price), "{pair}");
            assert!(book.asks.windows(2).all(|w| w[0].price < w[1].price), "{pair}");
            assert!(book.bids[0].price < book.asks[0].price, "{pair}");
        }
    }

    #[test]
    fn snapshot_time_and_error_bodies() {
        // Doc example: `current` is the snapshot time in ms.
        let body = r#"{"id":123456,"current":1623898993123,"update":1623898993121,"asks":[["1.52","1.151"]],"bids":[["1.17","201.863"]]}"#;
        let btc = parse_symbol("BTC_USDT").unwrap();
        let snap = parse_depth_snapshot(body, &btc, 7).unwrap();
        assert_eq!(snap.ts_exchange, 1_623_898_993_123_000_000);
        assert!(
            matches!(snap.event, Event::BookSnapshot(b) if b.last_update_id == Some(123456) && b.asks[0].qty == "1.151".parse::<Decimal>().unwrap())
        );
        let error = r#"{"label":"INVALID_CURRENCY_PAIR","message":"Invalid currency pair"}"#;
        assert_eq!(
            parse_depth_snapshot(error, &btc, 7),
            Err(NormalizeError::Malformed("gate error INVALID_CURRENCY_PAIR: Invalid currency pair".into()))
        );
        assert!(matches!(parse_depth_snapshot("[]", &btc, 7), Err(NormalizeError::Malformed(_))));
        let bad = body.replace("1.151", "1,151");
        assert!(matches!(parse_depth_snapshot(&bad, &btc, 7), Err(NormalizeError::Number { field: "asks", .. })));
    }

    #[test]
    fn candlestick_pages() {
        // The documented row shape, with the base amount and the closed flag the current doc lists.
        let body = r#"[["1539852480","971519.677","0.0021724","0.0021922","0.0021724","0.0021737","447.1","true"],
                       ["1539852540","1.5","0.0021730","0.0021730","0.0021730","0.0021730","690.3","false"]]"#;
        let rows = parse_candlesticks(body, 60).unwrap();
        let candles: Vec<&Candle> =
            rows.iter().map(|r| if let HistoryRow::Candle(c) = r { c } else { panic!("not a candle") }).collect();
        assert_eq!(candles[0].open_time, 1_539_852_480_000_000_000);
        let text = |d: &Decimal| d.to_string();
        assert_eq!(
            [text(&candles[0].open), text(&candles[0].high), text(&candles[0].low), text(&candles[0].close)],
            ["0.0021737", "0.0021922", "0.0021724", "0.0021724"]
        );
        assert_eq!(
            (text(&candles[0].volume), candles[0].quote_volume.map(|q| q.to_string())),
            ("447.1".into(), Some("971519.677".into()))
        );
        assert_eq!((candles[0].closed, candles[1].closed), (true, false));
        // The doc's old example has no base amount: refused rather than guessed.
        let old = r#"[["1539852480","971519.677","0.0021724","0.0021922","0.0021724","0.0021737","true"]]"#;
        assert!(matches!(parse_candlesticks(old, 60), Err(NormalizeError::Malformed(m)) if m.contains("base amount")));
        let error = r#"{"label":"INVALID_PARAM_VALUE","message":"Invalid interval"}"#;
        assert_eq!(
            parse_candlesticks(error, 60),
            Err(NormalizeError::Malformed("gate error INVALID_PARAM_VALUE: Invalid interval".into()))
        );
    }

    #[test]
    fn currency_pairs_list() {
        // Rows shaped like the documented CurrencyPair object (no real body was captured).
        let body = r#"[
            {"id":"ETH_USDT","base":"ETH","quote":"USDT","fee":"0.2","min_base_amount":"0.001","min_quote_amount":"1.0","max_base_amount":null,"amount_precision":3,"precision":6,"trade_status":"tradable","sell_start":1516378650,"buy_start":1516378650,"type":"normal"},
            {"id":"BTC3L_USDT","base":"BTC3L","quote":"USDT","amount_precision":2,"precision":4,"trade_status":"untradable"},
            {"id":"GT_USDT","trade_status":"sellable"}
        ]"#;
        let pairs = parse_currency_pairs(body).unwrap();
        let got: Vec<_> = pairs.iter().map(|p| (p.instrument.symbol.as_str(), p.is_tradable())).collect();
        assert_eq!(got, vec![("BTC3L/USDT", false), ("ETH/USDT", true), ("GT/USDT", false)]);
        assert_eq!(pairs[2].instrument.venue_symbol, "GT_USDT");
        let precisions: Vec<_> = pairs.iter().map(|p| (p.price_precision, p.qty_precision)).collect();
        assert_eq!(precisions, vec![(Some(4), Some(2)), (Some(6), Some(3)), (None, None)]);
        assert!(matches!(parse_currency_pairs(r#"[{"id":"GTUSDT"}]"#), Err(NormalizeError::Symbol(_))));
        let error = r#"{"label":"TOO_MANY_REQUESTS","message":"Request Rate limit Exceeded"}"#;
        assert!(
            matches!(parse_currency_pairs(error), Err(NormalizeError::Malformed(m)) if m.starts_with("gate error TOO_MANY_REQUESTS"))
        );
    }

    /// Replays the capture as it was received: WS diffs and the REST snapshots taken during it,
    /// merged by receive time, through the engine's order book (Gate's documented sync rule).
    #[test]
    fn depth_sync_against_the_rest_snapshots() {
        let mut timeline: Vec<(u64, Option<&str>, &str)> =
            server_frames(fixtures::SPOT_WS).into_iter().map(|(ts, frame)| (ts, None, frame)).collect();
        timeline
            .extend(http_lines(fixtures::SPOT_HTTP).into_iter().map(|(url, ts, body)| (ts, Some(pair_of(url)), body)));
        timeline.sort_by_key(|(ts, ..)| *ts);

        let mut n = GateNormalizer::new();
        let mut books: BTreeMap<String, OrderBook> = BTreeMap::new();
        let mut newest_id: BTreeMap<String, u64> = BTreeMap::new();
        let mut tickers: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
        let mut out = Vec::new();
        for (ts, pair, text) in timeline {
            out.clear();
            match pair {
                Some(pair) => out.push(parse_depth_snapshot(text, &parse_symbol(pair).unwrap(), ts).unwrap()),
                None => {
                    n.normalize(text, ts, &mut out).unwrap();
                }
            }
            for e in &out {
                let symbol = e.instrument.as_ref().unwrap().venue_symbol.clone();
                let book = books.entry(symbol.clone()).or_default();
                let (result, id) = match &e.event {
                    Event::BookSnapshot(s) => (book.apply_snapshot(s), s.last_update_id.unwrap()),
                    Event::BookDelta(d) => (book.apply_delta(d), d.last_update_id),
                    Event::Ticker(t) => {
                        tickers.insert(symbol, (t.best_bid.unwrap(), t.best_ask.unwrap()));
                        continue;
                    }
                    Event::Status(Status::Gap { .. }) => panic!("gap in the capture: {e:?}"),
                    _ => continue,
                };
                assert!(!matches!(result, Applied::Invalidated(_) | Applied::Ignored), "{symbol}: {result:?}");
                let newest = newest_id.entry(symbol.clone()).or_default();
                *newest = (*newest).max(id);
            }
        }
        assert_eq!(books.len(), 10);
        for (symbol, book) in &books {
            assert!(book.is_valid(), "{symbol}: {:?}", book.invalid_reason());
            assert_eq!(book.last_update_id(), newest_id.get(symbol).copied(), "{symbol}");
        }
        // Where the last ticker came after the last book change, its best bid/ask must match the
        // rebuilt book. (NANO_USDT's ticker disagrees with its own depth stream, so is left out.)
        for symbol in ["FAST_USDT", "OMG_USDT", "ZKS_ETH"] {
            let top = (books[symbol].best_bid().unwrap().price, books[symbol].best_ask().unwrap().price);
            assert_eq!(Some(&top), tickers.get(symbol), "{symbol}");
        }
    }
}
