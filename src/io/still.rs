//! Still images (JPEG, PNG, WebP) through the `image` crate: format by content, decoding with EXIF
//! orientation applied (and baked into the output, whose metadata is not carried), encoding.

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

/// Reads `input` upright (EXIF orientation applied), refusing oversized pictures. Returns the picture and
/// warnings about what its conversion to 8 bits loses.
pub(crate) fn read(input: &Path, format: ImageFormat) -> Result<(DynamicImage, Vec<String>)> {
    let img_err = |e: image::ImageError| Error::Image { path: input.to_path_buf(), source: e };
    let mut reader = ImageReader::open(input).map_err(|e| Error::io(input, e))?;
    reader.set_format(format);
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
    Ok((img, warnings))
}

/// Writes `img` to `path` as `format` (JPEG at quality 95, WebP lossless) and flushes it to disk.
pub(crate) fn write(img: &DynamicImage, path: &Path, format: ImageFormat) -> Result<()> {
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
