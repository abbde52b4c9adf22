//! Candles in event time: trades bucketed by `floor(ts_exchange / timeframe)`.
//!
//! A bucket closes when the first trade of the instrument in a later bucket arrives; the
//! empty buckets in between close at the same moment as flat candles (open = high = low =
//! close = the previous close, volume 0). A trade older than the open bucket (rare: venues
//! order trades per symbol) is folded into the open bucket and counted, so volume is never
//! lost. The last, still-open bucket of a stream is never emitted. No IO, no clock.

use crate::model::{Decimal, InstrumentId, Nanos, Price, Qty};

/// A closed candle, as detectors see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    pub instrument: InstrumentId,
    pub timeframe_s: u32,
    /// Bucket start, ns.
    pub open_time: Nanos,
    pub open: Price,
    pub high: Price,
    pub low: Price,
    pub close: Price,
    /// Base volume.
    pub volume: Qty,
    /// Sum of price × qty; `None` if it overflowed an exact decimal.
    pub quote_volume: Option<Decimal>,
    pub trades: u64,
    /// An empty bucket filled with the previous close.
    pub flat: bool,
}

/// Builds one instrument's candles of one timeframe.
#[derive(Debug, Clone)]
pub struct CandleBuilder {
    instrument: InstrumentId,
    timeframe_s: u32,
    timeframe_ns: u64,
    open: Option<Bar>,
    pub late_trades: u64,
}

impl CandleBuilder {
    pub fn new(instrument: InstrumentId, timeframe_s: u32) -> Self {
        CandleBuilder {
            instrument,
            timeframe_s,
            timeframe_ns: timeframe_s as u64 * crate::model::NANOS_PER_SEC,
            open: None,
            late_trades: 0,
        }
    }

    pub fn timeframe_s(&self) -> u32 {
        self.timeframe_s
    }

    /// Adds a trade; pushes every candle it closes (in bucket order) to `closed`.
    pub fn on_trade(&mut self, ts: Nanos, price: Price, qty: Qty, closed: &mut Vec<Bar>) {
        let bucket_start = ts - ts % self.timeframe_ns;
        let notional = price.checked_mul(&qty);
        match &mut self.open {
            Some(bar) if bucket_start <= bar.open_time => {
                if bucket_start < bar.open_time {
                    self.late_trades += 1;
                }
                bar.high = bar.high.max(price);
                bar.low = bar.low.min(price);
                bar.close = price;
                bar.volume = bar.volume.checked_add(&qty).unwrap_or(bar.volume);
                bar.quote_volume = match (bar.quote_volume, notional) {
                    (Some(q), Some(n)) => q.checked_add(&n),
                    _ => None,
                };
                bar.trades += 1;
            }
            _ => {
                if let Some(done) = self.open.take() {
                    let prev_close = done.close;
                    let mut t = done.open_time + self.timeframe_ns;
                    closed.push(done);
                    while t < bucket_start {
                        closed.push(self.flat_bar(t, prev_close));
                        t += self.timeframe_ns;
                    }
                }
                self.open = Some(Bar {
                    instrument: self.instrument,
                    timeframe_s: self.timeframe_s,
                    open_time: bucket_start,
                    open: price,
                    high: price,
                    low: price,
                    close: price,
                    volume: qty,
                    quote_volume: notional,
                    trades: 1,
                    flat: false,
                });
            }
        }
    }

    fn flat_bar(&self, open_time: Nanos, close: Price) -> Bar {
        Bar {
            instrument: self.instrument,
            timeframe_s: self.timeframe_s,
            open_time,
            open: close,
            high: close,
            low: close,
            close,
            volume: Decimal::ZERO,
            quote_volume: Some(Decimal::ZERO),
            trades: 0,
            flat: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    const S: u64 = crate::model::NANOS_PER_SEC;

    /// (ts seconds, price, qty) → closed bars as (open_time s, o, h, l, c, volume, flat).
    #[test]
    fn bucketing_table() {
        type Row = (u64, &'static str, &'static str, &'static str, &'static str, &'static str, bool);
        let cases: Vec<(&str, Vec<(u64, &str, &str)>, Vec<Row>)> = vec![
            ("one bucket never closes by itself", vec![(0, "10", "1"), (59, "11", "1")], vec![]),
            (
                "next bucket closes the previous",
                vec![(0, "10", "1"), (30, "12", "2"), (45, "9", "1"), (60, "11", "1")],
                vec![(0, "10", "12", "9", "9", "4", false)],
            ),
            (
                "empty buckets become flat candles at the previous close",
                vec![(5, "10", "1"), (200, "13", "1")],
                vec![
                    (0, "10", "10", "10", "10", "1", false),
                    (60, "10", "10", "10", "10", "0", true),
                    (120, "10", "10", "10", "10", "0", true),
                ],
            ),
            (
                "a late trade folds into the open bucket",
                vec![(60, "10", "1"), (59, "20", "1"), (120, "10", "1")],
                vec![(60, "10", "20", "10", "20", "2", false)],
            ),
        ];
        for (name, trades, expected) in cases {
            let mut builder = CandleBuilder::new(InstrumentId(0), 60);
            let mut closed = Vec::new();
            for (ts, p, q) in trades {
                builder.on_trade(ts * S, d(p), d(q), &mut closed);
            }
            let got: Vec<Row> = closed
                .iter()
                .map(|b| {
                    let leak = |x: &Decimal| -> &'static str { Box::leak(x.to_string().into_boxed_str()) };
                    (
                        b.open_time / S,
                        leak(&b.open),
                        leak(&b.high),
                        leak(&b.low),
                        leak(&b.close),
                        leak(&b.volume),
                        b.flat,
                    )
                })
                .collect();
            let expected: Vec<Row> = expected;
            assert_eq!(got.len(), expected.len(), "{name}");
            for (g, e) in got.iter().zip(&expected) {
                assert_eq!(
                    (g.0, d(g.1), d(g.2), d(g.3), d(g.4), d(g.5), g.6),
                    (e.0, d(e.1), d(e.2), d(e.3), d(e.4), d(e.5), e.6),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn quote_volume_is_exact() {
        let mut builder = CandleBuilder::new(InstrumentId(0), 1);
        let mut closed = Vec::new();
        builder.on_trade(0, d("61837.63000000"), d("0.02000000"), &mut closed);
        builder.on_trade(1, d("0.1"), d("3"), &mut closed);
        builder.on_trade(S, d("1"), d("1"), &mut closed);
        assert_eq!(closed[0].quote_volume, Some(d("1237.0526")));
        assert_eq!(closed[0].volume, d("3.02"));
    }
}
