//! The lab's picture: throughput and p99 latency against concurrency, one
//! line per engine, with the physical limit C / L beside the throughput
//! (log scales on every axis: the levels span two orders of magnitude).

use plotters::prelude::*;

use crate::engines::Engine;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};

use crate::lab::{LabReport, Run};

fn colour(engine: Engine) -> RGBColor {
    match engine {
        Engine::Sequential => RGBColor(0x77, 0x77, 0x77),
        Engine::Threaded => RGBColor(0xd3, 0x33, 0x33),
        Engine::Async => RGBColor(0x2f, 0x6f, 0xd6),
        Engine::AsyncResilient => RGBColor(0x2e, 0x9e, 0x44),
        Engine::Reqwest => RGBColor(0x8e, 0x44, 0xad),
    }
}

/// The report's chart as an SVG document.
pub fn svg(report: &LabReport) -> Result<String, String> {
    let mut out = String::new();
    draw(report, &mut out).map_err(|e| format!("drawing the plot: {e}"))?;
    Ok(out)
}

type Fallible = Result<(), Box<dyn std::error::Error>>;

fn draw(report: &LabReport, out: &mut String) -> Fallible {
    let root = SVGBackend::with_string(out, (1200, 860)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "{} requests per run, {:?} {:?} latency, {:.0}% errors: each engine against the physical limit C / L",
        report
            .config
            .requests
            .map_or(format!("{} x C", crate::lab::ROUNDS), |n| n.to_string()),
        report.config.server.latency.shape,
        report.config.server.latency.mean,
        100.0 * report.config.server.error_rate
    );
    let title = match &report.calibration {
        Some(c) => format!(
            "{} (measured L = {:.1?} at C = 1)",
            report.config.targets.join(", "),
            c.latency
        ),
        None => title,
    };
    let root = root.titled(&title, ("sans-serif", 18))?;
    let areas = root.split_evenly((2, 2));
    let max_c = (report.runs.iter())
        .map(|r| r.client.concurrency)
        .max()
        .unwrap_or(1)
        .max(2) as f64;
    // The sequential engine is measured at C = 1 only; it cannot use more
    // concurrency, so its throughput is drawn flat across every level.
    // A run with no value (no latency without a success) has no point.
    let series =
        |value: &dyn Fn(&Run) -> Option<f64>, flat: bool| -> Vec<(Engine, Vec<(f64, f64)>)> {
            Engine::ALL
                .map(|e| {
                    let mut points: Vec<(f64, f64)> = (report.runs.iter())
                        .filter(|r| r.client.engine == e)
                        .filter_map(|r| Some((r.client.concurrency as f64, value(r)?)))
                        .collect();
                    if let (true, Engine::Sequential, [(_, y)]) = (flat, e, points.as_slice()) {
                        points.push((max_c, *y));
                    }
                    (e, points)
                })
                .into_iter()
                .collect()
        };
    let latency = report.latency().as_secs_f64();
    let limit: Vec<(f64, f64)> = [1.0, max_c].map(|c| (c, c / latency)).to_vec();
    let x = (0.8f64..max_c * 1.25).log_scale();

    let throughput = series(&|r| Some(r.client.requests_per_s.max(1e-3)), true);
    let (lo, hi) = bounds(&throughput, &limit);
    panel(
        &areas[0],
        Labels {
            caption: "throughput",
            unit: "requests/s",
        },
        x.clone(),
        (lo / 2.0..hi * 2.0).log_scale(),
        &throughput,
        Some(&limit),
        SeriesLabelPosition::LowerRight,
    )?;
    let share = series(&|r| Some(100.0 * r.share_of_limit), false);
    panel(
        &areas[1],
        Labels {
            caption: "share of the physical limit C / L",
            unit: "% of C / L",
        },
        x.clone(),
        0.0..110.0,
        &share,
        Some(&[(1.0, 100.0), (max_c, 100.0)]),
        SeriesLabelPosition::LowerLeft,
    )?;
    let p99 = series(&|r| r.client.latency.map(|p| p.p99_ms.max(1e-3)), false);
    let (lo, hi) = bounds(&p99, &[]);
    panel(
        &areas[2],
        Labels {
            caption: "p99 latency",
            unit: "ms",
        },
        x.clone(),
        (lo / 2.0..hi * 2.0).log_scale(),
        &p99,
        None,
        SeriesLabelPosition::UpperLeft,
    )?;
    let rss = series(
        &|r| Some((r.client.peak_rss_kib as f64 / 1024.0).max(1e-3)),
        false,
    );
    let (lo, hi) = bounds(&rss, &[]);
    panel(
        &areas[3],
        Labels {
            caption: "peak memory (RSS high-water of the engine's process)",
            unit: "MiB",
        },
        x,
        (lo / 2.0..hi * 2.0).log_scale(),
        &rss,
        None,
        SeriesLabelPosition::UpperLeft,
    )?;
    root.present()?;
    Ok(())
}

/// The smallest and largest values drawn.
fn bounds(lines: &[(Engine, Vec<(f64, f64)>)], extra: &[(f64, f64)]) -> (f64, f64) {
    let ys = lines
        .iter()
        .flat_map(|(_, p)| p.iter())
        .chain(extra)
        .map(|(_, y)| *y);
    let (lo, hi) = ys.fold((f64::MAX, f64::MIN), |(lo, hi), y| (lo.min(y), hi.max(y)));
    if lo > hi { (1.0, 10.0) } else { (lo, hi) }
}

/// A panel's title and its y axis's unit.
struct Labels {
    caption: &'static str,
    unit: &'static str,
}

fn panel<X, Y>(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    labels: Labels,
    x: X,
    y: Y,
    lines: &[(Engine, Vec<(f64, f64)>)],
    limit: Option<&[(f64, f64)]>,
    legend: SeriesLabelPosition,
) -> Fallible
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption(labels.caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc("concurrency C (log)")
        .y_desc(labels.unit)
        .draw()?;
    if let Some(limit) = limit {
        let grey = RGBColor(0xaa, 0xaa, 0xaa);
        chart
            .draw_series(DashedLineSeries::new(
                limit.iter().copied(),
                6,
                4,
                grey.stroke_width(2),
            ))?
            .label("C / L (physical limit)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey));
    }
    for (engine, points) in lines.iter().filter(|(_, p)| !p.is_empty()) {
        let c = colour(*engine);
        let label = match (engine, points.len()) {
            (Engine::Sequential, 2) => "sequential (C = 1 at any level)",
            (Engine::Sequential, _) => "sequential (C = 1)",
            (other, _) => other.name(),
        };
        let measured = (points.iter()).take(if *engine == Engine::Sequential {
            1
        } else {
            points.len()
        });
        let dots = chart.draw_series(measured.map(|p| Circle::new(*p, 4, c.filled())))?;
        // A line needs two points; a lone point carries the legend itself.
        let labelled = if points.len() >= 2 {
            chart.draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))?
        } else {
            dots
        };
        labelled
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
    }
    chart
        .configure_series_labels()
        .position(legend)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
