//! A run's timeline as an SVG a person can open: one lane per thing that
//! changes over time (faults, breaker state, requests, answers), virtual
//! time across, ticked at round times (1, 2 or 5 times a power of ten).
//! Lanes whose colours mean states (the breaker's closed / open /
//! half-open) get a legend under the time axis ([`Lane::key`]). For
//! `replay --plot`, [`replay_svg`] titles it with the plan in a sentence,
//! cut to fit, and gives the whole plan (as `--plan` reads it) in the
//! footer.

use std::fmt::Write;
use std::time::Duration;

use crate::trace::Violation;

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

/// One horizontal lane: spans (from, to, colour, label), points (at,
/// colour) and the key to its colours.
#[derive(Debug, Clone, Default)]
pub struct Lane {
    /// The lane's name, drawn on the left.
    pub name: String,
    /// Coloured intervals; a span's label is drawn inside it where it fits.
    pub spans: Vec<(Duration, Duration, &'static str, String)>,
    /// Ticks.
    pub points: Vec<(Duration, &'static str)>,
    /// What each colour means (colour, meaning), drawn in the legend under
    /// the time axis. Empty: a lane whose spans have two or more colours
    /// gets one from its spans' labels.
    pub key: Vec<(&'static str, String)>,
}

impl Lane {
    /// An empty lane called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Lane {
            name: name.into(),
            ..Lane::default()
        }
    }

    /// The lane, with `meaning` for `colour` in the legend.
    pub fn key(mut self, colour: &'static str, meaning: impl Into<String>) -> Self {
        self.key.push((colour, meaning.into()));
        self
    }

    /// The legend's entries: the given key, else the distinct (colour,
    /// label) pairs of spans in two or more colours (at most 6).
    fn legend(&self) -> Vec<(&'static str, String)> {
        if !self.key.is_empty() {
            return self.key.clone();
        }
        let mut seen: Vec<(&'static str, String)> = Vec::new();
        for (_, _, colour, label) in &self.spans {
            if !seen.iter().any(|(c, l)| c == colour && l == label) {
                seen.push((colour, label.clone()));
            }
        }
        let colours = (seen.iter().map(|(c, _)| *c))
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        if colours >= 2 && seen.len() <= 6 {
            seen
        } else {
            Vec::new()
        }
    }
}

/// The lanes of one run.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Top to bottom.
    pub lanes: Vec<Lane>,
}

/// The width of the time axis, in pixels.
const WIDTH: f64 = 1000.0;
const ROW: f64 = 34.0;
const TOP: f64 = 44.0;
const TITLE_SIZE: f64 = 16.0;
const TEXT_SIZE: f64 = 12.0;
const MONO_SIZE: f64 = 11.0;

/// About how wide `text` is in sans-serif at `size` px (no font metrics
/// here: the average glyph is a little over half the size).
fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.58
}

impl Timeline {
    /// The SVG, titled `title`, with time running to the last event.
    pub fn svg(&self, title: &str) -> String {
        self.svg_with_footer(title, "")
    }

    /// The SVG, titled `title` (cut to fit, in full in the document's
    /// `<title>`), with `footer` (say, the run's whole fault plan) wrapped
    /// in small monospace lines under the legend.
    pub fn svg_with_footer(&self, title: &str, footer: &str) -> String {
        self.svg_marked(title, footer, &[])
    }

    /// As [`Timeline::svg_with_footer`], with each of `violations` marked:
    /// one that names its instant as a dashed red line through every lane,
    /// its invariant's name above the lanes (where it does not overlap the
    /// one before), and every one, with its instant and detail, in a
    /// "violations" list under the legend.
    pub fn svg_marked(&self, title: &str, footer: &str, violations: &[Violation]) -> String {
        // Time runs past the last thing that happens: a tick, a violation,
        // a span's start (plus a margin), and every span's end unless that
        // is far beyond the rest (a fault "for ever" is cut at the edge).
        let instants = (self.lanes.iter())
            .flat_map(|l| (l.points.iter().map(|p| p.0)).chain(l.spans.iter().map(|s| s.0)))
            .chain(violations.iter().filter_map(|v| v.at))
            .max();
        let ends = self.lanes.iter().flat_map(|l| l.spans.iter().map(|s| s.1));
        let end = match instants {
            Some(t) => {
                let far = t.saturating_mul(10).max(Duration::from_secs(1));
                let last_end = ends.filter(|e| *e <= far).max().unwrap_or_default();
                t.mul_f64(1.05).max(last_end)
            }
            None => ends.max().unwrap_or(Duration::from_secs(1)),
        }
        .max(Duration::from_millis(1));
        // The names column is as wide as the longest name.
        let left = (self.lanes.iter())
            .map(|l| text_width(&l.name, TEXT_SIZE))
            .fold(120.0, f64::max)
            .ceil()
            + 24.0;
        let total_width = left + WIDTH + 30.0;
        let x = |t: Duration| left + WIDTH * t.min(end).as_secs_f64() / end.as_secs_f64();
        let lanes_bottom = TOP + ROW * self.lanes.len() as f64;
        let axis = lanes_bottom + 16.0;

        let mut body = String::new();
        let title_fits = fit(title, ((total_width - 20.0) / (TITLE_SIZE * 0.53)) as usize);
        let _ = write!(
            body,
            r#"<text x="10" y="24" font-size="{TITLE_SIZE}">{}</text>"#,
            escape(&title_fits)
        );
        // The time axis: ticks at round values, a faint line up through
        // the lanes at each.
        let (step, unit) = time_step(end);
        let ticks = (0..)
            .map(|k| step * k)
            .take_while(|t| *t <= end.as_millis() as u64);
        for t in ticks {
            let at = x(Duration::from_millis(t));
            let _ = write!(
                body,
                r##"<line x1="{at:.1}" x2="{at:.1}" y1="{TOP}" y2="{}" stroke="#eee"/><text x="{at:.1}" y="{axis}" text-anchor="middle" fill="#444">{}</text>"##,
                lanes_bottom + 2.0,
                time_label(t, unit)
            );
        }
        for (i, lane) in self.lanes.iter().enumerate() {
            let y = TOP + ROW * i as f64;
            let _ = write!(
                body,
                r#"<text x="10" y="{}">{}</text>"#,
                y + 20.0,
                escape(&lane.name)
            );
            let _ = write!(
                body,
                r##"<line x1="{left}" x2="{}" y1="{}" y2="{}" stroke="#ddd"/>"##,
                left + WIDTH,
                y + ROW - 2.0,
                y + ROW - 2.0
            );
            // A span is at least 3 px wide, and the narrow ones are drawn
            // last, over their neighbours: a half-open breaker lasts one
            // probe, a few ms of a run of seconds, and must still show.
            let narrow =
                |(from, to, ..): &&(Duration, Duration, &str, String)| x(*to) - x(*from) < 3.0;
            let wide_first =
                (lane.spans.iter().filter(|s| !narrow(s))).chain(lane.spans.iter().filter(narrow));
            for (from, to, colour, label) in wide_first {
                let (a, b) = (x(*from), x(*to).max(x(*from) + 3.0));
                let _ = write!(
                    body,
                    r#"<rect x="{a:.1}" y="{}" width="{:.1}" height="{}" fill="{colour}" opacity="0.75"><title>{} ({:?} to {:?})</title></rect>"#,
                    y + 6.0,
                    b - a,
                    ROW - 14.0,
                    escape(label),
                    from,
                    to
                );
                // The label inside the span where it fits, else just after
                // it where no later span starts in its way.
                let room = text_width(label, 11.0) + 8.0;
                let clear_after = |from: f64| {
                    !lane.spans.iter().any(|(s, e, _, _)| {
                        let (s, e) = (x(*s), x(*e));
                        e > from && s < from + room
                    }) && from + room <= left + WIDTH
                };
                // Else just before it, where no span ends in its way;
                // else cut to what fits inside (with "…"); a span too
                // narrow for even that keeps its label in its tooltip.
                let clear_before = |to: f64| {
                    let from = to - room;
                    from >= left
                        && !lane.spans.iter().any(|(s, e, _, _)| {
                            let (s, e) = (x(*s), x(*e));
                            e > from && s < to
                        })
                };
                let inside = ((b - a - 8.0) / (11.0 * 0.58)).floor() as usize;
                let (at, text) = if room <= b - a {
                    (Some(a + 4.0), label.clone())
                } else if clear_after(b + 0.5) {
                    (Some(b + 4.0), label.clone())
                } else if clear_before(a - 0.5) {
                    (Some(a - room + 4.0), label.clone())
                } else if inside >= 4 {
                    (Some(a + 4.0), fit(label, inside))
                } else {
                    (None, String::new())
                };
                if let Some(at) = at {
                    let _ = write!(
                        body,
                        r##"<text x="{at:.1}" y="{}" font-size="11" fill="#111">{}</text>"##,
                        y + 20.0,
                        escape(&text)
                    );
                }
            }
            for (at, colour) in &lane.points {
                let _ = write!(
                    body,
                    r#"<line x1="{0:.1}" x2="{0:.1}" y1="{1}" y2="{2}" stroke="{colour}"/>"#,
                    x(*at),
                    y + 6.0,
                    y + ROW - 8.0
                );
            }
        }
        // Violations with an instant: a dashed red line through the lanes,
        // the invariant's name just above them where there is room.
        let mut label_end = f64::MIN;
        let mut marked: Vec<&Violation> = violations.iter().filter(|v| v.at.is_some()).collect();
        marked.sort_by_key(|v| v.at);
        for v in marked {
            let at = x(v.at.unwrap_or_default());
            let _ = write!(
                body,
                r#"<line x1="{at:.1}" x2="{at:.1}" y1="{}" y2="{}" stroke="{RED}" stroke-width="1.5" stroke-dasharray="4 3"><title>{}</title></line>"#,
                TOP - 2.0,
                lanes_bottom,
                escape(&v.to_string())
            );
            let label = format!("✗ {}", v.invariant);
            let width = text_width(&label, 11.0);
            let from = (at - width / 2.0).max(left).min(left + WIDTH - width);
            if from > label_end + 6.0 {
                let _ = write!(
                    body,
                    r#"<text x="{from:.1}" y="{}" font-size="11" fill="{RED}">{}</text>"#,
                    TOP - 5.0,
                    escape(&label)
                );
                label_end = from + width;
            }
        }
        // The legend: one line per lane with a key, under the axis.
        let mut y = axis + 14.0;
        for lane in &self.lanes {
            let legend = lane.legend();
            if legend.is_empty() {
                continue;
            }
            y += 20.0;
            let _ = write!(
                body,
                r#"<text x="10" y="{y}">{}:</text>"#,
                escape(&lane.name)
            );
            let mut at = 10.0 + text_width(&lane.name, TEXT_SIZE) + 16.0;
            for (colour, meaning) in legend {
                if lane.spans.is_empty() {
                    let _ = write!(
                        body,
                        r#"<line x1="{0:.1}" x2="{0:.1}" y1="{1}" y2="{2}" stroke="{colour}" stroke-width="3"/>"#,
                        at + 6.0,
                        y - 11.0,
                        y + 2.0
                    );
                } else {
                    let _ = write!(
                        body,
                        r#"<rect x="{at:.1}" y="{}" width="14" height="12" fill="{colour}" opacity="0.75"/>"#,
                        y - 10.0
                    );
                }
                let _ = write!(
                    body,
                    r#"<text x="{:.1}" y="{y}">{}</text>"#,
                    at + 20.0,
                    escape(&meaning)
                );
                at += 20.0 + text_width(&meaning, TEXT_SIZE) + 18.0;
            }
        }
        // Every violation, in words, under the legend.
        let per_line = ((total_width - 20.0) / (MONO_SIZE * 0.61)) as usize;
        if !violations.is_empty() {
            y += 24.0;
            let _ = write!(
                body,
                r#"<text x="10" y="{y}" fill="{RED}">violations ({}):</text>"#,
                violations.len()
            );
            for v in violations {
                let line = match v.at {
                    Some(at) => format!("✗ at {at:?}: {}: {}", v.invariant, v.detail),
                    None => format!("✗ {}: {}", v.invariant, v.detail),
                };
                for part in wrap(&line.replace('\n', " "), per_line.max(20)) {
                    y += MONO_SIZE + 4.0;
                    let _ = write!(
                        body,
                        r##"<text x="16" y="{y}" font-family="monospace" font-size="{MONO_SIZE}" fill="#a11">{}</text>"##,
                        escape(&part)
                    );
                }
            }
        }
        // The footer, wrapped.
        if !footer.is_empty() {
            y += 8.0;
        }
        for line in wrap(footer, per_line.max(20)) {
            y += MONO_SIZE + 4.0;
            let _ = write!(
                body,
                r##"<text x="10" y="{y}" font-family="monospace" font-size="{MONO_SIZE}" fill="#444">{}</text>"##,
                escape(&line)
            );
        }
        let height = y + 16.0;
        let mut out = String::new();
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{total_width}" height="{height}" font-family="sans-serif" font-size="{TEXT_SIZE}"><title>{}</title>"#,
            escape(title)
        );
        if !footer.is_empty() {
            let _ = write!(out, "<desc>{}</desc>", escape(footer));
        }
        let _ = write!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
        out.push_str(&body);
        out.push_str("</svg>\n");
        out
    }
}

/// `text` cut to at most `max` characters: at the last ", " that leaves
/// room for " …" if there is one, else mid-word.
fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max.saturating_sub(2)).collect();
    let cut = match cut.rfind(", ") {
        Some(i) if i > max / 2 => &cut[..i + 1],
        _ => &cut[..],
    };
    format!("{} …", cut.trim_end())
}

/// `text` in lines of at most `width` characters, broken after a comma or
/// a space where one is near the end of a line.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut rest: Vec<char> = text.chars().collect();
    while !rest.is_empty() {
        if rest.len() <= width {
            lines.push(rest.iter().collect());
            break;
        }
        let at = (width / 2..width)
            .rev()
            .find(|i| matches!(rest[*i], ',' | ' '))
            .map_or(width, |i| i + 1);
        lines.push(rest[..at].iter().collect());
        rest.drain(..at);
    }
    lines
}

/// The time axis's step, in ms (1, 2 or 5 times a power of ten, ten steps
/// or fewer over `end`), and whether to label in seconds.
fn time_step(end: Duration) -> (u64, bool) {
    let end = end.as_millis().max(1) as u64;
    let step = (0..)
        .flat_map(|e| [1, 2, 5].map(|m| m * 10u64.pow(e)))
        .find(|s| end / s <= 10)
        .unwrap_or(end);
    (step, step >= 1000)
}

fn time_label(ms: u64, seconds: bool) -> String {
    match (ms, seconds) {
        (0, _) => "0".to_string(),
        (ms, true) if ms % 1000 == 0 => format!("{} s", ms / 1000),
        (ms, true) => format!("{} s", ms as f64 / 1000.0),
        (ms, false) => format!("{ms} ms"),
    }
}

/// What `replay --plot` draws: `timeline` under a short title (scenario,
/// seed, sabotage, the plan in a sentence, cut to fit), the run's
/// `violations` marked ([`Timeline::svg_marked`]), and the whole plan, as
/// `--plan` reads it, in the footer.
pub fn replay_svg(
    scenario: &str,
    seed: u64,
    plan: &crate::FaultPlan,
    timeline: &Timeline,
    violations: &[Violation],
) -> String {
    let under = plan
        .sabotage
        .as_ref()
        .map_or(String::new(), |b| format!(" under --sabotage {b}"));
    let title = format!("{scenario} seed {seed}{under}: {}", plan_summary(plan));
    let json = serde_json::to_string(plan).unwrap_or_else(|e| format!("(unprintable: {e})"));
    timeline.svg_marked(&title, &format!("plan (for --plan): {json}"), violations)
}

/// A one-line summary of `plan` for a title: how many faults, then each
/// in order of start, as `partition a<->b 200–900 ms`.
pub fn plan_summary(plan: &crate::FaultPlan) -> String {
    let mut faults: Vec<&crate::Fault> = plan.faults.iter().collect();
    faults.sort_by_key(|f| (f.at_ms, f.for_ms));
    let each: Vec<String> = faults
        .iter()
        .map(|f| format!("{} {} {}", f.kind.name(), f.target, span_label(f)))
        .collect();
    match each.len() {
        0 => "no faults".to_string(),
        1 => format!("1 fault: {}", each[0]),
        n => format!("{n} faults: {}", each.join(", ")),
    }
}

/// A fault's time (and parameter): `200–900 ms`, `5% 200–900 ms`.
fn span_label(f: &crate::Fault) -> String {
    use crate::FaultKind::*;
    let when = match f.for_ms {
        u64::MAX => format!("from {} ms", f.at_ms),
        _ => format!("{}–{} ms", f.at_ms, f.at_ms.saturating_add(f.for_ms)),
    };
    match f.kind {
        Loss => format!(
            "{}% {when}",
            f.percent.unwrap_or(crate::fault::DEFAULT_LOSS_PERCENT)
        ),
        Latency => format!(
            "{} ms one-way {when}",
            f.latency_ms.unwrap_or(crate::fault::DEFAULT_LATENCY_MS)
        ),
        _ => when,
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
        lane.spans.push((f.start(), f.end(), colour, span_label(f)));
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

    #[test]
    fn a_plan_reads_as_a_sentence_in_order_of_start() {
        use crate::{Fault, FaultKind, FaultPlan};
        let mut loss = Fault::new(FaultKind::Loss, "a<->b", 50, 10);
        loss.percent = Some(20);
        let plan = FaultPlan {
            faults: vec![
                Fault::new(FaultKind::Partition, "a<->b", 200, 700),
                Fault::new(FaultKind::Crash, "b", 100, u64::MAX),
                loss,
            ],
            sabotage: None,
            sites: Vec::new(),
            disk: None,
        };
        assert_eq!(
            plan_summary(&plan),
            "3 faults: loss a<->b 20% 50–60 ms, crash b from 100 ms, partition a<->b 200–900 ms"
        );
        assert_eq!(plan_summary(&FaultPlan::default()), "no faults");
    }

    #[test]
    fn long_text_is_cut_at_a_comma_and_wrapped_at_a_break() {
        assert_eq!(fit("short", 10), "short");
        assert_eq!(
            fit("alpha 1, beta 2, gamma 3, delta 4", 24),
            "alpha 1, beta 2, …"
        );
        assert_eq!(fit("abcdefghijklmnop", 8), "abcdef …");
        let lines = wrap(r#"{"a":1,"b":2,"c":3}"#, 8);
        assert_eq!(lines, [r#"{"a":1,"#, r#""b":2,"#, r#""c":3}"#]);
        assert!(wrap("", 8).is_empty());
    }

    #[test]
    fn a_lane_in_several_colours_gets_a_legend_from_its_spans() {
        let mut lane = Lane::new("door");
        let s = Duration::from_secs;
        lane.spans = vec![
            (s(0), s(1), GREEN, "shut".into()),
            (s(1), s(2), RED, "open".into()),
            (s(2), s(3), GREEN, "shut".into()),
        ];
        assert_eq!(
            lane.legend(),
            [(GREEN, "shut".to_string()), (RED, "open".to_string())]
        );
        let one_colour = Lane::new("fault").key(RED, "partition");
        assert_eq!(one_colour.legend(), [(RED, "partition".to_string())]);
        let mut unkeyed = Lane::new("phase");
        unkeyed.spans = vec![(s(0), s(1), GREEN, "phase: 1s".into())];
        assert!(unkeyed.legend().is_empty());
    }
}
