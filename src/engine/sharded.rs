//! Per-instrument fan-out: several [`Engine`]s, each owning the instruments `id % shards`,
//! run a chunk of records in parallel on rayon, and their signals are merged back by seq.
//!
//! Detectors keep state per instrument only, so an engine that sees only some instruments
//! emits exactly the signals a single engine would for them. A record belongs to one
//! instrument, hence to one shard, so every signal of a record comes from one engine in that
//! engine's order (detector, then candle); a stable sort of all shards' signals by their
//! record's position in the input (seq order for one recording, the merge order for several)
//! therefore reproduces the single-engine output byte for byte, for any shard or thread count. Records without an instrument (status records) go to shard 0. Strategies trade
//! one account across instruments and are not sharded. Like the engine, this does no IO and
//! reads no clock.

use rayon::prelude::*;

use super::{Detector, Engine, EngineStats, Signal};
use crate::model::{InstrumentId, Record, SymbolTable};

/// Engines over disjoint sets of instruments, fed chunk by chunk.
pub struct Sharded {
    shards: Vec<Engine>,
    /// Per shard, the indexes of the chunk's records it owns; reused between chunks.
    parts: Vec<Vec<u32>>,
    /// Per shard, the signals of the current chunk, each with its record's chunk position.
    outs: Vec<Vec<(u32, Signal)>>,
}

impl Sharded {
    /// `shards` engines, each with its own detectors from `detectors()`.
    pub fn new(symbols: &SymbolTable, shards: usize, detectors: impl Fn() -> Vec<Box<dyn Detector>>) -> Self {
        let shards = shards.max(1);
        Sharded {
            shards: (0..shards).map(|_| Engine::new(symbols.clone(), detectors())).collect(),
            parts: vec![Vec::new(); shards],
            outs: vec![Vec::new(); shards],
        }
    }

    /// Runs `records` (in seq order, at most `u32::MAX`) and appends their signals to `out`,
    /// in the order a single engine would emit them.
    pub fn on_chunk(&mut self, records: &[Record], out: &mut Vec<Signal>) {
        let k = self.shards.len();
        self.parts.iter_mut().for_each(Vec::clear);
        for (i, record) in records.iter().enumerate() {
            let shard = if record.instrument == InstrumentId::NONE { 0 } else { record.instrument.0 as usize % k };
            self.parts[shard].push(i as u32);
        }
        self.shards.par_iter_mut().zip(self.parts.par_iter()).zip(self.outs.par_iter_mut()).for_each(
            |((engine, part), signals)| {
                signals.clear();
                for &i in part {
                    signals.extend(engine.on_record(&records[i as usize]).iter().map(|s| (i, s.clone())));
                }
            },
        );
        let mut merged: Vec<(u32, Signal)> = self.outs.iter_mut().flat_map(std::mem::take).collect();
        // By position in the chunk, which is the merged input order (seq alone is not: merged
        // recordings each count from 0). Stable: one record's signals keep their engine's order.
        merged.sort_by_key(|(i, _)| *i);
        out.extend(merged.into_iter().map(|(_, s)| s));
    }

    /// The engines' counters, summed.
    pub fn stats(&self) -> EngineStats {
        self.shards.iter().map(Engine::stats).fold(EngineStats::default(), |a, b| EngineStats {
            records: a.records + b.records,
            trades: a.trades + b.trades,
            candles_closed: a.candles_closed + b.candles_closed,
            late_trades: a.late_trades + b.late_trades,
            book_updates: a.book_updates + b.book_updates,
            book_invalidations: a.book_invalidations + b.book_invalidations,
        })
    }

    pub fn symbols(&self) -> &SymbolTable {
        self.shards[0].symbols()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::DetectorSpec;

    /// The real sample's records dealt out to five instruments in runs of 100, so each
    /// instrument sees real prices on its own event-time timeline; then each record again
    /// for five more instruments with the same seq, as when two recordings are merged.
    fn multi() -> (SymbolTable, Vec<Record>) {
        let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings/binance-btcusdt-20240808");
        let mut symbols = SymbolTable::new();
        for k in 0..10 {
            let name = format!("C{k}USDT");
            symbols.intern(&crate::model::Instrument::new(
                crate::model::Exchange::Binance,
                &format!("C{k}"),
                "USDT",
                &name,
            ));
        }
        let records = crate::log::read_all(&sample)
            .unwrap()
            .into_iter()
            .flat_map(|r| {
                let id = (r.seq / 100 % 5) as u32;
                [Record { instrument: InstrumentId(id), ..r.clone() }, Record { instrument: InstrumentId(id + 5), ..r }]
            })
            .collect();
        (symbols, records)
    }

    #[test]
    fn any_shard_count_gives_the_single_engine_output() {
        let (symbols, records) = multi();
        assert_eq!(symbols.len(), 10);
        let specs: Vec<DetectorSpec> = [
            "waves:amplitude=0.02,timeframe=5s",
            "volume:timeframe=5s,ma=10,k=2",
            "volatility:timeframe=5s,short=5,long=20",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let build = || specs.iter().map(DetectorSpec::build).collect::<Vec<_>>();
        let mut single = Engine::new(symbols.clone(), build());
        let expected: Vec<Signal> = records.iter().flat_map(|r| single.on_record(r).to_vec()).collect();
        assert!(expected.len() > 50, "the detectors fire ({})", expected.len());
        for (shards, chunk) in [(1, 1000), (2, 7), (3, 4096), (8, 1), (64, 100_000)] {
            let mut sharded = Sharded::new(&symbols, shards, build);
            let mut got = Vec::new();
            for part in records.chunks(chunk) {
                sharded.on_chunk(part, &mut got);
            }
            assert!(got == expected, "{shards} shards, chunks of {chunk}");
            assert_eq!(sharded.stats(), single.stats(), "{shards} shards");
        }
    }
}
