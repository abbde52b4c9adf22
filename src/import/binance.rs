//! Binance public dumps (the data.binance.vision layout): trades, aggTrades and klines, as
//! .csv or .zip, with or without a header row.
//!
//! Timestamps may be ms or µs (the spot dumps switched to µs in 2025): a value of 10^14 or
//! more is µs, since 10^14 ms is the year 5138. Kline files may also be the 7-column
//! `open_time_ms,open_time_utc,open,high,low,close,volume` layout (freqtrade's), recognised
//! by its header. [`Layout::Ohlcv`] is that 7-column layout from any venue (`import ohlcv`),
//! parsed by the same code with stricter checks, since nothing else vouches for such files.
//! Every row is validated before anything is written, so a bad file leaves the recording
//! untouched; errors name the file and line.
//!
//! A closed candle's `ts_exchange` is its last millisecond (`open_time + interval − 1 ms`,
//! Binance's `close_time`): a candle is only known once its bucket has ended, so replay must
//! not see it at its open time.

use std::io::{BufRead, Read};
use std::path::Path;

use super::ImportError;
use crate::model::{Candle, Decimal, Event, NANOS_PER_MS, Nanos, Side, Trade};

/// Which dump layout a file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `id,price,qty,quote_qty,time,is_buyer_maker,is_best_match`
    Trades,
    /// `agg_id,price,qty,first_id,last_id,time,is_buyer_maker,is_best_match`
    AggTrades,
    /// 12-column klines, or the 7-column layout with a header
    Klines { interval_s: u32 },
    /// `open_time_ms,open_time_utc,open,high,low,close,volume`, header optional, any venue.
    /// Also checked: the UTC column agrees with the ms one, prices are positive,
    /// low ≤ open, close ≤ high, and open times strictly increase down the file.
    Ohlcv { interval_s: u32 },
}

/// The header of the 7-column layout.
pub const OHLCV_HEADER: &str = "open_time_ms,open_time_utc,open,high,low,close,volume";

/// One parsed row: its exchange time and event.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub ts_exchange: Nanos,
    pub event: Event,
}

/// What reading a file produced.
#[derive(Debug, Default)]
pub struct Parsed {
    pub rows: Vec<Row>,
    /// Rows skipped with `--skip-bad-rows`, with the first few errors.
    pub skipped: u64,
    pub skipped_samples: Vec<String>,
}

/// Reads the file's text (the first .csv entry of a .zip).
///
/// # Errors
/// When the file cannot be read or the zip holds no csv.
pub fn read_text(path: &Path) -> Result<String, ImportError> {
    let shown = path.display().to_string();
    let io = |source: std::io::Error| ImportError::Io { path: shown.clone(), source };
    if shown.to_lowercase().ends_with(".zip") {
        let file = std::fs::File::open(path).map_err(io)?;
        let mut archive = zip::ZipArchive::new(file).map_err(|e| ImportError::Line {
            path: shown.clone(),
            line: 0,
            detail: format!("not a zip archive: {e}"),
        })?;
        for i in 0..archive.len() {
            let mut entry = archive.by_index(i).map_err(|e| ImportError::Line {
                path: shown.clone(),
                line: 0,
                detail: format!("zip entry {i}: {e}"),
            })?;
            if entry.name().to_lowercase().ends_with(".csv") {
                let mut text = String::new();
                entry.read_to_string(&mut text).map_err(io)?;
                return Ok(text);
            }
        }
        return Err(ImportError::Line { path: shown, line: 0, detail: "the zip archive holds no .csv file".into() });
    }
    let mut text = String::new();
    std::io::BufReader::new(std::fs::File::open(path).map_err(io)?).read_to_string(&mut text).map_err(io)?;
    Ok(text)
}

/// Parses every row of `text` (from `path`, for messages).
///
/// # Errors
/// The first bad row, naming file and line, unless `skip_bad_rows`.
pub fn parse(path: &Path, text: &str, layout: Layout, skip_bad_rows: bool) -> Result<Parsed, ImportError> {
    let shown = path.display().to_string();
    let mut parsed = Parsed::default();
    let ohlcv = matches!(layout, Layout::Ohlcv { .. });
    let mut seven_column = ohlcv;
    let mut previous_open = None;
    for (index, line) in text.as_bytes().lines().enumerate() {
        let line_no = index as u64 + 1;
        let line = line.map_err(|source| ImportError::Io { path: shown.clone(), source })?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if index == 0 && !line.starts_with(|c: char| c.is_ascii_digit()) {
            seven_column = line.starts_with("open_time_ms,open_time_utc,");
            // A different header means different columns; guessing their order would
            // import wrong numbers without an error.
            if ohlcv && line != OHLCV_HEADER {
                return Err(ImportError::Line {
                    path: shown,
                    line: line_no,
                    detail: format!("expected the header {OHLCV_HEADER} (or none), found {line:?}"),
                });
            }
            continue;
        }
        let row = parse_row(line, layout, seven_column).and_then(|row| {
            if ohlcv {
                check_order(&row, &mut previous_open)?;
            }
            Ok(row)
        });
        match row {
            Ok(row) => parsed.rows.push(row),
            Err(detail) if skip_bad_rows => {
                parsed.skipped += 1;
                if parsed.skipped_samples.len() < 5 {
                    parsed.skipped_samples.push(format!("{shown}:{line_no}: {detail}"));
                }
            }
            Err(detail) => return Err(ImportError::Line { path: shown, line: line_no, detail }),
        }
    }
    Ok(parsed)
}

fn parse_row(line: &str, layout: Layout, seven_column: bool) -> Result<Row, String> {
    let cols: Vec<&str> = line.split(',').map(str::trim).collect();
    let want = match layout {
        Layout::Trades => 7,
        Layout::AggTrades => 8,
        Layout::Klines { .. } | Layout::Ohlcv { .. } if seven_column => 7,
        Layout::Klines { .. } | Layout::Ohlcv { .. } => 12,
    };
    if cols.len() != want {
        return Err(format!("expected {want} columns, found {}", cols.len()));
    }
    match layout {
        Layout::Trades => {
            let ts = time(cols[4], "time")?;
            Ok(Row {
                ts_exchange: ts,
                event: Event::Trade(Trade {
                    price: dec(cols[1], "price")?,
                    qty: qty(cols[2], "qty")?,
                    side: taker(cols[5])?,
                    trade_id: Some(int(cols[0], "id")?),
                }),
            })
        }
        Layout::AggTrades => Ok(Row {
            ts_exchange: time(cols[5], "transact_time")?,
            event: Event::Trade(Trade {
                price: dec(cols[1], "price")?,
                qty: qty(cols[2], "qty")?,
                side: taker(cols[6])?,
                trade_id: Some(int(cols[0], "agg_id")?),
            }),
        }),
        Layout::Ohlcv { interval_s } => {
            let row = parse_row(line, Layout::Klines { interval_s }, true)?;
            check_ohlcv(&row, cols[1])?;
            Ok(row)
        }
        Layout::Klines { interval_s } => {
            let open_time = time(cols[0], "open_time")?;
            let interval_ns = interval_s as u64 * 1_000_000_000;
            let (close_time, quote_volume, trade_count) = if seven_column {
                (open_time + interval_ns - NANOS_PER_MS, None, None)
            } else {
                (time(cols[6], "close_time")?, Some(qty(cols[7], "quote_volume")?), Some(int(cols[8], "trades")?))
            };
            let (o, h, l, c) = if seven_column { (2, 3, 4, 5) } else { (1, 2, 3, 4) };
            let volume_col = if seven_column { 6 } else { 5 };
            Ok(Row {
                ts_exchange: close_time,
                event: Event::Candle(Box::new(Candle {
                    interval_s,
                    open_time,
                    open: dec(cols[o], "open")?,
                    high: dec(cols[h], "high")?,
                    low: dec(cols[l], "low")?,
                    close: dec(cols[c], "close")?,
                    volume: qty(cols[volume_col], "volume")?,
                    quote_volume,
                    trade_count,
                    closed: true,
                })),
            })
        }
    }
}

/// The checks [`Layout::Ohlcv`] adds to a parsed 7-column row; `utc` is its open_time_utc.
fn check_ohlcv(row: &Row, utc: &str) -> Result<(), String> {
    let Event::Candle(candle) = &row.event else { unreachable!("klines parse to candles") };
    let stated = crate::model::time::parse_utc(utc).map_err(|e| format!("column open_time_utc: {e}"))?;
    if stated != candle.open_time {
        return Err(format!(
            "column open_time_utc: {utc} is not open_time_ms ({})",
            crate::model::time::format_utc(candle.open_time)
        ));
    }
    crate::exchange::check_event(&row.event, 0).map_err(|e| e.to_string())?;
    let (body_low, body_high) = (candle.open.min(candle.close), candle.open.max(candle.close));
    if candle.low > body_low {
        return Err(format!("column low: {} is above the open or close {body_low}", candle.low));
    }
    if candle.high < body_high {
        return Err(format!("column high: {} is below the open or close {body_high}", candle.high));
    }
    Ok(())
}

/// One candle per bucket, in order: a repeated or earlier open time within a file means a
/// broken export, and replaying it would count the bucket twice.
fn check_order(row: &Row, previous_open: &mut Option<Nanos>) -> Result<(), String> {
    let Event::Candle(candle) = &row.event else { unreachable!("klines parse to candles") };
    if let Some(previous) = previous_open.filter(|previous| candle.open_time <= *previous) {
        return Err(format!(
            "open time {} does not follow the previous row's {}",
            crate::model::time::format_utc(candle.open_time),
            crate::model::time::format_utc(previous)
        ));
    }
    *previous_open = Some(candle.open_time);
    Ok(())
}

fn dec(text: &str, column: &str) -> Result<Decimal, String> {
    text.parse().map_err(|e| format!("column {column}: {e}"))
}

/// Quantities must not be negative.
fn qty(text: &str, column: &str) -> Result<Decimal, String> {
    let d = dec(text, column)?;
    if d.is_negative() {
        return Err(format!("column {column}: negative quantity {text}"));
    }
    Ok(d)
}

fn int(text: &str, column: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("column {column}: {text:?} is not a whole number"))
}

/// ms or µs since the epoch, told apart by magnitude, to ns.
fn time(text: &str, column: &str) -> Result<Nanos, String> {
    let raw = int(text, column)?;
    Ok(if raw >= 100_000_000_000_000 { raw * 1_000 } else { raw * NANOS_PER_MS })
}

/// `is_buyer_maker`: then the seller took liquidity.
fn taker(text: &str) -> Result<Side, String> {
    match text {
        "True" | "true" | "TRUE" => Ok(Side::Sell),
        "False" | "false" | "FALSE" => Ok(Side::Buy),
        other => Err(format!("column is_buyer_maker: {other:?} is not true or false")),
    }
}

/// The interval in a dump's file name (`ADABTC-1m-2021-11-27.csv` → 60,
/// `ADA_BTC-5m.csv` → 300).
pub fn interval_from_name(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    let name = strip_extensions(name);
    name.split('-').find_map(|part| crate::model::time::parse_timeframe(part).ok())
}

/// `ADA_BTC-5m.csv.zip` → `ADA_BTC-5m`: only the extensions importers read, so a dot
/// inside a name survives.
pub(crate) fn strip_extensions(name: &str) -> &str {
    let mut name = name;
    for ext in [".zip", ".ZIP", ".csv", ".CSV"] {
        name = name.strip_suffix(ext).unwrap_or(name);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_table() {
        let cases = [
            (
                "3735683259,61837.63000000,0.02000000,1236.75260000,1723161255342,True,True",
                Layout::Trades,
                Ok((1_723_161_255_342_000_000, "61837.63000000", Side::Sell)),
            ),
            (
                "3735683259,61837.63000000,0.02000000,1236.75260000,1723161255342123,False,True",
                Layout::Trades,
                Ok((1_723_161_255_342_123_000, "61837.63000000", Side::Buy)),
            ),
            (
                "13519807,0.00141342,23.00000000,15373518,15373518,1570752011620,True,True",
                Layout::AggTrades,
                Ok((1_570_752_011_620_000_000, "0.00141342", Side::Sell)),
            ),
            ("1,2,3", Layout::Trades, Err("expected 7 columns, found 3".to_string())),
            ("1,abc,1,1,1,True,True", Layout::Trades, Err("column price: invalid character 'a' in number".to_string())),
            ("1,1,-1,1,1,True,True", Layout::Trades, Err("column qty: negative quantity -1".to_string())),
            (
                "1,1,1,1,1,maybe,True",
                Layout::Trades,
                Err("column is_buyer_maker: \"maybe\" is not true or false".to_string()),
            ),
        ];
        for (line, layout, expected) in cases {
            let got = parse_row(line, layout, false).map(|r| match r.event {
                Event::Trade(t) => (r.ts_exchange, t.price.to_string(), t.side),
                _ => unreachable!(),
            });
            let expected = expected.map(|(ts, p, s)| (ts, p.to_string(), s));
            assert_eq!(got, expected, "{line}");
        }
    }

    #[test]
    fn interval_from_file_names() {
        assert_eq!(interval_from_name(Path::new("ADABTC-1m-2021-11-27.csv")), Some(60));
        assert_eq!(interval_from_name(Path::new("XRPETH-5m-2019-10-11_2019-10-13.csv")), Some(300));
        assert_eq!(interval_from_name(Path::new("BTCUSDT-trades.csv")), None);
        assert_eq!(interval_from_name(Path::new("ADA_BTC-5m.csv")), Some(300));
        assert_eq!(interval_from_name(Path::new("dir/ZEC_BTC-1h.csv.zip")), Some(3600));
    }

    #[test]
    fn ohlcv_rows_table() {
        let layout = Layout::Ohlcv { interval_s: 300 };
        let cases = [
            (
                "1515560100000,2018-01-10T04:55:00Z,0.00005330,0.00005330,0.00005288,0.00005290,431401.97869504",
                Ok((1_515_560_399_999_000_000, "0.00005290", "431401.97869504")),
            ),
            ("1515560100000,2018-01-10T04:55:00Z,1,1,1,1", Err("expected 7 columns, found 6")),
            (
                "1515560100000,2018-01-10T05:00:00Z,1,1,1,1,1",
                Err("column open_time_utc: 2018-01-10T05:00:00Z is not open_time_ms (2018-01-10T04:55:00.000Z)"),
            ),
            ("1515560100000,2018-01-10T04:55:00Z,1,2,0,1,1", Err("rejected: candle price 0 is not positive")),
            ("1515560100000,2018-01-10T04:55:00Z,1,2,1,1,-1", Err("column volume: negative quantity -1")),
            ("1515560100000,2018-01-10T04:55:00Z,1,2,1.5,3,1", Err("column low: 1.5 is above the open or close 1")),
            ("1515560100000,2018-01-10T04:55:00Z,1,2,1,3,1", Err("column high: 2 is below the open or close 3")),
            ("1515560100000,2018-01-10T04:55:00Z,1,1.0,1,1,0", Ok((1_515_560_399_999_000_000, "1", "0"))),
        ];
        for (line, expected) in cases {
            let got = parse_row(line, layout, true).map(|r| match r.event {
                Event::Candle(c) => (r.ts_exchange, c.close.to_string(), c.volume.to_string()),
                _ => unreachable!(),
            });
            let expected = expected.map(|(ts, c, v)| (ts, c.to_string(), v.to_string())).map_err(str::to_string);
            assert_eq!(got, expected, "{line}");
        }
    }

    #[test]
    fn ohlcv_files_name_the_bad_line() {
        let parse_text = |text: &str| {
            parse(Path::new("ADA_BTC-5m.csv"), text, Layout::Ohlcv { interval_s: 300 }, false).map(|p| p.rows.len())
        };
        let row = |ms: u64, utc: &str| format!("{ms},{utc},1,1,1,1,1\n");
        let a = row(1_515_560_100_000, "2018-01-10T04:55:00Z");
        let b = row(1_515_560_400_000, "2018-01-10T05:00:00Z");
        assert_eq!(parse_text(&format!("{OHLCV_HEADER}\n{a}{b}")).unwrap(), 2);
        assert_eq!(parse_text(&format!("{a}{b}")).unwrap(), 2, "the header is optional");
        let cases = [
            (format!("{OHLCV_HEADER}\n{a}{a}"), "ADA_BTC-5m.csv:3: open time 2018-01-10T04:55:00.000Z does not follow"),
            (format!("{OHLCV_HEADER}\n{b}{a}"), "ADA_BTC-5m.csv:3: open time 2018-01-10T04:55:00.000Z does not follow"),
            (format!("date,open,high,low,close,volume\n{a}"), "ADA_BTC-5m.csv:1: expected the header"),
        ];
        for (text, prefix) in cases {
            let err = parse_text(&text).unwrap_err().to_string();
            assert!(err.starts_with(prefix), "{err}");
        }
    }
}
