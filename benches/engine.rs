//! Engine throughput and per-detector cost, on real data (the sample, looped as one
//! continuous session by `model::Looper`, so its book stays in sync).
//!
//! - `replay/*`: records/s from disk (prefetch thread decoding) through the engine, with
//!   no detectors and with the three built-in detectors;
//! - `engine_in_memory/*`: the same without storage, to separate engine from log cost;
//! - `detector/*`: one detector alone in the engine, ns per event;
//! - `book/*`: the sample's snapshot and depth diffs applied to an `OrderBook` (the price
//!   ladder), against the same updates in a `BTreeMap<Decimal, Decimal>` per side (the
//!   book's earlier layout), throughput in levels;
//! - `sharded/*`: the three detectors over 16 instruments (the sample's records dealt out in
//!   runs of 100), one engine against `engine::sharded::Sharded` on 1 and 2 rayon threads,
//!   in chunks of 16,384 records as `replay --threads` runs them.
//!
//! Run: `cargo bench --bench engine`.

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::collections::BTreeMap;
use tapedeck::detect::DetectorSpec;

use tapedeck::engine::sharded::Sharded;
use tapedeck::engine::{Engine, OrderBook};
use tapedeck::log::{Reader, WriterConfig};
use tapedeck::model::{Decimal, Event, Exchange, Instrument, InstrumentId, Level, Record, SymbolTable};

const N: usize = 1_000_000;
const ALL: [&str; 3] = [
    "waves:amplitude=0.05,timeframe=10s",
    "volatility:timeframe=10s,short=5,long=20",
    "volume:timeframe=10s,ma=20,k=3",
];

fn engine(symbols: &SymbolTable, specs: &[&str]) -> Engine {
    let detectors = specs.iter().map(|s| s.parse::<DetectorSpec>().unwrap().build()).collect();
    Engine::new(symbols.clone(), detectors)
}

fn run_in_memory(symbols: &SymbolTable, specs: &[&str], records: &[Record]) -> usize {
    let mut engine = engine(symbols, specs);
    let mut signals = 0;
    for r in records {
        signals += engine.on_record(r).len();
    }
    signals
}

fn bench(c: &mut Criterion) {
    let records = common::dataset(N);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("rec");
    common::write(&dir, &records, WriterConfig { flush_records: usize::MAX, ..WriterConfig::default() });
    let reader = Reader::open(&dir).unwrap();
    let symbols = reader.symbols().clone();

    let mut group = c.benchmark_group("replay");
    group.sample_size(10).measurement_time(Duration::from_secs(10)).throughput(Throughput::Elements(N as u64));
    for (name, specs) in [("no_detectors", &[][..]), ("three_detectors", &ALL[..])] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut engine = engine(&symbols, specs);
                let mut n = 0;
                for block in reader.prefetch_from(0) {
                    for r in &block.unwrap().records {
                        engine.on_record(r);
                        n += 1;
                    }
                }
                assert_eq!(n, N);
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("engine_in_memory");
    group.sample_size(10).measurement_time(Duration::from_secs(8)).throughput(Throughput::Elements(N as u64));
    for (name, specs) in [("no_detectors", &[][..]), ("three_detectors", &ALL[..])] {
        group.bench_function(name, |b| b.iter(|| run_in_memory(&symbols, specs, &records)));
    }
    group.finish();

    let mut group = c.benchmark_group("detector");
    group.sample_size(10).measurement_time(Duration::from_secs(8)).throughput(Throughput::Elements(N as u64));
    for spec in ALL {
        let name = spec.split(':').next().unwrap();
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| run_in_memory(&symbols, &[spec], &records))
        });
    }
    group.finish();
}

fn bench_sharded(c: &mut Criterion) {
    let base = common::dataset(N);
    let mut symbols = SymbolTable::new();
    for k in 0..16 {
        symbols.intern(&Instrument::new(Exchange::Binance, &format!("C{k}"), "USDT", &format!("C{k}USDT")));
    }
    let records: Vec<Record> =
        base.into_iter().map(|r| Record { instrument: InstrumentId((r.seq / 100 % 16) as u32), ..r }).collect();
    let build = || ALL.iter().map(|s| s.parse::<DetectorSpec>().unwrap().build()).collect::<Vec<_>>();
    let mut group = c.benchmark_group("sharded");
    group.sample_size(10).measurement_time(Duration::from_secs(8)).throughput(Throughput::Elements(N as u64));
    group.bench_function("single_engine", |b| b.iter(|| run_in_memory(&symbols, &ALL, &records)));
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        group.bench_function(BenchmarkId::new("threads", threads), |b| {
            b.iter(|| {
                let mut sharded = Sharded::new(&symbols, threads * 4, build);
                let mut out = Vec::new();
                pool.install(|| {
                    for chunk in records.chunks(16_384) {
                        sharded.on_chunk(chunk, &mut out);
                    }
                });
                out.len()
            })
        });
    }
    group.finish();
}

fn bench_book(c: &mut Criterion) {
    let sample = tapedeck::log::read_all(std::path::Path::new(common::SAMPLE)).unwrap();
    let updates: Vec<&Event> =
        sample.iter().map(|r| &r.event).filter(|e| matches!(e, Event::BookSnapshot(_) | Event::BookDelta(_))).collect();
    let levels: usize = updates
        .iter()
        .map(|e| match e {
            Event::BookSnapshot(s) => s.bids.len() + s.asks.len(),
            Event::BookDelta(d) => d.bids.len() + d.asks.len(),
            _ => 0,
        })
        .sum();
    let mut group = c.benchmark_group("book");
    group.sample_size(20).measurement_time(Duration::from_secs(5)).throughput(Throughput::Elements(levels as u64));
    group.bench_function("ladder", |b| {
        b.iter(|| {
            let mut book = OrderBook::default();
            for e in &updates {
                match e {
                    Event::BookSnapshot(s) => book.apply_snapshot(s),
                    Event::BookDelta(d) => book.apply_delta(d),
                    _ => unreachable!(),
                };
            }
            book.depth()
        })
    });
    group.bench_function("btreemap", |b| {
        b.iter(|| {
            let (mut bids, mut asks) = (BTreeMap::<Decimal, Decimal>::new(), BTreeMap::<Decimal, Decimal>::new());
            let set = |side: &mut BTreeMap<Decimal, Decimal>, levels: &[Level]| {
                for l in levels {
                    if l.qty.is_zero() {
                        side.remove(&l.price);
                    } else {
                        side.insert(l.price, l.qty);
                    }
                }
            };
            for e in &updates {
                match e {
                    Event::BookSnapshot(s) => {
                        bids.clear();
                        asks.clear();
                        set(&mut bids, &s.bids);
                        set(&mut asks, &s.asks);
                    }
                    Event::BookDelta(d) => {
                        set(&mut bids, &d.bids);
                        set(&mut asks, &d.asks);
                    }
                    _ => unreachable!(),
                }
            }
            (bids.len(), asks.len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench, bench_sharded, bench_book);
criterion_main!(benches);
