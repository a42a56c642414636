//! One fetch of the HTTP source, exchange by exchange: the file URL (GUN and file name checked),
//! the request, the 401 answered per challenge (a cached or fresh pull-only token, or Basic to
//! the notary server), the retry, the capped body read, and the error each failure maps to.
//! Redirects stay within the origin. A child of `fetch` (the types are defined there).

#[allow(clippy::wildcard_imports)]
use super::*;

impl Inner {
    pub(super) fn file_url(&self, gun: &str, file: &str) -> Result<Url, FetchError> {
        let protocol = |detail: String| FetchError::Protocol {
            server: self.server.clone(),
            detail,
        };
        check_path_part(gun)
            .map_err(|why| protocol(format!("refusing GUN {:?}: {why}", short(gun))))?;
        check_path_part(file)
            .map_err(|why| protocol(format!("refusing file name {:?}: {why}", short(file))))?;
        let path = format!("{}/v2/{gun}/_trust/tuf/{file}", self.base_path);
        let mut url = self.base.clone();
        url.set_path(&path);
        if url.path() != path {
            return Err(protocol(format!("path {path:?} cannot be sent verbatim")));
        }
        Ok(url)
    }

    pub(super) async fn fetch_url(
        &self,
        gun: &str,
        file: &str,
        url: Url,
        max_len: u64,
    ) -> Result<Vec<u8>, FetchError> {
        let mut auth = self.upfront_auth(gun, file).await?;
        let mut retried = false;
        loop {
            let mut resp = self
                .send(self.client.get(url.clone()), auth.as_ref(), file)
                .await?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !retried {
                retried = true;
                let stale = match &auth {
                    Some(Auth::Bearer(t)) => Some(t.clone()),
                    _ => None,
                };
                let challenges = parse_challenges(resp.headers());
                let message = self.error_message(&mut resp).await;
                auth = Some(
                    self.answer(gun, file, &challenges, stale.as_deref(), &message)
                        .await?,
                );
                continue;
            }
            // Recorded once, for the final answer (a challenge is logged by `answer`).
            tracing::Span::current().record("status", status.as_u16());
            if status.is_success() {
                return self.read_capped(&mut resp, file, max_len).await;
            }
            let message = self.error_message(&mut resp).await;
            return Err(match status {
                StatusCode::NOT_FOUND => FetchError::NotFound {
                    server: self.server.clone(),
                    gun: gun.to_string(),
                    file: file.to_string(),
                },
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => self.unauthorized(gun, message),
                _ => FetchError::Server {
                    server: self.server.clone(),
                    file: file.to_string(),
                    status: status.as_u16(),
                },
            });
        }
    }

    /// Authorization to send on the first request, from what the server asked for before.
    async fn upfront_auth(&self, gun: &str, file: &str) -> Result<Option<Auth>, FetchError> {
        let hint = self
            .hint
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match hint {
            None => Ok(None),
            Some(AuthHint::Basic) => Ok(self.credentials.as_ref().map(|_| Auth::Basic)),
            Some(AuthHint::Bearer { realm, service }) => {
                let key = TokenKey {
                    realm,
                    service,
                    scope: pull_scope(gun),
                };
                Ok(Some(Auth::Bearer(
                    self.bearer_token(&key, file, None).await?,
                )))
            }
        }
    }

    /// Answers a 401 challenge with the authorization for the one retry.
    async fn answer(
        &self,
        gun: &str,
        file: &str,
        challenges: &[Challenge],
        stale: Option<&str>,
        message: &str,
    ) -> Result<Auth, FetchError> {
        let protocol = |detail: String| FetchError::Protocol {
            server: self.server.clone(),
            detail,
        };
        if let Some(ch) = challenges.iter().find(|c| c.scheme == "bearer") {
            let realm = ch.param("realm").filter(|r| !r.is_empty());
            let realm = realm.ok_or_else(|| protocol("bearer challenge without realm".into()))?;
            let realm = self.check_realm(realm).map_err(protocol)?;
            let service = ch.param("service").unwrap_or_default().to_string();
            let scope = choose_scope(ch.param("scope"), gun);
            debug!(realm = realm.as_str(), service, scope, "bearer challenge");
            let hint = AuthHint::Bearer {
                realm: realm.to_string(),
                service: service.clone(),
            };
            *self.hint.lock().unwrap_or_else(PoisonError::into_inner) = Some(hint);
            let key = TokenKey {
                realm: realm.into(),
                service,
                scope,
            };
            return Ok(Auth::Bearer(self.bearer_token(&key, file, stale).await?));
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            *self.hint.lock().unwrap_or_else(PoisonError::into_inner) = Some(AuthHint::Basic);
            if self.credentials.is_none() {
                return Err(self.unauthorized(
                    gun,
                    "server requires HTTP Basic auth; no credentials configured".into(),
                ));
            }
            return Ok(Auth::Basic);
        }
        let detail = if message.is_empty() {
            "HTTP 401 without a usable challenge".into()
        } else {
            message.to_string()
        };
        Err(self.unauthorized(gun, detail))
    }

    /// Accepts a realm URL: http(s), no userinfo or fragment, plain http only as documented above.
    pub(super) fn check_realm(&self, realm: &str) -> Result<Url, String> {
        let shown = short(realm);
        let url = Url::parse(realm).map_err(|e| format!("invalid token realm {shown:?}: {e}"))?;
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err(format!(
                "refusing token realm {shown:?} with userinfo or fragment"
            ));
        }
        match url.scheme() {
            "https" => Ok(url),
            "http" if self.base.scheme() == "http" || is_loopback(&url) => Ok(url),
            "http" => Err(format!(
                "refusing plain-http token realm {shown:?} for an https notary server"
            )),
            other => Err(format!("unsupported token realm scheme {:?}", short(other))),
        }
    }

    /// A valid token for `key` from the cache, else from the token service. `stale` is a token the
    /// server just refused: it is never handed out again.
    async fn bearer_token(
        &self,
        key: &TokenKey,
        file: &str,
        stale: Option<&str>,
    ) -> Result<String, FetchError> {
        let slot = self.token_slot(key);
        let mut cached = slot.lock().await;
        if let Some(t) = cached.as_ref()
            && Instant::now() < t.refresh_at
            && Some(t.token.as_str()) != stale
        {
            debug!(scope = key.scope, "using cached token");
            return Ok(t.token.clone());
        }
        *cached = None;
        let fresh = self.request_token(key, file).await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    fn token_slot(&self, key: &TokenKey) -> TokenSlot {
        let mut map = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        if !map.contains_key(key) && map.len() >= MAX_CACHED_TOKENS {
            let now = Instant::now();
            // Keep slots in use (locked) and still-valid tokens; drop the rest, then everything idle.
            map.retain(|_, s| {
                s.try_lock()
                    .map(|t| t.as_ref().is_some_and(|t| now < t.refresh_at))
                    .unwrap_or(true)
            });
            if map.len() >= MAX_CACHED_TOKENS {
                map.retain(|_, s| s.try_lock().is_err());
            }
        }
        map.entry(key.clone()).or_default().clone()
    }

    async fn request_token(&self, key: &TokenKey, file: &str) -> Result<CachedToken, FetchError> {
        let protocol = |detail: String| FetchError::Protocol {
            server: self.server.clone(),
            detail,
        };
        let mut url =
            Url::parse(&key.realm).map_err(|e| protocol(format!("invalid token realm: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            if !key.service.is_empty() {
                q.append_pair("service", &key.service);
            }
            q.append_pair("scope", &key.scope);
            if let Some((user, _)) = &self.credentials {
                q.append_pair("account", user);
            }
        }
        let span = debug_span!(
            "notary.token",
            realm = key.realm,
            scope = key.scope,
            status = field::Empty
        );
        async {
            let started = Instant::now();
            let auth = self.credentials.as_ref().map(|_| Auth::Basic);
            let mut resp = self.send(self.client.get(url), auth.as_ref(), file).await?;
            let status = resp.status();
            tracing::Span::current().record("status", status.as_u16());
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                let detail = if self.credentials.is_some() {
                    "token service rejected the credentials"
                } else {
                    "token service refused anonymous access"
                };
                return Err(FetchError::Unauthorized {
                    server: self.server.clone(),
                    gun: gun_of_scope(&key.scope).to_string(),
                    detail: detail.into(),
                });
            }
            if !status.is_success() {
                return Err(protocol(format!(
                    "token service {} answered HTTP {}",
                    key.realm,
                    status.as_u16()
                )));
            }
            let body = self
                .read_capped(&mut resp, file, LIMITS.token_bytes)
                .await
                .map_err(|e| match e {
                    FetchError::TooLarge { .. } => protocol("token response too large".into()),
                    other => other,
                })?;
            let (token, lifetime) = parse_token_response(&body).map_err(protocol)?;
            let margin = TOKEN_EXPIRY_MARGIN.min(lifetime / 2);
            debug!(
                lifetime_s = lifetime.as_secs(),
                elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                "token issued"
            );
            Ok(CachedToken {
                token,
                refresh_at: Instant::now() + lifetime - margin,
            })
        }
        .instrument(span)
        .await
    }

    async fn send(
        &self,
        rb: RequestBuilder,
        auth: Option<&Auth>,
        file: &str,
    ) -> Result<Response, FetchError> {
        let rb = match (auth, &self.credentials) {
            (Some(Auth::Bearer(token)), _) => rb.bearer_auth(token),
            (Some(Auth::Basic), Some((user, pass))) => rb.basic_auth(user, Some(pass)),
            _ => rb,
        };
        rb.send().await.map_err(|e| self.transport_error(file, &e))
    }

    /// Reads the body, refusing more than `max_len` bytes (by `Content-Length` before reading,
    /// and while streaming).
    async fn read_capped(
        &self,
        resp: &mut Response,
        file: &str,
        max_len: u64,
    ) -> Result<Vec<u8>, FetchError> {
        let too_large = || FetchError::TooLarge {
            server: self.server.clone(),
            file: file.to_string(),
            limit: max_len,
        };
        let declared = resp.content_length();
        if declared.is_some_and(|n| n > max_len) {
            return Err(too_large());
        }
        let initial = declared.unwrap_or(0).min(max_len).min(1 << 20);
        let mut body = Vec::with_capacity(usize::try_from(initial).unwrap_or(0));
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| self.transport_error(file, &e))?
        {
            let total = u64::try_from(body.len().saturating_add(chunk.len())).unwrap_or(u64::MAX);
            if total > max_len {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// At most 1 KiB of an error body, as "CODE: message" from an errcode JSON, else as text.
    async fn error_message(&self, resp: &mut Response) -> String {
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            let room = usize::try_from(LIMITS.error_body_bytes)
                .unwrap_or(0)
                .saturating_sub(body.len());
            body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
            if body.len() >= usize::try_from(LIMITS.error_body_bytes).unwrap_or(0) {
                break;
            }
        }
        errcode_message(&body)
    }

    fn unauthorized(&self, gun: &str, detail: String) -> FetchError {
        let detail = if detail.is_empty() {
            "access denied".into()
        } else {
            detail
        };
        FetchError::Unauthorized {
            server: self.server.clone(),
            gun: gun.to_string(),
            detail,
        }
    }

    fn transport_error(&self, file: &str, e: &reqwest::Error) -> FetchError {
        let server = self.server.clone();
        if e.is_timeout() {
            return FetchError::Timeout {
                server,
                file: file.to_string(),
                timeout: self.timeout,
            };
        }
        if let Some(detail) = tls_detail(e) {
            return FetchError::Tls { server, detail };
        }
        if e.is_builder() {
            return FetchError::Protocol {
                server,
                detail: format!("cannot build request: {}", error_chain(e)),
            };
        }
        FetchError::Connect {
            server,
            detail: error_chain(e),
        }
    }
}

pub(super) fn same_origin_redirects() -> redirect::Policy {
    redirect::Policy::custom(|attempt| {
        let same = attempt.previous().first().is_some_and(|first| {
            let (a, b) = (first, attempt.url());
            a.scheme() == b.scheme()
                && a.host() == b.host()
                && a.port_or_known_default() == b.port_or_known_default()
        });
        if same && attempt.previous().len() <= MAX_REDIRECTS {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// At most 200 characters of a server-controlled string, for error messages.
pub(super) fn short(s: &str) -> String {
    s.chars().take(200).collect()
}

pub(super) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// GUNs and file names go into the path verbatim, so only plain path segments are allowed:
/// visible ASCII without `?`, `#`, `%`, `\`, no `..`, no empty or `.` segments.
pub(super) fn check_path_part(s: &str) -> Result<(), &'static str> {
    if s.is_empty() || s.len() > 1024 {
        return Err("empty or longer than 1024 bytes");
    }
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("contains whitespace, control or non-ASCII characters");
    }
    if s.contains(['?', '#', '%', '\\']) {
        return Err("contains '?', '#', '%' or '\\'");
    }
    if s.contains("..") {
        return Err("contains '..'");
    }
    if s.split('/').any(|seg| seg.is_empty() || seg == ".") {
        return Err("has an empty or '.' path segment");
    }
    Ok(())
}
