//! Following a region a reviewer marked (issue 16), by its pixels only: normalised cross-correlation of the
//! region's grey-level patch against a search window around where it was, frame after frame. No face model,
//! no identity, nothing compared across people or files: the same code follows a number plate or a poster.
//! The patch lives in memory only while it is followed (downscaled grey, the previous frame's), is never
//! written anywhere, and is dropped when the region is lost. Automatic detections are never tracked this
//! way (they are bridged by motion and overlap, see [`super::TrackFill`]). When the best match falls below
//! [`MIN_MATCH`] the region is lost, and the caller reports it.

use crate::geom::BBox;

/// Lowest correlation (−1..1) still counted as the same region.
pub const MIN_MATCH: f32 = 0.5;
/// The search window reaches this share of the region's size beyond its last position on every side.
const REACH: f32 = 0.5;

/// A grey-level picture (one byte per pixel, rows packed), small enough to keep many of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grey {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl Grey {
    /// Luma of a packed RGB picture, scaled down by an integer `step` (every step-th pixel of a box mean).
    pub fn from_rgb(rgb: &image::RgbImage, step: u32) -> Self {
        let step = step.max(1);
        let (w, h) = (rgb.width() / step, rgb.height() / step);
        let mut data = Vec::with_capacity((w * h) as usize);
        for y in 0..h {
            for x in 0..w {
                let mut sum = 0u32;
                for dy in 0..step {
                    for dx in 0..step {
                        let p = rgb.get_pixel(x * step + dx, y * step + dy);
                        sum += (77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2])) >> 8;
                    }
                }
                data.push((sum / (step * step)) as u8);
            }
        }
        Self { width: w, height: h, data }
    }

    fn at(&self, x: u32, y: u32) -> f32 {
        f32::from(self.data[(y * self.width + x) as usize])
    }
}

/// A patch in grey pixels: where it is and its samples.
#[derive(Debug, Clone)]
struct Patch {
    x: i64,
    y: i64,
    values: Vec<f32>,
}

impl Patch {
    fn cut(g: &Grey, x: i64, y: i64, w: u32, h: u32) -> Option<Self> {
        if x < 0
            || y < 0
            || x as u64 + u64::from(w) > u64::from(g.width)
            || y as u64 + u64::from(h) > u64::from(g.height)
        {
            return None;
        }
        let mut values = Vec::with_capacity((w * h) as usize);
        for yy in 0..h {
            for xx in 0..w {
                values.push(g.at(x as u32 + xx, y as u32 + yy));
            }
        }
        Some(Self { x, y, values })
    }

    /// Normalised cross-correlation with another patch of the same size.
    fn ncc(&self, other: &[f32]) -> f32 {
        let n = self.values.len() as f32;
        let (ma, mb) = (self.values.iter().sum::<f32>() / n, other.iter().sum::<f32>() / n);
        let (mut sab, mut saa, mut sbb) = (0f32, 0f32, 0f32);
        for (a, b) in self.values.iter().zip(other) {
            let (da, db) = (a - ma, b - mb);
            sab += da * db;
            saa += da * da;
            sbb += db * db;
        }
        if saa <= f32::EPSILON || sbb <= f32::EPSILON {
            // A flat patch matches nothing reliably.
            return 0.0;
        }
        sab / (saa * sbb).sqrt()
    }
}

/// Follows one region from frame to frame; see [`follow`].
#[derive(Debug, Clone)]
pub struct Follower {
    template: Option<Patch>,
    w: u32,
    h: u32,
}

impl Follower {
    /// Starts from `start` (a box in `first`'s pixels). A region partly outside the picture, or flat, is lost
    /// at the first step.
    pub fn new(first: &Grey, start: BBox) -> Self {
        let (w, h) = (start.width().round().max(2.0) as u32, start.height().round().max(2.0) as u32);
        let template = Patch::cut(first, start.x0.round() as i64, start.y0.round() as i64, w, h);
        Self { template, w, h }
    }

    /// True once the region was lost; every later step answers `None`.
    pub fn is_lost(&self) -> bool {
        self.template.is_none()
    }

    /// Where the region is in the next frame, or `None` when it is lost (for good).
    pub fn step(&mut self, g: &Grey) -> Option<BBox> {
        let template = self.template.as_ref()?;
        let (w, h) = (self.w, self.h);
        let reach_x = (w as f32 * REACH).ceil() as i64;
        let reach_y = (h as f32 * REACH).ceil() as i64;
        let mut best: Option<(f32, i64, i64)> = None;
        // A full search of the window (regions are small after the caller's downscaling): never trapped in a
        // local maximum.
        for y in template.y - reach_y..=template.y + reach_y {
            for x in template.x - reach_x..=template.x + reach_x {
                let Some(p) = Patch::cut(g, x, y, w, h) else { continue };
                let score = template.ncc(&p.values);
                if best.is_none_or(|(s, _, _)| score > s) {
                    best = Some((score, x, y));
                }
            }
        }
        match best {
            Some((score, x, y)) if score >= MIN_MATCH => {
                // The template follows slow changes of appearance (turning, light) from frame to frame.
                self.template = Patch::cut(g, x, y, w, h);
                Some(BBox::new(x as f32, y as f32, (x + i64::from(w)) as f32, (y + i64::from(h)) as f32))
            }
            _ => {
                self.template = None;
                None
            }
        }
    }
}

/// Follows `start` (a box in `first`'s pixels) through `frames` in order. Returns, per frame, the box where
/// the region was found, until it is lost or leaves the picture (then `None` for that frame and all after).
pub fn follow<'a>(first: &Grey, start: BBox, frames: impl IntoIterator<Item = &'a Grey>) -> Vec<Option<BBox>> {
    let mut f = Follower::new(first, start);
    frames.into_iter().map(|g| f.step(g)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A textured 12×12 square at (x, y) over a flat background.
    fn scene(x: u32, y: u32) -> Grey {
        let (w, h) = (80u32, 60u32);
        let mut data = vec![100u8; (w * h) as usize];
        for yy in 0..12 {
            for xx in 0..12 {
                if x + xx < w && y + yy < h {
                    data[((y + yy) * w + x + xx) as usize] = ((xx * 37 + yy * 91) % 200) as u8 + 20;
                }
            }
        }
        Grey { width: w, height: h, data }
    }

    #[test]
    fn a_moving_patch_is_followed_until_it_leaves_the_picture() {
        let first = scene(10, 20);
        let frames: Vec<Grey> = (1..=40).map(|i| scene(10 + 2 * i, 20 + i / 4)).collect();
        let found = follow(&first, BBox::new(10.0, 20.0, 22.0, 32.0), &frames);
        assert_eq!(found.len(), 40);
        for (i, b) in found.iter().enumerate().take(28) {
            let i = i as u32 + 1;
            let b = b.unwrap_or_else(|| panic!("lost at frame {i}"));
            assert_eq!((b.x0, b.y0), ((10 + 2 * i) as f32, (20 + i / 4) as f32), "frame {i}");
        }
        // From x = 70 the square is cut by the right border; the box stays inside the picture over what is left
        // of it, and is lost (for good) once too little is left, at the latest when it is gone (x = 80).
        let lost_at = found.iter().position(Option::is_none).unwrap();
        assert!((28..=34).contains(&lost_at), "lost at {lost_at}");
        assert!(found[lost_at..].iter().all(Option::is_none));
    }

    #[test]
    fn a_flat_region_is_lost_at_once() {
        let first = scene(10, 20);
        let found = follow(&first, BBox::new(50.0, 40.0, 60.0, 50.0), &[scene(10, 20)]);
        assert_eq!(found, vec![None]);
    }

    #[test]
    fn grey_from_rgb_averages_blocks() {
        let rgb = image::RgbImage::from_fn(4, 2, |x, _| image::Rgb([if x < 2 { 0 } else { 200 }; 3]));
        let g = Grey::from_rgb(&rgb, 2);
        assert_eq!((g.width, g.height), (2, 1));
        assert_eq!(g.data, vec![0, 200]);
    }
}
