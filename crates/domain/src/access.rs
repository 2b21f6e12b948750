//! Roles and scope. Each account has one role and is scoped to one node of the
//! hierarchy; it sees and changes only what lies under that node. The service
//! layer asks these two questions on every call, so no handler can forget.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::area::{AreaKind, AreaPath};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 街道管理员: the whole sub-district, including accounts.
    SubDistrictAdmin,
    /// 社区管理员: one community, including its accounts.
    CommunityAdmin,
    /// 网格长: leads the workers of a grid (or of a community).
    GridLeader,
    /// 网格员: keeps the registry of one grid.
    GridWorker,
    /// 医务人员: reads residents for health work; does not edit the registry.
    MedicalStaff,
    /// 志愿者: sees areas only, never personal records.
    Volunteer,
}

/// What a caller wants to do. Scope is checked separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    ReadAreas,
    WriteAreas,
    ReadResidents,
    WriteResidents,
    ManageAccounts,
    /// See an ID number or phone in clear (always with a reason, audited).
    Unmask,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::SubDistrictAdmin,
        Role::CommunityAdmin,
        Role::GridLeader,
        Role::GridWorker,
        Role::MedicalStaff,
        Role::Volunteer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::SubDistrictAdmin => "sub_district_admin",
            Role::CommunityAdmin => "community_admin",
            Role::GridLeader => "grid_leader",
            Role::GridWorker => "grid_worker",
            Role::MedicalStaff => "medical_staff",
            Role::Volunteer => "volunteer",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == input)
    }

    pub fn allows(self, action: Action) -> bool {
        use Action::*;
        match self {
            Role::SubDistrictAdmin | Role::CommunityAdmin => true,
            Role::GridLeader => {
                matches!(action, ReadAreas | ReadResidents | WriteResidents | Unmask)
            }
            Role::GridWorker => matches!(action, ReadAreas | ReadResidents | WriteResidents),
            Role::MedicalStaff => matches!(action, ReadAreas | ReadResidents),
            Role::Volunteer => matches!(action, ReadAreas),
        }
    }

    /// The deepest node kind this role may be scoped to. An admin role scoped
    /// to a grid would make no sense, a grid worker scoped to the whole
    /// sub-district would break the least-privilege rule the other way round,
    /// so each role has a range of allowed scope levels.
    pub fn allowed_scope_kinds(self) -> &'static [AreaKind] {
        match self {
            Role::SubDistrictAdmin => &[AreaKind::SubDistrict],
            Role::CommunityAdmin => &[AreaKind::Community],
            Role::GridLeader => &[AreaKind::Community, AreaKind::Grid],
            Role::GridWorker => &[AreaKind::Grid],
            Role::MedicalStaff | Role::Volunteer => {
                &[AreaKind::SubDistrict, AreaKind::Community, AreaKind::Grid]
            }
        }
    }
}

/// The node an account is scoped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub struct Scope {
    pub kind: AreaKind,
    pub area_id: Uuid,
}

impl Scope {
    /// True when `path` lies at or under the scope node.
    pub fn covers(&self, path: &AreaPath) -> bool {
        path.at(self.kind) == Some(self.area_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_scope_covers_only_its_own_grid() {
        let (sd, c, g1, g2) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let base =
            AreaPath::default().child(AreaKind::SubDistrict, sd).child(AreaKind::Community, c);
        let in_g1 = base.child(AreaKind::Grid, g1);
        let in_g2 = base.child(AreaKind::Grid, g2);
        let scope = Scope { kind: AreaKind::Grid, area_id: g1 };
        assert!(scope.covers(&in_g1));
        assert!(!scope.covers(&in_g2));
        assert!(!scope.covers(&base), "a grid scope does not cover its community");
        let community = Scope { kind: AreaKind::Community, area_id: c };
        assert!(community.covers(&in_g1) && community.covers(&in_g2));
    }

    #[test]
    fn volunteers_never_read_residents() {
        assert!(!Role::Volunteer.allows(Action::ReadResidents));
        assert!(Role::GridWorker.allows(Action::WriteResidents));
        assert!(!Role::MedicalStaff.allows(Action::WriteResidents));
        assert!(!Role::GridWorker.allows(Action::ManageAccounts));
    }
}
