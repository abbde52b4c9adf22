//! `tapedeck import FORMAT FILE... --symbol SYM --out REC`: build a recording from files.
//!
//! Formats so far: `hftbacktest` (hftbacktest's Binance collector output). The importer
//! appends to an existing recording, keeping seq contiguous.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::log::{Compression, RecordingMeta, Writer, WriterConfig};
use crate::model::{Exchange, Instrument};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// hftbacktest collector files: gzip text, `<recv ns> <Binance combined-stream JSON>` per line
    Hftbacktest,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  tapedeck import hftbacktest btcusdt_20240808.gz --symbol BTCUSDT --out recordings/btcusdt"
)]
pub struct Args {
    /// What wrote the files
    #[arg(value_enum)]
    source: Source,
    /// Input files, imported in the order given
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The venue symbol the files are about, as the venue spells it (BTCUSDT)
    #[arg(long)]
    symbol: String,
    /// Canonical BASE/QUOTE for --symbol; by default split on a known quote asset
    #[arg(long, value_name = "BASE/QUOTE")]
    canonical: Option<String>,
    /// Recording directory to create or append to
    #[arg(long, value_name = "REC")]
    out: PathBuf,
    /// Records per stored block
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    block_records: u32,
    /// Block compression
    #[arg(long, value_enum, default_value_t = Compression::None)]
    compression: Compression,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let instrument = resolve_instrument(&args)?;
    let mut meta = RecordingMeta::new(&format!("import:{}", source_name(args.source)), now_ns());
    meta.command_lines.push(std::env::args().collect());
    let config = WriterConfig {
        block_records: args.block_records as usize,
        compression: args.compression,
        flush_records: usize::MAX,
        ..WriterConfig::default()
    };
    let mut writer = Writer::open(&args.out, meta, config)
        .with_context(|| format!("cannot open {} for writing", args.out.display()))?;
    let first_seq = writer.next_seq();
    let bar = super::progress_bar(None, "lines");
    for file in &args.files {
        let stats = match args.source {
            Source::Hftbacktest => {
                crate::import::hftbacktest::import_file(file, &instrument, &mut writer, &|n| bar.set_position(n))?
            }
        };
        if stats.parse_errors > 0 {
            eprintln!(
                "{}: {} frames did not normalize (recorded as parse_error status)",
                file.display(),
                stats.parse_errors
            );
        }
        if super::interrupt::requested() {
            break;
        }
    }
    bar.finish_and_clear();
    let stats = writer.close()?;
    eprintln!(
        "imported {} records (seq {}..{}) into {}",
        stats.next_seq - first_seq,
        first_seq,
        stats.next_seq,
        args.out.display()
    );
    Ok(if super::interrupt::requested() { ExitCode::from(130) } else { ExitCode::SUCCESS })
}

fn source_name(source: Source) -> &'static str {
    match source {
        Source::Hftbacktest => "hftbacktest",
    }
}

fn resolve_instrument(args: &Args) -> anyhow::Result<Instrument> {
    match &args.canonical {
        Some(c) => {
            let (base, quote) = c
                .split_once('/')
                .filter(|(b, q)| !b.is_empty() && !q.is_empty())
                .ok_or_else(|| anyhow::anyhow!("--canonical must look like BASE/QUOTE, got {c:?}"))?;
            Ok(Instrument::new(Exchange::Binance, base, quote, &args.symbol))
        }
        None => crate::exchange::binance::SymbolMap::default().resolve(&args.symbol).map_err(|_| {
            anyhow::anyhow!("--symbol {}: no known quote asset; give --canonical BASE/QUOTE", args.symbol)
        }),
    }
}

/// Wall-clock time for the meta's creation stamp; the CLI edge is the one place it is read.
pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}
