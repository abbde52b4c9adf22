//! The decoding side of block version 2 (see `compact.rs` for the layout). It checks every
//! length and value it reads and returns an error for anything it cannot use; it never
//! panics, and never allocates more than the bytes it was given can fill. No IO.

use super::*;

/// The decoding side: one per block.
pub(in crate::log::block) struct Decoder<'a> {
    b: &'a [u8],
    pub(super) at: usize,
    state: State,
}

type Step<T> = Result<T, &'static str>;

const CUT: &str = "cut short";

impl<'a> Decoder<'a> {
    pub(in crate::log::block) fn new(payload: &'a [u8], first_seq: u64) -> Decoder<'a> {
        Decoder { b: payload, at: 0, state: State::new(first_seq) }
    }

    /// Bytes read so far.
    pub(in crate::log::block) fn position(&self) -> usize {
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
    pub(super) fn short_varint(&mut self) -> Option<u64> {
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
    pub(super) fn u64_slow(&mut self) -> Step<u64> {
        u64::try_from(self.u128()?).map_err(|_| "varint overflows 64 bits")
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
    pub(super) fn step(&mut self, base: i128) -> Step<i128> {
        match self.short_varint() {
            Some(v) => Ok(apply_step(base, v)),
            None => self.step_slow(base),
        }
    }

    #[inline(never)]
    pub(super) fn step_slow(&mut self, base: i128) -> Step<i128> {
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

    /// The record's id, when its tag says it has one: a varint step from the id that
    /// `last` picks out of the state, which it then replaces.
    #[inline(always)]
    fn optional_id(&mut self, tag: u8, last: fn(&mut State) -> &mut u64) -> Step<Option<u64>> {
        if tag & HAS_ID == 0 {
            return Ok(None);
        }
        let base = *last(&mut self.state);
        let id = self.id_step(base)?;
        *last(&mut self.state) = id;
        Ok(Some(id))
    }

    /// Decodes the next record onto the end of `out`, built in place: returning it cost two
    /// 144-byte copies per record.
    pub(in crate::log::block) fn record_into(&mut self, out: &mut Vec<Record>) -> Result<(), String> {
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
                let last_update_id = self.optional_id(tag, |st| &mut st.book_id)?;
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
        let update_id = self.optional_id(tag, |st| &mut st.quote_id)?;
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
