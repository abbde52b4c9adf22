//! LBank spot as a capture target: endpoints, subscribe messages, sharding, pings and REST paths.
//!
//! Owns what capture sends to LBank; must not parse frames (that is `normalize.rs`/`rest.rs`),
//! do IO or read the clock. LBank has no combined-stream URL and no multi-pair form: every
//! subscription is one `{"action":"subscribe",..,"pair":..}` message on the WS V2 endpoint
//! (`shared/protocols/lbank.md` §1), built by [`subscribe_message`]. No ack is documented; the
//! first push is the confirmation.
//!
//! What each stream kind becomes:
//! - `Trade` → `trade`; `Ticker` → `tick` per pair (no all-market channel exists).
//! - `Depth` → `depth` `100`: every push is a complete top-100 book with no update id, recorded
//!   as a snapshot by the normalizer, so no REST snapshot is needed and `depth` stays empty.
//! - `Kline(s)` → `kbar` with the slot of that length ([`kbar_slot`]); lengths LBank lacks are left out.
//! - `Quote` → nothing: LBank has no best bid/ask stream (`tick` carries none, and the REST
//!   `bookTicker.do` is a poll). Best bid/ask is the top of the `depth` snapshots; nothing is derived here.
//!
//! Sharding: LBank documents no cap on subscriptions per connection, message rate or
//! connection lifetime (§1, AUDIT L-20), so everything goes on one connection.

use super::rest::{RestError, is_rate_limited, parse_currency_pairs, parse_depth_snapshot, parse_klines};
use super::wire::{KBAR_SLOTS, KLINE_TYPES};
use super::{LbankNormalizer, TS_NOTES, pong_for, subscribe_message};
use crate::exchange::{
    ConnectionPlan, Endpoints, HistoryCursor, HistoryKind, HistoryRequest, HistoryRow, NormalizeError, Normalized,
    Normalizer, RestBudget, StreamKind, SymbolInfo, Venue,
};
use crate::model::{Exchange, Instrument, Nanos};

/// Levels per `depth` push: the largest documented size (10, 50, 100).
const DEPTH_SIZE: &str = "100";

/// How often to send our own JSON ping. The server pings about once a minute and closes the
/// connection when a ping goes unanswered for a minute ([`Venue::reply_to`] answers those);
/// our ping keeps quiet connections visibly alive. The official Go SDK pings every 30 s.
const PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// Rows asked of `GET /v2/kline.do`: its documented maximum (3000 is refused).
const KLINES_PER_PAGE: u32 = 2000;

/// Where backfilled rows come from, for the recording meta.
const HISTORY_NOTES: &[(&str, &str)] = &[(
    "lbank.backfill.klines",
    "GET /v2/kline.do (size 2000, paged by time in Unix s); rows carry no quote volume, trade count or \
     closed flag; error_code 10004 (too frequent) is retried with backoff",
)];

pub struct LbankVenue;

/// The `kbar` slot for `seconds`, or `None` when LBank has no slot that long (`month` and
/// `year` have no fixed length). Read off the normalizer's own slot table, so what is
/// subscribed is what it reads back.
pub fn kbar_slot(seconds: u32) -> Option<&'static str> {
    KBAR_SLOTS.iter().copied().find(|slot| super::normalize::slot_seconds(slot) == Some(seconds))
}

/// A REST failure as the `Venue` trait reports it: the venue's error code stays in the text
/// (`10004` is LBank's rate limit, see [`super::RATE_LIMITED`]).
fn rest_error(error: RestError) -> NormalizeError {
    match error {
        RestError::Body(e) => e,
        venue @ RestError::Venue { .. } => NormalizeError::Malformed(venue.to_string()),
    }
}

impl Venue for LbankVenue {
    fn check_streams(&self, streams: &[StreamKind]) -> Result<(), String> {
        for kind in streams {
            match kind {
                StreamKind::Kline(s) if kbar_slot(*s).is_none() => {
                    return Err(format!("lbank has no {} klines", crate::model::time::format_timeframe(*s)));
                }
                StreamKind::Quote => return Err("lbank has no best bid/ask stream (use depth)".into()),
                _ => {}
            }
        }
        Ok(())
    }

    fn exchange(&self) -> Exchange {
        Exchange::Lbank
    }

    /// `api.lbank.info` for both: the current docs list it, and the notes measured it stable
    /// where `www.lbkex.net` failed 8 dials of 12. `api.lbkex.com` and `www.lbkex.net` serve
    /// the same REST data and protocol (§1, §4) and can be passed as overrides.
    fn default_endpoints(&self) -> Endpoints {
        Endpoints { ws: "wss://api.lbank.info/ws/V2/".into(), rest: "https://api.lbank.info".into() }
    }

    fn symbols_path(&self) -> String {
        "/v2/currencyPairs.do".into()
    }

    /// `currencyPairs.do` lists ids only: there is no status field, so every listed pair is
    /// `listed` and taken as tradable (unverified, §4), and precisions (in `accuracy.do`, a
    /// second endpoint) are left unknown.
    fn parse_symbols(&self, body: &str) -> Result<Vec<SymbolInfo>, NormalizeError> {
        let mut out: Vec<SymbolInfo> = parse_currency_pairs(body)
            .map_err(rest_error)?
            .into_iter()
            .map(|instrument| SymbolInfo {
                instrument,
                status: "listed".into(),
                tradable: true,
                price_precision: None,
                qty_precision: None,
            })
            .collect();
        out.sort_by(|a, b| a.instrument.venue_symbol.cmp(&b.instrument.venue_symbol));
        Ok(out)
    }

    /// One connection, messages grouped by stream kind in the order of `streams`, one per pair.
    /// Stream names are `<channel> <pair>`, with the depth size or kbar slot before the pair.
    fn plan(&self, endpoints: &Endpoints, instruments: &[Instrument], streams: &[StreamKind]) -> Vec<ConnectionPlan> {
        let mut subscribe_msgs = Vec::new();
        let mut names = Vec::new();
        for kind in streams {
            let (channel, extra) = match kind {
                StreamKind::Trade => ("trade", None),
                StreamKind::Ticker => ("tick", None),
                StreamKind::Depth => ("depth", Some(DEPTH_SIZE)),
                StreamKind::Kline(seconds) => match kbar_slot(*seconds) {
                    Some(slot) => ("kbar", Some(slot)),
                    None => continue,
                },
                StreamKind::Quote => continue,
            };
            for instrument in instruments {
                let pair = instrument.venue_symbol.as_str();
                // Channel and extra are valid by construction; only an empty pair is refused,
                // and a pair with no name cannot be subscribed anyway.
                let Ok(msg) = subscribe_message(channel, pair, extra) else { continue };
                subscribe_msgs.push(msg);
                names.push(match extra {
                    Some(extra) => format!("{channel} {extra} {pair}"),
                    None => format!("{channel} {pair}"),
                });
            }
        }
        if subscribe_msgs.is_empty() {
            return Vec::new();
        }
        vec![ConnectionPlan { url: endpoints.ws.clone(), subscribe: subscribe_msgs, streams: names, depth: Vec::new() }]
    }

    fn normalizer(&self, _symbols: &[SymbolInfo]) -> Box<dyn Normalizer> {
        // Pair ids map to instruments on their own (split at the last `_`): no symbol map needed.
        Box::new(LbankNormalizer::new())
    }

    /// Same depth as the WS pushes. Not needed by `plan()` (WS depth pushes are snapshots),
    /// but a valid one-off snapshot when asked for.
    fn snapshot_path(&self, instrument: &Instrument) -> String {
        format!("/v2/depth.do?symbol={}&size={DEPTH_SIZE}", instrument.venue_symbol)
    }

    fn parse_snapshot(
        &self,
        body: &str,
        instrument: &Instrument,
        ts_recv: Nanos,
    ) -> Result<Normalized, NormalizeError> {
        parse_depth_snapshot(body, instrument, ts_recv).map_err(rest_error)
    }

    /// `{"action":"ping","ping":"tapedeck-<unix s>"}`; the server answers with a `pong`, which
    /// the normalizer treats as a control frame.
    fn app_ping(&self, unix_s: u64) -> Option<String> {
        Some(format!(r#"{{"action":"ping","ping":"tapedeck-{unix_s}"}}"#))
    }

    fn ping_interval(&self) -> Option<std::time::Duration> {
        Some(PING_INTERVAL)
    }

    /// The server's JSON pings must be answered with a pong echoing their value.
    fn reply_to(&self, frame: &str) -> Option<String> {
        pong_for(frame)
    }

    fn ts_notes(&self) -> &'static [(&'static str, &'static str)] {
        TS_NOTES
    }

    /// Candles from `time` (Unix s) on, `size` rows at most; `kline.do` has no end parameter,
    /// so an empty page means nothing is left. Trades are not offered: `supplement/trades.do`
    /// ids are opaque strings, so a rerun could not tell the trades it already holds.
    fn history_request(
        &self,
        instrument: &Instrument,
        kind: HistoryKind,
        cursor: &HistoryCursor,
    ) -> Result<HistoryRequest, String> {
        let HistoryKind::Klines(seconds) = kind else {
            return Err("lbank: trade backfill is not supported yet (use --kline)".into());
        };
        let Some((_, kind)) = KLINE_TYPES.iter().find(|(s, _)| *s == seconds) else {
            return Err(format!("lbank has no {} klines over REST", crate::model::time::format_timeframe(seconds)));
        };
        let (pair, time) = (&instrument.venue_symbol, cursor.from_ms.div_ceil(1000));
        let path = format!("/v2/kline.do?symbol={pair}&size={KLINES_PER_PAGE}&type={kind}&time={time}");
        Ok(HistoryRequest { path, weight: 1, window_end_ms: cursor.end_ms })
    }

    fn parse_history(&self, body: &str, kind: HistoryKind) -> Result<Vec<HistoryRow>, NormalizeError> {
        match kind {
            HistoryKind::Klines(seconds) => parse_klines(body, seconds).map_err(rest_error),
            HistoryKind::Trades => Err(NormalizeError::Unknown("lbank trade history".into())),
        }
    }

    /// "All other requests 200 / 10 s"; no headers report usage.
    fn rest_budget(&self) -> RestBudget {
        RestBudget { limit: 200, window: std::time::Duration::from_secs(10), ..RestBudget::default() }
    }

    /// LBank throttles with HTTP 200 and `error_code` 10004, never 429.
    fn rest_throttled(&self, body: &str) -> bool {
        is_rate_limited(body)
    }

    fn history_notes(&self) -> &'static [(&'static str, &'static str)] {
        HISTORY_NOTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::lbank::instrument_for;
    use crate::model::Event;

    const REQUESTS: &str =
        include_str!("../../../tests/fixtures/lbank/lbank_v2_ws_subscribe_requests_doc_examples.jsonl");
    const PUSHES: &str = include_str!("../../../tests/fixtures/lbank/lbank_v2_ws_push_doc_examples.jsonl");

    fn endpoints() -> Endpoints {
        Endpoints { ws: "ws://127.0.0.1:9/ws/V2/".into(), rest: String::new() }
    }

    #[test]
    fn plan_matches_the_doc_subscribe_examples() {
        // The doc's four requests are for eth_btc: kbar 5min, depth 100, trade, tick (in that order).
        let eth_btc = instrument_for("eth_btc").unwrap();
        let streams =
            [StreamKind::Kline(300), StreamKind::Depth, StreamKind::Quote, StreamKind::Trade, StreamKind::Ticker];
        let plans = LbankVenue.plan(&endpoints(), &[eth_btc], &streams);
        assert_eq!(plans.len(), 1);
        let doc: Vec<&str> = REQUESTS.lines().take(4).collect();
        assert_eq!(plans[0].subscribe, doc, "quote adds nothing");
        assert_eq!(plans[0].streams, ["kbar 5min eth_btc", "depth 100 eth_btc", "trade eth_btc", "tick eth_btc"]);
        assert_eq!(plans[0].url, "ws://127.0.0.1:9/ws/V2/");
        assert!(plans[0].depth.is_empty(), "depth pushes are snapshots: no REST sync");
    }

    #[test]
    fn plan_one_message_per_pair_on_one_connection() {
        let pairs: Vec<Instrument> = ["btc_usdt", "eth_usdt"].iter().map(|p| instrument_for(p).unwrap()).collect();
        let plans = LbankVenue.plan(
            &endpoints(),
            &pairs,
            &[StreamKind::Trade, StreamKind::Kline(3600), StreamKind::Kline(120)],
        );
        assert_eq!(
            plans[0].subscribe,
            [
                r#"{"action":"subscribe","subscribe":"trade","pair":"btc_usdt"}"#,
                r#"{"action":"subscribe","subscribe":"trade","pair":"eth_usdt"}"#,
                r#"{"action":"subscribe","subscribe":"kbar","kbar":"1hr","pair":"btc_usdt"}"#,
                r#"{"action":"subscribe","subscribe":"kbar","kbar":"1hr","pair":"eth_usdt"}"#,
            ],
            "2 min has no kbar slot"
        );
        let many: Vec<Instrument> = (0..1500).map(|i| instrument_for(&format!("c{i}_usdt")).unwrap()).collect();
        let plans = LbankVenue.plan(&endpoints(), &many, &[StreamKind::Depth, StreamKind::Ticker]);
        assert_eq!((plans.len(), plans[0].subscribe.len(), plans[0].streams.len()), (1, 3000, 3000));
        // Nothing to subscribe: no connection.
        assert!(LbankVenue.plan(&endpoints(), &pairs, &[StreamKind::Quote]).is_empty());
        assert!(LbankVenue.plan(&endpoints(), &[], &[StreamKind::Trade]).is_empty());
    }

    #[test]
    fn history_requests() {
        let btc = instrument_for("btc_usdt").unwrap();
        let cursor = HistoryCursor { from_ms: 1_722_470_400_000, after_id: None, end_ms: 1_723_075_200_000 };
        let page = LbankVenue.history_request(&btc, HistoryKind::Klines(60), &cursor).unwrap();
        assert_eq!(
            page,
            HistoryRequest {
                path: "/v2/kline.do?symbol=btc_usdt&size=2000&type=minute1&time=1722470400".into(),
                weight: 1,
                window_end_ms: 1_723_075_200_000,
            }
        );
        let hour12 = LbankVenue.history_request(&btc, HistoryKind::Klines(43_200), &cursor).unwrap();
        assert!(hour12.path.contains("&type=hour12&"));
        assert!(LbankVenue.history_request(&btc, HistoryKind::Klines(120), &cursor).is_err());
        assert!(LbankVenue.history_request(&btc, HistoryKind::Trades, &cursor).is_err());
        assert!(LbankVenue.rest_throttled(r#"{"result":"false","error_code":10004,"msg":null}"#));
        assert!(!LbankVenue.rest_throttled(r#"{"result":"true","data":[],"error_code":0}"#));
        assert!(!LbankVenue.rest_throttled(r#"{"result":"false","error_code":10003,"msg":"Illegal parameter"}"#));
    }

    #[test]
    fn kbar_slots_table() {
        let cases = [
            (60, Some("1min")),
            (300, Some("5min")),
            (900, Some("15min")),
            (1800, Some("30min")),
            (3600, Some("1hr")),
            (14_400, Some("4hr")),
            (86_400, Some("day")),
            (604_800, Some("week")),
            (10, None),
            (120, None),
            (28_800, None),
            (2_592_000, None),
        ];
        for (seconds, slot) in cases {
            assert_eq!(kbar_slot(seconds), slot, "{seconds}");
        }
    }

    #[test]
    fn pings_are_answered_and_sent() {
        let venue = crate::exchange::venue(Exchange::Lbank).expect("lbank has a capture adapter");
        assert_eq!(venue.exchange(), Exchange::Lbank);
        // The doc's server ping and the doc's pong, byte for byte.
        let ping = PUSHES.lines().find(|l| l.contains(r#""action":"ping""#)).unwrap();
        let pong = REQUESTS.lines().find(|l| l.contains(r#""action":"pong""#)).unwrap();
        assert_eq!(venue.reply_to(ping).as_deref(), Some(pong));
        for frame in PUSHES.lines().filter(|l| !l.contains("ping")).chain([pong, "not json"]) {
            assert_eq!(venue.reply_to(frame), None, "{frame}");
        }
        let ours = venue.app_ping(1_700_000_000).unwrap();
        assert_eq!(ours, r#"{"action":"ping","ping":"tapedeck-1700000000"}"#);
        // Our ping has the server ping's shape, so a server echoing it back would be answered too.
        assert_eq!(pong_for(&ours).as_deref(), Some(r#"{"action":"pong","pong":"tapedeck-1700000000"}"#));
        assert_eq!(venue.ping_interval(), Some(std::time::Duration::from_secs(30)));
    }

    #[test]
    fn rest_paths_and_bodies() {
        let venue = LbankVenue;
        let btc = instrument_for("btc_usdt").unwrap();
        assert_eq!(venue.default_endpoints().ws, "wss://api.lbank.info/ws/V2/");
        assert_eq!(venue.symbols_path(), "/v2/currencyPairs.do");
        assert_eq!(venue.snapshot_path(&btc), "/v2/depth.do?symbol=btc_usdt&size=100");
        assert_eq!(venue.ts_notes(), TS_NOTES);

        // Envelope and ids as in protocols/lbank.md §4, unsorted on purpose.
        let body = r#"{"result":"true","data":["lbk_usdt","btc_usdt","eth_btc"],"error_code":0,"ts":1692157328820}"#;
        let symbols = venue.parse_symbols(body).unwrap();
        let got: Vec<_> = symbols
            .iter()
            .map(|s| (s.instrument.venue_symbol.as_str(), s.instrument.symbol.as_str(), s.status.as_str(), s.tradable))
            .collect();
        assert_eq!(
            got,
            [
                ("btc_usdt", "BTC/USDT", "listed", true),
                ("eth_btc", "ETH/BTC", "listed", true),
                ("lbk_usdt", "LBK/USDT", "listed", true)
            ]
        );
        assert!(symbols.iter().all(|s| s.price_precision.is_none() && s.qty_precision.is_none()));
        assert_eq!(
            venue.parse_symbols(r#"{"result":"false","error_code":10004,"msg":null}"#),
            Err(NormalizeError::Malformed("lbank error code 10004: no message".into()))
        );
        assert!(matches!(venue.parse_symbols("<html>"), Err(NormalizeError::Malformed(_))));

        // The documented depth.do shape.
        let body = r#"{"result":"true","data":{"asks":[["29243.37","2.8783"]],"bids":[["29243.36","1.5258"]],"timestamp":1692157328820},"error_code":0,"ts":1692157328821}"#;
        let snap = venue.parse_snapshot(body, &btc, 5).unwrap();
        assert_eq!(snap.ts_exchange, 1_692_157_328_820_000_000);
        assert!(matches!(snap.event, Event::BookSnapshot(b) if b.last_update_id.is_none() && b.asks.len() == 1));
        let bad = r#"{"data":{"asks":[["1.2.3","1"]],"bids":[]},"error_code":0}"#;
        assert!(matches!(venue.parse_snapshot(bad, &btc, 0), Err(NormalizeError::Number { field: "asks", .. })));
    }
}
