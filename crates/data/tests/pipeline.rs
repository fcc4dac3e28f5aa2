//! import → verify → prepare → load on generated fixtures (every quirk), plus the bad-input paths.

use std::collections::BTreeMap;
use std::path::Path;
use tinycats_data::cache::{Cache, Split};
use tinycats_data::fixtures::{write_fixture, FixtureSpec};
use tinycats_data::import::import;
use tinycats_data::labels::LabelSet;
use tinycats_data::loader::{Augment, Loader, LoaderConfig};
use tinycats_data::prepare::{prepare, PrepareOptions};
use tinycats_data::verify::{verify, Action, VerifyOptions};

fn fixture(dir: &Path) -> tinycats_data::fixtures::FixtureInfo {
    write_fixture(&dir.join("src"), &FixtureSpec::default()).unwrap()
}

/// The 12 cat breeds, `per_class` clean images each, imported into `<dir>/ds`.
fn imported_cats(dir: &Path, per_class: usize) -> std::path::PathBuf {
    let breeds: Vec<String> = tinycats_data::labels::CAT_BREEDS.iter().map(|s| s.to_string()).collect();
    write_fixture(&dir.join("src"), &FixtureSpec { breeds, per_class, quirks: false, ..Default::default() }).unwrap();
    let dest = dir.join("ds");
    import(&[dir.join("src")], &dest).unwrap();
    dest
}

fn tar_of(src: &Path, out: &Path, gz: bool) {
    let f = std::fs::File::create(out).unwrap();
    let w: Box<dyn std::io::Write> = if gz { Box::new(flate2::write::GzEncoder::new(f, flate2::Compression::fast())) } else { Box::new(f) };
    let mut b = tar::Builder::new(w);
    b.append_dir_all(".", src).unwrap();
    b.into_inner().unwrap().flush().unwrap();
}

fn kinds(report: &tinycats_data::verify::Report) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in &report.problems {
        let k = serde_json::to_value(p.kind).unwrap().as_str().unwrap().to_string();
        m.entry(p.file.trim_start_matches("images/").to_string()).or_default().push(k);
    }
    m
}

#[test]
fn verify_classifies_every_quirk_and_repairs() {
    let t = tempfile::tempdir().unwrap();
    let info = fixture(t.path());
    let dest = t.path().join("ds");
    let s = import(&[t.path().join("src")], &dest).unwrap();
    assert_eq!(s.images, info.files);

    let dry = verify(&dest, &VerifyOptions { check_only: true, ..Default::default() }, &|_| {}).unwrap();
    assert!(dry.problems.iter().all(|p| matches!(p.action, Action::WouldConvert | Action::WouldQuarantine | Action::Skipped)));
    assert!(!dest.join("quarantine").exists(), "check-only must not move files");

    let r = verify(&dest, &VerifyOptions::default(), &|_| {}).unwrap();
    let k = kinds(&r);
    for (file, kind, converted) in &info.quirks {
        let got = k.get(file).unwrap_or_else(|| panic!("{file} not reported; report: {k:?}"));
        assert!(got.contains(&kind.to_string()), "{file}: expected {kind}, got {got:?}");
        let in_images = dest.join("images").join(file).exists();
        assert_eq!(in_images, *converted, "{file}: converted files stay, quarantined ones move");
        if !converted {
            assert!(dest.join("quarantine").join(file).exists(), "{file} must be kept in quarantine/");
        } else {
            assert!(dest.join("originals").join(file).exists(), "{file}: original must be kept");
            let img = image::open(dest.join("images").join(file)).unwrap();
            assert_eq!(img.color(), image::ColorType::Rgb8, "{file} converted to RGB");
        }
    }
    // The GIF keeps its first frame (the pattern), not the black second frame.
    let gif = image::open(dest.join("images").join(&info.quirks[0].0)).unwrap().to_rgb8();
    assert!(gif.pixels().map(|p| p.0.iter().map(|&v| v as u32).sum::<u32>()).sum::<u32>() > 1000);
    // The RGBA and CMYK conversions keep the picture: compare with the clean source colours roughly.
    for m in &info.missing {
        assert!(k.get(&format!("{m}.jpg")).is_some_and(|v| v.contains(&"missing_file".to_string())));
    }
    let n_conv = info.quirks.iter().filter(|q| q.2).count();
    let n_quar = info.quirks.iter().filter(|q| !q.2).count();
    assert_eq!(r.converted, n_conv);
    assert_eq!(r.quarantined, n_quar);
    assert_eq!(r.ok, info.clean);
    assert_eq!(r.images, r.ok + r.converted + r.quarantined);
    assert!(dest.join("verify-report.json").is_file());

    // A second run finds a clean set.
    let again = verify(&dest, &VerifyOptions::default(), &|_| {}).unwrap();
    assert_eq!(again.converted + again.quarantined, 0, "{:?}", again.problems);
    assert_eq!(again.ok, info.clean + n_conv);
}

#[test]
fn cmyk_conversion_keeps_colours() {
    let t = tempfile::tempdir().unwrap();
    let info = fixture(t.path());
    let src = t.path().join("src/images");
    let cmyk = info.quirks.iter().find(|q| q.1 == "cmyk").unwrap();
    let dest = t.path().join("ds");
    import(&[t.path().join("src")], &dest).unwrap();
    verify(&dest, &VerifyOptions::default(), &|_| {}).unwrap();
    let conv = image::open(dest.join("images").join(&cmyk.0)).unwrap().to_rgb8();
    // The fixture's CMYK file encodes the same picture as the GIF's first frame.
    let gif = tinycats_data::pixels::decode(&std::fs::read(src.join(&info.quirks[0].0)).unwrap()).unwrap().to_rgb8();
    let diff: f64 = conv.pixels().zip(gif.pixels()).map(|(a, b)| (0..3).map(|c| (a.0[c] as f64 - b.0[c] as f64).abs()).sum::<f64>()).sum::<f64>()
        / (conv.len() as f64);
    assert!(diff < 25.0, "CMYK→RGB mean abs diff {diff}");
}

#[test]
fn import_accepts_tar_targz_and_class_folders() {
    let t = tempfile::tempdir().unwrap();
    let info = fixture(t.path());
    let src = t.path().join("src");
    for gz in [false, true] {
        let ar = t.path().join(if gz { "a.tar.gz" } else { "a.tar" });
        tar_of(&src, &ar, gz);
        // Plain tar named .tar.gz too: compression comes from the bytes.
        let named = t.path().join(format!("misnamed-{gz}.tar.gz"));
        std::fs::copy(&ar, &named).unwrap();
        let dest = t.path().join(format!("ds-{gz}"));
        let s = import(&[named], &dest).unwrap();
        assert_eq!(s.images, info.files);
        assert_eq!(std::fs::read(dest.join("annotations/list.txt")).unwrap(), std::fs::read(src.join("annotations/list.txt")).unwrap());
        // Re-import is a no-op, not an error.
        let again = import(&[ar.clone()], &dest).unwrap();
        assert!(again.unchanged >= info.files);
    }
    // Class folders: <breed>/<img>.
    let cf = t.path().join("folders");
    for (b, n) in [("Bengal", 3), ("maine coon", 2), ("beagle", 2)] {
        std::fs::create_dir_all(cf.join(b)).unwrap();
        for i in 0..n {
            std::fs::copy(src.join(format!("images/Abyssinian_{}.jpg", i + 1)), cf.join(b).join(format!("p{i}.jpg"))).unwrap();
        }
    }
    std::fs::write(cf.join("Bengal/notes.txt"), "ignored").unwrap();
    let dest = t.path().join("ds-folders");
    let s = import(&[cf.clone()], &dest).unwrap();
    assert_eq!((s.images, s.annotated), (7, 7));
    let list = std::fs::read_to_string(dest.join("annotations/list.txt")).unwrap();
    assert!(list.contains("Maine_Coon_2 "), "{list}");
    // Unknown breed folder → clear error naming it.
    std::fs::create_dir_all(cf.join("lion")).unwrap();
    let e = import(&[cf], &t.path().join("ds-bad")).unwrap_err().to_string();
    assert!(e.contains("lion") && e.contains("not an Oxford-IIIT Pet breed"), "{e}");
}

#[test]
fn import_refuses_overwrite_and_missing_annotations() {
    let t = tempfile::tempdir().unwrap();
    fixture(t.path());
    let src = t.path().join("src");
    let dest = t.path().join("ds");
    std::fs::create_dir_all(dest.join("images")).unwrap();
    std::fs::write(dest.join("images/Bengal_1.jpg"), b"mine").unwrap();
    let e = import(&[src.clone()], &dest).unwrap_err().to_string();
    assert!(e.contains("Bengal_1.jpg") && e.contains("never overwrites"), "{e}");
    assert_eq!(std::fs::read(dest.join("images/Bengal_1.jpg")).unwrap(), b"mine");

    let only_images = t.path().join("only");
    std::fs::create_dir_all(&only_images).unwrap();
    std::fs::rename(src.join("images"), only_images.join("images")).unwrap();
    let e = import(&[only_images], &t.path().join("ds2")).unwrap_err().to_string();
    assert!(e.contains("missing annotations") && e.contains("list.txt"), "{e}");
}

#[test]
fn label_sets_and_zero_image_classes() {
    let t = tempfile::tempdir().unwrap();
    let dest = imported_cats(t.path(), 4);
    let cats = prepare(&dest, &PrepareOptions { size: 16, labels: LabelSet::Cats, ..Default::default() }, &|_, _| {}).unwrap();
    assert_eq!((cats.classes.len(), cats.images), (12, 48));
    // No dogs: `other` would be empty, and breeds37 lacks 25 breeds: both refused, naming the class.
    let e = format!("{:#}", prepare(&dest, &PrepareOptions { size: 16, ..Default::default() }, &|_, _| {}).unwrap_err());
    assert!(e.contains("class `other` has zero images"), "{e}");
    let e = format!("{:#}", prepare(&dest, &PrepareOptions { size: 16, labels: LabelSet::Breeds37, ..Default::default() }, &|_, _| {}).unwrap_err());
    assert!(e.contains("zero images") && e.contains("american_bulldog"), "{e}");
    assert!(Cache::open(&cats.out).is_ok(), "failed runs leave the earlier cache intact");
    let e = format!("{:#}", prepare(&t.path().join("nope"), &PrepareOptions::default(), &|_, _| {}).unwrap_err());
    assert!(e.contains("nope") && e.contains("does not exist"), "{e}");
}

#[test]
fn prepare_then_load_is_deterministic_and_rerun_is_noop() {
    let t = tempfile::tempdir().unwrap();
    // All 12 cats + 2 dogs so `cats+other` has every class.
    let mut breeds: Vec<String> = tinycats_data::labels::CAT_BREEDS.iter().map(|s| s.to_string()).collect();
    breeds.extend(["beagle".to_string(), "pug".to_string()]);
    let spec = FixtureSpec { breeds, per_class: 10, ..Default::default() };
    let info = write_fixture(&t.path().join("src"), &spec).unwrap();
    let dest = t.path().join("ds");
    import(&[t.path().join("src")], &dest).unwrap();

    // Quirky files not yet verified → decode errors name files and suggest verify; nothing written.
    let opts = PrepareOptions { size: 32, ..Default::default() };
    let e = format!("{:#}", prepare(&dest, &opts, &|_, _| {}).unwrap_err());
    assert!(e.contains("tinycats data verify") && e.contains("Abyssinian_900"), "{e}");
    assert!(!dest.join("prepared").exists() || std::fs::read_dir(dest.join("prepared")).unwrap().count() == 0);

    verify(&dest, &VerifyOptions::default(), &|_| {}).unwrap();
    let s = prepare(&dest, &opts, &|_, _| {}).unwrap();
    let converted = info.quirks.iter().filter(|q| q.2).count();
    assert_eq!(s.images, info.clean + converted);
    assert_eq!(s.classes.len(), 13);
    assert_eq!(s.classes[12], "other");
    assert_eq!(s.missing, info.missing.len() + info.quirks.iter().filter(|q| !q.2 && q.1 != "not_in_annotations").count());
    assert!(!s.unchanged);
    let other = &s.counts["other"];
    assert_eq!(other.values().sum::<usize>(), 20);
    assert_eq!((other["train"], other["val"], other["test"]), (16, 2, 2));

    let mtime = std::fs::metadata(s.out.join("images.u8")).unwrap().modified().unwrap();
    let again = prepare(&dest, &opts, &|_, _| {}).unwrap();
    assert!(again.unchanged, "same inputs must be a no-op");
    assert_eq!(std::fs::metadata(s.out.join("images.u8")).unwrap().modified().unwrap(), mtime);

    let cache = Cache::open(&s.out).unwrap();
    assert_eq!(cache.len(), s.images);
    assert_eq!(cache.image(0).len(), 32 * 32 * 3);
    let train = cache.split(Split::Train);
    let cfg = LoaderConfig { batch_size: 8, seed: 5, ..Default::default() };
    let a = Loader::new(&cache, train.clone(), cfg.clone());
    let b1: Vec<_> = a.epoch(0).collect();
    let b2: Vec<_> = Loader::new(&cache, train.clone(), cfg.clone()).epoch(0).collect();
    assert_eq!(b1.len(), a.batches_per_epoch());
    assert_eq!(b1[0].images, b2[0].images, "same seed → same augmented pixels");
    assert_eq!(b1[0].labels, b2[0].labels);
    assert_eq!(a.batch(0, 1).images, b1[1].images, "random access matches iteration (resume mid-epoch)");
    let e1: Vec<_> = a.epoch(1).collect();
    assert_ne!(b1[0].indices, e1[0].indices, "epochs reshuffle");
    let total: usize = b1.iter().map(|b| b.len()).sum();
    assert_eq!(total, train.len());
    assert!(b1[0].images.iter().all(|v| (0.0..=1.0).contains(v)));
    // Augmentation off → the batch equals the cached pixels / 255 in CHW.
    let plain = Loader::new(&cache, vec![3], LoaderConfig { batch_size: 1, shuffle: false, augment: Augment::none(), ..Default::default() });
    let bt = plain.batch(0, 0);
    let hwc = cache.image(3);
    assert!((bt.images[0] - hwc[0] as f32 / 255.0).abs() < 1e-6);
    assert!((bt.images[32 * 32] - hwc[1] as f32 / 255.0).abs() < 1e-6);
    assert!((bt.images[2 * 32 * 32 + 5] - hwc[5 * 3 + 2] as f32 / 255.0).abs() < 1e-6);

    // Unwritable output: clear error, the existing cache untouched.
    let ro = t.path().join("ro");
    std::fs::write(&ro, b"a file, not a folder").unwrap();
    let e = format!("{:#}", prepare(&dest, &PrepareOptions { out: Some(ro.join("x")), ..opts.clone() }, &|_, _| {}).unwrap_err());
    assert!(e.contains("ro"), "{e}");
    assert!(Cache::open(&s.out).is_ok());
}

#[test]
fn prepare_zoom_names_its_cache_and_keeps_old_caches_valid() {
    let t = tempfile::tempdir().unwrap();
    let dest = imported_cats(t.path(), 3);
    let base = PrepareOptions { size: 16, labels: LabelSet::Cats, ..Default::default() };
    let plain = prepare(&dest, &base, &|_, _| {}).unwrap();
    let zoomed = prepare(&dest, &PrepareOptions { zoom: 0.5, ..base.clone() }, &|_, _| {}).unwrap();
    assert!(plain.out.ends_with("16-cats-crop"), "{}", plain.out.display());
    assert!(zoomed.out.ends_with("16-cats-crop-zoom0.5"), "{}", zoomed.out.display());
    let (p, z) = (Cache::open(&plain.out).unwrap(), Cache::open(&zoomed.out).unwrap());
    assert_eq!((p.index.zoom, z.index.zoom), (1.0, 0.5));
    assert_ne!(p.index.key, z.index.key, "zoom is part of the cache key");
    assert_eq!(p.index.split_hash(), z.index.split_hash(), "zoom changes pixels, not the split");
    assert_ne!(p.image(0), z.image(0));
    // An unzoomed index is written without the field, so caches from before zoom still open (zoom 1).
    let text = std::fs::read_to_string(plain.out.join("index.json")).unwrap();
    assert!(!text.contains("\"zoom\""), "unzoomed index must not change format");
    assert!(prepare(&dest, &base, &|_, _| {}).unwrap().unchanged, "the unzoomed key is unchanged");
    // Bad zooms are refused by name, and nothing is written.
    for (o, want) in [
        (PrepareOptions { zoom: 0.1, ..base.clone() }, "must be within"),
        (PrepareOptions { zoom: 0.7, mode: tinycats_data::pixels::ResizeMode::Letterbox, ..base.clone() }, "only the crop mode"),
    ] {
        let e = format!("{:#}", prepare(&dest, &o, &|_, _| {}).unwrap_err());
        assert!(e.contains("field `zoom`") && e.contains(want), "{e}");
    }
    let names: Vec<_> = std::fs::read_dir(dest.join("prepared")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
}
