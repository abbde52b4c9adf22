//! Dedupe and cooldown: at most one alert per (exchange, symbol, detector) per cooldown,
//! measured in event time.
//!
//! It owns that decision and must not read the wall clock: time is the signal's `ts`, so a
//! replay at any speed, and the alert backtest, suppress exactly what live mode would.

use std::collections::BTreeMap;

use crate::model::{Exchange, Nanos};

/// The default cooldown: five minutes.
pub const DEFAULT_COOLDOWN_NS: Nanos = 5 * 60 * 1_000_000_000;

/// What [`Cooldown::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// The first alert of its key, or the first after the cooldown ran out.
    Yes,
    /// Within the cooldown of the last admitted alert of the same key (or an exact repeat).
    Suppressed,
}

/// Last admitted event time per key.
#[derive(Debug, Clone)]
pub struct Cooldown {
    period: Nanos,
    last: BTreeMap<(Exchange, String, String), Nanos>,
}

impl Cooldown {
    /// `period` 0 turns the cooldown off (every alert is admitted).
    pub fn new(period: Nanos) -> Cooldown {
        Cooldown { period, last: BTreeMap::new() }
    }

    pub fn period(&self) -> Nanos {
        self.period
    }

    /// Admits an alert for `key` at event time `ts` and starts its cooldown, or suppresses it.
    ///
    /// The cooldown runs from the last *admitted* alert, so a steady stream of signals still
    /// alerts once per period instead of being silenced for as long as it lasts. An event
    /// older than the last admitted one of its key (merged recordings can interleave) counts
    /// as inside the cooldown.
    pub fn admit(&mut self, exchange: Exchange, symbol: &str, detector: &str, ts: Nanos) -> Admit {
        if self.period == 0 {
            return Admit::Yes;
        }
        let key = (exchange, symbol.to_string(), detector.to_string());
        match self.last.get(&key) {
            Some(&last) if ts < last.saturating_add(self.period) => Admit::Suppressed,
            _ => {
                self.last.insert(key, ts);
                Admit::Yes
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;

    #[test]
    fn cooldown_in_event_time() {
        use Admit::{Suppressed as No, Yes};
        let b = Exchange::Binance;
        let g = Exchange::Gate;
        // (cooldown, [(exchange, symbol, detector, ts, expected)])
        let cases: [(Nanos, Vec<(Exchange, &str, &str, Nanos, Admit)>); 6] = [
            (
                300 * S,
                vec![
                    (b, "BTC/USDT", "volume", 1000 * S, Yes),
                    (b, "BTC/USDT", "volume", 1000 * S, No), // exact repeat
                    (b, "BTC/USDT", "volume", 1299 * S, No),
                    (b, "BTC/USDT", "volume", 1300 * S, Yes), // the cooldown is half-open
                    (b, "BTC/USDT", "volume", 1301 * S, No),
                ],
            ),
            (
                300 * S,
                vec![
                    (b, "BTC/USDT", "volume", 1000 * S, Yes),
                    (b, "BTC/USDT", "waves", 1001 * S, Yes),  // another detector
                    (b, "ETH/USDT", "volume", 1002 * S, Yes), // another symbol
                    (g, "BTC/USDT", "volume", 1003 * S, Yes), // another exchange
                    (g, "BTC/USDT", "volume", 1004 * S, No),
                ],
            ),
            (
                // A signal every minute for ten minutes alerts at 0, 5 and 10 minutes: the
                // cooldown runs from the last admitted alert, not from the last signal.
                300 * S,
                (0..=10).map(|m| (b, "BTC/USDT", "volume", m * 60 * S, if m % 5 == 0 { Yes } else { No })).collect(),
            ),
            (
                300 * S,
                vec![
                    (b, "BTC/USDT", "volume", 1000 * S, Yes),
                    (b, "BTC/USDT", "volume", 900 * S, No), // older than the last admitted
                ],
            ),
            (0, vec![(b, "BTC/USDT", "volume", 5 * S, Yes), (b, "BTC/USDT", "volume", 5 * S, Yes)]),
            (
                1, // one nanosecond: only exact repeats are suppressed
                vec![
                    (b, "BTC/USDT", "volume", 5 * S, Yes),
                    (b, "BTC/USDT", "volume", 5 * S, No),
                    (b, "BTC/USDT", "volume", 5 * S + 1, Yes),
                ],
            ),
        ];
        for (i, (period, rows)) in cases.into_iter().enumerate() {
            let mut cooldown = Cooldown::new(period);
            for (exchange, symbol, detector, ts, want) in rows {
                assert_eq!(cooldown.admit(exchange, symbol, detector, ts), want, "case {i}: {symbol} {detector} {ts}");
            }
        }
    }
}
