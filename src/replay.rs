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
            span,
            error: None,
        };
        for i in 0..merged.iters.len() {
            merged.advance(i);
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
        loop {
            match self.iters[i].next() {
                None => return,
                Some(Err(e)) => {
                    self.error.get_or_insert(e);
                    return;
                }
                Some(Ok(mut record)) => {
                    if record.instrument != InstrumentId::NONE {
                        let Some(global) = self.remap[i].get(record.instrument.0 as usize) else {
                            self.error.get_or_insert(LogError::CorruptMeta(format!(
                                "record {} names instrument {} missing from the symbol table",
                                record.seq, record.instrument.0
                            )));
                            return;
                        };
                        record.instrument = *global;
                        if !self.keep[global.0 as usize] {
                            continue;
                        }
                    }
                    if self.filter.from.is_some_and(|from| record.ts_recv < from) {
                        continue;
                    }
                    if self.filter.to.is_some_and(|to| record.ts_recv > to) {
                        return;
                    }
                    self.heap.push(Reverse((record.ts_recv, i, record.seq)));
                    self.heads[i] = Some(record);
                    return;
                }
            }
        }
    }
}

impl Iterator for Merged {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if self.error.is_some() {
            return None;
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
