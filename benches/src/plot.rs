//! `--plot FILE.svg`: throughput per second above, and below it the p99
//! latency per second of each operation kind that ran, in µs like the
//! text report's `99thPercentileLatency(us)`.

use std::path::Path;

use plotters::prelude::*;

use crate::stats::Second;
use crate::workload::Op;

/// The p99 chart's unit, as the text report spells it.
pub const P99_AXIS: &str = "p99 (us)";

/// Each operation kind's p99 per full second: `(second, µs)` points, for
/// the kinds that succeeded in at least one of them, in [`Op::ALL`] order.
pub fn p99_series(seconds: &[Second]) -> Vec<(Op, Vec<(f64, f64)>)> {
    Op::ALL
        .iter()
        .map(|op| {
            let points: Vec<(f64, f64)> = seconds
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.p99_of(*op).map(|p| (i as f64 + 1.0, p as f64)))
                .collect();
            (*op, points)
        })
        .filter(|(_, points)| !points.is_empty())
        .collect()
}

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
    let p99 = p99_series(seconds);
    let x_max = (full as f64).max(1.0) + 0.5;
    let y_ops = throughput.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let y_p99 = p99
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.1))
        .fold(1.0, f64::max)
        * 1.1;

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
        .caption("p99 latency per second by operation", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_p99)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("second")
        .y_desc(P99_AXIS)
        .draw()
        .map_err(|e| err(&e))?;
    for (i, (op, points)) in p99.into_iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points, color))
            .map_err(|e| err(&e))?
            .label(op.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::stats::Recorder;

    #[test]
    fn plot_draws_a_p99_line_per_operation_kind_in_microseconds() {
        let r = Recorder::new();
        for _ in 0..20 {
            r.record(Op::Read, Duration::from_micros(250), Ok(()), 0);
            r.record(Op::Update, Duration::from_micros(7_000), Ok(()), 0);
        }
        let (_, timeline, _) = r.snapshot();
        let series = p99_series(&timeline);
        let ops: Vec<Op> = series.iter().map(|(op, _)| *op).collect();
        assert_eq!(ops, vec![Op::Read, Op::Update]);
        let update = series[1].1[0].1;
        assert!(
            (6_900.0..=7_100.0).contains(&update),
            "p99 in µs, as the text report: {update}"
        );

        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("p.svg");
        draw(&path, &timeline, 1.0, "test").expect("drawn");
        let svg = std::fs::read_to_string(&path).expect("the plot");
        for needle in ["READ", "UPDATE", P99_AXIS] {
            assert!(svg.contains(needle), "{needle} missing from the plot");
        }
        assert!(!svg.contains("(ms)"), "one unit: µs");
        assert!(svg.matches("<polyline").count() >= 3, "{svg}");
    }
}
