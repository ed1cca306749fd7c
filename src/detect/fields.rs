//! Interlaced frames (archived CCTV from DVRs, broadcast 576i/1080i): each frame holds two pictures taken a
//! field apart, one on its even lines and one on its odd lines. Where something moves, the frame shows it
//! twice, combed, and the detectors find neither (a 17 px face crossing a 576i picture at 10 px a field kept
//! its detail on 30 of 61 fields, docs/performance.md). The detector is given the first field's picture instead
//! ([`first_field`]); the second field's faces lie between this frame's and the next one's, which the core
//! covers ([`Core`](crate::analyse::Core)).

use crate::geom::Rotation;
use image::RgbImage;

/// How a stream's frames hold their pictures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Scan {
    /// One picture a frame.
    #[default]
    Progressive,
    /// Two pictures a field apart on alternate lines (archived CCTV, broadcast 576i/1080i, analogue capture), the
    /// even lines the earlier when `top_first`. The detectors see the first field's picture, and each frame is
    /// redacted also where its faces go on the way to the next frame's (the second field's faces):
    /// this module.
    Interlaced { top_first: bool },
}

/// A line of the second field is taken as it is where it agrees with the first field's lines around it (a
/// still scene keeps its full detail), and from them where it lies beyond both by more than this (summed
/// over the three channels): there the picture moved between the fields.
const COMB: i32 = 3 * 12;

/// Turns an interlaced frame (`top_first`: the even lines are the earlier field) into its first field's
/// picture, in place: the second field's lines are kept where they agree with the first field around them
/// and made from it (the mean of the lines above and below) where they comb.
pub fn first_field(picture: &mut RgbImage, top_first: bool) {
    let (w, h) = (picture.width() as usize, picture.height() as usize);
    if h < 2 {
        return;
    }
    let row = w * 3;
    let buf: &mut [u8] = picture;
    // The second field's lines: odd when the top field comes first.
    let first_second = usize::from(top_first);
    for y in (first_second..h).step_by(2) {
        // The first field's lines around it (one of them at the top or bottom edge).
        let above = if y > 0 { y - 1 } else { y + 1 };
        let below = if y + 1 < h { y + 1 } else { y - 1 };
        for x in 0..w {
            let (a, b, c) = (above * row + 3 * x, below * row + 3 * x, y * row + 3 * x);
            let (mut lo, mut hi) = (0i32, 0i32);
            for k in 0..3 {
                let (pa, pb, pc) = (i32::from(buf[a + k]), i32::from(buf[b + k]), i32::from(buf[c + k]));
                lo += pc - pa.min(pb);
                hi += pc - pa.max(pb);
            }
            // Beyond both neighbours, the same way, by more than COMB: the line belongs to another moment.
            if lo < -COMB || hi > COMB {
                for k in 0..3 {
                    buf[c + k] = (u16::from(buf[a + k]) + u16::from(buf[b + k])).div_ceil(2) as u8;
                }
            }
        }
    }
}

/// [`first_field`] for a frame shown turned by `rotation` (`picture` is upright; the fields are lines of the
/// stored frame, `stored_height` of them). A frame turned a quarter has its fields in columns: left as it is
/// (the core still covers its second field from both frames' regions).
pub fn first_field_upright(picture: &mut RgbImage, rotation: Rotation, stored_height: u32, top_first: bool) {
    match rotation {
        Rotation::None => first_field(picture, top_first),
        // Stored line y is upright line h - 1 - y: the even lines stay even when h is odd.
        Rotation::Cw180 => first_field(picture, top_first == (stored_height % 2 == 1)),
        Rotation::Cw90 | Rotation::Cw270 => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// A 40×40 grey picture with a bright 10×10 square whose even lines (the first field, top first) are at
    /// x = `first` and odd lines at x = `second`.
    fn combed(first: u32, second: u32) -> RgbImage {
        RgbImage::from_fn(40, 40, |x, y| {
            let at = if y % 2 == 0 { first } else { second };
            if (15..25).contains(&y) && (at..at + 10).contains(&x) {
                Rgb([220, 200, 180])
            } else {
                Rgb([60, 60, 60])
            }
        })
    }

    #[test]
    fn a_moved_square_is_seen_where_the_first_field_has_it_and_a_still_one_keeps_every_line() {
        let mut moved = combed(5, 20);
        first_field(&mut moved, true);
        // The square where the first field has it, on every line between its first and last (whole inside).
        for y in 16..24 {
            for x in 5..15 {
                assert!(moved.get_pixel(x, y)[0] > 120, "({x}, {y}) lost the square: {:?}", moved.get_pixel(x, y));
            }
            // Where only the second field had it: gone.
            for x in 20..30 {
                assert_eq!(moved.get_pixel(x, y), &Rgb([60, 60, 60]), "({x}, {y}) keeps the later square");
            }
        }
        // A square that did not move is left exactly as it is, fine lines and all.
        let still = combed(12, 12);
        let mut kept = still.clone();
        first_field(&mut kept, true);
        assert_eq!(kept, still);
        // Bottom field first: the odd lines are the first field.
        let mut bottom = combed(20, 5);
        first_field(&mut bottom, false);
        assert_eq!(bottom.get_pixel(7, 18), &Rgb([220, 200, 180]), "the odd lines' square is kept");
        assert_eq!(bottom.get_pixel(22, 18), &Rgb([60, 60, 60]), "the even lines' square is gone");
    }
}
