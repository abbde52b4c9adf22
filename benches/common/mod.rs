//! Shared bench input: the bundled sample recording (real Binance BTCUSDT trades, quotes
//! and depth), repeated with shifted times to `n` records.

use std::path::Path;

use tapedeck::log::{RecordingMeta, Writer, WriterConfig, read_all};
use tapedeck::model::Record;

pub const SAMPLE: &str = "recordings/binance-btcusdt-20240808";

pub fn dataset(n: usize) -> Vec<Record> {
    let path = std::env::var("TAPEDECK_BENCH_SAMPLE").unwrap_or_else(|_| SAMPLE.to_string());
    let sample = read_all(Path::new(&path)).expect("sample recording (see recordings/README.md)");
    let span = sample.last().unwrap().ts_recv - sample.first().unwrap().ts_recv + 1;
    let mut out = Vec::with_capacity(n);
    let mut round = 0u64;
    while out.len() < n {
        for r in &sample {
            if out.len() == n {
                break;
            }
            let mut r = r.clone();
            r.seq = out.len() as u64;
            r.ts_recv += round * span;
            r.ts_exchange += round * span;
            out.push(r);
        }
        round += 1;
    }
    out
}

#[allow(dead_code)]
pub fn write(dir: &Path, records: &[Record], config: WriterConfig) {
    let mut writer = Writer::open(dir, RecordingMeta::new("bench", 0), config).unwrap();
    writer
        .intern(&tapedeck::model::Instrument::new(tapedeck::model::Exchange::Binance, "BTC", "USDT", "BTCUSDT"))
        .unwrap();
    for r in records {
        writer.append(r.clone()).unwrap();
    }
    writer.close().unwrap();
}
