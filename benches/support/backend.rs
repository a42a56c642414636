//! A fake registry + Notary server on 127.0.0.1 for the benches (`engine`, `webhook`): serves
//! the files of a synthetic signed repository (`trustgate::notary::testing::Repo::publish`)
//! under `/v2/<gun>/_trust/tuf/`, and answers every manifest request with one digest.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What the fake server serves, and how many requests it answered.
pub struct Served {
    /// Notary files by name (`root.json`, ...).
    pub files: HashMap<String, Vec<u8>>,
    /// `Docker-Content-Digest` of every manifest.
    pub digest: String,
    /// Requests answered.
    pub requests: AtomicUsize,
}

/// Serves connections from `listener` until the runtime stops.
pub async fn accept(listener: TcpListener, served: Arc<Served>) {
    while let Ok((sock, _)) = listener.accept().await {
        tokio::spawn(connection(sock, served.clone()));
    }
}

async fn connection(sock: TcpStream, served: Arc<Served>) {
    let mut sock = BufReader::new(sock);
    loop {
        let mut line = String::new();
        if sock.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut h = String::new();
            if sock.read_line(&mut h).await.unwrap_or(0) == 0 {
                return;
            }
            if h.trim_end().is_empty() {
                break;
            }
        }
        served.requests.fetch_add(1, Ordering::Relaxed);
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let (status, extra, body) = if path == "/v2/" {
            (200, String::new(), b"{}".to_vec())
        } else if let Some((_, file)) = path.split_once("/_trust/tuf/") {
            match served.files.get(file) {
                Some(b) => (200, String::new(), b.clone()),
                None => (404, String::new(), Vec::new()),
            }
        } else if path.contains("/manifests/") {
            let headers = format!(
                "Docker-Content-Digest: {}\r\nContent-Type: application/vnd.docker.distribution.manifest.v2+json\r\n",
                served.digest
            );
            (200, headers, Vec::new())
        } else {
            (404, String::new(), Vec::new())
        };
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n{extra}\r\n",
            body.len()
        );
        // One write per response: a separate body write would meet Nagle + delayed ACK.
        let mut out = head.into_bytes();
        if method != "HEAD" {
            out.extend_from_slice(&body);
        }
        if sock.get_mut().write_all(&out).await.is_err() {
            return;
        }
    }
}
