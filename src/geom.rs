//! Axis-aligned boxes in pixel coordinates: IoU, scaling, clamping. Pure functions.

use serde::{Deserialize, Serialize};

/// A box `[x0, x1) × [y0, y1)` in pixels of the frame it was found in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

impl BBox {
    pub const fn new(x0: f32, y0: f32, x1: f32, y1: f32) -> Self {
        Self { x0, y0, x1, y1 }
    }

    pub fn from_xywh(x: f32, y: f32, w: f32, h: f32) -> Self {
        Self::new(x, y, x + w, y + h)
    }

    pub fn width(&self) -> f32 {
        (self.x1 - self.x0).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y1 - self.y0).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    pub fn center(&self) -> (f32, f32) {
        ((self.x0 + self.x1) * 0.5, (self.y0 + self.y1) * 0.5)
    }

    /// True when every coordinate is finite and the box has positive area.
    pub fn is_valid(&self) -> bool {
        [self.x0, self.y0, self.x1, self.y1].iter().all(|v| v.is_finite()) && self.x1 > self.x0 && self.y1 > self.y0
    }

    pub fn intersection(&self, other: &BBox) -> f32 {
        let w = (self.x1.min(other.x1) - self.x0.max(other.x0)).max(0.0);
        let h = (self.y1.min(other.y1) - self.y0.max(other.y0)).max(0.0);
        w * h
    }

    /// Intersection over union; 0 for degenerate boxes.
    pub fn iou(&self, other: &BBox) -> f32 {
        let inter = self.intersection(other);
        let union = self.area() + other.area() - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }

    /// The smallest box holding both.
    pub fn union(&self, other: &BBox) -> BBox {
        BBox::new(self.x0.min(other.x0), self.y0.min(other.y0), self.x1.max(other.x1), self.y1.max(other.y1))
    }

    /// The box with `margin` added on every side.
    pub fn grown(&self, margin: f32) -> BBox {
        BBox::new(self.x0 - margin, self.y0 - margin, self.x1 + margin, self.y1 + margin)
    }

    /// Grows (or shrinks) the box about its centre so that width and height are multiplied by `factor`.
    pub fn scaled(&self, factor: f32) -> BBox {
        let (cx, cy) = self.center();
        let hw = self.width() * factor * 0.5;
        let hh = self.height() * factor * 0.5;
        BBox::new(cx - hw, cy - hh, cx + hw, cy + hh)
    }

    /// Multiplies every coordinate by the given factors (e.g. from detector input to frame pixels).
    pub fn rescaled(&self, sx: f32, sy: f32) -> BBox {
        BBox::new(self.x0 * sx, self.y0 * sy, self.x1 * sx, self.y1 * sy)
    }

    /// Clamps to `[0, width] × [0, height]`.
    pub fn clamped(&self, width: u32, height: u32) -> BBox {
        let (w, h) = (width as f32, height as f32);
        BBox::new(self.x0.clamp(0.0, w), self.y0.clamp(0.0, h), self.x1.clamp(0.0, w), self.y1.clamp(0.0, h))
    }

    /// The smallest integer pixel rectangle `(x0, y0, x1, y1)` (exclusive end) covering the box inside a
    /// `width × height` frame. Empty rectangles have `x0 == x1` or `y0 == y1`.
    pub fn to_pixel_rect(&self, width: u32, height: u32) -> PixelRect {
        let c = self.clamped(width, height);
        let x0 = c.x0.floor() as u32;
        let y0 = c.y0.floor() as u32;
        let x1 = (c.x1.ceil() as u32).max(x0);
        let y1 = (c.y1.ceil() as u32).max(y0);
        PixelRect { x0, y0, x1, y1 }
    }
}

/// An integer pixel rectangle, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelRect {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl PixelRect {
    pub fn width(&self) -> u32 {
        self.x1 - self.x0
    }
    pub fn height(&self) -> u32 {
        self.y1 - self.y0
    }
    pub fn is_empty(&self) -> bool {
        self.x1 <= self.x0 || self.y1 <= self.y0
    }

    /// The part of `self` inside `other`, if any.
    pub fn intersect(&self, other: &PixelRect) -> Option<PixelRect> {
        let r = PixelRect {
            x0: self.x0.max(other.x0),
            y0: self.y0.max(other.y0),
            x1: self.x1.min(other.x1),
            y1: self.y1.min(other.y1),
        };
        (!r.is_empty()).then_some(r)
    }

    /// The smallest rectangle holding both.
    pub fn union(&self, other: &PixelRect) -> PixelRect {
        PixelRect {
            x0: self.x0.min(other.x0),
            y0: self.y0.min(other.y0),
            x1: self.x1.max(other.x1),
            y1: self.y1.max(other.y1),
        }
    }

    /// True when the union of `rects` (which may overlap) holds every pixel of `self`.
    pub fn within_union(&self, rects: &[PixelRect]) -> bool {
        let pieces: Vec<PixelRect> = rects.iter().filter_map(|r| r.intersect(self)).collect();
        let mut xs: Vec<u32> = pieces.iter().flat_map(|p| [p.x0, p.x1]).chain([self.x0, self.x1]).collect();
        xs.sort_unstable();
        xs.dedup();
        // Column slab by column slab: the pieces spanning the slab must reach from the top row to the bottom.
        xs.windows(2).all(|slab| {
            let mut rows: Vec<(u32, u32)> =
                pieces.iter().filter(|p| p.x0 <= slab[0] && p.x1 >= slab[1]).map(|p| (p.y0, p.y1)).collect();
            rows.sort_unstable();
            let mut reach = self.y0;
            for (y0, y1) in rows {
                if y0 > reach {
                    break;
                }
                reach = reach.max(y1);
            }
            reach >= self.y1
        })
    }
}

/// Clockwise rotation (degrees, a multiple of 90) that a player applies to show a frame upright.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Rotation {
    #[default]
    None,
    Cw90,
    Cw180,
    Cw270,
}

impl Rotation {
    /// From a display angle in degrees (any sign, rounded to the nearest multiple of 90).
    pub fn from_degrees(deg: f64) -> Rotation {
        if !deg.is_finite() {
            return Rotation::None;
        }
        let q = ((deg / 90.0).round() as i64).rem_euclid(4);
        match q {
            1 => Rotation::Cw90,
            2 => Rotation::Cw180,
            3 => Rotation::Cw270,
            _ => Rotation::None,
        }
    }

    /// Clockwise degrees (0, 90, 180, 270).
    pub fn degrees(self) -> u32 {
        match self {
            Rotation::None => 0,
            Rotation::Cw90 => 90,
            Rotation::Cw180 => 180,
            Rotation::Cw270 => 270,
        }
    }

    /// Size of the upright picture for a stored `w × h` frame.
    pub fn upright_size(self, w: u32, h: u32) -> (u32, u32) {
        match self {
            Rotation::Cw90 | Rotation::Cw270 => (h, w),
            _ => (w, h),
        }
    }

    /// Maps a box found in the upright picture (of size `upright_size(w, h)`) back to stored-frame
    /// coordinates of a `w × h` frame.
    pub fn box_to_stored(self, b: &BBox, w: u32, h: u32) -> BBox {
        let (w, h) = (w as f32, h as f32);
        match self {
            Rotation::None => *b,
            // upright (u, v) = (h - y, x)  =>  x = v, y = h - u
            Rotation::Cw90 => BBox::new(b.y0, h - b.x1, b.y1, h - b.x0),
            Rotation::Cw180 => BBox::new(w - b.x1, h - b.y1, w - b.x0, h - b.y0),
            // upright (u, v) = (y, w - x)  =>  x = w - v, y = u
            Rotation::Cw270 => BBox::new(w - b.y1, b.x0, w - b.y0, b.x1),
        }
    }
}

/// The maximal runs `start..end` of indices `0..len` for which `on` holds, in order.
pub(crate) fn runs(len: usize, on: impl Fn(usize) -> bool) -> impl Iterator<Item = (usize, usize)> {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < len && !on(i) {
            i += 1;
        }
        let start = i;
        while i < len && on(i) {
            i += 1;
        }
        (i > start).then_some((start, i))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rectangle_within_a_union_of_rectangles() {
        let r = |x0, y0, x1, y1| PixelRect { x0, y0, x1, y1 };
        let target = r(10, 10, 30, 30);
        // Two halves side by side, and two that overlap: held.
        assert!(target.within_union(&[r(0, 0, 20, 40), r(20, 0, 40, 40)]));
        assert!(target.within_union(&[r(0, 0, 25, 40), r(15, 5, 40, 31), r(100, 100, 110, 110)]));
        // A gap of one column, or one corner pixel, or nothing: not held.
        assert!(!target.within_union(&[r(0, 0, 20, 40), r(21, 0, 40, 40)]));
        assert!(!target.within_union(&[r(0, 0, 40, 29), r(0, 29, 29, 40)]));
        assert!(!target.within_union(&[]));
        // Overlapping rectangles that together are larger than the target but leave a hole.
        assert!(!target.within_union(&[r(10, 10, 30, 20), r(10, 10, 20, 30), r(10, 10, 30, 15), r(21, 21, 30, 30)]));
    }

    #[test]
    fn iou_of_identical_disjoint_and_half_overlapping_boxes() {
        let a = BBox::new(0.0, 0.0, 10.0, 10.0);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&BBox::new(20.0, 20.0, 30.0, 30.0)), 0.0);
        let b = BBox::new(5.0, 0.0, 15.0, 10.0);
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
    }

    #[test]
    fn iou_of_degenerate_boxes_is_zero() {
        let z = BBox::new(3.0, 3.0, 3.0, 3.0);
        assert_eq!(z.iou(&z), 0.0);
        assert!(!z.is_valid());
        assert!(!BBox::new(f32::NAN, 0.0, 1.0, 1.0).is_valid());
    }

    #[test]
    fn scaled_keeps_centre() {
        let b = BBox::new(10.0, 20.0, 30.0, 60.0).scaled(1.5);
        assert_eq!(b.center(), (20.0, 40.0));
        assert_eq!(b.width(), 30.0);
        assert_eq!(b.height(), 60.0);
    }

    #[test]
    fn pixel_rect_covers_and_clamps() {
        let r = BBox::new(-5.2, 1.5, 9.1, 200.0).to_pixel_rect(8, 100);
        assert_eq!(r, PixelRect { x0: 0, y0: 1, x1: 8, y1: 100 });
        let e = BBox::new(50.0, 50.0, 60.0, 60.0).to_pixel_rect(10, 10);
        assert!(e.is_empty());
    }

    #[test]
    fn rotation_from_degrees() {
        assert_eq!(Rotation::from_degrees(0.0), Rotation::None);
        assert_eq!(Rotation::from_degrees(90.0), Rotation::Cw90);
        assert_eq!(Rotation::from_degrees(-90.0), Rotation::Cw270);
        assert_eq!(Rotation::from_degrees(180.0), Rotation::Cw180);
        assert_eq!(Rotation::from_degrees(f64::NAN), Rotation::None);
    }

    /// A box mapped from the upright picture back to storage covers the same pixels that the rotation
    /// moved there: checked by rotating a single marked pixel.
    #[test]
    fn rotation_box_round_trip_marks_same_pixel() {
        let (w, h) = (8u32, 5u32);
        // stored pixel (x, y) = (6, 1)
        let (x, y) = (6.0f32, 1.0f32);
        for rot in [Rotation::None, Rotation::Cw90, Rotation::Cw180, Rotation::Cw270] {
            let (uw, uh) = rot.upright_size(w, h);
            // where that pixel lands in the upright picture (top-left corner of the pixel cell)
            let (u, v) = match rot {
                Rotation::None => (x, y),
                Rotation::Cw90 => (h as f32 - 1.0 - y, x),
                Rotation::Cw180 => (w as f32 - 1.0 - x, h as f32 - 1.0 - y),
                Rotation::Cw270 => (y, w as f32 - 1.0 - x),
            };
            assert!(u < uw as f32 && v < uh as f32);
            let back = rot.box_to_stored(&BBox::new(u, v, u + 1.0, v + 1.0), w, h);
            assert_eq!(back, BBox::new(x, y, x + 1.0, y + 1.0), "{rot:?}");
        }
    }

    #[test]
    fn runs_are_the_maximal_stretches_that_hold() {
        let bits = [false, true, true, false, false, true, false, true];
        assert_eq!(runs(bits.len(), |i| bits[i]).collect::<Vec<_>>(), vec![(1, 3), (5, 6), (7, 8)]);
        assert_eq!(runs(0, |_| true).count(), 0);
        assert_eq!(runs(3, |_| true).collect::<Vec<_>>(), vec![(0, 3)]);
        assert_eq!(runs(3, |_| false).count(), 0);
    }
}
