//! hftbacktest's Binance collector files: gzip text, `<recv ns> <raw json>` per line.
//!
//! Frames are Binance combined-stream envelopes, plus raw REST depth snapshots (which carry
//! no symbol, so the caller names the instrument). Every frame goes through the real
//! Binance normalizer; frames that fail are counted into `ParseError` records, not dropped.

use std::io::BufRead;
use std::path::Path;

use super::{ImportError, ImportStats};
use crate::exchange::binance::{self, BinanceNormalizer, SymbolMap};
use crate::exchange::{FrameKind, Normalized, Normalizer, ParseErrors};
use crate::log::Writer;
use crate::model::{Instrument, InstrumentId, NANOS_PER_SEC, Record};

/// Imports one file into `writer`, for `instrument` (used for the symbol-less snapshots).
///
/// # Errors
/// On unreadable input, a line without a receive time, or a storage failure.
pub fn import_file(
    path: &Path,
    instrument: &Instrument,
    writer: &mut Writer,
    progress: &dyn Fn(u64),
) -> Result<ImportStats, ImportError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| ImportError::Io { path: shown.clone(), source })?;
    let reader: Box<dyn BufRead> = if shown.ends_with(".gz") {
        Box::new(std::io::BufReader::new(flate2::read::MultiGzDecoder::new(file)))
    } else {
        Box::new(std::io::BufReader::new(file))
    };
    let mut symbols = SymbolMap::default();
    let (base, quote) = instrument.symbol.split_once('/').unwrap_or((&instrument.symbol, ""));
    symbols.insert(&instrument.venue_symbol, base, quote);
    let mut normalizer = BinanceNormalizer::new(symbols);
    let mut errors = ParseErrors::new(NANOS_PER_SEC);
    let mut stats = ImportStats::default();
    let mut out: Vec<Normalized> = Vec::new();
    let mut streams = std::collections::BTreeSet::new();
    let mut last_ts = 0;
    for (index, line) in reader.lines().enumerate() {
        let line_no = index as u64 + 1;
        let line = line.map_err(|source| ImportError::Io { path: shown.clone(), source })?;
        if line.trim().is_empty() {
            continue;
        }
        stats.lines += 1;
        let (ts, frame) = line.split_once(' ').ok_or_else(|| ImportError::Line {
            path: shown.clone(),
            line: line_no,
            detail: "expected `<recv ns> <json>`".into(),
        })?;
        let ts_recv: u64 = ts.parse().map_err(|_| ImportError::Line {
            path: shown.clone(),
            line: line_no,
            detail: format!("receive time {ts:?} is not an integer of ns"),
        })?;
        last_ts = ts_recv;
        out.clear();
        let result = if frame.starts_with("{\"lastUpdateId\"") {
            binance::parse_depth_snapshot(frame, instrument, ts_recv).map(|n| {
                out.push(n);
                FrameKind::Data
            })
        } else {
            if let Some(stream) = stream_name(frame) {
                streams.insert(stream.to_string());
            }
            normalizer.normalize(frame, ts_recv, &mut out)
        };
        match result {
            Ok(FrameKind::Data) => {}
            Ok(_) => stats.control_frames += 1,
            Err(e) => {
                tracing::warn!(file = %shown, line = line_no, error = %e, "skipping a frame that does not normalize");
                stats.parse_errors += 1;
                out.extend(errors.failed(frame, &e, ts_recv));
            }
        }
        for n in out.drain(..) {
            append(writer, n, ts_recv)?;
            stats.records += 1;
        }
        if line_no % 4096 == 0 {
            progress(line_no);
        }
    }
    if let Some(n) = errors.take(last_ts) {
        append(writer, n, last_ts)?;
        stats.records += 1;
    }
    writer.update_meta(|meta| {
        for s in streams {
            if !meta.subscriptions.contains(&s) {
                meta.subscriptions.push(s);
            }
        }
        for (k, v) in binance::TS_NOTES {
            meta.notes.insert((*k).into(), (*v).into());
        }
    })?;
    Ok(stats)
}

fn append(writer: &mut Writer, n: Normalized, ts_recv: u64) -> Result<(), ImportError> {
    let instrument = match &n.instrument {
        Some(i) => writer.intern(i)?,
        None => InstrumentId::NONE,
    };
    writer.append(Record {
        seq: 0,
        ts_exchange: n.ts_exchange,
        ts_recv,
        exchange: crate::model::Exchange::Binance,
        instrument,
        event: n.event,
    })?;
    Ok(())
}

/// The `"stream"` value of a combined-stream envelope, without parsing the payload.
fn stream_name(frame: &str) -> Option<&str> {
    let rest = frame.strip_prefix("{\"stream\":\"")?;
    rest.split_once('"').map(|(name, _)| name)
}
