//! Gate.io spot v4: WebSocket channel frames and REST bodies.
//!
//! See `shared/protocols/gate.md`. Owns everything that knows Gate's wire format; must not
//! leak wire types (the rest of tapedeck sees [`GateNormalizer`] and model types). Gate mixes
//! time units (s, ms, fractional-ms strings); [`TS_NOTES`] records which field each stream's
//! `ts_exchange` comes from, for a recording's meta.

mod normalize;
mod rest;
mod venue;
mod wire;

pub use normalize::GateNormalizer;
pub use rest::{CurrencyPair, parse_candlesticks, parse_currency_pairs, parse_depth_snapshot, parse_symbol};
pub use venue::{GateVenue, PAIRS_PER_MESSAGE, kline_interval, stamp_time};

/// How each stream's `ts_exchange` is derived, for the recording meta.
pub const TS_NOTES: &[(&str, &str)] = &[
    (
        "gate.spot.trades.ts_exchange",
        "create_time_ms (fractional ms string, exact to the ns), else create_time s, else envelope time",
    ),
    ("gate.spot.book_ticker.ts_exchange", "t ms, else envelope time"),
    ("gate.spot.order_book_update.ts_exchange", "t ms, else envelope time"),
    ("gate.spot.candlesticks.ts_exchange", "envelope time_ms, else envelope time s (the candle has only its start t)"),
    ("gate.spot.tickers.ts_exchange", "envelope time_ms, else envelope time s (the ticker carries no time)"),
    ("gate.spot.order_book.snapshot.ts_exchange", "REST current ms, else ts_recv (2021 bodies have no current)"),
];

/// The real captures the tests read (cryptofeed format), and their framing.
#[cfg(test)]
mod fixtures {
    use crate::model::Nanos;

    pub const SPOT_WS: &str = include_str!("../../../tests/fixtures/gateio_spot/GATEIO.ws.1.0");
    pub const SPOT_HTTP: &str = include_str!("../../../tests/fixtures/gateio_spot/GATEIO.http.0.0");
    pub const FUTURES_WS: &str = include_str!("../../../tests/fixtures/gateio_spot/GATEIO_FUTURES.ws.1.0");

    /// Server frames as (receive ns, frame): line 1 is the connect header, client frames
    /// contain ` <- `, server lines are `<unix s float>: <json>`.
    pub fn server_frames(capture: &str) -> Vec<(Nanos, &str)> {
        capture
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty() && !l.contains(" <- "))
            .map(|l| {
                let (ts, frame) = l.split_once(": ").unwrap_or_else(|| panic!("no timestamp: {l}"));
                (secs(ts), frame)
            })
            .collect()
    }

    /// REST lines `<url> -> <unix s float>: <body>` as (url, receive ns, body).
    pub fn http_lines(capture: &str) -> Vec<(&str, Nanos, &str)> {
        capture
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let (url, rest) = l.split_once(" -> ").unwrap_or_else(|| panic!("no url: {l}"));
                let (ts, body) = rest.split_once(": ").unwrap_or_else(|| panic!("no timestamp: {l}"));
                (url, secs(ts), body)
            })
            .collect()
    }

    /// Float seconds to ns without `f64`, as the captures' receive times are decimal text.
    fn secs(text: &str) -> Nanos {
        let value = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        super::normalize::decimal_to_ns(value, 9).expect("a time after 1970")
    }
}
