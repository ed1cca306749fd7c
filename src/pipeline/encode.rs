//! The last two stages: redaction applies each frame's verdict to its planes and offers the frame to the review
//! sheet; encoding encodes it and hands the packets, with the copied streams' packets, to the sink. They run on
//! threads of their own, so that x264 encodes one frame while the next is redacted (in a crowd both are heavy:
//! on one thread they were the run's slowest stage, ahead of detection).

use super::analyse::Analysed;
use super::decode::Decoded;
use super::pace::LiveEvent;
use super::thumbs::Thumbnails;
use crate::geom::Rotation;
use crate::io::ffmpeg::output::Sink;
use crate::io::ffmpeg::picture::{for_each_plane, turned_frame};
use crate::redact::RedactSettings;
use crate::review::ReviewCollector;
use crate::{Error, Result};
use crossbeam_channel::{Receiver, Sender};
use ff::{encoder, picture, Packet, Rational};
use ffmpeg_next as ff;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Instant;

pub(crate) struct RedactStage<'a, 'r> {
    pub(crate) redact: &'a RedactSettings,
    /// Review runs: the sheet the redacted frames are offered to, and how to show them upright in time.
    pub(crate) review: Option<(&'r mut ReviewCollector, Rotation, Rational)>,
}

impl RedactStage<'_, '_> {
    /// Redacts each analysed frame and passes it on, until the analysed frames end. A frame that cannot be
    /// redacted fails the run and is not passed on: nothing after it reaches the encoder.
    pub(crate) fn run(self, done_rx: Receiver<Analysed>, redacted_tx: Sender<Decoded>) -> Result<()> {
        let RedactStage { redact, review } = self;
        let mut thumbnails = review.map(|(collector, rotation, tb)| Thumbnails::new(collector, rotation, tb));
        for Analysed { mut decoded, verdict } in done_rx {
            let index = decoded.index;
            if verdict.changes_pixels() {
                for_each_plane(&mut decoded.frame, |plane, layout| verdict.apply(plane, layout, redact))
                    .map_err(|e| Error::Frame { path: PathBuf::new(), frame: index, source: Box::new(e) })?;
            }
            if let Some(t) = thumbnails.as_mut() {
                t.offer(&decoded.frame, index, verdict.boxes.len());
            }
            redacted_tx.send(decoded).map_err(|_| Error::Cancelled)?;
        }
        Ok(())
    }
}

pub(crate) struct EncodeStage<'a> {
    pub(crate) sink: &'a mut dyn Sink,
    pub(crate) encoder: encoder::Video,
    /// Each frame turned by this before it is encoded (a rotation flag the output container cannot carry).
    pub(crate) turn: Option<Rotation>,
    /// Called with the number of frames written so far.
    pub(crate) progress: &'a dyn Fn(u64),
    /// Live runs: each frame's end-to-end latency is logged.
    pub(crate) live: Option<&'a (dyn Fn(LiveEvent) + Sync)>,
}

/// What the encode stage did.
pub(crate) struct Encoded {
    pub(crate) written: u64,
    /// When the last frame was handed to the output.
    pub(crate) finished_at: Instant,
}

impl EncodeStage<'_> {
    /// Runs until both the redacted frames and the copied packets have ended, then flushes the encoder and
    /// finishes the sink.
    pub(crate) fn run(self, redacted_rx: Receiver<Decoded>, pkt_rx: Receiver<Packet>) -> Result<Encoded> {
        let EncodeStage { sink, mut encoder, turn, progress, live } = self;
        let werr = |reason: String| Error::Encode { path: PathBuf::new(), reason };
        let mut written = 0u64;
        // Frames inside the encoder, for live latency: (pts, frame index, read at).
        let mut in_encoder: VecDeque<(i64, u64, Instant)> = VecDeque::new();
        let write_encoded = |encoder: &mut encoder::Video,
                             sink: &mut dyn Sink,
                             in_encoder: &mut VecDeque<(i64, u64, Instant)>|
         -> Result<()> {
            let mut pkt = Packet::empty();
            loop {
                // "Needs more input" and "flushed" end the loop; any other error is the encoder failing, and the
                // run fails rather than end with frames missing.
                match encoder.receive_packet(&mut pkt) {
                    Ok(()) => {}
                    Err(ff::Error::Eof) => break,
                    Err(e) if e == (ff::Error::Other { errno: ff::error::EAGAIN }) => break,
                    Err(e) => return Err(werr(format!("encoder failed: {e}"))),
                }
                let pts = pkt.pts().unwrap_or(i64::MIN);
                sink.write_video(std::mem::replace(&mut pkt, Packet::empty()))?;
                if let Some(log) = live {
                    while in_encoder.front().is_some_and(|(p, _, _)| *p <= pts) {
                        if let Some((_, frame, read_at)) = in_encoder.pop_front() {
                            log(LiveEvent::Latency { frame, ms: read_at.elapsed().as_secs_f64() * 1000.0 });
                        }
                    }
                }
            }
            Ok(())
        };
        let (mut video_open, mut pkts_open) = (true, true);
        let never = crossbeam_channel::never::<Packet>();
        while video_open || pkts_open {
            crossbeam_channel::select! {
                recv(redacted_rx) -> msg => match msg {
                    Ok(Decoded { mut frame, index, read_at }) => {
                        if let Some(turn) = turn {
                            frame = turned_frame(&frame, turn)
                                .map_err(|e| Error::Frame { path: PathBuf::new(), frame: index, source: Box::new(e) })?;
                        }
                        let pts = frame.pts().unwrap_or(0);
                        if sink.wants_keyframe(pts) {
                            frame.set_kind(picture::Type::I);
                        }
                        encoder.send_frame(&frame).map_err(|e| werr(format!("encoder rejected frame {index}: {e}")))?;
                        if live.is_some() {
                            in_encoder.push_back((pts, index, read_at));
                        }
                        written += 1;
                        progress(written);
                        write_encoded(&mut encoder, sink, &mut in_encoder)?;
                    }
                    Err(_) => { video_open = false; }
                },
                recv(if pkts_open { &pkt_rx } else { &never }) -> msg => match msg {
                    Ok(pkt) => sink.write_copy(pkt)?,
                    Err(_) => { pkts_open = false; }
                },
            }
        }
        encoder.send_eof().map_err(|e| werr(format!("encoder flush: {e}")))?;
        write_encoded(&mut encoder, sink, &mut in_encoder)?;
        sink.finish()?;
        Ok(Encoded { written, finished_at: Instant::now() })
    }
}
