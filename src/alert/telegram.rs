//! The Telegram transport: teloxide's `Bot` pointed at a configurable Bot API base URL,
//! `sendMessage` in HTML mode, `getUpdates` for bot commands, and the mapping of teloxide's
//! errors onto retry decisions.
//!
//! It owns the token's only use (the request URL) and must not let it out: the `Bot` is
//! never formatted (its `Debug` prints the token), and every error text passes through
//! [`BotToken::redact`] first, because reqwest's errors quote the full request URL.
//! It must not pace or retry: that is the queue's job.

use std::fmt;
use std::fmt::Write;
use std::time::Duration;

use teloxide::payloads::{GetUpdatesSetters, SendMessageSetters};
use teloxide::requests::{Request, Requester};
use teloxide::types::{AllowedUpdate, ChatId, LinkPreviewOptions, ParseMode, UpdateKind};
use teloxide::{ApiError, Bot, RequestError};

use super::token::BotToken;
use super::{AlertError, Notifier, Outgoing, SendError, SendFuture};

/// Where the Bot API is unless told otherwise.
pub const DEFAULT_API_URL: &str = "https://api.telegram.org";

/// A bot that sends to one chat.
pub struct Telegram {
    bot: Bot,
    token: BotToken,
    chat_id: i64,
    api_url: String,
}

impl fmt::Debug for Telegram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telegram")
            .field("token", &self.token)
            .field("chat_id", &self.chat_id)
            .field("api_url", &self.api_url)
            .finish()
    }
}

/// One incoming message from `getUpdates`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub update_id: u32,
    /// `None` for updates that are not messages (edits, callbacks, ...): skipped, but their
    /// ids still advance the offset.
    pub chat_id: Option<i64>,
    pub text: Option<String>,
}

impl Telegram {
    /// `api_url` replaces `https://api.telegram.org` (tests, self-hosted Bot API servers).
    ///
    /// # Errors
    /// When the token is empty or the URL is not an http(s) URL.
    pub fn new(token: BotToken, chat_id: i64, api_url: Option<&str>) -> Result<Telegram, AlertError> {
        if token.is_empty() {
            return Err(AlertError::Config("the Telegram bot token is empty".into()));
        }
        let api_url = api_url.unwrap_or(DEFAULT_API_URL).trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&api_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
            .ok_or_else(|| AlertError::Config(format!("invalid Telegram API URL {:?}", token.redact(&api_url))))?;
        let bot = Bot::new(token.expose()).set_api_url(url);
        Ok(Telegram { bot, token, chat_id, api_url })
    }

    pub fn chat_id(&self) -> i64 {
        self.chat_id
    }

    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// Sends `html` to `chat_id` with link previews off.
    ///
    /// # Errors
    /// The failure, classified for retrying, without the token.
    pub async fn send_html(&self, chat_id: i64, html: &str) -> Result<(), SendError> {
        let previews_off = LinkPreviewOptions {
            is_disabled: true,
            url: None,
            prefer_small_media: false,
            prefer_large_media: false,
            show_above_text: false,
        };
        self.bot
            .send_message(ChatId(chat_id), html)
            .parse_mode(ParseMode::Html)
            .link_preview_options(previews_off)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&e, &self.token))
    }

    /// Long-polls for messages after `offset` (the last update id seen + 1), waiting up to
    /// `wait` for one to arrive.
    ///
    /// # Errors
    /// The failure, classified, without the token.
    pub async fn get_updates(&self, offset: Option<i32>, wait: Duration) -> Result<Vec<Incoming>, SendError> {
        let mut request =
            self.bot.get_updates().timeout(wait.as_secs() as u32).allowed_updates([AllowedUpdate::Message]);
        if let Some(offset) = offset {
            request = request.offset(offset);
        }
        let updates = request.send().await.map_err(|e| classify(&e, &self.token))?;
        Ok(updates
            .into_iter()
            .map(|update| match update.kind {
                UpdateKind::Message(m) => {
                    Incoming { update_id: update.id.0, chat_id: Some(m.chat.id.0), text: m.text().map(str::to_string) }
                }
                _ => Incoming { update_id: update.id.0, chat_id: None, text: None },
            })
            .collect())
    }
}

impl Notifier for Telegram {
    fn target(&self) -> String {
        "telegram".into()
    }

    fn send<'a>(&'a self, message: &'a Outgoing) -> SendFuture<'a> {
        Box::pin(self.send_html(self.chat_id, &message.html))
    }
}

/// Descriptions Telegram (or a proxy in front of it) gives for server-side trouble.
const SERVER_TROUBLE: [&str; 5] =
    ["Internal Server Error", "Bad Gateway", "Service Unavailable", "Gateway Timeout", "Too Many Requests"];

/// Maps a teloxide error onto what the queue should do, with the token scrubbed.
///
/// teloxide does not keep the HTTP status (it waits 10 s after any 5xx and then parses the
/// body), so server trouble is recognised by its description; descriptions that name a
/// client error (`Bad Request: ...`, `Forbidden: ...`) or that teloxide knows are final.
pub fn classify(error: &RequestError, token: &BotToken) -> SendError {
    // The whole chain ("error sending request for url (...): client error (Connect): ...
    // refused") says what went wrong. teloxide already cuts recognisable tokens out of reqwest's URLs
    // (and drops URLs it cannot clean); the redaction below covers everything else.
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        let part = e.to_string();
        if !text.contains(&part) {
            let _ = write!(text, ": {part}");
        }
        source = e.source();
    }
    let text = token.redact(&text);
    match error {
        RequestError::RetryAfter(seconds) => SendError::RetryAfter(seconds.duration()),
        RequestError::Network(_) | RequestError::Io(_) | RequestError::InvalidJson { .. } => SendError::Transient(text),
        RequestError::Api(ApiError::Unknown(description)) => {
            if SERVER_TROUBLE.iter().any(|s| description.contains(s)) {
                SendError::Transient(text)
            } else {
                SendError::Fatal(text)
            }
        }
        RequestError::Api(_) => SendError::Fatal(text),
        RequestError::MigrateToChatId(id) => {
            SendError::Fatal(format!("the group became a supergroup: set the chat id to {id} ({text})"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "987654:SECRET-token-value-xyz";

    #[test]
    fn debug_hides_the_token() {
        let t = Telegram::new(BotToken::new(TOKEN), -100, Some("http://127.0.0.1:9/")).unwrap();
        let text = format!("{t:?}");
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("http://127.0.0.1:9"), "{text}");
    }

    #[test]
    fn bad_urls_are_refused_without_the_token() {
        for url in ["ftp://x", "not a url", "mailto:a@b"] {
            let e = Telegram::new(BotToken::new(TOKEN), 1, Some(url)).unwrap_err().to_string();
            assert!(e.contains("invalid Telegram API URL"), "{e}");
            assert!(!e.contains("SECRET"));
        }
        assert!(Telegram::new(BotToken::new(" "), 1, None).is_err());
    }

    #[test]
    fn errors_are_classified_and_scrubbed() {
        let token = BotToken::new(TOKEN);
        let unknown = |d: &str| RequestError::Api(ApiError::Unknown(d.into()));
        let cases: [(RequestError, &str); 7] = [
            (RequestError::RetryAfter(teloxide::types::Seconds::from_seconds(2)), "retry 2"),
            (unknown("Internal Server Error"), "transient"),
            (unknown("Bad Gateway"), "transient"),
            (unknown("Bad Request: can't parse entities"), "fatal"),
            (RequestError::Api(ApiError::ChatNotFound), "fatal"),
            (RequestError::Api(ApiError::InvalidToken), "fatal"),
            (
                RequestError::InvalidJson {
                    source: std::sync::Arc::new(serde_json::from_str::<u8>("<html>").unwrap_err()),
                    raw: format!("<html>502 for /bot{TOKEN}/SendMessage</html>").into(),
                },
                "transient",
            ),
        ];
        for (error, want) in cases {
            let got = classify(&error, &token);
            let text = got.to_string();
            assert!(!text.contains("SECRET"), "{text}");
            let kind = match got {
                SendError::RetryAfter(d) => format!("retry {}", d.as_secs()),
                SendError::Transient(_) => "transient".into(),
                SendError::Fatal(_) => "fatal".into(),
            };
            assert_eq!(kind, want, "{error}");
        }
    }

    /// A real network error: the chain says what happened, and no form of the token survives.
    #[test]
    fn network_errors_lose_the_token() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        // Port 9 (discard) on loopback: nothing listens, so the connection is refused at once.
        // Two tokens: one teloxide recognises (35-character secret), one it does not.
        for token in [TOKEN, "987654:AAE_SECRET-token-value-0123456789xyzw"] {
            let t = Telegram::new(BotToken::new(token), 5, Some("http://127.0.0.1:9")).unwrap();
            let error = runtime.block_on(t.send_html(5, "x")).unwrap_err();
            let text = error.to_string();
            assert!(matches!(error, SendError::Transient(_)), "{text}");
            assert!(text.contains("error sending request"), "{text}");
            assert!(!text.contains("SECRET"), "{text}");
            assert_eq!(text.matches("error sending request").count(), 1, "no repeats: {text}");
        }
    }
}
