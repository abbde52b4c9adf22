//! Binance spot: combined-stream WebSocket frames and REST v3 bodies.
//!
//! See `shared/protocols/binance.md`. `ts_exchange` is the trade time `T` for trades, the
//! event time `E` otherwise, and `ts_recv` for bookTicker and REST snapshots, which carry
//! no time at all ([`TS_NOTES`] records this in a recording's meta).

mod normalize;
mod rest;
mod venue;
mod wire;

pub use normalize::BinanceNormalizer;
pub use rest::{
    SymbolMap, parse_agg_trades, parse_depth_snapshot, parse_exchange_info, parse_klines, parse_symbol_infos,
};
pub use venue::{BinanceVenue, STREAMS_PER_CONNECTION};

/// How each stream's `ts_exchange` is derived, for the recording meta.
pub const TS_NOTES: &[(&str, &str)] = &[
    ("binance.trade.ts_exchange", "trade time T"),
    ("binance.aggTrade.ts_exchange", "trade time T"),
    ("binance.depthUpdate.ts_exchange", "event time E"),
    ("binance.kline.ts_exchange", "event time E"),
    ("binance.miniTicker.ts_exchange", "event time E"),
    ("binance.bookTicker.ts_exchange", "ts_recv (the message carries no time)"),
    ("binance.depthSnapshot.ts_exchange", "ts_recv (the REST body carries no time)"),
];
