//! Helpers: generating media, probing it, decoding it to pixels, running the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const W: u32 = 640;
pub const H: u32 = 360;
/// The astronaut's face in generated clips (portrait scaled to 360×360 at x = 140): the detector's box is
/// about (268, 41)–(330, 125). `FACE_INNER` is well inside it, `FAR` well away from any mask.
pub const FACE_INNER: (u32, u32, u32, u32) = (282, 62, 318, 108);
pub const FAR: (u32, u32, u32, u32) = (150, 250, 500, 350);
pub const LEFT_BACKGROUND: (u32, u32, u32, u32) = (0, 0, 120, 360);

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn astronaut() -> PathBuf {
    repo().join("assets/astronaut.png")
}

pub fn ffmpeg(args: &[&str]) {
    let out =
        Command::new("ffmpeg").args(["-nostdin", "-loglevel", "error", "-y"]).args(args).output().expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A clip with the astronaut over a moving test pattern and a sine-tone audio track.
/// `video_codec` args select the encoder, `extra_filter` is appended to the video filter chain.
pub fn make_clip(path: &Path, frames: u32, video_codec: &[&str], audio_codec: &[&str], extra_filter: &str) {
    let filter =
        format!("[0:v]scale=360:360[face];[1:v][face]overlay=140:0:shortest=1,format=yuv420p{extra_filter}[v]");
    let n = frames.to_string();
    let portrait = astronaut();
    let mut args: Vec<&str> = vec![
        "-loop",
        "1",
        "-framerate",
        "25",
        "-i",
        portrait.to_str().unwrap(),
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-filter_complex",
        &filter,
        "-map",
        "[v]",
        "-map",
        "2:a",
        "-frames:v",
        &n,
    ];
    args.extend_from_slice(video_codec);
    if audio_codec.is_empty() {
        args.push("-an");
    } else {
        args.extend_from_slice(audio_codec);
        args.push("-shortest");
    }
    args.push(path.to_str().unwrap());
    ffmpeg(&args);
}

/// A 30-frame lossless clip of the astronaut over the moving test pattern, no audio, as `dir/in.mkv`.
pub fn clip30(dir: &Path) -> PathBuf {
    let input = dir.join("in.mkv");
    make_clip(&input, 30, &lossless_h264(), &[], "");
    input
}

pub fn lossless_h264() -> Vec<&'static str> {
    vec!["-c:v", "libx264", "-qp", "0", "-preset", "ultrafast"]
}

fn ffprobe(path: &Path, args: &[&str]) -> String {
    let out = Command::new("ffprobe").args(["-v", "error"]).args(args).arg(path).output().expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe failed on {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Presentation times (seconds, as ffprobe prints them) of every decoded video frame.
pub fn frame_times(path: &Path) -> Vec<f64> {
    ffprobe(path, &["-select_streams", "v:0", "-show_entries", "frame=best_effort_timestamp_time", "-of", "csv=p=0"])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().trim_end_matches(',').parse().expect("timestamp"))
        .collect()
}

/// Presentation times (seconds) of every packet of `stream` (`a:0`, …), in the order stored.
pub fn packet_times(path: &Path, stream: &str) -> Vec<f64> {
    ffprobe(path, &["-select_streams", stream, "-show_entries", "packet=pts_time", "-of", "csv=p=0"])
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect()
}

pub fn packet_count(path: &Path, stream: &str) -> usize {
    ffprobe(path, &["-select_streams", stream, "-show_entries", "packet=pts", "-of", "csv=p=0"])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

pub fn stream_codecs(path: &Path) -> Vec<String> {
    ffprobe(path, &["-show_entries", "stream=codec_type", "-of", "csv=p=0"])
        .lines()
        .map(|l| l.trim().trim_end_matches(',').to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

pub fn probe_entry(path: &Path, entries: &str) -> String {
    ffprobe(path, &["-select_streams", "v:0", "-show_entries", entries, "-of", "default=nw=1"])
}

/// `entries` of every stream of `path`, as ffprobe prints them (one `key=value` a line).
pub fn probe_all(path: &Path, entries: &str) -> String {
    ffprobe(path, &["-show_entries", entries, "-of", "default=nw=1"])
}

/// Every frame of `path` as packed RGB24.
pub fn decode_rgb(path: &Path, w: u32, h: u32) -> Vec<Vec<u8>> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-autorotate", "0", "-i"])
        .arg(path)
        .args(["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "decode failed: {}", String::from_utf8_lossy(&out.stderr));
    let size = (w * h * 3) as usize;
    assert_eq!(out.stdout.len() % size, 0, "decoded size is not a whole number of {w}x{h} frames");
    out.stdout.chunks(size).map(|c| c.to_vec()).collect()
}

/// Mean absolute difference between horizontally adjacent pixels (all channels) in a region: fine detail.
pub fn detail(frame: &[u8], w: u32, r: (u32, u32, u32, u32)) -> f64 {
    let (mut s, mut n) = (0f64, 0f64);
    for y in r.1..r.3 {
        for x in r.0..r.2 - 1 {
            for c in 0..3 {
                let a = frame[((y * w + x) * 3 + c) as usize] as f64;
                let b = frame[((y * w + x + 1) * 3 + c) as usize] as f64;
                s += (a - b).abs();
                n += 1.0;
            }
        }
    }
    s / n
}

/// Share of the original's fine detail that survives in `red` inside a region, as the judge measures it:
/// `<hp_o, hp_r> / <hp_o, hp_o>` with `hp` = grey minus its 5×5 box mean. Uncorrelated grain scores ~0.
pub fn detail_kept(orig: &[u8], red: &[u8], w: u32, r: (u32, u32, u32, u32)) -> f64 {
    let grey = |f: &[u8], x: u32, y: u32| -> f64 {
        let i = ((y * w + x) * 3) as usize;
        0.299 * f[i] as f64 + 0.587 * f[i + 1] as f64 + 0.114 * f[i + 2] as f64
    };
    let hp = |f: &[u8], x: u32, y: u32| -> f64 {
        let mut m = 0.0;
        for dy in 0..5 {
            for dx in 0..5 {
                m += grey(f, x + dx - 2, y + dy - 2);
            }
        }
        grey(f, x, y) - m / 25.0
    };
    let (mut oo, mut or) = (0f64, 0f64);
    for y in r.1.max(2)..r.3 {
        for x in r.0.max(2)..r.2 {
            let (a, b) = (hp(orig, x, y), hp(red, x, y));
            oo += a * a;
            or += a * b;
        }
    }
    if oo <= 1e-6 {
        0.0
    } else {
        or / oo
    }
}

/// Largest per-channel difference between two frames inside a region.
pub fn max_diff(a: &[u8], b: &[u8], w: u32, r: (u32, u32, u32, u32)) -> u8 {
    let mut m = 0u8;
    for y in r.1..r.3 {
        for x in r.0..r.2 {
            for c in 0..3 {
                let i = ((y * w + x) * 3 + c) as usize;
                m = m.max(a[i].abs_diff(b[i]));
            }
        }
    }
    m
}

/// The faceveil binary with a clean environment (no variables that could change where it looks).
pub fn faceveil_command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_faceveil"));
    c.env_remove("FACEVEIL_ORT_LIB").env_remove("ORT_DYLIB_PATH").env_remove("FACEVEIL_MODEL").env_remove("RUST_LOG");
    c
}

/// Runs the faceveil binary with a clean environment and waits for it.
pub fn faceveil(args: &[&std::ffi::OsStr]) -> Output {
    faceveil_command().args(args).output().expect("faceveil runs")
}

/// The options string x264 writes into the stream it encodes (its SEI), as in `x264 - core … subme=2 …`.
pub fn x264_options_of(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let at = text.find("x264 - core").expect("x264's options in the stream");
    text[at..].split('\0').next().unwrap_or_default().to_string()
}

#[macro_export]
macro_rules! os_args {
    ($($a:expr),* $(,)?) => { &[$(std::ffi::OsStr::new($a)),*] };
}

/// Files in `dir` (names), sorted.
pub fn list_dir(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// The default detector's hash in reports: CenterFace fp32 (whole frame) and YuNet-s (small faces).
pub fn default_models_sha256() -> String {
    format!("{}+{}", faceveil::detect::CENTERFACE_FP32.sha256, faceveil::detect::YUNET_S.sha256)
}
