//! A local Telegram Bot API for the alert tests: a real HTTP/1.1 server on 127.0.0.1:0
//! (tokio `TcpListener`, keep-alive, `Content-Length` bodies) that speaks enough of the API
//! for tapedeck: `sendMessage`, `getUpdates` and `getMe` under `/bot<TOKEN>/<method>`.
//!
//! Method names are matched case-insensitively, as Telegram does: teloxide sends the payload's
//! type name (`SendMessage`, `GetUpdates`). Replies use the API's envelopes:
//! `{"ok":true,"result":...}` with realistic `Message` objects, and for failures
//! `{"ok":false,"error_code":...,"description":...,"parameters":{...}}`.
//!
//! `sendMessage` replies follow a script (one [`Reply`] per request, then `Ok`), and can be
//! stalled until released. `getUpdates` serves scripted updates from the requested offset,
//! holding the request up to a second when there are none, like a short long-poll.
//! Every request is logged with its receive time, so tests assert on pacing from the
//! server's side.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The bot's own user id in `from` of sent messages.
pub const BOT_ID: i64 = 7_000_000_001;

/// How the server answers one `sendMessage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Ok,
    /// HTTP 429 with `parameters.retry_after`.
    RetryAfter(u32),
    /// HTTP 500 `Internal Server Error`.
    ServerError,
    /// HTTP 401 `Unauthorized` (a revoked token).
    Unauthorized,
    /// Close the connection without answering (a network error on the client).
    Hangup,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub at: Instant,
    /// The method as sent (`SendMessage`), and lower-cased for matching.
    pub method: String,
    pub token: String,
    pub body: Value,
    /// The HTTP status the server answered with (0: none, e.g. hung up or still stalled).
    pub status: u16,
}

#[derive(Default)]
struct State {
    requests: Vec<Request>,
    script: VecDeque<Reply>,
    updates: Vec<Value>,
    next_message_id: i64,
}

/// A running mock.
pub struct MockTelegram {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stall: watch::Sender<bool>,
    _runtime: tokio::runtime::Runtime,
}

impl MockTelegram {
    pub fn start() -> MockTelegram {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State { next_message_id: 100, ..State::default() }));
        let (stall, _) = watch::channel(false);
        let mock = MockTelegram { addr, state: state.clone(), stall, _runtime: runtime };
        let stall_rx = mock.stall.subscribe();
        mock._runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(connection(stream, state.clone(), stall_rx.clone()));
            }
        });
        mock
    }

    /// The base URL to give tapedeck (`--telegram-api-url`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next `sendMessage` requests with these, in order, then `Ok`.
    pub fn script(&self, replies: &[Reply]) {
        self.state.lock().unwrap().script.extend(replies.iter().copied());
    }

    /// Holds every `sendMessage` (already received or not) until `stall(false)`.
    pub fn stall(&self, on: bool) {
        let _ = self.stall.send(on);
    }

    /// Queues an incoming text message from `chat_id` for `getUpdates`.
    pub fn push_update(&self, chat_id: i64, text: &str) {
        let mut state = self.state.lock().unwrap();
        let update_id = 500_000 + state.updates.len() as i64;
        let message_id = state.next_message_id;
        state.next_message_id += 1;
        let command_len = text.split_whitespace().next().map_or(0, |w| w.chars().count());
        state.updates.push(json!({
            "update_id": update_id,
            "message": {
                "message_id": message_id,
                "from": {"id": chat_id.abs(), "is_bot": false, "first_name": "Ada", "username": "ada", "language_code": "en"},
                "chat": chat(chat_id),
                "date": unix_now(),
                "text": text,
                "entities": [{"type": "bot_command", "offset": 0, "length": command_len}],
            }
        }));
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// `sendMessage` requests, in arrival order.
    pub fn sends(&self) -> Vec<Request> {
        self.requests().into_iter().filter(|r| r.method.eq_ignore_ascii_case("sendmessage")).collect()
    }

    /// `sendMessage` requests answered with 200.
    pub fn delivered(&self) -> Vec<Request> {
        self.sends().into_iter().filter(|r| r.status == 200).collect()
    }

    /// Waits until `done` holds for the requests, or panics after `timeout`.
    pub fn wait_for(&self, timeout: Duration, what: &str, done: impl Fn(&[Request]) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&self.requests()) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {:#?}", self.requests());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn chat(id: i64) -> Value {
    if id < 0 {
        json!({"id": id, "title": "tapedeck alerts", "type": "supergroup"})
    } else {
        json!({"id": id, "first_name": "Ada", "username": "ada", "type": "private"})
    }
}

/// The text Telegram shows: tags removed, entities decoded (what `Message.text` holds).
fn shown_text(html: &str) -> String {
    let mut out = String::new();
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

/// Serves requests on one connection until the client closes it.
async fn connection(mut stream: TcpStream, state: Arc<Mutex<State>>, stall: watch::Receiver<bool>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        // The head.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let length = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        while buf.len() < head_end + length {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body_bytes: Vec<u8> = buf[head_end..head_end + length].to_vec();
        buf.drain(..head_end + length);
        let body_text = String::from_utf8_lossy(&body_bytes).to_string();
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        let (token, method) = match path.strip_prefix("/bot").and_then(|p| p.split_once('/')) {
            Some((token, method)) => (token.to_string(), method.split('?').next().unwrap_or("").to_string()),
            None => (String::new(), String::new()),
        };
        let body: Value = serde_json::from_str(&body_text).unwrap_or(Value::Null);
        let index = {
            let mut s = state.lock().unwrap();
            s.requests.push(Request {
                at: Instant::now(),
                method: method.clone(),
                token,
                body: body.clone(),
                status: 0,
            });
            s.requests.len() - 1
        };
        let answer = match method.to_ascii_lowercase().as_str() {
            "sendmessage" => send_message(&state, &body, stall.clone()).await,
            "getupdates" => get_updates(&state, &body).await,
            "getme" => Some((
                200,
                json!({"ok": true, "result": {"id": BOT_ID, "is_bot": true, "first_name": "tapedeck", "username": "tapedeck_bot",
                    "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false}}),
            )),
            _ => Some((404, json!({"ok": false, "error_code": 404, "description": "Not Found: method not found"}))),
        };
        let Some((status, reply)) = answer else {
            // Hang up: the client sees the connection close with no response.
            return;
        };
        state.lock().unwrap().requests[index].status = status;
        let text = reply.to_string();
        let reason = match status {
            200 => "OK",
            401 => "Unauthorized",
            404 => "Not Found",
            429 => "Too Many Requests",
            _ => "Internal Server Error",
        };
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: keep-alive\r\n\r\n{text}",
            text.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn send_message(state: &Mutex<State>, body: &Value, mut stall: watch::Receiver<bool>) -> Option<(u16, Value)> {
    let reply = state.lock().unwrap().script.pop_front().unwrap_or(Reply::Ok);
    let _ = stall.wait_for(|s| !*s).await;
    match reply {
        Reply::Ok => {
            let chat_id = body["chat_id"].as_i64().unwrap_or(0);
            let text = shown_text(body["text"].as_str().unwrap_or(""));
            let message_id = {
                let mut s = state.lock().unwrap();
                s.next_message_id += 1;
                s.next_message_id
            };
            Some((
                200,
                json!({"ok": true, "result": {
                    "message_id": message_id,
                    "from": {"id": BOT_ID, "is_bot": true, "first_name": "tapedeck", "username": "tapedeck_bot"},
                    "chat": chat(chat_id),
                    "date": unix_now(),
                    "text": text,
                }}),
            ))
        }
        Reply::RetryAfter(n) => Some((
            429,
            json!({"ok": false, "error_code": 429, "description": format!("Too Many Requests: retry after {n}"),
                "parameters": {"retry_after": n}}),
        )),
        Reply::ServerError => {
            Some((500, json!({"ok": false, "error_code": 500, "description": "Internal Server Error"})))
        }
        Reply::Unauthorized => Some((401, json!({"ok": false, "error_code": 401, "description": "Unauthorized"}))),
        Reply::Hangup => None,
    }
}

async fn get_updates(state: &Mutex<State>, body: &Value) -> Option<(u16, Value)> {
    let offset = body["offset"].as_i64().unwrap_or(0);
    let wait = Duration::from_secs(body["timeout"].as_u64().unwrap_or(0)).min(Duration::from_secs(1));
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let ready: Vec<Value> = state
            .lock()
            .unwrap()
            .updates
            .iter()
            .filter(|u| u["update_id"].as_i64().unwrap_or(0) >= offset)
            .cloned()
            .collect();
        if !ready.is_empty() || tokio::time::Instant::now() >= deadline {
            return Some((200, json!({"ok": true, "result": ready})));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
