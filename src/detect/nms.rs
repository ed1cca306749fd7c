//! Greedy non-maximum suppression.

use super::Detection;

/// Keeps the highest-scoring detection of every group overlapping by more than `iou` and returns them by
/// descending score. NaN scores sort last (`total_cmp`) and never panic; boxes that are not finite or have
/// no area are dropped.
pub fn nms(mut dets: Vec<Detection>, iou: f32) -> Vec<Detection> {
    dets.retain(|d| d.bbox.is_valid());
    let key = |d: &Detection| if d.score.is_nan() { f32::NEG_INFINITY } else { d.score };
    dets.sort_by(|a, b| key(b).total_cmp(&key(a)));
    let mut keep: Vec<Detection> = Vec::with_capacity(dets.len());
    for d in dets {
        if keep.iter().all(|k| k.bbox.iou(&d.bbox) <= iou) {
            keep.push(d);
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geom::BBox;

    fn det(x: f32, score: f32) -> Detection {
        Detection { bbox: BBox::new(x, 0.0, x + 10.0, 10.0), score }
    }

    #[test]
    fn empty_input_gives_empty_output() {
        assert!(nms(Vec::new(), 0.3).is_empty());
    }

    #[test]
    fn overlapping_boxes_keep_the_best() {
        let out = nms(vec![det(0.0, 0.5), det(1.0, 0.9), det(50.0, 0.4)], 0.3);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].score, 0.9);
        assert_eq!(out[1].bbox.x0, 50.0);
    }

    #[test]
    fn nan_scores_do_not_panic_and_sort_last() {
        let out = nms(vec![det(0.0, f32::NAN), det(100.0, 0.2), det(200.0, 0.7)], 0.3);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].score, 0.7);
    }

    #[test]
    fn invalid_boxes_are_dropped() {
        let bad = Detection { bbox: BBox::new(f32::INFINITY, 0.0, 1.0, 1.0), score: 0.9 };
        assert_eq!(nms(vec![bad, det(0.0, 0.1)], 0.3).len(), 1);
    }
}
