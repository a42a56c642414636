//! A malicious HTTP server scripted in a test: plain HTTP/1.1 on 127.0.0.1, one request per
//! connection, every request recorded (method, path, `Authorization`), each answered by the
//! test's handler, possibly with an endless body.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
}

/// What to answer.
pub enum Reply {
    /// Status, headers and a body (`Content-Length` is added).
    Full(u16, Vec<(String, String)>, Vec<u8>),
    /// Status and headers, then `bytes` of body with no length, until the client hangs up.
    Endless(u16, Vec<(String, String)>, u64),
}

impl Reply {
    pub fn status(code: u16, headers: &[(&str, &str)], body: &str) -> Reply {
        Reply::Full(
            code,
            headers
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            body.as_bytes().to_vec(),
        )
    }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// A running scripted server (stopped on drop).
pub struct Scripted {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Body bytes written so far (all replies).
    pub sent: Arc<Mutex<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Scripted {
    pub async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(Mutex::new(0u64));
        let handler: Arc<Handler> = Arc::new(handler);
        let (s, b) = (seen.clone(), sent.clone());
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (handler, seen, sent) = (handler.clone(), s.clone(), b.clone());
                tokio::spawn(async move {
                    let _ = serve_one(sock, handler, seen, sent).await;
                });
            }
        });
        Scripted {
            addr,
            seen,
            sent,
            task,
        }
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn authorizations(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter_map(|s| s.authorization)
            .collect()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn serve_one(
    mut sock: tokio::net::TcpStream,
    handler: Arc<Handler>,
    seen: Arc<Mutex<Vec<Seen>>>,
    sent: Arc<Mutex<u64>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = sock.read(&mut chunk).await?;
        if n == 0 || buf.len() > 64 * 1024 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut parts = first.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let authorization = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim().to_string());
    let req = Seen {
        method,
        path,
        authorization,
    };
    seen.lock().unwrap().push(req.clone());
    let head_only = req.method == "HEAD";
    let write_head = |code: u16, headers: &[(String, String)], length: Option<usize>| {
        let mut out = format!("HTTP/1.1 {code} X\r\nConnection: close\r\n");
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(n) = length {
            out.push_str(&format!("Content-Length: {n}\r\n"));
        }
        out.push_str("\r\n");
        out
    };
    match handler(&req) {
        Reply::Full(code, headers, body) => {
            sock.write_all(write_head(code, &headers, Some(body.len())).as_bytes())
                .await?;
            if !head_only {
                sock.write_all(&body).await?;
                *sent.lock().unwrap() += body.len() as u64;
            }
        }
        Reply::Endless(code, headers, bytes) => {
            sock.write_all(write_head(code, &headers, None).as_bytes())
                .await?;
            if !head_only {
                let block = vec![b' '; 64 * 1024];
                let mut written = 0u64;
                while written < bytes {
                    sock.write_all(&block).await?;
                    written += block.len() as u64;
                    *sent.lock().unwrap() += block.len() as u64;
                }
            }
        }
    }
    sock.shutdown().await
}
