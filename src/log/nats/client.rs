//! The async side of the JetStream backend: the client on its own tokio runtime ([`Link`]),
//! connecting and finding the stream, acknowledged publishing with retries, and a reading task
//! that streams a stream's messages in order. Every call has a timeout.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use futures_util::StreamExt;

use super::batch::{Fetched, parse_batch};
use super::{CONNECT_TIMEOUT, DUPLICATE_WINDOW, NatsUrl, PUBLISH_PATIENCE, READ_AHEAD, REQUEST_TIMEOUT};

/// Polls a future on this thread until it completes; for futures that only wait on
/// channels fed by the runtime, so no reactor is needed here.
pub(super) fn wait<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let mut fut = std::pin::pin!(fut);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// The client and the runtime it runs on.
pub(super) struct Link {
    pub runtime: tokio::runtime::Runtime,
    pub js: jetstream::Context,
    pub max_payload: usize,
}

impl Link {
    /// Runs `fut` on the link's runtime and waits for it.
    pub fn run<F, T>(&self, fut: F) -> T
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        wait(rx).expect("the NATS task ended without an answer")
    }
}

/// A writer session id: process id and start time, unique enough within the dedup window.
pub(super) fn session_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{:x}-{nanos:x}", std::process::id())
}

/// Connects and finds (or creates) the stream.
pub(super) async fn open_stream(
    url: NatsUrl,
    create: bool,
) -> std::result::Result<(jetstream::Context, usize, stream::Stream, bool), String> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(CONNECT_TIMEOUT)
        .request_timeout(Some(REQUEST_TIMEOUT))
        .max_reconnects(None)
        .connect(url.addrs());
    let client = tokio::time::timeout(CONNECT_TIMEOUT * 2, client)
        .await
        .map_err(|_| format!("cannot connect to {} within {:?}", url.server, CONNECT_TIMEOUT * 2))?
        .map_err(|e| format!("cannot connect to {}: {e}", url.server))?;
    // The server's INFO arrives asynchronously: a round trip makes sure it is in.
    tokio::time::timeout(REQUEST_TIMEOUT, client.flush())
        .await
        .map_err(|_| format!("{}: no answer within {REQUEST_TIMEOUT:?}", url.server))?
        .map_err(|e| format!("{}: {e}", url.server))?;
    let max_payload = match client.server_info().max_payload {
        0 => 1 << 20,
        n => n,
    };
    let mut js = jetstream::new(client);
    js.set_timeout(REQUEST_TIMEOUT);
    let wanted = format!("{}.>", url.prefix);
    match js.get_stream(&url.stream).await {
        Ok(mut stream) => {
            let info = stream.info().await.map_err(|e| format!("stream info: {e}"))?;
            if !info.config.subjects.contains(&wanted) {
                return Err(format!(
                    "stream {} holds subjects {:?}, not {wanted}; pick its prefix with ?prefix=",
                    url.stream, info.config.subjects
                ));
            }
            Ok((js, max_payload, stream, false))
        }
        Err(e)
            if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(ref je)
                if je.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            if !create {
                return Err(format!("no such stream ({e})"));
            }
            let config = stream::Config {
                name: url.stream.clone(),
                subjects: vec![wanted.clone()],
                storage: stream::StorageType::File,
                num_replicas: url.replicas,
                duplicate_window: DUPLICATE_WINDOW,
                description: Some("a tapedeck recording".into()),
                ..Default::default()
            };
            let stream = js.create_stream(config).await.map_err(|e| {
                let text = e.to_string();
                if text.contains("overlap") {
                    format!("cannot create stream: subjects {wanted} already belong to another stream; choose another prefix with ?prefix= ({text})")
                } else {
                    format!("cannot create stream: {text}")
                }
            })?;
            Ok((js, max_payload, stream, true))
        }
        Err(e) => Err(format!("cannot look up stream {}: {e}", url.stream)),
    }
}

/// Publishes one message and waits for its acknowledgement, retrying with the same
/// message id (so the server drops a copy that did arrive) until `PUBLISH_PATIENCE`.
pub(super) async fn publish_acked(
    js: jetstream::Context,
    subject: String,
    headers: HeaderMap,
    payload: bytes::Bytes,
) -> std::result::Result<(), String> {
    let deadline = tokio::time::Instant::now() + PUBLISH_PATIENCE;
    let mut backoff = Duration::from_millis(50);
    loop {
        let attempt = async {
            js.publish_with_headers(subject.clone(), headers.clone(), payload.clone())
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())
        };
        match attempt.await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() + backoff < deadline => {
                tracing::warn!(subject, error = %e, "JetStream publish not acknowledged; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            Err(e) => return Err(format!("publish to {subject} not acknowledged within {PUBLISH_PATIENCE:?}: {e}")),
        }
    }
}

/// Publishes several messages pipelined, then makes sure each is acknowledged.
pub(super) async fn publish_all(
    js: jetstream::Context,
    messages: Vec<(String, HeaderMap, bytes::Bytes)>,
) -> std::result::Result<(), String> {
    let mut pending = Vec::with_capacity(messages.len());
    for (subject, headers, payload) in &messages {
        pending.push(js.publish_with_headers(subject.clone(), headers.clone(), payload.clone()).await);
    }
    for (sent, (subject, headers, payload)) in pending.into_iter().zip(messages) {
        let acked = match sent {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        if !acked {
            publish_acked(js.clone(), subject, headers, payload).await?;
        }
    }
    Ok(())
}

/// Streams the messages of `filter` with stream sequence in `from..=to` into a channel.
pub(super) fn spawn_reader(
    link: &Link,
    stream: stream::Stream,
    filter: String,
    from: u64,
    to: u64,
) -> tokio::sync::mpsc::Receiver<std::result::Result<Fetched, String>> {
    let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
    link.runtime.spawn(async move {
        if to < from {
            return;
        }
        let config = jetstream::consumer::pull::OrderedConfig {
            filter_subject: filter,
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence { start_sequence: from },
            ..Default::default()
        };
        let consumer = match stream.create_consumer(config).await {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.send(Err(format!("cannot create a consumer: {e}"))).await;
                return;
            }
        };
        let mut messages = match consumer.messages().await {
            Ok(m) => m,
            Err(e) => {
                let _ = tx.send(Err(format!("cannot read messages: {e}"))).await;
                return;
            }
        };
        loop {
            let next = tokio::time::timeout(REQUEST_TIMEOUT * 2, messages.next()).await;
            let message = match next {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => {
                    let _ = tx.send(Err(format!("reading the stream: {e}"))).await;
                    return;
                }
                Ok(None) => return,
                Err(_) => {
                    let _ = tx.send(Err(format!("no message within {:?} before seq {to}", REQUEST_TIMEOUT * 2))).await;
                    return;
                }
            };
            let (sequence, pending) = match message.info() {
                Ok(info) => (info.stream_sequence, info.pending),
                Err(e) => {
                    let _ = tx.send(Err(format!("message without stream info: {e}"))).await;
                    return;
                }
            };
            let batch = message.headers.as_ref().and_then(parse_batch);
            let fetched =
                Fetched { subject: message.subject.to_string(), sequence, batch, payload: message.payload.clone() };
            if tx.send(Ok(fetched)).await.is_err() || sequence >= to || pending == 0 {
                return;
            }
        }
    });
    rx
}
