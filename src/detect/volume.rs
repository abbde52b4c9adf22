//! Volume anomalies: a candle whose base volume is at least `k` times the mean of the
//! previous `ma` candles' volumes, with at least `min_quote` quote volume.

use std::collections::VecDeque;

use super::{Args, slot, tf};
use crate::engine::{Bar, Detector, Signal, SignalBody, View};
use crate::model::Record;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub timeframe_s: u32,
    pub ma: usize,
    pub k: f64,
    pub min_quote: f64,
}

impl Params {
    pub(crate) fn from_args(args: &mut Args) -> Result<Params, String> {
        let p = Params {
            timeframe_s: args.timeframe("timeframe", "1m")?,
            ma: args.usize("ma", 20)?,
            k: args.f64("k", 3.0)?,
            min_quote: args.f64("min_quote", 0.0)?,
        };
        if p.ma == 0 {
            return Err("ma must be at least 1".into());
        }
        if p.k <= 0.0 {
            return Err(format!("k must be > 0, got {}", p.k));
        }
        if p.min_quote < 0.0 {
            return Err(format!("min_quote must be >= 0, got {}", p.min_quote));
        }
        Ok(p)
    }
}

/// One instrument's baseline: the mean of the previous `ma` candle volumes (flat candles
/// count as 0). Shared with `scan`, so its ratios are the ones this detector tests.
#[derive(Debug, Default, Clone)]
pub struct Baseline {
    previous: VecDeque<f64>,
}

impl Baseline {
    /// The baseline of a candle of `volume` (`None` until `ma` candles came before it);
    /// then that candle joins the window.
    pub fn push(&mut self, ma: usize, volume: f64) -> Option<f64> {
        let baseline = (self.previous.len() == ma).then(|| self.previous.iter().sum::<f64>() / ma as f64);
        if baseline.is_some() {
            self.previous.pop_front();
        }
        self.previous.push_back(volume);
        baseline
    }
}

pub struct Volume {
    params: Params,
    states: Vec<Baseline>,
}

impl Volume {
    pub fn new(params: Params) -> Self {
        Volume { params, states: Vec::new() }
    }
}

impl Detector for Volume {
    fn name(&self) -> &'static str {
        "volume"
    }

    fn params(&self) -> String {
        let p = &self.params;
        format!("timeframe={},ma={},k={},min_quote={}", tf(p.timeframe_s), p.ma, p.k, p.min_quote)
    }

    fn timeframe_s(&self) -> Option<u32> {
        Some(self.params.timeframe_s)
    }

    fn on_candle(&mut self, _view: &View, bar: &Bar, cause: &Record, out: &mut Vec<Signal>) {
        let p = self.params;
        let params = self.params();
        let state = slot(&mut self.states, bar.instrument);
        let volume = bar.volume.to_f64();
        let quote_volume = bar.quote_volume.map_or(f64::INFINITY, |q| q.to_f64());
        let Some(baseline) = state.push(p.ma, volume) else { return };
        if baseline > 0.0 && volume >= p.k * baseline && quote_volume >= p.min_quote {
            out.push(Signal {
                seq: cause.seq,
                ts: cause.ts_exchange,
                exchange: cause.exchange,
                instrument: bar.instrument,
                detector: "volume",
                params,
                body: SignalBody::Volume {
                    bucket_start: bar.open_time,
                    volume,
                    baseline,
                    ratio: volume / baseline,
                    quote_volume,
                },
            });
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::*;

    pub(crate) fn bar(t: u64, close: f64, volume: f64) -> Bar {
        let dec = |x: f64| -> Decimal { format!("{x}").parse().unwrap() };
        Bar {
            instrument: InstrumentId(0),
            timeframe_s: 60,
            open_time: t,
            open: dec(close),
            high: dec(close),
            low: dec(close),
            close: dec(close),
            volume: dec(volume),
            quote_volume: Some(dec(close * volume)),
            trades: 1,
            flat: volume == 0.0,
        }
    }

    pub(crate) fn cause(seq: u64) -> Record {
        Record {
            seq,
            ts_exchange: seq,
            ts_recv: seq,
            exchange: Exchange::Binance,
            instrument: InstrumentId(0),
            event: Event::Status(Status::Resync { stream: String::new() }),
        }
    }

    fn anomalies(volumes: &[f64], ma: usize, k: f64, min_quote: f64) -> Vec<(u64, f64)> {
        let mut det = Volume::new(Params { timeframe_s: 60, ma, k, min_quote });
        let symbols = SymbolTable::new();
        let view = View::for_tests(&symbols);
        let mut out = Vec::new();
        for (i, v) in volumes.iter().enumerate() {
            det.on_candle(&view, &bar(i as u64, 2.0, *v), &cause(i as u64), &mut out);
        }
        out.iter()
            .map(|s| match s.body {
                SignalBody::Volume { bucket_start, ratio, .. } => (bucket_start, ratio),
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn hand_worked_table() {
        let cases: [(&str, Vec<f64>, usize, f64, f64, Vec<(u64, f64)>); 6] = [
            ("baseline needs ma previous candles", vec![1.0, 9.0], 2, 3.0, 0.0, vec![]),
            // baseline of [1, 2] = 1.5; 4.5 = 3·1.5 is inclusive.
            ("exactly k times is an anomaly", vec![1.0, 2.0, 4.5], 2, 3.0, 0.0, vec![(2, 3.0)]),
            ("just below k is not", vec![1.0, 2.0, 4.49], 2, 3.0, 0.0, vec![]),
            // flat (zero-volume) candles count in the baseline: [0, 0] → B = 0 → never.
            ("zero baseline never fires", vec![0.0, 0.0, 5.0], 2, 3.0, 0.0, vec![]),
            // baseline excludes the current candle: [0, 2] → 1; 3 ≥ 3.
            ("flat candle lowers the baseline", vec![0.0, 2.0, 3.0], 2, 3.0, 0.0, vec![(2, 3.0)]),
            // quote volume 2·4.5 = 9 < 10 → filtered.
            ("min_quote filters", vec![1.0, 2.0, 4.5], 2, 3.0, 10.0, vec![]),
        ];
        for (name, volumes, ma, k, min_quote, expected) in cases {
            assert_eq!(anomalies(&volumes, ma, k, min_quote), expected, "{name}");
        }
    }
}
