//! Charts as server-side SVG: the age pyramid, residents by key group, and
//! registered against floating residents per area.
//!
//! Hand-written SVG rather than a plotting crate: the shapes are simple bars,
//! and text is left to the browser's own (Chinese) fonts instead of needing
//! an embedded font for text metrics. Every chart is [`CHART_WIDTH`] units
//! wide with a `viewBox` and no fixed size, so CSS scales it to the card:
//! about 310 px on a 360 px phone and about 350 px in a third of a desktop
//! row, so a unit is close to a pixel on both and text of 14–15 units reads
//! at 12–15 px. All text goes through [`escape`]; names come from users.

use std::fmt::Write as _;

use epigrid_service::dashboard::{AgeBand, AreaWithFigures};
use epigrid_store::TagCount;

use super::Tr;

/// Width of the map's drawing, in viewBox units.
pub(super) const WIDTH: f64 = 600.0;
/// Width of every chart, in viewBox units: near its width on screen.
const CHART_WIDTH: f64 = 360.0;
/// The page's own font stack, so a standalone render looks like the page.
pub(super) const FONT_FAMILY: &str = "system-ui, -apple-system, 'PingFang SC', 'Hiragino Sans GB', \
     'Microsoft YaHei', 'Noto Sans CJK SC', 'Source Han Sans SC', sans-serif";
pub(super) const INK: &str = "#1b2430";
pub(super) const MUTED: &str = "#4a5563";
const GRID_LINE: &str = "#d5dbe3";
/// Blue and orange: told apart with the common colour-vision deficiencies,
/// each above 4.5:1 against white.
const FIRST_SERIES: &str = "#2f6db5";
const SECOND_SERIES: &str = "#c2410c";
const BAR: &str = "#0b5cad";

const LABEL_FONT: f64 = 15.0;
const SMALL_FONT: f64 = 14.0;
/// The card has its own padding; this only keeps strokes off the edge.
const PAD: f64 = 4.0;

/// Escapes text for SVG/XML content and attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab and newline are not allowed
            // in XML 1.0 at all, not even escaped.
            c if c.is_control() && c != '\t' && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `1234567` → `"1,234,567"`.
pub(super) fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A share 0.0–1.0 as `"18.5%"`.
pub(super) fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// A coordinate with one decimal: enough at a few hundred units, and short.
pub(super) fn num(value: f64) -> String {
    format!("{value:.1}")
}

/// Approximate advance of a character, in ems. Generous on purpose: a label
/// estimated a little too wide is shortened, never drawn over its neighbour.
fn char_em(c: char) -> f64 {
    let u = c as u32;
    let wide = (0x1100..=0x115F).contains(&u)
        || (0x2E80..=0xA4CF).contains(&u)
        || (0xAC00..=0xD7A3).contains(&u)
        || (0xF900..=0xFAFF).contains(&u)
        || (0xFE30..=0xFE4F).contains(&u)
        || (0xFF00..=0xFF60).contains(&u)
        || (0xFFE0..=0xFFE6).contains(&u)
        || u >= 0x20000;
    if wide {
        1.0
    } else if matches!(c, 'i' | 'j' | 'l' | '.' | ',' | '\'' | '!' | '|' | ' ' | ':' | ';') {
        0.32
    } else if matches!(c, 'm' | 'w' | 'M' | 'W' | '@' | '%') {
        0.9
    } else if c.is_ascii_uppercase() {
        0.68
    } else {
        0.58
    }
}

/// Estimated width of `text` at `font` units.
pub(super) fn text_width(text: &str, font: f64) -> f64 {
    text.chars().map(char_em).sum::<f64>() * font
}

/// `text`, shortened with an ellipsis to fit `max_width` at `font`.
pub(super) fn fit_text(text: &str, max_width: f64, font: f64) -> String {
    if text_width(text, font) <= max_width {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut width = text_width("…", font);
    for c in text.chars() {
        width += char_em(c) * font;
        if width > max_width {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// What a chart shows when there is nothing to draw.
pub(super) fn empty(tr: &Tr) -> String {
    format!("<p class=\"muted chart-empty\">{}</p>", escape(&tr.t("chart.empty")))
}

/// The opening `<svg>` of a chart: an image with an accessible name.
fn open_chart(height: f64, label: &str) -> String {
    let label = escape(label);
    format!(
        "<svg class=\"chart-svg\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" \
         role=\"img\" aria-label=\"{label}\" font-family=\"{FONT_FAMILY}\"><title>{label}</title>",
        w = num(CHART_WIDTH),
        h = num(height),
    )
}

const LEGEND_BOX: f64 = 14.0;

/// A legend entry: a colour box and its name; returns the x after it.
fn legend_item(out: &mut String, x: f64, y: f64, colour: &str, text: &str) -> f64 {
    let box_size = LEGEND_BOX;
    let _ = write!(
        out,
        "<rect x=\"{}\" y=\"{}\" width=\"{box_size}\" height=\"{box_size}\" fill=\"{colour}\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"{SMALL_FONT}\" fill=\"{INK}\">{}</text>",
        num(x),
        num(y),
        num(x + box_size + 5.0),
        num(y + 12.0),
        escape(text),
    );
    x + box_size + 5.0 + text_width(text, SMALL_FONT) + 16.0
}

/// A round step (1, 2, 2.5 or 5 × 10ⁿ, a whole number) for a scale from 0
/// to at least `max` in at most three intervals, the tightest such scale.
fn axis_step(max: f64) -> f64 {
    let mut best = (f64::INFINITY, 1.0);
    let mut magnitude = 1.0;
    while magnitude <= max.max(1.0) {
        for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
            let step: f64 = m * magnitude;
            let top = (max / step).ceil().max(1.0) * step;
            if step.fract() == 0.0 && top <= 3.0 * step && top < best.0 {
                best = (top, step);
            }
        }
        magnitude *= 10.0;
    }
    best.1
}

/// "0–4", "85+".
fn band_label(band: &AgeBand) -> String {
    match band.to {
        Some(to) if to > band.from => format!("{}–{}", band.from, to - 1),
        Some(_) => band.from.to_string(),
        None => format!("{}+", band.from),
    }
}

/// Males to the left and females to the right of a centre column of age
/// bands, the youngest at the bottom, with a residents scale underneath.
pub fn age_pyramid(bands: &[AgeBand], tr: &Tr) -> String {
    let max = bands.iter().map(|b| b.male.max(b.female)).max().unwrap_or(0);
    if max <= 0 {
        return empty(tr);
    }
    let mut rows: Vec<&AgeBand> = bands.iter().collect();
    rows.sort_by_key(|band| std::cmp::Reverse(band.from));

    let step = axis_step(max as f64);
    let top = step * (max as f64 / step).ceil();
    // Room for half the widest scale value beyond each bar's end, and for
    // the widest age band between the two sides.
    let tick_width = text_width(&thousands(top as i64), SMALL_FONT);
    let side_pad = PAD + tick_width / 2.0;
    let centre_width =
        rows.iter().map(|band| text_width(&band_label(band), SMALL_FONT)).fold(0.0, f64::max)
            + 10.0;
    let centre = CHART_WIDTH / 2.0;
    let left_origin = centre - centre_width / 2.0;
    let right_origin = centre + centre_width / 2.0;
    let bar_max = left_origin - side_pad;
    let scale = bar_max / top;
    let row_height = 22.0;
    let bar_height = 17.0;
    let rows_top = 28.0;
    let rows_bottom = rows_top + row_height * rows.len() as f64;
    let height = rows_bottom + 46.0;

    let male = tr.t("sex.male");
    let female = tr.t("sex.female");
    let mut out = open_chart(height, &tr.t("chart.age_pyramid"));

    // Legend: each sex over its own side, so position says it as well as colour.
    legend_item(&mut out, PAD, 4.0, FIRST_SERIES, &format!("← {male}"));
    let right_text = format!("{female} →");
    let right_x = CHART_WIDTH - PAD - LEGEND_BOX - 5.0 - text_width(&right_text, SMALL_FONT);
    legend_item(&mut out, right_x, 4.0, SECOND_SERIES, &right_text);
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"16\" font-size=\"{SMALL_FONT}\" text-anchor=\"middle\" fill=\"{MUTED}\">{}</text>",
        num(centre),
        escape(&tr.t("chart.age")),
    );

    // Scale: grid lines on both sides, and their values where they have
    // room; else only the ends of the scale.
    let ticks = (top / step).round() as i64;
    let crowded = step * scale < tick_width + 8.0;
    for k in 0..=ticks {
        let value = step * k as f64;
        let labelled = !crowded || k == 0 || k == ticks;
        for x in [left_origin - value * scale, right_origin + value * scale] {
            let _ = write!(
                out,
                "<line x1=\"{x}\" y1=\"{y1}\" x2=\"{x}\" y2=\"{y2}\" stroke=\"{GRID_LINE}\" stroke-width=\"1\"/>",
                x = num(x),
                y1 = num(rows_top),
                y2 = num(rows_bottom + 4.0),
            );
            if labelled {
                let _ = write!(
                    out,
                    "<text x=\"{}\" y=\"{}\" font-size=\"{SMALL_FONT}\" text-anchor=\"middle\" fill=\"{MUTED}\">{}</text>",
                    num(x),
                    num(rows_bottom + 20.0),
                    thousands(value as i64),
                );
            }
        }
    }
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" font-size=\"{SMALL_FONT}\" text-anchor=\"middle\" fill=\"{MUTED}\">{}</text>",
        num(centre),
        num(rows_bottom + 40.0),
        escape(&tr.t("chart.axis.residents")),
    );

    for (i, band) in rows.iter().enumerate() {
        let y = rows_top + row_height * i as f64;
        let bar_y = y + (row_height - bar_height) / 2.0;
        let label = band_label(band);
        let _ = write!(out, "<g class=\"pyramid-row\" data-band=\"{}\">", escape(&label));
        for (sex, count, colour, left) in
            [(&male, band.male, FIRST_SERIES, true), (&female, band.female, SECOND_SERIES, false)]
        {
            let width = count.max(0) as f64 * scale;
            let x = if left { left_origin - width } else { right_origin };
            let title = tr.fill(
                "chart.pyramid.bar",
                &[("sex", sex.clone()), ("band", label.clone()), ("value", thousands(count))],
            );
            let _ = write!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{bar_height}\" fill=\"{colour}\"><title>{}</title></rect>",
                num(x),
                num(bar_y),
                num(width),
                escape(&title),
            );
        }
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" font-size=\"{SMALL_FONT}\" text-anchor=\"middle\" fill=\"{INK}\">{}</text></g>",
            num(centre),
            num(bar_y + 13.5),
            escape(&label),
        );
    }
    out.push_str("</svg>");
    out
}

/// The label of a key-group tag: its translation, or the configured text.
fn tag_label(tag: &str, tr: &Tr) -> String {
    let key = format!("tag.{tag}");
    if crate::i18n::has_key(tr.0, &key) { tr.t(&key) } else { tag.to_owned() }
}

/// Space between a row's label and its figure, in viewBox units.
const HEADING_GAP: f64 = 12.0;
const BAR_HEIGHT: f64 = 14.0;

/// Whether a bar list puts each row's figure on a line of its own under the
/// label: when some label would otherwise be cut short to fit beside its
/// figure. One layout for every row, so the bars stay evenly spaced.
fn stacked_headings<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
    rows.into_iter().any(|(label, figure)| {
        text_width(label, LABEL_FONT)
            > CHART_WIDTH - 2.0 * PAD - text_width(figure, SMALL_FONT) - HEADING_GAP
    })
}

/// Height of one row of a bar list: its heading, bar and the space after.
fn row_height(stacked: bool) -> f64 {
    if stacked { 62.0 } else { 44.0 }
}

/// One row of a bar list: the label on the left and the figure on the
/// right, or under the label when `stacked`, above a full-width track for
/// the bar(s). Returns the bar's y.
fn row_heading(out: &mut String, y: f64, label: &str, figure: &str, stacked: bool) -> f64 {
    let full = CHART_WIDTH - 2.0 * PAD;
    let label_y = y + 15.0;
    let (room, figure_x, figure_y, anchor) = if stacked {
        (full, PAD, label_y + 18.0, "start")
    } else {
        (full - text_width(figure, SMALL_FONT) - HEADING_GAP, CHART_WIDTH - PAD, label_y, "end")
    };
    let label = fit_text(label, room, LABEL_FONT);
    let figure = fit_text(figure, full, SMALL_FONT);
    let _ = write!(
        out,
        "<text x=\"{PAD}\" y=\"{}\" font-size=\"{LABEL_FONT}\" fill=\"{INK}\">{}</text>\
         <text x=\"{}\" y=\"{}\" font-size=\"{SMALL_FONT}\" text-anchor=\"{anchor}\" fill=\"{INK}\">{}</text>",
        num(label_y),
        escape(&label),
        num(figure_x),
        num(figure_y),
        escape(&figure),
    );
    figure_y + 6.0
}

/// Residents per key-group tag, the largest first, each count as text.
pub fn tag_bars(tags: &[TagCount], tr: &Tr) -> String {
    if tags.is_empty() {
        return empty(tr);
    }
    let mut rows: Vec<&TagCount> = tags.iter().collect();
    rows.sort_by(|a, b| b.residents.cmp(&a.residents).then_with(|| a.tag.cmp(&b.tag)));
    let rows: Vec<(&TagCount, String, String)> = rows
        .into_iter()
        .map(|row| (row, tag_label(&row.tag, tr), thousands(row.residents)))
        .collect();
    let stacked = stacked_headings(rows.iter().map(|(_, l, c)| (l.as_str(), c.as_str())));
    let max = rows[0].0.residents.max(1) as f64;
    let track = CHART_WIDTH - 2.0 * PAD;
    let top = 2.0;
    let height = top + row_height(stacked) * rows.len() as f64;
    let mut out = open_chart(height, &tr.t("chart.by_tag"));
    for (i, (row, label, count)) in rows.iter().enumerate() {
        let _ = write!(out, "<g class=\"bar-row\" data-tag=\"{}\">", escape(&row.tag));
        let y = top + row_height(stacked) * i as f64;
        let bar_y = row_heading(&mut out, y, label, count, stacked);
        let title = tr.fill("chart.tag.bar", &[("tag", label.clone()), ("value", count.clone())]);
        let _ = write!(
            out,
            "<rect x=\"{PAD}\" y=\"{}\" width=\"{}\" height=\"{BAR_HEIGHT}\" fill=\"{GRID_LINE}\" opacity=\"0.5\"/>\
             <rect x=\"{PAD}\" y=\"{}\" width=\"{}\" height=\"{BAR_HEIGHT}\" fill=\"{BAR}\"><title>{}</title></rect></g>",
            num(bar_y),
            num(track),
            num(bar_y),
            num(row.residents.max(0) as f64 / max * track),
            escape(&title),
        );
    }
    out.push_str("</svg>");
    out
}

/// Per area, registered residents (everyone not floating) and floating
/// residents as one stacked bar, the most populous area first.
pub fn residence_bars(areas: &[AreaWithFigures], tr: &Tr) -> String {
    let split = |a: &AreaWithFigures| {
        let floating = a.figures.floating.clamp(0, a.figures.residents.max(0));
        (a.figures.residents.max(0) - floating, floating)
    };
    let max = areas.iter().map(|a| a.figures.residents.max(0)).max().unwrap_or(0);
    if max == 0 {
        return empty(tr);
    }
    let mut rows: Vec<&AreaWithFigures> = areas.iter().collect();
    rows.sort_by(|a, b| {
        b.figures.residents.cmp(&a.figures.residents).then_with(|| a.name.cmp(&b.name))
    });
    let rows: Vec<(&AreaWithFigures, i64, i64, String)> = rows
        .into_iter()
        .map(|area| {
            let (registered, floating) = split(area);
            let figure = tr.fill(
                "chart.residence.counts",
                &[("registered", thousands(registered)), ("floating", thousands(floating))],
            );
            (area, registered, floating, figure)
        })
        .collect();
    let stacked = stacked_headings(
        rows.iter().map(|(area, _, _, figure)| (area.name.as_str(), figure.as_str())),
    );
    let registered_name = tr.t("residence.registered");
    let floating_name = tr.t("residence.floating");
    let track = CHART_WIDTH - 2.0 * PAD;
    let scale = track / max as f64;
    let top = 4.0 + LEGEND_BOX + 8.0;
    let height = top + row_height(stacked) * rows.len() as f64;
    let mut out = open_chart(height, &tr.t("chart.residence"));
    let next = legend_item(&mut out, PAD, 4.0, FIRST_SERIES, &registered_name);
    legend_item(&mut out, next, 4.0, SECOND_SERIES, &floating_name);
    for (i, (area, registered, floating, figure)) in rows.iter().enumerate() {
        let _ = write!(out, "<g class=\"bar-row\" data-area-id=\"{}\">", area.id);
        let y = top + row_height(stacked) * i as f64;
        let bar_y = row_heading(&mut out, y, &area.name, figure, stacked);
        let mut x = PAD;
        for (kind, count, colour) in [
            (&registered_name, *registered, FIRST_SERIES),
            (&floating_name, *floating, SECOND_SERIES),
        ] {
            let width = count as f64 * scale;
            let title = tr.fill(
                "chart.residence.bar",
                &[("name", area.name.clone()), ("kind", kind.clone()), ("value", thousands(count))],
            );
            let _ = write!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{BAR_HEIGHT}\" fill=\"{colour}\"><title>{}</title></rect>",
                num(x),
                num(bar_y),
                num(width),
                escape(&title),
            );
            x += width;
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
    out
}

/// A small XML well-formedness check for the SVG tests of this module and
/// the map's: one root element, balanced tags, quoted attributes, no raw
/// `<` or stray `&` in text or attribute values.
#[cfg(test)]
pub(super) fn assert_well_formed(xml: &str) {
    fn check_text(text: &str) {
        assert!(!text.contains('<'), "raw < in {text:?}");
        let mut rest = text;
        while let Some(at) = rest.find('&') {
            rest = &rest[at + 1..];
            let end = rest.find(';').unwrap_or_else(|| panic!("bare & in {text:?}"));
            let entity = &rest[..end];
            let known = matches!(entity, "amp" | "lt" | "gt" | "quot" | "apos")
                || entity
                    .strip_prefix('#')
                    .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
            assert!(known, "unknown entity &{entity}; in {text:?}");
        }
    }
    assert!(xml.starts_with('<'), "no leading element: {xml:.40}");
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = xml;
    let mut roots = 0;
    while let Some(lt) = rest.find('<') {
        let text = &rest[..lt];
        if stack.is_empty() {
            assert!(text.trim().is_empty(), "text outside the root: {text:?}");
        }
        check_text(text);
        let after = &rest[lt + 1..];
        let gt = after.find('>').expect("unclosed tag");
        let tag = &after[..gt];
        rest = &after[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name.trim()), "mismatched </{name}>");
            continue;
        }
        if stack.is_empty() {
            roots += 1;
        }
        let self_closing = tag.ends_with('/');
        let body = tag.trim_end_matches('/');
        let name_end = body.find(char::is_whitespace).unwrap_or(body.len());
        let name = &body[..name_end];
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '-' || c == ':')
        );
        let mut attrs = body[name_end..].trim_start();
        let mut seen = Vec::new();
        while !attrs.is_empty() {
            let eq =
                attrs.find('=').unwrap_or_else(|| panic!("attribute without value in <{tag}>"));
            let attr = attrs[..eq].trim();
            assert!(!seen.contains(&attr), "duplicate attribute {attr} in <{tag}>");
            seen.push(attr);
            let value = attrs[eq + 1..].strip_prefix('"').expect("unquoted attribute");
            let close = value.find('"').expect("unterminated attribute");
            check_text(&value[..close]);
            attrs = value[close + 1..].trim_start();
        }
        if !self_closing {
            stack.push(name);
        }
    }
    assert!(rest.trim().is_empty(), "text after the root");
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert_eq!(roots, 1, "exactly one root element");
}

#[cfg(test)]
mod tests {
    use epigrid_domain::AreaKind;
    use epigrid_service::dashboard::age_bands;
    use epigrid_store::{AreaFigures, BirthYearCount};
    use uuid::Uuid;

    use super::*;
    use crate::i18n::Lang;

    const ZH: Tr = Tr(Lang::ZhCn);
    const EN: Tr = Tr(Lang::En);

    fn area(name: &str, residents: i64, floating: i64) -> AreaWithFigures {
        let id = Uuid::now_v7();
        AreaWithFigures {
            id,
            kind: AreaKind::Community,
            name: name.into(),
            code: None,
            rings: Vec::new(),
            figures: AreaFigures { area_id: id, residents, households: 0, floating, key_group: 0 },
            tasks: Default::default(),
            reported: 0,
            flagged_today: 0,
            arrivals_today: 0,
            help_today: 0,
        }
    }

    fn titles(svg: &str) -> Vec<&str> {
        svg.split("<title>").skip(1).map(|s| &s[..s.find("</title>").unwrap()]).collect()
    }

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(-12345), "-12,345");
        assert_eq!(percent(0.185), "18.5%");
    }

    #[test]
    fn escape_covers_every_markup_character() {
        assert_eq!(escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&#39;f");
        assert_eq!(escape("黄河\u{1}社区"), "黄河 社区");
    }

    #[test]
    fn long_labels_are_shortened_to_fit() {
        assert_eq!(fit_text("短", 100.0, 20.0), "短");
        let long = "非常非常非常非常非常长的社区名称";
        let fitted = fit_text(long, 100.0, 20.0);
        assert!(fitted.ends_with('…') && fitted.chars().count() < long.chars().count());
        assert!(text_width(&fitted, 20.0) <= 100.0);
    }

    #[test]
    fn axis_steps_are_round_and_tight() {
        let top = |max: f64| {
            let step = axis_step(max);
            (step, (max / step).ceil().max(1.0) * step)
        };
        assert_eq!(top(1.0), (1.0, 1.0));
        assert_eq!(top(2.0), (1.0, 2.0));
        assert_eq!(top(7.0), (5.0, 10.0));
        assert_eq!(top(630.0), (250.0, 750.0));
        assert_eq!(top(1234.0), (500.0, 1500.0));
        assert_eq!(top(4000.0), (2000.0, 4000.0));
        assert_eq!(top(9001.0), (5000.0, 10000.0));
        for max in [3.0, 17.0, 99.0, 101.0, 2600.0, 45678.0] {
            let (step, top) = top(max);
            assert!(top >= max && top <= 3.0 * step && top < 2.0 * max, "{max}: {step} {top}");
        }
    }

    #[test]
    fn pyramid_has_one_row_per_band_with_exact_counts() {
        let mut bands = age_bands(&[], 2026);
        for (i, band) in bands.iter_mut().enumerate() {
            band.male = 1000 + i as i64 * 37;
            band.female = 1100 + i as i64 * 41;
        }
        let svg = age_pyramid(&bands, &ZH);
        assert_well_formed(&svg);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("role=\"img\"") && svg.contains("aria-label=\"人口年龄结构\""));
        let open = &svg[..svg.find('>').unwrap()];
        assert!(!open.contains(" width=") && open.contains("viewBox=\"0 0 360.0 "), "{open}");
        assert_eq!(svg.matches("class=\"pyramid-row\"").count(), bands.len());
        let rows: Vec<&str> =
            svg.split("data-band=\"").skip(1).map(|s| &s[..s.find('"').unwrap()]).collect();
        assert_eq!(rows.first(), Some(&"85+"), "oldest at the top");
        assert_eq!(rows.last(), Some(&"0–4"), "youngest at the bottom");
        let titles = titles(&svg);
        for band in &bands {
            let label = band_label(band);
            let male = format!("男，{label} 岁：{} 人", thousands(band.male));
            let female = format!("女，{label} 岁：{} 人", thousands(band.female));
            assert!(titles.contains(&male.as_str()), "missing {male}");
            assert!(titles.contains(&female.as_str()), "missing {female}");
        }
        assert!(svg.contains(">← 男<") && svg.contains(">女 →<"));
        assert!(svg.contains(FIRST_SERIES) && svg.contains(SECOND_SERIES));
    }

    #[test]
    fn pyramid_bars_are_proportional_and_on_their_sides() {
        let bands = age_bands(
            &[
                BirthYearCount { year: 2024, sex: epigrid_domain::Sex::Male, residents: 300 },
                BirthYearCount { year: 2024, sex: epigrid_domain::Sex::Female, residents: 150 },
            ],
            2026,
        );
        let svg = age_pyramid(&bands, &EN);
        assert_well_formed(&svg);
        let row = svg.split("data-band=\"0–4\"").nth(1).unwrap();
        let widths: Vec<f64> = row
            .split(" width=\"")
            .skip(1)
            .take(2)
            .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
            .collect();
        assert!((widths[0] - 2.0 * widths[1]).abs() < 0.2, "{widths:?}");
        let xs: Vec<f64> = row
            .split("<rect x=\"")
            .skip(1)
            .take(2)
            .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
            .collect();
        assert!(
            xs[0] + widths[0] <= CHART_WIDTH / 2.0 && xs[1] >= CHART_WIDTH / 2.0,
            "male left, female right"
        );
        assert!(svg.contains("Male, aged 0–4: 300"));
        assert!(svg.contains(">Residents<"), "axis title");
    }

    #[test]
    fn empty_charts_say_so() {
        assert!(age_pyramid(&[], &ZH).contains("暂无数据"));
        assert!(age_pyramid(&age_bands(&[], 2026), &ZH).contains("暂无数据"), "all zero");
        assert!(tag_bars(&[], &EN).contains("No data"));
        assert!(residence_bars(&[], &ZH).contains("暂无数据"));
        assert!(residence_bars(&[area("空", 0, 0)], &ZH).contains("暂无数据"));
        assert!(!age_pyramid(&[], &ZH).contains("<svg"));
    }

    #[test]
    fn tag_bars_use_translations_and_fall_back_to_the_tag() {
        let tags = [
            TagCount { tag: "elderly_alone".into(), residents: 120 },
            TagCount { tag: "veteran<&>".into(), residents: 4500 },
            TagCount { tag: "infant".into(), residents: 0 },
        ];
        let svg = tag_bars(&tags, &ZH);
        assert_well_formed(&svg);
        assert!(svg.contains(">独居老人<") && svg.contains(">婴幼儿<"));
        assert!(
            svg.contains(">veteran&lt;&amp;&gt;<"),
            "unknown tags show their own text, escaped"
        );
        assert!(!svg.contains("veteran<"));
        assert!(
            svg.contains(">4,500<") && svg.contains(">120<") && svg.contains(">0<"),
            "counts as text"
        );
        assert!(svg.contains("<title>独居老人：120 人</title>"));
        let order: Vec<&str> =
            svg.split("data-tag=\"").skip(1).map(|s| &s[..s.find('"').unwrap()]).collect();
        assert_eq!(order, ["veteran&lt;&amp;&gt;", "elderly_alone", "infant"], "largest first");
        let en = tag_bars(&tags, &EN);
        assert!(en.contains(">Elderly living alone<"));
    }

    #[test]
    fn residence_bars_stack_registered_and_floating() {
        let areas =
            [area("黄河社区", 1000, 250), area("A & B <script>alert('x')</script>", 3000, 0)];
        let svg = residence_bars(&areas, &ZH);
        assert_well_formed(&svg);
        assert!(!svg.contains("<script>") && !svg.contains("A & B"));
        assert!(svg.contains("A &amp; B &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert_eq!(svg.matches("class=\"bar-row\"").count(), 2);
        assert!(svg.contains(">户籍人口<") && svg.contains(">流动人口<"), "legend");
        assert!(svg.contains("<title>黄河社区，户籍人口：750 人</title>"));
        assert!(svg.contains("<title>黄河社区，流动人口：250 人</title>"));
        // The largest area fills the track; the other is a third of it.
        let row = svg.split("data-area-id=\"").nth(2).unwrap();
        let widths: Vec<f64> = row
            .split(" width=\"")
            .skip(1)
            .take(2)
            .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
            .collect();
        let track = CHART_WIDTH - 2.0 * PAD;
        assert!((widths[0] - track * 0.25).abs() < 0.2 && (widths[1] - track / 12.0).abs() < 0.2);
    }

    #[test]
    fn chart_text_reads_at_12_to_15_px_on_phone_and_desktop() {
        let mut bands = age_bands(&[], 2026);
        for (i, band) in bands.iter_mut().enumerate() {
            band.male = 40 + i as i64;
            band.female = 12_000 - i as i64;
        }
        let tags = [TagCount { tag: "elderly_alone".into(), residents: 120 }];
        let areas = [area("黄河社区", 1000, 250)];
        for tr in [ZH, EN] {
            for svg in [age_pyramid(&bands, &tr), tag_bars(&tags, &tr), residence_bars(&areas, &tr)]
            {
                assert_well_formed(&svg);
                let sizes: Vec<f64> = svg
                    .split("font-size=\"")
                    .skip(1)
                    .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
                    .collect();
                assert!(!sizes.is_empty());
                // A chart is ~310 px wide in a phone's card, ~350 px in a
                // third of a 1280 px desktop row.
                for size in sizes {
                    let (phone, desktop) = (size * 310.0 / CHART_WIDTH, size * 352.0 / CHART_WIDTH);
                    assert!(
                        phone >= 12.0 && desktop <= 15.0,
                        "{size} units: {phone:.1}–{desktop:.1} px"
                    );
                }
            }
        }
    }

    #[test]
    fn crowded_pyramid_scales_label_only_their_ends() {
        let mut bands = age_bands(&[], 2026);
        bands[0].male = 12_345;
        let svg = age_pyramid(&bands, &EN);
        // 0 and 15,000 on each side; 5,000 and 10,000 would touch.
        assert_eq!(svg.matches(">15,000<").count(), 2, "{svg}");
        assert_eq!(svg.matches(">0<").count(), 2);
        assert!(!svg.contains(">5,000<"));
        assert_eq!(svg.matches("<line ").count(), 8, "every grid line still drawn");
    }

    #[test]
    fn long_names_put_the_figures_under_them() {
        let short = residence_bars(&[area("黄河社区", 1000, 250)], &EN);
        // The y of every line of text at the left edge: names and figures.
        let rows = |svg: &str| -> Vec<f64> {
            svg.split("<text x=\"")
                .skip(1)
                .filter(|s| s[..s.find('"').unwrap()].parse::<f64>().unwrap() == PAD)
                .map(|s| {
                    let y = &s[s.find("y=\"").unwrap() + 3..];
                    y[..y.find('"').unwrap()].parse().unwrap()
                })
                .collect()
        };
        assert_eq!(rows(&short).len(), 1);
        assert!(short.contains(">750 registered · 250 floating<"));
        assert!(short.contains("text-anchor=\"end\""), "figure beside the name");
        let name = "黄河街道第二社区居民委员会";
        let long = residence_bars(&[area(name, 1000, 250), area("黄河社区", 10, 0)], &EN);
        assert_well_formed(&long);
        assert!(long.contains(&format!(">{name}<")), "the whole name");
        assert!(long.contains(">750 registered · 250 floating<"));
        assert!(!long.contains("text-anchor=\"end\""), "figures under the names");
        let ys = rows(&long);
        assert!(ys.len() == 4 && ys.windows(2).all(|w| w[0] < w[1]), "{ys:?}");
    }

    #[test]
    fn the_checker_rejects_broken_markup() {
        for bad in
            ["<svg><g></svg>", "<svg>a & b</svg>", "<svg x=1></svg>", "<svg></svg><svg></svg>"]
        {
            assert!(std::panic::catch_unwind(|| assert_well_formed(bad)).is_err(), "{bad}");
        }
        assert_well_formed("<svg a=\"&amp;\"><g/><text>x &#39; y</text></svg>");
    }
}
