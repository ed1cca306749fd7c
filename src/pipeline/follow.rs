//! The follow pre-pass (issue 16): before a video with followed edit regions is redacted, it is read once,
//! scaled down to grey, and every followed region is followed backward from its first key frame and
//! forward from its last, by its pixels only ([`crate::track::follow`]). What was found becomes boxes of
//! that region on those frames; where a region was lost is reported, never silently dropped.

use crate::edits::{Edits, FollowReport, FollowRequest};
use crate::geom::BBox;
use crate::io::ffmpeg::input::FrameReader;
use crate::track::follow::{Follower, Grey};
use crate::Result;
use ff::{Rational, Rescale};
use ffmpeg_next as ff;
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

/// Frames kept for following backward: 30 s at 25 fps, about 43 MB at the follow size. A region is not
/// followed further back than this (reported as lost there).
const BACK_FRAMES: usize = 750;
/// Pictures are followed at about this many pixels on their long side (an integer reduction).
const FOLLOW_SIDE: u32 = 320;

struct State {
    req: FollowRequest,
    boxes: BTreeMap<u64, BBox>,
    first_index: Option<u64>,
    last_index: Option<u64>,
    forward: Option<Follower>,
    forward_done: bool,
    lost_backward_at: Option<u64>,
    lost_forward_at: Option<u64>,
}

/// Follows every followed region of `edits` through the video at `input`, and records what was found.
/// Returns warnings for regions that were lost.
pub(crate) fn follow_regions(input: &Path, edits: &mut Edits) -> Result<Vec<String>> {
    let mut states: Vec<State> = edits
        .follow_requests()
        .into_iter()
        .map(|req| State {
            req,
            boxes: BTreeMap::new(),
            first_index: None,
            last_index: None,
            forward: None,
            forward_done: false,
            lost_backward_at: None,
            lost_forward_at: None,
        })
        .collect();
    if states.is_empty() {
        return Ok(Vec::new());
    }
    let mut reader = FrameReader::open(input)?;
    let (num, den) = reader.time_base();
    let tb = Rational(num, den);
    let mut ring: VecDeque<(u64, i64, Grey)> = VecDeque::new();
    let (mut index, mut first_pts, mut step) = (0u64, None, 1u32);
    while let Some((pts, rgb)) = reader.next_frame()? {
        if index == 0 {
            step = (rgb.width().max(rgb.height()) / FOLLOW_SIDE).max(1);
        }
        let ms = (pts - *first_pts.get_or_insert(pts)).rescale(tb, Rational(1, 1000));
        let grey = Grey::from_rgb(&rgb, step);
        let down = |b: BBox| BBox::new(b.x0 / step as f32, b.y0 / step as f32, b.x1 / step as f32, b.y1 / step as f32);
        let up = |b: BBox| BBox::new(b.x0 * step as f32, b.y0 * step as f32, b.x1 * step as f32, b.y1 * step as f32);
        for st in &mut states {
            if st.first_index.is_none() && st.req.first.0.reached(index, ms) {
                st.first_index = Some(index);
                let mut f = Follower::new(&grey, down(st.req.first.1));
                let mut reached_start = true;
                for (i, t, g) in ring.iter().rev() {
                    if st.req.bounds.from.is_some_and(|from| !from.reached(*i, *t)) {
                        break;
                    }
                    match f.step(g) {
                        Some(b) => {
                            st.boxes.insert(*i, up(b));
                        }
                        None => {
                            st.lost_backward_at = Some(*i);
                            break;
                        }
                    }
                    reached_start = *i == 0;
                }
                // The look-back is bounded: a region still held at its oldest frame was not followed further.
                if st.lost_backward_at.is_none() && !reached_start && st.req.bounds.from.is_none() {
                    st.lost_backward_at = ring.front().map(|(i, _, _)| i.saturating_sub(1)).filter(|&i| i > 0);
                }
            }
            if st.last_index.is_none() && st.req.last.0.reached(index, ms) {
                st.last_index = Some(index);
                st.forward = Some(Follower::new(&grey, down(st.req.last.1)));
                continue;
            }
            if st.forward_done {
                continue;
            }
            if let Some(f) = st.forward.as_mut() {
                if st.req.bounds.to.is_some_and(|to| to.passed(index, ms)) {
                    st.forward_done = true;
                    continue;
                }
                match f.step(&grey) {
                    Some(b) => {
                        st.boxes.insert(index, up(b));
                    }
                    None => {
                        st.lost_forward_at = Some(index);
                        st.forward_done = true;
                    }
                }
            }
        }
        ring.push_back((index, ms, grey));
        if ring.len() > BACK_FRAMES {
            ring.pop_front();
        }
        index += 1;
    }
    let mut warnings = Vec::new();
    for st in states {
        let (Some(first), Some(last)) = (st.first_index, st.last_index) else { continue };
        let report = FollowReport {
            region: st.req.region,
            first_frame: st.boxes.keys().next().copied().unwrap_or(first).min(first),
            last_frame: st.boxes.keys().next_back().copied().unwrap_or(last).max(last),
            lost_backward_at: st.lost_backward_at,
            lost_forward_at: st.lost_forward_at,
        };
        if let Some(i) = report.lost_backward_at {
            warnings.push(format!(
                "edit add[{}]: followed backward to frame {}, lost at frame {i}: earlier frames are not covered by it",
                report.region, report.first_frame
            ));
        }
        if let Some(i) = report.lost_forward_at {
            warnings.push(format!(
                "edit add[{}]: followed forward to frame {}, lost at frame {i}: later frames are not covered by it",
                report.region, report.last_frame
            ));
        }
        edits.set_followed(st.req.region, st.boxes, report);
    }
    Ok(warnings)
}
