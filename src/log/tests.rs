//! Model tests: the recording against a `Vec<Record>` with appends, flushes, clean
//! reopens and crash-style reopens (dropping the writer without closing it).

use proptest::prelude::*;

use super::*;
use crate::model::*;

pub(crate) fn record(i: u64) -> Record {
    let price = Decimal::new(6_183_763_000_000 + (i as i128 % 97), 8).unwrap();
    let event = match i % 5 {
        0 => Event::Quote(Quote {
            bid_price: price,
            bid_qty: Decimal::from_int(1),
            ask_price: price,
            ask_qty: Decimal::from_int(2),
            update_id: Some(i),
        }),
        1 => Event::BookDelta(BookDelta {
            first_update_id: i,
            last_update_id: i + 1,
            bids: (0..(i % 7)).map(|k| Level { price, qty: Decimal::from_int(k as i64) }).collect(),
            asks: vec![],
        }),
        2 => Event::Status(Status::Gap { stream: "btcusdt@depth".into(), expected: i, got: i + 3 }),
        // A quantity beyond i64 mantissas must survive the log.
        3 => Event::Trade(Trade {
            price,
            qty: "123456789012345678901234.5".parse().unwrap(),
            side: Side::Sell,
            trade_id: None,
        }),
        _ => Event::Trade(Trade { price, qty: Decimal::from_int(i as i64), side: Side::Buy, trade_id: Some(i) }),
    };
    Record {
        seq: 0,
        ts_exchange: i * 1000,
        ts_recv: i * 1000 + 7,
        exchange: Exchange::Binance,
        instrument: InstrumentId((i % 3) as u32),
        event,
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append(u8),
    Flush,
    Reopen,
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => any::<u8>().prop_map(Op::Append),
        1 => Just(Op::Flush),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
    ]
}

fn open(dir: &std::path::Path, block_records: usize, compression: Compression) -> Writer {
    let config = WriterConfig { block_records, compression, flush_records: usize::MAX, ..WriterConfig::default() };
    let mut w = Writer::open(dir, RecordingMeta::new("test", 0), config).unwrap();
    for k in 0..3 {
        w.intern(&Instrument::new(Exchange::Binance, &format!("B{k}"), "USDT", &format!("B{k}USDT"))).unwrap();
    }
    w
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_vec_model(ops in proptest::collection::vec(op(), 1..40), block_records in 1usize..64, lz4 in any::<bool>()) {
        let compression = if lz4 { Compression::Lz4 } else { Compression::None };
        let dir = tempfile::tempdir().unwrap();
        let mut writer = open(dir.path(), block_records, compression);
        // The model: every record made durable, plus those still in the writer's open block.
        let mut stored: Vec<Record> = Vec::new();
        let mut pending: Vec<Record> = Vec::new();
        let mut next = 0u64;
        for op in ops {
            match op {
                Op::Append(n) => for _ in 0..n {
                    let mut r = record(next);
                    next += 1;
                    let seq = writer.append(r.clone()).unwrap();
                    r.seq = (stored.len() + pending.len()) as u64;
                    prop_assert_eq!(seq, r.seq);
                    pending.push(r);
                    if pending.len() >= block_records {
                        stored.append(&mut pending);
                    }
                },
                Op::Flush => {
                    writer.flush().unwrap();
                    stored.append(&mut pending);
                }
                Op::Reopen => {
                    writer.close().unwrap();
                    stored.append(&mut pending);
                    writer = open(dir.path(), block_records, compression);
                }
                Op::Crash => {
                    // The open block was only in memory: it is lost, nothing else is.
                    drop(writer);
                    pending.clear();
                    writer = open(dir.path(), block_records, compression);
                }
            }
            prop_assert_eq!(writer.next_seq(), (stored.len() + pending.len()) as u64);
        }
        writer.close().unwrap();
        stored.append(&mut pending);
        let back = read_all(dir.path()).unwrap();
        prop_assert_eq!(back.len(), stored.len());
        prop_assert!(back == stored, "records differ from the model");
        // Reading from the middle starts exactly at the asked seq.
        if !stored.is_empty() {
            let from = stored.len() as u64 / 2;
            let reader = Reader::open(dir.path()).unwrap();
            let tail: Vec<Record> = reader.records_from(from).collect::<Result<_>>().unwrap();
            prop_assert!(tail.as_slice() == &stored[from as usize..]);
        }
    }
}

#[test]
fn flipped_byte_is_reported_with_block_and_seq_range() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = open(dir.path(), 10, Compression::None);
    for i in 0..35 {
        writer.append(record(i)).unwrap();
    }
    writer.close().unwrap();
    for (offset, what) in [(40, "payload"), (5, "header")] {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        fault::flip_block_byte(copy.path(), 2, offset).unwrap();
        let err = read_all(copy.path()).unwrap_err().to_string();
        assert!(err.starts_with("corrupt block 2 (seq 20..=29): checksum mismatch"), "{what}: {err}");
    }
}

#[test]
fn not_a_recording_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Reader::open(dir.path()).err().unwrap().to_string();
    assert!(err.ends_with("not a tapedeck recording (no metadata found)"), "{err}");
    assert!(!dir.path().join("conf").exists(), "opening for read must not create a recording");
}

pub(crate) fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Recomputes a block's checksum after a test edited it, as a crafted file would.
fn reseal(bytes: &mut [u8]) {
    let at = block::CRC_AT;
    bytes[at..at + 4].copy_from_slice(&[0; 4]);
    let crc = crc32fast::hash(bytes);
    bytes[at..at + 4].copy_from_slice(&crc.to_le_bytes());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Fuzz-style: a block whose checksum was made to match hostile content (payload bytes
    /// changed, cut short, header count or length changed) decodes to an error or to records,
    /// and never panics or aborts on an absurd length.
    #[test]
    fn decoding_a_crafted_block_never_panics(
        n in 1u64..40,
        lz4 in any::<bool>(),
        legacy in any::<bool>(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..16),
        cut in proptest::option::of(any::<usize>()),
        count in proptest::option::of(any::<u32>()),
        raw_len in proptest::option::of(any::<u32>()),
    ) {
        let records: Vec<Record> = (0..n).map(|i| { let mut r = record(i); r.seq = i; r }).collect();
        let compression = if lz4 { Compression::Lz4 } else { Compression::None };
        let mut scratch = Vec::new();
        let mut bytes = if legacy {
            block::encode_legacy(&records, compression)
        } else {
            block::encode(&records, compression, &mut scratch).unwrap()
        };
        let payload = bytes.len() - block::HEADER_LEN;
        for (i, b) in edits {
            bytes[block::HEADER_LEN + i % payload] ^= b;
        }
        if let Some(c) = cut {
            bytes.truncate(block::HEADER_LEN + c % payload);
        }
        if let Some(c) = count {
            bytes[4..8].copy_from_slice(&c.to_le_bytes());
        }
        if let Some(r) = raw_len {
            bytes[16..20].copy_from_slice(&r.to_le_bytes());
        }
        reseal(&mut bytes);
        let mut out = Vec::new();
        if block::decode(&bytes, &mut out, &mut scratch).is_ok() {
            prop_assert!(out.iter().enumerate().all(|(i, r)| r.seq == i as u64));
        }
    }
}

/// A block whose seqs would pass the largest seq is an error, dense or sparse, in either
/// version, never an overflow.
#[test]
fn seqs_past_the_largest_are_an_error() {
    let trade = |seq: u64| {
        let mut r = record(4);
        r.seq = seq;
        r
    };
    for legacy in [false, true] {
        let records = [trade(u64::MAX), trade(0)];
        for sparse in [false, true] {
            let mut bytes = if legacy {
                block::encode_legacy(&records, Compression::None)
            } else {
                block::encode(&records, Compression::None, &mut Vec::new()).unwrap()
            };
            if sparse {
                bytes[2] = 1;
                reseal(&mut bytes);
            }
            let got = block::decode(&bytes, &mut Vec::new(), &mut Vec::new());
            assert!(got.is_err(), "legacy {legacy} sparse {sparse}");
        }
    }
}
