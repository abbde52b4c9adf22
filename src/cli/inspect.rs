//! `tapedeck inspect DIR [--json]`: what a recording holds, read end to end.
//!
//! Reading every block is the point: it verifies every checksum on the way, so a corrupt
//! block fails the command with its position instead of being skipped.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use crate::log::Reader;
use crate::model::time::format_utc;
use crate::model::{Event, EventKind, InstrumentId, Nanos, Record, Status};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Recording directory
    dir: PathBuf,
    /// Print one JSON object instead of text, for scripts
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub path: String,
    pub format_version: u32,
    pub tapedeck_version: String,
    pub source: String,
    pub created: String,
    pub command_lines: Vec<Vec<String>>,
    pub subscriptions: Vec<String>,
    pub notes: BTreeMap<String, String>,
    pub records: u64,
    pub blocks: usize,
    /// Span of receive times (capture clock).
    pub ts_recv: Option<Span>,
    /// Span of exchange times.
    pub ts_exchange: Option<Span>,
    pub instruments: Vec<InstrumentCounts>,
    pub status: StatusCounts,
    pub size_bytes: u64,
    pub bytes_per_record: f64,
    /// Frames kept as received (`record --keep-raw`).
    pub raw_frames: u64,
}

#[derive(Debug, Serialize, Clone, Copy)]
pub struct Span {
    pub first_ns: Nanos,
    pub last_ns: Nanos,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct InstrumentCounts {
    pub exchange: String,
    /// Canonical symbol, or "-" for records about a connection.
    pub symbol: String,
    pub venue_symbol: String,
    pub counts: BTreeMap<EventKind, u64>,
    pub total: u64,
}

#[derive(Debug, Serialize, Default, Clone, Copy)]
pub struct StatusCounts {
    pub connected: u64,
    pub subscribed: u64,
    pub disconnected: u64,
    pub gaps: u64,
    pub resyncs: u64,
    /// Frames that failed to parse (the sum of the ParseError records' counts).
    pub parse_errors: u64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let summary = summarize(&args.dir)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", render(&summary));
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the whole recording and counts what it holds.
///
/// # Errors
/// When the recording cannot be opened or a block is corrupt.
pub fn summarize(dir: &std::path::Path) -> anyhow::Result<Summary> {
    let reader = Reader::open(dir).with_context(|| format!("cannot open recording {}", dir.display()))?;
    let meta = reader.meta().clone();
    let symbols = reader.symbols().clone();
    let raw_frames = reader.raw_count().with_context(|| format!("reading raw frames of {}", dir.display()))?;
    let mut blocks = 0usize;
    let size_bytes = reader.stored_bytes();
    let prefetch = reader.prefetch_from(0);
    // Only the prefetch thread keeps the database open now, so it can release sled's pages.
    drop(reader);
    let mut per_instrument: BTreeMap<(String, InstrumentId), BTreeMap<EventKind, u64>> = BTreeMap::new();
    let mut status = StatusCounts::default();
    let mut recv: Option<Span> = None;
    let mut exch: Option<Span> = None;
    let mut records = 0u64;
    let bar = super::progress_bar(None, "reading");
    for block in prefetch {
        let block = block.with_context(|| format!("reading {}", dir.display()))?;
        blocks += 1;
        for r in &block.records {
            records += 1;
            widen(&mut recv, r.ts_recv);
            if !matches!(r.event, Event::Status(_)) {
                widen(&mut exch, r.ts_exchange);
            }
            count_status(r, &mut status);
            *per_instrument
                .entry((r.exchange.to_string(), r.instrument))
                .or_default()
                .entry(r.event.kind())
                .or_default() += 1;
        }
        bar.inc(block.records.len() as u64);
        if super::interrupt::requested() {
            anyhow::bail!("interrupted");
        }
    }
    bar.finish_and_clear();
    let instruments = per_instrument
        .into_iter()
        .map(|((exchange, id), counts)| {
            let (symbol, venue_symbol) = match symbols.get(id) {
                Some(i) => (i.symbol.clone(), i.venue_symbol.clone()),
                None => ("-".to_string(), "-".to_string()),
            };
            InstrumentCounts { exchange, symbol, venue_symbol, total: counts.values().sum(), counts }
        })
        .collect();
    Ok(Summary {
        path: dir.display().to_string(),
        format_version: meta.format_version,
        tapedeck_version: meta.tapedeck_version,
        source: meta.source,
        created: format_utc(meta.created_ns),
        command_lines: meta.command_lines,
        subscriptions: meta.subscriptions,
        notes: meta.notes,
        records,
        blocks,
        ts_recv: recv,
        ts_exchange: exch,
        instruments,
        status,
        size_bytes,
        bytes_per_record: if records == 0 { 0.0 } else { size_bytes as f64 / records as f64 },
        raw_frames,
    })
}

fn widen(span: &mut Option<Span>, ts: Nanos) {
    let s = span.get_or_insert(Span { first_ns: ts, last_ns: ts, seconds: 0.0 });
    s.first_ns = s.first_ns.min(ts);
    s.last_ns = s.last_ns.max(ts);
    s.seconds = (s.last_ns - s.first_ns) as f64 / 1e9;
}

fn count_status(r: &Record, counts: &mut StatusCounts) {
    let Event::Status(s) = &r.event else { return };
    match s {
        Status::Connected { .. } => counts.connected += 1,
        Status::Subscribed { .. } => counts.subscribed += 1,
        Status::Disconnected { .. } => counts.disconnected += 1,
        Status::Gap { .. } => counts.gaps += 1,
        Status::Resync { .. } => counts.resyncs += 1,
        Status::ParseError { count, .. } => counts.parse_errors += count,
    }
}

/// The human-readable report.
pub fn render(s: &Summary) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let span = |sp: &Option<Span>| match sp {
        Some(sp) => format!("{} .. {} ({:.1} s)", format_utc(sp.first_ns), format_utc(sp.last_ns), sp.seconds),
        None => "empty".to_string(),
    };
    let _ = writeln!(out, "recording    {}", s.path);
    let _ = writeln!(out, "format       {} (written by tapedeck {})", s.format_version, s.tapedeck_version);
    let _ = writeln!(out, "source       {}", s.source);
    let _ = writeln!(out, "created      {}", s.created);
    if !s.subscriptions.is_empty() {
        let _ = writeln!(out, "streams      {}", s.subscriptions.join(", "));
    }
    let _ = writeln!(out, "records      {} in {} blocks", s.records, s.blocks);
    let _ = writeln!(out, "ts_exchange  {}", span(&s.ts_exchange));
    let _ = writeln!(out, "ts_recv      {}", span(&s.ts_recv));
    let place = if crate::log::is_remote(std::path::Path::new(&s.path)) { "in JetStream" } else { "on disk" };
    let _ = writeln!(out, "size         {} {place}, {:.1} bytes/record", human_bytes(s.size_bytes), s.bytes_per_record);
    if s.raw_frames > 0 {
        let _ = writeln!(out, "raw frames   {}", s.raw_frames);
    }
    let st = &s.status;
    let _ = writeln!(
        out,
        "status       {} connected, {} subscribed, {} disconnected, {} gaps, {} resyncs, {} parse errors",
        st.connected, st.subscribed, st.disconnected, st.gaps, st.resyncs, st.parse_errors
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "{:<9} {:<14} {:<14} {:>10}", "exchange", "symbol", "kind", "count");
    for i in &s.instruments {
        for (kind, n) in &i.counts {
            let _ = writeln!(out, "{:<9} {:<14} {:<14} {:>10}", i.exchange, i.symbol, kind.as_str(), n);
        }
    }
    out
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}
