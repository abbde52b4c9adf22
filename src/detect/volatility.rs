//! Volatility regimes: short-window against long-window standard deviation of log returns
//! of candle closes, reported on the first evaluation and on every regime change.

use std::collections::VecDeque;

use super::{Args, slot, tf};
use crate::engine::{Bar, Detector, Signal, SignalBody, View};
use crate::model::Record;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub timeframe_s: u32,
    pub short: usize,
    pub long: usize,
    pub high: f64,
    pub low: f64,
}

impl Params {
    pub(crate) fn from_args(args: &mut Args) -> Result<Params, String> {
        let p = Params {
            timeframe_s: args.timeframe("timeframe", "1m")?,
            short: args.usize("short", 20)?,
            long: args.usize("long", 120)?,
            high: args.f64("high", 1.5)?,
            low: args.f64("low", 0.67)?,
        };
        if p.short == 0 {
            return Err("short must be at least 1".into());
        }
        if p.short >= p.long {
            return Err(format!("short must be less than long (short={}, long={})", p.short, p.long));
        }
        if p.low <= 0.0 || p.high <= p.low {
            return Err(format!("need 0 < low < high (low={}, high={})", p.low, p.high));
        }
        Ok(p)
    }
}

#[derive(Debug, Default)]
struct State {
    prev_close: Option<f64>,
    returns: VecDeque<f64>,
    regime: Option<&'static str>,
}

pub struct Volatility {
    params: Params,
    states: Vec<State>,
}

impl Volatility {
    pub fn new(params: Params) -> Self {
        Volatility { params, states: Vec::new() }
    }
}

/// Population standard deviation, summed in order.
fn pstdev<'a>(values: impl Iterator<Item = &'a f64> + Clone) -> f64 {
    let n = values.clone().count() as f64;
    let mean = values.clone().sum::<f64>() / n;
    (values.map(|r| (r - mean) * (r - mean)).sum::<f64>() / n).sqrt()
}

impl Detector for Volatility {
    fn name(&self) -> &'static str {
        "volatility"
    }

    fn params(&self) -> String {
        let p = &self.params;
        format!("timeframe={},short={},long={},high={},low={}", tf(p.timeframe_s), p.short, p.long, p.high, p.low)
    }

    fn timeframe_s(&self) -> Option<u32> {
        Some(self.params.timeframe_s)
    }

    fn on_candle(&mut self, _view: &View, bar: &Bar, cause: &Record, out: &mut Vec<Signal>) {
        let p = self.params;
        let params = self.params();
        let state = slot(&mut self.states, bar.instrument);
        let close = bar.close.to_f64();
        let Some(prev) = state.prev_close.replace(close) else { return };
        state.returns.push_back((close / prev).ln());
        if state.returns.len() > p.long {
            state.returns.pop_front();
        }
        if state.returns.len() < p.long {
            return;
        }
        let sigma_long = pstdev(state.returns.iter());
        if sigma_long == 0.0 {
            return;
        }
        let sigma_short = pstdev(state.returns.iter().skip(p.long - p.short));
        let ratio = sigma_short / sigma_long;
        let regime = if ratio >= p.high {
            "high"
        } else if ratio <= p.low {
            "low"
        } else {
            "normal"
        };
        if state.regime.replace(regime) == Some(regime) {
            return;
        }
        out.push(Signal {
            seq: cause.seq,
            ts: cause.ts_exchange,
            exchange: cause.exchange,
            instrument: bar.instrument,
            detector: "volatility",
            params,
            body: SignalBody::Volatility { regime, ratio, sigma_short, sigma_long, bucket_start: bar.open_time },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::volume::tests::{bar, cause};
    use crate::model::SymbolTable;

    fn regimes(closes: &[f64], short: usize, long: usize) -> Vec<(&'static str, u64)> {
        let mut det = Volatility::new(Params { timeframe_s: 60, short, long, high: 1.5, low: 0.67 });
        let symbols = SymbolTable::new();
        let view = View::for_tests(&symbols);
        let mut out = Vec::new();
        for (i, c) in closes.iter().enumerate() {
            det.on_candle(&view, &bar(i as u64, *c, 1.0), &cause(i as u64), &mut out);
        }
        out.iter()
            .map(|s| match s.body {
                SignalBody::Volatility { regime, bucket_start, .. } => (regime, bucket_start),
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn hand_worked_table() {
        // short = 2, long = 4; a = ln 2.
        let cases: [(&str, Vec<f64>, Vec<(&str, u64)>); 4] = [
            ("too few returns: no evaluation", vec![1.0, 2.0, 1.0], vec![]),
            ("flat prices: σ_long = 0 is skipped", vec![5.0; 10], vec![]),
            // 4 returns [+,-,+,-]: σ_short = σ_long → ratio 1 → normal at bucket 4.
            ("first evaluation is reported", vec![1.0, 2.0, 1.0, 2.0, 1.0], vec![("normal", 4)]),
            // bucket 5: returns [-a, a, -a, 0], σ_long = a·√0.6875, σ_short = a/2 → ratio 0.603 → low;
            // buckets 6 and 7 stay low and are not repeated.
            ("changes only", vec![1.0, 2.0, 1.0, 2.0, 1.0, 1.0, 1.0, 1.0], vec![("normal", 4), ("low", 5)]),
        ];
        for (name, closes, expected) in cases {
            assert_eq!(regimes(&closes, 2, 4), expected, "{name}");
        }
    }

    #[test]
    fn high_regime_when_recent_moves_dominate() {
        // Long window mostly flat, short window volatile.
        let closes = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.01, 2.0, 1.0];
        let got = regimes(&closes, 2, 8);
        assert_eq!(got, vec![("high", 8)]);
    }
}
