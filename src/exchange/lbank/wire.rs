//! LBank's JSON shapes in both directions: push frames and REST bodies as we read them
//! (borrowed from the frame text), and the requests we send (subscribe, pong).
//!
//! Owns the serde types and the request builders; must not turn anything into model types
//! (that is `normalize.rs` and `rest.rs`). Every price and quantity is a `&RawValue`
//! because LBank sends JSON numbers, and going through `f64` would lose digits.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Every frame the server pushes, read once to decide what it is. Pushes look like
/// `{"<type>":{..},"type":"<type>","pair":"btc_usdt","SERVER":"V2","TS":".."}` in any key
/// order; pings, errors and one-shot request replies share the same top level.
#[derive(Deserialize)]
pub(super) struct Frame<'a> {
    #[serde(borrow)]
    pub action: Option<&'a str>,
    /// Kept raw so a pong echoes the venue's value byte for byte, whatever its type.
    #[serde(borrow)]
    pub ping: Option<&'a RawValue>,
    #[serde(rename = "type", borrow)]
    pub kind: Option<&'a str>,
    #[serde(borrow)]
    pub pair: Option<&'a str>,
    #[serde(rename = "TS", borrow)]
    pub ts: Option<&'a str>,
    #[serde(borrow)]
    pub status: Option<&'a str>,
    #[serde(borrow)]
    pub message: Option<Cow<'a, str>>,
    // The payloads are raw: in subscribe echoes and request replies the same keys hold
    // strings ("kbar":"5min"), so their shape is only checked once the type is known.
    #[serde(borrow)]
    pub trade: Option<&'a RawValue>,
    #[serde(borrow)]
    pub depth: Option<&'a RawValue>,
    #[serde(borrow)]
    pub kbar: Option<&'a RawValue>,
    #[serde(borrow)]
    pub tick: Option<&'a RawValue>,
    /// One-shot `request` replies carry their rows at the top level instead of nested.
    #[serde(borrow)]
    pub asks: Option<&'a RawValue>,
    #[serde(borrow)]
    pub records: Option<&'a RawValue>,
    #[serde(borrow)]
    pub trades: Option<&'a RawValue>,
}

/// One `[price, qty]` level, as JSON numbers (WS) or strings (REST `depth.do`).
pub(super) type RawLevel<'a> = [&'a RawValue; 2];

#[derive(Deserialize)]
pub(super) struct TradeMsg<'a> {
    #[serde(borrow)]
    pub price: &'a RawValue,
    /// Base quantity. (`amount` is the quote turnover, price × volume, which the doc's
    /// field table mislabels; it is not needed because the model keeps price and qty.)
    #[serde(borrow)]
    pub volume: &'a RawValue,
    #[serde(borrow)]
    pub direction: &'a str,
    /// The deal time; the envelope `TS` is the push time.
    #[serde(rename = "TS", borrow)]
    pub ts: Option<&'a str>,
}

/// Depth levels, nested under `depth` in pushes and at the top level in request replies.
#[derive(Deserialize)]
pub(super) struct DepthMsg<'a> {
    #[serde(borrow)]
    pub asks: Vec<RawLevel<'a>>,
    #[serde(borrow)]
    pub bids: Vec<RawLevel<'a>>,
}

#[derive(Deserialize)]
pub(super) struct KbarMsg<'a> {
    /// Bar start, zone-less text.
    #[serde(borrow)]
    pub t: &'a str,
    #[serde(borrow)]
    pub slot: &'a str,
    #[serde(borrow)]
    pub o: &'a RawValue,
    #[serde(borrow)]
    pub h: &'a RawValue,
    #[serde(borrow)]
    pub l: &'a RawValue,
    #[serde(borrow)]
    pub c: &'a RawValue,
    /// Base volume.
    #[serde(borrow)]
    pub v: &'a RawValue,
    /// Quote turnover.
    #[serde(borrow)]
    pub a: Option<&'a RawValue>,
    /// Trade count; the doc types it BigDecimal, so it is read raw and checked for integrality.
    #[serde(borrow)]
    pub n: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(super) struct TickMsg<'a> {
    #[serde(borrow)]
    pub latest: &'a RawValue,
    /// Base volume over 24 h.
    #[serde(borrow)]
    pub vol: &'a RawValue,
    /// Quote turnover over 24 h.
    #[serde(borrow)]
    pub turnover: Option<&'a RawValue>,
    #[serde(borrow)]
    pub high: Option<&'a RawValue>,
    #[serde(borrow)]
    pub low: Option<&'a RawValue>,
}

/// The REST v2 envelope. `result` is the string `"true"` on most endpoints and a boolean
/// on others, and `msg` may be null, so success is decided by `error_code` alone.
#[derive(Deserialize)]
pub(super) struct RestEnvelope<'a> {
    #[serde(borrow)]
    pub result: Option<&'a RawValue>,
    #[serde(borrow)]
    pub data: Option<&'a RawValue>,
    pub error_code: Option<i64>,
    #[serde(borrow)]
    pub msg: Option<Cow<'a, str>>,
}

/// `GET /v2/depth.do` `data`: levels as strings, snapshot time in Unix ms.
#[derive(Deserialize)]
pub(super) struct RestDepth<'a> {
    #[serde(borrow)]
    pub asks: Vec<RawLevel<'a>>,
    #[serde(borrow)]
    pub bids: Vec<RawLevel<'a>>,
    pub timestamp: Option<u64>,
}

/// The documented `kbar` slots; `month` and `year` are valid requests but have no fixed
/// length, so `normalize.rs` refuses their pushes.
pub(super) const KBAR_SLOTS: &[&str] =
    &["1min", "5min", "15min", "30min", "1hr", "4hr", "day", "week", "month", "year"];

/// The documented `depth` sizes.
pub(super) const DEPTH_SIZES: &[&str] = &["10", "50", "100"];

/// A subscribe or unsubscribe request. Field order is the doc's, so the text matches the
/// doc examples byte for byte; the channel-specific key sits between `subscribe` and `pair`.
#[derive(Serialize)]
struct SubscriptionRequest<'a> {
    action: &'a str,
    subscribe: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kbar: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    depth: Option<&'a str>,
    pair: &'a str,
}

/// Builds `{"action":"subscribe","subscribe":<channel>,[<channel>:<extra>,]"pair":<pair>}`.
///
/// `extra` is the kbar slot (`"1min"` … `"year"`) for `kbar` and the level count (`"10"`,
/// `"50"`, `"100"`) for `depth`; `trade` and `tick` take none. One pair per message: LBank
/// has no multi-pair form.
///
/// # Errors
/// When the channel is unknown or `extra` is missing, unexpected or not a documented value.
pub fn subscribe_message(channel: &str, pair: &str, extra: Option<&str>) -> Result<String, String> {
    subscription("subscribe", channel, pair, extra)
}

/// The matching `unsubscribe` request; same arguments as [`subscribe_message`].
///
/// # Errors
/// As [`subscribe_message`].
pub fn unsubscribe_message(channel: &str, pair: &str, extra: Option<&str>) -> Result<String, String> {
    subscription("unsubscribe", channel, pair, extra)
}

fn subscription(action: &str, channel: &str, pair: &str, extra: Option<&str>) -> Result<String, String> {
    if pair.is_empty() {
        return Err("empty pair".into());
    }
    let check = |allowed: &[&str], what: &str| match extra {
        Some(value) if allowed.contains(&value) => Ok(Some(value)),
        Some(value) => Err(format!("invalid {what} {value:?} for {channel} (expected one of {})", allowed.join(", "))),
        None => Err(format!("{channel} needs a {what} (one of {})", allowed.join(", "))),
    };
    let (kbar, depth) = match channel {
        "kbar" => (check(KBAR_SLOTS, "slot")?, None),
        "depth" => (None, check(DEPTH_SIZES, "size")?),
        "trade" | "tick" => match extra {
            None => (None, None),
            Some(value) => return Err(format!("{channel} takes no extra parameter, got {value:?}")),
        },
        other => return Err(format!("unknown channel {other:?} (expected trade, tick, depth or kbar)")),
    };
    let request = SubscriptionRequest { action, subscribe: channel, kbar, depth, pair };
    serde_json::to_string(&request).map_err(|e| format!("cannot encode request: {e}"))
}

/// The documented heartbeat reply: `{"action":"pong","pong":<the ping's value>}`. The raw
/// token is spliced in as sent (it is already valid JSON), so the echo is exact.
pub(super) fn pong(ping: &RawValue) -> String {
    format!(r#"{{"action":"pong","pong":{}}}"#, ping.get())
}

/// `GET /v2/kline.do` `type` names by bucket length; they differ from the WS `kbar` slots
/// (`minute1` vs `1min`). `month1` has no fixed length and is not offered.
pub(super) const KLINE_TYPES: &[(u32, &str)] = &[
    (60, "minute1"),
    (300, "minute5"),
    (900, "minute15"),
    (1800, "minute30"),
    (3600, "hour1"),
    (14_400, "hour4"),
    (28_800, "hour8"),
    (43_200, "hour12"),
    (86_400, "day1"),
    (604_800, "week1"),
];

/// A `GET /v2/kline.do` row: `[t (Unix s), open, high, low, close, volume]`, JSON numbers.
pub(super) type KlineRow<'a> = Vec<&'a RawValue>;

#[cfg(test)]
mod tests {
    use super::*;

    const REQUESTS: &str =
        include_str!("../../../tests/fixtures/lbank/lbank_v2_ws_subscribe_requests_doc_examples.jsonl");

    #[test]
    fn subscribe_messages_match_the_doc_examples() {
        let built = [
            subscribe_message("kbar", "eth_btc", Some("5min")),
            subscribe_message("depth", "eth_btc", Some("100")),
            subscribe_message("trade", "eth_btc", None),
            subscribe_message("tick", "eth_btc", None),
        ];
        let doc: Vec<&str> = REQUESTS.lines().take(built.len()).collect();
        for (built, doc) in built.into_iter().zip(doc) {
            assert_eq!(built.as_deref(), Ok(doc));
        }
        // The doc's unsubscribe example is the same object with another action.
        assert_eq!(
            unsubscribe_message("depth", "eth_btc", Some("100")).as_deref(),
            Ok(r#"{"action":"unsubscribe","subscribe":"depth","depth":"100","pair":"eth_btc"}"#)
        );
    }

    #[test]
    fn subscribe_rejects_table() {
        let cases = [
            ("kbar", "eth_btc", None),
            ("kbar", "eth_btc", Some("1m")),
            ("depth", "eth_btc", None),
            ("depth", "eth_btc", Some("200")),
            ("trade", "eth_btc", Some("100")),
            ("tick", "eth_btc", Some("x")),
            ("incrDepth", "eth_btc", None),
            ("trade", "", None),
        ];
        for (channel, pair, extra) in cases {
            let err = subscribe_message(channel, pair, extra).expect_err(channel);
            assert!(err.starts_with(|c: char| c.is_ascii_lowercase()), "errors are lowercase: {err}");
        }
        for slot in KBAR_SLOTS {
            assert!(subscribe_message("kbar", "btc_usdt", Some(slot)).is_ok(), "{slot}");
        }
    }

    #[test]
    fn pair_is_escaped_not_spliced() {
        let text = subscribe_message("trade", "a\"b", None).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["pair"], "a\"b");
    }
}
