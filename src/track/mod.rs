//! Temporal coverage by motion and overlap only (no appearance features, no pixels kept).
//!
//! [`Tracker`] links each frame's detections to tracks: greedy matching on the overlap with each track's
//! predicted box, or on centre distance relative to face size for heads that move more than their own
//! width between frames. [`TrackFill`] delays frames by a bounded look-ahead (`window`) and then gives every
//! frame, besides its own detections, boxes for each track alive around it:
//! - between two detections of a track (a detector miss), the box is interpolated, so it follows the head
//!   instead of lagging;
//! - up to `coast` frames after a track's last detection, the box is extrapolated with the track's velocity
//!   and grows with every frame of uncertainty; tracks in the scene ([`TrackFill::in_scene`]) add a box
//!   where the head stood (a velocity measured on flickering detections of small faces is often wrong, and
//!   heads stop), unless the two nearly agree;
//! - up to `window` frames before a track's first detection (back-fill), likewise backwards.
//!
//! Tracks live in scene coordinates when the caller measures the camera's motion ([`motion::CameraMotion`],
//! given to [`TrackFill::push_moved`]): a detection is placed in the scene by the camera's shift since the
//! track's last one, velocities are the head's own, and every box goes back into the picture by the camera's
//! measured shift up to its frame. A shaking camera then moves coasting, back-filled and interpolated boxes
//! with the picture instead of flinging them along its last shake. Without a measure (shift zero) the tracker
//! works in picture coordinates, as it always did. A measure that is wrong by the same amount every frame (a
//! crowd walking one way taken for the camera) goes into each track's velocity, so the moving box stays
//! right, and cancels out of interpolation; only a measure that jumps wrongly for a frame could move a box,
//! which is why [`motion::CameraMotion`] answers zero whenever one shift does not clearly explain the picture.
//!
//! Memory is bounded: `window` frames held, and for each track only the detections the emitted frames can
//! still use.

pub mod follow;
pub mod motion;

use crate::geom::BBox;
use std::collections::VecDeque;

/// Growth of an extrapolated box per frame of distance from the detection it comes from.
pub const GROWTH_PER_FRAME: f32 = 0.1;
/// Growth of an interpolated box per frame of distance from the nearer detection.
const INTERP_GROWTH_PER_FRAME: f32 = 0.04;
/// Overlap with the predicted box above which a detection continues a track.
const MATCH_IOU: f32 = 0.1;
/// Centre distance, relative to the larger side of the track's box, below which a detection continues it.
const MATCH_DIST: f32 = 1.0;
/// A region kept from a neighbouring frame ([`TrackFill::keeping_regions`]) is added only where its area is
/// more than this times the detection's own.
const LARGER_REGION: f32 = 1.1;

#[derive(Debug, Clone)]
struct Track {
    /// Detections `(frame, box)` in frame order; old ones are trimmed.
    hits: VecDeque<(u64, BBox)>,
    /// Centre velocity in pixels per frame.
    vx: f32,
    vy: f32,
}

impl Track {
    fn last(&self) -> (u64, BBox) {
        *self.hits.back().expect("a track has at least one detection")
    }

    fn predict(&self, frame: u64, camera: &Camera) -> BBox {
        let (f, b) = self.last();
        let (cx, cy) = camera.moved(f, frame);
        let d = frame as f32 - f as f32;
        shift(&b, self.vx * d + cx, self.vy * d + cy)
    }

    /// The boxes this track contributes to `frame`. Where it was detected the detection itself is used, and
    /// with `keep` frames its largest region detected within `keep` frames either way, the size of that region
    /// around the detection, where it is larger.
    fn boxes_at(
        &self,
        frame: u64,
        (window, coast, keep): (u64, u64, u64),
        camera: &Camera,
        both: bool,
        out: &mut Vec<BBox>,
    ) {
        let after = self.hits.iter().position(|(f, _)| *f >= frame);
        let (f, b, d) = match after {
            Some(i) if self.hits[i].0 == frame => {
                if keep > 0 {
                    self.largest_near(frame, self.hits[i].1, keep, out);
                }
                return;
            }
            Some(0) => {
                // Before the first detection: back-filled, backwards.
                let (f, b) = self.hits[0];
                let d = f - frame;
                if d > window {
                    return;
                }
                (f, b, -(d as f32))
            }
            Some(i) => {
                let (f0, b0) = self.hits[i - 1];
                let (f1, b1) = self.hits[i];
                let t = (frame - f0) as f32 / (f1 - f0) as f32;
                let near = (frame - f0).min(f1 - frame) as f32;
                // Between the two detections in the scene, then into this frame's picture.
                let (ax, ay) = camera.moved(f1, f0);
                let (bx, by) = camera.moved(f0, frame);
                let b = lerp(&b0, &shift(&b1, ax, ay), t);
                out.push(shift(&b, bx, by).scaled(1.0 + INTERP_GROWTH_PER_FRAME * near));
                return;
            }
            None => {
                let (f, b) = self.last();
                let d = frame - f;
                if d > coast {
                    return;
                }
                (f, b, d as f32)
            }
        };
        // Beyond the detections the head may have kept its velocity or, in the scene, stopped: with `both`, both
        // places are covered (one box where they nearly agree). Each grows with every frame of uncertainty.
        let grow = 1.0 + GROWTH_PER_FRAME * d.abs();
        let (cx, cy) = camera.moved(f, frame);
        let moving = shift(&b, cx + self.vx * d, cy + self.vy * d).scaled(grow);
        if both {
            let still = shift(&b, cx, cy).scaled(grow);
            out.push(still);
            if still.iou(&moving) >= 0.9 {
                return;
            }
        }
        out.push(moving);
    }

    /// Of the track's regions detected within `keep` frames of `frame` (where it was detected as `here`), the
    /// largest, centred on `here`, when it is larger. Centred on the detection, not moved by the track's
    /// velocity: a velocity measured between a large region and a tight box of the same face mistakes their
    /// difference in shape for motion.
    fn largest_near(&self, frame: u64, here: BBox, keep: u64, out: &mut Vec<BBox>) {
        let near = self.hits.iter().filter(|(f, _)| f.abs_diff(frame) <= keep);
        let Some(&(_, b)) = near.max_by(|a, b| a.1.area().total_cmp(&b.1.area())) else { return };
        if b.area() <= here.area() * LARGER_REGION {
            return;
        }
        let ((cx, cy), (w, h)) = (here.center(), (b.width(), b.height()));
        out.push(BBox::new(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0).union(&here));
    }
}

fn shift(b: &BBox, dx: f32, dy: f32) -> BBox {
    BBox::new(b.x0 + dx, b.y0 + dy, b.x1 + dx, b.y1 + dy)
}

fn lerp(a: &BBox, b: &BBox, t: f32) -> BBox {
    let m = |p: f32, q: f32| p + (q - p) * t;
    BBox::new(m(a.x0, b.x0), m(a.y0, b.y0), m(a.x1, b.x1), m(a.y1, b.y1))
}

/// The camera's position (the sum of its measured shifts) at each frame a track may still refer to.
#[derive(Debug, Default)]
struct Camera {
    /// Frame of `at[0]`.
    first: u64,
    at: VecDeque<(f64, f64)>,
}

impl Camera {
    fn position(&self, frame: u64) -> (f64, f64) {
        let i = frame.saturating_sub(self.first) as usize;
        self.at.get(i).or(self.at.back()).copied().unwrap_or_default()
    }

    /// How far the picture's content moved from frame `from` to frame `to`.
    fn moved(&self, from: u64, to: u64) -> (f32, f32) {
        let (a, b) = (self.position(from), self.position(to));
        ((b.0 - a.0) as f32, (b.1 - a.1) as f32)
    }

    /// Records `frame`, whose content moved by `(dx, dy)` since the frame before (frames in increasing order;
    /// frames skipped did not move).
    fn record(&mut self, frame: u64, (dx, dy): (f32, f32)) {
        if self.at.is_empty() {
            self.first = frame;
        }
        let last = self.at.back().copied().unwrap_or_default();
        while self.first + (self.at.len() as u64) < frame {
            self.at.push_back(last);
        }
        self.at.push_back((last.0 + f64::from(dx), last.1 + f64::from(dy)));
    }

    /// Forgets frames before `oldest`.
    fn trim(&mut self, oldest: u64) {
        while self.first < oldest && self.at.len() > 1 {
            self.at.pop_front();
            self.first += 1;
        }
    }
}

/// Links detections over frames by motion and overlap. Ids are per instance (no global state).
#[derive(Debug, Default)]
pub struct Tracker {
    tracks: Vec<Track>,
    coast: u64,
    created: u64,
    camera: Camera,
    /// Beyond a track's detections, cover where the head stood as well as where its velocity takes it.
    both: bool,
    /// Frames either way within which a detected face keeps its largest region ([`TrackFill::keeping_regions`]).
    keep: u64,
}

impl Tracker {
    /// A tracker whose tracks end `coast` frames after their last detection.
    pub fn new(coast: u64) -> Self {
        Self { tracks: Vec::new(), coast, created: 0, camera: Camera::default(), both: false, keep: 0 }
    }

    /// Number of tracks started so far.
    pub fn tracks_started(&self) -> u64 {
        self.created
    }

    /// Adds the detections of `frame` (frames must come in increasing order), a still camera.
    pub fn update(&mut self, frame: u64, dets: &[BBox]) {
        self.update_moved(frame, dets, (0.0, 0.0));
    }

    /// Adds the detections of `frame`, whose content the camera moved by `camera` (pixels) since the frame
    /// before.
    pub fn update_moved(&mut self, frame: u64, dets: &[BBox], camera: (f32, f32)) {
        self.camera.record(frame, camera);
        let mut pairs: Vec<(f32, f32, usize, usize)> = Vec::new(); // (iou, dist, track, det)
        for (ti, t) in self.tracks.iter().enumerate() {
            let p = t.predict(frame, &self.camera);
            let size = p.width().max(p.height()).max(1.0);
            for (di, d) in dets.iter().enumerate() {
                let iou = p.iou(d);
                let (pc, dc) = (p.center(), d.center());
                let dist = ((pc.0 - dc.0).powi(2) + (pc.1 - dc.1).powi(2)).sqrt() / size;
                let similar_size = d.height() / p.height().max(1.0);
                if iou >= MATCH_IOU || (dist < MATCH_DIST && (0.5..2.0).contains(&similar_size)) {
                    pairs.push((iou, dist, ti, di));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.total_cmp(&b.1)));
        let (mut used_t, mut used_d) = (vec![false; self.tracks.len()], vec![false; dets.len()]);
        for (_, _, ti, di) in pairs {
            if used_t[ti] || used_d[di] {
                continue;
            }
            used_t[ti] = true;
            used_d[di] = true;
            let t = &mut self.tracks[ti];
            let (f0, b0) = t.last();
            let dt = (frame - f0).max(1) as f32;
            let (c0, c1) = (b0.center(), dets[di].center());
            // The head's own velocity: the camera's part taken out.
            let (cx, cy) = self.camera.moved(f0, frame);
            let (vx, vy) = ((c1.0 - c0.0 - cx) / dt, (c1.1 - c0.1 - cy) / dt);
            // Smooth, but let a new track take its first measured velocity at once.
            let a = if t.hits.len() == 1 { 1.0 } else { 0.6 };
            t.vx = a * vx + (1.0 - a) * t.vx;
            t.vy = a * vy + (1.0 - a) * t.vy;
            t.hits.push_back((frame, dets[di]));
        }
        for (di, d) in dets.iter().enumerate() {
            if !used_d[di] && d.is_valid() {
                self.tracks.push(Track { hits: VecDeque::from([(frame, *d)]), vx: 0.0, vy: 0.0 });
                self.created += 1;
            }
        }
    }

    /// Boxes the tracks contribute to `frame` (detections in that frame itself excluded).
    pub fn boxes_at(&self, frame: u64, window: u64) -> Vec<BBox> {
        let mut out = Vec::new();
        for t in &self.tracks {
            t.boxes_at(frame, (window, self.coast, self.keep), &self.camera, self.both, &mut out);
        }
        out
    }

    /// Forgets what frames before `oldest` can no longer use: ended tracks and old detections.
    pub fn trim(&mut self, oldest: u64, newest: u64) {
        let coast = self.coast;
        self.tracks.retain(|t| t.last().0 + coast >= oldest.min(newest));
        let keep = self.keep;
        for t in &mut self.tracks {
            while t.hits.len() > 2 && t.hits[1].0 + keep < oldest {
                t.hits.pop_front();
            }
        }
        let first_hit = self.tracks.iter().filter_map(|t| t.hits.front()).map(|h| h.0).min();
        self.camera.trim(first_hit.map_or(oldest, |f| f.min(oldest)));
    }

    pub fn live_tracks(&self) -> usize {
        self.tracks.len()
    }
}

/// Delays a stream of frames by `window` and gives each one its detections plus the tracker's boxes.
#[derive(Debug)]
pub struct TrackFill<T> {
    window: u64,
    tracker: Tracker,
    /// Frames `next_emit ..` not yet emitted, with their own detections.
    pending: VecDeque<(T, Vec<BBox>)>,
    next_emit: u64,
    pushed: u64,
}

impl<T> TrackFill<T> {
    /// Back-fill and look-ahead of `window` frames; tracks coast `coast` frames past their last detection.
    pub fn new(window: usize, coast: usize) -> Self {
        Self {
            window: window as u64,
            tracker: Tracker::new(coast as u64),
            pending: VecDeque::new(),
            next_emit: 0,
            pushed: 0,
        }
    }

    /// Tracks in the scene ([`push_moved`](Self::push_moved) gives the camera's shift): beyond a track's
    /// detections, where the head stood is covered as well as where its velocity takes it (a velocity measured
    /// on flickering detections of small faces is often wrong, and a steady error in the camera's measure goes
    /// into it). Off: one box, moved by the velocity, as without a camera measure.
    pub fn in_scene(mut self, on: bool) -> Self {
        self.tracker.both = on;
        self
    }

    /// A face detected on a frame is also covered by a box the size of its largest region detected within
    /// `frames` frames either way, around the detection, where that region is larger: between two full
    /// whole-frame passes, whose regions hold both models' boxes grown to the head, a face found by the cheaper
    /// repeat alone keeps the full pass's size of region. 0: off.
    pub fn keeping_regions(mut self, frames: u64) -> Self {
        self.tracker.keep = frames;
        self
    }

    /// Frames held back at most.
    pub fn delay(&self) -> usize {
        self.window as usize
    }

    pub fn tracks_started(&self) -> u64 {
        self.tracker.tracks_started()
    }

    /// Adds the next frame and its detections; returns the frame that is now complete, if any, with the
    /// boxes to redact in it.
    pub fn push(&mut self, frame: T, faces: Vec<BBox>) -> Option<(T, Vec<BBox>)> {
        self.push_moved(frame, faces, (0.0, 0.0))
    }

    /// [`push`](Self::push) for a frame whose content the camera moved by `camera` (pixels, as
    /// [`motion::CameraMotion`] measures it) since the frame before.
    pub fn push_moved(&mut self, frame: T, faces: Vec<BBox>, camera: (f32, f32)) -> Option<(T, Vec<BBox>)> {
        self.tracker.update_moved(self.pushed, &faces, camera);
        self.pushed += 1;
        self.pending.push_back((frame, faces));
        if self.pending.len() as u64 > self.window {
            self.emit_one()
        } else {
            None
        }
    }

    /// The frames held, oldest first.
    pub fn held(&self) -> impl Iterator<Item = &T> {
        self.pending.iter().map(|(t, _)| t)
    }

    /// Emits every frame still held, at end of stream.
    pub fn finish(&mut self) -> Vec<(T, Vec<BBox>)> {
        let mut out = Vec::with_capacity(self.pending.len());
        while let Some(x) = self.emit_one() {
            out.push(x);
        }
        out
    }

    fn emit_one(&mut self) -> Option<(T, Vec<BBox>)> {
        let (frame, mut boxes) = self.pending.pop_front()?;
        let idx = self.next_emit;
        boxes.extend(self.tracker.boxes_at(idx, self.window));
        self.next_emit += 1;
        self.tracker.trim(self.next_emit, self.pushed);
        Some((frame, boxes))
    }
}

#[cfg(test)]
mod tests;
