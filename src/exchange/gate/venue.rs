//! Gate spot v4 as a capture target: endpoints, subscribe messages, sharding, pings and REST paths.
//!
//! Owns what capture sends to Gate; must not parse frames (that is `normalize.rs`/`rest.rs`),
//! do IO or read the clock. Gate has no combined-stream URL: every subscription is a JSON
//! message on `wss://api.gateio.ws/ws/v4/`, and each message must carry its send time in `time`
//! (unix s, within 60 s of the server's clock, `shared/protocols/gate.md` §1). `plan()` has no
//! clock, so its messages carry `"time":0` and **capture must pass each one through
//! [`stamp_time`] right before sending it** (also on every resubscribe after a reconnect).
//!
//! Sharding: Gate documents no cap on subscriptions per connection, on subscribe messages or
//! on payload size, only 300 connections per IP (§1), so everything goes on one connection.
//! Multi-pair channels are still chunked to [`PAIRS_PER_MESSAGE`] pairs per message to keep
//! each request small; the order book and candle channels take one pair per message.

use serde_json::json;

use super::rest::{CurrencyPair, parse_candlesticks, parse_currency_pairs, parse_depth_snapshot};
use super::{GateNormalizer, TS_NOTES};
use crate::exchange::{
    ConnectionPlan, Endpoints, HistoryCursor, HistoryKind, HistoryRequest, HistoryRow, NormalizeError, Normalized,
    Normalizer, RestBudget, StreamKind, SymbolInfo, Venue,
};
use crate::model::{Exchange, Instrument, Nanos};

/// Pairs per `spot.trades` / `spot.book_ticker` / `spot.tickers` subscribe message.
pub const PAIRS_PER_MESSAGE: usize = 100;

/// The order-book diff interval: `100ms` is the top-100 stream (`20ms` would be top-20).
const DEPTH_INTERVAL: &str = "100ms";
/// REST snapshot depth; the sync procedure (§3) wants `limit` = the channel depth.
const SNAPSHOT_LIMIT: u32 = 100;

/// How often to send the application ping. Gate checks liveness with protocol-level pings,
/// but the application ping also resets its client timeout (length undocumented); the official
/// demo and the gatews Go SDK send one every 10 s.
const PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Most candles `GET /spot/candlesticks` returns for one `from`/`to` window.
const CANDLES_PER_PAGE: u64 = 1000;

/// Where backfilled rows come from, for the recording meta.
const HISTORY_NOTES: &[(&str, &str)] = &[(
    "gate.backfill.klines",
    "GET /api/v4/spot/candlesticks by from/to windows of 1000 buckets; volume = base amount (field 7), \
     quote_volume = field 2, no trade count; rows flagged not closed are never recorded",
)];

pub struct GateVenue;

/// The WS candlestick interval for `seconds`, or `None` when Gate has none that long. The WS
/// set is `10s 1m 5m 15m 30m 1h 4h 8h 1d 7d` (REST's `1s` and `30d` are not offered on WS).
pub fn kline_interval(seconds: u32) -> Option<&'static str> {
    Some(match seconds {
        10 => "10s",
        60 => "1m",
        300 => "5m",
        900 => "15m",
        1800 => "30m",
        3600 => "1h",
        14_400 => "4h",
        28_800 => "8h",
        86_400 => "1d",
        // Gate spells a week `7d`, not `1w`.
        604_800 => "7d",
        _ => return None,
    })
}

/// `msg` with its leading `{"time":<digits>` set to `unix_s`. Gate rejects requests whose
/// `time` is more than 60 s off, so capture calls this on every message from [`GateVenue::plan`]
/// just before sending it; re-stamping an already stamped message works too. Text that does not
/// start that way (not one of ours) is returned unchanged.
pub fn stamp_time(msg: &str, unix_s: u64) -> String {
    const KEY: &str = r#"{"time":"#;
    if let Some(rest) = msg.strip_prefix(KEY) {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && rest[digits..].starts_with([',', '}']) {
            return format!("{KEY}{unix_s}{}", &rest[digits..]);
        }
    }
    msg.to_string()
}

/// `{"time":0,"channel":..,"event":"subscribe","payload":[..]}`: the doc's request without the
/// optional `id`. Field order is the doc's (serde_json keeps insertion order here), so the
/// text matches real client frames byte for byte once stamped, and `time` leads for [`stamp_time`].
fn subscribe(channel: &str, payload: &[&str]) -> String {
    json!({"time": 0, "channel": channel, "event": "subscribe", "payload": payload}).to_string()
}

impl Venue for GateVenue {
    fn stamp(&self, message: &str, unix_s: u64) -> String {
        stamp_time(message, unix_s)
    }

    fn check_streams(&self, streams: &[StreamKind]) -> Result<(), String> {
        for kind in streams {
            if let StreamKind::Kline(s) = kind
                && kline_interval(*s).is_none()
            {
                return Err(format!(
                    "gate has no {} klines (10s, 1m, 5m, 15m, 30m, 1h, 4h, 8h, 1d, 7d)",
                    crate::model::time::format_timeframe(*s)
                ));
            }
        }
        Ok(())
    }

    fn exchange(&self) -> Exchange {
        Exchange::Gate
    }

    fn default_endpoints(&self) -> Endpoints {
        Endpoints { ws: "wss://api.gateio.ws/ws/v4/".into(), rest: "https://api.gateio.ws".into() }
    }

    fn symbols_path(&self) -> String {
        "/api/v4/spot/currency_pairs".into()
    }

    fn parse_symbols(&self, body: &str) -> Result<Vec<SymbolInfo>, NormalizeError> {
        let mut out: Vec<SymbolInfo> = parse_currency_pairs(body)?
            .into_iter()
            .map(|pair: CurrencyPair| SymbolInfo {
                tradable: pair.is_tradable(),
                instrument: pair.instrument,
                status: pair.trade_status,
                price_precision: pair.price_precision,
                qty_precision: pair.qty_precision,
            })
            .collect();
        out.sort_by(|a, b| a.instrument.venue_symbol.cmp(&b.instrument.venue_symbol));
        Ok(out)
    }

    /// One connection, messages grouped by stream kind in the order of `streams`. Stream names
    /// are `<channel> <pair>` (candles: `<channel> <interval>_<pair>`, Gate's own `n`), the same
    /// text the normalizer puts in `Gap` statuses. Klines with no WS interval are left out
    /// (see [`kline_interval`]); they appear in no message and no stream name.
    fn plan(&self, endpoints: &Endpoints, instruments: &[Instrument], streams: &[StreamKind]) -> Vec<ConnectionPlan> {
        let pairs: Vec<&str> = instruments.iter().map(|i| i.venue_symbol.as_str()).collect();
        let mut subscribe_msgs = Vec::new();
        let mut names = Vec::new();
        let mut depth = Vec::new();
        for kind in streams {
            let channel = match kind {
                StreamKind::Trade => "spot.trades",
                StreamKind::Quote => "spot.book_ticker",
                StreamKind::Ticker => "spot.tickers",
                StreamKind::Depth => {
                    for (instrument, &pair) in instruments.iter().zip(&pairs) {
                        subscribe_msgs.push(subscribe("spot.order_book_update", &[pair, DEPTH_INTERVAL]));
                        names.push(format!("spot.order_book_update {pair}"));
                        depth.push(instrument.clone());
                    }
                    continue;
                }
                StreamKind::Kline(seconds) => {
                    let Some(interval) = kline_interval(*seconds) else { continue };
                    for &pair in &pairs {
                        // Interval first here, unlike the order book's `[pair, interval]`.
                        subscribe_msgs.push(subscribe("spot.candlesticks", &[interval, pair]));
                        names.push(format!("spot.candlesticks {interval}_{pair}"));
                    }
                    continue;
                }
            };
            for chunk in pairs.chunks(PAIRS_PER_MESSAGE) {
                subscribe_msgs.push(subscribe(channel, chunk));
            }
            names.extend(pairs.iter().map(|pair| format!("{channel} {pair}")));
        }
        if subscribe_msgs.is_empty() {
            return Vec::new();
        }
        vec![ConnectionPlan { url: endpoints.ws.clone(), subscribe: subscribe_msgs, streams: names, depth }]
    }

    fn normalizer(&self, _symbols: &[SymbolInfo]) -> Box<dyn Normalizer> {
        // Gate ids split unambiguously on their one `_`, so the normalizer needs no symbol map.
        Box::new(GateNormalizer::new())
    }

    fn snapshot_path(&self, instrument: &Instrument) -> String {
        format!("/api/v4/spot/order_book?currency_pair={}&limit={SNAPSHOT_LIMIT}&with_id=true", instrument.venue_symbol)
    }

    fn parse_snapshot(
        &self,
        body: &str,
        instrument: &Instrument,
        ts_recv: Nanos,
    ) -> Result<Normalized, NormalizeError> {
        parse_depth_snapshot(body, instrument, ts_recv)
    }

    /// The documented application ping, `{"time":<s>,"channel":"spot.ping"}`; the `spot.pong`
    /// reply is a control frame to the normalizer.
    fn app_ping(&self, unix_s: u64) -> Option<String> {
        Some(format!(r#"{{"time":{unix_s},"channel":"spot.ping"}}"#))
    }

    fn ping_interval(&self) -> Option<std::time::Duration> {
        Some(PING_INTERVAL)
    }

    fn ts_notes(&self) -> &'static [(&'static str, &'static str)] {
        TS_NOTES
    }

    /// Candles by `from`/`to` (Unix s, both on open times) over windows of at most 1000
    /// buckets, the documented maximum per query. Trades are not offered: `GET /spot/trades`
    /// pages by time window and page number, with no documented order within a page.
    fn history_request(
        &self,
        instrument: &Instrument,
        kind: HistoryKind,
        cursor: &HistoryCursor,
    ) -> Result<HistoryRequest, String> {
        let HistoryKind::Klines(seconds) = kind else {
            return Err("gate: trade backfill is not supported yet (use --kline)".into());
        };
        self.check_streams(&[StreamKind::Kline(seconds)])?;
        let interval = kline_interval(seconds).expect("checked above");
        let from_s = cursor.from_ms.div_ceil(1000);
        let window_end_ms = (from_s + CANDLES_PER_PAGE * u64::from(seconds)).saturating_mul(1000).min(cursor.end_ms);
        let to_s = window_end_ms.saturating_sub(1) / 1000;
        let pair = &instrument.venue_symbol;
        let path =
            format!("/api/v4/spot/candlesticks?currency_pair={pair}&interval={interval}&from={from_s}&to={to_s}");
        Ok(HistoryRequest { path, weight: 1, window_end_ms })
    }

    fn parse_history(&self, body: &str, kind: HistoryKind) -> Result<Vec<HistoryRow>, NormalizeError> {
        match kind {
            HistoryKind::Klines(seconds) => parse_candlesticks(body, seconds),
            HistoryKind::Trades => Err(NormalizeError::Unknown("gate trade history".into())),
        }
    }

    /// Public endpoints: 200 requests per 10 s per endpoint per IP, with the requests left and
    /// the reset time in `X-Gate-RateLimit-Requests-Remain` / `-Reset-Timestamp`.
    fn rest_budget(&self) -> RestBudget {
        RestBudget {
            limit: 200,
            window: std::time::Duration::from_secs(10),
            remaining_header: Some("x-gate-ratelimit-requests-remain"),
            reset_header: Some("x-gate-ratelimit-reset-timestamp"),
            ..RestBudget::default()
        }
    }

    fn history_notes(&self) -> &'static [(&'static str, &'static str)] {
        HISTORY_NOTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::gate::fixtures;
    use crate::exchange::gate::parse_symbol;

    fn endpoints() -> Endpoints {
        Endpoints { ws: "ws://127.0.0.1:9/ws/v4/".into(), rest: String::new() }
    }

    fn gate(pair: &str) -> Instrument {
        parse_symbol(pair).unwrap()
    }

    /// The client frames of the 2021 capture: `<url> <- <unix s float>: <json>`.
    fn client_frames(capture: &str) -> Vec<&str> {
        capture.lines().filter(|l| l.contains(" <- ")).map(|l| l.split_once(": ").unwrap().1).collect()
    }

    #[test]
    fn plan_reproduces_the_captured_subscribe_frames() {
        // cryptofeed's subscriptions in GATEIO.ws.1.0 (sent at time 1619093532), same pairs in the same order.
        let pairs = [
            "INK_USDT",
            "HAI_ETH",
            "BTC_USDC",
            "NANO_USDT",
            "QTUM3S_USDT",
            "DIS_USDT",
            "NEO_BTC",
            "FAST_USDT",
            "ZKS_ETH",
            "OMG_USDT",
        ];
        let instruments: Vec<Instrument> = pairs.iter().map(|p| gate(p)).collect();
        let streams = [StreamKind::Trade, StreamKind::Depth, StreamKind::Kline(60), StreamKind::Ticker];
        let plans = GateVenue.plan(&endpoints(), &instruments, &streams);
        assert_eq!(plans.len(), 1);
        let stamped: Vec<String> = plans[0].subscribe.iter().map(|m| stamp_time(m, 1_619_093_532)).collect();
        assert_eq!(stamped, client_frames(fixtures::SPOT_WS));
        assert_eq!(plans[0].url, "ws://127.0.0.1:9/ws/v4/");
        assert_eq!(plans[0].depth, instruments, "every depth pair needs a REST snapshot");
        assert_eq!(plans[0].streams.len(), 40);
        assert_eq!(plans[0].streams[0], "spot.trades INK_USDT");
        assert_eq!(plans[0].streams[10], "spot.order_book_update INK_USDT");
        assert_eq!(plans[0].streams[39], "spot.tickers OMG_USDT");
    }

    #[test]
    fn plan_messages_exactly() {
        let (btc, eth) = (gate("BTC_USDT"), gate("ETH_USDT"));
        let streams = [StreamKind::Quote, StreamKind::Kline(604_800), StreamKind::Kline(120), StreamKind::Trade];
        let plans = GateVenue.plan(&endpoints(), &[btc, eth], &streams);
        assert_eq!(
            plans[0].subscribe,
            [
                r#"{"time":0,"channel":"spot.book_ticker","event":"subscribe","payload":["BTC_USDT","ETH_USDT"]}"#,
                r#"{"time":0,"channel":"spot.candlesticks","event":"subscribe","payload":["7d","BTC_USDT"]}"#,
                r#"{"time":0,"channel":"spot.candlesticks","event":"subscribe","payload":["7d","ETH_USDT"]}"#,
                r#"{"time":0,"channel":"spot.trades","event":"subscribe","payload":["BTC_USDT","ETH_USDT"]}"#,
            ]
        );
        assert_eq!(
            plans[0].streams,
            [
                "spot.book_ticker BTC_USDT",
                "spot.book_ticker ETH_USDT",
                "spot.candlesticks 7d_BTC_USDT",
                "spot.candlesticks 7d_ETH_USDT",
                "spot.trades BTC_USDT",
                "spot.trades ETH_USDT",
            ]
        );
        assert!(plans[0].depth.is_empty());

        // The doc's request, stamped, is ours plus the optional `id`.
        let doc = r#"{"time":1611541000,"id":123456789,"channel":"spot.trades","event":"subscribe","payload":["BTC_USDT","ETH_USDT"]}"#;
        let mut doc: serde_json::Value = serde_json::from_str(doc).unwrap();
        doc.as_object_mut().unwrap().remove("id");
        let ours: serde_json::Value = serde_json::from_str(&stamp_time(&plans[0].subscribe[3], 1_611_541_000)).unwrap();
        assert_eq!(ours, doc);

        // Nothing to subscribe: no connection.
        assert!(GateVenue.plan(&endpoints(), &[], &[StreamKind::Ticker]).is_empty());
        assert!(GateVenue.plan(&endpoints(), &[gate("BTC_USDT")], &[StreamKind::Kline(120)]).is_empty());
    }

    #[test]
    fn multi_pair_channels_are_chunked_on_one_connection() {
        let many: Vec<Instrument> = (0..250).map(|i| gate(&format!("C{i}_USDT"))).collect();
        let plans = GateVenue.plan(&endpoints(), &many, &[StreamKind::Trade, StreamKind::Ticker]);
        assert_eq!(plans.len(), 1);
        let sizes: Vec<usize> = plans[0]
            .subscribe
            .iter()
            .map(|m| serde_json::from_str::<serde_json::Value>(m).unwrap()["payload"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, [100, 100, 50, 100, 100, 50]);
        assert_eq!(plans[0].streams.len(), 500);
    }

    #[test]
    fn history_requests() {
        let btc = gate("BTC_USDT");
        // 2024-08-01 .. 2024-08-08: the first window is 1000 one-minute buckets.
        let cursor = HistoryCursor { from_ms: 1_722_470_400_000, after_id: None, end_ms: 1_723_075_200_000 };
        let page = GateVenue.history_request(&btc, HistoryKind::Klines(60), &cursor).unwrap();
        assert_eq!(
            page,
            HistoryRequest {
                path: "/api/v4/spot/candlesticks?currency_pair=BTC_USDT&interval=1m&from=1722470400&to=1722530399"
                    .into(),
                weight: 1,
                window_end_ms: 1_722_530_400_000,
            }
        );
        // The last window stops at the end of the range.
        let near_end = HistoryCursor { from_ms: 1_723_075_200_000 - 120_000, ..cursor };
        let page = GateVenue.history_request(&btc, HistoryKind::Klines(60), &near_end).unwrap();
        assert_eq!(page.window_end_ms, 1_723_075_200_000);
        assert!(page.path.ends_with("&from=1723075080&to=1723075199"), "{}", page.path);
        assert!(GateVenue.history_request(&btc, HistoryKind::Klines(120), &cursor).is_err());
        assert!(GateVenue.history_request(&btc, HistoryKind::Trades, &cursor).is_err());
    }

    #[test]
    fn stamp_time_table() {
        let cases = [
            (r#"{"time":0,"channel":"spot.ping"}"#, r#"{"time":1700000000,"channel":"spot.ping"}"#),
            (r#"{"time":1619093532,"channel":"x"}"#, r#"{"time":1700000000,"channel":"x"}"#),
            (r#"{"time":0}"#, r#"{"time":1700000000}"#),
            // Not ours: unchanged.
            (r#"{"channel":"x","time":0}"#, r#"{"channel":"x","time":0}"#),
            (r#"{"time":"0","channel":"x"}"#, r#"{"time":"0","channel":"x"}"#),
            (r#"{"time":12a,"channel":"x"}"#, r#"{"time":12a,"channel":"x"}"#),
            ("", ""),
        ];
        for (msg, stamped) in cases {
            assert_eq!(stamp_time(msg, 1_700_000_000), stamped, "{msg}");
        }
    }

    #[test]
    fn kline_intervals_table() {
        let cases = [(10, Some("10s")), (60, Some("1m")), (28_800, Some("8h")), (604_800, Some("7d")), (1, None)];
        for (seconds, interval) in cases {
            assert_eq!(kline_interval(seconds), interval, "{seconds}");
            // Whatever is subscribed, the normalizer reads back as the same length.
            if let Some(i) = interval {
                assert_eq!(crate::model::time::parse_timeframe(i), Ok(seconds));
            }
        }
        for unsupported in [120, 7200, 2_592_000] {
            assert_eq!(kline_interval(unsupported), None);
        }
    }

    #[test]
    fn rest_paths_pings_and_symbols() {
        let venue = crate::exchange::venue(Exchange::Gate).expect("gate has a capture adapter");
        assert_eq!(venue.exchange(), Exchange::Gate);
        assert_eq!(venue.default_endpoints().ws, "wss://api.gateio.ws/ws/v4/");
        assert_eq!(
            venue.snapshot_path(&gate("BTC_USDT")),
            "/api/v4/spot/order_book?currency_pair=BTC_USDT&limit=100&with_id=true"
        );
        assert_eq!(venue.symbols_path(), "/api/v4/spot/currency_pairs");
        // The doc's ping, byte for byte.
        assert_eq!(venue.app_ping(1_545_404_023).as_deref(), Some(r#"{"time":1545404023,"channel":"spot.ping"}"#));
        assert_eq!(venue.ping_interval(), Some(std::time::Duration::from_secs(10)));
        assert_eq!(venue.reply_to(r#"{"time":1545404023,"channel":"spot.ping"}"#), None);
        assert_eq!(venue.ts_notes(), TS_NOTES);

        // Rows shaped like the documented CurrencyPair object; output is sorted by venue symbol.
        let body = r#"[
            {"id":"GT_USDT","base":"GT","quote":"USDT","amount_precision":2,"precision":4,"trade_status":"sellable"},
            {"id":"ETH_USDT","base":"ETH","quote":"USDT","fee":"0.2","min_base_amount":"0.001","min_quote_amount":"1.0","max_base_amount":null,"amount_precision":3,"precision":6,"trade_status":"tradable","sell_start":1516378650,"buy_start":1516378650,"type":"normal"},
            {"id":"BTC_USDT","trade_status":"tradable"}
        ]"#;
        let symbols = venue.parse_symbols(body).unwrap();
        let got: Vec<_> = symbols
            .iter()
            .map(|s| {
                let i = &s.instrument;
                (
                    i.venue_symbol.as_str(),
                    i.symbol.as_str(),
                    s.status.as_str(),
                    s.tradable,
                    s.price_precision,
                    s.qty_precision,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("BTC_USDT", "BTC/USDT", "tradable", true, None, None),
                ("ETH_USDT", "ETH/USDT", "tradable", true, Some(6), Some(3)),
                ("GT_USDT", "GT/USDT", "sellable", false, Some(4), Some(2)),
            ]
        );
        assert!(venue.parse_symbols(r#"{"label":"X","message":"y"}"#).is_err());

        let snapshot = r#"{"id":123456,"current":1623898993123,"update":1623898993121,"asks":[["1.52","1.151"]],"bids":[["1.17","201.863"]]}"#;
        let snap = venue.parse_snapshot(snapshot, &gate("BTC_USDT"), 7).unwrap();
        assert_eq!(snap.ts_exchange, 1_623_898_993_123_000_000);
    }
}
