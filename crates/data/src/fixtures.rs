//! Small datasets in the official layout, generated on the fly for tests and demos, with every
//! quirk the real archive has (and some it might): GIF and RGBA PNG named .jpg, grayscale, CMYK,
//! truncated, zero-byte, text named .jpg, duplicate, too small, unlabelled, and a missing file.
//! Each class gets a distinct colour and stripe angle so a model can learn it.

use crate::layout::{self, entry_for, IMAGES};
use crate::labels::canonical_breed;
use anyhow::{bail, Context, Result};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Cursor;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct FixtureSpec {
    pub breeds: Vec<String>,
    pub per_class: usize,
    pub size: u32,
    pub quirks: bool,
    pub seed: u64,
}

impl Default for FixtureSpec {
    fn default() -> Self {
        Self {
            breeds: ["Abyssinian", "Bengal", "Birman", "beagle", "pug"].map(String::from).to_vec(),
            per_class: 6,
            size: 64,
            quirks: true,
            seed: 7,
        }
    }
}

/// What was written, so tests can state their expectations without hard-coding them.
#[derive(Debug, Clone, Default)]
pub struct FixtureInfo {
    /// Clean, labelled images.
    pub clean: usize,
    /// Files in images/ (clean + quirk files).
    pub files: usize,
    /// (file name, expected verify kind, expected to be converted rather than quarantined).
    pub quirks: Vec<(String, &'static str, bool)>,
    /// Annotated stems with no image file.
    pub missing: Vec<String>,
}

/// A class-specific striped pattern with per-image jitter and noise.
pub fn synthetic_image(class: usize, size: u32, rng: &mut impl Rng) -> RgbImage {
    let hue = class as f32 * 0.61803;
    let base = [
        0.5 + 0.5 * (6.283 * hue).cos(),
        0.5 + 0.5 * (6.283 * (hue + 0.33)).cos(),
        0.5 + 0.5 * (6.283 * (hue + 0.67)).cos(),
    ];
    let angle = class as f32 * 0.9 + rng.gen_range(-0.1..0.1);
    let freq = 0.25 + 0.05 * (class % 3) as f32;
    let phase: f32 = rng.gen_range(0.0..6.283);
    let (ca, sa) = (angle.cos(), angle.sin());
    RgbImage::from_fn(size, size, |x, y| {
        let v = ((x as f32 * ca + y as f32 * sa) * freq + phase).sin();
        let mut px = [0u8; 3];
        for c in 0..3 {
            let n: f32 = rng.gen_range(-0.08..0.08);
            px[c] = ((base[c] * (0.55 + 0.45 * v) + n).clamp(0.0, 1.0) * 255.0) as u8;
        }
        Rgb(px)
    })
}

fn encode(img: &DynamicImage, fmt: ImageFormat) -> Result<Vec<u8>> {
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, fmt).context("fixture encoding failed")?;
    Ok(buf.into_inner())
}

fn jpeg(img: &RgbImage) -> Result<Vec<u8>> {
    encode(&DynamicImage::ImageRgb8(img.clone()), ImageFormat::Jpeg)
}

/// Writes a fixture dataset at `root` (images/ + annotations/list.txt).
pub fn write_fixture(root: &Path, spec: &FixtureSpec) -> Result<FixtureInfo> {
    if spec.breeds.is_empty() || spec.per_class == 0 || spec.size < 8 {
        bail!("fixture needs at least one breed, one image per class and size >= 8");
    }
    let breeds: Vec<&'static str> = spec
        .breeds
        .iter()
        .map(|b| canonical_breed(b).with_context(|| format!("fixture breed `{b}` is not an Oxford-IIIT Pet breed")))
        .collect::<Result<_>>()?;
    let img_dir = root.join(IMAGES);
    std::fs::create_dir_all(&img_dir).with_context(|| format!("cannot create {}", img_dir.display()))?;
    std::fs::create_dir_all(root.join("annotations"))?;
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut entries = Vec::new();
    let mut info = FixtureInfo::default();
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        let p = img_dir.join(name);
        std::fs::write(&p, bytes).with_context(|| format!("cannot write {}", p.display()))
    };
    for (ci, breed) in breeds.iter().enumerate() {
        for k in 1..=spec.per_class {
            let stem = format!("{breed}_{k}");
            let img = synthetic_image(ci, spec.size, &mut rng);
            write(&format!("{stem}.jpg"), &jpeg(&img)?)?;
            entries.push(entry_for(&stem, breed));
            info.clean += 1;
        }
    }
    if spec.quirks {
        let b = breeds[0];
        let s = spec.size;
        let img = synthetic_image(0, s, &mut rng);
        let mut quirk = |n: u32, bytes: Vec<u8>, kind: &'static str, converted: bool, listed: bool| -> Result<()> {
            let stem = format!("{b}_{n}");
            write(&format!("{stem}.jpg"), &bytes)?;
            if listed {
                entries.push(entry_for(&stem, b));
            }
            info.quirks.push((format!("{stem}.jpg"), kind, converted));
            Ok(())
        };
        // A two-frame GIF: verify must keep the first frame.
        let gif = {
            let mut buf = Vec::new();
            {
                let mut enc = image::codecs::gif::GifEncoder::new(&mut buf);
                let f1 = RgbaImage::from_fn(s, s, |x, y| { let p = img.get_pixel(x, y).0; Rgba([p[0], p[1], p[2], 255]) });
                let f2 = RgbaImage::from_pixel(s, s, Rgba([0, 0, 0, 255]));
                enc.encode_frames([image::Frame::new(f1), image::Frame::new(f2)]).context("gif fixture")?;
            }
            buf
        };
        quirk(9001, gif, "gif_disguised_as_jpg", true, true)?;
        let rgba = RgbaImage::from_fn(s, s, |x, y| { let p = img.get_pixel(x, y).0; Rgba([p[0], p[1], p[2], (x * 4) as u8]) });
        quirk(9002, encode(&DynamicImage::ImageRgba8(rgba), ImageFormat::Png)?, "png_disguised_as_jpg", true, true)?;
        quirk(9003, encode(&DynamicImage::ImageLuma8(DynamicImage::ImageRgb8(img.clone()).to_luma8()), ImageFormat::Jpeg)?, "grayscale", true, true)?;
        let cmyk: Vec<u8> = img.pixels().flat_map(|p| { let [r, g, bb] = p.0; [255 - r, 255 - g, 255 - bb, 0] }).collect();
        let mut cbuf = Vec::new();
        jpeg_encoder::Encoder::new(&mut cbuf, 90)
            .encode(&cmyk, s as u16, s as u16, jpeg_encoder::ColorType::Cmyk)
            .map_err(|e| anyhow::anyhow!("cmyk fixture: {e}"))?;
        quirk(9004, cbuf, "cmyk", true, true)?;
        let full = jpeg(&img)?;
        quirk(9005, full[..full.len() / 2].to_vec(), "truncated", false, true)?;
        quirk(9006, Vec::new(), "empty", false, true)?;
        quirk(9007, b"this is a text file, not a photo\n".to_vec(), "not_an_image", false, true)?;
        quirk(9008, std::fs::read(img_dir.join(format!("{b}_1.jpg")))?, "duplicate", false, true)?;
        quirk(9009, jpeg(&synthetic_image(0, 8, &mut rng))?, "too_small", false, true)?;
        quirk(9010, jpeg(&img)?, "not_in_annotations", false, false)?;
        let missing = format!("{b}_9011");
        entries.push(entry_for(&missing, b));
        info.missing.push(missing);
    }
    info.files = info.clean + info.quirks.len();
    let list = root.join(layout::LIST);
    std::fs::write(&list, layout::format_list(&entries)).with_context(|| format!("cannot write {}", list.display()))?;
    Ok(info)
}
