//! Learning-rate schedules as pure functions of the step (so a resumed run gets the same rate).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// constant | cosine | step | plateau
    pub kind: String,
    /// Linear warm-up from 0 over this many epochs (fractions allowed).
    pub warmup_epochs: f64,
    /// Floor of the cosine and plateau schedules.
    pub min_lr: f64,
    /// step: multiply by `gamma` every `step_epochs`.
    pub step_epochs: usize,
    pub gamma: f64,
    /// plateau: multiply by `factor` after `patience` epochs without validation-loss improvement.
    pub patience: usize,
    pub factor: f64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self { kind: "cosine".into(), warmup_epochs: 1.0, min_lr: 1e-6, step_epochs: 10, gamma: 0.1, patience: 3, factor: 0.5 }
    }
}

pub const KINDS: [&str; 4] = ["constant", "cosine", "step", "plateau"];

/// The rate at optimizer step `step` of `total` (`steps_per_epoch` per epoch).
/// `plateau_scale` is the product of plateau reductions so far (1.0 for other kinds).
pub fn lr_at(c: &ScheduleConfig, base: f64, step: usize, total: usize, steps_per_epoch: usize, plateau_scale: f64) -> f64 {
    let warm = (c.warmup_epochs * steps_per_epoch as f64).round() as usize;
    if step < warm {
        return base * (step + 1) as f64 / warm as f64;
    }
    match c.kind.as_str() {
        "cosine" => {
            let span = total.saturating_sub(warm).max(1) as f64;
            let p = ((step - warm) as f64 / span).min(1.0);
            c.min_lr + (base - c.min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
        }
        "step" => base * c.gamma.powi((step / (c.step_epochs.max(1) * steps_per_epoch.max(1))) as i32),
        "plateau" => (base * plateau_scale).max(c.min_lr),
        _ => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine_to_floor() {
        let c = ScheduleConfig { warmup_epochs: 1.0, min_lr: 0.0, ..Default::default() };
        let lr = |s| lr_at(&c, 1.0, s, 100, 10, 1.0);
        assert!((lr(0) - 0.1).abs() < 1e-9);
        assert!((lr(9) - 1.0).abs() < 1e-9);
        assert!((lr(10) - 1.0).abs() < 1e-9);
        assert!((lr(55) - 0.5).abs() < 1e-9);
        assert!(lr(99) < 0.01);
        let s = ScheduleConfig { kind: "step".into(), warmup_epochs: 0.0, step_epochs: 2, gamma: 0.5, ..Default::default() };
        assert_eq!(lr_at(&s, 1.0, 19, 100, 10, 1.0), 1.0);
        assert_eq!(lr_at(&s, 1.0, 20, 100, 10, 1.0), 0.5);
        let p = ScheduleConfig { kind: "plateau".into(), warmup_epochs: 0.0, ..Default::default() };
        assert_eq!(lr_at(&p, 1.0, 50, 100, 10, 0.25), 0.25);
    }
}
