//! Still images (JPEG, PNG, WebP, …) through the `image` crate. EXIF orientation is applied before detection
//! and baked into the output, whose metadata is not carried.

use crate::config::{OnDetectorError, Options};
use crate::detect::{detect_multiscale, Detection, Detector};
use crate::geom::BBox;
use crate::redact::{redact_channel, ChannelLayout};
use crate::{Error, Result};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use std::io::BufWriter;
use std::path::Path;

/// The still-image format of `path`, judged by content (magic bytes) alone, never by the file name, or
/// `None` when it is not one.
pub(crate) fn probe(path: &Path) -> Result<Option<ImageFormat>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(64);
    std::fs::File::open(path).and_then(|f| f.take(64).read_to_end(&mut head)).map_err(|e| Error::io(path, e))?;
    if head.is_empty() {
        return Err(Error::bad_input(path, "empty file (0 bytes)"));
    }
    Ok(image::guess_format(&head)
        .ok()
        .filter(|f| matches!(f, ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP) && f.reading_enabled()))
}

/// Output image format from the output file name's extension.
pub(crate) fn output_format(path: &Path) -> Option<ImageFormat> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "jpg" | "jpeg" => Some(ImageFormat::Jpeg),
        "png" => Some(ImageFormat::Png),
        "webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

pub(crate) struct StillOutcome {
    pub width: u32,
    pub height: u32,
    pub detections: Vec<Detection>,
    pub blanked: bool,
    pub warnings: Vec<String>,
}

pub(crate) fn redact_still(
    input: &Path,
    in_format: ImageFormat,
    tmp: &Path,
    out_format: ImageFormat,
    options: &Options,
    detector: &mut dyn Detector,
) -> Result<StillOutcome> {
    let img_err = |e: image::ImageError| Error::Image { path: input.to_path_buf(), source: e };
    let mut reader = ImageReader::open(input).map_err(|e| Error::io(input, e))?;
    reader.set_format(in_format);
    let mut decoder = reader.into_decoder().map_err(img_err)?;
    let (dw, dh) = decoder.dimensions();
    crate::config::check_picture_size(dw, dh).map_err(|reason| Error::bad_input(input, reason))?;
    let orientation = decoder.orientation().map_err(img_err)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(img_err)?;
    img.apply_orientation(orientation);
    let mut warnings = Vec::new();
    if img.color().bytes_per_pixel() / img.color().channel_count().max(1) > 1 {
        warnings.push("16-bit or float image converted to 8 bits per channel".to_string());
    }
    let keep_alpha = img.color().has_alpha() && out_format != ImageFormat::Jpeg;
    let (w, h) = (img.width(), img.height());
    let rgb = img.to_rgb8();
    let (detections, blanked) = match detect_multiscale(detector, &rgb, &options.detect, |_| true) {
        Ok(d) => (d, false),
        Err(e) if options.on_detector_error == OnDetectorError::RedactFrame => {
            warnings.push(format!("detector failed ({e}); the whole image was blanked"));
            (Vec::new(), true)
        }
        Err(e) => return Err(Error::Frame { path: input.to_path_buf(), frame: 0, source: Box::new(e) }),
    };
    let boxes: Vec<BBox> = detections.iter().map(|d| d.bbox).collect();
    if blanked {
        img = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(w, h, image::Rgba([128, 128, 128, 255])));
    }
    let rgb = if blanked { img.to_rgb8() } else { rgb };

    let out: DynamicImage = if keep_alpha {
        let mut rgba = img.to_rgba8();
        let stride = w as usize * 4;
        for c in 0..3 {
            let layout = ChannelLayout {
                width: w,
                height: h,
                stride,
                step: 4,
                offset: c,
                shift_x: 0,
                shift_y: 0,
                intensity: true,
            };
            redact_channel(&mut rgba, &layout, &boxes, &options.redact)?;
        }
        DynamicImage::ImageRgba8(rgba)
    } else {
        let mut rgb = rgb;
        crate::redact::redact_rgb(&mut rgb, &boxes, &options.redact)?;
        DynamicImage::ImageRgb8(rgb)
    };
    write_image(&out, tmp, out_format)?;
    Ok(StillOutcome { width: w, height: h, detections, blanked, warnings })
}

fn write_image(img: &DynamicImage, path: &Path, format: ImageFormat) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = BufWriter::new(file);
    let enc_err = |e: image::ImageError| Error::Encode { path: path.to_path_buf(), reason: e.to_string() };
    match format {
        ImageFormat::Jpeg => {
            let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut w, 95);
            img.to_rgb8().write_with_encoder(enc).map_err(enc_err)?;
        }
        ImageFormat::WebP => {
            let enc = image::codecs::webp::WebPEncoder::new_lossless(&mut w);
            img.write_with_encoder(enc).map_err(enc_err)?;
        }
        _ => {
            img.write_to(&mut w, ImageFormat::Png).map_err(enc_err)?;
        }
    }
    let file = w.into_inner().map_err(|e| Error::io(path, e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(path, e))?;
    Ok(())
}
