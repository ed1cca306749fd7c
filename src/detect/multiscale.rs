//! Small faces: a whole-frame pass at the detector's size, plus a pass over overlapping tiles of the
//! full-resolution frame, each scaled up, so faces of 10–20 px become large enough for the detector. Tile
//! results keep only small faces (the whole-frame pass finds the large ones) and drop boxes cut by an inner
//! tile border (the overlapping neighbour sees that face whole); everything is then merged by NMS and by
//! suppressing boxes that lie mostly inside a better one.

use super::{nms, DetectSettings, Detection, Detector};
use crate::geom::BBox;
use crate::Result;
use image::imageops::{self, FilterType};
use image::RgbImage;

/// Detector input side of one tile, in pixels.
pub const TILE_INPUT: u32 = 640;
/// A tile detection is kept only below this height, in frame pixels, times the tile scale.
const SMALL_FACE_FACTOR: f32 = 48.0;
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

/// Start positions of tiles of `tile` samples covering `len`, overlapping by at least `overlap`.
fn starts(len: u32, tile: u32, overlap: u32) -> Vec<u32> {
    if len <= tile {
        return vec![0];
    }
    let step = tile.saturating_sub(overlap).max(1);
    let mut v: Vec<u32> = (0..).map(|i| i * step).take_while(|&s| s + tile < len).collect();
    v.push(len - tile);
    v
}

/// The tiles for a `w × h` frame at `settings`, or none when tiling is off or would not see the frame at a
/// larger scale than the whole-frame pass.
pub fn tiles(w: u32, h: u32, settings: &DetectSettings) -> Vec<Tile> {
    let scale = settings.tile_scale;
    if scale <= 1.0 {
        return Vec::new();
    }
    let (dw, _) = settings.input_size(w, h);
    let whole_scale = dw as f32 / w.max(1) as f32;
    if whole_scale >= scale {
        return Vec::new();
    }
    let side = (TILE_INPUT as f32 / scale).round() as u32;
    let overlap = (SMALL_FACE_FACTOR * 0.75).round() as u32;
    let mut out = Vec::new();
    for y in starts(h, side, overlap) {
        for x in starts(w, side, overlap) {
            out.push(Tile { x, y, w: side.min(w), h: side.min(h) });
        }
    }
    out
}

/// Detects faces in an upright full-resolution frame: the whole-frame pass, then the tiles `select` accepts
/// (by index into [`tiles`]). Boxes are in frame pixels.
pub fn detect_multiscale<D: Detector + ?Sized>(
    detector: &mut D,
    frame: &RgbImage,
    settings: &DetectSettings,
    select: impl Fn(usize) -> bool,
) -> Result<Vec<Detection>> {
    let (w, h) = frame.dimensions();
    let (dw, dh) = settings.input_size(w, h);
    let mut all = if (dw, dh) == (w, h) {
        detector.detect(frame)?
    } else {
        let small = imageops::resize(frame, dw, dh, FilterType::Triangle);
        let (sx, sy) = (w as f32 / dw as f32, h as f32 / dh as f32);
        detector.detect(&small)?.into_iter().map(|d| Detection { bbox: d.bbox.rescaled(sx, sy), ..d }).collect()
    };
    let scale = settings.tile_scale;
    for (i, t) in tiles(w, h, settings).into_iter().enumerate() {
        if !select(i) {
            continue;
        }
        let crop = imageops::crop_imm(frame, t.x, t.y, t.w, t.h).to_image();
        let (uw, uh) = (((t.w as f32) * scale).round() as u32, ((t.h as f32) * scale).round() as u32);
        let up = imageops::resize(&crop, uw.max(1), uh.max(1), FilterType::CatmullRom);
        let (sx, sy) = (t.w as f32 / uw.max(1) as f32, t.h as f32 / uh.max(1) as f32);
        for d in detector.detect(&up)? {
            let b = d.bbox.rescaled(sx, sy);
            let b = BBox::new(b.x0 + t.x as f32, b.y0 + t.y as f32, b.x1 + t.x as f32, b.y1 + t.y as f32);
            if keep_tile_box(&b, &t, w, h) {
                all.push(Detection { bbox: b, score: d.score });
            }
        }
    }
    Ok(merge(all, settings.nms_iou))
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
    use crate::detect::ScriptedDetector;

    fn settings(scale: f32) -> DetectSettings {
        DetectSettings { tile_scale: scale, ..Default::default() }
    }

    #[test]
    fn starts_cover_the_length_with_overlap() {
        assert_eq!(starts(100, 320, 36), vec![0]);
        let s = starts(1000, 320, 36);
        assert_eq!(*s.first().unwrap(), 0);
        assert_eq!(*s.last().unwrap(), 680);
        for w in s.windows(2) {
            assert!(w[1] - w[0] <= 320 - 36, "gap between tiles: {s:?}");
        }
    }

    #[test]
    fn tiles_cover_frame_and_are_off_when_not_needed() {
        let t = tiles(1920, 1080, &settings(2.0));
        assert!(!t.is_empty());
        assert!(t.iter().all(|t| t.w == 320 && t.h == 320 && t.x + t.w <= 1920 && t.y + t.h <= 1080));
        assert!(tiles(1920, 1080, &settings(0.0)).is_empty());
        // A 176x144 frame is already scaled up beyond 2x for the whole-frame pass.
        assert!(tiles(176, 144, &settings(2.0)).is_empty());
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
    fn small_face_found_in_a_tile_is_mapped_to_frame_pixels() {
        // Frame 1000x700 at tile scale 2: the whole-frame pass (call 0) finds nothing; every tile call
        // reports a 24x28 box at (200,200) in its upscaled picture, i.e. 12x14 at (100,100) in the tile.
        let s = settings(2.0);
        let n = tiles(1000, 700, &s).len();
        let found = vec![Detection { bbox: BBox::new(200.0, 200.0, 224.0, 228.0), score: 0.6 }];
        let mut script = vec![vec![]];
        script.extend(std::iter::repeat_n(found, n));
        let mut det = ScriptedDetector::new(script);
        let frame = RgbImage::new(1000, 700);
        let out = detect_multiscale(&mut det, &frame, &s, |i| i == 0).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].bbox, BBox::new(100.0, 100.0, 112.0, 114.0));
    }
}
