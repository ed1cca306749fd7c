//! Live output in fixed-length segment files, each written to a hidden temporary name and renamed when it is
//! complete, so a recorder that stores only what appears under the segment names never stores a partial file.

use super::output::{write_copied, Layout, OutputStreams, Sink};
use crate::{Error, Result};
use ff::{format, Packet, Rational, Rescale};
use ffmpeg_next as ff;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// Hidden temporary name beside `path`, renamed to `path` when the segment is complete.
pub(crate) fn temp_name(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = path.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.partial.{ext}"))
}

/// Segment file names from a pattern with `{n}` and strftime fields.
#[derive(Debug)]
pub struct SegmentNamer {
    pattern: String,
    seconds: u32,
}

impl SegmentNamer {
    /// Checks the pattern: it must name a container, tell segments apart (`{n}` or a seconds field) and hold
    /// only valid strftime fields.
    pub fn new(pattern: &str, seconds: u32) -> Result<Self> {
        let bad = |why: &str| Error::Config(format!("output pattern {pattern:?}: {why}"));
        if seconds == 0 || seconds > 86_400 {
            return Err(Error::Config(format!("invalid segment length {seconds} s (expected >= 1, <= 86400)")));
        }
        let ext = Path::new(pattern).extension().and_then(|e| e.to_str()).unwrap_or("");
        if !["mp4", "mkv", "ts", "mov"].contains(&ext.to_ascii_lowercase().as_str()) {
            return Err(bad("must end in .mp4, .mkv, .ts or .mov"));
        }
        if !["{n}", "%S", "%s", "%T"].iter().any(|field| pattern.contains(field)) {
            return Err(bad("must tell segments apart with {n} (segment number) or a seconds field such as %S"));
        }
        let items = chrono::format::StrftimeItems::new(pattern);
        if items.into_iter().any(|i| matches!(i, chrono::format::Item::Error)) {
            return Err(bad("holds an invalid % field"));
        }
        Ok(Self { pattern: pattern.to_string(), seconds })
    }

    /// The name of segment `n` starting now. An existing file is never replaced.
    pub fn name(&self, n: u32) -> Result<PathBuf> {
        let with_n = self.pattern.replace("{n}", &format!("{n:05}"));
        let name = PathBuf::from(chrono::Utc::now().format(&with_n).to_string());
        if name.exists() {
            return Err(Error::OutputExists { path: name });
        }
        if let Some(dir) = name.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(Error::io(dir, std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder")));
            }
        }
        Ok(name)
    }
}

/// One segment being written.
struct Segment {
    octx: format::context::Output,
    streams: OutputStreams,
    tmp: PathBuf,
    path: PathBuf,
    /// Encoder timestamp at which the segment starts (its timestamps are written from zero).
    start: Option<i64>,
    /// A segment without video is not kept.
    has_video: bool,
}

/// Copied packets wait for the video at most this far ahead of it (media time): audio whose timestamps run
/// further ahead (a source whose streams are out of step) is written into the segment being recorded rather
/// than held without bound.
pub(crate) const MAX_COPY_AHEAD_SECONDS: i64 = 30;
/// ... and at most this many bytes of them wait at once.
pub(crate) const MAX_COPY_WAITING_BYTES: usize = 16 << 20;

/// Writes segment after segment; a new one starts at the first keyframe at or after each boundary (the mux
/// stage forces one there). A timestamp jump over a whole segment or more (a camera's clock reset, broken
/// timestamps) starts the next segment at once, counted from there, and is reported. Copied packets (audio)
/// run ahead of the video by the pipeline's depth, so they wait here until the video has passed their time
/// and go into the segment their time belongs to; within bounds ([`MAX_COPY_AHEAD_SECONDS`],
/// [`MAX_COPY_WAITING_BYTES`]), past which they are written at once (reported).
pub(crate) struct SegmentSink<'a> {
    current: Option<Segment>,
    namer: SegmentNamer,
    layout: Layout,
    index: u32,
    next_cut: Option<i64>,
    cut_at: Option<i64>,
    waiting: VecDeque<(i64, Packet)>,
    waiting_bytes: usize,
    /// The newest video time written (encoder time base).
    video_at: Option<i64>,
    /// The last frame's time, and the timestamp jumps that started a segment: (from, to), encoder time base.
    last_frame: Option<i64>,
    jumps: Vec<(i64, i64)>,
    /// Copied packets written ahead of their segment because they ran too far ahead of the video.
    early_copies: u64,
    done: &'a mut Vec<PathBuf>,
    on_segment: &'a (dyn Fn(&Path) + Sync),
}

impl<'a> SegmentSink<'a> {
    pub(crate) fn start(
        mut octx: format::context::Output,
        tmp: PathBuf,
        path: PathBuf,
        namer: SegmentNamer,
        layout: Layout,
        done: &'a mut Vec<PathBuf>,
        on_segment: &'a (dyn Fn(&Path) + Sync),
    ) -> Result<Self> {
        let streams = layout.start_output(&mut octx, &path)?;
        let current = Some(Segment { octx, streams, tmp, path, start: None, has_video: false });
        Ok(Self {
            current,
            namer,
            layout,
            index: 0,
            next_cut: None,
            cut_at: None,
            waiting: VecDeque::new(),
            waiting_bytes: 0,
            video_at: None,
            last_frame: None,
            jumps: Vec::new(),
            early_copies: 0,
            done,
            on_segment,
        })
    }

    fn length(&self) -> i64 {
        i64::from(self.namer.seconds).rescale(Rational(1, 1), self.layout.enc_tb)
    }

    /// Writes the waiting copied packets whose time (encoder time base) is before `until`.
    fn release_copies(&mut self, until: i64) -> Result<()> {
        let Some(seg) = self.current.as_mut() else { return Ok(()) };
        let offset = seg.start.unwrap_or(0).rescale(self.layout.enc_tb, seg.streams.video_tb);
        while self.waiting.front().is_some_and(|(t, _)| *t < until) {
            if let Some((_, pkt)) = self.waiting.pop_front() {
                self.waiting_bytes = self.waiting_bytes.saturating_sub(pkt.size());
                write_copied(&mut seg.octx, &seg.streams, pkt, offset, &seg.path)?;
            }
        }
        Ok(())
    }

    /// Writes the oldest waiting copied packets while too many wait, or they run too far ahead of the video.
    fn bound_copies(&mut self) -> Result<()> {
        let ahead = MAX_COPY_AHEAD_SECONDS.rescale(Rational(1, 1), self.layout.enc_tb);
        let video = self.video_at.unwrap_or(i64::MIN);
        loop {
            let Some((t, _)) = self.waiting.front() else { return Ok(()) };
            let too_far = self.video_at.is_some() && t.saturating_sub(video) > ahead;
            if !(too_far || self.waiting_bytes > MAX_COPY_WAITING_BYTES) {
                return Ok(());
            }
            let until = t.saturating_add(1);
            let before = self.waiting.len();
            self.release_copies(until)?;
            self.early_copies += (before - self.waiting.len()) as u64;
            if self.current.is_none() || self.waiting.len() == before {
                return Ok(());
            }
        }
    }

    fn close_current(&mut self) -> Result<()> {
        if let Some(mut seg) = self.current.take() {
            if !seg.has_video {
                drop(seg.octx);
                return std::fs::remove_file(&seg.tmp).map_err(|e| Error::io(&seg.tmp, e));
            }
            let werr = |reason: String| Error::Encode { path: seg.path.clone(), reason };
            seg.octx.write_trailer().map_err(|e| werr(format!("cannot finish segment: {e}")))?;
            drop(seg.octx);
            crate::io::seal(&seg.tmp)?;
            std::fs::rename(&seg.tmp, &seg.path).map_err(|e| Error::io(&seg.path, e))?;
            (self.on_segment)(&seg.path);
            self.done.push(seg.path);
        }
        Ok(())
    }

    fn open_next(&mut self, start: i64) -> Result<()> {
        self.index += 1;
        let path = self.namer.name(self.index)?;
        let tmp = temp_name(&path);
        let mut octx = format::output(&tmp)
            .map_err(|e| Error::Encode { path: path.clone(), reason: format!("cannot create segment: {e}") })?;
        let streams = self.layout.start_output(&mut octx, &path)?;
        self.current = Some(Segment { octx, streams, tmp, path, start: Some(start), has_video: false });
        Ok(())
    }
}

impl Sink for SegmentSink<'_> {
    fn wants_keyframe(&mut self, pts: i64) -> bool {
        let length = self.length().max(1);
        let previous = self.last_frame.replace(pts);
        match self.next_cut {
            None => {
                self.next_cut = Some(pts + length);
                if let Some(seg) = self.current.as_mut() {
                    seg.start = Some(pts);
                }
                true
            }
            Some(cut) if pts >= cut => {
                // The next boundary one length after this one; after a jump over a whole segment or more, one
                // length after this frame (never a loop over the skipped time, which can be any length).
                let next = if pts.saturating_sub(cut) >= length {
                    self.jumps.push((previous.unwrap_or(cut), pts));
                    pts.saturating_add(length)
                } else {
                    cut.saturating_add(length)
                };
                self.next_cut = Some(next);
                self.cut_at = Some(pts);
                true
            }
            Some(_) => false,
        }
    }

    fn write_video(&mut self, mut pkt: Packet) -> Result<()> {
        let pts = pkt.pts().unwrap_or(0);
        if let Some(cut) = self.cut_at.filter(|&c| pkt.is_key() && pts >= c) {
            self.release_copies(cut)?;
            self.close_current()?;
            self.open_next(cut)?;
            self.cut_at = None;
        }
        self.release_copies(pts)?;
        self.video_at = Some(self.video_at.map_or(pts, |v| v.max(pts)));
        self.bound_copies()?;
        let Some(seg) = self.current.as_mut() else { return Ok(()) };
        let start = *seg.start.get_or_insert(pts);
        seg.has_video = true;
        pkt.set_pts(Some(pts - start));
        pkt.set_dts(pkt.dts().map(|d| d - start));
        pkt.set_stream(seg.streams.video);
        pkt.rescale_ts(self.layout.enc_tb, seg.streams.video_tb);
        pkt.write_interleaved(&mut seg.octx)
            .map_err(|e| Error::Encode { path: seg.path.clone(), reason: format!("cannot write video packet: {e}") })
    }

    fn write_copy(&mut self, pkt: Packet) -> Result<()> {
        let itb = self.layout.copies.iter().find(|c| c.input == pkt.stream()).map(|c| c.time_base);
        let Some(itb) = itb else { return Ok(()) };
        let Some(t) = pkt.pts().or(pkt.dts()) else { return Ok(()) };
        self.waiting_bytes += pkt.size();
        self.waiting.push_back((t.rescale(itb, self.layout.enc_tb), pkt));
        self.bound_copies()
    }

    fn take_warnings(&mut self) -> Vec<String> {
        let tb = self.layout.enc_tb;
        let seconds = |t: i64| t.rescale(tb, Rational(1, 1000)) as f64 / 1000.0;
        let mut out: Vec<String> = self
            .jumps
            .drain(..)
            .map(|(from, to)| {
                format!(
                    "the video's timestamps jumped by {:.3} s (from {:.3} s to {:.3} s): a new segment was started there",
                    seconds(to.saturating_sub(from)),
                    seconds(from),
                    seconds(to)
                )
            })
            .collect();
        if self.early_copies > 0 {
            out.push(format!(
                "{} audio/subtitle packet(s) ran more than {MAX_COPY_AHEAD_SECONDS} s ahead of the video and were written \
                 into the segment being recorded instead of the one their time belongs to",
                self.early_copies
            ));
        }
        out
    }

    fn finish(&mut self) -> Result<()> {
        self.release_copies(i64::MAX)?;
        self.close_current()
    }
}

impl Drop for SegmentSink<'_> {
    /// A run that failed leaves no temporary segment behind (the finished ones stay).
    fn drop(&mut self) {
        if let Some(seg) = self.current.take() {
            drop(seg.octx);
            let _ = std::fs::remove_file(&seg.tmp);
        }
    }
}
