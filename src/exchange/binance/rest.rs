//! Binance REST v3 bodies: depth snapshots and exchangeInfo symbol metadata.

use std::collections::HashMap;

use super::normalize::levels;
use super::wire::{DepthSnapshotBody, ExchangeInfoBody};
use crate::exchange::{NormalizeError, Normalized};
use crate::model::{BookSnapshot, Event, Exchange, Instrument, Nanos};

/// Binance symbol → canonical instrument, from exchangeInfo.
#[derive(Debug, Clone, Default)]
pub struct SymbolMap {
    map: HashMap<String, Instrument>,
}

/// Quote assets tried, longest first, when a symbol is missing from exchangeInfo.
const FALLBACK_QUOTES: &[&str] =
    &["FDUSD", "USDT", "USDC", "TUSD", "BUSD", "USDP", "DAI", "EUR", "TRY", "BRL", "JPY", "GBP", "BTC", "ETH", "BNB"];

impl SymbolMap {
    pub fn insert(&mut self, venue_symbol: &str, base: &str, quote: &str) {
        self.map.insert(venue_symbol.to_uppercase(), Instrument::new(Exchange::Binance, base, quote, venue_symbol));
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The instrument for a Binance symbol. Symbols missing from exchangeInfo are split on
    /// a known quote asset, which is right for every current spot quote but is a guess.
    ///
    /// # Errors
    /// When the symbol is unknown and ends in no known quote asset.
    pub fn resolve(&self, venue_symbol: &str) -> Result<Instrument, NormalizeError> {
        if let Some(instrument) = self.map.get(venue_symbol) {
            return Ok(instrument.clone());
        }
        let upper = venue_symbol.to_uppercase();
        if let Some(instrument) = self.map.get(&upper) {
            return Ok(instrument.clone());
        }
        FALLBACK_QUOTES
            .iter()
            .find(|q| upper.len() > q.len() && upper.ends_with(*q))
            .map(|q| Instrument::new(Exchange::Binance, &upper[..upper.len() - q.len()], q, &upper))
            .ok_or_else(|| NormalizeError::Symbol(venue_symbol.to_string()))
    }

    /// The trading symbols, sorted.
    pub fn trading_symbols(&self) -> Vec<&Instrument> {
        let mut all: Vec<_> = self.map.values().collect();
        all.sort();
        all
    }
}

/// Parses a `GET /api/v3/exchangeInfo` body into a symbol map (every status included).
///
/// # Errors
/// When the body is not an exchangeInfo response.
pub fn parse_exchange_info(body: &str) -> Result<SymbolMap, NormalizeError> {
    let info: ExchangeInfoBody = serde_json::from_str(body).map_err(|e| NormalizeError::Malformed(e.to_string()))?;
    let mut map = SymbolMap::default();
    for s in info.symbols {
        let _ = s.status;
        map.insert(&s.symbol, &s.base_asset, &s.quote_asset);
    }
    Ok(map)
}

/// Parses a `GET /api/v3/exchangeInfo` body into symbol infos, sorted by venue symbol.
///
/// # Errors
/// When the body is not an exchangeInfo response.
pub fn parse_symbol_infos(body: &str) -> Result<Vec<crate::exchange::SymbolInfo>, NormalizeError> {
    let info: ExchangeInfoBody = serde_json::from_str(body).map_err(|e| NormalizeError::Malformed(e.to_string()))?;
    let mut out: Vec<_> = info
        .symbols
        .into_iter()
        .map(|s| crate::exchange::SymbolInfo {
            instrument: Instrument::new(Exchange::Binance, &s.base_asset, &s.quote_asset, &s.symbol),
            tradable: s.status == "TRADING",
            status: s.status,
            price_precision: s.quote_asset_precision,
            qty_precision: s.base_asset_precision,
        })
        .collect();
    out.sort_by(|a, b| a.instrument.venue_symbol.cmp(&b.instrument.venue_symbol));
    Ok(out)
}

/// Parses a `GET /api/v3/depth` body for `instrument`, received at `ts_recv`.
///
/// # Errors
/// When the body is not a depth snapshot or a level does not parse.
pub fn parse_depth_snapshot(body: &str, instrument: &Instrument, ts_recv: Nanos) -> Result<Normalized, NormalizeError> {
    let snap: DepthSnapshotBody = serde_json::from_str(body).map_err(|e| NormalizeError::Malformed(e.to_string()))?;
    Ok(Normalized {
        instrument: Some(instrument.clone()),
        ts_exchange: ts_recv,
        event: Event::BookSnapshot(BookSnapshot {
            last_update_id: Some(snap.last_update_id),
            bids: levels(&snap.bids, "bids")?,
            asks: levels(&snap.asks, "asks")?,
        }),
    })
}
