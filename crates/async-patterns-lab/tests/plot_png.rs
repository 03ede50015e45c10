//! The lab's plot as a person sees it: each SVG is rendered to pixels
//! (resvg, with the system's fonts) and checked for what a reader needs:
//! a picture that is not blank, every engine's colour on it, the limit's
//! grey, and text in the title and legend strips. The SVG's words are
//! checked too: the CLI's names, round tick labels. Nothing is written to
//! disk unless `PLOT_PNG_DIR` names a directory to keep the PNGs in (to
//! look at them).

use async_patterns_lab::engines::Engine;
use async_patterns_lab::lab::LabReport;
use async_patterns_lab::plot::{self, LIMIT};
use resvg::tiny_skia::{Color, Pixmap};
use resvg::usvg;

/// The font database: the system's fonts, with `sans-serif` (what the plot
/// asks for) mapped to a sans family that is installed. Whether any font
/// was found.
fn fonts() -> (usvg::fontdb::Database, bool) {
    let mut db = usvg::fontdb::Database::new();
    db.load_system_fonts();
    let families: Vec<String> = db
        .faces()
        .flat_map(|f| f.families.iter().map(|(name, _)| name.clone()))
        .collect();
    let sans = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "FreeSans"]
        .into_iter()
        .map(str::to_string)
        .find(|f| families.contains(f))
        .or_else(|| families.first().cloned());
    if let Some(sans) = &sans {
        db.set_sans_serif_family(sans);
    }
    (db, sans.is_some())
}

/// The SVG rendered on white, as a person's viewer would.
fn render(svg: &str, name: &str) -> (Pixmap, bool) {
    let (db, has_fonts) = fonts();
    let options = usvg::Options {
        fontdb: std::sync::Arc::new(db),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &options).expect("the plot is valid SVG");
    let size = tree.size().to_int_size();
    let mut pixmap = Pixmap::new(size.width(), size.height()).expect("a non-empty picture");
    pixmap.fill(Color::WHITE);
    resvg::render(&tree, Default::default(), &mut pixmap.as_mut());
    if let Some(dir) = std::env::var_os("PLOT_PNG_DIR") {
        let path = std::path::Path::new(&dir).join(format!("{name}.png"));
        pixmap.save_png(&path).expect("PLOT_PNG_DIR is writable");
        eprintln!("wrote {}", path.display());
    }
    (pixmap, has_fonts)
}

/// Pixels within `tol` of `rgb` in each channel, in rows `rows`.
fn count(pixmap: &Pixmap, rgb: (u8, u8, u8), tol: u8, rows: std::ops::Range<u32>) -> usize {
    let width = pixmap.width();
    (pixmap.pixels().iter().enumerate())
        .filter(|(i, _)| rows.contains(&(*i as u32 / width)))
        .filter(|(_, p)| {
            let c = p.demultiply();
            c.red().abs_diff(rgb.0) <= tol
                && c.green().abs_diff(rgb.1) <= tol
                && c.blue().abs_diff(rgb.2) <= tol
        })
        .count()
}

/// Each engine's colour, written out here (not read from the plot's code)
/// so that two engines drawn alike fail: grey, red, blue, green.
const PALETTE: [(Engine, (u8, u8, u8)); 4] = [
    (Engine::Sequential, (0x77, 0x77, 0x77)),
    (Engine::Threaded, (0xd3, 0x33, 0x33)),
    (Engine::Async, (0x2f, 0x6f, 0xd6)),
    (Engine::AsyncResilient, (0x2e, 0x9e, 0x44)),
];

/// What every readable plot of `report` shows.
fn assert_readable(report: &LabReport, name: &str) -> String {
    let svg = plot::svg(report).expect("the report plots");
    let (png, has_fonts) = render(&svg, name);
    let all = 0..png.height();
    let total = (png.width() * png.height()) as usize;
    let ink = total - count(&png, (255, 255, 255), 8, all.clone());
    assert!(
        ink > total / 50,
        "{name}: only {ink} of {total} pixels are not white: the plot is (nearly) blank"
    );
    for (engine, c) in PALETTE {
        if report.runs.iter().any(|r| r.client.engine == engine) {
            let n = count(&png, c, 10, all.clone());
            assert!(
                n > 100,
                "{name}: {} has {n} pixels of its colour: its line and dots are missing",
                engine.name()
            );
        }
    }
    for (engine, c) in PALETTE {
        let drawn = plot::colour(engine);
        assert_eq!((drawn.0, drawn.1, drawn.2), c, "{}'s colour", engine.name());
    }
    let grey = count(&png, (LIMIT.0, LIMIT.1, LIMIT.2), 6, all.clone());
    assert!(grey > 100, "{name}: the C / L line is missing ({grey} px)");
    if has_fonts {
        // The title (top 36 rows) and the legend strip below it hold text.
        let dark = |rows| count(&png, (40, 40, 40), 40, rows);
        let (title, legend) = (dark(0..36), dark(36..76));
        assert!(
            title > 300,
            "{name}: the title has {title} dark pixels: no text"
        );
        assert!(
            legend > 300,
            "{name}: the legend has {legend} dark pixels: no text"
        );
    } else {
        eprintln!("no system fonts: text not checked (install fonts-dejavu-core)");
    }
    svg
}

fn run(engine: &str, c: usize, per_s: f64, p99_ms: f64, rss_kib: u64) -> serde_json::Value {
    let limit = c as f64 / 0.05;
    serde_json::json!({
        "client": {
            "engine": engine, "concurrency": c, "requests": 100, "successes": 100,
            "errors": 0, "retries": 0, "elapsed_s": 1.0, "requests_per_s": per_s,
            "latency": {"p50_ms": 51.0, "p95_ms": p99_ms, "p99_ms": p99_ms, "max_ms": p99_ms},
            "peak_rss_kib": rss_kib, "cpu_s": 0.01
        },
        "server": {"requests": 100, "errors_injected": 0, "connections": c, "max_in_flight": c},
        "limit_per_s": limit,
        "share_of_limit": per_s / limit
    })
}

/// A small report: every engine at two levels, a long-tail upstream, p99s
/// within 3 ms of each other (they must still be readable off the axis).
fn small_report() -> LabReport {
    let runs = vec![
        run("sequential", 1, 19.5, 52.0, 5000),
        run("threaded", 5, 96.0, 53.5, 7400),
        run("async", 5, 96.4, 52.1, 5200),
        run("async-resilient", 5, 95.1, 52.3, 5300),
        run("threaded", 20, 380.0, 54.9, 14000),
        run("async", 20, 385.0, 52.9, 5900),
        run("async-resilient", 20, 379.0, 53.2, 6000),
    ];
    serde_json::from_value(serde_json::json!({
        "config": {
            "engines": ["sequential", "threaded", "async", "async-resilient"],
            "requests": null,
            "concurrency": [5, 20],
            "server": {
                "latency": {"shape": "long-tail", "mean": {"secs": 0, "nanos": 50_000_000}},
                "error_rate": 0.005, "capacity": null, "seed": 0
            },
            "pool": {"keep_alive": true, "max_idle": null}
        },
        "runs": runs,
        "goals": []
    }))
    .expect("the test's report parses")
}

/// The labels drawn as text, in order.
fn texts(svg: &str) -> Vec<&str> {
    placed(svg).into_iter().map(|(_, t)| t).collect()
}

/// The labels drawn as text with the y of each, in order.
fn placed(svg: &str) -> Vec<(f64, &str)> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| t.split_once('>'))
        .filter_map(|(attrs, rest)| {
            let y = attrs
                .split(" y=\"")
                .nth(1)?
                .split('"')
                .next()?
                .parse()
                .ok()?;
            Some((y, rest.split_once("</text>")?.0.trim()))
        })
        .collect()
}

/// The legend sits above the panels, where it hides no line: every
/// engine's name is written once, above the first panel's caption.
fn assert_legend_above_the_panels(svg: &str) {
    let placed = placed(svg);
    let top = placed
        .iter()
        .find(|(_, t)| *t == "throughput")
        .expect("the throughput panel")
        .0;
    for name in ["threaded", "async", "async-resilient"] {
        let at: Vec<f64> = (placed.iter())
            .filter(|(_, t)| *t == name)
            .map(|(y, _)| *y)
            .collect();
        assert!(
            at.len() == 1 && at[0] < top,
            "{name} named at y = {at:?}; the panels start at {top}"
        );
    }
}

#[test]
fn a_small_reports_plot_renders_every_engine_readable_ticks_and_the_clis_names() {
    let svg = assert_readable(&small_report(), "lab-small");
    let texts = texts(&svg);
    let title = texts.first().expect("a title");
    assert!(
        title.contains("long-tail 50ms latency, 0.5% errors"),
        "the title names the shape as --shape does: {title}"
    );
    // p99s of 52-55 ms: ticks every 0.5 ms, each labelled.
    for tick in ["52", "52.5", "53", "53.5", "54", "54.5", "55"] {
        assert!(texts.contains(&tick), "no tick labelled {tick}: {texts:?}");
    }
    assert_legend_above_the_panels(&svg);
}

#[test]
fn the_committed_reports_plot_renders_every_engine_and_readable_text() {
    let committed = include_str!("../lab.json");
    let report: LabReport = serde_json::from_str(committed).expect("the committed report parses");
    let svg = assert_readable(&report, "lab-committed");
    let texts = texts(&svg);
    assert!(
        texts[0].contains("fixed 50ms latency, 1% errors"),
        "{}",
        texts[0]
    );
    assert!(!svg.contains("Fixed"), "Debug names leaked into the plot");
    assert_legend_above_the_panels(&svg);
    // p99s of 52-102 ms on a linear axis every 10 ms; memory of 5-278 MiB
    // on a log axis at 1-2-5 steps; concurrency at 1-2-5 steps.
    for tick in [
        "40", "60", "80", "100", "5", "10", "20", "50", "200", "500", "10000",
    ] {
        assert!(texts.contains(&tick), "no tick labelled {tick}: {texts:?}");
    }
}

/// A run that completed nothing (no latency, 0 requests/s) still plots:
/// its axes turn linear from 0 instead of failing on a log of zero.
#[test]
fn a_report_with_a_run_that_completed_nothing_still_plots() {
    let mut report = small_report();
    let failed = &mut report.runs[1].client;
    failed.requests_per_s = 0.0;
    failed.latency = None;
    failed.peak_rss_kib = 0;
    report.runs[1].share_of_limit = 0.0;
    let svg = plot::svg(&report).expect("the report plots");
    let (png, _) = render(&svg, "lab-failed-run");
    let total = (png.width() * png.height()) as usize;
    let ink = total - count(&png, (255, 255, 255), 8, 0..png.height());
    assert!(ink > total / 50, "only {ink} of {total} pixels drawn");
}

/// An upstream of 0 ms latency has no C / L limit: the plot is drawn
/// without one (and without a share of it), promptly. It once spun for
/// over 20 minutes ticking an infinite axis.
#[test]
fn a_report_with_zero_upstream_latency_plots_without_a_limit() {
    let mut report = small_report();
    report.config.server.latency.mean = std::time::Duration::ZERO;
    for r in &mut report.runs {
        r.limit_per_s = f64::INFINITY;
        r.share_of_limit = 0.0;
    }
    let (done, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(plot::svg(&report)));
    let svg = wait
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the plot is drawn within 20 s, not spinning")
        .expect("the report plots");
    assert!(
        svg.contains("share of C / L: none"),
        "the panel says why it is empty"
    );
    assert!(
        !svg.contains("C / L, the physical limit"),
        "no limit in the legend"
    );
    assert!(svg.contains("requests/s"));
}
