//! A recorder's view of faceveil: raw I420 frames from a "camera" are pushed as they are captured and
//! pulled back redacted, in order, a few frames later. Only the core library is used (no FFmpeg).
//!
//! ```text
//! cargo run --release --example frames -- [OUTPUT.png]
//! ```
//!
//! The camera here is synthetic: the shipped public-domain portrait sliding across a 1280×720 grey frame,
//! 25 frames at 25 fps. The last redacted frame is saved as OUTPUT.png (default `frames-example.png`).

use faceveil::detect::{CenterFace, SessionOptions};
use faceveil::frames::{Frame, FrameRedactor, PixelLayout};
use faceveil::Options;
use image::RgbImage;
use std::time::Instant;

const W: u32 = 1280;
const H: u32 = 720;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let output = std::env::args().nth(1).unwrap_or_else(|| "frames-example.png".into());
    let portrait = image::open(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/astronaut.png"))?
        .resize_exact(300, 300, image::imageops::FilterType::Triangle)
        .to_rgb8();

    let options = Options::default();
    let detector = CenterFace::load_default(options.detect.clone(), &SessionOptions::default())?;
    let mut redactor = FrameRedactor::new(detector, options)?;
    println!("look-ahead: {} frames", redactor.delay_frames());

    // Time base 1/90000 (as MPEG-TS uses); 25 fps is 3600 ticks per frame.
    let mut pushed_at = std::collections::VecDeque::new();
    let mut last = None;
    for n in 0..25u32 {
        let frame = camera_frame(&portrait, n);
        pushed_at.push_back(Instant::now());
        redactor.push(frame)?;
        while let Some(out) = redactor.pull() {
            report(&out, pushed_at.pop_front());
            last = Some(out);
        }
    }
    redactor.flush()?;
    while let Some(out) = redactor.pull() {
        report(&out, pushed_at.pop_front());
        last = Some(out);
    }
    let stats = redactor.stats();
    println!(
        "{} frames in, {} out, faces detected in {}, {} redacted",
        stats.frames, stats.frames_released, stats.frames_with_faces, stats.frames_redacted
    );
    if let Some(frame) = last {
        frame.to_rgb()?.save(&output)?;
        println!("last frame saved to {output}");
    }
    Ok(())
}

fn report(frame: &Frame, pushed: Option<Instant>) {
    let ms = pushed.map(|t| t.elapsed().as_secs_f64() * 1000.0).unwrap_or(0.0);
    println!("frame pts {:>6}: out {ms:>6.0} ms after it was pushed", frame.pts);
}

/// Frame `n` of the synthetic camera, as I420.
fn camera_frame(portrait: &RgbImage, n: u32) -> Frame {
    let mut rgb = RgbImage::from_pixel(W, H, image::Rgb([90, 90, 90]));
    image::imageops::overlay(&mut rgb, portrait, i64::from(100 + n * 30), 200);
    Frame::new(PixelLayout::I420, W, H, i64::from(n) * 3600, to_i420(&rgb)).expect("I420 frame of the right size")
}

/// RGB to I420 (BT.601 limited range), as a capture device would deliver it.
fn to_i420(rgb: &RgbImage) -> Vec<u8> {
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let mut out = vec![0u8; w * h + 2 * cw * ch];
    let (y_plane, chroma) = out.split_at_mut(w * h);
    let (u_plane, v_plane) = chroma.split_at_mut(cw * ch);
    for (i, p) in rgb.pixels().enumerate() {
        let [r, g, b] = p.0.map(f32::from);
        y_plane[i] = (16.0 + 0.257 * r + 0.504 * g + 0.098 * b).round() as u8;
        let (x, y) = (i % w, i / w);
        if x % 2 == 0 && y % 2 == 0 {
            let c = (y / 2) * cw + x / 2;
            u_plane[c] = (128.0 - 0.148 * r - 0.291 * g + 0.439 * b).round() as u8;
            v_plane[c] = (128.0 + 0.439 * r - 0.368 * g - 0.071 * b).round() as u8;
        }
    }
    out
}
