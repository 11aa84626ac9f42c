//! `folklstm serve`: a local web server with one page where musicians pick a checkpoint, meter,
//! key, temperature and seed, and see, hear and download the tunes; and the JSON API behind it
//! ([`api`]), which scripts can use too.
//!
//! The HTTP layer is `tiny_http`: a small synchronous server (four small dependencies, seconds
//! to build) fits a local server whose every request is a CPU-bound generation of a second or
//! two; an async stack (tokio and axum, about a hundred crates) would buy nothing here but build
//! time. A fixed set of handler threads takes requests; at most `jobs` generations run at once
//! (the rest wait for a slot, up to their deadline), each on its own CPU sampler, and a
//! generation past its deadline stops between two steps and answers 503.
//!
//! Routes: `GET /` and the page's files (from the page folder, see [`files`]),
//! `GET /api/info`, `POST /api/generate`, `POST /api/midi`.

pub mod api;
pub mod files;
pub mod models;

use crate::abc::judge::CorpusIndex;
use crate::abc::prime::CorpusStyle;
use crate::error::{Error, Result};
use models::Catalog;
use serde_json::{Value, json};
use std::io::Read;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Requests that may wait for a generation slot at once; more are answered 503 at once.
pub const MAX_WAITING: usize = 64;
/// Handler threads besides the generation slots: static files and info keep being served
/// while every slot is busy.
const SPARE_HANDLERS: usize = 16;

/// How to serve.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Folders of checkpoints to offer; the newest of the first is the default.
    pub model_dirs: Vec<PathBuf>,
    /// ABC files of the training corpus, for originality (near copy of which tune).
    pub corpus: Vec<PathBuf>,
    /// Address to listen on (`127.0.0.1`: this machine only).
    pub host: String,
    /// Port (0: any free one; [`Server::addr`] tells which).
    pub port: u16,
    /// The page's folder (None: `web` in the working folder, else the source tree's).
    pub web_dir: Option<PathBuf>,
    /// Longest a generate request may take, waiting for a slot included.
    pub timeout: Duration,
    /// Generations at once.
    pub jobs: usize,
    /// CPU threads of each sampler (None: one per core).
    pub threads: Option<usize>,
    /// One line per generate request on stderr.
    pub log: bool,
}

impl Default for ServeOptions {
    /// The shipped model folder, 127.0.0.1:8080, 60 s, 2 jobs.
    fn default() -> Self {
        ServeOptions {
            model_dirs: vec![PathBuf::from("model")],
            corpus: Vec::new(),
            host: "127.0.0.1".into(),
            port: 8080,
            web_dir: None,
            timeout: Duration::from_secs(60),
            jobs: 2,
            threads: None,
            log: true,
        }
    }
}

/// Generation slots: at most `jobs` at once, the others wait in turn.
struct Slots {
    state: Mutex<(usize, usize)>,
    freed: Condvar,
}

/// A held slot, given back on drop.
struct Slot<'a>(&'a Slots);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut s = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0 += 1;
        self.0.freed.notify_one();
    }
}

impl Slots {
    /// A slot, or why none: too many waiting (`Err(true)`), or the deadline passed (`Err(false)`).
    fn acquire(&self, until: Instant) -> std::result::Result<Slot<'_>, bool> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.0 == 0 && s.1 >= MAX_WAITING {
            return Err(true);
        }
        s.1 += 1;
        let got = loop {
            if s.0 > 0 {
                s.0 -= 1;
                break true;
            }
            let now = Instant::now();
            if now >= until {
                break false;
            }
            s = self.freed.wait_timeout(s, until - now).unwrap_or_else(|p| p.into_inner()).0;
        };
        s.1 -= 1;
        if got { Ok(Slot(self)) } else { Err(false) }
    }
}

struct State {
    catalog: Catalog,
    corpus: Option<(CorpusIndex, CorpusStyle)>,
    corpus_names: Vec<String>,
    web_dir: PathBuf,
    slots: Slots,
    opts: ServeOptions,
}

/// A bound server; [`Server::run`] serves until the process ends, [`Server::spawn`] in the
/// background.
pub struct Server {
    http: Arc<tiny_http::Server>,
    state: Arc<State>,
    addr: SocketAddr,
}

/// A server running on background threads; dropping it (or [`Running::stop`]) stops it.
pub struct Running {
    addr: SocketAddr,
    http: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Running {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the handler threads once their current request is answered.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for _ in &self.threads {
            self.http.unblock();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The page folder: `web` here if it holds the page, else the source tree's.
fn default_web_dir() -> PathBuf {
    let here = PathBuf::from("web");
    if here.join("index.html").is_file() { here } else { Path::new(env!("CARGO_MANIFEST_DIR")).join("web") }
}

impl Server {
    /// Checks the options, reads the checkpoints' list and the corpus, and binds the port.
    pub fn bind(opts: ServeOptions) -> Result<Server> {
        if opts.jobs == 0 || opts.jobs > 64 {
            return Err(Error::Config(format!("--jobs {} must be between 1 and 64", opts.jobs)));
        }
        if opts.timeout.is_zero() {
            return Err(Error::Config("--timeout must be above 0 seconds".into()));
        }
        let catalog = Catalog::scan(&opts.model_dirs)?;
        let web = opts.web_dir.clone().unwrap_or_else(default_web_dir);
        let web_dir = web.canonicalize().ok().filter(|d| d.join("index.html").is_file()).ok_or_else(|| {
            Error::Config(format!(
                "no page at {}: pass --web-dir with the folklstm page folder (web/)",
                web.join("index.html").display()
            ))
        })?;
        let corpus = crate::sample::read_corpus(&opts.corpus)?;
        let corpus_names = opts.corpus.iter().map(|p| p.display().to_string()).collect();
        let addr =
            (opts.host.as_str(), opts.port).to_socket_addrs().ok().and_then(|mut a| a.next()).ok_or_else(|| {
                Error::Config(format!("--host {}: not an address this machine can listen on", opts.host))
            })?;
        let http = tiny_http::Server::http(addr).map_err(|e| {
            Error::Config(format!("cannot listen on {addr}: {e} (another server on that port? pass --port)"))
        })?;
        let addr = http.server_addr().to_ip().unwrap_or(addr);
        let slots = Slots { state: Mutex::new((opts.jobs, 0)), freed: Condvar::new() };
        let state = State { catalog, corpus, corpus_names, web_dir, slots, opts };
        Ok(Server { http: Arc::new(http), state: Arc::new(state), addr })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves on background threads.
    pub fn spawn(self) -> Running {
        let stop = Arc::new(AtomicBool::new(false));
        let n = self.state.opts.jobs + SPARE_HANDLERS;
        let threads = (0..n)
            .map(|_| {
                let (http, state, stop) = (self.http.clone(), self.state.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        match http.recv() {
                            Ok(req) => handle(&state, req),
                            // Unblocked to stop, or a failed accept: look at the flag, then go on.
                            Err(_) => std::thread::sleep(Duration::from_millis(5)),
                        }
                    }
                })
            })
            .collect();
        Running { addr: self.addr, http: self.http, stop, threads }
    }

    /// Serves until the process ends.
    pub fn run(self) {
        let mut running = self.spawn();
        for t in running.threads.drain(..) {
            let _ = t.join();
        }
    }
}

type Reply = tiny_http::Response<std::io::Cursor<Vec<u8>>>;

fn header(name: &str, value: &str) -> tiny_http::Header {
    // Every name and value here is ASCII written in this file (or a media type from `files`).
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap_or_else(|_| {
        tiny_http::Header::from_bytes(&b"X-Invalid-Header"[..], &b"1"[..]).expect("a fixed ASCII header")
    })
}

fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
    tiny_http::Response::from_data(body)
        .with_status_code(status)
        .with_header(header("Content-Type", content_type))
        .with_header(header("X-Content-Type-Options", "nosniff"))
        .with_header(header("Cache-Control", "no-store"))
}

fn json_reply(status: u16, v: &Value) -> Reply {
    reply(status, "application/json; charset=utf-8", serde_json::to_vec(v).unwrap_or_default())
}

fn error_reply(e: &api::ApiError) -> Reply {
    json_reply(e.status, &e.to_json())
}

/// The 413 for a body over [`api::MAX_BODY`]. The rest of the body (up to 16 MiB) is read and
/// dropped first: a socket closed on unread data is reset, and the client would lose the answer.
fn too_large(req: &mut tiny_http::Request) -> api::ApiError {
    let _ = std::io::copy(&mut req.as_reader().take(16 << 20), &mut std::io::sink());
    api::ApiError::status(413, format!("the request body is more than the limit of {} bytes", api::MAX_BODY))
}

/// The body, at most [`api::MAX_BODY`] bytes (one more is read to tell that it is too long).
fn read_body(req: &mut tiny_http::Request) -> std::result::Result<Vec<u8>, api::ApiError> {
    if req.body_length().is_some_and(|n| n > api::MAX_BODY) {
        return Err(api::ApiError::status(
            413,
            format!("the request body is more than the limit of {} bytes", api::MAX_BODY),
        ));
    }
    let mut body = Vec::new();
    req.as_reader()
        .take(api::MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| api::ApiError::status(400, format!("could not read the request body: {e}")))?;
    if body.len() > api::MAX_BODY {
        return Err(too_large(req));
    }
    Ok(body)
}

/// A POST from a page of another site (its `Origin` is not this server) is refused: a web page
/// elsewhere must not make this machine generate.
fn foreign_origin(req: &tiny_http::Request) -> bool {
    let get =
        |name: &'static str| req.headers().iter().find(|h| h.field.equiv(name)).map(|h| h.value.as_str().to_string());
    match (get("Origin"), get("Host")) {
        (Some(origin), Some(host)) => origin.split_once("://").map(|(_, h)| h) != Some(host.as_str()),
        (Some(_), None) => true,
        _ => false,
    }
}

fn handle(state: &State, mut req: tiny_http::Request) {
    let url = req.url().to_string();
    let path = url.split('?').next().unwrap_or("").to_string();
    let method = req.method().clone();
    let is_post = method == tiny_http::Method::Post;
    let r = match (path.as_str(), is_post) {
        ("/api/generate" | "/api/midi", true) if foreign_origin(&req) => {
            error_reply(&api::ApiError::status(403, "requests from pages of other sites are refused"))
        }
        ("/api/generate", true) => match read_body(&mut req).and_then(|b| api::GenerateRequest::parse(&b)) {
            Ok(g) => generate(state, &g),
            Err(e) => error_reply(&e),
        },
        ("/api/midi", true) => match read_body(&mut req).and_then(|b| api::midi(&b)) {
            Ok(bytes) => reply(200, "audio/midi", bytes)
                .with_header(header("Content-Disposition", "attachment; filename=\"tune.mid\"")),
            Err(e) => error_reply(&e),
        },
        ("/api/generate" | "/api/midi", false) => {
            error_reply(&api::ApiError::status(405, format!("{path} takes POST with a JSON body")))
                .with_header(header("Allow", "POST"))
        }
        ("/api/info", false) => json_reply(200, &info(state)),
        (p, _) if p.starts_with("/api/") => {
            error_reply(&api::ApiError::status(404, format!("{p}: no such API; see /api/info")))
        }
        (_, false) if method == tiny_http::Method::Get || method == tiny_http::Method::Head => static_file(state, &url),
        _ => error_reply(&api::ApiError::status(405, "the page's files take GET")).with_header(header("Allow", "GET")),
    };
    let _ = req.respond(r);
}

fn static_file(state: &State, url: &str) -> Reply {
    match files::resolve(&state.web_dir, url).and_then(|p| std::fs::read(&p).ok().map(|b| (p, b))) {
        Some((p, bytes)) => reply(200, files::content_type(&p), bytes),
        None => reply(404, "text/plain; charset=utf-8", b"not found\n".to_vec()),
    }
}

fn generate(state: &State, g: &api::GenerateRequest) -> Reply {
    let o = &state.opts;
    let deadline = Instant::now() + o.timeout;
    let timeout_s = o.timeout.as_secs_f64();
    let result = match state.slots.acquire(deadline) {
        Err(true) => {
            Err(api::ApiError::status(503, format!("the server is busy ({MAX_WAITING} requests waiting); try again")))
        }
        Err(false) => Err(api::too_long(timeout_s)),
        Ok(_slot) => {
            let ctx = api::Context {
                catalog: &state.catalog,
                corpus: state.corpus.as_ref(),
                threads: o.threads,
                deadline,
                timeout_s,
            };
            api::generate(&ctx, g)
        }
    };
    if o.log {
        match &result {
            Ok(v) => eprintln!(
                "generate: {} tune(s) in {} s ({}, rng_seed {})",
                v["tunes"].as_array().map_or(0, |t| t.len()),
                v["seconds"],
                v["checkpoint"].as_str().unwrap_or(""),
                v["rng_seed"]
            ),
            Err(e) => eprintln!("generate: {} {}", e.status, e.message),
        }
    }
    match result {
        Ok(v) => json_reply(200, &v),
        Err(e) => error_reply(&e),
    }
}

/// `GET /api/info`: the checkpoints, the default, the corpus's meters and keys, the limits.
fn info(state: &State) -> Value {
    let default = state.catalog.default_entry();
    let style = match &state.corpus {
        Some((_, s)) => Some(s.clone()),
        None => CorpusStyle::read(&default.dir).ok().flatten(),
    };
    let by_count = |m: Option<&std::collections::BTreeMap<String, usize>>| {
        let mut v: Vec<(&String, &usize)> = m.map(|m| m.iter().collect()).unwrap_or_default();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.into_iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()
    };
    json!({
        "checkpoints": state.catalog.entries.iter().map(|e| e.name.clone()).collect::<Vec<_>>(),
        "default": default.name,
        "corpus": (!state.corpus_names.is_empty()).then(|| state.corpus_names.join(" ")),
        "meters": by_count(style.as_ref().map(|s| &s.meters)),
        "keys": by_count(style.as_ref().map(|s| &s.keys)),
        "limits": {
            "count": api::MAX_TUNES,
            "len": api::MAX_LEN,
            "seed": api::MAX_SEED,
            "temperature": api::MAX_TEMPERATURE,
            "timeout_s": state.opts.timeout.as_secs_f64(),
        },
        "defaults": { "count": api::DEFAULT_COUNT, "len": api::DEFAULT_LEN, "temperature": 1.0 },
    })
}
