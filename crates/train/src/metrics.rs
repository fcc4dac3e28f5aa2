//! Classification metrics computed from probabilities and labels (no framework types).

use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassReport {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
    /// One-vs-rest ROC-AUC (None when the class has no positives or no negatives).
    pub roc_auc: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub n: usize,
    pub loss: f64,
    pub accuracy: f64,
    pub top3: f64,
    pub top5: f64,
    pub macro_f1: f64,
    pub macro_roc_auc: Option<f64>,
    /// Expected calibration error, 15 equal-width confidence bins.
    pub ece: f64,
    pub per_class: Vec<ClassReport>,
    /// confusion[true][predicted]
    pub confusion: Vec<Vec<usize>>,
}

fn argmax(p: &[f32]) -> usize {
    p.iter().enumerate().fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0
}

/// Rank of the true class (0 = top-1).
fn rank_of(p: &[f32], y: usize) -> usize {
    p.iter().filter(|&&v| v > p[y]).count()
}

/// ROC-AUC by the rank statistic (ties count half).
pub fn roc_auc(scores: &[(f32, bool)]) -> Option<f64> {
    let pos = scores.iter().filter(|s| s.1).count();
    let neg = scores.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut v: Vec<(f32, bool)> = scores.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1].0 == v[i].0 {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += avg * v[i..=j].iter().filter(|s| s.1).count() as f64;
        i = j + 1;
    }
    Some((rank_sum - (pos * (pos + 1)) as f64 / 2.0) / (pos * neg) as f64)
}

/// `probs` row-major [n, classes].
pub fn report(probs: &[f32], labels: &[usize], classes: &[String]) -> Report {
    let c = classes.len();
    let n = labels.len();
    let mut confusion = vec![vec![0usize; c]; c];
    let (mut top1, mut top3, mut top5, mut loss) = (0usize, 0usize, 0usize, 0f64);
    let mut bins = vec![(0f64, 0f64, 0usize); 15];
    for (i, &y) in labels.iter().enumerate() {
        let p = &probs[i * c..(i + 1) * c];
        let pred = argmax(p);
        confusion[y][pred] += 1;
        let r = rank_of(p, y);
        top1 += (r == 0) as usize;
        top3 += (r < 3) as usize;
        top5 += (r < 5) as usize;
        loss -= (p[y].max(1e-12) as f64).ln();
        let conf = p[pred] as f64;
        let b = ((conf * 15.0) as usize).min(14);
        bins[b].0 += conf;
        bins[b].1 += (pred == y) as usize as f64;
        bins[b].2 += 1;
    }
    let nf = n.max(1) as f64;
    let ece = bins.iter().map(|(conf, acc, k)| if *k == 0 { 0.0 } else { (*k as f64 / nf) * ((acc - conf) / *k as f64).abs() }).sum();
    let per_class: Vec<ClassReport> = (0..c)
        .map(|k| {
            let tp = confusion[k][k] as f64;
            let support: usize = confusion[k].iter().sum();
            let predicted: usize = (0..c).map(|t| confusion[t][k]).sum();
            let precision = if predicted == 0 { 0.0 } else { tp / predicted as f64 };
            let recall = if support == 0 { 0.0 } else { tp / support as f64 };
            let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
            let scores: Vec<(f32, bool)> = labels.iter().enumerate().map(|(i, &y)| (probs[i * c + k], y == k)).collect();
            ClassReport { label: classes[k].clone(), precision, recall, f1, support, roc_auc: roc_auc(&scores) }
        })
        .collect();
    let present: Vec<&ClassReport> = per_class.iter().filter(|r| r.support > 0).collect();
    let macro_f1 = present.iter().map(|r| r.f1).sum::<f64>() / present.len().max(1) as f64;
    let aucs: Vec<f64> = per_class.iter().filter_map(|r| r.roc_auc).collect();
    let macro_roc_auc = (!aucs.is_empty()).then(|| aucs.iter().sum::<f64>() / aucs.len() as f64);
    Report {
        n,
        loss: loss / nf,
        accuracy: top1 as f64 / nf,
        top3: top3 as f64 / nf,
        top5: top5 as f64 / nf,
        macro_f1,
        macro_roc_auc,
        ece,
        per_class,
        confusion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_on_a_hand_checked_case() {
        let classes: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        // 4 samples: two right, one b→a, one c→c.
        let probs = [0.7, 0.2, 0.1, 0.6, 0.3, 0.1, 0.1, 0.8, 0.1, 0.2, 0.2, 0.6];
        let r = report(&probs, &[0, 1, 1, 2], &classes);
        assert_eq!(r.confusion, vec![vec![1, 0, 0], vec![1, 1, 0], vec![0, 0, 1]]);
        assert!((r.accuracy - 0.75).abs() < 1e-9);
        assert!((r.top3 - 1.0).abs() < 1e-9);
        assert!((r.per_class[0].precision - 0.5).abs() < 1e-9);
        assert!((r.per_class[1].recall - 0.5).abs() < 1e-9);
        assert!((r.macro_f1 - (2.0 / 3.0 + 2.0 / 3.0 + 1.0) / 3.0).abs() < 1e-9);
        assert_eq!(roc_auc(&[(0.1, false), (0.9, true)]), Some(1.0));
        assert_eq!(roc_auc(&[(0.5, false), (0.5, true)]), Some(0.5));
        assert_eq!(roc_auc(&[(0.5, true)]), None);
    }
}

/// Per-class precision-recall curve at `steps` thresholds: (threshold, precision, recall).
pub fn pr_curve(probs: &[f32], labels: &[usize], class: usize, classes: usize, steps: usize) -> Vec<(f32, f64, f64)> {
    let pos = labels.iter().filter(|&&y| y == class).count().max(1) as f64;
    (0..=steps)
        .map(|k| {
            let th = k as f32 / steps as f32;
            let (mut tp, mut fp) = (0usize, 0usize);
            for (i, &y) in labels.iter().enumerate() {
                if probs[i * classes + class] >= th {
                    if y == class { tp += 1 } else { fp += 1 }
                }
            }
            let precision = if tp + fp == 0 { 1.0 } else { tp as f64 / (tp + fp) as f64 };
            (th, precision, tp as f64 / pos)
        })
        .collect()
}

/// Confusion matrix as a PNG heat map (row-normalised; cell = 24 px, diagonal in green).
pub fn confusion_png(confusion: &[Vec<usize>]) -> image::RgbImage {
    let c = confusion.len();
    let cell = 24u32;
    image::RgbImage::from_fn(c as u32 * cell, c as u32 * cell, |x, y| {
        let (col, row) = ((x / cell) as usize, (y / cell) as usize);
        if x % cell == 0 || y % cell == 0 {
            return image::Rgb([200, 200, 200]);
        }
        let total: usize = confusion[row].iter().sum();
        let v = if total == 0 { 0.0 } else { confusion[row][col] as f32 / total as f32 };
        let shade = (255.0 * (1.0 - v)) as u8;
        if row == col { image::Rgb([shade, 255, shade]) } else { image::Rgb([255, shade, shade]) }
    })
}
