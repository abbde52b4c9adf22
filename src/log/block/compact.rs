//! Block payload version 2: records delta-coded against the records before them in the
//! same block, so a block still decodes on its own (and in parallel with its neighbours).
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
//!   level before in the list, zero for quantities), written as up to seven trailing
//!   decimal zeros stripped off and the rest as a zigzag varint. Venues send prices padded
//!   to fixed decimals ("61234.56000000"), so a one-tick step is one byte. A level list's
//!   first price steps from the first price of the previous list of its side;
//! - trade ids and update ids as steps from the previous one.
//!
//! Every arithmetic step wraps, so any value round-trips, however far from its predictor.
//! Kinds without a compact form (candles, tickers, statuses) are stored as the version 1
//! encoding of the whole record. Decoding checks every length and value it reads and
//! returns an error for anything it cannot use; it never panics and never allocates more
//! than the bytes it was given can fill. No IO.

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
const POW10_I64: [i64; 16] = {
    let mut table = [1i64; 16];
    let mut i = 1;
    while i < 16 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

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

/// The encoding side: one per block.
pub(super) struct Encoder {
    state: State,
}

impl Encoder {
    pub(super) fn new(first_seq: u64) -> Encoder {
        Encoder { state: State::new(first_seq) }
    }

    /// Appends `record` to `out`.
    pub(super) fn record(&mut self, record: &Record, out: &mut Vec<u8>) -> Result<(), String> {
        let kind = match &record.event {
            Event::Trade(_) => TRADE,
            Event::Quote(_) => QUOTE,
            Event::BookDelta(_) => DELTA,
            Event::BookSnapshot(_) => SNAPSHOT,
            _ => OTHER,
        };
        let st = &mut self.state;
        if kind == OTHER {
            out.push(OTHER);
            let before = out.len();
            bincode::encode_into_std_write(record, out, super::CFG).map_err(|e| e.to_string())?;
            if out.len() - before > OTHER_LIMIT {
                return Err(format!(
                    "a {} record of {} bytes is past the limit",
                    record.event.kind().as_str(),
                    out.len() - before
                ));
            }
            st.after(record);
            return Ok(());
        }
        let same_source = record.exchange as u8 == st.exchange && record.instrument.0 == st.instrument;
        let next_seq = record.seq == st.next_seq;
        let same_ts = record.ts_exchange == record.ts_recv;
        let (has_id, same_scales) = match &record.event {
            Event::Trade(t) => (t.trade_id.is_some(), [t.price.scale(), t.qty.scale()] == st.trade_scales),
            Event::Quote(q) => (
                q.update_id.is_some(),
                [q.bid_price.scale(), q.bid_qty.scale(), q.ask_price.scale(), q.ask_qty.scale()] == st.quote_scales,
            ),
            Event::BookSnapshot(s) => (s.last_update_id.is_some(), false),
            _ => (false, false),
        };
        out.push(
            kind | flag(same_source, SAME_SOURCE)
                | flag(next_seq, NEXT_SEQ)
                | flag(same_ts, SAME_TS)
                | flag(has_id, HAS_ID)
                | flag(same_scales, SAME_SCALES),
        );
        if !next_seq {
            put_u64(out, record.seq.wrapping_sub(st.next_seq));
        }
        put_u64(out, zigzag(record.ts_recv.wrapping_sub(st.ts_recv) as i64));
        if !same_ts {
            put_u64(out, zigzag(record.ts_exchange.wrapping_sub(record.ts_recv) as i64));
        }
        if !same_source {
            out.push(record.exchange as u8);
            put_u64(out, record.instrument.0 as u64);
        }
        match &record.event {
            Event::Trade(t) => {
                let scales = [t.price.scale(), t.qty.scale()];
                let side = match t.side {
                    Side::Buy => 0,
                    Side::Sell => 1,
                    Side::Unknown => 2,
                };
                if !same_scales {
                    out.extend_from_slice(&scales);
                    st.trade_scales = scales;
                }
                let price = t.price.mantissa();
                let words = [step_word(st.trade_price, price), step_word(0, t.qty.mantissa())];
                let id = t.trade_id.map(|id| zigzag(id.wrapping_sub(st.trade_id) as i64));
                if let [Some(p), Some(q)] = words {
                    let values = [p, q, id.unwrap_or(0)];
                    let values = &values[..if id.is_some() { 3 } else { 2 }];
                    out.extend_from_slice(&(fields_header(values) | side << 9).to_le_bytes());
                    put_fields(out, values);
                } else {
                    out.extend_from_slice(&(WIDE_FIELDS | side << 9).to_le_bytes());
                    put_step(out, st.trade_price, price);
                    put_step(out, 0, t.qty.mantissa());
                    if let Some(id) = id {
                        put_u64(out, id);
                    }
                }
                st.trade_price = price;
                if let Some(id) = t.trade_id {
                    st.trade_id = id;
                }
            }
            Event::Quote(q) => {
                let scales = [q.bid_price.scale(), q.bid_qty.scale(), q.ask_price.scale(), q.ask_qty.scale()];
                if !same_scales {
                    out.extend_from_slice(&scales);
                    st.quote_scales = scales;
                }
                let (bid, ask) = (q.bid_price.mantissa(), q.ask_price.mantissa());
                let words = [
                    step_word(st.bid_price, bid),
                    step_word(0, q.bid_qty.mantissa()),
                    step_word(bid, ask),
                    step_word(0, q.ask_qty.mantissa()),
                ];
                let id = q.update_id.map(|id| zigzag(id.wrapping_sub(st.quote_id) as i64));
                if let [Some(a), Some(b), Some(c), Some(d)] = words {
                    let values = [a, b, c, d, id.unwrap_or(0)];
                    let values = &values[..if id.is_some() { 5 } else { 4 }];
                    out.extend_from_slice(&fields_header(values).to_le_bytes());
                    put_fields(out, values);
                } else {
                    out.extend_from_slice(&WIDE_FIELDS.to_le_bytes());
                    put_step(out, st.bid_price, bid);
                    put_step(out, 0, q.bid_qty.mantissa());
                    put_step(out, bid, ask);
                    put_step(out, 0, q.ask_qty.mantissa());
                    if let Some(id) = id {
                        put_u64(out, id);
                    }
                }
                st.bid_price = bid;
                if let Some(id) = q.update_id {
                    st.quote_id = id;
                }
            }
            Event::BookDelta(d) => {
                put_u64(out, zigzag(d.first_update_id.wrapping_sub(st.book_id.wrapping_add(1)) as i64));
                put_u64(out, d.last_update_id.wrapping_sub(d.first_update_id));
                st.book_id = d.last_update_id;
                put_levels(out, &d.bids, &mut st.first_price[0]);
                put_levels(out, &d.asks, &mut st.first_price[1]);
            }
            Event::BookSnapshot(s) => {
                if let Some(id) = s.last_update_id {
                    put_u64(out, zigzag(id.wrapping_sub(st.book_id) as i64));
                    st.book_id = id;
                }
                put_levels(out, &s.bids, &mut st.first_price[0]);
                put_levels(out, &s.asks, &mut st.first_price[1]);
            }
            _ => unreachable!("kind OTHER returned above"),
        }
        st.after(record);
        Ok(())
    }
}

fn flag(on: bool, bit: u8) -> u8 {
    if on { bit } else { 0 }
}

fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_u128(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// `value` as a step from `base`: the first byte holds the stripped zeros (bits 0-2), the
/// low four bits of the zigzagged rest (bits 3-6) and a continuation bit; a varint of the
/// remaining bits follows when it is set.
/// The widths of up to five fixed-width fields, three bits each (width - 1).
fn fields_header(values: &[u64]) -> u16 {
    values.iter().enumerate().fold(0u16, |h, (i, &v)| h | ((width(v) - 1) as u16) << (3 * i))
}

fn put_fields(out: &mut Vec<u8>, values: &[u64]) {
    for &v in values {
        out.extend_from_slice(&v.to_le_bytes()[..width(v) as usize]);
    }
}

fn put_step(out: &mut Vec<u8>, base: i128, value: i128) {
    let (zeros, rest) = strip_zeros(value.wrapping_sub(base));
    let z = zigzag128(rest);
    let high = z >> 4;
    let first = zeros | ((z as u8 & 0x0F) << 3);
    if high == 0 {
        out.push(first);
    } else {
        out.push(first | 0x80);
        put_u128(out, high);
    }
}

/// A step's varint value (the zigzagged rest shifted left by three, or'd with the zeros)
/// as one word, when it fits 64 bits.
fn step_word(base: i128, value: i128) -> Option<u64> {
    let (zeros, rest) = strip_zeros(value.wrapping_sub(base));
    let z = zigzag128(rest);
    (z >> 61 == 0).then_some((z as u64) << 3 | zeros as u64)
}

/// Up to seven trailing decimal zeros of `step`, and what is left.
fn strip_zeros(step: i128) -> (u8, i128) {
    let (mut zeros, mut rest) = (0u8, step);
    if let Ok(small) = i64::try_from(step) {
        // The usual case, in 64-bit division.
        let mut small = small;
        while zeros < 7 && small != 0 && small % 10 == 0 {
            small /= 10;
            zeros += 1;
        }
        rest = small as i128;
    } else {
        while zeros < 7 && rest % 10 == 0 {
            rest /= 10;
            zeros += 1;
        }
    }
    (zeros, rest)
}

/// The trailing decimal zeros shared by every nonzero value (at most 15), and each value
/// divided by them, zigzagged; `None` when one of those falls outside 64 bits.
fn pack(values: impl Iterator<Item = i128> + Clone) -> Option<(u8, Vec<u64>)> {
    let mut zeros = 15u8;
    for v in values.clone().filter(|&v| v != 0) {
        while zeros > 0 && v % POW10[zeros as usize] != 0 {
            zeros -= 1;
        }
    }
    let packed = values.map(|v| i64::try_from(v / POW10[zeros as usize]).ok().map(zigzag)).collect::<Option<_>>()?;
    Some((zeros, packed))
}

/// Bytes needed for `v` (1 to 8).
fn width(v: u64) -> u8 {
    (8 - (v.leading_zeros() / 8) as u8).max(1)
}

fn put_levels(out: &mut Vec<u8>, levels: &[Level], first_price: &mut i128) {
    put_u64(out, levels.len() as u64);
    let Some(first) = levels.first() else { return };
    let scales = [first.price.scale(), first.qty.scale()];
    let uniform = levels.iter().all(|l| [l.price.scale(), l.qty.scale()] == scales);
    let steps = levels.windows(2).map(|w| w[1].price.mantissa().wrapping_sub(w[0].price.mantissa()));
    // Packed lists decode in 64-bit arithmetic, which is exact when every mantissa fits.
    let narrow =
        levels.iter().all(|l| i64::try_from(l.price.mantissa()).is_ok() && i64::try_from(l.qty.mantissa()).is_ok());
    let packed = match (uniform && narrow, pack(steps), pack(levels.iter().map(|l| l.qty.mantissa()))) {
        (true, Some(p), Some(q)) => Some((p, q)),
        _ => None,
    };
    let mode = match (&packed, uniform) {
        (Some(_), _) => PACKED,
        (None, true) => UNIFORM,
        (None, false) => PER_LEVEL,
    };
    out.push(mode);
    if uniform {
        out.extend_from_slice(&scales);
    }
    if let Some(((pz, prices), (qz, qtys))) = packed {
        let wp = prices.iter().copied().map(width).max().unwrap_or(1);
        let wq = qtys.iter().copied().map(width).max().unwrap_or(1);
        out.extend_from_slice(&[(wp - 1) | (wq - 1) << 3, pz | qz << 4]);
        put_step(out, *first_price, first.price.mantissa());
        out.extend_from_slice(&qtys[0].to_le_bytes()[..wq as usize]);
        for (p, q) in prices.iter().zip(&qtys[1..]) {
            out.extend_from_slice(&p.to_le_bytes()[..wp as usize]);
            out.extend_from_slice(&q.to_le_bytes()[..wq as usize]);
        }
    } else {
        let mut prev = *first_price;
        for level in levels {
            if !uniform {
                out.extend_from_slice(&[level.price.scale(), level.qty.scale()]);
            }
            put_step(out, prev, level.price.mantissa());
            put_step(out, 0, level.qty.mantissa());
            prev = level.price.mantissa();
        }
    }
    *first_price = first.price.mantissa();
}

/// The decoding side: one per block.
pub(super) struct Decoder<'a> {
    b: &'a [u8],
    at: usize,
    state: State,
}

type Step<T> = Result<T, &'static str>;

const CUT: &str = "cut short";

impl<'a> Decoder<'a> {
    pub(super) fn new(payload: &'a [u8], first_seq: u64) -> Decoder<'a> {
        Decoder { b: payload, at: 0, state: State::new(first_seq) }
    }

    /// Bytes read so far.
    pub(super) fn position(&self) -> usize {
        self.at
    }

    #[inline(always)]
    fn u8(&mut self) -> Step<u8> {
        let v = *self.b.get(self.at).ok_or(CUT)?;
        self.at += 1;
        Ok(v)
    }

    #[inline(always)]
    fn scale(&mut self) -> Step<u8> {
        let s = self.u8()?;
        if s > MAX_SCALE {
            return Err("decimal scale out of range");
        }
        Ok(s)
    }

    /// The eight bytes at the cursor, when there are eight.
    #[inline(always)]
    fn eight(&self) -> Option<u64> {
        let bytes = self.b.get(self.at..self.at + 8)?;
        Some(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    }

    #[inline(always)]
    fn word(&self, at: usize) -> u64 {
        word_at(self.b, at)
    }

    /// The `width` bytes at `at` (1 to 8) as a little-endian word.
    #[inline(always)]
    fn masked(&self, at: usize, width: usize) -> u64 {
        self.word(at) & (u64::MAX >> (64 - 8 * width))
    }

    /// A varint of at most eight bytes (56 bits), read without a branch per byte: the
    /// first byte with its top bit clear ends it, and the 7-bit groups are packed together
    /// by three shift-and-mask steps. `None` when it is longer or the input ends sooner.
    #[inline(always)]
    fn short_varint(&mut self) -> Option<u64> {
        let word = self.eight()?;
        let stops = !word & 0x8080_8080_8080_8080;
        if stops == 0 {
            return None;
        }
        let bits = stops.trailing_zeros() + 1;
        self.at += (bits / 8) as usize;
        let x = word & (u64::MAX >> (64 - bits)) & 0x7F7F_7F7F_7F7F_7F7F;
        let x = ((x & 0x7F00_7F00_7F00_7F00) >> 1) | (x & 0x007F_007F_007F_007F);
        let x = ((x & 0x3FFF_0000_3FFF_0000) >> 2) | (x & 0x0000_3FFF_0000_3FFF);
        Some(((x & 0x0FFF_FFFF_0000_0000) >> 4) | (x & 0x0000_0000_0FFF_FFFF))
    }

    #[inline(always)]
    fn u64(&mut self) -> Step<u64> {
        match self.short_varint() {
            Some(v) => Ok(v),
            None => self.u64_slow(),
        }
    }

    /// A varint byte by byte: near the end of the input, or longer than eight bytes.
    #[inline(never)]
    fn u64_slow(&mut self) -> Step<u64> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let byte = self.u8()?;
            if shift == 63 && byte > 1 {
                return Err("varint overflows 64 bits");
            }
            v |= ((byte & 0x7F) as u64) << shift;
            if byte < 0x80 {
                return Ok(v);
            }
            shift += 7;
        }
    }

    fn u128(&mut self) -> Step<u128> {
        let mut v = 0u128;
        let mut shift = 0;
        loop {
            let byte = self.u8()?;
            if shift == 126 && byte > 3 {
                return Err("varint overflows 128 bits");
            }
            v |= ((byte & 0x7F) as u128) << shift;
            if byte < 0x80 {
                return Ok(v);
            }
            shift += 7;
        }
    }

    /// A decimal step (see `put_step`). Its bytes are one varint of the zigzagged rest
    /// shifted left by three, or'd with the zeros stripped; eight bytes or fewer take the
    /// fast path, in 64-bit arithmetic.
    #[inline(always)]
    fn step(&mut self, base: i128) -> Step<i128> {
        match self.short_varint() {
            Some(v) => Ok(apply_step(base, v)),
            None => self.step_slow(base),
        }
    }

    #[inline(never)]
    fn step_slow(&mut self, base: i128) -> Step<i128> {
        let first = self.u8()?;
        let mut z = ((first >> 3) & 0x0F) as u128;
        if first & 0x80 != 0 {
            let high = self.u128()?;
            if high >> 124 != 0 {
                return Err("decimal step overflows 128 bits");
            }
            z |= high << 4;
        }
        Ok(base.wrapping_add(unzigzag128(z).wrapping_mul(POW10[(first & 7) as usize])))
    }

    #[inline(always)]
    fn id_step(&mut self, base: u64) -> Step<u64> {
        Ok(base.wrapping_add(unzigzag(self.u64()?) as u64))
    }

    /// Decodes the next record onto the end of `out`, built in place: returning it cost two
    /// 144-byte copies per record.
    pub(super) fn record_into(&mut self, out: &mut Vec<Record>) -> Result<(), String> {
        let tag = self.u8()?;
        if tag & KIND == OTHER {
            if tag != OTHER {
                return Err(format!("unknown tag bits {tag:#04x}"));
            }
            let (record, used): (Record, usize) =
                bincode::decode_from_slice(&self.b[self.at..], OTHER_CFG).map_err(|e| e.to_string())?;
            self.at += used;
            self.state.after(&record);
            out.push(record);
            return Ok(());
        }
        if tag & !allowed(tag & KIND) != 0 {
            return Err(format!("unknown tag bits {tag:#04x}"));
        }
        self.hot(tag, out)?;
        self.state.after(out.last().expect("just pushed"));
        Ok(())
    }

    #[inline(always)]
    fn hot(&mut self, tag: u8, out: &mut Vec<Record>) -> Step<()> {
        let seq = if tag & NEXT_SEQ != 0 { self.state.next_seq } else { self.state.next_seq.wrapping_add(self.u64()?) };
        let ts_recv = self.state.ts_recv.wrapping_add(unzigzag(self.u64()?) as u64);
        let ts_exchange = if tag & SAME_TS != 0 { ts_recv } else { ts_recv.wrapping_add(unzigzag(self.u64()?) as u64) };
        let (exchange, instrument) = if tag & SAME_SOURCE != 0 {
            (self.state.exchange, self.state.instrument)
        } else {
            let exchange = self.u8()?;
            let instrument = u32::try_from(self.u64()?).map_err(|_| "instrument id out of range")?;
            (exchange, instrument)
        };
        let exchange = *Exchange::ALL.get(exchange as usize).ok_or("unknown exchange")?;
        let event = match tag & KIND {
            TRADE => Event::Trade(self.trade(tag)?),
            QUOTE => Event::Quote(self.quote(tag)?),
            DELTA => {
                let first_update_id = self.state.book_id.wrapping_add(1).wrapping_add(unzigzag(self.u64()?) as u64);
                let last_update_id = first_update_id.wrapping_add(self.u64()?);
                self.state.book_id = last_update_id;
                let bids = self.levels(0)?;
                let asks = self.levels(1)?;
                Event::BookDelta(BookDelta { first_update_id, last_update_id, bids, asks })
            }
            SNAPSHOT => {
                let last_update_id = if tag & HAS_ID != 0 {
                    let id = self.id_step(self.state.book_id)?;
                    self.state.book_id = id;
                    Some(id)
                } else {
                    None
                };
                let bids = self.levels(0)?;
                let asks = self.levels(1)?;
                Event::BookSnapshot(BookSnapshot { last_update_id, bids, asks })
            }
            _ => return Err("unknown record kind"),
        };
        out.push(Record { seq, ts_exchange, ts_recv, exchange, instrument: InstrumentId(instrument), event });
        Ok(())
    }

    #[inline(always)]
    fn trade(&mut self, tag: u8) -> Step<Trade> {
        if tag & SAME_SCALES == 0 {
            self.state.trade_scales = [self.scale()?, self.scale()?];
        }
        let [ps, qs] = self.state.trade_scales;
        let header = u16::from_le_bytes([self.u8()?, self.u8()?]);
        let side = match (header >> 9) & 3 {
            0 => Side::Buy,
            1 => Side::Sell,
            2 => Side::Unknown,
            _ => return Err("unknown trade side"),
        };
        let has_id = tag & HAS_ID != 0;
        let (price, qty, id) = if header & WIDE_FIELDS == 0 {
            if header & 0x7800 != 0 || (!has_id && header & 0x01C0 != 0) {
                return Err("unknown trade widths");
            }
            let h = header as usize;
            let (wp, wq, wi) = ((h & 7) + 1, ((h >> 3) & 7) + 1, ((h >> 6) & 7) + 1);
            let o0 = self.at;
            let end = o0 + wp + wq + if has_id { wi } else { 0 };
            if end > self.b.len() {
                return Err(CUT);
            }
            let price = apply_step(self.state.trade_price, self.masked(o0, wp));
            let qty = apply_step(0, self.masked(o0 + wp, wq));
            let id = if has_id { Some(unzigzag(self.masked(o0 + wp + wq, wi)) as u64) } else { None };
            self.at = end;
            (price, qty, id)
        } else {
            if header & !(WIDE_FIELDS | 3 << 9) != 0 {
                return Err("unknown trade widths");
            }
            let price = self.step(self.state.trade_price)?;
            let qty = self.step(0)?;
            let id = if has_id { Some(unzigzag(self.u64()?) as u64) } else { None };
            (price, qty, id)
        };
        self.state.trade_price = price;
        let trade_id = id.map(|step| self.state.trade_id.wrapping_add(step));
        if let Some(id) = trade_id {
            self.state.trade_id = id;
        }
        Ok(Trade {
            price: Decimal::from_checked_parts(price, ps),
            qty: Decimal::from_checked_parts(qty, qs),
            side,
            trade_id,
        })
    }

    #[inline(always)]
    fn quote(&mut self, tag: u8) -> Step<Quote> {
        if tag & SAME_SCALES == 0 {
            self.state.quote_scales = [self.scale()?, self.scale()?, self.scale()?, self.scale()?];
        }
        let [bps, bqs, aps, aqs] = self.state.quote_scales;
        let widths = u16::from_le_bytes([self.u8()?, self.u8()?]);
        if widths & WIDE_FIELDS == 0 {
            let has_id = tag & HAS_ID != 0;
            if !has_id && widths >> 12 != 0 {
                return Err("quote width for an absent id");
            }
            let widths = widths as usize;
            let w = [
                (widths & 7) + 1,
                ((widths >> 3) & 7) + 1,
                ((widths >> 6) & 7) + 1,
                ((widths >> 9) & 7) + 1,
                ((widths >> 12) & 7) + 1,
            ];
            let o0 = self.at;
            let (o1, o2, o3) = (o0 + w[0], o0 + w[0] + w[1], o0 + w[0] + w[1] + w[2]);
            let o4 = o3 + w[3];
            let end = if has_id { o4 + w[4] } else { o4 };
            if end > self.b.len() {
                return Err(CUT);
            }
            let bid_price = apply_step(self.state.bid_price, self.masked(o0, w[0]));
            let bid_qty = apply_step(0, self.masked(o1, w[1]));
            let ask_price = apply_step(bid_price, self.masked(o2, w[2]));
            let ask_qty = apply_step(0, self.masked(o3, w[3]));
            let update_id = if has_id {
                Some(self.state.quote_id.wrapping_add(unzigzag(self.masked(o4, w[4])) as u64))
            } else {
                None
            };
            self.at = end;
            self.state.bid_price = bid_price;
            if let Some(id) = update_id {
                self.state.quote_id = id;
            }
            return Ok(Quote {
                bid_price: Decimal::from_checked_parts(bid_price, bps),
                bid_qty: Decimal::from_checked_parts(bid_qty, bqs),
                ask_price: Decimal::from_checked_parts(ask_price, aps),
                ask_qty: Decimal::from_checked_parts(ask_qty, aqs),
                update_id,
            });
        }
        if widths != WIDE_FIELDS {
            return Err("unknown quote widths");
        }
        let bid_price = self.step(self.state.bid_price)?;
        let bid_qty = self.step(0)?;
        let ask_price = self.step(bid_price)?;
        let ask_qty = self.step(0)?;
        self.state.bid_price = bid_price;
        let update_id = if tag & HAS_ID != 0 {
            let id = self.id_step(self.state.quote_id)?;
            self.state.quote_id = id;
            Some(id)
        } else {
            None
        };
        Ok(Quote {
            bid_price: Decimal::from_checked_parts(bid_price, bps),
            bid_qty: Decimal::from_checked_parts(bid_qty, bqs),
            ask_price: Decimal::from_checked_parts(ask_price, aps),
            ask_qty: Decimal::from_checked_parts(ask_qty, aqs),
            update_id,
        })
    }

    fn levels(&mut self, side: usize) -> Step<Vec<Level>> {
        let count = self.u64()?;
        if count == 0 {
            return Ok(Vec::new());
        }
        // A level takes at least two bytes: the capacity is never more than the input holds.
        let left = self.b.len() - self.at;
        let count = usize::try_from(count).ok().filter(|&n| n <= left / 2).ok_or("level count past the block's end")?;
        let mut levels = Vec::with_capacity(count);
        let mut prev = self.state.first_price[side];
        // A loop per mode, so that none tests the mode per level.
        match self.u8()? {
            PACKED => {
                let (ps, qs) = (self.scale()?, self.scale()?);
                let widths = self.u8()?;
                let zeros = self.u8()?;
                if widths >> 6 != 0 {
                    return Err("unknown packed level widths");
                }
                let (wp, wq) = ((widths & 7) as usize + 1, (widths >> 3) as usize + 1);
                let (pp, pq) = (POW10_I64[(zeros & 0x0F) as usize], POW10_I64[(zeros >> 4) as usize]);
                let (mp, mq) = (u64::MAX >> (64 - 8 * wp), u64::MAX >> (64 - 8 * wq));
                let price = self.step(prev)?;
                let start = self.at;
                let stride = wp + wq;
                let end = (count - 1)
                    .checked_mul(stride)
                    .and_then(|n| n.checked_add(start + wq))
                    .filter(|&end| end <= self.b.len())
                    .ok_or(CUT)?;
                // Packed lists hold only mantissas that fit an i64 (see `put_levels`), so
                // 64-bit wrapping arithmetic gives them exactly.
                let first_qty = unzigzag(self.word(start) & mq).wrapping_mul(pq);
                levels.push(Level {
                    price: Decimal::from_checked_parts(price, ps),
                    qty: Decimal::from_checked_parts(first_qty as i128, qs),
                });
                let mut prev = price as i64;
                let b = self.b;
                let first = start + wq;
                // `move`: the loop's constants in registers, not reloaded through references.
                levels.extend((0..count - 1).map(move |i| {
                    let at = first + i * stride;
                    let price = prev.wrapping_add(unzigzag(word_at(b, at) & mp).wrapping_mul(pp));
                    let qty = unzigzag(word_at(b, at + wp) & mq).wrapping_mul(pq);
                    prev = price;
                    Level {
                        price: Decimal::from_checked_parts(price as i128, ps),
                        qty: Decimal::from_checked_parts(qty as i128, qs),
                    }
                }));
                self.at = end;
            }
            UNIFORM => {
                let (ps, qs) = (self.scale()?, self.scale()?);
                for _ in 0..count {
                    let price = self.step(prev)?;
                    let qty = self.step(0)?;
                    prev = price;
                    levels.push(Level {
                        price: Decimal::from_checked_parts(price, ps),
                        qty: Decimal::from_checked_parts(qty, qs),
                    });
                }
            }
            PER_LEVEL => {
                for _ in 0..count {
                    let (ps, qs) = (self.scale()?, self.scale()?);
                    let price = self.step(prev)?;
                    let qty = self.step(0)?;
                    prev = price;
                    levels.push(Level {
                        price: Decimal::from_checked_parts(price, ps),
                        qty: Decimal::from_checked_parts(qty, qs),
                    });
                }
            }
            _ => return Err("unknown level mode"),
        }
        self.state.first_price[side] = levels[0].price.mantissa();
        Ok(levels)
    }
}

#[cfg(test)]
mod tests;
