//! `tapedeck bench`: per-record engine latency with HDR histograms, per detector and in
//! total, plus the capture latency already in a recording (ts_recv − ts_exchange).
//!
//! The engine never reads the clock: this module times calls into it from outside. A
//! detector's own cost is measured by running an engine with that detector alone, so the
//! figures include the engine's books and candles, which every detector needs anyway.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::detect::DetectorSpec;
use crate::engine::Engine;
use crate::model::{Event, EventKind, Record, SymbolTable};

/// Percentiles of one histogram, in ns unless named otherwise.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub p9999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        Percentiles {
            count: h.len(),
            min: h.min(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            p9999: h.value_at_quantile(0.9999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// One measured configuration: all detectors (`total`) or one detector alone.
pub struct Measured {
    pub name: String,
    pub histogram: Histogram<u64>,
    /// The same times split by the record's event kind, indexed as `EventKind::ALL`.
    pub by_kind: Vec<Histogram<u64>>,
    /// Records per second over untimed passes of the same configuration.
    pub events_per_second: f64,
}

/// The report `tapedeck bench --json` prints.
#[derive(Debug, Serialize)]
pub struct Report {
    pub records: u64,
    pub iterations: u32,
    pub warmup: u64,
    /// Engine time per record, ns: every detector together, then each alone.
    pub latency: BTreeMap<String, Percentiles>,
    /// `total`'s engine time per record split by event kind (`book_delta`, `quote`, ...), ns:
    /// where the tail comes from.
    pub latency_by_kind: BTreeMap<String, Percentiles>,
    pub events_per_second: BTreeMap<String, f64>,
    /// Cost of one `Instant::now()` pair plus `Histogram::record`, ns.
    pub overhead: Percentiles,
    /// ts_recv − ts_exchange per `exchange/kind`, µs, for records where it is not negative.
    pub recording_latency_us: BTreeMap<String, Percentiles>,
    /// Records per `exchange/kind` whose ts_recv is before ts_exchange (clock skew at capture).
    pub recording_latency_negative: BTreeMap<String, u64>,
}

/// Percentiles per event kind of `m`, for the kinds it saw.
pub fn by_kind(m: &Measured) -> BTreeMap<String, Percentiles> {
    EventKind::ALL
        .iter()
        .zip(&m.by_kind)
        .filter(|(_, h)| !h.is_empty())
        .map(|(kind, h)| (kind.as_str().to_string(), Percentiles::of(h)))
        .collect()
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid bounds")
}

/// Times `engine.on_record` per record over `iterations` passes, skipping the first `warmup`
/// records of each pass, and measures untimed throughput separately.
pub fn measure(
    name: &str,
    symbols: &SymbolTable,
    specs: &[DetectorSpec],
    records: &[Record],
    warmup: usize,
    iterations: u32,
) -> Measured {
    measure_with(name, records, warmup, iterations, &|| {
        Engine::new(symbols.clone(), specs.iter().map(|s| s.build()).collect())
    })
}

/// As `measure`, with engines (detectors, strategies) built by `engine`, once per pass.
pub fn measure_with(
    name: &str,
    records: &[Record],
    warmup: usize,
    iterations: u32,
    engine: &dyn Fn() -> Engine,
) -> Measured {
    let mut h = histogram();
    let mut by_kind: Vec<Histogram<u64>> = EventKind::ALL.iter().map(|_| histogram()).collect();
    for _ in 0..iterations {
        let mut engine = engine();
        for (i, r) in records.iter().enumerate() {
            let start = Instant::now();
            std::hint::black_box(engine.on_record(r));
            let ns = start.elapsed().as_nanos() as u64;
            if i >= warmup {
                h.saturating_record(ns.max(1));
                by_kind[r.event.kind() as usize].saturating_record(ns.max(1));
            }
        }
    }
    let started = Instant::now();
    for _ in 0..iterations {
        let mut engine = engine();
        for r in records {
            std::hint::black_box(engine.on_record(r));
        }
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    Measured {
        name: name.to_string(),
        histogram: h,
        by_kind,
        events_per_second: records.len() as f64 * iterations as f64 / secs,
    }
}

/// The measurement's own cost: an empty timed region, recorded the same way.
pub fn overhead(samples: usize) -> Histogram<u64> {
    let mut h = histogram();
    let mut scratch = histogram();
    for _ in 0..samples {
        let outer = Instant::now();
        let start = Instant::now();
        let ns = start.elapsed().as_nanos() as u64;
        scratch.saturating_record(ns.max(1));
        h.saturating_record((outer.elapsed().as_nanos() as u64).max(1));
    }
    h
}

/// ts_recv − ts_exchange per `exchange/kind` (µs), and how many records had it negative.
pub fn recording_latency(records: &[Record]) -> (BTreeMap<String, Histogram<u64>>, BTreeMap<String, u64>) {
    let mut hists: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    let mut negative: BTreeMap<String, u64> = BTreeMap::new();
    for r in records.iter().filter(|r| !matches!(r.event, Event::Status(_))) {
        let key = format!("{}/{}", r.exchange, r.event.kind().as_str());
        match r.ts_recv.checked_sub(r.ts_exchange) {
            Some(ns) => hists.entry(key).or_insert_with(histogram).saturating_record((ns / 1000).max(1)),
            None => *negative.entry(key).or_default() += 1,
        }
    }
    (hists, negative)
}

/// Writes histograms as an HdrHistogram interval log (.hlog), one tagged interval each.
///
/// # Errors
/// When writing or encoding fails.
pub fn write_hlog(path: &std::path::Path, measured: &[Measured], wall: Duration) -> std::io::Result<()> {
    use hdrhistogram::serialization::V2Serializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut serializer = V2Serializer::new();
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment("tapedeck bench: engine time per record, ns; one interval per configuration")
        .with_base_time(std::time::UNIX_EPOCH)
        .begin_log_with(&mut file, &mut serializer)?;
    for m in measured {
        let tag = Tag::new(&m.name);
        writer
            .write_histogram(&m.histogram, Duration::ZERO, wall, tag)
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    }
    drop(writer);
    std::io::Write::flush(&mut file)
}

/// Latency histograms kept by `live`: frame read (the record's `ts_recv`) to signal emitted,
/// and signal emitted to alert enqueued, both in ns of wall time. The engine never sees
/// them; the live command's engine thread records around its calls.
#[derive(Debug, Clone)]
pub struct LiveLatency {
    pub read_to_signal: Histogram<u64>,
    pub signal_to_alert: Histogram<u64>,
    /// Signals whose record was stamped after the moment they were emitted (clock steps).
    pub clock_steps: u64,
}

/// `live`'s latency report, in ns.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LiveLatencyReport {
    pub read_to_signal: Percentiles,
    pub signal_to_alert: Percentiles,
    pub clock_steps: u64,
}

impl Default for LiveLatency {
    fn default() -> Self {
        LiveLatency { read_to_signal: histogram(), signal_to_alert: histogram(), clock_steps: 0 }
    }
}

impl LiveLatency {
    /// A signal caused by a record read at `ts_recv` was emitted at `now` (both ns since the epoch).
    pub fn signal(&mut self, ts_recv: u64, now: u64) {
        match now.checked_sub(ts_recv) {
            Some(ns) => self.read_to_signal.saturating_record(ns.max(1)),
            None => self.clock_steps += 1,
        }
    }

    /// Handing one signal to the alert queue took `elapsed`.
    pub fn alert(&mut self, elapsed: Duration) {
        self.signal_to_alert.saturating_record((elapsed.as_nanos() as u64).max(1));
    }

    pub fn report(&self) -> LiveLatencyReport {
        LiveLatencyReport {
            read_to_signal: Percentiles::of(&self.read_to_signal),
            signal_to_alert: Percentiles::of(&self.signal_to_alert),
            clock_steps: self.clock_steps,
        }
    }

    /// Two lines for the terminal, in µs.
    pub fn render(&self) -> String {
        let line = |name: &str, h: &Histogram<u64>| {
            if h.is_empty() {
                return format!("{name:<22} no samples");
            }
            let us = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
            format!(
                "{name:<22} n {:>8}  p50 {:>9.1} µs  p90 {:>9.1} µs  p99 {:>9.1} µs  p99.9 {:>9.1} µs  max {:>9.1} µs",
                h.len(),
                us(0.5),
                us(0.9),
                us(0.99),
                us(0.999),
                h.max() as f64 / 1e3
            )
        };
        format!(
            "{}\n{}\n",
            line("frame read → signal", &self.read_to_signal),
            line("signal → alert queued", &self.signal_to_alert)
        )
    }
}

#[cfg(test)]
mod live_tests {
    use super::*;

    /// `measure_with` files times by `kind as usize` and names them from `EventKind::ALL`.
    #[test]
    fn event_kinds_index_their_own_slot() {
        for (i, kind) in EventKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, i, "{kind:?}");
        }
    }

    #[test]
    fn live_latency_counts_samples_and_clock_steps() {
        let mut l = LiveLatency::default();
        l.signal(1_000, 251_000);
        l.signal(1_000, 11_000);
        l.signal(5_000, 4_000);
        l.alert(Duration::from_nanos(700));
        let r = l.report();
        assert_eq!((r.read_to_signal.count, r.signal_to_alert.count, r.clock_steps), (2, 1, 1));
        assert!(r.read_to_signal.max >= 249_000 && r.read_to_signal.min <= 10_010, "{r:?}");
        assert!(l.render().contains("frame read → signal"));
        assert!(LiveLatency::default().render().contains("no samples"));
    }
}
