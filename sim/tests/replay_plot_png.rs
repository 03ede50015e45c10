//! What `sim replay S --seed 4 --plot FILE` draws for every scenario of the
//! catalogue, rendered to pixels: not blank, a title that fits, time ticks
//! at round values, and for the resilient client the breaker's three
//! states in their colours with a legend that names them.

#[path = "../../crates/async-patterns-sim/tests/support/png.rs"]
mod png;

use async_patterns_sim::plot::{self, AMBER, GREEN, RED};
use png::{count, ink, on_white, render, rightmost_dark, texts, y_of};
use sim::CATALOGUE;

#[test]
fn every_scenarios_seed_4_replay_plot_reads_at_a_glance() {
    for s in CATALOGUE {
        let info = s.info();
        let plan = info.swarm.plan(4);
        let out = s.run_plan(4, &plan).unwrap();
        let svg = plot::replay_svg(&info.name, 4, &plan, &out.timeline, &out.violations);
        let (png, has_fonts) = render(&svg, &format!("replay-{}", info.name));
        let total = (png.width() * png.height()) as usize;
        assert!(ink(&png) > total / 40, "{}: (nearly) blank", info.name);
        if has_fonts {
            let right = rightmost_dark(&png, 0..32).expect("a title");
            assert!(right + 8 < png.width(), "{}: the title runs off", info.name);
        }
        // Ticks at 0 and then at multiples of one round step.
        let axis = y_of(&svg, "0");
        let ticks: Vec<f64> = (texts(&svg).into_iter())
            .filter(|(_, y, _)| *y == axis)
            .map(|(_, _, t)| match t.split_once(' ') {
                Some((n, "s")) => n.parse::<f64>().unwrap() * 1000.0,
                Some((n, "ms")) => n.parse().unwrap(),
                _ => t.parse().unwrap(),
            })
            .collect();
        let step = ticks[1];
        let mantissa = step / 10f64.powf(step.log10().floor());
        assert!(
            [1.0, 2.0, 5.0].contains(&mantissa),
            "{}: ticks {ticks:?}",
            info.name
        );
        assert!(
            (ticks.iter().enumerate()).all(|(k, t)| *t == k as f64 * step),
            "{}: ticks {ticks:?}",
            info.name
        );
    }
}

#[test]
fn the_resilient_clients_plot_shows_the_breakers_states_and_names_them() {
    let s = CATALOGUE
        .iter()
        .find(|s| s.info().name == "resilient-client")
        .unwrap();
    let plan = s.info().swarm.plan(4);
    let out = s.run_plan(4, &plan).unwrap();
    let svg = plot::replay_svg("resilient-client", 4, &plan, &out.timeline, &out.violations);
    let (png, _) = render(&svg, "replay-resilient-client-breaker");
    let legend = y_of(&svg, "breaker:");
    let key = legend as u32 - 14..legend as u32 + 4;
    for (state, colour, in_lanes) in [
        ("closed", GREEN, 1000),
        ("open", RED, 300),
        // Half-open lasts a probe: a sliver, but there.
        ("half-open", AMBER, 20),
    ] {
        let rgb = on_white(colour, 0.75);
        let drawn = count(&png, rgb, 6, 0..y_of(&svg, "0") as u32 - 14);
        assert!(drawn >= in_lanes, "{state}: {drawn} px in the lanes");
        let keyed = count(&png, rgb, 6, key.clone());
        assert!(keyed >= 100, "{state}: {keyed} px in the legend");
        assert!(
            texts(&svg)
                .iter()
                .any(|(_, y, t)| t == state && (*y - legend).abs() < 1.0),
            "the legend names {state}"
        );
    }
}
