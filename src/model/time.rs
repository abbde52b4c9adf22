//! Time as text: timeframe strings ("1s", "5m", "4h", "1d", "1w") and UTC timestamps.
//!
//! The timeframe spelling is the one Binance, Gate and most tools share, so CLI flags and
//! kline intervals parse the same way. Months are not a fixed length and are refused.
//! Nothing here reads a clock.

use super::record::{NANOS_PER_SEC, Nanos};

/// Formats ns since the epoch as RFC 3339 UTC with millisecond precision.
pub fn format_utc(ns: Nanos) -> String {
    let secs = ns / NANOS_PER_SEC;
    let millis = (ns % NANOS_PER_SEC) / 1_000_000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Parses RFC 3339 UTC (`2024-08-08T23:55:00Z`, optional fraction, `Z` or `+00:00`) to ns.
///
/// # Errors
/// When the text is not such a timestamp.
pub fn parse_utc(text: &str) -> Result<Nanos, String> {
    let bad = || format!("invalid UTC time {text:?} (expected e.g. 2024-08-08T23:55:00Z)");
    let body = text.strip_suffix('Z').or_else(|| text.strip_suffix("+00:00")).ok_or_else(bad)?;
    let (date, time) = body.split_once(['T', ' ']).ok_or_else(bad)?;
    let num = |s: &str| s.parse::<u64>().map_err(|_| bad());
    let mut d = date.split('-');
    let (y, m, day) =
        (num(d.next().ok_or_else(bad)?)?, num(d.next().ok_or_else(bad)?)?, num(d.next().ok_or_else(bad)?)?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.split(':');
    let (h, mi, s) = (num(t.next().ok_or_else(bad)?)?, num(t.next().ok_or_else(bad)?)?, num(t.next().unwrap_or("0"))?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 || frac.len() > 9 {
        return Err(bad());
    }
    let frac_ns = if frac.is_empty() { 0 } else { num(frac)? * 10u64.pow(9 - frac.len() as u32) };
    let days = days_from_civil(y as i64, m as u32, day as u32);
    if days < 0 {
        return Err(bad());
    }
    Ok((days as u64 * 86_400 + h * 3600 + mi * 60 + s) * NANOS_PER_SEC + frac_ns)
}

/// (year, month, day) to days since 1970-01-01, proleptic Gregorian.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A whole number of seconds since the epoch ("1619093520", or "1619093520.000") to ns;
/// `None` for fractions, negatives and overflow. Venues' REST kline times use this form.
pub fn whole_seconds_to_ns(seconds: &super::Decimal) -> Option<Nanos> {
    let s = seconds.normalized();
    if s.scale() != 0 {
        return None;
    }
    u64::try_from(s.mantissa()).ok()?.checked_mul(NANOS_PER_SEC)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's method).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Parses `<n><unit>` with unit s, m, h, d or w into seconds.
///
/// # Errors
/// A message naming the accepted form.
pub fn parse_timeframe(text: &str) -> Result<u32, String> {
    let bad = || format!("invalid timeframe {text:?} (expected a number and a unit: s, m, h, d or w, as in 1m or 4h)");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (digits, unit) = text.split_at(split);
    let n: u32 = digits.parse().map_err(|_| bad())?;
    let unit_s: u32 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    match n.checked_mul(unit_s) {
        Some(0) | None => Err(bad()),
        Some(s) => Ok(s),
    }
}

/// The shortest spelling of `seconds` ("60" → "1m").
pub fn format_timeframe(seconds: u32) -> String {
    for (unit_s, unit) in [(604_800, "w"), (86_400, "d"), (3600, "h"), (60, "m")] {
        if seconds % unit_s == 0 {
            return format!("{}{unit}", seconds / unit_s);
        }
    }
    format!("{seconds}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        for (text, secs) in
            [("1s", 1), ("1m", 60), ("15m", 900), ("4h", 14_400), ("1d", 86_400), ("1w", 604_800), ("90s", 90)]
        {
            assert_eq!(parse_timeframe(text), Ok(secs), "{text}");
        }
        for bad in ["", "m", "1", "1M", "0m", "1x", "-1m", "1.5m"] {
            assert!(parse_timeframe(bad).is_err(), "{bad}");
        }
        assert_eq!(format_timeframe(60), "1m");
        assert_eq!(format_timeframe(90), "90s");
        assert_eq!(format_timeframe(86_400), "1d");
        assert_eq!(format_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_utc(1_723_161_255_342_000_000), "2024-08-08T23:54:15.342Z");
        assert_eq!(format_utc(951_782_400_000_000_000), "2000-02-29T00:00:00.000Z");
        for ns in [0u64, 951_782_400_000_000_000, 1_723_161_255_342_000_000] {
            assert_eq!(parse_utc(&format_utc(ns)), Ok(ns));
        }
        assert_eq!(parse_utc("2024-08-08T23:55:00.5+00:00"), Ok(1_723_161_300_500_000_000));
        assert!(parse_utc("2024-13-01T00:00:00Z").is_err());
        assert!(parse_utc("2024-08-08T23:55:00").is_err(), "a zone is required");
        let secs = |t: &str| whole_seconds_to_ns(&t.parse().unwrap());
        assert_eq!(secs("1619093520"), Some(1_619_093_520 * NANOS_PER_SEC));
        assert_eq!(secs("1619093520.000"), Some(1_619_093_520 * NANOS_PER_SEC));
        assert_eq!(secs("1.5"), None);
        assert_eq!(secs("-1"), None);
    }
}
