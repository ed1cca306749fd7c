//! A reviewer's edits to a run: regions to **add** (a box on key frames, interpolated between them), whole
//! **frames** to redact completely, and regions to **keep** (automatic detections there are not redacted: a
//! poster, a statue, a face on a public screen). Boxes and times only: nothing here identifies anyone.
//!
//! The file is JSON, parsed strictly (unknown fields, wrong types, boxes outside the picture and ranges that
//! run backwards are errors naming the edit):
//!
//! ```json
//! {"version": 1,
//!  "add": [{"keyframes": [{"frame": 10, "box": [x, y, w, h]}, {"time": "00:00:02.000", "box": [x, y, w, h]}],
//!           "style": "fill", "shape": "box", "mask_scale": 1.0}],
//!  "frames": [{"from": 70, "to": 80}, {"from_time": "00:01:00.000", "to_time": "00:01:05.000", "style": "blur"}],
//!  "keep": [{"from": 0, "to": 99, "box": [x, y, w, h]}]}
//! ```
//!
//! Boxes are x, y, width, height in pixels of the upright picture. A key frame or range end is a frame number
//! (0-based, in decode order) or a time code (`HH:MM:SS.mmm`, from the first frame); ranges are inclusive.
//! Between two key frames an added box moves linearly (by frame number when the later key is a frame number,
//! by time when it is a time code). An edit that the clip never reaches is an error after the run.

use crate::geom::{BBox, Rotation};
use crate::redact::{RedactSettings, Shape, Style};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Largest edit file faceveil reads, in bytes (the review page saves at most this much too). An edit file is
/// a list of boxes and times written by a person or the review page: a larger one is not an edit file.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Reads an edit file's bytes, refusing one larger than [`MAX_FILE_BYTES`] before reading it whole.
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Error::Edits {
            path: path.to_path_buf(),
            reason: format!("larger than {} KiB; an edit file holds boxes and times only", MAX_FILE_BYTES / 1024),
        });
    }
    Ok(bytes)
}

/// A parsed, checked edit file.
#[derive(Debug, Clone, PartialEq)]
pub struct Edits {
    add: Vec<Added>,
    frames: Vec<WholeFrames>,
    keep: Vec<Kept>,
    /// SHA-256 of the file's bytes, for reports and the resume key.
    sha256: String,
    /// Key frames of mixed units (frame numbers and times) that the clip met out of order: the region between
    /// them cannot be drawn as its reviewer meant, so the run fails (see [`Edits::error`]).
    order_error: Option<String>,
    /// The file, for errors found while the clip plays.
    source: std::path::PathBuf,
}

/// A moment in the clip: a frame number or a time in milliseconds from the first frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    Frame(u64),
    Ms(i64),
}

impl Moment {
    /// True when the frame `index` at `ms` is at or after this moment.
    pub fn reached(self, index: u64, ms: i64) -> bool {
        match self {
            Moment::Frame(f) => index >= f,
            Moment::Ms(t) => ms >= t,
        }
    }

    pub fn passed(self, index: u64, ms: i64) -> bool {
        match self {
            Moment::Frame(f) => index > f,
            Moment::Ms(t) => ms > t,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Key {
    at: Moment,
    /// Upright picture pixels.
    bbox: BBox,
    /// Where the key was met in the stream: frame index and time (filled as frames go by).
    met: Option<(u64, i64)>,
}

/// How far a followed region may be followed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FollowBounds {
    pub from: Option<Moment>,
    pub to: Option<Moment>,
}

/// What following a region found, for the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowReport {
    /// Index of the region in the edit file's `add` list.
    pub region: usize,
    /// First and last frame the region was redacted on (key frames and followed frames).
    pub first_frame: u64,
    pub last_frame: u64,
    /// Frame where following lost the region backward / forward (`None`: it reached its bound or the clip's
    /// end). A lost region is redacted up to the frame before, never beyond: review those frames.
    pub lost_backward_at: Option<u64>,
    pub lost_forward_at: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
struct Added {
    keys: Vec<Key>,
    follow: Option<FollowBounds>,
    /// Boxes found by following, upright pixels, by frame index (outside the key frames' span).
    followed: std::collections::BTreeMap<u64, BBox>,
    report: Option<FollowReport>,
    style: Option<Style>,
    shape: Option<Shape>,
    mask_scale: Option<f32>,
}

#[derive(Debug, Clone, PartialEq)]
struct WholeFrames {
    from: Moment,
    to: Moment,
    /// Fill (flat grey) by default; blur keeps the scene's colours without any detail.
    style: Style,
    /// A frame in the range was seen / its end was reached.
    reached: bool,
    ended: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Kept {
    from: Moment,
    to: Moment,
    bbox: BBox,
    reached: bool,
    ended: bool,
    /// Automatic detections inside it that were not redacted.
    detections_kept: u64,
}

/// A region to follow: where it starts (its first and last key frames) and how far it may go.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowRequest {
    pub region: usize,
    pub first: (Moment, BBox),
    pub last: (Moment, BBox),
    pub bounds: FollowBounds,
}

/// A kept region as listed in a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeptRegion {
    pub from: String,
    pub to: String,
    /// x, y, width, height in upright picture pixels.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    pub detections_kept: u64,
}

/// What the edits add to one frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrameEdits {
    /// Regions to redact with their own settings, in stored-frame pixels.
    pub regions: Vec<(BBox, RedactSettings)>,
}

// ---- the file format -------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1 {
    version: u32,
    #[serde(default)]
    add: Vec<AddJson>,
    #[serde(default)]
    frames: Vec<RangeJson>,
    #[serde(default)]
    keep: Vec<KeepJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddJson {
    keyframes: Vec<KeyJson>,
    #[serde(default)]
    follow: bool,
    /// Follow bounds: backward no earlier than `from`, forward no later than `to` (frames or times).
    from: Option<u64>,
    to: Option<u64>,
    from_time: Option<String>,
    to_time: Option<String>,
    style: Option<Style>,
    shape: Option<Shape>,
    mask_scale: Option<f32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyJson {
    frame: Option<u64>,
    time: Option<String>,
    #[serde(rename = "box")]
    bbox: [f64; 4],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeJson {
    from: Option<u64>,
    to: Option<u64>,
    from_time: Option<String>,
    to_time: Option<String>,
    style: Option<Style>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeepJson {
    from: Option<u64>,
    to: Option<u64>,
    from_time: Option<String>,
    to_time: Option<String>,
    #[serde(rename = "box")]
    bbox: [f64; 4],
}

/// Parses `HH:MM:SS.mmm` (hours optional, fraction optional, up to milliseconds) into milliseconds.
pub fn parse_time_code(s: &str) -> std::result::Result<i64, String> {
    let bad = || format!("{s:?} is not a time code (expected HH:MM:SS.mmm)");
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let ms_frac = if frac.is_empty() { 0 } else { format!("{frac:0<3}").parse::<i64>().map_err(|_| bad())? };
    let parts: Vec<&str> = whole.split(':').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts.iter().any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(bad());
    }
    let nums: Vec<i64> =
        parts.iter().map(|p| p.parse::<i64>().map_err(|_| bad())).collect::<std::result::Result<_, _>>()?;
    let (h, m, sec) = match nums.as_slice() {
        [s] => (0, 0, *s),
        [m, s] => (0, *m, *s),
        [h, m, s] => (*h, *m, *s),
        _ => return Err(bad()),
    };
    if (parts.len() > 1 && sec >= 60) || (parts.len() > 2 && m >= 60) {
        return Err(bad());
    }
    Ok(((h * 60 + m) * 60 + sec) * 1000 + ms_frac)
}

fn moment(frame: Option<u64>, time: Option<&str>, what: &str) -> std::result::Result<Moment, String> {
    match (frame, time) {
        (Some(f), None) => Ok(Moment::Frame(f)),
        (None, Some(t)) => parse_time_code(t).map(Moment::Ms),
        (Some(_), Some(_)) => Err(format!("{what}: give a frame number or a time, not both")),
        (None, None) => Err(format!("{what}: a frame number or a time is needed")),
    }
}

/// Checks an `[x, y, w, h]` box against the upright picture.
fn upright_box(b: [f64; 4], width: u32, height: u32, what: &str) -> std::result::Result<BBox, String> {
    let [x, y, w, h] = b;
    if !b.iter().all(|v| v.is_finite()) || w <= 0.0 || h <= 0.0 {
        return Err(format!("{what}: box {b:?} needs a positive width and height"));
    }
    if x < 0.0 || y < 0.0 || x + w > f64::from(width) || y + h > f64::from(height) {
        return Err(format!("{what}: box {b:?} lies outside the {width}x{height} picture"));
    }
    Ok(BBox::new(x as f32, y as f32, (x + w) as f32, (y + h) as f32))
}

fn ordered(a: Moment, b: Moment) -> bool {
    match (a, b) {
        (Moment::Frame(x), Moment::Frame(y)) => x <= y,
        (Moment::Ms(x), Moment::Ms(y)) => x <= y,
        // Mixed units can be ordered only once the clip is read; checked as frames go by.
        _ => true,
    }
}

fn range(
    from: Option<u64>,
    to: Option<u64>,
    from_time: Option<&str>,
    to_time: Option<&str>,
    what: &str,
) -> std::result::Result<(Moment, Moment), String> {
    let from = moment(from, from_time, &format!("{what} start"))?;
    let to = moment(to, to_time, &format!("{what} end"))?;
    if !ordered(from, to) {
        return Err(format!("{what}: the range ends before it starts"));
    }
    Ok((from, to))
}

impl Edits {
    /// Parses an edit file for an upright `width × height` picture. `source` names it in errors.
    pub fn parse(bytes: &[u8], width: u32, height: u32, source: &std::path::Path) -> Result<Self> {
        let err = |reason: String| Error::Edits { path: source.to_path_buf(), reason };
        let file: FileV1 = serde_json::from_slice(bytes).map_err(|e| err(e.to_string()))?;
        if file.version != 1 {
            return Err(err(format!("version {} is not supported (expected 1)", file.version)));
        }
        let mut add = Vec::new();
        for (i, a) in file.add.iter().enumerate() {
            let what = format!("add[{i}]");
            let bounds = (a.from, a.to, a.from_time.as_deref(), a.to_time.as_deref());
            let follow = match (a.follow, bounds) {
                (true, (from, to, from_time, to_time)) => {
                    let m = |f: Option<u64>, t: Option<&str>, which: &str| match (f, t) {
                        (None, None) => Ok(None),
                        _ => moment(f, t, &format!("{what} {which}")).map(Some),
                    };
                    Some(FollowBounds {
                        from: m(from, from_time, "from").map_err(err)?,
                        to: m(to, to_time, "to").map_err(err)?,
                    })
                }
                (false, (None, None, None, None)) => None,
                (false, _) => {
                    return Err(err(format!("{what}: from/to bound a follow; set \"follow\": true or drop them")))
                }
            };
            if a.keyframes.is_empty() {
                return Err(err(format!("{what}: at least one key frame is needed")));
            }
            let mut keys = Vec::new();
            for (k, key) in a.keyframes.iter().enumerate() {
                let what = format!("{what}.keyframes[{k}]");
                let at = moment(key.frame, key.time.as_deref(), &what).map_err(err)?;
                let bbox = upright_box(key.bbox, width, height, &what).map_err(err)?;
                if let Some(prev) = keys.last().map(|k: &Key| k.at) {
                    if !ordered(prev, at) || prev == at {
                        return Err(err(format!("{what}: key frames must be in increasing order")));
                    }
                }
                keys.push(Key { at, bbox, met: None });
            }
            if let Some(s) = a.mask_scale {
                RedactSettings { mask_scale: s, ..Default::default() }
                    .validate()
                    .map_err(|e| err(format!("{what}: {e}")))?;
            }
            if a.style == Some(Style::Outline) {
                return Err(err(format!("{what}: the outline style does not redact")));
            }
            add.push(Added {
                keys,
                follow,
                followed: Default::default(),
                report: None,
                style: a.style,
                shape: a.shape,
                mask_scale: a.mask_scale,
            });
        }
        let mut frames = Vec::new();
        for (i, r) in file.frames.iter().enumerate() {
            let what = format!("frames[{i}]");
            let (from, to) = range(r.from, r.to, r.from_time.as_deref(), r.to_time.as_deref(), &what).map_err(err)?;
            let style = r.style.unwrap_or(Style::Fill);
            if !matches!(style, Style::Fill | Style::Blur) {
                return Err(err(format!("{what}: a whole frame is redacted with fill or blur")));
            }
            frames.push(WholeFrames { from, to, style, reached: false, ended: false });
        }
        let mut keep = Vec::new();
        for (i, r) in file.keep.iter().enumerate() {
            let what = format!("keep[{i}]");
            let (from, to) = range(r.from, r.to, r.from_time.as_deref(), r.to_time.as_deref(), &what).map_err(err)?;
            let bbox = upright_box(r.bbox, width, height, &what).map_err(err)?;
            keep.push(Kept { from, to, bbox, reached: false, ended: false, detections_kept: 0 });
        }
        Ok(Self {
            add,
            frames,
            keep,
            sha256: crate::sha256_hex(bytes),
            order_error: None,
            source: source.to_path_buf(),
        })
    }

    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// True when the file has regions to keep (which live runs, the frame API and batch without an explicit
    /// permission refuse).
    pub fn has_keep_regions(&self) -> bool {
        !self.keep.is_empty()
    }

    /// Drops the automatic detections (stored-frame boxes) that lie in a keep region active at frame `index`
    /// (`ms` from the first frame). A detection is kept unredacted only when its centre is inside the region.
    pub fn filter_detections(
        &mut self,
        index: u64,
        ms: i64,
        rotation: Rotation,
        size: (u32, u32),
        boxes: Vec<BBox>,
    ) -> Vec<BBox> {
        let (w, h) = size;
        let mut out = Vec::with_capacity(boxes.len());
        'boxes: for b in boxes {
            for k in &mut self.keep {
                if k.from.reached(index, ms) && !k.to.passed(index, ms) {
                    k.reached = true;
                    let region = rotation.box_to_stored(&k.bbox, w, h);
                    let (cx, cy) = b.center();
                    if cx >= region.x0 && cx < region.x1 && cy >= region.y0 && cy < region.y1 {
                        k.detections_kept += 1;
                        continue 'boxes;
                    }
                }
            }
            out.push(b);
        }
        for k in &mut self.keep {
            if k.from.reached(index, ms) && !k.to.passed(index, ms) {
                k.reached = true;
            }
            k.ended |= k.to.reached(index, ms);
        }
        out
    }

    /// The regions the edits add to frame `index` (`ms` from the first frame), in stored-frame pixels, each
    /// with its settings (`run` where the edit gives none). Call once per frame, in order.
    pub fn frame(
        &mut self,
        index: u64,
        ms: i64,
        rotation: Rotation,
        size: (u32, u32),
        run: &RedactSettings,
    ) -> FrameEdits {
        let (w, h) = size;
        let (uw, uh) = rotation.upright_size(w, h);
        let mut out = FrameEdits::default();
        for (i, a) in self.add.iter_mut().enumerate() {
            for k in 0..a.keys.len() {
                if a.keys[k].met.is_none() && a.keys[k].at.reached(index, ms) {
                    a.keys[k].met = Some((index, ms));
                    // Mixed units are ordered only as the clip plays: a key met before (or on the same frame as)
                    // the key before it would leave the region undrawn between them.
                    let before = k.checked_sub(1).map(|p| (p, a.keys[p].at, a.keys[p].met));
                    if let Some((p, at, met)) = before {
                        if met.is_none_or(|(j, _)| j >= index) && self.order_error.is_none() {
                            self.order_error = Some(format!(
                                "add[{i}].keyframes[{k}] ({}) falls on frame {index}, {} keyframes[{p}] ({}): key \
                                 frames must be in increasing order as the clip plays",
                                show_moment(a.keys[k].at),
                                if met.is_some() { "the same frame as" } else { "before" },
                                show_moment(at)
                            ));
                        }
                    }
                }
            }
            let Some(upright) = interpolate(&a.keys, index, ms).or_else(|| a.followed.get(&index).copied()) else {
                continue;
            };
            let settings = RedactSettings {
                style: a.style.unwrap_or(run.style),
                shape: a.shape.unwrap_or(run.shape),
                mask_scale: a.mask_scale.unwrap_or(run.mask_scale),
            };
            out.regions.push((rotation.box_to_stored(&upright, w, h), settings));
        }
        for (i, f) in self.frames.iter_mut().enumerate() {
            if f.to.reached(index, ms) && !f.reached && !f.from.reached(index, ms) && self.order_error.is_none() {
                self.order_error = Some(format!(
                    "frames[{i}]: its end ({}) comes on frame {index}, before its start ({}): the range ends before \
                     it starts as the clip plays",
                    show_moment(f.to),
                    show_moment(f.from)
                ));
            }
            f.ended |= f.to.reached(index, ms);
            if f.from.reached(index, ms) && !f.to.passed(index, ms) {
                f.reached = true;
                let whole = BBox::new(0.0, 0.0, uw as f32, uh as f32);
                let settings = RedactSettings { style: f.style, shape: Shape::Box, mask_scale: 1.0 };
                out.regions.push((rotation.box_to_stored(&whole, w, h), settings));
            }
        }
        out
    }

    /// After the last frame: an edit the clip never reached is an error (it was meant for another clip, or
    /// its frame numbers are wrong), never silently dropped.
    pub fn check_reached(&self, frames: u64, source: &std::path::Path) -> Result<()> {
        let err = |reason: String| Error::Edits { path: source.to_path_buf(), reason };
        if let Some(why) = &self.order_error {
            return Err(err(why.clone()));
        }
        for (i, a) in self.add.iter().enumerate() {
            if let Some(k) = a.keys.iter().position(|k| k.met.is_none()) {
                return Err(err(format!("add[{i}].keyframes[{k}] lies beyond the clip's {frames} frame(s)")));
            }
        }
        for (i, f) in self.frames.iter().enumerate() {
            if !(f.reached && f.ended) {
                return Err(err(format!("frames[{i}] lies beyond the clip's {frames} frame(s)")));
            }
        }
        for (i, k) in self.keep.iter().enumerate() {
            if !(k.reached && k.ended) {
                return Err(err(format!("keep[{i}] lies beyond the clip's {frames} frame(s)")));
            }
        }
        Ok(())
    }

    /// An edit that turned out, as the clip played, not to be applicable as written (key frames of mixed units
    /// met out of order). The run must stop with this error, which names the file and the edit.
    pub fn error(&self) -> Option<Error> {
        self.order_error.as_ref().map(|why| Error::Edits { path: self.source.clone(), reason: why.clone() })
    }

    /// True when some added region is to be followed (a pre-pass over the video does it).
    pub fn needs_follow(&self) -> bool {
        self.add.iter().any(|a| a.follow.is_some())
    }

    /// The regions to follow: (index in `add`, first key, last key, bounds). Keys are upright boxes.
    pub fn follow_requests(&self) -> Vec<FollowRequest> {
        self.add
            .iter()
            .enumerate()
            .filter_map(|(i, a)| {
                let bounds = a.follow?;
                let (first, last) = (a.keys.first()?, a.keys.last()?);
                Some(FollowRequest { region: i, first: (first.at, first.bbox), last: (last.at, last.bbox), bounds })
            })
            .collect()
    }

    /// Records what following region `region` found: upright boxes by frame index (frames outside its key
    /// frames), and where it was lost.
    pub fn set_followed(&mut self, region: usize, boxes: std::collections::BTreeMap<u64, BBox>, report: FollowReport) {
        if let Some(a) = self.add.get_mut(region) {
            a.followed = boxes;
            a.report = Some(report);
        }
    }

    /// What following found, per followed region.
    pub fn follow_reports(&self) -> Vec<FollowReport> {
        self.add.iter().filter_map(|a| a.report.clone()).collect()
    }

    /// The keep regions as a report lists them.
    pub fn kept_regions(&self) -> Vec<KeptRegion> {
        let show = show_moment;
        self.keep
            .iter()
            .map(|k| KeptRegion {
                from: show(k.from),
                to: show(k.to),
                bbox: [k.bbox.x0, k.bbox.y0, k.bbox.width(), k.bbox.height()],
                detections_kept: k.detections_kept,
            })
            .collect()
    }
}

/// A moment as people read it: `frame 40` or `00:00:00.400`.
fn show_moment(m: Moment) -> String {
    match m {
        Moment::Frame(f) => format!("frame {f}"),
        Moment::Ms(t) => crate::media::time_code(t, (1, 1000)),
    }
}

/// The box of an added region at frame `index` / `ms`, in upright pixels, or `None` outside its key frames.
/// Keys before this frame have been met (their frame and time are known); the next key may not have been.
fn interpolate(keys: &[Key], index: u64, ms: i64) -> Option<BBox> {
    let first = keys.first()?;
    let (i0, _) = first.met?;
    if keys.len() == 1 {
        return (index == i0).then_some(first.bbox);
    }
    let last = keys.last()?;
    if let Some((il, _)) = last.met {
        if index > il {
            return None;
        }
    }
    // The segment: the last key met at or before this frame, and the one after it.
    let pos = keys.iter().rposition(|k| k.met.is_some_and(|(i, _)| i <= index))?;
    let a = &keys[pos];
    let Some(b) = keys.get(pos + 1) else { return Some(a.bbox) };
    let (ia, ta) = a.met?;
    let f = match b.at {
        Moment::Frame(fb) if fb > ia => (index - ia) as f32 / (fb - ia) as f32,
        Moment::Ms(tb) if tb > ta => (ms - ta) as f32 / (tb - ta) as f32,
        _ => 0.0,
    }
    .clamp(0.0, 1.0);
    let lerp = |p: f32, q: f32| p + (q - p) * f;
    let (p, q) = (a.bbox, b.bbox);
    Some(BBox::new(lerp(p.x0, q.x0), lerp(p.y0, q.y0), lerp(p.x1, q.x1), lerp(p.y1, q.y1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(json: &str) -> Result<Edits> {
        Edits::parse(json.as_bytes(), 640, 360, Path::new("e.json"))
    }

    #[test]
    fn time_codes_parse_strictly() {
        assert_eq!(parse_time_code("00:00:02.000"), Ok(2000));
        assert_eq!(parse_time_code("01:02:03.5"), Ok(3_723_500));
        assert_eq!(parse_time_code("2.25"), Ok(2250));
        for bad in ["", "1:60:00", "a", "00:00:01.0001", "-1", "1::2"] {
            assert!(parse_time_code(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_files_name_the_edit_and_the_problem() {
        let cases = [
            (r#"{"version": 2}"#, "version 2"),
            (r#"{"version": 1, "extra": 1}"#, "unknown field `extra`"),
            (
                r#"{"version": 1, "add": [{"keyframes": [{"frame": 1, "box": [600, 0, 50, 10]}]}]}"#,
                "add[0].keyframes[0]: box",
            ),
            (
                r#"{"version": 1, "add": [{"keyframes": [{"frame": 5, "box": [0, 0, 5, 5]}, {"frame": 2, "box": [0, 0, 5, 5]}]}]}"#,
                "increasing order",
            ),
            (
                r#"{"version": 1, "add": [{"keyframes": [{"box": [0, 0, 5, 5]}]}]}"#,
                "a frame number or a time is needed",
            ),
            (r#"{"version": 1, "frames": [{"from": 9, "to": 3}]}"#, "frames[0]: the range ends before it starts"),
            (r#"{"version": 1, "frames": [{"from": 1, "to": 3, "style": "pixelate"}]}"#, "fill or blur"),
            (r#"{"version": 1, "keep": [{"from": 0, "to": 3, "box": [0, 0, 0, 5]}]}"#, "keep[0]: box"),
            (
                r#"{"version": 1, "add": [{"keyframes": [{"frame": 1, "box": [0, 0, 5, 5]}], "to": 9}]}"#,
                "bound a follow",
            ),
            (r#"{"version": 1, "add": [{"keyframes": "x"}]}"#, "line 1"),
        ];
        for (json, want) in cases {
            let e = parse(json).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("e.json"), "{json}: {e}");
        }
    }

    #[test]
    fn added_boxes_interpolate_between_key_frames_by_frame_and_by_time() {
        let mut e = parse(
            r#"{"version": 1, "add": [{"keyframes": [{"frame": 2, "box": [0, 0, 10, 10]}, {"frame": 6, "box": [40, 0, 10, 10]},
                {"time": "00:00:01.000", "box": [40, 40, 10, 10]}]}]}"#,
        )
        .unwrap();
        let run = RedactSettings::default();
        let at = |e: &mut Edits, i: u64| {
            let f = e.frame(i, i as i64 * 100, Rotation::None, (640, 360), &run);
            f.regions.first().map(|(b, _)| (b.x0, b.y0))
        };
        assert_eq!(at(&mut e, 0), None);
        assert_eq!(at(&mut e, 1), None);
        assert_eq!(at(&mut e, 2), Some((0.0, 0.0)));
        assert_eq!(at(&mut e, 3), Some((10.0, 0.0)));
        assert_eq!(at(&mut e, 6), Some((40.0, 0.0)));
        // Frame 6 is at 600 ms; the next key is at 1000 ms: frame 8 (800 ms) is half way.
        assert_eq!(at(&mut e, 7), Some((40.0, 10.0)));
        assert_eq!(at(&mut e, 8), Some((40.0, 20.0)));
        assert_eq!(at(&mut e, 10), Some((40.0, 40.0)));
        assert_eq!(at(&mut e, 11), None);
        e.check_reached(12, Path::new("e.json")).unwrap();
    }

    #[test]
    fn mixed_key_frames_met_out_of_order_are_refused_naming_the_edit_issue_33() {
        // Frame 40, then 400 ms: at 25 fps the time comes first (frame 10). Before the fix the region was never
        // drawn and nothing said so.
        let run = RedactSettings::default();
        let json = r#"{"version": 1, "add": [{"keyframes": [{"frame": 40, "box": [0, 0, 10, 10]},
                       {"time": "00:00:00.400", "box": [40, 0, 10, 10]}]}]}"#;
        let mut e = parse(json).unwrap();
        for i in 0..10 {
            e.frame(i, i as i64 * 40, Rotation::None, (640, 360), &run);
            assert!(e.error().is_none(), "frame {i}: nothing is wrong yet");
        }
        e.frame(10, 400, Rotation::None, (640, 360), &run);
        let err = e.error().expect("refused as soon as the clip shows the order").to_string();
        assert!(
            err.contains("e.json") && err.contains("add[0].keyframes[1] (00:00:00.400) falls on frame 10"),
            "{err}"
        );
        assert!(err.contains("before keyframes[0] (frame 40)"), "{err}");
        for i in 11..50 {
            e.frame(i, i as i64 * 40, Rotation::None, (640, 360), &run);
        }
        assert!(e.check_reached(50, Path::new("e.json")).unwrap_err().to_string().contains("increasing order"));

        // Both keys on one frame: the first key's box would never be drawn.
        let same = r#"{"version": 1, "add": [{"keyframes": [{"frame": 10, "box": [0, 0, 10, 10]},
                       {"time": "00:00:00.400", "box": [40, 0, 10, 10]}]}]}"#;
        let mut e = parse(same).unwrap();
        for i in 0..12 {
            e.frame(i, i as i64 * 40, Rotation::None, (640, 360), &run);
        }
        assert!(e.error().unwrap().to_string().contains("the same frame as keyframes[0] (frame 10)"));

        // The control: mixed keys in the clip's order are drawn on every frame between them.
        let good = r#"{"version": 1, "add": [{"keyframes": [{"frame": 10, "box": [0, 0, 10, 10]},
                       {"time": "00:00:01.600", "box": [40, 0, 10, 10]}]}]}"#;
        let mut e = parse(good).unwrap();
        let drawn =
            (0..50).filter(|&i| !e.frame(i, i as i64 * 40, Rotation::None, (640, 360), &run).regions.is_empty());
        assert_eq!(drawn.count(), 31);
        assert!(e.error().is_none());
        e.check_reached(50, Path::new("e.json")).unwrap();
    }

    #[test]
    fn whole_frame_ranges_of_mixed_units_ending_before_they_start_are_refused_issue_33() {
        let run = RedactSettings::default();
        let mut e = parse(r#"{"version": 1, "frames": [{"from": 40, "to_time": "00:00:00.400"}]}"#).unwrap();
        for i in 0..50 {
            e.frame(i, i as i64 * 40, Rotation::None, (640, 360), &run);
        }
        let err = e.error().unwrap().to_string();
        assert!(
            err.contains("frames[0]: its end (00:00:00.400) comes on frame 10, before its start (frame 40)"),
            "{err}"
        );
    }

    #[test]
    fn edit_files_larger_than_the_cap_are_refused_before_reading_them_whole_issue_33() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.json");
        std::fs::write(&path, vec![b' '; MAX_FILE_BYTES as usize + 1]).unwrap();
        let err = read_file(&path).unwrap_err().to_string();
        assert!(err.contains("big.json") && err.contains("larger than 1024 KiB"), "{err}");
        std::fs::write(&path, br#"{"version": 1}"#).unwrap();
        assert_eq!(read_file(&path).unwrap(), br#"{"version": 1}"#);
    }

    #[test]
    fn edits_the_clip_never_reaches_are_errors() {
        let mut e = parse(r#"{"version": 1, "frames": [{"from": 8, "to": 30}]}"#).unwrap();
        for i in 0..10 {
            e.frame(i, i as i64 * 40, Rotation::None, (640, 360), &RedactSettings::default());
        }
        let err = e.check_reached(10, Path::new("e.json")).unwrap_err().to_string();
        assert!(err.contains("frames[0] lies beyond the clip's 10 frame(s)"), "{err}");
    }

    #[test]
    fn keep_regions_drop_only_detections_centred_inside_them_while_active() {
        let mut e = parse(r#"{"version": 1, "keep": [{"from": 1, "to": 2, "box": [100, 100, 50, 50]}]}"#).unwrap();
        let inside = BBox::new(110.0, 110.0, 140.0, 140.0);
        let outside = BBox::new(300.0, 100.0, 330.0, 140.0);
        let f = |e: &mut Edits, i| e.filter_detections(i, 0, Rotation::None, (640, 360), vec![inside, outside]);
        assert_eq!(f(&mut e, 0).len(), 2, "not active yet");
        assert_eq!(f(&mut e, 1), vec![outside]);
        assert_eq!(f(&mut e, 2), vec![outside]);
        assert_eq!(f(&mut e, 3).len(), 2, "no longer active");
        assert_eq!(e.kept_regions()[0].detections_kept, 2);
        assert!(e.has_keep_regions());
    }

    #[test]
    fn whole_frames_cover_the_picture_with_their_style() {
        let mut e = parse(
            r#"{"version": 1, "frames": [{"from_time": "00:00:00.100", "to_time": "00:00:00.200", "style": "blur"}]}"#,
        )
        .unwrap();
        let run = RedactSettings::default();
        assert!(e.frame(0, 0, Rotation::None, (640, 360), &run).regions.is_empty());
        let r = e.frame(1, 120, Rotation::None, (640, 360), &run).regions;
        assert_eq!(r[0].0, BBox::new(0.0, 0.0, 640.0, 360.0));
        assert_eq!((r[0].1.style, r[0].1.shape), (Style::Blur, Shape::Box));
        assert!(e.frame(2, 240, Rotation::None, (640, 360), &run).regions.is_empty());
    }
}
