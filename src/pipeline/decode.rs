//! The decode stage: reads packets, decodes the video stream into the redaction pixel format, passes copied
//! streams' packets on, and watches the input (stop, stall, damage, timestamp gaps).

use super::pace::Watch;
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
    /// Clock restarts mended in a format that has them (see [`Restarts`]).
    pub(crate) clock_restarts: u64,
    pub(crate) converted_from: Option<Pixel>,
}

/// Mends the clock restarts of formats that have them (MPEG-TS and the like: a camera or relay whose encoder
/// restarts, recordings joined end to end), as the `ffmpeg` command does: when a video or audio packet's
/// decoding time is more than 10 s from where its stream should be next, or more than 0.1 s before its
/// stream's last packet, every stream's timestamps from then on are moved by the same amount, so that it comes
/// where it should. (Other streams, subtitles or data, may be sparse: their gaps say nothing.) The frames
/// keep their spacing and the streams their sync; without it a restarted clock squeezed the frames after it
/// into a millisecond (timestamps must increase) and left a live run's pacer behind for good.
#[derive(Debug, Default)]
pub(crate) struct Restarts {
    /// Added to every timestamp, in microseconds.
    offset_us: i64,
    /// Per stream: the decoding time expected next, and the last one (µs, moved).
    streams: Vec<Option<(i64, i64)>>,
    /// Per stream: the last decoding time handed on, in the stream's time base.
    handed_on: Vec<Option<i64>>,
    pub(crate) mended: u64,
}

impl Restarts {
    const JUMP_US: i64 = 10_000_000;
    const BACK_US: i64 = 100_000;

    /// The offset (µs) for a packet of stream `si` decoded at `dts_us` (as read) and lasting `duration_us`;
    /// `steady`: a video or audio stream, whose packets can tell a restart.
    pub(crate) fn offset_for(&mut self, si: usize, dts_us: i64, duration_us: i64, steady: bool) -> i64 {
        if !steady {
            return self.offset_us;
        }
        if self.streams.len() <= si {
            self.streams.resize(si + 1, None);
        }
        let mut at = dts_us.saturating_add(self.offset_us);
        if let Some((next, last)) = self.streams[si] {
            let off = at.saturating_sub(next);
            if !(-Self::JUMP_US..=Self::JUMP_US).contains(&off) || at.saturating_add(Self::BACK_US) < last {
                self.offset_us = self.offset_us.saturating_sub(off);
                at = next;
                self.mended += 1;
            }
        }
        self.streams[si] = Some((at.saturating_add(duration_us.max(0)), at));
        self.offset_us
    }

    /// `(dts, pts)` of a moved packet of stream `si`, made to follow its stream's last one: at a restart the
    /// streams' ends do not meet exactly, and the first packets of one may fall a few milliseconds before the
    /// other's last (moved no further than that, their presentation never before their decoding).
    pub(crate) fn follow_on(&mut self, si: usize, dts: i64, pts: Option<i64>) -> (i64, Option<i64>) {
        if self.handed_on.len() <= si {
            self.handed_on.resize(si + 1, None);
        }
        let dts = match self.handed_on[si] {
            Some(last) if dts <= last => last.saturating_add(1),
            _ => dts,
        };
        self.handed_on[si] = Some(dts);
        (dts, pts.map(|p| p.max(dts)))
    }
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
        let mut converter: Option<software::scaling::Context> = None;
        let mut last_pts: Option<i64> = None;
        let mut last_duration: Option<i64> = None;
        let mut consecutive_errors = 0u64;
        let (width, height) = (decoder.width(), decoder.height());
        // Per stream: its time base, and whether it is video or audio (see `Restarts`).
        let time_bases: Vec<(ff::Rational, bool)> = ictx
            .streams()
            .map(|st| {
                (st.time_base(), matches!(st.parameters().medium(), ff::media::Type::Video | ff::media::Type::Audio))
            })
            .collect();
        // SAFETY: an open input's format is a valid, static `AVInputFormat`; a plain field is read. (The flag
        // constant's integer type differs between FFmpeg versions, hence the cast.)
        #[allow(clippy::unnecessary_cast)]
        let restarts_happen = unsafe { (*ictx.format().as_ptr()).flags & ff::ffi::AVFMT_TS_DISCONT as i32 != 0 };
        let mut restarts = restarts_happen.then(Restarts::default);
        let jump = ictx
            .stream(video_index)
            .map(|st| i128::from(JUMP_SECONDS.rescale(ff::Rational(1, 1), st.time_base())))
            .unwrap_or(i128::MAX);

        let mut read_at = Instant::now();
        let mut drain = |decoder: &mut decoder::Video, stats: &mut DecodeStats, read_at: Instant| -> Result<()> {
            let mut decoded = frame::Video::empty();
            while decoder.receive_frame(&mut decoded).is_ok() {
                if decoded.width() != width || decoded.height() != height {
                    return Err(Error::bad_input(
                        input,
                        format!(
                            "picture size changes mid-stream ({width}x{height} to {}x{}), which faceveil does not support",
                            decoded.width(),
                            decoded.height()
                        ),
                    ));
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
                let pts = match (decoded.timestamp(), last_pts) {
                    (Some(p), Some(l)) if p <= l => l.saturating_add(1),
                    (Some(p), _) => p,
                    (None, Some(l)) => l.saturating_add(1),
                    (None, None) => 0,
                };
                last_pts = Some(pts);
                stats.first_read.get_or_insert(read_at);
                stats.media_span = pts.saturating_sub(*stats.first_pts.get_or_insert(pts));
                let mut frame = if decoded.format() == work_format {
                    std::mem::replace(&mut decoded, frame::Video::empty())
                } else {
                    stats.converted_from.get_or_insert(decoded.format());
                    let conv = match converter.as_mut() {
                        Some(c) => c,
                        None => converter.insert(
                            software::scaling::Context::get(
                                decoded.format(),
                                width,
                                height,
                                work_format,
                                width,
                                height,
                                software::scaling::Flags::BICUBIC,
                            )
                            .map_err(|e| Error::bad_input(input, format!("pixel format conversion: {e}")))?,
                        ),
                    };
                    let mut converted = frame::Video::empty();
                    conv.run(&decoded, &mut converted)
                        .map_err(|e| Error::bad_input(input, format!("pixel format conversion: {e}")))?;
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
            let si = packet.stream();
            if let (Some(r), Some(&(tb, steady))) = (restarts.as_mut(), time_bases.get(si)) {
                mend(&mut packet, r, si, tb, steady);
            }
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
        stats.clock_restarts = restarts.map_or(0, |r| r.mended);
        Ok(stats)
    }
}

/// Moves `packet` (of stream `si`, time base `tb`, video or audio if `steady`) by the offset `restarts` gives it.
fn mend(packet: &mut Packet, restarts: &mut Restarts, si: usize, tb: ff::Rational, steady: bool) {
    let Some(dts) = packet.dts().or(packet.pts()) else { return };
    let us = ff::Rational(1, 1_000_000);
    let offset = restarts.offset_for(si, dts.rescale(tb, us), packet.duration().rescale(tb, us), steady);
    let moved = offset.rescale(us, tb);
    let pts = packet.pts().map(|p| p.saturating_add(moved));
    let (dts, pts) = restarts.follow_on(si, dts.saturating_add(moved), pts);
    packet.set_dts(Some(dts));
    packet.set_pts(pts);
}

#[cfg(test)]
mod tests {
    use super::Restarts;

    #[test]
    fn a_restarted_clock_is_moved_to_follow_on_and_both_streams_move_together() {
        let mut r = Restarts::default();
        // Video (stream 0) every 40 ms and sound (stream 1) every 21 ms from 1.4 s, jitter of a few ms kept.
        assert_eq!(r.offset_for(0, 1_400_000, 40_000, true), 0);
        assert_eq!(r.offset_for(1, 1_458_000, 21_000, true), 0);
        assert_eq!(r.offset_for(0, 1_443_000, 40_000, true), 0);
        assert_eq!(r.offset_for(0, 5_360_000, 40_000, true), 0, "a gap under 10 s is the stream's own");
        // The clock starts again at 1.4 s: moved to where the video was due next (5.4 s), for every stream.
        assert_eq!(r.offset_for(0, 1_400_000, 40_000, true), 4_000_000);
        assert_eq!(r.offset_for(1, 1_479_000, 21_000, true), 4_000_000, "the sound moves with it, not again");
        assert_eq!(r.offset_for(0, 1_440_000, 40_000, true), 4_000_000);
        assert_eq!(r.mended, 1);
        // A jump forward of more than 10 s is a restart too; one of 9 s is not.
        assert_eq!(r.offset_for(0, 31_480_000, 40_000, true), 4_000_000 - 30_000_000);
        assert_eq!(r.offset_for(0, 40_520_000, 40_000, true), -26_000_000);
        assert_eq!(r.mended, 2);
        // A sparse stream (subtitles, data) is moved with the others but tells nothing: a minute's gap in it is
        // not a restart.
        assert_eq!(r.offset_for(2, 10_000_000, 0, false), -26_000_000);
        assert_eq!(r.offset_for(2, 100_000_000, 0, false), -26_000_000);
        assert_eq!(r.offset_for(0, 40_560_000, 40_000, true), -26_000_000);
        assert_eq!(r.mended, 2);
    }

    #[test]
    fn a_moved_packet_never_comes_before_its_streams_last() {
        let mut r = Restarts::default();
        assert_eq!(r.follow_on(1, 100, Some(100)), (100, Some(100)));
        // At a join the sound may begin a few ticks before the last sound moved: it follows on, presentation
        // never before decoding.
        assert_eq!(r.follow_on(1, 98, Some(98)), (101, Some(101)));
        assert_eq!(r.follow_on(1, 150, Some(150)), (150, Some(150)));
        assert_eq!(r.follow_on(0, 90, Some(170)), (90, Some(170)), "each stream on its own");
    }
}
