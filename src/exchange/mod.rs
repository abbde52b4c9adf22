//! Venue adapters: everything that knows an exchange's wire format lives under here.
//!
//! Each venue has one folder with the same files: `wire.rs` (serde types for its JSON),
//! `normalize.rs` (wire → model, plus venue sequence checks), `rest.rs` (REST bodies and
//! symbol metadata) and `mod.rs`. Nothing outside a venue folder sees its wire types; the
//! rest of tapedeck uses [`Normalizer`] and [`Normalized`]. Normalizers never read the wall
//! clock: `ts_recv` is stamped at the socket and passed in.

pub mod binance;
pub mod gate;
pub mod lbank;

use std::collections::HashMap;

use crate::model::{Event, Instrument, Nanos, Status};

/// One model event produced from a venue frame, before the log assigns its seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub instrument: Option<Instrument>,
    pub ts_exchange: Nanos,
    pub event: Event,
}

/// What a frame turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameKind {
    /// Market data; the events were pushed to the output.
    Data,
    /// A subscription ack, pong or other control reply with no market data.
    Control,
    /// The venue reported an error in-band.
    VenueError(String),
}

/// Why a frame could not be normalized. The capture counts these and records a sample.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("unknown message type: {0}")]
    Unknown(String),
    #[error("bad number in field {field}: {detail}")]
    Number { field: &'static str, detail: String },
    #[error("unknown symbol {0}")]
    Symbol(String),
}

/// Turns one venue frame into model events. Stateful per connection, for sequence checks.
pub trait Normalizer: Send {
    /// Normalizes `frame`, received at `ts_recv`, appending events to `out`.
    ///
    /// # Errors
    /// When the frame cannot be parsed; nothing is appended then.
    fn normalize(
        &mut self,
        frame: &str,
        ts_recv: Nanos,
        out: &mut Vec<Normalized>,
    ) -> Result<FrameKind, NormalizeError>;
}

/// Milliseconds since the epoch to ns, saturating instead of wrapping on absurd input.
pub(crate) fn ms_to_ns(ms: u64) -> Nanos {
    ms.saturating_mul(crate::model::NANOS_PER_MS)
}

/// Counts frames that failed to normalize and turns them into `ParseError` status records:
/// at most one per `every` ns of receive time, carrying the count since the last one and
/// the first failure as a sample, so a flood of garbage is visible without bloating the log.
#[derive(Debug)]
pub struct ParseErrors {
    every: Nanos,
    pending: u64,
    sample: Option<String>,
    last_emit: Option<Nanos>,
    pub total: u64,
}

impl ParseErrors {
    pub fn new(every: Nanos) -> Self {
        ParseErrors { every, pending: 0, sample: None, last_emit: None, total: 0 }
    }

    /// Notes a failure; returns a status event when one is due.
    pub fn failed(&mut self, frame: &str, error: &NormalizeError, ts_recv: Nanos) -> Option<Normalized> {
        self.pending += 1;
        self.total += 1;
        if self.sample.is_none() {
            let head: String = frame.chars().take(160).collect();
            self.sample = Some(format!("{error}: {head}"));
        }
        let due = self.last_emit.is_none_or(|last| ts_recv.saturating_sub(last) >= self.every);
        if due { self.take(ts_recv) } else { None }
    }

    /// The status event for failures not yet reported, if any.
    pub fn take(&mut self, ts_recv: Nanos) -> Option<Normalized> {
        if self.pending == 0 {
            return None;
        }
        self.last_emit = Some(ts_recv);
        let count = std::mem::take(&mut self.pending);
        Some(Normalized {
            instrument: None,
            ts_exchange: ts_recv,
            event: Event::Status(crate::model::Status::ParseError {
                count,
                sample: self.sample.take().unwrap_or_default(),
            }),
        })
    }
}

/// Records a `Gap` when `first` skips past the id after the last one seen for `key` (a symbol or pair). Older or
/// overlapping ids are not gaps (the book sync drops them as stale).
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_seq(
    last: &mut HashMap<String, u64>,
    key: &str,
    first: u64,
    new_last: u64,
    ts: Nanos,
    stream: impl FnOnce() -> String,
    instrument: &Instrument,
    out: &mut Vec<Normalized>,
) {
    match last.get_mut(key) {
        Some(prev) => {
            if first > prev.saturating_add(1) {
                out.push(Normalized {
                    instrument: Some(instrument.clone()),
                    ts_exchange: ts,
                    event: Event::Status(Status::Gap { stream: stream(), expected: *prev + 1, got: first }),
                });
            }
            *prev = (*prev).max(new_last);
        }
        None => {
            last.insert(key.to_string(), new_last);
        }
    }
}
