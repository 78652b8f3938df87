//! Percentiles of client-side samples, and the few figures read from a Prometheus text page.

/// The `q`-quantile (0..=1) of microsecond samples, in milliseconds; `None` without samples.
pub fn quantile_ms(samples: &mut [u32], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let i = ((samples.len() - 1) as f64 * q).round() as usize;
    Some(f64::from(samples[i]) / 1000.0)
}

/// `p50 / p99` in milliseconds, or `-`.
pub fn p50_p99(samples: &mut [u32]) -> String {
    match (quantile_ms(samples, 0.5), quantile_ms(samples, 0.99)) {
        (Some(a), Some(b)) => format!("{a:.2} / {b:.2}"),
        _ => "-".into(),
    }
}

/// The value of a sample line `name` (exactly, labels included) on a metrics page.
pub fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The upper bound of the bucket holding the `q`-quantile of histogram `name`, in seconds
/// (Prometheus buckets are cumulative).
pub fn histogram_quantile(page: &str, name: &str, q: f64) -> Option<f64> {
    let prefix = format!("{name}_bucket{{le=\"");
    let buckets: Vec<(f64, f64)> = page
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, count.trim().parse().ok()?))
        })
        .collect();
    let total = buckets.last()?.1;
    if total == 0.0 {
        return None;
    }
    buckets.iter().find(|(_, c)| *c >= total * q).map(|(le, _)| *le)
}

/// Bytes as MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
