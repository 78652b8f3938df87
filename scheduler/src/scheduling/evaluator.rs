//! How good a candidate parent is for a child, and when a parent has turned bad.
//!
//! The score is a weighted sum of features that each lie in `[0, 1]`, so the score does too and
//! weights read as shares. Load dominates because a busy parent slows every child it takes on;
//! locality and host type only break near-ties. The weights follow Dragonfly's default evaluator.

use super::{Candidate, Child};

/// Weight of free upload slots over the upload limit.
pub const LOAD_QUALITY_WEIGHT: f64 = 0.35;
/// Weight of the share of past uploads that succeeded.
pub const UPLOAD_SUCCESS_WEIGHT: f64 = 0.15;
/// Weight of the share of the task's pieces the candidate already has.
pub const FINISHED_PIECES_WEIGHT: f64 = 0.2;
/// Weight of being in the child's data centre.
pub const IDC_AFFINITY_WEIGHT: f64 = 0.1;
/// Weight of sharing the leading elements of the child's `region|zone|rack` location.
pub const LOCATION_AFFINITY_WEIGHT: f64 = 0.1;
/// Weight of the host type: seeds are preferred.
pub const HOST_TYPE_WEIGHT: f64 = 0.1;

/// Host-type feature of a seed peer.
const SEED_HOST_SCORE: f64 = 1.0;
/// Host-type feature of a normal peer.
const NORMAL_HOST_SCORE: f64 = 0.5;

/// Separator between the elements of a location.
const LOCATION_SEPARATOR: char = '|';

/// Below this many samples a piece cost history is too short for a normal distribution.
const NORMAL_DISTRIBUTION_SAMPLES: usize = 2000;
/// With a short history, a piece this many times slower than the mean marks a bad parent.
const SHORT_HISTORY_FACTOR: f64 = 20.0;
/// With a long history, a piece this many standard deviations above the mean marks a bad parent.
const LONG_HISTORY_SIGMAS: f64 = 3.0;

/// How suitable `c` is as a parent of `child`, in `[0, 1]` (higher is better).
pub fn score(child: &Child, c: &Candidate) -> f64 {
    LOAD_QUALITY_WEIGHT * load_quality(c)
        + UPLOAD_SUCCESS_WEIGHT * upload_success_rate(c)
        + FINISHED_PIECES_WEIGHT * finished_pieces_ratio(c)
        + IDC_AFFINITY_WEIGHT * idc_affinity(&child.idc, &c.idc)
        + LOCATION_AFFINITY_WEIGHT * location_affinity(&child.location, &c.location)
        + HOST_TYPE_WEIGHT * host_type(c)
}

/// Whether a parent whose last piece took `latest` microseconds should be dropped, given the
/// costs of its earlier pieces (`costs_micros`, not including `latest`).
///
/// Fewer than 2 samples say nothing. Below 2000 samples a piece is bad when it is more than
/// 20 × the mean; from 2000 samples on, when it is more than the mean plus 3 population
/// standard deviations.
pub fn is_bad_parent(costs_micros: &[u64], latest: u64) -> bool {
    let n = costs_micros.len();
    if n < 2 {
        return false;
    }
    let samples = n as f64;
    let mean = costs_micros.iter().map(|&c| c as f64).sum::<f64>() / samples;
    let latest = latest as f64;
    if n < NORMAL_DISTRIBUTION_SAMPLES {
        return latest > SHORT_HISTORY_FACTOR * mean;
    }
    let variance = costs_micros.iter().map(|&c| (c as f64 - mean).powi(2)).sum::<f64>() / samples;
    latest > mean + LONG_HISTORY_SIGMAS * variance.sqrt()
}

fn load_quality(c: &Candidate) -> f64 {
    ratio(u64::from(c.upload_slots_free), u64::from(c.upload_limit), 0.0)
}

fn upload_success_rate(c: &Candidate) -> f64 {
    let total = u64::from(c.upload_success) + u64::from(c.upload_failed);
    ratio(u64::from(c.upload_success), total, 1.0)
}

fn finished_pieces_ratio(c: &Candidate) -> f64 {
    if c.succeeded {
        return 1.0;
    }
    ratio(u64::from(c.finished_pieces), u64::from(c.total_pieces), 0.0)
}

fn idc_affinity(child: &str, candidate: &str) -> f64 {
    if !child.is_empty() && child == candidate { 1.0 } else { 0.0 }
}

/// Share of leading `|`-separated elements the two locations have in common, over the longer
/// of the two: `r1|z1|rack1` vs `r1|z1|rack2` is 2/3. An empty location matches nothing.
fn location_affinity(child: &str, candidate: &str) -> f64 {
    if child.is_empty() || candidate.is_empty() {
        return 0.0;
    }
    let shared =
        child.split(LOCATION_SEPARATOR).zip(candidate.split(LOCATION_SEPARATOR)).take_while(|(a, b)| a == b).count();
    let longest = child.split(LOCATION_SEPARATOR).count().max(candidate.split(LOCATION_SEPARATOR).count());
    shared as f64 / longest as f64
}

fn host_type(c: &Candidate) -> f64 {
    if c.is_seed { SEED_HOST_SCORE } else { NORMAL_HOST_SCORE }
}

/// `part / whole` clamped to `[0, 1]`, or `when_empty` if `whole` is 0.
fn ratio(part: u64, whole: u64, when_empty: f64) -> f64 {
    if whole == 0 { when_empty } else { (part as f64 / whole as f64).min(1.0) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduling::tests::{candidate, child};

    const EPS: f64 = 1e-9;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < EPS
    }

    #[test]
    fn weights_sum_to_one() {
        let sum = LOAD_QUALITY_WEIGHT
            + UPLOAD_SUCCESS_WEIGHT
            + FINISHED_PIECES_WEIGHT
            + IDC_AFFINITY_WEIGHT
            + LOCATION_AFFINITY_WEIGHT
            + HOST_TYPE_WEIGHT;
        assert!(close(sum, 1.0), "{sum}");
    }

    #[test]
    fn best_and_worst_candidates_hit_the_bounds() {
        let kid = child("c", "h0", "idc1", "r1|z1|k1");
        let mut best = candidate("p", "h1");
        best.is_seed = true;
        best.idc = "idc1".into();
        best.location = "r1|z1|k1".into();
        best.upload_slots_free = best.upload_limit;
        best.succeeded = true;
        best.upload_failed = 0;
        assert!(close(score(&kid, &best), 1.0), "{}", score(&kid, &best));

        let mut worst = candidate("q", "h2");
        worst.upload_slots_free = 0;
        worst.upload_success = 0;
        worst.upload_failed = 5;
        worst.finished_pieces = 0;
        // Only the normal host type is left: 0.1 * 0.5.
        assert!(close(score(&kid, &worst), 0.05), "{}", score(&kid, &worst));
    }

    #[test]
    fn each_feature_moves_the_score_by_its_weight() {
        let kid = child("c", "h0", "idc1", "r1|z1|k1");
        let base = candidate("p", "h1");
        let base_score = score(&kid, &base);
        type Tweak = fn(&mut Candidate);
        let cases: [(&str, Tweak, f64); 6] = [
            ("seed", |c| c.is_seed = true, HOST_TYPE_WEIGHT * 0.5),
            ("same idc", |c| c.idc = "idc1".into(), IDC_AFFINITY_WEIGHT),
            ("same location", |c| c.location = "r1|z1|k1".into(), LOCATION_AFFINITY_WEIGHT),
            ("succeeded", |c| c.succeeded = true, FINISHED_PIECES_WEIGHT * 0.5),
            // base: 2 of 4 slots free; all free adds half the load weight.
            ("idle", |c| c.upload_slots_free = c.upload_limit, LOAD_QUALITY_WEIGHT * 0.5),
            // base: 3 ok, 1 failed; 3 ok, 3 failed drops the rate from 3/4 to 1/2.
            ("failing", |c| c.upload_failed = 3, -UPLOAD_SUCCESS_WEIGHT * 0.25),
        ];
        for (name, tweak, delta) in cases {
            let mut c = base.clone();
            tweak(&mut c);
            let got = score(&kid, &c) - base_score;
            assert!(close(got, delta), "{name}: moved by {got}, expected {delta}");
        }
    }

    #[test]
    fn no_upload_history_counts_as_full_success() {
        let mut c = candidate("p", "h1");
        c.upload_success = 0;
        c.upload_failed = 0;
        assert!(close(upload_success_rate(&c), 1.0));
        c.upload_failed = 1;
        assert!(close(upload_success_rate(&c), 0.0));
    }

    #[test]
    fn feature_edge_cases() {
        let mut c = candidate("p", "h1");
        c.upload_limit = 0;
        c.upload_slots_free = 0;
        assert!(close(load_quality(&c), 0.0));
        c.total_pieces = 0;
        c.finished_pieces = 0;
        assert!(close(finished_pieces_ratio(&c), 0.0));
        c.succeeded = true;
        assert!(close(finished_pieces_ratio(&c), 1.0));
    }

    #[test]
    fn idc_affinity_needs_equal_non_empty() {
        assert!(close(idc_affinity("a", "a"), 1.0));
        assert!(close(idc_affinity("a", "b"), 0.0));
        assert!(close(idc_affinity("", ""), 0.0));
        assert!(close(idc_affinity("a", ""), 0.0));
    }

    #[test]
    fn location_affinity_table() {
        let cases = [
            ("r1|z1|rack1", "r1|z1|rack1", 1.0),
            ("r1|z1|rack1", "r1|z1|rack2", 2.0 / 3.0),
            ("r1|z1|rack1", "r1|z2|rack1", 1.0 / 3.0),
            ("r1|z1|rack1", "r2|z1|rack1", 0.0),
            ("r1|z1", "r1|z1|rack1", 2.0 / 3.0),
            ("r1", "r1", 1.0),
            ("r1", "r2", 0.0),
            ("", "", 0.0),
            ("r1|z1", "", 0.0),
        ];
        for (a, b, expected) in cases {
            assert!(close(location_affinity(a, b), expected), "{a:?} vs {b:?}");
            assert!(close(location_affinity(b, a), expected), "{b:?} vs {a:?}");
        }
    }

    #[test]
    fn bad_parent_needs_two_samples() {
        assert!(!is_bad_parent(&[], u64::MAX));
        assert!(!is_bad_parent(&[1], u64::MAX));
        assert!(is_bad_parent(&[1, 1], u64::MAX));
    }

    #[test]
    fn short_history_uses_twenty_times_the_mean() {
        let costs = [5, 15]; // mean 10
        assert!(!is_bad_parent(&costs, 0));
        assert!(!is_bad_parent(&costs, 200));
        assert!(is_bad_parent(&costs, 201));
        let costs = vec![100; NORMAL_DISTRIBUTION_SAMPLES - 1];
        assert!(!is_bad_parent(&costs, 2000));
        assert!(is_bad_parent(&costs, 2001));
    }

    #[test]
    fn all_zero_history_makes_any_cost_bad() {
        assert!(!is_bad_parent(&[0, 0, 0], 0));
        assert!(is_bad_parent(&[0, 0, 0], 1));
    }

    #[test]
    fn long_history_uses_three_sigma() {
        // Alternating 90 and 110: mean 100, population sigma 10, threshold 130.
        let costs: Vec<u64> = (0..NORMAL_DISTRIBUTION_SAMPLES).map(|i| if i % 2 == 0 { 90 } else { 110 }).collect();
        assert!(!is_bad_parent(&costs, 130));
        assert!(is_bad_parent(&costs, 131));
    }

    #[test]
    fn rule_switches_at_two_thousand_samples() {
        // Constant history: sigma 0. 150 is far below 20x the mean but above mean + 3 sigma.
        let short = vec![100; NORMAL_DISTRIBUTION_SAMPLES - 1];
        let long = vec![100; NORMAL_DISTRIBUTION_SAMPLES];
        assert!(!is_bad_parent(&short, 150));
        assert!(is_bad_parent(&long, 150));
        assert!(!is_bad_parent(&long, 100));
    }
}
