//! Gate spot v4 WebSocket frames → model events, with per-market trade-id and per-pair
//! order-book update-id gap checks.
//!
//! Owns the unit conversions: Gate mixes seconds, milliseconds and fractional-millisecond
//! strings, and every one is turned into ns with integer or [`Decimal`] arithmetic. Must not
//! use `f64`, read the clock (`ts_recv` is passed in) or let wire types out of this folder.

use std::collections::HashMap;

use serde_json::value::RawValue;

use super::rest::parse_symbol;
use super::wire::*;
use crate::exchange::{FrameKind, NormalizeError, Normalized, Normalizer, check_seq, ms_to_ns};
use crate::model::time::parse_timeframe;
use crate::model::{
    BookDelta, BookSnapshot, Candle, Decimal, Event, Level, NANOS_PER_SEC, Nanos, Quote, Side, Ticker, Trade,
};

/// Normalizer for one Gate spot connection (any mix of channels and pairs).
#[derive(Debug, Default)]
pub struct GateNormalizer {
    /// Last `id_market` per pair.
    last_trade_id: HashMap<String, u64>,
    /// Last order-book update id `u` per pair.
    last_depth_id: HashMap<String, u64>,
}

impl GateNormalizer {
    pub fn new() -> Self {
        GateNormalizer::default()
    }

    /// Forgets sequence state; call on reconnect, where a fresh sync starts.
    pub fn reset(&mut self) {
        self.last_trade_id.clear();
        self.last_depth_id.clear();
    }

    fn frame(&mut self, frame: &str, ts_recv: Nanos, out: &mut Vec<Normalized>) -> Result<FrameKind, NormalizeError> {
        let env: Envelope = parse(frame)?;
        // The doc: checking `error == null` is enough to tell success from failure, whatever the event.
        if let Some(err) = env.error {
            return Ok(FrameKind::VenueError(format!("code {}: {}", err.code, err.message)));
        }
        let channel = env.channel.unwrap_or_default();
        match (channel, env.event.unwrap_or_default()) {
            ("spot.pong" | "spot.ping", _) | (_, "subscribe" | "unsubscribe") => return Ok(FrameKind::Control),
            (_, "update") => {}
            (c, e) => return Err(NormalizeError::Unknown(format!("channel {c:?} event {e:?}"))),
        }
        let result = env.result.ok_or_else(|| NormalizeError::Malformed(format!("{channel} update without result")))?;
        // Channels without a time of their own (tickers, candles) use the envelope's; 2021 frames
        // carry only `time` in seconds, and futures acks send `time_ms: 0`.
        let env_ts = match (env.time_ms, env.time) {
            (Some(ms), _) if ms > 0 => ms_to_ns(ms),
            (_, Some(s)) => secs_to_ns(s),
            _ => ts_recv,
        };
        let result = result.get();
        match channel {
            "spot.trades" => self.trade(parse(result)?, env_ts, out),
            "spot.book_ticker" => book_ticker(parse(result)?, env_ts, out),
            "spot.order_book_update" => self.depth(parse(result)?, env_ts, out),
            "spot.candlesticks" => candle(parse(result)?, env_ts, out),
            "spot.tickers" => ticker(parse(result)?, env_ts, out),
            other => Err(NormalizeError::Unknown(format!("channel {other}"))),
        }?;
        Ok(FrameKind::Data)
    }

    // Every fallible parse happens before `check_seq`, so a rejected frame leaves no trace in
    // the sequence state.
    fn trade(&mut self, m: TradeMsg, env_ts: Nanos, out: &mut Vec<Normalized>) -> Result<(), NormalizeError> {
        let pair = required(m.currency_pair, "currency_pair")?;
        let instrument = parse_symbol(pair)?;
        let id = int(required(m.id, "id")?, "id")?;
        let id_market = m.id_market.map(|t| int(t, "id_market")).transpose()?;
        let ts = match (m.create_time_ms, m.create_time) {
            (Some(ms), _) => frac_ms_to_ns(ms.get(), "create_time_ms")?,
            (None, Some(s)) => secs_to_ns(int(s, "create_time")?),
            (None, None) => env_ts,
        };
        let trade = Trade {
            price: num(required(m.price, "price")?, "price")?,
            qty: num(required(m.amount, "amount")?, "amount")?,
            side: match m.side {
                Some("buy") => Side::Buy,
                Some("sell") => Side::Sell,
                _ => Side::Unknown,
            },
            // `id` counts trades across all markets, so only `id_market` can show a gap.
            trade_id: Some(id_market.unwrap_or(id)),
        };
        if let Some(idm) = id_market {
            let stream = || format!("spot.trades {pair}");
            check_seq(&mut self.last_trade_id, pair, idm, idm, ts, stream, &instrument, out);
        }
        out.push(Normalized { instrument: Some(instrument), ts_exchange: ts, event: Event::Trade(trade) });
        Ok(())
    }

    fn depth(&mut self, m: DepthUpdateMsg, env_ts: Nanos, out: &mut Vec<Normalized>) -> Result<(), NormalizeError> {
        let instrument = parse_symbol(m.s)?;
        let ts = m.t.map_or(env_ts, ms_to_ns);
        let (bids, asks) = (levels(&m.b, "b")?, levels(&m.a, "a")?);
        let last = m.last_update_id;
        if m.full == Some(true) {
            // A full push replaces the local book, so it is a snapshot and continuity restarts
            // at its `u` (the 2025 "logic optimization"; older code that applies it as a diff
            // corrupts the book).
            self.last_depth_id.insert(m.s.to_string(), last);
            let event = Event::BookSnapshot(BookSnapshot { last_update_id: Some(last), bids, asks });
            out.push(Normalized { instrument: Some(instrument), ts_exchange: ts, event });
            return Ok(());
        }
        let first = required(m.first_update_id, "U")?;
        let stream = || format!("spot.order_book_update {}", m.s);
        check_seq(&mut self.last_depth_id, m.s, first, last, ts, stream, &instrument, out);
        let event = Event::BookDelta(BookDelta { first_update_id: first, last_update_id: last, bids, asks });
        out.push(Normalized { instrument: Some(instrument), ts_exchange: ts, event });
        Ok(())
    }
}

impl Normalizer for GateNormalizer {
    fn reset(&mut self) {
        GateNormalizer::reset(self);
    }

    fn normalize(
        &mut self,
        frame: &str,
        ts_recv: Nanos,
        out: &mut Vec<Normalized>,
    ) -> Result<FrameKind, NormalizeError> {
        let start = out.len();
        let result = self.frame(frame, ts_recv, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }
}

fn book_ticker(m: BookTickerMsg, env_ts: Nanos, out: &mut Vec<Normalized>) -> Result<(), NormalizeError> {
    let quote = Quote {
        bid_price: num(m.b, "b")?,
        bid_qty: num(m.bid_qty, "B")?,
        ask_price: num(m.a, "a")?,
        ask_qty: num(m.ask_qty, "A")?,
        update_id: m.u,
    };
    out.push(Normalized {
        instrument: Some(parse_symbol(m.s)?),
        ts_exchange: m.t.map_or(env_ts, ms_to_ns),
        event: Event::Quote(quote),
    });
    Ok(())
}

fn candle(m: CandleMsg, env_ts: Nanos, out: &mut Vec<Normalized>) -> Result<(), NormalizeError> {
    let bad_name = || NormalizeError::Malformed(format!("candle name {:?} is not <interval>_<pair>", m.n));
    let (interval, pair) = m.n.split_once('_').ok_or_else(bad_name)?;
    if interval == "30d" {
        // REST's 30d is a calendar month, which has no fixed length in seconds.
        let detail = "30d is a calendar month, not a fixed interval".to_string();
        return Err(NormalizeError::Number { field: "n", detail });
    }
    let interval_s = parse_timeframe(interval).map_err(|detail| NormalizeError::Number { field: "n", detail })?;
    let quote_volume = num(m.v, "v")?;
    // `a` (base amount) is missing from 2021 frames and the base volume cannot be derived
    // exactly from the quote turnover `v`, so it is recorded as zero with `v` kept as the
    // quote volume. Such candles carry no `w` either, so the engine never uses them as bars.
    let volume = m.a.map_or(Ok(Decimal::ZERO), |a| num(a, "a"))?;
    let candle = Candle {
        interval_s,
        open_time: secs_to_ns(int(m.t, "t")?),
        open: num(m.o, "o")?,
        high: num(m.h, "h")?,
        low: num(m.l, "l")?,
        close: num(m.c, "c")?,
        volume,
        quote_volume: Some(quote_volume),
        trade_count: None,
        closed: m.w.unwrap_or(false),
    };
    out.push(Normalized {
        instrument: Some(parse_symbol(pair)?),
        ts_exchange: env_ts,
        event: Event::Candle(Box::new(candle)),
    });
    Ok(())
}

fn ticker(m: TickerMsg, env_ts: Nanos, out: &mut Vec<Normalized>) -> Result<(), NormalizeError> {
    let ticker = Ticker {
        last: num(m.last, "last")?,
        volume_24h: num(m.base_volume, "base_volume")?,
        quote_volume_24h: opt_num(m.quote_volume, "quote_volume")?,
        high_24h: opt_num(m.high_24h, "high_24h")?,
        low_24h: opt_num(m.low_24h, "low_24h")?,
        best_bid: opt_num(m.highest_bid, "highest_bid")?,
        best_ask: opt_num(m.lowest_ask, "lowest_ask")?,
    };
    out.push(Normalized {
        instrument: Some(parse_symbol(m.currency_pair)?),
        ts_exchange: env_ts,
        event: Event::Ticker(Box::new(ticker)),
    });
    Ok(())
}

pub(super) fn parse<'a, T: serde::Deserialize<'a>>(text: &'a str) -> Result<T, NormalizeError> {
    serde_json::from_str(text).map_err(|e| NormalizeError::Malformed(e.to_string()))
}

fn required<T>(value: Option<T>, field: &'static str) -> Result<T, NormalizeError> {
    value.ok_or_else(|| NormalizeError::Malformed(format!("missing field {field}")))
}

/// A decimal from a JSON string or number token.
fn num(token: &RawValue, field: &'static str) -> Result<Decimal, NormalizeError> {
    Decimal::parse_json_token(token.get()).map_err(|e| NormalizeError::Number { field, detail: e.to_string() })
}

/// Like [`num`], but absent, `null` and `""` (a side with no orders) are `None`.
fn opt_num(token: Option<&RawValue>, field: &'static str) -> Result<Option<Decimal>, NormalizeError> {
    match token.map(RawValue::get) {
        None | Some("null" | "\"\"") => Ok(None),
        Some(_) => token.map(|t| num(t, field)).transpose(),
    }
}

/// An unsigned integer from a JSON number or a quoted one (REST sends ids and seconds as strings).
fn int(token: &RawValue, field: &'static str) -> Result<u64, NormalizeError> {
    let text = token.get();
    let text = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
    text.parse().map_err(|e: std::num::ParseIntError| NormalizeError::Number { field, detail: format!("{text}: {e}") })
}

pub(super) fn levels(raw: &[[&RawValue; 2]], field: &'static str) -> Result<Vec<Level>, NormalizeError> {
    raw.iter().map(|[p, q]| Ok(Level { price: num(p, field)?, qty: num(q, field)? })).collect()
}

fn secs_to_ns(secs: u64) -> Nanos {
    secs.saturating_mul(NANOS_PER_SEC)
}

/// A fractional-millisecond token ("1619093543708.2642", quoted or not) to ns, exactly.
pub(super) fn frac_ms_to_ns(token: &str, field: &'static str) -> Result<Nanos, NormalizeError> {
    let bad = |detail: String| NormalizeError::Number { field, detail };
    let ms = Decimal::parse_json_token(token).map_err(|e| bad(e.to_string()))?;
    decimal_to_ns(ms, 6).ok_or_else(|| bad(format!("{ms} is not a time in ms since the epoch")))
}

/// `value × 10^unit_exp` ns (6 for ms, 9 for s). Digits below 1 ns are truncated: Gate sends
/// at most 4 decimals of a ms (100 ns), so nothing it sends is lost. `None` when negative or
/// past u64.
pub(super) fn decimal_to_ns(value: Decimal, unit_exp: u32) -> Option<Nanos> {
    if value.is_negative() {
        return None;
    }
    let scale = u32::from(value.scale());
    let ns = if scale <= unit_exp {
        value.mantissa().checked_mul(10i128.pow(unit_exp - scale))?
    } else {
        value.mantissa() / 10i128.pow(scale - unit_exp)
    };
    u64::try_from(ns).ok()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::exchange::gate::fixtures::{self, server_frames};
    use crate::model::EventKind;
    use crate::model::Status;

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    fn one(frame: &str) -> Vec<Normalized> {
        let mut out = Vec::new();
        assert_eq!(GateNormalizer::new().normalize(frame, 7, &mut out), Ok(FrameKind::Data), "{frame}");
        out
    }

    fn gaps(out: &[Normalized]) -> Vec<(u64, u64)> {
        out.iter()
            .filter_map(|e| match &e.event {
                Event::Status(Status::Gap { expected, got, .. }) => Some((*expected, *got)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_server_frame_in_the_spot_capture() {
        let mut n = GateNormalizer::new();
        let (mut out, mut control) = (Vec::new(), 0);
        for (ts_recv, frame) in server_frames(fixtures::SPOT_WS) {
            match n.normalize(frame, ts_recv, &mut out) {
                Ok(FrameKind::Data) => {}
                Ok(FrameKind::Control) => control += 1,
                other => panic!("{other:?}: {frame}"),
            }
        }
        let mut kinds = BTreeMap::new();
        for e in &out {
            *kinds.entry(e.event.kind()).or_insert(0) += 1;
            assert!(e.instrument.as_ref().is_some_and(|i| i.exchange == crate::model::Exchange::Gate));
            // The capture ran 2021-04-22 12:12:12..12:12:43; candles start at 12:12:00.
            assert!((1_619_093_520_000_000_000..1_619_093_564_000_000_000).contains(&e.ts_exchange), "{e:?}");
        }
        let expected =
            [(EventKind::Trade, 9), (EventKind::BookDelta, 172), (EventKind::Candle, 14), (EventKind::Ticker, 22)];
        assert_eq!(kinds, BTreeMap::from(expected), "no gaps, no snapshots: the capture is continuous");
        assert_eq!(control, 22, "1 trades + 10 order book + 10 candle + 1 ticker subscribe acks");
    }

    #[test]
    fn frames_table() {
        // Real frames from GATEIO.ws.1.0, then doc examples for the fields 2021 frames lack.
        let trade = |price: &str, qty: &str, side, id| {
            Event::Trade(Trade { price: d(price), qty: d(qty), side, trade_id: Some(id) })
        };
        // Both captured candles have open = high = low = close.
        let candle = |open_time, price: &str, volume: &str, quote: &str, closed| {
            let (price, volume, quote_volume) = (d(price), d(volume), Some(d(quote)));
            let (open, high, low, close) = (price, price, price, price);
            let c = Candle {
                interval_s: 60,
                open_time,
                open,
                high,
                low,
                close,
                volume,
                quote_volume,
                trade_count: None,
                closed,
            };
            Event::Candle(Box::new(c))
        };
        let cases: [(&str, &str, Nanos, Event); 7] = [
            (
                r#"{"time":1619093543,"channel":"spot.trades","event":"update","result":{"id":816995772,"create_time":1619093543,"create_time_ms":"1619093543708.2642","side":"sell","currency_pair":"DIS_USDT","amount":"0.2010000000","price":"121.5800000000"}}"#,
                "DIS/USDT",
                1_619_093_543_708_264_200,
                trade("121.58", "0.201", Side::Sell, 816995772),
            ),
            (
                r#"{"time":1619093546,"channel":"spot.trades","event":"update","result":{"id":816995970,"create_time":1619093546,"create_time_ms":"1619093546958.116","side":"buy","currency_pair":"NEO_BTC","amount":"0.5000000000","price":"0.0018735000"}}"#,
                "NEO/BTC",
                1_619_093_546_958_116_000,
                trade("0.0018735", "0.5", Side::Buy, 816995970),
            ),
            (
                r#"{"time":1619093562,"channel":"spot.order_book_update","event":"update","result":{"t":1619093562998,"e":"depthUpdate","E":1619093562,"s":"DIS_USDT","U":1750488,"u":1750488,"b":[["121.5","0.148"],["73.5","0"]],"a":[]}}"#,
                "DIS/USDT",
                1_619_093_562_998_000_000,
                Event::BookDelta(BookDelta {
                    first_update_id: 1750488,
                    last_update_id: 1750488,
                    bids: vec![Level { price: d("121.5"), qty: d("0.148") }, Level { price: d("73.5"), qty: d("0") }],
                    asks: vec![],
                }),
            ),
            (
                r#"{"time":1619093548,"channel":"spot.candlesticks","event":"update","result":{"t":"1619093520","v":"24.43758","c":"121.58","h":"121.58","l":"121.58","o":"121.58","n":"1m_DIS_USDT"}}"#,
                "DIS/USDT",
                1_619_093_548_000_000_000,
                candle(1_619_093_520_000_000_000, "121.58", "0", "24.43758", false),
            ),
            (
                r#"{"time":1619093533,"channel":"spot.tickers","event":"update","result":{"currency_pair":"NEO_BTC","last":"0.0018716","lowest_ask":"0.0018734","highest_bid":"0.0018697","change_percentage":"2.9256","base_volume":"1138.01640718","quote_volume":"2.048263365803126","high_24h":"0.0018754","low_24h":"0.0017148"}}"#,
                "NEO/BTC",
                1_619_093_533_000_000_000,
                Event::Ticker(Box::new(Ticker {
                    last: d("0.0018716"),
                    volume_24h: d("1138.01640718"),
                    quote_volume_24h: Some(d("2.048263365803126")),
                    high_24h: Some(d("0.0018754")),
                    low_24h: Some(d("0.0017148")),
                    best_bid: Some(d("0.0018697")),
                    best_ask: Some(d("0.0018734")),
                })),
            ),
            // Doc example, with `id_market` repeated as the doc prints it: the last one wins.
            (
                r#"{"time":1606292218,"time_ms":1606292218231,"channel":"spot.trades","event":"update","result":{"id":309143071,"id_market":1,"id_market":5736713,"create_time":1606292218,"create_time_ms":"1606292218213.4578","side":"sell","currency_pair":"GT_USDT","amount":"16.4700000000","price":"0.4705000000","range":"2390902-2390902"}}"#,
                "GT/USDT",
                1_606_292_218_213_457_800,
                trade("0.4705", "16.47", Side::Sell, 5736713),
            ),
            // Doc example: `a` is the base volume, `v` the quote turnover, `w` the closed flag.
            (
                r#"{"time":1606292600,"time_ms":1606292600376,"channel":"spot.candlesticks","event":"update","result":{"t":"1606292580","v":"2362.32035","c":"19128.1","h":"19128.1","l":"19128.1","o":"19128.1","n":"1m_BTC_USDT","a":"3.8283","w":true}}"#,
                "BTC/USDT",
                1_606_292_600_376_000_000,
                candle(1_606_292_580_000_000_000, "19128.1", "3.8283", "2362.32035", true),
            ),
        ];
        for (frame, symbol, ts, event) in cases {
            let out = one(frame);
            assert_eq!(out.len(), 1, "{frame}");
            assert_eq!(out[0].instrument.as_ref().map(|i| i.symbol.as_str()), Some(symbol), "{frame}");
            assert_eq!((out[0].ts_exchange, &out[0].event), (ts, &event), "{frame}");
        }
    }

    #[test]
    fn book_ticker_in_the_futures_shape() {
        // No spot book_ticker was captured; the futures frames have the same {t,u,s,b,B,a,A}
        // shape with B/A as JSON numbers, so they are read under the spot channel name.
        let mut n = GateNormalizer::new();
        let mut out = Vec::new();
        let frames: Vec<_> = server_frames(fixtures::FUTURES_WS)
            .into_iter()
            .filter(|(_, f)| f.contains("futures.book_ticker") && f.contains("\"update\""))
            .map(|(ts, f)| (ts, f.replace("\"futures.book_ticker\"", "\"spot.book_ticker\"")))
            .collect();
        for (ts, frame) in &frames {
            assert_eq!(n.normalize(frame, *ts, &mut out), Ok(FrameKind::Data), "{frame}");
        }
        assert_eq!((frames.len(), out.len()), (75, 75));
        assert!(out.iter().all(|e| matches!(e.event, Event::Quote(_))));
        // {"t":1684930165621,"u":6159967,"s":"PHB_USDT","b":"0.7379","B":814,"a":"0.739","A":677}
        let (bid_price, bid_qty, ask_price, ask_qty) = (d("0.7379"), d("814"), d("0.739"), d("677"));
        let quote = Event::Quote(Quote { bid_price, bid_qty, ask_price, ask_qty, update_id: Some(6159967) });
        let symbol = out[0].instrument.as_ref().map(|i| i.symbol.as_str());
        assert_eq!((out[0].ts_exchange, symbol, &out[0].event), (1_684_930_165_621_000_000, Some("PHB/USDT"), &quote));
    }

    #[test]
    fn fractional_ms_table() {
        let cases = [
            ("\"1619093543708.2642\"", Some(1_619_093_543_708_264_200)),
            ("\"1606292218213.4578\"", Some(1_606_292_218_213_457_800)),
            ("\"1619093547078.008\"", Some(1_619_093_547_078_008_000)),
            ("1619093546958", Some(1_619_093_546_958_000_000)),
            ("\"1619093546958.1234567\"", Some(1_619_093_546_958_123_456)),
            ("\"-1\"", None),
            ("\"abc\"", None),
            ("\"\"", None),
            ("\"99999999999999999\"", None),
        ];
        for (token, ns) in cases {
            assert_eq!(frac_ms_to_ns(token, "create_time_ms").ok(), ns, "{token}");
        }
    }

    #[test]
    fn depth_gap_from_a_dropped_real_frame_and_full_pushes() {
        let omg: Vec<_> = server_frames(fixtures::SPOT_WS)
            .into_iter()
            .filter(|(_, f)| f.contains("\"s\":\"OMG_USDT\""))
            .map(|(_, f)| f)
            .collect();
        assert_eq!(omg.len(), 51);
        let ids = |frame: &str| match &one(frame)[0].event {
            Event::BookDelta(b) => (b.first_update_id, b.last_update_id),
            other => panic!("{other:?}"),
        };
        let mut n = GateNormalizer::new();
        let mut out = Vec::new();
        for (i, frame) in omg.iter().enumerate().filter(|(i, _)| *i != 10) {
            n.normalize(frame, i as u64, &mut out).unwrap();
        }
        assert_eq!(gaps(&out), vec![(ids(omg[10]).0, ids(omg[11]).0)]);
        // The gap status comes right before the delta that revealed it.
        let at = out.iter().position(|e| matches!(e.event, Event::Status(_))).unwrap();
        assert!(matches!(&out[at + 1].event, Event::BookDelta(b) if b.first_update_id == ids(omg[11]).0));

        // A rejected frame (bad level) leaves no trace: skipping it is still seen as a gap.
        n.reset();
        out.clear();
        n.normalize(omg[40], 0, &mut out).unwrap();
        assert!(n.normalize(&omg[41].replace("\"b\":[[\"", "\"b\":[[\"x"), 0, &mut out).is_err());
        n.normalize(omg[42], 0, &mut out).unwrap();
        assert_eq!(gaps(&out), vec![(ids(omg[41]).0, ids(omg[42]).0)]);

        // After reset nothing is remembered; a full push is a snapshot that restarts continuity.
        n.reset();
        out.clear();
        n.normalize(omg[40], 0, &mut out).unwrap();
        let full = r#"{"time":1606294781,"time_ms":1606294781236,"channel":"spot.order_book_update","event":"update","result":{"t":1606294781123,"full":true,"l":"100","e":"depthUpdate","E":1606294781,"s":"OMG_USDT","U":48776301,"u":48776306,"b":[["19137.74","0.0001"]],"a":[["19137.75","0.6135"]]}}"#;
        n.normalize(full, 0, &mut out).unwrap();
        assert!(
            matches!(&out[1].event, Event::BookSnapshot(s) if s.last_update_id == Some(48776306) && s.bids.len() == 1)
        );
        assert_eq!(out[1].ts_exchange, 1_606_294_781_123_000_000);
        let next = omg[0].replace("\"U\":59231869,\"u\":59231869", "\"U\":48776307,\"u\":48776309");
        n.normalize(&next, 0, &mut out).unwrap();
        assert_eq!(gaps(&out), vec![]);
    }

    #[test]
    fn trade_gaps_use_id_market() {
        let frame = |id_market: u64| {
            format!(
                r#"{{"time":1606292218,"channel":"spot.trades","event":"update","result":{{"id":{},"id_market":{id_market},"create_time":1606292218,"create_time_ms":"1606292218213.4578","side":"sell","currency_pair":"GT_USDT","amount":"16.47","price":"0.4705"}}}}"#,
                id_market + 300_000_000
            )
        };
        let mut n = GateNormalizer::new();
        let mut out = Vec::new();
        for id in [100, 101, 101, 99, 104, 105] {
            n.normalize(&frame(id), 0, &mut out).unwrap();
        }
        assert_eq!(gaps(&out), vec![(102, 104)], "repeats and older ids are not gaps");
        n.reset();
        out.clear();
        n.normalize(&frame(200), 0, &mut out).unwrap();
        assert_eq!(gaps(&out), vec![]);
    }

    #[test]
    fn control_and_errors_table() {
        let control = [
            (
                r#"{"time":1619093532,"channel":"spot.trades","event":"subscribe","result":{"status":"success"}}"#,
                FrameKind::Control,
            ),
            (
                r#"{"time":1684930165,"time_ms":0,"channel":"futures.book_ticker","event":"subscribe","result":{"status":"success"}}"#,
                FrameKind::Control,
            ),
            (r#"{"time":1545404023,"channel":"spot.pong","event":"","error":null,"result":null}"#, FrameKind::Control),
            (
                r#"{"time":1545404023,"channel":"spot.trades","event":"unsubscribe","error":null,"result":{"status":"success"}}"#,
                FrameKind::Control,
            ),
            (
                r#"{"time":1606292218,"time_ms":1606292218231,"channel":"spot.trades","event":"subscribe","error":{"code":2,"message":"unknown currency pair GIBBERISH_USD"},"result":null}"#,
                FrameKind::VenueError("code 2: unknown currency pair GIBBERISH_USD".into()),
            ),
        ];
        for (frame, expected) in control {
            let mut out = Vec::new();
            assert_eq!(GateNormalizer::new().normalize(frame, 0, &mut out), Ok(expected), "{frame}");
            assert!(out.is_empty());
        }
        let trade = r#"{"time":1619093543,"channel":"spot.trades","event":"update","result":{"id":1,"create_time":1619093543,"side":"sell","currency_pair":"DIS_USDT","amount":"0.2","price":"121.58"}}"#;
        let candle = r#"{"time":1619093548,"channel":"spot.candlesticks","event":"update","result":{"t":"1619093520","v":"0","c":"1","h":"1","l":"1","o":"1","n":"1m_DIS_USDT"}}"#;
        let errors: [(String, fn(&NormalizeError) -> bool); 7] = [
            ("{not json".into(), |e| matches!(e, NormalizeError::Malformed(_))),
            (trade.replace("spot.trades", "spot.obu"), |e| matches!(e, NormalizeError::Unknown(_))),
            (trade.replace("\"121.58\"", "\"1.2.3\""), |e| matches!(e, NormalizeError::Number { field: "price", .. })),
            (trade.replace("DIS_USDT", "DISUSDT"), |e| matches!(e, NormalizeError::Symbol(s) if s == "DISUSDT")),
            (trade.replace("\"id\":1,", ""), |e| matches!(e, NormalizeError::Malformed(m) if m == "missing field id")),
            (candle.replace("1m_", "1M_"), |e| matches!(e, NormalizeError::Number { field: "n", .. })),
            (candle.replace("1m_", "30d_"), |e| matches!(e, NormalizeError::Number { field: "n", .. })),
        ];
        for (frame, check) in errors {
            let mut out = Vec::new();
            let result = GateNormalizer::new().normalize(&frame, 0, &mut out);
            assert!(result.as_ref().is_err_and(check), "{result:?}: {frame}");
            assert!(out.is_empty());
        }
    }
}
