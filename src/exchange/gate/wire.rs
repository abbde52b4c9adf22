//! Gate spot v4's JSON shapes, borrowed from the frame text. Private to this folder.
//!
//! Owns only the shapes: no unit conversion, no model types. Numbers are kept as raw JSON
//! tokens (`&RawValue`) because Gate sends most of them as strings but some as numbers
//! (`book_ticker` sizes on the futures-shaped feed, candle `t`, REST vs WS trade ids), and
//! `Decimal::parse_json_token` reads either exactly; a typed `String` or `f64` would not.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

/// Every server frame: `{"time":..,"time_ms":..,"channel":..,"event":..,"error":..,"result":..}`.
#[derive(Deserialize)]
pub(super) struct Envelope<'a> {
    /// Seconds.
    pub time: Option<u64>,
    /// Milliseconds; absent in 2021 spot frames and 0 in futures subscribe acks.
    pub time_ms: Option<u64>,
    #[serde(borrow)]
    pub channel: Option<&'a str>,
    #[serde(borrow)]
    pub event: Option<&'a str>,
    pub error: Option<ErrorBody>,
    #[serde(borrow)]
    pub result: Option<&'a RawValue>,
}

/// In-band error: `{"code":2,"message":"unknown currency pair GIBBERISH_USD"}`.
#[derive(Deserialize)]
pub(super) struct ErrorBody {
    pub code: i64,
    #[serde(default)]
    pub message: String,
}

/// `spot.trades` result. Deserialized by hand (below) because the official doc example
/// repeats the key `id_market`, which derived structs reject; here the last value wins.
#[derive(Default)]
pub(super) struct TradeMsg<'a> {
    /// All-market trade id (int on WS, string in REST rows).
    pub id: Option<&'a RawValue>,
    /// Per-market trade id, consecutive within one pair; absent in 2021 captures.
    pub id_market: Option<&'a RawValue>,
    /// Seconds.
    pub create_time: Option<&'a RawValue>,
    /// Milliseconds with a fractional part, as a string ("1619093543708.2642").
    pub create_time_ms: Option<&'a RawValue>,
    /// Taker side, "buy" or "sell".
    pub side: Option<&'a str>,
    pub currency_pair: Option<&'a str>,
    pub amount: Option<&'a RawValue>,
    pub price: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum TradeField {
    Id,
    IdMarket,
    CreateTime,
    CreateTimeMs,
    Side,
    CurrencyPair,
    Amount,
    Price,
    #[serde(other)]
    Other,
}

impl<'de> Deserialize<'de> for TradeMsg<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LastWins;
        impl<'de> Visitor<'de> for LastWins {
            type Value = TradeMsg<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a spot.trades result object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TradeMsg<'de>, A::Error> {
                let mut m = TradeMsg::default();
                while let Some(field) = map.next_key::<TradeField>()? {
                    match field {
                        TradeField::Id => m.id = Some(map.next_value()?),
                        TradeField::IdMarket => m.id_market = Some(map.next_value()?),
                        TradeField::CreateTime => m.create_time = Some(map.next_value()?),
                        TradeField::CreateTimeMs => m.create_time_ms = Some(map.next_value()?),
                        TradeField::Side => m.side = Some(map.next_value()?),
                        TradeField::CurrencyPair => m.currency_pair = Some(map.next_value()?),
                        TradeField::Amount => m.amount = Some(map.next_value()?),
                        TradeField::Price => m.price = Some(map.next_value()?),
                        TradeField::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(m)
            }
        }
        deserializer.deserialize_map(LastWins)
    }
}

/// `spot.book_ticker` result.
#[derive(Deserialize)]
pub(super) struct BookTickerMsg<'a> {
    /// Milliseconds.
    pub t: Option<u64>,
    /// Order-book update id.
    pub u: Option<u64>,
    pub s: &'a str,
    #[serde(borrow)]
    pub b: &'a RawValue,
    #[serde(rename = "B", borrow)]
    pub bid_qty: &'a RawValue,
    #[serde(borrow)]
    pub a: &'a RawValue,
    #[serde(rename = "A", borrow)]
    pub ask_qty: &'a RawValue,
}

/// `spot.order_book_update` result. `full` is present (and true) only on full-book pushes.
#[derive(Deserialize)]
pub(super) struct DepthUpdateMsg<'a> {
    /// Milliseconds (`E`, in seconds, is deprecated and not read).
    pub t: Option<u64>,
    pub full: Option<bool>,
    pub s: &'a str,
    #[serde(rename = "U")]
    pub first_update_id: Option<u64>,
    #[serde(rename = "u")]
    pub last_update_id: u64,
    #[serde(default, borrow)]
    pub b: Vec<[&'a RawValue; 2]>,
    #[serde(default, borrow)]
    pub a: Vec<[&'a RawValue; 2]>,
}

/// `spot.candlesticks` result; `n` is `<interval>_<pair>`.
#[derive(Deserialize)]
pub(super) struct CandleMsg<'a> {
    /// Bucket start, seconds (a string on spot, a number on futures).
    #[serde(borrow)]
    pub t: &'a RawValue,
    #[serde(borrow)]
    pub o: &'a RawValue,
    #[serde(borrow)]
    pub h: &'a RawValue,
    #[serde(borrow)]
    pub l: &'a RawValue,
    #[serde(borrow)]
    pub c: &'a RawValue,
    /// Quote-currency turnover.
    #[serde(borrow)]
    pub v: &'a RawValue,
    /// Base-currency amount; missing in 2021 frames.
    #[serde(borrow)]
    pub a: Option<&'a RawValue>,
    pub n: &'a str,
    /// Window closed; "true may be missing" per the doc.
    pub w: Option<bool>,
}

/// `spot.tickers` result (24 h rolling).
#[derive(Deserialize)]
pub(super) struct TickerMsg<'a> {
    pub currency_pair: &'a str,
    #[serde(borrow)]
    pub last: &'a RawValue,
    #[serde(borrow)]
    pub lowest_ask: Option<&'a RawValue>,
    #[serde(borrow)]
    pub highest_bid: Option<&'a RawValue>,
    #[serde(borrow)]
    pub base_volume: &'a RawValue,
    #[serde(borrow)]
    pub quote_volume: Option<&'a RawValue>,
    #[serde(borrow)]
    pub high_24h: Option<&'a RawValue>,
    #[serde(borrow)]
    pub low_24h: Option<&'a RawValue>,
}

/// `GET /spot/order_book?...&with_id=true`; `current`/`update` are ms (absent in 2021 bodies).
#[derive(Deserialize)]
pub(super) struct OrderBookBody<'a> {
    pub id: Option<u64>,
    pub current: Option<u64>,
    #[serde(borrow)]
    pub asks: Vec<[&'a RawValue; 2]>,
    #[serde(borrow)]
    pub bids: Vec<[&'a RawValue; 2]>,
}

/// One row of `GET /spot/currency_pairs`.
#[derive(Deserialize)]
pub(super) struct CurrencyPairRow {
    pub id: String,
    pub base: Option<String>,
    pub quote: Option<String>,
    pub trade_status: Option<String>,
    /// Decimal places of amounts (base quantity).
    pub amount_precision: Option<u32>,
    /// Decimal places of prices.
    pub precision: Option<u32>,
}

/// REST error body: `{"label":"INVALID_CURRENCY_PAIR","message":"..."}`.
#[derive(Deserialize)]
pub(super) struct RestError {
    pub label: String,
    #[serde(default)]
    pub message: String,
}

/// A `GET /spot/candlesticks` row: `[t (s), quote volume, close, high, low, open, base amount,
/// window closed]`, all strings; older bodies stop before the base amount or the closed flag.
/// Kept raw and read by index.
pub(super) type CandleRow<'a> = Vec<&'a RawValue>;
