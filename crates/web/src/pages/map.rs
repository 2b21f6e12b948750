//! The grid map: communities or grids drawn as SVG from their GeoJSON
//! boundaries, coloured by a measure, each a link to drill down.
//!
//! Longitude and latitude are projected equirectangularly, longitude scaled
//! by the cosine of the middle latitude so that a sub-district's shapes keep
//! their proportions, north up. The map is 600 units wide with a `viewBox`
//! and no fixed size; the legend and the areas without a boundary are drawn
//! below it, inside the same SVG.

use std::fmt::Write as _;

use epigrid_service::dashboard::AreaWithFigures;

use super::Tr;
use super::charts::{
    FONT_FAMILY, INK, MUTED, WIDTH, escape, fit_text, num, percent, text_width, thousands,
};

/// What the map colours areas by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Population,
    KeyGroupShare,
}

impl Measure {
    pub fn parse(text: Option<&str>) -> Measure {
        match text {
            Some("key_group") => Measure::KeyGroupShare,
            _ => Measure::Population,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Measure::Population => "population",
            Measure::KeyGroupShare => "key_group",
        }
    }

    fn value(self, area: &AreaWithFigures) -> f64 {
        match self {
            Measure::Population => area.figures.residents as f64,
            Measure::KeyGroupShare => area.key_group_share(),
        }
    }

    fn format(self, value: f64) -> String {
        match self {
            Measure::Population => thousands(value.round() as i64),
            Measure::KeyGroupShare => percent(value),
        }
    }

    /// Light to dark: ColorBrewer's sequential Blues and Oranges.
    fn palette(self) -> [&'static str; 5] {
        match self {
            Measure::Population => ["#eff3ff", "#bdd7e7", "#6baed6", "#3182bd", "#08519c"],
            Measure::KeyGroupShare => ["#feedde", "#fdbe85", "#fd8d3c", "#e6550d", "#a63603"],
        }
    }

    fn name_key(self) -> &'static str {
        match self {
            Measure::Population => "map.population",
            Measure::KeyGroupShare => "map.key_group_share",
        }
    }

    fn legend_key(self) -> &'static str {
        match self {
            Measure::Population => "map.legend.population",
            Measure::KeyGroupShare => "map.legend.key_group",
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
                    ("share", percent(area.key_group_share())),
                    ("count", thousands(figures.key_group)),
                    ("residents", thousands(figures.residents)),
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
const LINK: &str = "#0b5cad";
const MIN_LABEL_FONT: f64 = 10.0;
/// More areas than this and the names are left to the hover text.
const MAX_LABELLED_AREAS: usize = 30;

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
fn class_breaks(values: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return Vec::new();
    }
    let last = sorted.len() - 1;
    let mut breaks: Vec<f64> = (0..=CLASSES).map(|k| sorted[k * last / CLASSES]).collect();
    breaks.dedup();
    breaks
}

fn class_count(breaks: &[f64]) -> usize {
    breaks.len().saturating_sub(1).max(1)
}

/// The class of a value: `breaks[i] <= value < breaks[i + 1]`, the last
/// class closed at the top.
fn class_of(value: f64, breaks: &[f64]) -> usize {
    let classes = class_count(breaks);
    (0..classes).rev().find(|&i| value >= breaks[i]).unwrap_or(0)
}

/// Colours spread over the palette when there are fewer than five classes.
fn class_colour(class: usize, classes: usize, palette: &[&'static str; 5]) -> &'static str {
    if classes <= 1 {
        return palette[2];
    }
    palette[(class * (CLASSES - 1) + (classes - 1) / 2) / (classes - 1)]
}

/// The map as an inline `<svg>`; `href` gives each area's drill-down link.
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
    let projection = Projection::fit(mapped.iter().flat_map(|(_, rings)| rings.iter().flatten()));
    let values: Vec<f64> = mapped.iter().map(|(a, _)| measure.value(a)).collect();
    let breaks = class_breaks(&values);
    let classes = class_count(&breaks);
    let palette = measure.palette();

    let mut shapes = String::new();
    let mut labels = String::new();
    let mut y = 0.0;
    if let Some(projection) = projection {
        let base_font = match mapped.len() {
            0..=10 => 20.0,
            11..=20 => 16.0,
            n if n <= MAX_LABELLED_AREAS => 13.0,
            _ => 0.0,
        };
        for (area, rings) in &mapped {
            let projected: Vec<Vec<Point>> =
                rings.iter().map(|r| r.iter().map(|&p| projection.apply(p)).collect()).collect();
            let value = measure.value(area);
            let colour = class_colour(class_of(value, &breaks), classes, &palette);
            let dark = palette[3..].contains(&colour).then_some(palette[4]);
            let title = escape(&measure.describe(area, tr));
            let _ = write!(
                shapes,
                "<a class=\"map-area\" href=\"{}\" data-area-id=\"{}\" aria-label=\"{title}\"><title>{title}</title>\
                 <path d=\"{}\" fill=\"{colour}\" stroke=\"{OUTLINE}\" stroke-width=\"1\" stroke-linejoin=\"round\"/></a>",
                escape(&href(area)),
                area.id,
                path_data(&projected),
            );
            if base_font > 0.0 {
                label(
                    &mut labels,
                    &area.name,
                    &measure.format(value),
                    &projected,
                    base_font,
                    projection.height,
                    dark,
                );
            }
        }
        y = projection.height;
        y = legend(&mut shapes, y, measure, &breaks, &palette, tr);
    }
    if !unmapped.is_empty() {
        y = unmapped_list(&mut shapes, y, &unmapped, href, tr);
    }
    let height = y + 8.0;
    let title = tr.fill("map.aria", &[("measure", tr.t(measure.name_key()))]);
    // No role="img": the map holds links, which must stay reachable.
    let mut out = format!(
        "<svg class=\"map-svg\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" \
         aria-labelledby=\"map-svg-title\" font-family=\"{FONT_FAMILY}\" data-measure=\"{}\">\
         <title id=\"map-svg-title\">{}</title>",
        num(WIDTH),
        num(height),
        measure.as_str(),
        escape(&title),
    );
    out.push_str(&shapes);
    if !labels.is_empty() {
        // Drawn over every shape; clicks fall through to the area below.
        let _ = write!(
            out,
            "<g class=\"map-labels\" aria-hidden=\"true\" pointer-events=\"none\" text-anchor=\"middle\" \
             fill=\"{INK}\" stroke=\"#fff\" stroke-width=\"3\" stroke-linejoin=\"round\" paint-order=\"stroke\">{labels}</g>"
        );
    }
    out.push_str("</svg>");
    out
}

/// The name (and, where there is room, the figure) of an area at the
/// centroid of its largest ring, shrunk to the ring's width or left out.
fn label(
    out: &mut String,
    name: &str,
    figure: &str,
    rings: &[Vec<Point>],
    base_font: f64,
    map_height: f64,
    dark_fill: Option<&str>,
) {
    let Some(largest) = rings
        .iter()
        .map(|ring| (centroid(ring), ring))
        .max_by(|a, b| a.0.0.abs().total_cmp(&b.0.0.abs()))
    else {
        return;
    };
    let ((_, (cx, cy)), ring) = largest;
    let (min_x, max_x) = ring
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    let (min_y, max_y) = ring
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let room = (max_x - min_x) * 0.9;
    let name_em = text_width(name, 1.0).max(0.5);
    let font = base_font.min(room / name_em);
    if font < MIN_LABEL_FONT || (max_y - min_y) < font {
        return;
    }
    let figure_font = font * 0.85;
    let show_figure = text_width(figure, figure_font) <= room && (max_y - min_y) >= 2.6 * font;
    let block_width =
        (name_em * font).max(if show_figure { text_width(figure, figure_font) } else { 0.0 });
    // Keep the whole label inside the drawing.
    let half = block_width / 2.0 + 2.0;
    let x = cx.clamp(half.min(WIDTH / 2.0), (WIDTH - half).max(WIDTH / 2.0));
    let block_height = if show_figure { font * 2.1 } else { font };
    let top = (cy - block_height / 2.0).clamp(2.0, (map_height - block_height - 2.0).max(2.0));
    // On the dark classes: white text with a dark halo instead.
    if let Some(halo) = dark_fill {
        let _ = write!(out, "<g fill=\"#fff\" stroke=\"{halo}\">");
    }
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" font-size=\"{}\">{}</text>",
        num(x),
        num(top + font * 0.85),
        num(font),
        escape(name),
    );
    if show_figure {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" font-size=\"{}\">{}</text>",
            num(x),
            num(top + font * 1.15 + figure_font * 0.85),
            num(figure_font),
            escape(figure),
        );
    }
    if dark_fill.is_some() {
        out.push_str("</g>");
    }
}

/// The legend under the map: the measure's name, then a colour box and a
/// value range per class, in two columns. Returns the y below it.
fn legend(
    out: &mut String,
    top: f64,
    measure: Measure,
    breaks: &[f64],
    palette: &[&'static str; 5],
    tr: &Tr,
) -> f64 {
    let classes = class_count(breaks);
    let _ = write!(
        out,
        "<g class=\"map-legend\"><text x=\"{MARGIN}\" y=\"{}\" font-size=\"20\" font-weight=\"600\" fill=\"{INK}\">{}</text>",
        num(top + 24.0),
        escape(&tr.t(measure.legend_key())),
    );
    let rows_top = top + 36.0;
    let rows = classes.div_ceil(2);
    for class in 0..classes {
        let x = MARGIN + (class / rows) as f64 * (WIDTH / 2.0);
        let y = rows_top + (class % rows) as f64 * 32.0;
        let low = breaks.get(class).copied().unwrap_or_default();
        let high = breaks.get(class + 1).copied().unwrap_or(low);
        let range = if measure.format(low) == measure.format(high) {
            measure.format(low)
        } else {
            format!("{} – {}", measure.format(low), measure.format(high))
        };
        let _ = write!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"24\" height=\"24\" fill=\"{}\" stroke=\"{OUTLINE}\" stroke-width=\"1\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"18\" fill=\"{INK}\">{}</text>",
            num(x),
            num(y),
            class_colour(class, classes, palette),
            num(x + 34.0),
            num(y + 19.0),
            escape(&range),
        );
    }
    out.push_str("</g>");
    rows_top + rows as f64 * 32.0
}

/// Areas without a boundary: still listed, and still links.
fn unmapped_list(
    out: &mut String,
    top: f64,
    unmapped: &[(&AreaWithFigures, Vec<Vec<Point>>)],
    href: &dyn Fn(&AreaWithFigures) -> String,
    tr: &Tr,
) -> f64 {
    const SHOWN: usize = 20;
    let _ = write!(
        out,
        "<g class=\"map-unmapped\"><text x=\"{MARGIN}\" y=\"{}\" font-size=\"18\" fill=\"{MUTED}\">{}</text>",
        num(top + 26.0),
        escape(&tr.t("map.no_boundary")),
    );
    let rows_top = top + 40.0;
    let shown = unmapped.len().min(SHOWN);
    let rows = shown.div_ceil(2);
    let column = WIDTH / 2.0;
    for (i, (area, _)) in unmapped.iter().take(SHOWN).enumerate() {
        let x = MARGIN + (i / rows) as f64 * column;
        let y = rows_top + (i % rows) as f64 * 28.0 + 18.0;
        let name = fit_text(&area.name, column - 2.0 * MARGIN, 18.0);
        let _ = write!(
            out,
            "<a href=\"{}\" data-area-id=\"{}\"><title>{}</title><text x=\"{}\" y=\"{}\" font-size=\"18\" fill=\"{LINK}\" \
             text-decoration=\"underline\">{}</text></a>",
            escape(&href(area)),
            area.id,
            escape(&area.name),
            num(x),
            num(y),
            escape(&name),
        );
    }
    let mut bottom = rows_top + rows as f64 * 28.0;
    if unmapped.len() > SHOWN {
        let more = tr.fill("map.more", &[("count", thousands((unmapped.len() - SHOWN) as i64))]);
        let _ = write!(
            out,
            "<text x=\"{MARGIN}\" y=\"{}\" font-size=\"18\" fill=\"{MUTED}\">{}</text>",
            num(bottom + 18.0),
            escape(&more),
        );
        bottom += 28.0;
    }
    out.push_str("</g>");
    bottom
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

    /// The `<a class="map-area">` element of an area.
    fn area_element<'a>(svg: &'a str, area: &AreaWithFigures) -> &'a str {
        let start = svg.find(&format!("data-area-id=\"{}\"", area.id)).unwrap();
        &svg[start..start + svg[start..].find("</a>").unwrap()]
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
        let svg = render_map(&areas, Measure::Population, &href, &ZH);
        assert_well_formed(&svg);
        assert!(svg.starts_with("<svg class=\"map-svg\"") && svg.ends_with("</svg>"));
        assert!(!svg.contains("role=\"img\""), "links inside must stay reachable");
        assert!(
            svg.contains("aria-labelledby=\"map-svg-title\"")
                && svg.contains("<title id=\"map-svg-title\">")
        );
        let root = &svg[..svg.find('>').unwrap()];
        assert!(!root.contains(" width=") && !root.contains(" height="), "scales with CSS");
        assert_eq!(svg.matches("<a class=\"map-area\"").count(), areas.len());
        for area in &areas {
            let element = area_element(&svg, area);
            assert_eq!(
                attr(element, "aria-label"),
                format!("{}：{} 人", area.name, thousands(area.figures.residents))
            );
            assert!(svg.contains(&format!("href=\"/?area={}&amp;measure=x\"", area.id)));
        }
        assert!(svg.contains("<title>黄河社区：1,234 人</title>"));
        assert!(svg.contains(">黄河社区</text>"), "name label");
        assert!(svg.contains(">人口（人）<"), "legend title");
    }

    #[test]
    fn the_key_group_measure_shows_shares() {
        let areas = town();
        let svg = render_map(&areas, Measure::KeyGroupShare, &href, &EN);
        assert_well_formed(&svg);
        assert!(
            svg.contains("<title>黄河社区: key-group share 18.5% (228 of 1,234 residents)</title>")
        );
        assert!(svg.contains(">Key-group share (%)<"));
        assert!(svg.contains("#a63603"), "the darkest orange for the highest share");
        assert!(!svg.contains("#08519c"), "no population blues");
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
            let svg = render_map(&areas, Measure::Population, &href, &ZH);
            let (w, h) = view_box(&svg);
            let points = path_points(&svg);
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
        let svg = render_map(&areas, Measure::Population, &href, &ZH);
        let points = path_points(&svg);
        let width = points[1].0 - points[0].0;
        let height = points[0].1 - points[2].1;
        assert!(height > 0.0, "north is up");
        assert!((width / height - 39.9f64.to_radians().cos()).abs() < 0.01, "{width} / {height}");
        assert!(height <= MAX_MAP_HEIGHT);
    }

    #[test]
    fn class_breaks_cover_the_minimum_and_maximum() {
        let values = [300.0, 1234.0, 2500.0, 5678.0, 10.0, 99.0, 4000.0, 750.0];
        let breaks = class_breaks(&values);
        assert_eq!(breaks.first(), Some(&10.0));
        assert_eq!(breaks.last(), Some(&5678.0));
        assert!(breaks.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(class_count(&breaks), 5);
        assert_eq!(class_of(10.0, &breaks), 0);
        assert_eq!(class_of(5678.0, &breaks), 4);
        for v in values {
            let c = class_of(v, &breaks);
            assert!(breaks[c] <= v && v <= breaks[c + 1]);
        }
        assert_eq!(class_breaks(&[7.0, 7.0, 7.0]), [7.0]);
        assert_eq!(class_count(&[7.0]), 1);
        assert_eq!(class_breaks(&[1.0, 2.0]), [1.0, 2.0]);
        let palette = Measure::Population.palette();
        assert_eq!(class_colour(0, 2, &palette), palette[0]);
        assert_eq!(class_colour(1, 2, &palette), palette[4]);
        assert_eq!(class_colour(0, 1, &palette), palette[2]);

        let svg = render_map(&town(), Measure::Population, &href, &ZH);
        let legend = &svg[svg.find("class=\"map-legend\"").unwrap()..];
        assert!(legend.contains(">300 – "), "minimum in the legend");
        assert!(legend.contains(" – 5,678<"), "maximum in the legend");
    }

    #[test]
    fn the_smallest_and_largest_areas_differ_in_colour() {
        let areas = town();
        let svg = render_map(&areas, Measure::Population, &href, &ZH);
        let fill = |a: &AreaWithFigures| attr(area_element(&svg, a), "fill").to_owned();
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
        let svg = render_map(&areas, Measure::Population, &href, &ZH);
        assert_well_formed(&svg);
        assert!(!svg.contains("<script>") && !svg.contains("A&B") && !svg.contains("& 'co'"));
        assert!(
            svg.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;co&#39;")
        );
        assert!(svg.contains("A&amp;B &quot;无边界&quot;"));
    }

    #[test]
    fn areas_without_a_boundary_are_listed_as_links() {
        let mut areas = town();
        let mut missing = square("无边界社区", 0.0, 0.0, 1.0, 5, 0);
        missing.rings = vec![vec![(f64::NAN, 1.0), (1.0, 1.0)]]; // not drawable
        areas.push(missing.clone());
        let svg = render_map(&areas, Measure::Population, &href, &ZH);
        assert_well_formed(&svg);
        assert_eq!(svg.matches("<a class=\"map-area\"").count(), 4);
        assert!(svg.contains("尚无边界"));
        let element = area_element(&svg, &missing);
        assert!(element.contains(">无边界社区</text>"));
        assert!(svg.contains(&format!("href=\"/?area={}&amp;measure=x\"", missing.id)));

        // Nothing drawable at all: only the list, still a valid SVG.
        let svg = render_map(&[missing], Measure::Population, &href, &EN);
        assert_well_formed(&svg);
        assert_eq!(svg.matches("<a class=\"map-area\"").count(), 0);
        assert!(svg.contains("No boundary"));
        assert!(!svg.contains("map-legend"));
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
        let svg = render_map(&areas, Measure::Population, &href, &ZH);
        assert_well_formed(&svg);
        assert_eq!(svg.matches("<a class=\"map-area\"").count(), 40);
        assert!(!svg.contains("map-labels"));
        assert!(svg.contains("<title>网格39：39 人</title>"));
        // Few areas: labels drawn, within the drawing.
        let svg = render_map(&areas[..12], Measure::Population, &href, &ZH);
        let (w, _) = view_box(&svg);
        let labels = &svg[svg.find("class=\"map-labels\"").unwrap()..];
        assert_eq!(labels.matches(">网格").count(), 12);
        for text in labels.split("<text").skip(1) {
            let x: f64 = attr(text, "x").parse().unwrap();
            let size: f64 = attr(text, "font-size").parse().unwrap();
            assert!((0.0..=w).contains(&x) && (MIN_LABEL_FONT..=16.0).contains(&size), "{text}");
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
}
