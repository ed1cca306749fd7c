//! Live streams: any FFmpeg input (standard input, a pipe, `udp://`, `rtsp://`, a v4l2 device, a growing
//! file) redacted with bounded delay into fixed-length segment files, each of which appears atomically
//! (hidden temporary file, then rename), or into MPEG-TS on standard output. A recorder that stores only
//! what appears under the segment names never stores an unredacted frame.

use super::pace::{LatencyHistogram, LiveEvent, Watch};
use super::video::{run_stages, Run};
use crate::config::Options;
use crate::detect::Detector;
use crate::io::ffmpeg::input::open_url;
use crate::io::ffmpeg::output::{plan, FileSink, Sink};
pub use crate::io::ffmpeg::segments::SegmentNamer;
use crate::io::ffmpeg::segments::{temp_name, SegmentSink};
use crate::media::MediaKind;
use crate::{Error, Result};
use ff::{format, Rational, Rescale};
use ffmpeg_next as ff;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where a stream's redacted video goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamOutput {
    /// MPEG-TS on standard output.
    Stdout,
    /// Segment files of `seconds` each, named by `pattern`: `{n}` is the segment number (5 digits) and
    /// `strftime` fields (`%Y%m%d-%H%M%S`) give the segment's start in UTC. The extension picks the
    /// container (`.mp4`, `.mkv`, `.ts`, `.mov`).
    Segments { pattern: String, seconds: u32 },
}

/// How a live input is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSettings {
    /// An input that delivers nothing for this long has stalled: the run ends with an error, keeping the
    /// segments finished so far (with `follow`, it is the normal end of a file that stopped growing).
    pub stall_timeout: Duration,
    /// Read a file that is still being written, waiting at its end for more.
    pub follow: bool,
    /// Pace detection against the wall clock, degrading (never passing frames unredacted) when the machine
    /// falls behind. Meant for live sources; off, a file is processed at whatever speed the machine has.
    pub realtime: bool,
    /// Hold detection at this effort level (0 full … 3, see [`Effort`](crate::analyse::Effort)) whatever the
    /// lag, with `realtime`: to measure, and to judge, what a machine too slow for its camera writes (every
    /// held frame below 0 is redacted as a reduced one: masks enlarged, what changed covered).
    pub hold_effort: Option<u8>,
    /// FFmpeg input format, where probing cannot tell (`v4l2` for a camera device, `rawvideo`).
    pub input_format: Option<String>,
    /// FFmpeg demuxer and protocol options for the input (`video_size`, `framerate`, `rtsp_transport`, …).
    pub input_options: Vec<(String, String)>,
}

impl LiveSettings {
    pub fn validate(&self) -> Result<()> {
        match self.hold_effort {
            Some(level) if level > 3 => {
                return Err(Error::Config(format!("invalid effort level {level} to hold (expected 0 to 3)")))
            }
            Some(_) if !self.realtime => {
                return Err(Error::Config("an effort level is held only in a paced run (--realtime on)".into()))
            }
            _ => {}
        }
        if self.stall_timeout < Duration::from_secs(1) {
            return Err(Error::Config(format!(
                "invalid stall timeout {} ms (expected >= 1 s)",
                self.stall_timeout.as_millis()
            )));
        }
        Ok(())
    }
}

/// What a stream run tells its caller while it runs, and how the caller stops it.
pub struct StreamHooks<'a> {
    /// Set (as a SIGINT/SIGTERM handler does) to end the run: the segment being written is finished first.
    pub stop: Arc<AtomicBool>,
    /// Effort changes and per-frame latencies.
    pub log: &'a (dyn Fn(LiveEvent) + Sync),
    /// Each segment file as it is completed.
    pub on_segment: &'a (dyn Fn(&Path) + Sync),
}

impl std::fmt::Debug for StreamHooks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamHooks").field("stop", &self.stop).finish_non_exhaustive()
    }
}

impl Default for LiveSettings {
    fn default() -> Self {
        Self {
            stall_timeout: Duration::from_secs(10),
            follow: false,
            realtime: true,
            hold_effort: None,
            input_format: None,
            input_options: Vec::new(),
        }
    }
}

/// What a stream run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamReport {
    pub input: String,
    /// The stream's frame rate as its container states it (`null`: not stated; taken as 25 fps).
    pub frame_rate: Option<crate::FrameRate>,
    /// Frames bridged before and after each detection, and the small-face tiles' period, at that rate: a
    /// frame is held back `bridge_frames` + 1 frames (12 at 50 fps, 240 ms as 6 at 25 fps).
    pub bridge_frames: u32,
    pub tile_period: u32,
    pub frames: u64,
    pub frames_redacted: u64,
    pub frames_with_faces: u64,
    pub detections: u64,
    /// Frames analysed with reduced effort (and enlarged masks) because the run fell behind real time.
    pub frames_degraded: u64,
    /// Frames analysed at each effort level: full, tiles half as often, a quarter as often without focus
    /// passes, every other frame ([`Effort`](crate::analyse::Effort)).
    pub frames_by_effort: [u64; 4],
    /// Frames with regions covered whole because no small-face search reached them in time (see
    /// [`Verdict::cover`](crate::analyse::Verdict::cover)): most of the degraded frames, and the last frames.
    pub frames_covered: u64,
    pub frames_blanked: u64,
    /// Segment files completed, in order (empty for standard output).
    pub segments: Vec<PathBuf>,
    /// Media time covered, from the first frame's timestamp to the last's, in milliseconds.
    pub media_ms: u64,
    /// Time from reading the first frame to writing the last, in milliseconds.
    pub wall_ms: u64,
    /// Ended by the stop flag (a signal), not by the input.
    pub stopped: bool,
    /// Media time processed per wall-clock time: above 1 the machine keeps up with a live source.
    pub realtime_factor: f64,
    /// End-to-end frame latency (read from the input to written out), when the run was paced in real time.
    pub latency_ms_p50: Option<u64>,
    pub latency_ms_p95: Option<u64>,
    pub latency_ms_max: f64,
    /// The inference runtime, provider and precision that ran the model.
    pub runtime: Option<String>,
    /// Every model that ran: passes and detector input pixels.
    pub models: Vec<crate::detect::ModelUsage>,
    pub warnings: Vec<String>,
}

/// Redacts the stream at `input` (an FFmpeg URL or path; `-` is standard input) into `output` until the input
/// ends, stalls, breaks, or `hooks.stop` is set (as a SIGINT/SIGTERM handler does). In every case the segment being
/// written is finished as a valid file first. A broken or stalled input is an error returned after that,
/// naming the input; the segments listed in the error's report remain. The encoder runs at
/// `options.encode.preset` with x264's zero-latency tuning: for a live camera, set it to
/// [`LIVE_PRESET`](crate::config::LIVE_PRESET), as `faceveil stream` does (the default, `faster`, is the files').
// The error carries the report of what was done before it (segments finished), which callers need.
#[allow(clippy::result_large_err)]
pub fn redact_stream(
    input: &str,
    output: &StreamOutput,
    options: &Options,
    live: &LiveSettings,
    detector: &mut dyn Detector,
    hooks: StreamHooks<'_>,
) -> std::result::Result<StreamReport, (Error, StreamReport)> {
    let fail = |e: Error| (e, StreamReport { input: input.to_string(), ..Default::default() });
    options.validate().map_err(fail)?;
    live.validate().map_err(fail)?;
    options.redact.require_redaction("a live recording").map_err(fail)?;
    detector.prepare_for(MediaKind::Video);
    let usage_before = detector.usage();
    let StreamHooks { stop, log: user_log, on_segment } = hooks;
    // Latencies are kept here for the report; every event goes on to the caller.
    let latency = Mutex::new(LatencyHistogram::default());
    let log = |event: LiveEvent| {
        if let LiveEvent::Latency { ms, .. } = event {
            if let Ok(mut h) = latency.lock() {
                h.add(ms);
            }
        }
        user_log(event)
    };
    let log: &(dyn Fn(LiveEvent) + Sync) = &log;
    let started = Instant::now();
    let label = PathBuf::from(if input == "-" { "standard input" } else { input });
    let namer = match output {
        StreamOutput::Segments { pattern, seconds } => Some(SegmentNamer::new(pattern, *seconds).map_err(fail)?),
        StreamOutput::Stdout => None,
    };

    let watch = Arc::new(Watch::new(stop, live.stall_timeout));
    // Restored when this function returns, whichever way.
    let _stdin_mode = if input == "-" {
        Some(set_nonblocking_stdin().map_err(|e| fail(Error::io("standard input", e)))?)
    } else {
        None
    };
    let url = if input == "-" { "pipe:0".to_string() } else { input.to_string() };
    let mut protocol: Vec<(&str, String)> = live.input_options.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    if live.follow {
        protocol.push(("follow", "1".into()));
    }
    if url.starts_with("udp://") {
        // A receive buffer of about 48 MB (in 188-byte units) rides out detection bursts; if it still
        // overflows, the lost data is counted as damage instead of ending the stream.
        protocol.push(("fifo_size", "262144".into()));
        protocol.push(("overrun_nonfatal", "1".into()));
    }
    let opened = {
        let w = Arc::clone(&watch);
        open_url(&url, &label, live.input_format.as_deref(), &protocol, move || w.should_abort()).map_err(|e| {
            if watch.stalled.load(Ordering::Relaxed) {
                fail(Error::bad_input(
                    &label,
                    format!("no data for {} s: the input stalled", live.stall_timeout.as_secs()),
                ))
            } else {
                fail(e)
            }
        })?
    };

    let first_name = namer.as_ref().map(|n| n.name(0)).transpose().map_err(fail)?;
    let (octx, target) = match &first_name {
        Some(name) => {
            let tmp = temp_name(name);
            let octx = format::output(&tmp).map_err(|e| {
                fail(Error::Encode { path: name.clone(), reason: format!("cannot create segment: {e}") })
            })?;
            (octx, tmp)
        }
        None => {
            let octx = format::output_as(&"pipe:1", "mpegts").map_err(|e| {
                fail(Error::Encode {
                    path: "standard output".into(),
                    reason: format!("cannot open MPEG-TS output: {e}"),
                })
            })?;
            (octx, PathBuf::from("standard output"))
        }
    };
    let (engine, layout) = plan(&label, &opened, &octx, options, true).map_err(fail)?;
    let enc_tb = layout.enc_tb;
    let mut segments = Vec::new();
    let outcome = {
        let mut sink: Box<dyn Sink> = match (namer, first_name) {
            (Some(namer), Some(name)) => Box::new(
                SegmentSink::start(octx, target, name, namer, layout, &mut segments, on_segment).map_err(fail)?,
            ),
            _ => Box::new(FileSink::open(&target, octx, &layout).map_err(fail)?),
        };
        let run = Run {
            input: &label,
            options,
            live: live.realtime.then_some(log),
            hold_effort: live.hold_effort,
            watch: Some(&watch),
            review: None,
            progress: None,
            edits: None,
        };
        run_stages(run, opened, engine, sink.as_mut(), detector)
    };
    let mut report = StreamReport { input: input.to_string(), segments, ..Default::default() };
    let outcome = outcome.map_err(|e| (e, report.clone()))?;
    let (dec, core) = (&outcome.decode, &outcome.core);
    report.frames = dec.frames;
    report.frame_rate = outcome.rate;
    let schedule = options.schedule(outcome.rate);
    (report.bridge_frames, report.tile_period) = (schedule.bridge_frames, schedule.tile_period);
    report.frames_redacted = core.frames_redacted;
    report.frames_with_faces = core.frames_with_faces;
    report.detections = core.detections;
    report.frames_degraded = core.frames_degraded;
    report.frames_by_effort = core.frames_by_effort;
    report.frames_covered = core.frames_covered;
    report.frames_blanked = core.frames_blanked;
    report.media_ms = dec.media_span.rescale(enc_tb, Rational(1, 1000)).max(0) as u64;
    // From the first frame read to the last written: the time spent processing, without the wait for the
    // stream to start or for a stalled one to be given up.
    // The last frames wait in the look-ahead until the input ends: a stall's wait is not processing time.
    let stall_wait = if watch.stalled.load(Ordering::Relaxed) { live.stall_timeout } else { Duration::ZERO };
    report.wall_ms = match dec.first_read {
        Some(a) => outcome.finished_at.saturating_duration_since(a).saturating_sub(stall_wait).as_millis() as u64,
        None => started.elapsed().as_millis() as u64,
    };
    if report.wall_ms > 0 {
        report.realtime_factor = report.media_ms as f64 / report.wall_ms as f64;
    }
    if let Ok(h) = latency.lock() {
        (report.latency_ms_p50, report.latency_ms_p95) = (h.percentile(0.5), h.percentile(0.95));
        report.latency_ms_max = h.max_ms();
    }
    report.stopped = dec.stopped;
    report.runtime = detector.runtime().map(|r| r.to_string());
    report.models = crate::detect::ModelUsage::since(&detector.usage(), &usage_before);
    report.warnings = outcome.warnings.clone();
    match &dec.input_error {
        Some(e) if !(live.follow && watch.stalled.load(Ordering::Relaxed)) => {
            Err((Error::bad_input(&label, format!("the input broke off after {} frame(s): {e}", dec.frames)), report))
        }
        _ => Ok(report),
    }
}

/// Makes standard input non-blocking, so that FFmpeg's waits on it can be interrupted (stop, stall).
/// Standard input switched to non-blocking reads for the run, and switched back when dropped: the library
/// leaves the process's descriptors as it found them (a shell reading the same terminal afterwards would
/// otherwise get EAGAIN).
struct NonBlockingStdin {
    saved: libc::c_int,
}

impl Drop for NonBlockingStdin {
    fn drop(&mut self) {
        // SAFETY: restores the status flags read from descriptor 0 in `set_nonblocking_stdin`.
        unsafe {
            libc::fcntl(0, libc::F_SETFL, self.saved);
        }
    }
}

fn set_nonblocking_stdin() -> std::io::Result<NonBlockingStdin> {
    // SAFETY: fcntl on descriptor 0 with F_GETFL/F_SETFL only changes its status flags.
    unsafe {
        let flags = libc::fcntl(0, libc::F_GETFL);
        if flags < 0 || libc::fcntl(0, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(NonBlockingStdin { saved: flags })
    }
}
