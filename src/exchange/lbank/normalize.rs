//! LBank WebSocket V2 pushes → model events, and LBank's zone-less time strings → ns.
//!
//! Owns frame classification (market data, ping and other control frames, in-band errors),
//! exact number parsing from raw JSON tokens, and the time-zone decision ([`UTC_OFFSET_S`]).
//! Must not read the wall clock, go through `f64`, invent sequence checks (LBank market data
//! carries no ids, so gaps cannot be detected) or merge depth pushes (each one is a complete
//! top-N book, recorded as a snapshot).

use serde_json::value::RawValue;

use super::rest::instrument_for;
use super::wire::{DepthMsg, Frame, KbarMsg, RawLevel, TickMsg, TradeMsg, pong};
use crate::exchange::{FrameKind, NormalizeError, Normalized, Normalizer};
use crate::model::time::days_from_civil;
use crate::model::{BookSnapshot, Candle, Decimal, Event, Level, NANOS_PER_SEC, Nanos, Side, Ticker, Trade};

/// The UTC offset, in seconds, of every zone-less LBank time string (WS `TS`, trade `TS`,
/// kbar `t`): UTC+8, Beijing time.
///
/// Source: `shared/protocols/lbank.md` §5. The official WebSocket doc calls the same
/// format "beijing time" (the kbar request's `start`), gocryptotrader parses live captures
/// as UTC+8, and ExchangeSharp PR #741 added China-time parsing for LBank. REST `day1`
/// candles are bucketed at UTC+8 midnight, which this offset reproduces (tested below).
/// ccxt and hummingbot read the strings as UTC instead, an 8-hour error; a third-party audit
/// rates the zone "undetermined", so check it once against `GET /v2/timestamp.do`.
pub const UTC_OFFSET_S: i64 = 8 * 3600;

/// Normalizer for one LBank V2 connection. Stateless: with no sequence ids there is nothing
/// to check across frames, and every depth push replaces the book outright.
#[derive(Debug, Default)]
pub struct LbankNormalizer;

impl LbankNormalizer {
    pub fn new() -> Self {
        LbankNormalizer
    }

    fn classify(&self, frame: &str, out: &mut Vec<Normalized>) -> Result<FrameKind, NormalizeError> {
        let f: Frame = parse(frame)?;
        // `{"SERVER":"V2","message":"Missing parameter ['kbar']","status":"error","TS":".."}` (ccxt).
        if f.status == Some("error") {
            let message = f.message.map_or_else(|| "unspecified error".to_string(), |m| m.into_owned());
            return Ok(FrameKind::VenueError(message));
        }
        if let Some(action) = f.action {
            return match action {
                // Server pings (answered by the capture loop via `pong_for`), pongs to our own
                // pings, and echoes of our (un)subscribe requests: no market data in any.
                "ping" | "pong" | "subscribe" | "unsubscribe" => Ok(FrameKind::Control),
                other => Err(NormalizeError::Unknown(format!("action {other}"))),
            };
        }
        let Some(kind) = f.kind else {
            // No subscribe acknowledgement is documented; a bare status frame carries no data.
            return if f.status.is_some() { Ok(FrameKind::Control) } else { Err(NormalizeError::Unknown(head(frame))) };
        };
        if !matches!(kind, "trade" | "depth" | "kbar" | "tick") {
            return Err(NormalizeError::Unknown(format!("type {kind}")));
        }
        let pair = f.pair.ok_or_else(|| NormalizeError::Malformed(format!("{kind} frame without pair")))?;
        let instrument = instrument_for(pair)?;
        let push_ts =
            time_field(f.ts.ok_or_else(|| NormalizeError::Malformed(format!("{kind} frame without TS")))?, "TS")?;
        let (ts_exchange, event) = match (kind, object(f.trade), object(f.depth), object(f.kbar), object(f.tick)) {
            ("trade", Some(raw), ..) => trade(raw, push_ts)?,
            ("depth", _, Some(raw), ..) => (push_ts, depth(parse(raw.get())?)?),
            // A one-shot `request` reply for depth has the same levels at the top level.
            ("depth", _, None, ..) if f.asks.is_some() => (push_ts, depth(parse(frame)?)?),
            ("kbar", _, _, Some(raw), _) => (push_ts, kbar(raw)?),
            ("tick", .., Some(raw)) => (push_ts, tick(raw)?),
            _ => return Err(request_reply(kind, &f)),
        };
        out.push(Normalized { instrument: Some(instrument), ts_exchange, event });
        Ok(FrameKind::Data)
    }
}

impl Normalizer for LbankNormalizer {
    /// `ts_recv` is unused: every LBank push carries its own `TS`.
    fn normalize(
        &mut self,
        frame: &str,
        _ts_recv: Nanos,
        out: &mut Vec<Normalized>,
    ) -> Result<FrameKind, NormalizeError> {
        let start = out.len();
        let result = self.classify(frame, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }
}

/// The documented reply to a server ping (`{"action":"ping","ping":"<id>"}` →
/// `{"action":"pong","pong":"<id>"}`), or `None` when `frame` is not a ping. The server
/// closes the connection when a ping goes unanswered for a minute.
pub fn pong_for(frame: &str) -> Option<String> {
    let f: Frame = serde_json::from_str(frame).ok()?;
    match (f.action, f.ping) {
        (Some("ping"), Some(id)) => Some(pong(id)),
        _ => None,
    }
}

/// Parses an LBank time string (`2019-06-28T17:49:22.722`, 0–9 fractional digits, no zone)
/// as [`UTC_OFFSET_S`] local time, to ns since the epoch. Strings with a zone suffix are
/// refused rather than guessed at, so a format change shows up as parse errors.
///
/// # Errors
/// When the text is not such a time, or falls before the epoch or after year 2554 (u64 ns).
pub fn parse_time(text: &str) -> Result<Nanos, String> {
    let bad = || format!("invalid lbank time {text:?} (expected e.g. 2019-06-28T17:49:22.722, UTC+8)");
    let b = text.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let digits = |from: usize, to: usize| {
        b[from..to]
            .iter()
            .try_fold(0u64, |acc, &c| if c.is_ascii_digit() { Ok(acc * 10 + u64::from(c - b'0')) } else { Err(bad()) })
    };
    let (year, month, day) = (digits(0, 4)?, digits(5, 7)?, digits(8, 10)?);
    let (hour, minute, second) = (digits(11, 13)?, digits(14, 16)?, digits(17, 19)?);
    let frac_ns = match &b[19..] {
        [] => 0,
        [b'.', frac @ ..] if (1..=9).contains(&frac.len()) => digits(20, b.len())? * 10u64.pow(9 - frac.len() as u32),
        _ => return Err(bad()),
    };
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad());
    }
    let local_s =
        days_from_civil(year as i64, month as u32, day as u32) * 86_400 + (hour * 3600 + minute * 60 + second) as i64;
    let utc_s = u64::try_from(local_s - UTC_OFFSET_S).map_err(|_| bad())?;
    utc_s.checked_mul(NANOS_PER_SEC).and_then(|ns| ns.checked_add(frac_ns)).ok_or_else(bad)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The kbar `slot` in seconds. `month` and `year` have no fixed length, which the model's
/// `interval_s` cannot express, so their pushes are refused (and counted) instead of guessed.
pub(super) fn slot_seconds(slot: &str) -> Option<u32> {
    Some(match slot {
        "1min" => 60,
        "5min" => 300,
        "15min" => 900,
        "30min" => 1800,
        "1hr" => 3600,
        "4hr" => 14_400,
        "day" => 86_400,
        "week" => 604_800,
        _ => return None,
    })
}

/// The taker side from `direction`. The doc lists `buy` and `sell`; ccxt's LBank adapter
/// lists `<side>_market|_maker|_ioc|_fok` too and reads `_maker` as "this side was the
/// maker", so the taker was the other side. Anything else is recorded as unknown.
fn taker_side(direction: &str) -> Side {
    let (side, suffix) = direction.split_once('_').unwrap_or((direction, ""));
    let (side, other) = match side {
        "buy" => (Side::Buy, Side::Sell),
        "sell" => (Side::Sell, Side::Buy),
        _ => return Side::Unknown,
    };
    match suffix {
        "" | "market" | "ioc" | "fok" => side,
        "maker" => other,
        _ => Side::Unknown,
    }
}

/// Trade: `ts_exchange` is the deal time (inner `TS`), falling back to the push time.
fn trade(raw: &RawValue, push_ts: Nanos) -> Result<(Nanos, Event), NormalizeError> {
    let m: TradeMsg = parse(raw.get())?;
    let ts = m.ts.map(|t| time_field(t, "trade.TS")).transpose()?.unwrap_or(push_ts);
    let event = Event::Trade(Trade {
        price: num(m.price, "trade.price")?,
        qty: num(m.volume, "trade.volume")?,
        side: taker_side(m.direction),
        // LBank WS trades carry no id (lbank-official-api-docs issue #20).
        trade_id: None,
    });
    Ok((ts, event))
}

/// A depth push is the complete top-N book (no update ids, no diffs): a snapshot.
fn depth(m: DepthMsg) -> Result<Event, NormalizeError> {
    Ok(Event::BookSnapshot(BookSnapshot {
        last_update_id: None,
        bids: levels(&m.bids, "depth.bids")?,
        asks: levels(&m.asks, "depth.asks")?,
    }))
}

fn kbar(raw: &RawValue) -> Result<Event, NormalizeError> {
    let m: KbarMsg = parse(raw.get())?;
    let interval_s = slot_seconds(m.slot).ok_or_else(|| NormalizeError::Number {
        field: "kbar.slot",
        detail: format!("slot {:?} has no fixed length in seconds", m.slot),
    })?;
    Ok(Event::Candle(Box::new(Candle {
        interval_s,
        open_time: time_field(m.t, "kbar.t")?,
        open: num(m.o, "kbar.o")?,
        high: num(m.h, "kbar.h")?,
        low: num(m.l, "kbar.l")?,
        close: num(m.c, "kbar.c")?,
        volume: num(m.v, "kbar.v")?,
        quote_volume: m.a.map(|a| num(a, "kbar.a")).transpose()?,
        trade_count: m.n.map(count).transpose()?,
        // LBank sends no closed flag: a bar is updated in place and is only known final when
        // a push with a later `t` arrives. Inferring that here would mean re-emitting an old
        // bar on the next one's push, which the venue never said; the engine's CandleBuilder
        // closes bars by event time instead.
        closed: false,
    })))
}

fn tick(raw: &RawValue) -> Result<Event, NormalizeError> {
    let m: TickMsg = parse(raw.get())?;
    let opt = |raw: Option<&RawValue>, field| raw.map(|r| num(r, field)).transpose();
    Ok(Event::Ticker(Box::new(Ticker {
        last: num(m.latest, "tick.latest")?,
        volume_24h: num(m.vol, "tick.vol")?,
        quote_volume_24h: opt(m.turnover, "tick.turnover")?,
        high_24h: opt(m.high, "tick.high")?,
        low_24h: opt(m.low, "tick.low")?,
        // The tick has no best bid/ask (subscribe to depth for those).
        best_bid: None,
        best_ask: None,
    })))
}

/// One-shot `request` replies (rows under `records`/`trades`, shapes only partly documented)
/// and pushes missing their payload; counted as parse errors rather than dropped.
fn request_reply(kind: &str, f: &Frame) -> NormalizeError {
    if f.records.is_some() || f.trades.is_some() {
        NormalizeError::Unknown(format!("one-shot {kind} request reply (not normalized)"))
    } else {
        NormalizeError::Malformed(format!("{kind} frame without a {kind} object"))
    }
}

/// The payload only when it is an object: the same keys hold strings in request replies.
fn object(raw: Option<&RawValue>) -> Option<&RawValue> {
    raw.filter(|r| r.get().trim_start().starts_with('{'))
}

fn parse<'a, T: serde::Deserialize<'a>>(text: &'a str) -> Result<T, NormalizeError> {
    serde_json::from_str(text).map_err(|e| NormalizeError::Malformed(e.to_string()))
}

fn time_field(text: &str, field: &str) -> Result<Nanos, NormalizeError> {
    parse_time(text).map_err(|detail| NormalizeError::Malformed(format!("{field}: {detail}")))
}

/// A JSON number token (or quoted decimal) read exactly, exponents included.
pub(super) fn num(raw: &RawValue, field: &'static str) -> Result<Decimal, NormalizeError> {
    Decimal::parse_json_token(raw.get()).map_err(|e| NormalizeError::Number { field, detail: e.to_string() })
}

pub(super) fn levels(raw: &[RawLevel], field: &'static str) -> Result<Vec<Level>, NormalizeError> {
    raw.iter().map(|[p, q]| Ok(Level { price: num(p, field)?, qty: num(q, field)? })).collect()
}

/// A count the doc types as BigDecimal: accepted when it is a whole, non-negative number.
fn count(raw: &RawValue) -> Result<u64, NormalizeError> {
    let value = num(raw, "kbar.n")?.normalized();
    let not_count = || NormalizeError::Number { field: "kbar.n", detail: format!("{value} is not a count") };
    if value.scale() != 0 {
        return Err(not_count());
    }
    u64::try_from(value.mantissa()).map_err(|_| not_count())
}

fn head(frame: &str) -> String {
    frame.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::time::{format_utc, parse_utc};

    const PUSHES: &str = include_str!("../../../tests/fixtures/lbank/lbank_v2_ws_push_doc_examples.jsonl");
    const REQUESTS: &str =
        include_str!("../../../tests/fixtures/lbank/lbank_v2_ws_subscribe_requests_doc_examples.jsonl");

    fn run(frame: &str) -> (Result<FrameKind, NormalizeError>, Vec<Normalized>) {
        let mut out = Vec::new();
        let kind = LbankNormalizer::new().normalize(frame, 7, &mut out);
        (kind, out)
    }

    fn data(frame: &str) -> Normalized {
        let (kind, mut out) = run(frame);
        assert_eq!(kind, Ok(FrameKind::Data), "{frame}");
        assert_eq!(out.len(), 1, "{frame}");
        out.pop().unwrap()
    }

    fn utc(text: &str) -> Nanos {
        parse_utc(text).unwrap()
    }

    fn strings(levels: &[Level]) -> Vec<(String, String)> {
        levels.iter().map(|l| (l.price.to_string(), l.qty.to_string())).collect()
    }

    /// Every doc example line, in file order: what it is, its pair and its exchange time.
    #[test]
    fn every_doc_push_example_is_classified() {
        let expected: [(Result<FrameKind, NormalizeError>, Option<(&str, &str)>); 5] = [
            (Ok(FrameKind::Data), Some(("ETH/BTC", "2019-06-28T09:49:22.722Z"))), // kbar: push TS
            (Ok(FrameKind::Data), Some(("ETH/BTC", "2019-06-28T09:49:22.722Z"))), // depth: push TS
            (Ok(FrameKind::Data), Some(("BTC/USDT", "2019-06-28T11:55:49.460Z"))), // trade: deal TS
            (Ok(FrameKind::Data), Some(("ETH/BTC", "2019-07-01T03:33:55.188Z"))), // tick: push TS
            (Ok(FrameKind::Control), None),                                       // server ping
        ];
        let lines: Vec<&str> = PUSHES.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), expected.len());
        for (line, (kind, meta)) in lines.iter().zip(expected) {
            let (got, out) = run(line);
            assert_eq!(got, kind, "{line}");
            match meta {
                Some((symbol, ts)) => {
                    assert_eq!(out.len(), 1, "{line}");
                    let instrument = out[0].instrument.as_ref().unwrap();
                    assert_eq!(instrument.symbol, symbol);
                    assert_eq!(format_utc(out[0].ts_exchange), ts, "{line}");
                    assert_eq!(out[0].ts_exchange, utc(ts));
                }
                None => assert!(out.is_empty(), "{line}"),
            }
        }
    }

    #[test]
    fn doc_examples_keep_every_digit() {
        let lines: Vec<&str> = PUSHES.lines().collect();

        let Event::Candle(c) = data(lines[0]).event else { panic!("kbar is not a candle") };
        let prices = [&c.open, &c.high, &c.low, &c.close, &c.volume].map(|d| d.to_string());
        assert_eq!(prices, ["0.02595196", "0.02601247", "0.02587925", "0.02590293", "2481.1912"]);
        assert_eq!(c.quote_volume.unwrap().to_string(), "64.32991311");
        assert_eq!((c.interval_s, c.trade_count, c.closed), (300, Some(272), false));
        assert_eq!(c.open_time, utc("2019-06-28T09:45:00Z"), "t is UTC+8 like TS");

        let n = data(lines[1]);
        let Event::BookSnapshot(book) = n.event else { panic!("depth is not a snapshot") };
        assert_eq!(book.last_update_id, None);
        let s = |p: &str, q: &str| (p.to_string(), q.to_string());
        assert_eq!(strings(&book.asks), [s("0.0252", "0.5833"), s("0.025215", "4.377")]);
        assert_eq!(strings(&book.bids), [s("0.025135", "3.962"), s("0.025134", "3.46")]);

        let n = data(lines[2]);
        assert_eq!(n.instrument.as_ref().unwrap().venue_symbol, "btc_usdt");
        let Event::Trade(t) = n.event else { panic!("trade is not a trade") };
        assert_eq!((t.price.to_string(), t.qty.to_string()), s("12129", "6.3607"));
        assert_eq!((t.side, t.trade_id), (Side::Sell, None));

        let Event::Ticker(t) = data(lines[3]).event else { panic!("tick is not a ticker") };
        let got = [Some(t.last), Some(t.volume_24h), t.quote_volume_24h, t.high_24h, t.low_24h, t.best_bid]
            .map(|d| d.map(|d| d.to_string()));
        let want =
            [Some("0.02698749"), Some("497529.7686"), Some("13224.0186"), Some("0.02719761"), Some("0.02603071"), None];
        assert_eq!(got, want.map(|w| w.map(String::from)));
    }

    #[test]
    fn exponents_and_long_numbers_stay_exact() {
        // Exponent notation ("4.0E-5") is in real LBank output; the 23-digit quantity would
        // lose digits through f64.
        let frame = r#"{"trade":{"volume":0.12345678901234567890123,"amount":1,"price":4.0E-5,"direction":"buy_maker","TS":"2024-01-19T23:56:26.299"},"type":"trade","pair":"lbk_usdt","SERVER":"V2","TS":"2024-01-19T23:56:26.300"}"#;
        let n = data(frame);
        assert_eq!(n.ts_exchange, utc("2024-01-19T15:56:26.299Z"));
        let Event::Trade(t) = n.event else { panic!("not a trade") };
        assert_eq!(t.price.to_string(), "0.000040");
        assert_eq!(t.qty.to_string(), "0.12345678901234567890123");
        assert_eq!(t.side, Side::Sell, "buy_maker: the seller took");
    }

    #[test]
    fn direction_to_taker_side_table() {
        let cases = [
            ("buy", Side::Buy),
            ("sell", Side::Sell),
            ("buy_market", Side::Buy),
            ("sell_market", Side::Sell),
            ("buy_maker", Side::Sell),
            ("sell_maker", Side::Buy),
            ("buy_ioc", Side::Buy),
            ("sell_fok", Side::Sell),
            ("buy_later", Side::Unknown),
            ("hold", Side::Unknown),
            ("", Side::Unknown),
        ];
        for (direction, side) in cases {
            assert_eq!(taker_side(direction), side, "{direction}");
        }
    }

    #[test]
    fn control_and_errors_table() {
        let ping = PUSHES.lines().nth(4).unwrap();
        let cases = [
            (ping, Ok(FrameKind::Control)),
            (r#"{"action":"pong","pong":"0ca8f854-7ba7-4341-9d86-d3327e52804e"}"#, Ok(FrameKind::Control)),
            (r#"{"action":"subscribe","subscribe":"kbar","kbar":"5min","pair":"eth_btc"}"#, Ok(FrameKind::Control)),
            (r#"{"status":"ok","SERVER":"V2","TS":"2024-01-16T08:09:43.314"}"#, Ok(FrameKind::Control)),
            (
                r#"{"SERVER":"V2","message":"Missing parameter ['kbar']","status":"error","TS":"2024-01-16T08:09:43.314"}"#,
                Ok(FrameKind::VenueError("Missing parameter ['kbar']".into())),
            ),
            (r#"{"status":"error"}"#, Ok(FrameKind::VenueError("unspecified error".into()))),
        ];
        for (frame, expected) in cases {
            let (kind, out) = run(frame);
            assert_eq!(kind, expected, "{frame}");
            assert!(out.is_empty(), "{frame}");
        }
    }

    #[test]
    fn rejects_table() {
        let trade = |pair: &str, ts: &str, price: &str| {
            format!(
                r#"{{"trade":{{"volume":1,"amount":1,"price":{price},"direction":"sell"}},"type":"trade","pair":"{pair}","TS":"{ts}"}}"#
            )
        };
        let good_ts = "2019-06-28T19:55:49.466";
        let kbar = |slot: &str| {
            format!(
                r#"{{"kbar":{{"a":1,"c":1,"t":"2019-06-28T00:00:00.000","v":1,"h":1,"slot":"{slot}","l":1,"n":2,"o":1}},"type":"kbar","pair":"eth_btc","TS":"{good_ts}"}}"#
            )
        };
        let cases: Vec<(String, fn(&NormalizeError) -> bool)> = vec![
            ("{not json".into(), |e| matches!(e, NormalizeError::Malformed(_))),
            ("[]".into(), |e| matches!(e, NormalizeError::Malformed(_))),
            ("{}".into(), |e| matches!(e, NormalizeError::Unknown(_))),
            (r#"{"action":"hello"}"#.into(), |e| matches!(e, NormalizeError::Unknown(_))),
            (r#"{"type":"orderUpdate","pair":"eth_btc","TS":"x"}"#.into(), |e| matches!(e, NormalizeError::Unknown(_))),
            (trade("btcusdt", good_ts, "1"), |e| matches!(e, NormalizeError::Symbol(_))),
            (trade("btc_usdt", "2019-06-28T19:55:49Z", "1"), |e| matches!(e, NormalizeError::Malformed(_))),
            (trade("btc_usdt", good_ts, "\"1.2.3\""), |e| matches!(e, NormalizeError::Number { field: "trade.price", .. })),
            (trade("btc_usdt", good_ts, "null"), |e| matches!(e, NormalizeError::Number { field: "trade.price", .. })),
            (r#"{"trade":{"price":1,"volume":1,"direction":"sell"},"type":"trade","pair":"btc_usdt"}"#.into(), |e| {
                matches!(e, NormalizeError::Malformed(_))
            }),
            (r#"{"type":"tick","pair":"btc_usdt","TS":"2019-06-28T19:55:49.466"}"#.into(), |e| {
                matches!(e, NormalizeError::Malformed(_))
            }),
            (kbar("month"), |e| matches!(e, NormalizeError::Number { field: "kbar.slot", .. })),
            (kbar("year"), |e| matches!(e, NormalizeError::Number { field: "kbar.slot", .. })),
            // One-shot request reply (ccxt comment): rows under `records`, `kbar` is a string.
            (
                r#"{"records":[[1705364400,42614,42624.57,42532.15,42537.43,13.2615,564568.931565,433]],"columns":["timestamp","open","high","low","close","volume","turnover","count"],"SERVER":"V2","count":1,"kbar":"5min","type":"kbar","pair":"btc_usdt","TS":"2024-01-16T08:26:00.413"}"#.into(),
                |e| matches!(e, NormalizeError::Unknown(_)),
            ),
        ];
        for (frame, is_expected) in cases {
            let mut out = vec![data(PUSHES.lines().next().unwrap())];
            let result = LbankNormalizer::new().normalize(&frame, 0, &mut out);
            let err = result.expect_err(&frame);
            assert!(is_expected(&err), "{frame}: {err}");
            assert_eq!(out.len(), 1, "nothing appended on error: {frame}");
        }
    }

    #[test]
    fn kbar_counts_must_be_whole() {
        let frame = |n: &str| {
            format!(
                r#"{{"kbar":{{"c":1,"t":"2019-06-28T17:45:00.000","v":1,"h":1,"slot":"1min","l":1,"n":{n},"o":1}},"type":"kbar","pair":"eth_btc","TS":"2019-06-28T17:49:22.722"}}"#
            )
        };
        for (n, expected) in
            [("272", Some(272)), ("2.72E2", Some(272)), ("272.0", Some(272)), ("2.5", None), ("-1", None)]
        {
            let (kind, out) = run(&frame(n));
            match expected {
                Some(count) => {
                    let Event::Candle(c) = &out[0].event else { panic!("not a candle") };
                    assert_eq!((c.trade_count, c.quote_volume), (Some(count), None), "{n}");
                }
                None => assert!(matches!(kind, Err(NormalizeError::Number { field: "kbar.n", .. })), "{n}"),
            }
        }
    }

    #[test]
    fn depth_request_reply_is_a_snapshot_too() {
        // Shape from ccxt's LBank adapter comment: levels at the top level, not under `depth`.
        let frame = r#"{"SERVER":"V2","asks":[[42585.84,1.4422]],"bids":[[42585.83,1.8054]],"count":100,"type":"depth","pair":"btc_usdt","TS":"2024-01-16T08:26:00.413"}"#;
        let n = data(frame);
        assert_eq!(n.ts_exchange, utc("2024-01-16T00:26:00.413Z"));
        let Event::BookSnapshot(book) = n.event else { panic!("not a snapshot") };
        assert_eq!((strings(&book.asks), strings(&book.bids).len()), (vec![("42585.84".into(), "1.4422".into())], 1));
    }

    #[test]
    fn kbar_slot_table() {
        let cases =
            [("1min", Some(60)), ("5min", Some(300)), ("15min", Some(900)), ("30min", Some(1800)), ("1hr", Some(3600))];
        let more =
            [("4hr", Some(14_400)), ("day", Some(86_400)), ("week", Some(604_800)), ("month", None), ("1m", None)];
        for (slot, seconds) in cases.into_iter().chain(more) {
            assert_eq!(slot_seconds(slot), seconds, "{slot}");
        }
    }

    #[test]
    fn times_are_utc_plus_8_table() {
        let cases = [
            ("2019-06-28T17:49:22.722", "2019-06-28T09:49:22.722Z"),
            ("2019-06-28T17:49:22", "2019-06-28T09:49:22Z"),
            ("1970-01-01T08:00:00.000", "1970-01-01T00:00:00Z"),
            ("2024-03-01T07:59:59.5", "2024-02-29T23:59:59.5Z"),
            ("2024-01-01T00:00:00.000", "2023-12-31T16:00:00Z"),
            ("2026-09-06T13:29:39.031", "2026-09-06T05:29:39.031Z"),
        ];
        for (lbank, utc_text) in cases {
            assert_eq!(parse_time(lbank), Ok(utc(utc_text)), "{lbank}");
        }
        // Nanosecond digits survive; no float anywhere.
        assert_eq!(parse_time("2019-06-28T17:49:22.123456789"), Ok(utc("2019-06-28T09:49:22Z") + 123_456_789));
        // REST `day1` candles open at UTC+8 midnight (1769875200 = 2026-01-31T16:00Z, protocols/lbank.md
        // §5): the same wall time written the LBank way lands on that exact second.
        assert_eq!(parse_time("2026-02-01T00:00:00.000"), Ok(1_769_875_200 * NANOS_PER_SEC));
        for bad in [
            "",
            "2019-06-28",
            "2019-06-28 17:49:22.722",
            "2019-06-28T17:49:22.722Z",
            "2019-06-28T17:49:22+08:00",
            "2019-06-28T17:49:22.",
            "2019-06-28T17:49:22.1234567890",
            "2019-6-28T17:49:22.722",
            "2019-06-28T24:00:00",
            "2019-06-28T17:60:00",
            "2019-06-28T17:49:60",
            "2019-13-28T17:49:22",
            "2019-00-28T17:49:22",
            "2023-02-29T00:00:00",
            "2019-04-31T00:00:00",
            "1970-01-01T07:59:59.999",
            "9999-12-31T23:59:59",
            "2019-06-28T17:49:2x",
            "+019-06-28T17:49:22",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pong_for_matches_the_doc_example() {
        let ping = PUSHES.lines().nth(4).unwrap();
        let doc_pong = REQUESTS.lines().nth(4).unwrap();
        assert_eq!(pong_for(ping).as_deref(), Some(doc_pong));
        assert_eq!(pong_for(r#"{"ping":12345,"action":"ping"}"#).as_deref(), Some(r#"{"action":"pong","pong":12345}"#));
        for not_ping in [doc_pong, PUSHES.lines().next().unwrap(), "{oops", r#"{"action":"ping"}"#] {
            assert_eq!(pong_for(not_ping), None, "{not_ping}");
        }
    }
}
