//! Every real Binance message type in the fixtures normalizes: spot, Binance.US and USD-M
//! futures captures (cryptofeed format), their REST depth snapshots, and book sync on them.

use std::collections::BTreeMap;

use tapedeck::engine::{Engine, OrderBook};
use tapedeck::exchange::{FrameKind, Normalized, SymbolInfo, venue};
use tapedeck::model::{Event, EventKind, Exchange, Instrument, Record, SymbolTable};

use crate::util::root;

/// (receive ns, frame) for server frames; line 1 is the connect header.
pub(crate) fn server_frames(text: &str) -> Vec<(u64, String)> {
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty() && !l.contains(" <- "))
        .map(|l| {
            let (ts, frame) = l.split_once(": ").unwrap();
            ((ts.parse::<f64>().unwrap() * 1e9) as u64, frame.to_string())
        })
        .collect()
}

/// (symbol, receive ns, body) for REST snapshot lines `<url> -> <ts>: <body>`.
fn rest_snapshots(text: &str) -> Vec<(String, u64, String)> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (url, rest) = l.split_once(" -> ").unwrap();
            let (ts, body) = rest.split_once(": ").unwrap();
            let symbol = url.split("symbol=").nth(1).unwrap().split('&').next().unwrap().to_string();
            (symbol, (ts.parse::<f64>().unwrap() * 1e9) as u64, body.to_string())
        })
        .collect()
}

fn symbols(frames: &[(u64, String)]) -> Vec<SymbolInfo> {
    // Quote assets of the captured pairs, from Binance's exchangeInfo (never split by guess).
    let known = [
        ("BLZETH", "BLZ", "ETH"),
        ("LRCBTC", "LRC", "BTC"),
        ("NKNUSDT", "NKN", "USDT"),
        ("RUNEEUR", "RUNE", "EUR"),
        ("COMPUSDT", "COMP", "USDT"),
        ("CRVUSDT", "CRV", "USDT"),
        ("OMGBUSD", "OMG", "BUSD"),
        ("ZRXUSDT", "ZRX", "USDT"),
        ("AKROUSDT", "AKRO", "USDT"),
        ("CTKUSDT", "CTK", "USDT"),
        ("KEEPUSDT", "KEEP", "USDT"),
        ("SUSHIUSDT", "SUSHI", "USDT"),
    ];
    let _ = frames;
    known
        .iter()
        .map(|(s, b, q)| SymbolInfo {
            instrument: Instrument::new(Exchange::Binance, b, q, s),
            status: "TRADING".into(),
            tradable: true,
            price_precision: None,
            qty_precision: None,
        })
        .collect()
}

fn normalize_all(path: &str) -> (Vec<(u64, Normalized)>, BTreeMap<EventKind, usize>) {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    let frames = server_frames(&text);
    let v = venue(Exchange::Binance).unwrap();
    let mut normalizer = v.normalizer(&symbols(&frames));
    let mut all = Vec::new();
    let mut counts = BTreeMap::new();
    for (ts, frame) in &frames {
        let mut out = Vec::new();
        let kind = normalizer.normalize(frame, *ts, &mut out).unwrap_or_else(|e| panic!("{path}: {e}: {frame}"));
        assert_eq!(kind, FrameKind::Data, "{frame}");
        for n in out {
            *counts.entry(n.event.kind()).or_default() += 1;
            all.push((*ts, n));
        }
    }
    (all, counts)
}

#[test]
fn every_binance_capture_frame_normalizes() {
    let cases = [
        (
            "tests/fixtures/binance_spot/cryptofeed/BINANCE.ws.1.0",
            [(EventKind::BookDelta, 177), (EventKind::Quote, 84), (EventKind::Trade, 2), (EventKind::Candle, 2)],
        ),
        (
            "tests/fixtures/binance_us/BINANCE_US.ws.1.0",
            [(EventKind::BookDelta, 336), (EventKind::Quote, 128), (EventKind::Trade, 11), (EventKind::Candle, 5)],
        ),
        (
            "tests/fixtures/binance_usdm/BINANCE_FUTURES.ws.1.0",
            [(EventKind::BookDelta, 764), (EventKind::Quote, 613), (EventKind::Trade, 91), (EventKind::Candle, 67)],
        ),
    ];
    for (path, expected) in cases {
        let (_, counts) = normalize_all(path);
        for (kind, n) in expected {
            assert_eq!(counts.get(&kind).copied().unwrap_or(0), n, "{path}: {kind:?} ({counts:?})");
        }
    }
}

#[test]
fn kline_and_agg_trade_values_are_exact() {
    let (all, _) = normalize_all("tests/fixtures/binance_spot/cryptofeed/BINANCE.ws.1.0");
    let candle = all
        .iter()
        .find_map(|(_, n)| match &n.event {
            Event::Candle(c) => Some(c.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(candle.interval_s, 60);
    assert!(!candle.closed, "x=false in the capture");
    assert_eq!(candle.open_time, 1_633_998_480_000_000_000);
    assert_eq!((candle.open.to_string(), candle.volume.to_string()), ("0.35270000".into(), "25877.00000000".into()));
    let trade = all
        .iter()
        .find_map(|(_, n)| match &n.event {
            Event::Trade(t) => Some((t.clone(), n.ts_exchange)),
            _ => None,
        })
        .unwrap();
    assert_eq!(trade.0.price.to_string(), "0.35280000");
    assert_eq!(trade.0.trade_id, Some(15_683_430), "the aggregate trade id");
    assert_eq!(trade.1, 1_633_998_523_963_000_000);
}

/// The capture's REST snapshots plus its diffs sync every book without a gap.
#[test]
fn rest_snapshots_sync_the_books_of_every_capture() {
    for (ws, http) in [
        (
            "tests/fixtures/binance_spot/cryptofeed/BINANCE.ws.1.0",
            "tests/fixtures/binance_spot/cryptofeed/BINANCE.http.0.0",
        ),
        ("tests/fixtures/binance_us/BINANCE_US.ws.1.0", "tests/fixtures/binance_us/BINANCE_US.http.0.0"),
    ] {
        let (events, _) = normalize_all(ws);
        let v = venue(Exchange::Binance).unwrap();
        let syms = symbols(&[]);
        let mut table = SymbolTable::new();
        for s in &syms {
            table.intern(&s.instrument);
        }
        let mut timeline: Vec<(u64, Normalized)> = events;
        for (symbol, ts, body) in rest_snapshots(&std::fs::read_to_string(root().join(http)).unwrap()) {
            let inst = syms.iter().find(|s| s.instrument.venue_symbol == symbol).unwrap().instrument.clone();
            timeline.push((ts, v.parse_snapshot(&body, &inst, ts).unwrap()));
        }
        timeline.sort_by_key(|(ts, _)| *ts);
        let mut engine = Engine::new(table.clone(), vec![]);
        for (seq, (ts, n)) in timeline.iter().enumerate() {
            let instrument = table.lookup(n.instrument.as_ref().unwrap()).unwrap();
            engine.on_record(&Record {
                seq: seq as u64,
                ts_exchange: n.ts_exchange,
                ts_recv: *ts,
                exchange: Exchange::Binance,
                instrument,
                event: n.event.clone(),
            });
        }
        let books: Vec<(&str, Option<&OrderBook>)> = table
            .iter()
            .map(|(id, i)| (i.venue_symbol.as_str(), engine.book(id)))
            .filter(|(_, b)| b.is_some())
            .collect();
        assert!(!books.is_empty(), "{ws}");
        for (symbol, book) in books {
            let book = book.unwrap();
            if book.last_update_id().is_some() {
                assert!(book.is_valid(), "{ws} {symbol}: {:?}", book.invalid_reason());
            }
        }
    }
}
