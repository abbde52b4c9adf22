//! Replay: stream one or more recordings into the engine, in a deterministic order, at a
//! chosen speed.
//!
//! Several recordings merge by (ts_recv, recording index, seq); their symbol tables merge
//! into one, in recording order, so instrument ids are deterministic. Pacing only sleeps
//! between records and never changes what the engine sees. This module owns the wall
//! clock for pacing; the engine never sees it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::log::{LogError, Reader, RecordIter};
use crate::model::{InstrumentId, Nanos, Record, SymbolTable};

/// How fast to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// As fast as possible.
    Max,
    /// Recorded inter-arrival times divided by this factor.
    Factor(f64),
}

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "max" {
            return Ok(Speed::Max);
        }
        match s.trim_end_matches('x').parse::<f64>() {
            Ok(f) if f > 0.0 && f.is_finite() => Ok(Speed::Factor(f)),
            _ => Err(format!("invalid speed {s:?} (expected a positive number such as 1 or 10, or max)")),
        }
    }
}

/// Which records to replay.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Inclusive lower bound on ts_recv.
    pub from: Option<Nanos>,
    /// Inclusive upper bound on ts_recv.
    pub to: Option<Nanos>,
    /// Canonical (BTC/USDT) or venue (BTCUSDT) symbols, case-insensitive; empty = all.
    pub symbols: Vec<String>,
}

/// The merged, filtered record stream of several recordings.
pub struct Merged {
    symbols: SymbolTable,
    remap: Vec<Vec<InstrumentId>>,
    keep: Vec<bool>,
    iters: Vec<RecordIter>,
    heap: BinaryHeap<Reverse<(Nanos, usize, u64)>>,
    heads: Vec<Option<Record>>,
    filter: Filter,
    /// One recording needs no merge: `next_ref` lends its records from the decoded block
    /// in place (`block[pos..]`), so no record is moved on the way to the engine.
    block: Vec<Record>,
    pos: usize,
    /// The filter's `to` was passed: the single input is done.
    ended: bool,
    /// The record `next_ref` lends when several recordings merge.
    held: Option<Record>,
    /// First and last ts_recv over all recordings, for progress.
    pub span: Option<(Nanos, Nanos)>,
    error: Option<LogError>,
}

impl Merged {
    /// Opens every recording and prepares the merge.
    ///
    /// # Errors
    /// When a recording cannot be opened or read.
    pub fn open(paths: &[PathBuf], filter: Filter) -> Result<Merged, (PathBuf, LogError)> {
        let mut symbols = SymbolTable::new();
        let mut remap = Vec::new();
        let mut iters = Vec::new();
        let mut span: Option<(Nanos, Nanos)> = None;
        for path in paths {
            let reader = Reader::open(path).map_err(|e| (path.clone(), e))?;
            remap.push(reader.symbols().iter().map(|(_, inst)| symbols.intern(inst).0).collect::<Vec<_>>());
            if let Some((first, last)) = reader.ts_recv_span().map_err(|e| (path.clone(), e))? {
                span = Some(span.map_or((first, last), |(a, b)| (a.min(first), b.max(last))));
            }
            iters.push(reader.records_from(0));
        }
        let wanted: Vec<String> = filter.symbols.iter().map(|s| s.to_uppercase()).collect();
        let keep = symbols
            .iter()
            .map(|(_, inst)| {
                wanted.is_empty() || wanted.contains(&inst.symbol) || wanted.contains(&inst.venue_symbol.to_uppercase())
            })
            .collect();
        let mut merged = Merged {
            symbols,
            remap,
            keep,
            heads: (0..iters.len()).map(|_| None).collect(),
            iters,
            heap: BinaryHeap::new(),
            filter,
            block: Vec::new(),
            pos: 0,
            ended: false,
            held: None,
            span,
            error: None,
        };
        if merged.iters.len() > 1 {
            for i in 0..merged.iters.len() {
                merged.advance(i);
            }
        }
        Ok(merged)
    }

    /// The merged symbol table; record instrument ids refer to it.
    pub fn symbols(&self) -> &SymbolTable {
        &self.symbols
    }

    /// The error that ended the stream early, if any.
    pub fn take_error(&mut self) -> Option<LogError> {
        self.error.take()
    }

    fn advance(&mut self, i: usize) {
        self.heads[i] = self.pull(i);
        if let Some(record) = &self.heads[i] {
            self.heap.push(Reverse((record.ts_recv, i, record.seq)));
        }
    }

    /// The next record of input `i` that passes the filter, with its instrument remapped.
    #[inline]
    fn pull(&mut self, i: usize) -> Option<Record> {
        loop {
            match self.iters[i].next() {
                None => return None,
                Some(Err(e)) => {
                    self.error.get_or_insert(e);
                    return None;
                }
                Some(Ok(mut record)) => match self.admit(i, &mut record) {
                    Admit::Keep => return Some(record),
                    Admit::Skip => continue,
                    Admit::End => return None,
                },
            }
        }
    }

    /// Remaps a record of input `i` to the merged symbol table and applies the filter.
    #[inline]
    fn admit(&mut self, i: usize, record: &mut Record) -> Admit {
        admit(&self.remap[i], &self.keep, &self.filter, &mut self.error, record)
    }

    /// The next record, lent rather than moved: the replay loop's way through the stream.
    /// The same records in the same order as [`Iterator::next`]; the two may be mixed.
    pub fn next_ref(&mut self) -> Option<&Record> {
        if self.iters.len() != 1 {
            self.held = self.next();
            return self.held.as_ref();
        }
        loop {
            if self.error.is_some() || self.ended {
                return None;
            }
            while self.pos < self.block.len() {
                let at = self.pos;
                self.pos += 1;
                match admit(&self.remap[0], &self.keep, &self.filter, &mut self.error, &mut self.block[at]) {
                    Admit::Keep => return Some(&self.block[at]),
                    Admit::Skip => {}
                    Admit::End => {
                        self.ended = true;
                        return None;
                    }
                }
            }
            match self.iters[0].next_batch()? {
                Ok(records) => {
                    retire(std::mem::replace(&mut self.block, records));
                    self.pos = 0;
                }
                Err(e) => {
                    self.error.get_or_insert(e);
                }
            }
        }
    }
}

/// Frees a spent block on rayon's pool rather than on the thread driving the engine, which
/// is replay's bottleneck: a block of a book-heavy recording is a thousand allocations,
/// most of them made by the decoding threads, whose allocator arenas free them faster.
fn retire(block: Vec<Record>) {
    if rayon::current_num_threads() > 1 && !block.is_empty() {
        rayon::spawn(move || drop(block));
    }
}

/// What the filter says of one record.
enum Admit {
    Keep,
    Skip,
    /// Past `to`: nothing later in this input can pass.
    End,
}

#[inline]
fn admit(
    remap: &[InstrumentId],
    keep: &[bool],
    filter: &Filter,
    error: &mut Option<LogError>,
    record: &mut Record,
) -> Admit {
    if record.instrument != InstrumentId::NONE {
        let Some(global) = remap.get(record.instrument.0 as usize) else {
            error.get_or_insert(LogError::CorruptMeta(format!(
                "record {} names instrument {} missing from the symbol table",
                record.seq, record.instrument.0
            )));
            return Admit::End;
        };
        record.instrument = *global;
        if !keep[global.0 as usize] {
            return Admit::Skip;
        }
    }
    if filter.from.is_some_and(|from| record.ts_recv < from) {
        return Admit::Skip;
    }
    if filter.to.is_some_and(|to| record.ts_recv > to) {
        return Admit::End;
    }
    Admit::Keep
}

impl Iterator for Merged {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if self.error.is_some() {
            return None;
        }
        // One recording needs no merge. Records `next_ref` had decoded but not lent come
        // first (cloned: mixing the two is allowed, not fast).
        if self.iters.len() == 1 {
            if self.ended {
                return None;
            }
            while self.pos < self.block.len() {
                let at = self.pos;
                self.pos += 1;
                let mut record = self.block[at].clone();
                match self.admit(0, &mut record) {
                    Admit::Keep => return Some(record),
                    Admit::Skip => {}
                    Admit::End => {
                        self.ended = true;
                        return None;
                    }
                }
            }
            let record = self.pull(0);
            self.ended = record.is_none();
            return record;
        }
        let Reverse((_, i, _)) = self.heap.pop()?;
        let record = self.heads[i].take().expect("a head for every heap entry");
        self.advance(i);
        Some(record)
    }
}

/// Sleeps so that records arrive at `speed` times their recorded pace.
pub struct Pacer {
    speed: Speed,
    start: Option<(Nanos, Instant)>,
}

impl Pacer {
    pub fn new(speed: Speed) -> Self {
        Pacer { speed, start: None }
    }

    /// Waits until the record at `ts_recv` is due.
    #[inline]
    pub fn wait(&mut self, ts_recv: Nanos) {
        let Speed::Factor(factor) = self.speed else { return };
        let (t0, wall0) = *self.start.get_or_insert((ts_recv, Instant::now()));
        let due = Duration::from_secs_f64(ts_recv.saturating_sub(t0) as f64 / 1e9 / factor);
        let elapsed = wall0.elapsed();
        // Sleeping for less than a millisecond costs more than it is worth.
        if due > elapsed + Duration::from_millis(1) {
            std::thread::sleep(due - elapsed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "recordings/binance-btcusdt-20240808";

    fn filters() -> Vec<(&'static str, Filter)> {
        let all = crate::log::read_all(std::path::Path::new(SAMPLE)).expect("sample");
        let mid = all[all.len() / 2].ts_recv;
        let late = all[all.len() * 3 / 4].ts_recv;
        vec![
            ("everything", Filter::default()),
            ("from", Filter { from: Some(mid), ..Filter::default() }),
            ("to", Filter { to: Some(mid), ..Filter::default() }),
            ("from and to", Filter { from: Some(mid), to: Some(late), ..Filter::default() }),
            ("a symbol", Filter { symbols: vec!["btcusdt".into()], ..Filter::default() }),
            ("no such symbol", Filter { symbols: vec!["ETH/USDT".into()], ..Filter::default() }),
        ]
    }

    /// `next_ref` (in place, block by block) and `next` (moved out) give the same stream,
    /// for one recording and for a merge, under every kind of filter; and switching from
    /// one to the other midway loses or repeats nothing.
    #[test]
    fn lent_and_moved_records_are_the_same_stream() {
        for paths in [vec![PathBuf::from(SAMPLE)], vec![PathBuf::from(SAMPLE), PathBuf::from(SAMPLE)]] {
            for (name, filter) in filters() {
                let moved: Vec<Record> = Merged::open(&paths, filter.clone()).unwrap().collect();
                let mut lending = Merged::open(&paths, filter.clone()).unwrap();
                let mut lent = Vec::new();
                while let Some(r) = lending.next_ref() {
                    lent.push(r.clone());
                }
                assert!(lending.take_error().is_none(), "{name}");
                assert!(lending.next().is_none(), "{name}: the stream stays ended for `next` too");
                assert_eq!(lent, moved, "{name}, {} recording(s)", paths.len());

                let mut mixed = Merged::open(&paths, filter).unwrap();
                let mut both = Vec::new();
                for _ in 0..moved.len() / 3 {
                    both.extend(mixed.next_ref().cloned());
                }
                both.extend(mixed.by_ref());
                assert_eq!(both, moved, "{name} mixed, {} recording(s)", paths.len());
            }
        }
        assert!(Merged::open(&[PathBuf::from(SAMPLE)], Filter::default()).unwrap().count() > 40_000);
    }
}
