//! The report's charts, drawn with plotters' SVG backend into strings (text as SVG `<text>`, so no
//! font files are needed: the browser lays the text out).

use plotters::coord::ranged1d::{SegmentValue, SegmentedCoord};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Chart colours (one per series).
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

const FONT: &str = "sans-serif";

type DrawResult<T> = Result<T, Box<dyn std::error::Error>>;

fn svg(w: u32, h: u32, draw: impl FnOnce(DrawingArea<SVGBackend, plotters::coord::Shift>) -> DrawResult<()>) -> String {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (w, h)).into_drawing_area();
        let drawn = root.fill(&WHITE).map_err(|e| e.into()).and_then(|_| draw(root.clone()));
        let presented = root.present();
        if let Err(e) = drawn.and(presented.map_err(|e| e.into())) {
            return format!("<p class=\"error\">chart failed: {}</p>", html_escape(&e.to_string()));
        }
    }
    out
}

/// Escapes text for HTML.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        1.0
    } else {
        v * 1.1
    }
}

/// Series over runs in order: one line with points per series; x labels from `labels`.
pub fn runs_lines(title: &str, labels: &[String], series: &[(&str, Vec<f64>)]) -> String {
    let n = labels.len().max(1);
    let ymax = nice_max(series.iter().flat_map(|(_, v)| v.iter().copied()).fold(0.0, f64::max));
    svg(900, 380, |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..ymax)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_labels(n.min(12))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-9 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| format!("{y:.0}"))
            .x_desc("run (start, UTC)")
            .y_desc("pages")
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()?;
        for (k, (name, values)) in series.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let pts: Vec<(f64, f64)> = values.iter().enumerate().map(|(i, v)| (i as f64, *v)).collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3)));
            chart.draw_series(PointSeries::of_element(pts, 4, color.filled(), &|c, s, st| Circle::new(c, s, st)))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font((FONT, 15))
            .draw()?;
        Ok(())
    })
}

/// A chart of labelled rows over `0..xmax` (the first label on top), its mesh drawn: the frame of
/// the bar and box charts.
fn rows_chart<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    title: &str,
    x_desc: &str,
    labels: &[&str],
    xmax: f64,
    x_decimals: usize,
) -> DrawResult<RowsChart<'a, 'b>> {
    let n = labels.len().max(1);
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(4);
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size((longest as u32 * 8 + 16).clamp(60, 380))
        .build_cartesian_2d(0f64..xmax, (0..n as i32 - 1).into_segmented())?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(n - 1 - *i as usize).map(|l| l.to_string()).unwrap_or_default(),
            _ => String::new(),
        })
        .x_label_formatter(&|x| format!("{x:.x_decimals$}"))
        .x_desc(x_desc)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()?;
    Ok(chart)
}

type RowsChart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, SegmentedCoord<plotters::coord::types::RangedCoordi32>>,
>;

/// The height of a chart of `rows` rows.
fn rows_height(rows: usize) -> u32 {
    (rows.max(1) as u32 * 26 + 110).max(180)
}

/// Horizontal bars, one per label.
pub fn hbars(title: &str, x_desc: &str, items: &[(String, f64)], color: RGBColor) -> String {
    let n = items.len().max(1);
    let xmax = nice_max(items.iter().map(|(_, v)| *v).fold(0.0, f64::max));
    let labels: Vec<&str> = items.iter().map(|(l, _)| l.as_str()).collect();
    svg(900, rows_height(n), |root| {
        let mut chart = rows_chart(&root, title, x_desc, &labels, xmax, 0)?;
        // The first item on top.
        let row = |i: usize| (n - 1 - i) as i32;
        chart.draw_series(items.iter().enumerate().map(|(i, (_, v))| {
            let i = row(i);
            let mut r =
                Rectangle::new([(0.0, SegmentValue::Exact(i)), (*v, SegmentValue::Exact(i + 1))], color.filled());
            r.set_margin(4, 4, 0, 0);
            r
        }))?;
        chart.draw_series(items.iter().enumerate().map(|(i, (_, v))| {
            let style = TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
            Text::new(format!(" {v:.0}"), (*v, SegmentValue::CenterOf(row(i))), style)
        }))?;
        Ok(())
    })
}

/// Vertical bars of counts per bin, one small chart per series in a grid of `cols` columns.
pub fn histograms(title: &str, bins: &[String], series: &[(&str, Vec<u64>)], cols: usize) -> String {
    let cols = cols.max(1);
    let rows = series.len().div_ceil(cols).max(1);
    svg(900, 60 + rows as u32 * 280, |root| {
        let root = root.titled(title, (FONT, 22))?;
        let areas = root.split_evenly((rows, cols));
        for (k, ((name, counts), area)) in series.iter().zip(areas).enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let ymax = nice_max(counts.iter().copied().max().unwrap_or(0) as f64);
            let nb = bins.len() as i32;
            let mut chart = ChartBuilder::on(&area)
                .caption(*name, (FONT, 17))
                .margin(10)
                .x_label_area_size(34)
                .y_label_area_size(44)
                .build_cartesian_2d((0..(nb - 1).max(0)).into_segmented(), 0f64..ymax)?;
            chart
                .configure_mesh()
                .light_line_style(TRANSPARENT)
                .disable_x_mesh()
                .x_labels(bins.len())
                .x_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) => bins.get(*i as usize).cloned().unwrap_or_default(),
                    _ => String::new(),
                })
                .y_label_formatter(&|y| format!("{y:.0}"))
                .label_style((FONT, 12))
                .draw()?;
            chart.draw_series(counts.iter().enumerate().map(|(i, c)| {
                let mut r = Rectangle::new(
                    [(SegmentValue::Exact(i as i32), 0.0), (SegmentValue::Exact(i as i32 + 1), *c as f64)],
                    color.filled(),
                );
                r.set_margin(0, 0, 2, 2);
                r
            }))?;
        }
        Ok(())
    })
}

/// Five-number summary of one group for a box plot.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxStats {
    pub label: String,
    pub n: usize,
    pub min: f64,
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    pub max: f64,
    pub mean: f64,
}

impl BoxStats {
    /// Statistics of a group's values (None if it has none).
    pub fn of(label: String, values: &mut [f64]) -> Option<BoxStats> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let q = |p: f64| {
            let pos = p * (values.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            values[lo] + (values[hi] - values[lo]) * (pos - lo as f64)
        };
        Some(BoxStats {
            label,
            n: values.len(),
            min: values[0],
            q1: q(0.25),
            median: q(0.5),
            q3: q(0.75),
            max: values[values.len() - 1],
            mean: values.iter().sum::<f64>() / values.len() as f64,
        })
    }
}

/// Horizontal box plots on [0, 1]: whiskers min–max, box q1–q3, a bar at the median, a dot at the mean.
pub fn boxes(title: &str, x_desc: &str, groups: &[BoxStats]) -> String {
    let n = groups.len().max(1);
    let labels: Vec<&str> = groups.iter().map(|g| g.label.as_str()).collect();
    svg(900, rows_height(n), |root| {
        let mut chart = rows_chart(&root, title, x_desc, &labels, 1.0, 1)?;
        let color = PALETTE[0];
        for (i, g) in groups.iter().enumerate() {
            // The first group on top.
            let i = (n - 1 - i) as i32;
            let c = SegmentValue::CenterOf(i);
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(g.min, c.clone()), (g.max, c.clone())],
                BLACK.mix(0.6).stroke_width(1),
            )))?;
            let mut r = Rectangle::new(
                [(g.q1, SegmentValue::Exact(i)), (g.q3.max(g.q1 + 0.002), SegmentValue::Exact(i + 1))],
                color.mix(0.55).filled(),
            );
            r.set_margin(5, 5, 0, 0);
            chart.draw_series(std::iter::once(r))?;
            let mut m = Rectangle::new(
                [(g.median - 0.002, SegmentValue::Exact(i)), (g.median + 0.002, SegmentValue::Exact(i + 1))],
                BLACK.filled(),
            );
            m.set_margin(5, 5, 0, 0);
            chart.draw_series(std::iter::once(m))?;
            chart.draw_series(std::iter::once(Circle::new((g.mean, c), 3, PALETTE[3].filled())))?;
        }
        Ok(())
    })
}
