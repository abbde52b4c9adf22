//! Block payload version 2: records delta-coded against the records before them in the
//! same block, so a block still decodes on its own (and in parallel with its neighbours).
//! This file holds the layout's constants and what both sides share; `encode.rs` and
//! `decode.rs` are the two sides, `tests.rs` checks them against the version 1 encoding.
//!
//! Why: version 1 spends 9 bytes on every decimal and 36 on every record's header, so the
//! looped sample took 165 bytes a record, and replay spent a third of its time moving and
//! checksumming those bytes (sled's copy and CRC, then ours). Here, per record:
//! - a tag byte: the kind, and bits saying the seq is the next one, the exchange and
//!   instrument are the previous record's, `ts_exchange` equals `ts_recv`, there is an id,
//!   and the decimal scales are the previous record's of the kind;
//! - `ts_recv` as a zigzag varint of its step from the previous record's, `ts_exchange`
//!   (unless equal) as one of its distance from `ts_recv`;
//! - decimals as a scale byte (left out while it repeats) and a *step*: the mantissa's
//!   difference from a predictor (the previous trade's price, the bid for the ask, the
//!   level before in the list, zero for quantities), with up to seven trailing decimal
//!   zeros stripped off and the rest zigzagged. Venues send prices padded to fixed
//!   decimals ("61234.56000000"), so a one-tick step is one byte. A level list's first
//!   price steps from the first price of the previous list of its side;
//! - trade ids and update ids as steps from the previous one;
//! - a trade's or quote's values as fixed-width fields after a two-byte header of widths
//!   (`WIDE_FIELDS`), and a level list's as fixed-width pairs (`PACKED`): their offsets are
//!   known before any is read, which decodes faster than a chain of varints.
//!
//! Every arithmetic step wraps, so any value round-trips, however far from its predictor.
//! Kinds without a compact form (candles, tickers, statuses) are stored as the version 1
//! encoding of the whole record. No IO.

use crate::model::decimal::{MAX_SCALE, POW10};
use crate::model::{
    BookDelta, BookSnapshot, Decimal, Event, Exchange, InstrumentId, Level, Quote, Record, Side, Trade,
};

/// Most bytes an OTHER record may take, and so may claim for its strings when decoded: a
/// crafted length must not become a huge allocation. Statuses, candles and tickers are far
/// smaller (a parse error's sample is 160 characters of the frame).
const OTHER_LIMIT: usize = 1 << 20;
const OTHER_CFG: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
    bincode::config::Limit<OTHER_LIMIT>,
> = bincode::config::legacy().with_limit::<OTHER_LIMIT>();

/// Trades and quotes start with two bytes of field widths: 3 bits (width - 1) for each of
/// a quote's bid step, bid quantity, ask step (from the bid), ask quantity and id step (when
/// it has one), or a trade's price step, quantity and id step, then its side in bits 9-10.
/// Each value follows in that many bytes, at offsets known before any is read. With this
/// bit set instead, each is a varint, for the rare step too wide for a word.
const WIDE_FIELDS: u16 = 1 << 15;

/// The kind, in a tag byte's low three bits.
const TRADE: u8 = 0;
const QUOTE: u8 = 1;
const DELTA: u8 = 2;
const SNAPSHOT: u8 = 3;
/// Any other record: its version 1 encoding follows.
const OTHER: u8 = 7;
const KIND: u8 = 7;
/// The exchange and instrument are the previous record's.
const SAME_SOURCE: u8 = 1 << 3;
/// The seq is the expected one: the block's first seq, then the previous record's + 1.
const NEXT_SEQ: u8 = 1 << 4;

/// `ts_exchange` equals `ts_recv` (Binance's bookTicker has no time of its own).
const SAME_TS: u8 = 1 << 5;
/// The trade, quote or snapshot has an id.
const HAS_ID: u8 = 1 << 6;
/// The trade or quote's decimal scales are the previous trade's or quote's.
const SAME_SCALES: u8 = 1 << 7;

/// The tag bits each kind may set.
fn allowed(kind: u8) -> u8 {
    let common = KIND | SAME_SOURCE | NEXT_SEQ | SAME_TS;
    match kind {
        TRADE | QUOTE => common | HAS_ID | SAME_SCALES,
        SNAPSHOT => common | HAS_ID,
        _ => common,
    }
}

/// A level list's mode: one price scale and one quantity scale for every level, or a pair
/// before each level, each level's decimals then being steps; or (`PACKED`, the usual) one
/// pair of scales and each level in the same few bytes: after the first level's price (a
/// step), each price's step from the level before, and every quantity, divided by the
/// trailing zeros they all share and zigzagged, in as many bytes as the largest needs.
/// Fixed widths decode without a test per byte.
const UNIFORM: u8 = 0;
const PER_LEVEL: u8 = 1;
const PACKED: u8 = 2;

/// What both sides remember of the block so far; both update it identically after every
/// record, which is what makes the steps decodable.
#[derive(Default)]
struct State {
    next_seq: u64,
    ts_recv: u64,
    exchange: u8,
    instrument: u32,
    trade_price: i128,
    trade_id: u64,
    trade_scales: [u8; 2],
    bid_price: i128,
    quote_id: u64,
    quote_scales: [u8; 4],
    /// The last update id of the previous diff or snapshot.
    book_id: u64,
    /// The first price of the previous bid list and ask list.
    first_price: [i128; 2],
}

impl State {
    fn new(first_seq: u64) -> State {
        State { next_seq: first_seq, ..State::default() }
    }

    fn after(&mut self, record: &Record) {
        self.next_seq = record.seq.wrapping_add(1);
        self.ts_recv = record.ts_recv;
        self.exchange = record.exchange as u8;
        self.instrument = record.instrument.0;
    }
}

/// A step's word (see `step_word`) applied to `base`: i64 by i64 into i128, one widening
/// multiply.
#[inline(always)]
fn apply_step(base: i128, word: u64) -> i128 {
    base.wrapping_add(unzigzag(word >> 3) as i128 * POW10_I64[(word & 7) as usize] as i128)
}

/// 10^0 to 10^15, the zeros a step or a packed list may strip.
const POW10_I64: [i64; 16] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
    10_000_000_000_000,
    100_000_000_000_000,
    1_000_000_000_000_000,
];

/// The eight bytes of `b` at `at` as a little-endian word, zeros past its end.
#[inline(always)]
fn word_at(b: &[u8], at: usize) -> u64 {
    match b.get(at..at + 8) {
        Some(bytes) => u64::from_le_bytes(bytes.try_into().expect("8 bytes")),
        None => {
            let mut word = [0u8; 8];
            let tail = b.get(at..).unwrap_or(&[]);
            word[..tail.len()].copy_from_slice(tail);
            u64::from_le_bytes(word)
        }
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn zigzag128(v: i128) -> u128 {
    ((v << 1) ^ (v >> 127)) as u128
}

fn unzigzag128(v: u128) -> i128 {
    ((v >> 1) as i128) ^ -((v & 1) as i128)
}

mod decode;
mod encode;

pub(super) use decode::Decoder;
pub(super) use encode::Encoder;

#[cfg(test)]
mod tests;
