//! Recording throughput: append, and full sequential read + decode, in records per second,
//! for several block sizes and compressions. Input: the bundled sample recording (real
//! Binance BTCUSDT trades, quotes and depth), repeated to a million records.
//!
//! Run: `cargo bench --bench log`. Sizes on disk are printed to stderr.

use std::path::Path;
use std::time::Duration;

#[path = "common/mod.rs"]
mod common;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tapedeck::log::{Compression, Reader, WriterConfig, disk_size};
use tapedeck::model::Record;

const TARGET_RECORDS: usize = 1_000_000;

fn dataset() -> Vec<Record> {
    common::dataset(TARGET_RECORDS)
}

fn write(dir: &Path, records: &[Record], config: WriterConfig) {
    common::write(dir, records, config)
}

fn configs() -> Vec<(String, WriterConfig)> {
    let mut out = Vec::new();
    for block_records in [256, 1024, 4096] {
        for compression in [Compression::None, Compression::Lz4] {
            let config =
                WriterConfig { block_records, compression, flush_records: usize::MAX, ..WriterConfig::default() };
            out.push((format!("{block_records}/{compression:?}").to_lowercase(), config));
        }
    }
    out
}

/// Only the top-of-book kinds (trades and quotes), renumbered: the hot path without depth.
fn top_of_book(records: &[Record]) -> Vec<Record> {
    let mut out: Vec<Record> = records
        .iter()
        .filter(|r| matches!(r.event, tapedeck::model::Event::Trade(_) | tapedeck::model::Event::Quote(_)))
        .cloned()
        .collect();
    for (i, r) in out.iter_mut().enumerate() {
        r.seq = i as u64;
    }
    out
}

fn bench(c: &mut Criterion) {
    let records = dataset();
    let root = tempfile::tempdir().unwrap();
    bench_top_of_book(c, &top_of_book(&records), root.path());

    let mut append = c.benchmark_group("append");
    append.sample_size(10).measurement_time(Duration::from_secs(10));
    append.throughput(Throughput::Elements(records.len() as u64));
    for (name, config) in configs() {
        append.bench_function(BenchmarkId::from_parameter(&name), |b| {
            b.iter_with_setup(|| tempfile::tempdir_in(root.path()).unwrap(), |dir| write(dir.path(), &records, config))
        });
    }
    append.finish();

    let mut read = c.benchmark_group("read_decode");
    read.sample_size(10).measurement_time(Duration::from_secs(10));
    read.throughput(Throughput::Elements(records.len() as u64));
    for (name, config) in configs() {
        let dir = root.path().join(name.replace('/', "-"));
        write(&dir, &records, config);
        eprintln!(
            "size {name}: {} bytes on disk, {:.1} bytes/record",
            disk_size(&dir),
            disk_size(&dir) as f64 / records.len() as f64
        );
        let reader = Reader::open(&dir).unwrap();
        // One core: verify + decode every block on the calling thread.
        read.bench_function(BenchmarkId::new("one_thread", &name), |b| {
            b.iter(|| {
                let mut n = 0usize;
                for block in reader.blocks_from(0) {
                    n += block.unwrap().records.len();
                }
                assert_eq!(n, records.len());
            })
        });
        // The replay path: decode on the prefetch thread, consume record by record.
        read.bench_function(BenchmarkId::new("prefetch", &name), |b| {
            b.iter(|| {
                let mut last = 0;
                for r in reader.records_from(0) {
                    last = r.unwrap().seq;
                }
                assert_eq!(last as usize, records.len() - 1);
            })
        });
    }
    read.finish();
}

fn bench_top_of_book(c: &mut Criterion, records: &[Record], root: &Path) {
    let mut read = c.benchmark_group("read_decode_top_of_book");
    read.sample_size(10).measurement_time(Duration::from_secs(5));
    read.throughput(Throughput::Elements(records.len() as u64));
    let config = WriterConfig { flush_records: usize::MAX, ..WriterConfig::default() };
    let dir = root.join("top-of-book");
    write(&dir, records, config);
    let reader = Reader::open(&dir).unwrap();
    read.bench_function("one_thread/1024/none", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for block in reader.blocks_from(0) {
                n += block.unwrap().records.len();
            }
            assert_eq!(n, records.len());
        })
    });
    read.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
