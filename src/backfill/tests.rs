//! Paging rules on hand-made pages: the open-candle rule, gaps, duplicates and resume cursors.

use super::*;
use crate::model::{Candle, Decimal, Side, Trade};

const MIN: u64 = 60_000;
/// 2021-11-27T00:00:00Z, the first ADABTC bucket in the fixtures.
const T0: u64 = 1_637_971_200_000;

fn config(now_ms: u64) -> Config {
    Config {
        exchange: Exchange::Binance,
        rest_url: String::new(),
        symbols: vec!["ADABTC".into()],
        kline_s: Some(60),
        trades: false,
        from_ms: T0,
        to_ms: T0 + 60 * MIN,
        now_ms,
        budget: None,
        retry: Retry::default(),
    }
}

fn stream(kind: HistoryKind, held: Held, gap: Option<u64>) -> Stream {
    let ada = Instrument::new(Exchange::Binance, "ADA", "BTC", "ADABTC");
    let name = format!("ADABTC:{kind}");
    Stream::new(ada, kind, name, &config(u64::MAX), held, gap)
}

fn candle(open_ms: u64) -> HistoryRow {
    let d = |s: &str| s.parse::<Decimal>().unwrap();
    HistoryRow::Candle(Candle {
        interval_s: 60,
        open_time: open_ms * NANOS_PER_MS,
        open: d("0.00002853"),
        high: d("0.00002854"),
        low: d("0.00002851"),
        close: d("0.00002854"),
        volume: d("36304.20000000"),
        quote_volume: None,
        trade_count: Some(79),
        closed: true,
    })
}

fn trade(id: u64, ts_ms: u64) -> HistoryRow {
    let d = |s: &str| s.parse::<Decimal>().unwrap();
    let trade = Trade { price: d("0.00141342"), qty: d("23.00000000"), side: Side::Sell, trade_id: Some(id) };
    HistoryRow::Trade { ts_exchange: ts_ms * NANOS_PER_MS, trade }
}

/// The buffer as (ts ms, what): "c<open offset in min>" or "gap <expected>-<got>" (offsets) or "t<id>".
fn drain(s: &mut Stream) -> Vec<(u64, String)> {
    s.buffer
        .drain(..)
        .map(|(ts, event)| {
            let what = match event {
                Event::Candle(c) => format!("c{}", (c.open_time / NANOS_PER_MS - T0) / MIN),
                Event::Trade(t) => format!("t{}", t.trade_id.unwrap()),
                Event::Status(Status::Gap { expected, got, .. }) if expected > 1_000_000 => {
                    format!("gap {}-{}", (expected - T0) / MIN, (got - T0) / MIN)
                }
                Event::Status(Status::Gap { expected, got, .. }) => format!("gap {expected}-{got}"),
                other => format!("{other:?}"),
            };
            (ts / NANOS_PER_MS, what)
        })
        .collect()
}

#[test]
fn candles_are_stamped_at_their_bucket_end_and_gaps_span_pages() {
    let mut s = stream(HistoryKind::Klines(60), Held::default(), None);
    s.take_page(vec![candle(T0), candle(T0 + MIN)], s.cursor.end_ms, u64::MAX, true).unwrap();
    assert_eq!(drain(&mut s), [(T0 + MIN, "c0".into()), (T0 + 2 * MIN, "c1".into())]);
    assert_eq!(s.cursor.from_ms, T0 + 2 * MIN);
    // The next page starts 3 buckets later: buckets 2..=4 are missing.
    s.take_page(vec![candle(T0 + 5 * MIN), candle(T0 + 6 * MIN)], s.cursor.end_ms, u64::MAX, true).unwrap();
    assert_eq!(
        drain(&mut s),
        [(T0 + 5 * MIN, "gap 2-5".into()), (T0 + 6 * MIN, "c5".into()), (T0 + 7 * MIN, "c6".into())]
    );
    // A repeated row is skipped, a row past the range ends the stream.
    s.take_page(
        vec![candle(T0 + 6 * MIN), candle(T0 + 7 * MIN), candle(T0 + 60 * MIN)],
        s.cursor.end_ms,
        u64::MAX,
        true,
    )
    .unwrap();
    assert_eq!(drain(&mut s), [(T0 + 8 * MIN, "c7".into())]);
    assert_eq!((s.summary.duplicates_skipped, s.done, s.summary.complete), (1, true, true));
}

#[test]
fn a_bucket_not_over_is_never_recorded() {
    let mut s = stream(HistoryKind::Klines(60), Held::default(), None);
    // The run started 30 s into bucket 2: bucket 1 ended 30 s before (past the 5 s margin), bucket 2 is open.
    let settled = T0 + 2 * MIN + 30_000 - SETTLE_MS;
    s.take_page(vec![candle(T0), candle(T0 + MIN), candle(T0 + 2 * MIN)], s.cursor.end_ms, settled, true).unwrap();
    assert_eq!(drain(&mut s), [(T0 + MIN, "c0".into()), (T0 + 2 * MIN, "c1".into())]);
    assert!(s.done && s.summary.stopped_at_open_candle);
    assert_eq!(s.cursor.from_ms, T0 + 2 * MIN, "a rerun later starts at the open bucket");
    // The venue's own flag counts too (Gate).
    let mut s = stream(HistoryKind::Klines(60), Held::default(), None);
    let HistoryRow::Candle(mut open) = candle(T0) else { unreachable!() };
    open.closed = false;
    s.take_page(vec![HistoryRow::Candle(open)], s.cursor.end_ms, u64::MAX, true).unwrap();
    assert!(s.buffer.is_empty() && s.summary.stopped_at_open_candle);
}

#[test]
fn resume_continues_after_what_is_held_without_repeating_a_gap() {
    // Held: buckets up to 4, and the gap that ended at bucket 5 was already recorded.
    let held = Held {
        count: 4,
        last_time: Some((T0 + 4 * MIN) * NANOS_PER_MS),
        last_id: None,
        last_ts: (T0 + 5 * MIN) * NANOS_PER_MS,
    };
    let mut s = stream(HistoryKind::Klines(60), held, Some(T0 + 7 * MIN));
    assert_eq!((s.cursor.from_ms, s.prev_open_ms, s.start_ms), (T0 + 5 * MIN, Some(T0 + 4 * MIN), T0 + 5 * MIN));
    // The venue answers from bucket 7 (5 and 6 missing): that gap is held, so only the candles go in.
    s.take_page(vec![candle(T0 + 7 * MIN), candle(T0 + 9 * MIN)], s.cursor.end_ms, u64::MAX, true).unwrap();
    assert_eq!(
        drain(&mut s),
        [(T0 + 8 * MIN, "c7".into()), (T0 + 9 * MIN, "gap 8-9".into()), (T0 + 10 * MIN, "c9".into())]
    );
    // Nothing new in a window that ends where the cursor is: an error, not a loop.
    let mut s = stream(HistoryKind::Klines(60), Held::default(), None);
    let err = s.take_page(vec![], T0, u64::MAX, true).unwrap_err();
    assert!(matches!(err, BackfillError::NoProgress { .. }), "{err}");
    // An empty window that ends later moves the cursor there (Gate's windows).
    s.take_page(vec![], T0 + 10 * MIN, u64::MAX, true).unwrap();
    assert_eq!((s.cursor.from_ms, s.done), (T0 + 10 * MIN, false));
    // Fully held already: done before asking.
    let held = Held { count: 60, last_time: Some((T0 + 59 * MIN) * NANOS_PER_MS), ..Held::default() };
    assert!(stream(HistoryKind::Klines(60), held, None).done);
}

#[test]
fn trades_page_by_id_and_jumps_are_gaps() {
    let held = Held {
        count: 3,
        last_time: Some((T0 + 10) * NANOS_PER_MS),
        last_id: Some(102),
        last_ts: (T0 + 10) * NANOS_PER_MS,
    };
    let mut s = stream(HistoryKind::Trades, held, None);
    assert_eq!((s.cursor.after_id, s.prev_id, s.cursor.from_ms), (Some(102), Some(102), T0 + 10));
    let page = vec![trade(101, T0 + 9), trade(102, T0 + 10), trade(103, T0 + 10), trade(106, T0 + 20)];
    s.take_page(page, s.cursor.end_ms, u64::MAX, true).unwrap();
    assert_eq!(drain(&mut s), [(T0 + 10, "t103".into()), (T0 + 20, "gap 104-106".into()), (T0 + 20, "t106".into())]);
    assert_eq!((s.summary.duplicates_skipped, s.cursor.after_id), (2, Some(106)));
    // Without consecutive ids there is no gap check.
    s.take_page(vec![trade(200, T0 + 30)], s.cursor.end_ms, u64::MAX, false).unwrap();
    assert_eq!(drain(&mut s), [(T0 + 30, "t200".into())]);
    // An empty page: nothing left before the end.
    s.take_page(vec![], s.cursor.end_ms, u64::MAX, true).unwrap();
    assert!(s.done);
    // A kline row in a trade page is a body error.
    let mut s = stream(HistoryKind::Trades, Held::default(), None);
    assert!(matches!(s.take_page(vec![candle(T0)], T0 + MIN, u64::MAX, true), Err(BackfillError::Body { .. })));
}
