//! Checking a recording end to end: block checksums, seq contiguity, venue sequence ids per
//! stream, timestamp sanity, and a gap ledger (gaps, disconnects, coverage).
//!
//! Works on [`Reader::scan_blocks`], which reports a bad block and goes on, so one damaged
//! block does not hide the state of the rest. Reads only; `repair` writes a new recording
//! and never touches the original.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::log::{LogError, Reader, RecordingMeta, Writer, WriterConfig};
use crate::model::{Event, Exchange, InstrumentId, NANOS_PER_SEC, Nanos, Record, Status};

/// 2009-01-03, the first Bitcoin block: no market data is older.
const EARLIEST: Nanos = 1_230_940_800 * NANOS_PER_SEC;
/// ts_recv may step back this much (clock adjustments) before it is reported.
const BACKSTEP: Nanos = NANOS_PER_SEC;

#[derive(Debug, Serialize)]
pub struct Report {
    pub path: String,
    pub healthy: bool,
    pub blocks: u64,
    pub records: u64,
    pub corrupt_blocks: Vec<CorruptBlock>,
    pub seq_problems: Vec<String>,
    pub timestamp_problems: u64,
    pub timestamp_samples: Vec<String>,
    pub streams: Vec<StreamLedger>,
    pub disconnects: Vec<Outage>,
}

#[derive(Debug, Serialize)]
pub struct CorruptBlock {
    pub ordinal: u64,
    pub first_seq: u64,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct StreamLedger {
    pub exchange: Exchange,
    pub symbol: String,
    /// `trade` (trade ids) or `depth` (book update ids).
    pub stream: &'static str,
    pub messages: u64,
    /// Gaps found in the ids, plus `Gap` status records the capture wrote for the stream.
    pub gaps: Vec<GapEntry>,
    pub gaps_per_million: f64,
    /// Time covered by the exchange's connections, percent of the stream's span.
    pub coverage_pct: f64,
}

#[derive(Debug, Serialize, Clone)]
pub struct GapEntry {
    pub seq: u64,
    pub ts: Nanos,
    pub expected: u64,
    pub got: u64,
    /// `detected` from the ids in the data, or `recorded` by the capture.
    pub source: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Outage {
    pub exchange: Exchange,
    pub from_ns: Nanos,
    pub to_ns: Nanos,
    pub seconds: f64,
    pub reason: String,
}

#[derive(Default)]
struct StreamState {
    exchange: Option<Exchange>,
    messages: u64,
    last_id: Option<u64>,
    gaps: Vec<GapEntry>,
    first_ts: Option<Nanos>,
    last_ts: Nanos,
}

/// Reads every block and builds the report. `now` bounds timestamps from above.
///
/// # Errors
/// When the recording cannot be opened.
pub fn verify(dir: &std::path::Path, now: Nanos) -> Result<Report, LogError> {
    let reader = Reader::open(dir)?;
    let symbols = reader.symbols().clone();
    let mut report = Report {
        path: dir.display().to_string(),
        healthy: true,
        blocks: 0,
        records: 0,
        corrupt_blocks: Vec::new(),
        seq_problems: Vec::new(),
        timestamp_problems: 0,
        timestamp_samples: Vec::new(),
        streams: Vec::new(),
        disconnects: Vec::new(),
    };
    let mut streams: BTreeMap<(InstrumentId, &'static str), StreamState> = BTreeMap::new();
    let mut expected_seq = 0u64;
    let mut last_recv = 0;
    let mut down_since: BTreeMap<Exchange, (Nanos, String)> = BTreeMap::new();
    for block in reader.scan_blocks() {
        report.blocks += 1;
        let records = match block.records {
            Ok(r) => r,
            Err(detail) => {
                report.corrupt_blocks.push(CorruptBlock { ordinal: block.ordinal, first_seq: block.first_seq, detail });
                continue;
            }
        };
        if block.first_seq != expected_seq {
            report
                .seq_problems
                .push(format!("block {} starts at seq {}, expected {expected_seq}", block.ordinal, block.first_seq));
        }
        expected_seq = block.first_seq + records.len() as u64;
        for r in &records {
            report.records += 1;
            check_time(r, now, &mut last_recv, &mut report);
            track(r, &mut streams, &mut down_since, &mut report.disconnects);
        }
    }
    let outage_total = |exchange: Exchange, from: Nanos, to: Nanos| -> Nanos {
        report
            .disconnects
            .iter()
            .filter(|o| o.exchange == exchange)
            .map(|o| o.to_ns.min(to).saturating_sub(o.from_ns.max(from)))
            .sum()
    };
    for ((id, stream), state) in streams {
        let instrument = symbols.get(id);
        let exchange = instrument.map_or(Exchange::Binance, |i| i.exchange);
        let first = state.first_ts.unwrap_or(0);
        let span = state.last_ts.saturating_sub(first);
        let down = outage_total(exchange, first, state.last_ts);
        report.streams.push(StreamLedger {
            exchange,
            symbol: instrument.map_or_else(|| "-".into(), |i| i.symbol.clone()),
            stream,
            messages: state.messages,
            gaps_per_million: state.gaps.len() as f64 * 1e6 / state.messages.max(1) as f64,
            coverage_pct: if span == 0 { 100.0 } else { 100.0 * (span - down.min(span)) as f64 / span as f64 },
            gaps: state.gaps,
        });
    }
    report.healthy = report.corrupt_blocks.is_empty()
        && report.seq_problems.is_empty()
        && report.timestamp_problems == 0
        && report.disconnects.is_empty()
        && report.streams.iter().all(|s| s.gaps.is_empty());
    Ok(report)
}

fn check_time(r: &Record, now: Nanos, last_recv: &mut Nanos, report: &mut Report) {
    let mut problem = None;
    if r.ts_exchange < EARLIEST || r.ts_exchange > now + 86_400 * NANOS_PER_SEC {
        problem = Some(format!("seq {}: ts_exchange {} is out of range", r.seq, r.ts_exchange));
    } else if r.ts_recv + BACKSTEP < *last_recv {
        problem = Some(format!("seq {}: ts_recv steps back {} ms", r.seq, (*last_recv - r.ts_recv) / 1_000_000));
    }
    *last_recv = (*last_recv).max(r.ts_recv);
    if let Some(p) = problem {
        report.timestamp_problems += 1;
        if report.timestamp_samples.len() < 10 {
            report.timestamp_samples.push(p);
        }
    }
}

fn track(
    r: &Record,
    streams: &mut BTreeMap<(InstrumentId, &'static str), StreamState>,
    down_since: &mut BTreeMap<Exchange, (Nanos, String)>,
    outages: &mut Vec<Outage>,
) {
    // Diff ids run continuously across REST snapshots (the snapshot is taken in the middle
    // of the stream), so only a new connection restarts them.
    let mut note = |stream: &'static str, first: Option<u64>, last: Option<u64>| {
        let state = streams.entry((r.instrument, stream)).or_default();
        state.exchange = Some(r.exchange);
        state.messages += 1;
        state.first_ts.get_or_insert(r.ts_recv);
        state.last_ts = r.ts_recv;
        if let (Some(prev), Some(first), Some(last)) = (state.last_id, first, last) {
            if first > prev + 1 {
                state.gaps.push(GapEntry {
                    seq: r.seq,
                    ts: r.ts_exchange,
                    expected: prev + 1,
                    got: first,
                    source: "detected",
                });
            }
            state.last_id = Some(prev.max(last));
        } else if last.is_some() {
            state.last_id = last;
        }
    };
    match &r.event {
        Event::Trade(t) => note("trade", t.trade_id, t.trade_id),
        Event::BookDelta(d) => note("depth", Some(d.first_update_id), Some(d.last_update_id)),
        Event::Status(Status::Gap { expected, got, stream }) if r.instrument != InstrumentId::NONE => {
            let kind = if stream.contains("depth") { "depth" } else { "trade" };
            let state = streams.entry((r.instrument, kind)).or_default();
            state.gaps.push(GapEntry {
                seq: r.seq,
                ts: r.ts_exchange,
                expected: *expected,
                got: *got,
                source: "recorded",
            });
        }
        Event::Status(Status::Disconnected { reason }) if reason != "shutdown" => {
            down_since.entry(r.exchange).or_insert((r.ts_recv, reason.clone()));
        }
        Event::Status(Status::Connected { .. }) => {
            for state in streams.values_mut().filter(|s| s.exchange == Some(r.exchange)) {
                state.last_id = None;
            }
            if let Some((from, reason)) = down_since.remove(&r.exchange) {
                outages.push(Outage {
                    exchange: r.exchange,
                    from_ns: from,
                    to_ns: r.ts_recv,
                    seconds: r.ts_recv.saturating_sub(from) as f64 / 1e9,
                    reason,
                });
            }
        }
        _ => {}
    }
}

/// What `repair` kept and dropped.
#[derive(Debug, Serialize)]
pub struct RepairReport {
    pub kept_records: u64,
    pub dropped_blocks: Vec<CorruptBlock>,
}

/// Copies every verifiable block of `from` into a new recording at `to`, renumbering seq
/// so it stays contiguous, and marks each dropped range with a `Gap` status record
/// (stream `recording`, expected and got = the original seqs around the hole).
///
/// # Errors
/// When `from` cannot be read, or `to` already exists or cannot be written.
pub fn repair(from: &std::path::Path, to: &std::path::Path) -> Result<RepairReport, LogError> {
    if to.exists() {
        return Err(LogError::CorruptMeta(format!("{} already exists; repair writes a new recording", to.display())));
    }
    let reader = Reader::open(from)?;
    let mut meta: RecordingMeta = reader.meta().clone();
    meta.command_lines.push(std::env::args().collect());
    meta.notes.insert("repair.from".into(), from.display().to_string());
    let mut writer = Writer::open(to, meta, WriterConfig { flush_records: usize::MAX, ..WriterConfig::default() })?;
    for (id, instrument) in reader.symbols().iter() {
        let assigned = writer.intern(instrument)?;
        debug_assert_eq!(assigned, id);
    }
    let mut report = RepairReport { kept_records: 0, dropped_blocks: Vec::new() };
    let mut pending_hole: Option<(u64, Nanos)> = None;
    let mut last = (0u64, 0 as Nanos, Exchange::Binance);
    for block in reader.scan_blocks() {
        match block.records {
            Err(detail) => {
                pending_hole.get_or_insert((block.first_seq, last.1));
                report.dropped_blocks.push(CorruptBlock { ordinal: block.ordinal, first_seq: block.first_seq, detail });
            }
            Ok(records) => {
                if let Some((hole_start, ts)) = pending_hole.take() {
                    writer.append(Record {
                        seq: 0,
                        ts_exchange: ts,
                        ts_recv: ts,
                        exchange: last.2,
                        instrument: InstrumentId::NONE,
                        event: Event::Status(Status::Gap {
                            stream: "recording".into(),
                            expected: hole_start,
                            got: block.first_seq,
                        }),
                    })?;
                }
                for r in records {
                    last = (r.seq, r.ts_recv, r.exchange);
                    writer.append(r)?;
                    report.kept_records += 1;
                }
            }
        }
    }
    if let Some((hole_start, ts)) = pending_hole {
        writer.append(Record {
            seq: 0,
            ts_exchange: ts,
            ts_recv: ts,
            exchange: last.2,
            instrument: InstrumentId::NONE,
            event: Event::Status(Status::Gap { stream: "recording".into(), expected: hole_start, got: u64::MAX }),
        })?;
    }
    writer.close()?;
    let _ = last.0;
    Ok(report)
}
