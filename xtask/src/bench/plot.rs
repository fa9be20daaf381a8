//! SVG plots of the benchmark report, drawn with plotters: goodput over time through the
//! failovers, and efficiency per scenario.

use plotters::prelude::*;
use serde_json::Value;
use std::path::Path;

const SIZE: (u32, u32) = (900, 420);
const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

fn err(e: impl std::fmt::Display) -> String {
    format!("plot: {e}")
}

/// A scenario's `[[t, mbit], ...]` series.
fn series(s: &Value) -> Vec<(f64, f64)> {
    s["series_mbit_s"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Draws the plots the scenarios allow into `dir`; returns their file names.
pub(super) fn all(scenarios: &[Value], dir: &Path) -> Result<Vec<String>, String> {
    let mut files = Vec::new();
    let of =
        |kind: &str| -> Vec<&Value> { scenarios.iter().filter(|s| s["kind"] == kind).collect() };
    let failover = of("failover");
    if !failover.is_empty() {
        goodput(
            &failover,
            &dir.join("failover.svg"),
            "Goodput through the failovers (100 ms bins)",
        )?;
        files.push("failover.svg".into());
    }
    let efficiency = of("efficiency");
    if !efficiency.is_empty() {
        goodput(
            &efficiency,
            &dir.join("efficiency-goodput.svg"),
            "Goodput of a fresh connection (200 ms bins)",
        )?;
        bars(&efficiency, &dir.join("efficiency.svg"))?;
        files.push("efficiency.svg".into());
        files.push("efficiency-goodput.svg".into());
    }
    Ok(files)
}

/// Goodput over time of each scenario, with the links' sum as a dashed line.
fn goodput(runs: &[&Value], file: &Path, title: &str) -> Result<(), String> {
    let root = SVGBackend::new(file, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let t_max = runs
        .iter()
        .flat_map(|s| series(s))
        .map(|p| p.0)
        .fold(1.0, f64::max);
    let sum = runs
        .iter()
        .map(|s| s["sum_mbit_s"].as_f64().unwrap_or(0.0))
        .fold(0.0, f64::max);
    let y_max = runs
        .iter()
        .flat_map(|s| series(s))
        .map(|p| p.1)
        .fold(sum, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..t_max, 0.0..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("Mbit/s")
        .draw()
        .map_err(err)?;
    for (i, s) in runs.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let label = s["scenario"].as_str().unwrap_or("?").to_string();
        chart
            .draw_series(LineSeries::new(series(s), color.stroke_width(2)))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    if sum > 0.0 {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, sum), (t_max, sum)],
                6,
                4,
                BLACK.stroke_width(1),
            ))
            .map_err(err)?
            .label("the links' sum")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// Cold and warm efficiency per scenario, as bars against 90-100 %.
fn bars(runs: &[&Value], file: &Path) -> Result<(), String> {
    let root = SVGBackend::new(file, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let n = runs.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption("Efficiency: goodput ÷ the links' sum", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..n, 85.0..100.0)
        .map_err(err)?;
    let names: Vec<String> = runs
        .iter()
        .map(|s| {
            s["scenario"]
                .as_str()
                .unwrap_or("?")
                .replace("efficiency, ", "")
        })
        .collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(runs.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 1e-6 {
                names.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("% of the links' sum")
        .draw()
        .map_err(err)?;
    for (j, (key, color)) in [("cold", COLORS[0]), ("warm", COLORS[2])]
        .into_iter()
        .enumerate()
    {
        let bars = runs.iter().enumerate().map(|(i, s)| {
            let v = (s[key].as_f64().unwrap_or(0.0) * 100.0).clamp(85.0, 100.0);
            let x0 = i as f64 + 0.15 + j as f64 * 0.35;
            Rectangle::new([(x0, 85.0), (x0 + 0.33, v)], color.filled())
        });
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(key)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}
