//! What a recording already holds, read back for resume; and the symbol selection.
//!
//! Owns the resume scan: per stream (instrument × kind) the newest candle open time or trade
//! (time, id) and the newest gap per stream name. Must not write: it only uses [`Reader`].

use std::collections::HashMap;
use std::path::Path;

use super::{BackfillError, source};
use crate::exchange::{HistoryKind, SymbolInfo};
use crate::log::{LogError, Reader};
use crate::model::{Event, Exchange, Instrument, Nanos, Status};

/// What the recording holds for one stream.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Held {
    pub count: u64,
    /// Klines: the newest open time; trades: the newest trade time (ns).
    pub last_time: Option<Nanos>,
    pub last_id: Option<u64>,
    pub last_ts: Nanos,
}

pub(super) type HeldMap = HashMap<(Instrument, HistoryKind), Held>;

/// What the recording at `dir` holds per stream, and the newest gap per stream name; empty
/// when there is no recording yet.
pub(super) fn read_back(dir: &Path, exchange: Exchange) -> Result<(HeldMap, HashMap<String, u64>), BackfillError> {
    let reader = match Reader::open(dir) {
        Ok(reader) => reader,
        Err(LogError::NotARecording { .. }) => return Ok(Default::default()),
        Err(e) => return Err(e.into()),
    };
    let expected = source(exchange);
    if reader.meta().source != expected {
        return Err(BackfillError::Foreign {
            path: dir.display().to_string(),
            found: reader.meta().source.clone(),
            exchange,
        });
    }
    let (mut held, mut gaps) = (HeldMap::new(), HashMap::new());
    for record in reader.records_from(0) {
        let record = record?;
        let Some(instrument) = reader.symbols().get(record.instrument) else { continue };
        let (kind, time, id) = match &record.event {
            Event::Candle(c) => (HistoryKind::Klines(c.interval_s), c.open_time, None),
            Event::Trade(t) => (HistoryKind::Trades, record.ts_exchange, t.trade_id),
            Event::Status(Status::Gap { stream, got, .. }) => {
                let newest = gaps.entry(stream.clone()).or_insert(*got);
                *newest = (*newest).max(*got);
                continue;
            }
            _ => continue,
        };
        let entry = held.entry((instrument.clone(), kind)).or_insert_with(Held::default);
        entry.count += 1;
        entry.last_ts = entry.last_ts.max(record.ts_exchange);
        if entry.last_time.is_none_or(|t| (time, id) >= (t, entry.last_id)) {
            (entry.last_time, entry.last_id) = (Some(time), id);
        }
    }
    Ok((held, gaps))
}

/// The requested symbols, matched by venue or canonical name (never by splitting strings).
pub(super) fn select(
    exchange: Exchange,
    wanted: &[String],
    symbols: &[SymbolInfo],
) -> Result<Vec<Instrument>, BackfillError> {
    let mut chosen: Vec<Instrument> = Vec::new();
    for want in wanted {
        let upper = want.to_uppercase();
        let found = symbols
            .iter()
            .find(|s| s.instrument.venue_symbol.to_uppercase() == upper || s.instrument.symbol == upper)
            .ok_or_else(|| BackfillError::UnknownSymbol { exchange, symbol: want.clone() })?;
        if !chosen.contains(&found.instrument) {
            chosen.push(found.instrument.clone());
        }
    }
    Ok(chosen)
}
