//! Printable QR sheets for resident self-service (issue #6): one A4 page per
//! building with a big QR code of the building's self-service address, its
//! name and short instructions in Chinese. `/areas/{id}/qr` prints one
//! building, or every building of a grid or a community, one per page.
//!
//! The code is drawn on the server as SVG (the `qrcode` crate, no image
//! stack, no script) and inlined, so the sheet prints from any browser.
//! The address is `public_base_url` from the settings when set (behind a
//! proxy the request's host may be an internal name), else the request's
//! own scheme and host.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use epigrid_domain::AreaKind;
use epigrid_service::ServiceError;
use qrcode::{EcLevel, QrCode};

use super::areas::{kind_key, parse_id};
use super::{Chrome, PageActor, Tr, error_page, or_error_page, render};
use crate::AppState;
use crate::i18n::Lang;

/// One building's sheet.
#[derive(Debug, Clone)]
pub struct Sheet {
    pub building: String,
    pub address: String,
    /// The place above the building: "东昌社区 · 第一网格".
    pub place: String,
    pub url: String,
    /// Inline SVG of the QR code.
    pub svg: String,
}

#[derive(Template)]
#[template(path = "qr.html")]
struct QrPage {
    chrome: Chrome,
    title: String,
    back: String,
    sheets: Vec<Sheet>,
    /// The sheets are for residents: always in Chinese, whatever the
    /// language of the staff member printing them.
    zh: Tr,
}

/// The scheme and host residents reach this server at.
pub fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.service.settings().public_base_url {
        return url.trim_end_matches('/').to_owned();
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let host = header("x-forwarded-host")
        .or_else(|| header(header::HOST.as_str()))
        .and_then(|h| h.split(',').next())
        .map(str::trim)
        // A Host with anything but host characters is not echoed into a code.
        .filter(|h| {
            !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        })
        .unwrap_or("localhost");
    let scheme = match header("x-forwarded-proto") {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        Some(_) => "http",
        None if state.secure_cookies => "https",
        None => "http",
    };
    format!("{scheme}://{host}")
}

/// The QR code of `text` as an `<svg>` element scaled by CSS. Medium error
/// correction: a sheet on a stairwell door gets scuffed.
pub fn qr_svg(text: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .quiet_zone(true)
        .min_dimensions(240, 240)
        .build();
    // Inline in HTML: no XML declaration; sized by the stylesheet.
    let start = svg.find("<svg")?;
    Some(svg[start..].replacen("<svg ", "<svg class=\"qr-code\" role=\"img\" ", 1))
}

pub async fn show(
    State(state): State<AppState>,
    page: PageActor,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let lang = page.lang;
    let id = parse_id(&id, lang)?;
    let service = &state.service;
    let actor = &page.actor;
    let area = or_error_page(lang, service.get_area(actor, id).await)?;
    let trail = or_error_page(lang, service.area_trail(actor, id).await)?;
    let mut buildings = Vec::new();
    match area.kind {
        AreaKind::Building => buildings.push((area.clone(), trail.clone())),
        AreaKind::Grid | AreaKind::Community => {
            let grids = if area.kind == AreaKind::Grid {
                vec![area.id]
            } else {
                let children = or_error_page(lang, service.area_children(actor, id).await)?;
                children.into_iter().map(|c| c.area.id).collect()
            };
            for grid in grids {
                let grid_trail = or_error_page(lang, service.area_trail(actor, grid).await)?;
                for child in or_error_page(lang, service.area_children(actor, grid).await)? {
                    let mut building_trail = grid_trail.clone();
                    building_trail.push(child.area.clone());
                    buildings.push((child.area, building_trail));
                }
            }
        }
        // A sub-district would be hundreds of pages; a unit has no code of its own.
        AreaKind::SubDistrict | AreaKind::Unit => {
            return Err(error_page(lang, ServiceError::NotFound));
        }
    }
    let base = base_url(&state, &headers);
    let mut sheets = Vec::with_capacity(buildings.len());
    for (building, trail) in buildings {
        let url = format!("{base}/s/{}", service.building_token(building.id));
        let Some(svg) = qr_svg(&url) else {
            return Err(error_page(lang, ServiceError::Internal("QR code too long".into())));
        };
        let place = trail
            .iter()
            .filter(|a| matches!(a.kind, AreaKind::Community | AreaKind::Grid))
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(" · ");
        sheets.push(Sheet {
            building: building.name.clone(),
            address: building.address.clone().unwrap_or_default(),
            place,
            url,
            svg,
        });
    }
    let chrome = page.chrome("dashboard");
    let tr = chrome.tr;
    let title =
        tr.fill("qr.title", &[("area", area.name.clone()), ("kind", tr.t(kind_key(area.kind)))]);
    Ok(render(&QrPage {
        chrome,
        title,
        back: format!("/areas/{}", area.id),
        sheets,
        zh: Tr(Lang::ZhCn),
    }))
}
