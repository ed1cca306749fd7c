//! The follow pre-pass (issue 16): before a video with followed edit regions is redacted, it is read once,
//! scaled down to grey, and every followed region is followed backward from its first key frame and
//! forward from its last, by its pixels only ([`crate::track::follow`]). What was found becomes boxes of
//! that region on those frames; where a region was lost is reported, never silently dropped.
//!
//! Following backward needs the frames before a key frame in reverse order: the last [`BACK_FRAMES`] are kept
//! (bounded memory). A region whose `from` bound lies further back is followed on from its oldest kept frame
//! by seeking back a window at a time; where the file cannot be read back that way, the region is reported
//! lost there, with a warning. The pre-pass stops when the run is stopped (Ctrl-C, `--time-limit`).

use super::pace::Watch;
use crate::edits::{Edits, FollowReport, FollowRequest};
use crate::geom::BBox;
use crate::io::ffmpeg::clock::increasing;
use crate::io::ffmpeg::input::FrameReader;
use crate::track::follow::{Follower, Grey};
use crate::{Error, Result};
use ff::{Rational, Rescale};
use ffmpeg_next as ff;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;

/// Frames kept for following backward: 30 s at 25 fps, about 43 MB at the follow size. A region without a
/// `from` bound is not followed further back than this (reported as lost there).
pub(crate) const BACK_FRAMES: usize = 750;
/// Pictures are followed at about this many pixels on their long side (an integer reduction).
const FOLLOW_SIDE: u32 = 320;

struct State {
    req: FollowRequest,
    boxes: BTreeMap<u64, BBox>,
    first_index: Option<u64>,
    last_index: Option<u64>,
    forward: Option<Follower>,
    forward_done: bool,
    /// Still following backward beyond the kept frames: the follower and the oldest frame it reached.
    backward: Option<(Follower, u64)>,
    lost_backward_at: Option<u64>,
    lost_forward_at: Option<u64>,
}

/// One frame as the follower sees it.
struct Seen {
    index: u64,
    ms: i64,
    grey: Grey,
}

/// Follows every followed region of `edits` through the video at `input`, and records what was found.
/// Returns warnings for regions that were lost. `watch` stops it ([`Error::Cancelled`]) when the run is stopped.
pub(crate) fn follow_regions(input: &Path, edits: &mut Edits, watch: Option<&Watch>) -> Result<Vec<String>> {
    follow_with(input, edits, watch, BACK_FRAMES)
}

fn follow_with(input: &Path, edits: &mut Edits, watch: Option<&Watch>, keep: usize) -> Result<Vec<String>> {
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
            backward: None,
            lost_backward_at: None,
            lost_forward_at: None,
        })
        .collect();
    if states.is_empty() {
        return Ok(Vec::new());
    }
    let stopped = || -> Result<()> {
        match watch.is_some_and(Watch::stop_requested) {
            true => Err(Error::Cancelled),
            false => Ok(()),
        }
    };
    let mut reader = FrameReader::open(input)?;
    let (num, den) = reader.time_base();
    let tb = Rational(num, den);
    let mut ring: VecDeque<Seen> = VecDeque::new();
    // Every frame's timestamp, to find frames again after seeking back (None once a frame has none, or two
    // share one: then each frame's time is the run's, made to increase, but it cannot be found again by it).
    let mut pts_of: Option<Vec<i64>> = Some(Vec::new());
    let (mut first_pts, mut last_pts) = (None, None);
    let (mut index, mut step) = (0u64, 1u32);
    while let Some((read, rgb)) = reader.next_frame()? {
        stopped()?;
        if index == 0 {
            step = (rgb.width().max(rgb.height()) / FOLLOW_SIDE).max(1);
        }
        let pts = increasing(read, last_pts);
        last_pts = Some(pts);
        if let Some(list) = pts_of.as_mut() {
            if read.is_none_or(|p| list.last().is_some_and(|&last| last >= p)) {
                pts_of = None;
            } else {
                list.push(pts);
            }
        }
        // The time the run gives this frame (an edit's time code meets the same frame in both).
        let ms = pts.saturating_sub(*first_pts.get_or_insert(pts)).rescale(tb, Rational(1, 1000));
        let seen = Seen { index, ms, grey: Grey::from_rgb(&rgb, step) };
        for st in &mut states {
            if st.first_index.is_none() && st.req.first.0.reached(index, ms) {
                st.first_index = Some(index);
                let f = Follower::new(&seen.grey, down(st.req.first.1, step));
                follow_back(st, f, ring.iter().rev(), step, &stopped)?;
                // The kept frames ran out before the region was lost or reached its bound.
                if let Some((_, oldest)) = &st.backward {
                    if st.req.bounds.from.is_none() {
                        // Without a bound the look-back is the documented 30 s: reported lost before it.
                        st.lost_backward_at = Some(oldest - 1);
                        st.backward = None;
                    }
                }
            }
            if st.last_index.is_none() && st.req.last.0.reached(index, ms) {
                st.last_index = Some(index);
                st.forward = Some(Follower::new(&seen.grey, down(st.req.last.1, step)));
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
                match f.step(&seen.grey) {
                    Some(b) => {
                        st.boxes.insert(index, up(b, step));
                    }
                    None => {
                        st.lost_forward_at = Some(index);
                        st.forward_done = true;
                    }
                }
            }
        }
        ring.push_back(seen);
        if ring.len() > keep {
            ring.pop_front();
        }
        index += 1;
    }
    drop(ring);
    // Regions with a `from` bound further back than the kept frames: read back a window at a time.
    let mut warnings = Vec::new();
    for st in states.iter_mut().filter(|st| st.backward.is_some()) {
        while let Some((_, oldest)) = &st.backward {
            stopped()?;
            let oldest = *oldest;
            let window = match pts_of.as_deref() {
                Some(pts) => read_back(&mut reader, pts, oldest, keep, step, tb, first_pts.unwrap_or(0))?,
                None => None,
            };
            let Some(window) = window else {
                st.lost_backward_at = Some(oldest - 1);
                st.backward = None;
                warnings.push(format!(
                    "edit add[{}]: followed backward to frame {oldest} only: the file's frames cannot be found \
                     again by their timestamps to follow further back; earlier frames are not covered by it",
                    st.req.region
                ));
                break;
            };
            if let Some((f, _)) = st.backward.take() {
                follow_back(st, f, window.iter().rev(), step, &stopped)?;
            }
        }
    }
    for st in states {
        let (Some(first), Some(last)) = (st.first_index, st.last_index) else {
            // The run meets the same frames at the same times, so it will refuse the edit as never reached; if it
            // did not, the region would be on its key frames only: said here either way.
            warnings.push(format!(
                "edit add[{}]: not followed: the follow pre-pass did not meet its key frames in the {index} frame(s) \
                 it read",
                st.req.region
            ));
            continue;
        };
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

fn down(b: BBox, step: u32) -> BBox {
    let s = step as f32;
    BBox::new(b.x0 / s, b.y0 / s, b.x1 / s, b.y1 / s)
}

fn up(b: BBox, step: u32) -> BBox {
    let s = step as f32;
    BBox::new(b.x0 * s, b.y0 * s, b.x1 * s, b.y1 * s)
}

/// Follows `st`'s region backward through `frames` (newest first) until its `from` bound, the first frame,
/// or where it is lost. If the frames run out before any of those, the follower is kept in `st.backward` with
/// the oldest frame it reached.
fn follow_back<'a>(
    st: &mut State,
    mut f: Follower,
    frames: impl Iterator<Item = &'a Seen>,
    step: u32,
    stopped: &dyn Fn() -> Result<()>,
) -> Result<()> {
    let mut oldest = None;
    for seen in frames {
        stopped()?;
        if st.req.bounds.from.is_some_and(|from| !from.reached(seen.index, seen.ms)) {
            return Ok(());
        }
        match f.step(&seen.grey) {
            Some(b) => {
                st.boxes.insert(seen.index, up(b, step));
            }
            None => {
                st.lost_backward_at = Some(seen.index);
                return Ok(());
            }
        }
        oldest = Some(seen.index);
    }
    match oldest {
        Some(0) => {}
        Some(i) => st.backward = Some((f, i)),
        // No frame before the key frame was kept: nothing to follow, unless frames came before it.
        None => {}
    }
    Ok(())
}

/// The `keep` frames before frame `oldest`, read again by seeking back: `None` when the frames found after
/// the seek cannot be matched to their indices by timestamp.
fn read_back(
    reader: &mut FrameReader,
    pts: &[i64],
    oldest: u64,
    keep: usize,
    step: u32,
    tb: Rational,
    first_pts: i64,
) -> Result<Option<Vec<Seen>>> {
    let lo = (oldest as usize).saturating_sub(keep);
    let Some(&target) = pts.get(lo) else { return Ok(None) };
    let index_of: HashMap<i64, u64> = pts[..oldest as usize].iter().enumerate().map(|(i, &p)| (p, i as u64)).collect();
    if reader.seek_before(target).is_err() {
        return Ok(None);
    }
    let mut window = Vec::with_capacity(oldest as usize - lo);
    let mut next = lo as u64;
    while next < oldest {
        let Some((read, rgb)) = reader.next_frame()? else { return Ok(None) };
        let Some(p) = read else { return Ok(None) };
        match index_of.get(&p) {
            Some(&i) if i < next => continue,
            Some(&i) if i == next => {
                let ms = p.saturating_sub(first_pts).rescale(tb, Rational(1, 1000));
                window.push(Seen { index: i, ms, grey: Grey::from_rgb(&rgb, step) });
                next += 1;
            }
            // A frame missing, or one the first read did not see: the windows would not line up.
            _ => return Ok(None),
        }
    }
    Ok(Some(window))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geom::Rotation;
    use crate::redact::RedactSettings;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    /// A 48×48 textured patch moving right by 1 px a frame over grey, `frames` long, 160×120, lossless.
    fn clip(dir: &Path, frames: u32) -> std::path::PathBuf {
        let path = dir.join("patch.mkv");
        let out = std::process::Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "color=c=gray:size=160x120:rate=25"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=48x48:rate=25", "-filter_complex"])
            .arg("[0:v][1:v]overlay=x='20+mod(n,80)':y=36:shortest=1,format=yuv420p[v]")
            .args(["-map", "[v]", "-frames:v", &frames.to_string(), "-c:v", "libx264", "-qp", "0", "-g", "12"])
            .args(["-preset", "ultrafast"])
            .arg(&path)
            .output()
            .expect("ffmpeg runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        path
    }

    fn edits(json: &str) -> Edits {
        Edits::parse(json.as_bytes(), 160, 120, Path::new("e.json")).unwrap()
    }

    fn covered(e: &mut Edits, frames: u64) -> Vec<u64> {
        let run = RedactSettings::default();
        (0..frames)
            .filter(|&i| !e.frame(i, i as i64 * 40, Rotation::None, (160, 120), &run).regions.is_empty())
            .collect()
    }

    #[test]
    fn a_from_bound_beyond_the_kept_frames_is_followed_back_by_seeking_issue_33() {
        // The issue: keyed 790 frames in with a `from` bound, followed back only the 750 kept frames and
        // reported as if it reached its bound. Here 70 frames in with 20 kept, the same shape.
        let dir = tempfile::tempdir().unwrap();
        let input = clip(dir.path(), 80);
        let mut e = edits(
            r#"{"version": 1, "add": [{"keyframes": [{"frame": 70, "box": [90, 36, 48, 48]}], "follow": true, "from": 3, "to": 72}]}"#,
        );
        let warnings = follow_with(&input, &mut e, None, 20).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let r = &e.follow_reports()[0];
        assert_eq!((r.first_frame, r.lost_backward_at, r.last_frame), (3, None, 72), "{r:?}");
        assert_eq!(covered(&mut e, 80), (3..=72).collect::<Vec<_>>());
    }

    #[test]
    fn without_a_bound_the_look_back_ends_reported_at_the_kept_frames_issue_33() {
        let dir = tempfile::tempdir().unwrap();
        let input = clip(dir.path(), 60);
        let mut e = edits(
            r#"{"version": 1, "add": [{"keyframes": [{"frame": 50, "box": [70, 36, 48, 48]}], "follow": true, "to": 50}]}"#,
        );
        let warnings = follow_with(&input, &mut e, None, 20).unwrap();
        let r = &e.follow_reports()[0];
        assert_eq!((r.first_frame, r.lost_backward_at), (30, Some(29)), "{r:?}");
        assert!(warnings.iter().any(|w| w.contains("lost at frame 29")), "{warnings:?}");
    }

    #[test]
    fn a_stopped_run_stops_the_follow_pass_issue_33() {
        let dir = tempfile::tempdir().unwrap();
        let input = clip(dir.path(), 10);
        let mut e =
            edits(r#"{"version": 1, "add": [{"keyframes": [{"frame": 5, "box": [25, 36, 48, 48]}], "follow": true}]}"#);
        let watch = Watch::new(Arc::new(AtomicBool::new(true)), std::time::Duration::MAX);
        assert!(matches!(follow_regions(&input, &mut e, Some(&watch)), Err(Error::Cancelled)));
        let expired =
            Watch::new(Arc::new(AtomicBool::new(false)), std::time::Duration::MAX).until(std::time::Duration::ZERO);
        assert!(matches!(follow_regions(&input, &mut e, Some(&expired)), Err(Error::Cancelled)));
    }
}
