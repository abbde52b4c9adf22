//! The alert backtest behind `tapedeck alerts-report`: what alerting would have done over a
//! recording. Alerts per day and per symbol, the largest burst, and the queue run in event
//! time under the same pacing and coalescing as live sending ([`Limiter`], [`Waiting`]), so
//! its delays are what a chat would have seen, deterministically.
//!
//! It owns the simulation and the report's two renderings (text, JSON); it must not read a
//! clock or send anything. Sending is modelled as instantaneous: delays are queueing delays.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::time::Duration;

use serde::Serialize;

use super::queue::{Entry, Limiter, Pacing, Waiting};
use super::{Alert, PipelineCounts};
use crate::model::Nanos;
use crate::model::time::format_utc;

const MINUTE_NS: Nanos = 60_000_000_000;

/// The queue run in event time.
#[derive(Debug, Clone)]
pub struct Simulator {
    limiter: Limiter,
    waiting: Waiting<Nanos>,
    clock: Nanos,
    /// Per alert: when its message went out minus when it arrived.
    delays: Vec<Nanos>,
    messages: u64,
    digests: u64,
    coalesced: u64,
}

impl Simulator {
    pub fn new(pacing: Pacing, capacity: usize) -> Simulator {
        Simulator {
            limiter: Limiter::new(pacing),
            waiting: Waiting::new(capacity),
            clock: 0,
            delays: Vec::new(),
            messages: 0,
            digests: 0,
            coalesced: 0,
        }
    }

    /// An alert arrives at its event time (or at the latest arrival so far, if merged
    /// recordings put it slightly out of order). What could be sent before it is sent first.
    pub fn push(&mut self, alert: &Alert) {
        let at = self.clock.max(alert.ts);
        self.clock = at;
        self.deliver_until(at);
        self.coalesced += self.waiting.push(alert.clone(), at);
    }

    /// Sends every message whose turn comes at or before `now`.
    fn deliver_until(&mut self, now: Nanos) {
        while let Some(front) = self.waiting.front() {
            let ready = match front {
                Entry::Alert { at, .. } => *at,
                Entry::Digest(d) => d.ready,
                Entry::Reply { .. } => self.clock,
            };
            let due = self.limiter.earliest(ready);
            if due > now {
                break;
            }
            let Some(entry) = self.waiting.pop() else { break };
            self.limiter.record(due);
            self.messages += 1;
            match entry {
                Entry::Alert { at, .. } => self.delays.push(due - at),
                Entry::Digest(d) => {
                    self.digests += 1;
                    self.delays.extend(d.arrivals.iter().map(|a| due - a));
                }
                Entry::Reply { .. } => {}
            }
        }
    }

    /// Sends what is left and returns the queue's figures.
    pub fn finish(mut self) -> QueueFigures {
        self.deliver_until(Nanos::MAX);
        let mut delays = self.delays;
        delays.sort_unstable();
        QueueFigures {
            messages: self.messages,
            digests: self.digests,
            coalesced: self.coalesced,
            delayed: delays.iter().filter(|d| **d > 0).count() as u64,
            delay_ms: Delays {
                median: ms(percentile(&delays, 50.0)),
                p99: ms(percentile(&delays, 99.0)),
                max: ms(delays.last().copied().unwrap_or(0)),
            },
        }
    }
}

fn ms(ns: Nanos) -> f64 {
    ns as f64 / 1e6
}

/// Nearest-rank percentile of sorted values (0 when empty).
pub fn percentile(sorted: &[Nanos], p: f64) -> Nanos {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// What the simulated queue did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueFigures {
    /// Messages a chat would have received, digests included.
    pub messages: u64,
    pub digests: u64,
    /// Alerts that would have gone out inside a digest.
    pub coalesced: u64,
    /// Alerts that would have waited for their turn at all.
    pub delayed: u64,
    /// How long alerts would have waited in the queue (event time, nearest-rank).
    pub delay_ms: Delays,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delays {
    pub median: f64,
    pub p99: f64,
    pub max: f64,
}

/// The most alerts within one minute of event time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Burst {
    pub alerts: u64,
    /// The window: from its first alert, one minute long.
    pub window_start: String,
    pub window_end: String,
    pub last_alert: String,
}

/// Finds the densest one-minute window; the earliest wins a tie.
pub fn largest_burst(ts: &[Nanos]) -> Option<Burst> {
    let mut sorted = ts.to_vec();
    sorted.sort_unstable();
    let mut best: Option<(usize, usize)> = None;
    let mut j = 0;
    for i in 0..sorted.len() {
        j = j.max(i);
        while j < sorted.len() && sorted[j] < sorted[i].saturating_add(MINUTE_NS) {
            j += 1;
        }
        if best.is_none_or(|(bi, bj)| j - i > bj - bi) {
            best = Some((i, j));
        }
    }
    best.map(|(i, j)| Burst {
        alerts: (j - i) as u64,
        window_start: format_utc(sorted[i]),
        window_end: format_utc(sorted[i] + MINUTE_NS),
        last_alert: format_utc(sorted[j - 1]),
    })
}

/// Alerts of one symbol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SymbolRow {
    pub exchange: String,
    pub symbol: String,
    pub alerts: u64,
    pub per_detector: BTreeMap<String, u64>,
}

/// The pacing the simulation used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PacingInfo {
    /// `private` or `group`.
    pub chat: String,
    pub per_chat_interval_ms: u64,
    /// Only for groups.
    pub per_minute: Option<u32>,
    pub queue_capacity: usize,
}

/// The whole report; its JSON is the `--json` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub recordings: Vec<String>,
    pub detectors: Vec<String>,
    pub cooldown_ms: u64,
    #[serde(flatten)]
    pub counts: PipelineCounts,
    pub pacing: PacingInfo,
    pub per_day: BTreeMap<String, u64>,
    pub per_symbol: Vec<SymbolRow>,
    pub largest_burst: Option<Burst>,
    pub queue: QueueFigures,
}

/// Everything the report needs besides the alerts.
pub struct Inputs {
    pub recordings: Vec<String>,
    pub detectors: Vec<String>,
    pub cooldown: Duration,
    pub counts: PipelineCounts,
    pub pacing: Pacing,
    pub capacity: usize,
}

/// Builds the report from the alerts a replay formed, in the order it formed them.
pub fn build(alerts: &[Alert], inputs: Inputs) -> Report {
    let mut per_day: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_symbol: BTreeMap<(String, String), SymbolRow> = BTreeMap::new();
    let mut sim = Simulator::new(inputs.pacing, inputs.capacity);
    for alert in alerts {
        *per_day.entry(format_utc(alert.ts)[..10].to_string()).or_default() += 1;
        let row = per_symbol.entry((alert.exchange.to_string(), alert.symbol.clone())).or_insert_with(|| SymbolRow {
            exchange: alert.exchange.to_string(),
            symbol: alert.symbol.clone(),
            alerts: 0,
            per_detector: BTreeMap::new(),
        });
        row.alerts += 1;
        *row.per_detector.entry(alert.detector.clone()).or_default() += 1;
        sim.push(alert);
    }
    let ts: Vec<Nanos> = alerts.iter().map(|a| a.ts).collect();
    Report {
        recordings: inputs.recordings,
        detectors: inputs.detectors,
        cooldown_ms: inputs.cooldown.as_millis() as u64,
        counts: inputs.counts,
        pacing: PacingInfo {
            chat: if inputs.pacing.per_minute.is_some() { "group" } else { "private" }.into(),
            per_chat_interval_ms: inputs.pacing.per_chat.as_millis() as u64,
            per_minute: inputs.pacing.per_minute,
            queue_capacity: inputs.capacity,
        },
        per_day,
        per_symbol: per_symbol.into_values().collect(),
        largest_burst: largest_burst(&ts),
        queue: sim.finish(),
    }
}

/// `5m`, `90s`, `250ms`, `0`.
fn duration_text(ms: u64) -> String {
    match ms {
        0 => "0".into(),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

/// The text table.
pub fn render_text(report: &Report) -> String {
    let c = &report.counts;
    let p = &report.pacing;
    let mut out = String::new();
    let _ = writeln!(out, "recordings: {}", report.recordings.join(", "));
    let _ = writeln!(out, "detectors:  {}", report.detectors.join(" "));
    let cooldown = match report.cooldown_ms {
        0 => "no cooldown".to_string(),
        ms => format!("{} within the {} cooldown", c.suppressed, duration_text(ms)),
    };
    let _ = writeln!(out, "signals {} -> alerts {} ({} filtered out, {cooldown})", c.signals, c.alerts, c.filtered);
    let limit = match p.per_minute {
        Some(n) => format!(", at most {n} per minute"),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "pacing:     {} chat, one message per {}{limit}, queue of {} (simulated in event time)",
        p.chat,
        duration_text(p.per_chat_interval_ms),
        p.queue_capacity
    );
    out.push('\n');
    let _ = writeln!(out, "{:<12} {:>8}", "day", "alerts");
    for (day, n) in &report.per_day {
        let _ = writeln!(out, "{day:<12} {n:>8}");
    }
    out.push('\n');
    let detectors: BTreeSet<&String> = report.per_symbol.iter().flat_map(|r| r.per_detector.keys()).collect();
    let sym_width = report.per_symbol.iter().map(|r| r.symbol.len()).max().unwrap_or(0).max(6);
    let _ = write!(out, "{:<9} {:<sym_width$} {:>8}", "exchange", "symbol", "alerts");
    for d in &detectors {
        let _ = write!(out, " {:>w$}", d, w = d.len().max(6));
    }
    out.push('\n');
    for row in &report.per_symbol {
        let _ = write!(out, "{:<9} {:<sym_width$} {:>8}", row.exchange, row.symbol, row.alerts);
        for d in &detectors {
            let _ = write!(out, " {:>w$}", row.per_detector.get(*d).copied().unwrap_or(0), w = d.len().max(6));
        }
        out.push('\n');
    }
    out.push('\n');
    match &report.largest_burst {
        Some(b) => {
            let _ = writeln!(
                out,
                "largest burst: {} alerts within one minute, {} .. {} (last alert {})",
                b.alerts, b.window_start, b.window_end, b.last_alert
            );
        }
        None => out.push_str("largest burst: no alerts\n"),
    }
    let q = &report.queue;
    let _ = writeln!(
        out,
        "messages: {} ({} digests); alerts coalesced into digests: {}; alerts delayed by pacing: {}",
        q.messages, q.digests, q.coalesced, q.delayed
    );
    let _ = writeln!(
        out,
        "queue delay: median {:.3} s, p99 {:.3} s, max {:.3} s",
        q.delay_ms.median / 1000.0,
        q.delay_ms.p99 / 1000.0,
        q.delay_ms.max / 1000.0
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;
    const MS: Nanos = 1_000_000;

    fn alert(symbol: &str, ts: Nanos) -> Alert {
        super::super::test_alert(symbol, ts)
    }

    fn private(per_chat_ms: u64) -> Pacing {
        Pacing { per_chat: Duration::from_millis(per_chat_ms), per_minute: None }
    }

    fn run(pacing: Pacing, capacity: usize, ts: &[Nanos]) -> QueueFigures {
        let mut sim = Simulator::new(pacing, capacity);
        for (i, t) in ts.iter().enumerate() {
            sim.push(&alert(&format!("S{i}/USDT"), *t));
        }
        sim.finish()
    }

    #[test]
    fn rate_limit_simulation() {
        let group = Pacing { per_chat: Duration::from_secs(1), per_minute: Some(20) };
        let burst_100: Vec<Nanos> = (0..100).map(|i| 1000 * S + i * 10 * MS).collect();
        // (name, pacing, capacity, arrival times, messages, digests, coalesced, delayed, median ms, p99 ms, max ms)
        let cases: [(&str, Pacing, usize, Vec<Nanos>, u64, u64, u64, u64, f64, f64, f64); 7] = [
            ("spread out", private(1000), 64, vec![0, 5 * S, 10 * S], 3, 0, 0, 0, 0.0, 0.0, 0.0),
            ("three at once", private(1000), 64, vec![S, S, S], 3, 0, 0, 2, 1000.0, 2000.0, 2000.0),
            ("just inside the interval", private(1000), 64, vec![0, 999 * MS], 2, 0, 0, 1, 0.0, 1.0, 1.0),
            ("exactly on the interval", private(1000), 64, vec![0, S], 2, 0, 0, 0, 0.0, 0.0, 0.0),
            // 25 at once in a group: 20 in the first minute (one a second), the 21st waits for
            // the first minute's first send to leave the window: t = 60 s.
            ("group per-minute cap", group, 64, vec![0; 25], 25, 0, 0, 24, 12000.0, 64000.0, 64000.0),
            // 100 in one second, queue of 8: the first goes at once; while it holds the chat's
            // one-second slot the queue fills and folds into one digest (alerts 1..=97), and
            // the two that arrive after the last fold wait their turn behind it.
            ("burst of 100", private(1000), 8, burst_100.clone(), 4, 1, 97, 99, 510.0, 1020.0, 2010.0),
            ("no pacing", Pacing::NONE, 8, burst_100, 100, 0, 0, 0, 0.0, 0.0, 0.0),
        ];
        for (name, pacing, capacity, ts, messages, digests, coalesced, delayed, median, p99, max) in cases {
            let q = run(pacing, capacity, &ts);
            assert_eq!(
                (q.messages, q.digests, q.coalesced, q.delayed),
                (messages, digests, coalesced, delayed),
                "{name}: {q:?}"
            );
            assert_eq!((q.delay_ms.median, q.delay_ms.p99, q.delay_ms.max), (median, p99, max), "{name}: {q:?}");
        }
    }

    #[test]
    fn every_alert_is_accounted_for_once() {
        for capacity in [1, 2, 5, 64] {
            let ts: Vec<Nanos> = (0..500).map(|i| i * 37 * MS).collect();
            let mut sim = Simulator::new(private(1000), capacity);
            for (i, t) in ts.iter().enumerate() {
                sim.push(&alert(&format!("S{}/USDT", i % 7), *t));
            }
            let delays = sim.delays.len();
            let q = sim.finish();
            assert!(delays <= 500);
            assert!(q.messages <= 500, "capacity {capacity}");
            // Individually sent + coalesced = all.
            assert_eq!(q.messages - q.digests + q.coalesced, 500, "capacity {capacity}: {q:?}");
        }
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<Nanos> = (1..=100).collect();
        let cases = [(50.0, 50), (99.0, 99), (100.0, 100), (0.0, 1), (1.0, 1)];
        for (p, want) in cases {
            assert_eq!(percentile(&v, p), want, "p{p}");
        }
        assert_eq!(percentile(&[], 50.0), 0);
        assert_eq!(percentile(&[7], 99.0), 7);
    }

    #[test]
    fn bursts() {
        let m = MINUTE_NS;
        let cases: [(Vec<Nanos>, Option<(u64, Nanos)>); 5] = [
            (vec![], None),
            (vec![5 * S], Some((1, 5 * S))),
            // Windows are half-open: an alert exactly a minute later starts a new one.
            (vec![0, m], Some((1, 0))),
            (vec![0, 10 * S, 59 * S, 61 * S, 62 * S, 63 * S, 71 * S], Some((5, 10 * S))),
            (vec![3 * m, 0, m + S, m + 2 * S], Some((2, m + S))),
        ];
        for (ts, want) in cases {
            let got = largest_burst(&ts);
            let want = want.map(|(n, start)| (n, format_utc(start)));
            assert_eq!(got.map(|b| (b.alerts, b.window_start)), want, "{ts:?}");
        }
    }

    #[test]
    fn report_tables() {
        let alerts = vec![alert("BTC/USDT", 1_723_161_460 * S), alert("BTC/USDT", 1_723_161_460 * S + 500 * MS)];
        let report = build(
            &alerts,
            Inputs {
                recordings: vec!["rec".into()],
                detectors: vec!["volume:timeframe=10s".into()],
                cooldown: Duration::ZERO,
                counts: PipelineCounts { signals: 2, alerts: 2, ..PipelineCounts::default() },
                pacing: private(1000),
                capacity: 64,
            },
        );
        let text = render_text(&report);
        assert!(text.contains("2024-08-08          2\n"), "{text}");
        assert!(text.contains("binance   BTC/USDT        2      2\n"), "{text}");
        assert!(text.contains("queue delay: median 0.000 s, p99 0.500 s, max 0.500 s"), "{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["alerts"], 2);
        assert_eq!(json["queue"]["delayed"], 1);
        assert_eq!(json["largest_burst"]["alerts"], 2);
    }
}
