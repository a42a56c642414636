//! One scripted HTTP/1.1 server for every test that needs the wire (a Notary server, a registry,
//! a token service, a Kubernetes API that misbehaves on purpose): plain HTTP on 127.0.0.1:0,
//! keep-alive, each request recorded in a log and answered by the test's handler (a closure or
//! a [`Routes`] table), with optional delays, chunked or endless bodies, stalls and silence.
//!
//! ```ignore
//! let srv = Scripted::routes(Routes::new().get("/v2/", Reply::json(200, "{}"))).await;
//! let srv = Scripted::start(|r| Reply::ok(r.path().as_bytes())).await;
//! assert_eq!(srv.count("/v2/"), 1);
//! ```
//!
//! Also here: [`closed_port`] / [`closed_url`], an address nothing listens on, and
//! [`black_hole`], a listener that never answers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// How long [`Reply::HeadersThenStall`] and [`Reply::Silence`] hold the connection.
pub const STALL: Duration = Duration::from_secs(30);

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Request {
    /// The request line, e.g. `GET /v2/x/_trust/tuf/root.json HTTP/1.1`.
    pub line: String,
    /// `GET`, `HEAD`, `POST`, ...
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (read when `Content-Length` announces one).
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `Authorization` header, if any.
    pub fn authorization(&self) -> Option<String> {
        self.header("authorization").map(str::to_owned)
    }

    /// The target without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// The (decoded) value of query parameter `key`.
    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }
}

/// What the server answers.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Status, headers and a body sent with `Content-Length`.
    Full(u16, Vec<(String, String)>, Vec<u8>),
    /// A 200 with a chunked body: `count` chunks of `chunk` (None = until the client goes away,
    /// at most 64 MiB).
    Chunked(Vec<u8>, Option<usize>),
    /// A 200 with no length at all: the body ends when the server closes the connection.
    CloseDelimited(Vec<u8>),
    /// Status and headers, then `bytes` of spaces with no length, until done or the client
    /// hangs up (an endless body).
    Endless(u16, Vec<(String, String)>, u64),
    /// A 200 with these headers (and this `Content-Length`, if any), then nothing for [`STALL`].
    HeadersThenStall(Option<u64>),
    /// Read the request, never answer (for [`STALL`]).
    Silence,
    /// Close the connection without answering.
    Hangup,
    /// Wait, then answer.
    Delayed(Duration, Box<Reply>),
}

impl Reply {
    /// Status, headers and body text.
    pub fn status(code: u16, headers: &[(&str, &str)], body: &str) -> Reply {
        Reply::Full(
            code,
            headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body.as_bytes().to_vec(),
        )
    }

    /// A 200 with a `text/plain` body.
    pub fn ok(body: &[u8]) -> Reply {
        Reply::Full(
            200,
            vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
            body.to_vec(),
        )
    }

    /// `code` with an `application/json` body.
    pub fn json(code: u16, body: &str) -> Reply {
        Reply::status(code, &[("Content-Type", "application/json")], body)
    }

    /// This reply after `delay`.
    pub fn after(self, delay: Duration) -> Reply {
        Reply::Delayed(delay, Box::new(self))
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// A route table: the first route whose method and path match answers; else 404.
#[derive(Clone, Debug, Default)]
pub struct Routes(Vec<(Option<String>, String, Reply)>);

impl Routes {
    /// An empty table (everything 404).
    pub fn new() -> Routes {
        Routes::default()
    }

    /// `GET` (and `HEAD`) of exactly `path` answers `reply`.
    pub fn get(mut self, path: &str, reply: Reply) -> Routes {
        self.0.push((Some("GET".into()), path.into(), reply));
        self
    }

    /// Any method on exactly `path` answers `reply`.
    pub fn any(mut self, path: &str, reply: Reply) -> Routes {
        self.0.push((None, path.into(), reply));
        self
    }
}

impl Routes {
    /// The reply of the first matching route, else a JSON 404.
    pub fn reply(&self, req: &Request) -> Reply {
        self.0
            .iter()
            .find(|(method, path, _)| {
                let method_ok = match method.as_deref() {
                    None => true,
                    Some("GET") => req.method == "GET" || req.method == "HEAD",
                    Some(m) => req.method == m,
                };
                method_ok && req.path() == path
            })
            .map(|(_, _, reply)| reply.clone())
            .unwrap_or_else(|| Reply::json(404, r#"{"message":"no route"}"#))
    }
}

#[derive(Default)]
struct Log {
    requests: Mutex<Vec<Request>>,
    arrived: tokio::sync::Notify,
    connections: Mutex<u64>,
    sent: Mutex<u64>,
}

/// A running scripted server (stopped when dropped).
pub struct Scripted {
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Log>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Scripted {
    /// Binds 127.0.0.1:0 and answers every request with `handler`.
    pub async fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Log::default());
        let handler: Arc<Handler> = Arc::new(handler);
        let task_log = log.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                *task_log.connections.lock().unwrap() += 1;
                tokio::spawn(connection(sock, handler.clone(), task_log.clone()));
            }
        });
        Scripted { addr, log, task }
    }

    /// Binds 127.0.0.1:0 and answers from the route table.
    pub async fn routes(routes: Routes) -> Scripted {
        Scripted::start(move |r| routes.reply(r)).await
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.log.requests.lock().unwrap().clone()
    }

    /// How many requests had a path starting with `path_prefix`.
    pub fn count(&self, path_prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.path().starts_with(path_prefix))
            .count()
    }

    /// The `Authorization` headers received, in order.
    pub fn authorizations(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter_map(Request::authorization)
            .collect()
    }

    /// Waits until `n` requests have arrived in all.
    pub async fn wait_for_requests(&self, n: usize) {
        loop {
            let arrived = self.log.arrived.notified();
            if self.log.requests.lock().unwrap().len() >= n {
                return;
            }
            arrived.await;
        }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        *self.log.connections.lock().unwrap()
    }

    /// Body bytes written so far (all replies).
    pub fn sent(&self) -> u64 {
        *self.log.sent.lock().unwrap()
    }
}

/// Reads one request head (and its `Content-Length` body); `None` when the client went away.
async fn read_request(sock: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if sock.read_line(&mut line).await.unwrap_or(0) == 0 {
        return None;
    }
    let line = line.trim_end().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if sock.read_line(&mut h).await.unwrap_or(0) == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let mut parts = line.split(' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut req = Request {
        line,
        method,
        target,
        headers,
        body: Vec::new(),
    };
    let length: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if length > 0 {
        req.body = vec![0; length.min(16 << 20)];
        sock.read_exact(&mut req.body).await.ok()?;
    }
    Some(req)
}

fn head(code: u16, headers: &[(String, String)]) -> Vec<u8> {
    let mut s = format!("HTTP/1.1 {code} X\r\n");
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

async fn connection(sock: TcpStream, handler: Arc<Handler>, log: Arc<Log>) {
    let mut sock = BufReader::new(sock);
    while let Some(req) = read_request(&mut sock).await {
        log.requests.lock().unwrap().push(req.clone());
        log.arrived.notify_waiters();
        let head_only = req.method == "HEAD";
        let mut reply = handler(&req);
        while let Reply::Delayed(delay, inner) = reply {
            tokio::time::sleep(delay).await;
            reply = *inner;
        }
        if !answer(sock.get_mut(), reply, head_only, &log).await {
            return;
        }
    }
}

/// Writes `reply`; false when the connection is done (closed, failed or stalled).
async fn answer(w: &mut TcpStream, reply: Reply, head_only: bool, log: &Log) -> bool {
    let count = |n: usize| *log.sent.lock().unwrap() += n as u64;
    match reply {
        Reply::Full(code, mut hs, body) => {
            hs.push(("Content-Length".into(), body.len().to_string()));
            let mut out = head(code, &hs);
            if !head_only {
                out.extend_from_slice(&body);
                count(body.len());
            }
            w.write_all(&out).await.is_ok()
        }
        Reply::Chunked(chunk, n) => {
            let hs = [("Transfer-Encoding".to_owned(), "chunked".to_owned())];
            if w.write_all(&head(200, &hs)).await.is_err() || head_only {
                return !head_only;
            }
            let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
            frame.extend_from_slice(&chunk);
            frame.extend_from_slice(b"\r\n");
            for _ in 0..n.unwrap_or((64 << 20) / chunk.len().max(1)) {
                if w.write_all(&frame).await.is_err() {
                    return false;
                }
                count(chunk.len());
            }
            n.is_some() && w.write_all(b"0\r\n\r\n").await.is_ok()
        }
        Reply::CloseDelimited(body) => {
            let mut out = head(200, &[("Connection".into(), "close".into())]);
            if !head_only {
                out.extend_from_slice(&body);
                count(body.len());
            }
            let _ = w.write_all(&out).await;
            let _ = w.shutdown().await;
            false
        }
        Reply::Endless(code, mut hs, bytes) => {
            hs.push(("Connection".into(), "close".into()));
            if w.write_all(&head(code, &hs)).await.is_ok() && !head_only {
                let block = vec![b' '; 64 * 1024];
                let mut written = 0u64;
                while written < bytes && w.write_all(&block).await.is_ok() {
                    written += block.len() as u64;
                    count(block.len());
                }
            }
            let _ = w.shutdown().await;
            false
        }
        Reply::HeadersThenStall(len) => {
            let hs: Vec<(String, String)> = len
                .map(|n| ("Content-Length".to_owned(), n.to_string()))
                .into_iter()
                .collect();
            let _ = w.write_all(&head(200, &hs)).await;
            tokio::time::sleep(STALL).await;
            false
        }
        Reply::Silence => {
            tokio::time::sleep(STALL).await;
            false
        }
        Reply::Hangup => false,
        Reply::Delayed(..) => unreachable!("unwrapped by the caller"),
    }
}

/// A TCP port on 127.0.0.1 with nothing listening (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `http://127.0.0.1:<closed_port()>`.
pub fn closed_url() -> String {
    format!("http://127.0.0.1:{}", closed_port())
}

/// A listener that never accepts: the kernel completes TCP handshakes into its backlog and
/// nobody ever answers (a black hole, for TLS handshakes and deadlines). Closed when dropped.
pub fn black_hole() -> std::net::TcpListener {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap()
}
