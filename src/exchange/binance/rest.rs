//! Binance REST v3 bodies: depth snapshots, exchangeInfo symbol metadata, and the kline and
//! aggregate-trade pages that backfill reads.

use std::collections::HashMap;

use serde_json::value::RawValue;

use super::normalize::{levels, num, taker_side};
use super::wire::{AggTradeRow, DepthSnapshotBody, ExchangeInfoBody, KlineRow, RestError};
use crate::exchange::{HistoryRow, NormalizeError, Normalized, ms_to_ns};
use crate::model::{BookSnapshot, Candle, Decimal, Event, Exchange, Instrument, Nanos, Trade};

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

/// Parses a `GET /api/v3/klines` body of `interval_s` klines. REST has no closed flag, so every
/// candle says `closed`; the caller must drop the last one while its bucket is still open.
///
/// # Errors
/// When the body is not a kline array (a Binance error body is named) or a field does not parse.
pub fn parse_klines(body: &str, interval_s: u32) -> Result<Vec<HistoryRow>, NormalizeError> {
    let rows: Vec<KlineRow> = parse_page(body)?;
    rows.iter()
        .map(|row| {
            if row.len() < 9 {
                return Err(NormalizeError::Malformed(format!("kline row has {} fields, expected 12", row.len())));
            }
            Ok(HistoryRow::Candle(Candle {
                interval_s,
                open_time: ms_to_ns(int(row[0], "openTime")?),
                open: dec(row[1], "open")?,
                high: dec(row[2], "high")?,
                low: dec(row[3], "low")?,
                close: dec(row[4], "close")?,
                volume: dec(row[5], "volume")?,
                quote_volume: Some(dec(row[7], "quoteVolume")?),
                trade_count: Some(int(row[8], "trades")?),
                closed: true,
            }))
        })
        .collect()
}

/// Parses a `GET /api/v3/aggTrades` body; `trade_id` is the aggregate trade id `a`.
///
/// # Errors
/// When the body is not an aggTrades array (a Binance error body is named) or a number does not parse.
pub fn parse_agg_trades(body: &str) -> Result<Vec<HistoryRow>, NormalizeError> {
    let rows: Vec<AggTradeRow> = parse_page(body)?;
    rows.into_iter()
        .map(|row| {
            Ok(HistoryRow::Trade {
                ts_exchange: ms_to_ns(row.trade_time),
                trade: Trade {
                    price: num(row.price, "p")?,
                    qty: num(row.qty, "q")?,
                    side: taker_side(row.buyer_is_maker),
                    trade_id: Some(row.agg_id),
                },
            })
        })
        .collect()
}

/// A page body, or the venue's `{"code":..,"msg":..}` error named instead of a serde complaint.
fn parse_page<'a, T: serde::Deserialize<'a>>(body: &'a str) -> Result<T, NormalizeError> {
    serde_json::from_str(body).map_err(|e| match serde_json::from_str::<RestError>(body) {
        Ok(err) => NormalizeError::Malformed(format!("binance error {}: {}", err.code, err.msg)),
        Err(_) => NormalizeError::Malformed(e.to_string()),
    })
}

fn dec(token: &RawValue, field: &'static str) -> Result<Decimal, NormalizeError> {
    Decimal::parse_json_token(token.get()).map_err(|e| NormalizeError::Number { field, detail: e.to_string() })
}

fn int(token: &RawValue, field: &'static str) -> Result<u64, NormalizeError> {
    token.get().parse().map_err(|e: std::num::ParseIntError| NormalizeError::Number { field, detail: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real 12-column rows (data.binance.vision layout), as `/api/v3/klines` sends them:
    /// times and trade counts as integers, decimals as strings.
    const ADABTC: &str =
        include_str!("../../../tests/fixtures/historical/binance_spot/klines_1m/ADABTC-1m-2021-11-27.csv");

    fn as_json(csv: &str) -> String {
        let rows: Vec<String> = csv
            .lines()
            .map(|line| {
                let cells: Vec<String> = line
                    .split(',')
                    .enumerate()
                    .map(|(i, c)| if matches!(i, 0 | 6 | 8) { c.to_string() } else { format!("\"{c}\"") })
                    .collect();
                format!("[{}]", cells.join(","))
            })
            .collect();
        format!("[{}]", rows.join(","))
    }

    #[test]
    fn real_kline_rows() {
        let rows = parse_klines(&as_json(ADABTC), 60).unwrap();
        assert_eq!(rows.len(), 10);
        let HistoryRow::Candle(first) = &rows[0] else { panic!("not a candle") };
        assert_eq!(first.open_time, 1_637_971_200_000_000_000);
        let text = |d: &Decimal| d.to_string();
        assert_eq!(
            [text(&first.open), text(&first.high), text(&first.low), text(&first.close), text(&first.volume)],
            ["0.00002853", "0.00002854", "0.00002851", "0.00002854", "36304.20000000"]
        );
        assert_eq!(
            (first.quote_volume.map(|q| q.to_string()), first.trade_count),
            (Some("1.03547608".into()), Some(79))
        );
        assert!(rows.iter().all(|r| matches!(r, HistoryRow::Candle(c) if c.interval_s == 60 && c.closed)));
    }

    #[test]
    fn agg_trade_rows_and_errors() {
        // The documented row.
        let body = r#"[{"a":26129,"p":"0.01633102","q":"4.70443515","f":27781,"l":27781,"T":1498793709153,"m":true,"M":true}]"#;
        let rows = parse_agg_trades(body).unwrap();
        let HistoryRow::Trade { ts_exchange, trade } = &rows[0] else { panic!("not a trade") };
        assert_eq!(*ts_exchange, 1_498_793_709_153_000_000);
        assert_eq!(
            (trade.price.to_string(), trade.side, trade.trade_id),
            ("0.01633102".into(), crate::model::Side::Sell, Some(26129))
        );
        let error = r#"{"code":-1121,"msg":"Invalid symbol."}"#;
        assert_eq!(
            parse_klines(error, 60),
            Err(NormalizeError::Malformed("binance error -1121: Invalid symbol.".into()))
        );
        assert_eq!(
            parse_agg_trades(error),
            Err(NormalizeError::Malformed("binance error -1121: Invalid symbol.".into()))
        );
        assert!(matches!(parse_klines(r#"[[1,"1"]]"#, 60), Err(NormalizeError::Malformed(_))));
        assert!(matches!(
            parse_klines(r#"[[1,"x","1","1","1","1",2,"1",3]]"#, 60),
            Err(NormalizeError::Number { field: "open", .. })
        ));
    }
}
