//! An input's timestamps as the pipeline sees them: clock restarts mended ([`Clock`]) and frame timestamps made
//! strictly increasing ([`increasing`]). Every reader of an input uses both (the decode stage, and the
//! [`FrameReader`](super::input::FrameReader) of the follow pre-pass and `verify`), so that a frame has one
//! time wherever it is read: an edit's time code meets the same frame in the pre-pass as in the run.

use ff::{format, Packet, Rescale};
use ffmpeg_next as ff;

/// A frame's timestamp as the pipeline uses it: its own when later than the last frame's, else one tick after
/// it (frames without one, or out of order, still get a time that increases, as the encoder needs).
pub(crate) fn increasing(pts: Option<i64>, last: Option<i64>) -> i64 {
    match (pts, last) {
        (Some(p), Some(l)) if p <= l => l.saturating_add(1),
        (Some(p), _) => p,
        (None, Some(l)) => l.saturating_add(1),
        (None, None) => 0,
    }
}

/// Mends an input's clock restarts where its format has them ([`Restarts`]): every packet read goes through
/// [`Clock::mend`] before it is decoded or copied.
#[derive(Debug)]
pub(crate) struct Clock {
    /// Per stream: its time base, and whether it is video or audio (whose packets can tell a restart).
    streams: Vec<(ff::Rational, bool)>,
    /// `None` for formats whose clock does not restart.
    restarts: Option<Restarts>,
}

impl Clock {
    /// The clock of an opened input: it mends restarts when the format is flagged as having them
    /// (`AVFMT_TS_DISCONT`: MPEG-TS and the like).
    pub(crate) fn of(ictx: &format::context::Input) -> Self {
        let streams = ictx
            .streams()
            .map(|st| {
                (st.time_base(), matches!(st.parameters().medium(), ff::media::Type::Video | ff::media::Type::Audio))
            })
            .collect();
        // SAFETY: an open input's format is a valid, static `AVInputFormat`; a plain field is read. (The flag
        // constant's integer type differs between FFmpeg versions, hence the cast.)
        #[allow(clippy::unnecessary_cast)]
        let restarts_happen = unsafe { (*ictx.format().as_ptr()).flags & ff::ffi::AVFMT_TS_DISCONT as i32 != 0 };
        Self { streams, restarts: restarts_happen.then(Restarts::default) }
    }

    /// Moves `packet` by the offset the restarts so far give it (nothing in a format without restarts).
    pub(crate) fn mend(&mut self, packet: &mut Packet) {
        let si = packet.stream();
        if let (Some(r), Some(&(tb, steady))) = (self.restarts.as_mut(), self.streams.get(si)) {
            mend(packet, r, si, tb, steady);
        }
    }

    /// Restarts mended so far.
    pub(crate) fn restarts(&self) -> u64 {
        self.restarts.as_ref().map_or(0, |r| r.mended)
    }

    /// Starts again from the next packet read, as if it were the input's first (after a seek).
    pub(crate) fn forget(&mut self) {
        if let Some(r) = self.restarts.as_mut() {
            *r = Restarts::default();
        }
    }
}

/// Mends the clock restarts of formats that have them (MPEG-TS and the like: a camera or relay whose encoder
/// restarts, recordings joined end to end), as the `ffmpeg` command does: when a video or audio packet's
/// decoding time is more than 10 s from where its stream should be next, or more than 0.1 s before its
/// stream's last packet, every stream's timestamps from then on are moved by the same amount, so that it comes
/// where it should. (Other streams, subtitles or data, may be sparse: their gaps say nothing.) The frames
/// keep their spacing and the streams their sync; without it a restarted clock squeezed the frames after it
/// into a millisecond (timestamps must increase) and left a live run's pacer behind for good.
#[derive(Debug, Default)]
struct Restarts {
    /// Added to every timestamp, in microseconds.
    offset_us: i64,
    /// Per stream: the decoding time expected next, and the last one (µs, moved).
    streams: Vec<Option<(i64, i64)>>,
    /// Per stream: the last decoding time handed on, in the stream's time base.
    handed_on: Vec<Option<i64>>,
    mended: u64,
}

impl Restarts {
    const JUMP_US: i64 = 10_000_000;
    const BACK_US: i64 = 100_000;

    /// The offset (µs) for a packet of stream `si` decoded at `dts_us` (as read) and lasting `duration_us`;
    /// `steady`: a video or audio stream, whose packets can tell a restart.
    fn offset_for(&mut self, si: usize, dts_us: i64, duration_us: i64, steady: bool) -> i64 {
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
    fn follow_on(&mut self, si: usize, dts: i64, pts: Option<i64>) -> (i64, Option<i64>) {
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
