//! Label sets: how Oxford-IIIT Pet breeds map onto the classes a model learns.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// The 12 cat breeds in the official CLASS-ID order (case-insensitive alphabetical).
pub const CAT_BREEDS: [&str; 12] = [
    "Abyssinian",
    "Bengal",
    "Birman",
    "Bombay",
    "British_Shorthair",
    "Egyptian_Mau",
    "Maine_Coon",
    "Persian",
    "Ragdoll",
    "Russian_Blue",
    "Siamese",
    "Sphynx",
];

/// The 25 dog breeds, as named in the official archive (lower case).
pub const DOG_BREEDS: [&str; 25] = [
    "american_bulldog",
    "american_pit_bull_terrier",
    "basset_hound",
    "beagle",
    "boxer",
    "chihuahua",
    "english_cocker_spaniel",
    "english_setter",
    "german_shorthaired",
    "great_pyrenees",
    "havanese",
    "japanese_chin",
    "keeshond",
    "leonberger",
    "miniature_pinscher",
    "newfoundland",
    "pomeranian",
    "pug",
    "saint_bernard",
    "samoyed",
    "scottish_terrier",
    "shiba_inu",
    "staffordshire_bull_terrier",
    "wheaten_terrier",
    "yorkshire_terrier",
];

/// The label for everything that is not one of the 12 cats in `cats+other`.
pub const OTHER: &str = "other";

/// All 37 breeds in official CLASS-ID order (1-based id = index + 1).
pub fn all_breeds() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = CAT_BREEDS.iter().chain(DOG_BREEDS.iter()).copied().collect();
    v.sort_by_key(|s| s.to_lowercase());
    v
}

/// Canonical breed name for a loosely written one ("maine coon", "Maine-Coon" → "Maine_Coon").
pub fn canonical_breed(name: &str) -> Option<&'static str> {
    let norm = |s: &str| s.to_lowercase().replace([' ', '-'], "_");
    let n = norm(name);
    CAT_BREEDS.iter().chain(DOG_BREEDS.iter()).copied().find(|b| norm(b) == n)
}

pub fn is_cat(breed: &str) -> bool {
    CAT_BREEDS.contains(&breed)
}

/// Which classes a prepared dataset uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LabelSet {
    /// 13 classes: the 12 cat breeds, then `other` for every dog.
    #[serde(rename = "cats+other")]
    CatsOther,
    /// 12 classes: cat breeds only; dogs are left out.
    #[serde(rename = "cats")]
    Cats,
    /// 37 classes: every breed in official order.
    #[serde(rename = "breeds37")]
    Breeds37,
}

impl LabelSet {
    pub const NAMES: [&'static str; 3] = ["cats+other", "cats", "breeds37"];

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "cats+other" => Ok(Self::CatsOther),
            "cats" => Ok(Self::Cats),
            "breeds37" => Ok(Self::Breeds37),
            _ => bail!("unknown label set `{s}` (field `labels`); allowed: {}", Self::NAMES.join(", ")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::CatsOther => "cats+other",
            Self::Cats => "cats",
            Self::Breeds37 => "breeds37",
        }
    }

    /// Class names in label-index order.
    pub fn classes(self) -> Vec<String> {
        match self {
            Self::CatsOther => CAT_BREEDS.iter().map(|s| s.to_string()).chain([OTHER.to_string()]).collect(),
            Self::Cats => CAT_BREEDS.iter().map(|s| s.to_string()).collect(),
            Self::Breeds37 => all_breeds().into_iter().map(String::from).collect(),
        }
    }

    /// Label index of a breed, or None when this set leaves the breed out.
    pub fn label_of(self, breed: &str) -> Option<usize> {
        match self {
            Self::CatsOther => Some(CAT_BREEDS.iter().position(|b| *b == breed).unwrap_or(CAT_BREEDS.len())),
            Self::Cats => CAT_BREEDS.iter().position(|b| *b == breed),
            Self::Breeds37 => all_breeds().iter().position(|b| *b == breed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_order_and_sizes() {
        let all = all_breeds();
        assert_eq!(all.len(), 37);
        assert_eq!(all[0], "Abyssinian");
        assert_eq!(all[1], "american_bulldog");
        assert_eq!(all[36], "yorkshire_terrier");
        assert_eq!(LabelSet::CatsOther.classes().len(), 13);
        assert_eq!(LabelSet::CatsOther.classes()[12], "other");
        assert_eq!(LabelSet::CatsOther.label_of("beagle"), Some(12));
        assert_eq!(LabelSet::CatsOther.label_of("Sphynx"), Some(11));
        assert_eq!(LabelSet::Cats.label_of("beagle"), None);
        assert_eq!(LabelSet::Breeds37.label_of("beagle"), Some(all.iter().position(|b| *b == "beagle").unwrap()));
    }

    #[test]
    fn parse_names_the_field() {
        let e = LabelSet::parse("dogs").unwrap_err().to_string();
        assert!(e.contains("labels") && e.contains("breeds37"), "{e}");
        assert_eq!(canonical_breed("maine coon"), Some("Maine_Coon"));
        assert_eq!(canonical_breed("Shiba-Inu"), Some("shiba_inu"));
        assert_eq!(canonical_breed("lion"), None);
    }
}
