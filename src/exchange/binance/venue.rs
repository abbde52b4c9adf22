//! Binance as a capture target: endpoints, stream names, sharding and REST paths.
//!
//! Subscriptions go in the combined-stream URL (`/stream?streams=a/b`), so no control
//! messages count against the 5 messages/s limit; each connection carries at most
//! `STREAMS_PER_CONNECTION` streams (the venue allows 1024; ccxt uses 200, and very long
//! URLs have been seen to fail).

use super::rest::{SymbolMap, parse_depth_snapshot, parse_symbol_infos};
use super::{BinanceNormalizer, TS_NOTES};
use crate::exchange::{
    ConnectionPlan, Endpoints, NormalizeError, Normalized, Normalizer, StreamKind, SymbolInfo, Venue,
};
use crate::model::time::format_timeframe;
use crate::model::{Exchange, Instrument, Nanos};

pub const STREAMS_PER_CONNECTION: usize = 200;

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
}
