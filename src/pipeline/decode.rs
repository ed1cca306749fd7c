//! The decode stage: reads packets, decodes the video stream into the redaction pixel format, passes copied
//! streams' packets on, and watches the input (stop, stall, damage, timestamp gaps).

use super::pace::Watch;
use crate::io::ffmpeg::clock::{increasing, Clock};
use crate::io::ffmpeg::picture::FrameScaler;
use crate::{Error, Result};
use crossbeam_channel::Sender;
use ff::format::Pixel;
use ff::{decoder, format, frame, picture, software, Packet, Rescale};
use ffmpeg_next as ff;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A gap in the frame timestamps longer than this is a jump (a clock reset, broken timestamps), not lost frames.
const JUMP_SECONDS: i64 = 60;

/// Corrupt packets in a row after which the input is given up as unreadable.
const MAX_CONSECUTIVE_ERRORS: u64 = 500;

/// A decoded frame in the redaction pixel format, on its way through the stages.
pub(crate) struct Decoded {
    pub(crate) frame: frame::Video,
    pub(crate) index: u64,
    /// When its data was read from the input (for live latency).
    pub(crate) read_at: Instant,
}

#[derive(Default)]
pub(crate) struct DecodeStats {
    pub(crate) frames: u64,
    /// The input broke off with this error (a file: the run fails; a live stream: what was read is kept).
    pub(crate) input_error: Option<String>,
    /// The input was ended early by the stop flag.
    pub(crate) stopped: bool,
    /// Last frame's timestamp minus the first's (stream time base).
    pub(crate) media_span: i64,
    /// When the first frame's data was read.
    pub(crate) first_read: Option<Instant>,
    first_pts: Option<i64>,
    pub(crate) decode_errors: u64,
    /// Video packets the demuxer marked as damaged.
    pub(crate) corrupt_packets: u64,
    /// Frames the decoder returned with errors concealed (damaged data in the input).
    pub(crate) damaged_frames: u64,
    /// Gaps in the frame timestamps longer than 1.5 frame durations: estimated frames lost to damage.
    pub(crate) frames_missing: u64,
    /// Gaps in the frame timestamps longer than [`JUMP_SECONDS`]: a clock reset or broken timestamps rather than
    /// lost frames (not counted in `frames_missing`).
    pub(crate) timestamp_jumps: u64,
    /// Clock restarts mended in a format that has them (see [`Clock`]).
    pub(crate) clock_restarts: u64,
    pub(crate) converted_from: Option<Pixel>,
    /// Frames whose picture size differed from the stream's first (scaled to it), and the first of them: its
    /// index and size.
    pub(crate) resized_frames: u64,
    pub(crate) first_resized: Option<(u64, u32, u32)>,
}

/// The decode stage's input and settings.
pub(crate) struct DecodeStage<'a> {
    pub(crate) input: &'a Path,
    pub(crate) ictx: format::context::Input,
    pub(crate) decoder: decoder::Video,
    pub(crate) video_index: usize,
    /// Frames in other formats are converted to this one.
    pub(crate) work_format: Pixel,
    /// Per input stream: its packets go to the output unchanged.
    pub(crate) copied: &'a [bool],
    pub(crate) watch: Option<&'a Watch>,
}

impl DecodeStage<'_> {
    /// Runs until the input ends, breaks off or is stopped; frames go to `frame_tx`, copied packets to `pkt_tx`.
    pub(crate) fn run(self, frame_tx: Sender<Decoded>, pkt_tx: Sender<Packet>) -> Result<DecodeStats> {
        let DecodeStage { input, mut ictx, mut decoder, video_index, work_format, copied, watch } = self;
        let mut stats = DecodeStats::default();
        // For frames not in the work format or not of the first size.
        let mut converter = FrameScaler::default();
        let mut last_pts: Option<i64> = None;
        let mut last_duration: Option<i64> = None;
        let mut consecutive_errors = 0u64;
        let (width, height) = (decoder.width(), decoder.height());
        let mut clock = Clock::of(&ictx);
        let jump = ictx
            .stream(video_index)
            .map(|st| i128::from(JUMP_SECONDS.rescale(ff::Rational(1, 1), st.time_base())))
            .unwrap_or(i128::MAX);

        let mut read_at = Instant::now();
        let mut drain = |decoder: &mut decoder::Video, stats: &mut DecodeStats, read_at: Instant| -> Result<()> {
            let mut decoded = frame::Video::empty();
            while decoder.receive_frame(&mut decoded).is_ok() {
                // A picture size that changes mid-stream (recordings of two sizes joined, a camera switching its
                // resolution): the frame is scaled to the first size, as FFmpeg's command line does.
                let (dw, dh) = (decoded.width(), decoded.height());
                let resized = (dw, dh) != (width, height);
                if resized {
                    crate::config::check_picture_size(dw, dh)
                        .map_err(|reason| Error::bad_input(input, format!("mid-stream, {reason}")))?;
                    stats.resized_frames += 1;
                    stats.first_resized.get_or_insert((stats.frames, dw, dh));
                }
                // SAFETY: `decoded` holds a valid frame just returned by the decoder; plain fields are read.
                // (The flag constant's integer type differs between FFmpeg versions, hence the cast.)
                #[allow(clippy::unnecessary_cast)]
                let concealed = unsafe {
                    let f = decoded.as_ptr();
                    (*f).decode_error_flags != 0 || ((*f).flags & ff::ffi::AV_FRAME_FLAG_CORRUPT as i32) != 0
                };
                if concealed {
                    stats.damaged_frames += 1;
                }
                // A timestamp jump of more than 1.5 times the previous frame's own duration: frames were lost
                // (durations come from the container, so variable frame rate is not mistaken for loss).
                if let (Some(p), Some(l), Some(d)) = (decoded.timestamp(), last_pts, last_duration) {
                    // In 128 bits: timestamps anywhere in i64's range never overflow.
                    let (gap, d) = (i128::from(p) - i128::from(l), i128::from(d));
                    if gap > jump {
                        stats.timestamp_jumps += 1;
                    } else if d > 0 && gap > d + d / 2 {
                        let lost = ((gap + d / 2) / d - 1).min(i128::from(u32::MAX));
                        stats.frames_missing = stats.frames_missing.saturating_add(lost as u64);
                    }
                }
                last_duration = Some(decoded.packet().duration).filter(|d| *d > 0);
                // Integer timestamps in the stream's time base; strictly increasing for the encoder.
                let pts = increasing(decoded.timestamp(), last_pts);
                last_pts = Some(pts);
                stats.first_read.get_or_insert(read_at);
                stats.media_span = pts.saturating_sub(*stats.first_pts.get_or_insert(pts));
                let mut frame = if decoded.format() == work_format && !resized {
                    std::mem::replace(&mut decoded, frame::Video::empty())
                } else {
                    if decoded.format() != work_format {
                        stats.converted_from.get_or_insert(decoded.format());
                    }
                    let conv = converter
                        .for_frame(&decoded, work_format, (width, height), software::scaling::Flags::BICUBIC)
                        .map_err(|e| Error::bad_input(input, format!("pixel format conversion: {e}")))?;
                    let mut converted = frame::Video::empty();
                    conv.run(&decoded, &mut converted)
                        .map_err(|e| Error::bad_input(input, format!("pixel format conversion: {e}")))?;
                    // The frame's properties (interlacing and field order, side data) as decoded.
                    // SAFETY: both frames are valid; only properties are copied, not data.
                    if unsafe { ff::ffi::av_frame_copy_props(converted.as_mut_ptr(), decoded.as_ptr()) } < 0 {
                        return Err(Error::Internal("copying a converted frame's properties".into()));
                    }
                    converted
                };
                frame.set_pts(Some(pts));
                frame.set_kind(picture::Type::None);
                frame_tx.send(Decoded { frame, index: stats.frames, read_at }).map_err(|_| Error::Cancelled)?;
                stats.frames += 1;
            }
            Ok(())
        };

        let stopped = || watch.is_some_and(Watch::stop_requested);
        let mut packet = Packet::empty();
        // Time spent waiting for the input since the last video packet (not time blocked on a full pipeline): a
        // live input's video must keep coming, see below.
        let mut waiting_for_video = Duration::ZERO;
        loop {
            if stopped() {
                stats.stopped = true;
                break;
            }
            // The stall clock counts only time spent waiting for the input, not time blocked on a full pipeline.
            if let Some(w) = watch {
                w.touch();
            }
            let asked = Instant::now();
            let result = packet.read(&mut ictx);
            read_at = Instant::now();
            waiting_for_video += read_at - asked;
            match result {
                Ok(()) => {
                    if let Some(w) = watch {
                        w.touch();
                    }
                    consecutive_errors = 0;
                    if packet.is_corrupt() && packet.stream() == video_index {
                        stats.corrupt_packets += 1;
                    }
                }
                Err(ff::Error::Eof) => break,
                Err(ff::Error::InvalidData) => {
                    stats.decode_errors += 1;
                    consecutive_errors += 1;
                    if consecutive_errors > MAX_CONSECUTIVE_ERRORS {
                        return Err(Error::bad_input(
                            input,
                            "too many corrupt packets in a row; the file is unreadable",
                        ));
                    }
                    continue;
                }
                // Interrupted by the stop flag (a blocked network read), or the input broke off: what was read
                // is finished normally; the caller decides whether the error fails the run.
                Err(_) if stopped() => {
                    stats.stopped = true;
                    break;
                }
                Err(_) if watch.is_some_and(|w| w.stalled.load(Ordering::Relaxed)) => {
                    stats.input_error = Some(format!(
                        "no data for {} s: the input stalled",
                        watch.map(|w| w.stall_ms / 1000).unwrap_or_default()
                    ));
                    break;
                }
                Err(e) => {
                    stats.input_error = Some(e.to_string());
                    break;
                }
            }
            clock.mend(&mut packet);
            let si = packet.stream();
            if si == video_index {
                waiting_for_video = Duration::ZERO;
                if let Err(e) = decoder.send_packet(&packet) {
                    if e == (ff::Error::Other { errno: ff::error::EAGAIN }) {
                        drain(&mut decoder, &mut stats, read_at)?;
                        if decoder.send_packet(&packet).is_err() {
                            stats.decode_errors += 1;
                        }
                    } else {
                        stats.decode_errors += 1;
                    }
                }
                drain(&mut decoder, &mut stats, read_at)?;
            } else if let Some(w) = watch.filter(|w| waiting_for_video.as_millis() > w.stall_ms as u128) {
                // Audio (or another stream) still flows but the video stopped: that is a stall too. Without this the
                // other stream's packets would keep the stall clock going and pile up in the sink unboundedly.
                w.stalled.store(true, Ordering::Relaxed);
                stats.input_error = Some(format!(
                    "no video for {} s while other streams continue: the input stalled",
                    w.stall_ms / 1000
                ));
                break;
            } else if copied.get(si).copied().unwrap_or(false) {
                pkt_tx.send(packet).map_err(|_| Error::Cancelled)?;
            }
            packet = Packet::empty();
        }
        // End of input: flush the decoder (a truncated last packet is counted, not fatal).
        if decoder.send_eof().is_ok() {
            drain(&mut decoder, &mut stats, read_at)?;
        }
        stats.clock_restarts = clock.restarts();
        Ok(stats)
    }
}
