//! Low light: contrast-limited adaptive histogram equalisation (CLAHE) of the detector's input luma, applied
//! only to dark pictures.
//!
//! CenterFace was trained on daylight photos; in a picture 3.5–5 stops under (night CCTV, a dark hall) its
//! response to faces drops below the threshold although their structure is still there. Spreading the
//! brightness of each region of a dark picture over the full range restores that response without changing
//! the detector or its threshold. The clip limit keeps flat, noisy regions from being stretched into
//! texture (which would invent faces in sensor noise). Only the detector's copy of the picture is changed:
//! output pixels are untouched. Bright pictures are left exactly as they are.

use image::RgbImage;

/// A picture whose median luma (BT.601, 0–255) is below this is dark and gets equalised. Daylight photos and
/// video sit well above it (the dev photo sets: 108–134), a dim copy of them (3.5 stops under) at 7–41.
pub const DARK_MEDIAN: u8 = 80;
/// Tiles across each axis of the picture (each has its own mapping; pixels blend the four nearest).
const GRID: usize = 8;
/// Contrast limit: no brightness level gets more than this multiple of its uniform share of a tile.
const CLIP: f32 = 2.0;

/// BT.601 luma of an RGB pixel, rounded.
#[inline]
fn luma(p: &[u8]) -> u8 {
    ((77 * p[0] as u32 + 150 * p[1] as u32 + 29 * p[2] as u32 + 128) >> 8) as u8
}

/// Median luma of `img` (0 for an empty picture).
pub fn median_luma(img: &RgbImage) -> u8 {
    // Four histograms, a pixel to each in turn, summed at the end: neighbouring pixels often share a level,
    // and one histogram would make each count wait for the last one's store.
    let mut hists = [[0u32; 256]; 4];
    let mut quads = img.as_raw().chunks_exact(12);
    for q in &mut quads {
        hists[0][luma(&q[0..3]) as usize] += 1;
        hists[1][luma(&q[3..6]) as usize] += 1;
        hists[2][luma(&q[6..9]) as usize] += 1;
        hists[3][luma(&q[9..12]) as usize] += 1;
    }
    for p in quads.remainder().chunks_exact(3) {
        hists[0][luma(p) as usize] += 1;
    }
    let mut hist = [0u32; 256];
    for (i, h) in hist.iter_mut().enumerate() {
        *h = hists[0][i] + hists[1][i] + hists[2][i] + hists[3][i];
    }
    let half = (img.width() as u64 * img.height() as u64).div_ceil(2);
    let mut seen = 0u64;
    for (v, &n) in hist.iter().enumerate() {
        seen += n as u64;
        if seen >= half {
            return v as u8;
        }
    }
    0
}

/// True when `img` is dark enough to be equalised for detection.
pub fn is_dark(img: &RgbImage) -> bool {
    img.width() > 0 && img.height() > 0 && median_luma(img) < DARK_MEDIAN
}

/// Equalises `img` in place when it is dark (see the module docs); returns whether it did.
pub fn equalise_if_dark(img: &mut RgbImage) -> bool {
    if !is_dark(img) {
        return false;
    }
    equalise(img);
    true
}

/// CLAHE on the luma of `img`: every pixel's R, G and B move by the same amount as its luma (its colour
/// difference is kept, as when only Y of YCbCr is replaced).
pub fn equalise(img: &mut RgbImage) {
    let Some(tiles) = Tiles::of(img) else { return };
    let (w, gx) = (tiles.w, tiles.gx);
    let raw: &mut [u8] = img;
    // Each pixel blends the mappings of the four tiles whose centres surround it (this runs on every pixel of
    // every dark pass). A row goes in sweeps that the compiler can vectorise but the first: the four mapped
    // levels of each pixel looked up (in spans of pixels between the same two tile centres), the blend into
    // a change of luma, that change copied for the three channels, and added to them. Output identical to the
    // one loop before (`the_fast_blend_maps_every_pixel_as_the_plain_formula_does`), a 896 × 576 dark tile
    // 2.40 → 1.52 ms (`benches/stages.rs`, `lowlight_equalise_896x576`).
    let xs: Vec<(usize, usize, f32)> = (0..w).map(|x| axis(x, tiles.tw, gx)).collect();
    // Spans of pixels between the same two tile centres: (first, past the last, the two tiles).
    let mut spans: Vec<(usize, usize, usize, usize)> = Vec::new();
    for (x, &(xa, xb, _)) in xs.iter().enumerate() {
        match spans.last_mut() {
            Some((_, end, a, b)) if (*a, *b) == (xa, xb) => *end = x + 1,
            _ => spans.push((x, x + 1, xa, xb)),
        }
    }
    let fxs: Vec<f32> = xs.iter().map(|&(_, _, fx)| fx).collect();
    let mut levels = vec![[0u8; 4]; w];
    let mut deltas = vec![0i16; w];
    let mut deltas3 = vec![0i16; 3 * w];
    for (y, (out, lumas)) in raw.chunks_exact_mut(w * 3).zip(tiles.lumas.chunks_exact(w)).enumerate() {
        let (ya, yb, fy) = axis(y, tiles.th, tiles.gy);
        let (top_luts, bottom_luts) = (&tiles.luts[ya * gx..(ya + 1) * gx], &tiles.luts[yb * gx..(yb + 1) * gx]);
        for &(start, end, xa, xb) in &spans {
            let (ta, tb, ba, bb) = (&top_luts[xa], &top_luts[xb], &bottom_luts[xa], &bottom_luts[xb]);
            for (l, &v) in levels[start..end].iter_mut().zip(&lumas[start..end]) {
                let v = v as usize;
                *l = [ta[v], tb[v], ba[v], bb[v]];
            }
        }
        for (((d, l), &v), &fx) in deltas.iter_mut().zip(&levels).zip(lumas).zip(&fxs) {
            let top = l[0] as f32 * (1.0 - fx) + l[1] as f32 * fx;
            let bottom = l[2] as f32 * (1.0 - fx) + l[3] as f32 * fx;
            *d = (round_blend(top * (1.0 - fy) + bottom * fy) - v as i32) as i16;
        }
        for (d3, &d) in deltas3.chunks_exact_mut(3).zip(&deltas) {
            d3.fill(d);
        }
        for (c, &d) in out.iter_mut().zip(&deltas3) {
            *c = (*c as i16 + d).clamp(0, 255) as u8;
        }
    }
}

/// A picture's luma and the equalising mapping of each of its tiles.
struct Tiles {
    w: usize,
    /// Tile size, and tiles across and down.
    tw: usize,
    th: usize,
    gx: usize,
    gy: usize,
    lumas: Vec<u8>,
    /// One 256-entry mapping per tile, row by row.
    luts: Vec<[u8; 256]>,
}

impl Tiles {
    /// `None` for an empty picture.
    fn of(img: &RgbImage) -> Option<Self> {
        let (w, h) = (img.width() as usize, img.height() as usize);
        if w == 0 || h == 0 {
            return None;
        }
        let (tw, th) = (w.div_ceil(GRID).max(1), h.div_ceil(GRID).max(1));
        let (gx, gy) = (w.div_ceil(tw), h.div_ceil(th));
        let mut lumas = vec![0u8; w * h];
        for (y, p) in lumas.iter_mut().zip(img.as_raw().chunks_exact(3)) {
            *y = luma(p);
        }
        let mut luts = vec![[0u8; 256]; gx * gy];
        for ty in 0..gy {
            for tx in 0..gx {
                let (x0, y0) = (tx * tw, ty * th);
                let (x1, y1) = ((x0 + tw).min(w), (y0 + th).min(h));
                let mut hist = [0u32; 256];
                for row in lumas[y0 * w..y1 * w].chunks_exact(w) {
                    for &v in &row[x0..x1] {
                        hist[v as usize] += 1;
                    }
                }
                luts[ty * gx + tx] = tile_mapping(&hist, ((x1 - x0) * (y1 - y0)) as u32);
            }
        }
        Some(Self { w, tw, th, gx, gy, lumas, luts })
    }
}

/// Where sample `i` lies between the centres of tiles of `tile` samples (`count` of them): the two tiles and
/// the weight of the second.
fn axis(i: usize, tile: usize, count: usize) -> (usize, usize, f32) {
    let c = (i as f32 + 0.5) / tile as f32 - 0.5;
    if c <= 0.0 {
        return (0, 0, 0.0);
    }
    let a = (c.floor() as usize).min(count - 1);
    let b = (a + 1).min(count - 1);
    (a, b, if a == b { 0.0 } else { c - a as f32 })
}

/// `v.round() as i32` for a blend of mapping levels (never negative: a sum of levels times weights in 0–1,
/// at most 255 and a rounding error), in `f32` arithmetic alone, so that the blend of a row vectorises
/// (`f32::round` compiles to a call to the C library, and a saturating `as` to checks on every value):
/// adding 2²³ rounds `v` to the nearest integer, ties to even, held in the low bits of the sum; `v` minus that
/// integer is exact, and is ½ exactly where a tie went down instead of away from zero. The same as
/// `f32::round` for every `f32` from 0 to 300 (checked exhaustively when written; the tests check a sample).
#[inline]
fn round_blend(v: f32) -> i32 {
    debug_assert!((0.0..=300.0).contains(&v), "{v}");
    const SHIFT: f32 = 8_388_608.0;
    let y = v + SHIFT;
    (y.to_bits() & 0x007f_ffff) as i32 + i32::from(v - (y - SHIFT) == 0.5)
}

/// The equalising mapping of one tile's histogram (`n` samples): counts above the clip limit are cut and
/// their excess spread evenly over all levels, then the cumulative share is scaled to 0–255.
fn tile_mapping(hist: &[u32; 256], n: u32) -> [u8; 256] {
    let mut lut = [0u8; 256];
    if n == 0 {
        for (i, v) in lut.iter_mut().enumerate() {
            *v = i as u8;
        }
        return lut;
    }
    let limit = ((CLIP * n as f32 / 256.0).ceil() as u32).max(1);
    let mut clipped = [0u32; 256];
    let mut excess = 0u32;
    for (c, &v) in clipped.iter_mut().zip(hist.iter()) {
        *c = v.min(limit);
        excess += v - *c;
    }
    let (each, rest) = (excess / 256, (excess % 256) as usize);
    let mut sum = 0u32;
    for (i, c) in clipped.iter().enumerate() {
        sum += c + each + u32::from(i < rest);
        lut[i] = ((sum as u64 * 255 + n as u64 / 2) / n as u64).min(255) as u8;
    }
    lut
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// A hash-based noise value in `-amp..=amp`, deterministic.
    fn noise(x: u32, y: u32, amp: i32) -> i32 {
        let mut h = x.wrapping_mul(0x9E37_79B1) ^ y.wrapping_mul(0x85EB_CA77);
        h ^= h >> 15;
        h = h.wrapping_mul(0x2C1B_3C6D);
        h ^= h >> 13;
        (h % (2 * amp as u32 + 1)) as i32 - amp
    }

    #[test]
    fn bright_pictures_are_left_alone() {
        let mut img = RgbImage::from_fn(64, 48, |x, y| Rgb([(100 + x) as u8, (90 + y) as u8, 120]));
        let before = img.clone();
        assert!(!equalise_if_dark(&mut img));
        assert_eq!(img, before);
    }

    #[test]
    fn dark_structure_is_stretched_to_full_contrast() {
        // A dark picture whose shading spans levels 8–40 in every region (a dim, lit-from-one-side scene).
        let mut img = RgbImage::from_fn(128, 96, |x, y| {
            let v = (8 + (x % 16) * 2 + (y % 8) / 4) as u8;
            Rgb([v, v, v])
        });
        assert!(equalise_if_dark(&mut img));
        let (lo, hi) = img.pixels().fold((255, 0), |(lo, hi), p| (lo.min(p[0]), hi.max(p[0])));
        assert!(hi - lo > 3 * 32, "contrast 8..40 should at least triple; after equalisation {lo}..{hi}");
    }

    #[test]
    fn flat_noise_is_not_stretched_into_texture() {
        // A flat dark patch with ±3 levels of sensor noise keeps a small spread: the clip limit stops CLAHE
        // from turning noise into structure.
        let mut img = RgbImage::from_fn(128, 96, |x, y| {
            let v = (25 + noise(x, y, 3)) as u8;
            Rgb([v, v, v])
        });
        assert!(equalise_if_dark(&mut img));
        let mean = img.pixels().map(|p| p[0] as f64).sum::<f64>() / (128.0 * 96.0);
        let sd = (img.pixels().map(|p| (p[0] as f64 - mean).powi(2)).sum::<f64>() / (128.0 * 96.0)).sqrt();
        // Uniform ±3 noise has sd 2; a full histogram equalisation would spread it to ~70.
        assert!(sd < 20.0, "noise spread after equalisation: sd {sd:.1}");
    }

    #[test]
    fn colour_differences_are_kept() {
        let mut img = RgbImage::from_fn(32, 32, |x, _| Rgb([(20 + x) as u8, 10, 5]));
        equalise(&mut img);
        for p in img.pixels() {
            if p[0] < 255 && p[1] > 0 && p[2] > 0 {
                assert!(p[0] > p[1] && p[1] > p[2], "order of channels changed: {p:?}");
            }
        }
    }

    /// The per-pixel blend as first written (one `f32::round` per pixel, by index), for the fast path to match.
    fn equalise_plainly(img: &mut RgbImage) {
        let t = Tiles::of(img).unwrap();
        let (w, h) = (img.width() as usize, img.height() as usize);
        let raw: &mut [u8] = img;
        for y in 0..h {
            let (ya, yb, fy) = axis(y, t.th, t.gy);
            for x in 0..w {
                let (xa, xb, fx) = axis(x, t.tw, t.gx);
                let (v, luts, gx) = (t.lumas[y * w + x] as usize, &t.luts, t.gx);
                let top = luts[ya * gx + xa][v] as f32 * (1.0 - fx) + luts[ya * gx + xb][v] as f32 * fx;
                let bottom = luts[yb * gx + xa][v] as f32 * (1.0 - fx) + luts[yb * gx + xb][v] as f32 * fx;
                let delta = (top * (1.0 - fy) + bottom * fy).round() as i32 - v as i32;
                for c in &mut raw[(y * w + x) * 3..(y * w + x) * 3 + 3] {
                    *c = (*c as i32 + delta).clamp(0, 255) as u8;
                }
            }
        }
    }

    #[test]
    fn the_blends_rounding_is_f32_round() {
        // Every tie (k + ½) and its two neighbours, and every 1,009th `f32` from 0 to 300 (the whole range was
        // checked when the rounding was written).
        let ties = (0..300).flat_map(|k| {
            let t = k as f32 + 0.5;
            [t, t.next_down(), t.next_up(), k as f32, (k as f32).next_up()]
        });
        let sample = (0..=300f32.to_bits()).step_by(1009).map(f32::from_bits);
        for v in ties.chain(sample).filter(|v| (0.0..=300.0).contains(v)) {
            assert_eq!(round_blend(v), v.round() as i32, "{v}");
        }
    }

    #[test]
    fn the_fast_blend_maps_every_pixel_as_the_plain_formula_does() {
        // Odd sizes (partial tiles), a dark noisy scene with structure: every level of every mapping is used.
        for (w, h) in [(131, 77), (896, 576), (33, 500), (7, 5)] {
            let img = RgbImage::from_fn(w, h, |x, y| {
                let v = (10 + (x * 7 + y * 3) % 40) as i32 + noise(x, y, 9);
                Rgb([v.clamp(0, 255) as u8, (v / 2) as u8, (v + noise(y, x, 5)).clamp(0, 255) as u8])
            });
            let (mut fast, mut plain) = (img.clone(), img);
            equalise(&mut fast);
            equalise_plainly(&mut plain);
            assert!(fast == plain, "{w}x{h}: the fast blend differs from the plain one");
        }
        for v in [0.0f32, 0.49999997, 0.5, 1.5, 2.5, 254.5, 255.0, 127.49999] {
            assert_eq!(round_blend(v), v.round() as i32, "{v}");
        }
    }

    #[test]
    fn the_median_counts_every_pixel_whatever_the_size() {
        for (w, h) in [(5, 3), (7, 1), (1, 1), (131, 77)] {
            let img = RgbImage::from_fn(w, h, |x, y| Rgb([(x * 37 + y * 11) as u8, (x * y) as u8, (y * 53) as u8]));
            let mut lumas: Vec<u8> = img.pixels().map(|p| luma(&p.0)).collect();
            lumas.sort_unstable();
            assert_eq!(median_luma(&img), lumas[(lumas.len() - 1) / 2], "{w}x{h}");
        }
    }

    #[test]
    fn median_is_of_luma() {
        let img = RgbImage::from_fn(10, 10, |x, _| if x < 6 { Rgb([0, 0, 0]) } else { Rgb([255, 255, 255]) });
        assert_eq!(median_luma(&img), 0);
        assert_eq!(median_luma(&RgbImage::from_pixel(3, 3, Rgb([100, 100, 100]))), 100);
    }
}
