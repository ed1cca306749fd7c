//! Settings of a whole run, validated up front.

use crate::detect::DetectSettings;
use crate::redact::RedactSettings;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// What happens to audio streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AudioMode {
    /// Copy every audio stream unchanged; an audio stream the output container cannot hold is an error.
    #[default]
    Copy,
    /// Leave audio out.
    Drop,
}

/// Largest picture side faceveil accepts, in pixels.
pub const MAX_SIDE: u32 = 16384;
/// Largest picture area faceveil accepts (8192 × 8192): bounds the memory one frame can take.
pub const MAX_PIXELS: u64 = 8192 * 8192;

/// Refuses pictures outside the documented limits, with a message stating them.
pub fn check_picture_size(w: u32, h: u32) -> std::result::Result<(), String> {
    if w == 0 || h == 0 {
        return Err(format!("picture size {w}x{h} is empty"));
    }
    if w > MAX_SIDE || h > MAX_SIDE || w as u64 * h as u64 > MAX_PIXELS {
        return Err(format!(
            "picture size {w}x{h} exceeds the supported maximum (sides <= {MAX_SIDE}, area <= 8192x8192 = {} megapixels)",
            MAX_PIXELS / 1_000_000
        ));
    }
    Ok(())
}

/// What happens when the detector cannot analyse a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OnDetectorError {
    /// Stop with an error; no output is written.
    #[default]
    Fail,
    /// Replace the whole frame with flat grey, note it in the report, and go on.
    RedactFrame,
}

/// Video encoder settings (libx264).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodeSettings {
    /// x264 constant rate factor, 0 (lossless) to 51; 18 is visually lossless.
    pub crf: u8,
    /// x264 preset.
    pub preset: String,
    /// x264 rate-control look-ahead, in frames, at most (the preset's own value where it is smaller). Every
    /// frame of look-ahead holds a picture and its analysis in the encoder: at 1080p, x264's `medium` (40
    /// frames) takes about 200 MB more than 10 frames.
    #[serde(default = "default_lookahead")]
    pub lookahead: u32,
    /// Threads of the video decoder and of the x264 encoder, each, for files (0: one per four cores, at least
    /// one). Every frame thread holds pictures of its own: at 1080p on 2 cores, FFmpeg's defaults (3 decoder
    /// and 3 encoder threads) take about 75 MB more than one each, and gain nothing while detection has the
    /// cores. Live streams keep FFmpeg's defaults (their encoder threads work on slices of one picture).
    #[serde(default)]
    pub threads: u32,
}

fn default_lookahead() -> u32 {
    10
}

impl Default for EncodeSettings {
    fn default() -> Self {
        Self { crf: 18, preset: "medium".into(), lookahead: default_lookahead(), threads: 0 }
    }
}

const PRESETS: &[&str] =
    &["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo"];

impl EncodeSettings {
    /// The `rc-lookahead` x264 gets: the preset's own look-ahead, capped at [`lookahead`](Self::lookahead).
    pub fn rc_lookahead(&self) -> u32 {
        let preset_default = match self.preset.as_str() {
            "ultrafast" | "superfast" => 0,
            "veryfast" => 10,
            "faster" => 20,
            "fast" => 30,
            "medium" => 40,
            "slow" => 50,
            _ => 60,
        };
        self.lookahead.min(preset_default)
    }

    /// The decoder's and the encoder's thread count: [`threads`](Self::threads), or one per four cores.
    pub fn codec_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get() / 4).max(1),
            n => n as usize,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.threads > 64 {
            return Err(Error::Config(format!("invalid codec threads {} (expected <= 64)", self.threads)));
        }
        if self.lookahead > 250 {
            return Err(Error::Config(format!("invalid look-ahead {} (expected <= 250)", self.lookahead)));
        }
        if self.crf > 51 {
            return Err(Error::Config(format!("invalid crf {} (expected >= 0, <= 51)", self.crf)));
        }
        if !PRESETS.contains(&self.preset.as_str()) {
            return Err(Error::Config(format!(
                "invalid preset {:?} (expected one of {})",
                self.preset,
                PRESETS.join(", ")
            )));
        }
        Ok(())
    }
}

/// Everything that decides what a run does to a file's content: detection, redaction, bridging, streams
/// kept, encoding. Serialised into reports, and a batch's resume key (an output made with other options is
/// redone). How a run goes (replacing outputs, progress, limits) is in [`Extras`](crate::Extras).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Options {
    pub detect: DetectSettings,
    pub redact: RedactSettings,
    /// Frames before and after each detection that are also redacted (bridges detector misses).
    pub bridge_frames: u32,
    /// Video: the small-face tiles are spread over this many consecutive frames (1: every tile every frame).
    /// Temporal bridging covers the frames in between, so keep it at most `bridge_frames`.
    pub tile_period: u32,
    pub audio: AudioMode,
    /// Fail closed: stop, or blank the frame the detector could not analyse. Never write it unredacted.
    pub on_detector_error: OnDetectorError,
    /// Keep container and stream metadata (titles, dates, locations, device names). Off by default.
    pub keep_metadata: bool,
    pub encode: EncodeSettings,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            detect: DetectSettings::default(),
            redact: RedactSettings::default(),
            // Measured on hand-held clips of small faces (benches/handheld.sh, issue 14): tiles every 6th frame
            // with focus passes on known faces leak fewer face-frames than every 3rd without them, at 0.6× the
            // cost.
            bridge_frames: 5,
            tile_period: 6,
            audio: AudioMode::Copy,
            on_detector_error: OnDetectorError::Fail,
            keep_metadata: false,
            encode: EncodeSettings::default(),
        }
    }
}

impl Options {
    pub fn validate(&self) -> Result<()> {
        self.detect.validate()?;
        self.redact.validate()?;
        self.encode.validate()?;
        if self.tile_period == 0 || self.tile_period > 64 {
            return Err(Error::Config(format!("invalid tile period {} (expected >= 1, <= 64)", self.tile_period)));
        }
        if self.bridge_frames > 250 {
            return Err(Error::Config(format!("invalid bridge frames {} (expected <= 250)", self.bridge_frames)));
        }
        // A tile is searched every `tile_period` frames; the frames between its turns are covered only by
        // bridging, so they must lie within the bridging window of a searched frame.
        if self.detect.tile_scale > 0.0 && self.tile_period > self.bridge_frames + 1 {
            return Err(Error::Config(format!(
                "invalid tile period {} with {} bridge frames (expected <= bridge frames + 1 = {}: the frames \
                 between a tile's turns are covered only by bridging)",
                self.tile_period,
                self.bridge_frames,
                self.bridge_frames + 1
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_threads_default_to_a_quarter_of_the_cores() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(EncodeSettings::default().codec_threads(), (cores / 4).max(1));
        assert_eq!(EncodeSettings { threads: 3, ..Default::default() }.codec_threads(), 3);
        let e = EncodeSettings { threads: 65, ..Default::default() }.validate().unwrap_err().to_string();
        assert!(e.contains("codec threads 65"), "{e}");
    }

    #[test]
    fn tile_period_must_stay_within_the_bridging_window_issue_15() {
        let o = Options { bridge_frames: 0, ..Default::default() };
        let e = o.validate().unwrap_err().to_string();
        assert!(e.contains("invalid tile period 6 with 0 bridge frames"), "{e}");
        let e = Options { bridge_frames: 4, ..Default::default() }.validate().unwrap_err().to_string();
        assert!(e.contains("invalid tile period 6 with 4 bridge frames"), "{e}");
        Options::default().validate().unwrap();
        Options { bridge_frames: 0, tile_period: 1, ..Default::default() }.validate().unwrap();
        Options { bridge_frames: 2, tile_period: 3, ..Default::default() }.validate().unwrap();
        let mut no_tiles = Options { bridge_frames: 0, ..Default::default() };
        no_tiles.detect.tile_scale = 0.0;
        no_tiles.validate().unwrap();
    }

    #[test]
    fn defaults_are_valid() {
        Options::default().validate().unwrap();
    }

    #[test]
    fn out_of_range_values_name_the_range() {
        let o = Options { encode: EncodeSettings { crf: 60, ..Default::default() }, ..Default::default() };
        assert!(o.validate().unwrap_err().to_string().contains("expected >= 0, <= 51"));
        let o =
            Options { encode: EncodeSettings { preset: "quick".into(), ..Default::default() }, ..Default::default() };
        assert!(o.validate().unwrap_err().to_string().contains("ultrafast"));
    }
}
