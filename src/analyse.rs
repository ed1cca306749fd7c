//! The per-frame core that every path shares (video files, live streams, the frame API, still images):
//! detect on the schedule → fail closed on detector errors → enlarge masks where effort was reduced →
//! bridge misses by tracking → decide each frame's [`Verdict`] → count, in one [`Stats`].
//!
//! Callers only convert pixels: they hand [`Core::push`] the frame upright, in full-resolution RGB, and
//! apply the verdict to their own buffers with [`Verdict::apply`]. The core never sees anything but boxes
//! and scores; it keeps no face pixels.

use crate::config::{OnDetectorError, Options};
use crate::detect::{face_regions, merge, whole_pass, Analyser, DetectSettings, Detection, Detector};
use crate::edits::Edits;
use crate::geom::{BBox, Rotation};
use crate::redact::{fill_channel, mask_area_fraction, redact_channel, ChannelLayout, RedactSettings};
use crate::track::TrackFill;
use crate::Result;
use image::RgbImage;
use serde::Serialize;

/// Masks of frames analysed with reduced effort grow by this factor: when in doubt, redact more.
pub const DEGRADED_MASK_GROWTH: f32 = 1.25;
/// Longest side of the whole-frame pass from [`Effort::Reduced`] on.
pub const DEGRADED_DETECT_SIDE: u32 = 640;
/// Value a blanked frame is filled with in every channel: mid-grey in RGB and in YCbCr alike.
pub const BLANK: u8 = 128;

/// How much detection a frame gets. Files always get [`Effort::Full`]; a live run that falls behind real
/// time steps down (see the live pacer), and every reduced frame's masks grow by [`DEGRADED_MASK_GROWTH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effort {
    /// The full schedule: whole frame plus small-face tiles, unchanged regions reused.
    Full,
    /// The whole frame at the detector size, no tiles.
    WholeFrame,
    /// The whole frame at [`DEGRADED_DETECT_SIDE`].
    Reduced,
    /// As `Reduced`, and every other frame is left to the tracker, which bridges it from both sides (only
    /// where bridging is on; without it no frame is skipped).
    Alternate,
}

impl Effort {
    /// The effort of a pacer level (0 full … 3 alternate).
    pub fn from_level(level: u8) -> Self {
        match level {
            0 => Effort::Full,
            1 => Effort::WholeFrame,
            2 => Effort::Reduced,
            _ => Effort::Alternate,
        }
    }
}

/// What happens to one frame's pixels.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Verdict {
    /// Regions to redact, in stored-frame pixels (detected, grown and bridged), before mask enlargement.
    pub boxes: Vec<BBox>,
    /// Regions a reviewer's edits add, each with its own settings (stored-frame pixels).
    pub added: Vec<(BBox, RedactSettings)>,
    /// The detector failed on this frame and the policy is to blank it: every channel becomes flat grey.
    pub blank: bool,
}

impl Verdict {
    /// True when the frame's pixels change.
    pub fn changes_pixels(&self) -> bool {
        self.blank || !self.boxes.is_empty() || !self.added.is_empty()
    }

    /// Applies the verdict to one 8-bit channel of the frame.
    pub fn apply(&self, buf: &mut [u8], layout: &ChannelLayout, settings: &RedactSettings) -> Result<()> {
        if self.blank {
            return fill_channel(buf, layout, BLANK);
        }
        redact_channel(buf, layout, &self.boxes, settings)?;
        for (b, own) in &self.added {
            redact_channel(buf, layout, std::slice::from_ref(b), own)?;
        }
        Ok(())
    }

    /// Share of a `width × height` frame masked.
    fn masked_area(&self, settings: &RedactSettings, width: u32, height: u32) -> f64 {
        if self.blank {
            return 1.0;
        }
        let added: f64 =
            self.added.iter().map(|(b, s)| mask_area_fraction(std::slice::from_ref(b), s, width, height)).sum();
        (mask_area_fraction(&self.boxes, settings, width, height) + added).min(1.0)
    }
}

/// What the core counted over a stream (or a still image).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Frames analysed (pushed into the core).
    pub frames: u64,
    /// Frames released with their verdict.
    pub frames_released: u64,
    /// Frames in which the detector found a face.
    pub frames_with_faces: u64,
    pub detections: u64,
    pub max_faces_in_frame: u64,
    /// Frames released with at least one region redacted (detected, bridged or blanked).
    pub frames_redacted: u64,
    /// Frames released flat grey because the detector failed on them.
    pub frames_blanked: u64,
    /// Frames analysed with reduced effort (their masks enlarged).
    pub frames_degraded: u64,
    /// Tracks started by the bridging tracker.
    pub tracks: u64,
    /// Detector passes run, and passes answered from an unchanged region.
    pub passes_run: u64,
    pub passes_reused: u64,
    /// Of `passes_run`, focus passes: small crops around faces the tiles found, searched on frames their
    /// tiles are not.
    pub passes_focus: u64,
    /// Sum over released frames of the share of the frame masked (1 for a blanked frame).
    pub masked_area: f64,
}

impl Stats {
    /// Mean share of a released frame that was masked.
    pub fn redacted_area_fraction(&self) -> f64 {
        if self.frames_released == 0 {
            0.0
        } else {
            self.masked_area / self.frames_released as f64
        }
    }
}

struct Held<T> {
    item: T,
    blank: bool,
    /// Frame number and time from the first frame, for edits.
    index: u64,
    ms: i64,
}

/// Detection schedule, fail-closed policy, degrade rules, tracking and counting for one stream of frames of
/// one size. `T` is whatever the caller carries along with a frame (its pixels, its index); it comes back
/// with the frame's verdict once the look-ahead has seen past it.
pub struct Core<T> {
    detect: DetectSettings,
    redact: RedactSettings,
    on_error: OnDetectorError,
    bridging: bool,
    /// Stored (not upright) frame size, and how the stored picture turns upright.
    size: (u32, u32),
    rotation: Rotation,
    analyser: Analyser,
    fill: TrackFill<Held<T>>,
    stats: Stats,
    /// Passes run outside the analyser (reduced effort).
    extra_passes: u64,
    /// The last detector error a frame was blanked for.
    last_error: Option<String>,
    /// A reviewer's edits: regions added, frames redacted whole, detections kept.
    edits: Option<Edits>,
}

impl<T> std::fmt::Debug for Core<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").field("size", &self.size).field("stats", &self.stats).finish()
    }
}

impl<T> Core<T> {
    /// A core for a stream of stored `width × height` frames shown turned by `rotation`, on the video
    /// schedule of `options` (tiles spread over `tile_period` frames, bridging over `bridge_frames`).
    pub fn new(options: &Options, width: u32, height: u32, rotation: Rotation) -> Self {
        let (uw, uh) = rotation.upright_size(width, height);
        let analyser = Analyser::new(options.detect.clone(), options.tile_period, uw, uh);
        Self::with(options, analyser, options.bridge_frames as usize, width, height, rotation)
    }

    /// A core for one still picture: every pass at once, the whole frame at the full detector size, no
    /// bridging (there is nothing to bridge from).
    pub fn still(options: &Options, width: u32, height: u32) -> Self {
        let analyser = Analyser::exhaustive(options.detect.clone(), width, height);
        Self::with(options, analyser, 0, width, height, Rotation::None)
    }

    fn with(options: &Options, analyser: Analyser, window: usize, w: u32, h: u32, rotation: Rotation) -> Self {
        Self {
            detect: options.detect.clone(),
            redact: options.redact.clone(),
            on_error: options.on_detector_error,
            bridging: window > 0,
            size: (w, h),
            rotation,
            analyser,
            // Tracks coast twice the look-ahead past their last detection: gaps up to three windows are covered.
            fill: TrackFill::new(window, 2 * window),
            stats: Stats::default(),
            extra_passes: 0,
            last_error: None,
            edits: None,
        }
    }

    /// Applies a reviewer's edits (parsed for this stream's upright size) to every frame from now on.
    pub fn set_edits(&mut self, edits: Edits) {
        self.edits = Some(edits);
    }

    /// The edits, after the run: for the report, and to check that every edit was reached.
    pub fn edits(&self) -> Option<&Edits> {
        self.edits.as_ref()
    }

    /// Frames a pushed frame is held back for the look-ahead.
    pub fn delay(&self) -> usize {
        self.fill.delay()
    }

    /// The upright size [`push`](Self::push) expects.
    pub fn upright_size(&self) -> (u32, u32) {
        self.rotation.upright_size(self.size.0, self.size.1)
    }

    /// What was counted so far.
    pub fn stats(&self) -> Stats {
        let scheduled = self.analyser.stats();
        Stats {
            tracks: self.fill.tracks_started(),
            passes_run: scheduled.passes_run + self.extra_passes,
            passes_reused: scheduled.passes_reused,
            passes_focus: scheduled.passes_focus,
            ..self.stats
        }
    }

    /// The detector's error on the last frame that was blanked for one, for warnings.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Analyses the next frame (`upright`: the frame turned upright, full resolution, RGB) and holds `item`
    /// for the look-ahead. Returns the frame whose look-ahead is now complete, if any, with its verdict.
    ///
    /// A detector error fails the push (the item is dropped: never released unanalysed) unless the policy is
    /// [`OnDetectorError::RedactFrame`], in which case the frame is released blanked.
    pub fn push<D: Detector + ?Sized>(
        &mut self,
        detector: &mut D,
        upright: &RgbImage,
        effort: Effort,
        item: T,
    ) -> Result<Option<(T, Verdict)>> {
        self.push_at(detector, upright, effort, 0, item)
    }

    /// [`push`](Self::push) for a frame `ms` milliseconds after the stream's first (edits given by time need
    /// it).
    pub fn push_at<D: Detector + ?Sized>(
        &mut self,
        detector: &mut D,
        upright: &RgbImage,
        effort: Effort,
        ms: i64,
        item: T,
    ) -> Result<Option<(T, Verdict)>> {
        let index = self.stats.frames;
        let attempt = self.detect(detector, upright, effort, index);
        let (found, blank) = match attempt {
            Ok(found) => (found, false),
            Err(e) if self.on_error == OnDetectorError::RedactFrame => {
                self.stats.frames_blanked += 1;
                self.last_error = Some(e.to_string());
                (Vec::new(), true)
            }
            Err(e) => return Err(e),
        };
        self.stats.frames += 1;
        let (w, h) = self.size;
        let n = found.len() as u64;
        self.stats.frames_with_faces += u64::from(n > 0);
        self.stats.detections += n;
        self.stats.max_faces_in_frame = self.stats.max_faces_in_frame.max(n);
        let boxes = found
            .iter()
            .map(|d| self.rotation.box_to_stored(&d.bbox, w, h))
            .map(|b| if effort == Effort::Full { b } else { b.scaled(DEGRADED_MASK_GROWTH) })
            .map(|b| b.clamped(w, h))
            .filter(BBox::is_valid)
            .collect();
        if effort != Effort::Full {
            self.stats.frames_degraded += 1;
        }
        Ok(self.fill.push(Held { item, blank, index, ms }, boxes).map(|(held, boxes)| self.release(held, boxes)))
    }

    /// End of stream: every frame still held, with its verdict. The core can then take a new stream of the
    /// same size.
    pub fn finish(&mut self) -> Vec<(T, Verdict)> {
        let held = self.fill.finish();
        held.into_iter().map(|(held, boxes)| self.release(held, boxes)).collect()
    }

    fn release(&mut self, held: Held<T>, boxes: Vec<BBox>) -> (T, Verdict) {
        let mut verdict = Verdict { boxes, blank: held.blank, ..Verdict::default() };
        if let Some(edits) = self.edits.as_mut() {
            let boxes = std::mem::take(&mut verdict.boxes);
            verdict.boxes = edits.filter_detections(held.index, held.ms, self.rotation, self.size, boxes);
            verdict.added = edits.frame(held.index, held.ms, self.rotation, self.size, &self.redact).regions;
        }
        let (w, h) = self.size;
        self.stats.frames_released += 1;
        self.stats.frames_redacted += u64::from(verdict.changes_pixels());
        self.stats.masked_area += verdict.masked_area(&self.redact, w, h);
        (held.item, verdict)
    }

    /// The regions to redact in the upright frame.
    fn detect<D: Detector + ?Sized>(
        &mut self,
        detector: &mut D,
        upright: &RgbImage,
        effort: Effort,
        index: u64,
    ) -> Result<Vec<Detection>> {
        if upright.dimensions() != self.upright_size() {
            return Err(crate::Error::Config(format!(
                "frame {:?} does not match the stream's upright size {:?}",
                upright.dimensions(),
                self.upright_size()
            )));
        }
        let (uw, uh) = self.upright_size();
        let side = match effort {
            Effort::Full => return self.analyser.analyse(detector, upright),
            // Far behind real time: every other frame is left to the tracker, which bridges it from the frames
            // on both sides (their masks are enlarged). Without bridging no frame is skipped.
            Effort::Alternate if self.bridging && index % 2 == 1 => return Ok(Vec::new()),
            Effort::WholeFrame => self.detect.max_side,
            Effort::Reduced | Effort::Alternate => DEGRADED_DETECT_SIDE.min(self.detect.max_side),
        };
        let settings =
            DetectSettings { max_side: side, min_side: self.detect.min_side.min(side), ..self.detect.clone() };
        self.extra_passes += 1;
        let found = whole_pass(detector, upright, settings.input_size(uw, uh))?;
        Ok(face_regions(merge(found, settings.nms_iou)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::ScriptedDetector;

    fn face(x: f32) -> Vec<Detection> {
        vec![Detection { bbox: BBox::new(x, 10.0, x + 12.0, 24.0), score: 0.9 }]
    }

    fn options() -> Options {
        let mut o = Options::default();
        o.detect.tile_scale = 0.0;
        o
    }

    #[test]
    fn misses_are_bridged_and_every_frame_comes_back_in_order() {
        let mut det = ScriptedDetector::new([face(10.0), vec![], face(14.0)]);
        let mut core = Core::new(&options(), 64, 48, Rotation::None);
        let mut out = Vec::new();
        for i in 0..5u32 {
            // A different picture every frame: nothing is reused from an unchanged region.
            let pic = RgbImage::from_pixel(64, 48, image::Rgb([(i * 50) as u8; 3]));
            out.extend(core.push(&mut det, &pic, Effort::Full, i).unwrap());
        }
        out.extend(core.finish());
        assert_eq!(out.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
        assert!(!out[1].1.boxes.is_empty(), "the miss between two detections is bridged");
        let s = core.stats();
        assert_eq!((s.frames, s.frames_released, s.frames_with_faces, s.detections), (5, 5, 2, 2));
        assert_eq!(s.frames_redacted as usize, out.iter().filter(|(_, v)| v.changes_pixels()).count());
    }

    #[test]
    fn a_detector_error_fails_or_blanks_by_policy() {
        let pic = RgbImage::new(32, 32);
        let mut det = ScriptedDetector::default().fail_at(0);
        let mut core = Core::<u8>::new(&options(), 32, 32, Rotation::None);
        assert!(core.push(&mut det, &pic, Effort::Full, 0).is_err());
        assert_eq!(core.stats().frames, 0, "the failed frame is not counted as analysed");

        let blanking = Options { on_detector_error: OnDetectorError::RedactFrame, ..options() };
        let mut det = ScriptedDetector::default().fail_at(0);
        let mut core = Core::<u8>::new(&blanking, 32, 32, Rotation::None);
        core.push(&mut det, &pic, Effort::Full, 0).unwrap();
        let out = core.finish();
        assert!(out[0].1.blank);
        assert_eq!(core.stats().frames_blanked, 1);
        assert_eq!(core.stats().redacted_area_fraction(), 1.0);
    }

    #[test]
    fn reduced_effort_grows_masks_and_alternate_skips_only_with_bridging() {
        let pic = RgbImage::new(640, 480);
        let mut det = ScriptedDetector::new([face(100.0), face(100.0)]);
        let mut core = Core::new(&options(), 640, 480, Rotation::None);
        core.push(&mut det, &pic, Effort::Reduced, 0).unwrap();
        let full = {
            let mut det = ScriptedDetector::new([face(100.0)]);
            let mut c = Core::new(&options(), 640, 480, Rotation::None);
            c.push(&mut det, &pic, Effort::Full, 0).unwrap();
            c.finish().remove(0).1.boxes[0]
        };
        let reduced = core.finish().remove(0).1.boxes[0];
        assert!(reduced.area() > full.area() * 1.5, "{reduced:?} vs {full:?}");
        assert_eq!(core.stats().frames_degraded, 1);

        // Alternate: frame 1 is skipped with bridging, searched without.
        let mut det = ScriptedDetector::new([face(1.0), face(2.0)]);
        let mut core = Core::new(&Options { bridge_frames: 0, tile_period: 1, ..options() }, 640, 480, Rotation::None);
        core.push(&mut det, &pic, Effort::Alternate, 0).unwrap();
        let second = core.push(&mut det, &pic, Effort::Alternate, 1).unwrap().unwrap();
        assert!(!second.1.boxes.is_empty(), "without bridging no frame is left unsearched");
    }

    #[test]
    fn rotated_frames_are_analysed_upright_and_answered_in_stored_pixels() {
        // Stored 200x100, shown turned 90°: the detector sees 100x200.
        let mut det = ScriptedDetector::new([vec![Detection { bbox: BBox::new(20.0, 40.0, 30.0, 50.0), score: 0.2 }]]);
        let mut opts = Options { bridge_frames: 0, tile_period: 1, ..options() };
        opts.detect.min_side = 32; // the detector sees the upright frame at its own size
        let mut core = Core::new(&opts, 200, 100, Rotation::Cw90);
        assert_eq!(core.upright_size(), (100, 200));
        assert!(core.push(&mut det, &RgbImage::new(200, 100), Effort::Full, ()).is_err(), "wrong size refused");
        let (_, v) = core.push(&mut det, &RgbImage::new(100, 200), Effort::Full, ()).unwrap().unwrap();
        assert_eq!(v.boxes[0], Rotation::Cw90.box_to_stored(&BBox::new(20.0, 40.0, 30.0, 50.0), 200, 100));
    }

    #[test]
    fn blank_verdict_fills_every_sample_of_the_channel_only() {
        let layout = ChannelLayout {
            width: 2,
            height: 2,
            stride: 6,
            step: 2,
            offset: 1,
            ..ChannelLayout::planar(2, 2, 6, 0, 0, true)
        };
        let mut buf = vec![7u8; 12];
        Verdict { blank: true, ..Verdict::default() }.apply(&mut buf, &layout, &RedactSettings::default()).unwrap();
        assert_eq!(buf, vec![7, BLANK, 7, BLANK, 7, 7, 7, BLANK, 7, BLANK, 7, 7]);
    }
}
