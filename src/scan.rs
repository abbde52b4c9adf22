//! Cross-pair scan: the detectors over every instrument of a record stream, summarised once
//! per bucket as the instruments with the highest volume ratio and the latest waves.
//!
//! [`Scanner`] owns an [`Engine`] and keeps, per instrument (in `Vec`s indexed by instrument
//! id), the volume ratio of its latest closed candle and its most recent wave. A bucket (of
//! the smallest detector timeframe, aligned to the epoch) closes when a record with a later
//! `ts_recv` arrives, or when the input ends; its [`Snapshot`] is taken before that record
//! reaches the engine. Buckets no record arrived in are skipped: nothing changed in them.
//! Ordering is total (ties by symbol, then exchange), so a scan of the same input is
//! byte-identical every time. This module does no IO and reads no clock: the CLI paces,
//! prints and redraws.

use serde::Serialize;

use crate::detect::DetectorSpec;
use crate::detect::volume::Baseline;
use crate::engine::{Engine, SignalBody};
use crate::model::time::{format_timeframe, format_utc};
use crate::model::{Exchange, InstrumentId, NANOS_PER_SEC, Nanos, Record, SymbolTable};

/// Detectors `scan` runs when none are given.
pub const DEFAULT_DETECTORS: [&str; 2] = ["volume:timeframe=5m,ma=20,k=3", "waves:amplitude=2,timeframe=5m"];

/// Why a scan cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("no detectors: a scan needs at least one")]
    NoDetectors,
}

/// One bucket's summary; its JSON is the `scan --json` line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// Start of the bucket, ns.
    pub bucket_start: Nanos,
    /// `bucket_start` as RFC 3339 UTC.
    pub time: String,
    /// Highest latest-candle volume ratios first.
    pub top_volume: Vec<VolumeRow>,
    /// Each instrument's most recent wave, latest end first.
    pub recent_waves: Vec<WaveRow>,
}

/// An instrument's latest closed candle of the volume timeframe against its baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VolumeRow {
    pub symbol: String,
    pub exchange: Exchange,
    /// volume / baseline.
    pub ratio: f64,
    pub volume: f64,
    /// Mean volume of the previous `ma` candles, as the volume detector computes it.
    pub baseline: f64,
}

/// An instrument's most recent wave signal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WaveRow {
    pub symbol: String,
    pub exchange: Exchange,
    pub dir: &'static str,
    pub change_pct: f64,
    /// When the wave's extreme was, ns (its candle's bucket start).
    pub end_ts: Nanos,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct LatestVolume {
    ratio: f64,
    volume: f64,
    baseline: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct LatestWave {
    dir: &'static str,
    change_pct: f64,
    end_ts: Nanos,
}

/// The volume column follows the first `volume` detector: its timeframe and `ma`.
struct VolumeTrack {
    timeframe_s: u32,
    ma: usize,
    baselines: Vec<Baseline>,
    latest: Vec<Option<LatestVolume>>,
}

/// The engine plus the per-instrument state a scan reports.
pub struct Scanner {
    engine: Engine,
    bucket_s: u32,
    top: usize,
    volume: Option<VolumeTrack>,
    waves: Vec<Option<LatestWave>>,
    /// Start of the bucket records are arriving in, once one has.
    open: Option<Nanos>,
}

impl Scanner {
    /// A scan of instruments `symbols` with `specs`, listing at most `top` rows a table.
    ///
    /// # Errors
    /// When `specs` is empty.
    pub fn new(symbols: SymbolTable, specs: &[DetectorSpec], top: usize) -> Result<Scanner, ScanError> {
        let bucket_s = specs.iter().map(timeframe_s).min().ok_or(ScanError::NoDetectors)?;
        let volume = specs.iter().find_map(|s| match s {
            DetectorSpec::Volume(p) => {
                Some(VolumeTrack { timeframe_s: p.timeframe_s, ma: p.ma, baselines: Vec::new(), latest: Vec::new() })
            }
            _ => None,
        });
        let engine = Engine::new(symbols, specs.iter().map(DetectorSpec::build).collect());
        Ok(Scanner { engine, bucket_s, top, volume, waves: Vec::new(), open: None })
    }

    /// The bucket length, seconds: the smallest detector timeframe.
    pub fn bucket_s(&self) -> u32 {
        self.bucket_s
    }

    /// The volume column's timeframe (s) and `ma`, when a volume detector runs.
    pub fn volume_params(&self) -> Option<(u32, usize)> {
        self.volume.as_ref().map(|t| (t.timeframe_s, t.ma))
    }

    /// Adds an instrument met while scanning live (the capture interns as it subscribes).
    pub fn intern(&mut self, instrument: &crate::model::Instrument) {
        self.engine.symbols_mut().intern(instrument);
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Feeds one record; returns the snapshot of the bucket it closed, if it closed one.
    pub fn on_record(&mut self, record: &Record) -> Option<Snapshot> {
        let bucket_ns = self.bucket_s as u64 * NANOS_PER_SEC;
        let bucket = record.ts_recv - record.ts_recv % bucket_ns;
        let closed = match self.open {
            Some(open) if bucket > open => Some(self.snapshot(open)),
            _ => None,
        };
        // A record received slightly out of order (several connections) stays in the open
        // bucket rather than reopening a closed one.
        self.open = Some(self.open.map_or(bucket, |open| open.max(bucket)));
        for signal in self.engine.on_record(record) {
            if let SignalBody::Wave { dir, end_ts, change_pct, .. } = signal.body {
                *slot(&mut self.waves, signal.instrument) = Some(LatestWave { dir, change_pct, end_ts });
            }
        }
        if let Some(track) = &mut self.volume {
            for bar in self.engine.closed_bars().iter().filter(|b| b.timeframe_s == track.timeframe_s) {
                let volume = bar.volume.to_f64();
                let baseline = slot(&mut track.baselines, bar.instrument).push(track.ma, volume);
                // No ratio without a positive baseline; the previous one would be stale.
                *slot(&mut track.latest, bar.instrument) = baseline.filter(|b| *b > 0.0).map(|baseline| LatestVolume {
                    ratio: volume / baseline,
                    volume,
                    baseline,
                });
            }
        }
        closed
    }

    /// The end of the input closes the open bucket: nothing more can arrive in it.
    pub fn finish(&mut self) -> Option<Snapshot> {
        self.open.take().map(|open| self.snapshot(open))
    }

    /// The state now, labelled as bucket `bucket_start`.
    pub fn snapshot(&self, bucket_start: Nanos) -> Snapshot {
        let symbols = self.engine.symbols();
        let name = |id: usize| symbols.get(InstrumentId(id as u32)).map(|i| (i.symbol.clone(), i.exchange));
        let mut top_volume: Vec<VolumeRow> = self
            .volume
            .iter()
            .flat_map(|t| t.latest.iter().enumerate())
            .filter_map(|(id, latest)| {
                let latest = (*latest)?;
                let (symbol, exchange) = name(id)?;
                Some(VolumeRow {
                    symbol,
                    exchange,
                    ratio: latest.ratio,
                    volume: latest.volume,
                    baseline: latest.baseline,
                })
            })
            .collect();
        top_volume.sort_by(|a, b| {
            b.ratio.total_cmp(&a.ratio).then_with(|| a.symbol.cmp(&b.symbol)).then_with(|| a.exchange.cmp(&b.exchange))
        });
        top_volume.truncate(self.top);
        let mut recent_waves: Vec<WaveRow> = self
            .waves
            .iter()
            .enumerate()
            .filter_map(|(id, latest)| {
                let latest = (*latest)?;
                let (symbol, exchange) = name(id)?;
                Some(WaveRow {
                    symbol,
                    exchange,
                    dir: latest.dir,
                    change_pct: latest.change_pct,
                    end_ts: latest.end_ts,
                })
            })
            .collect();
        recent_waves.sort_by(|a, b| {
            b.end_ts.cmp(&a.end_ts).then_with(|| a.symbol.cmp(&b.symbol)).then_with(|| a.exchange.cmp(&b.exchange))
        });
        recent_waves.truncate(self.top);
        Snapshot { bucket_start, time: format_utc(bucket_start), top_volume, recent_waves }
    }
}

fn timeframe_s(spec: &DetectorSpec) -> u32 {
    match spec {
        DetectorSpec::Waves(p) => p.timeframe_s,
        DetectorSpec::Volatility(p) => p.timeframe_s,
        DetectorSpec::Volume(p) => p.timeframe_s,
    }
}

fn slot<T: Default>(states: &mut Vec<T>, id: InstrumentId) -> &mut T {
    let idx = id.0 as usize;
    if states.len() <= idx {
        states.resize_with(idx + 1, T::default);
    }
    &mut states[idx]
}

/// The snapshot as a terminal table (no escapes; the caller clears the screen), for a scan
/// of `bucket_s` buckets whose volume column has `volume` (timeframe s, ma).
pub fn render_table(snapshot: &Snapshot, bucket_s: u32, volume: Option<(u32, usize)>) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "tapedeck scan   bucket {} ({})", snapshot.time, format_timeframe(bucket_s));
    let _ = writeln!(out);
    match volume {
        Some((tf, ma)) => {
            let _ = writeln!(out, "top volume (latest {} candle / mean of the previous {ma})", format_timeframe(tf));
        }
        None => {
            let _ = writeln!(out, "top volume (no volume detector)");
        }
    }
    let _ = writeln!(
        out,
        "{:>3}  {:<12} {:<9} {:>9} {:>18} {:>18}",
        "#", "symbol", "exchange", "ratio", "volume", "baseline"
    );
    for (i, row) in snapshot.top_volume.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:>3}  {:<12} {:<9} {:>9.2} {:>18.4} {:>18.4}",
            i + 1,
            row.symbol,
            row.exchange.as_str(),
            row.ratio,
            row.volume,
            row.baseline
        );
    }
    if snapshot.top_volume.is_empty() {
        let _ = writeln!(out, "     (no baselines yet)");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "recent waves");
    let _ = writeln!(out, "{:>3}  {:<12} {:<9} {:<5} {:>9}  end", "#", "symbol", "exchange", "dir", "change");
    for (i, row) in snapshot.recent_waves.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:>3}  {:<12} {:<9} {:<5} {:>8.2}%  {}",
            i + 1,
            row.symbol,
            row.exchange.as_str(),
            row.dir,
            row.change_pct,
            format_utc(row.end_ts)
        );
    }
    if snapshot.recent_waves.is_empty() {
        let _ = writeln!(out, "     (no waves yet)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Candle, Decimal, Event, Instrument};

    const MIN: Nanos = 60 * NANOS_PER_SEC;

    fn symbols(names: &[&str]) -> SymbolTable {
        let mut table = SymbolTable::new();
        for name in names {
            let (base, quote) = name.split_once('/').unwrap();
            table.intern(&Instrument::new(Exchange::Bittrex, base, quote, name));
        }
        table
    }

    /// A closed 1m kline of instrument `id` opening at minute `minute`.
    fn candle(seq: u64, id: u32, minute: u64, close: &str, volume: &str) -> Record {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let ts = (minute + 1) * MIN - 1_000_000;
        Record {
            seq,
            ts_exchange: ts,
            ts_recv: ts,
            exchange: Exchange::Bittrex,
            instrument: InstrumentId(id),
            event: Event::Candle(Box::new(Candle {
                interval_s: 60,
                open_time: minute * MIN,
                open: d(close),
                high: d(close),
                low: d(close),
                close: d(close),
                volume: d(volume),
                quote_volume: None,
                trade_count: None,
                closed: true,
            })),
        }
    }

    fn specs(list: &[&str]) -> Vec<DetectorSpec> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn run(scanner: &mut Scanner, records: &[Record]) -> Vec<Snapshot> {
        let mut out: Vec<Snapshot> = records.iter().filter_map(|r| scanner.on_record(r)).collect();
        out.extend(scanner.finish());
        out
    }

    fn ratios(s: &Snapshot) -> Vec<(&str, f64)> {
        s.top_volume.iter().map(|r| (r.symbol.as_str(), r.ratio)).collect()
    }

    #[test]
    fn one_snapshot_per_bucket_with_records() {
        let mut scanner = Scanner::new(symbols(&["A/BTC"]), &specs(&["volume:timeframe=1m,ma=1"]), 10).unwrap();
        // Minutes 0, 1, then nothing until 5: the empty buckets 2..4 print nothing.
        let records = [candle(0, 0, 0, "1", "1"), candle(1, 0, 1, "1", "2"), candle(2, 0, 5, "1", "8")];
        let snaps = run(&mut scanner, &records);
        let starts: Vec<Nanos> = snaps.iter().map(|s| s.bucket_start / MIN).collect();
        assert_eq!(starts, vec![0, 1, 5], "the end of input closes the last bucket");
        assert_eq!(ratios(&snaps[0]), vec![], "no baseline before ma candles");
        assert_eq!(ratios(&snaps[1]), vec![("A/BTC", 2.0)]);
        assert_eq!(ratios(&snaps[2]), vec![("A/BTC", 4.0)], "baseline is the previous candle, 2");
        assert_eq!(snaps[1].time, "1970-01-01T00:01:00.000Z");
    }

    #[test]
    fn ranking_ties_by_symbol_and_top_n() {
        let names = ["C/BTC", "A/BTC", "B/BTC", "D/BTC"];
        let mut scanner = Scanner::new(symbols(&names), &specs(&["volume:timeframe=1m,ma=1"]), 3).unwrap();
        let mut records = Vec::new();
        // Minute 0: volume 1 everywhere; minute 1: C, A and B triple, D doubles.
        for (id, v) in [(0, "3"), (1, "3"), (2, "3"), (3, "2")] {
            records.push(candle(records.len() as u64, id, 0, "1", "1"));
            records.push(candle(records.len() as u64, id, 1, "1", v));
        }
        records.sort_by_key(|r| r.ts_recv);
        let snaps = run(&mut scanner, &records);
        let last = snaps.last().unwrap();
        assert_eq!(ratios(last), vec![("A/BTC", 3.0), ("B/BTC", 3.0), ("C/BTC", 3.0)]);
    }

    #[test]
    fn zero_baselines_drop_out_and_waves_keep_the_latest() {
        let spec = specs(&["volume:timeframe=1m,ma=1", "waves:amplitude=10,timeframe=1m"]);
        let mut scanner = Scanner::new(symbols(&["A/BTC", "B/BTC"]), &spec, 10).unwrap();
        // A: closes 100 → 120 → 100 → 130: an up wave (100→120) confirmed at minute 2, then a
        // down wave (120→100) confirmed at minute 3. B: volume 0 then 5: no ratio (baseline 0).
        let a = [("100", "1"), ("120", "1"), ("100", "1"), ("130", "1")];
        let mut records = Vec::new();
        for (minute, (close, volume)) in a.iter().enumerate() {
            records.push(candle(records.len() as u64, 0, minute as u64, close, volume));
            let b_volume = if minute == 0 { "0" } else { "5" };
            if minute < 2 {
                records.push(candle(records.len() as u64, 1, minute as u64, "1", b_volume));
            }
        }
        let snaps = run(&mut scanner, &records);
        let waves = |s: &Snapshot| -> Vec<(String, &str, Nanos)> {
            s.recent_waves.iter().map(|w| (w.symbol.clone(), w.dir, w.end_ts / MIN)).collect()
        };
        assert_eq!(ratios(&snaps[1]), vec![("A/BTC", 1.0)], "B's baseline is 0: no ratio");
        assert_eq!(waves(&snaps[1]), vec![]);
        assert_eq!(waves(&snaps[2]), vec![("A/BTC".to_string(), "up", 1)]);
        assert_eq!(waves(&snaps[3]), vec![("A/BTC".to_string(), "down", 2)]);
        let change = snaps[3].recent_waves[0].change_pct;
        assert!((change - (100.0 / 120.0 - 1.0) * 100.0).abs() < 1e-12, "{change}");
    }

    #[test]
    fn bucket_is_the_smallest_timeframe_and_no_detectors_is_an_error() {
        let spec = specs(&["volatility:timeframe=5m", "waves:timeframe=1m", "volume:timeframe=15m"]);
        assert_eq!(Scanner::new(SymbolTable::new(), &spec, 5).unwrap().bucket_s(), 60);
        assert_eq!(Scanner::new(SymbolTable::new(), &[], 5).err(), Some(ScanError::NoDetectors));
        for spec in DEFAULT_DETECTORS {
            spec.parse::<DetectorSpec>().unwrap();
        }
    }

    #[test]
    fn table_lists_both_sections() {
        let snapshot = Snapshot {
            bucket_start: 0,
            time: format_utc(0),
            top_volume: vec![VolumeRow {
                symbol: "ADA/BTC".into(),
                exchange: Exchange::Bittrex,
                ratio: 3.2876,
                volume: 2_110_968.535,
                baseline: 642_100.678,
            }],
            recent_waves: vec![],
        };
        let table = render_table(&snapshot, 300, Some((300, 20)));
        assert!(table.starts_with("tapedeck scan   bucket 1970-01-01T00:00:00.000Z (5m)\n"), "{table}");
        assert!(
            table.contains("  1  ADA/BTC      bittrex        3.29       2110968.5350        642100.6780\n"),
            "{table}"
        );
        assert!(table.contains("top volume (latest 5m candle / mean of the previous 20)\n"), "{table}");
        assert!(table.contains("(no waves yet)"), "{table}");
    }
}
