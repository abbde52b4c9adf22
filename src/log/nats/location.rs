//! Parsing a JetStream recording location, `nats://host:4222[,host2:4222]/STREAM[?prefix=P&replicas=N]`,
//! and spelling symbols as subject tokens. No IO.

use crate::log::{LogError, Result};

/// A parsed `nats://` recording location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NatsUrl {
    /// `nats://host:port`, or several comma-separated hosts of one cluster
    /// (`nats://h1:4222,h2:4222`): the client connects to any and fails over to the others.
    pub server: String,
    pub stream: String,
    pub prefix: String,
    /// Stream replicas when the stream is created (1, or 3 on a cluster).
    pub replicas: usize,
}

impl NatsUrl {
    /// # Errors
    /// `LogError::Remote` naming what is wrong with the location.
    pub fn parse(location: &str) -> Result<NatsUrl> {
        let bad = |detail: String| LogError::Remote { location: location.to_string(), detail };
        let rest = location.strip_prefix("nats://").ok_or_else(|| bad("expected nats://host:port/STREAM".into()))?;
        let (host, path) =
            rest.split_once('/').ok_or_else(|| bad("no stream name: expected nats://host:port/STREAM".into()))?;
        if host.split(',').any(str::is_empty) {
            return Err(bad("no host: expected nats://host:port/STREAM".into()));
        }
        let (stream, query) = path.split_once('?').unwrap_or((path, ""));
        if stream.is_empty() || !stream.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(bad(format!("stream name {stream:?} must be letters, digits, '-' or '_'")));
        }
        let mut url = NatsUrl {
            server: format!("nats://{host}"),
            stream: stream.to_string(),
            prefix: "tapedeck".into(),
            replicas: 1,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("prefix", p)) if valid_token(p) => url.prefix = p.to_string(),
                Some(("prefix", p)) => return Err(bad(format!("prefix {p:?} must be letters, digits, '-' or '_'"))),
                Some(("replicas", n)) => {
                    url.replicas = n
                        .parse()
                        .ok()
                        .filter(|n| (1..=5).contains(n))
                        .ok_or_else(|| bad(format!("replicas={n}: expected 1 to 5")))?;
                }
                _ => return Err(bad(format!("unknown option {pair:?} (known: prefix=, replicas=)"))),
            }
        }
        Ok(url)
    }

    /// Each server of the location, as the client takes them.
    pub(super) fn addrs(&self) -> Vec<String> {
        let hosts = self.server.strip_prefix("nats://").unwrap_or(&self.server);
        hosts.split(',').map(|h| format!("nats://{h}")).collect()
    }

    pub(super) fn subject(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.prefix)
    }
}

fn valid_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A subject token for a canonical symbol: `BTC/USDT` → `BTC-USDT`; anything NATS treats
/// specially becomes `_`.
pub(super) fn symbol_token(symbol: &str) -> String {
    symbol
        .chars()
        .map(|c| match c {
            '/' => '-',
            c if c.is_ascii_alphanumeric() || c == '-' || c == '_' => c,
            _ => '_',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_or_name_the_problem() {
        let ok: [(&str, &str, &str, &str, usize); 4] = [
            ("nats://127.0.0.1:4222/BTC", "nats://127.0.0.1:4222", "BTC", "tapedeck", 1),
            ("nats://h:1/S?prefix=td-2", "nats://h:1", "S", "td-2", 1),
            ("nats://a:1,b:2,c:3/R3?replicas=3", "nats://a:1,b:2,c:3", "R3", "tapedeck", 3),
            ("nats://h:1/s_1?replicas=1&prefix=p", "nats://h:1", "s_1", "p", 1),
        ];
        for (text, server, stream, prefix, replicas) in ok {
            let url = NatsUrl::parse(text).unwrap();
            assert_eq!(
                (url.server.as_str(), url.stream.as_str(), url.prefix.as_str(), url.replicas),
                (server, stream, prefix, replicas),
                "{text}"
            );
        }
        assert_eq!(NatsUrl::parse("nats://a:1,b:2/S").unwrap().addrs(), ["nats://a:1", "nats://b:2"]);
        let bad = [
            ("nats://h:1", "no stream name"),
            ("nats:///S", "no host"),
            ("nats://a:1,/S", "no host"),
            ("nats://h:1/A.B", "must be letters"),
            ("nats://h:1/S?replicas=0", "replicas=0"),
            ("nats://h:1/S?prefix=a.b", "prefix"),
            ("nats://h:1/S?speed=1", "unknown option"),
        ];
        for (text, expected) in bad {
            let err = NatsUrl::parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn symbols_become_subject_tokens() {
        for (symbol, token) in [("BTC/USDT", "BTC-USDT"), ("1000PEPE/USDT", "1000PEPE-USDT"), ("A.B/C*", "A_B-C_")] {
            assert_eq!(symbol_token(symbol), token);
        }
    }
}
