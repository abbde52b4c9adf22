//! The bot token as a secret: a wrapper whose `Debug` and `Display` print `***`, and the one
//! place that scrubs the token out of text that is about to be logged or returned.
//!
//! It owns redaction; it must not hand the token out except through [`BotToken::expose`],
//! which only the Telegram transport calls (teloxide needs it to build request URLs).

use std::fmt;
use std::sync::Arc;

/// What every redacted value prints as.
pub const REDACTED: &str = "***";

/// A Telegram bot token. Cheap to clone; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct BotToken(Arc<str>);

impl BotToken {
    /// Wraps a token, trimming surrounding whitespace (a trailing newline from a secrets file
    /// would otherwise become part of every request URL).
    pub fn new(token: &str) -> BotToken {
        BotToken(Arc::from(token.trim()))
    }

    /// The token itself, for building the request URL and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every spelling of the token replaced by `***`.
    ///
    /// Besides the token as given, this scrubs its percent-encoded form (how it appears in
    /// a URL path when it has characters such as `/`) and the secret half after the `:`,
    /// so an error that quotes only part of a URL still leaks nothing.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for form in self.forms() {
            if !form.is_empty() {
                out = out.replace(&form, REDACTED);
            }
        }
        out
    }

    /// The spellings to scrub, longest first so the full token goes before its secret half.
    fn forms(&self) -> Vec<String> {
        let token = self.expose();
        let mut forms = vec![token.to_string()];
        if let Ok(mut url) = reqwest::Url::parse("http://h/") {
            if let Ok(mut segments) = url.path_segments_mut() {
                segments.pop_if_empty().push(token);
            }
            if let Some(encoded) = url.path().strip_prefix('/') {
                forms.push(encoded.to_string());
            }
        }
        // The bot id before the colon is public (it is the bot's user id); the rest is the secret.
        // Short tails are left alone so that redaction cannot mangle ordinary words.
        if let Some((_, secret)) = token.split_once(':') {
            if secret.len() >= 8 {
                forms.push(secret.to_string());
            }
        }
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        forms.dedup();
        forms
    }
}

impl fmt::Debug for BotToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for BotToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<'de> serde::Deserialize<'de> for BotToken {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(BotToken::new(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "123456789:AAE-secret_Part-0123456789abcdef";

    #[test]
    fn debug_and_display_never_show_the_token() {
        let token = BotToken::new(TOKEN);
        #[derive(Debug)]
        #[allow(dead_code)] // read through Debug only
        struct Holder {
            token: BotToken,
            chat: i64,
        }
        let rendered = [
            format!("{token}"),
            format!("{token:?}"),
            format!("{token:#?}"),
            format!("{:?}", Holder { token: token.clone(), chat: -5 }),
            format!("{:?}", Some(token.clone())),
        ];
        for text in rendered {
            assert!(!text.contains(TOKEN), "{text}");
            assert!(!text.contains("secret_Part"), "{text}");
            assert!(text.contains(REDACTED), "{text}");
        }
    }

    #[test]
    fn redact_scrubs_every_spelling() {
        let token = BotToken::new(TOKEN);
        let odd = BotToken::new("42:with/slash and space");
        let cases: [(&BotToken, &str, &str); 6] = [
            (
                &token,
                "error sending request for url (http://127.0.0.1:9/bot123456789:AAE-secret_Part-0123456789abcdef/SendMessage)",
                "error sending request for url (http://127.0.0.1:9/bot***/SendMessage)",
            ),
            (&token, "secret only: AAE-secret_Part-0123456789abcdef!", "secret only: ***!"),
            (&token, "nothing to hide", "nothing to hide"),
            (&token, "bot id alone 123456789 is public", "bot id alone 123456789 is public"),
            (&odd, "GET /bot42:with%2Fslash%20and%20space/getMe", "GET /bot***/getMe"),
            (&odd, "raw 42:with/slash and space.", "raw ***."),
        ];
        for (token, text, want) in cases {
            assert_eq!(token.redact(text), want, "{text}");
        }
    }

    #[test]
    fn short_secret_halves_are_not_scrubbed_alone() {
        // A tail this short would match ordinary text; only the whole token is scrubbed.
        let token = BotToken::new("1:abc");
        assert_eq!(token.redact("abc 1:abc"), "abc ***");
    }

    #[test]
    fn deserializing_trims_and_stays_secret() {
        #[derive(serde::Deserialize, Debug)]
        struct T {
            token: BotToken,
        }
        let t: T = toml::from_str(&format!("token = \"{TOKEN}\\n\"")).unwrap();
        assert_eq!(t.token.expose(), TOKEN);
        assert!(!format!("{t:?}").contains(TOKEN));
    }
}
