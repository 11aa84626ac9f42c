//! The page of `folklstm serve` in a real browser: headless Chromium (Debian's package), driven by
//! `web/tests/browser.mjs` (playwright-core), presses Generate for eight tunes and the test checks
//! that each shows sheet music (an SVG with note heads) and a play control, that Play and Stop
//! work, that a locked seed gives the same tunes again, that ABC and MIDI download, that "Use this
//! opening" makes the next tunes continue a tune's opening, that nothing was fetched from outside
//! the server, and that a page folder without `node_modules` falls back to ABC text and downloads
//! with the one-line notice. It saves a screenshot and records the time from Generate to the
//! tunes drawn. Skipped with the reason when Chromium, Node.js or the page's npm packages are
//! missing, unless FOLKLSTM_REQUIRE_BROWSER=1 (set by `.ci/run`).

mod common;

use common::Need;
use common::http;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the browser check needs and lacks here, if anything.
fn missing() -> Option<String> {
    let chromium =
        std::env::var_os("CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !chromium.is_file() {
        return Some(format!("no Chromium at {} (apt-get install chromium, or set CHROMIUM)", chromium.display()));
    }
    if Command::new("node").arg("--version").stdout(Stdio::null()).status().map_or(true, |s| !s.success()) {
        return Some("no node on PATH (Node.js runs the browser script)".into());
    }
    for pkg in ["abcjs", "playwright-core"] {
        if !http::repo().join("web/node_modules").join(pkg).join("package.json").is_file() {
            return Some(format!("web/node_modules/{pkg} is missing (run npm ci --prefix web)"));
        }
    }
    None
}

#[test]
fn the_page_draws_eight_tunes_with_play_controls_in_chromium() {
    if let Some(why) = missing() {
        common::skip(Need::Browser, &why);
        return;
    }
    let server = http::start(http::options());
    let dir = tempfile::tempdir().unwrap();
    let bare = http::page_without_notation(dir.path());
    let fallback = http::start(folklstm::serve::ServeOptions { web_dir: Some(bare), ..http::options() });
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("serve-page.png");
    let _ = std::fs::remove_file(&shot);
    let mut child = Command::new("node")
        .arg(http::repo().join("web/tests/browser.mjs"))
        .arg(format!("{}/", server.url()))
        .arg(&shot)
        .arg(format!("{}/", fallback.url()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    // The script's own waits are bounded; this bounds the whole run.
    let until = Instant::now() + Duration::from_secs(300);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            panic!("the browser script ran past 300 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "browser script failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("the script's report");
    assert_eq!(r["state"], "done", "{}", r["status"]);
    let tunes = r["tunes"].as_array().unwrap();
    assert_eq!(tunes.len(), 8, "{}", r["status"]);
    for (k, t) in tunes.iter().enumerate() {
        assert_eq!(t["svgs"], 1, "tune {}: {t}", k + 1);
        assert!(t["noteheads"].as_u64().unwrap() > 0, "tune {} has no note heads: {t}", k + 1);
        assert_eq!((t["play"].as_bool(), t["tempo"].as_bool()), (Some(true), Some(true)), "tune {}", k + 1);
        assert!(t["abc"].as_str().unwrap().starts_with("X:"), "{t}");
    }
    assert_eq!(r["same_again"], true, "a locked seed gave other tunes");
    assert_eq!((r["playing"].as_bool(), r["stopped"].as_bool()), (Some(true), Some(true)), "Play/Stop: {r}");
    let downloads: Vec<&str> = r["downloads"].as_array().unwrap().iter().filter_map(|d| d.as_str()).collect();
    assert!(downloads.len() == 2 && downloads[0].ends_with(".abc") && downloads[1].ends_with(".mid"), "{downloads:?}");
    // The opening is the first tune's header and first bars, and the next tunes continue it.
    let opening = r["opening"].as_str().unwrap();
    let first = tunes[0]["abc"].as_str().unwrap();
    assert!(first.starts_with(opening) && opening.contains("\nK:") && opening.len() < first.len(), "{opening:?}");
    assert_eq!(r["meter_disabled"], true, "meter stays editable beside a start text");
    let continued = r["continued"].as_array().unwrap();
    assert_eq!(continued.len(), 2, "{r}");
    for t in continued {
        assert!(t.as_str().unwrap().starts_with(opening), "{t}");
    }
    assert_eq!(r["outside"], serde_json::json!([]), "the page fetched from outside the server");
    assert_eq!(r["errors"], serde_json::json!([]), "errors in the page");
    let fb = &r["fallback"];
    assert_eq!(fb["state"], "done", "{fb}");
    assert!(fb["notice"].as_str().is_some_and(|n| n.contains("npm ci --prefix web")), "{fb}");
    let fb_tunes = fb["tunes"].as_array().unwrap();
    assert_eq!(fb_tunes.len(), 2, "{fb}");
    for t in fb_tunes {
        assert_eq!(t["abc_shown"], true, "{t}");
        assert_eq!(t["downloads"], true, "{t}");
        assert_eq!((t["svgs"].as_u64(), t["play"].as_bool()), (Some(0), Some(false)), "{t}");
    }
    assert!(std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000), "no screenshot at {}", shot.display());
    common::note(
        "browser",
        &format!(
            "8 tunes drawn {} ms after Generate ({} ms again, model loaded; {}); screenshot {}",
            r["ms"],
            r["ms_again"],
            r["status"].as_str().unwrap_or(""),
            shot.display()
        ),
    );
}
