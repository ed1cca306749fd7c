//! Many files: walk a folder tree, redact every media file into a mirrored output tree, resume safely,
//! split the work deterministically into shards for cluster schedulers, and account for every file.

use crate::config::Options;
use crate::detect::Detector;
use crate::io::{sha256_file, still, write_json_atomic};
use crate::report::{MediaKind, Report};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Suffix of the per-file report written beside each output.
pub const REPORT_SUFFIX: &str = ".faceveil.json";
/// A reviewer's edit file for an input sits beside it under the input's name plus this suffix
/// (`clip.mp4.faceveil-edits.json`); batch applies it, and redoes the output when it changes.
pub const EDITS_SUFFIX: &str = ".faceveil-edits.json";

/// The edit file beside `input`, if there is one.
pub fn edits_path(input: &Path) -> Option<PathBuf> {
    let mut s = input.as_os_str().to_owned();
    s.push(EDITS_SUFFIX);
    let p = PathBuf::from(s);
    p.is_file().then_some(p)
}

/// One shard of `count` (index 0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Parses `K/N` (0 <= K < N).
    pub fn parse(s: &str) -> Result<Shard> {
        let bad = || Error::Config(format!("invalid shard {s:?} (expected K/N with 0 <= K < N, e.g. 0/4)"));
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        Shard::new(index, count).map_err(|_| bad())
    }

    pub fn new(index: u32, count: u32) -> Result<Shard> {
        if count == 0 || index >= count {
            return Err(Error::Config(format!("invalid shard {index}/{count} (expected 0 <= K < N)")));
        }
        Ok(Shard { index, count })
    }

    /// The shard a scheduler assigned through the environment: a Kubernetes Indexed Job
    /// (`JOB_COMPLETION_INDEX`, with the shard count in `FACEVEIL_SHARD_COUNT`) or a Slurm job array
    /// (`SLURM_ARRAY_TASK_ID` of `FACEVEIL_SHARD_COUNT` where set, so that one task resubmitted alone keeps
    /// its shard; else `SLURM_ARRAY_TASK_ID` minus `SLURM_ARRAY_TASK_MIN`, of `SLURM_ARRAY_TASK_COUNT`).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>> {
        let num = |name: &str| -> Result<Option<u32>> {
            match get(name) {
                None => Ok(None),
                Some(v) => {
                    v.trim().parse().map(Some).map_err(|_| Error::Config(format!("{name}={v:?} is not a number")))
                }
            }
        };
        if let Some(index) = num("JOB_COMPLETION_INDEX")? {
            let count = num("FACEVEIL_SHARD_COUNT")?.ok_or_else(|| {
                Error::Config(
                    "JOB_COMPLETION_INDEX is set but FACEVEIL_SHARD_COUNT (the Job's completions) is not".into(),
                )
            })?;
            return Shard::new(index, count).map(Some);
        }
        if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            // A task resubmitted alone (`sbatch --array=K`) is an array of one: its own count says nothing of
            // the run's. FACEVEIL_SHARD_COUNT, where set, is the run's count and the task id its shard.
            if let Some(count) = num("FACEVEIL_SHARD_COUNT")? {
                return Shard::new(id, count).map(Some);
            }
            if let Some(count) = num("SLURM_ARRAY_TASK_COUNT")? {
                let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
                return Shard::new(id.saturating_sub(min), count).map(Some);
            }
        }
        Ok(None)
    }

    /// Whether the file at relative path `rel` belongs to this shard: a hash of the path, so the split does
    /// not depend on listing order and shards never share a file.
    pub fn owns(&self, rel: &Path) -> bool {
        Shard::owner_of(rel, self.count) == Some(self.index)
    }

    /// The shard of `count` that owns the file at `rel` (`None` for a count of 0).
    pub fn owner_of(rel: &Path, count: u32) -> Option<u32> {
        let digest = crate::sha256_hex(rel.to_string_lossy().as_bytes());
        let v = u64::from_str_radix(&digest[..15], 16).unwrap_or(0);
        v.checked_rem(u64::from(count)).map(|k| k as u32)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Redacted in this run.
    Done,
    /// The output and its report were already complete and match this run's input and parameters.
    UpToDate,
    /// Failed; the message says why. No output exists for it.
    Failed,
    /// Not a media file (or a link), left alone.
    Skipped,
    /// The run was stopped (a signal, `scancel`) while this file was in progress: no output exists for it,
    /// and the next run does it.
    Interrupted,
}

/// Why an output that an earlier run left was made again: the first of these checks that failed (cheapest
/// first; the input and the output are hashed last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Redone {
    /// Its report is missing or cannot be read (a run killed between the two, a report deleted).
    NoReport,
    /// The parameters its kind of media depends on differ ([`Options::affecting`]).
    Parameters,
    /// Its edit file was added, changed or removed.
    Edits,
    /// It kept regions unredacted, and this run does not allow keep regions.
    KeptRegions,
    /// It was made by a build that redacted its kind of media (a video at its rate) another way
    /// ([`redaction_revision`](crate::report::redaction_revision)).
    Revision,
    /// Another detector model.
    Model,
    /// The input is not the one its report names (its SHA-256 changed).
    InputChanged,
    /// The output is not the one its report vouches for: damaged, cut short or replaced.
    OutputChanged,
    /// A video flagged to be shown turned went into a container that cannot carry the flag, from a build that
    /// dropped the flag instead of turning the picture (the output is shown sideways or upside down).
    RotationLost,
}

impl Redone {
    /// The reason in words, for a terminal.
    pub fn describe(self) -> &'static str {
        match self {
            Redone::NoReport => "its report was missing or unreadable",
            Redone::Parameters => "the parameters differ",
            Redone::Edits => "its edit file changed",
            Redone::KeptRegions => "it kept regions and this run does not allow keep regions",
            Redone::Revision => "an earlier build redacted it more weakly",
            Redone::Model => "another detector model",
            Redone::InputChanged => "the input changed",
            Redone::OutputChanged => "the output was damaged or replaced",
            Redone::RotationLost => "an earlier build dropped its rotation flag",
        }
    }
}

/// What happened to one file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileResult {
    pub input: PathBuf,
    pub output: Option<PathBuf>,
    pub status: Status,
    pub message: Option<String>,
    pub frames: u64,
    pub frames_with_faces: u64,
    pub detections: u64,
    /// The input was damaged (see the report's decode counts): every decodable frame is in the output, but
    /// the output is not the whole recording.
    #[serde(default)]
    pub input_damaged: bool,
    /// Done although an earlier run had left an output: why it was made again. `None` for a file done for
    /// the first time, and for every status but done.
    #[serde(default)]
    pub redone: Option<Redone>,
    pub seconds: f64,
}

/// How a batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Every media file is redacted (now or before).
    Complete,
    /// The run was interrupted: files not started are left for a rerun, which resumes.
    Interrupted,
    /// Some files failed or were skipped.
    Incomplete,
    /// Every file is redacted, but some inputs were damaged (their outputs hold every frame that could be
    /// decoded).
    Damaged,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub tool_version: String,
    pub input_dir: PathBuf,
    pub output_dir: PathBuf,
    pub shard: Option<Shard>,
    pub done: usize,
    pub up_to_date: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Files done or up to date whose input was damaged.
    #[serde(default)]
    pub damaged: usize,
    /// The run was interrupted ([`BatchSettings::cancel`]): files not listed were not started.
    #[serde(default)]
    pub interrupted: bool,
    pub seconds: f64,
    pub files: Vec<FileResult>,
}

impl Summary {
    /// How the batch ended, most serious first.
    pub fn outcome(&self) -> BatchOutcome {
        if self.interrupted {
            BatchOutcome::Interrupted
        } else if self.failed > 0 || self.skipped > 0 {
            BatchOutcome::Incomplete
        } else if self.damaged > 0 {
            BatchOutcome::Damaged
        } else {
            BatchOutcome::Complete
        }
    }

    /// Writes the summary as JSON and CSV into the output folder (`faceveil-summary[-shard-I-of-N].json` and
    /// `.csv`, atomically); returns the JSON's path.
    pub fn write(&self) -> Result<PathBuf> {
        let stem = match self.shard {
            Some(s) => format!("faceveil-summary-shard-{}-of-{}", s.index, s.count),
            None => "faceveil-summary".into(),
        };
        let json = self.output_dir.join(format!("{stem}.json"));
        write_json_atomic(&json, self)?;
        crate::io::write_atomic(&self.output_dir.join(format!("{stem}.csv")), self.to_csv().as_bytes())?;
        Ok(json)
    }

    /// The summary as CSV (one row per file).
    pub fn to_csv(&self) -> String {
        let mut s = String::from("input,output,status,frames,frames_with_faces,detections,seconds,message,redone\n");
        // An enum's name as serialised (kebab-case), or nothing.
        let name = |v: Option<serde_json::Value>| v.and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        for f in &self.files {
            let q = |v: &str| format!("\"{}\"", v.replace('"', "\"\""));
            s.push_str(&format!(
                "{},{},{},{},{},{},{:.3},{},{}\n",
                q(&f.input.to_string_lossy()),
                q(&f.output.as_ref().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()),
                name(serde_json::to_value(f.status).ok()),
                f.frames,
                f.frames_with_faces,
                f.detections,
                f.seconds,
                q(f.message.as_deref().unwrap_or("")),
                name(f.redone.and_then(|r| serde_json::to_value(r).ok()))
            ));
        }
        s
    }
}

/// Settings of a batch run besides the redaction options.
#[derive(Debug, Clone)]
pub struct BatchSettings {
    /// Files processed at once.
    pub jobs: usize,
    pub shard: Option<Shard>,
    /// Stop starting new files after the first failure.
    pub fail_fast: bool,
    /// Write every still image as lossless PNG instead of keeping its format.
    pub images_as_png: bool,
    /// Write a review sheet `<output>.review.png` beside every output.
    pub review_sheets: bool,
    /// Give up on a file not finished within this time (it is reported failed, with no output).
    pub time_limit: Option<std::time::Duration>,
    /// Set by the caller (e.g. on Ctrl-C): no new file is started, videos being redacted stop without output,
    /// and the summary says `interrupted`. A rerun of the same command resumes.
    pub cancel: Option<std::sync::Arc<AtomicBool>>,
    /// Let edit files keep regions unredacted (refused otherwise: the file fails).
    pub allow_keep_regions: bool,
}

/// A file found in the input tree.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path relative to the input folder (never contains `..`).
    pub rel: PathBuf,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Image,
    Video,
    /// Named like media (by extension) but unreadable: counted as a failure, not silently skipped.
    Broken(String),
    /// Not media; the reason.
    Other(String),
}

/// Walks `input_dir` (links are not followed) and classifies every file by its content.
pub fn scan(input_dir: &Path) -> Result<Vec<Entry>> {
    let meta = std::fs::metadata(input_dir).map_err(|e| Error::io(input_dir, e))?;
    if !meta.is_dir() {
        return Err(Error::bad_input(input_dir, "not a folder"));
    }
    let mut out = Vec::new();
    for item in walkdir::WalkDir::new(input_dir).follow_links(false).sort_by_file_name() {
        let item = match item {
            Ok(i) => i,
            Err(e) => {
                let rel =
                    e.path().and_then(|p| p.strip_prefix(input_dir).ok()).map(Path::to_path_buf).unwrap_or_default();
                out.push(Entry { rel, kind: EntryKind::Other(format!("cannot read: {e}")) });
                continue;
            }
        };
        let ft = item.file_type();
        if ft.is_dir() {
            continue;
        }
        let Ok(rel) = item.path().strip_prefix(input_dir).map(Path::to_path_buf) else { continue };
        // Reviewers' edit files belong to the input beside them; they are not inputs themselves.
        if rel.to_string_lossy().ends_with(EDITS_SUFFIX) {
            continue;
        }
        let kind = if ft.is_symlink() {
            EntryKind::Other("symbolic link (not followed)".into())
        } else if !ft.is_file() {
            EntryKind::Other("not a regular file".into())
        } else {
            classify(item.path())
        };
        out.push(Entry { rel, kind });
    }
    Ok(out)
}

fn classify(path: &Path) -> EntryKind {
    match still::probe(path) {
        Ok(Some(_)) => EntryKind::Image,
        Ok(None) => {
            if crate::io::ffmpeg::input::has_video_stream(path) {
                EntryKind::Video
            } else if looks_like_media(path) {
                EntryKind::Broken("named like a video or image, but FFmpeg cannot read a picture from it".into())
            } else {
                EntryKind::Other("not an image or a video FFmpeg can read".into())
            }
        }
        Err(e) if looks_like_media(path) => EntryKind::Broken(e.to_string()),
        Err(e) => EntryKind::Other(e.to_string()),
    }
}

const MEDIA_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "ts", "mts", "m2ts", "mpg", "mpeg", "wmv", "flv", "3gp", "mxf", "dav",
    "h264", "h265", "hevc", "jpg", "jpeg", "png", "webp", "tif", "tiff", "bmp",
];

fn looks_like_media(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| MEDIA_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Where the output for `rel` goes: the same relative path, with an extension faceveil can write.
pub fn output_path(output_dir: &Path, rel: &Path, kind: &EntryKind, images_as_png: bool) -> PathBuf {
    let ext = rel.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
    let new_ext = match kind {
        EntryKind::Image if !images_as_png && still::format_of_extension(&ext).is_some() => ext,
        EntryKind::Image => "png".into(),
        _ if matches!(ext.as_str(), "mp4" | "mkv" | "mov" | "m4v" | "avi" | "ts") => ext,
        _ => "mkv".into(),
    };
    output_dir.join(rel).with_extension(new_ext)
}

pub fn report_path(output: &Path) -> PathBuf {
    let mut s = output.as_os_str().to_owned();
    s.push(REPORT_SUFFIX);
    PathBuf::from(s)
}

/// An entry's output path with a note where it was renamed, or why it has none (it would meet another's).
pub type PlannedOutput = std::result::Result<(PathBuf, Option<String>), String>;

/// Where every entry's output goes (`None` for entries that are not media), with a note where it was renamed.
/// Two inputs never share an output, a report or a review sheet: inputs whose outputs would meet (`p.png` and
/// `p.PNG`; `clip.webm` and `clip.flv`, both written as `.mkv`) are written under their whole input name with
/// the output's extension added (`p.PNG.png`, `clip.webm.mkv`); where even those meet, the inputs fail with a
/// message naming each other. The plan depends on the whole input tree only, so every shard makes the same one.
pub fn plan_outputs(
    output_dir: &Path,
    entries: &[Entry],
    images_as_png: bool,
    review_sheets: bool,
) -> Vec<Option<PlannedOutput>> {
    let media = |e: &Entry| matches!(e.kind, EntryKind::Image | EntryKind::Video);
    let mut outputs: Vec<Option<PathBuf>> =
        entries.iter().map(|e| media(e).then(|| output_path(output_dir, &e.rel, &e.kind, images_as_png))).collect();
    let claims = |out: &Path| {
        let mut c = vec![out.to_path_buf(), report_path(out)];
        if review_sheets {
            c.push(review_sheet_path(out));
        }
        c
    };
    let meeting = |outputs: &[Option<PathBuf>]| {
        let mut by_path: std::collections::HashMap<PathBuf, Vec<usize>> = std::collections::HashMap::new();
        for (i, out) in outputs.iter().enumerate() {
            for c in out.iter().flat_map(|o| claims(o)) {
                by_path.entry(c).or_default().push(i);
            }
        }
        let mut met: Vec<Vec<usize>> = by_path.into_values().filter(|v| v.len() > 1).collect();
        for v in &mut met {
            v.sort_unstable();
            v.dedup();
        }
        met.retain(|v| v.len() > 1);
        met
    };
    let first = meeting(&outputs);
    let mut notes: Vec<Option<String>> = vec![None; entries.len()];
    let mut renamed_once = std::collections::HashSet::new();
    for group in &first {
        for &i in group {
            // A pair meets at its outputs and at their reports alike: each input is renamed once.
            if !renamed_once.insert(i) {
                continue;
            }
            let Some(out) = outputs[i].as_ref() else { continue };
            let ext = out.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
            let mut name = entries[i].rel.file_name().unwrap_or_default().to_owned();
            name.push(format!(".{ext}"));
            let renamed = out.with_file_name(name);
            let others: Vec<String> =
                group.iter().filter(|&&j| j != i).map(|&j| entries[j].rel.display().to_string()).collect();
            notes[i] = Some(format!(
                "written as {} because {} would also be written as {}",
                renamed.file_name().unwrap_or_default().to_string_lossy(),
                others.join(", "),
                out.file_name().unwrap_or_default().to_string_lossy()
            ));
            outputs[i] = Some(renamed);
        }
    }
    let mut failed: std::collections::HashMap<usize, String> = std::collections::HashMap::new();
    for group in meeting(&outputs) {
        for &i in &group {
            let others: Vec<String> =
                group.iter().filter(|&&j| j != i).map(|&j| entries[j].rel.display().to_string()).collect();
            failed.insert(
                i,
                format!(
                    "its output {} would also be written for {}: give the inputs distinct names",
                    outputs[i].as_deref().unwrap_or(Path::new("")).display(),
                    others.join(", ")
                ),
            );
        }
    }
    outputs
        .into_iter()
        .enumerate()
        .map(|(i, out)| {
            let out = out?;
            Some(match failed.remove(&i) {
                Some(why) => Err(why),
                None => Ok((out, notes[i].take())),
            })
        })
        .collect()
}

/// The review sheet written beside `output` (`--review-sheets`).
pub fn review_sheet_path(output: &Path) -> PathBuf {
    let mut p = output.as_os_str().to_owned();
    p.push(".review.png");
    PathBuf::from(p)
}

/// Its report when `output`'s report exists and matches this input, the options its kind of media depends on
/// ([`Options::affecting`]), this model and this build's way of redacting that kind of media
/// ([`redaction_revision`](crate::report::redaction_revision)), and the output is the one it vouches for;
/// otherwise why the output must be made again. An output whose edit file kept regions unredacted is up to
/// date only for a run that allows keep regions.
fn check_output(
    input: &Path,
    output: &Path,
    options: &Options,
    model: Option<&str>,
    allow_keep: bool,
) -> std::result::Result<Report, Redone> {
    let text = std::fs::read(report_path(output)).map_err(|_| Redone::NoReport)?;
    let report = serde_json::from_slice::<Report>(&text).map_err(|_| Redone::NoReport)?;
    let edits = match edits_path(input).map(|p| sha256_file(&p)) {
        None => None,
        Some(Ok(sha)) => Some(sha),
        Some(Err(_)) => return Err(Redone::Edits),
    };
    let failed = |ok: bool, why: Redone| if ok { Ok(()) } else { Err(why) };
    // A video's report holds the schedule its frame rate gave: these options are compared at that rate.
    let wanted = options.at_rate(report.frame_rate).affecting(report.kind);
    failed(report.parameters.affecting(report.kind) == wanted, Redone::Parameters)?;
    failed(report.edits_sha256 == edits, Redone::Edits)?;
    failed(report.kept_regions.is_empty() || allow_keep, Redone::KeptRegions)?;
    let revision = crate::report::redaction_revision(report.kind, report.frame_rate);
    failed(report.redaction_revision == revision, Redone::Revision)?;
    failed(report.model_sha256.as_deref() == model, Redone::Model)?;
    failed(!rotation_lost(&report, output), Redone::RotationLost)?;
    failed(sha256_file(input).ok().as_deref() == Some(report.input_sha256.as_str()), Redone::InputChanged)?;
    failed(sha256_file(output).ok().as_deref() == Some(report.output_sha256.as_str()), Redone::OutputChanged)?;
    Ok(report)
}

/// Whether `report`'s video was flagged to be shown turned and `output` is in a container that cannot carry the
/// flag (every one batch writes but MP4 and MOV), and the picture was not turned in its pixels instead.
fn rotation_lost(report: &Report, output: &Path) -> bool {
    report.kind == MediaKind::Video
        && report.rotation_degrees != 0
        && !report.rotation_in_pixels
        && !crate::io::ffmpeg::output::path_carries_rotation(output)
}

/// Progress events, for a terminal or a scheduler's log.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event<'a> {
    Start { files: usize, media: usize, shard: Option<Shard> },
    File { n: usize, of: usize, result: &'a FileResult },
}

/// Runs a batch. `make_detector(threads)` builds one detector per concurrent file, with that many threads.
pub fn run_batch(
    input_dir: &Path,
    output_dir: &Path,
    options: &Options,
    settings: &BatchSettings,
    make_detector: &(dyn Fn(usize) -> Result<Box<dyn Detector>> + Sync),
    progress: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Summary> {
    let started = Instant::now();
    options.validate()?;
    let input_dir = &input_dir.canonicalize().map_err(|e| Error::io(input_dir, e))?;
    std::fs::create_dir_all(output_dir).map_err(|e| Error::io(output_dir, e))?;
    let output_dir = &output_dir.canonicalize().map_err(|e| Error::io(output_dir, e))?;
    // Either folder inside the other would let outputs land on inputs (`batch /a/raw -o /a` writes
    // /a/raw/x.mp4 for the input /a/raw/raw/x.mp4) or be picked up as inputs by the next run.
    if output_dir.starts_with(input_dir) || input_dir.starts_with(output_dir) {
        return Err(Error::Config(format!(
            "output folder {} and input folder {} must not be inside one another; choose a separate folder",
            output_dir.display(),
            input_dir.display()
        )));
    }
    let all = scan(input_dir)?;
    let plan = plan_outputs(output_dir, &all, settings.images_as_png, settings.review_sheets);
    let (entries, plan): (Vec<Entry>, Vec<_>) =
        all.into_iter().zip(plan).filter(|(e, _)| settings.shard.is_none_or(|s| s.owns(&e.rel))).unzip();
    let media = entries.iter().filter(|e| matches!(e.kind, EntryKind::Image | EntryKind::Video)).count();
    progress(Event::Start { files: entries.len(), media, shard: settings.shard });

    let jobs = settings.jobs.clamp(1, media.max(1));
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let threads = (cores / jobs).max(1);
    let queue = Mutex::new(entries.iter().enumerate());
    let results: Mutex<Vec<(usize, FileResult)>> = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let cancelled = || settings.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed));
    let done_count = std::sync::atomic::AtomicUsize::new(0);
    let worker_error: Mutex<Option<Error>> = Mutex::new(None);

    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                let mut detector: Option<Box<dyn Detector>> = None;
                loop {
                    if stop.load(Ordering::Relaxed) || cancelled() {
                        break;
                    }
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                    let Some((i, entry)) = next else { break };
                    if detector.is_none() && matches!(entry.kind, EntryKind::Image | EntryKind::Video) {
                        match make_detector(threads) {
                            Ok(d) => detector = Some(d),
                            Err(e) => {
                                stop.store(true, Ordering::Relaxed);
                                *worker_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                                break;
                            }
                        }
                    }
                    let result = process(input_dir, output_dir, entry, &plan[i], options, settings, detector.as_mut());
                    if result.status == Status::Failed && settings.fail_fast {
                        stop.store(true, Ordering::Relaxed);
                    }
                    let n = done_count.fetch_add(1, Ordering::Relaxed) + 1;
                    progress(Event::File { n, of: entries.len(), result: &result });
                    results.lock().unwrap_or_else(|p| p.into_inner()).push((i, result));
                }
            });
        }
    });
    if let Some(e) = worker_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let mut files = results.into_inner().unwrap_or_else(|p| p.into_inner());
    files.sort_by_key(|(i, _)| *i);
    let files: Vec<FileResult> = files.into_iter().map(|(_, r)| r).collect();
    let count = |st: Status| files.iter().filter(|f| f.status == st).count();
    Ok(Summary {
        tool_version: env!("CARGO_PKG_VERSION").into(),
        input_dir: input_dir.clone(),
        output_dir: output_dir.clone(),
        shard: settings.shard,
        done: count(Status::Done),
        up_to_date: count(Status::UpToDate),
        failed: count(Status::Failed),
        skipped: count(Status::Skipped),
        damaged: files.iter().filter(|f| f.input_damaged).count(),
        interrupted: cancelled(),
        seconds: started.elapsed().as_secs_f64(),
        files,
    })
}

fn process(
    input_dir: &Path,
    output_dir: &Path,
    entry: &Entry,
    planned: &Option<PlannedOutput>,
    options: &Options,
    settings: &BatchSettings,
    detector: Option<&mut Box<dyn Detector>>,
) -> FileResult {
    let started = Instant::now();
    let input = input_dir.join(&entry.rel);
    let mut r = FileResult {
        input: entry.rel.clone(),
        output: None,
        status: Status::Skipped,
        message: None,
        frames: 0,
        frames_with_faces: 0,
        detections: 0,
        input_damaged: false,
        redone: None,
        seconds: 0.0,
    };
    match &entry.kind {
        EntryKind::Other(why) => {
            r.message = Some(why.clone());
            return r;
        }
        EntryKind::Broken(why) => {
            r.status = Status::Failed;
            r.message = Some(format!("{}: {why}", input.display()));
            return r;
        }
        _ => {}
    }
    let Some(detector) = detector else {
        r.status = Status::Failed;
        r.message = Some("no detector".into());
        return r;
    };
    let (output, note) = match planned {
        Some(Ok((output, note))) => (output.clone(), note.clone()),
        Some(Err(why)) => {
            r.status = Status::Failed;
            r.message = Some(format!("{}: {why}", input.display()));
            return r;
        }
        None => {
            r.status = Status::Failed;
            r.message = Some("no output planned".into());
            return r;
        }
    };
    r.output = output.strip_prefix(output_dir).ok().map(Path::to_path_buf);
    r.message = note;
    detector.prepare_for(if matches!(entry.kind, EntryKind::Image) { MediaKind::Image } else { MediaKind::Video });
    let model = detector.model_sha256();
    // An output an earlier run left: up to date, or why it is made again.
    let earlier =
        output.exists().then(|| check_output(&input, &output, options, model.as_deref(), settings.allow_keep_regions));
    let redone = match earlier {
        Some(Ok(rep)) => {
            r.status = Status::UpToDate;
            (r.frames, r.frames_with_faces, r.detections) = (rep.frames, rep.frames_with_faces, rep.detections);
            r.input_damaged = rep.input_damaged();
            r.seconds = started.elapsed().as_secs_f64();
            return r;
        }
        Some(Err(why)) => Some(why),
        None => None,
    };
    let outcome = (|| -> Result<Report> {
        create_output_dirs(output_dir, &output)?;
        // A stale or partial output from an earlier run is replaced; its old report first, so a crash in
        // between never leaves a report vouching for the wrong file.
        let _ = std::fs::remove_file(report_path(&output));
        let extras = crate::Extras {
            overwrite: true,
            edits: edits_path(&input),
            allow_keep_regions: settings.allow_keep_regions,
            review_sheet: settings.review_sheets.then(|| review_sheet_path(&output)),
            progress: None,
            time_limit: settings.time_limit,
            cancel: settings.cancel.clone(),
        };
        let report = crate::redact_file_with(&input, &output, options, &mut **detector, &extras)?;
        write_json_atomic(&report_path(&output), &report)?;
        Ok(report)
    })();
    match outcome {
        Ok(rep) => {
            r.status = Status::Done;
            r.redone = redone;
            (r.frames, r.frames_with_faces, r.detections) = (rep.frames, rep.frames_with_faces, rep.detections);
            r.input_damaged = rep.input_damaged();
            if r.input_damaged {
                let damage = rep.warnings.join("; ");
                r.message = Some(match r.message.take() {
                    Some(note) => format!("{note}; {damage}"),
                    None => damage,
                });
            }
        }
        Err(e) => {
            r.status = match e {
                Error::Interrupted { .. } | Error::Cancelled => Status::Interrupted,
                _ => Status::Failed,
            };
            r.message = Some(format!("{e}"));
            r.output = None;
        }
    }
    r.seconds = started.elapsed().as_secs_f64();
    r
}

/// Creates the folders between `output_dir` and `output`, refusing any that is a symbolic link (or not a
/// folder): a link planted in the output tree must not carry outputs outside it.
fn create_output_dirs(output_dir: &Path, output: &Path) -> Result<()> {
    let rel = output.strip_prefix(output_dir).map_err(|_| Error::UnsupportedOutput {
        path: output.to_path_buf(),
        reason: "output path is outside the output folder".into(),
    })?;
    let mut dir = output_dir.to_path_buf();
    let parents: Vec<_> = rel.parent().map(|p| p.components().collect()).unwrap_or_default();
    for c in parents {
        match c {
            std::path::Component::Normal(name) => dir.push(name),
            _ => {
                return Err(Error::UnsupportedOutput {
                    path: output.to_path_buf(),
                    reason: "output path leaves the output folder".into(),
                })
            }
        }
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::UnsupportedOutput {
                    path: dir.clone(),
                    reason: "is a symbolic link or a file, not a folder; refusing to write through it".into(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&dir).or_else(|e| match e.kind() {
                    // Another shard made it meanwhile; checked again on the next component's way.
                    std::io::ErrorKind::AlreadyExists if dir.is_dir() => Ok(()),
                    _ => Err(Error::io(&dir, e)),
                })?;
            }
            Err(e) => return Err(Error::io(&dir, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_parsing_and_ranges() {
        assert_eq!(Shard::parse("1/4").unwrap(), Shard { index: 1, count: 4 });
        assert!(Shard::parse("4/4").is_err());
        assert!(Shard::parse("x/4").is_err());
        assert!(Shard::parse("0/0").is_err());
    }

    #[test]
    fn every_path_belongs_to_exactly_one_shard() {
        let paths: Vec<PathBuf> =
            (0..500).map(|i| PathBuf::from(format!("cam{}/day{}/clip{i}.mp4", i % 7, i % 31))).collect();
        let shards: Vec<Shard> = (0..5).map(|k| Shard::new(k, 5).unwrap()).collect();
        let mut sizes = [0usize; 5];
        for p in &paths {
            let owners: Vec<usize> = (0..5).filter(|&k| shards[k].owns(p)).collect();
            assert_eq!(owners.len(), 1, "{p:?}");
            sizes[owners[0]] += 1;
        }
        assert!(sizes.iter().all(|&n| n > 60), "unbalanced: {sizes:?}");
    }

    #[test]
    fn shard_from_kubernetes_and_slurm_environments() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert_eq!(Shard::from_env(env(&[])).unwrap(), None);
        assert_eq!(
            Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "2"), ("FACEVEIL_SHARD_COUNT", "8")])).unwrap(),
            Some(Shard { index: 2, count: 8 })
        );
        assert!(Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "2")])).is_err());
        assert_eq!(
            Shard::from_env(env(&[
                ("SLURM_ARRAY_TASK_ID", "5"),
                ("SLURM_ARRAY_TASK_MIN", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "10")
            ]))
            .unwrap(),
            Some(Shard { index: 4, count: 10 })
        );
        // One task resubmitted alone (sbatch --array=2) keeps its shard of the run's three.
        assert_eq!(
            Shard::from_env(env(&[
                ("SLURM_ARRAY_TASK_ID", "2"),
                ("SLURM_ARRAY_TASK_MIN", "2"),
                ("SLURM_ARRAY_TASK_COUNT", "1"),
                ("FACEVEIL_SHARD_COUNT", "3")
            ]))
            .unwrap(),
            Some(Shard { index: 2, count: 3 })
        );
    }

    #[test]
    fn inputs_never_share_an_output_issue_33() {
        let entry = |rel: &str, kind: EntryKind| Entry { rel: PathBuf::from(rel), kind };
        let entries = vec![
            entry("a/p.png", EntryKind::Image),
            entry("a/p.PNG", EntryKind::Image),
            entry("clip.webm", EntryKind::Video),
            entry("clip.flv", EntryKind::Video),
            entry("clip.mp4", EntryKind::Video),
            entry("notes.txt", EntryKind::Other("text".into())),
            // Renamed, and still meeting an input of that very name: both fail, each naming the other.
            entry("x.avi", EntryKind::Video),
            entry("x.AVI", EntryKind::Video),
            entry("x.AVI.avi", EntryKind::Video),
        ];
        let plan = plan_outputs(Path::new("/out"), &entries, false, false);
        let out = |i: usize| plan[i].clone().unwrap().map(|(p, _)| p);
        assert_eq!(out(0).unwrap(), Path::new("/out/a/p.png.png"));
        assert_eq!(out(1).unwrap(), Path::new("/out/a/p.PNG.png"));
        assert_eq!(out(2).unwrap(), Path::new("/out/clip.webm.mkv"));
        assert_eq!(out(3).unwrap(), Path::new("/out/clip.flv.mkv"));
        assert_eq!(out(4).unwrap(), Path::new("/out/clip.mp4"), "only inputs that meet are renamed");
        assert!(plan[5].is_none());
        let note = plan[2].clone().unwrap().unwrap().1.unwrap();
        assert!(note.contains("clip.flv would also be written as clip.mkv"), "{note}");
        assert_eq!(out(6).unwrap(), Path::new("/out/x.avi.avi"));
        let why = out(7).unwrap_err();
        assert!(why.contains("x.AVI.avi") && why.contains("distinct names"), "{why}");
        assert!(out(8).unwrap_err().contains("x.AVI"));
        // Review sheets are outputs too: an image named like another output's sheet meets it.
        let entries = vec![entry("v.mp4", EntryKind::Video), entry("v.mp4.review.png", EntryKind::Image)];
        assert_eq!(plan_outputs(Path::new("/o"), &entries, false, false)[1].clone().unwrap().unwrap().1, None);
        let plan = plan_outputs(Path::new("/o"), &entries, false, true);
        assert_eq!(plan[0].clone().unwrap().unwrap().0, Path::new("/o/v.mp4.mp4"));
    }

    #[test]
    fn tiff_and_bmp_files_are_pictures() {
        // FFmpeg reads both as one-frame videos: a folder of scans became `.mkv` files.
        let dir = tempfile::tempdir().unwrap();
        let img = image::RgbImage::from_pixel(16, 16, image::Rgb([90, 120, 150]));
        for (name, format) in [("scan.tif", image::ImageFormat::Tiff), ("a.bmp", image::ImageFormat::Bmp)] {
            let path = dir.path().join(name);
            img.save_with_format(&path, format).unwrap();
            assert!(matches!(classify(&path), EntryKind::Image), "{name}");
        }
    }

    #[test]
    fn outputs_mirror_inputs_with_writable_extensions() {
        let out = Path::new("/out");
        assert_eq!(output_path(out, Path::new("a/b/c.MP4"), &EntryKind::Video, false), Path::new("/out/a/b/c.mp4"));
        assert_eq!(output_path(out, Path::new("a/c.webm"), &EntryKind::Video, false), Path::new("/out/a/c.mkv"));
        assert_eq!(output_path(out, Path::new("x.jpeg"), &EntryKind::Image, false), Path::new("/out/x.jpeg"));
        assert_eq!(output_path(out, Path::new("x.jpeg"), &EntryKind::Image, true), Path::new("/out/x.png"));
        assert_eq!(output_path(out, Path::new("scan.TIF"), &EntryKind::Image, false), Path::new("/out/scan.tif"));
        assert_eq!(output_path(out, Path::new("a.bmp"), &EntryKind::Image, false), Path::new("/out/a.bmp"));
        assert_eq!(output_path(out, Path::new("anim.gif"), &EntryKind::Video, false), Path::new("/out/anim.mkv"));
        assert_eq!(report_path(Path::new("/out/x.jpeg")), Path::new("/out/x.jpeg.faceveil.json"));
    }
}
