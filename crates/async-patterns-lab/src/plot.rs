//! The lab's picture: throughput, share of the physical limit C / L, p99
//! latency and peak memory against concurrency, one line per engine.
//!
//! Made to be read at a glance: one legend for the whole figure, in a strip
//! of its own above the panels (so it hides no data); ticks at round values
//! (1-2-5 steps) with plain labels; a value axis is linear when its values
//! lie within one decade (p99 latencies of 52-102 ms get ticks every 10 ms)
//! and logarithmic, with 1-2-5 ticks, when they span more; and the title
//! names the latency shape as the CLI spells it (`--shape long-tail`).

use plotters::coord::ranged1d::{
    AsRangedCoord, DefaultFormatting, KeyPointHint, Ranged, ValueFormatter,
};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::engines::Engine;
use crate::lab::{LabReport, Run};

/// An engine's colour, the same in every panel and the legend.
pub fn colour(engine: Engine) -> RGBColor {
    match engine {
        Engine::Sequential => RGBColor(0x77, 0x77, 0x77),
        Engine::Threaded => RGBColor(0xd3, 0x33, 0x33),
        Engine::Async => RGBColor(0x2f, 0x6f, 0xd6),
        Engine::AsyncResilient => RGBColor(0x2e, 0x9e, 0x44),
        Engine::Reqwest => RGBColor(0x8e, 0x44, 0xad),
    }
}

/// The dashed line of the physical limit C / L.
pub const LIMIT: RGBColor = RGBColor(0xaa, 0xaa, 0xaa);

const SIZE: (u32, u32) = (1200, 900);
const FONT: &str = "sans-serif";

/// The report's chart as an SVG document.
pub fn svg(report: &LabReport) -> Result<String, String> {
    let mut out = String::new();
    draw(report, &mut out).map_err(|e| format!("drawing the plot: {e}"))?;
    Ok(out)
}

/// The figure's title: the workload, in the words of `lab run`'s options.
pub fn title(report: &LabReport) -> String {
    let server = &report.config.server;
    let requests = report
        .config
        .requests
        .map_or(format!("{} x C", crate::lab::ROUNDS), |n| n.to_string());
    let capacity = server
        .capacity
        .map_or(String::new(), |c| format!(", capacity {c}"));
    if let Some(c) = &report.calibration {
        // A run against the user's own targets: no server settings of
        // ours, and L is what was measured.
        return format!(
            "{requests} requests per run against {}: each engine against C / L (L = {} measured at C = 1)",
            report.config.targets.join(", "),
            humantime::format_duration(round_to_us(c.latency)),
        );
    }
    format!(
        "{requests} requests per run, {} {} latency, {}% errors{capacity}: each engine against C / L",
        cli_name(&server.latency.shape),
        humantime::format_duration(server.latency.mean),
        number(100.0 * server.error_rate),
    )
}

/// `d` to whole microseconds, so a measured latency reads `51ms 234us`.
fn round_to_us(d: std::time::Duration) -> std::time::Duration {
    std::time::Duration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A value's name on the command line (`long-tail`, not `LongTail`).
pub fn cli_name(value: &impl clap::ValueEnum) -> String {
    value
        .to_possible_value()
        .map_or_else(|| "?".to_string(), |v| v.get_name().to_string())
}

type Fallible = Result<(), Box<dyn std::error::Error>>;

/// Points per engine, in `Engine::ALL` order.
type Lines = Vec<(Engine, Vec<(f64, f64)>)>;

fn draw(report: &LabReport, out: &mut String) -> Fallible {
    let root = SVGBackend::with_string(out, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(&title(report), (FONT, 22))?;
    let (key, root) = root.split_vertically(40);
    let areas = root.split_evenly((2, 2));
    let max_c = (report.runs.iter())
        .map(|r| r.client.concurrency)
        .max()
        .unwrap_or(1)
        .max(2) as f64;
    // The sequential engine is measured at C = 1 only; it cannot use more
    // concurrency, so its throughput is drawn flat across every level.
    // A run with no value (no latency without a success) has no point.
    let series = |value: &dyn Fn(&Run) -> Option<f64>, flat: bool| -> Lines {
        Engine::ALL
            .map(|e| {
                let mut points: Vec<(f64, f64)> = (report.runs.iter())
                    .filter(|r| r.client.engine == e)
                    .filter_map(|r| Some((r.client.concurrency as f64, value(r)?)))
                    .filter(|(_, y)| y.is_finite())
                    .collect();
                if let (true, Engine::Sequential, [(_, y)]) = (flat, e, points.as_slice()) {
                    points.push((max_c, *y));
                }
                (e, points)
            })
            .into_iter()
            .collect()
    };
    // C / L is a limit only for an upstream that takes time: at L = 0
    // there is none (and C / 0 is an infinite axis), so no limit line and
    // no share of it.
    let limit = limit_line(report.latency().as_secs_f64(), max_c);
    let has_limit = !limit.is_empty();
    let x = Axis::log(0.8, max_c * 1.25);

    let throughput = series(&|r| Some(r.client.requests_per_s), true);
    let share = series(&|r| has_limit.then_some(percent(r.share_of_limit)), false);
    let p99 = series(&|r| r.client.latency.map(|p| p.p99_ms), false);
    let rss = series(&|r| Some(r.client.peak_rss_kib as f64 / 1024.0), false);

    legend(&key, report, has_limit)?;
    let full = [(1.0, 100.0), (max_c, 100.0)];
    let share_axis = Axis::linear(0.0, bounds(&share, &[]).1.max(100.0) * 1.05);
    let panels = [
        Panel {
            caption: "throughput",
            unit: "requests/s",
            lines: &throughput,
            limit: has_limit.then_some(&limit[..]),
            y: Axis::fit(bounds(&throughput, &limit)),
        },
        Panel {
            caption: if has_limit {
                "share of the physical limit C / L"
            } else {
                "share of C / L: none (the upstream's latency L is 0)"
            },
            unit: "% of C / L",
            lines: &share,
            limit: has_limit.then_some(&full[..]),
            y: share_axis,
        },
        Panel {
            caption: "p99 latency",
            unit: "ms",
            lines: &p99,
            limit: None,
            y: Axis::fit(bounds(&p99, &[])),
        },
        Panel {
            caption: "peak memory (RSS high-water of the engine's process)",
            unit: "MiB",
            lines: &rss,
            limit: None,
            y: Axis::fit(bounds(&rss, &[])),
        },
    ];
    for (area, p) in areas.iter().zip(panels) {
        match p.y.clone() {
            Axis::Linear { lo, hi, ticks } => {
                let y = Ticked::<RangedCoordf64>::new((lo..hi).into(), ticks);
                panel(area, &p, &x, y)?
            }
            Axis::Log { lo, hi, ticks } => {
                let y = Ticked::<LogCoord<f64>>::new((lo..hi).log_scale().into(), ticks);
                panel(area, &p, &x, y)?
            }
        }
    }
    root.present()?;
    Ok(())
}

/// The one legend, in a strip of its own between the title and the panels.
fn legend(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    report: &LabReport,
    has_limit: bool,
) -> Fallible {
    let font = (FONT, 17).into_font().color(&BLACK);
    let mut entries: Vec<(String, Option<RGBColor>)> = Engine::ALL
        .into_iter()
        .filter(|e| report.runs.iter().any(|r| r.client.engine == *e))
        .map(|e| {
            let name = match e {
                Engine::Sequential => "sequential (measured at C = 1, drawn flat)".to_string(),
                other => other.name().to_string(),
            };
            (name, Some(colour(e)))
        })
        .collect();
    if has_limit {
        entries.push(("C / L, the physical limit".to_string(), None));
    }
    // Plotters' SVG backend cannot measure text: it writes size 17 as
    // 13.7 px, and sans-serif averages about 7.5 px a character there.
    let width = |s: &str| 30 + (s.chars().count() as i32 * 15) / 2;
    let total: i32 = entries.iter().map(|(s, _)| width(s) + 24).sum::<i32>() - 24;
    let mut x = ((SIZE.0 as i32 - total) / 2).max(10);
    let y = 20;
    for (name, c) in entries {
        match c {
            Some(c) => {
                area.draw(&PathElement::new(
                    vec![(x, y), (x + 22, y)],
                    c.stroke_width(2),
                ))?;
                area.draw(&Circle::new((x + 11, y), 4, c.filled()))?;
            }
            None => {
                for dash in [0, 9, 18] {
                    area.draw(&PathElement::new(
                        vec![(x + dash, y), (x + dash + 5, y)],
                        LIMIT.stroke_width(2),
                    ))?;
                }
            }
        }
        area.draw(&Text::new(name.clone(), (x + 30, y - 8), font.clone()))?;
        x += width(&name) + 24;
    }
    Ok(())
}

/// The smallest and largest values drawn.
fn bounds(lines: &[(Engine, Vec<(f64, f64)>)], extra: &[(f64, f64)]) -> (f64, f64) {
    let ys = lines
        .iter()
        .flat_map(|(_, p)| p.iter())
        .chain(extra)
        .map(|(_, y)| *y)
        .filter(|y| y.is_finite());
    let (lo, hi) = ys.fold((f64::MAX, f64::MIN), |(lo, hi), y| (lo.min(y), hi.max(y)));
    if lo > hi { (1.0, 10.0) } else { (lo, hi) }
}

/// A value axis: its range and the ticks labelled on it.
#[derive(Debug, Clone, PartialEq)]
pub enum Axis {
    /// Evenly spaced ticks (a 1, 2 or 5 times a power of ten apart).
    Linear {
        /// The bottom of the axis.
        lo: f64,
        /// The top.
        hi: f64,
        /// The ticks, ascending.
        ticks: Vec<f64>,
    },
    /// Ticks at 1, 2 and 5 times powers of ten (or at powers of ten only,
    /// when the values span many decades).
    Log {
        /// The bottom of the axis (above zero).
        lo: f64,
        /// The top.
        hi: f64,
        /// The ticks, ascending.
        ticks: Vec<f64>,
    },
}

/// At most this many labelled ticks on an axis.
const MAX_TICKS: usize = 10;

impl Axis {
    /// The axis for values from `lo` to `hi`: linear, with room around the
    /// values, when they lie within one decade (or touch zero); else
    /// logarithmic.
    pub fn fit((lo, hi): (f64, f64)) -> Axis {
        if lo <= 0.0 || hi <= 10.0 * lo {
            let pad = if hi > lo {
                (hi - lo) * 0.08
            } else {
                lo.abs().max(1.0) * 0.1
            };
            let bottom = if lo >= 0.0 {
                (lo - pad).max(0.0)
            } else {
                lo - pad
            };
            Axis::linear(bottom, hi + pad)
        } else {
            Axis::log(lo / 1.4, hi * 1.4)
        }
    }

    /// A linear axis covering `lo..hi`, widened to the ticks around them.
    pub fn linear(lo: f64, hi: f64) -> Axis {
        let span = (hi - lo).max(f64::MIN_POSITIVE);
        let step = steps(span / MAX_TICKS as f64)
            .find(|s| (span / s).ceil() as usize + 2 <= MAX_TICKS)
            .unwrap_or(span);
        let (lo, hi) = ((lo / step).floor() * step, (hi / step).ceil() * step);
        let n = ((hi - lo) / step).round() as usize;
        let ticks = (0..=n).map(|k| round(lo + k as f64 * step)).collect();
        Axis::Linear { lo, hi, ticks }
    }

    /// A logarithmic axis over `lo..hi` (both above zero).
    pub fn log(lo: f64, hi: f64) -> Axis {
        let ticks = [&[1.0, 2.0, 5.0][..], &[1.0, 3.0], &[1.0]]
            .into_iter()
            .map(|mantissas| log_ticks(lo, hi, mantissas))
            .find(|t| t.len() <= MAX_TICKS)
            .unwrap_or_else(|| {
                // Very many decades: every k-th power of ten.
                let all = log_ticks(lo, hi, &[1.0]);
                let k = all.len().div_ceil(MAX_TICKS);
                all.into_iter().step_by(k).collect()
            });
        Axis::Log { lo, hi, ticks }
    }

    /// The ticks' labels.
    pub fn labels(&self) -> Vec<String> {
        match self {
            Axis::Linear { ticks, .. } | Axis::Log { ticks, .. } => {
                ticks.iter().map(|t| number(*t)).collect()
            }
        }
    }
}

/// 1, 2 and 5 times powers of ten, from the first at or above `from`.
fn steps(from: f64) -> impl Iterator<Item = f64> {
    let from = from.max(1e-12);
    let decade = 10f64.powf(from.log10().floor());
    (0..)
        .flat_map(move |k| [1.0, 2.0, 5.0].map(|m| m * decade * 10f64.powi(k)))
        .filter(move |s| *s >= from * (1.0 - 1e-9))
}

/// The physical limit C / L from C = 1 to `max_c`, for an upstream of
/// `latency_s` seconds; none at L = 0 (C / 0 is no limit, and an infinite
/// axis).
fn limit_line(latency_s: f64, max_c: f64) -> Vec<(f64, f64)> {
    if latency_s > 0.0 && latency_s.is_finite() {
        [1.0, max_c].map(|c| (c, c / latency_s)).to_vec()
    } else {
        Vec::new()
    }
}

/// A share as a percentage.
fn percent(share: f64) -> f64 {
    100.0 * share
}

/// `m` times powers of ten (for each mantissa `m`) within `lo..=hi`.
fn log_ticks(lo: f64, hi: f64, mantissas: &[f64]) -> Vec<f64> {
    // An axis over a zero or an infinity gets no ticks (its decades would
    // be counted from i32::MIN or to i32::MAX); finite positive bounds span
    // at most some 630 decades.
    if !(lo > 0.0 && hi.is_finite()) {
        return Vec::new();
    }
    let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    (first..=last)
        .flat_map(|e| mantissas.iter().map(move |m| round(m * 10f64.powi(e))))
        .filter(|t| *t >= lo * (1.0 - 1e-9) && *t <= hi * (1.0 + 1e-9))
        .collect()
}

/// `v` without the floating-point dust of the arithmetic that made it.
fn round(v: f64) -> f64 {
    if v == 0.0 {
        return 0.0;
    }
    let scale = 10f64.powi(12 - v.abs().log10().ceil() as i32);
    (v * scale).round() / scale
}

/// A tick or title number as a person writes it: `50`, `2.5`, `0.02`,
/// `10000`.
pub fn number(v: f64) -> String {
    let v = round(v);
    if v == v.trunc() {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.6}");
        s.trim_end_matches('0').to_string()
    }
}

/// A coordinate with our ticks (plotters' own `with_key_points` loses the
/// value formatting of a linear f64 axis); only the ticks are gridded.
struct Ticked<R> {
    inner: R,
    ticks: Vec<f64>,
}

impl<R> Ticked<R> {
    fn new(inner: R, ticks: Vec<f64>) -> Self {
        Ticked { inner, ticks }
    }
}

impl<R: Ranged<ValueType = f64>> Ranged for Ticked<R> {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

/// One panel: its title, its y axis's unit, the lines, the physical limit
/// (if drawn) and the y axis.
struct Panel<'a> {
    caption: &'a str,
    unit: &'a str,
    lines: &'a Lines,
    limit: Option<&'a [(f64, f64)]>,
    y: Axis,
}

fn panel<Y>(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    p: &Panel,
    x: &Axis,
    y: Y,
) -> Fallible
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let Axis::Log { lo, hi, ticks } = x.clone() else {
        return Err("the concurrency axis is logarithmic".into());
    };
    let mut chart = ChartBuilder::on(area)
        .caption(p.caption, (FONT, 17))
        .margin(12)
        .margin_right(24)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(
            Ticked::<LogCoord<f64>>::new((lo..hi).log_scale().into(), ticks),
            y,
        )?;
    chart
        .configure_mesh()
        .x_desc("concurrency C (log scale)")
        .y_desc(p.unit)
        .x_label_formatter(&|v| number(*v))
        .y_label_formatter(&|v| number(*v))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 15))
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
        .draw()?;
    if let Some(limit) = p.limit {
        chart.draw_series(DashedLineSeries::new(
            limit.iter().copied(),
            6,
            4,
            LIMIT.stroke_width(2),
        ))?;
    }
    for (engine, points) in p.lines.iter().filter(|(_, p)| !p.is_empty()) {
        let c = colour(*engine);
        if points.len() >= 2 {
            chart.draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))?;
        }
        // The dots are the measurements: the sequential engine's flat line
        // has one, at C = 1.
        let measured = (points.iter()).take(if *engine == Engine::Sequential {
            1
        } else {
            points.len()
        });
        chart.draw_series(measured.map(|p| Circle::new(*p, 4, c.filled())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_c_over_l_and_there_is_none_at_zero_latency() {
        assert_eq!(limit_line(0.05, 20.0), [(1.0, 20.0), (20.0, 400.0)]);
        assert!(limit_line(0.0, 20.0).is_empty());
        assert!(limit_line(f64::INFINITY, 20.0).is_empty());
        assert_eq!(percent(0.5), 50.0);
    }

    #[test]
    fn log_ticks_refuse_a_zero_or_an_infinite_end() {
        assert!(log_ticks(0.0, 10.0, &[1.0]).is_empty());
        assert!(log_ticks(1.0, f64::INFINITY, &[1.0]).is_empty());
        assert_eq!(log_ticks(1.0, 100.0, &[1.0]), [1.0, 10.0, 100.0]);
        // Six hundred decades, each a tick (a few lost to rounding at the
        // extremes).
        assert!(log_ticks(1e-300, 1e300, &[1.0]).len() > 590);
    }

    #[test]
    fn values_within_a_decade_get_a_linear_axis_with_round_ticks() {
        let axis = Axis::fit((51.96, 101.6));
        assert!(matches!(axis, Axis::Linear { .. }), "{axis:?}");
        assert_eq!(
            axis.labels(),
            ["40", "50", "60", "70", "80", "90", "100", "110"]
        );
        // Values near 53 ms can be read off the axis.
        let axis = Axis::fit((52.0, 54.5));
        assert_eq!(
            axis.labels(),
            ["51.5", "52", "52.5", "53", "53.5", "54", "54.5", "55"]
        );
    }

    #[test]
    fn values_over_decades_get_a_log_axis_at_1_2_5_steps() {
        let axis = Axis::fit((5.03, 278.3));
        assert!(matches!(axis, Axis::Log { .. }), "{axis:?}");
        assert_eq!(axis.labels(), ["5", "10", "20", "50", "100", "200"]);
        // Too many for 1-2-5 steps: 1-3, then powers of ten.
        assert_eq!(
            Axis::log(10.0, 2e5).labels(),
            [
                "10", "30", "100", "300", "1000", "3000", "10000", "30000", "100000"
            ]
        );
        assert_eq!(Axis::log(1e-3, 1e9).labels().len(), 7);
    }

    #[test]
    fn every_axis_has_at_most_ten_ticks_all_inside_it() {
        for (lo, hi) in [
            (0.0, 110.0),
            (1.0, 1.0),
            (0.001, 0.003),
            (3.0, 3e7),
            (19.4, 10000.0),
        ] {
            let axis = Axis::fit((lo, hi));
            let (Axis::Linear {
                lo: a,
                hi: b,
                ticks,
            }
            | Axis::Log {
                lo: a,
                hi: b,
                ticks,
            }) = &axis;
            assert!((2..=MAX_TICKS).contains(&ticks.len()), "{axis:?}");
            assert!(ticks.iter().all(|t| *a <= *t && *t <= *b), "{axis:?}");
            assert!(*a <= lo && hi <= *b, "{axis:?}");
        }
    }

    #[test]
    fn numbers_read_as_a_person_writes_them() {
        assert_eq!(number(0.1 + 0.2), "0.3");
        assert_eq!(number(10000.0), "10000");
        assert_eq!(number(52.5), "52.5");
        assert_eq!(number(1.0), "1");
    }
}
