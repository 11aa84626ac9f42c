//! A server of `folklstm serve` for the tests (in this process, on a free port, with the shipped
//! model), and a plain HTTP/1.0 client over a socket: the tests see exactly the bytes the
//! server sends.

use folklstm::serve::{Running, ServeOptions, Server};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Options for a test server: the shipped model, the repository's page, any free port, no log.
pub fn options() -> ServeOptions {
    ServeOptions {
        model_dirs: vec![repo().join("model")],
        web_dir: Some(repo().join("web")),
        port: 0,
        log: false,
        ..ServeOptions::default()
    }
}

/// A running server with `opts`.
pub fn start(opts: ServeOptions) -> Running {
    Server::bind(opts).expect("the server starts").spawn()
}

/// One answer: status, headers (names lower-cased), body.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Header lines as (lower-case name, value).
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Sends `method path` with `body` and extra header lines (`Name: value`), and reads the whole
/// answer. The path is sent as given, unnormalised.
pub fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8], extra: &[&str]) -> Answer {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n", body.len());
    for h in extra {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the answer");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).expect("a status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer { status, headers, body: raw[split + 4..].to_vec() }
}

/// `POST /api/generate` with a JSON body.
pub fn generate(addr: SocketAddr, body: &str) -> Answer {
    request(addr, "POST", "/api/generate", body.as_bytes(), &["Content-Type: application/json"])
}

/// `GET path`.
pub fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path, b"", &[])
}

/// The ABC texts of a 200 answer of `/api/generate`.
pub fn tunes(a: &Answer) -> Vec<String> {
    assert_eq!(a.status, 200, "{}", a.text());
    a.json()["tunes"].as_array().expect("tunes").iter().map(|t| t["abc"].as_str().expect("abc").to_string()).collect()
}

/// A copy of the page without `node_modules` (as before `npm ci`), in `dir`.
pub fn page_without_notation(dir: &Path) -> PathBuf {
    let web = dir.join("web");
    std::fs::create_dir_all(&web).unwrap();
    for f in ["index.html", "app.js", "style.css"] {
        std::fs::copy(repo().join("web").join(f), web.join(f)).unwrap();
    }
    web
}
