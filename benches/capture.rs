//! Capture hot path, per message: normalize per venue on real frames, and Binance
//! normalize + append (the writer's work per trade), single-threaded.
//!
//! Run: `cargo bench --bench capture`.

use std::io::BufRead;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tapedeck::exchange::{Normalized, Normalizer, SymbolInfo, venue};
use tapedeck::log::{RecordingMeta, Writer, WriterConfig};
use tapedeck::model::{Exchange, Instrument, Record};

fn binance_trades() -> Vec<String> {
    let file = std::fs::File::open("tests/fixtures/binance_spot/hftbacktest/btcusdt_20240808.gz").unwrap();
    std::io::BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .map(Result::unwrap)
        .filter(|l| l.contains("@trade\""))
        .map(|l| l.split_once(' ').unwrap().1.to_string())
        .collect()
}

fn gate_frames() -> Vec<String> {
    std::fs::read_to_string("tests/fixtures/gateio_spot/GATEIO.ws.1.0")
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty() && !l.contains(" <- ") && l.contains("\"update\""))
        .map(|l| l.split_once(": ").unwrap().1.to_string())
        .collect()
}

fn lbank_frames() -> Vec<String> {
    std::fs::read_to_string("tests/fixtures/lbank/lbank_v2_ws_push_doc_examples.jsonl")
        .unwrap()
        .lines()
        .filter(|l| !l.contains("\"ping\""))
        .map(str::to_string)
        .collect()
}

fn symbols(exchange: Exchange) -> Vec<SymbolInfo> {
    let btc = match exchange {
        Exchange::Binance => Instrument::new(exchange, "BTC", "USDT", "BTCUSDT"),
        Exchange::Gate => Instrument::new(exchange, "BTC", "USDT", "BTC_USDT"),
        Exchange::Lbank => Instrument::new(exchange, "BTC", "USDT", "btc_usdt"),
        Exchange::Bittrex => unreachable!("import-only: no normalizer to benchmark"),
    };
    vec![SymbolInfo {
        instrument: btc,
        status: "TRADING".into(),
        tradable: true,
        price_precision: None,
        qty_precision: None,
    }]
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("normalize");
    group.sample_size(20).measurement_time(Duration::from_secs(5));
    for (exchange, frames) in
        [(Exchange::Binance, binance_trades()), (Exchange::Gate, gate_frames()), (Exchange::Lbank, lbank_frames())]
    {
        let mut normalizer: Box<dyn Normalizer> = venue(exchange).unwrap().normalizer(&symbols(exchange));
        let mut out: Vec<Normalized> = Vec::new();
        group.throughput(Throughput::Elements(frames.len() as u64));
        group.bench_function(exchange.as_str(), |b| {
            b.iter(|| {
                for (i, f) in frames.iter().enumerate() {
                    out.clear();
                    let _ = normalizer.normalize(f, i as u64, &mut out);
                }
            })
        });
    }
    group.finish();

    let frames = binance_trades();
    let mut group = c.benchmark_group("normalize_append");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(frames.len() as u64));
    let dir = tempfile::tempdir().unwrap();
    let config = WriterConfig { flush_records: usize::MAX, ..WriterConfig::default() };
    let mut writer = Writer::open(dir.path(), RecordingMeta::new("bench", 0), config).unwrap();
    let mut normalizer = venue(Exchange::Binance).unwrap().normalizer(&symbols(Exchange::Binance));
    let mut out: Vec<Normalized> = Vec::new();
    group.bench_function("binance_trades", |b| {
        b.iter(|| {
            for (i, f) in frames.iter().enumerate() {
                out.clear();
                normalizer.normalize(f, i as u64, &mut out).unwrap();
                for n in out.drain(..) {
                    let instrument = writer.intern(n.instrument.as_ref().unwrap()).unwrap();
                    writer
                        .append(Record {
                            seq: 0,
                            ts_exchange: n.ts_exchange,
                            ts_recv: i as u64,
                            exchange: Exchange::Binance,
                            instrument,
                            event: n.event,
                        })
                        .unwrap();
                }
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
