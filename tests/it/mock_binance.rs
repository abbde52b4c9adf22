//! A local Binance on 127.0.0.1:0: combined-stream WebSocket and REST (exchangeInfo, depth),
//! serving the real hftbacktest BTCUSDT capture. Options inject garbage frames and drop the
//! connection mid-stream; after a drop the next connection resumes where the last one stopped.

use std::io::BufRead;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use crate::util::{HFT_FIXTURE, root};

#[derive(Clone, Default)]
pub struct Options {
    /// Insert a malformed frame after every N real frames.
    pub garbage_every: Option<usize>,
    /// Close the first connection after this many frames.
    pub drop_after: Option<usize>,
    /// Instead of the capture, send `total` trade frames (the capture's, cycled) at
    /// `rate` per second, in 10 ms batches.
    pub burst: Option<(u64, usize)>,
    /// Never send the depth diff with this index (0-based among depth diffs).
    pub skip_depth: Option<usize>,
}

pub struct MockBinance {
    pub ws: SocketAddr,
    pub rest: SocketAddr,
    /// Keeps the server tasks alive for as long as the mock is.
    _runtime: tokio::runtime::Runtime,
}

impl MockBinance {
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.ws)
    }

    pub fn rest_url(&self) -> String {
        format!("http://{}", self.rest)
    }
}

/// The capture's stream frames (combined envelopes) and its REST snapshot body.
pub fn fixture() -> (Vec<String>, String) {
    let file = std::fs::File::open(root().join(HFT_FIXTURE)).unwrap();
    let mut frames = Vec::new();
    let mut snapshot = String::new();
    for line in std::io::BufReader::new(flate2::read::GzDecoder::new(file)).lines() {
        let line = line.unwrap();
        let (_, frame) = line.split_once(' ').unwrap();
        if frame.starts_with("{\"lastUpdateId\"") {
            snapshot = frame.to_string();
        } else {
            frames.push(frame.to_string());
        }
    }
    (frames, snapshot)
}

pub fn start(options: Options) -> MockBinance {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (frames, snapshot) = fixture();
    let frames = Arc::new(frames);
    let snapshot = Arc::new(snapshot);
    let (ws, rest) = runtime.block_on(async {
        let ws = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let rest = TcpListener::bind("127.0.0.1:0").await.unwrap();
        (ws, rest)
    });
    let ws_addr = ws.local_addr().unwrap();
    let rest_addr = rest.local_addr().unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let connections = Arc::new(AtomicUsize::new(0));
    runtime.spawn(async move {
        while let Ok((stream, _)) = ws.accept().await {
            let (frames, sent, connections, options) =
                (frames.clone(), sent.clone(), connections.clone(), options.clone());
            tokio::spawn(async move {
                let mut path = String::new();
                #[allow(clippy::result_large_err)] // the signature is tungstenite's
                let callback = |req: &tokio_tungstenite::tungstenite::handshake::server::Request, resp| {
                    path = req.uri().to_string();
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else { return };
                let wanted: Vec<String> = path
                    .split_once("streams=")
                    .map(|(_, s)| s.split('/').map(str::to_string).collect())
                    .unwrap_or_default();
                let nth_connection = connections.fetch_add(1, Ordering::SeqCst);
                if let Some((rate, total)) = options.burst {
                    let trades: Vec<&String> = frames.iter().filter(|f| f.contains("@trade\"")).collect();
                    let per_batch = (rate / 100).max(1) as usize;
                    let mut tick = tokio::time::interval(std::time::Duration::from_millis(10));
                    let mut n = 0;
                    while n < total {
                        tick.tick().await;
                        for _ in 0..per_batch.min(total - n) {
                            if ws.feed(Message::text(trades[n % trades.len()].clone())).await.is_err() {
                                return;
                            }
                            n += 1;
                        }
                        if ws.flush().await.is_err() {
                            return;
                        }
                    }
                    sent.store(n, Ordering::SeqCst);
                }
                let mut in_this_connection = 0;
                while options.burst.is_none() {
                    let i = sent.load(Ordering::SeqCst);
                    let Some(frame) = frames.get(i) else { break };
                    if nth_connection == 0 && options.drop_after.is_some_and(|n| in_this_connection >= n) {
                        let _ = ws.close(None).await;
                        return;
                    }
                    sent.fetch_add(1, Ordering::SeqCst);
                    in_this_connection += 1;
                    let stream = frame.split('"').nth(3).unwrap_or_default();
                    if !wanted.iter().any(|w| w == stream) {
                        continue;
                    }
                    if let Some(skip) = options.skip_depth
                        && stream.contains("@depth")
                        && frames[..i].iter().filter(|f| f.contains("@depth")).count() == skip
                    {
                        continue;
                    }
                    if ws.feed(Message::text(frame.clone())).await.is_err() {
                        return;
                    }
                    if options.garbage_every.is_some_and(|n| in_this_connection % n == 0) {
                        let _ = ws.feed(Message::text("{\"stream\":\"btcusdt@trade\",\"data\":{not json")).await;
                    }
                }
                let _ = ws.flush().await;
                // Stay connected and answer pings until the client leaves.
                while let Some(Ok(message)) = ws.next().await {
                    if let Message::Ping(p) = message {
                        let _ = ws.send(Message::Pong(p)).await;
                    }
                }
            });
        }
    });
    runtime.spawn(async move {
        while let Ok((mut stream, _)) = rest.accept().await {
            let snapshot = snapshot.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let Ok(n) = stream.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (status, body) = if path.starts_with("/api/v3/exchangeInfo") {
                    ("200 OK", r#"{"timezone":"UTC","symbols":[{"symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC","baseAssetPrecision":8,"quoteAsset":"USDT","quoteAssetPrecision":8},{"symbol":"ETHUSDT","status":"TRADING","baseAsset":"ETH","baseAssetPrecision":8,"quoteAsset":"USDT","quoteAssetPrecision":8}]}"#.to_string())
                } else if path.starts_with("/api/v3/depth?symbol=BTCUSDT") {
                    ("200 OK", snapshot.to_string())
                } else {
                    ("400 Bad Request", r#"{"code":-1121,"msg":"Invalid symbol."}"#.to_string())
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    MockBinance { ws: ws_addr, rest: rest_addr, _runtime: runtime }
}
