//! Format sniffing, decoding to RGB and square resizing (fast_image_resize).

use anyhow::{anyhow, bail, Result};
use fast_image_resize as fr;
use image::{DynamicImage, ImageFormat};

/// Container format from the first bytes, whatever the file is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    Jpeg,
    Png,
    Gif,
    Webp,
    Bmp,
    Unknown,
}

pub fn sniff(b: &[u8]) -> Sniffed {
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Sniffed::Jpeg
    } else if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Sniffed::Png
    } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        Sniffed::Gif
    } else if b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Sniffed::Webp
    } else if b.starts_with(b"BM") && b.len() > 26 {
        Sniffed::Bmp
    } else {
        Sniffed::Unknown
    }
}

impl Sniffed {
    pub fn image_format(self) -> Option<ImageFormat> {
        match self {
            Sniffed::Jpeg => Some(ImageFormat::Jpeg),
            Sniffed::Png => Some(ImageFormat::Png),
            Sniffed::Gif => Some(ImageFormat::Gif),
            Sniffed::Webp => Some(ImageFormat::WebP),
            Sniffed::Bmp | Sniffed::Unknown => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Sniffed::Jpeg => "jpeg",
            Sniffed::Png => "png",
            Sniffed::Gif => "gif",
            Sniffed::Webp => "webp",
            Sniffed::Bmp => "bmp",
            Sniffed::Unknown => "unknown",
        }
    }
}

/// Number of colour components declared in a JPEG's start-of-frame (3 = YCbCr, 1 = gray, 4 = CMYK/YCCK).
pub fn jpeg_components(b: &[u8]) -> Option<u8> {
    let mut i = 2;
    while i + 4 <= b.len() {
        if b[i] != 0xFF {
            i += 1;
            continue;
        }
        let m = b[i + 1];
        // Fill bytes and standalone markers carry no length.
        if m == 0xFF || m == 0x01 || (0xD0..=0xD9).contains(&m) {
            i += if m == 0xFF { 1 } else { 2 };
            continue;
        }
        let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        let is_sof = (0xC0..=0xCF).contains(&m) && m != 0xC4 && m != 0xC8 && m != 0xCC;
        if is_sof {
            return b.get(i + 9).copied();
        }
        if m == 0xDA {
            return None; // scan data before any frame header: malformed
        }
        i += 2 + len;
    }
    None
}

/// True when a JPEG lacks its end-of-image marker near the end (cut off mid-transfer).
/// Decoders often "succeed" on such files by painting the rest grey, so decoding alone is not enough.
pub fn jpeg_truncated(b: &[u8]) -> bool {
    let tail = &b[b.len().saturating_sub(1024)..];
    !tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Decodes any supported format (by content, not name) to 8-bit RGB; GIFs give their first frame.
pub fn decode(bytes: &[u8]) -> Result<DynamicImage> {
    let fmt = sniff(bytes);
    let img = match fmt.image_format() {
        Some(f) => image::load_from_memory_with_format(bytes, f),
        None => image::load_from_memory(bytes),
    };
    img.map_err(|e| anyhow!("cannot decode {} image: {e}", fmt.name()))
}

/// Drops alpha and expands gray to RGB.
pub fn to_rgb(img: DynamicImage) -> image::RgbImage {
    match img {
        DynamicImage::ImageRgb8(i) => i,
        other => other.to_rgb8(),
    }
}

/// How a non-square photo becomes an N×N training image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeMode {
    /// Shorter side to N, then the centre N×N (drops the edges of long images).
    Crop,
    /// Longer side to N, centred on black (keeps the whole picture).
    Letterbox,
}

impl ResizeMode {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "crop" => Ok(Self::Crop),
            "letterbox" => Ok(Self::Letterbox),
            _ => bail!("unknown resize mode `{s}` (field `mode`); allowed: crop, letterbox"),
        }
    }
}

/// Resizes an RGB image to `n`×`n` RGB bytes (HWC) with a bilinear-class convolution.
pub fn resize_square(rgb: &image::RgbImage, n: u32, mode: ResizeMode, resizer: &mut fr::Resizer) -> Result<Vec<u8>> {
    resize_square_zoom(rgb, n, mode, 1.0, resizer)
}

/// Smallest centre-crop zoom `prepare` accepts (keeps 30% of the shorter side).
pub const MIN_ZOOM: f64 = 0.3;

/// As [`resize_square`], but in crop mode the centre square keeps only `zoom` of the shorter side
/// (1 = the whole side): the subject fills more of the frame. Letterbox ignores `zoom` (callers
/// reject the combination).
pub fn resize_square_zoom(rgb: &image::RgbImage, n: u32, mode: ResizeMode, zoom: f64, resizer: &mut fr::Resizer) -> Result<Vec<u8>> {
    if !(MIN_ZOOM..=1.0).contains(&zoom) {
        bail!("field `zoom` = {zoom}: must be within {MIN_ZOOM}..=1");
    }
    let (w, h) = rgb.dimensions();
    if w == 0 || h == 0 || n == 0 {
        bail!("cannot resize an empty image ({w}x{h}) to {n}");
    }
    let src = fr::images::ImageRef::new(w, h, rgb.as_raw(), fr::PixelType::U8x3).map_err(|e| anyhow!("{e}"))?;
    let opts = fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear));
    match mode {
        ResizeMode::Crop => {
            let side = w.min(h) as f64 * zoom;
            let (left, top) = ((w as f64 - side) / 2.0, (h as f64 - side) / 2.0);
            let mut dst = fr::images::Image::new(n, n, fr::PixelType::U8x3);
            resizer.resize(&src, &mut dst, &opts.crop(left, top, side, side)).map_err(|e| anyhow!("resize failed: {e}"))?;
            Ok(dst.into_vec())
        }
        ResizeMode::Letterbox => {
            let scale = n as f64 / w.max(h) as f64;
            let (nw, nh) = (((w as f64 * scale).round() as u32).clamp(1, n), ((h as f64 * scale).round() as u32).clamp(1, n));
            let mut dst = fr::images::Image::new(nw, nh, fr::PixelType::U8x3);
            resizer.resize(&src, &mut dst, &opts).map_err(|e| anyhow!("resize failed: {e}"))?;
            let inner = dst.into_vec();
            let mut out = vec![0u8; (n * n * 3) as usize];
            let (ox, oy) = ((n - nw) / 2, (n - nh) / 2);
            for y in 0..nh {
                let s = (y * nw * 3) as usize;
                let d = (((y + oy) * n + ox) * 3) as usize;
                out[d..d + (nw * 3) as usize].copy_from_slice(&inner[s..s + (nw * 3) as usize]);
            }
            Ok(out)
        }
    }
}

/// Decode + resize in one call (the unit the data benchmark times and prepare uses).
pub fn load_square(bytes: &[u8], n: u32, mode: ResizeMode, resizer: &mut fr::Resizer) -> Result<Vec<u8>> {
    load_square_zoom(bytes, n, mode, 1.0, resizer)
}

/// [`load_square`] with a centre-crop zoom (see [`resize_square_zoom`]).
pub fn load_square_zoom(bytes: &[u8], n: u32, mode: ResizeMode, zoom: f64, resizer: &mut fr::Resizer) -> Result<Vec<u8>> {
    if let Some(rgb) = decode_jpeg_reduced(bytes, n, mode, zoom) {
        // A square photo at exactly 2^k × n comes out of the DCT already at n × n.
        if zoom == 1.0 && rgb.dimensions() == (n, n) {
            return Ok(rgb.into_raw());
        }
        return resize_square_zoom(&rgb, n, mode, zoom, resizer);
    }
    let rgb = to_rgb(decode(bytes)?);
    resize_square_zoom(&rgb, n, mode, zoom, resizer)
}

/// JPEG decoded straight at 1/2, 1/4 or 1/8 size in the DCT domain (libjpeg's "draft" mode),
/// when the image is at least twice the target: most of the decode work is skipped and the
/// result still covers ≥ `n` pixels where the crop needs them. None → use the full decoder.
fn decode_jpeg_reduced(bytes: &[u8], n: u32, mode: ResizeMode, zoom: f64) -> Option<image::RgbImage> {
    if sniff(bytes) != Sniffed::Jpeg || jpeg_truncated(bytes) {
        return None;
    }
    let mut d = jpeg_decoder::Decoder::new(bytes);
    d.read_info().ok()?;
    let info = d.info()?;
    let (w, h) = (info.width as u32, info.height as u32);
    // Crop keeps (a zoomed part of) the short side; letterbox keeps the long side.
    let side = match mode {
        ResizeMode::Crop => (w.min(h) as f64 * zoom).floor() as u32,
        ResizeMode::Letterbox => w.max(h),
    };
    if side < 2 * n || info.pixel_format != jpeg_decoder::PixelFormat::RGB24 {
        return None;
    }
    let k = side / n; // ≥ 2
    let (rw, rh) = ((w / k).max(1) as u16, (h / k).max(1) as u16);
    let (sw, sh) = d.scale(rw, rh).ok()?;
    let px = d.decode().ok()?;
    image::RgbImage::from_raw(sw as u32, sh as u32, px)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_and_letterbox_shapes() {
        let img = image::RgbImage::from_fn(40, 20, |x, _| image::Rgb([if x < 20 { 255 } else { 0 }, 0, 0]));
        let mut r = fr::Resizer::new();
        let c = resize_square(&img, 10, ResizeMode::Crop, &mut r).unwrap();
        assert_eq!(c.len(), 300);
        let l = resize_square(&img, 10, ResizeMode::Letterbox, &mut r).unwrap();
        assert_eq!(l.len(), 300);
        // Letterbox keeps black bars at top and bottom rows.
        assert!(l[..30].iter().all(|&v| v == 0));
        // Left half of the letterboxed middle row is red.
        assert!(l[5 * 30] > 200);
    }

    #[test]
    fn zoom_keeps_the_centre_of_the_shorter_side() {
        // 40×20: the centre 10×10 square (half the shorter side) is red, everything else blue.
        let img = image::RgbImage::from_fn(40, 20, |x, y| {
            if (15..25).contains(&x) && (5..15).contains(&y) { image::Rgb([255, 0, 0]) } else { image::Rgb([0, 0, 255]) }
        });
        let mut r = fr::Resizer::new();
        let z = resize_square_zoom(&img, 10, ResizeMode::Crop, 0.5, &mut r).unwrap();
        assert!(z.chunks(3).all(|p| p[0] == 255 && p[2] == 0), "zoom 0.5 sees only the red centre: {z:?}");
        let full = resize_square_zoom(&img, 10, ResizeMode::Crop, 1.0, &mut r).unwrap();
        assert_eq!(full, resize_square(&img, 10, ResizeMode::Crop, &mut r).unwrap());
        assert!(full.chunks(3).filter(|p| p[2] > 128).count() > 50, "zoom 1 keeps the blue border");
        for bad in [0.29, 1.01, f64::NAN] {
            let e = resize_square_zoom(&img, 10, ResizeMode::Crop, bad, &mut r).unwrap_err().to_string();
            assert!(e.contains("zoom"), "{e}");
        }
    }

    #[test]
    fn zoom_on_the_reduced_jpeg_path_matches_the_full_decode() {
        // Large enough that the DCT-domain decode kicks in: the zoomed side 0.6 × 300 = 180 ≥ 2 × 24.
        let img = image::RgbImage::from_fn(480, 300, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x / 3 + y / 5) % 256) as u8]));
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95).encode_image(&img).unwrap();
        assert!(decode_jpeg_reduced(&bytes, 24, ResizeMode::Crop, 0.6).is_some(), "test must take the reduced path");
        let mut r = fr::Resizer::new();
        let fast = load_square_zoom(&bytes, 24, ResizeMode::Crop, 0.6, &mut r).unwrap();
        let slow = resize_square_zoom(&to_rgb(decode(&bytes).unwrap()), 24, ResizeMode::Crop, 0.6, &mut r).unwrap();
        let mad = fast.iter().zip(&slow).map(|(a, b)| (*a as f64 - *b as f64).abs()).sum::<f64>() / fast.len() as f64;
        assert!(mad < 6.0, "reduced decode drifts from the full decode: mean |diff| {mad}");
        let unzoomed = load_square(&bytes, 24, ResizeMode::Crop, &mut r).unwrap();
        let differ = fast.iter().zip(&unzoomed).map(|(a, b)| (*a as f64 - *b as f64).abs()).sum::<f64>() / fast.len() as f64;
        assert!(differ > 3.0 * mad.max(1.0), "zoom must change the picture: {differ} vs drift {mad}");
    }

    #[test]
    fn sniffs_by_content() {
        assert_eq!(sniff(b"GIF89a...."), Sniffed::Gif);
        assert_eq!(sniff(b"hello"), Sniffed::Unknown);
        assert!(jpeg_truncated(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]));
        assert!(!jpeg_truncated(&[0xFF, 0xD8, 0xFF, 0xD9]));
    }
}
