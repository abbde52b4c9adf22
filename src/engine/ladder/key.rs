//! Prices as integer keys: a price's value at the side's key scale, computed with a
//! multiply or an exact division by a power of ten, and the fallbacks when a price needs more decimals or
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

/// `m / 10^e` when exact, for any `e` up to 18.
#[inline]
pub(super) fn div_pow10_exact(m: i64, e: u8) -> Option<i64> {
    match e {
        0 => Some(m),
        // From 10^1 up, the quotient of |m| <= 2^63 fits an `i64` with its sign.
        1..=18 => {
            let e = e as usize;
            let q = div_exact(m.unsigned_abs(), e as u32, INV5[e], u64::MAX / POW10[e] as u64)? as i64;
            Some(if m < 0 { -q } else { q })
        }
        _ => None,
    }
}

/// `5^-e mod 2^64`, for `e` up to 18: with `div_exact`, dividing by `10^e` exactly is a
/// multiply and a rotate (Granlund and Montgomery's exact division).
const INV5: [u64; 19] = {
    let mut table = [1u64; 19];
    let mut e = 1;
    while e < 19 {
        let five = (POW10[e] >> e) as u64;
        // Newton's iteration doubles the correct low bits each round: 5 rounds reach 64.
        let mut x = five;
        let mut i = 0;
        while i < 5 {
            x = x.wrapping_mul(2u64.wrapping_sub(five.wrapping_mul(x)));
            i += 1;
        }
        table[e] = x;
        e += 1;
    }
    table
};

/// `m / 10^e` when exact and at most `limit` (itself at most `u64::MAX / 10^e`): `m` is a
/// multiple of `10^e` exactly when `(m * 5^-e) rotr e` is at most `u64::MAX / 10^e`, and
/// that is then the quotient. No division, no branch.
#[inline(always)]
fn div_exact(m: u64, e: u32, inverse: u64, limit: u64) -> Option<u64> {
    let q = m.wrapping_mul(inverse).rotate_right(e);
    (q <= limit).then_some(q)
}

/// The key of prices written with one scale, the side's usual one, without `quick_key`'s
/// branches on scale and sign: `div_exact` with its constants held, so one multiply, a
/// rotate and a compare.
///
/// Why: on the Binance sample the key was a third of a level's instructions, a jump
/// on the scale difference then a division and a remainder by its constant.
#[derive(Debug, Clone, Copy)]
pub(super) struct FastKey {
    scale: u8,
    shift: u32,
    inverse: u64,
    limit: u64,
}

impl FastKey {
    /// Matches no price: every key goes through `quick_key`.
    pub(super) const NONE: FastKey = FastKey { scale: u8::MAX, shift: 0, inverse: 1, limit: 0 };

    /// For prices written with `scale` decimals, on a side keyed at `key_scale`.
    pub(super) fn new(scale: u8, key_scale: u8) -> FastKey {
        match scale.checked_sub(key_scale) {
            Some(e) if e <= 18 => FastKey {
                scale,
                shift: e as u32,
                inverse: INV5[e as usize],
                limit: (u64::MAX / POW10[e as usize] as u64).min(KEY_LIMIT as u64),
            },
            _ => FastKey::NONE,
        }
    }

    pub(super) fn is_none(&self) -> bool {
        self.scale == u8::MAX
    }

    /// `price`'s key, when it has the usual scale, is not negative and divides exactly;
    /// `None` sends the caller to `quick_key`, which decides everything else. It also takes
    /// mantissas from 2^63 to 2^64, which `quick_key` leaves to `key_at`, with the same key.
    #[inline(always)]
    pub(super) fn key(&self, price: &Price) -> Option<i64> {
        let m = u64::try_from(price.mantissa()).ok()?;
        let q = div_exact(m, self.shift, self.inverse, self.limit);
        q.filter(|_| price.scale() == self.scale).map(|q| q as i64)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Decimal;

    /// The fast key agrees with `key_at` wherever it answers, and answers for every exact,
    /// non-negative price of its scale at or above the key scale.
    #[test]
    fn fast_key_agrees_with_key_at() {
        let prices =
            ["61837.63000000", "61837.63100000", "0.00000000", "0.01000000", "92233720368.54775807", "123", "1.5"];
        for key_scale in [0u8, 2, 8] {
            for text in prices {
                let price: Price = text.parse::<Decimal>().unwrap();
                let fast = FastKey::new(price.scale(), key_scale);
                let expected = match key_at(&price, key_scale) {
                    Key::Fits(k) => Some(k),
                    _ => None,
                };
                // Fewer decimals than the key scale take a multiply: `quick_key`'s case.
                let expected = if price.scale() < key_scale { None } else { expected };
                assert_eq!(fast.key(&price), expected, "{text} at key scale {key_scale}");
                assert_eq!(FastKey::NONE.key(&price), None);
            }
        }
        let negative: Price = "-1.00".parse::<Decimal>().unwrap();
        assert_eq!(FastKey::new(2, 0).key(&negative), None, "negative prices go the slow way");
    }

    proptest::proptest! {
        /// Any mantissa a `u64` holds, at any scale difference up to 18: a key from the fast
        /// path is `key_at`'s, and below 2^63 the fast path answers exactly when
        /// `quick_key` does.
        #[test]
        fn fast_key_matches_key_at_on_any_mantissa(m in proptest::prelude::any::<u64>(), e in 0u8..=18, key_scale in 0u8..=8, round in proptest::prelude::any::<bool>()) {
            // Half the cases are exact multiples, or the divisible branch is rarely hit.
            let m = if round { m / POW10[e as usize] as u64 * POW10[e as usize] as u64 } else { m };
            let price = Decimal::new(m as i128, key_scale + e).unwrap();
            let fast = FastKey::new(price.scale(), key_scale).key(&price);
            if let Some(k) = fast {
                proptest::prop_assert!(matches!(key_at(&price, key_scale), Key::Fits(f) if f == k), "{m} e{e}");
            }
            if m < 1 << 63 {
                proptest::prop_assert_eq!(fast, quick_key(&price, key_scale), "{} e{}", m, e);
            }
        }
    }

    proptest::proptest! {
        /// The exact division against `%` and `/`, for any `i64` including `i64::MIN`.
        #[test]
        fn div_pow10_exact_matches_integer_division(m in proptest::prelude::any::<i64>(), e in 0u8..=20, round in proptest::prelude::any::<bool>()) {
            let d = POW10[e.min(18) as usize] as i64;
            let m = if round { m / d * d } else { m };
            let expected = (e <= 18 && m % d == 0).then(|| m / d);
            proptest::prop_assert_eq!(div_pow10_exact(m, e), expected);
        }
    }

    #[test]
    fn fast_key_edges() {
        let cases: [(u64, u8, Option<i64>, &str); 7] = [
            (18_446_744_073_709_551_610, 1, Some(1_844_674_407_370_955_161), "above 2^63, at the limit"),
            (u64::MAX, 1, None, "not divisible"),
            (9_223_372_036_854_775_810, 1, Some(922_337_203_685_477_581), "above 2^63"),
            (KEY_LIMIT as u64, 0, Some(KEY_LIMIT), "the key limit"),
            (KEY_LIMIT as u64 + 1, 0, None, "past the key limit"),
            (5_000_000_000_000_000_000, 18, Some(5), "eighteen decimals"),
            (1_000_000_000_000_000_001, 18, None, "eighteen decimals, not divisible"),
        ];
        for (m, scale, expected, name) in cases {
            let price = Decimal::new(m as i128, scale).unwrap();
            assert_eq!(FastKey::new(scale, 0).key(&price), expected, "{name}");
        }
        assert!(FastKey::new(19, 0).is_none(), "19 decimals above the key scale have no fast key");
    }

    #[test]
    fn inverses_are_inverses() {
        for (e, inv) in INV5.iter().enumerate() {
            assert_eq!(((POW10[e] >> e) as u64).wrapping_mul(*inv), 1, "5^{e}");
        }
    }
}
