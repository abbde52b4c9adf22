//! Alert messages as Telegram HTML: what happened, on which exchange and symbol, with the
//! detector's key numbers and the event time in UTC.
//!
//! It owns escaping and the 4096-character limit; it must not read a clock or do IO. Every
//! dynamic value goes through [`escape`] (Telegram's HTML mode needs only `<`, `>` and `&`
//! replaced), and every message goes through [`truncate_html`], which cuts on a character
//! boundary outside tags and entities and closes whatever tags it cut through.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::Alert;
use crate::engine::SignalBody;
use crate::model::Nanos;
use crate::model::time::format_utc;

/// Telegram's limit on a message's text. Counted here in UTF-16 code units, the unit
/// Telegram's entity offsets use, which is never less than the number of characters, so a
/// message within it is within the limit however Telegram counts.
pub const MAX_CHARS: usize = 4096;

/// What a cut message ends with.
const ELLIPSIS: char = '…';

/// Escapes text for Telegram's HTML parse mode.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out
}

/// `exchange SYMBOL detector`, how digests and summaries name an alert's stream.
pub fn label(alert: &Alert) -> String {
    format!("{} {} {}", alert.exchange, alert.symbol, alert.detector)
}

/// The message for one alert, at most [`MAX_CHARS`].
pub fn alert_html(alert: &Alert) -> String {
    let html = format!(
        "<b>{}</b> · {} · {}\n{}\n<i>{}</i>\n{}",
        escape(&alert.symbol),
        escape(alert.exchange.as_str()),
        escape(&alert.detector),
        what_happened(&alert.body),
        escape(&alert.params),
        format_utc(alert.ts),
    );
    truncate_html(&html, MAX_CHARS)
}

/// The detector's key numbers, already escaped.
fn what_happened(body: &SignalBody) -> String {
    match body {
        SignalBody::Wave { dir, start_price, end_price, change_pct, .. } => format!(
            "wave <b>{}</b> {} → {} (<b>{change_pct:+.3}%</b>)",
            escape(dir),
            number(*start_price),
            number(*end_price)
        ),
        SignalBody::Volatility { regime, ratio, .. } => {
            format!("volatility regime <b>{}</b>, ratio <b>{ratio:.3}</b>", escape(regime))
        }
        SignalBody::Volume { volume, baseline, ratio, .. } => {
            format!("volume <b>{}</b>, baseline {}, ratio <b>×{ratio:.2}</b>", number(*volume), number(*baseline))
        }
        SignalBody::Custom(fields) => {
            let mut out = String::new();
            for (key, value) in fields {
                let value = match value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let _ = writeln!(out, "{}: <b>{}</b>", escape(key), escape(&value));
            }
            out.pop();
            out
        }
    }
}

/// A number with eight significant digits and no trailing zeros: exchange quantities such as
/// 31.10322 and prices from 0.00001234 to 61652.01 read as given, without a per-symbol
/// precision, while float noise (2.9064975000000004) is cut.
pub fn number(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == 0.0 {
        return "0".into();
    }
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = (7 - magnitude).clamp(2, 12) as usize;
    let mut text = format!("{x:.decimals$}");
    if text.contains('.') {
        while text.ends_with('0') {
            text.pop();
        }
        if text.ends_with('.') {
            text.pop();
        }
    }
    text
}

/// What a digest says: how many alerts it stands for, the streams they came from (most
/// frequent first) and their event-time span.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DigestText {
    pub count: u64,
    /// Alerts per `exchange SYMBOL detector` label.
    pub labels: BTreeMap<String, u64>,
    /// Alerts whose label did not fit in `labels`.
    pub others: u64,
    pub first_ts: Nanos,
    pub last_ts: Nanos,
}

/// The digest message: `+12 more: binance BTC/USDT volume ×5, ...`.
pub fn digest_html(digest: &DigestText) -> String {
    let mut parts: Vec<(&String, &u64)> = digest.labels.iter().collect();
    parts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut list: Vec<String> = parts
        .into_iter()
        .map(|(label, n)| if *n > 1 { format!("{} ×{n}", escape(label)) } else { escape(label) })
        .collect();
    if digest.others > 0 {
        list.push(format!("{} others", digest.others));
    }
    let html = format!(
        "<b>+{} more:</b> {}\n<i>coalesced while the alert queue was full; events {} … {}</i>",
        digest.count,
        list.join(", "),
        format_utc(digest.first_ts),
        format_utc(digest.last_ts),
    );
    truncate_html(&html, MAX_CHARS)
}

/// The message as plain text: tags removed, the entities [`escape`] makes turned back.
pub fn to_plain(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&")
}

fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// Cuts `html` to at most `max` UTF-16 units, ending in `…` plus the closing tags of
/// whatever was open at the cut. Cuts only on character boundaries outside tags and entities,
/// so the result still parses.
pub fn truncate_html(html: &str, max: usize) -> String {
    if utf16_len(html) <= max {
        return html.to_string();
    }
    // Scan once, remembering the last place a cut would fit with its closing tags.
    let mut best = 0;
    let mut units = 0;
    let mut closing = 0; // UTF-16 units of the closing tags for the open stack
    let mut stack: Vec<String> = Vec::new();
    let mut tag: Option<String> = None;
    let mut in_entity = false;
    for (i, c) in html.char_indices() {
        if tag.is_none() && !in_entity && units + ELLIPSIS.len_utf16() + closing <= max {
            best = i;
        }
        match (&mut tag, c) {
            (None, '<') => tag = Some(String::new()),
            (Some(body), '>') => {
                if let Some(name) = body.strip_prefix('/') {
                    if stack.last().is_some_and(|open| open == name.trim()) {
                        let open = stack.pop().unwrap_or_default();
                        closing -= open.len() + 3;
                    }
                } else if !body.ends_with('/') {
                    let name = body.split_whitespace().next().unwrap_or("").to_string();
                    closing += name.len() + 3;
                    stack.push(name);
                }
                tag = None;
            }
            (Some(body), c) => body.push(c),
            (None, '&') => in_entity = true,
            // Our text is always escaped, so a bare `&` never occurs; whitespace ends one anyway.
            (None, c) if c == ';' || c.is_whitespace() => in_entity = false,
            (None, _) => {}
        }
        units += c.len_utf16();
    }
    // Rebuild the open stack at `best`.
    let kept = &html[..best];
    let mut open: Vec<&str> = Vec::new();
    let mut rest = kept;
    while let Some(start) = rest.find('<') {
        let Some(end) = rest[start..].find('>') else { break };
        let body = &rest[start + 1..start + end];
        if let Some(name) = body.strip_prefix('/') {
            if open.last() == Some(&name.trim()) {
                open.pop();
            }
        } else if !body.ends_with('/') {
            open.push(body.split_whitespace().next().unwrap_or(""));
        }
        rest = &rest[start + end + 1..];
    }
    let mut out = kept.to_string();
    out.push(ELLIPSIS);
    for name in open.iter().rev() {
        let _ = write!(out, "</{name}>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Exchange;

    fn alert(body: SignalBody, detector: &str) -> Alert {
        Alert {
            seq: 7,
            ts: 1_723_161_480_135_000_000,
            exchange: Exchange::Binance,
            symbol: "BTC/USDT".into(),
            detector: detector.into(),
            params: "timeframe=10s,ma=20,k=3,min_quote=0".into(),
            body,
            json: String::new(),
        }
    }

    #[test]
    fn escaping() {
        let cases = [
            ("plain", "plain"),
            ("a<b", "a&lt;b"),
            ("a>b", "a&gt;b"),
            ("fish & chips", "fish &amp; chips"),
            ("&amp;", "&amp;amp;"),
            ("<b>bold</b>", "&lt;b&gt;bold&lt;/b&gt;"),
            ("\"quotes\" and 'apostrophes' stay", "\"quotes\" and 'apostrophes' stay"),
            ("BTC/USDT ×9 → ▲ 😀", "BTC/USDT ×9 → ▲ 😀"),
            ("", ""),
        ];
        for (text, want) in cases {
            assert_eq!(escape(text), want, "{text:?}");
            assert_eq!(to_plain(&escape(text)), text, "round trip of {text:?}");
        }
    }

    #[test]
    fn messages_per_detector() {
        let cases = [
            (
                alert(
                    SignalBody::Wave {
                        dir: "down",
                        start_ts: 0,
                        start_price: 61850.0,
                        end_ts: 0,
                        end_price: 61652.01,
                        change_pct: -0.32011317704122577,
                    },
                    "waves",
                ),
                "<b>BTC/USDT</b> · binance · waves\nwave <b>down</b> 61850 → 61652.01 (<b>-0.320%</b>)\n\
                 <i>timeframe=10s,ma=20,k=3,min_quote=0</i>\n2024-08-08T23:58:00.135Z",
            ),
            (
                alert(
                    SignalBody::Volatility {
                        regime: "high",
                        ratio: 1.5215413296914906,
                        sigma_short: 0.0,
                        sigma_long: 0.0,
                        bucket_start: 0,
                    },
                    "volatility",
                ),
                "<b>BTC/USDT</b> · binance · volatility\nvolatility regime <b>high</b>, ratio <b>1.522</b>\n\
                 <i>timeframe=10s,ma=20,k=3,min_quote=0</i>\n2024-08-08T23:58:00.135Z",
            ),
            (
                alert(
                    SignalBody::Volume {
                        bucket_start: 0,
                        volume: 31.10322,
                        baseline: 3.4284495000000006,
                        ratio: 9.07209512638293,
                        quote_volume: 0.0,
                    },
                    "volume",
                ),
                "<b>BTC/USDT</b> · binance · volume\nvolume <b>31.10322</b>, baseline 3.4284495, ratio <b>×9.07</b>\n\
                 <i>timeframe=10s,ma=20,k=3,min_quote=0</i>\n2024-08-08T23:58:00.135Z",
            ),
        ];
        for (alert, want) in cases {
            assert_eq!(alert_html(&alert), want);
        }
    }

    #[test]
    fn custom_fields_and_names_are_escaped() {
        let mut fields = serde_json::Map::new();
        fields.insert("note<1>".into(), "buy & hold <now>".into());
        fields.insert("size".into(), 3.into());
        let mut a = alert(SignalBody::Custom(fields), "my<strategy>");
        a.symbol = "A&B/USDT".into();
        a.params = "x=<1>".into();
        let html = alert_html(&a);
        assert_eq!(
            html,
            "<b>A&amp;B/USDT</b> · binance · my&lt;strategy&gt;\nnote&lt;1&gt;: <b>buy &amp; hold &lt;now&gt;</b>\n\
             size: <b>3</b>\n<i>x=&lt;1&gt;</i>\n2024-08-08T23:58:00.135Z"
        );
    }

    #[test]
    fn numbers_read_naturally() {
        let cases = [
            (61850.0, "61850"),
            (61652.01, "61652.01"),
            (2.9064975000000004, "2.9064975"),
            (31.10322, "31.10322"),
            (0.000123456789, "0.00012345679"),
            (123456789.0, "123456789"),
            (-0.5, "-0.5"),
            (0.0, "0"),
        ];
        for (x, want) in cases {
            assert_eq!(number(x), want, "{x}");
        }
    }

    /// Checks a cut message: within the limit, ends with the ellipsis and the right closing
    /// tags, and is a prefix of the original up to the cut.
    fn check_cut(original: &str, max: usize, closing: &str) -> String {
        let cut = truncate_html(original, max);
        assert!(utf16_len(&cut) <= max, "{} > {max}", utf16_len(&cut));
        let body = cut.strip_suffix(closing).unwrap_or_else(|| panic!("{cut:?} should end with {closing:?}"));
        let kept = body.strip_suffix(ELLIPSIS).expect("ends with an ellipsis");
        assert!(original.starts_with(kept));
        cut
    }

    #[test]
    fn truncation_table() {
        let long_e = "é".repeat(5000); // 2 bytes, 1 UTF-16 unit each
        let long_emoji = "😀".repeat(3000); // 4 bytes, 2 UTF-16 units each
        let mixed = format!("<b>{}</b>", "aé😀".repeat(2000));
        let entities = format!("<i>{}</i>", "&lt;".repeat(2000));
        let cases: [(&str, String, usize, &str); 6] = [
            ("multibyte é", long_e.clone(), MAX_CHARS, ""),
            ("emoji pairs", long_emoji.clone(), MAX_CHARS, ""),
            ("inside bold", mixed.clone(), MAX_CHARS, "</b>"),
            ("entities stay whole", entities.clone(), MAX_CHARS, "</i>"),
            ("tiny limit", "<b>abcdef</b>".into(), 8, "</b>"),
            ("nested", format!("<b>x<i>{}</i></b>", "y".repeat(50)), 20, "</i></b>"),
        ];
        for (name, text, max, closing) in cases {
            let cut = check_cut(&text, max, closing);
            assert!(cut.len() < text.len(), "{name}");
            // The budget is used: no more than the ellipsis, closing tags and one wide char short.
            assert!(utf16_len(&cut) + 2 >= max.min(utf16_len(&text)) - 4, "{name}: {}", utf16_len(&cut));
        }
        let cut = truncate_html(&entities, MAX_CHARS);
        let kept = cut.trim_end_matches("</i>").trim_end_matches(ELLIPSIS);
        assert!(kept.ends_with("&lt;"), "an entity is never split: {}", &kept[kept.len() - 8..]);
        let cut = truncate_html(&long_emoji, MAX_CHARS);
        assert_eq!(cut.chars().filter(|c| *c == '😀').count(), 2047, "4096 units: 2047 emoji and the ellipsis");
    }

    #[test]
    fn short_messages_are_untouched() {
        for text in ["", "<b>x</b>", &"a".repeat(MAX_CHARS), &"é".repeat(MAX_CHARS)] {
            assert_eq!(truncate_html(text, MAX_CHARS), text);
        }
    }

    #[test]
    fn huge_custom_alerts_fit() {
        let mut fields = serde_json::Map::new();
        fields.insert("blob".into(), "<&>ü".repeat(3000).into());
        let html = alert_html(&alert(SignalBody::Custom(fields), "custom"));
        assert!(utf16_len(&html) <= MAX_CHARS);
        assert!(html.ends_with("…</b>"), "{}", &html[html.len() - 20..]);
    }

    #[test]
    fn digest_lists_the_most_frequent_first() {
        let mut labels = BTreeMap::new();
        labels.insert("binance ETH/USDT waves".to_string(), 3);
        labels.insert("binance BTC/USDT volume".to_string(), 5);
        labels.insert("gate A<B/USDT volume".to_string(), 1);
        let digest = DigestText { count: 12, labels, others: 3, first_ts: 0, last_ts: 1_000_000_000 };
        assert_eq!(
            digest_html(&digest),
            "<b>+12 more:</b> binance BTC/USDT volume ×5, binance ETH/USDT waves ×3, gate A&lt;B/USDT volume, \
             3 others\n<i>coalesced while the alert queue was full; events 1970-01-01T00:00:00.000Z … \
             1970-01-01T00:00:01.000Z</i>"
        );
    }
}
