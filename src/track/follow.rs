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
    /// Luma of a packed RGB picture, scaled down by an integer `step` (box means of `step × step` pixels; edge
    /// rows and columns that do not fill a block are dropped), read straight from the packed rows.
    pub fn from_rgb(rgb: &image::RgbImage, step: u32) -> Self {
        let step = step.max(1);
        let (w, h) = (rgb.width() / step, rgb.height() / step);
        let (s, stride) = (step as usize, rgb.width() as usize * 3);
        let raw = rgb.as_raw();
        let mut sums = vec![0u32; w as usize];
        let mut data = Vec::with_capacity((w * h) as usize);
        for y in 0..h as usize {
            sums.fill(0);
            for dy in 0..s {
                let row = &raw[(y * s + dy) * stride..][..w as usize * s * 3];
                for (sum, block) in sums.iter_mut().zip(row.chunks_exact(s * 3)) {
                    *sum += block
                        .chunks_exact(3)
                        .map(|p| (77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2])) >> 8)
                        .sum::<u32>();
                }
            }
            data.extend(sums.iter().map(|&v| (v / (step * step)) as u8));
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
}

impl Grey {
    /// Block means of `factor × factor` pixels (edge rows and columns that do not fill a block are dropped).
    pub(crate) fn reduced(&self, factor: u32) -> Grey {
        let f = factor.max(1);
        let (w, h) = (self.width / f, self.height / f);
        let mut data = Vec::with_capacity((w * h) as usize);
        for y in 0..h {
            for x in 0..w {
                let mut sum = 0u32;
                for dy in 0..f {
                    let row = ((y * f + dy) * self.width + x * f) as usize;
                    sum += self.data[row..row + f as usize].iter().map(|&v| u32::from(v)).sum::<u32>();
                }
                data.push((sum / (f * f)) as u8);
            }
        }
        Grey { width: w, height: h, data }
    }
}

/// A followed patch is compared at most this many grey pixels on its longer side in the first, coarse search
/// of each frame; larger patches are searched on a reduced copy of the picture first, then refined at full
/// follow resolution around the best few coarse matches. The cost of a step is then bounded whatever the
/// size of the box (a full search grows with the fourth power of the box's side).
pub const COARSE_SIDE: u32 = 24;
/// Coarse matches refined at full resolution.
const REFINED: usize = 3;

/// Follows one region from frame to frame; see [`follow`].
#[derive(Debug, Clone)]
pub struct Follower {
    template: Option<Patch>,
    w: u32,
    h: u32,
    /// Reduction of the coarse search (1: the patch is small enough to search at full resolution).
    factor: u32,
    /// Sample comparisons made so far (the cost of following).
    work: u64,
}

impl Follower {
    /// Starts from `start` (a box in `first`'s pixels). A region partly outside the picture, or flat, is lost
    /// at the first step.
    pub fn new(first: &Grey, start: BBox) -> Self {
        let (w, h) = (start.width().round().max(2.0) as u32, start.height().round().max(2.0) as u32);
        let template = Patch::cut(first, start.x0.round() as i64, start.y0.round() as i64, w, h);
        let factor = w.max(h).div_ceil(COARSE_SIDE).max(1);
        Self { template, w, h, factor, work: 0 }
    }

    /// True once the region was lost; every later step answers `None`.
    pub fn is_lost(&self) -> bool {
        self.template.is_none()
    }

    /// Sample comparisons made by the steps so far: what following this region cost.
    pub fn work(&self) -> u64 {
        self.work
    }

    /// The best match of `template` (w × h samples) in `g` over positions `xs × ys`, best first, at most `keep`.
    /// Normalised cross-correlation read straight from the picture's rows: the template is centred once, so
    /// each position takes one pass of three sums.
    fn search(
        &mut self,
        g: &Grey,
        template: &[f32],
        (w, h): (u32, u32),
        xs: std::ops::RangeInclusive<i64>,
        ys: std::ops::RangeInclusive<i64>,
        keep: usize,
    ) -> Vec<(f32, i64, i64)> {
        let n = template.len().max(1) as f32;
        let mean = template.iter().sum::<f32>() / n;
        let centred: Vec<f32> = template.iter().map(|v| v - mean).collect();
        let saa: f32 = centred.iter().map(|d| d * d).sum();
        let (w, h, gw) = (w as usize, h as usize, g.width as usize);
        let mut best: Vec<(f32, i64, i64)> = Vec::with_capacity(keep + 1);
        for y in ys {
            for x in xs.clone() {
                if x < 0 || y < 0 || x as usize + w > gw || y as usize + h > g.height as usize {
                    continue;
                }
                self.work += template.len() as u64;
                let (mut sab, mut sb, mut sbb) = (0f32, 0u64, 0u64);
                for (row, t) in centred.chunks_exact(w.max(1)).enumerate() {
                    let start = (y as usize + row) * gw + x as usize;
                    for (a, &b) in t.iter().zip(&g.data[start..start + w]) {
                        sab += a * f32::from(b);
                        sb += u64::from(b);
                        sbb += u64::from(b) * u64::from(b);
                    }
                }
                let spread = sbb as f64 - (sb as f64) * (sb as f64) / (w * h).max(1) as f64;
                // A flat patch matches nothing reliably.
                let score = if saa <= f32::EPSILON || spread <= 1e-6 {
                    0.0
                } else {
                    (f64::from(sab) / (f64::from(saa) * spread).sqrt()) as f32
                };
                if best.len() < keep || best.last().is_some_and(|&(s, _, _)| score > s) {
                    best.push((score, x, y));
                    best.sort_by(|a, b| b.0.total_cmp(&a.0));
                    best.truncate(keep);
                }
            }
        }
        best
    }

    /// Where the region is in the next frame, or `None` when it is lost (for good).
    pub fn step(&mut self, g: &Grey) -> Option<BBox> {
        let template = self.template.take()?;
        let (w, h, f) = (self.w, self.h, i64::from(self.factor));
        let reach_x = (w as f32 * REACH).ceil() as i64;
        let reach_y = (h as f32 * REACH).ceil() as i64;
        let (x0, x1) = (template.x - reach_x, template.x + reach_x);
        let (y0, y1) = (template.y - reach_y, template.y + reach_y);
        // A full search of the window (never trapped in a local maximum): at full resolution for a small patch,
        // else on the picture reduced by `factor`, each of the best few coarse matches refined at full
        // resolution within half a coarse pixel.
        let best = if f == 1 {
            self.search(g, &template.values, (w, h), x0..=x1, y0..=y1, 1)
        } else {
            let (cw, ch) = ((w / self.factor).max(1), (h / self.factor).max(1));
            let t = Grey { width: w, height: h, data: template.values.iter().map(|&v| v as u8).collect() }
                .reduced(self.factor);
            let coarse_t: Vec<f32> = t.data.iter().map(|&v| f32::from(v)).collect();
            let gc = g.reduced(self.factor);
            let coarse = self.search(
                &gc,
                &coarse_t,
                (cw, ch),
                x0.div_euclid(f)..=x1.div_euclid(f),
                y0.div_euclid(f)..=y1.div_euclid(f),
                REFINED,
            );
            // A coarse match at (cx, cy) stands for the positions within half a coarse pixel of (cx·f, cy·f).
            let (half, mut refined) = ((f + 1) / 2, Vec::new());
            for (_, cx, cy) in coarse {
                let (fx, fy) = (cx * f, cy * f);
                let xs = (fx - half).max(x0)..=(fx + half).min(x1);
                let ys = (fy - half).max(y0)..=(fy + half).min(y1);
                refined.extend(self.search(g, &template.values, (w, h), xs, ys, 1));
            }
            refined.sort_by(|a, b| b.0.total_cmp(&a.0));
            refined.truncate(1);
            refined
        };
        match best.first() {
            Some(&(score, x, y)) if score >= MIN_MATCH => {
                // The template follows slow changes of appearance (turning, light) from frame to frame.
                self.template = Patch::cut(g, x, y, w, h);
                Some(BBox::new(x as f32, y as f32, (x + i64::from(w)) as f32, (y + i64::from(h)) as f32))
            }
            _ => None,
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

    /// A textured `size`-pixel square at (x, y) over a flat 320×240 background.
    fn big_scene(x: u32, y: u32, (sw, sh): (u32, u32)) -> Grey {
        let (w, h) = (320u32, 240u32);
        let mut data = vec![100u8; (w * h) as usize];
        for yy in 0..sh {
            for xx in 0..sw {
                if x + xx < w && y + yy < h {
                    let (a, b) = (xx / 3, yy / 3);
                    let hash = (a.wrapping_mul(2_654_435_761) ^ b.wrapping_mul(40_503)).wrapping_mul(2_246_822_519);
                    data[((y + yy) * w + x + xx) as usize] = (hash >> 24) as u8 % 200 + 20;
                }
            }
        }
        Grey { width: w, height: h, data }
    }

    #[test]
    fn a_large_region_is_followed_at_a_bounded_cost_issue_33() {
        // A 150×110 box (the issue's): a full search of its window compared 276 M samples a frame.
        let size = (150, 110);
        let first = big_scene(20, 30, size);
        let mut f = Follower::new(&first, BBox::new(20.0, 30.0, 170.0, 140.0));
        for i in 1..=20u32 {
            let (x, y) = (20 + 3 * i, 30 + i);
            let b = f.step(&big_scene(x, y, size)).unwrap_or_else(|| panic!("lost at frame {i}"));
            assert_eq!((b.x0, b.y0), (x as f32, y as f32), "frame {i}");
        }
        let per_step = f.work() / 20;
        assert!(per_step < 5_000_000, "{per_step} sample comparisons a frame");
        // Small patches are still searched whole at full resolution.
        let mut small = Follower::new(&scene(10, 20), BBox::new(10.0, 20.0, 22.0, 32.0));
        small.step(&scene(12, 20)).unwrap();
        assert_eq!(small.work(), 13 * 13 * 144);
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
