//! The encoding side of block version 2 (see `compact.rs` for the layout): what the writer
//! runs over each block's records. Choosing a list's mode and a value's width happens here;
//! the decoder only follows what the bytes say. No IO.

use super::*;

/// The encoding side: one per block.
pub(in crate::log::block) struct Encoder {
    state: State,
}

impl Encoder {
    pub(in crate::log::block) fn new(first_seq: u64) -> Encoder {
        Encoder { state: State::new(first_seq) }
    }

    /// Appends `record` to `out`.
    pub(in crate::log::block) fn record(&mut self, record: &Record, out: &mut Vec<u8>) -> Result<(), String> {
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
            bincode::encode_into_std_write(record, out, super::super::CFG).map_err(|e| e.to_string())?;
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
                let id = t.trade_id.map(|id| zigzag(id.wrapping_sub(st.trade_id) as i64));
                put_fields(out, side << 9, &[(st.trade_price, price), (0, t.qty.mantissa())], id);
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
                let id = q.update_id.map(|id| zigzag(id.wrapping_sub(st.quote_id) as i64));
                let steps = [(st.bid_price, bid), (0, q.bid_qty.mantissa()), (bid, ask), (0, q.ask_qty.mantissa())];
                put_fields(out, 0, &steps, id);
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

pub(super) fn flag(on: bool, bit: u8) -> u8 {
    if on { bit } else { 0 }
}

pub(super) fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(super) fn put_u128(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A trade's or quote's values (see `WIDE_FIELDS`): each `(predictor, value)` step, then
/// the id step, as fixed-width fields after a header of their widths, or as varints when a
/// step is too wide for a word. `extra` goes in the header's spare bits.
pub(super) fn put_fields(out: &mut Vec<u8>, extra: u16, steps: &[(i128, i128)], id: Option<u64>) {
    let mut values = [0u64; 5];
    for (slot, &(base, value)) in values.iter_mut().zip(steps) {
        let Some(word) = step_word(base, value) else {
            out.extend_from_slice(&(WIDE_FIELDS | extra).to_le_bytes());
            for &(base, value) in steps {
                put_step(out, base, value);
            }
            if let Some(id) = id {
                put_u64(out, id);
            }
            return;
        };
        *slot = word;
    }
    let n = steps.len();
    values[n] = id.unwrap_or(0);
    let values = &values[..n + usize::from(id.is_some())];
    let widths = values.iter().enumerate().fold(0u16, |h, (i, &v)| h | ((width(v) - 1) as u16) << (3 * i));
    out.extend_from_slice(&(widths | extra).to_le_bytes());
    for &v in values {
        out.extend_from_slice(&v.to_le_bytes()[..width(v) as usize]);
    }
}

/// `value` as a step from `base`: the first byte holds the stripped zeros (bits 0-2), the
/// low four bits of the zigzagged rest (bits 3-6) and a continuation bit; a varint of the
/// remaining bits follows when it is set.
pub(super) fn put_step(out: &mut Vec<u8>, base: i128, value: i128) {
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
pub(super) fn step_word(base: i128, value: i128) -> Option<u64> {
    let (zeros, rest) = strip_zeros(value.wrapping_sub(base));
    let z = zigzag128(rest);
    (z >> 61 == 0).then_some((z as u64) << 3 | zeros as u64)
}

/// Up to seven trailing decimal zeros of `step`, and what is left.
pub(super) fn strip_zeros(step: i128) -> (u8, i128) {
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
pub(super) fn pack(values: impl Iterator<Item = i128> + Clone) -> Option<(u8, Vec<u64>)> {
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
pub(super) fn width(v: u64) -> u8 {
    (8 - (v.leading_zeros() / 8) as u8).max(1)
}

pub(super) fn put_levels(out: &mut Vec<u8>, levels: &[Level], first_price: &mut i128) {
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
