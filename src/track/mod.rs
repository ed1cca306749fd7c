//! Temporal coverage. [`TemporalFill`] bridges detection misses with a bounded look-ahead: every frame is
//! redacted with the faces found in it and in the `window` frames before and after it, each borrowed box
//! grown with its distance in time to absorb head motion. A face is therefore covered `window` frames before
//! its first detection and after its last, and gaps of up to `2 × window` missed frames are closed.
//!
//! Only boxes are kept: no pixels, no appearance features.

use crate::geom::BBox;
use std::collections::VecDeque;

/// Growth of a borrowed box per frame of distance (width and height), for motion between frames.
pub const GROWTH_PER_FRAME: f32 = 0.08;

/// Delays a stream of frames by `window` and widens each frame's face boxes with its neighbours'.
#[derive(Debug)]
pub struct TemporalFill<T> {
    window: usize,
    /// Detections of frames `first_det ..= last pushed`.
    dets: VecDeque<Vec<BBox>>,
    first_det: u64,
    /// Frames `next_emit ..= last pushed`, not yet emitted.
    pending: VecDeque<T>,
    next_emit: u64,
}

impl<T> TemporalFill<T> {
    pub fn new(window: usize) -> Self {
        Self { window, dets: VecDeque::new(), first_det: 0, pending: VecDeque::new(), next_emit: 0 }
    }

    /// Frames held back at most; memory is bounded by this many frames.
    pub fn delay(&self) -> usize {
        self.window
    }

    /// Adds the next frame and its detections. Returns the frame that is now complete, if any, with the boxes
    /// to redact in it.
    pub fn push(&mut self, frame: T, faces: Vec<BBox>) -> Option<(T, Vec<BBox>)> {
        self.pending.push_back(frame);
        self.dets.push_back(faces);
        if self.pending.len() > self.window {
            self.emit_one()
        } else {
            None
        }
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
        let frame = self.pending.pop_front()?;
        let idx = self.next_emit;
        let w = self.window as u64;
        let lo = idx.saturating_sub(w).max(self.first_det);
        let last = self.first_det + self.dets.len() as u64 - 1;
        let hi = (idx + w).min(last);
        let mut boxes = Vec::new();
        for j in lo..=hi {
            let dist = j.abs_diff(idx) as f32;
            for b in &self.dets[(j - self.first_det) as usize] {
                boxes.push(if dist == 0.0 { *b } else { b.scaled(1.0 + GROWTH_PER_FRAME * dist) });
            }
        }
        self.next_emit += 1;
        // Keep only the detections that later frames can still borrow.
        while self.first_det + w < self.next_emit && !self.dets.is_empty() {
            self.dets.pop_front();
            self.first_det += 1;
        }
        Some((frame, boxes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face() -> BBox {
        BBox::new(100.0, 100.0, 150.0, 150.0)
    }

    /// Runs `dets_per_frame` through a fill of `window` and returns, for every frame in order, its index and
    /// the boxes to redact.
    fn run(window: usize, dets_per_frame: &[bool]) -> Vec<(usize, Vec<BBox>)> {
        let mut f = TemporalFill::new(window);
        let mut out = Vec::new();
        for (i, &has) in dets_per_frame.iter().enumerate() {
            out.extend(f.push(i, if has { vec![face()] } else { vec![] }));
            assert!(f.pending.len() <= window, "more than the window held back");
            assert!(f.dets.len() <= 2 * window + 1);
        }
        out.extend(f.finish());
        out
    }

    #[test]
    fn frames_come_out_in_order_and_all_of_them() {
        let out = run(3, &[false; 10]);
        assert_eq!(out.iter().map(|x| x.0).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
        assert!(out.iter().all(|x| x.1.is_empty()));
    }

    #[test]
    fn back_fills_before_first_and_after_last_detection() {
        let mut dets = [false; 12];
        dets[5] = true;
        let out = run(2, &dets);
        let covered: Vec<usize> = out.iter().filter(|x| !x.1.is_empty()).map(|x| x.0).collect();
        assert_eq!(covered, vec![3, 4, 5, 6, 7]);
    }

    #[test]
    fn bridges_gap_of_twice_the_window() {
        let mut dets = [true; 12];
        for d in &mut dets[4..8] {
            *d = false;
        }
        let out = run(2, &dets);
        assert!(out.iter().all(|x| !x.1.is_empty()), "a frame in the gap was left bare");
    }

    #[test]
    fn borrowed_boxes_grow_with_distance() {
        let mut dets = [false; 5];
        dets[0] = true;
        let out = run(2, &dets);
        assert_eq!(out[0].1[0], face());
        assert!(out[2].1[0].width() > out[1].1[0].width());
        assert!(out[1].1[0].width() > face().width());
    }

    #[test]
    fn zero_window_passes_frames_straight_through() {
        let mut f = TemporalFill::new(0);
        let (i, boxes) = f.push(7, vec![face()]).unwrap();
        assert_eq!((i, boxes), (7, vec![face()]));
        assert!(f.finish().is_empty());
    }
}
