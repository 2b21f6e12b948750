//! The area hierarchy: sub-district → community → grid → building → unit.
//! Households hang under a unit and residents under a household; those two are
//! records of their own, not areas.
//!
//! Every area and record carries its full path of ancestors (`AreaPath`), so
//! that a scope check is a comparison, not a walk up the tree.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
        let to_points =
            |ring: &Vec<geojson::Position>| ring.iter().map(|p| (p[0], p[1])).collect();
        match &self.0.value {
            geojson::GeometryValue::Polygon { coordinates } => {
                coordinates.first().map(to_points).into_iter().collect()
            }
            geojson::GeometryValue::MultiPolygon { coordinates } => coordinates
                .iter()
                .filter_map(|p| p.first().map(to_points))
                .collect(),
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
