//! Two detectors, one search: CenterFace on the whole frame, YuNet (built for small faces, about a sixth of
//! CenterFace's cost per pixel) on the magnified small-face passes. Where YuNet is weak, CenterFace searches
//! with it and the two are united: on dark tiles of video (YuNet loses night faces CenterFace keeps) and on
//! every small-face pass of a still image (searched once, where time is cheap). Focus passes of video, which
//! look again for faces already found, are YuNet's alone.
//!
//! The whole frame of video in daylight: the full pass ([`Pass::Whole`], every third frame, every sixth above
//! 37 fps) by both, the repeats between ([`Pass::WholeRepeat`]) by YuNet; a face YuNet misses there (a large
//! face in shadow, one partly hidden, which YuNet scores low) is found by CenterFace on the next full pass and
//! bridged. Dark frames and photos keep CenterFace on every whole-frame pass.
//!
//! The pair decides whether a picture is dark, and makes its low-light copy, once for both models
//! ([`Detector::detect_lit`]); only a video's focus crops go to YuNet as they are (it decides for itself).
//!
//! CenterFace searches a dark tile of video at three quarters of the tile's magnification
//! ([`CENTERFACE_DARK_TILE`]), YuNet at the tile's own.
//!
//! Chosen with the judge (issue 34): on the hand-held night clip (`benches/handheld.sh`) dark tiles by both and
//! focus passes by YuNet leak 1 of 5,995 face-frames in 78 s, both everywhere 1 in 94 s, CenterFace alone (the
//! schedule before) 4 in 88 s; dark tiles by YuNet alone lose 5 of 19 faces under 10 px on the night copy of
//! wider_dev redacted as video (`benches/stills_as_video.sh`).

use super::{lowlight, nms, Detection, Detector, ModelUsage, Pass, RuntimeInfo};
use crate::media::MediaKind;
use crate::Result;
use image::RgbImage;

/// CenterFace's share of a dark video tile's magnification (1.5× for tiles at 2×): at 2× a dark tile cost it
/// 60 % of its pixels on a dim fixed-camera crowd, and at 1.5× beside YuNet it covered more dark faces in all
/// but one size band.
/// Measured (2026-12-05, `benches/moving_stills.py` on the `make_dark.py` copies of `wider_dev`, face-frames
/// covered over 6 frames, < 10 / 10–20 / ≥ 20 px, 2× → 1.5×): dim 106/264/255 → 108/269/255, dim with faces in
/// shadow 107/263/258 → 113/264/258, night 102/268/252 → 105/267/258, night in shadow 100/257/258 →
/// 105/262/258; the hand-held dim and night clips at 25 and 50 fps (`benches/handheld.sh`) leak as often
/// (face-frames two judge detectors confirm: 8 → 8 in all four); the dim crowd's CenterFace pixels 173 → 129 M.
/// 1.2× lost faces (night 10–20 px 268 → 264), as did the same cut on dark frames' whole-frame repeats (dim
/// ≥ 20 px 255 → 252), so neither was taken.
pub const CENTERFACE_DARK_TILE: f32 = 0.75;

/// Which of a [`Pair`]'s models search a picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Large,
    Small,
    Both,
}

/// CenterFace (`large`) for the whole frame, YuNet (`small`) for the small-face passes; see the module docs.
#[derive(Debug)]
pub struct Pair<L, S> {
    large: L,
    small: S,
    /// IoU above which the two detectors' boxes are one face.
    nms_iou: f32,
    /// Whether the models equalise dark pictures ([`DetectSettings::low_light`](super::DetectSettings)): the
    /// pair then decides "dark" and makes the equalised copy once for both.
    low_light: bool,
    kind: MediaKind,
}

impl<L: Detector, S: Detector> Pair<L, S> {
    /// The two models, loaded with `settings` (its `nms_iou` unites their boxes, its `low_light` says whether
    /// they equalise dark pictures).
    pub fn new(large: L, small: S, settings: &super::DetectSettings) -> Self {
        Self { large, small, nms_iou: settings.nms_iou, low_light: settings.low_light, kind: MediaKind::Image }
    }

    /// Which model searches a picture, `dark` or not, for `pass` (see the module docs).
    fn route(&self, dark: bool, pass: Pass) -> Route {
        let video = self.kind == MediaKind::Video;
        match pass {
            // Photos, and every whole frame in the dark (YuNet loses night faces CenterFace keeps): CenterFace.
            Pass::Whole | Pass::WholeRepeat if !video || dark => Route::Large,
            // Video in daylight: the full whole-frame pass by both, the repeats between them by YuNet.
            Pass::Whole => Route::Both,
            Pass::WholeRepeat => Route::Small,
            // Photos: every small-face pass by both (time is cheap).
            _ if !video => Route::Both,
            // Video: new small faces in the dark by both ...
            Pass::Small if dark => Route::Both,
            // ... known ones, and everything in daylight, by YuNet: a focus pass looks again where a face was
            // found, and a miss there is bridged and searched again on its tile's turn (by both, in the dark).
            Pass::Small | Pass::Focus => Route::Small,
        }
    }

    /// A video's focus pass: YuNet's alone, whatever the light (it decides on equalising itself).
    fn focus_of_video(&self, pass: Pass) -> bool {
        self.kind == MediaKind::Video && pass == Pass::Focus
    }
}

impl<L: Detector, S: Detector> Detector for Pair<L, S> {
    fn detect(&mut self, image: &RgbImage) -> Result<Vec<Detection>> {
        self.detect_for(image, Pass::Whole)
    }

    fn detect_for(&mut self, image: &RgbImage, pass: Pass) -> Result<Vec<Detection>> {
        if self.focus_of_video(pass) {
            return self.small.detect_for(image, pass);
        }
        // Dark or not, and the equalised copy, once for both models (on a dark tile both search it); `None`
        // when the models do not equalise.
        let dark = lowlight::is_dark(image);
        let prepared = self.low_light.then(|| {
            dark.then(|| {
                let mut copy = image.clone();
                lowlight::equalise(&mut copy);
                copy
            })
        });
        let prepared = prepared.as_ref().map(Option::as_ref);
        match self.route(dark, pass) {
            Route::Large => search(&mut self.large, image, prepared, pass),
            Route::Small => search(&mut self.small, image, prepared, pass),
            // Where both see one face, the box that holds both.
            Route::Both => {
                let small = search(&mut self.small, image, prepared, pass)?;
                let large = if self.kind == MediaKind::Video && pass == Pass::Small && dark {
                    search_scaled(&mut self.large, image, prepared, pass, CENTERFACE_DARK_TILE)?
                } else {
                    search(&mut self.large, image, prepared, pass)?
                };
                Ok(unite(small, large, self.nms_iou))
            }
        }
    }

    /// A video's focus crops go to YuNet together, for it to run side by side.
    fn detect_each(&mut self, images: Vec<RgbImage>, pass: Pass) -> Result<Vec<Vec<Detection>>> {
        if self.focus_of_video(pass) {
            return self.small.detect_each(images, pass);
        }
        images.iter().map(|image| self.detect_for(image, pass)).collect()
    }

    /// Both models' hashes: an output made with another pair is another output.
    fn model_sha256(&self) -> Option<String> {
        match (self.large.model_sha256(), self.small.model_sha256()) {
            (Some(a), Some(b)) => Some(format!("{a}+{b}")),
            (a, b) => a.or(b),
        }
    }

    fn runtime(&self) -> Option<RuntimeInfo> {
        self.large.runtime()
    }

    fn usage(&self) -> Vec<ModelUsage> {
        let mut all = self.large.usage();
        all.extend(self.small.usage());
        all
    }

    fn prepare_for(&mut self, kind: MediaKind) {
        self.kind = kind;
        self.large.prepare_for(kind);
        self.small.prepare_for(kind);
    }
}

/// `model` on `image` for `pass`, given the picture's equalised copy (`Some(None)`: not dark) when the pair
/// made it.
fn search<D: Detector>(
    model: &mut D,
    image: &RgbImage,
    prepared: Option<Option<&RgbImage>>,
    pass: Pass,
) -> Result<Vec<Detection>> {
    match prepared {
        Some(equalised) => model.detect_lit(image, equalised, pass),
        None => model.detect_for(image, pass),
    }
}

/// [`search`] on `image` scaled by `share` (with the pair's equalised copy, scaled alike), boxes back in
/// `image`'s pixels.
fn search_scaled<D: Detector>(
    model: &mut D,
    image: &RgbImage,
    prepared: Option<Option<&RgbImage>>,
    pass: Pass,
    share: f32,
) -> Result<Vec<Detection>> {
    let (w, h) = image.dimensions();
    let size = (((w as f32 * share).round() as u32).max(1), ((h as f32 * share).round() as u32).max(1));
    super::multiscale::search_resized(image, size, |scaled| {
        let equalised = match prepared {
            Some(Some(copy)) => Some(Some(super::multiscale::resize_rgb(
                copy,
                (0, 0, w, h),
                size,
                fast_image_resize::FilterType::Bilinear,
            )?)),
            Some(None) => Some(None),
            None => None,
        };
        search(model, scaled, equalised.as_ref().map(Option::as_ref), pass)
    })
}

/// The boxes of two detectors on one picture: a box of `a` that overlaps boxes of `b` by more than `iou`
/// becomes the box holding all of them (with the best score): when two detectors place one face differently,
/// the redacted region holds both places.
pub fn unite(a: Vec<Detection>, b: Vec<Detection>, iou: f32) -> Vec<Detection> {
    let mut b: Vec<Option<Detection>> = b.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(a.len() + b.len());
    for mut d in a {
        for other in b.iter_mut() {
            if let Some(o) = other.filter(|o| o.bbox.iou(&d.bbox) > iou) {
                d.bbox = d.bbox.union(&o.bbox);
                d.score = d.score.max(o.score);
                *other = None;
            }
        }
        out.push(d);
    }
    out.extend(b.into_iter().flatten());
    nms(out, iou)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::ScriptedDetector;
    use crate::geom::BBox;

    fn settings() -> crate::DetectSettings {
        crate::DetectSettings { nms_iou: 0.3, ..Default::default() }
    }

    fn face(x: f32) -> Vec<Detection> {
        vec![Detection { bbox: BBox::new(x, 0.0, x + 10.0, 10.0), score: 0.9 }]
    }

    #[test]
    fn each_pass_runs_its_model_and_dark_or_still_small_passes_run_both() {
        // Each scripted detector answers its calls in order: the face at x tells which call answered.
        let large = ScriptedDetector::new([face(1.0), face(2.0), face(3.0), face(4.0), face(5.0)]);
        let small = ScriptedDetector::new([50.0, 60.0, 70.0, 80.0, 90.0, 100.0, 110.0, 120.0].map(face));
        let mut pair = Pair::new(large, small, &settings());
        let bright = RgbImage::from_pixel(32, 32, image::Rgb([200; 3]));
        let dark = RgbImage::from_pixel(32, 32, image::Rgb([10; 3]));
        let xs = |found: Vec<Detection>| {
            let mut xs: Vec<f32> = found.iter().map(|d| d.bbox.x0).collect();
            xs.sort_by(f32::total_cmp);
            xs
        };
        pair.prepare_for(MediaKind::Video);
        assert_eq!(xs(pair.detect_for(&bright, Pass::Whole).unwrap()), vec![1.0, 50.0], "full whole pass: both");
        assert_eq!(pair.detect_for(&bright, Pass::WholeRepeat).unwrap(), face(60.0), "repeats in daylight: YuNet");
        assert_eq!(pair.detect_for(&dark, Pass::WholeRepeat).unwrap(), face(2.0), "in the dark: CenterFace");
        assert_eq!(pair.detect_for(&bright, Pass::Small).unwrap(), face(70.0));
        assert_eq!(
            xs(pair.detect_for(&dark, Pass::Small).unwrap()),
            vec![4.0, 80.0],
            "a dark tile is searched by both (CenterFace at three quarters: its box at 3 is at 4 in the tile)"
        );
        assert_eq!(pair.detect_for(&dark, Pass::Focus).unwrap(), face(90.0), "focus passes: YuNet");
        assert_eq!(
            pair.detect_each(vec![bright.clone(), dark.clone()], Pass::Focus).unwrap(),
            vec![face(100.0), face(110.0)],
            "focus crops go to YuNet together"
        );
        pair.prepare_for(MediaKind::Image);
        assert_eq!(pair.detect_for(&bright, Pass::Whole).unwrap(), face(4.0), "photos: the whole frame by CenterFace");
        assert_eq!(pair.detect_for(&bright, Pass::Focus).unwrap().len(), 2, "photos: small faces by both");
    }

    /// Answers every picture with one face over its top-left quarter, and notes each picture's size.
    #[derive(Debug, Default)]
    struct Quarter {
        sizes: Vec<(u32, u32)>,
    }

    impl Detector for Quarter {
        fn detect(&mut self, image: &RgbImage) -> Result<Vec<Detection>> {
            let (w, h) = image.dimensions();
            self.sizes.push((w, h));
            Ok(vec![Detection { bbox: BBox::new(0.0, 0.0, w as f32 / 2.0, h as f32 / 2.0), score: 0.9 }])
        }
    }

    #[test]
    fn centerface_searches_a_dark_video_tile_at_three_quarters_and_its_boxes_come_back_in_tile_pixels() {
        let mut pair = Pair::new(Quarter::default(), Quarter::default(), &settings());
        pair.prepare_for(MediaKind::Video);
        let dark = RgbImage::from_pixel(64, 32, image::Rgb([10; 3]));
        let bright = RgbImage::from_pixel(64, 32, image::Rgb([200; 3]));
        let found = pair.detect_for(&dark, Pass::Small).unwrap();
        assert_eq!(pair.small.sizes, vec![(64, 32)], "YuNet at the tile's own magnification");
        assert_eq!(pair.large.sizes, vec![(48, 24)], "CenterFace at three quarters of it");
        // Both found the same quarter: one box, in the tile's pixels.
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].bbox, BBox::new(0.0, 0.0, 32.0, 16.0));
        // Everything else at full size: a bright tile, a dark whole frame, a dark photo's tile.
        pair.detect_for(&bright, Pass::Small).unwrap();
        pair.detect_for(&dark, Pass::Whole).unwrap();
        pair.detect_for(&dark, Pass::WholeRepeat).unwrap();
        pair.prepare_for(MediaKind::Image);
        pair.detect_for(&dark, Pass::Small).unwrap();
        assert_eq!(pair.large.sizes[1..], [(64, 32); 3]);
        assert_eq!(pair.small.sizes[1..], [(64, 32); 2]);
    }

    #[test]
    fn where_both_see_one_face_the_box_holds_both_places() {
        let d = |x0: f32, x1: f32, score: f32| Detection { bbox: BBox::new(x0, 0.0, x1, 10.0), score };
        let out =
            unite(vec![d(0.0, 10.0, 0.9), d(100.0, 110.0, 0.5)], vec![d(2.0, 13.0, 0.3), d(50.0, 60.0, 0.2)], 0.3);
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(out[0], d(0.0, 13.0, 0.9));
        assert!(out.contains(&d(50.0, 60.0, 0.2)) && out.contains(&d(100.0, 110.0, 0.5)));
    }

    #[test]
    fn a_failure_of_either_model_fails_the_pass() {
        let mut pair = Pair::new(ScriptedDetector::default(), ScriptedDetector::default().fail_at(0), &settings());
        let img = RgbImage::new(8, 8);
        assert!(pair.detect_for(&img, Pass::Small).is_err());
        let mut pair = Pair::new(ScriptedDetector::default().fail_at(0), ScriptedDetector::default(), &settings());
        pair.prepare_for(MediaKind::Image);
        assert!(pair.detect_for(&RgbImage::new(8, 8), Pass::Small).is_err());
    }
}
