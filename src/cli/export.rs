//! `tapedeck export DIR [--format ndjson|csv] [--kind trade,quote,...] [--out FILE]`.
//!
//! Every field of every record is written, and decimals are printed from their exact
//! form, so the venue's own strings come back out ("61837.63000000" stays as written).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Map, Value};

use crate::log::Reader;
use crate::model::{EventKind, Record, SymbolTable};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line
    Ndjson,
    /// Comma-separated values with a header; book levels as `price:qty;price:qty`
    Csv,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Recording directory
    dir: PathBuf,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Ndjson)]
    format: Format,
    /// Only these kinds, comma-separated: trade, quote, book_delta, book_snapshot, candle, ticker, status
    #[arg(long, value_parser = parse_kinds, value_name = "KINDS")]
    kind: Option<KindList>,
    /// Start at this seq
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    from: u64,
    /// Stop after this many records (after --kind filtering)
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// Write to FILE instead of stdout
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone)]
struct KindList(Vec<EventKind>);

fn parse_kinds(text: &str) -> Result<KindList, String> {
    super::parse_list(text, str::parse).map(KindList)
}

/// Columns of every record, before the kind's own fields.
const BASE_COLUMNS: [&str; 7] = ["seq", "ts_exchange", "ts_recv", "exchange", "symbol", "venue_symbol", "kind"];

/// Each kind's own fields, in the order the model declares them.
fn kind_columns(kind: EventKind) -> &'static [&'static str] {
    match kind {
        EventKind::Trade => &["price", "qty", "side", "trade_id"],
        EventKind::Quote => &["bid_price", "bid_qty", "ask_price", "ask_qty", "update_id"],
        EventKind::BookDelta => &["first_update_id", "last_update_id", "bids", "asks"],
        EventKind::BookSnapshot => &["last_update_id", "bids", "asks"],
        EventKind::Candle => &[
            "interval_s",
            "open_time",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "quote_volume",
            "trade_count",
            "closed",
        ],
        EventKind::Ticker => &["last", "volume_24h", "quote_volume_24h", "high_24h", "low_24h", "best_bid", "best_ask"],
        EventKind::Status => &["status", "url", "streams", "reason", "stream", "expected", "got", "count", "sample"],
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let reader = Reader::open(&args.dir).with_context(|| format!("cannot open recording {}", args.dir.display()))?;
    let kinds = args.kind.clone().map_or_else(|| EventKind::ALL.to_vec(), |k| k.0);
    let sink: Box<dyn Write> = match &args.out {
        Some(path) => {
            Box::new(std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut sink = std::io::BufWriter::with_capacity(1 << 16, sink);
    let columns = csv_columns(&kinds);
    if args.format == Format::Csv {
        writeln!(sink, "{}", columns.join(","))?;
    }
    let bar = super::progress_bar(reader.record_count().ok(), "exporting");
    if args.out.is_none() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut remaining = args.limit.unwrap_or(u64::MAX);
    'blocks: for block in reader.prefetch_from(args.from) {
        let block = block.with_context(|| format!("reading {}", args.dir.display()))?;
        for record in block.records.iter().filter(|r| r.seq >= args.from && kinds.contains(&r.event.kind())) {
            if remaining == 0 {
                break 'blocks;
            }
            remaining -= 1;
            let row = to_row(record, reader.symbols());
            match args.format {
                Format::Ndjson => writeln!(sink, "{}", Value::Object(row))?,
                Format::Csv => write_csv_row(&mut sink, &columns, &row)?,
            }
        }
        bar.inc(block.records.len() as u64);
        if super::interrupt::requested() {
            sink.flush()?;
            anyhow::bail!("interrupted");
        }
    }
    sink.flush()?;
    bar.finish_and_clear();
    Ok(ExitCode::SUCCESS)
}

/// One record as an ordered JSON object: the common fields, then the kind's own.
pub fn to_row(record: &Record, symbols: &SymbolTable) -> Map<String, Value> {
    let mut row = Map::new();
    row.insert("seq".into(), record.seq.into());
    row.insert("ts_exchange".into(), record.ts_exchange.into());
    row.insert("ts_recv".into(), record.ts_recv.into());
    row.insert("exchange".into(), record.exchange.as_str().into());
    let (symbol, venue) = match symbols.get(record.instrument) {
        Some(i) => (Value::from(i.symbol.as_str()), Value::from(i.venue_symbol.as_str())),
        None => (Value::Null, Value::Null),
    };
    row.insert("symbol".into(), symbol);
    row.insert("venue_symbol".into(), venue);
    if let Ok(Value::Object(fields)) = serde_json::to_value(&record.event) {
        row.extend(fields);
    }
    row
}

fn csv_columns(kinds: &[EventKind]) -> Vec<&'static str> {
    let mut columns: Vec<&'static str> = BASE_COLUMNS.to_vec();
    for kind in EventKind::ALL.iter().filter(|k| kinds.contains(k)) {
        for c in kind_columns(*kind) {
            if !columns.contains(c) {
                columns.push(c);
            }
        }
    }
    columns
}

fn write_csv_row(sink: &mut impl Write, columns: &[&str], row: &Map<String, Value>) -> std::io::Result<()> {
    let mut line = String::with_capacity(128);
    for (i, column) in columns.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        let cell = match row.get(*column) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(items)) => items.iter().map(cell_of_item).collect::<Vec<_>>().join(";"),
            Some(other) => other.to_string(),
        };
        if cell.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&cell.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(&cell);
        }
    }
    writeln!(sink, "{line}")
}

/// A book level `{"price":..,"qty":..}` becomes `price:qty`; other items print as text.
fn cell_of_item(item: &Value) -> String {
    match item {
        Value::Object(level) => match (level.get("price"), level.get("qty")) {
            (Some(Value::String(p)), Some(Value::String(q))) => format!("{p}:{q}"),
            _ => item.to_string(),
        },
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    /// The CSV column lists must match the model's serialized field names exactly.
    #[test]
    fn kind_columns_match_the_model() {
        let d = Decimal::from_int(1);
        let level = Level { price: d, qty: d };
        let samples = [
            Event::Trade(Trade { price: d, qty: d, side: Side::Buy, trade_id: Some(1) }),
            Event::Quote(Quote { bid_price: d, bid_qty: d, ask_price: d, ask_qty: d, update_id: None }),
            Event::BookDelta(BookDelta { first_update_id: 1, last_update_id: 2, bids: vec![level], asks: vec![] }),
            Event::BookSnapshot(BookSnapshot { last_update_id: None, bids: vec![], asks: vec![] }),
            Event::Candle(Box::new(Candle {
                interval_s: 60,
                open_time: 0,
                open: d,
                high: d,
                low: d,
                close: d,
                volume: d,
                quote_volume: None,
                trade_count: None,
                closed: true,
            })),
            Event::Ticker(Box::new(Ticker {
                last: d,
                volume_24h: d,
                quote_volume_24h: None,
                high_24h: None,
                low_24h: None,
                best_bid: None,
                best_ask: None,
            })),
        ];
        for event in samples {
            let Value::Object(map) = serde_json::to_value(&event).unwrap() else { panic!() };
            let keys: Vec<&str> = map.keys().map(String::as_str).filter(|k| *k != "kind").collect();
            assert_eq!(keys, kind_columns(event.kind()), "{:?}", event.kind());
        }
        let statuses = [
            Status::Connected { url: "u".into() },
            Status::Subscribed { streams: vec![] },
            Status::Disconnected { reason: "r".into() },
            Status::Gap { stream: "s".into(), expected: 1, got: 3 },
            Status::Resync { stream: "s".into() },
            Status::ParseError { count: 1, sample: "x".into() },
        ];
        for status in statuses {
            let Value::Object(map) = serde_json::to_value(Event::Status(status)).unwrap() else { panic!() };
            for key in map.keys().filter(|k| *k != "kind") {
                assert!(kind_columns(EventKind::Status).contains(&key.as_str()), "{key}");
            }
        }
    }
}
