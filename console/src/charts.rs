//! Time charts drawn as inline SVG (no script and no CDN needed): one line per series, or
//! stacked areas when the series add up to a whole (traffic by source). Missing values are gaps,
//! not zeros, so a scheduler that did not report does not look like an idle one.

use leptos::prelude::*;

const W: f64 = 640.0;
const H: f64 = 160.0;
/// Room for the value labels on the left and the time labels below.
const LEFT: f64 = 72.0;
const BOTTOM: f64 = 18.0;

/// One series of a [`TimeChart`]: its label, its CSS class (colour), and one value per bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: &'static str,
    pub class: &'static str,
    pub values: Vec<Option<f64>>,
}

/// x of bucket `i` of `n` (bucket centres, so one bucket is a dot in the middle).
fn x(i: usize, n: usize) -> f64 {
    LEFT + (W - LEFT) * (i as f64 + 0.5) / n.max(1) as f64
}

/// y of `v` on a scale from 0 to `max`.
fn y(v: f64, max: f64) -> f64 {
    let plot = H - BOTTOM;
    if max <= 0.0 { plot } else { plot - plot * (v / max).clamp(0.0, 1.0) }
}

/// SVG path data for a line through `values`, one sub-path per run of present values (a lone
/// value is a short flat stroke so it still shows).
pub fn line_path(values: &[Option<f64>], max: f64) -> String {
    let n = values.len();
    let mut d = String::new();
    let mut run = 0;
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => {
                let (px, py) = (x(i, n), y(*v, max));
                let lone = run == 0 && values.get(i + 1).is_none_or(Option::is_none);
                if run == 0 {
                    d.push_str(&format!("M{px:.1},{py:.1}"));
                } else {
                    d.push_str(&format!("L{px:.1},{py:.1}"));
                }
                if lone {
                    d.push_str("h3");
                }
                run += 1;
            }
            None => run = 0,
        }
    }
    d
}

/// SVG path data for the band between `lower` and `upper` (same length), closed.
pub fn band_path(lower: &[f64], upper: &[f64], max: f64) -> String {
    let n = upper.len();
    if n == 0 {
        return String::new();
    }
    let mut d = String::new();
    for (i, v) in upper.iter().enumerate() {
        d.push_str(&format!("{}{:.1},{:.1}", if i == 0 { 'M' } else { 'L' }, x(i, n), y(*v, max)));
    }
    for (i, v) in lower.iter().enumerate().rev() {
        d.push_str(&format!("L{:.1},{:.1}", x(i, n), y(*v, max)));
    }
    d.push('Z');
    d
}

/// What the legend adds to a series' label: the peak of a part of a whole (traffic), the latest
/// value of a gauge.
fn legend_note(s: &Series, stacked: bool, format: fn(f64) -> String) -> String {
    let present = s.values.iter().flatten().copied();
    if stacked {
        let peak = present.fold(0.0, f64::max);
        format!(" · peak {}", format(peak))
    } else {
        present.last().map(|v| format!(" · now {}", format(v))).unwrap_or_default()
    }
}

/// A time chart of `series` over one window; `format` writes a value with its unit.
#[component]
pub fn TimeChart(
    id: &'static str,
    title: &'static str,
    series: Vec<Series>,
    /// Stack the series as areas (they are parts of one whole).
    #[prop(optional)]
    stacked: bool,
    format: fn(f64) -> String,
    /// Labels under the left and right ends of the time axis.
    from: String,
    to: String,
) -> impl IntoView {
    let n = series.first().map_or(0, |s| s.values.len());
    let max = if stacked {
        (0..n).map(|i| series.iter().map(|s| s.values[i].unwrap_or(0.0)).sum::<f64>()).fold(0.0, f64::max)
    } else {
        series.iter().flat_map(|s| s.values.iter().flatten().copied()).fold(0.0, f64::max)
    };
    let shapes = if stacked {
        let mut lower = vec![0.0; n];
        series
            .iter()
            .map(|s| {
                let upper: Vec<f64> = (0..n).map(|i| lower[i] + s.values[i].unwrap_or(0.0)).collect();
                let d = band_path(&lower, &upper, max);
                lower = upper;
                view! { <path d=d class=format!("area {}", s.class)></path> }
            })
            .collect_view()
    } else {
        series
            .iter()
            .map(|s| view! { <path d=line_path(&s.values, max) class=format!("line {}", s.class)></path> })
            .collect_view()
    };
    let caption = format!("{id}-caption");
    let empty = max <= 0.0;
    view! {
        <figure class="chart time-chart" id=id>
            <figcaption id=caption.clone()>{title}</figcaption>
            <svg role="img" aria-labelledby=caption viewBox=format!("0 0 {W} {H}") width="100%">
                <line x1=LEFT y1=H - BOTTOM x2=W y2=H - BOTTOM class="axis"></line>
                <line x1=LEFT y1="0" x2=LEFT y2=H - BOTTOM class="axis"></line>
                <text x=LEFT - 6.0 y="12" text-anchor="end" class="chart-label">{format(max)}</text>
                <text x=LEFT - 6.0 y=H - BOTTOM text-anchor="end" class="chart-label">{format(0.0)}</text>
                <text x=LEFT y=H - 4.0 class="chart-label">{from}</text>
                <text x=W y=H - 4.0 text-anchor="end" class="chart-label">{to}</text>
                {shapes}
                {empty.then(|| view! {
                    <text x=(LEFT + W) / 2.0 y=(H - BOTTOM) / 2.0 text-anchor="middle" class="chart-count">"nothing reported in this window"</text>
                })}
            </svg>
            <ul class="legend">
                {series.iter().map(|s| {
                    let note = legend_note(s, stacked, format);
                    view! { <li><span class=format!("swatch {}", s.class)></span>{s.label}<span class="muted">{note}</span></li> }
                }).collect_view()}
            </ul>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_break_at_gaps() {
        let d = line_path(&[Some(0.0), Some(10.0), None, Some(5.0)], 10.0);
        assert_eq!(d.matches('M').count(), 2, "{d}");
        // The lone value after the gap still draws something.
        assert!(d.ends_with("h3"), "{d}");
        // The top of the scale is y = 0, the bottom the axis.
        assert!(d.contains(",0.0"), "{d}");
        assert!(d.starts_with(&format!("M{:.1},{:.1}", x(0, 4), H - BOTTOM)), "{d}");
    }

    #[test]
    fn bands_close_over_their_lower_edge() {
        let d = band_path(&[0.0, 0.0], &[4.0, 8.0], 8.0);
        assert!(d.starts_with('M') && d.ends_with('Z'), "{d}");
        assert_eq!(d.matches('L').count(), 3, "{d}");
        assert_eq!(band_path(&[], &[], 1.0), "");
    }

    #[test]
    fn legends_say_the_peak_or_the_latest_value() {
        let s = Series { label: "x", class: "x", values: vec![Some(3.0), Some(9.0), Some(4.0), None] };
        let f: fn(f64) -> String = |v| format!("{v:.0}");
        assert_eq!(legend_note(&s, true, f), " · peak 9");
        assert_eq!(legend_note(&s, false, f), " · now 4");
        let empty = Series { values: vec![None, None], ..s };
        assert_eq!(legend_note(&empty, false, f), "");
    }

    #[test]
    fn values_are_clamped_to_the_plot() {
        assert_eq!(y(20.0, 10.0), 0.0);
        assert_eq!(y(-1.0, 10.0), H - BOTTOM);
        assert_eq!(y(3.0, 0.0), H - BOTTOM);
    }
}
