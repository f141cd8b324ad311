//! The report's SVG figures, drawn with `plotters`: learning curves and the confusion
//! matrix as a heat map.

use std::path::Path;

use plotters::prelude::*;

use crate::NUM_CLASSES;
use crate::error::{Error, Result};

/// Colours of the train, validation and test curves.
pub const SPLIT_COLOURS: [(&str, RGBColor); 3] = [
    ("train", RGBColor(31, 119, 180)),
    ("valid", RGBColor(255, 127, 14)),
    ("test", RGBColor(44, 160, 44)),
];

fn draw_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Figure {
        path: path.to_path_buf(),
        action: "draw",
        reason: e.to_string(),
    }
}

/// A named series of `(step, value)` points and its colour.
pub type Line<'a> = (&'a str, &'a [(f64, f64)], RGBColor);

/// One line per named series of `(step, value)` points, against gradient steps.
pub fn line_chart(path: &Path, title: &str, y_desc: &str, series: &[Line<'_>]) -> Result<()> {
    let points = series.iter().flat_map(|(_, p, _)| p.iter());
    let (mut x_max, mut y_min, mut y_max) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in points.filter(|(_, y)| y.is_finite()) {
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    if !y_min.is_finite() {
        (y_min, y_max) = (0.0, 1.0);
    }
    let pad = ((y_max - y_min) * 0.05).max(1e-3);
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_error(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, (y_min - pad)..(y_max + pad))
        .map_err(|e| draw_error(path, e))?;
    chart
        .configure_mesh()
        .x_desc("gradient step")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_desc(y_desc)
        .draw()
        .map_err(|e| draw_error(path, e))?;
    for (name, points, colour) in series {
        let colour = *colour;
        let finite: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.1.is_finite()).collect();
        chart
            .draw_series(LineSeries::new(finite.clone(), colour.stroke_width(2)))
            .map_err(|e| draw_error(path, e))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        chart
            .draw_series(finite.iter().map(|&p| Circle::new(p, 3, colour.filled())))
            .map_err(|e| draw_error(path, e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| draw_error(path, e))?;
    root.present().map_err(|e| draw_error(path, e))
}

/// The confusion matrix as a heat map: row = true class, column = predicted class
/// (labelled by index; `noun` names them in the caption, e.g. "digit"), colour by the
/// fraction of the row, count written in each cell.
pub fn confusion_heat_map(
    path: &Path,
    confusion: &[[u64; NUM_CLASSES]; NUM_CLASSES],
    noun: &str,
) -> Result<()> {
    let root = SVGBackend::new(path, (560, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_error(path, e))?;
    let n = NUM_CLASSES as f64;
    // Cells span 0..10 on both axes; the band -1..0 holds the class indices.
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("confusion matrix (rows: true {noun}, columns: predicted)"),
            ("sans-serif", 18),
        )
        .margin(16)
        .build_cartesian_2d(-1.0..n, n..-1.0)
        .map_err(|e| draw_error(path, e))?;
    for d in 0..NUM_CLASSES {
        let c = d as f64 + 0.5;
        for at in [(c, -0.5), (-0.5, c)] {
            chart
                .draw_series(std::iter::once(centred_text(d.to_string(), at, 15, BLACK)))
                .map_err(|e| draw_error(path, e))?;
        }
    }
    for (t, row) in confusion.iter().enumerate() {
        let total = row.iter().sum::<u64>().max(1) as f64;
        for (p, &count) in row.iter().enumerate() {
            let share = count as f64 / total;
            // Diagonal cells in green, mistakes in red, both fading to white at 0.
            let strength = if t == p {
                share
            } else {
                (share * 10.0).min(1.0)
            };
            let fade = |c: u8| (255.0 - (255.0 - f64::from(c)) * strength) as u8;
            let colour = if t == p {
                RGBColor(fade(44), fade(160), fade(44))
            } else {
                RGBColor(fade(214), fade(39), fade(40))
            };
            let (x, y) = (p as f64, t as f64);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x, y), (x + 1.0, y + 1.0)],
                    colour.filled(),
                )))
                .map_err(|e| draw_error(path, e))?;
            if count > 0 {
                let ink = if strength > 0.6 { WHITE } else { BLACK };
                chart
                    .draw_series(std::iter::once(centred_text(
                        count.to_string(),
                        (x + 0.5, y + 0.5),
                        13,
                        ink,
                    )))
                    .map_err(|e| draw_error(path, e))?;
            }
        }
    }
    root.present().map_err(|e| draw_error(path, e))
}

/// `text` centred on `at`.
fn centred_text(
    text: String,
    at: (f64, f64),
    size: u32,
    colour: RGBColor,
) -> Text<'static, (f64, f64), String> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    let style = ("sans-serif", size)
        .into_font()
        .color(&colour)
        .pos(Pos::new(HPos::Center, VPos::Center));
    Text::new(text, at, style)
}
