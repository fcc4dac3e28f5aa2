//! Import + verify + prepare on the real Oxford-IIIT Pet subset in ../shared (skips with a
//! printed reason when it is absent; CI has it).

use std::path::PathBuf;
use tinycats_data::cache::{Cache, Split};
use tinycats_data::import::import;
use tinycats_data::prepare::{prepare, PrepareOptions};
use tinycats_data::verify::{verify, Kind, VerifyOptions};

pub fn shared_subset() -> Option<PathBuf> {
    let p = std::env::var_os("TINYCATS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
        .join("data/oxford-pets-subset");
    p.join("annotations/list.txt").is_file().then_some(p)
}

#[test]
fn real_subset_imports_verifies_and_prepares() {
    let Some(src) = shared_subset() else {
        eprintln!("SKIPPED real_subset_imports_verifies_and_prepares: ../shared/data/oxford-pets-subset not found");
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let dest = t.path().join("pets");
    let s = import(&[src.clone()], &dest).unwrap();
    assert_eq!(s.images, 3150);
    assert_eq!(s.annotated, 3150);

    let r = verify(&dest, &VerifyOptions::default(), &|_| {}).unwrap();
    assert_eq!(r.images, 3150);
    assert_eq!(r.quarantined, 0, "{:?}", r.problems);
    let gif = r.problems.iter().find(|p| p.file == "images/Abyssinian_34.jpg").expect("the GIF is reported");
    assert_eq!(gif.kind, Kind::GifDisguisedAsJpg);
    let png: Vec<Kind> = r.problems.iter().filter(|p| p.file == "images/Abyssinian_5.jpg").map(|p| p.kind).collect();
    assert!(png.contains(&Kind::PngDisguisedAsJpg) && png.contains(&Kind::Rgba), "{png:?}");
    assert!(r.converted >= 2);
    assert_eq!(r.ok + r.converted, 3150);

    let p = prepare(&dest, &PrepareOptions { size: 64, ..Default::default() }, &|_, _| {}).unwrap();
    assert_eq!(p.images, 3150);
    assert_eq!(p.classes.len(), 13);
    let total = |c: &str| p.counts[c].values().sum::<usize>();
    assert_eq!(total("other"), 950);
    let cats: usize = tinycats_data::labels::CAT_BREEDS.iter().map(|b| total(b)).sum();
    assert_eq!(cats, 2200);
    for b in tinycats_data::labels::CAT_BREEDS {
        assert!((169..=185).contains(&total(b)), "{b}: {}", total(b));
    }
    let c = Cache::open(&p.out).unwrap();
    let test = c.split(Split::Test).len();
    assert!((300..=330).contains(&test), "test split {test}");
    // The converted GIF is a real picture, not an empty frame.
    let gif_i = c.index.entries.iter().position(|e| e.stem == "Abyssinian_34").unwrap();
    let px = c.image(gif_i);
    let mean = px.iter().map(|&v| v as f64).sum::<f64>() / px.len() as f64;
    assert!(mean > 20.0 && mean < 235.0, "mean {mean}");
}
