//! `tapedeck bench REC... [--detect SPEC]... [--strategy NAME] [--warmup N] [--iterations K] [--json]
//! [--hist-out FILE]`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

use super::config::{Config, DetectArgs};
use crate::bench::{Measured, Percentiles, Report, measure, measure_with, overhead, recording_latency, write_hlog};
use crate::engine::Engine;
use crate::replay::{Filter, Merged};

#[derive(Debug, clap::Args)]
#[command(after_help = "Times the engine on every record of the recordings, loaded into memory first, with HDR \
histograms: all detectors together (`total`) and each detector alone. Figures are ns per record.

Example:
  tapedeck bench recordings/binance-btcusdt-20240808 --detect waves:amplitude=0.05,timeframe=10s \\
    --detect volume:timeframe=10s --detect volatility:timeframe=10s,short=5,long=20 --hist-out bench.hlog")]
pub struct Args {
    /// Recording directories (merged as in replay)
    #[arg(required = true, value_name = "REC")]
    recs: Vec<PathBuf>,
    #[command(flatten)]
    detect: DetectArgs,
    /// Records at the start of each pass that are processed but not measured
    #[arg(long, default_value_t = 1000, value_name = "N")]
    warmup: u64,
    /// Passes over the records
    #[arg(long, default_value_t = 3, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    iterations: u32,
    /// Print the report as JSON (schema: docs/bench-json.md)
    #[arg(long)]
    json: bool,
    /// Write the histograms as an HdrHistogram interval log (.hlog), one tagged interval each
    #[arg(long, value_name = "FILE")]
    hist_out: Option<PathBuf>,
    /// Also run this strategy (with the simulated broker): it joins `total` and gets its own
    /// row `strategy:NAME` (the strategy with its own detectors)
    #[arg(long, value_name = "NAME")]
    strategy: Option<String>,
    /// A strategy parameter, key=value (repeatable)
    #[arg(long = "param", value_name = "K=V", requires = "strategy", value_parser = super::trading::key_value)]
    params: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = Config::load(args.detect.config.as_deref())?;
    let specs = args.detect.resolve(&config)?;
    let mut merged = Merged::open(&args.recs, Filter::default())
        .map_err(|(path, e)| anyhow::anyhow!(e).context(format!("cannot open recording {}", path.display())))?;
    let symbols = merged.symbols().clone();
    let records: Vec<_> = merged.by_ref().collect();
    if let Some(e) = merged.take_error() {
        return Err(anyhow::anyhow!(e).context("reading the recordings"));
    }
    // Everything is in memory: close the recordings, so their storage threads are not
    // running beside the timed loop.
    drop(merged);
    let started = Instant::now();
    let warmup = (args.warmup as usize).min(records.len().saturating_sub(1));
    let strategy = args.strategy.as_deref().map(|name| super::trading::strategy(name, &args.params)).transpose()?;
    let broker = crate::engine::BrokerConfig::default();
    let mut measured = vec![match &strategy {
        None => measure("total", &symbols, &specs, &records, warmup, args.iterations),
        Some(spec) => {
            let mut all = specs.clone();
            all.extend(spec.detectors().into_iter().filter(|d| !specs.contains(d)));
            measure_with("total", &records, warmup, args.iterations, &|| {
                Engine::new(symbols.clone(), all.iter().map(|s| s.build()).collect())
                    .with_strategies(vec![spec.build()], broker)
            })
        }
    }];
    let mut seen: BTreeMap<&'static str, usize> = BTreeMap::new();
    for spec in &specs {
        let name = spec.build().name();
        let n = seen.entry(name).or_default();
        *n += 1;
        let label = if specs.iter().filter(|s| s.build().name() == name).count() > 1 {
            format!("{name}.{n}")
        } else {
            name.to_string()
        };
        measured.push(measure(&label, &symbols, std::slice::from_ref(spec), &records, warmup, args.iterations));
    }
    if let Some(spec) = &strategy {
        let label = format!("strategy:{}", spec.name());
        measured.push(measure_with(&label, &records, warmup, args.iterations, &|| {
            Engine::new(symbols.clone(), spec.detectors().iter().map(|s| s.build()).collect())
                .with_strategies(vec![spec.build()], broker)
        }));
    }
    let overhead = Percentiles::of(&overhead(1_000_000));
    let (latency_hists, negative) = recording_latency(&records);
    if let Some(path) = &args.hist_out {
        write_hlog(path, &measured, started.elapsed()).with_context(|| format!("--hist-out {}", path.display()))?;
    }
    let report = Report {
        records: records.len() as u64,
        iterations: args.iterations,
        warmup: warmup as u64,
        latency: measured.iter().map(|m| (m.name.clone(), Percentiles::of(&m.histogram))).collect(),
        latency_by_kind: measured.first().map(crate::bench::by_kind).unwrap_or_default(),
        events_per_second: measured.iter().map(|m| (m.name.clone(), m.events_per_second)).collect(),
        overhead,
        recording_latency_us: latency_hists.iter().map(|(k, h)| (k.clone(), Percentiles::of(h))).collect(),
        recording_latency_negative: negative,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report, &measured));
    }
    Ok(ExitCode::SUCCESS)
}

fn render(r: &Report, measured: &[Measured]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} records × {} passes ({} warm-up records per pass); engine time per record, ns",
        r.records, r.iterations, r.warmup
    );
    let _ = writeln!(
        out,
        "{:<20} {:>10} {:>6} {:>6} {:>6} {:>7} {:>7} {:>8} {:>9} {:>12}",
        "", "count", "min", "p50", "p90", "p99", "p99.9", "p99.99", "max", "events/s"
    );
    for (name, p) in &r.latency {
        let _ = writeln!(
            out,
            "{name:<20} {:>10} {:>6} {:>6} {:>6} {:>7} {:>7} {:>8} {:>9} {:>12.0}",
            p.count, p.min, p.p50, p.p90, p.p99, p.p999, p.p9999, p.max, r.events_per_second[name]
        );
    }
    for (kind, p) in &r.latency_by_kind {
        let _ = writeln!(
            out,
            "{:<20} {:>10} {:>6} {:>6} {:>6} {:>7} {:>7} {:>8} {:>9}",
            format!("  total {kind}"),
            p.count,
            p.min,
            p.p50,
            p.p90,
            p.p99,
            p.p999,
            p.p9999,
            p.max
        );
    }
    let o = &r.overhead;
    let _ = writeln!(
        out,
        "measurement overhead (Instant pair + record): p50 {} ns, p99 {} ns, max {} ns",
        o.p50, o.p99, o.max
    );
    if let Some(total) = measured.first() {
        let _ = writeln!(out, "\ndistribution of `total` (ns per record):");
        for v in total.histogram.iter_log(64, 2.0) {
            if v.count_since_last_iteration() > 0 {
                let pct = 100.0 * v.count_since_last_iteration() as f64 / total.histogram.len() as f64;
                let _ = writeln!(
                    out,
                    "  ≤ {:>8} ns {:>6.2}% {}",
                    v.value_iterated_to(),
                    pct,
                    "#".repeat((pct / 2.0).ceil() as usize)
                );
            }
        }
    }
    if !r.recording_latency_us.is_empty() || !r.recording_latency_negative.is_empty() {
        let _ = writeln!(out, "\nlatency in the recording, ts_recv − ts_exchange, µs:");
        for (k, p) in &r.recording_latency_us {
            let _ = writeln!(out, "  {k:<24} n {:>8}  p50 {:>8}  p99 {:>8}  max {:>9}", p.count, p.p50, p.p99, p.max);
        }
        for (k, n) in &r.recording_latency_negative {
            let _ = writeln!(out, "  {k:<24} {n} records received before their exchange time (clock skew)");
        }
    }
    out
}
