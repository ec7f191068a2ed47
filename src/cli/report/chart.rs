//! Inline SVG charts of the report: horizontal bars and a histogram. Each chart has a
//! `<title>` and a `<desc>` (its text alternative), prints its figures as text beside
//! the bars, and marks limits with a dashed line and a label: nothing is said by colour
//! alone. The page puts a table with the same figures beside each chart.

use super::html::esc;
use std::fmt::Write as _;

/// One bar: its label, its length, and the text printed after it.
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub text: String,
    /// Drawn hatched (and said so in `text`): over a limit, a finding.
    pub alarm: bool,
}

/// A marker line across every bar at `value` (e.g. the legal limit), labelled.
pub struct Mark {
    pub value: f64,
    pub label: String,
}

const WIDTH: f64 = 720.0;
const LABEL_W: f64 = 190.0;
const TEXT_W: f64 = 200.0;
const ROW_H: f64 = 40.0;

fn open(out: &mut String, id: &str, title: &str, desc: &str, height: f64) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" aria-labelledby="{id}-t {id}-d"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"#,
        esc(title),
        esc(desc)
    );
    out.push_str(
        r##"<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/><line x1="0" y1="0" x2="0" y2="6" stroke="#000" stroke-width="3"/></pattern></defs>"##,
    );
}

/// Horizontal bars, one row each, with optional marks (one per row when `per_row`).
pub fn bars(id: &str, title: &str, desc: &str, rows: &[Bar], marks: &[Vec<Mark>]) -> String {
    let max = rows
        .iter()
        .map(|b| b.value)
        .chain(marks.iter().flatten().map(|m| m.value))
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let plot = WIDTH - LABEL_W - TEXT_W;
    let height = ROW_H * rows.len() as f64 + 24.0;
    let mut out = String::new();
    open(&mut out, id, title, desc, height);
    for (i, b) in rows.iter().enumerate() {
        let y = 4.0 + ROW_H * i as f64;
        let w = (b.value / max * plot).max(if b.value > 0.0 { 1.0 } else { 0.0 });
        let fill = if b.alarm { "url(#hatch)" } else { "#4a4a4a" };
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="12">{}</text><rect x="{LABEL_W}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{fill}" stroke="#000"/><text x="{:.1}" y="{:.1}" font-size="12">{}</text>"##,
            LABEL_W - 6.0,
            y + 15.0,
            esc(&b.label),
            y + 3.0,
            ROW_H - 22.0,
            LABEL_W + w + 6.0,
            y + 15.0,
            esc(&b.text)
        );
        for m in marks.get(i).into_iter().flatten() {
            let x = LABEL_W + m.value / max * plot;
            let (anchor, dx) = if x > LABEL_W + plot / 2.0 {
                ("end", -3.0)
            } else {
                ("start", 3.0)
            };
            let _ = write!(
                out,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#000" stroke-width="2" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="{anchor}">{}</text>"##,
                y,
                y + ROW_H - 6.0,
                x + dx,
                y + ROW_H - 8.0,
                esc(&m.label)
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// A histogram: one column per bin (label under it, count above it), with vertical
/// marks (the legal limit) drawn across.
pub fn histogram(
    id: &str,
    title: &str,
    desc: &str,
    bins: &[(String, f64, u64)],
    marks: &[Mark],
) -> String {
    let height = 330.0;
    let (left, bottom, top) = (50.0, 230.0, 56.0);
    let plot_w = WIDTH - left - 20.0;
    let n = bins.len().max(1) as f64;
    let col = plot_w / n;
    let max = bins.iter().map(|b| b.2).max().unwrap_or(0).max(1) as f64;
    let mut out = String::new();
    open(&mut out, id, title, desc, height);
    let _ = write!(
        out,
        r##"<line x1="{left}" y1="{bottom}" x2="{:.1}" y2="{bottom}" stroke="#000"/>"##,
        left + plot_w
    );
    for (i, (label, _, count)) in bins.iter().enumerate() {
        let x = left + col * i as f64;
        let h = *count as f64 / max * (bottom - top);
        if *count > 0 {
            let _ = write!(
                out,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="#4a4a4a" stroke="#000"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{count}</text>"##,
                x + 1.0,
                bottom - h,
                (col - 2.0).max(1.0),
                x + col / 2.0,
                bottom - h - 3.0,
            );
        }
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="9" text-anchor="end" transform="rotate(-40 {:.1} {:.1})">{}</text>"##,
            x + col / 2.0,
            bottom + 12.0,
            x + col / 2.0,
            bottom + 12.0,
            esc(label)
        );
    }
    // Marks sit at a position within the bins' range (the caller gives it in bin units),
    // each label on its own line above the plot, on the side of its line with room.
    for (i, m) in marks.iter().enumerate() {
        let x = left + m.value * col;
        let y = 14.0 + 14.0 * i as f64;
        let anchor = if x > WIDTH / 2.0 { "end" } else { "start" };
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{bottom}" stroke="#000" stroke-width="2" stroke-dasharray="6 3"/><text x="{x:.1}" y="{y:.1}" font-size="11" text-anchor="{anchor}">{}</text>"##,
            y - 10.0,
            esc(&m.label)
        );
    }
    out.push_str("</svg>");
    out
}
