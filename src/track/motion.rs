//! The camera's own motion between consecutive frames, as one shift of the whole picture.
//!
//! A hand-held or body-worn camera moves every face in the picture at once. Measured in the picture, a
//! track's velocity is then mostly the camera's shake: its coasting box flies off with the last shake while
//! the head stays put in the scene. [`CameraMotion`] measures the shift that best carries each frame onto the
//! one before (grey levels about 640 samples wide: a coarse search at an eighth of that, refined at half and
//! at full grey resolution, then to a fraction of a sample), and the tracker works in scene coordinates with
//! it (see [`super::Tracker`]).
//!
//! Only a shift that explains the picture clearly is reported: the best shift must leave far less difference
//! than no shift at all and than any shift well away from it (a repeating pattern matches at several),
//! inside the search's reach; a change of exposure is taken out first. Otherwise (a still camera, a flat or
//! dark picture, a cut, a crowd moving every way) the answer is no motion, which is how the tracker worked
//! before it had one. A crowd walking one way can be measured as the camera's motion: the tracker stays
//! right under any steady error (see [`super::Tracker`]).
//! Pixels are compared between two consecutive frames only and dropped with the older one: nothing is kept
//! about anyone.

use super::follow::Grey;
use image::RgbImage;

/// Longer side of the fine grey level, in samples (the picture is reduced by a whole factor to about this).
const FINE_WIDTH: u32 = 640;
/// The middle level is the fine one reduced this many times each way, the coarse one the middle one.
const MID_FACTOR: u32 = 2;
const COARSE_FACTOR: u32 = 4;
/// Reach of the coarse search, in coarse samples each way (8 × 4 × 2 × 2 = 128 px of a 1280-px picture).
const COARSE_REACH: i32 = 8;
/// Reach of the refining searches around the level above's answer, in that level's samples each way.
const MID_REACH: i32 = 3;
const FINE_REACH: i32 = 2;
/// Grey-level differences are clipped here, so a moving person or a flash counts as a mismatch and no more.
const CLIP: u16 = 32;
/// The best shift must leave at most this share of the difference that no shift leaves.
const MAX_COST_RATIO: f32 = 0.8;
/// Differences (mean clipped grey levels) below this are noise: the picture did not move measurably.
const MIN_COST: f32 = 1.0;
/// Smallest coarse level searched, in samples each way: the search's reach each side and a core that every
/// shift sees (about 224 grey samples; smaller pictures, such as QCIF, are left without a measure).
const MIN_COARSE_SIDE: u32 = 2 * COARSE_REACH as u32 + 12;

/// Measures the camera's shift from frame to frame; see the module's documentation.
#[derive(Debug, Default)]
pub struct CameraMotion {
    /// The previous frame's grey levels, and the fine level's reduction of the picture.
    prev: Option<(Levels, u32)>,
    measured: u64,
}

impl CameraMotion {
    pub fn new() -> Self {
        Self::default()
    }

    /// The shift `(dx, dy)` in pixels that carries the previous picture given onto `picture` (content that
    /// moved right has a positive `dx`), or `(0, 0)` for the first picture, a picture of another size, and
    /// when no single shift explains the picture clearly.
    pub fn next(&mut self, picture: &RgbImage) -> (f32, f32) {
        let step = (picture.width().max(picture.height()) / FINE_WIDTH).max(1);
        let levels = Levels::new(Grey::from_rgb(picture, step));
        let shift = match &self.prev {
            Some((prev, s))
                if *s == step && prev.fine.width == levels.fine.width && prev.fine.height == levels.fine.height =>
            {
                estimate(prev, &levels).map(|(dx, dy)| (dx * step as f32, dy * step as f32))
            }
            _ => None,
        };
        self.prev = Some((levels, step));
        self.measured += u64::from(shift.is_some_and(|s| s != (0.0, 0.0)));
        shift.unwrap_or((0.0, 0.0))
    }

    /// Frames a camera shift was measured on.
    pub fn frames_moved(&self) -> u64 {
        self.measured
    }

    /// Forgets the previous picture (a new stream starts).
    pub fn reset(&mut self) {
        self.prev = None;
    }
}

/// One picture's grey levels, finest first.
#[derive(Debug)]
struct Levels {
    fine: Grey,
    mid: Grey,
    coarse: Grey,
    /// Mean grey level (of the coarse level).
    mean: f32,
}

impl Levels {
    fn new(fine: Grey) -> Self {
        let mid = fine.reduced(MID_FACTOR);
        let coarse = mid.reduced(COARSE_FACTOR);
        let mean = coarse.data.iter().map(|&v| u64::from(v)).sum::<u64>() as f32 / coarse.data.len().max(1) as f32;
        Self { fine, mid, coarse, mean }
    }
}

/// Mean clipped difference between `cur` and `prev` moved by `(dx, dy)` and brightened by `gain` grey levels
/// (an exposure change is not motion), over the part of `cur` that every shift up to `reach` sees (so costs
/// of different shifts are comparable).
fn cost(prev: &Grey, cur: &Grey, (dx, dy): (i32, i32), reach: i32, gain: i16) -> f32 {
    let (w, h) = (cur.width as i32, cur.height as i32);
    let (x0, x1, y0, y1) = (reach, w - reach, reach, h - reach);
    if x1 <= x0 || y1 <= y0 {
        return f32::INFINITY;
    }
    let mut sum = 0u64;
    for y in y0..y1 {
        let c = &cur.data[(y * w + x0) as usize..(y * w + x1) as usize];
        let p = &prev.data[((y - dy) * w + x0 - dx) as usize..((y - dy) * w + x1 - dx) as usize];
        let d = |(&a, &b): (&u8, &u8)| u32::from((i16::from(a) - i16::from(b) - gain).unsigned_abs().min(CLIP));
        sum += u64::from(c.iter().zip(p).map(d).sum::<u32>());
    }
    sum as f32 / ((x1 - x0) * (y1 - y0)) as f32
}

/// The best shift within `reach` samples of `centre` each way, with the costs around it (row by row, `2 ×
/// reach + 1` wide), each over the part of the picture that a shift up to `margin` sees.
fn search(prev: &Grey, cur: &Grey, centre: (i32, i32), reach: i32, margin: i32, gain: i16) -> ((i32, i32), Vec<f32>) {
    let side = (2 * reach + 1) as usize;
    let mut costs = Vec::with_capacity(side * side);
    let mut best = (0, 0);
    let mut best_cost = f32::INFINITY;
    for dy in -reach..=reach {
        for dx in -reach..=reach {
            let c = cost(prev, cur, (centre.0 + dx, centre.1 + dy), margin, gain);
            costs.push(c);
            if c < best_cost {
                (best, best_cost) = ((dx, dy), c);
            }
        }
    }
    (best, costs)
}

/// The shift in fine samples, when one explains the picture clearly.
fn estimate(prev: &Levels, cur: &Levels) -> Option<(f32, f32)> {
    if cur.coarse.width.min(cur.coarse.height) < MIN_COARSE_SIDE {
        return None;
    }
    let gain = (cur.mean - prev.mean).round() as i16;
    let (coarse, costs) = search(&prev.coarse, &cur.coarse, (0, 0), COARSE_REACH, COARSE_REACH, gain);
    if coarse.0.abs() == COARSE_REACH || coarse.1.abs() == COARSE_REACH {
        return None; // a motion beyond reach, or a cut
    }
    // A repeating pattern (a fence, tiles, windows) matches at several shifts: the best must stand out from
    // every shift two coarse samples or more away from it.
    let side = 2 * COARSE_REACH + 1;
    let elsewhere = (0..side * side)
        .filter(|i| {
            let (dx, dy) = (i % side - COARSE_REACH, i / side - COARSE_REACH);
            (dx - coarse.0).abs().max((dy - coarse.1).abs()) >= 2
        })
        .map(|i| costs[i as usize])
        .fold(f32::INFINITY, f32::min);
    if costs[((coarse.1 + COARSE_REACH) * side + coarse.0 + COARSE_REACH) as usize] > MAX_COST_RATIO * elsewhere {
        return None;
    }
    let f = COARSE_FACTOR as i32;
    let margin = COARSE_REACH * f + MID_REACH;
    let (mid, _) = search(&prev.mid, &cur.mid, (coarse.0 * f, coarse.1 * f), MID_REACH, margin, gain);
    if mid.0.abs() == MID_REACH || mid.1.abs() == MID_REACH {
        return None; // the levels disagree
    }
    let f = MID_FACTOR as i32;
    let centre = ((coarse.0 * COARSE_FACTOR as i32 + mid.0) * f, (coarse.1 * COARSE_FACTOR as i32 + mid.1) * f);
    let margin = margin * f + FINE_REACH;
    let (fine, costs) = search(&prev.fine, &cur.fine, centre, FINE_REACH, margin, gain);
    let side = (2 * FINE_REACH + 1) as usize;
    let at = |dx: i32, dy: i32| costs[((dy + FINE_REACH) as usize) * side + (dx + FINE_REACH) as usize];
    let still = cost(&prev.fine, &cur.fine, (0, 0), margin, gain);
    let moved = at(fine.0, fine.1);
    let (bx, by) = (centre.0 + fine.0, centre.1 + fine.1);
    if (bx, by) == (0, 0) || still < MIN_COST {
        return Some((0.0, 0.0));
    }
    if moved > MAX_COST_RATIO * still || fine.0.abs() == FINE_REACH || fine.1.abs() == FINE_REACH {
        return None;
    }
    // A fraction of a sample from the parabola through the best cost and its neighbours.
    let vertex = |l: f32, m: f32, r: f32| {
        let d = l - 2.0 * m + r;
        if d > f32::EPSILON {
            (0.5 * (l - r) / d).clamp(-0.5, 0.5)
        } else {
            0.0
        }
    };
    let sx = vertex(at(fine.0 - 1, fine.1), moved, at(fine.0 + 1, fine.1));
    let sy = vertex(at(fine.0, fine.1 - 1), moved, at(fine.0, fine.1 + 1));
    Some((bx as f32 + sx, by as f32 + sy))
}

/// Pictures for tests: a camera's view of a textured scene.
#[cfg(test)]
pub(crate) mod testing {
    use image::RgbImage;

    /// Value noise: a hashed lattice, bilinear between its points, `cell` pixels apart.
    fn noise(x: f32, y: f32, cell: f32, seed: u32) -> f32 {
        let hash = |i: i32, j: i32| {
            let mut h = (i as u32).wrapping_mul(0x9E37_79B1) ^ (j as u32).wrapping_mul(0x85EB_CA77) ^ seed;
            h ^= h >> 15;
            h = h.wrapping_mul(0x2C1B_3C6D);
            h ^= h >> 12;
            (h & 0xFFFF) as f32 / 65535.0
        };
        let (u, v) = (x / cell, y / cell);
        let (i, j) = (u.floor() as i32, v.floor() as i32);
        let (fu, fv) = (u - u.floor(), v - v.floor());
        let top = hash(i, j) * (1.0 - fu) + hash(i + 1, j) * fu;
        let bottom = hash(i, j + 1) * (1.0 - fu) + hash(i + 1, j + 1) * fu;
        top * (1.0 - fv) + bottom * fv
    }

    /// A textured scene (no pattern repeats) seen through a `w × h` window at `(ox, oy)`.
    pub(crate) fn view(ox: f32, oy: f32, w: u32, h: u32) -> RgbImage {
        let scene = |x: f32, y: f32| {
            let v = 30.0 + 120.0 * noise(x, y, 97.0, 1) + 70.0 * noise(x, y, 23.0, 2) + 30.0 * noise(x, y, 6.0, 3);
            v.clamp(0.0, 255.0) as u8
        };
        RgbImage::from_fn(w, h, |x, y| {
            let v = scene(x as f32 + ox, y as f32 + oy);
            image::Rgb([v, v, v])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::testing::view;
    use super::*;

    #[test]
    fn a_camera_shift_is_measured_to_a_pixel() {
        for (dx, dy) in [(7.0, -3.0), (-22.0, 11.0), (0.0, 0.0), (40.0, 25.0), (2.5, -1.5)] {
            let mut m = CameraMotion::new();
            assert_eq!(m.next(&view(100.0, 100.0, 1280, 720)), (0.0, 0.0), "the first picture has no motion");
            // The camera moves by (dx, dy): the content moves the other way.
            let (sx, sy) = m.next(&view(100.0 + dx, 100.0 + dy, 1280, 720));
            assert!((sx + dx).abs() <= 1.0 && (sy + dy).abs() <= 1.0, "camera ({dx}, {dy}): measured ({sx}, {sy})");
        }
    }

    #[test]
    fn a_flat_picture_a_cut_or_a_motion_beyond_reach_is_no_motion() {
        let flat = RgbImage::from_pixel(640, 360, image::Rgb([90, 90, 90]));
        let mut m = CameraMotion::new();
        m.next(&flat);
        assert_eq!(m.next(&flat), (0.0, 0.0));
        // A cut to an unrelated picture.
        let mut m = CameraMotion::new();
        m.next(&view(0.0, 0.0, 640, 360));
        let other = RgbImage::from_fn(640, 360, |x, y| image::Rgb([((x * 7 + y * 13) % 256) as u8; 3]));
        assert_eq!(m.next(&other), (0.0, 0.0));
        // Half a picture's width at once.
        let mut m = CameraMotion::new();
        m.next(&view(0.0, 0.0, 640, 360));
        assert_eq!(m.next(&view(320.0, 0.0, 640, 360)), (0.0, 0.0));
        assert_eq!(m.frames_moved(), 0);
        // A picture too small for the search (QCIF) is left without a measure.
        let mut m = CameraMotion::new();
        m.next(&view(0.0, 0.0, 176, 144));
        assert_eq!(m.next(&view(5.0, 3.0, 176, 144)), (0.0, 0.0));
    }

    #[test]
    fn a_repeating_pattern_is_no_motion_and_an_exposure_change_is_not_motion() {
        // Stripes 24 px apart moved by 6 px: 6, -18, 30... all fit equally.
        let stripes =
            |o: u32| RgbImage::from_fn(640, 360, |x, _| image::Rgb([if (x + o) % 24 < 12 { 40 } else { 200 }; 3]));
        let mut m = CameraMotion::new();
        m.next(&stripes(0));
        assert_eq!(m.next(&stripes(6)), (0.0, 0.0));
        // The camera moves and its exposure rises by 40 levels at once.
        let brighter = |img: RgbImage| {
            RgbImage::from_fn(img.width(), img.height(), |x, y| {
                image::Rgb(img.get_pixel(x, y).0.map(|v| v.saturating_add(40)))
            })
        };
        let mut m = CameraMotion::new();
        m.next(&view(0.0, 0.0, 640, 360));
        let (sx, sy) = m.next(&brighter(view(10.0, -6.0, 640, 360)));
        assert!((sx + 10.0).abs() <= 1.0 && (sy - 6.0).abs() <= 1.0, "({sx}, {sy})");
        // Brighter, not moved: no motion.
        let mut m = CameraMotion::new();
        m.next(&view(0.0, 0.0, 640, 360));
        assert_eq!(m.next(&brighter(view(0.0, 0.0, 640, 360))), (0.0, 0.0));
    }

    #[test]
    fn pictures_of_every_common_size_are_measured() {
        for (w, h) in [(320, 240), (352, 288), (720, 576), (1920, 1080), (1080, 1920), (3840, 2160)] {
            let mut m = CameraMotion::new();
            m.next(&view(50.0, 50.0, w, h));
            let (sx, sy) = m.next(&view(59.0, 46.0, w, h));
            let tolerance = (w.max(h) / FINE_WIDTH).max(1) as f32;
            assert!((sx + 9.0).abs() <= tolerance && (sy - 4.0).abs() <= tolerance, "{w}x{h}: ({sx}, {sy})");
        }
    }

    #[test]
    fn a_person_crossing_a_still_scene_is_not_camera_motion() {
        let mut m = CameraMotion::new();
        m.next(&view(0.0, 0.0, 640, 360));
        // A bright figure a quarter of the picture wide, moving 20 px between the frames.
        let mut a = view(0.0, 0.0, 640, 360);
        let mut b = a.clone();
        for (img, x0) in [(&mut a, 200), (&mut b, 220)] {
            for y in 60..340 {
                for x in x0..x0 + 160 {
                    img.put_pixel(x, y, image::Rgb([230, 200, 180]));
                }
            }
        }
        m.next(&a);
        assert_eq!(m.next(&b), (0.0, 0.0));
    }
}
