//! The JSON summary of one redacted file. It holds counts and parameters only: no face pixels, crops,
//! embeddings or anything derived from identity. Box coordinates are not stored either.

use crate::analyse::Stats;
use crate::config::{FrameRate, Options};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub use crate::media::MediaKind;

/// Revision of how faceveil turns a video's detections into redacted pixels (region geometry and styles),
/// beyond what [`Options`] records. A batch redoes outputs made by an earlier revision even when their
/// parameters match: an output redacted more weakly than today's default is not "up to date". 2: confident
/// faces grown to their heads, blur flattened to 10 % of its shading without grain (issue 13). 3: mosaics of
/// four cells at half contrast, huge weak whole-frame boxes dropped (issue 34). 4: blur and mosaic flattened
/// to 2.5 % of their shading (issue 34). Reports without the field are revision 1. See [`redaction_revision`].
pub const VIDEO_REDACTION_REVISION: u32 = 4;
/// [`VIDEO_REDACTION_REVISION`] for photos, which have changed once more: 4, a dark photo's faces under 10 px
/// searched again at 4× (issue 34); 5, the styles flattened as for video.
pub const PHOTO_REDACTION_REVISION: u32 = 5;
/// [`VIDEO_REDACTION_REVISION`] for video above 37 fps (a frame-rate factor over 1, [`FrameRate::factor`]),
/// which has changed once more: 4, CenterFace's full whole-frame pass as far apart in time as at 25 fps and each
/// face's largest region of the frames between kept (issue 34); 5, the styles flattened as for video.
pub const FAST_VIDEO_REDACTION_REVISION: u32 = 5;

/// The redaction revision of this build for `kind` of media at frame `rate` (video only; `None`: not stated,
/// taken as the base rate): [`VIDEO_REDACTION_REVISION`], [`FAST_VIDEO_REDACTION_REVISION`] or
/// [`PHOTO_REDACTION_REVISION`].
pub fn redaction_revision(kind: MediaKind, rate: Option<FrameRate>) -> u32 {
    match kind {
        MediaKind::Image => PHOTO_REDACTION_REVISION,
        MediaKind::Video if rate.is_some_and(|r| r.factor() > 1) => FAST_VIDEO_REDACTION_REVISION,
        MediaKind::Video => VIDEO_REDACTION_REVISION,
    }
}

fn first_revision() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub tool: String,
    pub tool_version: String,
    /// [`redaction_revision`] of the build that wrote the output, for its kind of media (and a video's rate).
    #[serde(default = "first_revision")]
    pub redaction_revision: u32,
    pub input: PathBuf,
    pub output: PathBuf,
    pub kind: MediaKind,
    pub input_sha256: String,
    pub output_sha256: String,
    /// SHA-256 of the detector model, when the detector is a model file; for two models (CenterFace on the
    /// whole frame, YuNet on the small faces) both, joined by `+`.
    pub model_sha256: Option<String>,
    /// Every model that ran on this file: its hash, runtime, passes and detector input pixels (no boxes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<crate::detect::ModelUsage>,
    /// SHA-256 of the reviewer's edit file applied, if any (part of a batch's resume key).
    #[serde(default)]
    pub edits_sha256: Option<String>,
    /// Regions the edit file kept unredacted, with how many automatic detections each left unredacted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept_regions: Vec<crate::edits::KeptRegion>,
    /// Followed edit regions: the frames they covered, and where following lost them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub follows: Vec<crate::edits::FollowReport>,
    /// The inference runtime, provider and precision that ran the model (e.g. "ONNX Runtime CPU fp32 (…)").
    #[serde(default)]
    pub runtime: Option<String>,
    /// The options the run was made with; for a video, the bridging window and tile period its frame rate
    /// gave ([`Options::at_rate`]).
    pub parameters: Options,
    /// A video stream's frame rate, as the container states it (`null`: not stated, or a photo): the
    /// schedule in `parameters` follows it.
    #[serde(default)]
    pub frame_rate: Option<crate::FrameRate>,
    pub width: u32,
    pub height: u32,
    /// Frames decoded from the input (1 for an image).
    pub frames: u64,
    /// Frames written to the output.
    pub frames_written: u64,
    /// Frames in which the detector found at least one face.
    pub frames_with_faces: u64,
    /// Frames redacted (including those covered only by temporal bridging).
    pub frames_redacted: u64,
    /// Mean share of the picture redacted per frame (mask areas; an upper bound where masks overlap).
    pub redacted_area_fraction: f64,
    /// Face detections over all frames.
    pub detections: u64,
    /// Face tracks (motion/overlap links of detections over frames; no identity).
    pub tracks: u64,
    /// Largest number of faces detected in one frame.
    pub max_faces_in_frame: u64,
    /// Frames on which the camera's own shift was measured (`--follow-camera`; 0 without it): tracks follow the
    /// scene, so bridged boxes move with the picture when the camera shakes or pans.
    #[serde(default)]
    pub frames_camera_moved: u64,
    /// Frames blanked entirely because the detector could not analyse them (`--on-detector-error redact-frame`).
    pub frames_blanked: u64,
    /// Frames with regions covered whole because no small-face search reached them in time: for a file, the
    /// last few frames, where what changed since their tiles' last search is covered (their next turn never
    /// comes).
    #[serde(default)]
    pub frames_covered: u64,
    /// Packets the decoder rejected (their frames cannot be written, so they cannot leak).
    pub decode_errors: u64,
    /// Video packets the demuxer marked as damaged.
    #[serde(default)]
    pub corrupt_packets: u64,
    /// Frames decoded with errors concealed by the decoder (damaged input; still redacted and written).
    #[serde(default)]
    pub damaged_frames: u64,
    /// Frames estimated missing from the input: gaps in its timestamps longer than the frames' durations.
    #[serde(default)]
    pub frames_missing: u64,
    /// Detector passes run (whole-frame and small-face tiles).
    #[serde(default)]
    pub detector_passes: u64,
    /// Passes answered from their last run because their region of the picture had not changed.
    #[serde(default)]
    pub detector_passes_reused: u64,
    /// Of `detector_passes`, the small crops searched around faces the tiles found, on frames their tiles
    /// were not searched.
    #[serde(default)]
    pub detector_passes_focus: u64,
    /// Detector input pixels searched, by kind of pass (`whole`, `tiles`, `focus`): inference time is about
    /// proportional to them, so they say where the detection time went.
    #[serde(default)]
    pub detector_pixels: crate::detect::PassPixels,
    /// Streams copied unchanged (audio, subtitles).
    pub streams_copied: u32,
    /// Display rotation in degrees clockwise carried from the input.
    pub rotation_degrees: u32,
    /// The output container cannot carry the rotation flag (Matroska, MPEG-TS, AVI), so the picture was turned
    /// in its pixels instead and the output has no flag. Reports without the field: false.
    #[serde(default)]
    pub rotation_in_pixels: bool,
    /// True for review outputs (`--overlay`): faces are outlined, not redacted. Never release these.
    pub not_for_release: bool,
    pub warnings: Vec<String>,
    pub elapsed_ms: u64,
}

impl Report {
    /// Takes the per-frame core's counts (the one mapping from [`Stats`] to the report, for every path).
    /// Takes what a reviewer's edits did.
    pub fn record_edits(&mut self, edits: Option<&crate::edits::Edits>) {
        self.edits_sha256 = edits.map(|e| e.sha256().to_string());
        self.kept_regions = edits.map(|e| e.kept_regions()).unwrap_or_default();
        self.follows = edits.map(|e| e.follow_reports()).unwrap_or_default();
    }

    pub fn record(&mut self, s: &Stats) {
        self.frames_with_faces = s.frames_with_faces;
        self.frames_redacted = s.frames_redacted;
        self.redacted_area_fraction = s.redacted_area_fraction();
        self.detections = s.detections;
        self.tracks = s.tracks;
        self.frames_camera_moved = s.frames_camera_moved;
        self.max_faces_in_frame = s.max_faces_in_frame;
        self.frames_blanked = s.frames_blanked;
        self.frames_covered = s.frames_covered;
        self.detector_passes = s.passes_run;
        self.detector_passes_reused = s.passes_reused;
        self.detector_passes_focus = s.passes_focus;
        self.detector_pixels = s.pixels;
    }

    /// The input was damaged: some of it could not be decoded or was concealed by the decoder. The output
    /// holds every frame that could be decoded, redacted; this says it is not the whole recording. Gaps in
    /// the timestamps alone (`frames_missing`) do not count: edited and variable-rate files have them too.
    pub fn input_damaged(&self) -> bool {
        self.decode_errors + self.corrupt_packets + self.damaged_frames > 0
    }
}
