//! Writes a long recording from a real one, looped end to end as one continuous session
//! (`tapedeck::model::Looper`: times and venue ids carry on across rounds, so books stay in
//! sync). `scripts/rss.sh` uses it to build its 10M-record input from the sample.
//!
//! ```text
//! cargo run --release --example loop_recording -- SRC DST ROUNDS [none|lz4]
//! ```

use std::path::PathBuf;

use anyhow::{Context, bail};
use tapedeck::log::{Compression, Reader, RecordingMeta, Writer, WriterConfig, read_all};
use tapedeck::model::Looper;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, dst, rounds, rest @ ..] = args.as_slice() else {
        bail!("usage: loop_recording SRC DST ROUNDS [none|lz4]");
    };
    let rounds: u64 = rounds.parse().context("ROUNDS must be a whole number")?;
    let compression = match rest.first().map(String::as_str) {
        None | Some("none") => Compression::None,
        Some("lz4") => Compression::Lz4,
        Some(other) => bail!("unknown compression {other:?} (none or lz4)"),
    };
    let (src, dst) = (PathBuf::from(src), PathBuf::from(dst));
    let reader = Reader::open(&src).with_context(|| format!("opening {}", src.display()))?;
    let records = read_all(&src)?;
    let mut meta = RecordingMeta::new(&format!("loop:{}x{rounds}", src.display()), 0);
    meta.subscriptions = reader.meta().subscriptions.clone();
    meta.notes = reader.meta().notes.clone();
    // One flush at the end: this is a batch job, not a capture.
    let config = WriterConfig { compression, flush_records: usize::MAX, ..WriterConfig::default() };
    let mut writer = Writer::open(&dst, meta, config)?;
    for (_, instrument) in reader.symbols().iter() {
        writer.intern(instrument)?;
    }
    let looper = Looper::new(&records);
    for record in looper.looped(&records, rounds) {
        writer.append(record)?;
    }
    let stats = writer.close()?;
    println!("{}: {} records", dst.display(), stats.records);
    Ok(())
}
