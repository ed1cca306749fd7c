use super::*;

fn face_at(x: f32) -> BBox {
    BBox::new(x, 100.0, x + 40.0, 150.0)
}

/// Feeds `dets[i]` as frame i's detections; returns every frame's boxes in order.
fn run(window: usize, coast: usize, dets: &[Vec<BBox>]) -> Vec<Vec<BBox>> {
    let mut f = TrackFill::new(window, coast);
    let mut out = Vec::new();
    for (i, d) in dets.iter().enumerate() {
        if let Some((j, b)) = f.push(i, d.clone()) {
            assert_eq!(j, out.len(), "frames out of order");
            out.push(b);
        }
        assert!(f.pending.len() <= window, "more than the window held back");
    }
    for (j, b) in f.finish() {
        assert_eq!(j, out.len());
        out.push(b);
    }
    assert_eq!(out.len(), dets.len(), "a frame was lost");
    out
}

fn covers(boxes: &[BBox], truth: &BBox) -> bool {
    boxes.iter().any(|b| b.intersection(truth) >= 0.9 * truth.area())
}

#[test]
fn birth_and_death_with_back_fill_and_coasting() {
    let mut dets = vec![vec![]; 20];
    for d in dets.iter_mut().take(12).skip(8) {
        d.push(face_at(100.0));
    }
    let out = run(3, 3, &dets);
    let covered: Vec<usize> = (0..20).filter(|&i| covers(&out[i], &face_at(100.0))).collect();
    assert_eq!(covered, (5..=14).collect::<Vec<_>>(), "3 frames before the first and after the last detection");
}

#[test]
fn gap_is_bridged_by_interpolation_following_motion() {
    // A face moving 6 px per frame, missed in frames 5..=9 (a gap longer than the window: the look-ahead
    // still sees frame 10 when frame 7 is emitted because coasting covers the first part).
    let truth = |i: usize| face_at(100.0 + 6.0 * i as f32);
    let dets: Vec<Vec<BBox>> = (0..16).map(|i| if (5..10).contains(&i) { vec![] } else { vec![truth(i)] }).collect();
    let out = run(3, 6, &dets);
    for (i, boxes) in out.iter().enumerate() {
        assert!(covers(boxes, &truth(i)), "frame {i} not covered: {boxes:?}");
    }
}

#[test]
fn fast_motion_is_predicted_not_lagged() {
    // 30 px per frame (most of the face's 40 px width): consecutive boxes barely overlap.
    let truth = |i: usize| face_at(50.0 + 30.0 * i as f32);
    let mut dets: Vec<Vec<BBox>> = (0..12).map(|i| vec![truth(i)]).collect();
    for d in dets.iter_mut().skip(9) {
        d.clear(); // the detector loses the face for the last three frames
    }
    let out = run(2, 3, &dets);
    let mut f = TrackFill::new(2, 3);
    for d in &dets {
        f.push((), d.clone());
    }
    assert_eq!(f.tracks_started(), 1, "fast motion split into several tracks");
    for (i, boxes) in out.iter().enumerate() {
        assert!(covers(boxes, &truth(i)), "frame {i}: the box lags the head: {boxes:?}");
    }
}

#[test]
fn two_crossing_faces_keep_their_tracks() {
    // Face A moves right, face B moves left on the same row; they cross around frame 10.
    let a = |i: usize| face_at(20.0 + 10.0 * i as f32);
    let b = |i: usize| face_at(220.0 - 10.0 * i as f32);
    let dets: Vec<Vec<BBox>> = (0..21).map(|i| if i % 4 == 3 { vec![] } else { vec![a(i), b(i)] }).collect();
    let out = run(3, 3, &dets);
    let mut f = TrackFill::new(3, 3);
    for d in &dets {
        f.push((), d.clone());
    }
    assert_eq!(f.tracks_started(), 2, "crossing faces must not spawn new tracks");
    for (i, boxes) in out.iter().enumerate() {
        assert!(covers(boxes, &a(i)) && covers(boxes, &b(i)), "frame {i}: a face is bare");
    }
}

#[test]
fn single_detection_covers_window_around_it_with_growing_boxes() {
    let mut dets = vec![vec![]; 9];
    dets[4].push(face_at(100.0));
    let out = run(2, 2, &dets);
    assert!(out[0].is_empty() && out[1].is_empty() && out[7].is_empty() && out[8].is_empty());
    assert_eq!(out[4], vec![face_at(100.0)]);
    assert!(out[2][0].width() > out[3][0].width() && out[3][0].width() > 40.0);
}

#[test]
fn memory_stays_bounded_on_long_streams() {
    let mut f = TrackFill::new(3, 5);
    for i in 0..2000u64 {
        // a new face every 50 frames, each visible for 20 frames
        let dets = if i % 50 < 20 { vec![face_at((i / 50) as f32 * 3.0)] } else { vec![] };
        f.push(i, dets);
        assert!(f.tracker.live_tracks() <= 2);
        assert!(f.tracker.tracks.iter().all(|t| t.hits.len() <= 12));
        assert!(f.tracker.camera.at.len() <= 12, "camera positions kept: {}", f.tracker.camera.at.len());
    }
}

/// A camera shaking ±12 px left and right every frame over a still head at scene x 300: where the picture
/// shows it in frame `i`, and how far the picture's content moved since the frame before.
fn shaken(i: usize) -> (BBox, (f32, f32)) {
    let offset = |i: usize| if i % 2 == 0 { 12.0 } else { -12.0 };
    let moved = if i == 0 { 0.0 } else { offset(i) - offset(i - 1) };
    (face_at(300.0 + offset(i)), (moved, 0.0))
}

#[test]
fn under_a_shaking_camera_coasting_and_bridging_boxes_stay_on_the_head() {
    // Detected on frames 0..=5 and 9..=11, missed on 6..=8 (bridged) and from 12 (coasting to 17).
    let detected = |i: usize| !(6..=8).contains(&i) && i < 12;
    let (window, coast) = (3, 6);
    let mut f = TrackFill::new(window, coast).in_scene(true);
    let mut out = Vec::new();
    for i in 0..18 {
        let (truth, moved) = shaken(i);
        let dets = if detected(i) { vec![truth] } else { vec![] };
        out.extend(f.push_moved(i, dets, moved));
    }
    out.extend(f.finish());
    assert_eq!(f.tracks_started(), 1, "the shake split the head into several tracks");
    for (i, boxes) in out {
        let truth = shaken(i).0;
        assert!(covers(&boxes, &truth), "frame {i}: the head is bare: {boxes:?}");
        // Only the growth for uncertainty: the box's centre stays on the head's.
        let b = boxes.iter().max_by(|a, b| a.intersection(&truth).total_cmp(&b.intersection(&truth))).unwrap();
        assert!((b.center().0 - truth.center().0).abs() < 1.0, "frame {i}: the box drifted off: {b:?}");
    }

    // Measured in the picture alone, the velocity is the last shake's: the coasting box flies off.
    let mut f = TrackFill::new(window, coast);
    let mut out = Vec::new();
    for i in 0..18 {
        let truth = shaken(i).0;
        out.extend(f.push(i, if detected(i) { vec![truth] } else { vec![] }));
    }
    out.extend(f.finish());
    assert!(out.iter().any(|(i, boxes)| !covers(boxes, &shaken(*i).0)), "the picture's own motion covered the head");
}

#[test]
fn zero_window_passes_frames_straight_through() {
    let mut f = TrackFill::new(0, 0);
    let (i, boxes) = f.push(7, vec![face_at(0.0)]).unwrap();
    assert_eq!((i, boxes), (7, vec![face_at(0.0)]));
    assert!(f.finish().is_empty());
}

#[test]
fn a_face_keeps_its_largest_region_of_the_frames_around_it() {
    // A head moving 4 px a frame, found with its full region (face and head, 60 × 80) on frames 0 and 6 and
    // with a tighter box (40 × 50) by a cheaper pass on the frames between.
    let region = |i: usize| BBox::new(90.0 + 4.0 * i as f32, 70.0, 150.0 + 4.0 * i as f32, 150.0);
    let tight = |i: usize| face_at(100.0 + 4.0 * i as f32);
    let dets: Vec<Vec<BBox>> = (0..7).map(|i| vec![if i % 6 == 0 { region(i) } else { tight(i) }]).collect();
    let kept = |keep: u64| {
        let mut f = TrackFill::new(3, 6).keeping_regions(keep);
        let mut out = Vec::new();
        for (i, d) in dets.iter().enumerate() {
            out.extend(f.push(i, d.clone()));
        }
        out.extend(f.finish());
        out.into_iter().map(|(_, b)| b).collect::<Vec<_>>()
    };
    // Off: the frames between have the tight box only.
    let off = kept(0);
    assert!((1..6).all(|i| off[i] == vec![tight(i)]), "{off:?}");
    // A box of the region's size around the tight box.
    let sized = |boxes: &[BBox], i: usize| {
        boxes.iter().any(|b| b.width() >= 60.0 && b.height() >= 80.0 && b.intersection(&tight(i)) >= tight(i).area())
    };
    // Kept over 5 frames: every frame between also gets a box of the full region's size around the face.
    let on = kept(5);
    assert!((1..6).all(|i| sized(&on[i], i) && on[i].contains(&tight(i))), "{on:?}");
    assert!(on[0] == vec![region(0)] && on[6] == vec![region(6)], "the full regions stand as found");
    // Kept over 2 frames: only the frames within 2 of a full region.
    let near = kept(2);
    assert_eq!((1..6).filter(|&i| sized(&near[i], i)).collect::<Vec<_>>(), [1, 2, 4, 5]);
}
