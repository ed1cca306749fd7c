//! The pipeline: one file in, one redacted file out (checks, dispatch to the image or video path, atomic
//! output, report), and the live stream entry point ([`live`]). A video runs as four stage threads
//! (decode → analyse → redact → encode); every path decides each frame with the shared core in
//! [`analyse`](crate::analyse).

mod analyse;
mod decode;
mod encode;
mod follow;
pub mod live;
pub(crate) mod pace;
mod still;
mod thumbs;
mod video;

pub use pace::{LatencyHistogram, LiveEvent};

use crate::config::Options;
use crate::detect::Detector;
use crate::io::{sha256_file, still as still_io};
use crate::media::MediaKind;
use crate::report::Report;
use crate::review::{thumbnail, ReviewCollector};
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Redacts `input` into `output` with the given detector.
///
/// The output appears atomically: everything is written to a hidden temporary file beside `output`, which is
/// renamed to `output` only on success. On any error no file exists at `output` (an existing file is left as
/// it was) and the temporary file is removed. The input is only read.
pub fn redact_file(input: &Path, output: &Path, options: &Options, detector: &mut dyn Detector) -> Result<Report> {
    redact_file_with(input, output, options, detector, &Extras::default())
}

/// How a run goes, besides what it does to pixels ([`Options`]): replacing outputs, optional products, progress,
/// limits and cancellation. Nothing here changes the output's pixels, so none of it is in the report's
/// parameters or in a batch's resume key.
#[derive(Clone, Default)]
pub struct Extras<'a> {
    /// Replace an existing output (otherwise an existing output is an error and is left as it was).
    pub overwrite: bool,
    /// A reviewer's edit file ([`edits`](crate::edits)): regions added, frames redacted whole, regions kept.
    /// Its SHA-256 goes into the report.
    pub edits: Option<PathBuf>,
    /// Let the edit file keep regions unredacted (otherwise an edit file with keep regions is refused).
    pub allow_keep_regions: bool,
    /// Write a review sheet (PNG contact sheet of redacted frames with time codes) here.
    pub review_sheet: Option<PathBuf>,
    /// Called as frames are written: (frames written, estimated total frames if the container says).
    pub progress: Option<&'a (dyn Fn(u64, Option<u64>) + Sync)>,
    /// Give up on a video that is not finished within this time ([`Error::TimeLimit`], no output).
    pub time_limit: Option<std::time::Duration>,
    /// Set by the caller (e.g. on Ctrl-C) to stop a video run: it ends with [`Error::Interrupted`], no output
    /// and no temporary file left behind.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl std::fmt::Debug for Extras<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extras")
            .field("overwrite", &self.overwrite)
            .field("edits", &self.edits)
            .field("allow_keep_regions", &self.allow_keep_regions)
            .field("review_sheet", &self.review_sheet)
            .field("progress", &self.progress.is_some())
            .field("time_limit", &self.time_limit)
            .field("cancel", &self.cancel)
            .finish()
    }
}

/// [`redact_file`] with optional extras such as a review sheet (written only after the output succeeded).
pub fn redact_file_with(
    input: &Path,
    output: &Path,
    options: &Options,
    detector: &mut dyn Detector,
    extras: &Extras,
) -> Result<Report> {
    let mut collector = extras.review_sheet.as_ref().map(|_| ReviewCollector::new(6));
    let started = Instant::now();
    options.validate()?;
    check_paths(input, output, extras.overwrite)?;
    if extras.edits.as_deref().is_some_and(|e| same_place(e, output)) {
        return Err(Error::OutputIsInput { path: output.to_path_buf() });
    }
    if let Some(sheet) = &extras.review_sheet {
        let inputs: Vec<&Path> = std::iter::once(input).chain(extras.edits.as_deref()).collect();
        check_side_output(sheet, "review sheet", &inputs, output, extras.overwrite)?;
    }
    let out_dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = output.file_name().and_then(|n| n.to_str()).unwrap_or("output");
    let ext = output.extension().and_then(|e| e.to_str()).unwrap_or("");
    let edits = extras.edits.as_deref().map(EditSource::read).transpose()?;
    let image_format = still_io::probe(input)?;
    let out_image_format = still_io::output_format(output);
    let kind = if image_format.is_some() { MediaKind::Image } else { MediaKind::Video };
    detector.prepare_for(kind);
    let usage_before = detector.usage();

    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(&if ext.is_empty() { String::new() } else { format!(".{ext}") })
        .tempfile_in(&out_dir)
        .map_err(|e| Error::temp_in(&out_dir, e))?;

    let mut report = Report {
        tool: "faceveil".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        // A video's is set again once its frame rate is known (`Outcome::fill_report`).
        redaction_revision: crate::report::redaction_revision(kind, None),
        input: input.to_path_buf(),
        output: output.to_path_buf(),
        kind,
        input_sha256: String::new(),
        output_sha256: String::new(),
        model_sha256: detector.model_sha256(),
        models: Vec::new(),
        runtime: None,
        edits_sha256: None,
        kept_regions: Vec::new(),
        follows: Vec::new(),
        parameters: options.clone(),
        frame_rate: None,
        width: 0,
        height: 0,
        frames: 0,
        frames_written: 0,
        frames_with_faces: 0,
        frames_redacted: 0,
        redacted_area_fraction: 0.0,
        detections: 0,
        tracks: 0,
        max_faces_in_frame: 0,
        frames_camera_moved: 0,
        frames_blanked: 0,
        frames_covered: 0,
        decode_errors: 0,
        corrupt_packets: 0,
        damaged_frames: 0,
        frames_missing: 0,
        detector_passes: 0,
        detector_passes_reused: 0,
        detector_passes_focus: 0,
        detector_pixels: Default::default(),
        streams_copied: 0,
        rotation_degrees: 0,
        rotation_in_pixels: false,
        not_for_release: options.redact.style == crate::redact::Style::Outline,
        warnings: Vec::new(),
        elapsed_ms: 0,
    };

    if let Some(in_format) = image_format {
        let format = out_image_format.ok_or_else(|| Error::UnsupportedOutput {
            path: output.to_path_buf(),
            reason: format!("an image input needs an image output ending in {}", still_io::STILL_EXTENSIONS),
        })?;
        let edits = edits.as_ref().map(|e| (e, extras.allow_keep_regions));
        let o = still::redact_still(input, in_format, tmp.path(), format, options, detector, edits)
            .map_err(|e| name_output(e, tmp.path(), output))?;
        if let Some(c) = collector.as_mut() {
            let faces = o.stats.detections as usize;
            c.offer(0, "00:00:00.000".into(), faces, &thumbnail(&o.redacted.to_rgb8()));
        }
        report.record(&o.stats);
        report.width = o.width;
        report.height = o.height;
        report.frames = 1;
        report.frames_written = 1;
        report.warnings = o.warnings;
        report.record_edits(o.edits.as_ref());
    } else {
        if out_image_format.is_some() {
            return Err(Error::UnsupportedOutput {
                path: output.to_path_buf(),
                reason: format!(
                    "a video cannot be written as a still image; use {}",
                    crate::io::ffmpeg::output::VIDEO_EXTENSIONS
                ),
            });
        }
        crate::io::ffmpeg::output::check_video_container(output)?;
        let review = collector.as_mut();
        let edits = edits.as_ref().map(|e| (e, extras.allow_keep_regions));
        video::redact_video(input, tmp.path(), options, detector, extras, review, edits)
            .map_err(|e| name_output(e, tmp.path(), output))?
            .fill_report(&mut report);
    }

    crate::io::seal(tmp.path())?;
    report.input_sha256 = sha256_file(input)?;
    report.output_sha256 = sha256_file(tmp.path())?;
    let persisted = if extras.overwrite { tmp.persist(output) } else { tmp.persist_noclobber(output) };
    persisted.map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            Error::OutputExists { path: output.to_path_buf() }
        } else {
            Error::io(output, e.error)
        }
    })?;
    if let (Some(path), Some(c)) = (&extras.review_sheet, collector) {
        if let Some(sheet) = c.compose() {
            crate::review::save_sheet(&sheet, path, extras.overwrite)?;
        }
    }
    report.runtime = detector.runtime().map(|r| r.to_string());
    report.models = crate::detect::ModelUsage::since(&detector.usage(), &usage_before);
    report.models.retain(|m| m.passes > 0);
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// An edit file's bytes, read once (they are parsed when the picture size is known, and hashed for the report).
pub(crate) struct EditSource {
    pub(crate) path: PathBuf,
    pub(crate) bytes: Vec<u8>,
}

impl EditSource {
    fn read(path: &Path) -> Result<Self> {
        Ok(Self { path: path.to_path_buf(), bytes: crate::edits::read_file(path)? })
    }

    /// Parses the edits for an upright `width × height` picture, refusing keep regions unless `allow_keep`.
    pub(crate) fn parse(&self, width: u32, height: u32, allow_keep: bool) -> Result<crate::edits::Edits> {
        let edits = crate::edits::Edits::parse(&self.bytes, width, height, &self.path)?;
        if edits.has_keep_regions() && !allow_keep {
            return Err(Error::Edits {
                path: self.path.clone(),
                reason:
                    "keep regions leave faces unredacted and need explicit permission (batch: --allow-keep-regions)"
                        .into(),
            });
        }
        Ok(edits)
    }
}

/// Errors about the temporary file name the output the user asked for.
fn name_output(e: Error, tmp: &Path, output: &Path) -> Error {
    match e {
        Error::Encode { path, reason } if path == tmp || path.as_os_str().is_empty() => {
            Error::Encode { path: output.to_path_buf(), reason }
        }
        Error::Io { path, source } if path == tmp => Error::Io { path: output.to_path_buf(), source },
        Error::Frame { path, frame, source } => Error::Frame {
            path: if path == tmp { output.to_path_buf() } else { path },
            frame,
            source: Box::new(name_output(*source, tmp, output)),
        },
        other => other,
    }
}

/// Refuses a missing input, an output that is the input (also through links), and an existing output
/// without `overwrite`.
fn check_paths(input: &Path, output: &Path, overwrite: bool) -> Result<()> {
    let meta = std::fs::metadata(input).map_err(|e| Error::io(input, e))?;
    if !meta.is_file() {
        return Err(Error::bad_input(input, "not a regular file"));
    }
    if output.as_os_str().is_empty() || output.file_name().is_none() {
        return Err(Error::UnsupportedOutput { path: output.to_path_buf(), reason: "output must name a file".into() });
    }
    if let Ok(out_meta) = std::fs::metadata(output) {
        if same_file(&meta, &out_meta) {
            return Err(Error::OutputIsInput { path: output.to_path_buf() });
        }
        if out_meta.is_dir() {
            return Err(Error::UnsupportedOutput {
                path: output.to_path_buf(),
                reason: "output is a directory".into(),
            });
        }
        if !overwrite {
            return Err(Error::OutputExists { path: output.to_path_buf() });
        }
    }
    Ok(())
}

/// Refuses a file a run writes besides its output (a review sheet, a report) where it would replace one of
/// the run's `inputs` (also through links) or its `output`, or an existing file without `overwrite`. `what`
/// names it in the message.
pub fn check_side_output(path: &Path, what: &str, inputs: &[&Path], output: &Path, overwrite: bool) -> Result<()> {
    if path.as_os_str().is_empty() || path.file_name().is_none() {
        return Err(Error::UnsupportedOutput {
            path: path.to_path_buf(),
            reason: format!("the {what} must name a file"),
        });
    }
    let meta = std::fs::metadata(path).ok();
    for input in inputs {
        if let (Some(a), Ok(b)) = (&meta, std::fs::metadata(input)) {
            if same_file(a, &b) {
                return Err(Error::UnsupportedOutput {
                    path: path.to_path_buf(),
                    reason: format!(
                        "the {what} would replace the input {}; faceveil never writes to its inputs",
                        input.display()
                    ),
                });
            }
        }
    }
    if same_place(path, output) {
        return Err(Error::UnsupportedOutput {
            path: path.to_path_buf(),
            reason: format!("the {what} would replace the output; give it a name of its own"),
        });
    }
    if let Some(m) = meta {
        if m.is_dir() {
            return Err(Error::UnsupportedOutput {
                path: path.to_path_buf(),
                reason: format!("the {what} is a directory"),
            });
        }
        if !overwrite {
            return Err(Error::OutputExists { path: path.to_path_buf() });
        }
    }
    Ok(())
}

/// True when `a` and `b` name the same file: the same file on disk, or (where one does not exist yet) the same
/// name in the same folder.
pub(crate) fn same_place(a: &Path, b: &Path) -> bool {
    if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
        return same_file(&x, &y);
    }
    let resolved = |p: &Path| {
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        dir.canonicalize().ok().map(|d| d.join(p.file_name().unwrap_or_default()))
    };
    a == b || resolved(a).is_some_and(|x| Some(x) == resolved(b))
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_a: &std::fs::Metadata, _b: &std::fs::Metadata) -> bool {
    false
}
