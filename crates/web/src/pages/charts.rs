//! Charts as server-side SVG: the age pyramid, residents by key group, and
//! registered against floating residents per area.

use epigrid_service::dashboard::{AgeBand, AreaWithFigures};
use epigrid_store::TagCount;

use super::Tr;

pub fn age_pyramid(bands: &[AgeBand], tr: &Tr) -> String {
    let _ = (bands, tr);
    String::new()
}

pub fn tag_bars(tags: &[TagCount], tr: &Tr) -> String {
    let _ = (tags, tr);
    String::new()
}

pub fn residence_bars(areas: &[AreaWithFigures], tr: &Tr) -> String {
    let _ = (areas, tr);
    String::new()
}
