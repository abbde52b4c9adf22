//! Prices as integer keys: a price's value at the side's key scale, computed with a
//! multiply or a constant division, and the fallbacks when a price needs more decimals or
//! does not fit. No IO.

use crate::model::Price;
use crate::model::decimal::POW10;

/// Largest key magnitude the window arithmetic accepts without overflow.
pub(super) const KEY_LIMIT: i64 = i64::MAX / 4;

/// `10^e` as an `i64`, for `e` up to 18.
#[inline(always)]
pub(super) fn pow10(e: usize) -> Option<i64> {
    (e <= 18).then(|| POW10[e] as i64)
}

/// `m / 10^e` when exact. The divisors are constants per arm, so each is a multiply and
/// shift rather than a hardware division.
#[inline]
pub(super) fn div_pow10_exact(m: i64, e: u8) -> Option<i64> {
    macro_rules! arms {
        ($($e:literal),*) => {
            match e {
                0 => Some(m),
                $($e => {
                    const D: i64 = POW10[$e] as i64;
                    if m % D == 0 { Some(m / D) } else { None }
                })*
                _ => None,
            }
        };
    }
    arms!(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
}

/// What turning a price into a key gave.
pub(super) enum Key {
    Fits(i64),
    /// The price has more decimals than the key scale: the ladder must re-key.
    NeedsScale(u8),
    /// No `i64` key can hold this price.
    TooWide,
}

/// The fewest decimals that hold `price` exactly.
#[cold]
#[inline(never)]
pub(super) fn min_scale(price: &Price) -> u8 {
    price.normalized().scale()
}

pub(super) fn key_at(price: &Price, key_scale: u8) -> Key {
    let (m, s) = (price.mantissa(), price.scale());
    let Ok(m) = i64::try_from(m) else {
        return key_at_wide(price, key_scale);
    };
    if m == 0 {
        // Zero at any scale: no power of ten is needed (and at 19+ decimals none would fit).
        return Key::Fits(0);
    }
    let key = if s <= key_scale {
        match pow10((key_scale - s) as usize).and_then(|f| m.checked_mul(f)) {
            Some(k) => k,
            None => return Key::TooWide,
        }
    } else {
        match div_pow10_exact(m, s - key_scale) {
            Some(k) => k,
            None if s - key_scale > 18 => return key_at_wide(price, key_scale),
            None => return Key::NeedsScale(min_scale(price)),
        }
    };
    if within_limit(key) { Key::Fits(key) } else { Key::TooWide }
}

/// `key_at` for the common case only (an `i64` mantissa with at least the key scale's
/// decimals), inlined into the per-level loop; `None` sends the caller to `key_at`.
#[inline(always)]
pub(super) fn quick_key(price: &Price, key_scale: u8) -> Option<i64> {
    let m = i64::try_from(price.mantissa()).ok()?;
    let s = price.scale();
    // Venues that trim trailing zeros (Gate, LBank) write prices with fewer decimals than
    // the key scale as often as not.
    let key = if s >= key_scale {
        div_pow10_exact(m, s - key_scale)?
    } else {
        m.checked_mul(pow10((key_scale - s) as usize)?)?
    };
    within_limit(key).then_some(key)
}

/// `|key| <= KEY_LIMIT`, without `abs`, which overflows on `i64::MIN`.
#[inline(always)]
pub(super) fn within_limit(key: i64) -> bool {
    (-KEY_LIMIT..=KEY_LIMIT).contains(&key)
}

#[cold]
pub(super) fn key_at_wide(price: &Price, key_scale: u8) -> Key {
    match price.rescale(key_scale) {
        Some(d) => match i64::try_from(d.mantissa()) {
            Ok(k) if within_limit(k) => Key::Fits(k),
            _ => Key::TooWide,
        },
        None if min_scale(price) > key_scale => Key::NeedsScale(min_scale(price)),
        None => Key::TooWide,
    }
}
