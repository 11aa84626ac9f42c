//! `folklstm serve` over HTTP: generation with judged tunes, every bad parameter, the limits and
//! the deadline, eight clients at once, static files that cannot leave their folder, and the
//! binary's memory over 200 requests. All on the shipped model with small counts and lengths.

mod common;

use common::http::{self, generate, get, request, tunes};
use folklstm::serve::ServeOptions;
use serde_json::Value;
use std::time::{Duration, Instant};

#[test]
fn generate_returns_judged_tunes_in_the_asked_meter_and_key() {
    let server = http::start(http::options());
    let addr = server.addr();
    let body = r#"{"count": 2, "len": 300, "rng_seed": 7, "meter": "6/8", "key": "D", "temperature": 0.8}"#;
    let a = generate(addr, body);
    assert_eq!(a.header("content-type"), Some("application/json; charset=utf-8"));
    let got = tunes(&a);
    let v = a.json();
    assert_eq!(got.len(), 2);
    assert_eq!(v["rng_seed"], 7);
    assert_eq!(v["sampling"], "guided", "an ABC model samples guided, as `sample` does");
    assert_eq!(v["checkpoint"].as_str().unwrap(), format!("{}/100", http::repo().join("model").display()));
    for (t, j) in got.iter().zip(v["tunes"].as_array().unwrap()) {
        // The header in the shipped corpus's layout, with the asked meter and key.
        assert!(t.starts_with("X: 1\nT:"), "{t}");
        assert!(t.contains("\nM:6/8\nK:D\n"), "{t}");
        let judge = &j["judge"];
        assert!(judge["valid"].is_boolean() && judge["form"].is_string() && judge["parts"].is_u64(), "{judge}");
        assert_eq!(judge["meter"], "6/8");
        assert_eq!(judge["key"]["name"], "D");
        // No corpus given: no originality.
        assert!(judge["originality"].is_null(), "{judge}");
    }
    // The same seed gives the same tunes; another seed others.
    assert_eq!(tunes(&generate(addr, body)), got);
    assert_ne!(tunes(&generate(addr, &body.replace("\"rng_seed\": 7", "\"rng_seed\": 8"))), got);
    // Without a seed the server draws one and says which.
    let fresh = generate(addr, r#"{"len": 50}"#).json();
    assert!(fresh["rng_seed"].as_u64().is_some_and(|s| s < 1 << 53), "{fresh}");
    assert_eq!(fresh["tunes"].as_array().unwrap().len(), 1);
}

#[test]
fn a_start_text_is_continued_and_keep_valid_keeps_valid_tunes() {
    let server = http::start(http::options());
    let opening = "X: 1\nT:Test\n% Nottingham Music Database\nS:here\nM:6/8\nK:G\nD|\"G\"GAG GAB|";
    let body = serde_json::json!({"seed": opening, "count": 3, "len": 600, "rng_seed": 3, "keep": "valid"});
    let a = generate(server.addr(), &body.to_string());
    let v = a.json();
    let got = tunes(&a);
    assert!(!got.is_empty(), "{v}");
    for (t, j) in got.iter().zip(v["tunes"].as_array().unwrap()) {
        assert!(t.starts_with(opening), "{t}");
        assert_eq!(j["judge"]["valid"], true, "{t}");
    }
    assert!(v["drawn"].as_u64().unwrap() >= got.len() as u64);
}

/// `"shape": true` gives guided tunes of two 8-bar parts, as `sample --shape` does.
#[test]
fn shape_gives_tunes_of_two_8_bar_parts() {
    let server = http::start(http::options());
    let a = generate(server.addr(), r#"{"count": 2, "len": 1500, "rng_seed": 5, "shape": true}"#);
    let got = tunes(&a);
    assert_eq!(got.len(), 2, "{}", a.text());
    for (t, j) in got.iter().zip(a.json()["tunes"].as_array().unwrap()) {
        assert_eq!(j["judge"]["valid"], true, "{t}");
        let f = folklstm::abc::judge::read_tunes(t).pop().unwrap();
        let bars: Vec<f64> = f.sections.iter().map(|s| s.bars).collect();
        assert!(bars.len() >= 2 && bars.iter().all(|&b| b == 8.0), "{bars:?}\n{t}");
    }
}

/// (body, field, words the message must hold: the limit or the allowed values)
const BAD: &[(&str, &str, &[&str])] = &[
    (r#"{"count": 0}"#, "count", &["1 to 16"]),
    (r#"{"count": 17}"#, "count", &["1 to 16"]),
    (r#"{"count": -1}"#, "count", &["1 to 16"]),
    (r#"{"count": 1.5}"#, "count", &["whole number"]),
    (r#"{"count": "8"}"#, "count", &["whole number"]),
    (r#"{"len": 0}"#, "len", &["1 to 4000"]),
    (r#"{"len": 4001}"#, "len", &["1 to 4000"]),
    (r#"{"temperature": 0}"#, "temperature", &["above 0", "at most 4"]),
    (r#"{"temperature": -1}"#, "temperature", &["above 0"]),
    (r#"{"temperature": 4.01}"#, "temperature", &["at most 4"]),
    (r#"{"temperature": "hot"}"#, "temperature", &["number"]),
    (r#"{"top_k": 0}"#, "top_k", &["1 to 1000"]),
    (r#"{"top_k": 87}"#, "top_k", &["86"]),
    (r#"{"rng_seed": -5}"#, "rng_seed", &["whole number from 0"]),
    (r#"{"rng_seed": 1e30}"#, "rng_seed", &["whole number from 0"]),
    (r#"{"keep": "nice"}"#, "keep", &["valid", "original", "both", "shaped"]),
    (r#"{"keep": "original"}"#, "keep", &["--corpus"]),
    (r#"{"keep": "both"}"#, "keep", &["--corpus"]),
    (r#"{"shape": "yes"}"#, "shape", &["true, false"]),
    (r#"{"meter": "6/0"}"#, "meter", &["6/0"]),
    (r#"{"meter": 68}"#, "meter", &["string"]),
    (r#"{"key": "H"}"#, "key", &["G, Am, Dmix"]),
    (r#"{"title": "two\nlines"}"#, "title", &["one line"]),
    (r#"{"title": "Dollar $"}"#, "title", &["vocabulary", "'$'"]),
    (r#"{"seed": "X: 1\nT:$"}"#, "seed", &["vocabulary", "'$'"]),
    (r#"{"seed": "X: 1\n", "meter": "6/8"}"#, "seed", &["one or the other"]),
    (r#"{"checkpoint": "7"}"#, "checkpoint", &["model/100", "latest"]),
    (r#"{"checkpoint": "../../etc/passwd"}"#, "checkpoint", &["model/100"]),
];

#[test]
fn every_bad_parameter_is_a_400_that_names_the_field_and_its_limit() {
    let server = http::start(http::options());
    let addr = server.addr();
    for (body, field, words) in BAD {
        let a = generate(addr, body);
        assert_eq!(a.status, 400, "{body}: {}", a.text());
        let v = a.json();
        assert_eq!(v["field"], *field, "{body}: {v}");
        let msg = v["error"].as_str().unwrap();
        assert!(msg.starts_with(&format!("{field}: ")), "{body}: {msg}");
        for w in *words {
            assert!(msg.contains(w), "{body}: {msg:?} lacks {w:?}");
        }
    }
    let long = serde_json::json!({ "seed": "a".repeat(2001) }).to_string();
    let a = generate(addr, &long);
    assert_eq!((a.status, a.json()["field"].as_str()), (400, Some("seed")), "{}", a.text());
    assert!(a.text().contains("2000"), "{}", a.text());
    // Not a field, not JSON, not an object, too large.
    for (body, status, words) in [
        (r#"{"cuont": 1}"#, 400, "cuont"),
        ("{count: 1}", 400, "not valid JSON"),
        ("[1, 2]", 400, "JSON object"),
        ("\u{1}", 400, "not valid JSON"),
    ] {
        let a = generate(addr, body);
        assert_eq!(a.status, status, "{body}: {}", a.text());
        assert!(a.json()["error"].as_str().unwrap().contains(words), "{body}: {}", a.text());
    }
    let big = format!("{{\"seed\": \"{}\"}}", "a".repeat(70_000));
    let a = generate(addr, &big);
    assert_eq!(a.status, 413, "{}", a.text());
    assert!(a.text().contains("65536"), "{}", a.text());
    // Wrong method, unknown API, a page of another site.
    let a = get(addr, "/api/generate");
    assert_eq!((a.status, a.header("allow")), (405, Some("POST")));
    assert_eq!(request(addr, "POST", "/api/nothing", b"{}", &[]).status, 404);
    let foreign = request(addr, "POST", "/api/generate", b"{}", &["Origin: http://example.test"]);
    assert_eq!(foreign.status, 403, "{}", foreign.text());
    // The server still answers.
    assert_eq!(tunes(&generate(addr, r#"{"len": 20, "rng_seed": 1}"#)).len(), 1);
}

#[test]
fn a_request_past_the_deadline_is_stopped_and_the_server_goes_on() {
    let server = http::start(folklstm::serve::ServeOptions { timeout: Duration::from_millis(300), ..http::options() });
    let addr = server.addr();
    let t = Instant::now();
    // 16 tunes of up to 4000 characters take far longer than 0.3 s.
    let a = generate(addr, r#"{"count": 16, "len": 4000, "keep": "valid", "rng_seed": 1}"#);
    let took = t.elapsed();
    assert_eq!(a.status, 503, "{}", a.text());
    assert!(a.json()["error"].as_str().unwrap().contains("limit of 0.3 s"), "{}", a.text());
    // Stopped at the deadline (one sampling step and the answer after it), not at the end.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(tunes(&generate(addr, r#"{"len": 10, "rng_seed": 2}"#)).len(), 1);
}

#[test]
fn eight_clients_at_once_each_get_their_own_tunes() {
    let server = http::start(http::options());
    let addr = server.addr();
    let body = |seed: u64| format!(r#"{{"count": 2, "len": 120, "rng_seed": {seed}}}"#);
    let threads: Vec<_> =
        (0..8u64).map(|k| std::thread::spawn(move || tunes(&generate(addr, &body(100 + k))))).collect();
    // The page keeps being served while they run.
    let page = get(addr, "/");
    assert_eq!(page.status, 200);
    let together: Vec<Vec<String>> = threads.into_iter().map(|t| t.join().expect("a client")).collect();
    for (k, got) in together.iter().enumerate() {
        assert_eq!(got.len(), 2);
        // Each client's tunes are the ones its seed gives when asked alone.
        assert_eq!(got, &tunes(&generate(addr, &body(100 + k as u64))), "client {k}");
    }
    let all: std::collections::HashSet<&String> = together.iter().flatten().collect();
    assert_eq!(all.len(), 16, "clients got each other's tunes");
    assert_eq!(get(addr, "/api/info").status, 200);
}

#[test]
fn static_files_cannot_escape_their_folder() {
    let server = http::start(http::options());
    let addr = server.addr();
    let page = get(addr, "/");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(page.text().contains("<title>folklstm</title>"));
    let js = get(addr, "/app.js?v=1");
    assert_eq!((js.status, js.header("content-type")), (200, Some("text/javascript; charset=utf-8")));
    // Cargo.toml lies one folder above the page's; none of these may reach it.
    for path in [
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/%2E%2E/Cargo.toml",
        "/..%2fCargo.toml",
        "/..%2FCargo.toml",
        "/%2e%2e%2fCargo.toml",
        "/..\\Cargo.toml",
        "/..%5cCargo.toml",
        "/./../Cargo.toml",
        "//../Cargo.toml",
        "/web/../../Cargo.toml",
        "/node_modules/../../Cargo.toml",
        "/%2e%2e/%2e%2e/etc/passwd",
        "//etc/passwd",
        "/.gitignore",
        "/app.js%00.html",
    ] {
        let a = get(addr, path);
        assert_eq!(a.status, 404, "{path}: {}", a.text());
        assert!(!a.text().contains("[package]") && !a.text().contains("root:"), "{path} leaked a file");
    }
}

#[test]
fn the_info_lists_the_checkpoints_the_corpus_styles_and_the_limits() {
    let server = http::start(http::options());
    let v = get(server.addr(), "/api/info").json();
    let name = format!("{}/100", http::repo().join("model").display());
    assert_eq!(v["checkpoints"], Value::from(vec![name.clone()]));
    assert_eq!(v["default"], name);
    assert!(v["corpus"].is_null());
    // From model/style.json: jigs, most in D and G.
    assert_eq!(v["meters"][0], "6/8");
    assert_eq!(v["limits"]["count"], 16);
    assert_eq!(v["limits"]["len"], 4000);
    // The checkpoint can be named by its listed name, its epoch or `latest`.
    for spec in [name.as_str(), "100", "latest"] {
        let body = serde_json::json!({"checkpoint": spec, "len": 10, "rng_seed": 4}).to_string();
        assert_eq!(tunes(&generate(server.addr(), &body)).len(), 1, "{spec}");
    }
}

#[test]
fn with_a_corpus_each_verdict_names_the_nearest_training_tune() {
    let Some(data) = common::shared_dir("data") else { return };
    let corpus = data.join("nottingham-jigs.abc");
    let server = http::start(folklstm::serve::ServeOptions { corpus: vec![corpus.clone()], ..http::options() });
    let addr = server.addr();
    assert_eq!(get(addr, "/api/info").json()["corpus"], corpus.display().to_string());
    let a = generate(addr, r#"{"count": 2, "len": 500, "rng_seed": 11, "keep": "both"}"#);
    let v = a.json();
    assert_eq!(tunes(&a).len(), 2, "{v}");
    for t in v["tunes"].as_array().unwrap() {
        let o = &t["judge"]["originality"];
        assert_eq!(o["near_copy"], false, "{o}");
        assert!(o["nearest"].as_str().is_some_and(|n| n.contains("nottingham-jigs.abc")), "{o}");
        assert!(o["similarity"].as_f64().is_some_and(|s| (0.0..1.0).contains(&s)), "{o}");
    }
}

#[test]
fn midi_downloads_come_from_our_own_writer() {
    let server = http::start(http::options());
    let addr = server.addr();
    let abc = "X:1\nT:Scale\nM:4/4\nL:1/4\nK:C\nCDEF|GABc|]\n";
    let a = request(addr, "POST", "/api/midi", serde_json::json!({ "abc": abc }).to_string().as_bytes(), &[]);
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.header("content-type"), Some("audio/midi"));
    let tune = folklstm::abc::parse_tune(abc).unwrap();
    assert_eq!(a.body, folklstm::abc::tune_to_midi(&tune).unwrap());
    let bad = request(addr, "POST", "/api/midi", br#"{"abc": "X:1\nK:C\nC|]]]((\n"}"#, &[]);
    assert_eq!((bad.status, bad.json()["field"].as_str()), (400, Some("abc")), "{}", bad.text());
    let none = request(addr, "POST", "/api/midi", b"{}", &[]);
    assert_eq!((none.status, none.json()["field"].as_str()), (400, Some("abc")));
}

/// Resident memory of a process, from /proc (Linux).
fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn the_binary_serves_and_its_memory_stays_flat_over_200_requests() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    /// The server process, killed and reaped however the test ends.
    struct Serving(std::process::Child);
    impl Drop for Serving {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = common::folk(&http::repo())
        .args(["serve", "--port", "0", "--web-dir"])
        .arg(http::repo().join("web"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
        .spawn()
        .expect("folklstm serve");
    let stdout = child.stdout.take().unwrap();
    let child = Serving(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line).unwrap();
    let url =
        line.split_whitespace().find(|w| w.starts_with("http://")).unwrap_or_else(|| panic!("no URL in {line:?}"));
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
    assert!(addr.ip().is_loopback(), "{addr}: bound beyond this machine without --host");
    let body = |k: usize| format!(r#"{{"count": 2, "len": 40, "rng_seed": {k}}}"#);
    for k in 0..20 {
        assert_eq!(generate(addr, &body(k)).status, 200);
    }
    let Some(before) = rss_kib(child.0.id()) else {
        common::note("serve", "no /proc: memory over 200 requests not measured");
        return;
    };
    let t = Instant::now();
    for k in 0..200 {
        let a = generate(addr, &body(k));
        assert_eq!(a.status, 200, "request {k}: {}", a.text());
    }
    let secs = t.elapsed().as_secs_f64();
    let after = rss_kib(child.0.id()).unwrap();
    drop(child);
    common::note(
        "serve",
        &format!(
            "RSS {before} KiB after 20 warm-up requests, {after} KiB after 200 more ({:+} KiB; {secs:.1} s)",
            after as i64 - before as i64
        ),
    );
    assert!(after < before + 8 * 1024, "RSS grew from {before} KiB to {after} KiB over 200 requests");
}

#[test]
fn serve_refuses_bad_flags_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    // A port already taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for (args, words) in [
        (vec!["--model-dir", empty.to_str().unwrap()], "no checkpoints"),
        (vec!["--timeout", "0"], "--timeout"),
        (vec!["--timeout", "-3"], "--timeout"),
        (vec!["--timeout", "nan"], "--timeout"),
        (vec!["--port", "-1"], "--port"),
        (vec!["--jobs", "0"], "--jobs"),
        (vec!["--web-dir", empty.to_str().unwrap()], "--web-dir"),
        (vec!["--host", "no.such.host.invalid"], "--host"),
        (vec!["--port", port.as_str()], "--port"),
        (vec!["--corpus", empty.to_str().unwrap()], "--corpus"),
    ] {
        let mut child = common::folk(&http::repo())
            .arg("serve")
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A server that started would run on: give it 30 s to refuse.
        let until = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(err.contains(words) && !err.contains("panicked"), "{args:?}: {err}");
    }
}

/// The second model writes every tune on G (`train --tonic G`): the server moves each tune to
/// the key asked, or without one to a key drawn from the corpus's, as `sample` does.
#[test]
fn a_model_on_one_tonic_answers_in_the_key_asked_or_the_corpus_keys() {
    let server =
        http::start(ServeOptions { model_dirs: vec![http::repo().join("model/nottingham")], ..http::options() });
    let addr = server.addr();
    let asked = generate(addr, r#"{"count": 2, "len": 2000, "rng_seed": 3, "meter": "6/8", "key": "D"}"#);
    let v = asked.json();
    for (t, j) in tunes(&asked).iter().zip(v["tunes"].as_array().unwrap()) {
        assert!(t.contains("\nK:D\n") && !t.contains("K:G"), "{t}");
        assert_eq!((&j["judge"]["key"]["name"], &j["judge"]["valid"]), (&Value::from("D"), &Value::from(true)), "{t}");
    }
    let free = generate(addr, r#"{"count": 6, "len": 2000, "rng_seed": 3, "meter": "6/8"}"#).json();
    let corpus_keys = ["G", "D", "A", "C", "F", "Bb", "E", "Am", "Em", "Dm", "Gm", "Bm"];
    let names: Vec<&str> =
        free["tunes"].as_array().unwrap().iter().filter_map(|t| t["judge"]["key"]["name"].as_str()).collect();
    assert_eq!(names.len(), 6, "{free}");
    assert!(names.iter().all(|k| corpus_keys.contains(k)), "{names:?}");
    assert!(names.iter().any(|&k| k != "G" && k != "Gm"), "six tunes all left on G: {names:?}");
}
