//! Time in a run: the stop flag and stall clock a live input (or a time limit) is watched with, the pacer
//! that lowers detection effort when a live run falls behind real time, and the latency histogram.

use ff::{Rational, Rescale};
use ffmpeg_next as ff;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A live input's stop flag and stall clock, shared with FFmpeg's interrupt callback.
#[derive(Debug)]
pub(crate) struct Watch {
    pub(crate) stop: std::sync::Arc<AtomicBool>,
    pub(crate) stalled: AtomicBool,
    pub(crate) stall_ms: u64,
    start: Instant,
    /// Give up (as if stopped) at this time.
    deadline: Option<Instant>,
    /// Milliseconds from `start` to the last packet read.
    last_data: std::sync::atomic::AtomicU64,
}

impl Watch {
    pub(crate) fn new(stop: std::sync::Arc<AtomicBool>, stall: std::time::Duration) -> Self {
        Self {
            stop,
            stalled: AtomicBool::new(false),
            stall_ms: stall.as_millis() as u64,
            start: Instant::now(),
            deadline: None,
            last_data: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Stops the run once `limit` has passed from now.
    pub(crate) fn until(mut self, limit: Duration) -> Self {
        self.deadline = Instant::now().checked_add(limit);
        self
    }

    pub(crate) fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    pub(crate) fn touch(&self) {
        self.last_data.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// For FFmpeg's interrupt callback: true aborts the wait (a stop was asked for, or no data came for the
    /// stall timeout).
    pub(crate) fn should_abort(&self) -> bool {
        if self.stop_requested() {
            return true;
        }
        let idle = (self.start.elapsed().as_millis() as u64).saturating_sub(self.last_data.load(Ordering::Relaxed));
        if idle > self.stall_ms {
            self.stalled.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }
}

/// What happened in a live run, for its log.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// Detection changed its level of effort; `lag_ms` is how far behind real time the frame was.
    Degraded { frame: u64, level: u8, lag_ms: i64, what: &'static str },
    /// A frame left the encoder: its end-to-end latency (read from the input to written out).
    Latency { frame: u64, ms: f64 },
}

/// Paces detection in a live run against the wall clock. A frame's lag is how long after its due time (the
/// first frame's arrival plus its timestamp's distance from the first) the detector gets to it.
///
/// Effort drops a level ([`Effort`](crate::analyse::Effort)) as the lag passes 1, 2 and 3 seconds, and also a
/// level for every second of media that a run a second or more behind gets no nearer at the level it has: a
/// machine that needs level 3 gets there about two seconds after it first falls a second behind, instead of
/// piling up 3 s of lag first. Level 1 searches the small-face tiles half as often, 2 a quarter as often
/// without focus passes, 3 an eighth as often with the whole frame at 640 pixels (the full pass at most every
/// bridging window, the cheap one between). Masks grow by a quarter on every such frame, and what changed
/// since its tile was last searched is covered whole: a slower machine redacts more, never less.
///
/// Effort comes back one level at a time once the lag is under 300 ms, and at most a level a second of media,
/// so that a level is tried before the next. A level come back to that lets the lag grow by 250 ms, or by
/// 100 ms over its first 4 s of media, did not keep up: effort goes back up at once, and the next try waits
/// twice as long (up to 32 s of media); one that holds for 4 s lets the next come a second after. A machine
/// that keeps up only at a lower effort so stays within about a second of real time instead of swinging up to
/// 3 s behind. No frame is ever passed on unanalysed and unbridged; a machine too slow even at level 3 falls
/// behind the input instead (a pipe writer waits; a network input may drop data, which is reported).
pub(crate) struct Pacer<'a> {
    tb: Rational,
    start: Option<(Instant, i64)>,
    level: u8,
    /// Media time (ms from the first frame) and lag of the last change of level.
    changed_ms: i64,
    changed_lag: i64,
    /// The level was come back to (from the one above) at the last change: a try that can fail.
    trying: bool,
    /// Media time to stay at a level before trying the one below.
    wait_ms: i64,
    /// The level every frame gets, whatever the lag, if held.
    held: Option<u8>,
    log: &'a (dyn Fn(LiveEvent) + Sync),
}

impl<'a> Pacer<'a> {
    const STEP_MS: i64 = 1000;
    const CAUGHT_UP_MS: i64 = 300;
    /// A level come back to fails when the lag grows by this much ...
    const FAILED_TRY_MS: i64 = 250;
    /// ... or by this much over the first `TRY_MS` of media at it (a drift of 2.5 %).
    const DRIFT_MS: i64 = 100;
    const TRY_MS: i64 = 4000;
    const MAX_WAIT_MS: i64 = 32_000;
    const MAX_LEVEL: u8 = 3;

    pub(crate) fn new(tb: Rational, log: &'a (dyn Fn(LiveEvent) + Sync)) -> Self {
        Self {
            tb,
            start: None,
            level: 0,
            changed_ms: 0,
            changed_lag: 0,
            trying: false,
            wait_ms: Self::STEP_MS,
            held: None,
            log,
        }
    }

    /// Every frame at `level` (if given) whatever the lag; the change is logged once.
    pub(crate) fn holding(self, level: Option<u8>) -> Self {
        Self { held: level.map(|l| l.min(Self::MAX_LEVEL)), ..self }
    }

    /// The effort level for this frame (0 full).
    pub(crate) fn level(&mut self, pts: i64, read_at: Instant, frame: u64) -> u8 {
        let (t0, p0) = *self.start.get_or_insert((read_at, pts));
        let media_ms = pts.saturating_sub(p0).rescale(self.tb, Rational(1, 1000));
        let lag = t0.elapsed().as_millis() as i64 - media_ms;
        self.step(lag, media_ms, frame)
    }

    /// The level for a frame `lag_ms` behind real time at `media_ms` from the first frame.
    fn step(&mut self, lag: i64, media_ms: i64, frame: u64) -> u8 {
        let wanted = (lag / Self::STEP_MS).clamp(0, i64::from(Self::MAX_LEVEL)) as u8;
        let at_level = media_ms - self.changed_ms;
        let grown = lag - self.changed_lag;
        let failed_try =
            self.trying && (grown >= Self::FAILED_TRY_MS || (at_level >= Self::TRY_MS && grown >= Self::DRIFT_MS));
        if self.trying && at_level >= Self::TRY_MS && !failed_try {
            // The try held: the next may come a second after.
            self.trying = false;
            self.wait_ms = Self::STEP_MS;
        }
        let (level, trying) = if let Some(held) = self.held {
            (held, false)
        } else if wanted > self.level {
            (wanted, false)
        } else if failed_try {
            // The level come back to did not keep up: back up, and wait longer before the next try.
            self.wait_ms = (2 * self.wait_ms).min(Self::MAX_WAIT_MS);
            (self.level + 1, false)
        } else if self.level < Self::MAX_LEVEL && lag >= Self::STEP_MS && at_level >= Self::STEP_MS && grown >= 0 {
            // A second or more behind, and no nearer a second after the last change.
            (self.level + 1, false)
        } else if self.level > 0 && lag < Self::CAUGHT_UP_MS && at_level >= self.wait_ms {
            (self.level - 1, true)
        } else {
            (self.level, self.trying)
        };
        self.trying = trying;
        if level != self.level {
            self.level = level;
            self.changed_ms = media_ms;
            self.changed_lag = lag;
            let what = match level {
                0 => "full detection restored",
                1 => "small-face tiles searched half as often; what changed between their turns covered, masks enlarged",
                2 => "small-face tiles searched a quarter as often, no focus passes; what changed covered, masks enlarged",
                _ => "tiles an eighth as often, whole frame at 640 px on every other frame; what changed covered, masks enlarged",
            };
            (self.log)(LiveEvent::Degraded { frame, level, lag_ms: lag, what });
        }
        level
    }
}

/// End-to-end frame latencies in 1 ms buckets (bounded memory however long the stream runs).
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    buckets: Vec<u64>,
    count: u64,
    max_ms: f64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self { buckets: vec![0; Self::LIMIT_MS + 1], count: 0, max_ms: 0.0 }
    }
}

impl LatencyHistogram {
    const LIMIT_MS: usize = 120_000;

    pub fn add(&mut self, ms: f64) {
        self.buckets[(ms.max(0.0) as usize).min(Self::LIMIT_MS)] += 1;
        self.count += 1;
        self.max_ms = self.max_ms.max(ms);
    }

    /// The latency at or below which a share `p` (0..1) of the frames left, in whole milliseconds.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        let rank = ((self.count as f64 * p).ceil() as u64).max(1);
        let mut seen = 0;
        for (ms, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(ms as u64);
            }
        }
        None
    }

    pub fn max_ms(&self) -> f64 {
        self.max_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps a free pacer through `script` ((lag, media time) → the level wanted, frame by frame); returns the
    /// levels it logged.
    fn play(script: &[((i64, i64), u8)]) -> Vec<u8> {
        let events = std::sync::Mutex::new(Vec::new());
        let log = |e: LiveEvent| events.lock().unwrap().push(e);
        let mut pacer = Pacer::new(Rational(1, 1000), &log);
        for (frame, &((lag, media), want)) in script.iter().enumerate() {
            assert_eq!(pacer.step(lag, media, frame as u64), want, "frame {frame}: lag {lag} ms at {media} ms");
        }
        let levels = events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                LiveEvent::Degraded { level, .. } => Some(*level),
                LiveEvent::Latency { .. } => None,
            })
            .collect();
        levels
    }

    #[test]
    fn effort_drops_at_once_and_comes_back_a_level_a_second() {
        // (lag, media time) → level: 1, 2, 3 s behind drop a level each, straight to 3 when far behind.
        let script = [
            ((500, 0), 0),
            ((1_200, 1_000), 1),
            ((3_400, 2_000), 3),
            // Caught up: one level back, then a second at that level before the next, though still caught up.
            ((200, 2_600), 3),
            ((200, 3_000), 2),
            ((200, 3_040), 2),
            ((200, 3_960), 2),
            ((200, 4_000), 1),
            // Behind again at level 1: more than 2 s back to 2 at once.
            ((2_100, 4_100), 2),
            ((100, 5_100), 1),
            ((100, 6_100), 0),
        ];
        assert_eq!(play(&script), [1, 3, 2, 1, 2, 1, 0], "every change logged once");
    }

    #[test]
    fn a_run_still_falling_behind_drops_each_second_and_a_failed_try_waits_longer() {
        // A machine that keeps up only at level 3: (lag, media time) → level.
        let script = [
            ((0, 0), 0),
            ((1_000, 1_400), 1),
            ((1_300, 2_000), 1),
            // A second at level 1 and the lag still grows: level 2, then 3, before it is 2 or 3 s behind.
            ((1_400, 2_400), 2),
            ((1_500, 3_400), 3),
            ((1_000, 5_000), 3),
            // Caught up: level 2 is tried; 150 ms more lag is not yet a failure, 270 ms is.
            ((250, 9_000), 2),
            ((400, 10_000), 2),
            ((520, 11_000), 3),
            // The next try waits 2 s, fails again; the one after waits 4 s.
            ((200, 12_000), 3),
            ((200, 13_000), 2),
            ((460, 14_000), 3),
            ((100, 17_000), 3),
            ((250, 18_000), 2),
            // Held for 4 s: a try that worked, the next comes a second later ...
            ((320, 22_000), 2),
            ((200, 23_000), 1),
            // ... and fails by a slow drift: 120 ms over its first 4 s.
            ((300, 25_000), 1),
            ((320, 27_000), 2),
        ];
        assert_eq!(play(&script), [1, 2, 3, 2, 3, 2, 3, 2, 1, 2], "every change logged once");
    }

    #[test]
    fn a_held_level_is_kept_whatever_the_lag_and_logged_once() {
        let events = std::sync::Mutex::new(Vec::new());
        let log = |e: LiveEvent| events.lock().unwrap().push(e);
        let mut pacer = Pacer::new(Rational(1, 1000), &log).holding(Some(3));
        let levels: Vec<u8> =
            [(0, 0), (5_000, 1_000), (100, 3_000), (100, 9_000)].map(|(lag, media)| pacer.step(lag, media, 0)).into();
        assert_eq!(levels, [3, 3, 3, 3]);
        assert_eq!(events.lock().unwrap().len(), 1);
        let mut free = Pacer::new(Rational(1, 1000), &log).holding(None);
        assert_eq!(free.step(100, 0, 0), 0);
    }

    #[test]
    fn latency_percentiles_come_from_the_buckets() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.percentile(0.5), None);
        for ms in 1..=100 {
            h.add(ms as f64);
        }
        assert_eq!((h.percentile(0.5), h.percentile(0.95), h.max_ms()), (Some(50), Some(95), 100.0));
    }
}
