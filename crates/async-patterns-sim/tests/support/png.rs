//! Rendering a timeline SVG to pixels (resvg, the system's fonts) and
//! reading them, for the plot tests of this crate and of `sim/`. Nothing is
//! written to disk unless `PLOT_PNG_DIR` names a directory to keep the PNGs
//! in (to look at them).

#![allow(dead_code)]

use resvg::tiny_skia::{Color, Pixmap};
use resvg::usvg;

/// The font database: the system's fonts, with `sans-serif` and `monospace`
/// (what the plot asks for) mapped to installed families. Whether any font
/// was found.
fn fonts() -> (usvg::fontdb::Database, bool) {
    let mut db = usvg::fontdb::Database::new();
    db.load_system_fonts();
    let families: Vec<String> = db
        .faces()
        .flat_map(|f| f.families.iter().map(|(name, _)| name.clone()))
        .collect();
    let first = |wanted: &[&str]| {
        (wanted.iter().map(|f| f.to_string()))
            .find(|f| families.contains(f))
            .or_else(|| families.first().cloned())
    };
    let sans = first(&["DejaVu Sans", "Liberation Sans", "Noto Sans", "FreeSans"]);
    let mono = first(&[
        "DejaVu Sans Mono",
        "Liberation Mono",
        "Noto Sans Mono",
        "FreeMono",
    ]);
    if let (Some(sans), Some(mono)) = (&sans, &mono) {
        db.set_sans_serif_family(sans);
        db.set_monospace_family(mono);
    }
    (db, sans.is_some())
}

/// The SVG rendered on white, as a person's viewer would; whether the
/// system has fonts (without them no text is drawn).
pub fn render(svg: &str, name: &str) -> (Pixmap, bool) {
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
    if !has_fonts {
        eprintln!("no system fonts: text not checked (install fonts-dejavu-core)");
    }
    (pixmap, has_fonts)
}

/// `#rgb` or `#rrggbb`, drawn at `opacity` on white.
pub fn on_white(hex: &str, opacity: f64) -> (u8, u8, u8) {
    let h = hex.trim_start_matches('#');
    let digits: Vec<u8> = if h.len() == 3 {
        h.chars()
            .map(|c| u8::from_str_radix(&format!("{c}{c}"), 16).unwrap())
            .collect()
    } else {
        (0..3)
            .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    };
    let blend = |c: u8| (255.0 - opacity * (255.0 - f64::from(c))).round() as u8;
    (blend(digits[0]), blend(digits[1]), blend(digits[2]))
}

/// Pixels within `tol` of `rgb` in each channel, in rows `rows`.
pub fn count(pixmap: &Pixmap, rgb: (u8, u8, u8), tol: u8, rows: std::ops::Range<u32>) -> usize {
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

/// Pixels that are not white.
pub fn ink(pixmap: &Pixmap) -> usize {
    let all = pixmap.width() * pixmap.height();
    all as usize - count(pixmap, (255, 255, 255), 8, 0..pixmap.height())
}

/// The rightmost column with dark (text) pixels in rows `rows`, if any.
pub fn rightmost_dark(pixmap: &Pixmap, rows: std::ops::Range<u32>) -> Option<u32> {
    let width = pixmap.width();
    (pixmap.pixels().iter().enumerate())
        .filter(|(i, _)| rows.contains(&(*i as u32 / width)))
        .filter(|(_, p)| {
            let c = p.demultiply();
            c.red() < 120 && c.green() < 120 && c.blue() < 120
        })
        .map(|(i, _)| i as u32 % width)
        .max()
}

/// The SVG's texts with the x and y each is drawn at, in order.
pub fn texts(svg: &str) -> Vec<(f64, f64, String)> {
    let attr = |attrs: &str, name: &str| -> Option<f64> {
        attrs
            .split(&format!(" {name}=\""))
            .nth(1)?
            .split('"')
            .next()?
            .parse()
            .ok()
    };
    svg.split("<text")
        .skip(1)
        .filter_map(|t| t.split_once('>'))
        .filter_map(|(attrs, rest)| {
            let text = rest.split_once("</text>")?.0.trim().to_string();
            Some((attr(attrs, "x")?, attr(attrs, "y")?, text))
        })
        .collect()
}

/// The y of the first text that is exactly `text`.
pub fn y_of(svg: &str, text: &str) -> f64 {
    texts(svg)
        .into_iter()
        .find(|(_, _, t)| t == text)
        .unwrap_or_else(|| panic!("no text {text:?} in the plot"))
        .1
}
