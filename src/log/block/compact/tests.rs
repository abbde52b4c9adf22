//! The compact codec against the legacy one as the model: whatever goes in comes out with
//! the same spelling (compared by legacy encoding, since decimals compare by value), any
//! damaged input is an error and never a panic, and the real capture shrinks.

use proptest::prelude::*;

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
    let records = (0..count).map(|_| decoder.record()).collect::<Result<Vec<_>, _>>()?;
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

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
        for (i, b) in edits {
            let at = i % bytes.len();
            bytes[at] ^= b;
        }
        if let Some(c) = cut {
            bytes.truncate(c % (bytes.len() + 1));
        }
        let _ = decode(&bytes, 0, records.len());
    }

    /// The word-at-a-time varint and step agree with the byte-by-byte ones on any bytes
    /// they accept, value and length.
    #[test]
    fn fast_and_slow_paths_agree(bytes in proptest::collection::vec(any::<u8>(), 0..20), base in any::<i128>()) {
        let mut fast = Decoder::new(&bytes, 0);
        if let Some(v) = fast.short_varint() {
            let mut slow = Decoder::new(&bytes, 0);
            prop_assert_eq!(slow.u64_slow(), Ok(v));
            prop_assert_eq!(slow.position(), fast.position());
            let (mut fast, mut slow) = (Decoder::new(&bytes, 0), Decoder::new(&bytes, 0));
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
        (&[0x20], "unknown tag bits"),
        (&[0x0F], "unknown tag bits"),
        (&[0x06 | NEXT_SEQ | SAME_SOURCE, 0, 0], "unknown record kind"),
        // A trade from an exchange past the last one.
        (&[TRADE | NEXT_SEQ, 0, 0, 9, 0], "unknown exchange"),
        // A trade whose side code is 3.
        (&[TRADE | NEXT_SEQ | SAME_SOURCE, 0, 0, 3], "unknown trade side"),
        (&[TRADE | NEXT_SEQ | SAME_SOURCE, 0, 0, 0, 39, 0], "decimal scale out of range"),
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
