//! Exact decimal numbers: the one numeric type prices and quantities are stored in.
//!
//! A `Decimal` is an `i128` mantissa and a base-10 scale, exactly as the exchange wrote it:
//! "61837.63000000" keeps its eight decimals, so exporting prints the venue's string back.
//! Equality, ordering and hashing are by value ("1.50" == "1.5"). Parsing never rounds: a
//! value that does not fit is an error. This module must not use `f64` except in
//! [`Decimal::to_f64`], which detectors use for indicator arithmetic.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use bincode::de::Decoder;
use bincode::enc::Encoder;
use bincode::error::{DecodeError, EncodeError};

/// The most decimal places a value may carry; 10^38 still fits an `i128`.
pub const MAX_SCALE: u8 = 38;

/// Why a string is not an exact decimal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("empty number")]
    Empty,
    #[error("invalid character {0:?} in number")]
    InvalidChar(char),
    #[error("malformed number {0:?}")]
    Malformed(String),
    #[error("number {0:?} has more digits than an exact decimal can hold")]
    Overflow(String),
}

/// An exact base-10 number: `mantissa / 10^scale`.
///
/// The i128 mantissa is stored as two u64 halves: an `i128` field would force 16-byte
/// alignment and make every decimal (and every record) a third larger in memory.
#[derive(Clone, Copy, Default)]
pub struct Decimal {
    lo: u64,
    hi: u64,
    scale: u8,
}

/// Powers of ten, 10^0 to 10^38 (the order book's price keys use the first 19).
pub(crate) const POW10: [i128; 39] = {
    let mut table = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

impl Decimal {
    pub const ZERO: Decimal = Decimal::raw(0, 0);

    const fn raw(mantissa: i128, scale: u8) -> Decimal {
        Decimal { lo: mantissa as u64, hi: (mantissa >> 64) as u64, scale }
    }

    /// Builds `mantissa / 10^scale`.
    ///
    /// # Errors
    /// When `scale` exceeds [`MAX_SCALE`].
    pub fn new(mantissa: i128, scale: u8) -> Result<Self, DecimalError> {
        if scale > MAX_SCALE {
            return Err(DecimalError::Overflow(format!("{mantissa}e-{scale}")));
        }
        Ok(Decimal::raw(mantissa, scale))
    }

    /// A decimal from parts whose scale the caller has already checked (at most
    /// [`MAX_SCALE`]): the log's decoders check each scale byte once as they read it.
    #[inline(always)]
    pub(crate) const fn from_checked_parts(mantissa: i128, scale: u8) -> Self {
        debug_assert!(scale <= MAX_SCALE);
        Decimal::raw(mantissa, scale)
    }

    pub fn from_int(value: i64) -> Self {
        Decimal::raw(value as i128, 0)
    }

    #[inline]
    pub fn mantissa(&self) -> i128 {
        ((self.hi as i128) << 64) | self.lo as i128
    }

    pub fn scale(&self) -> u8 {
        self.scale
    }

    pub fn is_zero(&self) -> bool {
        self.mantissa() == 0
    }

    pub fn is_negative(&self) -> bool {
        self.mantissa() < 0
    }

    /// Parses a JSON number token as well as a plain decimal: exponents ("1.5e-7") are
    /// expanded exactly, and surrounding quotes are accepted, because LBank sends numbers.
    ///
    /// # Errors
    /// When the text is not a number or cannot be held exactly.
    pub fn parse_json_token(token: &str) -> Result<Self, DecimalError> {
        let token = token.trim();
        let token = token.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(token);
        let Some(pos) = token.find(['e', 'E']) else {
            return token.parse();
        };
        let base: Decimal = token[..pos].parse()?;
        let exp: i32 = token[pos + 1..].parse().map_err(|_| DecimalError::Malformed(token.to_string()))?;
        let scale = base.scale as i32 - exp;
        if scale >= 0 {
            if scale > MAX_SCALE as i32 {
                return Err(DecimalError::Overflow(token.to_string()));
            }
            Ok(Decimal::raw(base.mantissa(), scale as u8))
        } else {
            let factor = *POW10.get((-scale) as usize).ok_or_else(|| DecimalError::Overflow(token.to_string()))?;
            let mantissa =
                base.mantissa().checked_mul(factor).ok_or_else(|| DecimalError::Overflow(token.to_string()))?;
            Ok(Decimal::raw(mantissa, 0))
        }
    }

    /// The same value with trailing fractional zeros removed; used for hashing and equality.
    pub fn normalized(&self) -> Decimal {
        let (mut mantissa, mut scale) = (self.mantissa(), self.scale);
        while scale > 0 && mantissa % 10 == 0 {
            mantissa /= 10;
            scale -= 1;
        }
        Decimal::raw(mantissa, scale)
    }

    /// The value rescaled to `scale` decimals, if that is exact and fits.
    pub fn rescale(&self, scale: u8) -> Option<Decimal> {
        if scale > MAX_SCALE {
            return None;
        }
        if scale >= self.scale {
            let mantissa = self.mantissa().checked_mul(POW10[(scale - self.scale) as usize])?;
            Some(Decimal::raw(mantissa, scale))
        } else {
            let factor = POW10[(self.scale - scale) as usize];
            (self.mantissa() % factor == 0).then(|| Decimal::raw(self.mantissa() / factor, scale))
        }
    }

    /// Exact sum, or `None` on overflow.
    pub fn checked_add(&self, other: &Decimal) -> Option<Decimal> {
        let scale = self.scale.max(other.scale);
        let a = self.rescale(scale)?;
        let b = other.rescale(scale)?;
        Some(Decimal::raw(a.mantissa().checked_add(b.mantissa())?, scale))
    }

    /// Exact difference, or `None` on overflow.
    pub fn checked_sub(&self, other: &Decimal) -> Option<Decimal> {
        self.checked_add(&Decimal::raw(other.mantissa().checked_neg()?, other.scale))
    }

    /// Exact product (scale = the sum of scales, not normalized), or `None` when it does not fit.
    pub fn checked_mul(&self, other: &Decimal) -> Option<Decimal> {
        let mut mantissa = self.mantissa().checked_mul(other.mantissa())?;
        let mut scale = self.scale as u16 + other.scale as u16;
        while scale > MAX_SCALE as u16 {
            if mantissa % 10 != 0 {
                return None;
            }
            mantissa /= 10;
            scale -= 1;
        }
        Some(Decimal::raw(mantissa, scale as u8))
    }

    /// The nearest `f64`, rounded exactly as parsing the decimal string would round.
    pub fn to_f64(&self) -> f64 {
        // Both operands are exact in f64, so one IEEE division is correctly rounded.
        const EXACT: i128 = 1 << 53;
        if self.mantissa().abs() <= EXACT && self.scale <= 22 {
            return self.mantissa() as f64 / POW10[self.scale as usize] as f64;
        }
        self.to_string().parse().unwrap_or(f64::NAN)
    }
}

impl FromStr for Decimal {
    type Err = DecimalError;

    /// Parses `[-]digits[.digits]`, keeping every digit and the scale as written.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(DecimalError::Empty);
        }
        let bytes = s.as_bytes();
        let (negative, digits) = match bytes[0] {
            b'-' => (true, &bytes[1..]),
            _ => (false, bytes),
        };
        let mut mantissa: i128 = 0;
        let mut scale: u32 = 0;
        let mut seen_dot = false;
        let mut int_digits = 0usize;
        for &b in digits {
            match b {
                b'0'..=b'9' => {
                    mantissa = mantissa
                        .checked_mul(10)
                        .and_then(|m| m.checked_add((b - b'0') as i128))
                        .ok_or_else(|| DecimalError::Overflow(s.to_string()))?;
                    if seen_dot {
                        scale += 1;
                    } else {
                        int_digits += 1;
                    }
                }
                b'.' if !seen_dot => seen_dot = true,
                _ => return Err(DecimalError::InvalidChar(b as char)),
            }
        }
        if int_digits == 0 || (seen_dot && scale == 0) {
            return Err(DecimalError::Malformed(s.to_string()));
        }
        if scale > MAX_SCALE as u32 {
            return Err(DecimalError::Overflow(s.to_string()));
        }
        Ok(Decimal::raw(if negative { -mantissa } else { mantissa }, scale as u8))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.mantissa().unsigned_abs().to_string();
        let sign = if self.mantissa() < 0 { "-" } else { "" };
        let scale = self.scale as usize;
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        if digits.len() > scale {
            let (int, frac) = digits.split_at(digits.len() - scale);
            write!(f, "{sign}{int}.{frac}")
        } else {
            write!(f, "{sign}0.{}{digits}", "0".repeat(scale - digits.len()))
        }
    }
}

impl fmt::Debug for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Ord for Decimal {
    // Inlined: order books search BTreeMaps keyed by price, and an outlined compare was 28% of
    // engine time on depth diffs.
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        if self.scale == other.scale {
            return self.mantissa().cmp(&other.mantissa());
        }
        self.cmp_rescaled(other)
    }
}

impl Decimal {
    #[cold]
    fn cmp_rescaled(&self, other: &Self) -> Ordering {
        let (lo, hi, flipped) = if self.scale < other.scale { (self, other, false) } else { (other, self, true) };
        let ord = match lo.mantissa().checked_mul(POW10[(hi.scale - lo.scale) as usize]) {
            Some(scaled) => scaled.cmp(&hi.mantissa()),
            // Overflow means |lo| exceeds anything `hi`'s scale can express.
            None => {
                if lo.mantissa() < 0 {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
        };
        if flipped { ord.reverse() } else { ord }
    }
}

impl PartialOrd for Decimal {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Decimal {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Decimal {}

impl Hash for Decimal {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let n = self.normalized();
        n.mantissa().hash(state);
        n.scale.hash(state);
    }
}

// Wire layout in the log: one byte of scale, with the top bit set when the mantissa needs
// 128 bits. Almost every exchange value fits an i64, so a typical decimal costs 9 bytes.
const WIDE: u8 = 0x80;

impl bincode::Encode for Decimal {
    #[inline]
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        match i64::try_from(self.mantissa()) {
            Ok(narrow) => {
                self.scale.encode(encoder)?;
                narrow.encode(encoder)
            }
            Err(_) => {
                (self.scale | WIDE).encode(encoder)?;
                self.mantissa().encode(encoder)
            }
        }
    }
}

/// Bytes of a decimal's narrow encoding: the scale, then the mantissa as a little-endian `i64`.
pub(crate) const NARROW_LEN: usize = 9;

impl Decimal {
    /// Reads the narrow encoding from the start of `bytes` (at least [`NARROW_LEN`] long);
    /// `None` for the wide form or a damaged scale, which the general decoder handles.
    #[inline(always)]
    pub(crate) fn from_narrow(bytes: &[u8]) -> Option<Decimal> {
        let scale = bytes[0];
        // The wide flag is above MAX_SCALE, so one comparison rejects both.
        (scale <= MAX_SCALE)
            .then(|| Decimal::raw(i64::from_le_bytes(bytes[1..NARROW_LEN].try_into().expect("8 bytes")) as i128, scale))
    }
}

impl<Context> bincode::Decode<Context> for Decimal {
    #[inline(always)]
    fn decode<D: Decoder<Context = Context>>(decoder: &mut D) -> Result<Self, DecodeError> {
        use bincode::de::read::Reader;
        // Fast path for slice readers with the log's little-endian fixint config: one bounds
        // check for the common narrow form.
        if let Some(bytes) = decoder.reader().peek_read(NARROW_LEN)
            && let Some(decimal) = Decimal::from_narrow(bytes)
        {
            decoder.reader().consume(NARROW_LEN);
            return Ok(decimal);
        }
        let tag = u8::decode(decoder)?;
        let scale = tag & !WIDE;
        if scale > MAX_SCALE {
            return Err(DecodeError::Other("decimal scale out of range"));
        }
        let mantissa = if tag & WIDE != 0 { i128::decode(decoder)? } else { i64::decode(decoder)? as i128 };
        Ok(Decimal::raw(mantissa, scale))
    }
}
bincode::impl_borrow_decode!(Decimal);

impl serde::Serialize for Decimal {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Decimal {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Decimal;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a decimal string or integer")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Decimal, E> {
                Decimal::parse_json_token(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Decimal, E> {
                Ok(Decimal::from_int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Decimal, E> {
                Ok(Decimal::raw(v as i128, 0))
            }
            // Fractional JSON numbers would already be rounded by the JSON parser; wire types
            // that carry numbers read them as raw tokens instead (see `parse_json_token`).
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_and_print_table() {
        let cases = [
            ("0.00001234", "0.00001234"),
            ("61837.63000000", "61837.63000000"),
            ("123456789012.5", "123456789012.5"),
            ("0", "0"),
            ("-1.50", "-1.50"),
            ("0.000000000000000000000000000001", "0.000000000000000000000000000001"),
            ("170141183460469231731687303715884105727", "170141183460469231731687303715884105727"),
        ];
        for (input, printed) in cases {
            let d: Decimal = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(d.to_string(), printed, "{input}");
        }
    }

    #[test]
    fn rejects_table() {
        let cases = [
            ("", DecimalError::Empty),
            ("1.2.3", DecimalError::InvalidChar('.')),
            ("1,5", DecimalError::InvalidChar(',')),
            ("abc", DecimalError::InvalidChar('a')),
            (".5", DecimalError::Malformed(".5".into())),
            ("5.", DecimalError::Malformed("5.".into())),
            ("-", DecimalError::Malformed("-".into())),
            (
                "170141183460469231731687303715884105728",
                DecimalError::Overflow("170141183460469231731687303715884105728".into()),
            ),
        ];
        for (input, err) in cases {
            assert_eq!(input.parse::<Decimal>(), Err(err), "{input}");
        }
    }

    #[test]
    fn json_tokens_table() {
        let cases = [("1.5e-7", "0.00000015"), ("\"0.1\"", "0.1"), ("2E3", "2000"), ("12.34e1", "123.4"), ("42", "42")];
        for (token, printed) in cases {
            assert_eq!(Decimal::parse_json_token(token).unwrap().to_string(), printed, "{token}");
        }
    }

    #[test]
    fn value_semantics_ignore_trailing_zeros() {
        let a: Decimal = "61837.63000000".parse().unwrap();
        let b: Decimal = "61837.63".parse().unwrap();
        assert_eq!(a, b);
        assert!(a < "61837.64".parse().unwrap());
        let huge: Decimal = "170141183460469231731687303715884105727".parse().unwrap();
        let tiny: Decimal = "0.00000000000000000000000000000000000001".parse().unwrap();
        assert!(huge > tiny);
        assert!(Decimal::from_int(-1) < tiny);
    }

    fn decimal_strategy() -> impl Strategy<Value = (bool, String, String)> {
        (any::<bool>(), "[1-9][0-9]{0,20}|0", "[0-9]{0,17}")
    }

    proptest! {
        #[test]
        fn string_round_trip((neg, int, frac) in decimal_strategy()) {
            let text = match (neg && int != "0", frac.is_empty()) {
                (n, true) => format!("{}{int}", if n { "-" } else { "" }),
                (n, false) => format!("{}{int}.{frac}", if n { "-" } else { "" }),
            };
            let d: Decimal = text.parse().unwrap();
            prop_assert_eq!(d.to_string(), text);
        }

        #[test]
        fn bincode_round_trip(mantissa in any::<i128>(), scale in 0u8..=MAX_SCALE) {
            let d = Decimal::new(mantissa, scale).unwrap();
            let cfg = bincode::config::legacy();
            let bytes = bincode::encode_to_vec(d, cfg).unwrap();
            let (back, used): (Decimal, usize) = bincode::decode_from_slice(&bytes, cfg).unwrap();
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(back.mantissa(), mantissa);
            prop_assert_eq!(back.scale(), scale);
        }

        #[test]
        fn order_matches_f64_for_small_values(a in -1_000_000i64..1_000_000, sa in 0u8..6, b in -1_000_000i64..1_000_000, sb in 0u8..6) {
            let da = Decimal::new(a as i128, sa).unwrap();
            let db = Decimal::new(b as i128, sb).unwrap();
            let fa = a as f64 / 10f64.powi(sa as i32);
            let fb = b as f64 / 10f64.powi(sb as i32);
            if fa != fb {
                prop_assert_eq!(da < db, fa < fb);
            }
        }

        #[test]
        fn to_f64_matches_parse(mantissa in any::<i64>(), scale in 0u8..30) {
            let d = Decimal::new(mantissa as i128, scale).unwrap();
            let parsed: f64 = d.to_string().parse().unwrap();
            prop_assert_eq!(d.to_f64(), parsed);
        }

        #[test]
        fn too_many_digits_is_an_error_not_a_rounding(extra in 1usize..10) {
            let text = format!("1.{}", "1".repeat(MAX_SCALE as usize + extra));
            prop_assert!(text.parse::<Decimal>().is_err());
        }
    }
}
