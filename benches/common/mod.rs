//! Shared bench input: the bundled sample recording (real Binance BTCUSDT trades, quotes
//! and depth), looped as one continuous session (`model::Looper`) to `n` records.

use std::path::Path;

use tapedeck::log::{RecordingMeta, Writer, WriterConfig, read_all};
use tapedeck::model::{Looper, Record};

pub const SAMPLE: &str = "recordings/binance-btcusdt-20240808";

pub fn dataset(n: usize) -> Vec<Record> {
    let path = std::env::var("TAPEDECK_BENCH_SAMPLE").unwrap_or_else(|_| SAMPLE.to_string());
    let sample = read_all(Path::new(&path)).expect("sample recording (see recordings/README.md)");
    // One continuous session: times and venue ids carry on across rounds, so books stay in sync.
    let looper = Looper::new(&sample);
    looper.looped(&sample, u64::MAX).take(n).collect()
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
