//! Small faces: a whole-frame pass at the detector's size, plus a pass over overlapping tiles of the
//! full-resolution frame, each scaled up, so faces of 10–20 px become large enough for the detector. Tile
//! results keep only small faces (the whole-frame pass finds the large ones) and drop boxes cut by an inner
//! tile border (the overlapping neighbour sees that face whole); everything is then merged by NMS and by
//! suppressing boxes that lie mostly inside a better one.

use super::{nms, DetectSettings, Detection, Detector, Pass};
use crate::geom::BBox;
use crate::{Error, Result};
use fast_image_resize as fir;
use image::RgbImage;

/// Largest detector input side of one tile, in pixels. Tiles are sized per frame to cover it with as
/// little overlap beyond the minimum as the detector's 32-pixel input grid allows.
pub const TILE_INPUT: u32 = 1024;
/// Largest detector input of one tile or focus crop, in pixels. ONNX Runtime's working memory for one
/// inference grows with its input (about 150 bytes a pixel for CenterFace) and its arena keeps the largest
/// it has needed: at 1080p, tiles of 928 × 864 held a 224 MiB arena, 928 × 704 hold about 110 MiB.
pub const TILE_INPUT_PIXELS: u64 = 640 * 1024;
/// A tile detection is kept only below this height, in frame pixels, times the tile scale.
const SMALL_FACE_FACTOR: f32 = 48.0;
/// Neighbouring tiles overlap by at least this many frame pixels: every face small enough to be kept from
/// a tile (under twice [`SMALL_FACE_FACTOR`]) lies whole, uncut, in at least one tile.
const TILE_OVERLAP: u32 = 2 * SMALL_FACE_FACTOR as u32;
/// Share of a box's area inside a better box above which it counts as the same face.
const CONTAINED: f32 = 0.7;

/// A tile of the frame, in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Tile {
    /// True when `b` lies whole inside the tile: a pass over the tile sees that face uncut.
    pub fn holds(&self, b: &BBox) -> bool {
        b.x0 >= self.x as f32
            && b.y0 >= self.y as f32
            && b.x1 <= (self.x + self.w) as f32
            && b.y1 <= (self.y + self.h) as f32
    }
}

/// Tiles along one axis: their starts and their common side.
type Spans = (Vec<u32>, u32);

/// Tiles along one axis of `len` samples: `(start, side)` for `n` tiles (at least the fewest of at most `max`
/// samples) that overlap by at least `overlap`, evenly spread. `side` is rounded up so that `side × scale`
/// fills the detector's 32-pixel grid (no padding inferred for nothing).
fn spans_n(len: u32, max: u32, overlap: u32, scale: f32, extra: u32) -> Spans {
    let step = max.saturating_sub(overlap).max(1);
    let fewest = if len <= max { 1 } else { (len - overlap).div_ceil(step).max(2) };
    let n = fewest + extra;
    let mut side = (len + (n - 1) * overlap).div_ceil(n);
    if n == 1 || side >= len {
        return (vec![0], len);
    }
    while ((side as f32 * scale).round() as u32) % 32 != 0 && side < max.min(len) {
        side += 1;
    }
    let room = len - side;
    let starts = (0..n).map(|i| ((room as u64 * i as u64 + (n as u64 - 1) / 2) / (n as u64 - 1)) as u32).collect();
    (starts, side)
}

/// Detector input pixels of a `w × h` region of the frame scaled by `scale` (each side padded to the
/// detector's 32-pixel grid).
pub(crate) fn input_pixels(w: f32, h: f32, scale: f32) -> u64 {
    ((w * scale / 32.0).ceil() * 32.0) as u64 * ((h * scale / 32.0).ceil() * 32.0) as u64
}

/// True when a `w × h` region of the frame scaled by `scale` is a detector input within
/// [`TILE_INPUT_PIXELS`].
pub(crate) fn fits_tile_input(w: f32, h: f32, scale: f32) -> bool {
    input_pixels(w, h, scale) <= TILE_INPUT_PIXELS
}

/// The tiles for a still `w × h` picture at `settings` (the fewest tiles of at most [`TILE_INPUT`] a side),
/// or none when tiling is off or would not see the frame at a larger scale than the whole-frame pass.
pub fn tiles(w: u32, h: u32, settings: &DetectSettings) -> Vec<Tile> {
    tiles_within(w, h, settings, u64::MAX)
}

/// The tiles for `w × h` video frames: [`tiles`]' layout where its tiles' detector input stays within
/// [`TILE_INPUT_PIXELS`] (ONNX Runtime keeps the working memory of the largest input for the whole run), else
/// of the layouts within it the one that searches the fewest pixels. A still picture is searched once and keeps [`tiles`]' layout.
pub fn video_tiles(w: u32, h: u32, settings: &DetectSettings) -> Vec<Tile> {
    tiles_within(w, h, settings, TILE_INPUT_PIXELS)
}

/// The tiny-face pass of a dark still picture ([`tiny_face_tiles`]) magnifies its tiles this much (against
/// [`DetectSettings::tile_scale`], 2× by default, for the small-face tiles): a face of 6–10 px is 24–40 px to
/// the detectors, where both find far more of them in the dark than at 2×.
/// Measured (2026-12-06, `judge.py images`, faces under 10 px on 15 dark copies of `wider_dev`: the judge's
/// dim and night copies, and `make_dark.py` copies 2.5 and 3.5 stops under with noise σ 2 and 4 stops under
/// with σ 3, of the set as it is and scaled to 0.5 and 0.7, with the dim and night copies of the scaled
/// ones): 573 of 670 covered without the pass, 599 with it; no face of any size lost on any copy. Both
/// models at 4× found about twice what YuNet alone did; 3× found a little less than 4×.
pub const TINY_FACE_SCALE: f32 = 4.0;
/// The tiny-face pass keeps the boxes it finds under this height, in frame pixels (a face under 10 px gets
/// a detector box of up to about 14 px); larger faces are the other passes' work.
pub const TINY_FACE_HEIGHT: f32 = 16.0;
/// Neighbouring tiles of the tiny-face pass overlap by this many frame pixels: at least twice
/// [`TINY_FACE_HEIGHT`], so every box it keeps lies whole in one tile. More overlap searches faces near a
/// border in more tiles, at more cost. Measured on the copies above (faces under 10 px covered; time for the
/// four night photos of `wider_dev`, 3.4–3.5 s without the pass): 32 px 596 (12.8–13.4 s), 48 px 599
/// (13.6–14.4 s), 96 px, the small-face tiles' overlap, 603 (18.5–22 s).
pub const TINY_FACE_OVERLAP: u32 = 48;

/// The tiles of the tiny-face pass of a dark still `w × h` picture: at [`TINY_FACE_SCALE`], overlapping by
/// [`TINY_FACE_OVERLAP`], or none where the small-face tiles are off (`tile_scale` 1 or less) or the
/// whole-frame pass already sees the picture that large.
pub fn tiny_face_tiles(w: u32, h: u32, settings: &DetectSettings) -> Vec<Tile> {
    if settings.tile_scale <= 1.0 {
        return Vec::new();
    }
    let tiny = DetectSettings { tile_scale: TINY_FACE_SCALE, ..settings.clone() };
    layout(w, h, &tiny, TINY_FACE_OVERLAP, u64::MAX)
}

fn tiles_within(w: u32, h: u32, settings: &DetectSettings, cap: u64) -> Vec<Tile> {
    layout(w, h, settings, TILE_OVERLAP, cap)
}

/// Tiles of a `w × h` frame at `settings.tile_scale` that overlap by at least `overlap` frame pixels: the
/// fewest of at most [`TILE_INPUT`] a side whose detector input stays within `cap` pixels, else of the
/// layouts within it the one that searches the fewest pixels.
fn layout(w: u32, h: u32, settings: &DetectSettings, overlap: u32, cap: u64) -> Vec<Tile> {
    let scale = settings.tile_scale;
    if scale <= 1.0 {
        return Vec::new();
    }
    let (dw, _) = settings.input_size(w, h);
    let whole_scale = dw as f32 / w.max(1) as f32;
    if whole_scale >= scale {
        return Vec::new();
    }
    let max = ((TILE_INPUT as f32 / scale).floor() as u32).max(overlap + 1);
    // The fewest tiles along each axis, then up to 31 more (enough for any frame up to 8K at every scale).
    let across: Vec<Spans> = (0..32).map(|extra| spans_n(w, max, overlap, scale, extra)).collect();
    let down: Vec<Spans> = (0..32).map(|extra| spans_n(h, max, overlap, scale, extra)).collect();
    let searched = |(xs, tw): &Spans, (ys, th): &Spans| (xs.len() * ys.len()) as u64 * *tw as u64 * *th as u64;
    let fits = |(x, y): &(&Spans, &Spans)| input_pixels(x.1 as f32, y.1 as f32, scale) <= cap;
    let fewest = (&across[0], &down[0]);
    let ((xs, tw), (ys, th)) = if fits(&fewest) {
        fewest
    } else {
        across
            .iter()
            .flat_map(|x| down.iter().map(move |y| (x, y)))
            .filter(fits)
            .min_by_key(|(x, y)| searched(x, y))
            .unwrap_or(fewest)
    };
    let (tw, th) = (*tw, *th);
    ys.iter().flat_map(|&y| xs.iter().map(move |&x| Tile { x, y, w: tw, h: th })).collect()
}

/// Detector input size of the whole-frame pass on video when `tiles` cover the small faces: the frame at a
/// quarter of the tile scale (half resolution at the default 2×), within `[min_side, max_side]`. Faces too
/// small for it (up to the tile overlap, and in practice up to the tiles' size limit) are the tiles' job.
pub fn whole_input_size_with_tiles(w: u32, h: u32, settings: &DetectSettings) -> (u32, u32) {
    let long = w.max(h);
    let target = ((long as f32 * settings.tile_scale / 4.0).round() as u32).clamp(settings.min_side, settings.max_side);
    DetectSettings { max_side: target.max(settings.min_side), ..settings.clone() }.input_size(w, h)
}

/// Scales the `crop` (x, y, w, h) of `src` to `dw × dh` with `filter`, using SIMD where the CPU has it.
pub(crate) fn resize_rgb(
    src: &RgbImage,
    (x, y, w, h): (u32, u32, u32, u32),
    (dw, dh): (u32, u32),
    filter: fir::FilterType,
) -> Result<RgbImage> {
    let fail = |e: &dyn std::fmt::Display| Error::Internal(format!("resizing {w}x{h} to {dw}x{dh}: {e}"));
    let view = fir::images::ImageRef::new(src.width(), src.height(), src.as_raw(), fir::PixelType::U8x3)
        .map_err(|e| fail(&e))?;
    let mut out = vec![0u8; dw as usize * dh as usize * 3];
    let mut dst = fir::images::Image::from_slice_u8(dw, dh, &mut out, fir::PixelType::U8x3).map_err(|e| fail(&e))?;
    let options = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(filter))
        .crop(x as f64, y as f64, w as f64, h as f64);
    fir::Resizer::new().resize(&view, &mut dst, &options).map_err(|e| fail(&e))?;
    RgbImage::from_raw(dw, dh, out).ok_or_else(|| fail(&"buffer size"))
}

/// A whole-frame box whose side (the square root of its share of the frame's area) is at least this is large
/// enough to need more than the run's threshold ...
pub const LARGE_BOX_SIDE: f32 = 0.3;
/// ... rising linearly to this score for a box of [`HUGE_BOX_SIDE`] and more: a face that large is an easy
/// one, and detectors score it high; a huge box at a low score is almost never a face (smoke, a wall).
pub const HUGE_BOX_SCORE: f32 = 0.3;
pub const HUGE_BOX_SIDE: f32 = 0.6;

/// A whole-frame box at least this tall in the detector's input pixels (and in the frame's: a magnified face
/// has no more detail than the frame gives it) is a face the detector sees large ...
pub const TALL_BOX_HEIGHT: f32 = 48.0;
/// ... and in a picture that is not dark ([`lowlight::is_dark`](super::lowlight::is_dark)) needs more than the
/// run's threshold, rising linearly to this score at [`TALLER_BOX_HEIGHT`] and up.
/// Measured (2026-12-07) on the dev stills as they are, their dim and night copies, copies half a stop under
/// with sensor noise, with noise alone, at JPEG quality 50, and with every face 3, 4 and 5 stops in shadow in
/// a bright picture (117 pictures): every box of 40 px and more over an annotated face scored 0.39 or more,
/// while boxes of 70–175 px at 0.08–0.09 lay on a bandsman's uniform and on a bare wall (noise and
/// compression make them). In the dark faces score low everywhere, and such boxes stay.
pub const TALL_BOX_SCORE: f32 = 0.2;
pub const TALLER_BOX_HEIGHT: f32 = 96.0;

/// The least score a whole-frame box is kept at, for a run's `threshold`: `area` is its share of the frame,
/// `input_height` its height in the detector's input pixels (at most the frame's), `dark` whether the picture
/// is dark.
pub fn min_score(area: f32, input_height: f32, dark: bool, threshold: f32) -> f32 {
    let rising = |x: f32, from: f32, to: f32, top: f32| {
        let t = ((x - from) / (to - from)).clamp(0.0, 1.0);
        threshold.max(threshold + (top - threshold) * t)
    };
    let by_area = rising(area.max(0.0).sqrt(), LARGE_BOX_SIDE, HUGE_BOX_SIDE, HUGE_BOX_SCORE);
    let by_height =
        if dark { threshold } else { rising(input_height, TALL_BOX_HEIGHT, TALLER_BOX_HEIGHT, TALL_BOX_SCORE) };
    by_area.max(by_height)
}

/// Drops the whole-frame boxes `found` of a `w × h` frame (boxes in frame pixels; the pass saw the frame at
/// `input` size) that score below [`min_score`], unless they hold a confidently found face (`HUGE_BOX_SCORE`
/// and up): a face filling the picture (a portrait, a face chip) is often also found as a larger, weaker box
/// around it, which covers the head and keeps it. `dark` says whether the frame is dark; it is asked only
/// when a tall, weak box needs the answer.
pub fn plausible(
    found: Vec<Detection>,
    (w, h): (u32, u32),
    input: (u32, u32),
    threshold: f32,
    dark: impl FnOnce() -> bool,
) -> Vec<Detection> {
    let area = (w as f32 * h as f32).max(1.0);
    // A face magnified for the pass has no more detail than the frame gives it.
    let to_input = (input.1 as f32 / h.max(1) as f32).min(1.0);
    let confident: Vec<crate::geom::BBox> =
        found.iter().filter(|d| d.score >= HUGE_BOX_SCORE).map(|d| d.bbox).collect();
    let dark = std::cell::LazyCell::new(dark);
    found
        .into_iter()
        .filter(|d| {
            let (share, tall) = (d.bbox.area() / area, d.bbox.height() * to_input);
            let kept = d.score >= min_score(share, tall, true, threshold)
                && (d.score >= min_score(share, tall, false, threshold) || *dark);
            kept || confident.iter().any(|c| c.intersection(&d.bbox) > 0.5 * c.area())
        })
        .collect()
}

/// A whole-frame box shorter than this, in frame pixels, is a small face: the magnified passes search for
/// it in the same picture (a 20 px face is 40 px to them) ...
pub const WEAK_SMALL_HEIGHT: f32 = 20.0;
/// ... and in a picture that is not dark ([`lowlight::is_dark`](super::lowlight::is_dark)) one scoring below
/// this is kept only where a magnified pass that held it whole found a face there too: a small, weak box
/// of the 1× pass that both models at 2× pass over is, in daylight, texture (a glove, a flag, foliage), not
/// a face. In the dark, faces score low everywhere and such boxes stay.
/// Measured (2026-12-06) on the dev stills: every annotated face under 20 px of the bright sets that any pass
/// finds also scores at least 0.2 on a tile (one 8 px face no pass finds lies under a neighbour's mask), while
/// these boxes were most of the unexplained over-redaction of `wider_dev`.
pub const WEAK_SMALL_SCORE: f32 = 0.15;

/// The whole-frame boxes `whole` of a picture less the small, weak ones ([`WEAK_SMALL_HEIGHT`],
/// [`WEAK_SMALL_SCORE`]) that a magnified pass over a region holding them whole (`searched`) did not
/// confirm with a box of its own (`small`, IoU above `iou`). A `dark` picture keeps them all.
pub fn confirm_small(whole: Vec<Detection>, small: &[BBox], searched: &[Tile], dark: bool, iou: f32) -> Vec<Detection> {
    let unconfirmed = |d: &Detection| {
        d.bbox.height() < WEAK_SMALL_HEIGHT
            && d.score < WEAK_SMALL_SCORE
            && searched.iter().any(|t| t.holds(&d.bbox))
            && !small.iter().any(|b| b.iou(&d.bbox) > iou)
    };
    if dark {
        return whole;
    }
    whole.into_iter().filter(|d| !unconfirmed(d)).collect()
}

/// Runs the whole-frame pass on `frame`, scaled to `dw × dh`; boxes in frame pixels.
pub fn whole_pass<D: Detector + ?Sized>(
    detector: &mut D,
    frame: &RgbImage,
    size: (u32, u32),
) -> Result<Vec<Detection>> {
    whole_pass_as(detector, frame, size, Pass::Whole)
}

/// [`whole_pass`] as `pass` ([`Pass::Whole`] or [`Pass::WholeRepeat`]).
pub(crate) fn whole_pass_as<D: Detector + ?Sized>(
    detector: &mut D,
    frame: &RgbImage,
    (dw, dh): (u32, u32),
    pass: Pass,
) -> Result<Vec<Detection>> {
    if (dw, dh) == frame.dimensions() {
        return detector.detect_for(frame, pass);
    }
    search_resized(frame, (dw, dh), |small| detector.detect_for(small, pass))
}

/// `search` on `frame` scaled to `dw × dh` (bilinear), its boxes back in `frame`'s pixels.
pub(crate) fn search_resized(
    frame: &RgbImage,
    (dw, dh): (u32, u32),
    search: impl FnOnce(&RgbImage) -> Result<Vec<Detection>>,
) -> Result<Vec<Detection>> {
    let (w, h) = frame.dimensions();
    let small = resize_rgb(frame, (0, 0, w, h), (dw, dh), fir::FilterType::Bilinear)?;
    let (sx, sy) = (w as f32 / dw as f32, h as f32 / dh as f32);
    Ok(search(&small)?.into_iter().map(|d| Detection { bbox: d.bbox.rescaled(sx, sy), ..d }).collect())
}

/// Runs one tile, magnified by `scale`; returns the small, uncut faces it found, in frame pixels.
pub fn tile_pass<D: Detector + ?Sized>(
    detector: &mut D,
    frame: &RgbImage,
    t: &Tile,
    scale: f32,
) -> Result<Vec<Detection>> {
    crop_pass(detector, frame, t, scale, Pass::Small)
}

/// [`tile_pass`] for `pass` (a tile, or a focus crop around known faces).
pub(crate) fn crop_pass<D: Detector + ?Sized>(
    detector: &mut D,
    frame: &RgbImage,
    t: &Tile,
    scale: f32,
    pass: Pass,
) -> Result<Vec<Detection>> {
    let up = magnify(frame, t, scale)?;
    let found = detector.detect_for(&up, pass)?;
    Ok(in_frame(found, frame.dimensions(), t, scale))
}

/// The size of crop `t` magnified by `scale`.
fn magnified_size(t: &Tile, scale: f32) -> (u32, u32) {
    ((((t.w as f32) * scale).round() as u32).max(1), (((t.h as f32) * scale).round() as u32).max(1))
}

/// The crop `t` of `frame`, magnified by `scale`, as a detector is given it.
pub(crate) fn magnify(frame: &RgbImage, t: &Tile, scale: f32) -> Result<RgbImage> {
    resize_rgb(frame, (t.x, t.y, t.w, t.h), magnified_size(t, scale), fir::FilterType::CatmullRom)
}

/// The boxes `found` in crop `t` of a `w × h` frame magnified by `scale` (see [`magnify`]) in frame pixels,
/// less those the crop's inner borders cut.
pub(crate) fn in_frame(found: Vec<Detection>, (w, h): (u32, u32), t: &Tile, scale: f32) -> Vec<Detection> {
    let (uw, uh) = magnified_size(t, scale);
    let (sx, sy) = (t.w as f32 / uw as f32, t.h as f32 / uh as f32);
    let mut out = Vec::new();
    for d in found {
        let b = d.bbox.rescaled(sx, sy);
        let b = BBox::new(b.x0 + t.x as f32, b.y0 + t.y as f32, b.x1 + t.x as f32, b.y1 + t.y as f32);
        if keep_tile_box(&b, t, w, h) {
            out.push(Detection { bbox: b, score: d.score });
        }
    }
    out
}

/// Detects faces in an upright full-resolution frame: the whole-frame pass at the detector's size, then the
/// tiles `select` accepts (by index into [`tiles`]). Boxes are the faces as found, in frame pixels (`verify`
/// measures surviving detail over them, as the judge does over face boxes); every box the detector gives
/// above the run's thresholds is kept. The regions a still picture is redacted over come from
/// [`Analyser::exhaustive`](super::Analyser::exhaustive) instead.
pub fn faces_multiscale<D: Detector + ?Sized>(
    detector: &mut D,
    frame: &RgbImage,
    settings: &DetectSettings,
    select: impl Fn(usize) -> bool,
) -> Result<Vec<Detection>> {
    let (w, h) = frame.dimensions();
    let input = settings.input_size(w, h);
    // `verify` looks at high sensitivity: a tall, weak box stays as in the dark.
    let mut all = plausible(whole_pass(detector, frame, input)?, (w, h), input, settings.threshold, || true);
    for (i, t) in tiles(w, h, settings).iter().enumerate() {
        if select(i) {
            all.extend(tile_pass(detector, frame, t, settings.tile_scale)?);
        }
    }
    Ok(merge(all, settings.nms_iou))
}

/// [`faces_multiscale`] (every tile) on `frame` turned a quarter, a half and three quarters, for faces on their
/// side or upside down ([`DetectSettings::turned`]): the boxes scoring [`TURNED_MIN_SCORE`](super::TURNED_MIN_SCORE)
/// or more, in `frame`'s pixels.
pub fn faces_turned<D: Detector + ?Sized>(
    detector: &mut D,
    frame: &RgbImage,
    settings: &DetectSettings,
) -> Result<Vec<Detection>> {
    let (w, h) = frame.dimensions();
    let mut all = Vec::new();
    for turn in super::TURNS {
        let picture = super::turned(frame, turn);
        for d in faces_multiscale(detector, &picture, settings, |_| true)? {
            let bbox = turn.box_to_stored(&d.bbox, w, h).clamped(w, h);
            if d.score >= super::TURNED_MIN_SCORE && bbox.is_valid() {
                all.push(Detection { bbox, ..d });
            }
        }
    }
    Ok(all)
}

/// A tile detection is kept when it is small and not cut by a tile border inside the frame.
fn keep_tile_box(b: &BBox, t: &Tile, w: u32, h: u32) -> bool {
    const EDGE: f32 = 1.5;
    let small = b.height() < SMALL_FACE_FACTOR * 2.0 && b.width() < SMALL_FACE_FACTOR * 2.0;
    let cut_left = t.x > 0 && b.x0 <= t.x as f32 + EDGE;
    let cut_top = t.y > 0 && b.y0 <= t.y as f32 + EDGE;
    let cut_right = t.x + t.w < w && b.x1 >= (t.x + t.w) as f32 - EDGE;
    let cut_bottom = t.y + t.h < h && b.y1 >= (t.y + t.h) as f32 - EDGE;
    small && !(cut_left || cut_top || cut_right || cut_bottom)
}

/// NMS, then suppression of boxes lying mostly inside a larger kept box (the larger one is kept, with the
/// better of the two scores: for redaction the larger region is the safe choice). Sorted by score.
pub fn merge(dets: Vec<Detection>, iou: f32) -> Vec<Detection> {
    let mut kept = nms(dets, iou);
    kept.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
    let mut out: Vec<Detection> = Vec::with_capacity(kept.len());
    for d in kept {
        let a = d.bbox.area();
        match out.iter_mut().find(|k| a > 0.0 && k.bbox.intersection(&d.bbox) / a > CONTAINED) {
            Some(container) => container.score = container.score.max(d.score),
            None => out.push(d),
        }
    }
    let key = |d: &Detection| if d.score.is_nan() { f32::NEG_INFINITY } else { d.score };
    out.sort_by(|a, b| key(b).total_cmp(&key(a)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::lowlight::is_dark;
    use crate::detect::ScriptedDetector;

    fn settings(scale: f32) -> DetectSettings {
        DetectSettings { tile_scale: scale, ..Default::default() }
    }

    #[test]
    fn huge_weak_boxes_are_dropped_unless_they_hold_a_confident_face_issue_34() {
        let d = |x0: f32, y0: f32, x1: f32, y1: f32, score: f32| Detection { bbox: BBox::new(x0, y0, x1, y1), score };
        let grey = image::RgbImage::from_pixel(1000, 1000, image::Rgb([128, 128, 128]));
        let whole = |found| plausible(found, grey.dimensions(), (1000, 1000), 0.08, || is_dark(&grey));
        // A cloud over 70 % of a 1000x1000 picture at 0.1, and a small face at the same score: the face stays.
        let kept = whole(vec![d(0.0, 0.0, 840.0, 840.0, 0.1), d(10.0, 10.0, 30.0, 30.0, 0.1)]);
        assert_eq!(kept, vec![d(10.0, 10.0, 30.0, 30.0, 0.1)]);
        // A large box at a high score is a face; a weak large one around a confident face covers its head.
        let kept = whole(vec![d(0.0, 0.0, 840.0, 840.0, 0.5)]);
        assert_eq!(kept.len(), 1);
        let kept = whole(vec![d(0.0, 0.0, 900.0, 900.0, 0.1), d(200.0, 200.0, 700.0, 800.0, 0.9)]);
        assert_eq!(kept.len(), 2);
        assert_eq!(min_score(0.05, 0.0, false, 0.08), 0.08);
        assert!((min_score(0.36, 0.0, false, 0.08) - HUGE_BOX_SCORE).abs() < 1e-6);
    }

    #[test]
    fn tall_weak_boxes_are_dropped_in_daylight_and_kept_in_the_dark_issue_34() {
        let d = |y0: f32, h: f32, score: f32| Detection { bbox: BBox::new(100.0, y0, 100.0 + h, y0 + h), score };
        let picture = |level: u8| image::RgbImage::from_pixel(640, 480, image::Rgb([level, level, level]));
        let (bright, dark) = (picture(128), picture(20));
        // An 80 px box needs 0.16, a 40 px box the run's threshold; at 0.25 a tall box is kept.
        let boxes = vec![d(10.0, 80.0, 0.1), d(100.0, 40.0, 0.1), d(200.0, 80.0, 0.25)];
        let seen =
            |picture: &image::RgbImage, input| plausible(boxes.clone(), (640, 480), input, 0.08, || is_dark(picture));
        let kept = seen(&bright, (640, 480));
        assert_eq!(kept, vec![boxes[1], boxes[2]]);
        assert!((min_score(0.0, 80.0, false, 0.08) - 0.16).abs() < 1e-6);
        assert_eq!(min_score(0.0, TALLER_BOX_HEIGHT * 2.0, false, 0.08), TALL_BOX_SCORE);
        // Seen at half the picture's size, the boxes are 40 and 20 px to the detector: short enough. Magnified
        // twice, they are no taller than the frame makes them. In a dark picture all stay.
        assert_eq!(seen(&bright, (320, 240)), boxes);
        assert_eq!(seen(&bright, (1280, 960)), vec![boxes[1], boxes[2]]);
        assert_eq!(seen(&dark, (640, 480)), boxes);
        assert_eq!(min_score(0.0, 200.0, true, 0.08), 0.08);
    }

    #[test]
    fn spans_cover_the_length_with_overlap() {
        assert_eq!(spans_n(100, 512, 96, 2.0, 0), (vec![0], 100));
        for len in [513, 720, 1000, 1080, 1280, 1920, 4000] {
            let (s, side) = spans_n(len, 512, 96, 2.0, 0);
            assert!(side <= 512 && (side * 2) % 32 == 0, "{len}: side {side}");
            assert_eq!(s[0], 0);
            assert_eq!(s.last().unwrap() + side, len, "{len}: last tile ends at the edge");
            for w in s.windows(2) {
                assert!(w[1] > w[0] && w[0] + side >= w[1] + 96, "{len}: overlap under 96 in {s:?} (side {side})");
            }
            // The fewest tiles of that size: one fewer could not overlap by 96.
            let n = s.len() as u32;
            assert!((n - 1) * 512 < len + (n - 2) * 96, "{len}: {n} tiles where fewer would do");
        }
    }

    #[test]
    fn tiles_cover_frame_and_are_off_when_not_needed() {
        let t = tiles(1920, 1080, &settings(2.0));
        assert!(!t.is_empty());
        assert!(t
            .iter()
            .all(|t| t.w * 2 <= TILE_INPUT && t.h * 2 <= TILE_INPUT && t.x + t.w <= 1920 && t.y + t.h <= 1080));
        let covered = |x: u32, y: u32| t.iter().any(|t| (t.x..t.x + t.w).contains(&x) && (t.y..t.y + t.h).contains(&y));
        assert!((0..1920).step_by(7).all(|x| (0..1080).step_by(7).all(|y| covered(x, y))));
        assert_eq!(tiles(1280, 720, &settings(2.0)).len(), 6, "3 × 2 tiles of 496 × 416 at 720p");
        // Every face small enough to be kept from a tile lies whole in one of them.
        for (x, y) in [(0, 0), (390, 300), (401, 333), (1183, 623), (800, 350)] {
            assert!(
                t.iter().any(|t| t.x <= x && t.y <= y && x + 95 <= t.x + t.w && y + 95 <= t.y + t.h),
                "a 95 px face at ({x}, {y}) is cut by every tile"
            );
        }
        assert!(tiles(1920, 1080, &settings(0.0)).is_empty());
        // A 176x144 frame is already scaled up beyond 2x for the whole-frame pass.
        assert!(tiles(176, 144, &settings(2.0)).is_empty());
    }

    #[test]
    fn tile_inputs_stay_within_the_pixel_cap_and_cover_the_frame() {
        for (w, h) in [(1280, 720), (1920, 1080), (2560, 1440), (3840, 2160), (1080, 1920), (826, 540)] {
            for scale in [1.5, 2.0, 3.0] {
                let t = video_tiles(w, h, &settings(scale));
                let input = |side: u32| (side as f32 * scale).round() as u64;
                assert!(
                    t.iter().all(|t| input(t.w) * input(t.h) <= TILE_INPUT_PIXELS),
                    "{w}x{h} at {scale}: {:?}",
                    t.first()
                );
                // Every point of the frame is in a tile, and neighbours overlap by the tile overlap.
                let covered =
                    |x: u32, y: u32| t.iter().any(|t| (t.x..t.x + t.w).contains(&x) && (t.y..t.y + t.h).contains(&y));
                assert!((0..w).step_by(13).all(|x| (0..h).step_by(13).all(|y| covered(x, y))), "{w}x{h} at {scale}");
                for a in &t {
                    let next = t.iter().filter(|b| b.y == a.y && b.x > a.x).map(|b| b.x).min();
                    assert!(next.is_none_or(|x| a.x + a.w >= x + TILE_OVERLAP), "{w}x{h} at {scale}: {a:?}");
                }
            }
        }
        assert_eq!(tiles(1920, 1080, &settings(2.0)).len(), 15, "stills keep 5 × 3 tiles of 464 × 432");
        // 1080p at 2x: 5 × 4 tiles of 464 × 352 (928 × 704 detector pixels; 7.5 % more pixels searched than
        // the 5 × 3 of 464 × 432 that the side limit alone allows); 720p: 3 × 3 of 496 × 304 (9.6 % more).
        let t = video_tiles(1920, 1080, &settings(2.0));
        assert_eq!((t.len(), t[0].w, t[0].h), (20, 464, 352));
        assert!(fits_tile_input(464.0, 352.0, 2.0) && !fits_tile_input(464.0, 432.0, 2.0));
        let t = video_tiles(1280, 720, &settings(2.0));
        assert_eq!((t.len(), t[0].w, t[0].h), (9, 496, 304));
    }

    #[test]
    fn tile_boxes_cut_by_inner_borders_are_dropped() {
        let t = Tile { x: 288, y: 0, w: 320, h: 320 };
        assert!(!keep_tile_box(&BBox::new(289.0, 50.0, 300.0, 62.0), &t, 1000, 1000));
        assert!(
            keep_tile_box(&BBox::new(300.0, 0.5, 312.0, 12.0), &Tile { y: 0, ..t }, 1000, 1000),
            "frame border is not a cut"
        );
        assert!(keep_tile_box(&BBox::new(400.0, 100.0, 412.0, 114.0), &t, 1000, 1000));
        assert!(
            !keep_tile_box(&BBox::new(400.0, 100.0, 520.0, 230.0), &t, 1000, 1000),
            "large faces come from the whole frame"
        );
    }

    #[test]
    fn weak_small_whole_frame_boxes_need_a_tile_in_daylight_and_stay_in_the_dark_issue_34() {
        let d = |x0: f32, y0: f32, h: f32, score: f32| Detection { bbox: BBox::new(x0, y0, x0 + h, y0 + h), score };
        let unconfirmed = d(200.0, 200.0, 14.0, 0.1); // texture: no tile sees a face there
        let confirmed = d(600.0, 400.0, 14.0, 0.1); // a small face both passes see
        let strong = d(400.0, 100.0, 14.0, 0.5);
        let tall = d(800.0, 600.0, 30.0, 0.1);
        let whole = vec![unconfirmed, confirmed, strong, tall];
        let (w, h) = (1024, 768);
        let settings = settings(2.0);
        let all_tiles = tiles(w, h, &settings);
        // The script: the whole frame (at 1×: frame pixels), then each tile (magnified) in order; the tiles
        // that hold the confirmed face find it, at 2× (tile pixels).
        let script = |whole: &[Detection]| {
            let mut calls = vec![whole.to_vec()];
            calls.extend(all_tiles.iter().map(|t| {
                let b = confirmed.bbox;
                let at = |v: f32, o: u32| (v - o as f32) * 2.0;
                let found = Detection {
                    bbox: BBox::new(at(b.x0, t.x), at(b.y0, t.y), at(b.x1, t.x), at(b.y1, t.y)),
                    score: 0.3,
                };
                if t.holds(&b) {
                    vec![found]
                } else {
                    vec![]
                }
            }));
            ScriptedDetector::new(calls)
        };
        let near = |found: &[Detection], b: &Detection| found.iter().any(|f| f.bbox.iou(&b.bbox) > 0.5);
        for (light, dark) in [(150u8, false), (25, true)] {
            let picture = RgbImage::from_pixel(w, h, image::Rgb([light; 3]));
            for (what, found) in [
                (
                    "the library's Redactor",
                    crate::Redactor::new(script(&whole), settings.clone(), crate::RedactSettings::default())
                        .unwrap()
                        .detect(&picture)
                        .unwrap(),
                ),
                (
                    "a still's analyser",
                    super::super::Analyser::exhaustive(settings.clone(), w, h)
                        .analyse(&mut script(&whole), &picture)
                        .unwrap(),
                ),
            ] {
                for b in [confirmed, strong, tall] {
                    assert!(near(&found, &b), "{what}, light {light}: {b:?} lost: {found:?}");
                }
                assert_eq!(near(&found, &unconfirmed), dark, "{what}, light {light}: {found:?}");
            }
            // `verify` keeps everything the detector gives.
            let found = faces_multiscale(&mut script(&whole), &picture, &settings, |_| true).unwrap();
            assert!(near(&found, &unconfirmed), "verify, light {light}");
        }
        // Where no tile searched (a picture the whole-frame pass already sees at 2×), nothing confirms: kept.
        let small_picture = RgbImage::from_pixel(320, 240, image::Rgb([150; 3]));
        assert!(tiles(320, 240, &settings).is_empty());
        let input = d(100.0, 100.0, 20.0, 0.1); // 10 px in the picture, the whole-frame pass at 2×
        let found = super::super::Analyser::exhaustive(settings.clone(), 320, 240)
            .analyse(&mut ScriptedDetector::new([vec![input]]), &small_picture);
        assert_eq!(found.unwrap().len(), 1);
    }

    #[test]
    fn merge_removes_duplicates_and_boxes_inside_others() {
        let d = |x0: f32, y0: f32, x1: f32, y1: f32, s: f32| Detection { bbox: BBox::new(x0, y0, x1, y1), score: s };
        let out = merge(
            vec![
                d(0.0, 0.0, 20.0, 20.0, 0.9),
                d(1.0, 1.0, 21.0, 21.0, 0.5),
                d(2.0, 2.0, 10.0, 10.0, 0.95),
                d(100.0, 0.0, 110.0, 10.0, 0.3),
            ],
            0.3,
        );
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].bbox, BBox::new(0.0, 0.0, 20.0, 20.0), "the larger box is kept");
        assert_eq!(out[0].score, 0.95, "with the better score");
    }

    #[test]
    fn faces_are_reported_as_found_and_redacted_as_heads() {
        // `faces_multiscale` (verify) gives the face box; a still's analyser (redaction) its head region.
        let s = settings(0.0);
        let face = || vec![Detection { bbox: BBox::new(100.0, 100.0, 140.0, 150.0), score: 0.9 }];
        let frame = RgbImage::new(640, 480);
        let raw = faces_multiscale(&mut ScriptedDetector::new([face()]), &frame, &s, |_| true).unwrap();
        assert_eq!(raw[0].bbox, BBox::new(100.0, 100.0, 140.0, 150.0));
        let region = super::super::Analyser::exhaustive(s, 640, 480)
            .analyse(&mut ScriptedDetector::new([face()]), &frame)
            .unwrap();
        assert_eq!(region[0].bbox, BBox::new(96.0, 90.0, 144.0, 150.0));
    }

    #[test]
    fn small_face_found_in_a_tile_is_mapped_to_frame_pixels() {
        // Frame 1000x700 at tile scale 2: the whole-frame pass (call 0) finds nothing; every tile call
        // reports a 24x28 box at (200,200) in its upscaled picture, i.e. 12x14 at (100,100) in the tile.
        let s = settings(2.0);
        let n = tiles(1000, 700, &s).len();
        let found = vec![Detection { bbox: BBox::new(200.0, 200.0, 224.0, 228.0), score: 0.25 }];
        let mut script = vec![vec![]];
        script.extend(std::iter::repeat_n(found, n));
        let mut det = ScriptedDetector::new(script);
        let frame = RgbImage::new(1000, 700);
        let out = faces_multiscale(&mut det, &frame, &s, |i| i == 0).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].bbox, BBox::new(100.0, 100.0, 112.0, 114.0));
    }
}
