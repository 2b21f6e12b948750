//! The area hierarchy: sub-district → community → grid → building → unit.
//! Households hang under a unit and residents under a household; those two are
//! records of their own, not areas.
//!
//! Every area and record carries its full path of ancestors (`AreaPath`), so
//! that a scope check is a comparison, not a walk up the tree.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AreaKind {
    SubDistrict,
    Community,
    Grid,
    Building,
    Unit,
}

impl AreaKind {
    pub const ALL: [AreaKind; 5] = [
        AreaKind::SubDistrict,
        AreaKind::Community,
        AreaKind::Grid,
        AreaKind::Building,
        AreaKind::Unit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AreaKind::SubDistrict => "sub_district",
            AreaKind::Community => "community",
            AreaKind::Grid => "grid",
            AreaKind::Building => "building",
            AreaKind::Unit => "unit",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == input)
    }

    /// The kind a parent of this kind must have; `None` for the root.
    pub fn parent_kind(self) -> Option<AreaKind> {
        match self {
            AreaKind::SubDistrict => None,
            AreaKind::Community => Some(AreaKind::SubDistrict),
            AreaKind::Grid => Some(AreaKind::Community),
            AreaKind::Building => Some(AreaKind::Grid),
            AreaKind::Unit => Some(AreaKind::Building),
        }
    }

    pub fn depth(self) -> usize {
        self as usize
    }
}

/// 基础网格 (residential) or one of the 专属网格 (dedicated to an organisation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GridKind {
    Residential,
    School,
    Market,
    Hospital,
    Enterprise,
    Institution,
    OtherDedicated,
}

impl GridKind {
    pub const ALL: [GridKind; 7] = [
        GridKind::Residential,
        GridKind::School,
        GridKind::Market,
        GridKind::Hospital,
        GridKind::Enterprise,
        GridKind::Institution,
        GridKind::OtherDedicated,
    ];

    pub fn is_dedicated(self) -> bool {
        self != GridKind::Residential
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GridKind::Residential => "residential",
            GridKind::School => "school",
            GridKind::Market => "market",
            GridKind::Hospital => "hospital",
            GridKind::Enterprise => "enterprise",
            GridKind::Institution => "institution",
            GridKind::OtherDedicated => "other_dedicated",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == input)
    }
}

/// The ids of an area's ancestors and itself, root first. A household or
/// resident has the path of its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct AreaPath {
    pub sub_district: Option<Uuid>,
    pub community: Option<Uuid>,
    pub grid: Option<Uuid>,
    pub building: Option<Uuid>,
    pub unit: Option<Uuid>,
}

impl AreaPath {
    /// The id at a given level of the path.
    pub fn at(&self, kind: AreaKind) -> Option<Uuid> {
        match kind {
            AreaKind::SubDistrict => self.sub_district,
            AreaKind::Community => self.community,
            AreaKind::Grid => self.grid,
            AreaKind::Building => self.building,
            AreaKind::Unit => self.unit,
        }
    }

    /// The path of a child `id` of kind `kind` under this path.
    pub fn child(mut self, kind: AreaKind, id: Uuid) -> AreaPath {
        match kind {
            AreaKind::SubDistrict => self.sub_district = Some(id),
            AreaKind::Community => self.community = Some(id),
            AreaKind::Grid => self.grid = Some(id),
            AreaKind::Building => self.building = Some(id),
            AreaKind::Unit => self.unit = Some(id),
        }
        self
    }
}

/// A community or grid boundary: a GeoJSON Polygon or MultiPolygon in WGS-84
/// longitude/latitude, every ring closed and with at least four positions.
#[derive(Debug, Clone, PartialEq)]
pub struct Boundary(geojson::Geometry);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoundaryError {
    #[error("boundary is not valid GeoJSON")]
    NotGeoJson,
    #[error("boundary must be a Polygon or MultiPolygon")]
    NotPolygon,
    #[error("every ring must be closed and have at least 4 positions")]
    BadRing,
    #[error("coordinates must be longitude -180..180 and latitude -90..90")]
    OutOfRange,
}

impl crate::ReasonCode for BoundaryError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotGeoJson => "boundary.not_geojson",
            Self::NotPolygon => "boundary.not_polygon",
            Self::BadRing => "boundary.bad_ring",
            Self::OutOfRange => "boundary.out_of_range",
        }
    }
}

impl Boundary {
    pub fn from_geojson_value(value: serde_json::Value) -> Result<Self, BoundaryError> {
        // geojson 1.0 dropped `Geometry::from_json_value`; serde is the way in.
        let geometry: geojson::Geometry =
            serde_json::from_value(value).map_err(|_| BoundaryError::NotGeoJson)?;
        Self::from_geometry(geometry)
    }

    pub fn parse(text: &str) -> Result<Self, BoundaryError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|_| BoundaryError::NotGeoJson)?;
        Self::from_geojson_value(value)
    }

    pub fn from_geometry(geometry: geojson::Geometry) -> Result<Self, BoundaryError> {
        let polygons: Vec<&geojson::PolygonType> = match &geometry.value {
            geojson::GeometryValue::Polygon { coordinates } => vec![coordinates],
            geojson::GeometryValue::MultiPolygon { coordinates } => coordinates.iter().collect(),
            _ => return Err(BoundaryError::NotPolygon),
        };
        // Without this, `"coordinates": []` would pass every ring check
        // vacuously and store a boundary that encloses nothing.
        if polygons.is_empty() || polygons.iter().any(|p| p.is_empty()) {
            return Err(BoundaryError::BadRing);
        }
        for ring in polygons.into_iter().flatten() {
            if ring.len() < 4 || ring.first() != ring.last() {
                return Err(BoundaryError::BadRing);
            }
            for position in ring {
                let in_range = position.len() >= 2
                    && (-180.0..=180.0).contains(&position[0])
                    && (-90.0..=90.0).contains(&position[1]);
                if !in_range {
                    return Err(BoundaryError::OutOfRange);
                }
            }
        }
        Ok(Self(geometry))
    }

    /// Outer rings as (lon, lat) lists, for drawing.
    pub fn outer_rings(&self) -> Vec<Vec<(f64, f64)>> {
        let to_points = |ring: &Vec<geojson::Position>| ring.iter().map(|p| (p[0], p[1])).collect();
        match &self.0.value {
            geojson::GeometryValue::Polygon { coordinates } => {
                coordinates.first().map(to_points).into_iter().collect()
            }
            geojson::GeometryValue::MultiPolygon { coordinates } => {
                coordinates.iter().filter_map(|p| p.first().map(to_points)).collect()
            }
            _ => Vec::new(),
        }
    }

    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::to_value(&self.0).unwrap_or(serde_json::Value::Null)
    }

    pub fn to_json_string(&self) -> String {
        self.to_json_value().to_string()
    }

    /// A simple closed rectangle, used by the demo and in tests.
    pub fn rectangle(west: f64, south: f64, east: f64, north: f64) -> Self {
        let ring = vec![
            vec![west, south],
            vec![east, south],
            vec![east, north],
            vec![west, north],
            vec![west, south],
        ];
        Self(geojson::Geometry::new_polygon(vec![ring]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_closed_polygon_is_accepted_and_round_trips() {
        let value = json!({
            "type": "Polygon",
            "coordinates": [[[116.30, 39.90], [116.31, 39.90], [116.31, 39.91], [116.30, 39.90]]]
        });
        let boundary = Boundary::from_geojson_value(value).unwrap();
        assert_eq!(
            boundary.outer_rings(),
            vec![vec![(116.30, 39.90), (116.31, 39.90), (116.31, 39.91), (116.30, 39.90)]]
        );
        assert_eq!(Boundary::parse(&boundary.to_json_string()), Ok(boundary));
    }

    #[test]
    fn a_multipolygon_yields_one_outer_ring_per_polygon() {
        let text = r#"{"type":"MultiPolygon","coordinates":[
            [[[0,0],[1,0],[1,1],[0,0]]],
            [[[2,2],[3,2],[3,3],[2,2]], [[2.1,2.1],[2.2,2.1],[2.2,2.2],[2.1,2.1]]]
        ]}"#;
        let rings = Boundary::parse(text).unwrap().outer_rings();
        assert_eq!(rings.len(), 2);
        assert_eq!(rings[1][0], (2.0, 2.0));
    }

    #[test]
    fn the_rectangle_helper_is_a_valid_boundary() {
        let rectangle = Boundary::rectangle(116.0, 39.0, 116.1, 39.1);
        assert_eq!(Boundary::from_geojson_value(rectangle.to_json_value()), Ok(rectangle));
    }

    #[test]
    fn an_unclosed_or_short_ring_is_rejected() {
        let unclosed = r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}"#;
        assert_eq!(Boundary::parse(unclosed), Err(BoundaryError::BadRing));
        let short = r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,0]]]}"#;
        assert_eq!(Boundary::parse(short), Err(BoundaryError::BadRing));
        let bad_hole = r#"{"type":"Polygon","coordinates":[
            [[0,0],[1,0],[1,1],[0,0]], [[0.1,0.1],[0.2,0.1],[0.2,0.2],[0.1,0.3]]
        ]}"#;
        assert_eq!(Boundary::parse(bad_hole), Err(BoundaryError::BadRing));
    }

    #[test]
    fn a_polygon_without_rings_is_rejected() {
        for empty in [
            r#"{"type":"Polygon","coordinates":[]}"#,
            r#"{"type":"MultiPolygon","coordinates":[]}"#,
        ] {
            assert_eq!(Boundary::parse(empty), Err(BoundaryError::BadRing), "{empty}");
        }
        // geojson's parser already refuses `[[]]`, but a Geometry built in code can hold it.
        let ringless_member = geojson::Geometry::new(geojson::GeometryValue::MultiPolygon {
            coordinates: vec![vec![]],
        });
        assert_eq!(Boundary::from_geometry(ringless_member), Err(BoundaryError::BadRing));
    }

    #[test]
    fn other_geometries_are_rejected() {
        let point = r#"{"type":"Point","coordinates":[116.3,39.9]}"#;
        assert_eq!(Boundary::parse(point), Err(BoundaryError::NotPolygon));
        let line = r#"{"type":"LineString","coordinates":[[0,0],[1,1]]}"#;
        assert_eq!(Boundary::parse(line), Err(BoundaryError::NotPolygon));
    }

    #[test]
    fn coordinates_out_of_range_are_rejected() {
        // Latitude and longitude swapped is the usual cause.
        let swapped = r#"{"type":"Polygon","coordinates":[[[39.9,116.3],[39.9,116.4],[40.0,116.4],[39.9,116.3]]]}"#;
        assert_eq!(Boundary::parse(swapped), Err(BoundaryError::OutOfRange));
        let far_east =
            r#"{"type":"Polygon","coordinates":[[[180.5,0],[181,0],[181,1],[180.5,0]]]}"#;
        assert_eq!(Boundary::parse(far_east), Err(BoundaryError::OutOfRange));
    }

    #[test]
    fn text_that_is_not_geojson_is_rejected() {
        assert_eq!(Boundary::parse("not json"), Err(BoundaryError::NotGeoJson));
        assert_eq!(Boundary::parse(r#"{"type":"Circle"}"#), Err(BoundaryError::NotGeoJson));
        assert_eq!(Boundary::parse(r#"{"type":"Polygon"}"#), Err(BoundaryError::NotGeoJson));
    }

    #[test]
    fn area_kinds_chain_up_to_the_sub_district() {
        for kind in AreaKind::ALL {
            assert_eq!(AreaKind::parse(kind.as_str()), Some(kind));
            if let Some(parent) = kind.parent_kind() {
                assert_eq!(parent.depth() + 1, kind.depth());
            }
        }
        assert_eq!(AreaKind::SubDistrict.parent_kind(), None);
    }
}
