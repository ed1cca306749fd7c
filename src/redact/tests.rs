use super::*;
use image::{Rgb, RgbImage};

/// A high-contrast checkerboard with 2-pixel squares: the kind of fine detail that identifies a face.
fn checker(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let v = if ((x / 2) + (y / 2)) % 2 == 0 { 230 } else { 20 };
        Rgb([v, 255 - v, (x * 7 + y * 3) as u8])
    })
}

/// Mean absolute difference between horizontally adjacent pixels of the green channel inside `r`:
/// a crude measure of the fine detail left.
fn detail(img: &RgbImage, r: &crate::geom::PixelRect) -> f64 {
    let (mut s, mut n) = (0f64, 0f64);
    for y in r.y0..r.y1 {
        for x in r.x0..r.x1 - 1 {
            s += (img.get_pixel(x, y)[1] as f64 - img.get_pixel(x + 1, y)[1] as f64).abs();
            n += 1.0;
        }
    }
    s / n
}

fn all_styles() -> Vec<RedactSettings> {
    let mut v = Vec::new();
    for style in [Style::Blur, Style::Pixelate, Style::Fill] {
        for shape in [Shape::Ellipse, Shape::Box] {
            v.push(RedactSettings { style, shape, mask_scale: 1.0 });
        }
    }
    v
}

#[test]
fn inside_changed_outside_untouched_for_every_style_and_shape() {
    for settings in all_styles() {
        let orig = checker(200, 160);
        let mut img = orig.clone();
        let face = BBox::new(60.0, 40.0, 140.0, 120.0);
        redact_rgb(&mut img, &[face], &settings).unwrap();
        // The inner 60 % of the face box lies inside the ellipse too: detail there must be gone.
        let inner = BBox::new(76.0, 56.0, 124.0, 104.0).to_pixel_rect(200, 160);
        let before = detail(&orig, &inner);
        let after = detail(&img, &inner);
        assert!(after < before * 0.15, "{settings:?}: detail {before} -> {after}");
        // Nothing outside the mask box changed.
        for (x, y, p) in img.enumerate_pixels() {
            let outside = (x as f32) + 0.5 < face.x0
                || (x as f32) + 0.5 >= face.x1
                || (y as f32) + 0.5 < face.y0
                || (y as f32) + 0.5 >= face.y1;
            if outside {
                assert_eq!(p, orig.get_pixel(x, y), "{settings:?} changed ({x},{y}) outside the mask");
            }
        }
    }
}

#[test]
fn ellipse_leaves_box_corners_untouched() {
    let orig = checker(100, 100);
    let mut img = orig.clone();
    let settings = RedactSettings { style: Style::Fill, shape: Shape::Ellipse, mask_scale: 1.0 };
    redact_rgb(&mut img, &[BBox::new(20.0, 20.0, 80.0, 80.0)], &settings).unwrap();
    assert_eq!(img.get_pixel(21, 21), orig.get_pixel(21, 21));
    assert_ne!(img.get_pixel(50, 50), orig.get_pixel(50, 50));
}

#[test]
fn mask_scale_enlarges_the_region() {
    let orig = checker(100, 100);
    let face = BBox::new(40.0, 40.0, 60.0, 60.0);
    let mut a = orig.clone();
    redact_rgb(&mut a, &[face], &RedactSettings { style: Style::Fill, shape: Shape::Box, mask_scale: 1.0 }).unwrap();
    let mut b = orig.clone();
    redact_rgb(&mut b, &[face], &RedactSettings { style: Style::Fill, shape: Shape::Box, mask_scale: 2.0 }).unwrap();
    assert_eq!(a.get_pixel(35, 50), orig.get_pixel(35, 50));
    assert_ne!(b.get_pixel(35, 50), orig.get_pixel(35, 50));
    assert_eq!(b.get_pixel(25, 50), orig.get_pixel(25, 50));
}

#[test]
fn a_mosaic_has_four_cells_across_at_a_fortieth_of_their_contrast_issue_34() {
    // Left half black, right half white: four cells across, each keeping a fortieth of its distance from the mean
    // of them all (100): 97.5 and 102.5, rounded away from it. At half contrast (50 and 150) FaceNet linked
    // covered faces on hand-held video.
    let mut img = RgbImage::from_fn(80, 80, |x, _| if x < 40 { Rgb([0, 0, 0]) } else { Rgb([200, 200, 200]) });
    let settings = RedactSettings { style: Style::Pixelate, shape: Shape::Box, mask_scale: 1.0 };
    redact_rgb(&mut img, &[BBox::new(0.0, 0.0, 80.0, 80.0)], &settings).unwrap();
    let row: Vec<u8> = (0..80).step_by(10).map(|x| img.get_pixel(x, 40)[0]).collect();
    assert_eq!(row, vec![98, 98, 98, 98, 103, 103, 103, 103], "cells of 20 px, a fortieth of the contrast");
}

#[test]
fn a_blurred_face_keeps_at_most_a_fortieth_of_its_light_and_shadow_issue_34() {
    // A face lit from one side with dark eyes and mouth: the coarse relief a blur alone leaves and FaceNet, which
    // stretches its crop to full contrast, still linked to the face on hand-held video when a tenth of it was
    // kept. Whatever of it is left spans at most a fortieth of the 200 levels (and rounding).
    let orig = RgbImage::from_fn(160, 160, |x, y| {
        let feature =
            [(60, 65), (100, 65), (80, 110)].iter().any(|&(cx, cy)| x.abs_diff(cx) < 10 && y.abs_diff(cy) < 6);
        let v = if feature {
            10
        } else if x < 80 {
            40
        } else {
            210
        };
        Rgb([v, v, v])
    });
    let settings = RedactSettings { style: Style::Blur, shape: Shape::Box, mask_scale: 1.0 };
    let mut img = orig.clone();
    redact_rgb(&mut img, &[BBox::new(20.0, 20.0, 140.0, 140.0)], &settings).unwrap();
    let values: Vec<u8> =
        (20..140).flat_map(|y| (20..140).map(move |x| (x, y))).map(|(x, y)| img.get_pixel(x, y)[0]).collect();
    let (lo, hi) = (values.iter().min().copied().unwrap_or(0), values.iter().max().copied().unwrap_or(0));
    assert!(hi - lo <= 6, "the blurred face spans levels {lo}..={hi}");
    // Still a blur that follows the light, faintly: the lit side stays the lighter.
    let side = |x0: u32| (40..120).map(|y| u32::from(img.get_pixel(x0, y)[0])).sum::<u32>();
    assert!(side(125) > side(35), "the lit side keeps its light, faintly");
}

#[test]
fn strength_scales_with_face_size() {
    assert_eq!(blur_radius(10.0), 2);
    assert_eq!(blur_radius(100.0), 20);
    assert_eq!(blur_radius(400.0), 80);
    assert_eq!(pixel_cell(100.0), 25);
    // A large face is left with as little detail as a small one: coarse (8-pixel) structure in a 400-pixel
    // face must be destroyed just as 2-pixel structure is in a 40-pixel face.
    for (size, square) in [(40u32, 2u32), (400, 8)] {
        let orig = RgbImage::from_fn(size + 40, size + 40, |x, y| {
            let v = if ((x / square) + (y / square)) % 2 == 0 { 230 } else { 20 };
            Rgb([v, v, v])
        });
        let mut img = orig.clone();
        let face = BBox::new(20.0, 20.0, 20.0 + size as f32, 20.0 + size as f32);
        redact_rgb(&mut img, &[face], &RedactSettings::default()).unwrap();
        let c = size / 2 + 20;
        let inner =
            BBox::new((c - size / 5) as f32, (c - size / 5) as f32, (c + size / 5) as f32, (c + size / 5) as f32)
                .to_pixel_rect(size + 40, size + 40);
        // Correlation of the redacted pixels with the original pattern (grain is uncorrelated with it).
        let (mut so, mut sr, mut n) = (0f64, 0f64, 0f64);
        for y in inner.y0..inner.y1 {
            for x in inner.x0..inner.x1 {
                so += orig.get_pixel(x, y)[0] as f64;
                sr += img.get_pixel(x, y)[0] as f64;
                n += 1.0;
            }
        }
        let (mo, mr) = (so / n, sr / n);
        let (mut cov, mut vo, mut vr) = (0f64, 0f64, 0f64);
        for y in inner.y0..inner.y1 {
            for x in inner.x0..inner.x1 {
                let (a, b) = (orig.get_pixel(x, y)[0] as f64 - mo, img.get_pixel(x, y)[0] as f64 - mr);
                cov += a * b;
                vo += a * a;
                vr += b * b;
            }
        }
        let corr = cov / (vo.sqrt() * vr.sqrt()).max(1e-9);
        assert!(corr.abs() < 0.1, "size {size}: correlation {corr:.2} with the original pattern");
    }
}

/// The blur of one mask as it was before masks were grouped: one mask at a time.
fn blurred_alone(orig: &RgbImage, faces: &[BBox], settings: &RedactSettings) -> RgbImage {
    let mut img = orig.clone();
    for face in faces {
        redact_rgb(&mut img, std::slice::from_ref(face), settings).unwrap();
    }
    img
}

#[test]
fn overlapping_masks_are_blurred_once_together_at_least_as_strongly_as_each_alone() {
    let orig = checker(240, 200);
    let settings = RedactSettings::default();
    // One face's boxes from neighbouring frames (shifted), a smaller face overlapping the first, and one apart.
    let faces = [
        BBox::new(40.0, 40.0, 100.0, 110.0),
        BBox::new(46.0, 43.0, 106.0, 113.0),
        BBox::new(98.0, 60.0, 128.0, 95.0),
        BBox::new(170.0, 120.0, 210.0, 170.0),
    ];
    let mut img = orig.clone();
    redact_rgb(&mut img, &faces, &settings).unwrap();
    let masks: Vec<BBox> = faces.iter().map(|f| settings.mask_box(f)).collect();
    for (x, y, p) in img.enumerate_pixels() {
        let inside = masks.iter().any(|m| in_mask(settings.shape, m, x, y));
        if !inside {
            assert_eq!(p, orig.get_pixel(x, y), "({x},{y}) outside every mask changed");
        }
    }
    // In every face's inner part, no more detail than when its mask is blurred alone.
    for face in &faces {
        let inner = face.scaled(0.6).to_pixel_rect(240, 200);
        let alone = blurred_alone(&orig, std::slice::from_ref(face), &settings);
        let (together, single) = (detail(&img, &inner), detail(&alone, &inner));
        assert!(together <= single + 0.5, "{face:?}: detail {together} together, {single} alone");
        assert!(together < detail(&orig, &inner) * 0.15, "{face:?}: detail {together} left");
    }
    // The face apart from the others is blurred exactly as alone; the group is not the masks one by one.
    let one_by_one = blurred_alone(&orig, &faces, &settings);
    let apart = masks[3].to_pixel_rect(240, 200);
    let (mut same_apart, mut differ_group) = (true, false);
    for (x, y, p) in img.enumerate_pixels() {
        let q = one_by_one.get_pixel(x, y);
        if (apart.x0..apart.x1).contains(&x) && (apart.y0..apart.y1).contains(&y) {
            same_apart &= p == q;
        } else {
            differ_group |= p != q;
        }
    }
    assert!(same_apart, "a mask that overlaps none is blurred as it was alone");
    assert!(differ_group, "the overlapping masks are blurred together, not one after another");
}

#[test]
fn overlapping_masks_share_one_level_and_leave_no_patchwork_of_the_light_under_them() {
    // A dark part, a bright part and a grey part. Two masks overlap by much across the dark-bright edge, as one
    // face's boxes from neighbouring frames do; a third, mostly in the grey part, touches the second by a sliver,
    // as faces side by side in a crowd do. Pulled each toward its own
    // mean, the two would leave a dark patch and a bright one: the coarse light and shadow of what they hide,
    // which FaceNet (prewhitening its crop) linked to the faces under such patchworks (issue 34). They share one
    // level instead; the mask beside them keeps its own light, as when redacted alone.
    let shade = |x: u32| {
        if x < 100 {
            20
        } else if x < 180 {
            220
        } else {
            120
        }
    };
    let orig = RgbImage::from_fn(260, 100, |x, _| Rgb([shade(x); 3]));
    let (dark, bright, beside) =
        (BBox::new(40.0, 30.0, 110.0, 90.0), BBox::new(80.0, 30.0, 150.0, 90.0), BBox::new(145.0, 30.0, 205.0, 90.0));
    // How much of the 200 levels between dark and bright each style may keep between the two masks' own parts.
    for (style, keep) in
        [(Style::Blur, style::SHADING_KEEP), (Style::Fill, 0.0), (Style::Pixelate, style::MOSAIC_SHADING_KEEP)]
    {
        let settings = RedactSettings { style, shape: Shape::Box, mask_scale: 1.0 };
        let mut img = orig.clone();
        redact_rgb(&mut img, &[dark, bright, beside], &settings).unwrap();
        let alone = blurred_alone(&orig, &[beside], &settings);
        let mean = |img: &RgbImage, x0: u32, x1: u32| {
            let values: Vec<f64> = (30..90)
                .flat_map(|y| (x0..x1).map(move |x| (x, y)))
                .map(|(x, y)| f64::from(img.get_pixel(x, y)[0]))
                .collect();
            values.iter().sum::<f64>() / values.len() as f64
        };
        let (left, right) = (mean(&img, 40, 80), mean(&img, 110, 145));
        assert!((right - left).abs() <= 200.0 * f64::from(keep) + 2.0, "{style:?}: {left} beside {right}");
        // Each toward the level (the mean under both masks), not its own mean: the dark part is lifted at least the
        // share not kept of the way up to it (a mosaic keeps half of each cell's distance by design).
        let level = f64::from((40..110).chain(80..150).map(|x| u32::from(shade(x))).sum::<u32>()) / 140.0;
        let lifted = 20.0 + (level - 20.0) * (1.0 - f64::from(keep));
        assert!(left >= lifted - 5.0, "{style:?}: the dark part kept its light: {left}, level {level}");
        // The mask touching by a sliver keeps its own light, as alone, whatever the style: every level is read
        // from the picture before any mask is written, so the sliver its neighbour redacted first does not
        // count toward it; and it is far from the level all three would share.
        let (together, own) = (mean(&img, 150, 205), mean(&alone, 150, 205));
        let all_three = f64::from((40..110).chain(80..150).chain(145..205).map(|x| u32::from(shade(x))).sum::<u32>());
        assert!((together - own).abs() < 1.0, "{style:?}: the mask touching by a sliver: {together}, alone {own}");
        assert!((together - all_three / 200.0).abs() > 30.0, "{style:?}: the sliver shares the level: {together}");
    }
}

#[test]
fn masks_group_by_overlap_and_size_in_order_of_their_first_member() {
    let layout = ChannelLayout::packed_rgb(400, 100)[0];
    let mask = |x0: f32, x1: f32, size: f32| style::Mask { area: BBox::new(x0, 0.0, x1, 10.0), size, level: None };
    // 0 and 2 overlap only through 3; 1 overlaps none (touching at a pixel edge is no overlap); 5 overlaps 4
    // but is blurred with a radius far smaller than 4's (2 against 20), and 6 overlaps 4 with 16.
    let masks = [
        mask(0.0, 10.0, 10.0),
        mask(40.0, 50.0, 10.0),
        mask(20.0, 30.0, 10.0),
        mask(8.0, 22.0, 10.0),
        mask(100.0, 200.0, 100.0),
        mask(150.0, 160.0, 10.0),
        mask(190.0, 270.0, 80.0),
    ];
    let groups: Vec<Vec<style::Mask>> =
        super::overlapping(&masks, &layout).into_iter().map(|g| g.into_iter().map(|i| masks[i]).collect()).collect();
    let xs = |g: &Vec<style::Mask>| {
        let mut xs: Vec<f32> = g.iter().map(|m| m.area.x0).collect();
        xs.sort_by(f32::total_cmp);
        xs
    };
    let groups: Vec<Vec<f32>> = groups.iter().map(xs).collect();
    assert_eq!(groups, vec![vec![0.0, 8.0, 20.0], vec![40.0], vec![100.0, 190.0], vec![150.0]]);
}

#[test]
fn a_chain_of_masks_across_a_large_picture_is_blurred_in_groups_of_bounded_work() {
    // 400 faces of one size in a row across an 8192-sample-wide picture, each overlapping the next: one group
    // would need work buffers for most of the picture.
    let layout = ChannelLayout::packed_rgb(8192, 1024)[0];
    let masks: Vec<style::Mask> = (0..400)
        .map(|i| style::Mask {
            area: BBox::new(i as f32 * 20.0, 0.0, i as f32 * 20.0 + 30.0, 1024.0),
            size: 30.0,
            level: None,
        })
        .collect();
    let groups: Vec<Vec<style::Mask>> =
        super::overlapping(&masks, &layout).into_iter().map(|g| g.into_iter().map(|i| masks[i]).collect()).collect();
    assert!(groups.len() > 1, "the chain is split");
    assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), masks.len(), "every mask in one group");
    for g in &groups {
        let (x0, x1) = g.iter().fold((f32::MAX, f32::MIN), |(a, b), m| (a.min(m.area.x0), b.max(m.area.x1)));
        let r = g.iter().map(|m| blur_radius(m.size)).max().unwrap() as f32;
        let work = BBox::new(x0 - r, -r, x1 + r, 1024.0 + r).to_pixel_rect(8192, 1024);
        assert!(u64::from(work.width()) * u64::from(work.height()) <= super::MAX_GROUP_WORK, "{} masks", g.len());
    }
}

#[test]
fn planar_chroma_uses_subsampled_coordinates() {
    // A 4:2:0 frame of 64x64: chroma planes are 32x32 with a padded stride of 40.
    let stride = 40;
    let mut u = vec![0u8; stride * 32];
    for y in 0..32 {
        for x in 0..32 {
            u[y * stride + x] = if (x + y) % 2 == 0 { 200 } else { 50 };
        }
    }
    let orig = u.clone();
    let layout = ChannelLayout::planar(32, 32, stride, 1, 1, false);
    let settings = RedactSettings { style: Style::Fill, shape: Shape::Box, mask_scale: 1.0 };
    // Face at frame pixels 32..64 -> chroma samples 16..32.
    redact_channel(&mut u, &layout, &[BBox::new(32.0, 32.0, 64.0, 64.0)], &settings).unwrap();
    assert_eq!(u[20 * stride + 20], 125);
    assert_eq!(u[10 * stride + 10], orig[10 * stride + 10]);
    assert_eq!(u[20 * stride + 35], 0, "padding must not be touched");
}

#[test]
fn layout_that_does_not_fit_buffer_is_an_error() {
    let mut buf = vec![0u8; 10];
    let layout = ChannelLayout::planar(8, 8, 8, 0, 0, true);
    assert!(redact_channel(&mut buf, &layout, &[BBox::new(0.0, 0.0, 4.0, 4.0)], &RedactSettings::default()).is_err());
}

#[test]
fn invalid_boxes_are_ignored_and_mask_scale_validated() {
    let mut img = checker(20, 20);
    let orig = img.clone();
    redact_rgb(&mut img, &[BBox::new(f32::NAN, 0.0, 5.0, 5.0)], &RedactSettings::default()).unwrap();
    assert_eq!(img, orig);
    assert!(RedactSettings { mask_scale: 0.5, ..Default::default() }.validate().is_err());
}

#[test]
fn mask_spans_hold_exactly_the_pixels_in_the_mask() {
    use super::{in_mask, mask_span, Shape};
    let mut noise = xorshift(0x9e37_79b9);
    let mut next = |scale: f32| (noise() % 10_000) as f32 / 10_000.0 * scale;
    for i in 0..4_000 {
        // Half of them in the frame, half reaching over its edges (their centres outside it too), down to
        // boxes under a pixel.
        let (x0, y0) = if i % 2 == 0 { (next(300.0), next(300.0)) } else { (next(500.0) - 100.0, next(500.0) - 100.0) };
        let size = if i % 7 == 0 { 2.0 } else { 80.0 };
        let b = BBox::new(x0, y0, x0 + next(size), y0 + next(size));
        for shape in [Shape::Ellipse, Shape::Box] {
            let r = b.to_pixel_rect(400, 400);
            // Rows above and below the mask's rectangle too: no pixel there is in it.
            for y in r.y0.saturating_sub(1)..(r.y1 + 1).min(400) {
                let (s, e) = mask_span(shape, &b, y, r.x0, r.x1);
                for x in r.x0..r.x1 {
                    assert_eq!(in_mask(shape, &b, x, y), (s..e).contains(&x), "{b:?} {shape:?} ({x}, {y})");
                }
            }
        }
    }
}

#[test]
fn random_crowds_are_redacted_in_every_layout_and_nothing_outside_their_masks_changes() {
    // Hundreds of random scenes: up to 60 faces each, from under a pixel to larger than the picture, many
    // overlapping (a face's boxes from neighbouring frames), some reaching over the picture's edges or lying
    // wholly outside it; in a padded luma plane, a subsampled chroma plane of odd size and packed RGB; every
    // style and shape. Redaction succeeds, changes no sample outside every mask's box (nor the padding), and
    // changes samples wherever the masks cover detail.
    let mut noise = xorshift(0x3c6e_f372);
    let mut next = |scale: f32| (noise() % 10_000) as f32 / 10_000.0 * scale;
    for scene in 0..240 {
        let (w, h) = (40 + (scene * 37 % 160) as u32, 30 + (scene * 53 % 140) as u32);
        let mut faces = Vec::new();
        for _ in 0..1 + (next(60.0) as usize) {
            let size = match next(10.0) as u32 {
                0 => next(1.5),
                1..=6 => 2.0 + next(40.0),
                7 | 8 => 40.0 + next(120.0),
                _ => 150.0 + next(300.0),
            };
            let (x, y) = (next(w as f32 + 2.0 * size) - size, next(h as f32 + 2.0 * size) - size);
            for k in 0..1 + (next(4.0) as usize) {
                let d = k as f32 * size * 0.1;
                faces.push(BBox::new(x + d, y + d * 0.5, x + d + size, y + d * 0.5 + size * 1.2));
            }
        }
        let settings = all_styles()[scene % 6].clone();
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let layouts = [
            ChannelLayout::planar(w, h, w as usize + 5, 0, 0, true),
            ChannelLayout::planar(cw, ch, cw as usize + 3, 1, 1, false),
        ];
        let [red, green, blue] = ChannelLayout::packed_rgb(w, h);
        for layouts in [&layouts[..1], &layouts[1..], &[red, green, blue][..]] {
            let len = layouts[0].stride * layouts[0].height as usize;
            let orig: Vec<u8> = (0..len).map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 24) as u8).collect();
            let mut buf = orig.clone();
            for layout in layouts {
                redact_channel(&mut buf, layout, &faces, &settings).unwrap();
            }
            // Each sample outside every mask's box, in this layout's samples, as it was.
            let mut inside = vec![false; len];
            for layout in layouts {
                let (fx, fy) = ((1u32 << layout.shift_x) as f32, (1u32 << layout.shift_y) as f32);
                for f in &faces {
                    let m = settings.mask_box(f);
                    let r = BBox::new(m.x0 / fx, m.y0 / fy, m.x1 / fx, m.y1 / fy)
                        .to_pixel_rect(layout.width, layout.height);
                    for y in r.y0..r.y1 {
                        for x in r.x0..r.x1 {
                            inside[layout.index(x, y)] = true;
                        }
                    }
                }
            }
            let outside_changed = (0..len).filter(|&i| !inside[i] && buf[i] != orig[i]).count();
            assert_eq!(outside_changed, 0, "scene {scene} {settings:?} {layouts:?}: {faces:?}");
            let inside_changed = (0..len).filter(|&i| inside[i] && buf[i] != orig[i]).count();
            let covered = (0..len).filter(|&i| inside[i]).count();
            assert!(covered < 64 || inside_changed > 0, "scene {scene} {settings:?}: nothing changed under the masks");
        }
    }
}

/// A reproducible stream of pseudo-random numbers for the tests (xorshift32; `seed` must not be 0).
pub(crate) fn xorshift(mut seed: u32) -> impl FnMut() -> u32 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    }
}

/// One 8-bit plane of `w × h` with fine detail everywhere, over a diagonal ramp.
fn detailed_plane(w: u32, h: u32) -> (Vec<u8>, ChannelLayout) {
    let plane = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x + y) as u8 + if ((x / 2) + (y / 2)) % 2 == 0 { 40 } else { 0 }))
        .collect();
    (plane, ChannelLayout::planar(w, h, w as usize, 0, 0, true))
}

#[test]
fn a_cover_is_a_mosaic_on_the_frames_grid_in_steps_of_eight_levels() {
    // A ramp; a cover from x 8 to 72 for faces of 64 px: cells of 16 on the plane's grid (16, 32, 48, 64), the
    // end pieces narrower than a cell (8..16, 64..72) joined to their neighbours.
    let (w, h) = (96u32, 32u32);
    let mut plane: Vec<u8> = (0..h).flat_map(|_| (0..w).map(|x| (x * 2) as u8)).collect();
    let orig = plane.clone();
    let layout = ChannelLayout::planar(w, h, w as usize, 0, 0, true);
    let settings = RedactSettings::default();
    cover_channel(&mut plane, &layout, &[BBox::new(8.0, 0.0, 72.0, 32.0)], &settings, 64.0).unwrap();
    let row = &plane[..w as usize];
    for (a, b) in [(8, 32), (32, 48), (48, 72)] {
        assert!(row[a..b].iter().all(|v| *v == row[a]), "one value from {a} to {b}: {:?}", &row[a..b]);
    }
    assert!(row[31] != row[32] && row[47] != row[48], "cells end on the grid: {row:?}");
    assert!(row[8..72].iter().all(|v| v % 8 == 0), "levels in steps of 8: {row:?}");
    assert_eq!(&row[..8], &orig[..8]);
    assert_eq!(&row[72..], &orig[72..w as usize]);
    assert!(plane.chunks(w as usize).all(|r| r == row), "every row alike");
}

#[test]
fn a_face_the_cover_overwrites_is_filled_under_it_and_any_other_is_redacted_first() {
    let (w, h) = (128u32, 96u32);
    let settings = RedactSettings::default();
    let cover = [BBox::new(0.0, 0.0, 64.0, 48.0), BBox::new(0.0, 48.0, 96.0, 96.0)];
    let covered_alone = {
        let (mut p, layout) = detailed_plane(w, h);
        cover_channel(&mut p, &layout, &cover, &settings, 48.0).unwrap();
        p
    };
    let with = |faces: &[BBox]| {
        let (mut p, layout) = detailed_plane(w, h);
        redact_and_cover(&mut p, &layout, faces, &cover, &settings, 48.0).unwrap();
        p
    };
    // A 20-px face across the two cover rectangles: filled flat (not blurred), then the mosaic.
    let small = BBox::new(40.0, 36.0, 60.0, 56.0);
    let filled_then_covered = {
        let (mut p, layout) = detailed_plane(w, h);
        let fill = RedactSettings { style: Style::Fill, ..RedactSettings::default() };
        redact_channel(&mut p, &layout, &[small], &fill).unwrap();
        cover_channel(&mut p, &layout, &cover, &settings, 48.0).unwrap();
        p
    };
    assert!(with(&[small]) == filled_then_covered);
    assert!(with(&[small]) != covered_alone, "the fill changed the cells over the face");
    // A face larger than the cover is made for is blurred before the mosaic, as it would be without cover.
    let large = BBox::new(0.0, 30.0, 60.0, 90.0);
    let blurred_then_covered = {
        let (mut p, layout) = detailed_plane(w, h);
        redact_channel(&mut p, &layout, &[large], &settings).unwrap();
        cover_channel(&mut p, &layout, &cover, &settings, 48.0).unwrap();
        p
    };
    assert!(with(&[large]) == blurred_then_covered);
    // A small face reaching out of the cover (x 96..104 on the lower rows) is blurred there.
    let out = BBox::new(84.0, 60.0, 104.0, 80.0);
    let p = with(&[out]);
    let (orig, _) = detailed_plane(w, h);
    let i = 70 * w as usize + 100;
    assert_ne!(p[i], orig[i], "the part outside the cover is redacted");
    // The outline style draws every face.
    let outline = RedactSettings { style: Style::Outline, ..RedactSettings::default() };
    let (mut p, layout) = detailed_plane(w, h);
    redact_and_cover(&mut p, &layout, &[small], &cover, &outline, 48.0).unwrap();
    let (mut q, _) = detailed_plane(w, h);
    cover_channel(&mut q, &layout, &cover, &outline, 48.0).unwrap();
    assert!(p != q);
}

/// A crowd's masks as a frame has them: hundreds of faces of 8–60 px, each with boxes from neighbouring frames
/// (shifted by a few pixels), some heads around faces, spread over a 1280 × 720 picture. Deterministic.
fn crowd_masks() -> Vec<style::Mask> {
    let mut seed = 0x2545_f491_u32;
    let mut next = move |n: u32| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed % n
    };
    let mut masks = Vec::new();
    for _ in 0..200 {
        let (x, y, side) = (next(1280) as f32, next(720) as f32, 8.0 + next(52) as f32);
        for _ in 0..1 + next(4) {
            let (dx, dy, grow) = (next(9) as f32 - 4.0, next(9) as f32 - 4.0, next(3) as f32 * 0.2 * side);
            let area = BBox::new(x + dx - grow, y + dy - grow, x + dx + side + grow, y + dy + side * 1.2 + grow);
            masks.push(style::Mask { area, size: side + 2.0 * grow, level: None });
        }
    }
    masks
}

#[test]
fn a_crowds_masks_share_levels_and_group_as_when_every_pair_was_compared() {
    // The redaction looks at pairs of masks from left to right and skips groups by their bounds; the
    // answers must be those of comparing every pair (the first way this was written).
    let layout = ChannelLayout::packed_rgb(1280, 720)[1];
    let img = checker(1280, 720);
    let masks = crowd_masks();
    let rects: Vec<_> = masks.iter().map(|m| m.area.to_pixel_rect(layout.width, layout.height)).collect();
    assert!(masks.len() > 400, "{}", masks.len());

    // Levels: every pair compared, components joined to their first mask.
    let spans: Vec<style::Spans> = masks.iter().map(|m| style::Spans::of(Shape::Ellipse, &m.area, &layout)).collect();
    let mut shared = masks.clone();
    share_levels(&img, &layout, &mut shared, &spans);
    let area = |r: &crate::geom::PixelRect| u64::from(r.width()) * u64::from(r.height());
    let mut component: Vec<usize> = (0..masks.len()).collect();
    for i in 0..masks.len() {
        for j in i + 1..masks.len() {
            let common = rects[i].intersect(&rects[j]).map_or(0, |c| area(&c));
            if SHARE_LEVEL_OVERLAP.1 * common > SHARE_LEVEL_OVERLAP.0 * area(&rects[i]).min(area(&rects[j])) {
                let (a, b) = (component[i], component[j]);
                component.iter_mut().filter(|c| **c == a.max(b)).for_each(|c| *c = a.min(b));
            }
        }
    }
    let mut sums = vec![(0u64, 0u64, 0usize); masks.len()];
    for (i, &c) in component.iter().enumerate() {
        sums[c].2 += 1;
        for (y, (x0, x1)) in spans[i].iter() {
            sums[c].0 += u64::from(layout.row_sum(&img, y, x0, x1));
            sums[c].1 += u64::from(x1 - x0);
        }
    }
    let joined = sums.iter().filter(|s| s.2 > 1).count();
    assert!(joined > 20, "the crowd has masks to join: {joined}");
    // Every mask gets its component's level; a mask alone is a component of one: its own samples' mean.
    for (i, m) in shared.iter().enumerate() {
        let (sum, n, _) = sums[component[i]];
        assert_eq!(m.level, (n > 0).then(|| sum as f32 / n as f32), "mask {i}");
    }

    // Groups: each mask joins the first group with a member it overlaps (if their radii and work allow),
    // merging any later group it also overlaps.
    let mut groups: Vec<(Vec<usize>, Extent)> = Vec::new();
    for (i, m) in masks.iter().enumerate() {
        let own = Extent { radii: (style::blur_radius(m.size), style::blur_radius(m.size)), area: m.area };
        let mut joined: Option<usize> = None;
        for g in 0..groups.len() {
            if !groups[g].0.iter().any(|&j| rects[i].intersect(&rects[j]).is_some()) {
                continue;
            }
            match joined {
                None => {
                    if let Some(extent) = groups[g].1.with(&own, &layout) {
                        groups[g].0.push(i);
                        groups[g].1 = extent;
                        joined = Some(g);
                    }
                }
                Some(first) => {
                    if let Some(extent) = groups[first].1.with(&groups[g].1, &layout) {
                        let members = std::mem::take(&mut groups[g].0);
                        groups[first].0.extend(members);
                        groups[first].1 = extent;
                    }
                }
            }
        }
        if joined.is_none() {
            groups.push((vec![i], own));
        }
    }
    let expected: Vec<Vec<usize>> = groups.into_iter().map(|g| g.0).filter(|m| !m.is_empty()).collect();
    assert!(expected.iter().any(|g| g.len() > 2), "the crowd has groups");
    assert_eq!(overlapping(&masks, &layout), expected);
}
