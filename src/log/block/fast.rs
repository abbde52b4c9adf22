//! The block decoder's fast path: trades, quotes and depth diffs with narrow decimals,
//! read straight from the payload at the fixed offsets bincode's legacy encoding gives them.
//!
//! Why: these three kinds are nearly every record of a capture, and the derived decoder
//! spent most of replay's decoding time checking bounds field by field and moving each
//! record through layers of `Result`. Here one bounds check covers a record's fixed part
//! and one each level list. Anything else (other kinds, the wide decimal form, a tag out
//! of range, a record cut short) returns `None`, and the caller decodes that record with
//! bincode, which gives the error if there is one: this path never decides that bytes are
//! bad, so it cannot disagree with the format's definition. No IO.

use crate::model::decimal::NARROW_LEN;
use crate::model::{BookDelta, Decimal, Event, Exchange, InstrumentId, Level, Quote, Record, Side, Trade};

/// seq, ts_exchange, ts_recv (u64 each), exchange and instrument and event tag (u32 each).
const HEAD: usize = 36;

#[inline(always)]
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

#[inline(always)]
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

#[inline(always)]
fn decimal_at(b: &[u8], at: usize) -> Option<Decimal> {
    Decimal::from_narrow(&b[at..at + NARROW_LEN])
}

/// An `Option<u64>` at `at`: the value and the bytes it took.
#[inline(always)]
fn option_u64_at(b: &[u8], at: usize) -> Option<(Option<u64>, usize)> {
    match *b.get(at)? {
        0 => Some((None, 1)),
        1 if b.len() >= at + 9 => Some((Some(u64_at(b, at + 1)), 9)),
        _ => None,
    }
}

/// A level list at `at`, all narrow: the levels and the bytes they took.
#[inline(always)]
fn levels_at(b: &[u8], at: usize) -> Option<(Vec<Level>, usize)> {
    const LEVEL: usize = 2 * NARROW_LEN;
    let len = usize::try_from(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?)).ok()?;
    let end = at.checked_add(8)?.checked_add(len.checked_mul(LEVEL)?)?;
    let bytes = b.get(at + 8..end)?;
    let mut levels = Vec::with_capacity(len);
    for l in bytes.chunks_exact(LEVEL) {
        levels.push(Level { price: Decimal::from_narrow(l)?, qty: Decimal::from_narrow(&l[NARROW_LEN..])? });
    }
    Some((levels, 8 + bytes.len()))
}

/// The record at the start of `b` and the bytes it took, when it is one this path reads.
#[inline]
pub(super) fn record(b: &[u8]) -> Option<(Record, usize)> {
    if b.len() < HEAD {
        return None;
    }
    let exchange = match u32_at(b, 24) {
        0 => Exchange::Binance,
        1 => Exchange::Gate,
        2 => Exchange::Lbank,
        3 => Exchange::Bittrex,
        _ => return None,
    };
    let (event, used) = match u32_at(b, 32) {
        0 => {
            const FIXED: usize = HEAD + 2 * NARROW_LEN + 4;
            if b.len() < FIXED {
                return None;
            }
            let side = match u32_at(b, HEAD + 2 * NARROW_LEN) {
                0 => Side::Buy,
                1 => Side::Sell,
                2 => Side::Unknown,
                _ => return None,
            };
            let (trade_id, id_len) = option_u64_at(b, FIXED)?;
            let trade = Trade { price: decimal_at(b, HEAD)?, qty: decimal_at(b, HEAD + NARROW_LEN)?, side, trade_id };
            (Event::Trade(trade), FIXED + id_len)
        }
        1 => {
            const FIXED: usize = HEAD + 4 * NARROW_LEN;
            if b.len() < FIXED {
                return None;
            }
            let (update_id, id_len) = option_u64_at(b, FIXED)?;
            let quote = Quote {
                bid_price: decimal_at(b, HEAD)?,
                bid_qty: decimal_at(b, HEAD + NARROW_LEN)?,
                ask_price: decimal_at(b, HEAD + 2 * NARROW_LEN)?,
                ask_qty: decimal_at(b, HEAD + 3 * NARROW_LEN)?,
                update_id,
            };
            (Event::Quote(quote), FIXED + id_len)
        }
        2 => {
            if b.len() < HEAD + 16 {
                return None;
            }
            let (bids, bids_len) = levels_at(b, HEAD + 16)?;
            let (asks, asks_len) = levels_at(b, HEAD + 16 + bids_len)?;
            let delta = BookDelta { first_update_id: u64_at(b, HEAD), last_update_id: u64_at(b, HEAD + 8), bids, asks };
            (Event::BookDelta(delta), HEAD + 16 + bids_len + asks_len)
        }
        _ => return None,
    };
    let record = Record {
        seq: u64_at(b, 0),
        ts_exchange: u64_at(b, 8),
        ts_recv: u64_at(b, 16),
        exchange,
        instrument: InstrumentId(u32_at(b, 28)),
        event,
    };
    Some((record, used))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;
    use crate::model::record::level_codec_tests::{decimal, levels};
    use proptest::prelude::*;

    fn event() -> impl Strategy<Value = Event> {
        let side = prop_oneof![Just(Side::Buy), Just(Side::Sell), Just(Side::Unknown)];
        prop_oneof![
            (decimal(), decimal(), side, any::<Option<u64>>())
                .prop_map(|(price, qty, side, trade_id)| Event::Trade(Trade { price, qty, side, trade_id })),
            (decimal(), decimal(), decimal(), decimal(), any::<Option<u64>>()).prop_map(|(a, b, c, d, id)| {
                Event::Quote(Quote { bid_price: a, bid_qty: b, ask_price: c, ask_qty: d, update_id: id })
            }),
            (any::<u64>(), any::<u64>(), levels(6), levels(6)).prop_map(|(f, l, bids, asks)| {
                Event::BookDelta(BookDelta { first_update_id: f, last_update_id: l, bids, asks })
            }),
            "[a-z]{0,8}".prop_map(|reason| Event::Status(Status::Disconnected { reason })),
        ]
    }

    fn record() -> impl Strategy<Value = Record> {
        let exchange = proptest::sample::select(Exchange::ALL.to_vec());
        (any::<u64>(), any::<u64>(), any::<u64>(), exchange, any::<u32>(), event()).prop_map(
            |(seq, ts_exchange, ts_recv, exchange, instrument, event)| Record {
                seq,
                ts_exchange,
                ts_recv,
                exchange,
                instrument: InstrumentId(instrument),
                event,
            },
        )
    }

    fn narrow(d: &Decimal) -> bool {
        i64::try_from(d.mantissa()).is_ok()
    }

    /// Whether the fast path must take `record`: a hot kind with every decimal narrow.
    fn hot(record: &Record) -> bool {
        match &record.event {
            Event::Trade(t) => narrow(&t.price) && narrow(&t.qty),
            Event::Quote(q) => [q.bid_price, q.bid_qty, q.ask_price, q.ask_qty].iter().all(narrow),
            Event::BookDelta(d) => d.bids.iter().chain(&d.asks).all(|l| narrow(&l.price) && narrow(&l.qty)),
            _ => false,
        }
    }

    /// Level counts whose byte length overflows, or runs past the input, are not read here
    /// (review found the first one overflowing an addition); bincode then refuses them.
    #[test]
    fn absurd_level_counts_are_left_to_bincode() {
        let delta = |count: u64| {
            let mut b = vec![0u8; 32];
            b.extend_from_slice(&2u32.to_le_bytes());
            b.extend_from_slice(&[0; 16]);
            b.extend_from_slice(&count.to_le_bytes());
            b.extend_from_slice(&[0; 40]);
            b
        };
        for count in [1_024_819_115_206_086_200, u64::MAX, u64::MAX / 18, 3] {
            let bytes = delta(count);
            assert!(super::record(&bytes).is_none(), "{count}");
            let cfg = bincode::config::legacy().with_limit::<{ 1 << 20 }>();
            assert!(bincode::decode_from_slice::<Record, _>(&bytes, cfg).is_err(), "{count}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// The fast path agrees with bincode on every input it accepts, record and length,
        /// including encodings with bytes changed or cut short; and it accepts every
        /// unchanged trade, quote and diff whose decimals are narrow.
        #[test]
        fn agrees_with_bincode(
            record in record(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
            cut in proptest::option::of(any::<usize>()),
        ) {
            let cfg = bincode::config::legacy();
            let mut bytes = bincode::encode_to_vec(&record, cfg).unwrap();
            if edits.is_empty() && cut.is_none() {
                let fast = super::record(&bytes);
                prop_assert_eq!(fast.is_some(), hot(&record));
                if let Some((r, used)) = fast {
                    prop_assert_eq!(used, bytes.len());
                    prop_assert_eq!(bincode::encode_to_vec(&r, cfg).unwrap(), bytes);
                }
                return Ok(());
            }
            super::super::damage(&mut bytes, &edits, cut);
            if let Some((r, used)) = super::record(&bytes) {
                let (expect, expect_used): (Record, usize) = bincode::decode_from_slice(&bytes, cfg)
                    .map_err(|e| TestCaseError::fail(format!("fast path read bytes bincode refuses: {e}")))?;
                // Compared encoded, because decimals compare by value ("1.50" == "1.5").
                prop_assert_eq!(bincode::encode_to_vec(&r, cfg).unwrap(), bincode::encode_to_vec(&expect, cfg).unwrap());
                prop_assert_eq!(used, expect_used);
            }
        }
    }
}
