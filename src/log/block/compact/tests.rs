//! The compact codec against the legacy one as the model: whatever goes in comes out with
//! the same spelling (compared by legacy encoding, since decimals compare by value), any
//! damaged input is an error and never a panic, and the real capture shrinks.

use proptest::prelude::*;

use super::encode::{put_levels, put_step};
use super::*;
use crate::model::record::level_codec_tests::{decimal, levels};
use crate::model::{Candle, Status};

fn legacy(records: &[Record]) -> Vec<Vec<u8>> {
    records.iter().map(|r| bincode::encode_to_vec(r, super::super::CFG).unwrap()).collect()
}

fn encode(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = Encoder::new(records.first().map_or(0, |r| r.seq));
    for r in records {
        encoder.record(r, &mut out).unwrap();
    }
    out
}

fn decode(bytes: &[u8], first_seq: u64, count: usize) -> Result<Vec<Record>, String> {
    let mut decoder = Decoder::new(bytes, first_seq);
    let mut records = Vec::new();
    for _ in 0..count {
        decoder.record_into(&mut records)?;
    }
    if decoder.position() != bytes.len() {
        return Err("trailing bytes".into());
    }
    Ok(records)
}

fn id() -> impl Strategy<Value = Option<u64>> {
    // Ids near each other (the usual case) and anywhere at all.
    prop_oneof![(1_000u64..1_010).prop_map(Some), any::<Option<u64>>()]
}

fn event() -> impl Strategy<Value = Event> {
    let side = prop_oneof![Just(Side::Buy), Just(Side::Sell), Just(Side::Unknown)];
    prop_oneof![
        4 => (decimal(), decimal(), side, id())
            .prop_map(|(price, qty, side, trade_id)| Event::Trade(Trade { price, qty, side, trade_id })),
        4 => (decimal(), decimal(), decimal(), decimal(), id()).prop_map(|(a, b, c, d, update_id)| {
            Event::Quote(Quote { bid_price: a, bid_qty: b, ask_price: c, ask_qty: d, update_id })
        }),
        3 => (any::<u64>(), any::<u64>(), levels(8), levels(8)).prop_map(|(f, l, bids, asks)| {
            Event::BookDelta(BookDelta { first_update_id: f, last_update_id: l, bids, asks })
        }),
        1 => (id(), levels(8), levels(8))
            .prop_map(|(last_update_id, bids, asks)| Event::BookSnapshot(BookSnapshot { last_update_id, bids, asks })),
        1 => "[a-z]{0,8}".prop_map(|reason| Event::Status(Status::Disconnected { reason })),
        1 => (decimal(), decimal(), any::<Option<u64>>()).prop_map(|(o, v, trade_count)| Event::Candle(Box::new(Candle {
            interval_s: 60, open_time: 0, open: o, high: o, low: o, close: o, volume: v,
            quote_volume: None, trade_count, closed: true,
        }))),
    ]
}

/// A block's records: seqs from `first` on, consecutive or (sparse) skipping; times near
/// each other or anywhere; sources repeating or not.
fn block() -> impl Strategy<Value = Vec<Record>> {
    let exchange = proptest::sample::select(Exchange::ALL.to_vec());
    let ts = prop_oneof![3 => 1_723_161_254_000_000_000u64..1_723_161_255_000_000_000, 1 => any::<u64>()];
    let one = (prop_oneof![3 => Just(1u64), 1 => any::<u64>()], ts.clone(), ts, exchange, 0u32..3, event());
    (any::<u64>(), proptest::collection::vec(one, 0..24)).prop_map(|(first, rows)| {
        let mut seq = first;
        rows.into_iter()
            .enumerate()
            .map(|(i, (skip, ts_recv, ts_exchange, exchange, instrument, event))| {
                if i > 0 {
                    seq = seq.wrapping_add(skip);
                }
                Record { seq, ts_exchange, ts_recv, exchange, instrument: InstrumentId(instrument), event }
            })
            .collect()
    })
}

/// Level lists as venues send them: one price scale and one quantity scale, i64 mantissas,
/// prices near each other, often with trailing zeros: the lists that pack.
fn packable() -> impl Strategy<Value = Vec<Level>> {
    let mantissa = prop_oneof![
        3 => (0i64..100_000).prop_map(|m| m * 1_000_000),
        1 => 0i64..1_000,
        1 => any::<i64>(),
    ];
    (0u8..=38, 0u8..=38, proptest::collection::vec((mantissa.clone(), mantissa), 1..12)).prop_map(|(ps, qs, rows)| {
        rows.into_iter()
            .map(|(p, q)| Level {
                price: Decimal::new(p as i128, ps).unwrap(),
                qty: Decimal::new(q as i128, qs).unwrap(),
            })
            .collect()
    })
}

fn delta(seq: u64, bids: Vec<Level>, asks: Vec<Level>) -> Record {
    Record {
        seq,
        ts_exchange: 1,
        ts_recv: 1,
        exchange: Exchange::Binance,
        instrument: InstrumentId(0),
        event: Event::BookDelta(BookDelta { first_update_id: 5, last_update_id: 9, bids, asks }),
    }
}

fn level(price: i128, qty: i128) -> Level {
    Level { price: Decimal::new(price, 8).unwrap(), qty: Decimal::new(qty, 8).unwrap() }
}

/// The mode byte `put_levels` writes for `levels`.
fn mode(levels: &[Level]) -> u8 {
    let mut out = Vec::new();
    put_levels(&mut out, levels, &mut 0);
    out[1]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn packed_lists_round_trip(lists in proptest::collection::vec((packable(), packable()), 1..6)) {
        let records: Vec<Record> = lists.into_iter().enumerate().map(|(i, (b, a))| delta(i as u64, b, a)).collect();
        for r in &records {
            let Event::BookDelta(d) = &r.event else { unreachable!() };
            let steps_fit = d.bids.windows(2).all(|w| i64::try_from(w[1].price.mantissa() - w[0].price.mantissa()).is_ok());
            // Steps past an i64 may still pack once their shared zeros are stripped.
            prop_assert!(mode(&d.bids) == PACKED || !steps_fit);
        }
        let back = decode(&encode(&records), 0, records.len()).map_err(TestCaseError::fail)?;
        prop_assert_eq!(legacy(&back), legacy(&records));
    }

    #[test]
    fn round_trips_every_record(records in block()) {
        let bytes = encode(&records);
        let first = records.first().map_or(0, |r| r.seq);
        let back = decode(&bytes, first, records.len()).map_err(TestCaseError::fail)?;
        prop_assert_eq!(legacy(&back), legacy(&records));
    }

    /// Changed or missing bytes give an error or some records, never a panic, and never a
    /// capacity beyond what the input could fill.
    #[test]
    fn damaged_input_is_an_error_or_records(
        records in block(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let mut bytes = encode(&records);
        if bytes.is_empty() {
            return Ok(());
        }
        crate::log::block::damage(&mut bytes, &edits, cut);
        let _ = decode(&bytes, 0, records.len());
    }

    /// The word-at-a-time varint and step agree with the byte-by-byte ones on any bytes
    /// they accept, value and length, from any position.
    #[test]
    fn fast_and_slow_paths_agree(
        bytes in proptest::collection::vec(any::<u8>(), 0..20),
        skip in 0usize..4,
        base in any::<i128>(),
    ) {
        let at = skip.min(bytes.len());
        let start = |d: &mut Decoder| d.at = at;
        let (mut fast, mut slow) = (Decoder::new(&bytes, 0), Decoder::new(&bytes, 0));
        start(&mut fast);
        start(&mut slow);
        if let Some(v) = fast.short_varint() {
            prop_assert_eq!(slow.u64_slow(), Ok(v));
            prop_assert_eq!(slow.position(), fast.position());
            let (mut fast, mut slow) = (Decoder::new(&bytes, 0), Decoder::new(&bytes, 0));
            start(&mut fast);
            start(&mut slow);
            prop_assert_eq!(fast.step(base), slow.step_slow(base));
            prop_assert_eq!(slow.position(), fast.position());
        }
    }

    #[test]
    fn a_step_round_trips_any_pair(base in any::<i128>(), value in any::<i128>()) {
        let mut out = Vec::new();
        put_step(&mut out, base, value);
        let mut d = Decoder::new(&out, 0);
        prop_assert_eq!(d.step(base), Ok(value));
        prop_assert_eq!(d.position(), out.len());
    }
}

/// Steps as the venues make them: a tick on a price padded to eight decimals is one byte.
#[test]
fn step_sizes() {
    let p = 6_123_456_000_000i128; // "61234.56000000"
    let cases: &[(i128, i128, usize)] = &[
        (0, 0, 1),
        (p, p, 1),
        (p, p + 1_000_000, 1),
        (p, p - 3_000_000, 1),
        (p, p + 250_000_000, 2),
        (p, p + 7_000_000, 1),
        (p, p + 8_000_000, 2),
        (0, 12_345_000, 3),
        (0, 100_000_000, 2),
        (0, -7, 1),
        (i128::MIN, i128::MAX, 1),
        (i128::MAX, i128::MIN, 1),
        (0, i128::MIN, 19),
        (0, 10i128.pow(38), 16),
    ];
    for &(base, value, len) in cases {
        let mut out = Vec::new();
        put_step(&mut out, base, value);
        assert_eq!(out.len(), len, "{base} -> {value}");
        assert_eq!(Decoder::new(&out, 0).step(base), Ok(value), "{base} -> {value}");
    }
}

/// Inputs no encoder writes are errors, not values.
#[test]
fn refuses_what_no_encoder_writes() {
    let cases: &[(&[u8], &str)] = &[
        (&[], "cut short"),
        (&[0x0F], "unknown tag bits"),
        (&[DELTA | HAS_ID], "unknown tag bits"),
        (&[SNAPSHOT | SAME_SCALES], "unknown tag bits"),
        (&[0x06 | NEXT_SEQ | SAME_SOURCE, 0, 0], "unknown record kind"),
        // A quote without an id, whose widths give the id one.
        (&[QUOTE | NEXT_SEQ | SAME_SOURCE | SAME_SCALES, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0], "absent id"),
        (&[QUOTE | NEXT_SEQ | SAME_SOURCE | SAME_SCALES, 0, 0, 0x01, 0x80], "unknown quote widths"),
        (&[TRADE | NEXT_SEQ | SAME_SOURCE | SAME_TS | SAME_SCALES, 0, 0x00, 0x06], "unknown trade side"),
        (&[TRADE | NEXT_SEQ | SAME_SOURCE | SAME_TS | SAME_SCALES, 0, 0x00, 0x08], "unknown trade widths"),
        // A trade without an id, whose widths give the id a width.
        (&[TRADE | NEXT_SEQ | SAME_SOURCE | SAME_TS | SAME_SCALES, 0, 0x40, 0, 0, 0, 0], "unknown trade widths"),
        (&[TRADE | NEXT_SEQ | SAME_SOURCE | SAME_TS | SAME_SCALES, 0, 0x01, 0x80], "unknown trade widths"),
        (&[TRADE | NEXT_SEQ | SAME_SOURCE | SAME_TS | SAME_SCALES | HAS_ID, 0, 0x40, 0x80], "unknown trade widths"),
        (&[TRADE | NEXT_SEQ | SAME_SOURCE | SAME_TS | SAME_SCALES, 0, 0x00, 0x40], "unknown trade widths"),
        // Widths of 1 and 2 bytes, with two bytes left.
        (&[TRADE | NEXT_SEQ | SAME_SOURCE | SAME_TS | SAME_SCALES, 0, 0x08, 0x00, 0, 0], "cut short"),
        // A trade from an exchange past the last one.
        (&[TRADE | NEXT_SEQ, 0, 0, 9, 0], "unknown exchange"),
        // A trade whose side code is 3.
        (&[TRADE | NEXT_SEQ | SAME_SOURCE, 0, 0, 0, 0, 0x00, 0x06], "unknown trade side"),
        (&[TRADE | NEXT_SEQ | SAME_SOURCE, 0, 0, 0, 39], "decimal scale out of range"),
        // A varint of eleven bytes.
        (&[TRADE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], "overflows 64 bits"),
        // A diff claiming a million bids in six bytes.
        (&[DELTA | NEXT_SEQ | SAME_SOURCE, 0, 0, 0, 0, 0xC0, 0x84, 0x3D], "level count past"),
    ];
    for (bytes, want) in cases {
        let got = decode(bytes, 0, 1).expect_err("refused");
        assert!(got.contains(want), "{bytes:?}: {got}");
    }
}

/// The real capture, re-encoded: under a third of the legacy bytes, and the same records.
#[test]
fn the_sample_capture_shrinks() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings/binance-btcusdt-20240808");
    let reader = crate::log::Reader::open(&dir).unwrap();
    let records: Vec<Record> = reader.records_from(0).take(50_000).map(|r| r.unwrap()).collect();
    let old: usize = legacy(&records).iter().map(Vec::len).sum();
    let mut new = 0;
    for chunk in records.chunks(1024) {
        let bytes = encode(chunk);
        new += bytes.len();
        let back = decode(&bytes, chunk[0].seq, chunk.len()).unwrap();
        assert_eq!(legacy(&back), legacy(chunk));
    }
    eprintln!("compact {new} bytes against legacy {old}");
    assert!(new * 3 < old, "compact {new} bytes against legacy {old}");
}

/// Lists at the edges of packing: zero steps, full widths, fifteen shared zeros, one
/// level, and lists that must not pack.
#[test]
fn packing_edges() {
    let e15 = 10i128.pow(15);
    let i64max = i64::MAX as i128;
    let i64min = i64::MIN as i128;
    let cases: Vec<(Vec<Level>, u8)> = vec![
        (vec![level(5, 1), level(5, 2), level(5, 3)], PACKED),
        (vec![level(0, i64min), level(i64max, 0)], PACKED),
        (vec![level(0, e15), level(e15, 0), level(2 * e15, 3 * e15)], PACKED),
        (vec![level(6_123_456_000_000, 0)], PACKED),
        // The step from MIN to MAX is past an i64.
        (vec![level(i64min, 1), level(i64max, 1)], UNIFORM),
        (vec![level(i64max + 1, 1), level(1, 1)], UNIFORM),
        (vec![level(1, 1), Level { price: Decimal::new(2, 7).unwrap(), qty: Decimal::new(1, 8).unwrap() }], PER_LEVEL),
    ];
    for (i, (levels, want)) in cases.into_iter().enumerate() {
        assert_eq!(mode(&levels), want, "case {i}");
        let records = vec![delta(0, levels.clone(), levels)];
        let bytes = encode(&records);
        assert_eq!(legacy(&decode(&bytes, 0, 1).unwrap()), legacy(&records), "case {i}");
        // Every cut of it is an error, never a panic or fewer levels.
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], 0, 1).is_err(), "case {i} cut at {cut}");
        }
    }
}

/// A list's first price steps from the previous list of its side, across records of
/// either book kind, and past an empty list.
#[test]
fn the_first_price_carries_across_records() {
    let bids = vec![level(6_123_456_000_000, 100), level(6_123_455_000_000, 200)];
    let mut snapshot = delta(2, vec![], vec![]);
    snapshot.event = Event::BookSnapshot(BookSnapshot { last_update_id: Some(11), bids: bids.clone(), asks: vec![] });
    let records = vec![delta(0, bids.clone(), vec![]), delta(1, vec![], bids.clone()), snapshot];
    let bytes = encode(&records);
    assert_eq!(legacy(&decode(&bytes, 0, 3).unwrap()), legacy(&records));
    // The snapshot's first bid is a zero step from the first record's, past the second
    // record's empty bids: predicted from anything else, it takes more bytes.
    let snapshot_len = |records: &[Record]| encode(records).len() - encode(&records[..2]).len();
    let mut far = records.clone();
    far[0] = delta(0, vec![level(1, 100)], vec![]);
    assert_eq!(legacy(&decode(&encode(&far), 0, 3).unwrap()), legacy(&far));
    assert!(snapshot_len(&records) + 3 <= snapshot_len(&far), "{} {}", snapshot_len(&records), snapshot_len(&far));
}

/// A record claiming a huge string is an error before any allocation of that size.
#[test]
fn a_huge_string_claim_is_an_error() {
    let status = Record {
        seq: 0,
        ts_exchange: 0,
        ts_recv: 0,
        exchange: Exchange::Binance,
        instrument: InstrumentId(0),
        event: Event::Status(Status::Disconnected { reason: "x".into() }),
    };
    let mut bytes = encode(std::slice::from_ref(&status));
    let len_at = bytes.len() - 1 - 8;
    bytes[len_at..len_at + 8].copy_from_slice(&0xFFFF_FFF0u64.to_le_bytes());
    let err = decode(&bytes, 0, 1).unwrap_err();
    assert!(err.contains("Limit"), "{err}");
    let big = Record { event: Event::Status(Status::Disconnected { reason: "x".repeat(2 << 20) }), ..status };
    assert!(Encoder::new(0).record(&big, &mut Vec::new()).is_err());
}

/// Quote fields of every width from one byte to eight, and past a word (the varint form).
#[test]
fn quote_fields_of_every_width() {
    let quote = |seq: u64, m: i128, id: Option<u64>| Record {
        seq,
        ts_exchange: 5,
        ts_recv: 5,
        exchange: Exchange::Gate,
        instrument: InstrumentId(1),
        event: Event::Quote(Quote {
            bid_price: Decimal::new(m, 2).unwrap(),
            bid_qty: Decimal::new(m + 1, 8).unwrap(),
            ask_price: Decimal::new(-m, 2).unwrap(),
            ask_qty: Decimal::new(7, 0).unwrap(),
            update_id: id,
        }),
    };
    let records: Vec<Record> = (0..127u32)
        .map(|k| quote(k as u64, (1i128 << k) - 1, (k % 2 == 0).then(|| (1u64 << (k % 64)).wrapping_mul(3))))
        .collect();
    let bytes = encode(&records);
    assert_eq!(legacy(&decode(&bytes, 0, records.len()).unwrap()), legacy(&records));
}

/// Trade fields of every width, every side, with and without an id; and steps on either
/// side of the largest a fixed field holds (a zigzagged rest below 2^61), for trades and
/// quotes.
#[test]
fn trade_fields_of_every_width_and_the_wide_boundary() {
    let sides = [Side::Buy, Side::Sell, Side::Unknown];
    let trade = |seq: u64, price: i128, qty: i128, id: Option<u64>| Record {
        seq,
        ts_exchange: 9,
        ts_recv: 5,
        exchange: Exchange::Lbank,
        instrument: InstrumentId(2),
        event: Event::Trade(Trade {
            price: Decimal::new(price, 4).unwrap(),
            qty: Decimal::new(qty, 3).unwrap(),
            side: sides[seq as usize % 3],
            trade_id: id,
        }),
    };
    let mut records: Vec<Record> = (0..127u32)
        .map(|k| trade(k as u64, (1i128 << k) - 1, 1i128 << (k % 100), (k % 2 == 1).then(|| 1u64 << (k % 64))))
        .collect();
    // Steps of -2^60 and 2^60 from the previous price: rests zigzag to 2^61 - 1 (the widest
    // fixed field) and 2^61 (the varint form). Odd, so no zeros are stripped.
    let last = (1i128 << 126) - 1;
    for (i, step) in [-(1i128 << 60) - 1, (1 << 60) + 1, 1].into_iter().enumerate() {
        let prev = records.last().map(|r| match &r.event {
            Event::Trade(t) => t.price.mantissa(),
            _ => unreachable!(),
        });
        let price = prev.unwrap_or(last).wrapping_add(step);
        records.push(trade(127 + i as u64, price, 7, None));
    }
    let bytes = encode(&records);
    assert_eq!(legacy(&decode(&bytes, 0, records.len()).unwrap()), legacy(&records));
    for (step, fixed) in [(-(1i128 << 60), true), (1i128 << 60, false)] {
        assert_eq!(super::encode::step_word(0, step).is_some(), fixed, "{step}");
        let quote = Record {
            event: Event::Quote(Quote {
                bid_price: Decimal::new(step, 0).unwrap(),
                bid_qty: Decimal::new(step, 0).unwrap(),
                ask_price: Decimal::new(step, 0).unwrap(),
                ask_qty: Decimal::new(1, 0).unwrap(),
                update_id: Some(3),
            }),
            ..trade(0, 0, 0, None)
        };
        let bytes = encode(std::slice::from_ref(&quote));
        assert_eq!(legacy(&decode(&bytes, 0, 1).unwrap()), legacy(std::slice::from_ref(&quote)), "{step}");
    }
}
