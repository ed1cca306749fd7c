//! The local review page (issue 16): `faceveil review OUTPUT [--orig INPUT] [--edits EDITS.json]` serves a
//! page on 127.0.0.1 only, at a random port, behind a random token in the URL. It shows the redacted output
//! frame by frame (scrubber, step, play), `verify`'s findings as marks and shortcuts, and lets the reviewer
//! draw boxes (with a frame range, or "follow"), which it saves as an edit file ([`crate::edits`]) for a
//! re-render with `--edits`. The original is shown only when given, only to this page, and never written.
//! Nothing is sent anywhere else: no network access beyond the loopback socket.
//!
//! The page is served at once: the output's frame times are read, and `verify` runs, in the background; the
//! page shows them as they come. The server answers only requests addressed to `127.0.0.1:PORT` or
//! `localhost:PORT` (a page elsewhere cannot reach it through a name that resolves to this machine), with the
//! token (compared in constant time), and serves at most [`MAX_CONNECTIONS`] connections at once.

use crate::detect::{DetectSettings, Detector};
use crate::edits::Edits;
use crate::io::ffmpeg::input::FrameReader;
use crate::io::write_atomic;
use crate::media::time_code;
use crate::verify::Finding;
use crate::{Error, Result};
use image::RgbImage;
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Pictures are sent at most this wide (upright).
const MAX_WIDTH: u32 = 960;
/// Largest edit file the page may post.
const MAX_BODY: u64 = crate::edits::MAX_FILE_BYTES;
/// Largest request line and headers, in bytes.
const MAX_HEAD: usize = 16 * 1024;
/// Connections served at once; more are answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 8;
/// A connection that sends its request slower than this is closed.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What to review and where the edits go.
#[derive(Debug, Clone)]
pub struct ReviewSettings {
    pub output: PathBuf,
    pub original: Option<PathBuf>,
    /// The edit file the page saves (and loads, if it exists).
    pub edits: PathBuf,
}

impl ReviewSettings {
    /// Refuses an edit file that is the reviewed output or its original: saving would replace a video.
    pub fn validate(&self) -> Result<()> {
        for video in std::iter::once(&self.output).chain(&self.original) {
            if crate::pipeline::same_place(&self.edits, video) {
                return Err(Error::UnsupportedOutput {
                    path: self.edits.clone(),
                    reason: format!("the edit file would replace {}; give it a name of its own", video.display()),
                });
            }
        }
        Ok(())
    }
}

/// `verify` run in the background while the page is served, its findings shown as they are ready.
pub struct VerifyJob {
    pub detector: Box<dyn Detector>,
    pub settings: DetectSettings,
}

impl std::fmt::Debug for VerifyJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyJob").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// Where verify stands, as the page shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
enum VerifyState {
    Off,
    Running,
    Done { findings: Vec<Finding> },
    Failed { error: String },
}

/// What the background readers found so far.
#[derive(Debug)]
struct Progress {
    /// Time code of every frame read so far, and the upright picture size (from the first frame).
    times: Vec<String>,
    size: Option<(u32, u32)>,
    /// Every frame was read; or reading failed with this error.
    complete: bool,
    error: Option<String>,
    verify: VerifyState,
}

#[derive(Serialize)]
struct Info<'a> {
    /// Frames read so far; `complete` once every frame was.
    frames: usize,
    complete: bool,
    error: Option<&'a str>,
    width: u32,
    height: u32,
    /// Time code of every frame read so far.
    times: &'a [String],
    has_original: bool,
    edits_path: String,
    /// The edit file as it is now (JSON text), if it exists.
    edits: Option<String>,
    verify: &'a VerifyState,
}

/// Reads the frames of one video on demand, forward; an earlier frame reopens the file.
struct Frames {
    path: PathBuf,
    reader: Option<FrameReader>,
    next: usize,
    last: Option<(usize, Vec<u8>)>,
}

impl Frames {
    fn new(path: &Path) -> Self {
        Self { path: path.to_path_buf(), reader: None, next: 0, last: None }
    }

    /// Frame `n` as JPEG, at most [`MAX_WIDTH`] wide.
    fn jpeg(&mut self, n: usize) -> Result<Vec<u8>> {
        if let Some((i, bytes)) = &self.last {
            if *i == n {
                return Ok(bytes.clone());
            }
        }
        if self.reader.is_none() || n < self.next {
            self.reader = Some(FrameReader::open(&self.path)?);
            self.next = 0;
        }
        let reader = self.reader.as_mut().ok_or_else(|| Error::Internal("no reader".into()))?;
        loop {
            let Some((_, picture)) = reader.next_frame()? else {
                return Err(Error::bad_input(&self.path, format!("no frame {n}")));
            };
            self.next += 1;
            if self.next == n + 1 {
                let bytes = encode_jpeg(&picture)?;
                self.last = Some((n, bytes.clone()));
                return Ok(bytes);
            }
        }
    }
}

fn encode_jpeg(picture: &RgbImage) -> Result<Vec<u8>> {
    let small;
    let picture = if picture.width() > MAX_WIDTH {
        let h = (u64::from(picture.height()) * u64::from(MAX_WIDTH) / u64::from(picture.width())).max(1) as u32;
        small = image::imageops::resize(picture, MAX_WIDTH, h, image::imageops::FilterType::Triangle);
        &small
    } else {
        picture
    };
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(picture)
        .map_err(|e| Error::Internal(format!("JPEG: {e}")))?;
    Ok(out)
}

/// A token for the URL: 128 random bits from the system.
fn token() -> Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::io("/dev/urandom", e))?;
    Ok(crate::io::hex(&bytes))
}

/// Compares two byte strings in time that depends on their lengths only, not on where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One HTTP request, read whole.
#[derive(Debug)]
struct Request {
    method: String,
    target: String,
    host: Option<String>,
    body: Vec<u8>,
}

/// Why a request could not be read: the status to answer with.
#[derive(Debug)]
struct Refused(u16, &'static str);

/// Reads one request (request line, headers, a body of at most [`MAX_BODY`] bytes given by Content-Length).
fn read_request(stream: &mut TcpStream) -> std::result::Result<Request, Refused> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1024];
    let end = loop {
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if head.len() > MAX_HEAD {
            return Err(Refused(431, "request headers too large"));
        }
        match stream.read(&mut byte) {
            Ok(0) | Err(_) => return Err(Refused(400, "incomplete request")),
            Ok(n) => head.extend_from_slice(&byte[..n]),
        }
    };
    let mut body = head.split_off(end + 4);
    let text = std::str::from_utf8(&head[..end]).map_err(|_| Refused(400, "request is not text"))?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let (method, target) = match (first.next(), first.next(), first.next()) {
        (Some(m), Some(t), Some(v)) if v.starts_with("HTTP/1.") => (m.to_string(), t.to_string()),
        _ => return Err(Refused(400, "bad request line")),
    };
    let (mut host, mut length) = (None, 0u64);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { return Err(Refused(400, "bad header")) };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "host" => host = Some(value.to_string()),
            "content-length" => length = value.parse().map_err(|_| Refused(400, "bad Content-Length"))?,
            "transfer-encoding" => return Err(Refused(411, "send a Content-Length")),
            _ => {}
        }
    }
    if length > MAX_BODY {
        return Err(Refused(413, "request body too large"));
    }
    while (body.len() as u64) < length {
        match stream.read(&mut byte) {
            Ok(0) | Err(_) => return Err(Refused(400, "incomplete request body")),
            Ok(n) => body.extend_from_slice(&byte[..n]),
        }
    }
    body.truncate(length as usize);
    Ok(Request { method, target, host, body })
}

/// Writes one response and closes the connection.
fn respond(mut stream: TcpStream, code: u16, kind: &str, body: &[u8]) {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        411 => "Length Required",
        413 => "Payload Too Large",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n\r\n",
        body.len()
    );
    // A broken connection is the browser's business; the page goes on.
    let _ = stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(body)).and_then(|_| stream.flush());
}

/// A connection slot, given back when the request is answered (or dropped).
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A running review page.
pub struct ReviewServer {
    listener: TcpListener,
    port: u16,
    url: String,
    token: String,
}

impl std::fmt::Debug for ReviewServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReviewServer").field("port", &self.port).finish()
    }
}

impl ReviewServer {
    /// Binds 127.0.0.1 at a random free port.
    pub fn bind() -> Result<Self> {
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|e| Error::Config(format!("cannot listen on 127.0.0.1: {e}")))?;
        let port = listener.local_addr().map_err(|e| Error::io("127.0.0.1", e))?.port();
        listener.set_nonblocking(true).map_err(|e| Error::io("127.0.0.1", e))?;
        let token = token()?;
        Ok(Self { url: format!("http://127.0.0.1:{port}/?t={token}"), listener, port, token })
    }

    /// The page's address, token included.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Serves until `stop` is set. The output's frame times are read, and `verify` (if given) runs, on threads
    /// of their own while the page is already served.
    pub fn serve(self, settings: &ReviewSettings, verify: Option<VerifyJob>, stop: &Arc<AtomicBool>) -> Result<()> {
        settings.validate()?;
        let progress = Arc::new(Mutex::new(Progress {
            times: Vec::new(),
            size: None,
            complete: false,
            error: None,
            verify: if verify.is_some() { VerifyState::Running } else { VerifyState::Off },
        }));
        std::thread::scope(|s| {
            let (scan_progress, output) = (Arc::clone(&progress), settings.output.clone());
            s.spawn(move || scan(&output, &scan_progress, stop));
            if let Some(job) = verify {
                let verify_progress = Arc::clone(&progress);
                let (output, original) = (settings.output.clone(), settings.original.clone());
                s.spawn(move || {
                    let VerifyJob { mut detector, settings } = job;
                    let result =
                        crate::verify::verify_file_until(&output, original.as_deref(), &settings, &mut detector, stop);
                    let mut p = verify_progress.lock().unwrap_or_else(|e| e.into_inner());
                    p.verify = match result {
                        Ok(r) => VerifyState::Done { findings: r.findings },
                        Err(e) => VerifyState::Failed { error: e.to_string() },
                    };
                });
            }
            self.accept_loop(settings, &progress, stop)
        })
    }

    fn accept_loop(&self, settings: &ReviewSettings, progress: &Arc<Mutex<Progress>>, stop: &AtomicBool) -> Result<()> {
        let (tx, rx) =
            crossbeam_channel::bounded::<(TcpStream, std::result::Result<Request, Refused>, Slot)>(MAX_CONNECTIONS);
        let open = Arc::new(AtomicUsize::new(0));
        let mut output = Frames::new(&settings.output);
        let mut original = settings.original.as_deref().map(Frames::new);
        while !stop.load(Ordering::Relaxed) {
            loop {
                match self.listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                            open.fetch_sub(1, Ordering::SeqCst);
                            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                            respond(stream, 503, "text/plain", b"too many connections");
                            continue;
                        }
                        let slot = Slot(Arc::clone(&open));
                        let tx = tx.clone();
                        // Each connection's request is read on a thread of its own (at most MAX_CONNECTIONS), so a
                        // slow one never holds up the others; requests are answered here, one at a time.
                        std::thread::spawn(move || {
                            let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
                            let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
                            let request = read_request(&mut stream);
                            let _ = tx.send((stream, request, slot));
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => break,
                }
            }
            if let Ok((stream, request, slot)) = rx.recv_timeout(Duration::from_millis(20)) {
                match request {
                    Ok(r) => self.answer(stream, r, settings, progress, &mut output, original.as_mut()),
                    Err(Refused(code, why)) => respond(stream, code, "text/plain", why.as_bytes()),
                }
                drop(slot);
            }
        }
        Ok(())
    }

    /// True when the request names this server as its host: `127.0.0.1:PORT` or `localhost:PORT`.
    fn host_ok(&self, host: Option<&str>) -> bool {
        let Some(host) = host else { return false };
        let lower = host.to_ascii_lowercase();
        lower == format!("127.0.0.1:{}", self.port) || lower == format!("localhost:{}", self.port)
    }

    fn answer(
        &self,
        stream: TcpStream,
        request: Request,
        settings: &ReviewSettings,
        progress: &Mutex<Progress>,
        output: &mut Frames,
        original: Option<&mut Frames>,
    ) {
        if !self.host_ok(request.host.as_deref()) {
            return respond(stream, 421, "text/plain", b"this page answers only at 127.0.0.1 and localhost");
        }
        let (path, query) = request.target.split_once('?').unwrap_or((request.target.as_str(), ""));
        let param = |name: &str| {
            query.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
        };
        if !param("t").is_some_and(|t| same_secret(t.as_bytes(), self.token.as_bytes())) {
            return respond(stream, 403, "text/plain", b"forbidden");
        }
        let json = |v: &serde_json::Value| serde_json::to_vec(v).unwrap_or_default();
        match (request.method.as_str(), path) {
            ("GET", "/") => {
                let page = include_str!("review_page.html").replace("{{TOKEN}}", &self.token);
                respond(stream, 200, "text/html; charset=utf-8", page.as_bytes())
            }
            ("GET", "/info") => {
                let edits = crate::edits::read_file(&settings.edits).ok().and_then(|b| String::from_utf8(b).ok());
                let p = progress.lock().unwrap_or_else(|e| e.into_inner());
                let (width, height) = p.size.unwrap_or((0, 0));
                let info = Info {
                    frames: p.times.len(),
                    complete: p.complete,
                    error: p.error.as_deref(),
                    width,
                    height,
                    times: &p.times,
                    has_original: original.is_some(),
                    edits_path: settings.edits.display().to_string(),
                    edits,
                    verify: &p.verify,
                };
                let body = serde_json::to_vec(&info).unwrap_or_default();
                drop(p);
                respond(stream, 200, "application/json", &body)
            }
            ("GET", "/frame") => {
                let n = param("n").and_then(|n| n.parse::<usize>().ok());
                let frames = if param("src").as_deref() == Some("orig") { original } else { Some(output) };
                match (n, frames) {
                    (Some(n), Some(frames)) => match frames.jpeg(n) {
                        Ok(bytes) => respond(stream, 200, "image/jpeg", &bytes),
                        Err(e) => respond(stream, 500, "text/plain", e.to_string().as_bytes()),
                    },
                    _ => respond(stream, 404, "text/plain", b"no such frame"),
                }
            }
            ("POST", "/edits") => {
                let size = progress.lock().unwrap_or_else(|e| e.into_inner()).size;
                let Some((width, height)) = size else {
                    return respond(stream, 503, "text/plain", b"the output is still being read");
                };
                // Checked as a render would check it, before anything is written.
                let checked = Edits::parse(&request.body, width, height, &settings.edits)
                    .and_then(|e| write_atomic(&settings.edits, &request.body).map(|_| e));
                match checked {
                    Ok(e) => {
                        // Keep regions leave faces visible: the page says so, every time it saves them.
                        let kept = e.kept_regions().len();
                        let warning = (kept > 0).then(|| {
                            format!(
                                "{kept} keep region(s) in this file leave detected faces UNREDACTED when it is \
                                 rendered with redact --edits"
                            )
                        });
                        let body = json(
                            &serde_json::json!({"saved": settings.edits.display().to_string(), "warning": warning}),
                        );
                        respond(stream, 200, "application/json", &body)
                    }
                    Err(e) => {
                        respond(stream, 400, "application/json", &json(&serde_json::json!({"error": e.to_string()})))
                    }
                }
            }
            _ => respond(stream, 404, "text/plain", b"not found"),
        }
    }
}

/// Reads every frame's time code and the picture size of `output` into `progress`, frame by frame.
fn scan(output: &Path, progress: &Mutex<Progress>, stop: &AtomicBool) {
    let result = (|| -> Result<()> {
        let mut reader = FrameReader::open(output)?;
        let tb = reader.time_base();
        while let Some((pts, picture)) = reader.next_frame()? {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
            p.size.get_or_insert(picture.dimensions());
            p.times.push(time_code(pts.unwrap_or(0), tb));
        }
        Ok(())
    })();
    let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
    p.complete = true;
    p.error = result.err().map(|e| e.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abcd", b"abcd"));
        assert!(!same_secret(b"abcd", b"abce"));
        assert!(!same_secret(b"abcd", b"abc"));
        assert!(!same_secret(b"", b"a"));
    }
}
