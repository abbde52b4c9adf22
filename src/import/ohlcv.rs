//! Generic OHLCV candle files (`open_time_ms,open_time_utc,open,high,low,close,volume`) of
//! any venue, such as the Bittrex history freqtrade keeps: what their file names say.
//!
//! Rows are parsed and validated by [`binance::parse`](super::binance::parse) with
//! [`Layout::Ohlcv`](super::binance::Layout::Ohlcv), the same code that reads this layout
//! for Binance klines; this module must not grow a second row parser. The files carry no
//! venue spelling of the pair, so the venue symbol of an imported instrument is its
//! canonical `BASE/QUOTE`.

use std::path::Path;

/// The pair a file name states (`ADA_BTC-5m.csv` → `("ADA", "BTC")`): the part before the
/// first `-`, split on its one `_`; `None` when that is not two alphanumeric names.
pub fn pair_from_name(path: &Path) -> Option<(String, String)> {
    let name = super::binance::strip_extensions(path.file_name()?.to_str()?);
    let pair = name.split('-').next()?;
    parse_pair(pair, &['_'])
}

/// `ADA/BTC`, `ADA_BTC` or `ADA-BTC` → `("ADA", "BTC")`, upper case; `None` otherwise.
pub fn parse_pair(text: &str, separators: &[char]) -> Option<(String, String)> {
    let (base, quote) = text.split_once(separators)?;
    let name = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric());
    (name(base) && name(quote)).then(|| (base.to_ascii_uppercase(), quote.to_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_from_file_names() {
        let cases = [
            ("tests/fixtures/bittrex_5m_multi/ADA_BTC-5m.csv", Some(("ADA", "BTC"))),
            ("DASH_BTC-5m.csv.zip", Some(("DASH", "BTC"))),
            ("eth_btc-1h.csv", Some(("ETH", "BTC"))),
            ("ETH_BTC.csv", Some(("ETH", "BTC"))),
            ("ADABTC-1m-2021-11-27.csv", None),
            ("A_B_C-5m.csv", None),
            ("_BTC-5m.csv", None),
        ];
        for (name, expected) in cases {
            let expected = expected.map(|(b, q)| (b.to_string(), q.to_string()));
            assert_eq!(pair_from_name(Path::new(name)), expected, "{name}");
        }
    }

    #[test]
    fn pairs_from_flags() {
        let seps = ['/', '_', '-'];
        assert_eq!(parse_pair("ada/btc", &seps), Some(("ADA".into(), "BTC".into())));
        assert_eq!(parse_pair("ADA-BTC", &seps), Some(("ADA".into(), "BTC".into())));
        assert_eq!(parse_pair("ADABTC", &seps), None);
        assert_eq!(parse_pair("ADA/", &seps), None);
    }
}
