//! Which detection passes run on which video frame.
//!
//! A frame is searched by a whole-frame pass and, for small faces, by overlapping magnified tiles (see
//! [`faces_multiscale`](super::faces_multiscale)). On video, [`Analyser`] cuts that cost in three ways,
//! none of which leaves a frame without a box for a face the full search would find:
//! - **Tiles are spread** over `period` frames (each tile every `period`-th frame); the tracker's look-ahead
//!   interpolates the frames in between, so the period must not exceed the bridging window.
//! - **The whole-frame pass runs at a quarter of the tile scale** (half resolution at the default 2×): faces
//!   too small for it are the tiles' job ([`whole_input_size_with_tiles`]).
//! - **The whole-frame pass is full every [`WHOLE_PERIOD`] frames** (at 25 fps; as far apart in time at other
//!   rates, [`Analyser::at_rate_factor`]) ([`Pass::Whole`]; a picture that changes
//!   after a quiet spell is searched in full at once) and repeated on the frames between
//!   ([`Pass::WholeRepeat`]), which a detector with two models may search with the cheaper
//!   one ([`Pair`](super::Pair): YuNet in daylight). A face only the full pass sees is found at least every
//!   `WHOLE_PERIOD` frames (never further apart than the tiles' period, which the bridging window holds) and
//!   bridged between; a repeat's result is not reused on a frame due for a full pass.
//! - **Unchanged regions keep their result.** Each pass remembers the brightness of its region, in 8×8-pixel
//!   block means, as it was when it last ran. While no block has changed by more than [`CHANGE_LEVELS`], the
//!   pixels are the ones already searched, and the pass's detections are reused on every frame (not only on
//!   its turn), instead of being searched again. A face that walks in, turns or moves changes its blocks by
//!   far more than camera noise and is searched on the region's next turn. Every region is searched again at
//!   least every [`MAX_REUSE`] frames whatever happens.
//! - **Known small faces are searched on every frame** by focus passes: a face a tile found (and the
//!   whole-frame pass does not see) is looked for again on the next frame in a small magnified crop around
//!   where it was ([`FOCUS_REACH`]), so between its tile's turns it is detected, not only interpolated. A
//!   crop costs a few percent of a tile; crops of neighbouring faces are joined. New faces still wait for
//!   their tile's turn (at most `period` frames) and are back-filled by the tracker.
//!
//! - **What no pass reached is reported**, tile by tile ([`Unsearched`]: the blocks changed since the tile's
//!   last search, and the faces it found), for the caller to cover if no later turn reaches it in time: at the
//!   end of a stream, and on every frame of a live run that searches less ([`Plan`]: tiles less often, no focus
//!   passes).
//!
//! Static cameras (CCTV, council chambers) mostly show unchanged regions; a moving camera changes every
//! region and pays the full spread search.

use super::multiscale::{confirm_small, input_pixels, tile_pass, whole_input_size_with_tiles, whole_pass_as};
use super::multiscale::{tiny_face_tiles, TINY_FACE_HEIGHT, TINY_FACE_SCALE};
use super::{merge, tiles, video_tiles, DetectSettings, Detection, Detector, Pass, Tile, TURNS};
use crate::geom::BBox;
use crate::Result;
use image::RgbImage;

/// Side of the blocks whose mean brightness decides whether a region changed, in frame pixels.
pub const BLOCK: u32 = 8;
/// Largest change of a block's mean brightness (0–255) still counted as the same picture. Encoded camera
/// noise moves 8×8 block means by about 0.3–1.5 levels (median, on the evaluation videos); a face entering a
/// block moves it by tens.
pub const CHANGE_LEVELS: u8 = 8;
/// The limit in the darkest blocks. In a dark picture a face moves block means by fewer levels (a dark face
/// over a dark background), so the limit follows the blocks' brightness: an eighth of the brighter of the two
/// means, between this and [`CHANGE_LEVELS`] (full at 64 and above).
pub const DARK_CHANGE_LEVELS: u8 = 3;

/// Largest change between two means of one block still counted as the same picture.
fn change_limit(a: u8, b: u8) -> u8 {
    (a.max(b) / 8).clamp(DARK_CHANGE_LEVELS, CHANGE_LEVELS)
}
/// A pass is searched again at least every this many frames, even over an unchanged region.
pub const MAX_REUSE: u32 = 50;
/// Where there are tiles, the whole-frame pass is a full [`Pass::Whole`] once this many frames have passed
/// since the last one (never more than the tiles' period, which the bridging window holds) and a
/// [`Pass::WholeRepeat`] on the frames between: a face only the full pass sees is found at least this often
/// and bridged in between. At a rate above the base one the period is as long in time
/// ([`Analyser::at_rate_factor`]: every sixth frame at 50 fps).
pub const WHOLE_PERIOD: u32 = 3;
/// A focus pass reaches this many times a known face's larger side beyond its centre on every side (and at
/// least [`FOCUS_MIN_REACH`] pixels): the face stays whole inside while it moves up to about 1.5 times its
/// own size between frames.
pub const FOCUS_REACH: f32 = 2.0;
/// Least reach of a focus pass beyond a face's centre, in frame pixels (hand-held shake moves a distant face
/// by up to ~15 px per frame at 25 fps).
pub const FOCUS_MIN_REACH: f32 = 32.0;
/// A known face the whole-frame pass found again (its box overlapping by more than this) needs no focus pass.
const FOCUS_SAME_FACE_IOU: f32 = 0.3;
/// A known small face covered on a frame without small-face search is covered this much larger than its box.
const KNOWN_COVER_SCALE: f32 = 1.5;
/// A box found in a turned picture ([`DetectSettings::turned`]) is kept from this score up. Both models find
/// things in a turned picture that are no face upright (folded arms, a heart balloon): on the dev stills, the
/// turned search kept at 0.5 doubled the unexplained over-redaction of upright pictures, at 0.7 it added a
/// fifth (docs/performance.md, 2026-12-07 thirty-first stop).
pub const TURNED_MIN_SCORE: f32 = 0.7;

/// How much of the schedule a frame gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Tiles are searched this many times less often than the schedule's period.
    pub tile_stretch: u32,
    /// Known small faces are searched again in focus passes.
    pub focus: bool,
    /// The whole-frame pass runs (an unchanged frame still reuses its result).
    pub whole: bool,
}

impl Plan {
    /// The whole schedule.
    pub const FULL: Plan = Plan { tile_stretch: 1, focus: true, whole: true };
}

/// Part of a frame that no small-face pass searched, and what in it may hold a small face: the blocks that
/// changed since its tile was last searched (each grown by a block on every side), the faces found then, or
/// the whole tile if it was never searched. Whoever releases the frame covers these boxes unless, at full
/// effort, the tile is searched again within the tracker's look-ahead (which then bridges back from what it
/// finds); see [`Core`](crate::analyse::Core).
#[derive(Debug, Clone, PartialEq)]
pub struct Unsearched {
    /// The tile (as counted by [`Analyser::tile_count`]), or `None` for faces known from earlier frames that
    /// no later search of one tile vouches for.
    pub tile: Option<usize>,
    /// In frame pixels.
    pub boxes: Vec<BBox>,
}

/// What the passes did over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnalyserStats {
    /// Passes run by the detector.
    pub passes_run: u64,
    /// Passes whose region had not changed, answered from their last run.
    pub passes_reused: u64,
    /// Focus passes run (included in `passes_run`): small crops around faces the tiles found, on frames
    /// their tiles are not searched.
    pub passes_focus: u64,
    /// Detector input pixels of the passes run (each side padded to the detector's 32-pixel grid), by pass:
    /// the whole-frame pass, tiles (on their turn and at the end of a stream), focus passes. Inference time
    /// is about proportional to them: they say where a clip's detection time goes.
    pub pixels: PassPixels,
}

/// Detector input pixels searched, by kind of pass (see [`AnalyserStats::pixels`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PassPixels {
    pub whole: u64,
    pub tiles: u64,
    pub focus: u64,
}

impl PassPixels {
    /// The counts of two runs together.
    pub fn sum(self, other: Self) -> Self {
        Self { whole: self.whole + other.whole, tiles: self.tiles + other.tiles, focus: self.focus + other.focus }
    }
}

#[derive(Debug)]
struct Cached {
    /// Block means of the region when the pass last ran.
    blocks: Vec<u8>,
    found: Vec<Detection>,
    reused: u32,
    /// Found by a full pass (not a [`Pass::WholeRepeat`]): reusable on a frame due for a full pass.
    full: bool,
}

#[derive(Debug)]
struct Region {
    /// `None` for the whole-frame pass.
    tile: Option<Tile>,
    /// Block rectangle: columns `bx0..bx1`, rows `by0..by1`.
    bx0: usize,
    bx1: usize,
    by0: usize,
    by1: usize,
    last: Option<Cached>,
}

impl Region {
    fn new(tile: Option<Tile>, w: u32, h: u32) -> Self {
        let (x, y, rw, rh) = tile.map(|t| (t.x, t.y, t.w, t.h)).unwrap_or((0, 0, w, h));
        Self {
            tile,
            bx0: (x / BLOCK) as usize,
            bx1: (x + rw).div_ceil(BLOCK) as usize,
            by0: (y / BLOCK) as usize,
            by1: (y + rh).div_ceil(BLOCK) as usize,
            last: None,
        }
    }

    fn blocks<'a>(&self, grid: &'a BlockGrid) -> impl Iterator<Item = u8> + 'a {
        let (bx0, bx1) = (self.bx0, self.bx1);
        (self.by0..self.by1).flat_map(move |r| grid.means[r * grid.cols + bx0..r * grid.cols + bx1].iter().copied())
    }

    /// What in the region may hold a small face its last search did not see: every run of blocks on a row
    /// changed since then (grown by one block each way, clamped to the `w × h` frame) and the faces it found;
    /// the whole region if it was never searched.
    fn unsearched(&self, grid: &BlockGrid, size: (u32, u32)) -> Vec<BBox> {
        let Some(last) = &self.last else {
            return vec![self.rect(size.0, size.1)];
        };
        let mut out: Vec<BBox> = last.found.iter().map(|d| d.bbox).collect();
        out.extend(changed_runs(&last.blocks, grid, (self.bx0, self.bx1, self.by0, self.by1), size));
        out.retain(BBox::is_valid);
        out
    }

    /// The region in frame pixels.
    fn rect(&self, w: u32, h: u32) -> BBox {
        match self.tile {
            Some(t) => BBox::new(t.x as f32, t.y as f32, (t.x + t.w) as f32, (t.y + t.h) as f32),
            None => BBox::new(0.0, 0.0, w as f32, h as f32),
        }
    }

    /// The cached result, if the region's pixels are still the ones it was found in.
    fn unchanged(&mut self, grid: &BlockGrid) -> Option<&mut Cached> {
        let blocks = self.blocks(grid);
        let same = self.last.as_ref()?.blocks.iter().zip(blocks).all(|(&a, b)| a.abs_diff(b) <= change_limit(a, b));
        if same {
            self.last.as_mut()
        } else {
            None
        }
    }
}

/// Every run of blocks on a row of the block rectangle `(bx0, bx1, by0, by1)` whose mean changed from `then`
/// (that rectangle's means, row by row) to `grid`'s, as boxes grown by one block each way, clamped to the
/// `w × h` frame.
fn changed_runs(
    then: &[u8],
    grid: &BlockGrid,
    (bx0, bx1, by0, _): (usize, usize, usize, usize),
    (w, h): (u32, u32),
) -> Vec<BBox> {
    let cols = bx1 - bx0;
    let b = BLOCK as f32;
    let mut out = Vec::new();
    for (r, then) in then.chunks_exact(cols.max(1)).enumerate() {
        let now = &grid.means[(by0 + r) * grid.cols + bx0..][..cols];
        let changed = |c: usize| then[c].abs_diff(now[c]) > change_limit(then[c], now[c]);
        let y = (by0 + r) as f32 * b;
        for (c0, c1) in crate::geom::runs(cols, changed) {
            let (x0, x1) = ((bx0 + c0) as f32 * b, (bx0 + c1) as f32 * b);
            out.push(BBox::new(x0 - b, y - b, x1 + b, y + 2.0 * b).clamped(w, h));
        }
    }
    out
}

/// Mean brightness of each `BLOCK × BLOCK` block of a picture (edge blocks average what they hold).
#[derive(Debug, Default)]
struct BlockGrid {
    cols: usize,
    means: Vec<u8>,
    sums: Vec<u32>,
}

impl BlockGrid {
    fn fill(&mut self, img: &RgbImage) {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let b = BLOCK as usize;
        let (cols, rows) = (w.div_ceil(b), h.div_ceil(b));
        self.cols = cols;
        self.means.clear();
        if cols == 0 || rows == 0 {
            return; // an empty picture has no blocks
        }
        self.means.reserve(cols * rows);
        for (br, band) in img.as_raw().chunks(w * 3 * b).enumerate() {
            self.sums.clear();
            self.sums.resize(cols, 0);
            for row in band.chunks_exact(w * 3) {
                for (sum, block) in self.sums.iter_mut().zip(row.chunks(3 * b)) {
                    // BT.601 luma, integer weights summing to 256.
                    let luma =
                        |px: &[u8]| (77 * u32::from(px[0]) + 150 * u32::from(px[1]) + 29 * u32::from(px[2])) >> 8;
                    *sum += block.chunks_exact(3).map(luma).sum::<u32>();
                }
            }
            let bh = (h - br * b).min(b);
            for (c, &s) in self.sums.iter().enumerate() {
                let bw = (w - c * b).min(b);
                self.means.push((s / (bw * bh) as u32) as u8);
            }
        }
    }
}

/// Detection on consecutive frames of one video (fixed picture size), with the schedule described in the
/// module docs. Frames must be upright RGB at full resolution.
#[derive(Debug)]
pub struct Analyser {
    settings: DetectSettings,
    period: u64,
    /// Frames from one full whole-frame pass to the next ([`WHOLE_PERIOD`] times the rate's factor, or 1).
    whole_period: u64,
    /// The last frame a full whole-frame pass ran on.
    whole_full_at: Option<u64>,
    size: (u32, u32),
    whole_input: (u32, u32),
    regions: Vec<Region>,
    grid: BlockGrid,
    /// The previous frame's block means (empty before the second frame).
    previous: Vec<u8>,
    frame: u64,
    stats: AnalyserStats,
    /// Faces the magnified passes (tiles, focus) found in the previous frame, in frame pixels.
    known: Vec<BBox>,
    /// Of the last frame: the tiles searched on it, and what no small-face pass searched.
    searched: Vec<usize>,
    unsearched: Vec<Unsearched>,
    /// A still picture ([`exhaustive`](Self::exhaustive)): every tile is searched with the whole frame, so weak
    /// small whole-frame boxes need a tile's confirmation (`confirm_small`), and a dark one's tiny faces are
    /// searched again ([`tiny_face_tiles`]).
    still: bool,
    /// A video's turned whole-frame passes ([`DetectSettings::turned`]): the frame the last ones ran on, how
    /// many frames got them (each searches the next turn in rotation), and which turns found a face when they
    /// last ran (searched on every such frame until they find none).
    turned_at: Option<u64>,
    turns_run: usize,
    turned_found: [bool; 3],
}

impl Analyser {
    /// An analyser for `w × h` frames, spreading the tiles over `period` frames (1: all tiles every frame).
    pub fn new(settings: DetectSettings, period: u32, w: u32, h: u32) -> Self {
        Self::with_tiles(video_tiles(w, h, &settings), settings, period, w, h)
    }

    fn with_tiles(tiles: Vec<Tile>, settings: DetectSettings, period: u32, w: u32, h: u32) -> Self {
        let whole_input =
            if tiles.is_empty() { settings.input_size(w, h) } else { whole_input_size_with_tiles(w, h, &settings) };
        // Without tiles the whole-frame pass is the only search: full on every frame.
        let whole_period = if tiles.is_empty() { 1 } else { WHOLE_PERIOD.min(period.max(1)) };
        let mut regions = vec![Region::new(None, w, h)];
        regions.extend(tiles.into_iter().map(|t| Region::new(Some(t), w, h)));
        Self {
            settings,
            period: period.max(1) as u64,
            whole_period: whole_period as u64,
            whole_full_at: None,
            size: (w, h),
            whole_input,
            regions,
            grid: BlockGrid::default(),
            previous: Vec::new(),
            frame: 0,
            stats: AnalyserStats::default(),
            known: Vec::new(),
            searched: Vec::new(),
            unsearched: Vec::new(),
            still: false,
            turned_at: None,
            turns_run: 0,
            turned_found: [false; 3],
        }
    }

    /// The analyser for a stream `rate_factor` times the base rate ([`FrameRate::factor`](crate::config::FrameRate::factor)):
    /// its full whole-frame pass the same time apart as at the base rate, every [`WHOLE_PERIOD`] × `rate_factor`
    /// frames (every sixth at 50 fps), never further apart than the tiles' period (which the bridging window
    /// holds). Without tiles the pass stays full on every frame.
    pub fn at_rate_factor(mut self, rate_factor: u32) -> Self {
        if self.whole_period > 1 {
            self.whole_period = (u64::from(WHOLE_PERIOD) * u64::from(rate_factor.max(1))).min(self.period);
        }
        self
    }

    /// Frames from one full whole-frame pass to the next (1: every frame).
    pub fn whole_period(&self) -> u64 {
        self.whole_period
    }

    /// An analyser for one still `w × h` picture: every pass on its first frame (no tile spreading), the
    /// whole frame at the full detector size, the weak small whole-frame boxes no tile confirmed dropped
    /// (`confirm_small`), and, in a dark picture, the tiny faces searched at [`TINY_FACE_SCALE`]
    /// ([`tiny_face_tiles`]). Its first answer is the regions a still is redacted over, by the CLI's photo
    /// path and by the library's [`Redactor`](crate::Redactor) alike.
    pub fn exhaustive(settings: DetectSettings, w: u32, h: u32) -> Self {
        let whole_input = settings.input_size(w, h);
        Self { whole_input, still: true, ..Self::with_tiles(tiles(w, h, &settings), settings, 1, w, h) }
    }

    pub fn stats(&self) -> AnalyserStats {
        self.stats
    }

    /// Number of tiles per frame (0 when the frame needs none).
    pub fn tile_count(&self) -> usize {
        self.regions.len() - 1
    }

    /// Detector input size of the whole-frame pass.
    pub fn whole_input_size(&self) -> (u32, u32) {
        self.whole_input
    }

    /// Faces in the next frame, in frame pixels. An error from the detector is returned as is (the caller
    /// fails closed); the frame still counts for the tile schedule, and the pass that failed caches nothing
    /// (passes that ran before it on this frame keep their results: they are valid for these pixels).
    pub fn analyse<D: Detector + ?Sized>(&mut self, detector: &mut D, frame: &RgbImage) -> Result<Vec<Detection>> {
        self.analyse_with(detector, frame, Plan::FULL)
    }

    /// [`analyse`](Self::analyse) with less search (a live run behind real time): the passes `plan` leaves
    /// out are reported in [`searched`](Self::searched) for their regions to be covered.
    pub fn analyse_with<D: Detector + ?Sized>(
        &mut self,
        detector: &mut D,
        frame: &RgbImage,
        plan: Plan,
    ) -> Result<Vec<Detection>> {
        self.look(frame)?;
        let index = self.frame;
        self.frame += 1;
        let period = self.period * u64::from(plan.tile_stretch.max(1));
        let phase = index % period;
        // A full pass is due once `whole_period` frames have passed since one last ran (whatever a live run
        // left out in between, and however long an unchanged picture reused its answer: the next whole-frame
        // search is then a full one).
        let whole_full = self.whole_full_at.is_none_or(|f| index - f >= self.whole_period);
        // The whole-frame pass's faces (put first in `all` once the tiles ran), and the tiles'.
        let mut whole_found = Vec::new();
        let mut all = Vec::new();
        // Tiles whose answer holds for this frame (searched now, or unchanged since searched), and the small
        // faces the magnified passes give for it.
        let mut answered: Vec<Tile> = Vec::new();
        let mut small: Vec<BBox> = Vec::new();
        for (i, region) in self.regions.iter_mut().enumerate() {
            // The whole-frame pass is due on every frame; tile k on frames where k ≡ frame (mod period).
            let due = if i == 0 { plan.whole } else { ((i - 1) as u64) % period == phase };
            let tile = region.tile;
            // An unchanged region reuses its result; one reused MAX_REUSE times is searched again on its next
            // turn (and reused until then: its pixels are still the ones searched).
            // A repeat pass's result is not reused on a frame due for a full pass.
            let reusable = |c: &&mut Cached| (c.reused < MAX_REUSE || !due) && (c.full || !(due && whole_full));
            if let Some(c) = region.unchanged(&self.grid).filter(reusable) {
                c.reused += 1;
                self.stats.passes_reused += 1;
                match tile {
                    Some(t) => {
                        all.extend_from_slice(&c.found);
                        answered.push(t);
                        small.extend(c.found.iter().map(|d| d.bbox));
                    }
                    None => whole_found.extend_from_slice(&c.found),
                }
                continue;
            }
            if !due {
                if tile.is_some() {
                    self.unsearched
                        .push(Unsearched { tile: Some(i - 1), boxes: region.unsearched(&self.grid, self.size) });
                }
                continue;
            }
            let full = tile.is_some() || whole_full;
            let found = match &region.tile {
                None => {
                    let pass = if whole_full { Pass::Whole } else { Pass::WholeRepeat };
                    super::multiscale::plausible(
                        whole_pass_as(detector, frame, self.whole_input, pass)?,
                        self.size,
                        self.whole_input,
                        self.settings.threshold,
                        || super::lowlight::is_dark(frame),
                    )
                }
                Some(t) => tile_pass(detector, frame, t, self.settings.tile_scale)?,
            };
            self.stats.passes_run += 1;
            match region.tile {
                Some(t) => {
                    all.extend_from_slice(&found);
                    self.stats.pixels.tiles += tile_pixels(&t, self.settings.tile_scale);
                    self.searched.push(i - 1);
                    answered.push(t);
                    small.extend(found.iter().map(|d| d.bbox));
                }
                None => {
                    if whole_full {
                        self.whole_full_at = Some(index);
                    }
                    self.stats.pixels.whole += input_pixels(self.whole_input.0 as f32, self.whole_input.1 as f32, 1.0);
                    whole_found.extend_from_slice(&found);
                }
            }
            region.last = Some(Cached { blocks: region.blocks(&self.grid).collect(), found, reused: 0, full });
        }
        if self.still {
            let dark = super::lowlight::is_dark(frame);
            whole_found = confirm_small(whole_found, &small, &answered, dark, self.settings.nms_iou);
            // A dark still: faces under 10 px, which both models miss at the tiles' 2× in the dark far more
            // often than in daylight, are searched again at twice that.
            if dark {
                let (w, h) = self.size;
                for t in tiny_face_tiles(w, h, &self.settings) {
                    let found = tile_pass(detector, frame, &t, TINY_FACE_SCALE)?;
                    self.stats.passes_run += 1;
                    self.stats.pixels.tiles += tile_pixels(&t, TINY_FACE_SCALE);
                    all.extend(found.into_iter().filter(|d| d.bbox.height() < TINY_FACE_HEIGHT));
                }
            }
        }
        // Faces the tiles found that neither a tile nor the whole-frame pass answers for on this frame are
        // searched again where they were, in small magnified crops: a known small face is looked for on every
        // frame, not only on its tile's turn (new faces still wait for their tile's turn, and are back-filled
        // by the tracker).
        // A tile answers for a known face only if it holds the whole reach the face may have moved within: a
        // face that crossed the tile's border since is cut there, and a tile drops cut faces.
        let seen_whole = |b: &BBox| whole_found.iter().any(|w| w.bbox.iou(b) > FOCUS_SAME_FACE_IOU);
        let targets: Vec<BBox> = self
            .known
            .iter()
            .filter(|b| !answered.iter().any(|t| t.holds(&reach(b))) && !seen_whole(b))
            .copied()
            .collect();
        whole_found.extend(all);
        let mut all = whole_found;
        if !plan.focus {
            // Not searched again: they stay known (until a tile answers for them) and are covered where they were.
            let (w, h) = self.size;
            let boxes: Vec<BBox> =
                targets.iter().map(|b| b.scaled(KNOWN_COVER_SCALE).clamped(w, h)).filter(BBox::is_valid).collect();
            if !boxes.is_empty() {
                self.unsearched.push(Unsearched { tile: None, boxes });
            }
            small.extend(targets);
            self.known = small;
            let regions = super::face_regions(merge(all, self.settings.nms_iou));
            return self.with_turned(detector, frame, regions, index);
        }
        // The crops go to the detector together (it may search them side by side).
        let crops = focus_crops(&targets, self.size, self.settings.tile_scale);
        let pictures = crops
            .iter()
            .map(|crop| super::multiscale::magnify(frame, crop, self.settings.tile_scale))
            .collect::<Result<Vec<_>>>()?;
        let answers = detector.detect_each(pictures, Pass::Focus)?;
        if answers.len() != crops.len() {
            return Err(crate::Error::DetectorOutput(format!(
                "{} answers for {} focus crops",
                answers.len(),
                crops.len()
            )));
        }
        for (crop, found) in crops.iter().zip(answers) {
            let found = super::multiscale::in_frame(found, self.size, crop, self.settings.tile_scale);
            self.stats.passes_run += 1;
            self.stats.passes_focus += 1;
            self.stats.pixels.focus += tile_pixels(crop, self.settings.tile_scale);
            small.extend(found.iter().map(|d| d.bbox));
            all.extend(found);
        }
        self.known = small;
        let regions = super::face_regions(merge(all, self.settings.nms_iou));
        self.with_turned(detector, frame, regions, index)
    }

    /// `upright`, the regions of frame `index`, with the faces found in the frame turned a quarter, a half and
    /// three quarters ([`DetectSettings::turned`]; nothing added without it): a still is searched whole in each
    /// turn (the whole frame and every tile); a video is searched as often as its full whole-frame pass runs
    /// (every `whole_period` frames), one turn at a time in rotation and every turn that found a face last time,
    /// the whole frame at the detector's full size (the tracker bridges between). A turned face's region grows to its head in its own turn, so toward the
    /// top of that head. Only boxes scoring [`TURNED_MIN_SCORE`] or more are kept, and none where a confident upright
    /// region ([`HEAD_SCORE`](super::HEAD_SCORE)) already lies over it: upright faces are found turned too,
    /// differently placed.
    fn with_turned<D: Detector + ?Sized>(
        &mut self,
        detector: &mut D,
        frame: &RgbImage,
        mut upright: Vec<Detection>,
        index: u64,
    ) -> Result<Vec<Detection>> {
        let due = self.turned_at.is_none_or(|f| index - f >= self.whole_period);
        if !self.settings.turned || !(self.still || due) {
            return Ok(upright);
        }
        self.turned_at = Some(index);
        let (w, h) = self.size;
        // A video frame gets the turns in rotation, one at a time, and every turn that found a face last time
        // it ran (a face lying down is searched as often as an upright one).
        let next = self.turns_run % TURNS.len();
        if !self.still {
            self.turns_run += 1;
        }
        let mut turned = Vec::new();
        for (k, &turn) in TURNS.iter().enumerate() {
            if !(self.still || k == next || self.turned_found[k]) {
                continue;
            }
            let picture = super::turned(frame, turn);
            let (tw, th) = picture.dimensions();
            let found = if self.still {
                let settings = DetectSettings { turned: false, ..self.settings.clone() };
                let mut search = Analyser::exhaustive(settings, tw, th);
                let found = search.analyse(detector, &picture)?;
                let stats = search.stats();
                self.stats.passes_run += stats.passes_run;
                self.stats.pixels = self.stats.pixels.sum(stats.pixels);
                found
            } else {
                // At the detector's full size (faces as small as its whole-frame pass sees without tiles), by the
                // cheaper model in daylight.
                let input = self.settings.input_size(tw, th);
                let found = whole_pass_as(detector, &picture, input, Pass::WholeRepeat)?;
                self.stats.passes_run += 1;
                self.stats.pixels.whole += input_pixels(input.0 as f32, input.1 as f32, 1.0);
                let found = super::multiscale::plausible(found, (tw, th), input, self.settings.threshold, || {
                    super::lowlight::is_dark(frame)
                });
                super::face_regions(merge(found, self.settings.nms_iou))
            };
            turned.extend(found.into_iter().filter(|d| d.score >= TURNED_MIN_SCORE).filter_map(|d| {
                let bbox = turn.box_to_stored(&d.bbox, w, h).clamped(w, h);
                bbox.is_valid().then_some((k, Detection { bbox, ..d }))
            }));
            self.turned_found[k] = false;
        }
        let seen = |t: &Detection| {
            let (cx, cy) = ((t.bbox.x0 + t.bbox.x1) / 2.0, (t.bbox.y0 + t.bbox.y1) / 2.0);
            upright.iter().any(|r| {
                r.score >= super::HEAD_SCORE
                    && (r.bbox.iou(&t.bbox) > self.settings.nms_iou
                        || (r.bbox.x0..=r.bbox.x1).contains(&cx) && (r.bbox.y0..=r.bbox.y1).contains(&cy))
            })
        };
        // A turn counts as having found a face only for a box kept: an upright face found turned too does not
        // keep its turn searched.
        let kept: Vec<(usize, Detection)> = turned.into_iter().filter(|(_, t)| !seen(t)).collect();
        for (k, t) in kept {
            self.turned_found[k] = true;
            upright.push(t);
        }
        Ok(upright)
    }

    /// Searches `tiles` (as counted by [`tile_count`](Self::tile_count)) in `frame`, which must be the frame
    /// analysed last: at the end of a stream, the tiles whose turn would have come after it. Their results are
    /// cached as if searched on their turn.
    pub fn search_tiles<D: Detector + ?Sized>(
        &mut self,
        detector: &mut D,
        frame: &RgbImage,
        tiles: &[usize],
    ) -> Result<Vec<Detection>> {
        let mut all = Vec::new();
        for &k in tiles {
            let Some(region) = self.regions.get_mut(k + 1) else { continue };
            let Some(t) = region.tile else { continue };
            let found = tile_pass(detector, frame, &t, self.settings.tile_scale)?;
            self.stats.passes_run += 1;
            self.stats.pixels.tiles += tile_pixels(&t, self.settings.tile_scale);
            all.extend_from_slice(&found);
            region.last = Some(Cached { blocks: region.blocks(&self.grid).collect(), found, reused: 0, full: true });
        }
        Ok(super::face_regions(merge(all, self.settings.nms_iou)))
    }

    /// The tiles the last frame's analysis searched, and what in it no small-face pass searched (see
    /// [`Unsearched`]).
    pub fn searched(&self) -> (&[usize], &[Unsearched]) {
        (&self.searched, &self.unsearched)
    }

    /// Checks the frame's size, forgets the last frame's searches and takes the frame's block means.
    fn look(&mut self, frame: &RgbImage) -> Result<()> {
        if frame.dimensions() != self.size {
            return Err(crate::Error::Config(format!(
                "frame size {:?} differs from the analyser's {:?}",
                frame.dimensions(),
                self.size
            )));
        }
        self.searched.clear();
        self.unsearched.clear();
        std::mem::swap(&mut self.previous, &mut self.grid.means);
        self.grid.fill(frame);
        Ok(())
    }

    /// What changed between the previous frame and the last one analysed (runs of changed blocks, grown by a
    /// block each way; the whole frame when there was no previous frame): where a frame whose whole-frame pass
    /// was left out may hold a face that its neighbours' passes did not see.
    pub fn changed_since_previous(&self) -> Vec<BBox> {
        let (w, h) = self.size;
        if self.previous.len() != self.grid.means.len() {
            return vec![BBox::new(0.0, 0.0, w as f32, h as f32)];
        }
        let rows = self.grid.means.len() / self.grid.cols.max(1);
        let mut out = changed_runs(&self.previous, &self.grid, (0, self.grid.cols, 0, rows), self.size);
        out.retain(BBox::is_valid);
        out
    }
}

/// Detector input pixels of a pass over tile or crop `t` at `scale`.
fn tile_pixels(t: &Tile, scale: f32) -> u64 {
    input_pixels(t.w as f32, t.h as f32, scale)
}

/// Where a known face `b` may be on the next frame: a square of [`FOCUS_REACH`] times its size (at least
/// [`FOCUS_MIN_REACH`]) each way from its centre (not clamped to the frame).
fn reach(b: &BBox) -> BBox {
    let (cx, cy) = b.center();
    let r = (FOCUS_REACH * b.width().max(b.height())).max(FOCUS_MIN_REACH);
    BBox::new(cx - r, cy - r, cx + r, cy + r)
}

/// The crops that search `faces` again: each face with [`FOCUS_REACH`] around it (every face's reach whole
/// inside one crop), crops that overlap joined while the join stays within a tile's size, each side rounded up
/// so that it fills the detector's 32-pixel grid at `scale`. Empty when tiles are off.
///
/// Two ways of joining are tried and the one that costs the detector fewer pixels is searched: joining every
/// overlapping pair (a few large crops: the cheaper over a dense crowd), and joining only where one crop costs
/// fewer pixels than the two (the cheaper over scattered groups of faces, where a join holds the empty
/// corners between them and the joined crops overlap each other: on a fixed-camera crowd, 369 → 290 M focus
/// pixels in 250 frames). On a tie, the first.
fn focus_crops(faces: &[BBox], (w, h): (u32, u32), scale: f32) -> Vec<Tile> {
    if scale <= 1.0 || faces.is_empty() {
        return Vec::new();
    }
    let max = (super::multiscale::TILE_INPUT as f32 / scale).floor();
    let grid = |len: f32, limit: u32| {
        let mut side = (len.ceil() as u32).clamp(1, limit);
        while ((side as f32 * scale).round() as u32) % 32 != 0 && side < limit {
            side += 1;
        }
        side
    };
    // What a crop costs the detector: its area once rounded to the grid.
    let cost = |c: &BBox| u64::from(grid(c.width(), w)) * u64::from(grid(c.height(), h));
    let fits = |u: &BBox| {
        u.width() <= max && u.height() <= max && super::multiscale::fits_tile_input(u.width(), u.height(), scale)
    };
    let reaches: Vec<BBox> = faces.iter().map(|b| reach(b).clamped(w, h)).filter(BBox::is_valid).collect();
    let everywhere = join_overlapping(reaches.clone(), &fits, None);
    let cheaper = join_overlapping(reaches, &fits, Some(&cost));
    let total = |crops: &[BBox]| crops.iter().map(cost).sum::<u64>();
    let crops = if total(&cheaper) < total(&everywhere) { cheaper } else { everywhere };
    crops
        .into_iter()
        .map(|c| {
            let (cw, ch) = (grid(c.width(), w), grid(c.height(), h));
            let x = (c.x0.floor().max(0.0) as u32).min(w - cw);
            let y = (c.y0.floor().max(0.0) as u32).min(h - ch);
            Tile { x, y, w: cw, h: ch }
        })
        .collect()
}

/// Joins overlapping `crops` two at a time where the union `fits`, and, given a `cost`, only where the union
/// costs no more than the two (each crop's cost kept, not computed again for every pair looked at), until no
/// pair is joined (each join may make a crop overlap another).
fn join_overlapping(
    mut crops: Vec<BBox>,
    fits: &dyn Fn(&BBox) -> bool,
    cost: Option<&dyn Fn(&BBox) -> u64>,
) -> Vec<BBox> {
    let mut costs: Vec<u64> = cost.map(|c| crops.iter().map(c).collect()).unwrap_or_default();
    let mut joined = true;
    while joined {
        joined = false;
        'outer: for i in 0..crops.len() {
            for j in i + 1..crops.len() {
                let (a, b) = (crops[i], crops[j]);
                let u = a.union(&b);
                if a.intersection(&b) <= 0.0 || !fits(&u) {
                    continue;
                }
                if let Some(c) = cost {
                    let cu = c(&u);
                    if cu > costs[i] + costs[j] {
                        continue;
                    }
                    costs[i] = cu;
                    costs.swap_remove(j);
                }
                crops[i] = u;
                crops.swap_remove(j);
                joined = true;
                break 'outer;
            }
        }
    }
    crops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::ScriptedDetector;
    use crate::detect::TILE_INPUT_PIXELS;

    /// Counts detector calls and reports one face wherever the picture has a bright pixel.
    #[derive(Default)]
    struct Probe {
        calls: usize,
        /// Sees nothing in pictures narrower than this (a face only the magnified tiles can find).
        min_width: u32,
        /// Sees a bright spot only where it is at least this many pixels wide in the picture it is given
        /// (a face too small for the whole-frame pass, found by the magnified passes).
        min_spot: u32,
        /// Widths of the pictures it was given.
        widths: Vec<u32>,
        /// Detector input pixels it was given, each side padded to the 32-pixel grid.
        pixels: u64,
    }

    impl Detector for Probe {
        fn detect(&mut self, img: &RgbImage) -> Result<Vec<Detection>> {
            self.calls += 1;
            self.widths.push(img.width());
            self.pixels += u64::from(img.width().div_ceil(32) * 32) * u64::from(img.height().div_ceil(32) * 32);
            if img.width() < self.min_width {
                return Ok(Vec::new());
            }
            let bright = |x: u32, y: u32| x < img.width() && img.get_pixel(x, y)[0] > 200;
            let spot = |x: u32, y: u32| (x..x + self.min_spot).all(|x| bright(x, y));
            Ok(img
                .enumerate_pixels()
                .find(|&(x, y, p)| p[0] > 200 && spot(x, y))
                .map(|(x, y, _)| Detection {
                    bbox: BBox::new(x as f32, y as f32, x as f32 + 8.0, y as f32 + 8.0),
                    score: 0.9,
                })
                .into_iter()
                .collect())
        }
    }

    fn picture(w: u32, h: u32, spot: Option<(u32, u32)>) -> RgbImage {
        let mut img = RgbImage::from_fn(w, h, |x, y| image::Rgb([((x * 7 + y * 3) % 90) as u8, 60, 90]));
        if let Some((sx, sy)) = spot {
            for y in sy..sy + 12 {
                for x in sx..sx + 12 {
                    img.put_pixel(x, y, image::Rgb([250, 250, 250]));
                }
            }
        }
        img
    }

    /// Finds a "face" only the right way up: a white block with a blue one right under it (or, `either_way`,
    /// also the other way round), as the box around both, scoring `score`.
    struct Upright {
        score: f32,
        either_way: bool,
        /// Pictures it was given.
        calls: usize,
    }

    impl Detector for Upright {
        fn detect(&mut self, img: &RgbImage) -> Result<Vec<Detection>> {
            self.calls += 1;
            let around = |colour: [u8; 3]| {
                let xy: Vec<(u32, u32)> =
                    img.enumerate_pixels().filter(|(_, _, p)| p.0 == colour).map(|(x, y, _)| (x, y)).collect();
                let (x0, x1) = (xy.iter().map(|p| p.0).min()?, xy.iter().map(|p| p.0).max()? + 1);
                let (y0, y1) = (xy.iter().map(|p| p.1).min()?, xy.iter().map(|p| p.1).max()? + 1);
                Some(BBox::new(x0 as f32, y0 as f32, x1 as f32, y1 as f32))
            };
            let (Some(white), Some(blue)) = (around([250, 250, 250]), around([0, 0, 250])) else {
                return Ok(Vec::new());
            };
            let stacked = |top: &BBox, bottom: &BBox| top.y1 == bottom.y0 && top.x0 == bottom.x0 && top.x1 == bottom.x1;
            let found = stacked(&white, &blue) || (self.either_way && stacked(&blue, &white));
            let bbox =
                BBox::new(white.x0.min(blue.x0), white.y0.min(blue.y0), white.x1.max(blue.x1), white.y1.max(blue.y1));
            Ok(found.then_some(Detection { bbox, score: self.score }).into_iter().collect())
        }
    }

    /// A 640 × 480 picture with a white and a blue 12-pixel block side by side at (`x`, `y`): a "face" lying
    /// on its side for [`Upright`].
    fn lying(x: u32, y: u32) -> RgbImage {
        let mut img = picture(640, 480, None);
        for (dx, colour) in [(0, [250, 250, 250]), (12, [0, 0, 250])] {
            for yy in y..y + 12 {
                for xx in x + dx..x + dx + 12 {
                    img.put_pixel(xx, yy, image::Rgb(colour));
                }
            }
        }
        img
    }

    #[test]
    fn faces_lying_on_their_side_are_found_in_a_turned_picture_when_asked() {
        let frame = lying(300, 200);
        // The face (300, 200)–(324, 212) grown to its head (`face_regions`) in its own turn: toward its top, the
        // white block on the left, by a fifth of its 24-pixel height, and a tenth of its width to each side.
        let face = BBox::new(300.0 - 4.8, 200.0 - 1.2, 324.0, 212.0 + 1.2);
        let settings = DetectSettings { tile_scale: 0.0, ..Default::default() };
        let turned = DetectSettings { turned: true, ..settings.clone() };
        let mut upright = Upright { score: 0.9, either_way: false, calls: 0 };
        // Upright, it is no face; turned a quarter, it is one, found back where it lies.
        assert_eq!(Analyser::exhaustive(settings.clone(), 640, 480).analyse(&mut upright, &frame).unwrap(), vec![]);
        let found = Analyser::exhaustive(turned.clone(), 640, 480).analyse(&mut upright, &frame).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].bbox.iou(&face) > 0.99, "{found:?}");
        // Video: each full whole-frame pass (here every frame) adds the next turn, and the turn that found the face
        // is searched again on every one while it finds it; once gone, it waits for its turn in rotation.
        let mut video = Analyser::new(turned.clone(), 1, 640, 480);
        let blank = picture(640, 480, None);
        let per_frame: Vec<usize> = [&frame, &frame, &frame, &blank, &blank]
            .into_iter()
            .map(|f| video.analyse(&mut upright, f).unwrap().len())
            .collect();
        assert_eq!(per_frame, vec![1, 1, 1, 0, 0]);
        let mut plain = Analyser::new(settings, 1, 640, 480);
        assert!((0..3).all(|_| plain.analyse(&mut upright, &frame).unwrap().is_empty()));
        // `verify --turned`: the face as found (no head), in frame pixels.
        let checked = crate::detect::faces_turned(&mut upright, &frame, &turned).unwrap();
        assert_eq!(checked.len(), 1, "{checked:?}");
        assert!(checked[0].bbox.iou(&BBox::new(300.0, 200.0, 324.0, 212.0)) > 0.99, "{checked:?}");
        // A weak turned box is not kept.
        let mut weak = Upright { score: TURNED_MIN_SCORE - 0.01, either_way: false, calls: 0 };
        assert_eq!(Analyser::exhaustive(turned.clone(), 640, 480).analyse(&mut weak, &frame).unwrap(), vec![]);
        assert_eq!(crate::detect::faces_turned(&mut weak, &frame, &turned).unwrap(), vec![]);
    }

    #[test]
    fn an_upright_face_found_turned_as_well_keeps_its_upright_region_alone() {
        // White over blue: a face upright, and (`either_way`) one turned upside down too.
        let mut frame = picture(640, 480, None);
        for (dy, colour) in [(0, [250, 250, 250]), (12, [0, 0, 250])] {
            for y in 200 + dy..212 + dy {
                for x in 300..312 {
                    frame.put_pixel(x, y, image::Rgb(colour));
                }
            }
        }
        let turned = DetectSettings { turned: true, tile_scale: 0.0, ..Default::default() };
        let mut both = Upright { score: 0.9, either_way: true, calls: 0 };
        let found = Analyser::exhaustive(turned.clone(), 640, 480).analyse(&mut both, &frame).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        // The upright region alone: the face grown to its head upward.
        assert!(found[0].bbox.iou(&BBox::new(298.8, 195.2, 313.2, 224.0)) > 0.99, "{found:?}");
        // Video: the half turn sees it too, but a box dropped for an upright face does not keep that turn searched
        // on the next full passes: one turned pass a frame, in rotation (the upright pass runs once, its region
        // unchanged after).
        let mut video = Analyser::new(turned, 1, 640, 480);
        let mut both = Upright { score: 0.9, either_way: true, calls: 0 };
        for _ in 0..4 {
            assert_eq!(video.analyse(&mut both, &frame).unwrap().len(), 1);
        }
        assert_eq!(both.calls, 1 + 4);
    }

    #[test]
    fn whole_pass_runs_at_half_resolution_when_tiles_cover_small_faces() {
        let s = DetectSettings::default();
        let a = Analyser::new(s.clone(), 3, 1280, 720);
        assert_eq!(a.tile_count(), 9);
        assert_eq!(a.whole_input_size(), (640, 360));
        assert_eq!(Analyser::new(s.clone(), 3, 1920, 1080).whole_input_size(), (960, 540));
        // No tiles for a small frame: the whole pass keeps its usual size.
        let small = Analyser::new(s, 3, 176, 144);
        assert_eq!((small.tile_count(), small.whole_input_size()), (0, (640, 524)));
    }

    #[test]
    fn an_empty_picture_is_answered_not_a_panic() {
        // The library's Redactor hands any picture to a still's analyser; a frame API may see 0-pixel sides.
        for (w, h) in [(0, 0), (0, 10), (10, 0)] {
            let frame = RgbImage::new(w, h);
            let found = Analyser::exhaustive(DetectSettings::default(), w, h).analyse(&mut Probe::default(), &frame);
            assert_eq!(found.unwrap(), vec![], "{w}x{h}, still");
            let mut video = Analyser::new(DetectSettings::default(), 3, w, h);
            for _ in 0..2 {
                assert_eq!(video.analyse(&mut Probe::default(), &frame).unwrap(), vec![], "{w}x{h}, video");
            }
            assert!(video.changed_since_previous().iter().all(|b| !b.is_valid()));
        }
    }

    #[test]
    fn unchanged_regions_reuse_their_result_on_every_frame() {
        let mut a = Analyser::new(DetectSettings::default(), 3, 1280, 720);
        let mut det = Probe::default();
        let still = picture(1280, 720, Some((100, 100)));
        // First three frames: the whole pass each time, and every tile once on its turn.
        for _ in 0..3 {
            let found = a.analyse(&mut det, &still).unwrap();
            assert!(!found.is_empty(), "the face is reported on every frame");
        }
        assert_eq!(det.calls, 1 + 9);
        // From then on nothing changed: no detector call, and the face is still reported every frame.
        for _ in 0..10 {
            let found = a.analyse(&mut det, &still).unwrap();
            assert!(found.iter().any(|d| d.bbox.x0 < 112.0 && d.bbox.x1 > 100.0 && d.bbox.y0 < 112.0), "{found:?}");
        }
        assert_eq!(det.calls, 10);
        // Frame 1 reused the whole pass and 3 tiles, frame 2 the whole pass and 6 tiles, then all 10 each frame.
        assert_eq!(a.stats().passes_reused, 4 + 7 + 10 * 10);
    }

    #[test]
    fn a_change_is_searched_on_the_regions_next_turn() {
        let mut a = Analyser::new(DetectSettings::default(), 3, 1280, 720);
        let mut det = Probe::default();
        let empty = picture(1280, 720, None);
        for _ in 0..3 {
            assert!(a.analyse(&mut det, &empty).unwrap().is_empty());
        }
        let calls = det.calls;
        // A face appears bottom right: the whole pass and the tiles holding it are searched again, the
        // others are not.
        let with_face = picture(1280, 720, Some((1100, 600)));
        let mut found_at = None;
        for k in 0..3 {
            if !a.analyse(&mut det, &with_face).unwrap().is_empty() && found_at.is_none() {
                found_at = Some(k);
            }
        }
        assert_eq!(found_at, Some(0), "the whole-frame pass sees it at once");
        let tiles_with_face =
            a.regions[1..].iter().filter(|r| r.tile.is_some_and(|t| t.x + t.w > 1100 && t.y + t.h > 600)).count();
        assert_eq!(det.calls - calls, 1 + tiles_with_face, "only the whole pass and the changed tiles ran");
    }

    #[test]
    fn change_limit_follows_brightness() {
        assert_eq!(change_limit(120, 125), CHANGE_LEVELS);
        assert_eq!(change_limit(64, 60), CHANGE_LEVELS);
        assert_eq!(change_limit(40, 36), 5);
        assert_eq!(change_limit(10, 14), DARK_CHANGE_LEVELS);
    }

    #[test]
    fn a_dark_stills_tiny_faces_are_searched_at_four_times_issue_34() {
        // A 5 px face: 10 px in the small-face tiles (at 2×), 20 px in the tiny-face pass (at 4×); the probe
        // sees only spots of 16 px and more.
        let (w, h) = (1024, 768);
        let with_face = |level: u8| {
            let mut img = RgbImage::from_pixel(w, h, image::Rgb([level; 3]));
            for y in 400..405 {
                for x in 500..505 {
                    img.put_pixel(x, y, image::Rgb([250; 3]));
                }
            }
            img
        };
        let (dark, light) = (with_face(40), with_face(150));
        let s = DetectSettings::default();
        let at_face = |found: &[Detection]| found.iter().any(|d| d.bbox.x0 < 505.0 && d.bbox.x1 > 500.0);
        let still = |settings: &DetectSettings, img: &RgbImage| {
            let mut a = Analyser::exhaustive(settings.clone(), w, h);
            let found = a.analyse(&mut Probe { min_spot: 16, ..Default::default() }, img).unwrap();
            (found, a.stats().pixels.tiles)
        };
        let (found, dark_pixels) = still(&s, &dark);
        assert!(at_face(&found), "a dark still: the tiny face is found at 4×: {found:?}");
        assert!(found.iter().all(|d| d.bbox.height() < TINY_FACE_HEIGHT), "{found:?}");
        // In daylight, on video, and where the user turned the small-face tiles off, there is no such pass.
        let (found, light_pixels) = still(&s, &light);
        assert!(!at_face(&found) && light_pixels < dark_pixels / 2, "{found:?}, {light_pixels} of {dark_pixels}");
        let mut video = Analyser::new(s.clone(), 1, w, h);
        assert!(!at_face(&video.analyse(&mut Probe { min_spot: 16, ..Default::default() }, &dark).unwrap()));
        let off = DetectSettings { tile_scale: 0.0, ..s.clone() };
        assert!(tiny_face_tiles(w, h, &off).is_empty());
        assert!(!at_face(&still(&off, &dark).0));
        // The tiles overlap by at least twice the largest box kept: a tiny face is whole in one of them.
        let tiles = tiny_face_tiles(w, h, &s);
        assert!(tiles.len() > 1);
        for y in (0..h - 16).step_by(7) {
            for x in (0..w - 16).step_by(7) {
                let b = BBox::new(x as f32, y as f32, x as f32 + TINY_FACE_HEIGHT, y as f32 + TINY_FACE_HEIGHT);
                assert!(tiles.iter().any(|t| t.holds(&b)), "{b:?} in no tile of {tiles:?}");
            }
        }
    }

    #[test]
    fn a_dark_face_moving_over_a_dark_background_is_searched_again() {
        // Night footage: background at level 12, a dim face at 16 moving in. Its blocks' means change by 4
        // levels: under the 8 that count as noise in a bright picture, over the dark limit of 3.
        let mut a = Analyser::new(DetectSettings { tile_scale: 0.0, ..Default::default() }, 1, 640, 360);
        let mut det = Probe::default();
        let dark = |spot: Option<u32>| {
            RgbImage::from_fn(640, 360, |x, y| match spot {
                Some(sx) if (sx..sx + 16).contains(&x) && (96..136).contains(&y) => image::Rgb([16, 16, 16]),
                _ => image::Rgb([12, 12, 12]),
            })
        };
        a.analyse(&mut det, &dark(None)).unwrap();
        a.analyse(&mut det, &dark(None)).unwrap();
        assert_eq!(det.calls, 1, "unchanged dark picture reused");
        a.analyse(&mut det, &dark(Some(296))).unwrap();
        assert_eq!(det.calls, 2, "the dark change is searched");
    }

    #[test]
    fn every_region_is_searched_again_after_max_reuse_frames() {
        let mut a = Analyser::new(DetectSettings { tile_scale: 0.0, ..Default::default() }, 1, 640, 360);
        let mut det = Probe::default();
        let still = picture(640, 360, None);
        for _ in 0..=MAX_REUSE + 1 {
            a.analyse(&mut det, &still).unwrap();
        }
        assert_eq!(det.calls, 2);
    }

    #[test]
    fn refreshed_regions_keep_reporting_the_face_between_their_turns() {
        // Period 4: a tile's reuse budget runs out between its turns.
        let mut a = Analyser::new(DetectSettings::default(), 4, 1280, 720);
        // Only the tiles (992 px wide at 2×) find this face; the whole-frame pass (640 px) does not.
        let mut det = Probe { min_width: 900, ..Default::default() };
        let still = picture(1280, 720, Some((700, 500)));
        for k in 0..4 * MAX_REUSE {
            let found = a.analyse(&mut det, &still).unwrap();
            // From the tile's first turn (within the first 4 frames; the tracker back-fills before it) on.
            if k >= 4 {
                let seen = found.iter().any(|d| d.bbox.x0 < 712.0 && d.bbox.x1 > 700.0);
                assert!(seen, "frame {k}: face lost: {found:?}");
            }
        }
        // Every pass ran once, then about once per MAX_REUSE frames.
        assert!(det.calls >= 10 * 4 && det.calls <= 10 * 5, "{} detector calls", det.calls);
    }

    #[test]
    fn a_known_small_face_is_searched_on_every_frame_by_focus_passes() {
        // Period 6: a tile visits a spot every 6th frame. A 12 px face moving 9 px per frame (hand-held shake)
        // is seen only magnified (24 px at 2x; 6 px in the half-resolution whole-frame pass).
        let mut a = Analyser::new(DetectSettings::default(), 6, 1280, 720);
        let mut det = Probe { min_spot: 16, ..Default::default() };
        let mut first = None;
        for k in 0..30u32 {
            let x = 300 + 9 * k;
            let found = a.analyse(&mut det, &picture(1280, 720, Some((x, 300)))).unwrap();
            let seen = found.iter().any(|d| d.bbox.x0 <= (x + 12) as f32 && d.bbox.x1 >= x as f32);
            if seen && first.is_none() {
                first = Some(k);
            }
            if first.is_some() {
                assert!(seen, "frame {k}: the known face was not searched again: {found:?}");
            }
        }
        assert!(first.is_some_and(|f| f < 6), "found on its tile's first turn: {first:?}");
        let s = a.stats();
        assert!(s.passes_focus >= 20, "{s:?}");
        // Focus passes are small: a 12 px face gets a 64 px crop, 128 px magnified.
        assert!(det.widths.iter().filter(|&&w| w == 128).count() as u64 >= s.passes_focus - 2, "{:?}", det.widths);
        // Every pixel the detector was given is counted, under the pass that gave it.
        let (ww, wh) = a.whole_input_size();
        assert_eq!(s.pixels.whole, 30 * u64::from(ww.div_ceil(32) * 32 * wh.div_ceil(32) * 32), "{s:?}");
        assert!(s.pixels.focus >= s.passes_focus * 128 * 128, "{s:?}");
        assert!(s.pixels.tiles > 0, "{s:?}");
        assert_eq!(s.pixels.whole + s.pixels.tiles + s.pixels.focus, det.pixels, "{s:?}");
    }

    /// Answers a batch of focus crops with one answer too few.
    struct ShortAnswer(Probe);

    impl Detector for ShortAnswer {
        fn detect(&mut self, img: &RgbImage) -> Result<Vec<Detection>> {
            self.0.detect(img)
        }

        fn detect_each(&mut self, images: Vec<RgbImage>, pass: Pass) -> Result<Vec<Vec<Detection>>> {
            let mut answers = images.iter().map(|i| self.0.detect_for(i, pass)).collect::<Result<Vec<_>>>()?;
            answers.pop();
            Ok(answers)
        }
    }

    #[test]
    fn focus_crops_answered_short_fail_the_frame() {
        let mut a = Analyser::new(DetectSettings::default(), 6, 1280, 720);
        let mut det = ShortAnswer(Probe { min_spot: 16, ..Default::default() });
        let failed = (0..12u32)
            .map(|k| a.analyse(&mut det, &picture(1280, 720, Some((300 + 9 * k, 300)))))
            .find_map(|r| r.err());
        assert!(matches!(failed, Some(crate::Error::DetectorOutput(_))), "{failed:?}");
    }

    #[test]
    fn focus_crops_join_neighbours_and_stay_inside_the_frame() {
        let b = |x: f32, y: f32| BBox::new(x, y, x + 12.0, y + 14.0);
        // Two neighbours share one crop; a far face gets its own; a face at the corner is clamped.
        let crops = focus_crops(&[b(100.0, 100.0), b(130.0, 110.0), b(900.0, 500.0), b(0.0, 0.0)], (1280, 720), 2.0);
        assert_eq!(crops.len(), 3, "{crops:?}");
        for c in &crops {
            assert!(c.x + c.w <= 1280 && c.y + c.h <= 720, "{c:?}");
            assert_eq!((c.w * 2) % 32, 0, "{c:?}");
            assert_eq!((c.h * 2) % 32, 0, "{c:?}");
        }
        assert!(crops.iter().any(|c| c.holds(&b(100.0, 100.0)) && c.holds(&b(130.0, 110.0))), "{crops:?}");
        assert!(crops.iter().any(|c| c.holds(&b(0.0, 0.0))), "{crops:?}");
        assert!(focus_crops(&[b(100.0, 100.0)], (1280, 720), 0.0).is_empty(), "no tiles, no focus");
        // A crowd of overlapping crops is joined only while the join stays within a tile's detector input.
        let crowd: Vec<BBox> = (0..12).flat_map(|i| (0..8).map(move |j| b(40.0 * i as f32, 40.0 * j as f32))).collect();
        let crops = focus_crops(&crowd, (1920, 1080), 2.0);
        let px = |c: &Tile| (c.w * 2) as u64 * (c.h * 2) as u64;
        assert!(crops.iter().all(|c| px(c) <= TILE_INPUT_PIXELS), "{crops:?}");
        assert!(crowd.iter().all(|f| crops.iter().any(|c| c.holds(f))), "every face whole in a crop: {crops:?}");
    }

    #[test]
    fn focus_crops_are_joined_only_where_one_crop_costs_less_than_two() {
        let b = |x: f32, y: f32| BBox::new(x, y, x + 12.0, y + 14.0);
        let px = |c: &Tile| u64::from(c.w * 2) * u64::from(c.h * 2);
        // Side by side, mostly overlapping: one crop. Diagonal neighbours whose reaches share only a corner:
        // one crop would hold two empty corners, so each keeps its own.
        assert_eq!(focus_crops(&[b(100.0, 100.0), b(110.0, 100.0)], (1280, 720), 2.0).len(), 1);
        let diagonal = [b(100.0, 100.0), b(150.0, 150.0)];
        let crops = focus_crops(&diagonal, (1280, 720), 2.0);
        assert_eq!(crops.len(), 2, "{crops:?}");
        assert!(diagonal.iter().all(|f| crops.iter().any(|c| c.holds(&reach(f)))), "{crops:?}");
        // Crowds: every face's reach whole in one crop, and never more pixels than joining every overlapping
        // pair of reaches (the way before, replayed here with each side rounded up to the detector's grid, 16
        // frame pixels at 2×) or searching each face alone; over scattered groups, far fewer.
        let side = |v: f32| (v.ceil() as u32).div_ceil(16) * 16 * 2;
        let max = (crate::detect::multiscale::TILE_INPUT as f32 / 2.0).floor();
        let every_overlap = |faces: &[BBox]| {
            let mut crops: Vec<BBox> = faces.iter().map(|f| reach(f).clamped(826, 540)).collect();
            while let Some((i, j)) = (0..crops.len()).find_map(|i| {
                (i + 1..crops.len())
                    .find(|&j| {
                        let u = crops[i].union(&crops[j]);
                        crops[i].intersection(&crops[j]) > 0.0
                            && u.width() <= max
                            && u.height() <= max
                            && crate::detect::multiscale::fits_tile_input(u.width(), u.height(), 2.0)
                    })
                    .map(|j| (i, j))
            }) {
                crops[i] = crops[i].union(&crops[j]);
                crops.swap_remove(j);
            }
            crops.iter().map(|c| u64::from(side(c.width()) * side(c.height()))).sum::<u64>()
        };
        // A dense crowd filling a square, and groups of two to five faces scattered over the frame.
        let dense: Vec<BBox> = (0..14)
            .flat_map(|i| (0..9).map(move |j| b(30.0 + 37.0 * i as f32 + 9.0 * (j % 2) as f32, 30.0 + 41.0 * j as f32)))
            .collect();
        let scattered: Vec<BBox> = (0..40u32)
            .flat_map(|g| {
                let (gx, gy) = ((g * 197 % 760) as f32 + 10.0, (g * 131 % 480) as f32 + 10.0);
                (0..2 + g % 4).map(move |k| b(gx + 15.0 * k as f32, gy + 17.0 * (k % 2) as f32))
            })
            .collect();
        for (crowd, at_most) in [(&dense, 1.0), (&scattered, 0.9)] {
            let crops = focus_crops(crowd, (826, 540), 2.0);
            assert!(crowd.iter().all(|f| crops.iter().any(|c| c.holds(&reach(f).clamped(826, 540)))), "{crops:?}");
            let total: u64 = crops.iter().map(px).sum();
            let alone: u64 = crowd.iter().flat_map(|f| focus_crops(&[*f], (826, 540), 2.0)).map(|c| px(&c)).sum();
            let before = every_overlap(crowd);
            assert!(total <= alone, "{total} px against {alone} px searched face by face");
            assert!(total as f64 <= at_most * before as f64, "{total} px against {before} px joined at every overlap");
        }
    }

    /// Records the whole-frame passes it is asked for; finds nothing.
    #[derive(Default)]
    struct WholeLog(Vec<Pass>);

    impl Detector for WholeLog {
        fn detect(&mut self, _img: &RgbImage) -> Result<Vec<Detection>> {
            Ok(Vec::new())
        }
        fn detect_for(&mut self, _img: &RgbImage, pass: Pass) -> Result<Vec<Detection>> {
            if matches!(pass, Pass::Whole | Pass::WholeRepeat) {
                self.0.push(pass);
            }
            Ok(Vec::new())
        }
    }

    #[test]
    fn whole_frame_pass_is_full_every_third_frame_and_repeated_between() {
        use Pass::{Whole as W, WholeRepeat as R};
        let moving = |k: u32| picture(1280, 720, Some((100 + 40 * k, 300)));
        let mut a = Analyser::new(DetectSettings::default(), 6, 1280, 720);
        let mut log = WholeLog::default();
        for k in 0..7 {
            a.analyse(&mut log, &moving(k)).unwrap();
        }
        assert_eq!(log.0, vec![W, R, R, W, R, R, W]);
        // A repeat's result stands for unchanged pixels until the next full pass is due, which searches again.
        let mut a = Analyser::new(DetectSettings::default(), 6, 1280, 720);
        let mut log = WholeLog::default();
        for img in [moving(0), moving(1), moving(1), moving(1), moving(1)] {
            a.analyse(&mut log, &img).unwrap();
        }
        assert_eq!(log.0, vec![W, R, W], "frame 2 reuses frame 1's repeat, frame 3 is searched in full, 4 reuses it");
        // A live run that leaves the whole-frame pass out on the frame due for a full one gets it on the next.
        let mut a = Analyser::new(DetectSettings::default(), 6, 1280, 720);
        let mut log = WholeLog::default();
        let skip_whole = Plan { whole: false, ..Plan::FULL };
        for k in 0..7 {
            a.analyse_with(&mut log, &moving(k), if k == 3 { skip_whole } else { Plan::FULL }).unwrap();
        }
        assert_eq!(log.0, vec![W, R, R, W, R, R], "frames 0, 1, 2, 4, 5, 6: full on 0 and 4");
        // Never further apart than the tiles' period; every frame in full without tiles.
        for (settings, period) in
            [(DetectSettings::default(), 2), (DetectSettings { tile_scale: 0.0, ..Default::default() }, 6)]
        {
            let mut a = Analyser::new(settings, period, 1280, 720);
            let mut log = WholeLog::default();
            for k in 0..4 {
                a.analyse(&mut log, &moving(k)).unwrap();
            }
            let want = if period == 2 { vec![W, R, W, R] } else { vec![W; 4] };
            assert_eq!(log.0, want, "period {period}");
        }
    }

    #[test]
    fn at_twice_the_rate_the_full_whole_frame_pass_comes_the_same_time_apart() {
        use Pass::Whole as W;
        let moving = |k: u32| picture(1280, 720, Some((100 + 20 * k, 300)));
        let fulls = |mut a: Analyser, frames: u32| {
            let mut log = WholeLog::default();
            for k in 0..frames {
                a.analyse(&mut log, &moving(k)).unwrap();
            }
            log.0.iter().enumerate().filter(|(_, &p)| p == W).map(|(i, _)| i).collect::<Vec<_>>()
        };
        // 50 fps (factor 2, the tiles over 12 frames): every sixth frame, as every third at 25 fps.
        assert_eq!(fulls(Analyser::new(DetectSettings::default(), 12, 1280, 720).at_rate_factor(2), 13), [0, 6, 12]);
        assert_eq!(fulls(Analyser::new(DetectSettings::default(), 6, 1280, 720).at_rate_factor(1), 7), [0, 3, 6]);
        // Never further apart than the tiles' period; every frame without tiles.
        assert_eq!(fulls(Analyser::new(DetectSettings::default(), 4, 1280, 720).at_rate_factor(2), 9), [0, 4, 8]);
        let no_tiles = DetectSettings { tile_scale: 0.0, ..Default::default() };
        assert_eq!(fulls(Analyser::new(no_tiles, 12, 1280, 720).at_rate_factor(2), 3), [0, 1, 2]);
    }

    #[test]
    fn detector_errors_are_returned_and_nothing_is_cached() {
        let mut a = Analyser::new(DetectSettings { tile_scale: 0.0, ..Default::default() }, 1, 64, 64);
        let mut det = ScriptedDetector::default().fail_at(0);
        let img = picture(64, 64, None);
        assert!(a.analyse(&mut det, &img).is_err());
        assert!(a.regions[0].last.is_none());
        a.analyse(&mut det, &img).unwrap();
        assert!(a.regions[0].last.is_some());
    }

    #[test]
    fn block_means_cover_partial_edge_blocks() {
        let mut g = BlockGrid::default();
        let img =
            RgbImage::from_fn(10, 9, |x, _| if x < 8 { image::Rgb([0, 0, 0]) } else { image::Rgb([255, 255, 255]) });
        g.fill(&img);
        assert_eq!(g.cols, 2);
        assert_eq!(g.means, vec![0, 255, 0, 255]);
    }
}
