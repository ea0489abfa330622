//! Line charts as plain SVG text: no dependency, readable in any browser or
//! on GitHub.

use std::fmt::Write;

pub struct Line {
    pub points: Vec<(f64, f64)>,
    pub color: &'static str,
    pub width: f64,
    pub opacity: f64,
}

pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub lines: Vec<Line>,
    /// Vertical markers: (x, label).
    pub markers: Vec<(f64, String)>,
    /// Legend: (color, label).
    pub legend: Vec<(&'static str, String)>,
    /// A logarithmic y axis (values must be positive), ticks at 1, 2, 5 x 10^k.
    pub log_y: bool,
}

const W: f64 = 900.0;
const H: f64 = 420.0;
const L: f64 = 70.0;
const R: f64 = 20.0;
const T: f64 = 56.0;
const B: f64 = 55.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A "nice" step for about `n` ticks over `span`.
fn step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    mag * if f < 1.5 {
        1.0
    } else if f < 3.5 {
        2.0
    } else if f < 7.5 {
        5.0
    } else {
        10.0
    }
}

pub fn render(c: &Chart) -> String {
    let pts = c.lines.iter().flat_map(|l| l.points.iter());
    let (mut x1, mut y1) = (f64::MIN, f64::MIN);
    for &(x, y) in pts {
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    let x0 = 0.0;
    let x1 = if x1 > x0 { x1 } else { 1.0 };
    // Linear: 0 to a round number above the highest. Log: the decades
    // around every value, ticks at 1, 2 and 5 of each.
    let (y0, y1, yticks) = if c.log_y {
        let lo = c
            .lines
            .iter()
            .flat_map(|l| l.points.iter())
            .map(|p| p.1)
            .filter(|&y| y > 0.0)
            .fold(f64::MAX, f64::min);
        let lo = if lo == f64::MAX { 1.0 } else { lo };
        let d0 = lo.log10().floor();
        let d1 = y1.max(lo * 10.0).log10().ceil();
        let mut t = Vec::new();
        let mut d = d0;
        while d <= d1 {
            for m in [1.0, 2.0, 5.0] {
                let v = m * 10f64.powf(d);
                if v.log10() <= d1 + 1e-9 {
                    t.push(v);
                }
            }
            d += 1.0;
        }
        (d0, d1, t)
    } else {
        let ys = step(y1.max(1.0), 5.0);
        let y1 = (y1.max(1.0) / ys).ceil() * ys;
        let mut t = Vec::new();
        let mut y = 0.0;
        while y <= y1 + 1e-9 {
            t.push(y);
            y += ys;
        }
        (0.0, y1, t)
    };
    let log_y = c.log_y;
    let px = |x: f64| L + (x - x0) / (x1 - x0) * (W - L - R);
    let py = |y: f64| {
        let y = if log_y { y.max(1e-300).log10() } else { y };
        H - B - (y - y0) / (y1 - y0) * (H - T - B)
    };
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">
<rect width="{W}" height="{H}" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>
"##,
        W / 2.0,
        esc(c.title)
    );
    // Grid and ticks.
    for &y in &yticks {
        let _ = writeln!(
            s,
            r##"<line x1="{L}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - R,
            L - 6.0,
            py(y) + 4.0,
            fmt_num(y),
            py = py(y)
        );
    }
    let xs = step(x1 - x0, 8.0);
    let mut x = x0;
    while x <= x1 + 1e-9 {
        let _ = writeln!(
            s,
            r##"<line x1="{px:.1}" x2="{px:.1}" y1="{T}" y2="{}" stroke="#eee"/><text x="{px:.1}" y="{}" text-anchor="middle">{}</text>"##,
            H - B,
            H - B + 16.0,
            fmt_num(x),
            px = px(x)
        );
        x += xs;
    }
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{}" text-anchor="middle">{}</text><text transform="translate(16 {}) rotate(-90)" text-anchor="middle">{}</text>"##,
        (L + W - R) / 2.0,
        H - 14.0,
        esc(c.x_label),
        (T + H - B) / 2.0,
        esc(c.y_label)
    );
    for l in &c.lines {
        let mut d = String::new();
        for (i, &(x, y)) in l.points.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1},{:.1}",
                if i == 0 { "M" } else { " L" },
                px(x),
                py(y)
            );
        }
        let _ = writeln!(
            s,
            r##"<path d="{d}" fill="none" stroke="{}" stroke-width="{}" stroke-opacity="{}"/>"##,
            l.color, l.width, l.opacity
        );
    }
    for (x, label) in &c.markers {
        let _ = writeln!(
            s,
            r##"<line x1="{px:.1}" x2="{px:.1}" y1="{T}" y2="{}" stroke="#333" stroke-dasharray="4 3"/><text x="{:.1}" y="{}" font-size="11">{}</text>"##,
            H - B,
            px(*x) + 4.0,
            T + 12.0,
            esc(label),
            px = px(*x)
        );
    }
    let mut lx = L + 10.0;
    for (color, label) in &c.legend {
        let _ = writeln!(
            s,
            r##"<rect x="{lx:.1}" y="{}" width="14" height="4" fill="{color}"/><text x="{:.1}" y="{}">{}</text>"##,
            T - 20.0,
            lx + 18.0,
            T - 15.0,
            esc(label)
        );
        lx += 30.0 + 7.0 * label.len() as f64;
    }
    s.push_str("</svg>\n");
    s
}

fn fmt_num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.2}").trim_end_matches('0').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_lines_and_markers() {
        let c = Chart {
            title: "a <b>",
            x_label: "s",
            y_label: "n",
            lines: vec![Line {
                points: vec![(0.0, 1.0), (2.0, 3.0)],
                color: "#f00",
                width: 1.0,
                opacity: 1.0,
            }],
            markers: vec![(1.0, "kill".into())],
            legend: vec![("#f00", "one".into())],
            log_y: false,
        };
        let s = render(&c);
        assert!(s.starts_with("<svg") && s.ends_with("</svg>\n"));
        assert!(s.contains("a &lt;b&gt;"));
        assert!(s.contains("<path d=\"M70.0,"));
        assert!(s.contains(">kill<"));
        assert_eq!(step(100.0, 5.0), 20.0);
        assert_eq!(fmt_num(0.5), "0.5");
        let log = render(&Chart {
            log_y: true,
            lines: vec![Line {
                points: vec![(0.0, 3.0), (1.0, 3000.0)],
                color: "#f00",
                width: 1.0,
                opacity: 1.0,
            }],
            ..c
        });
        // Decades 1 to 10,000: ticks 1, 2, 5, 10 ... 10000, and no 0.
        assert!(log.contains(">5000<") && log.contains(">10000<") && log.contains(">1<"));
        // No 0 on the y axis (its labels are right-aligned).
        assert!(!log.contains("text-anchor=\"end\">0<"));
        assert!(s.contains("text-anchor=\"end\">0<"));
    }
}
