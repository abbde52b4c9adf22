//! Binance wire messages → model events, with trade-id and depth update-id gap checks.

use std::collections::HashMap;

use super::rest::SymbolMap;
use super::wire::*;
use crate::exchange::{FrameKind, NormalizeError, Normalized, Normalizer, check_seq, ms_to_ns};
use crate::model::time::parse_timeframe;
use crate::model::{BookDelta, Candle, Decimal, Event, Level, Nanos, Quote, Side, Ticker, Trade};

/// Normalizer for one Binance connection (combined or raw streams).
#[derive(Debug, Default)]
pub struct BinanceNormalizer {
    symbols: SymbolMap,
    last_trade_id: HashMap<String, u64>,
    last_agg_id: HashMap<String, u64>,
    last_depth_id: HashMap<String, u64>,
}

impl BinanceNormalizer {
    pub fn new(symbols: SymbolMap) -> Self {
        BinanceNormalizer { symbols, ..Default::default() }
    }

    /// Forgets sequence state; call on reconnect, where a fresh sync starts.
    pub fn reset(&mut self) {
        self.last_trade_id.clear();
        self.last_agg_id.clear();
        self.last_depth_id.clear();
    }

    fn dispatch(
        &mut self,
        stream: &str,
        payload: Payload,
        ts_recv: Nanos,
        out: &mut Vec<Normalized>,
    ) -> Result<(), NormalizeError> {
        let kind = stream.split_once('@').map_or(stream, |(_, k)| k);
        match kind {
            "trade" => self.trade(payload.parse()?, out),
            "aggTrade" => self.agg_trade(payload.parse()?, out),
            "bookTicker" => self.book_ticker(payload.parse()?, ts_recv, out),
            k if k.starts_with("depth")
                && !k.starts_with("depth5")
                && !k.starts_with("depth10")
                && !k.starts_with("depth20") =>
            {
                self.depth(payload.parse()?, out)
            }
            k if k.starts_with("kline_") => self.kline(payload.parse()?, out),
            "miniTicker@arr" | "miniTicker" if stream.starts_with('!') => {
                let tickers: Vec<MiniTickerMsg> = payload.parse()?;
                tickers.into_iter().try_for_each(|t| self.mini_ticker(t, out))
            }
            "miniTicker" => self.mini_ticker(payload.parse()?, out),
            _ => Err(NormalizeError::Unknown(format!("stream {stream}"))),
        }
    }

    fn trade(&mut self, m: TradeMsg, out: &mut Vec<Normalized>) -> Result<(), NormalizeError> {
        let instrument = self.symbols.resolve(m.symbol)?;
        let ts = ms_to_ns(m.trade_time);
        let stream = || format!("{}@trade", m.symbol.to_lowercase());
        // Parse first: a rejected frame must leave the sequence state untouched.
        let event = Event::Trade(Trade {
            price: num(m.price, "p")?,
            qty: num(m.qty, "q")?,
            side: taker_side(m.buyer_is_maker),
            trade_id: Some(m.trade_id),
        });
        check_seq(&mut self.last_trade_id, m.symbol, m.trade_id, m.trade_id, ts, stream, &instrument, out);
        out.push(Normalized { instrument: Some(instrument), ts_exchange: ts, event });
        Ok(())
    }

    fn agg_trade(&mut self, m: AggTradeMsg, out: &mut Vec<Normalized>) -> Result<(), NormalizeError> {
        let instrument = self.symbols.resolve(m.symbol)?;
        let ts = ms_to_ns(m.trade_time);
        let stream = || format!("{}@aggTrade", m.symbol.to_lowercase());
        let event = Event::Trade(Trade {
            price: num(m.price, "p")?,
            qty: num(m.qty, "q")?,
            side: taker_side(m.buyer_is_maker),
            trade_id: Some(m.agg_id),
        });
        check_seq(&mut self.last_agg_id, m.symbol, m.agg_id, m.agg_id, ts, stream, &instrument, out);
        out.push(Normalized { instrument: Some(instrument), ts_exchange: ts, event });
        Ok(())
    }

    fn book_ticker(
        &mut self,
        m: BookTickerMsg,
        ts_recv: Nanos,
        out: &mut Vec<Normalized>,
    ) -> Result<(), NormalizeError> {
        out.push(Normalized {
            instrument: Some(self.symbols.resolve(m.symbol)?),
            ts_exchange: ts_recv,
            event: Event::Quote(Quote {
                bid_price: num(m.bid_price, "b")?,
                bid_qty: num(m.bid_qty, "B")?,
                ask_price: num(m.ask_price, "a")?,
                ask_qty: num(m.ask_qty, "A")?,
                update_id: Some(m.update_id),
            }),
        });
        Ok(())
    }

    fn depth(&mut self, m: DepthUpdateMsg, out: &mut Vec<Normalized>) -> Result<(), NormalizeError> {
        let instrument = self.symbols.resolve(m.symbol)?;
        let ts = ms_to_ns(m.event_time);
        let stream = || format!("{}@depth", m.symbol.to_lowercase());
        let event = Event::BookDelta(BookDelta {
            first_update_id: m.first_update_id,
            last_update_id: m.last_update_id,
            bids: levels(&m.bids, "b")?,
            asks: levels(&m.asks, "a")?,
        });
        check_seq(&mut self.last_depth_id, m.symbol, m.first_update_id, m.last_update_id, ts, stream, &instrument, out);
        out.push(Normalized { instrument: Some(instrument), ts_exchange: ts, event });
        Ok(())
    }

    fn kline(&mut self, m: KlineMsg, out: &mut Vec<Normalized>) -> Result<(), NormalizeError> {
        let k = m.kline;
        let interval_s =
            parse_timeframe(k.interval).map_err(|detail| NormalizeError::Number { field: "k.i", detail })?;
        out.push(Normalized {
            instrument: Some(self.symbols.resolve(m.symbol)?),
            ts_exchange: ms_to_ns(m.event_time),
            event: Event::Candle(Box::new(Candle {
                interval_s,
                open_time: ms_to_ns(k.open_time),
                open: num(k.open, "k.o")?,
                high: num(k.high, "k.h")?,
                low: num(k.low, "k.l")?,
                close: num(k.close, "k.c")?,
                volume: num(k.volume, "k.v")?,
                quote_volume: Some(num(k.quote_volume, "k.q")?),
                trade_count: Some(k.trades),
                closed: k.closed,
            })),
        });
        Ok(())
    }

    fn mini_ticker(&mut self, m: MiniTickerMsg, out: &mut Vec<Normalized>) -> Result<(), NormalizeError> {
        out.push(Normalized {
            instrument: Some(self.symbols.resolve(m.symbol)?),
            ts_exchange: ms_to_ns(m.event_time),
            event: Event::Ticker(Box::new(Ticker {
                last: num(m.close, "c")?,
                volume_24h: num(m.volume, "v")?,
                quote_volume_24h: Some(num(m.quote_volume, "q")?),
                high_24h: Some(num(m.high, "h")?),
                low_24h: Some(num(m.low, "l")?),
                best_bid: None,
                best_ask: None,
            })),
        });
        Ok(())
    }
}

impl Normalizer for BinanceNormalizer {
    fn reset(&mut self) {
        BinanceNormalizer::reset(self);
    }

    fn normalize(
        &mut self,
        frame: &str,
        ts_recv: Nanos,
        out: &mut Vec<Normalized>,
    ) -> Result<FrameKind, NormalizeError> {
        let start = out.len();
        let result = if let Some(stream) = stream_name(frame) {
            // The stream name comes first, so the payload type is known before parsing and
            // the frame is parsed once, envelope and payload together.
            self.dispatch(stream, Payload::Envelope(frame), ts_recv, out).map(|_| FrameKind::Data)
        } else if frame.starts_with("{\"stream\"") {
            let env: Envelope = parse(frame)?;
            self.dispatch(env.stream, Payload::Raw(env.data.get()), ts_recv, out).map(|_| FrameKind::Data)
        } else {
            self.raw(frame, ts_recv, out)
        };
        if result.is_err() {
            out.truncate(start);
        }
        result
    }
}

impl BinanceNormalizer {
    /// Frames from `/ws/<stream>` connections, and control replies, identified by shape.
    fn raw(&mut self, frame: &str, ts_recv: Nanos, out: &mut Vec<Normalized>) -> Result<FrameKind, NormalizeError> {
        let trimmed = frame.trim_start();
        if trimmed.starts_with('[') {
            self.dispatch("!miniTicker@arr", Payload::Raw(frame), ts_recv, out)?;
            return Ok(FrameKind::Data);
        }
        #[derive(serde::Deserialize)]
        struct Peek<'a> {
            e: Option<&'a str>,
            u: Option<u64>,
        }
        let peek: Peek = parse(frame)?;
        let stream = match (peek.e, peek.u) {
            (Some("trade"), _) => "@trade",
            (Some("aggTrade"), _) => "@aggTrade",
            (Some("depthUpdate"), _) => "@depth",
            (Some("kline"), _) => "@kline_", // the interval is read from the payload
            (Some("24hrMiniTicker"), _) => "@miniTicker",
            (Some("serverShutdown"), _) => return Ok(FrameKind::VenueError("server shutdown announced".into())),
            (Some(other), _) => return Err(NormalizeError::Unknown(format!("event type {other}"))),
            (None, Some(_)) => "@bookTicker",
            (None, None) => {
                let control: Control = parse(frame)?;
                return Ok(match (control.error, control.code, control.msg) {
                    (Some(err), _, _) => FrameKind::VenueError(format!("code {}: {}", err.code, err.msg)),
                    (None, Some(code), msg) => {
                        FrameKind::VenueError(format!("code {code}: {}", msg.unwrap_or_default()))
                    }
                    (None, None, _) if control.id.is_some() => FrameKind::Control,
                    _ => return Err(NormalizeError::Unknown(truncate(frame))),
                });
            }
        };
        self.dispatch(stream, Payload::Raw(frame), ts_recv, out)?;
        Ok(FrameKind::Data)
    }
}

/// Where a message's payload is: inside a combined-stream envelope, or the whole frame.
#[derive(Clone, Copy)]
enum Payload<'a> {
    Envelope(&'a str),
    Raw(&'a str),
}

impl<'a> Payload<'a> {
    fn parse<T: serde::Deserialize<'a>>(self) -> Result<T, NormalizeError> {
        #[derive(serde::Deserialize)]
        struct Data<T> {
            data: T,
        }
        match self {
            Payload::Envelope(frame) => parse::<Data<T>>(frame).map(|d| d.data),
            Payload::Raw(text) => parse(text),
        }
    }
}

/// The stream name of a combined-stream frame, when it is the first key and plain ASCII
/// (always so from Binance); otherwise the envelope is parsed generically.
fn stream_name(frame: &str) -> Option<&str> {
    let rest = frame.strip_prefix("{\"stream\":\"")?;
    let name = &rest[..rest.find('"')?];
    (!name.contains('\\')).then_some(name)
}

fn parse<'a, T: serde::Deserialize<'a>>(text: &'a str) -> Result<T, NormalizeError> {
    serde_json::from_str(text).map_err(|e| NormalizeError::Malformed(e.to_string()))
}

pub(super) fn num(text: &str, field: &'static str) -> Result<Decimal, NormalizeError> {
    text.parse().map_err(|e: crate::model::DecimalError| NormalizeError::Number { field, detail: e.to_string() })
}

pub(super) fn levels(raw: &[[&str; 2]], field: &'static str) -> Result<Vec<Level>, NormalizeError> {
    raw.iter().map(|[p, q]| Ok(Level { price: num(p, field)?, qty: num(q, field)? })).collect()
}

/// Binance's `m` is "buyer is maker": then the seller was the taker.
pub(super) fn taker_side(buyer_is_maker: bool) -> Side {
    if buyer_is_maker { Side::Sell } else { Side::Buy }
}

fn truncate(frame: &str) -> String {
    frame.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    fn normalizer() -> BinanceNormalizer {
        let mut map = SymbolMap::default();
        map.insert("BTCUSDT", "BTC", "USDT");
        BinanceNormalizer::new(map)
    }

    fn one(frame: &str) -> Vec<Normalized> {
        let mut out = Vec::new();
        normalizer().normalize(frame, 7, &mut out).unwrap();
        out
    }

    #[test]
    fn real_frames_from_the_hftbacktest_capture() {
        let trade = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}"#;
        let out = one(trade);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].ts_exchange, 1_723_161_255_342_000_000);
        assert_eq!(out[0].instrument.as_ref().unwrap().symbol, "BTC/USDT");
        let Event::Trade(t) = &out[0].event else { panic!("not a trade") };
        assert_eq!(
            (t.price.to_string().as_str(), t.qty.to_string().as_str(), t.side),
            ("61837.63000000", "0.02000000", Side::Sell)
        );

        let quote = r#"{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#;
        let out = one(quote);
        assert_eq!(out[0].ts_exchange, 7, "bookTicker has no time: ts_recv is used");
        assert!(matches!(&out[0].event, Event::Quote(q) if q.update_id == Some(50093239212)));
    }

    #[test]
    fn depth_gap_is_recorded_in_band() {
        let mut n = normalizer();
        let mut out = Vec::new();
        let frame = |u0: u64, u1: u64| {
            format!(
                r#"{{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":{u0},"u":{u1},"b":[["1.0","2.0"]],"a":[]}}}}"#
            )
        };
        n.normalize(&frame(10, 12), 0, &mut out).unwrap();
        n.normalize(&frame(13, 15), 0, &mut out).unwrap();
        n.normalize(&frame(20, 21), 0, &mut out).unwrap();
        let gaps: Vec<_> = out
            .iter()
            .filter_map(|e| match &e.event {
                Event::Status(Status::Gap { expected, got, .. }) => Some((*expected, *got)),
                _ => None,
            })
            .collect();
        assert_eq!(gaps, vec![(16, 20)]);
    }

    #[test]
    fn control_and_errors_table() {
        let cases = [
            (r#"{"result":null,"id":1}"#, Ok(FrameKind::Control)),
            (
                r#"{"code":2,"msg":"Invalid request: invalid stream"}"#,
                Ok(FrameKind::VenueError("code 2: Invalid request: invalid stream".into())),
            ),
            (
                r#"{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":2}"#,
                Ok(FrameKind::VenueError("code 2: Invalid request: invalid stream".into())),
            ),
        ];
        for (frame, expected) in cases {
            let mut out = Vec::new();
            assert_eq!(normalizer().normalize(frame, 0, &mut out), expected, "{frame}");
            assert!(out.is_empty());
        }
        let mut out = Vec::new();
        assert!(normalizer().normalize("{not json", 0, &mut out).is_err());
        let bad_price = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1.2.3","q":"1","T":1,"m":true,"M":true}}"#;
        assert!(matches!(
            normalizer().normalize(bad_price, 0, &mut out),
            Err(NormalizeError::Number { field: "p", .. })
        ));
        assert!(out.is_empty());
    }
}
