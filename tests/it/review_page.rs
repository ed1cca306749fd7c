//! The review page end to end in a real browser (issue 16): headless Chromium driven over WebDriver
//! (chromedriver, both from Debian, installed by scripts/test.sh) opens `faceveil review`, steps to a frame,
//! draws a box, sets its range, saves the edit file; the clip is re-rendered with it and checked on pixels.

use crate::common::*;
use crate::os_args;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Kills a child process when dropped (the review server, chromedriver), whatever the test's outcome.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct WebDriver {
    base: String,
}

impl WebDriver {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let request = ureq::request(method, &url).timeout(Duration::from_secs(60));
        let response = match body {
            Some(b) => request.set("Content-Type", "application/json").send_string(&b.to_string()),
            None => request.call(),
        };
        let text = match response {
            Ok(r) => r.into_string().unwrap(),
            Err(ureq::Error::Status(code, r)) => {
                panic!("WebDriver {method} {path}: {code} {}", r.into_string().unwrap())
            }
            Err(e) => panic!("WebDriver {method} {path}: {e}"),
        };
        serde_json::from_str::<Value>(&text).unwrap()["value"].clone()
    }

    fn element(&self, session: &str, css: &str) -> String {
        let v = self.call(
            "POST",
            &format!("/session/{session}/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT].as_str().unwrap().to_string()
    }

    fn script(&self, session: &str, js: &str) -> Value {
        self.call("POST", &format!("/session/{session}/execute/sync"), Some(json!({"script": js, "args": []})))
    }

    /// Polls `js` until it returns true.
    fn wait_for(&self, session: &str, js: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.script(session, js) != json!(true) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn click(&self, session: &str, css: &str) {
        let id = self.element(session, css);
        self.call("POST", &format!("/session/{session}/element/{id}/click"), Some(json!({})));
    }
}

/// A lossless `frames`-frame clip redacted without tiles, and `faceveil review` started on its output with
/// `extra` options; returns the review process and the page's URL.
fn review_of(
    dir: &std::path::Path,
    frames: u32,
    edits: &std::path::Path,
    extra: &[&str],
) -> (std::path::PathBuf, Killed, String) {
    let input = dir.join("in.mkv");
    make_clip(&input, frames, &lossless_h264(), &[], "");
    let output = dir.join("out.mkv");
    let out = faceveil(os_args!["redact", &input, "-o", &output, "--crf", "0", "--tile-scale", "0"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut review = Killed(
        faceveil_command()
            .args(["review", output.to_str().unwrap(), "--edits", edits.to_str().unwrap()])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(review.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://127.0.0.1:")).expect("the page's URL").to_string();
    (input, review, url)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_box_drawn_on_the_review_page_is_redacted_over_its_range_after_a_re_render_issue_16() {
    let chromedriver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("chromedriver not installed: run scripts/test.sh, which installs chromium and chromium-driver");
    let dir = tempfile::tempdir().unwrap();
    // The review page, on a random port with a token.
    let edits = dir.path().join("edits.json");
    let (input, review, url) = review_of(dir.path(), 20, &edits, &["--no-verify"]);
    assert!(url.contains("?t="), "a token in the URL: {url}");

    let port = free_port();
    let _driver = Killed(
        Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let wd = WebDriver { base: format!("http://127.0.0.1:{port}") };
    let deadline = Instant::now() + Duration::from_secs(30);
    while ureq::get(&format!("{}/status", wd.base)).call().is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let chrome =
        ["/usr/bin/chromium", "/usr/lib/chromium/chromium"].into_iter().find(|p| std::path::Path::new(p).exists());
    let mut options = json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,1000"]});
    if let Some(c) = chrome {
        options["binary"] = json!(c);
    }
    let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}});
    let session = wd.call("POST", "/session", Some(caps))["sessionId"].as_str().unwrap().to_string();
    wd.call("POST", &format!("/session/{session}/url"), Some(json!({"url": url})));
    let first_frame = "const i = document.getElementById('frame'); \
        return document.getElementById('status').textContent === 'ready' && i.complete && i.naturalWidth > 0;";
    wd.wait_for(&session, first_frame, "the page and its first frame");

    // Step to frame 4.
    for _ in 0..4 {
        wd.click(&session, "#next");
    }
    let loaded =
        "const i = document.getElementById('frame'); return document.getElementById('index').textContent === '4' \
                  && i.complete && i.naturalWidth > 0 && i.src.endsWith('n=4');";
    wd.wait_for(&session, loaded, "frame 4");
    // Draw a box from (40, 200) to (120, 280) on the picture (shown at its own size, 640x360): pointer
    // positions are relative to the canvas's centre.
    let canvas = wd.element(&session, "#draw");
    let origin = json!({ELEMENT: canvas});
    let at =
        |x: i64, y: i64| json!({"type": "pointerMove", "duration": 50, "origin": origin, "x": x - 320, "y": y - 180});
    let actions = json!({"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": [
        at(40, 200), {"type": "pointerDown", "button": 0}, at(80, 240), at(120, 280), {"type": "pointerUp", "button": 0}
    ]}]});
    wd.call("POST", &format!("/session/{session}/actions"), Some(actions));
    // Redact it until frame 12, add, save.
    let to = wd.element(&session, "#to");
    wd.call("POST", &format!("/session/{session}/element/{to}/value"), Some(json!({"text": "12"})));
    wd.click(&session, "#add");
    wd.click(&session, "#save");
    wd.wait_for(&session, "return document.getElementById('status').textContent.startsWith('saved');", "the save");
    let _ = wd.call("DELETE", &format!("/session/{session}"), None);
    drop(review);

    let saved: Value = serde_json::from_slice(&std::fs::read(&edits).unwrap()).unwrap();
    let keys = saved["add"][0]["keyframes"].as_array().unwrap();
    assert_eq!((keys[0]["frame"].as_u64(), keys[1]["frame"].as_u64()), (Some(4), Some(12)), "{saved}");
    let b: Vec<i64> = keys[0]["box"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    for (got, want) in b.iter().zip([40, 200, 80, 80]) {
        assert!((got - want).abs() <= 2, "box {b:?} drawn at (40, 200, 80, 80)");
    }

    // Re-render with the saved edits: the region is redacted on frames 4-12 and untouched elsewhere.
    let second = dir.path().join("out2.mkv");
    let out = faceveil(os_args!["redact", &input, "-o", &second, "--crf", "0", "--tile-scale", "0", "--edits", &edits]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (a, r) = (decode_rgb(&input, W, H), decode_rgb(&second, W, H));
    let inner = (55, 215, 105, 265);
    for i in 0..20usize {
        if (4..=12).contains(&i) {
            let kept = detail_kept(&a[i], &r[i], W, inner);
            assert!(kept.abs() < 0.3, "frame {i}: the drawn region keeps {kept:.2} of its detail");
        } else {
            assert_eq!(max_diff(&a[i], &r[i], W, inner), 0, "frame {i}: the region changed outside its range");
        }
    }
}

/// Sends one raw HTTP request to `port` and returns the status code and body.
fn http(port: u16, request: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let code = answer.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}

#[test]
fn the_review_page_serves_at_once_answers_only_its_own_host_and_bounds_connections_issue_33() {
    let dir = tempfile::tempdir().unwrap();
    let edits = dir.path().join("edits.json");
    // With verify (the default): before the fix the page was served only once verify had read the whole video.
    let (input, review, url) = review_of(dir.path(), 100, &edits, &[]);
    let rest = url.trim_start_matches("http://127.0.0.1:");
    let (port, token) = rest.split_once("/?t=").unwrap();
    let port: u16 = port.parse().unwrap();
    let get = |path: &str, host: &str| http(port, &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n"));
    let own = format!("127.0.0.1:{port}");

    // Served at once, verify still running.
    let (code, body) = get(&format!("/info?t={token}"), &own);
    assert_eq!(code, 200, "{body}");
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["verify"]["state"], "running", "{info}");

    // Only its own host, only with the token.
    assert_eq!(get(&format!("/info?t={token}"), "evil.example").0, 421);
    assert_eq!(get(&format!("/info?t={token}"), &format!("evil.example:{port}")).0, 421);
    assert_eq!(get(&format!("/info?t={token}"), &format!("localhost:{port}")).0, 200);
    assert_eq!(get("/info?t=0123", &own).0, 403);
    assert_eq!(get("/info", &own).0, 403);

    // A ninth connection while eight are open and silent is turned away at once.
    let idle: Vec<std::net::TcpStream> = (0..faceveil::review_page::MAX_CONNECTIONS)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(get(&format!("/info?t={token}"), &own).0, 503);
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&format!("/info?t={token}"), &own).0 != 200 {
        assert!(Instant::now() < deadline, "the page did not recover after the idle connections closed");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Saving keep regions says what they do.
    let keep = r#"{"version": 1, "keep": [{"from": 0, "to": 5, "box": [240, 0, 120, 160]}]}"#;
    let (code, body) = http(
        port,
        &format!("POST /edits?t={token} HTTP/1.1\r\nHost: {own}\r\nContent-Length: {}\r\n\r\n{keep}", keep.len()),
    );
    assert_eq!(code, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert!(answer["warning"].as_str().unwrap().contains("UNREDACTED"), "{answer}");
    drop(review);

    // Rendering with them says so too.
    let second = dir.path().join("out2.mkv");
    let out = faceveil(os_args!["redact", &input, "-o", &second, "--tile-scale", "0", "--edits", &edits]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("keeps a region UNREDACTED from frame 0 to frame 5"), "{stderr}");
}
