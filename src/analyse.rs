//! The per-frame core that every path shares (video files, live streams, the frame API, still images):
//! detect on the schedule → fail closed on detector errors → enlarge masks where effort was reduced →
//! bridge misses by tracking → decide each frame's [`Verdict`] → count, in one [`Stats`].
//!
//! Callers only convert pixels: they hand [`Core::push`] the frame upright, in full-resolution RGB, and
//! apply the verdict to their own buffers with [`Verdict::apply`]. The core never sees anything but boxes
//! and scores; it keeps no face pixels.

use crate::config::{FrameRate, OnDetectorError, Options, Schedule};
use crate::detect::fields::{first_field_upright, Scan};
use crate::detect::{
    face_regions, merge, whole_pass_as, Analyser, DetectSettings, Detection, Detector, Pass, Plan, Unsearched,
    WHOLE_PERIOD,
};
use crate::edits::Edits;
use crate::geom::{BBox, Rotation};
use crate::redact::{
    fill_channel, mask_area_fraction, redact_and_cover, redact_channel, ChannelLayout, RedactSettings, Shape,
};
use crate::track::motion::CameraMotion;
use crate::track::TrackFill;
use crate::Result;
use image::RgbImage;
use serde::Serialize;
use std::borrow::Cow;

/// Masks of frames analysed with reduced effort grow by this factor: when in doubt, redact more.
pub const DEGRADED_MASK_GROWTH: f32 = 1.25;
/// Longest side of the whole-frame pass at [`Effort::Alternate`].
pub const DEGRADED_DETECT_SIDE: u32 = 640;
/// Value a blanked frame is filled with in every channel: mid-grey in RGB and in YCbCr alike.
pub const BLANK: u8 = 128;
/// Cover regions ([`Verdict::cover`]) are redacted as strongly as a face this share of the frame's longer side
/// (at least [`COVER_MIN_FACE`]): they hold the faces too small for the whole-frame pass, whose smallest face
/// is a few percent of the frame.
pub const COVER_FACE_SHARE: f32 = 0.05;
/// Least face size, in frame pixels, cover regions are redacted for.
pub const COVER_MIN_FACE: f32 = 48.0;
/// Cover regions are whole cells of this many frame pixels (blocks of the change test, so as few and as large
/// rectangles as the changes allow are redacted).
const COVER_CELL: u32 = crate::detect::BLOCK;

/// The regions of an interlaced frame: its first field's (`now`) and, for its second field, taken half a frame
/// later, where its faces have got to on their way to the next frame's (`next`): each box of `now` joined to
/// every box of `next` of about its size within twice its size of it (not only the nearest: a face's old
/// place may still hold a box, bridged or coasting), and every box of `next` (a face come into the picture
/// between the frames). When in doubt, more.
pub fn with_second_field(mut now: Vec<BBox>, next: &[BBox]) -> Vec<BBox> {
    let size = |b: &BBox| b.area().max(1.0).sqrt();
    let mut joined = Vec::new();
    for b in &now {
        let (cx, cy) = b.center();
        let reach = 2.0 * b.width().max(b.height());
        joined.extend(
            next.iter()
                .filter(|n| (0.5..=2.0).contains(&(size(n) / size(b))))
                .filter(|n| (n.center().0 - cx).hypot(n.center().1 - cy) <= reach)
                .map(|n| b.union(n)),
        );
    }
    now.extend(joined);
    now.extend_from_slice(next);
    now
}

/// How much detection a frame gets. Files always get [`Effort::Full`]; a live run that falls behind real
/// time steps down (see the live pacer). Less effort never means less redaction: every reduced frame's masks
/// grow by [`DEGRADED_MASK_GROWTH`], and what no small-face search reaches in time is covered where it changed
/// ([`Verdict::cover`]), so a slower machine redacts more, not less.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effort {
    /// The full schedule: whole frame plus small-face tiles and focus passes, unchanged regions reused.
    Full,
    /// Tiles searched half as often.
    FewerTiles,
    /// Tiles searched a quarter as often, no focus passes.
    FewestTiles,
    /// Tiles searched an eighth as often, no focus passes, and the whole frame at [`DEGRADED_DETECT_SIDE`] on
    /// every other frame only: the frames between are left to the tracker, which bridges them from both
    /// sides, and what changed on them since the frame before is covered (only where bridging is on and the
    /// picture has small-face tiles; otherwise the whole frame is searched on every frame). As on the full
    /// schedule, that pass is a full one ([`Pass::Whole`]) at most as far apart as the bridging window holds
    /// and a repeat ([`Pass::WholeRepeat`]) between.
    Alternate,
}

impl Effort {
    /// The effort of a pacer level (0 full … 3 alternate).
    pub fn from_level(level: u8) -> Self {
        match level {
            0 => Effort::Full,
            1 => Effort::FewerTiles,
            2 => Effort::FewestTiles,
            _ => Effort::Alternate,
        }
    }

    /// The pacer level of this effort (0 full … 3 alternate): the inverse of [`from_level`](Self::from_level).
    pub fn level(self) -> u8 {
        match self {
            Effort::Full => 0,
            Effort::FewerTiles => 1,
            Effort::FewestTiles => 2,
            Effort::Alternate => 3,
        }
    }

    /// The part of the schedule the analyser runs (at `Alternate` it leaves out the whole-frame pass, which
    /// the core runs itself at its own size).
    fn plan(self) -> Plan {
        match self {
            Effort::Full => Plan::FULL,
            Effort::FewerTiles => Plan { tile_stretch: 2, ..Plan::FULL },
            Effort::FewestTiles => Plan { tile_stretch: 4, focus: false, whole: true },
            Effort::Alternate => Plan { tile_stretch: 8, focus: false, whole: false },
        }
    }
}

/// Frames from one full whole-frame pass to the next at [`Effort::Alternate`], which searches every other
/// frame: every [`WHOLE_PERIOD`]th frame searched at the base rate, and the same time apart at a rate
/// `rate_factor` times it ([`FrameRate::factor`]: every sixth frame searched at 50 fps); never further apart
/// than the bridging window holds, so a face only the full pass sees is bridged between them.
fn alternate_full_every(rate_factor: u32, window: u64) -> u64 {
    (2 * u64::from(WHOLE_PERIOD) * u64::from(rate_factor.max(1))).min(window + 1)
}

/// What happens to one frame's pixels.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Verdict {
    /// Regions to redact, in stored-frame pixels (detected, grown and bridged), before mask enlargement.
    pub boxes: Vec<BBox>,
    /// Regions a reviewer's edits add, each with its own settings (stored-frame pixels).
    pub added: Vec<(BBox, RedactSettings)>,
    /// Regions covered whole (box masks, as they are) because no small-face search reached them in time: where
    /// the picture changed since the search that last looked there (see [`Unsearched`]). Only frames analysed
    /// with reduced effort and the last frames of a stream have any.
    pub cover: Vec<BBox>,
    /// The detector failed on this frame and the policy is to blank it: every channel becomes flat grey.
    pub blank: bool,
}

impl Verdict {
    /// True when the frame's pixels change.
    pub fn changes_pixels(&self) -> bool {
        self.blank || !self.boxes.is_empty() || !self.added.is_empty() || !self.cover.is_empty()
    }

    /// Applies the verdict to one 8-bit channel of the frame.
    pub fn apply(&self, buf: &mut [u8], layout: &ChannelLayout, settings: &RedactSettings) -> Result<()> {
        if self.blank {
            return fill_channel(buf, layout, BLANK);
        }
        let long = (layout.width << layout.shift_x).max(layout.height << layout.shift_y) as f32;
        redact_and_cover(
            buf,
            layout,
            &self.boxes,
            &self.cover,
            settings,
            (long * COVER_FACE_SHARE).max(COVER_MIN_FACE),
        )?;
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
        let boxed = RedactSettings { shape: Shape::Box, mask_scale: 1.0, ..settings.clone() };
        let cover = mask_area_fraction(&self.cover, &boxed, width, height);
        (mask_area_fraction(&self.boxes, settings, width, height) + added + cover).min(1.0)
    }
}

/// The cells of a `w × h` grid of `cell`-pixel squares that `boxes` touch, as few rectangles: runs of cells on
/// each row, a run with the same columns on the next row extending the rectangle above it. Rectangles do not
/// overlap (each pixel is redacted once) and hold every box whole (clamped to the frame).
fn cover_rects(boxes: &[BBox], (w, h): (u32, u32), cell: u32) -> Vec<BBox> {
    let (cols, rows) = (w.div_ceil(cell) as usize, h.div_ceil(cell) as usize);
    if boxes.is_empty() || cols == 0 || rows == 0 {
        return Vec::new();
    }
    let mut on = vec![false; cols * rows];
    let c = cell as f32;
    for b in boxes.iter().map(|b| b.clamped(w, h)).filter(BBox::is_valid) {
        let (c0, c1) = ((b.x0 / c).floor() as usize, ((b.x1 / c).ceil() as usize).min(cols));
        let (r0, r1) = ((b.y0 / c).floor() as usize, ((b.y1 / c).ceil() as usize).min(rows));
        for r in r0..r1 {
            on[r * cols + c0..r * cols + c1].fill(true);
        }
    }
    let to_box = |c0: usize, c1: usize, r0: usize, r1: usize| {
        BBox::new(c0 as f32 * c, r0 as f32 * c, c1 as f32 * c, r1 as f32 * c).clamped(w, h)
    };
    let mut out = Vec::new();
    let mut open: Vec<(usize, usize, usize)> = Vec::new();
    for (r, row) in on.chunks_exact(cols).enumerate() {
        let mut next = Vec::new();
        for (x0, x1) in crate::geom::runs(cols, |x| row[x]) {
            let r0 = match open.iter().position(|&(a, z, _)| (a, z) == (x0, x1)) {
                Some(i) => open.swap_remove(i).2,
                None => r,
            };
            next.push((x0, x1, r0));
        }
        out.extend(open.drain(..).map(|(c0, c1, r0)| to_box(c0, c1, r0, r)));
        open = next;
    }
    out.extend(open.into_iter().map(|(c0, c1, r0)| to_box(c0, c1, r0, rows)));
    out
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
    /// Frames analysed at each effort level, 0 (full) to 3 ([`Effort::level`]): how far a live run fell back.
    pub frames_by_effort: [u64; 4],
    /// Frames released with regions covered whole because no small-face search reached them in time (see
    /// [`Verdict::cover`]).
    pub frames_covered: u64,
    /// Tracks started by the bridging tracker.
    pub tracks: u64,
    /// Frames on which the camera's own shift was measured and the tracker followed it ([`Options::follow_camera`]
    /// only).
    pub frames_camera_moved: u64,
    /// Detector passes run, and passes answered from an unchanged region.
    pub passes_run: u64,
    pub passes_reused: u64,
    /// Of `passes_run`, focus passes: small crops around faces the tiles found, searched on frames their
    /// tiles are not.
    pub passes_focus: u64,
    /// Detector input pixels of the passes run, by kind (see [`AnalyserStats::pixels`](crate::detect::AnalyserStats)).
    pub pixels: crate::detect::PassPixels,
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
    /// What no small-face pass searched in the frame (upright pixels); covered at release unless its tile was
    /// searched since (at full effort only).
    unsearched: Vec<Unsearched>,
    /// Analysed with reduced effort.
    degraded: bool,
    /// An interlaced frame: its second field is covered by [`with_second_field`].
    interlaced: bool,
    /// How far the camera moved the picture's content since the frame before (stored pixels).
    camera: (f32, f32),
}

/// Detection schedule, fail-closed policy, degrade rules, tracking and counting for one stream of frames of
/// one size. `T` is whatever the caller carries along with a frame (its pixels, its index); it comes back
/// with the frame's verdict once the look-ahead has seen past it.
pub struct Core<T> {
    detect: DetectSettings,
    redact: RedactSettings,
    on_error: OnDetectorError,
    bridging: bool,
    /// The last frame whose reduced-effort whole-frame pass ([`Effort::Alternate`]) was a full one.
    alternate_full_at: Option<u64>,
    /// Frames from one full reduced-effort whole-frame pass to the next (`alternate_full_every`).
    alternate_full_every: u64,
    /// Stored (not upright) frame size, and how the stored picture turns upright.
    size: (u32, u32),
    rotation: Rotation,
    analyser: Analyser,
    fill: TrackFill<Held<T>>,
    /// The camera's shift from frame to frame, for the tracker, when the options ask to follow the camera
    /// (video only: a still has nothing to bridge).
    motion: Option<CameraMotion>,
    stats: Stats,
    /// Passes run outside the analyser (reduced effort), and their detector input pixels.
    extra_passes: u64,
    extra_pixels: u64,
    /// The last detector error a frame was blanked for.
    last_error: Option<String>,
    /// Per tile, the last frame a tile pass searched it.
    searched_at: Vec<Option<u64>>,
    /// The newest frame, analysed, not yet handed to the tracker; and its upright pixels (kept only where
    /// there are tiles).
    newest: Option<(Held<T>, Vec<BBox>)>,
    newest_upright: RgbImage,
    /// Of the last frame analysed: what changed since the frame before, when its whole-frame pass was left out.
    skipped_whole: Vec<BBox>,
    /// A reviewer's edits: regions added, frames redacted whole, detections kept.
    edits: Option<Edits>,
    /// Once an interlaced frame came, every frame waits here for the next one, whose regions its second field
    /// needs ([`with_second_field`]).
    fields: Option<Option<(Held<T>, Vec<BBox>)>>,
}

impl<T> std::fmt::Debug for Core<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").field("size", &self.size).field("stats", &self.stats).finish()
    }
}

impl<T> Core<T> {
    /// A core for a stream of stored `width × height` frames shown turned by `rotation`, on the video
    /// schedule of `options` at the stream's frame `rate` ([`Options::schedule`]: tiles spread over
    /// `tile_period` frames, bridging over `bridge_frames`, tracks coasting `coast_frames`).
    pub fn new(options: &Options, rate: Option<FrameRate>, width: u32, height: u32, rotation: Rotation) -> Self {
        let (uw, uh) = rotation.upright_size(width, height);
        let schedule = options.schedule(rate);
        let rate_factor = rate.map_or(1, FrameRate::factor);
        let analyser = Analyser::new(options.detect.clone(), schedule.tile_period, uw, uh).at_rate_factor(rate_factor);
        Self::with(options, analyser, schedule, rate_factor, (width, height), rotation)
    }

    /// A core for one still picture: every pass at once, the whole frame at the full detector size, no
    /// bridging (there is nothing to bridge from).
    pub fn still(options: &Options, width: u32, height: u32) -> Self {
        let analyser = Analyser::exhaustive(options.detect.clone(), width, height);
        let still = Schedule { bridge_frames: 0, tile_period: 1, coast_frames: 0 };
        Self::with(options, analyser, still, 1, (width, height), Rotation::None)
    }

    /// The core over `analyser`, on `schedule`, for a stream `rate_factor` times the base rate
    /// ([`FrameRate::factor`]; 1 for a still).
    fn with(
        options: &Options,
        analyser: Analyser,
        schedule: Schedule,
        rate_factor: u32,
        (w, h): (u32, u32),
        rotation: Rotation,
    ) -> Self {
        let tiles = analyser.tile_count();
        let window = schedule.bridge_frames as usize;
        // Without bridging (a photo) there is no track to carry through the scene: the camera's motion is
        // not measured, whatever the options say (a photo's output does not depend on it, Options::affecting).
        let follow_camera = options.follow_camera && window > 0;
        // Above the base rate the full whole-frame pass comes every `whole_period` frames (twice as many as at
        // 25 fps, the same time apart): on the frames between, a face is covered at least the size of its
        // largest region of the frames around it (the full passes' regions are grown to the head).
        let keep_regions = if rate_factor > 1 { analyser.whole_period().saturating_sub(1) } else { 0 };
        Self {
            detect: options.detect.clone(),
            redact: options.redact.clone(),
            on_error: options.on_detector_error,
            bridging: window > 0,
            alternate_full_at: None,
            alternate_full_every: alternate_full_every(rate_factor, window as u64),
            size: (w, h),
            rotation,
            analyser,
            fill: TrackFill::new(window, schedule.coast_frames as usize)
                .in_scene(follow_camera)
                .keeping_regions(keep_regions),
            motion: follow_camera.then(CameraMotion::new),
            stats: Stats::default(),
            extra_passes: 0,
            extra_pixels: 0,
            last_error: None,
            searched_at: vec![None; tiles],
            newest: None,
            newest_upright: RgbImage::new(0, 0),
            skipped_whole: Vec::new(),
            edits: None,
            fields: None,
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

    /// Frames a pushed frame is held back for: the look-ahead, and the newest frame (and, once an interlaced
    /// frame came, the frame after it).
    pub fn delay(&self) -> usize {
        self.fill.delay() + 1 + usize::from(self.fields.is_some())
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
            frames_camera_moved: self.motion.as_ref().map_or(0, CameraMotion::frames_moved),
            passes_run: scheduled.passes_run + self.extra_passes,
            passes_reused: scheduled.passes_reused,
            passes_focus: scheduled.passes_focus,
            pixels: crate::detect::PassPixels { whole: scheduled.pixels.whole + self.extra_pixels, ..scheduled.pixels },
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
        self.push_picture(detector, Cow::Borrowed(upright), effort, (ms, Scan::Progressive), item)
    }

    /// [`push_at`](Self::push_at) giving the core the picture: the newest frame's is then kept without a copy
    /// and can be handed back for the next frame's pixels ([`spare_picture`](Self::spare_picture)).
    /// `scan`: an interlaced frame's detectors get its first field's picture ([`first_field_upright`]), and
    /// its second field's faces are covered from this frame's regions and the next one's
    /// ([`with_second_field`]).
    pub fn push_owned<D: Detector + ?Sized>(
        &mut self,
        detector: &mut D,
        upright: RgbImage,
        effort: Effort,
        (ms, scan): (i64, Scan),
        item: T,
    ) -> Result<Option<(T, Verdict)>> {
        self.push_picture(detector, Cow::Owned(upright), effort, (ms, scan), item)
    }

    /// The newest frame's picture, when the core kept one, for the caller to convert the next frame into: one
    /// full-resolution picture held instead of two, none allocated a frame. Take it only with the next frame
    /// in hand, to push at once: taken, it is gone, and if no frame follows, [`finish`](Self::finish) cannot
    /// search the tiles still due in it and covers what changed there instead.
    pub fn spare_picture(&mut self) -> Option<RgbImage> {
        let kept = std::mem::replace(&mut self.newest_upright, RgbImage::new(0, 0));
        (!kept.is_empty()).then_some(kept)
    }

    fn push_picture<D: Detector + ?Sized>(
        &mut self,
        detector: &mut D,
        upright: Cow<'_, RgbImage>,
        effort: Effort,
        (ms, scan): (i64, Scan),
        item: T,
    ) -> Result<Option<(T, Verdict)>> {
        let index = self.stats.frames;
        let interlaced = scan != Scan::Progressive;
        let upright = match scan {
            Scan::Interlaced { top_first } => {
                let mut picture = upright.into_owned();
                first_field_upright(&mut picture, self.rotation, self.size.1, top_first);
                self.fields.get_or_insert(None);
                Cow::Owned(picture)
            }
            Scan::Progressive => upright,
        };
        let attempt = self.detect(detector, &upright, effort, index);
        // What the frame's analysis searched counts only if it completed (a failed frame is blanked, or fails).
        let mut unsearched = Vec::new();
        if attempt.is_ok() {
            let (searched, not) = self.analyser.searched();
            for &k in searched {
                self.searched_at[k] = Some(index);
            }
            unsearched = not.to_vec();
            let skipped = std::mem::take(&mut self.skipped_whole);
            if !skipped.is_empty() {
                unsearched.push(Unsearched { tile: None, boxes: skipped });
            }
        }
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
        let n = found.len() as u64;
        self.stats.frames_with_faces += u64::from(n > 0);
        self.stats.detections += n;
        self.stats.max_faces_in_frame = self.stats.max_faces_in_frame.max(n);
        let degraded = effort != Effort::Full;
        let boxes = self.to_stored(&found, degraded);
        self.stats.frames_degraded += u64::from(degraded);
        self.stats.frames_by_effort[usize::from(effort.level())] += 1;
        let camera = self.camera_shift(&upright);
        // The newest frame waits here, its pixels kept, until the next one comes: if none does, the tiles its
        // schedule would have searched later are searched in it (see `finish`).
        if self.analyser.tile_count() > 0 {
            match upright {
                Cow::Owned(picture) => self.newest_upright = picture,
                Cow::Borrowed(picture) if self.newest_upright.dimensions() == picture.dimensions() => {
                    self.newest_upright.copy_from_slice(picture)
                }
                Cow::Borrowed(picture) => self.newest_upright = picture.clone(),
            }
        }
        let held = Held { item, blank, index, ms, unsearched, degraded, interlaced, camera };
        let Some((held, boxes)) = self.newest.replace((held, boxes)) else { return Ok(None) };
        let camera = held.camera;
        Ok(self.fill.push_moved(held, boxes, camera).and_then(|(held, boxes)| self.pass_on(held, boxes)))
    }

    /// The camera's shift since the frame before, measured on the upright picture, in stored pixels.
    fn camera_shift(&mut self, upright: &RgbImage) -> (f32, f32) {
        let Some(motion) = self.motion.as_mut().filter(|_| self.bridging) else { return (0.0, 0.0) };
        let (dx, dy) = motion.next(upright);
        if (dx, dy) == (0.0, 0.0) {
            return (0.0, 0.0);
        }
        let (w, h) = self.size;
        let at = |x: f32, y: f32| self.rotation.box_to_stored(&BBox::new(x, y, x + 1.0, y + 1.0), w, h);
        let (a, b) = (at(0.0, 0.0), at(dx, dy));
        (b.x0 - a.x0, b.y0 - a.y0)
    }

    /// A frame the tracker is done with: released, or, once interlaced frames come, released when the next
    /// one is here (an interlaced frame then gets [`with_second_field`]).
    fn pass_on(&mut self, held: Held<T>, boxes: Vec<BBox>) -> Option<(T, Verdict)> {
        let Some(waiting) = self.fields.as_mut() else { return Some(self.release(held, boxes)) };
        let next = boxes.clone();
        let (prev, prev_boxes) = waiting.replace((held, boxes))?;
        let prev_boxes = if prev.interlaced { with_second_field(prev_boxes, &next) } else { prev_boxes };
        Some(self.release(prev, prev_boxes))
    }

    /// The frame still waiting for its next one at the end of the stream: an interlaced one's regions grow (its
    /// second field's faces have moved on, and no frame tells where to).
    fn last_of_fields(&mut self) -> Option<(T, Verdict)> {
        let (held, boxes) = self.fields.as_mut()?.take()?;
        let (w, h) = self.size;
        let boxes = match held.interlaced {
            true => boxes.iter().map(|b| b.scaled(DEGRADED_MASK_GROWTH).clamped(w, h)).collect(),
            false => boxes,
        };
        Some(self.release(held, boxes))
    }

    /// Detections of the upright frame as regions to redact in stored pixels (grown on a degraded frame).
    fn to_stored(&self, found: &[Detection], degraded: bool) -> Vec<BBox> {
        let (w, h) = self.size;
        found
            .iter()
            .map(|d| self.rotation.box_to_stored(&d.bbox, w, h))
            .map(|b| if degraded { b.scaled(DEGRADED_MASK_GROWTH) } else { b })
            .map(|b| b.clamped(w, h))
            .filter(BBox::is_valid)
            .collect()
    }

    /// End of stream: every frame still held, with its verdict. The core can then take a new stream of the
    /// same size.
    ///
    /// The tiles that frames still held were not searched for, and that no later frame searched (their turn
    /// would have come after the end), are searched in the last frame first: the tracker bridges back from
    /// what they find as on any other turn. Where that search fails, or a held frame was analysed with reduced
    /// effort, what changed there is covered instead.
    pub fn finish<D: Detector + ?Sized>(&mut self, detector: &mut D) -> Vec<(T, Verdict)> {
        let mut out = Vec::new();
        if let Some((mut last, mut boxes)) = self.newest.take() {
            let mut due: Vec<usize> = self
                .fill
                .held()
                .chain(std::iter::once(&last))
                .filter(|held| !held.blank && !held.degraded)
                .flat_map(|held| {
                    let tiles = held.unsearched.iter().filter_map(|u| u.tile);
                    tiles.filter(|&k| self.searched_at[k].is_none_or(|s| s <= held.index))
                })
                .collect();
            due.sort_unstable();
            due.dedup();
            if !due.is_empty() && !last.blank {
                if let Ok(found) = self.analyser.search_tiles(detector, &self.newest_upright, &due) {
                    for &k in &due {
                        self.searched_at[k] = Some(last.index);
                    }
                    last.unsearched.retain(|u| !u.tile.is_some_and(|k| due.contains(&k)));
                    let more = self.to_stored(&found, last.degraded);
                    self.stats.frames_with_faces += u64::from(boxes.is_empty() && !more.is_empty());
                    self.stats.detections += more.len() as u64;
                    boxes.extend(more);
                }
            }
            let camera = last.camera;
            out.extend(self.fill.push_moved(last, boxes, camera).and_then(|(held, boxes)| self.pass_on(held, boxes)));
        }
        if let Some(motion) = self.motion.as_mut() {
            motion.reset();
        }
        let held = self.fill.finish();
        out.extend(held.into_iter().filter_map(|(held, boxes)| self.pass_on(held, boxes)));
        out.extend(self.last_of_fields());
        out
    }

    fn release(&mut self, held: Held<T>, boxes: Vec<BBox>) -> (T, Verdict) {
        let cover = self.cover(&held);
        let mut verdict = Verdict { boxes, blank: held.blank, cover, ..Verdict::default() };
        if let Some(edits) = self.edits.as_mut() {
            let boxes = std::mem::take(&mut verdict.boxes);
            verdict.boxes = edits.filter_detections(held.index, held.ms, self.rotation, self.size, boxes);
            verdict.added = edits.frame(held.index, held.ms, self.rotation, self.size, &self.redact).regions;
        }
        let (w, h) = self.size;
        self.stats.frames_released += 1;
        self.stats.frames_redacted += u64::from(verdict.changes_pixels());
        self.stats.frames_covered += u64::from(!verdict.cover.is_empty());
        self.stats.masked_area += verdict.masked_area(&self.redact, w, h);
        (held.item, verdict)
    }

    /// What of a frame no small-face search reached in time, in stored pixels: its unsearched regions. At full
    /// effort, a tile searched on a later frame of the look-ahead answers for it (the schedule's promise: the
    /// tracker bridges back from what that search finds); a frame analysed with reduced effort keeps all of
    /// it, since its tiles' turns are too far apart for the tracker's back-fill to follow a moving face.
    /// Empty for a blanked frame.
    fn cover(&self, held: &Held<T>) -> Vec<BBox> {
        if held.blank {
            return Vec::new();
        }
        let (w, h) = self.size;
        let searched_since = |u: &&Unsearched| {
            !held.degraded && u.tile.is_some_and(|k| self.searched_at[k].is_some_and(|s| s > held.index))
        };
        let boxes: Vec<BBox> =
            held.unsearched.iter().filter(|u| !searched_since(u)).flat_map(|u| u.boxes.iter().copied()).collect();
        cover_rects(&boxes, self.upright_size(), COVER_CELL)
            .iter()
            .map(|b| self.rotation.box_to_stored(b, w, h).clamped(w, h))
            .filter(BBox::is_valid)
            .collect()
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
        self.skipped_whole.clear();
        let mut found = self.analyser.analyse_with(detector, upright, effort.plan())?;
        // Far behind real time: the whole frame is searched small, and every other frame is left to the tracker,
        // which bridges it from the frames on both sides (their masks are enlarged), with what changed on it since
        // the frame before covered. Without bridging, or without tiles (whose cover holds the faces no pass
        // reached), no frame is skipped.
        let skip = self.bridging && index % 2 == 1 && self.analyser.tile_count() > 0;
        if effort == Effort::Alternate && skip {
            self.skipped_whole = self.analyser.changed_since_previous();
        }
        if effort == Effort::Alternate && !skip {
            let side = DEGRADED_DETECT_SIDE.min(self.detect.max_side);
            let settings =
                DetectSettings { max_side: side, min_side: self.detect.min_side.min(side), ..self.detect.clone() };
            let input = settings.input_size(uw, uh);
            self.extra_passes += 1;
            self.extra_pixels += crate::detect::input_pixels(input.0 as f32, input.1 as f32, 1.0);
            // As on the full schedule, the pass is a full one only every few frames searched and a repeat between
            // (which a detector pair searches with its cheaper model in daylight).
            let pass = match self.alternate_full_at {
                Some(at) if index.saturating_sub(at) < self.alternate_full_every => Pass::WholeRepeat,
                _ => {
                    self.alternate_full_at = Some(index);
                    Pass::Whole
                }
            };
            let whole = whole_pass_as(detector, upright, input, pass)?;
            let whole = crate::detect::plausible(whole, (uw, uh), input, self.detect.threshold, || {
                crate::detect::lowlight::is_dark(upright)
            });
            found.extend(face_regions(merge(whole, settings.nms_iou)));
        }
        Ok(found)
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
        let mut core = Core::new(&options(), None, 64, 48, Rotation::None);
        let mut out = Vec::new();
        for i in 0..5u32 {
            // A different picture every frame: nothing is reused from an unchanged region.
            let pic = RgbImage::from_pixel(64, 48, image::Rgb([(i * 50) as u8; 3]));
            out.extend(core.push(&mut det, &pic, Effort::Full, i).unwrap());
        }
        out.extend(core.finish(&mut det));
        assert_eq!(out.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
        assert!(!out[1].1.boxes.is_empty(), "the miss between two detections is bridged");
        let s = core.stats();
        assert_eq!((s.frames, s.frames_released, s.frames_with_faces, s.detections), (5, 5, 2, 2));
        assert_eq!(s.frames_redacted as usize, out.iter().filter(|(_, v)| v.changes_pixels()).count());
    }

    #[test]
    fn a_50_fps_core_bridges_a_gap_of_twice_its_window_that_the_25_fps_schedule_leaves_open() {
        // A face seen at frames 0 and 22 only: at 50 fps tracks coast 10 frames and new ones are back-filled 11,
        // so every frame between is covered; on the 25 fps schedule (coast 10, back-fill 5) frames 11-16 are not.
        let run = |rate| {
            let mut script = vec![face(10.0)];
            script.extend((1..22).map(|_| vec![]));
            script.push(face(10.0));
            let mut det = ScriptedDetector::new(script);
            let mut core = Core::new(&options(), rate, 64, 48, Rotation::None);
            let mut out = Vec::new();
            for i in 0..23u32 {
                let pic = RgbImage::from_pixel(64, 48, image::Rgb([(i * 10) as u8; 3]));
                out.extend(core.push(&mut det, &pic, Effort::Full, i).unwrap());
            }
            out.extend(core.finish(&mut det));
            (core.delay(), out.iter().filter(|(_, v)| v.boxes.is_empty()).map(|(i, _)| *i).collect::<Vec<_>>())
        };
        assert_eq!(run(FrameRate::new(50, 1)), (12, vec![]));
        assert_eq!(run(FrameRate::new(25, 1)), (6, (11..17).collect::<Vec<_>>()));
        assert_eq!(run(None), (6, (11..17).collect::<Vec<_>>()));
    }

    #[test]
    fn an_interlaced_frames_second_field_is_covered_on_the_way_to_the_next_frames_faces() {
        // A face moving right 20 px a frame: the second field has it halfway, outside both frames' boxes. (The
        // scripted boxes are in the detector's input pixels, scaled to the frame's by `s`.)
        let (iw, _) = options().detect.input_size(96, 48);
        let s = 96.0 / iw as f32;
        let b = |x: f32| BBox::new(x * s, 10.0 * s, (x + 12.0) * s, 24.0 * s);
        let mut det = ScriptedDetector::new([10.0, 30.0, 50.0].map(face));
        let mut core = Core::new(&options(), None, 96, 48, Rotation::None);
        let mut out = Vec::new();
        for i in 0..3u32 {
            let pic = RgbImage::from_pixel(96, 48, image::Rgb([(i * 50) as u8; 3]));
            out.extend(
                core.push_owned(
                    &mut det,
                    pic,
                    Effort::Full,
                    (i64::from(i) * 40, Scan::Interlaced { top_first: true }),
                    i,
                )
                .unwrap(),
            );
        }
        assert_eq!(core.delay(), core.fill.delay() + 2, "an interlaced frame waits for the next one");
        out.extend(core.finish(&mut det));
        assert_eq!(out.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![0, 1, 2]);
        let holds = |v: &Verdict, want: BBox| v.boxes.iter().any(|k| k.intersection(&want) >= want.area() - 1e-3);
        for (i, v) in out.iter().take(2) {
            let at = 10.0 + 20.0 * *i as f32;
            assert!(holds(v, b(at)) && holds(v, b(at + 10.0)), "frame {i}: {:?}", v.boxes);
        }
        // The last frame has no next one: its regions grow instead.
        assert!(out[2].1.boxes.iter().all(|k| k.width() > 12.0 * s), "{:?}", out[2].1.boxes);
        // A progressive frame's regions are its own.
        let mut det = ScriptedDetector::new([10.0, 30.0].map(face));
        let mut core = Core::new(&options(), None, 96, 48, Rotation::None);
        let mut out = Vec::new();
        for i in 0..2u32 {
            let pic = RgbImage::from_pixel(96, 48, image::Rgb([(i * 50) as u8; 3]));
            out.extend(core.push_owned(&mut det, pic, Effort::Full, (0, Scan::Progressive), i).unwrap());
        }
        out.extend(core.finish(&mut det));
        assert!(!holds(&out[0].1, b(20.0)), "{:?}", out[0].1.boxes);
    }

    #[test]
    fn a_box_joins_every_box_of_its_size_within_reach_in_the_next_frame_and_the_next_frames_come_too() {
        let b = |x: f32, w: f32| BBox::new(x, 0.0, x + w, w);
        // A face (10 px) moving 15 px, a stale box still at its old place, a far face, and a large box.
        let regions =
            with_second_field(vec![b(0.0, 10.0)], &[b(15.0, 10.0), b(1.0, 10.0), b(60.0, 10.0), b(5.0, 40.0)]);
        assert!(regions.contains(&b(0.0, 10.0).union(&b(15.0, 10.0))), "joined to where it went: {regions:?}");
        assert!(!regions.contains(&b(0.0, 10.0).union(&b(60.0, 10.0))), "not to a face beyond reach");
        assert!(!regions.contains(&b(0.0, 10.0).union(&b(5.0, 40.0))), "not to a box four times its size");
        for n in [b(15.0, 10.0), b(1.0, 10.0), b(60.0, 10.0), b(5.0, 40.0)] {
            assert!(regions.contains(&n), "the next frame's {n:?} comes too");
        }
    }

    #[test]
    fn a_head_the_detector_loses_under_a_shaking_camera_stays_covered_where_it_is() {
        // A hand-held camera over a textured scene, shaking ±14 px each frame and drifting; a head (24 px) stands
        // still in the scene. The detector sees it on frames 0..=6 and 10..=11, misses 7..=9 (bridged) and
        // everything from 12 (coasting). The core measures the shake from the pixels; every box stays on the
        // head, in a stored frame turned upright by any rotation.
        use crate::track::motion::testing::view;
        let (uw, uh) = (640, 360);
        let (iw, _) = options().detect.input_size(uw, uh);
        let s = iw as f32 / uw as f32;
        let options = || Options { follow_camera: true, ..options() };
        let camera = |i: u32| (100.0 + 3.0 * i as f32 + if i % 2 == 0 { 14.0 } else { -14.0 }, 80.0 + 2.0 * i as f32);
        let head = |i: u32| {
            let (ox, oy) = camera(i);
            BBox::new(400.0 - ox, 200.0 - oy, 424.0 - ox, 224.0 - oy)
        };
        let seen = |i: u32| !(7..=9).contains(&i) && i < 12;
        for rotation in [Rotation::None, Rotation::Cw90, Rotation::Cw180] {
            let (w, h) = match rotation {
                Rotation::Cw90 | Rotation::Cw270 => (uh, uw),
                _ => (uw, uh),
            };
            let script = (0..20).map(|i| {
                let b = head(i);
                let input = BBox::new(b.x0 * s, b.y0 * s, b.x1 * s, b.y1 * s);
                if seen(i) {
                    vec![Detection { bbox: input, score: 0.9 }]
                } else {
                    vec![]
                }
            });
            let mut det = ScriptedDetector::new(script);
            let mut core = Core::new(&options(), None, w, h, rotation);
            let mut out = Vec::new();
            for i in 0..20u32 {
                let (ox, oy) = camera(i);
                out.extend(core.push(&mut det, &view(ox, oy, uw, uh), Effort::Full, i).unwrap());
            }
            out.extend(core.finish(&mut det));
            assert_eq!(out.len(), 20);
            for (i, v) in &out {
                let truth = rotation.box_to_stored(&head(*i), w, h);
                let best = v.boxes.iter().map(|b| b.intersection(&truth)).fold(0.0, f32::max);
                assert!(best >= 0.95 * truth.area(), "{rotation:?} frame {i}: the head is bare: {:?}", v.boxes);
                if !seen(*i) && *i < 15 {
                    let b = v.boxes.iter().max_by(|a, b| a.intersection(&truth).total_cmp(&b.intersection(&truth)));
                    let d = b.map(|b| (b.center().0 - truth.center().0).hypot(b.center().1 - truth.center().1));
                    assert!(d.is_some_and(|d| d < 3.0), "{rotation:?} frame {i}: the box drifted off: {d:?}");
                }
            }
        }
    }

    #[test]
    fn a_detector_error_fails_or_blanks_by_policy() {
        let pic = RgbImage::new(32, 32);
        let mut det = ScriptedDetector::default().fail_at(0);
        let mut core = Core::<u8>::new(&options(), None, 32, 32, Rotation::None);
        assert!(core.push(&mut det, &pic, Effort::Full, 0).is_err());
        assert_eq!(core.stats().frames, 0, "the failed frame is not counted as analysed");

        let blanking = Options { on_detector_error: OnDetectorError::RedactFrame, ..options() };
        let mut det = ScriptedDetector::default().fail_at(0);
        let mut core = Core::<u8>::new(&blanking, None, 32, 32, Rotation::None);
        core.push(&mut det, &pic, Effort::Full, 0).unwrap();
        let out = core.finish(&mut det);
        assert!(out[0].1.blank);
        assert_eq!(core.stats().frames_blanked, 1);
        assert_eq!(core.stats().redacted_area_fraction(), 1.0);
    }

    #[test]
    fn reduced_effort_grows_masks_and_alternate_skips_only_with_bridging() {
        let pic = RgbImage::new(640, 480);
        let mut det = ScriptedDetector::new([face(100.0), face(100.0)]);
        let mut core = Core::new(&options(), None, 640, 480, Rotation::None);
        core.push(&mut det, &pic, Effort::FewestTiles, 0).unwrap();
        let full = {
            let mut det = ScriptedDetector::new([face(100.0)]);
            let mut c = Core::new(&options(), None, 640, 480, Rotation::None);
            c.push(&mut det, &pic, Effort::Full, 0).unwrap();
            c.finish(&mut det).remove(0).1.boxes[0]
        };
        let reduced = core.finish(&mut det).remove(0).1.boxes[0];
        assert!(reduced.area() > full.area() * 1.5, "{reduced:?} vs {full:?}");
        assert_eq!(core.stats().frames_degraded, 1);

        // Alternate: frame 1 is skipped with bridging, searched without.
        let mut det = ScriptedDetector::new([face(1.0), face(2.0)]);
        let unbridged = Options { bridge_frames: Some(0), tile_period: Some(1), ..options() };
        let mut core = Core::new(&unbridged, None, 640, 480, Rotation::None);
        core.push(&mut det, &pic, Effort::Alternate, 0).unwrap();
        core.push(&mut det, &pic, Effort::Alternate, 1).unwrap();
        let second = core.finish(&mut det).pop().unwrap();
        assert_eq!(second.0, 1);
        assert!(!second.1.boxes.is_empty(), "without bridging no frame is left unsearched");
    }

    /// Records which pass each call was for.
    struct PassLog(Vec<Pass>);

    impl Detector for PassLog {
        fn detect(&mut self, image: &RgbImage) -> Result<Vec<Detection>> {
            self.detect_for(image, Pass::Whole)
        }
        fn detect_for(&mut self, _image: &RgbImage, pass: Pass) -> Result<Vec<Detection>> {
            self.0.push(pass);
            Ok(Vec::new())
        }
    }

    #[test]
    fn far_behind_the_whole_frame_pass_is_full_as_often_as_the_bridging_window_holds_and_the_rate_needs() {
        // No tiles, so no frame is skipped: every frame gets the reduced whole-frame pass. A full pass (both
        // models of a pair) every sixth frame, repeats (the cheaper one in daylight) between: five frames
        // between full passes, the default bridging window.
        let pic = RgbImage::new(640, 480);
        let mut det = PassLog(Vec::new());
        let mut core = Core::new(&options(), None, 640, 480, Rotation::None);
        for i in 0..13u32 {
            core.push(&mut det, &pic, Effort::Alternate, i).unwrap();
        }
        let full: Vec<usize> = det.0.iter().enumerate().filter(|(_, p)| **p == Pass::Whole).map(|(i, _)| i).collect();
        assert_eq!(full, [0, 6, 12], "{:?}", det.0);
        assert!(det.0.iter().all(|p| matches!(p, Pass::Whole | Pass::WholeRepeat)), "{:?}", det.0);

        // A narrower window keeps full passes closer: with two frames bridged, every third frame.
        let mut det = PassLog(Vec::new());
        let mut core = Core::new(&Options { bridge_frames: Some(2), ..options() }, None, 640, 480, Rotation::None);
        for i in 0..7u32 {
            core.push(&mut det, &pic, Effort::Alternate, i).unwrap();
        }
        let full: Vec<usize> = det.0.iter().enumerate().filter(|(_, p)| **p == Pass::Whole).map(|(i, _)| i).collect();
        assert_eq!(full, [0, 3, 6], "{:?}", det.0);

        // At 50 fps the same time apart: every twelfth frame (the window there bridges 11); with the 25 fps
        // window given, its limit again.
        let full_passes = |opts: &Options, frames: u32| {
            let mut det = PassLog(Vec::new());
            let mut core = Core::new(opts, FrameRate::new(50, 1), 640, 480, Rotation::None);
            for i in 0..frames {
                core.push(&mut det, &pic, Effort::Alternate, i).unwrap();
            }
            det.0.iter().enumerate().filter(|(_, p)| **p == Pass::Whole).map(|(i, _)| i).collect::<Vec<_>>()
        };
        assert_eq!(full_passes(&options(), 25), [0, 12, 24]);
        assert_eq!(full_passes(&Options { bridge_frames: Some(5), ..options() }, 13), [0, 6, 12]);
    }

    #[test]
    fn rotated_frames_are_analysed_upright_and_answered_in_stored_pixels() {
        // Stored 200x100, shown turned 90°: the detector sees 100x200.
        let mut det = ScriptedDetector::new([vec![Detection { bbox: BBox::new(20.0, 40.0, 30.0, 50.0), score: 0.2 }]]);
        let mut opts = Options { bridge_frames: Some(0), tile_period: Some(1), ..options() };
        opts.detect.min_side = 32; // the detector sees the upright frame at its own size
        let mut core = Core::new(&opts, None, 200, 100, Rotation::Cw90);
        assert_eq!(core.upright_size(), (100, 200));
        assert!(core.push(&mut det, &RgbImage::new(200, 100), Effort::Full, ()).is_err(), "wrong size refused");
        assert!(core.push(&mut det, &RgbImage::new(100, 200), Effort::Full, ()).unwrap().is_none());
        let (_, v) = core.finish(&mut det).pop().unwrap();
        assert_eq!(v.boxes[0], Rotation::Cw90.box_to_stored(&BBox::new(20.0, 40.0, 30.0, 50.0), 200, 100));
    }

    /// A 1280×720 grey picture of brightness `level`, with a bright 12×12 square (a small face) at `spot`.
    fn scene(level: u8, spot: Option<(u32, u32)>) -> RgbImage {
        let mut img = RgbImage::from_pixel(1280, 720, image::Rgb([level; 3]));
        if let Some((sx, sy)) = spot {
            for y in sy..sy + 12 {
                for x in sx..sx + 12 {
                    img.put_pixel(x, y, image::Rgb([250; 3]));
                }
            }
        }
        img
    }

    /// Applies `v` to `pic`'s pixels and returns the brightest sample left in the 12×12 square at `spot`.
    fn peak_left(v: &Verdict, pic: RgbImage, (x, y): (u32, u32)) -> u8 {
        let mut pixels = pic.into_raw();
        for layout in ChannelLayout::packed_rgb(1280, 720) {
            v.apply(&mut pixels, &layout, &RedactSettings::default()).unwrap();
        }
        let after = RgbImage::from_raw(1280, 720, pixels).unwrap();
        (y..y + 12).flat_map(|y| (x..x + 12).map(move |x| (x, y))).map(|(x, y)| after.get_pixel(x, y)[0]).max().unwrap()
    }

    #[test]
    fn the_tiles_whose_turn_comes_after_the_end_are_searched_in_the_last_frame() {
        // Full effort, tiles spread over 6 frames, 5 frames of look-ahead: every tile a frame did not search is
        // searched on a later frame within its look-ahead, and the tracker bridges back from what it finds. For
        // the last frames that turn never comes, so the core searches those tiles in the last frame at the end.
        // A small face (only the magnified passes see it) appears in the last three frames, in tile 8's part of
        // the picture (searched on frame 14; its next turn, frame 20, is after the end).
        let mut det = Spotter { min: 16 };
        let mut core = Core::new(&Options::default(), None, 1280, 720, Rotation::None);
        assert_eq!((core.analyser.tile_count(), core.delay()), (9, 6));
        let spot_at = |i: u8| (i >= 17).then_some((1180, 640));
        let mut out = Vec::new();
        for i in 0..20u8 {
            out.extend(core.push(&mut det, &scene(60 + i, spot_at(i)), Effort::Full, i).unwrap());
        }
        let before = core.stats().passes_run;
        out.extend(core.finish(&mut det));
        assert_eq!(out.iter().map(|(i, _)| *i).collect::<Vec<_>>(), (0..20).collect::<Vec<_>>());
        for (i, v) in &out {
            if let Some(spot) = spot_at(*i) {
                let peak = peak_left(v, scene(60 + i, Some(spot)), spot);
                assert!(peak < 240, "frame {i}: the face is left (peak {peak}): {v:?}");
            }
            assert!(v.cover.is_empty(), "frame {i}: searched, nothing to cover");
        }
        assert!(core.stats().passes_run > before, "the remaining tiles were searched at the end");
        assert_eq!(core.stats().frames_covered, 0);

        // The same frames given to the core as the video pipeline gives them: each picture written into the
        // memory of the one before (taken back from the core) and kept without a copy. The same verdicts.
        let mut core = Core::new(&Options::default(), None, 1280, 720, Rotation::None);
        let mut owned = Vec::new();
        for i in 0..20u8 {
            let mut picture = core.spare_picture().unwrap_or_default();
            assert_eq!(picture.dimensions(), if i == 0 { (0, 0) } else { (1280, 720) }, "frame {i}");
            picture.clone_from(&scene(60 + i, spot_at(i)));
            owned.extend(core.push_owned(&mut det, picture, Effort::Full, (0, Scan::Progressive), i).unwrap());
        }
        owned.extend(core.finish(&mut det));
        let boxes = |out: &[(u8, Verdict)]| out.iter().map(|(i, v)| (*i, v.boxes.clone())).collect::<Vec<_>>();
        assert_eq!(boxes(&owned), boxes(&out));

        // The newest picture taken back with no frame following: the end cannot search the tiles still due in
        // it, and what changed there is covered instead (never left unsearched and uncovered).
        let mut core = Core::new(&Options::default(), None, 1280, 720, Rotation::None);
        let mut taken = Vec::new();
        for i in 0..20u8 {
            taken.extend(
                core.push_owned(&mut det, scene(60 + i, spot_at(i)), Effort::Full, (0, Scan::Progressive), i).unwrap(),
            );
        }
        assert!(core.spare_picture().is_some());
        taken.extend(core.finish(&mut det));
        assert_eq!(taken.len(), 20);
        assert!(core.stats().frames_covered > 0, "the frames whose tiles were not searched are covered");
        for (i, v) in &taken {
            if let Some(spot) = spot_at(*i) {
                let peak = peak_left(v, scene(60 + i, Some(spot)), spot);
                assert!(peak < 240, "frame {i}: the face is left (peak {peak}): {v:?}");
            }
        }
    }

    /// Finds the bright pixels of a picture, where they are at least `min` pixels wide in the picture it is
    /// given: with `min` 16, a 12-pixel square is found by the magnified small-face passes (tiles at 2×, focus
    /// crops) and missed by the whole-frame pass (half size).
    struct Spotter {
        min: u32,
    }

    impl Detector for Spotter {
        fn detect(&mut self, img: &RgbImage) -> Result<Vec<Detection>> {
            let bright = img.enumerate_pixels().filter(|(_, _, p)| p[0] > 200).map(|(x, y, _)| (x, y));
            let (x0, y0, x1, y1) = bright.fold((u32::MAX, u32::MAX, 0, 0), |(a, b, c, d), (x, y)| {
                (a.min(x), b.min(y), c.max(x + 1), d.max(y + 1))
            });
            Ok(if x1 >= x0.saturating_add(self.min) {
                vec![Detection { bbox: BBox::new(x0 as f32, y0 as f32, x1 as f32, y1 as f32), score: 0.9 }]
            } else {
                Vec::new()
            })
        }
    }

    #[test]
    fn a_small_face_is_destroyed_on_every_frame_at_every_effort() {
        // A static scene; a small face (only the magnified passes see it) walks in while effort drops to each
        // level and comes back. On every frame, after the verdict is applied to the real pixels, none of the
        // face's pixels is left; and only what changed is covered.
        let effort_at = |i: u32| match i {
            10..25 => Effort::FewerTiles,
            25..45 => Effort::FewestTiles,
            45..75 => Effort::Alternate,
            _ => Effort::Full,
        };
        let mut core = Core::new(&Options::default(), None, 1280, 720, Rotation::None);
        let mut det = Spotter { min: 16 };
        // It walks in at reduced effort.
        let spot_at = |i: u32| (i >= 30).then(|| (100 + 9 * i, 100 + 4 * i));
        let (mut out, mut degraded) = (Vec::new(), 0);
        for i in 0..90u32 {
            let effort = effort_at(i);
            degraded += u64::from(effort != Effort::Full);
            out.extend(core.push(&mut det, &scene(60, spot_at(i)), effort, i).unwrap());
        }
        out.extend(core.finish(&mut det));
        assert_eq!(out.len(), 90);
        for (i, v) in &out {
            let cover: f32 = v.cover.iter().map(BBox::area).sum();
            match spot_at(*i) {
                None => assert!(v.cover.is_empty(), "frame {i}: nothing changed, nothing covered"),
                Some((x, y)) => {
                    let peak = peak_left(v, scene(60, Some((x, y))), (x, y));
                    assert!(peak < 240, "frame {i}: the face at ({x}, {y}) is left (peak {peak}): {v:?}");
                    assert!(cover < 0.01 * 1280.0 * 720.0, "frame {i}: only what changed is covered ({cover} px)");
                }
            }
        }
        let s = core.stats();
        assert_eq!(s.frames_degraded, degraded);
        let by_effort: Vec<u64> =
            (0..4).map(|level| (0..90).filter(|&i| effort_at(i).level() == level).count() as u64).collect();
        assert_eq!(s.frames_by_effort.to_vec(), by_effort);
        assert_eq!(s.frames_by_effort[1..].iter().sum::<u64>(), degraded);
        assert!(s.frames_covered > 0 && s.frames_covered < degraded, "{s:?}");
    }

    #[test]
    fn a_face_on_one_skipped_frame_is_destroyed_at_the_lowest_effort_issue_33() {
        // At the lowest effort every other frame has no whole-frame pass. A face seen on one such frame only (here
        // a large one, 40 px, which the whole-frame pass finds) must still be destroyed: without tiles the whole
        // frame is searched on every frame; with tiles what changed since the frame before is covered.
        for (w, h) in [(320u32, 240u32), (1280, 720)] {
            let spot = (120, 80);
            let pic = |face: bool| {
                let mut img = RgbImage::from_pixel(w, h, image::Rgb([60; 3]));
                if face {
                    for y in spot.1..spot.1 + 40 {
                        for x in spot.0..spot.0 + 40 {
                            img.put_pixel(x, y, image::Rgb([250; 3]));
                        }
                    }
                }
                img
            };
            let mut det = Spotter { min: 8 };
            let mut core = Core::new(&Options::default(), None, w, h, Rotation::None);
            assert_eq!(core.analyser.tile_count() > 0, w > 320, "{w}x{h}");
            let mut out = Vec::new();
            for i in 0..8u32 {
                out.extend(core.push(&mut det, &pic(i == 3), Effort::Alternate, i).unwrap());
            }
            out.extend(core.finish(&mut det));
            let (_, v) = &out[3];
            // Every pixel of the face lies in a region the verdict redacts (a face found, or a covered change).
            let inside = |b: &BBox, x: u32, y: u32| {
                (x as f32) >= b.x0 && (x as f32) < b.x1 && (y as f32) >= b.y0 && (y as f32) < b.y1
            };
            let left = (spot.1..spot.1 + 40)
                .flat_map(|y| (spot.0..spot.0 + 40).map(move |x| (x, y)))
                .filter(|&(x, y)| !v.boxes.iter().chain(&v.cover).any(|b| inside(b, x, y)))
                .count();
            assert_eq!(left, 0, "{w}x{h}: the face on the skipped frame is left unredacted: {v:?}");
        }
    }

    #[test]
    fn a_frame_never_searched_for_small_faces_is_covered_whole() {
        // Far behind from the first frame: tile 0 is searched, no other tile ever was.
        let mut det = ScriptedDetector::default();
        let mut core = Core::new(&Options::default(), None, 1280, 720, Rotation::None);
        core.push(&mut det, &scene(60, None), Effort::Alternate, ()).unwrap();
        let (_, v) = core.finish(&mut det).remove(0);
        let held = |x: f32, y: f32| v.cover.iter().any(|c| x >= c.x0 && x < c.x1 && y >= c.y0 && y < c.y1);
        assert!(held(1279.0, 719.0) && held(640.0, 360.0) && held(1279.0, 0.0) && held(0.0, 719.0), "{:?}", v.cover);
        assert!(v.boxes.is_empty());
    }

    #[test]
    fn cover_rectangles_hold_every_box_and_overlap_nowhere() {
        let mut rand = crate::redact::tests::xorshift(7);
        for _ in 0..300 {
            let mut next = |n: u32| rand() % n;
            let (w, h) = (40 + next(200), 30 + next(200));
            let boxes: Vec<BBox> = (0..next(6))
                .map(|_| {
                    let (x, y) = (next(w + 20) as f32 - 10.0, next(h + 20) as f32 - 10.0);
                    BBox::new(x, y, x + 1.0 + next(60) as f32, y + 1.0 + next(60) as f32)
                })
                .collect();
            let rects = cover_rects(&boxes, (w, h), 8);
            let inside = |x: u32, y: u32, b: &BBox| {
                (x as f32) >= b.x0 && (x as f32) < b.x1 && (y as f32) >= b.y0 && (y as f32) < b.y1
            };
            for y in 0..h {
                for x in 0..w {
                    let n = rects.iter().filter(|r| inside(x, y, r)).count();
                    let cell = |b: &BBox| {
                        let c = b.clamped(w, h);
                        let (c0, r0) = ((c.x0 / 8.0).floor() as u32, (c.y0 / 8.0).floor() as u32);
                        let (c1, r1) = ((c.x1 / 8.0).ceil() as u32, (c.y1 / 8.0).ceil() as u32);
                        c.is_valid() && (c0..c1).contains(&(x / 8)) && (r0..r1).contains(&(y / 8))
                    };
                    let wanted = boxes.iter().any(cell);
                    assert_eq!(n, usize::from(wanted), "pixel ({x}, {y}) of {w}x{h}, boxes {boxes:?}, rects {rects:?}");
                }
            }
        }
        assert!(cover_rects(&[], (64, 64), 8).is_empty());
        // A changed band over whole rows is one rectangle.
        let band = cover_rects(&[BBox::new(0.0, 8.0, 64.0, 20.0)], (64, 64), 8);
        assert_eq!(band, vec![BBox::new(0.0, 8.0, 64.0, 24.0)]);
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
