//! The analysis stage: each decoded frame turned upright into RGB for the shared per-frame core
//! ([`analyse::Core`](crate::analyse::Core)), at the effort the live pacer allows, and passed on with its
//! verdict once the core's look-ahead has seen past it.

use super::decode::Decoded;
use super::pace::Pacer;
use crate::analyse::{Core, Effort, Stats, Verdict};
use crate::detect::fields::Scan;
use crate::detect::Detector;
use crate::edits::Edits;
use crate::geom::Rotation;
use crate::io::ffmpeg::picture::UprightRgb;
use crate::{Error, Result};
use crossbeam_channel::{Receiver, Sender};
use ff::{Rational, Rescale};
use ffmpeg_next as ff;
use std::path::Path;

/// A frame with what is to be done to it.
pub(crate) struct Analysed {
    pub(crate) decoded: Decoded,
    pub(crate) verdict: Verdict,
}

pub(crate) struct AnalyseStage<'a> {
    pub(crate) input: &'a Path,
    pub(crate) detector: &'a mut dyn Detector,
    pub(crate) core: Core<Decoded>,
    pub(crate) rotation: Rotation,
    /// The stream's time base (frame times for edits given by time).
    pub(crate) time_base: Rational,
    /// Live runs only: lowers the effort when the run falls behind real time.
    pub(crate) pacer: Option<Pacer<'a>>,
}

impl AnalyseStage<'_> {
    /// Returns the core's counts and the edits as applied.
    pub(crate) fn run(self, frame_rx: Receiver<Decoded>, done_tx: Sender<Analysed>) -> Result<(Stats, Option<Edits>)> {
        let AnalyseStage { input, detector, mut core, rotation, time_base, mut pacer } = self;
        let mut first_pts = None;
        let mut rgb = UprightRgb::new(rotation);
        let send = |(decoded, verdict)| done_tx.send(Analysed { decoded, verdict }).map_err(|_| Error::Cancelled);
        for decoded in frame_rx {
            let index = decoded.index;
            let frame_err = |e: Error| Error::Frame { path: input.to_path_buf(), frame: index, source: Box::new(e) };
            let effort = match pacer.as_mut() {
                Some(p) => Effort::from_level(p.level(decoded.frame.pts().unwrap_or(0), decoded.read_at, index)),
                None => Effort::Full,
            };
            // The previous frame's picture is no longer needed (this one comes after it): its memory takes
            // this frame's pixels.
            let upright = rgb.convert_into(&decoded.frame, core.spare_picture()).map_err(frame_err)?;
            // Two fields a field apart: the core has the detectors see the first, and covers the second.
            let scan = match decoded.frame.is_interlaced() {
                true => Scan::Interlaced { top_first: decoded.frame.is_top_first() },
                false => Scan::Progressive,
            };
            let pts = decoded.frame.pts().unwrap_or(0);
            let ms = pts.saturating_sub(*first_pts.get_or_insert(pts)).rescale(time_base, Rational(1, 1000));
            let at = (ms, scan);
            if let Some(done) = core.push_owned(detector, upright, effort, at, decoded).map_err(frame_err)? {
                send(done)?;
            }
            // An edit that cannot be applied as written stops the run at once (no output is kept).
            if let Some(e) = core.edits().and_then(Edits::error) {
                return Err(e);
            }
        }
        for done in core.finish(detector) {
            send(done)?;
        }
        Ok((core.stats(), core.edits().cloned()))
    }
}
