//! A recording played end to end several times as one continuous session, for long
//! benchmark inputs built from real data.
//!
//! The first round is the recording as it is. Each later round shifts times by the
//! recording's span and, per instrument, book update ids and trade ids by their spans, and
//! opens with each instrument's first book snapshot (moved there, at the round's first
//! time), as a capture that resyncs its books once per round would. The snapshot matters:
//! prices do not carry on from one round's end to the next round's start, so without it the
//! next round's first diffs cross the book. Repeating the records unshifted instead makes
//! time and ids jump back at every round, which sends the engine down its resync path for
//! the rest of each round and measures that instead. Pure data: no IO, no clock.

use std::collections::{BTreeMap, BTreeSet};

use super::{Event, InstrumentId, Record};

/// How far one round moves each record.
#[derive(Debug, Clone, Default)]
pub struct Looper {
    span_ns: u64,
    /// Positions of each instrument's first book snapshot, in order.
    snapshots: Vec<usize>,
    /// Per instrument: (update-id span, trade-id span).
    ids: BTreeMap<InstrumentId, (u64, u64)>,
}

/// Smallest and largest of a run of values.
#[derive(Clone, Copy)]
struct Range(u64, u64);

impl Range {
    fn widen(slot: &mut Option<Range>, lo: u64, hi: u64) {
        let r = slot.get_or_insert(Range(lo, hi));
        r.0 = r.0.min(lo);
        r.1 = r.1.max(hi);
    }

    fn span(slot: Option<Range>) -> u64 {
        slot.map_or(0, |r| r.1 - r.0 + 1)
    }
}

impl Looper {
    /// Measures the spans of `records`, one round.
    pub fn new(records: &[Record]) -> Looper {
        let mut ranges: BTreeMap<InstrumentId, [Option<Range>; 2]> = BTreeMap::new();
        let mut snapshotted = BTreeSet::new();
        let mut snapshots = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let [updates, trades] = ranges.entry(r.instrument).or_default();
            match &r.event {
                Event::BookDelta(d) => Range::widen(updates, d.first_update_id, d.last_update_id),
                Event::BookSnapshot(s) => {
                    s.last_update_id.into_iter().for_each(|id| Range::widen(updates, id, id));
                    if snapshotted.insert(r.instrument) {
                        snapshots.push(i);
                    }
                }
                Event::Quote(q) => q.update_id.into_iter().for_each(|id| Range::widen(updates, id, id)),
                Event::Trade(t) => t.trade_id.into_iter().for_each(|id| Range::widen(trades, id, id)),
                _ => {}
            }
        }
        let first = records.iter().map(|r| r.ts_recv.min(r.ts_exchange)).min().unwrap_or(0);
        let last = records.iter().map(|r| r.ts_recv.max(r.ts_exchange)).max().unwrap_or(0);
        Looper {
            span_ns: last - first + 1,
            snapshots,
            ids: ranges.into_iter().map(|(id, [u, t])| (id, (Range::span(u), Range::span(t)))).collect(),
        }
    }

    /// `record` as it appears in round `round` (0 is the original); its seq is left alone.
    pub fn shift(&self, record: &mut Record, round: u64) {
        record.ts_recv += round * self.span_ns;
        record.ts_exchange += round * self.span_ns;
        let (updates, trades) = self.ids.get(&record.instrument).map_or((0, 0), |&(u, t)| (u * round, t * round));
        match &mut record.event {
            Event::BookDelta(d) => {
                d.first_update_id += updates;
                d.last_update_id += updates;
            }
            Event::BookSnapshot(s) => s.last_update_id = s.last_update_id.map(|id| id + updates),
            Event::Quote(q) => q.update_id = q.update_id.map(|id| id + updates),
            Event::Trade(t) => t.trade_id = t.trade_id.map(|id| id + trades),
            _ => {}
        }
    }

    /// One round's records in order, before shifting.
    fn round<'a>(&'a self, records: &'a [Record], round: u64) -> impl Iterator<Item = Record> + 'a {
        let moved = if round == 0 { &[][..] } else { &self.snapshots[..] };
        let opening = records.first().map_or((0, 0), |r| (r.ts_exchange, r.ts_recv));
        let front =
            moved.iter().map(move |&i| Record { ts_exchange: opening.0, ts_recv: opening.1, ..records[i].clone() });
        let rest = records.iter().enumerate().filter(move |(i, _)| !moved.contains(i)).map(|(_, r)| r.clone());
        front.chain(rest)
    }

    /// `records` (the recording `new` measured) looped `rounds` times, with seqs from 0.
    pub fn looped<'a>(&'a self, records: &'a [Record], rounds: u64) -> impl Iterator<Item = Record> + 'a {
        (0..rounds)
            .flat_map(move |round| {
                self.round(records, round).map(move |mut r| {
                    self.shift(&mut r, round);
                    r
                })
            })
            .enumerate()
            .map(|(seq, r)| Record { seq: seq as u64, ..r })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::OrderBook;
    use crate::log::read_all;

    /// Looping the real sample keeps its book in sync across every round boundary: each
    /// round's diffs apply (none is a gap or crossing), as they do in one round.
    #[test]
    fn the_looped_sample_keeps_its_book_and_ids_continuous() {
        let sample = read_all(std::path::Path::new("recordings/binance-btcusdt-20240808")).unwrap();
        let looper = Looper::new(&sample);
        let mut book = OrderBook::default();
        let (mut invalidated, mut applied, mut last_trade, mut last_ts) = (0, 0, 0, 0);
        for (i, r) in looper.looped(&sample, 3).enumerate() {
            assert_eq!(r.seq, i as u64);
            let result = match &r.event {
                Event::BookDelta(d) => book.apply_delta(d),
                Event::BookSnapshot(s) => book.apply_snapshot(s),
                Event::Trade(t) => {
                    let id = t.trade_id.unwrap();
                    assert!(id > last_trade, "trade ids increase across rounds");
                    last_trade = id;
                    continue;
                }
                _ => continue,
            };
            if matches!(result, crate::engine::Applied::Invalidated(_)) {
                invalidated += 1;
            }
            if result == crate::engine::Applied::Updated {
                applied += 1;
            }
            assert!(r.ts_recv + looper.span_ns > last_ts, "time does not jump back a round");
            last_ts = r.ts_recv;
        }
        let book_records = |part: &[Record]| {
            part.iter().filter(|r| matches!(r.event, Event::BookDelta(_) | Event::BookSnapshot(_))).count()
        };
        assert_eq!(invalidated, 0);
        // Later rounds apply what the first does: the diffs before the snapshot now come after
        // it; those it covers are stale, as they were when buffered, and the one that
        // straddles it applies, counted on its own rather than as part of the snapshot.
        let mut alone = OrderBook::default();
        let first_round = sample
            .iter()
            .filter(|r| match &r.event {
                Event::BookDelta(d) => alone.apply_delta(d) == crate::engine::Applied::Updated,
                Event::BookSnapshot(s) => alone.apply_snapshot(s) == crate::engine::Applied::Updated,
                _ => false,
            })
            .count();
        assert!(first_round > book_records(&sample) - 10);
        assert_eq!(applied, 3 * first_round + 2);
    }
}
