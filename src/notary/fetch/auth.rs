//! Token-auth plumbing of the Notary client: `WWW-Authenticate` challenge parsing, token scopes
//! and token responses, errcode bodies, and TLS/transport error texts.

use std::error::Error as StdError;
use std::time::Duration;

use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};

use super::{DEFAULT_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME};

pub(super) fn pull_scope(gun: &str) -> String {
    format!("repository:{gun}:pull")
}

/// The challenge's scope if it is exactly a pull scope for this GUN; otherwise (another
/// repository, `push,pull`, the catalog scope, none) `repository:<gun>:pull`.
pub(super) fn choose_scope(challenge: Option<&str>, gun: &str) -> String {
    challenge
        .and_then(|s| {
            s.split_whitespace()
                .find(|one| parse_scope(one) == Some(("repository", gun, "pull")))
        })
        .map_or_else(|| pull_scope(gun), str::to_string)
}

/// `type:name:actions`, where the name may contain colons (`repository:127.0.0.1:5000/a:pull`).
pub(super) fn parse_scope(scope: &str) -> Option<(&str, &str, &str)> {
    let (typ, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    Some((typ, name, actions))
}

pub(super) fn gun_of_scope(scope: &str) -> &str {
    parse_scope(scope).map_or(scope, |(_, name, _)| name)
}

/// `token`/`access_token` (preferring `access_token`) and the lifetime from `expires_in`.
pub(crate) fn parse_token_response(body: &[u8]) -> Result<(String, Duration), String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("token response is not JSON: {e}"))?;
    let pick = |k: &str| v.get(k).and_then(|t| t.as_str()).filter(|t| !t.is_empty());
    let token = pick("access_token")
        .or_else(|| pick("token"))
        .ok_or("token response has no token")?;
    if token.len() > 32 * 1024 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("token response holds an unusable token".into());
    }
    let secs = v
        .get("expires_in")
        .and_then(|e| e.as_f64())
        .filter(|s| s.is_finite() && *s >= 1.0);
    let lifetime = secs.map_or(DEFAULT_TOKEN_LIFETIME, |s| {
        Duration::from_secs_f64(s.min(MAX_TOKEN_LIFETIME.as_secs_f64()))
    });
    Ok((token.to_string(), lifetime))
}

/// "CODE: message" of the first entry of a distribution errcode body, else sanitised text.
pub(crate) fn errcode_message(body: &[u8]) -> String {
    let parsed = serde_json::from_slice::<serde_json::Value>(body).ok();
    let first = parsed
        .as_ref()
        .and_then(|v| v.get("errors")?.as_array()?.first().cloned());
    let text = match first {
        Some(e) => {
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or_default();
            let msg = e
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or_default();
            match (code.is_empty(), msg.is_empty()) {
                (false, false) => format!("{code}: {msg}"),
                (true, _) => msg.to_string(),
                (false, true) => code.to_string(),
            }
        }
        None => String::from_utf8_lossy(body).into_owned(),
    };
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    clean.trim().to_string()
}

/// TLS failure text if the error chain holds a rustls error (also inside `io::Error`) or an
/// error that speaks of certificates or TLS. The top-level reqwest error is skipped: its text
/// contains the URL, and a GUN may contain "tls".
pub(super) fn tls_detail(e: &reqwest::Error) -> Option<String> {
    let mut cur = e.source();
    let mut texts = Vec::new();
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r.to_string());
        }
        let in_io = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref());
        if let Some(r) = in_io.and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            return Some(r.to_string());
        }
        texts.push(err.to_string());
        cur = err.source();
    }
    texts
        .iter()
        .find(|t| {
            let t = t.to_ascii_lowercase();
            t.contains("certificate") || t.contains("tls")
        })
        .cloned()
}

/// "a: b: c" of an error and its sources, without repeats.
pub(super) fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(err) = cur {
        let s = err.to_string();
        if parts.last() != Some(&s) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// One `WWW-Authenticate` challenge: lowercase scheme and its parameters (lowercase names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub(crate) scheme: String,
    pub(crate) params: Vec<(String, String)>,
}

impl Challenge {
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub(crate) fn parse_challenges(headers: &HeaderMap) -> Vec<Challenge> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .flat_map(|v| parse_challenge_header(v.as_bytes()))
        .collect()
}

/// RFC 7235 challenges: `scheme [param=value|"quoted \" value", ...][, scheme ...]`. Parameters
/// may come in any order; a token68 form is skipped. Never panics; junk yields fewer challenges.
pub(super) fn parse_challenge_header(input: &[u8]) -> Vec<Challenge> {
    let mut p = Cursor { s: input, i: 0 };
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        p.skip(|b| b == b' ' || b == b'\t' || b == b',');
        if p.done() {
            return out;
        }
        let scheme = p.token();
        if scheme.is_empty() {
            p.i += 1; // junk byte: skip it
            continue;
        }
        let mut ch = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: Vec::new(),
        };
        loop {
            p.skip(|b| b == b' ' || b == b'\t');
            let start = p.i;
            let name = p.token();
            p.skip(|b| b == b' ' || b == b'\t');
            if name.is_empty() || p.peek() != Some(b'=') {
                p.i = start; // next challenge (or end)
                break;
            }
            p.i += 1;
            p.skip(|b| b == b' ' || b == b'\t');
            let value = if p.peek() == Some(b'"') {
                p.quoted()
            } else {
                p.token()
            };
            if !value.is_empty() && value.bytes().all(|b| b == b'=') {
                // token68 padding such as `Negotiate abc==`: not a parameter
            } else if ch.param(&name.to_ascii_lowercase()).is_none() {
                ch.params.push((name.to_ascii_lowercase(), value));
            }
            p.skip(|b| b == b' ' || b == b'\t');
            if p.peek() == Some(b',') {
                p.i += 1;
            } else if !p.done() {
                // Garbage after a value: resynchronise after the next comma.
                p.skip(|b| b != b',');
                p.i += 1;
            }
        }
        out.push(ch);
    }
}

pub(super) struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
    }
    /// RFC 7230 tchar run.
    fn token(&mut self) -> String {
        let start = self.i;
        self.skip(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&b));
        String::from_utf8_lossy(self.s.get(start..self.i).unwrap_or_default()).into_owned()
    }
    /// A quoted string starting at `"`, with backslash escapes; an unterminated one runs to the end.
    fn quoted(&mut self) -> String {
        let mut out = Vec::new();
        self.i += 1;
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(next) = self.peek() {
                        out.push(next);
                        self.i += 1;
                    }
                }
                _ => out.push(b),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}
