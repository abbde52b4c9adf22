//! Plumbing shared by the local Gate and LBank mocks (`mock_gate`, `mock_lbank`): a WebSocket
//! server on 127.0.0.1:0 that takes JSON subscriptions and streams a fixed frame list, and a
//! REST server. What the messages mean is the venue's business (a [`Protocol`]); this file only
//! sequences them.
//!
//! One connection's life:
//! 1. Every client message goes to [`Protocol::on_message`], which answers it (acks, pongs,
//!    errors) and adds what it subscribed to the connection's set of stream keys.
//! 2. Streaming starts at the first client message that is not a subscribe request (tapedeck's
//!    application ping, which it sends right after subscribing and fetching its snapshots), or
//!    after [`QUIET`] with no client message once something is subscribed. So every
//!    subscription is in place before the first frame and the counts are exact.
//! 3. The frames are sent in list order from a cursor shared by all connections, skipping
//!    those whose key was not subscribed (frames with no key, such as server pings, always go
//!    out). `garbage_every` adds a malformed frame after every N frames sent on a connection.
//!    With `drop_after`, the first connection is closed after N frames and the next one
//!    resumes at the cursor: nothing is sent twice and nothing is skipped.
//! 4. Then the connection stays open, answering client messages until the client leaves.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// How long a connection with subscriptions may stay silent before streaming starts anyway.
pub const QUIET: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Default)]
pub struct Options {
    /// Insert a malformed frame after every N frames sent on a connection.
    pub garbage_every: Option<usize>,
    /// Close the first connection after this many frames.
    pub drop_after: Option<usize>,
}

/// One server frame to stream.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The subscription that selects it (the venue's stream name); `None`: always sent.
    pub key: Option<String>,
    pub text: String,
}

/// What a client message was, for the sequencing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// A subscribe request, accepted or not.
    Subscribe,
    /// Anything else (pings, pongs, junk).
    Other,
}

/// A venue's side of the conversation.
pub trait Protocol: Send + Sync + 'static {
    /// Answers one client text message; accepted subscriptions go into `subscribed`.
    fn on_message(&self, text: &str, subscribed: &mut HashSet<String>) -> (Vec<String>, Client);
    /// The malformed frame `garbage_every` inserts.
    fn garbage(&self) -> &'static str;
    /// The status line and body for a REST request path (with its query).
    fn rest(&self, path: &str) -> (&'static str, String);
}

/// A running mock: its addresses and what it saw.
pub struct Server {
    pub ws: SocketAddr,
    pub rest: SocketAddr,
    /// REST request paths, in arrival order.
    pub requests: Arc<Mutex<Vec<String>>>,
    /// The WebSocket request path of each connection.
    pub ws_paths: Arc<Mutex<Vec<String>>>,
    /// Frames sent on each connection (garbage not included), by connection.
    pub sent: Arc<Mutex<Vec<usize>>>,
    /// Keeps the server tasks alive for as long as the mock is.
    _runtime: tokio::runtime::Runtime,
}

impl Server {
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.rest)
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    pub fn ws_paths(&self) -> Vec<String> {
        self.ws_paths.lock().unwrap().clone()
    }

    pub fn sent(&self) -> Vec<usize> {
        self.sent.lock().unwrap().clone()
    }
}

pub fn start<P: Protocol>(protocol: Arc<P>, frames: Vec<Frame>, options: Options) -> Server {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (ws, rest) = runtime.block_on(async {
        (TcpListener::bind("127.0.0.1:0").await.unwrap(), TcpListener::bind("127.0.0.1:0").await.unwrap())
    });
    let server = Server {
        ws: ws.local_addr().unwrap(),
        rest: rest.local_addr().unwrap(),
        requests: Arc::default(),
        ws_paths: Arc::default(),
        sent: Arc::default(),
        _runtime: runtime,
    };
    let shared = Arc::new(Shared {
        protocol: protocol.clone(),
        frames,
        options,
        cursor: AtomicUsize::new(0),
        ws_paths: server.ws_paths.clone(),
        sent: server.sent.clone(),
    });
    server._runtime.spawn(async move {
        while let Ok((stream, _)) = ws.accept().await {
            tokio::spawn(connection(shared.clone(), stream));
        }
    });
    let requests = server.requests.clone();
    server._runtime.spawn(async move {
        while let Ok((stream, _)) = rest.accept().await {
            tokio::spawn(http(protocol.clone(), requests.clone(), stream));
        }
    });
    server
}

struct Shared<P> {
    protocol: Arc<P>,
    frames: Vec<Frame>,
    options: Options,
    /// The next frame to stream, across connections.
    cursor: AtomicUsize,
    ws_paths: Arc<Mutex<Vec<String>>>,
    sent: Arc<Mutex<Vec<usize>>>,
}

type Ws = WebSocketStream<TcpStream>;

/// Answers one client message; `false` when the client is gone.
async fn answer<P: Protocol>(
    shared: &Shared<P>,
    ws: &mut Ws,
    message: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    subscribed: &mut HashSet<String>,
) -> Option<Client> {
    match message {
        Some(Ok(Message::Text(text))) => {
            let (replies, kind) = shared.protocol.on_message(&text, subscribed);
            for reply in replies {
                let _ = ws.send(Message::text(reply)).await;
            }
            Some(kind)
        }
        Some(Ok(Message::Ping(payload))) => {
            let _ = ws.send(Message::Pong(payload)).await;
            Some(Client::Other)
        }
        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => None,
        Some(Ok(_)) => Some(Client::Other),
    }
}

async fn connection<P: Protocol>(shared: Arc<Shared<P>>, stream: TcpStream) {
    let mut path = String::new();
    #[allow(clippy::result_large_err)] // the signature is tungstenite's
    let callback = |req: &tokio_tungstenite::tungstenite::handshake::server::Request, resp| {
        path = req.uri().to_string();
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else { return };
    let nth = {
        let mut sent = shared.sent.lock().unwrap();
        sent.push(0);
        sent.len() - 1
    };
    shared.ws_paths.lock().unwrap().push(path);
    let mut subscribed = HashSet::new();

    // Subscriptions, until the client sends something else or falls quiet.
    loop {
        match tokio::time::timeout(QUIET, ws.next()).await {
            Ok(message) => match answer(&shared, &mut ws, message, &mut subscribed).await {
                None => return,
                Some(Client::Other) if !subscribed.is_empty() => break,
                Some(_) => {}
            },
            Err(_) if !subscribed.is_empty() => break,
            Err(_) => {}
        }
    }

    // The frames, from where the last connection stopped.
    let mut in_this_connection = 0;
    loop {
        let i = shared.cursor.load(Ordering::SeqCst);
        let Some(frame) = shared.frames.get(i) else { break };
        if nth == 0 && shared.options.drop_after.is_some_and(|n| in_this_connection >= n) {
            let _ = ws.close(None).await;
            // Read what the client sent before it saw the close (pongs to pings just sent).
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Text(text) = message {
                    shared.protocol.on_message(&text, &mut subscribed);
                }
            }
            return;
        }
        shared.cursor.fetch_add(1, Ordering::SeqCst);
        if frame.key.as_ref().is_some_and(|k| !subscribed.contains(k)) {
            continue;
        }
        if ws.feed(Message::text(frame.text.clone())).await.is_err() {
            return;
        }
        in_this_connection += 1;
        shared.sent.lock().unwrap()[nth] = in_this_connection;
        if shared.options.garbage_every.is_some_and(|n| in_this_connection % n == 0) {
            let _ = ws.feed(Message::text(shared.protocol.garbage())).await;
        }
    }
    let _ = ws.flush().await;

    // Stay connected, answering pings and the like, until the client leaves.
    loop {
        let message = ws.next().await;
        if answer(&shared, &mut ws, message, &mut subscribed).await.is_none() {
            return;
        }
    }
}

/// One HTTP/1.1 request, answered and closed.
async fn http<P: Protocol>(protocol: Arc<P>, requests: Arc<Mutex<Vec<String>>>, mut stream: TcpStream) {
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
    requests.lock().unwrap().push(path.clone());
    let (status, body) = protocol.rest(&path);
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The value of `key` in a URL query, if present.
pub fn query_param<'a>(path: &'a str, key: &str) -> Option<&'a str> {
    let (_, query) = path.split_once('?')?;
    query.split('&').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// Wall-clock unix time in ms.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}
