//! The normalized event model: one `Record` per thing that happened, in any venue.
//!
//! Records are what the log stores and what the engine consumes. They hold exact decimals
//! only (no `f64`), and time in nanoseconds since the Unix epoch. `Status` records make
//! connection trouble part of the data instead of a log line. This module does no IO.

use serde::{Deserialize, Serialize};

use super::decimal::Decimal;
use super::instrument::{Exchange, InstrumentId};

/// Nanoseconds since the Unix epoch.
pub type Nanos = u64;

pub const NANOS_PER_MS: u64 = 1_000_000;
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A price, exactly as the venue quoted it.
pub type Price = Decimal;
/// A quantity, exactly as the venue quoted it.
pub type Qty = Decimal;

/// One normalized event with its position in the recording.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Record {
    /// Position in the recording, contiguous from 0.
    pub seq: u64,
    /// The venue's own time for the event (see the capture notes per stream).
    pub ts_exchange: Nanos,
    /// When the frame was read from the socket, on the capture host's clock.
    pub ts_recv: Nanos,
    pub exchange: Exchange,
    pub instrument: InstrumentId,
    pub event: Event,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Trade(Trade),
    Quote(Quote),
    BookDelta(BookDelta),
    BookSnapshot(BookSnapshot),
    /// Boxed: candles and tickers are rare in hot streams, and would double every record's size.
    Candle(Box<Candle>),
    Ticker(Box<Ticker>),
    Status(Status),
}

/// The kind of an event, for filtering and counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Trade,
    Quote,
    BookDelta,
    BookSnapshot,
    Candle,
    Ticker,
    Status,
}

impl EventKind {
    pub const ALL: [EventKind; 7] = [
        EventKind::Trade,
        EventKind::Quote,
        EventKind::BookDelta,
        EventKind::BookSnapshot,
        EventKind::Candle,
        EventKind::Ticker,
        EventKind::Status,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            EventKind::Trade => "trade",
            EventKind::Quote => "quote",
            EventKind::BookDelta => "book_delta",
            EventKind::BookSnapshot => "book_snapshot",
            EventKind::Candle => "candle",
            EventKind::Ticker => "ticker",
            EventKind::Status => "status",
        }
    }
}

impl std::str::FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventKind::ALL
            .into_iter()
            .find(|k| {
                k.as_str() == s
                    || (s == "delta" && *k == EventKind::BookDelta)
                    || (s == "snapshot" && *k == EventKind::BookSnapshot)
            })
            .ok_or_else(|| {
                let names: Vec<_> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown kind {s:?} (expected one of {})", names.join(", "))
            })
    }
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Trade(_) => EventKind::Trade,
            Event::Quote(_) => EventKind::Quote,
            Event::BookDelta(_) => EventKind::BookDelta,
            Event::BookSnapshot(_) => EventKind::BookSnapshot,
            Event::Candle(_) => EventKind::Candle,
            Event::Ticker(_) => EventKind::Ticker,
            Event::Status(_) => EventKind::Status,
        }
    }
}

/// Which side took liquidity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct Trade {
    pub price: Price,
    pub qty: Qty,
    /// The aggressor (taker) side.
    pub side: Side,
    pub trade_id: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct Quote {
    pub bid_price: Price,
    pub bid_qty: Qty,
    pub ask_price: Price,
    pub ask_qty: Qty,
    /// The venue's book update id, where it gives one (Binance bookTicker `u`).
    pub update_id: Option<u64>,
}

/// One price level; a zero quantity in a delta removes the level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct Level {
    pub price: Price,
    pub qty: Qty,
}

// Decode is written out (below) for the level lists, the bulk of a book-heavy recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, bincode::Encode)]
pub struct BookDelta {
    pub first_update_id: u64,
    pub last_update_id: u64,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, bincode::Encode)]
pub struct BookSnapshot {
    /// The venue's update id for the snapshot; LBank full-depth pushes have none.
    pub last_update_id: Option<u64>,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

impl<Context> bincode::Decode<Context> for BookDelta {
    fn decode<D: bincode::de::Decoder<Context = Context>>(d: &mut D) -> Result<Self, bincode::error::DecodeError> {
        Ok(BookDelta {
            first_update_id: u64::decode(d)?,
            last_update_id: u64::decode(d)?,
            bids: decode_levels(d)?,
            asks: decode_levels(d)?,
        })
    }
}
bincode::impl_borrow_decode!(BookDelta);

impl<Context> bincode::Decode<Context> for BookSnapshot {
    fn decode<D: bincode::de::Decoder<Context = Context>>(d: &mut D) -> Result<Self, bincode::error::DecodeError> {
        Ok(BookSnapshot { last_update_id: Option::<u64>::decode(d)?, bids: decode_levels(d)?, asks: decode_levels(d)? })
    }
}
bincode::impl_borrow_decode!(BookSnapshot);

/// A `Vec<Level>` exactly as the derived decoder reads it, with a fast path for the usual
/// case of every decimal in its narrow form (a scale byte and an `i64`): one bounds check
/// for the whole list instead of two per level. Anything else takes the general path, which
/// also applies the decoder's size limit; the fast path allocates only for bytes it has seen.
fn decode_levels<D: bincode::de::Decoder>(d: &mut D) -> Result<Vec<Level>, bincode::error::DecodeError> {
    use super::decimal::NARROW_LEN as NARROW;
    use bincode::Decode;
    use bincode::de::read::Reader;
    const NARROW_LEVEL: usize = 2 * NARROW;
    let len = u64::decode(d)?;
    let len = usize::try_from(len).map_err(|_| bincode::error::DecodeError::OutsideUsizeRange(len))?;
    if let Some(total) = len.checked_mul(NARROW_LEVEL)
        && let Some(bytes) = d.reader().peek_read(total)
    {
        let mut levels = Vec::with_capacity(len);
        for b in bytes.chunks_exact(NARROW_LEVEL) {
            // A scale byte above MAX_SCALE is either the wide form's flag or damage: both
            // go the general way.
            match (Decimal::from_narrow(b), Decimal::from_narrow(&b[NARROW..])) {
                (Some(price), Some(qty)) => levels.push(Level { price, qty }),
                _ => break,
            }
        }
        if levels.len() == len {
            d.reader().consume(total);
            return Ok(levels);
        }
    }
    d.claim_container_read::<Level>(len)?;
    let mut levels = Vec::with_capacity(len);
    for _ in 0..len {
        d.unclaim_bytes_read(std::mem::size_of::<Level>());
        levels.push(Level::decode(d)?);
    }
    Ok(levels)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct Candle {
    /// Bucket length in seconds.
    pub interval_s: u32,
    /// Bucket start, ns.
    pub open_time: Nanos,
    pub open: Price,
    pub high: Price,
    pub low: Price,
    pub close: Price,
    /// Base-asset volume.
    pub volume: Qty,
    pub quote_volume: Option<Qty>,
    pub trade_count: Option<u64>,
    /// Whether the venue says the bucket is final.
    pub closed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct Ticker {
    pub last: Price,
    pub volume_24h: Qty,
    pub quote_volume_24h: Option<Qty>,
    pub high_24h: Option<Price>,
    pub low_24h: Option<Price>,
    pub best_bid: Option<Price>,
    pub best_ask: Option<Price>,
}

/// Connection and data-integrity events, recorded in-band so nothing is lost silently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    Connected {
        url: String,
    },
    Subscribed {
        streams: Vec<String>,
    },
    Disconnected {
        reason: String,
    },
    /// A break in a venue sequence (trade ids, depth update ids).
    Gap {
        stream: String,
        expected: u64,
        got: u64,
    },
    /// The book for this instrument was rebuilt from a fresh snapshot.
    Resync {
        stream: String,
    },
    /// Frames that could not be normalized since the last such record.
    ParseError {
        count: u64,
        sample: String,
    },
}

#[cfg(test)]
mod size_tests {
    /// Replay moves every record through memory; keep them compact (see ARCHITECTURE.md).
    #[test]
    fn records_stay_compact() {
        assert_eq!(std::mem::size_of::<super::Decimal>(), 24);
        assert!(std::mem::size_of::<super::Record>() <= 144, "{}", std::mem::size_of::<super::Record>());
    }
}

#[cfg(test)]
pub(crate) mod level_codec_tests {
    use super::*;
    use proptest::prelude::*;

    /// Decimals as the log meets them: mostly narrow, now and then past an `i64` (the wide
    /// form, which fast paths must hand to the general decoder).
    pub(crate) fn decimal() -> impl Strategy<Value = Decimal> {
        prop_oneof![
            8 => (any::<i64>(), 0u8..=38).prop_map(|(m, s)| Decimal::new(m as i128, s).unwrap()),
            // Past i64: the wide form, which the fast path must hand to the general one.
            1 => (any::<i128>(), 0u8..=38).prop_map(|(m, s)| Decimal::new(m, s).unwrap()),
        ]
    }

    pub(crate) fn levels(max: usize) -> impl Strategy<Value = Vec<Level>> {
        proptest::collection::vec((decimal(), decimal()).prop_map(|(price, qty)| Level { price, qty }), 0..max)
    }

    proptest! {
        /// The written-out decoders read back exactly what the derived encoders wrote, keeping
        /// each decimal's scale, and a cut-short encoding is an error, never a panic or a
        /// different value.
        #[test]
        fn book_levels_round_trip(bids in levels(40), asks in levels(40), id in any::<Option<u64>>(), cut in any::<prop::sample::Index>()) {
            let cfg = bincode::config::legacy();
            let delta = BookDelta { first_update_id: 7, last_update_id: 9, bids: bids.clone(), asks: asks.clone() };
            let snap = BookSnapshot { last_update_id: id, bids, asks };
            let bytes = bincode::encode_to_vec(&delta, cfg).unwrap();
            let (back, used): (BookDelta, usize) = bincode::decode_from_slice(&bytes, cfg).unwrap();
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(&back, &delta);
            for (a, b) in back.bids.iter().chain(&back.asks).zip(delta.bids.iter().chain(&delta.asks)) {
                prop_assert_eq!((a.price.scale(), a.qty.scale()), (b.price.scale(), b.qty.scale()));
            }
            let cut = cut.index(bytes.len());
            prop_assert!(bincode::decode_from_slice::<BookDelta, _>(&bytes[..cut], cfg).is_err());
            let bytes = bincode::encode_to_vec(&snap, cfg).unwrap();
            let (back, used): (BookSnapshot, usize) = bincode::decode_from_slice(&bytes, cfg).unwrap();
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(back, snap);
        }
    }
}
