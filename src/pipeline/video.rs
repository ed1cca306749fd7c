//! One video through the stages: decode → analyse (detect, track, verdict) → redact → encode/mux, on four
//! scoped threads joined by bounded queues, so memory stays bounded whatever the length of the input.

use super::analyse::{AnalyseStage, Analysed};
use super::decode::{DecodeStage, DecodeStats, Decoded};
use super::encode::{EncodeStage, Encoded, RedactStage};
use super::pace::{LiveEvent, Pacer, Watch};
use super::{EditSource, Extras};
use crate::analyse::{Core, Stats};
use crate::config::{FrameRate, Options};
use crate::detect::Detector;
use crate::edits::Edits;
use crate::geom::Rotation;
use crate::io::ffmpeg::input::{open_video, OpenedVideo};
use crate::io::ffmpeg::output::{plan, Engine, FileSink, Sink};
use crate::report::Report;
use crate::review::ReviewCollector;
use crate::{Error, Result};
use crossbeam_channel::{bounded, unbounded};
use ff::{format, Packet};
use ffmpeg_next as ff;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Frames queued from decoding to analysis and from analysis to redaction. A frame decoded ahead keeps
/// detection busy; deeper queues only hold more frames (four: 3 MiB more per 1080p frame, no faster).
const QUEUE: usize = 2;
/// Frames queued from redaction to the encoder: one redacted ahead keeps x264 busy (two: no faster, 2–6 MiB
/// more at 1080p50). Memory is bounded by the queues and the look-ahead, in frames.
const REDACTED_QUEUE: usize = 1;

/// Settings of a run that are not redaction options.
pub(crate) struct Run<'a, 'r> {
    pub(crate) input: &'a Path,
    pub(crate) options: &'a Options,
    /// Live input: pace detection against the wall clock (see [`Pacer`]).
    pub(crate) live: Option<&'a (dyn Fn(LiveEvent) + Sync)>,
    /// A live run's effort held at this level whatever the lag (see [`LiveSettings::hold_effort`](super::live::LiveSettings)).
    pub(crate) hold_effort: Option<u8>,
    /// A live input's stop flag and stall clock; a stop ends the input early and what was read is finished
    /// normally.
    pub(crate) watch: Option<&'a Watch>,
    pub(crate) review: Option<&'r mut ReviewCollector>,
    pub(crate) progress: Option<&'a (dyn Fn(u64, Option<u64>) + Sync)>,
    /// A reviewer's edit file, and whether it may keep regions.
    pub(crate) edits: Option<(&'a EditSource, bool)>,
}

/// What the stages counted.
pub(crate) struct Outcome {
    pub(crate) decode: DecodeStats,
    pub(crate) core: Stats,
    pub(crate) written: u64,
    pub(crate) warnings: Vec<String>,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) rotation: Rotation,
    /// The rotation turned into the pixels (the output container could not carry the flag).
    pub(crate) turn_pixels: Option<Rotation>,
    pub(crate) streams_copied: u32,
    /// When the last frame was handed to the output.
    pub(crate) finished_at: Instant,
    /// The edits as applied (kept regions' counts).
    pub(crate) edits: Option<Edits>,
    /// The video stream's frame rate, where stated: the schedule the core ran on follows it.
    pub(crate) rate: Option<FrameRate>,
}

impl Outcome {
    pub(crate) fn fill_report(&self, out: &mut Report) {
        let dec = &self.decode;
        out.record(&self.core);
        out.width = self.width;
        out.height = self.height;
        out.rotation_degrees = self.rotation.degrees();
        out.rotation_in_pixels = self.turn_pixels.is_some();
        out.streams_copied = self.streams_copied;
        out.frames = dec.frames;
        out.decode_errors = dec.decode_errors;
        out.frames_written = self.written;
        out.damaged_frames = dec.damaged_frames;
        out.corrupt_packets = dec.corrupt_packets;
        out.frames_missing = dec.frames_missing;
        out.warnings = self.warnings.clone();
        out.record_edits(self.edits.as_ref());
        out.frame_rate = self.rate;
        out.redaction_revision = crate::report::redaction_revision(out.kind, self.rate);
        out.parameters = out.parameters.at_rate(self.rate);
    }
}

/// Redacts the video `input` into `tmp` (a path whose extension names the container).
pub(crate) fn redact_video(
    input: &Path,
    tmp: &Path,
    options: &Options,
    detector: &mut dyn Detector,
    extras: &Extras,
    review: Option<&mut ReviewCollector>,
    edits: Option<(&EditSource, bool)>,
) -> Result<Outcome> {
    let opened = open_video(input, options.encode.codec_threads())?;
    let werr = |reason: String| Error::Encode { path: tmp.to_path_buf(), reason };
    let octx = format::output(tmp).map_err(|e| werr(format!("cannot create output container: {e}")))?;
    let (engine, layout) = plan(input, &opened, &octx, options, false)?;
    let mut sink = FileSink::open(tmp, octx, &layout)?;
    let watch = (extras.time_limit.is_some() || extras.cancel.is_some()).then(|| {
        let stop = extras.cancel.clone().unwrap_or_else(|| Arc::new(AtomicBool::new(false)));
        let w = Watch::new(stop, Duration::MAX);
        match extras.time_limit {
            Some(limit) => w.until(limit),
            None => w,
        }
    });
    let run = Run {
        input,
        options,
        live: None,
        hold_effort: None,
        watch: watch.as_ref(),
        review,
        progress: extras.progress,
        edits,
    };
    let stopped = || {
        if extras.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Error::Interrupted { path: input.to_path_buf() };
        }
        let seconds = extras.time_limit.map(|d| d.as_secs()).unwrap_or_default();
        Error::TimeLimit { path: input.to_path_buf(), seconds }
    };
    let outcome = match run_stages(run, opened, engine, &mut sink, detector) {
        // Stopped before the stages ran (the follow pre-pass of an edit file).
        Err(Error::Cancelled) if watch.as_ref().is_some_and(Watch::stop_requested) => return Err(stopped()),
        other => other?,
    };
    if outcome.decode.stopped {
        return Err(stopped());
    }
    if let Some(e) = &outcome.decode.input_error {
        return Err(Error::bad_input(input, format!("read error: {e}")));
    }
    if outcome.written != outcome.decode.frames {
        return Err(werr(format!("{} frames decoded but {} written", outcome.decode.frames, outcome.written)));
    }
    Ok(outcome)
}

/// Runs decode → analyse → redact → encode/mux on four threads and returns what they counted. The first real
/// error wins over the "cancelled" that the other stages see as its consequence.
pub(crate) fn run_stages(
    mut run: Run<'_, '_>,
    opened: OpenedVideo,
    engine: Engine,
    sink: &mut dyn Sink,
    detector: &mut dyn Detector,
) -> Result<Outcome> {
    let OpenedVideo { ictx, index: video_index, decoder, .. } = opened;
    let Engine {
        encoder,
        enc_tb,
        work_format,
        rotation,
        turn_pixels,
        total_estimate,
        rate,
        copied,
        mut warnings,
        width,
        height,
    } = engine;
    let (frame_tx, frame_rx) = bounded::<Decoded>(QUEUE);
    let (done_tx, done_rx) = bounded::<Analysed>(QUEUE);
    let (redacted_tx, redacted_rx) = bounded::<Decoded>(REDACTED_QUEUE);
    let (pkt_tx, pkt_rx) = unbounded::<Packet>();
    let (input, options) = (run.input, run.options);
    options.check_window(
        rate,
        width,
        height,
        frame_bytes(work_format, width, height),
        (2 * QUEUE + REDACTED_QUEUE) as u64,
        true,
    )?;
    let mut core = Core::new(options, rate, width, height, rotation);
    if let Some((source, allow_keep)) = run.edits {
        let (uw, uh) = rotation.upright_size(width, height);
        let mut edits = source.parse(uw, uh, allow_keep)?;
        // Followed regions are followed through the whole clip first (one extra, single-threaded read).
        warnings.extend(super::follow::follow_regions(input, &mut edits, run.watch)?);
        core.set_edits(edits);
    }
    let pacer = run.live.map(|log| Pacer::new(enc_tb, log).holding(run.hold_effort));
    let decode = DecodeStage { input, ictx, decoder, video_index, work_format, copied: &copied, watch: run.watch };
    let analyse = AnalyseStage { input, detector, core, rotation, time_base: enc_tb, pacer };
    let report_progress = |n: u64| {
        if let Some(p) = run.progress {
            p(n, total_estimate)
        }
    };
    let redact = RedactStage { redact: &options.redact, review: run.review.take().map(|c| (c, rotation, enc_tb)) };
    let encode =
        EncodeStage { sink: &mut *sink, encoder, turn: turn_pixels, progress: &report_progress, live: run.live };

    let (dec_res, det_res, red_res, mux_res) = std::thread::scope(|s| {
        let dec = std::thread::Builder::new()
            .name("faceveil-decode".into())
            .spawn_scoped(s, move || decode.run(frame_tx, pkt_tx));
        let det = std::thread::Builder::new()
            .name("faceveil-detect".into())
            .spawn_scoped(s, move || analyse.run(frame_rx, done_tx));
        let red = std::thread::Builder::new()
            .name("faceveil-redact".into())
            .spawn_scoped(s, move || redact.run(done_rx, redacted_tx));
        let mux = encode.run(redacted_rx, pkt_rx);
        (join_stage(dec), join_stage(det), join_stage(red), mux)
    });
    let (dec, (core, edits), Encoded { written, finished_at }) = match (dec_res, det_res, red_res, mux_res) {
        (Ok(d), Ok(t), Ok(()), Ok(m)) => (d, t, m),
        (d, t, r, m) => {
            let errors = [d.err(), t.err(), r.err(), m.err()].into_iter().flatten();
            let mut cancelled = None;
            for e in errors {
                if matches!(e, Error::Cancelled) {
                    cancelled = Some(e);
                } else {
                    return Err(e);
                }
            }
            return Err(cancelled.unwrap_or(Error::Cancelled));
        }
    };
    warnings.extend(stage_warnings(&dec, &core, work_format));
    warnings.extend(sink.take_warnings());
    if let (Some(e), Some((source, _))) = (&edits, run.edits) {
        if !dec.stopped && dec.input_error.is_none() {
            e.check_reached(dec.frames, &source.path)?;
        }
    }
    // A run stopped (interrupted, out of time) before its first frame says so, not "nothing decodable".
    if dec.frames == 0 && !dec.stopped {
        return Err(Error::bad_input(input, "no video frame could be decoded"));
    }
    Ok(Outcome {
        decode: dec,
        core,
        written,
        warnings,
        width,
        height,
        rotation,
        turn_pixels,
        streams_copied: copied.iter().filter(|&&c| c).count() as u32,
        finished_at,
        edits,
        rate,
    })
}

/// Bytes of one `w × h` frame in pixel format `format`.
fn frame_bytes(format: ff::format::Pixel, w: u32, h: u32) -> u64 {
    // SAFETY: a plain computation on a pixel format and a size; it returns a negative error for unknown formats.
    let n = unsafe { ff::ffi::av_image_get_buffer_size(format.into(), w as i32, h as i32, 1) };
    // An unknown format is counted as 16-bit RGBA, the largest a decoder hands faceveil.
    if n > 0 {
        n as u64
    } else {
        u64::from(w) * u64::from(h) * 8
    }
}

/// What the user is told about a run besides its counts.
fn stage_warnings(dec: &DecodeStats, core: &Stats, work_format: ff::format::Pixel) -> Vec<String> {
    let mut out = Vec::new();
    if core.frames_blanked > 0 {
        out.push(format!("detector failed on {} frame(s); they were blanked", core.frames_blanked));
    }
    if core.frames_degraded > 0 {
        out.push(format!(
            "{} frame(s) analysed with reduced detection (the machine fell behind real time, or the effort was held); their masks were enlarged, and what changed between small-face searches was covered whole in {} frame(s)",
            core.frames_degraded, core.frames_covered
        ));
    }
    if let Some((first, w, h)) = dec.first_resized {
        out.push(format!(
            "the picture size changed mid-stream ({} frame(s), the first of them frame {first} at {w}x{h}); they \
             were scaled to the stream's first size, as FFmpeg does",
            dec.resized_frames
        ));
    }
    if let Some(f) = dec.converted_from {
        out.push(format!("pixel format {f:?} converted to {work_format:?} for redaction and encoding").to_lowercase());
    }
    if dec.decode_errors > 0 {
        out.push(format!(
            "{} corrupt packets could not be decoded; their frames are not in the output",
            dec.decode_errors
        ));
    }
    if dec.damaged_frames + dec.corrupt_packets > 0 {
        out.push(format!(
            "damaged input: {} frame(s) decoded with concealed errors, {} packet(s) marked corrupt",
            dec.damaged_frames, dec.corrupt_packets
        ));
    }
    if dec.frames_missing > 0 {
        out.push(format!("about {} frame(s) missing from the input (gaps in its timestamps)", dec.frames_missing));
    }
    if dec.clock_restarts > 0 {
        out.push(format!(
            "the input's clock restarted {} time(s) (a camera or relay restarting, or recordings joined end to end); \
             the timestamps after each restart were moved to follow on",
            dec.clock_restarts
        ));
    }
    if dec.timestamp_jumps > 0 {
        out.push(format!(
            "the input's timestamps jumped {} time(s) by more than a minute (a clock reset or broken timestamps); \
             every frame was kept",
            dec.timestamp_jumps
        ));
    }
    out
}

fn join_stage<T>(h: std::io::Result<std::thread::ScopedJoinHandle<'_, Result<T>>>) -> Result<T> {
    match h {
        Ok(h) => h.join().unwrap_or_else(|_| Err(Error::Internal("a pipeline thread panicked".into()))),
        Err(e) => Err(Error::io("thread", e)),
    }
}
