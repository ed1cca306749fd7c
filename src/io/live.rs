//! Live streams: any FFmpeg input (standard input, a pipe, `udp://`, `rtsp://`, a v4l2 device, a growing
//! file) redacted with bounded delay into fixed-length segment files, each of which appears atomically
//! (hidden temporary file, then rename), or into MPEG-TS on standard output. A recorder that stores only
//! what appears under the segment names never stores an unredacted frame.

use super::video::{self, write_copied, FileSink, Layout, LiveEvent, OutputStreams, Run, Sink, Watch};
use crate::config::Options;
use crate::detect::Detector;
use crate::{Error, Result};
use ff::{format, Packet, Rational, Rescale};
use ffmpeg_next as ff;
use serde::Serialize;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
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
    /// FFmpeg input format, where probing cannot tell (`v4l2` for a camera device, `rawvideo`).
    pub input_format: Option<String>,
    /// FFmpeg demuxer and protocol options for the input (`video_size`, `framerate`, `rtsp_transport`, …).
    pub input_options: Vec<(String, String)>,
}

impl Default for LiveSettings {
    fn default() -> Self {
        Self {
            stall_timeout: Duration::from_secs(10),
            follow: false,
            realtime: true,
            input_format: None,
            input_options: Vec::new(),
        }
    }
}

/// What a stream run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamReport {
    pub input: String,
    pub frames: u64,
    pub frames_redacted: u64,
    pub frames_with_faces: u64,
    pub detections: u64,
    /// Frames analysed with reduced effort (and enlarged masks) because the run fell behind real time.
    pub frames_degraded: u64,
    pub frames_blanked: u64,
    /// Segment files completed, in order (empty for standard output).
    pub segments: Vec<PathBuf>,
    /// Media time covered, from the first frame's timestamp to the last's, in milliseconds.
    pub media_ms: u64,
    /// Time from reading the first frame to writing the last, in milliseconds.
    pub wall_ms: u64,
    /// Ended by the stop flag (a signal), not by the input.
    pub stopped: bool,
    pub warnings: Vec<String>,
}

impl StreamReport {
    /// Media time processed per wall-clock time: above 1 the machine keeps up with a live source.
    pub fn realtime_factor(&self) -> f64 {
        if self.wall_ms == 0 {
            0.0
        } else {
            self.media_ms as f64 / self.wall_ms as f64
        }
    }
}

/// Redacts the stream at `input` (an FFmpeg URL or path; `-` is standard input) into `output` until the input
/// ends, stalls, breaks, or `stop` is set (as a SIGINT/SIGTERM handler does). In every case the segment being
/// written is finished as a valid file first. A broken or stalled input is an error returned after that,
/// naming the input; the segments listed in the error's report remain.
// The error carries the report of what was done before it (segments finished), which callers need.
#[allow(clippy::too_many_arguments, clippy::result_large_err)]
pub fn redact_stream(
    input: &str,
    output: &StreamOutput,
    options: &Options,
    live: &LiveSettings,
    detector: &mut dyn Detector,
    stop: Arc<AtomicBool>,
    log: &(dyn Fn(LiveEvent) + Sync),
    on_segment: &(dyn Fn(&Path) + Sync),
) -> std::result::Result<StreamReport, (Error, StreamReport)> {
    let fail = |e: Error| (e, StreamReport { input: input.to_string(), ..Default::default() });
    options.validate().map_err(fail)?;
    options.redact.require_redaction("a live recording").map_err(fail)?;
    detector.prepare_for(crate::report::MediaKind::Video);
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
        video::open_url(&url, &label, live.input_format.as_deref(), &protocol, move || w.should_abort()).map_err(
            |e| {
                if watch.stalled.load(std::sync::atomic::Ordering::Relaxed) {
                    fail(Error::bad_input(
                        &label,
                        format!("no data for {} s: the input stalled", live.stall_timeout.as_secs()),
                    ))
                } else {
                    fail(e)
                }
            },
        )?
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
    let (engine, layout) = video::plan(&label, &opened, &octx, options, true).map_err(fail)?;
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
            watch: Some(&watch),
            review: None,
            progress: None,
        };
        video::run_stages(run, opened, engine, sink.as_mut(), detector)
    };
    let mut report = StreamReport { input: input.to_string(), segments, ..Default::default() };
    let outcome = outcome.map_err(|e| (e, report.clone()))?;
    let (dec, det) = (&outcome.decode, &outcome.detect);
    report.frames = dec.frames;
    report.frames_redacted = outcome.redacted;
    report.frames_with_faces = det.frames_with_faces;
    report.detections = det.detections;
    report.frames_degraded = det.frames_degraded;
    report.frames_blanked = det.frames_blanked;
    report.media_ms = dec.media_span.rescale(enc_tb, Rational(1, 1000)).max(0) as u64;
    // From the first frame read to the last written: the time spent processing, without the wait for the
    // stream to start or for a stalled one to be given up.
    // The last frames wait in the look-ahead until the input ends: a stall's wait is not processing time.
    let stall_wait =
        if watch.stalled.load(std::sync::atomic::Ordering::Relaxed) { live.stall_timeout } else { Duration::ZERO };
    report.wall_ms = match (dec.first_read, outcome.finished_at) {
        (Some(a), Some(b)) => b.saturating_duration_since(a).saturating_sub(stall_wait).as_millis() as u64,
        _ => started.elapsed().as_millis() as u64,
    };
    report.stopped = dec.stopped;
    report.warnings = outcome.warnings.clone();
    match &dec.input_error {
        Some(e) if !(live.follow && watch.stalled.load(std::sync::atomic::Ordering::Relaxed)) => {
            Err((Error::bad_input(&label, format!("the input broke off after {} frame(s): {e}", dec.frames)), report))
        }
        _ => Ok(report),
    }
}

/// Hidden temporary name beside `path`, renamed to `path` when the segment is complete.
fn temp_name(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = path.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.partial.{ext}"))
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

/// Segment file names from a pattern with `{n}` and strftime fields.
#[derive(Debug)]
pub struct SegmentNamer {
    pattern: String,
    seconds: u32,
}

impl SegmentNamer {
    /// Checks the pattern: it must name a container, tell segments apart (`{n}` or a seconds field) and hold
    /// only valid strftime fields.
    pub fn new(pattern: &str, seconds: u32) -> Result<Self> {
        let bad = |why: &str| Error::Config(format!("output pattern {pattern:?}: {why}"));
        if seconds == 0 || seconds > 86_400 {
            return Err(Error::Config(format!("invalid segment length {seconds} s (expected >= 1, <= 86400)")));
        }
        let ext = Path::new(pattern).extension().and_then(|e| e.to_str()).unwrap_or("");
        if !["mp4", "mkv", "ts", "mov"].contains(&ext.to_ascii_lowercase().as_str()) {
            return Err(bad("must end in .mp4, .mkv, .ts or .mov"));
        }
        if !["{n}", "%S", "%s", "%T"].iter().any(|field| pattern.contains(field)) {
            return Err(bad("must tell segments apart with {n} (segment number) or a seconds field such as %S"));
        }
        let items = chrono::format::StrftimeItems::new(pattern);
        if items.into_iter().any(|i| matches!(i, chrono::format::Item::Error)) {
            return Err(bad("holds an invalid % field"));
        }
        Ok(Self { pattern: pattern.to_string(), seconds })
    }

    /// The name of segment `n` starting now. An existing file is never replaced.
    pub fn name(&self, n: u32) -> Result<PathBuf> {
        let with_n = self.pattern.replace("{n}", &format!("{n:05}"));
        let name = PathBuf::from(chrono::Utc::now().format(&with_n).to_string());
        if name.exists() {
            return Err(Error::OutputExists { path: name });
        }
        if let Some(dir) = name.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(Error::io(dir, std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder")));
            }
        }
        Ok(name)
    }
}

/// One segment being written.
struct Segment {
    octx: format::context::Output,
    streams: OutputStreams,
    tmp: PathBuf,
    path: PathBuf,
    /// Encoder timestamp at which the segment starts (its timestamps are written from zero).
    start: Option<i64>,
    /// A segment without video is not kept.
    has_video: bool,
}

/// Writes segment after segment; a new one starts at the first keyframe at or after each boundary (the mux
/// stage forces one there). Copied packets (audio) run ahead of the video by the pipeline's depth, so they
/// wait here until the video has passed their time and go into the segment their time belongs to.
struct SegmentSink<'a> {
    current: Option<Segment>,
    namer: SegmentNamer,
    layout: Layout,
    index: u32,
    next_cut: Option<i64>,
    cut_at: Option<i64>,
    waiting: VecDeque<(i64, Packet)>,
    done: &'a mut Vec<PathBuf>,
    on_segment: &'a (dyn Fn(&Path) + Sync),
}

impl<'a> SegmentSink<'a> {
    fn start(
        mut octx: format::context::Output,
        tmp: PathBuf,
        path: PathBuf,
        namer: SegmentNamer,
        layout: Layout,
        done: &'a mut Vec<PathBuf>,
        on_segment: &'a (dyn Fn(&Path) + Sync),
    ) -> Result<Self> {
        let streams = layout.start_output(&mut octx, &path)?;
        let current = Some(Segment { octx, streams, tmp, path, start: None, has_video: false });
        Ok(Self {
            current,
            namer,
            layout,
            index: 0,
            next_cut: None,
            cut_at: None,
            waiting: VecDeque::new(),
            done,
            on_segment,
        })
    }

    fn length(&self) -> i64 {
        i64::from(self.namer.seconds).rescale(Rational(1, 1), self.layout.enc_tb)
    }

    /// Writes the waiting copied packets whose time (encoder time base) is before `until`.
    fn release_copies(&mut self, until: i64) -> Result<()> {
        let Some(seg) = self.current.as_mut() else { return Ok(()) };
        let offset = seg.start.unwrap_or(0).rescale(self.layout.enc_tb, seg.streams.video_tb);
        while self.waiting.front().is_some_and(|(t, _)| *t < until) {
            if let Some((_, pkt)) = self.waiting.pop_front() {
                write_copied(&mut seg.octx, &seg.streams, pkt, offset, &seg.path)?;
            }
        }
        Ok(())
    }

    fn close_current(&mut self) -> Result<()> {
        if let Some(mut seg) = self.current.take() {
            if !seg.has_video {
                drop(seg.octx);
                return std::fs::remove_file(&seg.tmp).map_err(|e| Error::io(&seg.tmp, e));
            }
            let werr = |reason: String| Error::Encode { path: seg.path.clone(), reason };
            seg.octx.write_trailer().map_err(|e| werr(format!("cannot finish segment: {e}")))?;
            drop(seg.octx);
            crate::io::seal(&seg.tmp)?;
            std::fs::rename(&seg.tmp, &seg.path).map_err(|e| Error::io(&seg.path, e))?;
            (self.on_segment)(&seg.path);
            self.done.push(seg.path);
        }
        Ok(())
    }

    fn open_next(&mut self, start: i64) -> Result<()> {
        self.index += 1;
        let path = self.namer.name(self.index)?;
        let tmp = temp_name(&path);
        let mut octx = format::output(&tmp)
            .map_err(|e| Error::Encode { path: path.clone(), reason: format!("cannot create segment: {e}") })?;
        let streams = self.layout.start_output(&mut octx, &path)?;
        self.current = Some(Segment { octx, streams, tmp, path, start: Some(start), has_video: false });
        Ok(())
    }
}

impl Sink for SegmentSink<'_> {
    fn wants_keyframe(&mut self, pts: i64) -> bool {
        let length = self.length().max(1);
        match self.next_cut {
            None => {
                self.next_cut = Some(pts + length);
                if let Some(seg) = self.current.as_mut() {
                    seg.start = Some(pts);
                }
                true
            }
            Some(cut) if pts >= cut => {
                let mut next = cut;
                while next <= pts {
                    next += length;
                }
                self.next_cut = Some(next);
                self.cut_at = Some(pts);
                true
            }
            Some(_) => false,
        }
    }

    fn write_video(&mut self, mut pkt: Packet) -> Result<()> {
        let pts = pkt.pts().unwrap_or(0);
        if let Some(cut) = self.cut_at.filter(|&c| pkt.is_key() && pts >= c) {
            self.release_copies(cut)?;
            self.close_current()?;
            self.open_next(cut)?;
            self.cut_at = None;
        }
        self.release_copies(pts)?;
        let Some(seg) = self.current.as_mut() else { return Ok(()) };
        let start = *seg.start.get_or_insert(pts);
        seg.has_video = true;
        pkt.set_pts(Some(pts - start));
        pkt.set_dts(pkt.dts().map(|d| d - start));
        pkt.set_stream(seg.streams.video);
        pkt.rescale_ts(self.layout.enc_tb, seg.streams.video_tb);
        pkt.write_interleaved(&mut seg.octx)
            .map_err(|e| Error::Encode { path: seg.path.clone(), reason: format!("cannot write video packet: {e}") })
    }

    fn write_copy(&mut self, pkt: Packet) -> Result<()> {
        let itb = self.layout.copies.iter().find(|c| c.input == pkt.stream()).map(|c| c.time_base);
        let Some(itb) = itb else { return Ok(()) };
        let Some(t) = pkt.pts().or(pkt.dts()) else { return Ok(()) };
        self.waiting.push_back((t.rescale(itb, self.layout.enc_tb), pkt));
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.release_copies(i64::MAX)?;
        self.close_current()
    }
}

impl Drop for SegmentSink<'_> {
    /// A run that failed leaves no temporary segment behind (the finished ones stay).
    fn drop(&mut self) {
        if let Some(seg) = self.current.take() {
            drop(seg.octx);
            let _ = std::fs::remove_file(&seg.tmp);
        }
    }
}
