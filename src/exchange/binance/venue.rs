//! Binance as a capture target: endpoints, stream names, sharding and REST paths.
//!
//! Subscriptions go in the combined-stream URL (`/stream?streams=a/b`), so no control
//! messages count against the 5 messages/s limit; each connection carries at most
//! `STREAMS_PER_CONNECTION` streams (the venue allows 1024; ccxt uses 200, and very long
//! URLs have been seen to fail).

use super::rest::{SymbolMap, parse_agg_trades, parse_depth_snapshot, parse_klines, parse_symbol_infos};
use super::{BinanceNormalizer, TS_NOTES};
use crate::exchange::{
    ConnectionPlan, Endpoints, HistoryCursor, HistoryKind, HistoryRequest, HistoryRow, NormalizeError, Normalized,
    Normalizer, RestBudget, StreamKind, SymbolInfo, Venue,
};
use crate::model::time::format_timeframe;
use crate::model::{Exchange, Instrument, Nanos};

pub const STREAMS_PER_CONNECTION: usize = 200;

/// Rows per REST history page: the documented maximum of `/api/v3/klines` and `/api/v3/aggTrades`.
const HISTORY_LIMIT: u32 = 1000;

/// Where backfilled rows come from, for the recording meta.
const HISTORY_NOTES: &[(&str, &str)] = &[
    (
        "binance.backfill.klines",
        "GET /api/v3/klines (weight 2, 1000 rows a page, paged by startTime); REST has no closed flag, so a row \
         whose bucket has not ended is never recorded",
    ),
    (
        "binance.backfill.trades",
        "GET /api/v3/aggTrades (weight 4, 1000 rows a page, paged by fromId); trade_id is the aggregate id a, \
         ts_exchange the trade time T",
    ),
];

pub struct BinanceVenue;

impl Venue for BinanceVenue {
    fn check_streams(&self, streams: &[StreamKind]) -> Result<(), String> {
        const OFFERED: [u32; 13] = [1, 60, 180, 300, 900, 1800, 3600, 7200, 14_400, 21_600, 28_800, 43_200, 86_400];
        for kind in streams {
            if let StreamKind::Kline(s) = kind
                && !OFFERED.contains(s)
                && *s != 259_200
                && *s != 604_800
            {
                return Err(format!("binance has no {} klines", crate::model::time::format_timeframe(*s)));
            }
        }
        Ok(())
    }

    fn exchange(&self) -> Exchange {
        Exchange::Binance
    }

    fn default_endpoints(&self) -> Endpoints {
        Endpoints { ws: "wss://stream.binance.com:9443".into(), rest: "https://api.binance.com".into() }
    }

    fn symbols_path(&self) -> String {
        "/api/v3/exchangeInfo".into()
    }

    fn parse_symbols(&self, body: &str) -> Result<Vec<SymbolInfo>, NormalizeError> {
        parse_symbol_infos(body)
    }

    fn plan(&self, endpoints: &Endpoints, instruments: &[Instrument], streams: &[StreamKind]) -> Vec<ConnectionPlan> {
        let mut names: Vec<(String, Option<&Instrument>)> = Vec::new();
        for instrument in instruments {
            let sym = instrument.venue_symbol.to_lowercase();
            for kind in streams {
                let name = match kind {
                    StreamKind::Trade => format!("{sym}@trade"),
                    StreamKind::Quote => format!("{sym}@bookTicker"),
                    StreamKind::Depth => format!("{sym}@depth@100ms"),
                    StreamKind::Kline(s) => format!("{sym}@kline_{}", format_timeframe(*s)),
                    StreamKind::Ticker => continue,
                };
                names.push((name, (*kind == StreamKind::Depth).then_some(instrument)));
            }
        }
        if streams.contains(&StreamKind::Ticker) {
            names.push(("!miniTicker@arr".into(), None));
        }
        names
            .chunks(STREAMS_PER_CONNECTION)
            .map(|chunk| {
                let streams: Vec<String> = chunk.iter().map(|(n, _)| n.clone()).collect();
                ConnectionPlan {
                    url: format!("{}/stream?streams={}", endpoints.ws.trim_end_matches('/'), streams.join("/")),
                    subscribe: Vec::new(),
                    depth: chunk.iter().filter_map(|(_, i)| i.cloned()).collect(),
                    streams,
                }
            })
            .collect()
    }

    fn normalizer(&self, symbols: &[SymbolInfo]) -> Box<dyn Normalizer> {
        let mut map = SymbolMap::default();
        for s in symbols {
            let (base, quote) = s.instrument.symbol.split_once('/').unwrap_or((&s.instrument.symbol, ""));
            map.insert(&s.instrument.venue_symbol, base, quote);
        }
        Box::new(BinanceNormalizer::new(map))
    }

    fn snapshot_path(&self, instrument: &Instrument) -> String {
        format!("/api/v3/depth?symbol={}&limit=1000", instrument.venue_symbol)
    }

    fn parse_snapshot(
        &self,
        body: &str,
        instrument: &Instrument,
        ts_recv: Nanos,
    ) -> Result<Normalized, NormalizeError> {
        parse_depth_snapshot(body, instrument, ts_recv)
    }

    fn ts_notes(&self) -> &'static [(&'static str, &'static str)] {
        TS_NOTES
    }

    /// Klines by `startTime`/`endTime` (both inclusive, on open times); aggregate trades by
    /// `fromId` after the last one held, else by `startTime`/`endTime` (the old one-hour cap
    /// on that window is gone). Either way, an empty page means nothing is left before `end_ms`.
    fn history_request(
        &self,
        instrument: &Instrument,
        kind: HistoryKind,
        cursor: &HistoryCursor,
    ) -> Result<HistoryRequest, String> {
        let symbol = &instrument.venue_symbol;
        let (from, last) = (cursor.from_ms, cursor.end_ms.saturating_sub(1));
        let (path, weight) = match kind {
            HistoryKind::Klines(s) => {
                self.check_streams(&[StreamKind::Kline(s)])?;
                let interval = format_timeframe(s);
                let path = format!(
                    "/api/v3/klines?symbol={symbol}&interval={interval}&startTime={from}&endTime={last}&limit={HISTORY_LIMIT}"
                );
                (path, 2)
            }
            HistoryKind::Trades => match cursor.after_id {
                Some(id) => (format!("/api/v3/aggTrades?symbol={symbol}&fromId={}&limit={HISTORY_LIMIT}", id + 1), 4),
                None => (
                    format!("/api/v3/aggTrades?symbol={symbol}&startTime={from}&endTime={last}&limit={HISTORY_LIMIT}"),
                    4,
                ),
            },
        };
        Ok(HistoryRequest { path, weight, window_end_ms: cursor.end_ms })
    }

    fn parse_history(&self, body: &str, kind: HistoryKind) -> Result<Vec<HistoryRow>, NormalizeError> {
        match kind {
            HistoryKind::Klines(s) => parse_klines(body, s),
            HistoryKind::Trades => parse_agg_trades(body),
        }
    }

    /// `REQUEST_WEIGHT` 6000 a minute per IP, reported in `X-MBX-USED-WEIGHT-1M` on every response;
    /// exchangeInfo weighs 20.
    fn rest_budget(&self) -> RestBudget {
        RestBudget {
            limit: 6000,
            window: std::time::Duration::from_secs(60),
            symbols_weight: 20,
            used_header: Some("x-mbx-used-weight-1m"),
            ..RestBudget::default()
        }
    }

    fn history_trade_ids_consecutive(&self) -> bool {
        true
    }

    fn history_notes(&self) -> &'static [(&'static str, &'static str)] {
        HISTORY_NOTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_puts_streams_in_the_url_and_shards() {
        let endpoints = Endpoints { ws: "ws://127.0.0.1:9".into(), rest: String::new() };
        let btc = Instrument::new(Exchange::Binance, "BTC", "USDT", "BTCUSDT");
        let plans = BinanceVenue.plan(
            &endpoints,
            std::slice::from_ref(&btc),
            &[StreamKind::Trade, StreamKind::Depth, StreamKind::Kline(60)],
        );
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].url, "ws://127.0.0.1:9/stream?streams=btcusdt@trade/btcusdt@depth@100ms/btcusdt@kline_1m");
        assert_eq!(plans[0].depth, vec![btc]);
        let many: Vec<Instrument> = (0..150)
            .map(|i| Instrument::new(Exchange::Binance, &format!("C{i}"), "USDT", &format!("C{i}USDT")))
            .collect();
        let plans = BinanceVenue.plan(&endpoints, &many, &[StreamKind::Trade, StreamKind::Quote, StreamKind::Ticker]);
        assert_eq!(plans.iter().map(|p| p.streams.len()).collect::<Vec<_>>(), vec![200, 101]);
    }

    #[test]
    fn history_requests() {
        let ada = Instrument::new(Exchange::Binance, "ADA", "BTC", "ADABTC");
        let cursor = HistoryCursor { from_ms: 1_637_971_200_000, after_id: None, end_ms: 1_638_144_000_000 };
        let klines = BinanceVenue.history_request(&ada, HistoryKind::Klines(60), &cursor).unwrap();
        assert_eq!(
            klines,
            HistoryRequest {
                path:
                    "/api/v3/klines?symbol=ADABTC&interval=1m&startTime=1637971200000&endTime=1638143999999&limit=1000"
                        .into(),
                weight: 2,
                window_end_ms: 1_638_144_000_000,
            }
        );
        let trades = BinanceVenue.history_request(&ada, HistoryKind::Trades, &cursor).unwrap();
        assert_eq!(
            trades.path,
            "/api/v3/aggTrades?symbol=ADABTC&startTime=1637971200000&endTime=1638143999999&limit=1000"
        );
        let after = HistoryCursor { after_id: Some(41), ..cursor };
        let trades = BinanceVenue.history_request(&ada, HistoryKind::Trades, &after).unwrap();
        assert_eq!((trades.path.as_str(), trades.weight), ("/api/v3/aggTrades?symbol=ADABTC&fromId=42&limit=1000", 4));
        let err = BinanceVenue.history_request(&ada, HistoryKind::Klines(120), &cursor).unwrap_err();
        assert_eq!(err, "binance has no 2m klines");
    }
}
