//! Evaluation of the closed loop (RULES.md §1.5) per worker, grid or
//! community over a chosen period: a table, a bar chart of the on-time rate
//! drawn on the server, and a CSV download that is audited as an export.
//!
//! Dates are whole local days: "from 2026-11-01 to 2026-11-30" is
//! `[11-01 00:00, 12-01 00:00)` in the configured zone.

use std::collections::HashMap;
use std::fmt::Write as _;

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Utc};
use epigrid_domain::tasks::GroupBy;
use epigrid_service::tasks::EvaluationRow;
use epigrid_service::{Actor, Service, ServiceError};
use serde::Deserialize;
use uuid::Uuid;

use super::charts::{FONT_FAMILY, INK, escape, fit_text, num, percent, text_width};
use super::residents::{Choice, FormErrors, form_status, show_date, with_status};
use super::{Chrome, PageActor, Tr, or_error_page, render};
use crate::AppState;
use crate::i18n::Lang;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EvaluationQuery {
    from: String,
    to: String,
    group: String,
}

/// The period and grouping asked for, with this month as the default.
#[derive(Debug, Clone, Copy)]
struct Asked {
    from: NaiveDate,
    to: NaiveDate,
    group_by: GroupBy,
}

impl Asked {
    fn group(&self) -> &'static str {
        match self.group_by {
            GroupBy::Worker => "worker",
            GroupBy::Grid => "grid",
            GroupBy::Community => "community",
        }
    }

    fn query(&self) -> String {
        format!("from={}&to={}&group={}", show_date(self.from), show_date(self.to), self.group())
    }
}

fn parse_asked(
    service: &Service,
    query: &EvaluationQuery,
    lang: Lang,
) -> Result<Asked, FormErrors> {
    let today = service.today();
    let date = |field: &str, text: &str, default: NaiveDate| -> Result<NaiveDate, FormErrors> {
        match text.trim() {
            "" => Ok(default),
            text => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| FormErrors::field(lang, field, "evaluation.date_invalid")),
        }
    };
    let first_of_month = today.with_day(1).unwrap_or(today);
    let from = date("from", &query.from, first_of_month)?;
    let to = date("to", &query.to, today)?;
    let group_by = match query.group.trim() {
        "grid" => GroupBy::Grid,
        "community" => GroupBy::Community,
        _ => GroupBy::Worker,
    };
    if to < from {
        return Err(FormErrors::field(lang, "to", "evaluation.period_reversed"));
    }
    Ok(Asked { from, to, group_by })
}

/// Local midnight of `day` as UTC.
fn day_start(service: &Service, day: NaiveDate) -> DateTime<Utc> {
    let offset = service.settings().time_zone_offset;
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    offset
        .from_local_datetime(&midnight)
        .single()
        .map_or_else(|| midnight.and_utc(), |d| d.with_timezone(&Utc))
}

/// One evaluation row as shown and exported.
#[derive(Debug, Clone)]
struct Row {
    id: Uuid,
    name: String,
    handled: u32,
    handled_on_time: u32,
    on_time: Option<f64>,
    closing: Option<f64>,
    rework: Option<f64>,
    average_hours: Option<f64>,
    overdue: u32,
}

impl Row {
    fn rate(value: Option<f64>) -> String {
        value.map(percent).unwrap_or_else(|| "—".to_owned())
    }

    fn on_time_text(&self) -> String {
        Self::rate(self.on_time)
    }

    fn closing_text(&self) -> String {
        Self::rate(self.closing)
    }

    fn rework_text(&self) -> String {
        Self::rate(self.rework)
    }

    fn hours_number(&self) -> Option<String> {
        self.average_hours.map(|h| format!("{h:.1}"))
    }
}

async fn named_rows(
    service: &Service,
    actor: &Actor,
    asked: Asked,
    rows: Vec<EvaluationRow>,
    tr: &Tr,
) -> Result<Vec<Row>, ServiceError> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.group_id).collect();
    let names: HashMap<Uuid, String> = match asked.group_by {
        GroupBy::Worker => service.account_names(actor, &ids).await?,
        GroupBy::Grid | GroupBy::Community => service
            .area_names(actor, &ids)
            .await?
            .into_iter()
            .map(|(id, area)| (id, area.name))
            .collect(),
    };
    let mut out: Vec<Row> = rows
        .into_iter()
        .map(|r| Row {
            id: r.group_id,
            name: names.get(&r.group_id).cloned().unwrap_or_else(|| tr.t("evaluation.unknown")),
            handled: r.metrics.handled,
            handled_on_time: r.metrics.handled_on_time,
            on_time: r.on_time_rate,
            closing: r.closing_rate,
            rework: r.rework_rate,
            average_hours: r.average_handling_seconds.map(|s| s as f64 / 3600.0),
            overdue: r.metrics.overdue,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

#[derive(Template)]
#[template(path = "evaluation.html")]
struct EvaluationPage {
    chrome: Chrome,
    from: String,
    to: String,
    groups: Vec<Choice>,
    errors: FormErrors,
    rows: Vec<Row>,
    chart_svg: String,
    csv_href: Option<String>,
}

impl EvaluationPage {
    fn hours(&self, row: &Row) -> String {
        match row.hours_number() {
            Some(h) => self.chrome.tr.fill("evaluation.hours", &[("hours", h)]),
            None => "—".to_owned(),
        }
    }
}

fn group_choices(tr: &Tr, current: &str) -> Vec<Choice> {
    ["worker", "grid", "community"]
        .iter()
        .map(|g| Choice {
            value: (*g).to_owned(),
            label: tr.t(&format!("evaluation.group.{g}")),
            selected: *g == current,
        })
        .collect()
}

pub async fn show(
    State(state): State<AppState>,
    page: PageActor,
    query: Result<Query<EvaluationQuery>, QueryRejection>,
) -> Result<Response, Response> {
    let lang = page.lang;
    let service = &state.service;
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let chrome = page.chrome("evaluation");
    let tr = chrome.tr;
    let (errors, rows, csv_href, group) = match parse_asked(service, &query, lang) {
        Ok(asked) => {
            let from = day_start(service, asked.from);
            let to = day_start(service, asked.to + TimeDelta::days(1));
            let rows = or_error_page(
                lang,
                service.evaluation(&page.actor, from, to, asked.group_by).await,
            )?;
            let rows =
                or_error_page(lang, named_rows(service, &page.actor, asked, rows, &tr).await)?;
            let href = format!("/evaluation.csv?{}", asked.query());
            (FormErrors::default(), rows, Some(href), asked.group())
        }
        Err(errors) => {
            // The role check comes first, whatever the dates say.
            or_error_page(
                lang,
                service.evaluation(&page.actor, Utc::now(), Utc::now(), GroupBy::Grid).await,
            )?;
            (errors, Vec::new(), None, "worker")
        }
    };
    let chart_svg = on_time_bars(&rows, &tr);
    let status = form_status(&errors);
    let today = service.today();
    let default_from = show_date(today.with_day(1).unwrap_or(today));
    Ok(with_status(
        status,
        render(&EvaluationPage {
            from: if query.from.trim().is_empty() { default_from } else { query.from.clone() },
            to: if query.to.trim().is_empty() { show_date(today) } else { query.to.clone() },
            groups: group_choices(&tr, group),
            errors,
            rows,
            chart_svg,
            csv_href,
            chrome,
        }),
    ))
}

/// A CSV field: quoted, quotes doubled, and a leading `=`, `+`, `-` or `@`
/// defused so a spreadsheet never runs a name as a formula.
fn csv_field(text: &str) -> String {
    let defused =
        if text.starts_with(['=', '+', '-', '@']) { format!("'{text}") } else { text.to_owned() };
    format!("\"{}\"", defused.replace('"', "\"\""))
}

fn csv_rate(value: Option<f64>) -> String {
    value.map(|v| format!("{:.4}", v)).unwrap_or_default()
}

/// The figures as CSV: UTF-8 with a byte-order mark (Excel opens Chinese
/// text correctly only with it), CRLF line ends, rates as fractions.
fn evaluation_csv(rows: &[Row], asked: Asked, tr: &Tr) -> String {
    let mut out = String::from("\u{feff}");
    let header = [
        tr.t(&format!("evaluation.group.{}", asked.group())),
        "id".to_owned(),
        tr.t("evaluation.from"),
        tr.t("evaluation.to"),
        tr.t("evaluation.handled"),
        tr.t("evaluation.on_time_rate"),
        tr.t("evaluation.closing_rate"),
        tr.t("evaluation.rework_rate"),
        tr.t("evaluation.average_time"),
        tr.t("evaluation.overdue"),
    ];
    out.push_str(&header.iter().map(|h| csv_field(h)).collect::<Vec<_>>().join(","));
    out.push_str("\r\n");
    for r in rows {
        let fields = [
            csv_field(&r.name),
            r.id.to_string(),
            show_date(asked.from),
            show_date(asked.to),
            r.handled.to_string(),
            csv_rate(r.on_time),
            csv_rate(r.closing),
            csv_rate(r.rework),
            r.hours_number().unwrap_or_default(),
            r.overdue.to_string(),
        ];
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

pub async fn csv(
    State(state): State<AppState>,
    page: PageActor,
    query: Result<Query<EvaluationQuery>, QueryRejection>,
) -> Result<Response, Response> {
    let lang = page.lang;
    let service = &state.service;
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let tr = Tr(lang);
    let asked = match parse_asked(service, &query, lang) {
        Ok(asked) => asked,
        Err(errors) => {
            let message = errors.general.clone().unwrap_or_else(|| {
                ["from", "to"]
                    .iter()
                    .find_map(|f| errors.of(f).map(str::to_owned))
                    .unwrap_or_default()
            });
            return Err(super::message_page(lang, form_status(&errors), message));
        }
    };
    let from = day_start(service, asked.from);
    let to = day_start(service, asked.to + TimeDelta::days(1));
    let rows = or_error_page(
        lang,
        service.export_evaluation(&page.actor, from, to, asked.group_by).await,
    )?;
    let rows = or_error_page(lang, named_rows(service, &page.actor, asked, rows, &tr).await)?;
    let body = evaluation_csv(&rows, asked, &tr);
    let filename = format!(
        "evaluation-{}-{}-{}.csv",
        asked.group(),
        show_date(asked.from),
        show_date(asked.to)
    );
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

// ---- the chart -------------------------------------------------------------

const CHART_WIDTH: f64 = 360.0;
const PAD: f64 = 4.0;
const LABEL_FONT: f64 = 15.0;
const SMALL_FONT: f64 = 14.0;
const ROW: f64 = 44.0;
const BAR_HEIGHT: f64 = 14.0;
const TRACK: &str = "#e6eaf0";
/// Green from 90 %, amber from 60 %, red below: the usual reading of an
/// on-time rate, each above 4.5:1 against white.
fn bar_colour(rate: f64) -> &'static str {
    if rate >= 0.9 {
        "#1f7a3a"
    } else if rate >= 0.6 {
        "#9a5b00"
    } else {
        "#b42318"
    }
}

/// The on-time rate per group as horizontal bars on a 0–100 % track, in
/// the table's order; groups that handled nothing are listed without a bar.
/// The house style of `charts.rs`: 360 units wide, text at 14–15 units.
fn on_time_bars(rows: &[Row], tr: &Tr) -> String {
    if rows.is_empty() {
        return super::charts::empty(tr);
    }
    let label = tr.t("evaluation.chart");
    let height = 2.0 + ROW * rows.len() as f64;
    let mut out = format!(
        "<svg class=\"chart-svg\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" \
         role=\"img\" aria-label=\"{l}\" font-family=\"{FONT_FAMILY}\"><title>{l}</title>",
        num(CHART_WIDTH),
        num(height),
        l = escape(&label),
    );
    let track = CHART_WIDTH - 2.0 * PAD;
    for (i, row) in rows.iter().enumerate() {
        let y = 2.0 + ROW * i as f64;
        let figure = match row.on_time {
            Some(rate) => percent(rate),
            None => tr.t("evaluation.no_rate"),
        };
        let room = track - text_width(&figure, SMALL_FONT) - 12.0;
        let _ = write!(
            out,
            "<g class=\"bar-row\" data-group-id=\"{}\"><text x=\"{PAD}\" y=\"{}\" font-size=\"{LABEL_FONT}\" fill=\"{INK}\">{}</text>\
             <text x=\"{}\" y=\"{}\" font-size=\"{SMALL_FONT}\" text-anchor=\"end\" fill=\"{INK}\">{}</text>\
             <rect x=\"{PAD}\" y=\"{}\" width=\"{}\" height=\"{BAR_HEIGHT}\" fill=\"{TRACK}\"/>",
            row.id,
            num(y + 15.0),
            escape(&fit_text(&row.name, room, LABEL_FONT)),
            num(CHART_WIDTH - PAD),
            num(y + 15.0),
            escape(&figure),
            num(y + 21.0),
            num(track),
        );
        if let Some(rate) = row.on_time {
            let title = tr.fill(
                "evaluation.chart.bar",
                &[
                    ("name", row.name.clone()),
                    ("rate", percent(rate)),
                    ("on_time", row.handled_on_time.to_string()),
                    ("handled", row.handled.to_string()),
                ],
            );
            let _ = write!(
                out,
                "<rect x=\"{PAD}\" y=\"{}\" width=\"{}\" height=\"{BAR_HEIGHT}\" fill=\"{}\"><title>{}</title></rect>",
                num(y + 21.0),
                num(rate.clamp(0.0, 1.0) * track),
                bar_colour(rate),
                escape(&title),
            );
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, handled: u32, on_time: u32) -> Row {
        Row {
            id: Uuid::now_v7(),
            name: name.into(),
            handled,
            handled_on_time: on_time,
            on_time: (handled > 0).then(|| f64::from(on_time) / f64::from(handled)),
            closing: Some(0.5),
            rework: None,
            average_hours: Some(1.25),
            overdue: 2,
        }
    }

    #[test]
    fn bars_are_proportional_to_the_on_time_rate() {
        let tr = Tr(Lang::ZhCn);
        let svg = on_time_bars(&[row("第一网格", 4, 3), row("第二网格", 0, 0)], &tr);
        super::super::charts::assert_well_formed(&svg);
        assert!(svg.contains("75.0%"), "{svg}");
        let track = CHART_WIDTH - 2.0 * PAD;
        assert!(svg.contains(&format!("width=\"{}\"", num(0.75 * track))), "{svg}");
        assert!(svg.contains("无办结"), "a group that handled nothing says so");
        assert_eq!(svg.matches("<title>").count(), 2, "one chart title and one bar title");
    }

    #[test]
    fn csv_has_a_bom_quoted_names_and_defused_formulas() {
        let tr = Tr(Lang::ZhCn);
        let asked = Asked {
            from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
            group_by: GroupBy::Grid,
        };
        let csv = evaluation_csv(&[row("=HYPERLINK(\"x\")", 4, 3)], asked, &tr);
        assert!(csv.starts_with("\u{feff}\"网格\",\"id\""), "{csv}");
        assert!(csv.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{csv}");
        assert!(csv.contains(",2026-11-01,2026-11-30,4,0.7500,0.5000,,1.2,2\r\n"), "{csv}");
    }
}
