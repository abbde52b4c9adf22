//! Waves: a zigzag over the moving average of candle closes, reporting each swing of at
//! least `amplitude` percent once the reversal that confirms it happens.
//!
//! The rules are exact (see docs/detectors.md): thresholds are inclusive, `t` is the
//! candle's bucket start, and the wave is emitted on the candle that confirms it, with the
//! seq and ts of the trade whose arrival closed that candle.

use std::collections::VecDeque;

use super::{Args, slot, tf};
use crate::engine::{Bar, Detector, Signal, SignalBody, View};
use crate::model::{Nanos, Record};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Minimum swing, percent.
    pub amplitude: f64,
    pub timeframe_s: u32,
    /// Moving-average period, in candles; 1 = raw closes.
    pub ma: usize,
}

impl Params {
    pub(crate) fn from_args(args: &mut Args) -> Result<Params, String> {
        let p = Params {
            amplitude: args.f64("amplitude", 0.5)?,
            timeframe_s: args.timeframe("timeframe", "1m")?,
            ma: args.usize("ma", 1)?,
        };
        if p.amplitude <= 0.0 {
            return Err(format!("amplitude must be > 0 (percent), got {}", p.amplitude));
        }
        if p.ma == 0 {
            return Err("ma must be at least 1".into());
        }
        Ok(p)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    None,
    Up,
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    t: Nanos,
    v: f64,
}

/// One instrument's zigzag state.
#[derive(Debug, Default)]
struct State {
    closes: VecDeque<f64>,
    zig: Option<Zigzag>,
}

#[derive(Debug)]
struct Zigzag {
    dir: Dir,
    pivot: Point,
    extreme: Point,
    hi: Point,
    lo: Point,
}

pub struct Waves {
    params: Params,
    a: f64,
    states: Vec<State>,
}

impl Waves {
    pub fn new(params: Params) -> Self {
        Waves { params, a: params.amplitude / 100.0, states: Vec::new() }
    }
}

/// A confirmed wave: direction, start and end.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Wave {
    dir: Dir,
    start: Point,
    end: Point,
}

impl Zigzag {
    fn start(p: Point) -> Zigzag {
        Zigzag { dir: Dir::None, pivot: p, extreme: p, hi: p, lo: p }
    }

    /// Feeds one smoothed value; returns the wave it confirms, if any.
    fn step(&mut self, p: Point, a: f64) -> Option<Wave> {
        match self.dir {
            Dir::None => {
                if p.v > self.hi.v {
                    self.hi = p;
                }
                if p.v < self.lo.v {
                    self.lo = p;
                }
                if p.v <= self.hi.v * (1.0 - a) {
                    self.pivot = self.hi;
                    self.dir = Dir::Down;
                    self.extreme = p;
                } else if p.v >= self.lo.v * (1.0 + a) {
                    self.pivot = self.lo;
                    self.dir = Dir::Up;
                    self.extreme = p;
                }
                None
            }
            Dir::Up => {
                if p.v > self.extreme.v {
                    self.extreme = p;
                    None
                } else if p.v <= self.extreme.v * (1.0 - a) {
                    let wave = Wave { dir: Dir::Up, start: self.pivot, end: self.extreme };
                    self.pivot = self.extreme;
                    self.dir = Dir::Down;
                    self.extreme = p;
                    Some(wave)
                } else {
                    None
                }
            }
            Dir::Down => {
                if p.v < self.extreme.v {
                    self.extreme = p;
                    None
                } else if p.v >= self.extreme.v * (1.0 + a) {
                    let wave = Wave { dir: Dir::Down, start: self.pivot, end: self.extreme };
                    self.pivot = self.extreme;
                    self.dir = Dir::Up;
                    self.extreme = p;
                    Some(wave)
                } else {
                    None
                }
            }
        }
    }
}

impl Detector for Waves {
    fn name(&self) -> &'static str {
        "waves"
    }

    fn params(&self) -> String {
        format!("amplitude={},timeframe={},ma={}", self.params.amplitude, tf(self.params.timeframe_s), self.params.ma)
    }

    fn timeframe_s(&self) -> Option<u32> {
        Some(self.params.timeframe_s)
    }

    fn on_candle(&mut self, _view: &View, bar: &Bar, cause: &Record, out: &mut Vec<Signal>) {
        let ma = self.params.ma;
        let state = slot(&mut self.states, bar.instrument);
        state.closes.push_back(bar.close.to_f64());
        if state.closes.len() > ma {
            state.closes.pop_front();
        }
        if state.closes.len() < ma {
            return;
        }
        // Summed oldest to newest every time, so no rolling error accumulates.
        let v = state.closes.iter().sum::<f64>() / ma as f64;
        let point = Point { t: bar.open_time, v };
        let Some(zig) = &mut state.zig else {
            state.zig = Some(Zigzag::start(point));
            return;
        };
        if let Some(wave) = zig.step(point, self.a) {
            out.push(Signal {
                seq: cause.seq,
                ts: cause.ts_exchange,
                exchange: cause.exchange,
                instrument: bar.instrument,
                detector: "waves",
                params: self.params(),
                body: SignalBody::Wave {
                    dir: if wave.dir == Dir::Up { "up" } else { "down" },
                    start_ts: wave.start.t,
                    start_price: wave.start.v,
                    end_ts: wave.end.t,
                    end_price: wave.end.v,
                    change_pct: (wave.end.v / wave.start.v - 1.0) * 100.0,
                },
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the zigzag over values at t = 0, 1, 2, ... and lists (dir, start t, end t).
    fn run(values: &[f64], amplitude_pct: f64) -> Vec<(&'static str, u64, u64)> {
        let mut zig: Option<Zigzag> = None;
        let mut out = Vec::new();
        for (t, v) in values.iter().enumerate() {
            let p = Point { t: t as u64, v: *v };
            match &mut zig {
                None => zig = Some(Zigzag::start(p)),
                Some(z) => {
                    if let Some(w) = z.step(p, amplitude_pct / 100.0) {
                        out.push((if w.dir == Dir::Up { "up" } else { "down" }, w.start.t, w.end.t));
                    }
                }
            }
        }
        out
    }

    /// Worked by hand with a = 25%, whose thresholds (×1.25, ×0.75) are exact in f64, so the
    /// ties below really are ties.
    #[test]
    fn hand_worked_table() {
        let cases: [(&str, &[f64], Vec<(&str, u64, u64)>); 6] = [
            ("no move, no wave", &[100.0, 110.0, 90.0, 100.0], vec![]),
            // dir=none → up at t1 (125 ≥ 100·1.25, inclusive), extreme 160 at t2,
            // 120 ≤ 160·0.75 confirms (inclusive).
            ("up then exact reversal threshold", &[100.0, 125.0, 160.0, 120.0], vec![("up", 0, 2)]),
            ("reversal short of threshold", &[100.0, 125.0, 160.0, 120.01], vec![]),
            // dir=none → down at t2 from hi 100 (75 ≤ 100·0.75); lo 60 at t3; 75 = 60·1.25 confirms.
            ("down start from the high", &[100.0, 90.0, 75.0, 60.0, 75.0], vec![("down", 0, 3)]),
            (
                "alternation",
                &[100.0, 125.0, 160.0, 130.0, 120.0, 140.0, 150.0, 110.0],
                vec![("up", 0, 2), ("down", 2, 4), ("up", 4, 6)],
            ),
            // hi moves to 120 at t1 before any direction: the down wave starts there.
            ("hi tracked while dir=none", &[100.0, 120.0, 90.0, 112.5], vec![("down", 1, 2)]),
        ];
        for (name, values, expected) in cases {
            assert_eq!(run(values, 25.0), expected, "{name}");
        }
    }

    #[test]
    fn moving_average_delays_the_first_value() {
        use crate::engine::View;
        use crate::model::*;
        let params = Params { amplitude: 25.0, timeframe_s: 1, ma: 2 };
        let mut det = Waves::new(params);
        let symbols = SymbolTable::new();
        let view = View::for_tests(&symbols);
        let closes = [100.0, 100.0, 140.0, 180.0, 160.0, 100.0, 80.0];
        let mut out = Vec::new();
        for (i, c) in closes.iter().enumerate() {
            let price = Decimal::new((*c as i128) * 100, 2).unwrap();
            let bar = Bar {
                instrument: InstrumentId(0),
                timeframe_s: 1,
                open_time: i as u64,
                open: price,
                high: price,
                low: price,
                close: price,
                volume: Decimal::ZERO,
                quote_volume: None,
                trades: 0,
                flat: false,
            };
            let cause = Record {
                seq: i as u64,
                ts_exchange: i as u64,
                ts_recv: i as u64,
                exchange: Exchange::Binance,
                instrument: InstrumentId(0),
                event: Event::Status(Status::Resync { stream: String::new() }),
            };
            det.on_candle(&view, &bar, &cause, &mut out);
        }
        // v = [-, 100, 120, 160, 170, 130, 90]: v exists from t1; up at t3 (160 ≥ 125) from
        // the low at t1; extreme 170 at t4; 130 > 127.5 holds; 90 ≤ 170·0.75 confirms at t6.
        assert_eq!(out.len(), 1);
        let SignalBody::Wave { dir, start_ts, end_ts, start_price, end_price, .. } = out[0].body else { panic!() };
        assert_eq!((dir, start_ts, end_ts, start_price, end_price), ("up", 1, 4, 100.0, 170.0));
        assert_eq!(out[0].seq, 6);
    }
}
