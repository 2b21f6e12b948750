//! The grid map: communities or grids drawn as SVG from their GeoJSON
//! boundaries, coloured by a measure, each a link to drill down.
//!
//! Longitude and latitude are projected equirectangularly, longitude scaled
//! by the cosine of the middle latitude so that a sub-district's shapes keep
//! their proportions, north up. The map is 600 units wide with a `viewBox`
//! and no fixed size, so CSS scales it: about 0.5 px a unit on a 360 px
//! phone, 1.2 on a desktop. Only the area names stay inside the SVG, drawn
//! twice at two sizes of which CSS shows one (see [`NARROW`] and [`WIDE`]);
//! the legend and the areas without a boundary follow as HTML, in the page's
//! own font size.

use std::fmt::Write as _;

use epigrid_service::dashboard::AreaWithFigures;

use super::Tr;
use super::charts::{FONT_FAMILY, INK, WIDTH, escape, num, percent, text_width, thousands};

/// What the map colours areas by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Population,
    KeyGroupShare,
    /// Open tasks of the closed loop, and those past their deadline.
    OpenTasks,
    OverdueTasks,
    /// Share of residents with a health report today (issue #6).
    ReportedShare,
    /// Today's health entries with a fever or a symptom: where the day's
    /// follow-ups are.
    FlaggedToday,
}

impl Measure {
    pub fn parse(text: Option<&str>) -> Measure {
        match text {
            Some("key_group") => Measure::KeyGroupShare,
            Some("open_tasks") => Measure::OpenTasks,
            Some("overdue_tasks") => Measure::OverdueTasks,
            Some("reported") => Measure::ReportedShare,
            Some("flagged") => Measure::FlaggedToday,
            _ => Measure::Population,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Measure::Population => "population",
            Measure::KeyGroupShare => "key_group",
            Measure::OpenTasks => "open_tasks",
            Measure::OverdueTasks => "overdue_tasks",
            Measure::ReportedShare => "reported",
            Measure::FlaggedToday => "flagged",
        }
    }

    /// Whether the measure counts tasks (shown only to roles that see them).
    pub fn is_tasks(self) -> bool {
        matches!(self, Measure::OpenTasks | Measure::OverdueTasks)
    }

    /// The value in whole steps of what is shown: residents, or tenths of a
    /// percent. Classes are ranges of these integers, so that two areas
    /// showing the same figure always share a colour and the legend's ranges
    /// neither overlap nor leave gaps at the shown precision.
    fn steps(self, area: &AreaWithFigures) -> i64 {
        match self {
            Measure::Population => area.figures.residents,
            Measure::KeyGroupShare => {
                let share = area.key_group_share();
                if share.is_finite() { (share * 1000.0).round() as i64 } else { 0 }
            }
            Measure::OpenTasks => area.tasks.open,
            Measure::OverdueTasks => area.tasks.overdue,
            Measure::ReportedShare => (area.reported_share() * 1000.0).round() as i64,
            Measure::FlaggedToday => area.flagged_today,
        }
    }

    /// A value in steps as shown: `"1,234"`, `"18.5%"`.
    fn format(self, steps: i64) -> String {
        match self {
            Measure::Population
            | Measure::OpenTasks
            | Measure::OverdueTasks
            | Measure::FlaggedToday => thousands(steps),
            // Exact to far below the shown tenth, so this prints `steps`.
            Measure::KeyGroupShare | Measure::ReportedShare => percent(steps as f64 / 1000.0),
        }
    }

    /// Light to dark: ColorBrewer's sequential Blues and Oranges.
    fn palette(self) -> [&'static str; 5] {
        match self {
            Measure::Population => ["#eff3ff", "#bdd7e7", "#6baed6", "#3182bd", "#08519c"],
            Measure::KeyGroupShare => ["#feedde", "#fdbe85", "#fd8d3c", "#e6550d", "#a63603"],
            // Purples for work in hand, Reds for work past its time.
            Measure::OpenTasks => ["#f2f0f7", "#cbc9e2", "#9e9ac8", "#756bb1", "#54278f"],
            Measure::OverdueTasks => ["#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15"],
            // Greens: the darker, the more residents have reported.
            Measure::ReportedShare => ["#edf8e9", "#bae4b3", "#74c476", "#31a354", "#006d2c"],
            // Reds, as for work past its time: where people fell ill today.
            Measure::FlaggedToday => ["#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15"],
        }
    }

    fn name_key(self) -> &'static str {
        match self {
            Measure::Population => "map.population",
            Measure::KeyGroupShare => "map.key_group_share",
            Measure::OpenTasks => "map.open_tasks",
            Measure::OverdueTasks => "map.overdue_tasks",
            Measure::ReportedShare => "map.reported_share",
            Measure::FlaggedToday => "map.flagged_today",
        }
    }

    fn legend_key(self) -> &'static str {
        match self {
            Measure::Population => "map.legend.population",
            Measure::KeyGroupShare => "map.legend.key_group",
            Measure::OpenTasks => "map.legend.open_tasks",
            Measure::OverdueTasks => "map.legend.overdue_tasks",
            Measure::ReportedShare => "map.legend.reported",
            Measure::FlaggedToday => "map.legend.flagged",
        }
    }

    /// The hover text of an area: its name and figure.
    fn describe(self, area: &AreaWithFigures, tr: &Tr) -> String {
        let figures = &area.figures;
        match self {
            Measure::Population => tr.fill(
                "map.area.population",
                &[("name", area.name.clone()), ("value", thousands(figures.residents))],
            ),
            Measure::KeyGroupShare => tr.fill(
                "map.area.key_group",
                &[
                    ("name", area.name.clone()),
                    ("share", self.format(self.steps(area))),
                    ("count", thousands(figures.key_group)),
                    ("residents", thousands(figures.residents)),
                ],
            ),
            Measure::ReportedShare => tr.fill(
                "map.area.reported",
                &[
                    ("name", area.name.clone()),
                    ("share", self.format(self.steps(area))),
                    ("count", thousands(area.reported)),
                    ("residents", thousands(figures.residents)),
                ],
            ),
            Measure::FlaggedToday => tr.fill(
                "map.area.flagged",
                &[
                    ("name", area.name.clone()),
                    ("count", thousands(area.flagged_today)),
                    ("reported", thousands(area.reported)),
                ],
            ),
            Measure::OpenTasks | Measure::OverdueTasks => tr.fill(
                "map.area.tasks",
                &[
                    ("name", area.name.clone()),
                    ("open", thousands(area.tasks.open)),
                    ("overdue", thousands(area.tasks.overdue)),
                    ("closed", thousands(area.tasks.closed_today)),
                ],
            ),
        }
    }
}

const CLASSES: usize = 5;
const MARGIN: f64 = 10.0;
/// A tall, narrow area is fitted into this height rather than the width.
const MAX_MAP_HEIGHT: f64 = 600.0;
const OUTLINE: &str = "#5b6b7f";
/// More areas than this and the names are left to the hover text.
const MAX_LABELLED_AREAS: usize = 30;

/// Sizes of the area names for one range of screen widths, in viewBox
/// units. SVG text scales with the drawing, so one size cannot suit both a
/// phone and a desktop: the labels are drawn once per range and the
/// stylesheet shows the set for the screen (`.map-labels-narrow`,
/// `.map-labels-wide`). The set hidden by default carries `display="none"`,
/// which any CSS rule overrides, so a standalone SVG shows one set.
#[derive(Debug, Clone, Copy)]
struct LabelSize {
    class: &'static str,
    /// The name's size, and the least it may shrink to before the label is
    /// left out (or a shorter name tried).
    name: f64,
    min: f64,
    /// The figure under the name, relative to the name.
    figure: f64,
    /// Width of the white outline that keeps dark text readable across
    /// boundaries. Thin: a wide one blurs small text.
    halo: f64,
    hidden_by_default: bool,
}

/// Phones, below 48rem: the map is about 310 px wide on a 360 px screen and
/// at most 23rem (368 px) wide (app.css), 0.52–0.61 px a unit; 26 units is
/// 13.4–16 px.
const NARROW: LabelSize = LabelSize {
    class: "map-labels-narrow",
    name: 26.0,
    min: 21.5,
    figure: 0.9,
    halo: 2.5,
    hidden_by_default: false,
};

/// From 48rem: the map is 700–736 px (46rem) wide, 1.17–1.23 px a unit;
/// 12.5 units is 14.6–15.3 px.
const WIDE: LabelSize = LabelSize {
    class: "map-labels-wide",
    name: 12.5,
    min: 9.5,
    figure: 0.92,
    halo: 2.0,
    hidden_by_default: true,
};

type Point = (f64, f64);

/// The drawable outer rings of an area: finite, plausible coordinates and at
/// least three points each.
fn drawable_rings(area: &AreaWithFigures) -> Vec<Vec<Point>> {
    area.rings
        .iter()
        .map(|ring| {
            ring.iter()
                .copied()
                .filter(|(lon, lat)| {
                    lon.is_finite() && lat.is_finite() && lon.abs() <= 180.0 && lat.abs() <= 90.0
                })
                .collect::<Vec<_>>()
        })
        .filter(|ring| ring.len() >= 3)
        .collect()
}

/// Longitude/latitude to viewBox units.
#[derive(Debug, Clone, Copy)]
struct Projection {
    min_x: f64,
    max_lat: f64,
    lon_scale: f64,
    scale: f64,
    offset_x: f64,
    /// Height of the map part of the drawing, margins included.
    height: f64,
}

impl Projection {
    /// Fits all points into the width (or `MAX_MAP_HEIGHT`) with a margin.
    fn fit<'a>(points: impl Iterator<Item = &'a Point> + Clone) -> Option<Projection> {
        let (mut min_lon, mut max_lon, mut min_lat, mut max_lat) =
            (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for &(lon, lat) in points {
            min_lon = min_lon.min(lon);
            max_lon = max_lon.max(lon);
            min_lat = min_lat.min(lat);
            max_lat = max_lat.max(lat);
        }
        if !min_lon.is_finite() {
            return None;
        }
        let lon_scale = ((min_lat + max_lat) / 2.0).to_radians().cos().max(0.01);
        let width = (max_lon - min_lon) * lon_scale;
        let height = max_lat - min_lat;
        let inner_width = WIDTH - 2.0 * MARGIN;
        let inner_height = MAX_MAP_HEIGHT - 2.0 * MARGIN;
        let scale_x = if width > 0.0 { inner_width / width } else { f64::INFINITY };
        let scale_y = if height > 0.0 { inner_height / height } else { f64::INFINITY };
        let mut scale = scale_x.min(scale_y);
        if !scale.is_finite() {
            scale = 1.0; // a single point: nothing to fit
        }
        Some(Projection {
            min_x: min_lon * lon_scale,
            max_lat,
            lon_scale,
            scale,
            offset_x: (WIDTH - width * scale) / 2.0,
            height: height * scale + 2.0 * MARGIN,
        })
    }

    fn apply(&self, (lon, lat): Point) -> Point {
        (
            self.offset_x + (lon * self.lon_scale - self.min_x) * self.scale,
            MARGIN + (self.max_lat - lat) * self.scale,
        )
    }
}

fn path_data(rings: &[Vec<Point>]) -> String {
    let mut d = String::new();
    for ring in rings {
        for (i, &(x, y)) in ring.iter().enumerate() {
            let _ = write!(d, "{}{},{}", if i == 0 { "M" } else { "L" }, num(x), num(y));
        }
        d.push('Z');
    }
    d
}

/// Signed area and centroid of a ring (the shoelace formula).
fn centroid(ring: &[Point]) -> (f64, Point) {
    let mut twice_area = 0.0;
    let (mut cx, mut cy) = (0.0, 0.0);
    for (i, &(x0, y0)) in ring.iter().enumerate() {
        let (x1, y1) = ring[(i + 1) % ring.len()];
        let cross = x0 * y1 - x1 * y0;
        twice_area += cross;
        cx += (x0 + x1) * cross;
        cy += (y0 + y1) * cross;
    }
    if twice_area.abs() < 1e-9 {
        let n = ring.len().max(1) as f64;
        let mean =
            (ring.iter().map(|p| p.0).sum::<f64>() / n, ring.iter().map(|p| p.1).sum::<f64>() / n);
        return (0.0, mean);
    }
    (twice_area / 2.0, (cx / (3.0 * twice_area), cy / (3.0 * twice_area)))
}

/// Class breaks at the quintiles of the values (actual values, so ranges
/// read as figures that occur), duplicates merged; the first is the minimum
/// and the last the maximum. One value gives one break and one class.
fn class_breaks(values: &[i64]) -> Vec<i64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    if sorted.is_empty() {
        return Vec::new();
    }
    let last = sorted.len() - 1;
    let mut breaks: Vec<i64> = (0..=CLASSES).map(|k| sorted[k * last / CLASSES]).collect();
    breaks.dedup();
    breaks
}

fn class_count(breaks: &[i64]) -> usize {
    breaks.len().saturating_sub(1).max(1)
}

/// The class of a value: `breaks[i] <= value < breaks[i + 1]`, the last
/// class closed at the top.
fn class_of(value: i64, breaks: &[i64]) -> usize {
    let classes = class_count(breaks);
    (0..classes).rev().find(|&i| value >= breaks[i]).unwrap_or(0)
}

/// The values of a class, both ends included: `breaks[i]` up to one step
/// below the next break, the last class up to the maximum. Ranges of
/// neighbouring classes never share a figure.
fn class_range(class: usize, breaks: &[i64]) -> (i64, i64) {
    let classes = class_count(breaks);
    let low = breaks.get(class).copied().unwrap_or_default();
    let high = if class + 1 >= classes {
        breaks.last().copied().unwrap_or(low)
    } else {
        breaks[class + 1] - 1
    };
    (low, high.max(low))
}

/// Colours spread over the palette when there are fewer than five classes.
fn class_colour(class: usize, classes: usize, palette: &[&'static str; 5]) -> &'static str {
    if classes <= 1 {
        return palette[2];
    }
    palette[(class * (CLASSES - 1) + (classes - 1) / 2) / (classes - 1)]
}

/// A shorter label for a name that begins like another area's on the map,
/// for when the full name does not fit: "黄河社区第1网格" beside
/// "黄河社区第2网格" becomes "第1网格". The shared beginning is cut just
/// after the community or sub-district name in it, if there is one.
fn short_name(name: &str, names: &[&str]) -> Option<String> {
    let shared = names
        .iter()
        .filter(|other| **other != name)
        .map(|other| name.chars().zip(other.chars()).take_while(|(a, b)| a == b).count())
        .max()
        .unwrap_or(0);
    if shared < 2 {
        return None;
    }
    let prefix: String = name.chars().take(shared).collect();
    let cut = ["社区", "街道"]
        .iter()
        .filter_map(|marker| prefix.rfind(marker).map(|at| at + marker.len()))
        .max()
        .unwrap_or(prefix.len());
    let rest = name[cut..].trim_start_matches(|c: char| c.is_whitespace() || "-_·.".contains(c));
    (rest.chars().count() >= 2).then(|| rest.to_owned())
}

/// The map as an inline `<svg>` followed by its legend, and the areas
/// without a boundary as a list of links; `href` gives each area's
/// drill-down link. HTML for the page, one fragment.
pub fn render_map(
    areas: &[AreaWithFigures],
    measure: Measure,
    href: &dyn Fn(&AreaWithFigures) -> String,
    tr: &Tr,
) -> String {
    if areas.is_empty() {
        return format!("<p class=\"muted map-empty\">{}</p>", escape(&tr.t("map.no_data")));
    }
    let (mapped, unmapped): (Vec<_>, Vec<_>) =
        areas.iter().map(|a| (a, drawable_rings(a))).partition(|(_, rings)| !rings.is_empty());
    let mut out = String::new();
    if let Some(projection) =
        Projection::fit(mapped.iter().flat_map(|(_, rings)| rings.iter().flatten()))
    {
        let values: Vec<i64> = mapped.iter().map(|(a, _)| measure.steps(a)).collect();
        let breaks = class_breaks(&values);
        let classes = class_count(&breaks);
        let palette = measure.palette();
        let names: Vec<&str> = mapped.iter().map(|(a, _)| a.name.as_str()).collect();
        let labelled = mapped.len() <= MAX_LABELLED_AREAS;

        let mut shapes = String::new();
        let mut labels = Vec::new();
        for ((area, rings), &value) in mapped.iter().zip(&values) {
            let projected: Vec<Vec<Point>> =
                rings.iter().map(|r| r.iter().map(|&p| projection.apply(p)).collect()).collect();
            let colour = class_colour(class_of(value, &breaks), classes, &palette);
            let title = escape(&measure.describe(area, tr));
            let _ = write!(
                shapes,
                "<a class=\"map-area\" href=\"{}\" data-area-id=\"{}\" aria-label=\"{title}\"><title>{title}</title>\
                 <path d=\"{}\" fill=\"{colour}\" stroke=\"{OUTLINE}\" stroke-width=\"1\" stroke-linejoin=\"round\"/></a>",
                escape(&href(area)),
                area.id,
                path_data(&projected),
            );
            if labelled && let Some(place) = LabelPlace::of(&projected) {
                let text = LabelText {
                    name: &area.name,
                    short: short_name(&area.name, &names),
                    figure: measure.format(value),
                    on_dark: palette[3..].contains(&colour),
                };
                labels.push((text, place));
            }
        }
        let title = tr.fill("map.aria", &[("measure", tr.t(measure.name_key()))]);
        // No role="img": the map holds links, which must stay reachable.
        let _ = write!(
            out,
            "<svg class=\"map-svg\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" \
             aria-labelledby=\"map-svg-title\" font-family=\"{FONT_FAMILY}\" data-measure=\"{}\">\
             <title id=\"map-svg-title\">{}</title>{shapes}",
            num(WIDTH),
            num(projection.height),
            measure.as_str(),
            escape(&title),
        );
        for size in [&NARROW, &WIDE] {
            // One kind of name for the whole map: if any full name needs
            // shortening, every name that can be is, so that "第1网格" does
            // not sit beside "黄河社区第2网格".
            let short = labels
                .iter()
                .any(|(text, place)| text.short.is_some() && !place.fits(text.name, size.name));
            let mut drawn = String::new();
            for (text, place) in &labels {
                label(&mut drawn, text, place, size, short, projection.height);
            }
            if drawn.is_empty() {
                continue;
            }
            // Drawn over every shape; clicks fall through to the area below.
            let _ = write!(
                out,
                "<g class=\"map-labels {}\"{} aria-hidden=\"true\" pointer-events=\"none\" \
                 text-anchor=\"middle\" fill=\"{INK}\" stroke=\"#fff\" stroke-width=\"{}\" \
                 stroke-linejoin=\"round\" paint-order=\"stroke\">{drawn}</g>",
                size.class,
                if size.hidden_by_default { " display=\"none\"" } else { "" },
                num(size.halo),
            );
        }
        out.push_str("</svg>");
        legend(&mut out, measure, &breaks, &palette, tr);
    }
    if !unmapped.is_empty() {
        unmapped_list(&mut out, &unmapped, href, tr);
    }
    out
}

/// What an area's label may say.
#[derive(Debug)]
struct LabelText<'a> {
    name: &'a str,
    /// Tried when the name does not fit: see [`short_name`].
    short: Option<String>,
    figure: String,
    /// White text without an outline on the two darkest classes.
    on_dark: bool,
}

/// Where an area's label goes: the centroid of its largest ring, and the
/// room that ring's bounding box gives.
#[derive(Debug, Clone, Copy)]
struct LabelPlace {
    centre: Point,
    /// Usable width (a margin left on both sides) and height.
    room: f64,
    height: f64,
}

impl LabelPlace {
    fn of(rings: &[Vec<Point>]) -> Option<LabelPlace> {
        let ((_, centre), ring) = rings
            .iter()
            .map(|ring| (centroid(ring), ring))
            .max_by(|a, b| a.0.0.abs().total_cmp(&b.0.0.abs()))?;
        let (min_x, max_x) = ring
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
        let (min_y, max_y) = ring
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
        Some(LabelPlace { centre, room: (max_x - min_x) * 0.9, height: max_y - min_y })
    }

    /// The font size `name` fits in, at most `font`.
    fn font_for(&self, name: &str, font: f64) -> f64 {
        font.min(self.room / text_width(name, 1.0).max(0.5))
    }

    fn fits(&self, name: &str, font: f64) -> bool {
        self.font_for(name, font) >= font && self.height >= font
    }
}

/// The name (and, where there is room, the figure) of an area: shrunk to
/// the room there is, or left out. `short` picks the short names of the
/// map over the full ones.
fn label(
    out: &mut String,
    text: &LabelText,
    place: &LabelPlace,
    size: &LabelSize,
    short: bool,
    map_height: f64,
) {
    let name = match &text.short {
        Some(short_name) if short => short_name.as_str(),
        _ => text.name,
    };
    let Some((lines, font)) = lay_out(name, place, size) else {
        return;
    };
    let (room, height, (cx, cy)) = (place.room, place.height, place.centre);
    let rows = lines.len() as f64;
    let figure_font = font * size.figure;
    let figure_width = text_width(&text.figure, figure_font);
    let show_figure = figure_width <= room && height >= (rows * LINE + 1.45) * font;
    let block_width = lines
        .iter()
        .map(|line| text_width(line, font))
        .fold(if show_figure { figure_width } else { 0.0 }, f64::max);
    // Keep the whole label inside the drawing.
    let half = block_width / 2.0 + 2.0;
    let x = cx.clamp(half.min(WIDTH / 2.0), (WIDTH - half).max(WIDTH / 2.0));
    let block_height = if show_figure {
        rows * LINE * font + figure_font
    } else {
        (rows - 1.0) * LINE * font + font
    };
    let top = (cy - block_height / 2.0).clamp(2.0, (map_height - block_height - 2.0).max(2.0));
    if text.on_dark {
        out.push_str("<g fill=\"#fff\" stroke=\"none\">");
    }
    for (row, line) in lines.iter().enumerate() {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" font-size=\"{}\" font-weight=\"600\">{}</text>",
            num(x),
            num(top + font * 0.85 + row as f64 * LINE * font),
            num(font),
            escape(line),
        );
    }
    if show_figure {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" font-size=\"{}\">{}</text>",
            num(x),
            num(top + rows * LINE * font + figure_font * 0.85),
            num(figure_font),
            escape(&text.figure),
        );
    }
    if text.on_dark {
        out.push_str("</g>");
    }
}

/// Line height of a label, in ems.
const LINE: f64 = 1.15;

/// A name on one line at the largest size that fits, else on two lines,
/// else nothing. Two lines break after a place word where one fits (a name
/// like "滨州市人民医院专属网格" becomes "滨州市人民医院" / "专属网格"), or
/// at a space, else in the middle of a Chinese name.
fn lay_out<'a>(name: &'a str, place: &LabelPlace, size: &LabelSize) -> Option<(Vec<&'a str>, f64)> {
    let font = place.font_for(name, size.name);
    if font >= size.min && place.height >= font {
        return Some((vec![name], font));
    }
    // The two lines broken at byte `at`, and their size, if both fit.
    let two_lines = |at: usize| {
        let (first, second) = (name[..at].trim_end(), name[at..].trim_start());
        if first.chars().count() < 2 || second.chars().count() < 2 {
            return None;
        }
        let font = place.font_for(first, size.name).min(place.font_for(second, size.name));
        (font >= size.min && place.height >= (1.0 + LINE) * font)
            .then(|| (vec![first, second], font))
    };
    const PLACE_WORDS: &str = "区院园村镇市县街道路里苑城楼 ";
    let after_place_word = name
        .char_indices()
        .skip(1)
        .filter(|&(at, _)| name[..at].chars().next_back().is_some_and(|c| PLACE_WORDS.contains(c)))
        .filter_map(|(at, _)| two_lines(at))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    // Mid-word only for longer names without Latin letters.
    let chars = name.chars().count();
    after_place_word.or_else(|| {
        if chars < 6 || name.chars().any(|c| c.is_ascii_alphabetic()) {
            return None;
        }
        name.char_indices().nth(chars.div_ceil(2)).and_then(|(at, _)| two_lines(at))
    })
}

/// The legend under the map, as HTML in the page's font: the measure's
/// name, then a colour swatch and a range per class. The swatches are tiny
/// SVGs, so the palette stays in this file and no style attribute is needed.
fn legend(
    out: &mut String,
    measure: Measure,
    breaks: &[i64],
    palette: &[&'static str; 5],
    tr: &Tr,
) {
    let classes = class_count(breaks);
    let _ = write!(
        out,
        "<div class=\"legend\"><p class=\"legend-title\">{}</p><ul class=\"legend-items\">",
        escape(&tr.t(measure.legend_key())),
    );
    for class in 0..classes {
        let (low, high) = class_range(class, breaks);
        let range = if low == high {
            measure.format(low)
        } else {
            format!("{}–{}", measure.format(low), measure.format(high))
        };
        let _ = write!(
            out,
            "<li><svg class=\"swatch\" viewBox=\"0 0 14 14\" width=\"14\" height=\"14\" aria-hidden=\"true\">\
             <rect x=\"0.5\" y=\"0.5\" width=\"13\" height=\"13\" fill=\"{}\" stroke=\"{OUTLINE}\"/></svg>\
             <span>{}</span></li>",
            class_colour(class, classes, palette),
            escape(&range),
        );
    }
    out.push_str("</ul></div>");
}

/// Areas without a boundary: still listed, and still links.
fn unmapped_list(
    out: &mut String,
    unmapped: &[(&AreaWithFigures, Vec<Vec<Point>>)],
    href: &dyn Fn(&AreaWithFigures) -> String,
    tr: &Tr,
) {
    const SHOWN: usize = 20;
    let _ = write!(
        out,
        "<div class=\"map-unmapped\"><p class=\"muted\">{}</p><ul class=\"inline-links\">",
        escape(&tr.t("map.no_boundary")),
    );
    for (area, _) in unmapped.iter().take(SHOWN) {
        let _ = write!(
            out,
            "<li><a href=\"{}\" data-area-id=\"{}\">{}</a></li>",
            escape(&href(area)),
            area.id,
            escape(&area.name),
        );
    }
    out.push_str("</ul>");
    if unmapped.len() > SHOWN {
        let more = tr.fill("map.more", &[("count", thousands((unmapped.len() - SHOWN) as i64))]);
        let _ = write!(out, "<p class=\"muted\">{}</p>", escape(&more));
    }
    out.push_str("</div>");
}

#[cfg(test)]
mod tests {
    use epigrid_domain::AreaKind;
    use epigrid_store::AreaFigures;
    use uuid::Uuid;

    use super::super::charts::assert_well_formed;
    use super::*;
    use crate::i18n::Lang;

    const ZH: Tr = Tr(Lang::ZhCn);
    const EN: Tr = Tr(Lang::En);

    fn href(area: &AreaWithFigures) -> String {
        format!("/?area={}&measure=x", area.id)
    }

    /// The map's HTML, checked to be well formed (as one fragment).
    fn map_html(areas: &[AreaWithFigures], measure: Measure, tr: &Tr) -> String {
        let html = render_map(areas, measure, &href, tr);
        assert_well_formed(&format!("<div>{html}</div>"));
        html
    }

    /// The `<svg>` element alone.
    fn svg_of(html: &str) -> &str {
        let start = html.find("<svg class=\"map-svg\"").expect("a map");
        &html[start..start + html[start..].find("</svg>").unwrap() + 6]
    }

    /// The legend's `<div>`.
    fn legend_of(html: &str) -> &str {
        let start = html.find("<div class=\"legend\">").expect("a legend");
        &html[start..start + html[start..].find("</div>").unwrap()]
    }

    /// A square community `size` degrees wide with its south-west corner at
    /// (lon, lat).
    fn square(
        name: &str,
        lon: f64,
        lat: f64,
        size: f64,
        residents: i64,
        key_group: i64,
    ) -> AreaWithFigures {
        let id = Uuid::now_v7();
        AreaWithFigures {
            id,
            kind: AreaKind::Community,
            name: name.into(),
            code: None,
            rings: vec![vec![
                (lon, lat),
                (lon + size, lat),
                (lon + size, lat + size),
                (lon, lat + size),
                (lon, lat),
            ]],
            figures: AreaFigures {
                area_id: id,
                residents,
                households: residents / 3,
                floating: 0,
                key_group,
            },
            tasks: Default::default(),
            reported: 0,
            flagged_today: 0,
            arrivals_today: 0,
            help_today: 0,
        }
    }

    fn view_box(svg: &str) -> (f64, f64) {
        let v = svg.split("viewBox=\"").nth(1).unwrap();
        let parts: Vec<f64> =
            v[..v.find('"').unwrap()].split(' ').map(|n| n.parse().unwrap()).collect();
        (parts[2], parts[3])
    }

    fn attr<'a>(element: &'a str, name: &str) -> &'a str {
        let v = element.split(&format!(" {name}=\"")).nth(1).unwrap();
        &v[..v.find('"').unwrap()]
    }

    /// The `<a>` element of an area, up to its `</a>`.
    fn area_element<'a>(html: &'a str, area: &AreaWithFigures) -> &'a str {
        let start = html.find(&format!("data-area-id=\"{}\"", area.id)).unwrap();
        &html[start..start + html[start..].find("</a>").unwrap()]
    }

    /// One set of labels, `narrow` or `wide`.
    fn labels<'a>(svg: &'a str, set: &str) -> Option<&'a str> {
        let start = svg.find(&format!("class=\"map-labels map-labels-{set}\""))?;
        let body = &svg[start..];
        Some(&body[..body.find("</g><g class=\"map-labels").or(body.find("</svg>")).unwrap()])
    }

    /// The texts of a set of labels: (text, font size, x).
    fn label_texts(labels: &str) -> Vec<(String, f64, f64)> {
        labels
            .split("<text")
            .skip(1)
            .map(|t| {
                let content = &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()];
                (
                    content.to_owned(),
                    attr(t, "font-size").parse().unwrap(),
                    attr(t, "x").parse().unwrap(),
                )
            })
            .collect()
    }

    fn path_points(svg: &str) -> Vec<(f64, f64)> {
        svg.split(" d=\"")
            .skip(1)
            .flat_map(|d| {
                d[..d.find('"').unwrap()]
                    .split(['M', 'L', 'Z'])
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (x, y) = p.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn town() -> Vec<AreaWithFigures> {
        vec![
            square("黄河社区", 116.30, 39.90, 0.01, 1234, 228),
            square("长江社区", 116.31, 39.90, 0.01, 5678, 300),
            square("珠江社区", 116.30, 39.91, 0.01, 300, 90),
            square("淮河社区", 116.31, 39.91, 0.01, 2500, 100),
        ]
    }

    #[test]
    fn every_area_with_a_boundary_is_a_link_with_its_figure() {
        let areas = town();
        let html = map_html(&areas, Measure::Population, &ZH);
        let svg = svg_of(&html);
        assert!(html.starts_with("<svg class=\"map-svg\""));
        assert!(!svg.contains("role=\"img\""), "links inside must stay reachable");
        assert!(
            svg.contains("aria-labelledby=\"map-svg-title\"")
                && svg.contains("<title id=\"map-svg-title\">")
        );
        let root = &svg[..svg.find('>').unwrap()];
        assert!(!root.contains(" width=") && !root.contains(" height="), "scales with CSS");
        assert_eq!(svg.matches("<a class=\"map-area\"").count(), areas.len());
        for area in &areas {
            let element = area_element(svg, area);
            assert_eq!(
                attr(element, "aria-label"),
                format!("{}：{} 人", area.name, thousands(area.figures.residents))
            );
            assert!(svg.contains(&format!("href=\"/?area={}&amp;measure=x\"", area.id)));
        }
        assert!(svg.contains("<title>黄河社区：1,234 人</title>"));
        assert!(svg.contains(">黄河社区</text>"), "name label");
        // The legend is HTML after the drawing, in the page's font size.
        assert!(!svg.contains("人口（人）") && !svg.contains("legend"));
        assert!(legend_of(&html).contains("<p class=\"legend-title\">人口（人）</p>"));
        assert!(html.find("</svg>").unwrap() < html.find("<div class=\"legend\">").unwrap());
    }

    #[test]
    fn the_key_group_measure_shows_shares() {
        let areas = town();
        let html = map_html(&areas, Measure::KeyGroupShare, &EN);
        assert!(
            html.contains(
                "<title>黄河社区: key-group share 18.5% (228 of 1,234 residents)</title>"
            )
        );
        assert!(legend_of(&html).contains(">Key-group share (%)<"));
        assert!(svg_of(&html).contains("#a63603"), "the darkest orange for the highest share");
        assert!(!html.contains("#08519c"), "no population blues");
    }

    #[test]
    fn projection_keeps_every_point_inside_the_view_box_and_the_shape_square() {
        for areas in [
            town(),
            // Tall and narrow, far from the equator.
            vec![square("a", 87.0, 43.0, 0.001, 1, 0), square("b", 87.0, 44.0, 0.001, 2, 0)],
            // Wide and flat.
            vec![square("a", 100.0, 20.0, 0.001, 1, 0), square("b", 101.0, 20.0, 0.001, 2, 0)],
        ] {
            let html = map_html(&areas, Measure::Population, &ZH);
            let svg = svg_of(&html);
            let (w, h) = view_box(svg);
            let points = path_points(svg);
            assert_eq!(points.len(), areas.len() * 5);
            for (x, y) in points {
                assert!(
                    (0.0..=w).contains(&x) && (0.0..=h).contains(&y),
                    "({x},{y}) outside {w}x{h}"
                );
            }
        }
        // A square of 0.01° at 39.9° N is cos(39.9°) as wide as it is tall.
        let areas = vec![square("一", 116.30, 39.90, 0.01, 1, 0)];
        let html = map_html(&areas, Measure::Population, &ZH);
        let points = path_points(svg_of(&html));
        let width = points[1].0 - points[0].0;
        let height = points[0].1 - points[2].1;
        assert!(height > 0.0, "north is up");
        assert!((width / height - 39.9f64.to_radians().cos()).abs() < 0.01, "{width} / {height}");
        assert!(height <= MAX_MAP_HEIGHT);
    }

    #[test]
    fn class_breaks_cover_the_minimum_and_maximum() {
        let values = [300, 1234, 2500, 5678, 10, 99, 4000, 750];
        let breaks = class_breaks(&values);
        assert_eq!(breaks.first(), Some(&10));
        assert_eq!(breaks.last(), Some(&5678));
        assert!(breaks.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(class_count(&breaks), 5);
        assert_eq!(class_of(10, &breaks), 0);
        assert_eq!(class_of(5678, &breaks), 4);
        for v in values {
            let (low, high) = class_range(class_of(v, &breaks), &breaks);
            assert!(low <= v && v <= high, "{v} in {low}–{high}");
        }
        assert_eq!(class_breaks(&[7, 7, 7]), [7]);
        assert_eq!(class_count(&[7]), 1);
        assert_eq!(class_range(0, &[7]), (7, 7));
        assert_eq!(class_breaks(&[1, 2]), [1, 2]);
        assert_eq!(class_count(&[1, 2]), 1);
        assert_eq!(class_range(0, &[1, 2]), (1, 2));
        assert_eq!(class_range(1, &[1, 5, 9]), (5, 9), "the last class holds the maximum");
        assert_eq!(class_range(0, &[1, 2, 9]), (1, 1));
        let palette = Measure::Population.palette();
        assert_eq!(class_colour(0, 2, &palette), palette[0]);
        assert_eq!(class_colour(1, 2, &palette), palette[4]);
        assert_eq!(class_colour(0, 1, &palette), palette[2]);

        let legend = render_map(&town(), Measure::Population, &href, &ZH);
        let legend = legend_of(&legend);
        assert!(legend.contains("<span>300–1,233</span>"), "minimum in the legend: {legend}");
        assert!(legend.contains("<span>2,500–5,678</span>"), "maximum in the legend: {legend}");
    }

    /// The legend's ranges, in order.
    fn ranges(html: &str) -> Vec<String> {
        legend_of(html)
            .split("<span>")
            .skip(1)
            .map(|s| s[..s.find("</span>").unwrap()].to_owned())
            .collect()
    }

    #[test]
    fn legend_ranges_do_not_overlap() {
        // The demo sub-district's eight communities.
        let areas: Vec<_> = [182, 200, 252, 264, 303, 205, 282, 312]
            .into_iter()
            .enumerate()
            .map(|(i, n)| {
                let (col, row) = ((i % 4) as f64, (i / 4) as f64);
                square(&format!("社区{i}"), 116.0 + col * 0.01, 39.9 + row * 0.01, 0.01, n, n / 8)
            })
            .collect();
        let html = map_html(&areas, Measure::Population, &ZH);
        assert_eq!(ranges(&html), ["182–199", "200–204", "205–263", "264–281", "282–312"]);
        // Each area's colour is the swatch of the range holding its figure.
        let svg = svg_of(&html);
        let legend = legend_of(&html);
        let swatches: Vec<&str> = legend.split("<rect").skip(1).map(|r| attr(r, "fill")).collect();
        for area in &areas {
            let n = area.figures.residents;
            let class = ranges(&html)
                .iter()
                .position(|r| {
                    let (low, high) = r.split_once('–').unwrap();
                    (low.parse().unwrap()..=high.parse().unwrap()).contains(&n)
                })
                .unwrap();
            assert_eq!(attr(area_element(svg, area), "fill"), swatches[class], "{n}");
        }

        // Shares: whole tenths of a percent, the same on the map, in the
        // hover text and in the legend.
        let shares: Vec<_> =
            [(1000, 50), (1000, 102), (1000, 150), (999, 201), (1000, 290), (1000, 353)]
                .into_iter()
                .enumerate()
                .map(|(i, (n, k))| {
                    square(&format!("网格{i}"), 116.0 + i as f64 * 0.01, 39.9, 0.01, n, k)
                })
                .collect();
        let html = map_html(&shares, Measure::KeyGroupShare, &ZH);
        assert_eq!(
            ranges(&html),
            ["5.0%–10.1%", "10.2%–14.9%", "15.0%–20.0%", "20.1%–28.9%", "29.0%–35.3%"]
        );
        assert!(html.contains("网格3：重点人群占比 20.1%（201 / 999 人）"), "201/999 = 20.12%");
    }

    #[test]
    fn labels_come_in_a_phone_and_a_desktop_size() {
        let areas = town();
        let html = map_html(&areas, Measure::Population, &ZH);
        let svg = svg_of(&html);
        let narrow = labels(svg, "narrow").unwrap();
        let wide = labels(svg, "wide").unwrap();
        assert!(!narrow[..narrow.find('>').unwrap()].contains("display="), "shown by default");
        assert!(wide[..wide.find('>').unwrap()].contains(" display=\"none\""), "shown by CSS");
        for (set, size, px_per_unit) in
            [(narrow, NARROW, 310.0 / 600.0), (wide, WIDE, 736.0 / 600.0)]
        {
            let texts = label_texts(set);
            assert_eq!(texts.iter().filter(|t| t.0.ends_with("社区")).count(), 4, "{set}");
            for (text, font, _) in texts {
                let px = font * px_per_unit;
                assert!((11.0..=16.0).contains(&px), "{text} at {px} px in {}", size.class);
            }
        }
        // Narrow labels read at 12–14 px on a 360 px phone.
        let name_px = NARROW.name * 310.0 / 600.0;
        assert!((12.0..=14.0).contains(&name_px), "{name_px}");
        // White on the dark classes, without the outline that blurs it.
        let dark = narrow.split("<g fill=\"#fff\"").nth(1).expect("a label on a dark fill");
        assert!(dark.starts_with(" stroke=\"none\">"), "{dark}");
        assert!(dark.contains(">长江社区</text>"), "5,678 residents: darkest");
    }

    #[test]
    fn long_names_are_shortened_or_left_out() {
        let names = ["黄河社区第1网格", "黄河社区第2网格", "滨州市人民医院专属网格"];
        assert_eq!(short_name(names[0], &names).as_deref(), Some("第1网格"));
        assert_eq!(short_name(names[2], &names), None, "nothing shared");
        assert_eq!(short_name("Grid 1", &["Grid 1", "Grid 2"]), None, "too little left");
        assert_eq!(
            short_name("Lake North", &["Lake North", "Lake South"]).as_deref(),
            Some("North")
        );

        // Grids side by side. Three: on a phone the grids' full names do not
        // fit and their short ones do, the hospital's is left out; on a
        // desktop every full name fits.
        let row = |names: &[&str]| -> Vec<AreaWithFigures> {
            names
                .iter()
                .enumerate()
                .map(|(i, name)| square(name, 116.0 + i as f64 * 0.002, 39.9, 0.002, 10, 1))
                .collect()
        };
        let texts = |svg: &str, set: &str| -> Vec<String> {
            label_texts(labels(svg, set).unwrap()).into_iter().map(|t| t.0).collect()
        };
        let areas = row(&["黄河社区第1网格", "黄河社区第2网格", "滨州市人民医院专属网格"]);
        let html = map_html(&areas, Measure::Population, &ZH);
        let svg = svg_of(&html);
        assert_eq!(
            texts(svg, "narrow"),
            ["第1网格", "10", "第2网格", "10", "滨州市人民医院", "专属网格", "10"]
        );
        assert_eq!(
            texts(svg, "wide"),
            ["黄河社区第1网格", "10", "黄河社区第2网格", "10", "滨州市人民医院专属网格", "10"]
        );
        // Six: short names on the desktop too, and then for every grid,
        // not only for those whose full name would not fit.
        let mut six = row(&[
            "黄河社区第1网格",
            "黄河社区第2网格",
            "黄河社区第3网格",
            "黄河社区第4网格",
            "黄河社区第5网格",
            "滨州市人民医院专属网格",
        ]);
        six[0].rings[0][1].0 += 0.002; // wide enough for its full name
        let html = map_html(&six, Measure::Population, &ZH);
        for set in ["narrow", "wide"] {
            let names = texts(svg_of(&html), set);
            assert!(names.contains(&"第1网格".to_owned()), "{set}: {names:?}");
            assert!(!names.iter().any(|t| t.starts_with("黄河")), "{set}: {names:?}");
        }
        for area in &areas {
            assert!(
                svg.contains(&format!("<title>{}：10 人</title>", area.name)),
                "full name on hover"
            );
        }
    }

    #[test]
    fn names_too_long_for_one_line_take_two() {
        let place = LabelPlace { centre: (300.0, 300.0), room: 180.0, height: 200.0 };
        let lines = |name| lay_out(name, &place, &NARROW).map(|(lines, _)| lines);
        assert_eq!(lines("第1网格"), Some(vec!["第1网格"]));
        assert_eq!(lines("滨州市人民医院专属网格"), Some(vec!["滨州市人民医院", "专属网格"]));
        assert_eq!(lines("中心广场周边商户"), Some(vec!["中心广场周边商户"]), "shrunk a little");
        assert_eq!(
            lines("阳光花园小区第十二网格"),
            Some(vec!["阳光花园小区", "第十二网格"]),
            "the more even of two breaks"
        );
        assert_eq!(
            lines("中心广场周边商户网格"),
            Some(vec!["中心广场周", "边商户网格"]),
            "no place word: the middle"
        );
        assert_eq!(lines("Riverside North Grid"), Some(vec!["Riverside", "North Grid"]));
        assert_eq!(lines("Riversidenorthgrid"), None, "no break inside a word");
        assert_eq!(lines("中心广场周边商户一二三四五六七八九十"), None, "too long even so");
        let low = LabelPlace { height: 40.0, ..place };
        assert_eq!(lay_out("滨州市人民医院专属网格", &low, &NARROW), None, "no room for two lines");
        let (_, font) = lay_out("滨州市人民医院专属网格", &place, &NARROW).unwrap();
        assert!((NARROW.min..=NARROW.name).contains(&font));
    }

    #[test]
    fn the_smallest_and_largest_areas_differ_in_colour() {
        let areas = town();
        let html = map_html(&areas, Measure::Population, &ZH);
        let fill = |a: &AreaWithFigures| attr(area_element(&html, a), "fill").to_owned();
        let palette = Measure::Population.palette();
        assert_eq!(fill(&areas[2]), palette[0], "300 residents: lightest");
        assert_eq!(fill(&areas[1]), palette[4], "5,678 residents: darkest");
    }

    #[test]
    fn names_from_users_are_escaped() {
        let mut areas = town();
        areas[0].name = "<script>alert(\"x\")</script> & 'co'".into();
        let mut missing = square("A&B \"无边界\"", 0.0, 0.0, 1.0, 5, 0);
        missing.rings.clear();
        areas.push(missing);
        let html = map_html(&areas, Measure::Population, &ZH);
        assert!(!html.contains("<script>") && !html.contains("A&B") && !html.contains("& 'co'"));
        assert!(
            html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;co&#39;")
        );
        assert!(html.contains("A&amp;B &quot;无边界&quot;"));
    }

    #[test]
    fn areas_without_a_boundary_are_listed_as_links() {
        let mut areas = town();
        let mut missing = square("无边界社区", 0.0, 0.0, 1.0, 5, 0);
        missing.rings = vec![vec![(f64::NAN, 1.0), (1.0, 1.0)]]; // not drawable
        areas.push(missing.clone());
        let html = map_html(&areas, Measure::Population, &ZH);
        assert_eq!(html.matches("<a class=\"map-area\"").count(), 4);
        let list = &html[html.find("<div class=\"map-unmapped\">").unwrap()..];
        assert!(list.contains("尚无边界"));
        assert!(area_element(list, &missing).ends_with(">无边界社区"));
        assert!(list.contains(&format!("href=\"/?area={}&amp;measure=x\"", missing.id)));
        assert!(!svg_of(&html).contains("无边界社区"));

        // Nothing drawable at all: only the list.
        let html = map_html(&[missing], Measure::Population, &EN);
        assert!(!html.contains("<svg") && !html.contains("legend"));
        assert!(html.starts_with("<div class=\"map-unmapped\">") && html.contains("No boundary"));
    }

    #[test]
    fn many_areas_have_no_labels_but_keep_their_titles() {
        let areas: Vec<_> = (0..40)
            .map(|i| {
                square(
                    &format!("网格{i}"),
                    116.0 + (i % 8) as f64 * 0.01,
                    39.9 + (i / 8) as f64 * 0.01,
                    0.01,
                    i,
                    0,
                )
            })
            .collect();
        let html = map_html(&areas, Measure::Population, &ZH);
        assert_eq!(html.matches("<a class=\"map-area\"").count(), 40);
        assert!(!html.contains("map-labels"));
        assert!(html.contains("<title>网格39：39 人</title>"));
        // Few areas: labels drawn, within the drawing.
        let html = map_html(&areas[..12], Measure::Population, &ZH);
        let svg = svg_of(&html);
        let (w, _) = view_box(svg);
        // Eight columns: on a phone "网格10" and "网格11" are too wide.
        for (size, shown) in [(NARROW, 10), (WIDE, 12)] {
            let set = labels(svg, size.class.trim_start_matches("map-labels-")).unwrap();
            let texts = label_texts(set);
            assert_eq!(texts.iter().filter(|t| t.0.starts_with("网格")).count(), shown);
            for (text, font, x) in texts {
                assert!((0.0..=w).contains(&x), "{text} at x = {x}");
                assert!((size.min..=size.name).contains(&font), "{text} at {font}");
            }
        }
    }

    #[test]
    fn empty_input_says_there_is_nothing_to_show() {
        let html = render_map(&[], Measure::Population, &href, &ZH);
        assert!(html.starts_with("<p") && html.contains("暂无"));
        assert!(render_map(&[], Measure::KeyGroupShare, &href, &EN).contains("No areas"));
    }

    #[test]
    fn centroid_of_a_square_is_its_centre() {
        let (area, (x, y)) = centroid(&[(0.0, 0.0), (4.0, 0.0), (4.0, 2.0), (0.0, 2.0)]);
        assert_eq!(area.abs(), 8.0);
        assert!((x - 2.0).abs() < 1e-9 && (y - 1.0).abs() < 1e-9);
        let (area, (x, _)) = centroid(&[(0.0, 0.0), (1.0, 0.0), (2.0, 0.0)]);
        assert_eq!((area, x), (0.0, 1.0), "degenerate ring: the mean");
    }

    #[test]
    fn task_measures_colour_by_open_or_overdue_tasks_and_say_so() {
        let mut calm = square("第一网格", 117.0, 37.0, 0.01, 100, 0);
        calm.tasks.open = 2;
        let mut late = square("第二网格", 117.01, 37.0, 0.01, 100, 0);
        late.tasks = epigrid_service::dashboard::TaskCounts {
            open: 7,
            overdue: 5,
            closed_today: 1,
            ..Default::default()
        };
        let mut some = square("第三网格", 117.02, 37.0, 0.01, 100, 0);
        some.tasks.open = 3;
        some.tasks.overdue = 2;
        let areas = [calm.clone(), late.clone(), some];
        let html = map_html(&areas, Measure::OverdueTasks, &ZH);
        assert!(html.contains("data-measure=\"overdue_tasks\""), "{html}");
        assert!(html.contains("第二网格：未办结 7 件，超时 5 件，今日结案 1 件"), "{html}");
        assert!(legend_of(&html).contains("超时任务（件）"), "{html}");
        let fill = |area| attr(area_element(&html, area), "fill").to_owned();
        assert_ne!(fill(&calm), fill(&late), "the late grid stands out");
        assert_eq!(fill(&late), "#a50f15", "the darkest red for the most overdue");
        assert_eq!(fill(&calm), "#fee5d9", "the lightest for none");
        let open = map_html(&areas, Measure::OpenTasks, &EN);
        assert!(open.contains("第一网格: 2 open, 0 overdue, 0 closed today"), "{open}");
        assert_eq!(Measure::parse(Some("open_tasks")), Measure::OpenTasks);
        assert!(Measure::OverdueTasks.is_tasks() && !Measure::Population.is_tasks());
    }

    #[test]
    fn the_fever_measure_colours_where_people_fell_ill_today() {
        let mut well = square("第一网格", 117.0, 37.0, 0.01, 100, 0);
        well.reported = 60;
        let mut ill = square("第二网格", 117.01, 37.0, 0.01, 100, 0);
        (ill.reported, ill.flagged_today) = (80, 4);
        let mut one = square("第三网格", 117.02, 37.0, 0.01, 100, 0);
        one.flagged_today = 1;
        let html = map_html(&[well.clone(), ill.clone(), one], Measure::FlaggedToday, &ZH);
        assert!(html.contains("data-measure=\"flagged\""), "{html}");
        assert!(html.contains("第二网格：今日发热或有症状 4 人次（已填报 80 人）"), "{html}");
        assert!(legend_of(&html).contains("今日发热或有症状（人次）"), "{html}");
        let fill = |area| attr(area_element(&html, area), "fill").to_owned();
        assert_eq!(fill(&ill), "#a50f15", "the darkest red where the fevers are");
        assert_eq!(fill(&well), "#fee5d9", "the lightest for none");
        assert_eq!(Measure::parse(Some("flagged")), Measure::FlaggedToday);
        assert!(!Measure::FlaggedToday.is_tasks());
    }
}
