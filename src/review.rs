//! Review sheets: a contact sheet of sampled redacted frames with time codes, so a reviewer can check a
//! file in seconds. Frames are picked two ways: those with the most redacted faces, and evenly spaced ones.
//! Thumbnails are made from the *redacted* output frames only.

use crate::{Error, Result};
use image::{imageops, Rgb, RgbImage};
use std::path::Path;

/// Thumbnail width in pixels.
pub const THUMB_WIDTH: u32 = 320;
const COLUMNS: u32 = 4;
const LABEL_HEIGHT: u32 = 24;

struct Thumb {
    index: u64,
    time: String,
    faces: usize,
    image: RgbImage,
}

/// Collects thumbnails while frames stream past, with bounded memory (at most `2 × per_kind` spaced plus
/// `per_kind` busiest thumbnails).
pub struct ReviewCollector {
    per_kind: usize,
    stride: u64,
    spaced: Vec<Thumb>,
    busiest: Vec<Thumb>,
}

impl ReviewCollector {
    pub fn new(per_kind: usize) -> Self {
        Self { per_kind: per_kind.max(1), stride: 1, spaced: Vec::new(), busiest: Vec::new() }
    }

    fn wants_spaced(&self, index: u64) -> bool {
        index % self.stride == 0
    }

    fn wants_busy(&self, faces: usize) -> bool {
        faces > 0 && (self.busiest.len() < self.per_kind || self.busiest.iter().any(|t| t.faces < faces))
    }

    /// Whether frame `index` with `faces` redacted faces would be kept (so the caller makes a thumbnail).
    pub fn wants(&self, index: u64, faces: usize) -> bool {
        self.wants_spaced(index) || self.wants_busy(faces)
    }

    /// Offers a thumbnail of frame `index`.
    pub fn offer(&mut self, index: u64, time: String, faces: usize, image: &RgbImage) {
        if self.wants_busy(faces) {
            self.busiest.push(Thumb { index, time: time.clone(), faces, image: image.clone() });
            self.busiest.sort_by(|a, b| b.faces.cmp(&a.faces).then(a.index.cmp(&b.index)));
            self.busiest.truncate(self.per_kind);
        }
        if self.wants_spaced(index) {
            self.spaced.push(Thumb { index, time, faces, image: image.clone() });
            // Too many: keep every other one and sample half as often from now on.
            if self.spaced.len() >= 2 * self.per_kind {
                self.stride *= 2;
                let stride = self.stride;
                self.spaced.retain(|t| t.index % stride == 0);
            }
        }
    }

    /// Composes the sheet: busiest frames first, then evenly spaced ones, each labelled with its time code
    /// and number of redacted faces, in time order within each group.
    pub fn compose(mut self) -> Option<RgbImage> {
        let mut busiest = std::mem::take(&mut self.busiest);
        busiest.sort_by_key(|t| t.index);
        let chosen: Vec<&Thumb> = {
            let picked: Vec<u64> = busiest.iter().map(|t| t.index).collect();
            busiest.iter().chain(self.spaced.iter().filter(|t| !picked.contains(&t.index))).collect()
        };
        let first = chosen.first()?;
        let th = first.image.height();
        let n = chosen.len() as u32;
        let rows = n.div_ceil(COLUMNS);
        let cols = n.min(COLUMNS);
        let mut sheet =
            RgbImage::from_pixel(cols * (THUMB_WIDTH + 4) + 4, rows * (th + LABEL_HEIGHT + 4) + 4, Rgb([32, 32, 32]));
        for (i, t) in chosen.iter().enumerate() {
            let (c, r) = (i as u32 % COLUMNS, i as u32 / COLUMNS);
            let (x, y) = (4 + c * (THUMB_WIDTH + 4), 4 + r * (th + LABEL_HEIGHT + 4));
            imageops::overlay(&mut sheet, &t.image, x as i64, y as i64);
            let label = format!("{} {}", t.time, t.faces);
            draw_text(&mut sheet, x + 4, y + th + 5, &label, Rgb([235, 235, 235]));
        }
        Some(sheet)
    }
}

/// Scales a redacted RGB frame to a thumbnail.
pub fn thumbnail(frame: &RgbImage) -> RgbImage {
    let h = ((frame.height() as u64 * THUMB_WIDTH as u64) / frame.width().max(1) as u64).max(1) as u32;
    imageops::resize(frame, THUMB_WIDTH, h, imageops::FilterType::Triangle)
}

pub fn save_sheet(sheet: &RgbImage, path: &Path, overwrite: bool) -> Result<()> {
    let mut bytes = Vec::new();
    sheet
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .map_err(|e| Error::Encode { path: path.to_path_buf(), reason: e.to_string() })?;
    crate::io::write_atomic_with(path, &bytes, overwrite)
}

/// 3×5 glyphs for time codes and counts; each row is 3 bits, most significant on the left.
fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        ':' => [0, 2, 0, 2, 0],
        '.' => [0, 0, 0, 0, 2],
        _ => [0; 5],
    }
}

fn draw_text(img: &mut RgbImage, x: u32, y: u32, text: &str, colour: Rgb<u8>) {
    const SCALE: u32 = 3;
    for (i, ch) in text.chars().enumerate() {
        let g = glyph(ch);
        let gx = x + i as u32 * 4 * SCALE;
        for (row, bits) in g.iter().enumerate() {
            for col in 0..3u32 {
                if bits & (4 >> col) != 0 {
                    for dy in 0..SCALE {
                        for dx in 0..SCALE {
                            let (px, py) = (gx + col * SCALE + dx, y + row as u32 * SCALE + dy);
                            if px < img.width() && py < img.height() {
                                img.put_pixel(px, py, colour);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_busiest_and_evenly_spaced_frames_with_bounded_memory() {
        let mut c = ReviewCollector::new(4);
        let img = RgbImage::new(8, 6);
        for i in 0..1000u64 {
            let faces = if i == 333 {
                9
            } else if i % 100 == 50 {
                2
            } else {
                0
            };
            if c.wants(i, faces) {
                c.offer(i, format!("{i}"), faces, &img);
            }
            assert!(c.spaced.len() < 8 && c.busiest.len() <= 4);
        }
        assert_eq!(c.busiest[0].index, 333);
        let spaced: Vec<u64> = c.spaced.iter().map(|t| t.index).collect();
        assert!(spaced.len() >= 4 && spaced[0] == 0, "{spaced:?}");
        let gaps: Vec<u64> = spaced.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|g| *g == gaps[0]), "not evenly spaced: {spaced:?}");
        let sheet = c.compose().unwrap();
        assert!(sheet.width() > 4 * 8);
    }

    #[test]
    fn labels_are_drawn() {
        let mut img = RgbImage::new(60, 20);
        draw_text(&mut img, 0, 0, "01:2", Rgb([255, 255, 255]));
        assert!(img.pixels().filter(|p| p[0] == 255).count() > 20);
    }
}
