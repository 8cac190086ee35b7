//! The report's plots. Each is first built as a [`Chart`] (plain data: title, axes, labelled
//! series), then drawn by one function into SVG and PNG with plotters. Text is drawn with an
//! embedded DejaVu Sans, so no system fonts are needed.
//!
//! | file | what |
//! |---|---|
//! | `speedup` | measured speed-up (95% whiskers) against the MAC-ideal one, one panel per batch size, log axes where the values span more than 10x; rows sharing a program are one point, tagged with every row's name; not valid rows hollow |
//! | `latency_vs_ratio` | p50 against the fraction removed, per method (physical), with the MAC-ideal curve dashed |
//! | `accuracy_vs_latency` | top-1 (after fine-tuning where measured) against p50, the Pareto front per setting |
//! | `memory_vs_ratio` | compiled memory (arguments + outputs + temporaries + code) against the fraction removed; peak dashed where reported |
//! | `masked_vs_physical` | p50 of the masked control next to physical pruning |
//! | `round_to` | p50 against the fraction removed, one line per `round_to` |
//!
//! Only `ok` rows with a p50 are plotted; markers of rows whose measurement is not valid are
//! hollow (and listed in `summary.md`); per-layer (`layers`) ratios have no place on a
//! ratio axis and are left out of the ratio plots.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::analysis::{fronts, join, programs, Point, Setting, Varying};
use super::input::Source;
use crate::error::{Error, Result};

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Line with markers (a measured curve).
    Line,
    /// Dashed line, no markers (a model: the MAC-ideal curve, peak memory).
    Dashed,
    /// Markers only.
    Points,
    /// A thick line through hollow markers (a Pareto front).
    Front,
}

#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub kind: Kind,
    /// Palette index (a measured series and its model share one).
    pub color: usize,
    /// Per point (parallel to `points`, or empty for none): whisker, hollow marker, tag.
    pub marks: Vec<Mark>,
}

/// What is drawn at one point besides its marker.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mark {
    /// A vertical whisker from `.0` to `.1` (a 95% interval).
    pub whisker: Option<(f64, f64)>,
    /// Drawn hollow (the measurement is not valid).
    pub hollow: bool,
    /// Text written next to the point (the rows it stands for).
    pub tag: String,
}

/// Points with their marks, as a series is built.
type Marked = (Vec<(f64, f64)>, Vec<Mark>);

/// One panel of a chart with several (e.g. one per batch size).
#[derive(Clone, Debug)]
pub struct Panel {
    pub title: String,
    pub series: Vec<Series>,
    /// Both axes logarithmic (the values span more than [`LOG_RANGE`]).
    pub log: bool,
}

/// Above this ratio of the largest to the smallest value on a panel, its axes are logarithmic.
pub const LOG_RANGE: f64 = 10.0;

#[derive(Clone, Debug)]
pub struct Chart {
    /// File name without extension.
    pub name: &'static str,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Start the y axis at 0.
    pub y_from_zero: bool,
    pub series: Vec<Series>,
    /// Shown under the title (e.g. why a plot is empty).
    pub note: Option<String>,
    /// Side-by-side panels; when empty, `series` is the one panel.
    pub panels: Vec<Panel>,
}

impl Chart {
    fn new(name: &'static str, title: &str, x: &str, y: &str) -> Chart {
        Chart {
            name,
            title: title.into(),
            x_label: x.into(),
            y_label: y.into(),
            y_from_zero: true,
            series: Vec::new(),
            note: None,
            panels: Vec::new(),
        }
    }

    /// The panels to draw: [`panels`](Self::panels), or one made of `series`.
    fn panels(&self) -> Vec<Panel> {
        if self.panels.is_empty() {
            vec![Panel { title: String::new(), series: self.series.clone(), log: false }]
        } else {
            self.panels.clone()
        }
    }
}

/// Series key: everything but the ratio, so one line holds one configuration.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct LineKey {
    setting: Setting,
    method: String,
    masked: bool,
    /// Ordered as numbers, `auto` last.
    round_to: (usize, String),
}

fn line_key(p: &Point<'_>) -> LineKey {
    LineKey {
        setting: p.setting.clone(),
        method: p.row.method.clone(),
        masked: p.row.is_masked(),
        round_to: (p.row.round_to_order(), p.row.round_to.clone().unwrap_or_else(|| "1".into())),
    }
}

/// Measured lines against the ratio: pruned points grouped by [`LineKey`], each with its
/// setting's unpruned point at ratio 0.
fn ratio_lines<'a>(points: &'a [Point<'a>], keep: impl Fn(&Point<'_>) -> bool) -> BTreeMap<LineKey, Vec<&'a Point<'a>>> {
    let mut lines: BTreeMap<LineKey, Vec<&Point>> = BTreeMap::new();
    for p in points.iter().filter(|p| !p.row.is_baseline() && p.row.ratio_value().is_some() && keep(p)) {
        lines.entry(line_key(p)).or_default().push(p);
    }
    for (k, v) in lines.iter_mut() {
        if let Some(b) = points.iter().rev().find(|p| p.setting == k.setting && p.row.is_baseline() && !p.row.is_masked()) {
            v.push(b);
        }
        v.sort_by(|a, b| a.row.ratio_value().unwrap().total_cmp(&b.row.ratio_value().unwrap()));
    }
    lines
}

fn line_label(sources: &[Source], vary: &Varying, k: &LineKey, control: bool, round_to: bool) -> String {
    let mut parts = vec![k.method.clone()];
    if control {
        parts.push(if k.masked { "masked".into() } else { "physical".into() });
    }
    if round_to {
        parts.push(format!("r{}", k.round_to.1));
    }
    parts.extend(vary.setting_label(sources, &k.setting));
    join(&parts)
}

const MIB: f64 = 1024.0 * 1024.0;

/// Builds the five charts.
pub fn charts(sources: &[Source], points: &[Point<'_>]) -> Vec<Chart> {
    let ratio_x = "fraction of channels removed";
    let mut out = vec![speedup_chart(sources, points)];

    // Latency against ratio, with the MAC-ideal curve.
    let mut c = Chart::new("latency_vs_ratio", "Latency vs pruning ratio (physical pruning)", ratio_x, "p50 latency (ms)");
    let lines = ratio_lines(points, |p| !p.row.is_masked());
    let vary = Varying::of(lines.values().flatten().copied());
    for (i, (k, line)) in lines.iter().enumerate() {
        let label = line_label(sources, &vary, k, false, vary.round_to);
        c.series.push(Series {
            label: label.clone(),
            points: line.iter().map(|p| (p.row.ratio_value().unwrap(), p.row.latency_p50_ms.unwrap())).collect(),
            kind: Kind::Line,
            color: i, marks: Vec::new(),
        });
        let ideal: Vec<(f64, f64)> = line.iter().filter_map(|p| Some((p.row.ratio_value()?, p.ideal_p50()?))).collect();
        if ideal.len() > 1 {
            c.series.push(Series { label: format!("{label} MAC-ideal"), points: ideal, kind: Kind::Dashed, color: i, marks: Vec::new() });
        }
    }
    out.push(c);

    // Accuracy against latency, with the Pareto front per setting (lowering not counted).
    let mut c = Chart::new("accuracy_vs_latency", "Top-1 vs p50 latency", "p50 latency (ms)", "top-1 (after fine-tuning where measured)");
    c.y_from_zero = false;
    let vary = Varying::of(points.iter().filter(|p| p.row.top1().is_some()));
    let with_acc: Vec<&Point> = points.iter().filter(|p| p.row.top1().is_some()).collect();
    let mut groups: BTreeMap<(Setting, String, bool), Marked> = BTreeMap::new();
    for p in &with_acc {
        let xy = (p.row.latency_p50_ms.unwrap(), p.row.top1().unwrap());
        let method = if p.row.is_baseline() { "unpruned".to_string() } else { p.row.method.clone() };
        let g = groups.entry((p.setting.clone(), method, p.row.is_masked())).or_default();
        g.0.push(xy);
        g.1.push(Mark { hollow: !p.row.valid_or_unknown(), ..Mark::default() });
    }
    for (i, ((s, method, masked), (pts, marks))) in groups.into_iter().enumerate() {
        let mut parts = vec![method];
        if masked {
            parts.push("masked".into());
        }
        parts.extend(vary.setting_label(sources, &s));
        c.series.push(Series { label: join(&parts), points: pts, kind: Kind::Points, color: i, marks });
    }
    let n = c.series.len();
    for (j, (s, front)) in fronts(points).into_iter().enumerate() {
        let mut parts = vec!["Pareto front".to_string()];
        parts.extend(vary.setting_label(sources, &s));
        let front = front.iter().map(|p| (p.row.latency_p50_ms.unwrap(), p.row.top1().unwrap())).collect();
        c.series.push(Series { label: join(&parts), points: front, kind: Kind::Front, color: n + j, marks: Vec::new() });
    }
    if with_acc.is_empty() {
        c.note = Some("no accuracy in the data (eval_limit: 0?)".into());
    }
    out.push(c);

    // Memory against ratio.
    let mut c = Chart::new("memory_vs_ratio", "Memory vs pruning ratio (physical pruning)", ratio_x, "MiB");
    let vary = Varying::of(lines.values().flatten().copied());
    for (i, (k, line)) in lines.iter().enumerate() {
        let label = line_label(sources, &vary, k, false, vary.round_to);
        let compiled: Vec<(f64, f64)> =
            line.iter().filter_map(|p| Some((p.row.ratio_value()?, p.row.compiled_bytes()? as f64 / MIB))).collect();
        if !compiled.is_empty() {
            c.series.push(Series { label: format!("{label} compiled"), points: compiled, kind: Kind::Line, color: i, marks: Vec::new() });
        }
        let peak: Vec<(f64, f64)> =
            line.iter().filter_map(|p| Some((p.row.ratio_value()?, p.row.peak_bytes()? as f64 / MIB))).collect();
        if !peak.is_empty() {
            c.series.push(Series { label: format!("{label} peak"), points: peak, kind: Kind::Dashed, color: i, marks: Vec::new() });
        }
    }
    out.push(c);

    // Masked control against physical pruning, for the methods that have a masked run.
    let mut c = Chart::new("masked_vs_physical", "Masked control vs physical pruning", ratio_x, "p50 latency (ms)");
    let masked_methods: Vec<(usize, String)> =
        points.iter().filter(|p| p.row.is_masked()).map(|p| (p.source, p.row.method.clone())).collect();
    let masked_lines = ratio_lines(points, |p| masked_methods.contains(&(p.source, p.row.method.clone())));
    let vary = Varying::of(masked_lines.values().flatten().copied());
    for (i, (k, line)) in masked_lines.iter().enumerate() {
        c.series.push(Series {
            label: line_label(sources, &vary, k, true, vary.round_to),
            points: line.iter().map(|p| (p.row.ratio_value().unwrap(), p.row.latency_p50_ms.unwrap())).collect(),
            kind: Kind::Line,
            color: i, marks: Vec::new(),
        });
    }
    if masked_lines.is_empty() {
        c.note = Some("no masked rows (add controls: [physical, masked] to the suite)".into());
    }
    out.push(c);

    // The effect of round_to.
    let mut c = Chart::new("round_to", "Effect of round_to (channels kept rounded to a multiple)", ratio_x, "p50 latency (ms)");
    let vary = Varying::of(lines.values().flatten().copied());
    for (i, (k, line)) in lines.iter().enumerate() {
        c.series.push(Series {
            label: line_label(sources, &vary, k, false, true),
            points: line.iter().map(|p| (p.row.ratio_value().unwrap(), p.row.latency_p50_ms.unwrap())).collect(),
            kind: Kind::Line,
            color: i, marks: Vec::new(),
        });
    }
    if !vary.round_to {
        c.note = Some("one round_to value in the data: nothing to compare".into());
    }
    out.push(c);
    out
}

/// Measured speed-up against the MAC-ideal one, one panel per batch size: one point per
/// program (rows sharing it tagged together), 95% whiskers where the CSV has them, hollow
/// where not valid; the MAC-ideal diagonal dashed. The series are the settings (file, device,
/// dtype, lowering) whose rows have an unpruned row to compare with.
fn speedup_chart(sources: &[Source], points: &[Point<'_>]) -> Chart {
    let mut c = Chart::new("speedup", "Speed-up over the unpruned network (whiskers: 95% intervals; hollow: not valid)", "MAC-ideal speed-up", "measured speed-up");
    c.y_from_zero = false;
    let progs: Vec<_> = programs(points).into_iter().filter(|g| g.first().speedup.is_some() && g.first().ideal.is_some()).collect();
    let vary = Varying::of(progs.iter().map(|g| g.first()));
    let mut batches: BTreeMap<usize, BTreeMap<Setting, Marked>> = BTreeMap::new();
    for g in &progs {
        let p = g.first();
        let key = Setting { batch: 0, ..p.setting.clone() };
        let e = batches.entry(p.setting.batch).or_default().entry(key).or_default();
        e.0.push((p.ideal.unwrap(), p.speedup.unwrap()));
        e.1.push(Mark { whisker: p.speedup_ci, hollow: g.invalid_reason().is_some(), tag: g.tag() });
    }
    let keys: Vec<Setting> = {
        let mut k: Vec<Setting> = batches.values().flat_map(|m| m.keys().cloned()).collect();
        k.sort();
        k.dedup();
        k
    };
    let no_batch = Varying { batch: false, ..vary.clone() };
    for (batch, series) in batches {
        let mut panel = Panel { title: format!("batch {batch}"), series: Vec::new(), log: false };
        let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
        for (s, (pts, marks)) in series {
            let color = keys.iter().position(|k| *k == s).unwrap_or(0);
            for (&(x, y), m) in pts.iter().zip(&marks) {
                for v in [x, y].into_iter().chain(m.whisker.into_iter().flat_map(|(a, b)| [a, b])) {
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
            let label = join(&no_batch.setting_label(sources, &s));
            let label = if label.is_empty() { s.lowering.clone() } else { label };
            panel.series.push(Series { label, points: pts, kind: Kind::Points, color, marks });
        }
        if lo > 0.0 && hi > lo {
            panel.log = hi / lo > LOG_RANGE;
            let ends = vec![(lo, lo), (hi, hi)];
            panel.series.push(Series {
                label: "MAC-ideal (measured = ideal)".into(),
                points: ends,
                kind: Kind::Dashed,
                color: 7,
                marks: Vec::new(),
            });
        }
        c.panels.push(panel);
    }
    if c.panels.is_empty() {
        c.note = Some("no rows with both a speed-up and MACs".into());
    }
    c
}

/// Pixel size of every plot: the plot, and the legend panel at its right.
pub const SIZE: (u32, u32) = (1200, 640);
const LEGEND_W: u32 = 360;

/// Tableau 10.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

/// The staircase of a latency table (`prunebench profile --plot`): each conv's latency (ms)
/// against its kept output channels, one line per conv (the input at its full count).
pub fn staircase_chart(model: &crate::budget::Model, title: &str) -> Chart {
    let mut c = Chart::new("staircase", title, "kept output channels", "layer latency (ms)");
    for (i, l) in model.layers.iter().enumerate().filter(|(_, l)| l.out.points.len() > 1) {
        c.series.push(Series {
            label: l.node.clone(),
            points: l.out.points.iter().map(|&(k, s)| (k as f64, s * 1e3)).collect(),
            kind: Kind::Line,
            color: i,
            marks: Vec::new(),
        });
    }
    if c.series.is_empty() {
        c.note = Some("no conv with a prunable output".into());
    }
    c
}

/// Writes `DIR/NAME.svg` and `DIR/NAME.png`; returns both paths.
pub fn write(chart: &Chart, dir: &Path) -> Result<Vec<PathBuf>> {
    register_font();
    let (w, h) = SIZE;
    let svg_path = dir.join(format!("{}.svg", chart.name));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw(root, chart).map_err(|e| Error::file(&svg_path, format!("drawing the plot: {e}")))?;
    }
    crate::util::write_atomic(&svg_path, svg.as_bytes())?;

    let png_path = dir.join(format!("{}.png", chart.name));
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, SIZE).into_drawing_area();
        draw(root, chart).map_err(|e| Error::file(&png_path, format!("drawing the plot: {e}")))?;
    }
    let mut png = std::io::Cursor::new(Vec::new());
    image::write_buffer_with_format(&mut png, &buf, w, h, image::ExtendedColorType::Rgb8, image::ImageFormat::Png)
        .map_err(|e| Error::file(&png_path, format!("encoding PNG: {e}")))?;
    crate::util::write_atomic(&png_path, png.get_ref())?;
    Ok(vec![svg_path, png_path])
}

type DrawResult<T> = std::result::Result<T, String>;

fn range(values: impl Iterator<Item = f64>, from_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if from_zero && lo >= 0.0 {
        lo = 0.0;
    }
    let pad = if hi > lo { (hi - lo) * 0.06 } else { hi.abs().max(1.0) * 0.1 };
    (if from_zero && lo == 0.0 { 0.0 } else { lo - pad }, hi + pad)
}

/// Draws `chart` on any plotters backend: its panels side by side, the legend at the right.
fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, chart: &Chart) -> DrawResult<()> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let (plot_area, legend_area) = root.split_horizontally(SIZE.0 - LEGEND_W);
    let caption = match &chart.note {
        Some(n) => format!("{} ({n})", chart.title),
        None => chart.title.clone(),
    };
    let plot_area = plot_area.titled(&caption, ("sans-serif", 20)).map_err(e)?;
    let panels = chart.panels();
    let areas = plot_area.split_evenly((1, panels.len().max(1)));
    for (panel, area) in panels.iter().zip(&areas) {
        let all = || panel.series.iter().flat_map(|s| s.points.iter().copied().chain(s.marks.iter().flat_map(|m| m.whisker).flat_map(|(a, b)| [(f64::NAN, a), (f64::NAN, b)])));
        if panel.log {
            let (x0, x1) = log_range(all().map(|p| p.0));
            let (y0, y1) = log_range(all().map(|p| p.1));
            draw_panel(area, chart, panel, (x0..x1).log_scale(), (y0..y1).log_scale())?;
        } else {
            let (x0, x1) = range(all().map(|p| p.0), false);
            let (y0, y1) = range(all().map(|p| p.1), chart.y_from_zero);
            draw_panel(area, chart, panel, x0..x1, y0..y1)?;
        }
    }
    let mut legend: Vec<Series> = Vec::new();
    for s in panels.iter().flat_map(|p| &p.series) {
        if !legend.iter().any(|l| l.label == s.label) {
            legend.push(s.clone());
        }
    }
    draw_legend(&legend_area, &legend).map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

/// A logarithmic axis range around the positive values (a 15% margin at each end).
fn log_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite() && *v > 0.0) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.1, 10.0);
    }
    (lo / 1.15, hi * 1.15)
}

/// One panel on coordinates `x` and `y` (linear or logarithmic).
fn draw_panel<DB, X, Y>(area: &DrawingArea<DB, Shift>, chart: &Chart, panel: &Panel, x: X, y: Y) -> DrawResult<()>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let mut c = ChartBuilder::on(area)
        .caption(panel.title.as_str(), ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)
        .map_err(e)?;
    let x_desc = if panel.log { format!("{} (log)", chart.x_label) } else { chart.x_label.clone() };
    let y_desc = if panel.log { format!("{} (log)", chart.y_label) } else { chart.y_label.clone() };
    let light = if panel.log { TRANSPARENT } else { RGBColor(235, 235, 235).to_rgba() };
    c.configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(8)
        .y_labels(8)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(light)
        .draw()
        .map_err(e)?;
    let (x_pixels, _) = c.plotting_area().get_pixel_range();
    let middle = (x_pixels.start + x_pixels.end) / 2;
    for s in &panel.series {
        let col = color(s.color);
        let shape = (s.color / PALETTE.len()) % 3;
        let pts = s.points.clone();
        match s.kind {
            Kind::Line | Kind::Front => {
                let width = if s.kind == Kind::Front { 3 } else { 2 };
                c.draw_series(LineSeries::new(pts.clone(), col.stroke_width(width))).map_err(e)?;
            }
            Kind::Dashed => {
                c.draw_series(DashedLineSeries::new(pts.clone(), 8, 5, col.stroke_width(2))).map_err(e)?;
            }
            Kind::Points => {}
        }
        for (i, &p) in pts.iter().enumerate() {
            let mark = s.marks.get(i).cloned().unwrap_or_default();
            if let Some((lo, hi)) = mark.whisker {
                c.draw_series(std::iter::once(PathElement::new(vec![(p.0, lo), (p.0, hi)], col.stroke_width(2)))).map_err(e)?;
                for v in [lo, hi] {
                    c.draw_series(std::iter::once(EmptyElement::at((p.0, v)) + PathElement::new(vec![(-5, 0), (5, 0)], col.stroke_width(2))))
                        .map_err(e)?;
                }
            }
            let size = if s.kind == Kind::Points { 5 } else { 4 };
            let style = if mark.hollow { col.stroke_width(2) } else { col.filled() };
            match s.kind {
                Kind::Dashed => {}
                Kind::Front => {
                    c.draw_series(std::iter::once(Circle::new(p, 7, col.stroke_width(2)))).map_err(e)?;
                }
                Kind::Line | Kind::Points => {
                    match shape {
                        0 => c.draw_series(std::iter::once(Circle::new(p, size, style))).map_err(e)?,
                        1 => c.draw_series(std::iter::once(TriangleMarker::new(p, size + 1, style))).map_err(e)?,
                        _ => c.draw_series(std::iter::once(Cross::new(p, size, col.stroke_width(2)))).map_err(e)?,
                    };
                }
            }
            if !mark.tag.is_empty() {
                // Right of the point in the left half of the panel, left of it in the right half.
                let right_half = c.backend_coord(&p).0 > middle;
                let (dx, h) = if right_half { (-9, HPos::Right) } else { (9, HPos::Left) };
                let font = TextStyle::from(("sans-serif", 12).into_font()).pos(Pos::new(h, VPos::Center));
                c.draw_series(std::iter::once(EmptyElement::at(p) + Text::new(mark.tag.clone(), (dx, 0), font))).map_err(e)?;
            }
        }
    }
    Ok(())
}

/// The legend in its own panel, so it never hides data.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    series: &[Series],
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let font = ("sans-serif", 13).into_font();
    let step = 20;
    let top = 40;
    let fit = ((SIZE.1 as i32 - top - 20) / step).max(1) as usize;
    if series.is_empty() {
        area.draw(&Text::new("no rows for this plot", (10, top), font.clone()))?;
        return Ok(());
    }
    for (i, s) in series.iter().enumerate() {
        let y = top + i as i32 * step;
        if i + 1 == fit && series.len() > fit {
            area.draw(&Text::new(format!("… {} more series", series.len() - i), (10, y - 6), font.clone()))?;
            break;
        }
        let col = color(s.color);
        match s.kind {
            Kind::Line | Kind::Front => {
                let w = if s.kind == Kind::Front { 3 } else { 2 };
                area.draw(&PathElement::new(vec![(8, y), (36, y)], col.stroke_width(w)))?;
            }
            Kind::Dashed => {
                for x in [8, 20, 32] {
                    area.draw(&PathElement::new(vec![(x, y), (x + 6, y)], col.stroke_width(2)))?;
                }
            }
            Kind::Points => {}
        }
        match s.kind {
            Kind::Front => area.draw(&Circle::new((22, y), 6, col.stroke_width(2)))?,
            Kind::Line | Kind::Points => match (s.color / PALETTE.len()) % 3 {
                0 => area.draw(&Circle::new((22, y), 4, col.filled()))?,
                1 => area.draw(&TriangleMarker::new((22, y), 5, col.filled()))?,
                _ => area.draw(&Cross::new((22, y), 4, col.stroke_width(2)))?,
            },
            Kind::Dashed => {}
        }
        area.draw(&Text::new(s.label.clone(), (44, y - 7), font.clone()))?;
    }
    Ok(())
}
