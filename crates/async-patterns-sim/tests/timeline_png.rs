//! The `replay --plot` timeline as a person sees it: rendered to pixels
//! (resvg) and checked for what a reader needs: not blank, each breaker
//! state in its colour with a legend for them, a title that fits the
//! picture, the whole plan in the footer, time ticks at round values.

#[path = "support/png.rs"]
mod png;

use std::time::Duration;

use async_patterns_sim::plot::{self, AMBER, BLUE, GREEN, Lane, RED, Timeline};
use async_patterns_sim::{Fault, FaultKind, FaultPlan};
use png::{count, ink, on_white, render, rightmost_dark, texts, y_of};

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Three faults, a breaker that opens, probes half-open and closes, and
/// requests ending until 18.88 s (the old axis put ticks at 1888 ms steps).
fn run() -> (FaultPlan, Timeline) {
    let plan = FaultPlan {
        faults: vec![
            Fault::new(FaultKind::Partition, "client<->server", 2000, 5000),
            Fault::new(FaultKind::Hold, "client<->server", 1200, 800),
            Fault::new(FaultKind::Crash, "server", 9000, 2500),
        ],
        sabotage: None,
        sites: Vec::new(),
        disk: None,
    };
    let mut lanes = plot::fault_lanes(&plan);
    let mut breaker = Lane::new("breaker")
        .key(GREEN, "closed")
        .key(RED, "open")
        .key(AMBER, "half-open");
    breaker.spans = vec![
        (ms(0), ms(2500), GREEN, "closed".into()),
        (ms(2500), ms(6000), RED, "open".into()),
        (ms(6000), ms(7500), AMBER, "half-open".into()),
        (ms(7500), ms(18_000), GREEN, "closed".into()),
    ];
    let mut ends = Lane::new("requests ended")
        .key(GREEN, "ok")
        .key(RED, "failed");
    ends.points = (0..=40)
        .map(|k| (ms(k * 449 + 20), if k % 7 == 3 { RED } else { GREEN }))
        .collect();
    lanes.push(breaker);
    lanes.push(ends);
    (plan, Timeline { lanes })
}

#[test]
fn each_breaker_state_is_drawn_in_its_colour_with_a_legend_below_the_lanes() {
    let (plan, timeline) = run();
    let svg = plot::replay_svg("resilient-client", 4, &plan, &timeline, &[]);
    let (png, has_fonts) = render(&svg, "timeline-states");
    let total = (png.width() * png.height()) as usize;
    assert!(ink(&png) > total / 40, "the timeline is (nearly) blank");
    // The legend's line starts under the time axis, below every lane.
    let axis = y_of(&svg, "0");
    let legend = y_of(&svg, "breaker:");
    assert!(
        legend > axis,
        "the legend ({legend}) is above the axis ({axis})"
    );
    let lanes = 0..axis as u32 - 14;
    let key = legend as u32 - 14..legend as u32 + 4;
    for (state, colour) in [("closed", GREEN), ("open", RED), ("half-open", AMBER)] {
        let rgb = on_white(colour, 0.75);
        let (drawn, keyed) = (
            count(&png, rgb, 6, lanes.clone()),
            count(&png, rgb, 6, key.clone()),
        );
        assert!(drawn > 300, "{state}: {drawn} px of {colour} in the lanes");
        assert!(
            keyed >= 100,
            "{state}: {keyed} px of {colour} in the legend"
        );
        let named = texts(&svg)
            .iter()
            .any(|(_, y, t)| t == state && (*y - legend).abs() < 1.0);
        assert!(named, "the legend names {state}");
    }
    if has_fonts {
        let dark = count(&png, (0, 0, 0), 90, key);
        assert!(
            dark > 150,
            "the legend's words are missing ({dark} dark px)"
        );
    }
}

#[test]
fn the_title_is_a_short_summary_that_fits_and_the_footer_holds_the_whole_plan() {
    let (mut plan, timeline) = run();
    // Many faults: the summary must be cut, at a fault, with an ellipsis.
    for k in 0..8 {
        plan.faults.push(Fault::new(
            FaultKind::Loss,
            "client<->server",
            12_000 + k * 500,
            300,
        ));
    }
    let svg = plot::replay_svg("resilient-client", 4, &plan, &timeline, &[]);
    let texts = texts(&svg);
    let title = &texts[0].2;
    assert!(
        title.starts_with("resilient-client seed 4: 11 faults: hold client&lt;-&gt;server 1200–2000 ms, partition client&lt;-&gt;server 2000–7000 ms, crash server 9000–11500 ms"),
        "{title}"
    );
    assert!(title.ends_with(", …") && !title.contains('{'), "{title}");
    let json = serde_json::to_string(&plan).unwrap();
    let footer: String = (texts.iter())
        .skip_while(|(_, _, t)| !t.starts_with("plan (for --plan)"))
        .map(|(_, _, t)| {
            t.replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
        })
        .collect();
    assert_eq!(footer, format!("plan (for --plan): {json}"));
    let (png, has_fonts) = render(&svg, "timeline-many-faults");
    if has_fonts {
        // No line of text runs off the right edge: the title, the footer.
        let title_right = rightmost_dark(&png, 0..32).expect("a title");
        let footer_top = y_of(
            &svg,
            &texts.iter().find(|t| t.2.starts_with("plan (")).unwrap().2,
        );
        let footer_right =
            rightmost_dark(&png, footer_top as u32 - 12..png.height()).expect("a footer");
        for (what, right) in [("title", title_right), ("footer", footer_right)] {
            assert!(
                right + 8 < png.width(),
                "the {what} reaches column {right} of {}",
                png.width()
            );
        }
    }
}

#[test]
fn time_ticks_fall_on_round_values() {
    for (last, want) in [
        (ms(17_980), "0 2 s 4 s 6 s 8 s 10 s 12 s 14 s 16 s 18 s"),
        (ms(2_150), "0 500 ms 1000 ms 1500 ms 2000 ms"),
        (
            ms(95),
            "0 10 ms 20 ms 30 ms 40 ms 50 ms 60 ms 70 ms 80 ms 90 ms",
        ),
    ] {
        let mut lane = Lane::new("ticks");
        lane.points = vec![(ms(0), BLUE), (last, BLUE)];
        let svg = Timeline { lanes: vec![lane] }.svg("ticks");
        let axis = y_of(&svg, "0");
        let ticks: Vec<String> = (texts(&svg).into_iter())
            .filter(|(_, y, _)| *y == axis)
            .map(|(_, _, t)| t)
            .collect();
        assert_eq!(ticks.join(" "), want, "time running to {last:?}");
    }
}

/// A violation with an instant is a dashed red line through the lanes,
/// named above them; every violation is listed, with its detail, under
/// the legend.
#[test]
fn violations_are_marked_at_their_instant_and_listed() {
    use async_patterns_sim::Violation;
    let (plan, timeline) = run();
    let violations = [
        Violation::new("exactly-once", "order 7 stored twice").at(ms(4_000)),
        Violation::new("closed at the end", "the breaker is open"),
    ];
    let svg = plot::replay_svg("resilient-client", 4, &plan, &timeline, &violations);
    let texts = texts(&svg);
    let label = texts
        .iter()
        .find(|(_, _, t)| t == "✗ exactly-once")
        .expect("the invariant named at its mark");
    assert!(label.1 < y_of(&svg, "breaker"), "named above the lanes");
    assert!(texts.iter().any(|(_, _, t)| t == "violations (2):"));
    assert!(
        texts
            .iter()
            .any(|(_, _, t)| t == "✗ at 4s: exactly-once: order 7 stored twice")
    );
    assert!(
        texts
            .iter()
            .any(|(_, _, t)| t == "✗ closed at the end: the breaker is open")
    );
    // The mark: red through the lanes, in a thin column at 4 s. The crash
    // lane is white at 4 s, so its red there is the mark's.
    let (png, _) = render(&svg, "timeline-violations");
    let crash = y_of(&svg, "crash server") as u32;
    let reddish = |x: u32, y: u32| {
        let p = png.pixel(x, y).unwrap();
        let (r, g, b) = (
            u16::from(p.red()),
            u16::from(p.green()),
            u16::from(p.blue()),
        );
        r > 200 && r > g + 50 && r > b + 50
    };
    let red_columns: Vec<u32> = (0..png.width())
        .filter(|x| (crash - 14..crash + 4).filter(|y| reddish(*x, *y)).count() >= 6)
        .collect();
    let four = texts.iter().find(|t| t.2 == "4 s").expect("a 4 s tick").0;
    assert!(
        !red_columns.is_empty()
            && red_columns.len() <= 3
            && red_columns
                .iter()
                .all(|x| (f64::from(*x) - four).abs() < 3.0),
        "one thin red mark at 4 s (x {four}), not {red_columns:?}"
    );
}

/// A label too long for its span, hemmed in after it by the next span, is
/// drawn before it, or cut to fit inside: it never just vanishes.
#[test]
fn span_labels_that_do_not_fit_move_or_shrink_instead_of_vanishing() {
    let mut lane = Lane::new("phases");
    lane.spans = vec![
        (ms(0), ms(4_000), GREEN, "warm".into()),
        // Narrow, hemmed in on both sides: cut to fit inside.
        (
            ms(4_000),
            ms(4_900),
            AMBER,
            "a very long label for a short span".into(),
        ),
        (ms(4_900), ms(9_000), GREEN, "steady".into()),
    ];
    let mut free = Lane::new("free");
    // A short span with room before it, none after.
    free.spans = vec![
        (ms(6_000), ms(6_200), AMBER, "spike at six".into()),
        (ms(6_200), ms(9_000), GREEN, "after".into()),
    ];
    let svg = Timeline {
        lanes: vec![lane, free],
    }
    .svg("labels");
    render(&svg, "timeline-labels");
    // The labels drawn in the lanes (the legend under the axis names the
    // spans too, so it is left out).
    let axis = y_of(&svg, "0");
    let in_lanes: Vec<(f64, String)> = texts(&svg)
        .into_iter()
        .filter(|t| t.1 < axis)
        .map(|t| (t.0, t.2))
        .collect();
    let tick = |label: &str| {
        texts(&svg)
            .into_iter()
            .find(|t| t.1 == axis && t.2 == label)
            .map(|t| t.0)
            .unwrap()
    };
    let spike = in_lanes
        .iter()
        .find(|t| t.1 == "spike at six")
        .map(|t| t.0)
        .unwrap_or_else(|| panic!("not drawn in its lane: {in_lanes:?}"));
    assert!(spike < tick("6 s") - 40.0, "drawn before its span: {spike}");
    let cut = in_lanes
        .iter()
        .find(|t| t.1.starts_with("a very") && t.1.ends_with(" …"))
        .unwrap_or_else(|| panic!("{in_lanes:?}"));
    assert!(
        cut.0 > tick("4 s") && cut.0 < tick("5 s"),
        "cut to fit inside its span: {cut:?}"
    );
}

/// A fault "for ever" does not stretch time to its end: the axis ends a
/// little after the last event, and the span is cut there.
#[test]
fn a_span_for_ever_is_cut_at_the_edge() {
    let mut lane = Lane::new("crash");
    lane.spans = vec![(
        ms(2_000),
        Duration::from_millis(u64::MAX),
        RED,
        "from 2000 ms".into(),
    )];
    lane.points = vec![(ms(10_000), BLUE)];
    let svg = Timeline { lanes: vec![lane] }.svg("for ever");
    let axis = y_of(&svg, "0");
    let ticks: Vec<String> = texts(&svg)
        .into_iter()
        .filter(|t| t.1 == axis)
        .map(|t| t.2)
        .collect();
    assert_eq!(ticks.last().map(String::as_str), Some("10 s"), "{ticks:?}");
}

/// After a shrink the only fault may come after the violation (a crash at
/// 53 ms, a violation blamed on 32 ms): time must run past the fault, not
/// stop at the violation with the fault pinned to the right edge.
#[test]
fn time_runs_past_a_fault_that_starts_after_the_last_event() {
    use async_patterns_sim::Violation;
    let plan = FaultPlan {
        faults: vec![Fault::new(FaultKind::Crash, "server", 53, 1)],
        sabotage: None,
        sites: Vec::new(),
        disk: None,
    };
    let timeline = Timeline {
        lanes: plot::fault_lanes(&plan),
    };
    let v = [Violation::new("lost", "a write").at(ms(32))];
    let svg = plot::replay_svg("s", 0, &plan, &timeline, &v);
    let ticks: Vec<String> = texts(&svg)
        .into_iter()
        .filter(|t| t.2.ends_with(" ms"))
        .map(|t| t.2)
        .collect();
    assert!(ticks.iter().any(|t| t == "50 ms"), "{ticks:?}");
    // The crash's bar is drawn at its time, not pinned to the axis's end
    // (the right margin is 30 px; pinned, the bar sat at width - 30).
    let x: f64 = svg
        .split(r##"fill="#777""##)
        .next()
        .and_then(|head| head.rsplit("<rect x=\"").next())
        .and_then(|tail| tail.split('"').next())
        .and_then(|x| x.parse().ok())
        .expect("the crash's bar");
    let width: f64 = svg
        .split("width=\"")
        .nth(1)
        .and_then(|w| w.split('"').next())
        .and_then(|w| w.parse().ok())
        .unwrap();
    assert!(x < width - 45.0, "the bar at {x} of {width}");
}

/// Marks close together each get their line; a name that would overlap the
/// one before is left to the list; a name is centred on its mark; the list
/// under the legend runs down the page, one line a violation.
#[test]
fn violation_names_sit_on_their_marks_and_never_overlap() {
    use async_patterns_sim::Violation;
    let (plan, timeline) = run();
    let violations = [
        Violation::new("first", "a").at(ms(4_000)),
        Violation::new("second", "b").at(ms(4_050)),
        Violation::new("third", "c").at(ms(12_000)),
    ];
    let svg = plot::replay_svg("resilient-client", 4, &plan, &timeline, &violations);
    assert_eq!(
        svg.matches(r#"stroke-dasharray="4 3""#).count(),
        3,
        "a line each"
    );
    let texts = texts(&svg);
    let named = |n: &str| texts.iter().find(|t| t.2 == format!("✗ {n}")).map(|t| t.0);
    assert!(named("first").is_some() && named("third").is_some());
    assert_eq!(named("second"), None, "it would overlap \"first\"");
    // Centred on its mark: the mark at 12 s, between the 12 s tick's x
    // and the name's start, about half the name's width.
    let tick = texts.iter().find(|t| t.2 == "12 s").unwrap().0;
    let third = named("third").unwrap();
    assert!(third < tick && tick - third < 40.0, "{third} vs {tick}");
    let listed: Vec<f64> = texts
        .iter()
        .filter(|t| t.2.starts_with("✗ at "))
        .map(|t| t.1)
        .collect();
    assert_eq!(listed.len(), 3);
    assert!(listed.windows(2).all(|w| w[1] > w[0] + 10.0), "{listed:?}");
    let header = texts.iter().find(|t| t.2 == "violations (3):").unwrap().1;
    assert!(listed[0] > header, "the list under its header");
}
