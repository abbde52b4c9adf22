//! Binance's JSON shapes, borrowed from the frame text. Private to this folder.

use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
pub(super) struct Envelope<'a> {
    #[serde(borrow)]
    pub stream: &'a str,
    #[serde(borrow)]
    pub data: &'a RawValue,
}

/// `{"result":..,"id":..}` replies and `{"code":..,"msg":..}` errors, flat or wrapped.
#[derive(Deserialize)]
pub(super) struct Control<'a> {
    pub id: Option<serde_json::Value>,
    pub code: Option<i64>,
    #[serde(borrow)]
    pub msg: Option<std::borrow::Cow<'a, str>>,
    pub error: Option<ControlError>,
}

#[derive(Deserialize)]
pub(super) struct ControlError {
    pub code: i64,
    pub msg: String,
}

#[derive(Deserialize)]
pub(super) struct TradeMsg<'a> {
    #[serde(rename = "s")]
    pub symbol: &'a str,
    #[serde(rename = "t")]
    pub trade_id: u64,
    #[serde(rename = "p")]
    pub price: &'a str,
    #[serde(rename = "q")]
    pub qty: &'a str,
    #[serde(rename = "T")]
    pub trade_time: u64,
    #[serde(rename = "m")]
    pub buyer_is_maker: bool,
}

#[derive(Deserialize)]
pub(super) struct AggTradeMsg<'a> {
    #[serde(rename = "s")]
    pub symbol: &'a str,
    #[serde(rename = "a")]
    pub agg_id: u64,
    #[serde(rename = "p")]
    pub price: &'a str,
    #[serde(rename = "q")]
    pub qty: &'a str,
    #[serde(rename = "T")]
    pub trade_time: u64,
    #[serde(rename = "m")]
    pub buyer_is_maker: bool,
}

#[derive(Deserialize)]
pub(super) struct BookTickerMsg<'a> {
    #[serde(rename = "u")]
    pub update_id: u64,
    #[serde(rename = "s")]
    pub symbol: &'a str,
    #[serde(rename = "b")]
    pub bid_price: &'a str,
    #[serde(rename = "B")]
    pub bid_qty: &'a str,
    #[serde(rename = "a")]
    pub ask_price: &'a str,
    #[serde(rename = "A")]
    pub ask_qty: &'a str,
}

#[derive(Deserialize)]
pub(super) struct DepthUpdateMsg<'a> {
    #[serde(rename = "E")]
    pub event_time: u64,
    #[serde(rename = "s")]
    pub symbol: &'a str,
    #[serde(rename = "U")]
    pub first_update_id: u64,
    #[serde(rename = "u")]
    pub last_update_id: u64,
    #[serde(rename = "b", borrow)]
    pub bids: Vec<[&'a str; 2]>,
    #[serde(rename = "a", borrow)]
    pub asks: Vec<[&'a str; 2]>,
}

#[derive(Deserialize)]
pub(super) struct KlineMsg<'a> {
    #[serde(rename = "E")]
    pub event_time: u64,
    #[serde(rename = "s")]
    pub symbol: &'a str,
    #[serde(rename = "k", borrow)]
    pub kline: Kline<'a>,
}

#[derive(Deserialize)]
pub(super) struct Kline<'a> {
    #[serde(rename = "t")]
    pub open_time: u64,
    #[serde(rename = "i")]
    pub interval: &'a str,
    #[serde(rename = "o")]
    pub open: &'a str,
    #[serde(rename = "h")]
    pub high: &'a str,
    #[serde(rename = "l")]
    pub low: &'a str,
    #[serde(rename = "c")]
    pub close: &'a str,
    #[serde(rename = "v")]
    pub volume: &'a str,
    #[serde(rename = "q")]
    pub quote_volume: &'a str,
    #[serde(rename = "n")]
    pub trades: u64,
    #[serde(rename = "x")]
    pub closed: bool,
}

#[derive(Deserialize)]
pub(super) struct MiniTickerMsg<'a> {
    #[serde(rename = "E")]
    pub event_time: u64,
    #[serde(rename = "s")]
    pub symbol: &'a str,
    #[serde(rename = "c")]
    pub close: &'a str,
    #[serde(rename = "h")]
    pub high: &'a str,
    #[serde(rename = "l")]
    pub low: &'a str,
    #[serde(rename = "v")]
    pub volume: &'a str,
    #[serde(rename = "q")]
    pub quote_volume: &'a str,
}

#[derive(Deserialize)]
pub(super) struct DepthSnapshotBody<'a> {
    #[serde(rename = "lastUpdateId")]
    pub last_update_id: u64,
    #[serde(borrow)]
    pub bids: Vec<[&'a str; 2]>,
    #[serde(borrow)]
    pub asks: Vec<[&'a str; 2]>,
}

#[derive(Deserialize)]
pub(super) struct ExchangeInfoBody {
    pub symbols: Vec<ExchangeInfoSymbol>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ExchangeInfoSymbol {
    pub symbol: String,
    pub status: String,
    pub base_asset: String,
    pub quote_asset: String,
    pub base_asset_precision: Option<u32>,
    pub quote_asset_precision: Option<u32>,
}

/// One `GET /api/v3/aggTrades` row (`f`, `l` and `M` are not needed).
#[derive(Deserialize)]
pub(super) struct AggTradeRow<'a> {
    #[serde(rename = "a")]
    pub agg_id: u64,
    #[serde(rename = "p")]
    pub price: &'a str,
    #[serde(rename = "q")]
    pub qty: &'a str,
    #[serde(rename = "T")]
    pub trade_time: u64,
    #[serde(rename = "m")]
    pub buyer_is_maker: bool,
}

/// A `GET /api/v3/klines` row: `[openTime, open, high, low, close, volume, closeTime,
/// quoteVolume, trades, takerBuyBase, takerBuyQuote, ignore]`, decimals as strings. Kept as raw
/// tokens and read by index, so a venue adding columns does not break parsing.
pub(super) type KlineRow<'a> = Vec<&'a RawValue>;

/// REST error body: `{"code":-1121,"msg":"Invalid symbol."}`.
#[derive(Deserialize)]
pub(super) struct RestError {
    pub code: i64,
    pub msg: String,
}
