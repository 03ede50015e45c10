//! A run's timeline as an SVG a person can open: one lane per thing that
//! changes over time (faults, breaker state, requests, answers), virtual
//! time across.

use std::fmt::Write;
use std::time::Duration;

/// Colours used by the scenarios.
pub const GREEN: &str = "#2e9e44";
/// Failures, open breakers, partitions.
pub const RED: &str = "#d33";
/// Half-open, holds.
pub const AMBER: &str = "#e8a317";
/// Neutral events.
pub const BLUE: &str = "#2f6fd6";
/// Crashes.
pub const GREY: &str = "#777";

/// One horizontal lane: spans (from, to, colour, label) and points (at,
/// colour).
#[derive(Debug, Clone, Default)]
pub struct Lane {
    /// The lane's name, drawn on the left.
    pub name: String,
    /// Coloured intervals.
    pub spans: Vec<(Duration, Duration, &'static str, String)>,
    /// Ticks.
    pub points: Vec<(Duration, &'static str)>,
}

impl Lane {
    /// An empty lane called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Lane {
            name: name.into(),
            ..Lane::default()
        }
    }
}

/// The lanes of one run.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Top to bottom.
    pub lanes: Vec<Lane>,
}

const LEFT: f64 = 150.0;
const WIDTH: f64 = 1000.0;
const ROW: f64 = 34.0;
const TOP: f64 = 40.0;

impl Timeline {
    /// The SVG, titled `title`, with time running to the last event.
    pub fn svg(&self, title: &str) -> String {
        // Time runs to the last tick (plus a margin), or to the last span's
        // end if there are no ticks; longer spans are cut there.
        let last_point = self
            .lanes
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .max();
        let last_span = self
            .lanes
            .iter()
            .flat_map(|l| l.spans.iter().map(|s| s.1))
            .max();
        let end = last_point
            .map(|t| t.mul_f64(1.05))
            .or(last_span)
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_millis(1));
        let x = |t: Duration| LEFT + WIDTH * t.min(end).as_secs_f64() / end.as_secs_f64();
        let height = TOP + ROW * self.lanes.len() as f64 + 40.0;
        let mut out = String::new();
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" font-family="sans-serif" font-size="12">"#,
            w = LEFT + WIDTH + 30.0
        );
        let _ = write!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = write!(
            out,
            r#"<text x="10" y="22" font-size="15">{}</text>"#,
            escape(title)
        );
        for (i, lane) in self.lanes.iter().enumerate() {
            let y = TOP + ROW * i as f64;
            let _ = write!(
                out,
                r#"<text x="10" y="{}">{}</text>"#,
                y + 20.0,
                escape(&lane.name)
            );
            let _ = write!(
                out,
                r##"<line x1="{LEFT}" x2="{}" y1="{}" y2="{}" stroke="#ddd"/>"##,
                LEFT + WIDTH,
                y + ROW - 2.0,
                y + ROW - 2.0
            );
            for (from, to, colour, label) in &lane.spans {
                let (a, b) = (x(*from), x(*to).max(x(*from) + 1.0));
                let _ = write!(
                    out,
                    r#"<rect x="{a:.1}" y="{}" width="{:.1}" height="{}" fill="{colour}" opacity="0.75"><title>{} ({:?} to {:?})</title></rect>"#,
                    y + 6.0,
                    b - a,
                    ROW - 14.0,
                    escape(label),
                    from,
                    to
                );
            }
            for (at, colour) in &lane.points {
                let _ = write!(
                    out,
                    r#"<line x1="{0:.1}" x2="{0:.1}" y1="{1}" y2="{2}" stroke="{colour}"/>"#,
                    x(*at),
                    y + 6.0,
                    y + ROW - 8.0
                );
            }
        }
        // The time axis, in ten steps.
        let axis = TOP + ROW * self.lanes.len() as f64 + 14.0;
        for k in 0..=10 {
            let t = end.mul_f64(f64::from(k) / 10.0);
            let _ = write!(
                out,
                r##"<text x="{:.1}" y="{axis}" text-anchor="middle" fill="#555">{:.0} ms</text>"##,
                x(t),
                t.as_secs_f64() * 1e3
            );
        }
        out.push_str("</svg>\n");
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The fault lanes of a plan: one per kind and target present, in the
/// order they first appear.
pub fn fault_lanes(plan: &crate::FaultPlan) -> Vec<Lane> {
    use crate::FaultKind::*;
    let mut lanes: Vec<Lane> = Vec::new();
    for f in &plan.faults {
        let (colour, what) = match f.kind {
            Partition => (RED, "partition"),
            PartitionOneway => (RED, "one-way partition"),
            Hold => (AMBER, "latency spike (hold)"),
            Latency => (AMBER, "slow link"),
            Crash => (GREY, "crash"),
            Loss => (BLUE, "message loss"),
        };
        let name = format!("{what} {}", f.target);
        let lane = match lanes.iter_mut().position(|l| l.name == name) {
            Some(i) => &mut lanes[i],
            None => {
                lanes.push(Lane::new(name));
                lanes.last_mut().expect("just pushed")
            }
        };
        lane.spans
            .push((f.start(), f.end(), colour, what.to_string()));
    }
    lanes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_every_lane_span_and_tick_and_escapes_text() {
        let mut lane = Lane::new("breaker <open>");
        lane.spans.push((
            Duration::ZERO,
            Duration::from_millis(50),
            RED,
            "open".into(),
        ));
        lane.points.push((Duration::from_millis(100), BLUE));
        let svg = Timeline { lanes: vec![lane] }.svg("a & b");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("breaker &lt;open&gt;") && svg.contains("a &amp; b"));
        assert_eq!(svg.matches("<rect").count(), 2, "background and one span");
        assert_eq!(svg.matches(&format!(r#"stroke="{BLUE}""#)).count(), 1);
    }
}
