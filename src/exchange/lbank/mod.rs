//! LBank spot: WebSocket V2 push frames and REST v2 bodies.
//!
//! See `shared/protocols/lbank.md`. Owns everything that knows LBank's wire format; must not
//! leak wire types, do IO or read the clock. Three facts shape this adapter: prices and
//! quantities are JSON numbers (read as raw tokens, never `f64`); time strings carry no zone
//! and are read as UTC+8 ([`UTC_OFFSET_S`]); and there are no sequence ids, so depth pushes
//! (complete top-N books) are recorded as snapshots and gaps cannot be detected. [`TS_NOTES`]
//! records where each stream's `ts_exchange` comes from in a recording's meta.

mod normalize;
mod rest;
mod venue;
mod wire;

pub use normalize::{LbankNormalizer, UTC_OFFSET_S, parse_time, pong_for};
pub use rest::{RATE_LIMITED, RestError, instrument_for, parse_currency_pairs, parse_depth_snapshot};
pub use venue::{LbankVenue, kbar_slot};
pub use wire::{subscribe_message, unsubscribe_message};

/// How each stream's `ts_exchange` is derived, for the recording meta.
pub const TS_NOTES: &[(&str, &str)] = &[
    ("lbank.time_zone", "zone-less TS and kbar t strings read as UTC+8 (Beijing), see shared/protocols/lbank.md §5"),
    ("lbank.trade.ts_exchange", "deal time trade.TS (UTC+8); push TS when absent"),
    ("lbank.depth.ts_exchange", "push time TS (UTC+8); full top-N snapshot, no update id"),
    ("lbank.kbar.ts_exchange", "push time TS (UTC+8); open_time from kbar t (UTC+8); closed always false"),
    ("lbank.tick.ts_exchange", "push time TS (UTC+8)"),
    ("lbank.depthSnapshot.ts_exchange", "REST data.timestamp (Unix ms); ts_recv when absent"),
];
