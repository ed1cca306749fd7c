//! Still images (JPEG, PNG, WebP, TIFF, BMP) through the `image` crate: format by content, decoding with EXIF
//! orientation applied (and baked into the output, whose metadata is not carried), encoding.
//!
//! Only one picture is read from a file, so nothing that holds more is cut to its first silently:
//! - an animated PNG goes to FFmpeg as the video it is ([`probe`]);
//! - an animated WebP is refused;
//! - a TIFF of several pages (a scan) is refused; its reduced-resolution copies (thumbnails, which show the
//!   faces unredacted) are not written, with a warning.

use crate::{Error, Result};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use std::io::BufWriter;
use std::path::Path;

/// The still-image format of `path`, judged by content (magic bytes) alone, never by the file name, or
/// `None` when it is not one. An animated PNG is not a still: FFmpeg reads it as the video it is.
pub(crate) fn probe(path: &Path) -> Result<Option<ImageFormat>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(64);
    std::fs::File::open(path).and_then(|f| f.take(64).read_to_end(&mut head)).map_err(|e| Error::io(path, e))?;
    if head.is_empty() {
        return Err(Error::bad_input(path, "empty file (0 bytes)"));
    }
    let format = image::guess_format(&head).ok().filter(|f| STILL_FORMATS.contains(f) && f.reading_enabled());
    if format == Some(ImageFormat::Png) {
        let img_err = |e: image::ImageError| Error::Image { path: path.to_path_buf(), source: e };
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let decoder = image::codecs::png::PngDecoder::new(std::io::BufReader::new(file)).map_err(img_err)?;
        if decoder.is_apng().map_err(img_err)? {
            return Ok(None);
        }
    }
    Ok(format)
}

/// The still-image formats faceveil reads and writes.
const STILL_FORMATS: [ImageFormat; 5] =
    [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::WebP, ImageFormat::Tiff, ImageFormat::Bmp];

/// The image output extensions, for messages.
pub(crate) const STILL_EXTENSIONS: &str = ".jpg, .jpeg, .png, .webp, .tif, .tiff or .bmp";

/// TIFF directories walked at most when counting pages (a corrupt file's chain of directories may not end).
const MAX_TIFF_DIRECTORIES: usize = 4096;

/// Counts the pictures of the TIFF at `path` beyond its first: `(pages, thumbnails)`, where a thumbnail is a
/// directory marked as a reduced-resolution copy (`NewSubfileType` bit 0) and every other one is a page.
fn tiff_extra_pictures(path: &Path) -> Result<(usize, usize)> {
    use tiff::decoder::Decoder;
    use tiff::tags::Tag;
    let bad = |e: tiff::TiffError| Error::bad_input(path, format!("TIFF: {e}"));
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut decoder = Decoder::new(std::io::BufReader::new(file)).map_err(bad)?;
    let mut seen = std::collections::HashSet::new();
    let mut next = decoder.ifd_pointer();
    let (mut pages, mut thumbnails) = (0, 0);
    while let Some(ptr) = next {
        if !seen.insert(ptr.0) || seen.len() > MAX_TIFF_DIRECTORIES {
            return Err(Error::bad_input(path, "TIFF: its directories run in a loop or do not end"));
        }
        let dir = decoder.read_directory(ptr).map_err(bad)?;
        if seen.len() > 1 {
            let kind: Option<u32> =
                decoder.read_directory_tags(&dir).find_tag_unsigned(Tag::NewSubfileType).map_err(bad)?;
            if kind.is_some_and(|k| k & 1 != 0) {
                thumbnails += 1;
            } else {
                pages += 1;
            }
        }
        next = dir.next();
    }
    Ok((pages, thumbnails))
}

/// Output image format from the output file name's extension.
pub(crate) fn output_format(path: &Path) -> Option<ImageFormat> {
    format_of_extension(path.extension()?.to_str()?)
}

/// The image format faceveil writes for a file name extension (any case), if it is an image one.
pub(crate) fn format_of_extension(ext: &str) -> Option<ImageFormat> {
    match ext.to_ascii_lowercase().as_str() {
        "jpg" | "jpeg" => Some(ImageFormat::Jpeg),
        "png" => Some(ImageFormat::Png),
        "webp" => Some(ImageFormat::WebP),
        "tif" | "tiff" => Some(ImageFormat::Tiff),
        "bmp" => Some(ImageFormat::Bmp),
        _ => None,
    }
}

/// Reads `input` upright (EXIF orientation applied), refusing oversized pictures. Returns the picture and
/// warnings about what its conversion to 8 bits loses.
pub(crate) fn read(input: &Path, format: ImageFormat) -> Result<(DynamicImage, Vec<String>)> {
    let img_err = |e: image::ImageError| Error::Image { path: input.to_path_buf(), source: e };
    let mut warnings = Vec::new();
    if format == ImageFormat::WebP {
        let file = std::fs::File::open(input).map_err(|e| Error::io(input, e))?;
        if image::codecs::webp::WebPDecoder::new(std::io::BufReader::new(file)).map_err(img_err)?.has_animation() {
            return Err(Error::bad_input(
                input,
                "an animated WebP, which faceveil does not read: only its first frame would be redacted and \
                 the others lost; convert it to a video first",
            ));
        }
    }
    if format == ImageFormat::Tiff {
        let (pages, thumbnails) = tiff_extra_pictures(input)?;
        if pages > 0 {
            return Err(Error::bad_input(
                input,
                format!(
                    "a TIFF of {} pages; faceveil redacts one picture per file and would lose the others: split \
                     the pages into files first (e.g. tiffsplit)",
                    pages + 1
                ),
            ));
        }
        if thumbnails > 0 {
            let copies = if thumbnails == 1 { "copy" } else { "copies" };
            warnings.push(format!("the TIFF's {thumbnails} reduced-resolution {copies} (thumbnails) not written"));
        }
    }
    let mut reader = ImageReader::open(input).map_err(|e| Error::io(input, e))?;
    reader.set_format(format);
    let mut decoder = reader.into_decoder().map_err(img_err)?;
    let (dw, dh) = decoder.dimensions();
    crate::config::check_picture_size(dw, dh).map_err(|reason| Error::bad_input(input, reason))?;
    let orientation = decoder.orientation().map_err(img_err)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(img_err)?;
    img.apply_orientation(orientation);
    if img.color().bytes_per_pixel() / img.color().channel_count().max(1) > 1 {
        warnings.push("16-bit or float image converted to 8 bits per channel".to_string());
    }
    Ok((img, warnings))
}

/// Writes `img` to `path` as `format` (JPEG at quality 95; WebP lossless; TIFF LZW-compressed with horizontal
/// differencing, as image editors write it) and flushes it to disk.
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
        ImageFormat::Tiff => {
            write_tiff(img, &mut w).map_err(|e| Error::Encode { path: path.to_path_buf(), reason: e.to_string() })?
        }
        ImageFormat::Bmp => img.write_to(&mut w, ImageFormat::Bmp).map_err(enc_err)?,
        _ => {
            img.write_to(&mut w, ImageFormat::Png).map_err(enc_err)?;
        }
    }
    let file = w.into_inner().map_err(|e| Error::io(path, e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(path, e))?;
    Ok(())
}

/// `img` as an 8-bit RGB (or RGBA, where it has alpha) TIFF.
fn write_tiff<W: std::io::Write + std::io::Seek>(img: &DynamicImage, w: W) -> tiff::TiffResult<()> {
    use tiff::encoder::{colortype, Compression, Predictor, TiffEncoder};
    let mut enc = TiffEncoder::new(w)?.with_compression(Compression::Lzw).with_predictor(Predictor::Horizontal);
    if img.color().has_alpha() {
        let rgba = img.to_rgba8();
        enc.write_image::<colortype::RGBA8>(rgba.width(), rgba.height(), rgba.as_raw())
    } else {
        let rgb = img.to_rgb8();
        enc.write_image::<colortype::RGB8>(rgb.width(), rgb.height(), rgb.as_raw())
    }
}
