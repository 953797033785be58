//! Line charts as standalone SVG, written next to the report from the same run's figures, so
//! BENCHMARKS.md can show the curves that its tables list. No dependency: a few rectangles,
//! polylines and labels.

use std::fmt::Write as _;

/// One line of a chart: its name and its points (x, y), y > 0 on a log scale.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A chart with numeric x values shown as categories (evenly spaced, as the runs' N or client
/// counts are) and a linear or logarithmic y axis.
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_y: bool,
    pub series: Vec<Series>,
}

const W: f64 = 640.0;
const H: f64 = 360.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A short label for an axis value.
fn tick_label(v: f64) -> String {
    if v >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

impl Chart {
    pub fn render(&self) -> String {
        let mut xs: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let ys: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|y| !self.log_y || *y > 0.0)
            .collect();
        let (plot_w, plot_h) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
        let mut out = String::new();
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
        );
        let _ = write!(
            out,
            r#"<rect width="{W}" height="{H}" fill="white"/><text x="{}" y="22" text-anchor="middle" font-size="14" font-weight="bold">{}</text>"#,
            W / 2.0,
            escape(&self.title)
        );
        if xs.is_empty() || ys.is_empty() {
            out.push_str("</svg>\n");
            return out;
        }
        let (lo, hi) = ys
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(*y), b.max(*y)));
        let (y_min, y_max, ticks) = if self.log_y {
            let (a, b) = (
                lo.log10().floor(),
                hi.log10().ceil().max(lo.log10().floor() + 1.0),
            );
            let ticks: Vec<f64> = (a as i32..=b as i32).map(|e| 10f64.powi(e)).collect();
            (a, b, ticks)
        } else {
            let top = if hi > 0.0 { hi * 1.1 } else { 1.0 };
            let step = nice_step(top / 5.0);
            let ticks: Vec<f64> = (0..=((top / step).ceil() as usize))
                .map(|i| i as f64 * step)
                .collect();
            (0.0, *ticks.last().unwrap_or(&top), ticks)
        };
        let y_of = |y: f64| {
            let v = if self.log_y { y.log10() } else { y };
            TOP + plot_h - (v - y_min) / (y_max - y_min) * plot_h
        };
        let x_of = |x: f64| {
            let i = xs.iter().position(|v| *v == x).unwrap_or(0) as f64;
            let n = (xs.len().max(2) - 1) as f64;
            LEFT + if xs.len() == 1 {
                plot_w / 2.0
            } else {
                i / n * plot_w
            }
        };
        for t in &ticks {
            let y = y_of(*t);
            let _ = write!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + plot_w,
                LEFT - 6.0,
                y + 4.0,
                tick_label(*t)
            );
        }
        for x in &xs {
            let px = x_of(*x);
            let _ = write!(
                out,
                r##"<line x1="{px:.1}" y1="{}" x2="{px:.1}" y2="{}" stroke="#999"/><text x="{px:.1}" y="{}" text-anchor="middle">{}</text>"##,
                TOP + plot_h,
                TOP + plot_h + 5.0,
                TOP + plot_h + 18.0,
                tick_label(*x)
            );
        }
        let _ = write!(
            out,
            r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/><text x="{}" y="{}" text-anchor="middle">{}</text><text transform="translate(16 {}) rotate(-90)" text-anchor="middle">{}{}</text>"##,
            LEFT + plot_w / 2.0,
            H - 10.0,
            escape(&self.x_label),
            TOP + plot_h / 2.0,
            escape(&self.y_label),
            if self.log_y { " (log scale)" } else { "" }
        );
        for (i, s) in self.series.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let points: Vec<String> = s
                .points
                .iter()
                .filter(|p| !self.log_y || p.1 > 0.0)
                .map(|(x, y)| format!("{:.1},{:.1}", x_of(*x), y_of(*y)))
                .collect();
            let _ = write!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                points.join(" ")
            );
            for p in &points {
                let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(out, r#"<circle cx="{x}" cy="{y}" r="3" fill="{colour}"/>"#);
            }
            let ly = TOP + 10.0 + i as f64 * 18.0;
            let lx = LEFT + plot_w + 12.0;
            let _ = write!(
                out,
                r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
                lx + 18.0,
                lx + 24.0,
                ly + 4.0,
                escape(&s.name)
            );
        }
        out.push_str("</svg>\n");
        out
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_series_with_its_legend() {
        let chart = Chart {
            title: "A & B".into(),
            x_label: "N".into(),
            y_label: "ms".into(),
            log_y: true,
            series: vec![
                Series {
                    name: "queue".into(),
                    points: vec![(1.0, 5.0), (4.0, 50.0)],
                },
                Series {
                    name: "polling".into(),
                    points: vec![(1.0, 800.0), (4.0, 6000.0)],
                },
            ],
        };
        let svg = chart.render();
        assert!(
            svg.starts_with("<svg") && svg.ends_with("</svg>\n"),
            "{svg}"
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(
            svg.contains("A &amp; B") && svg.contains(">polling<"),
            "{svg}"
        );
        assert!(svg.contains(">1000<"), "log ticks: {svg}");
    }
}
