//! A window slot: one price level packed in 8 bytes, and the exact way back to a `Level`.
//! No IO, no clock.

use crate::model::decimal::POW10;
use crate::model::{Decimal, Level};

/// A level in the window, packed in 8 bytes: the quantity's mantissa in the top 52 bits
/// (signed), then its scale and the price's scale in 6 bits each. The price is the slot's
/// key at the price's scale. Eight bytes rather than a struct of 16 keep a deep book's
/// pages in L2: the 38k levels the Binance sample touches take 300 KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Slot(pub(super) u64);

const SCALE_BITS: u32 = 6;
const SCALE_MASK: u64 = (1 << SCALE_BITS) - 1;
/// Quantity mantissas a slot holds: |m| < 2^51, 22.5M BTC at 8 decimals.
const QTY_BITS: u32 = 64 - 2 * SCALE_BITS;
const QTY_LIMIT: i128 = 1 << (QTY_BITS - 1);

impl Slot {
    #[inline]
    pub(super) fn of(level: &Level) -> Option<Slot> {
        let qty = level.qty.mantissa();
        if !(-QTY_LIMIT..QTY_LIMIT).contains(&qty) {
            return None;
        }
        let scales = ((level.qty.scale() as u64) << SCALE_BITS) | level.price.scale() as u64;
        Some(Slot(((qty as i64 as u64) << (2 * SCALE_BITS)) | scales))
    }

    #[inline]
    pub(super) fn qty(self) -> i64 {
        // The arithmetic shift brings the sign back.
        (self.0 as i64) >> (2 * SCALE_BITS)
    }

    #[inline]
    pub(super) fn qty_scale(self) -> u8 {
        ((self.0 >> SCALE_BITS) & SCALE_MASK) as u8
    }

    #[inline]
    pub(super) fn price_scale(self) -> u8 {
        (self.0 & SCALE_MASK) as u8
    }

    /// This slot, with `old`'s price scale when `was` (the level existed): an existing
    /// level keeps its first spelling. A mask rather than a branch on `was`.
    #[inline(always)]
    pub(super) fn keeping_spelling(self, old: Slot, was: bool) -> Slot {
        let keep = SCALE_MASK & (was as u64).wrapping_neg();
        Slot((self.0 & !keep) | (old.0 & keep))
    }

    #[inline]
    pub(super) fn level(self, key: i64, key_scale: u8) -> Level {
        let price_scale = self.price_scale();
        // Exact both ways: the key was made from this price at `key_scale`.
        let mantissa = if key == 0 {
            0
        } else if price_scale >= key_scale {
            key as i128 * POW10[(price_scale - key_scale) as usize]
        } else {
            // A non-zero key in an i64 is at most 18 powers of ten above its price.
            (key / POW10[(key_scale - price_scale) as usize] as i64) as i128
        };
        Level {
            price: Decimal::new(mantissa, price_scale).expect("scale came from a decimal"),
            qty: Decimal::new(self.qty() as i128, self.qty_scale()).expect("scale came from a decimal"),
        }
    }
}
