//! `--plot FILE.svg`: throughput and p99 latency per second of the run,
//! one chart above the other.

use std::path::Path;

use plotters::prelude::*;

use crate::stats::Second;

/// Draws the timeline to an SVG file. The last second is left out when
/// it is partial (the run ended inside it), so the throughput line does
/// not dive at the end.
pub fn draw(
    path: &Path,
    timeline: &[Second],
    elapsed_secs: f64,
    title: &str,
) -> Result<(), String> {
    let full = (elapsed_secs.floor() as usize).max(1).min(timeline.len());
    let seconds = &timeline[..full];
    let throughput: Vec<(f64, f64)> = seconds
        .iter()
        .enumerate()
        .map(|(i, s)| (i as f64 + 1.0, s.ops as f64))
        .collect();
    let p99: Vec<(f64, f64)> = seconds
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.latency.is_empty())
        .map(|(i, s)| {
            (
                i as f64 + 1.0,
                s.latency.value_at_quantile(0.99) as f64 / 1000.0,
            )
        })
        .collect();
    let x_max = (full as f64).max(1.0) + 0.5;
    let y_ops = throughput.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let y_p99 = p99.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;

    let err = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    let root = SVGBackend::new(path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(title, ("sans-serif", 22))
        .map_err(|e| err(&e))?;
    let (upper, lower) = root.split_vertically(330);

    let mut chart = ChartBuilder::on(&upper)
        .caption("throughput per second", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_ops)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("second")
        .y_desc("ops/s")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(throughput, &BLUE))
        .map_err(|e| err(&e))?;

    let mut chart = ChartBuilder::on(&lower)
        .caption("p99 latency per second", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_p99)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("second")
        .y_desc("p99 (ms)")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(p99, &RED))
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
