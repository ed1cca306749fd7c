//! The local review page (issue 16): `faceveil review OUTPUT [--orig INPUT] [--edits EDITS.json]` serves a
//! page on 127.0.0.1 only, at a random port, behind a random token in the URL. It shows the redacted output
//! frame by frame (scrubber, step, play), `verify`'s findings as marks and shortcuts, and lets the reviewer
//! draw boxes (with a frame range, or "follow"), which it saves as an edit file ([`crate::edits`]) for a
//! re-render with `--edits`. The original is shown only when given, only to this page, and never written.
//! Nothing is sent anywhere else: no network access beyond the loopback socket.

use crate::edits::Edits;
use crate::io::ffmpeg::input::FrameReader;
use crate::io::write_atomic;
use crate::media::time_code;
use crate::verify::Finding;
use crate::{Error, Result};
use image::RgbImage;
use serde::Serialize;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Pictures are sent at most this wide (upright).
const MAX_WIDTH: u32 = 960;
/// Largest edit file the page may post.
const MAX_BODY: u64 = 1 << 20;

/// What to review and where the edits go.
#[derive(Debug, Clone)]
pub struct ReviewSettings {
    pub output: PathBuf,
    pub original: Option<PathBuf>,
    /// The edit file the page saves (and loads, if it exists).
    pub edits: PathBuf,
    /// Findings of `verify` to mark (frame numbers of the output).
    pub findings: Vec<Finding>,
}

#[derive(Serialize)]
struct Info<'a> {
    frames: usize,
    width: u32,
    height: u32,
    /// Time code of every frame.
    times: &'a [String],
    has_original: bool,
    edits_path: String,
    /// The edit file as it is now (JSON text), if it exists.
    edits: Option<String>,
    findings: &'a [Finding],
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

/// A running review page.
pub struct ReviewServer {
    server: tiny_http::Server,
    url: String,
    token: String,
}

impl std::fmt::Debug for ReviewServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReviewServer").field("port", &self.server.server_addr().to_ip().map(|a| a.port())).finish()
    }
}

impl ReviewServer {
    /// Binds 127.0.0.1 at a random free port.
    pub fn bind() -> Result<Self> {
        let server = tiny_http::Server::http("127.0.0.1:0")
            .map_err(|e| Error::Config(format!("cannot listen on 127.0.0.1: {e}")))?;
        let port = server.server_addr().to_ip().map(|a| a.port()).unwrap_or_default();
        let token = token()?;
        Ok(Self { url: format!("http://127.0.0.1:{port}/?t={token}"), server, token })
    }

    /// The page's address, token included.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Serves until `stop` is set (checked every 200 ms).
    pub fn serve(self, settings: &ReviewSettings, stop: &Arc<AtomicBool>) -> Result<()> {
        // Every frame's time code, and the picture size, from one pass over the output.
        let mut reader = FrameReader::open(&settings.output)?;
        let tb = reader.time_base();
        let (mut times, mut size) = (Vec::new(), (0, 0));
        while let Some((pts, picture)) = reader.next_frame()? {
            size = picture.dimensions();
            times.push(time_code(pts, tb));
        }
        drop(reader);
        let mut output = Frames::new(&settings.output);
        let mut original = settings.original.as_deref().map(Frames::new);
        while !stop.load(Ordering::Relaxed) {
            let Ok(Some(request)) = self.server.recv_timeout(std::time::Duration::from_millis(200)) else { continue };
            // A broken connection is the browser's business; the page goes on.
            let _ = self.answer(request, settings, &times, size, &mut output, original.as_mut());
        }
        Ok(())
    }

    fn answer(
        &self,
        mut request: tiny_http::Request,
        settings: &ReviewSettings,
        times: &[String],
        (width, height): (u32, u32),
        output: &mut Frames,
        original: Option<&mut Frames>,
    ) -> std::io::Result<()> {
        let url = request.url().to_string();
        let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
        let param = |name: &str| {
            query.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
        };
        let respond = |request: tiny_http::Request, code: u16, kind: &str, body: Vec<u8>| {
            let header = tiny_http::Header::from_bytes("Content-Type", kind).ok();
            let mut r = tiny_http::Response::from_data(body).with_status_code(code);
            if let Some(h) = header {
                r = r.with_header(h);
            }
            request.respond(r)
        };
        if param("t").as_deref() != Some(self.token.as_str()) {
            return respond(request, 403, "text/plain", b"forbidden".to_vec());
        }
        let json = |v: &serde_json::Value| serde_json::to_vec(v).unwrap_or_default();
        match (request.method(), path) {
            (tiny_http::Method::Get, "/") => {
                let page = include_str!("review_page.html").replace("{{TOKEN}}", &self.token);
                respond(request, 200, "text/html; charset=utf-8", page.into_bytes())
            }
            (tiny_http::Method::Get, "/info") => {
                let info = Info {
                    frames: times.len(),
                    width,
                    height,
                    times,
                    has_original: original.is_some(),
                    edits_path: settings.edits.display().to_string(),
                    edits: std::fs::read_to_string(&settings.edits).ok(),
                    findings: &settings.findings,
                };
                respond(request, 200, "application/json", serde_json::to_vec(&info).unwrap_or_default())
            }
            (tiny_http::Method::Get, "/frame") => {
                let n = param("n").and_then(|n| n.parse::<usize>().ok()).filter(|&n| n < times.len());
                let frames = if param("src").as_deref() == Some("orig") { original } else { Some(output) };
                match (n, frames) {
                    (Some(n), Some(frames)) => match frames.jpeg(n) {
                        Ok(bytes) => respond(request, 200, "image/jpeg", bytes),
                        Err(e) => respond(request, 500, "text/plain", e.to_string().into_bytes()),
                    },
                    _ => respond(request, 404, "text/plain", b"no such frame".to_vec()),
                }
            }
            (tiny_http::Method::Post, "/edits") => {
                let mut body = Vec::new();
                request.as_reader().take(MAX_BODY).read_to_end(&mut body)?;
                // Checked as a render would check it, before anything is written.
                let checked = Edits::parse(&body, width, height, &settings.edits)
                    .and_then(|_| write_atomic(&settings.edits, &body));
                match checked {
                    Ok(()) => respond(
                        request,
                        200,
                        "application/json",
                        json(&serde_json::json!({"saved": settings.edits.display().to_string()})),
                    ),
                    Err(e) => {
                        respond(request, 400, "application/json", json(&serde_json::json!({"error": e.to_string()})))
                    }
                }
            }
            _ => respond(request, 404, "text/plain", b"not found".to_vec()),
        }
    }
}
