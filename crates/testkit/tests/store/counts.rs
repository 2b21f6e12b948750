//! The figures on the dashboard: how many of each level lie in a scope.

use std::sync::Arc;

use epigrid_domain::{AreaKind, Scope};
use epigrid_store::{AreaRecord, HouseholdRecord, LevelCounts, ResidentRecord, Store};
use epigrid_testkit::{child_area, household, insert_area, resident, sub_district};
use uuid::Uuid;

/// Fills `grid` with buildings, units, households and residents, storing
/// them all.
async fn fill_grid(
    store: &dyn Store,
    grid: &AreaRecord,
    buildings: usize,
    units_per_building: usize,
    households_per_unit: usize,
    residents_per_household: usize,
) {
    let mut households: Vec<HouseholdRecord> = Vec::new();
    let mut residents: Vec<ResidentRecord> = Vec::new();
    for b in 0..buildings {
        let building = child_area(grid, AreaKind::Building, &(b + 1).to_string());
        insert_area(store, &building).await;
        for u in 0..units_per_building {
            let unit = child_area(&building, AreaKind::Unit, &(u + 1).to_string());
            insert_area(store, &unit).await;
            for h in 0..households_per_unit {
                let home = household(&unit, &format!("{}0{}", h + 1, h + 1));
                for r in 0..residents_per_household {
                    residents.push(resident(&home, &format!("住户{r}")));
                }
                households.push(home);
            }
        }
    }
    store.insert_bulk(&households, &residents).await.unwrap();
}

fn scope(area: &AreaRecord) -> Option<Scope> {
    Some(Scope { kind: area.kind, area_id: area.id })
}

epigrid_testkit::store_contract_tests! {
    async fn level_counts_in_the_whole_store_and_in_scopes(store: Arc<dyn Store>) {
        assert_eq!(store.level_counts(None).await.unwrap(), LevelCounts::default(), "an empty store counts nothing");

        let root = sub_district("城关");
        let a = child_area(&root, AreaKind::Community, "甲");
        let b = child_area(&root, AreaKind::Community, "乙");
        let a1 = child_area(&a, AreaKind::Grid, "甲一");
        let a2 = child_area(&a, AreaKind::Grid, "甲二");
        let b1 = child_area(&b, AreaKind::Grid, "乙一");
        for area in [&root, &a, &b, &a1, &a2, &b1] {
            insert_area(&*store, area).await;
        }
        fill_grid(&*store, &a1, 2, 2, 2, 3).await;
        fill_grid(&*store, &a2, 1, 1, 1, 2).await;
        fill_grid(&*store, &b1, 1, 3, 1, 1).await;

        let whole = LevelCounts {
            sub_districts: 1,
            communities: 2,
            grids: 3,
            buildings: 4,
            units: 8,
            households: 12,
            residents: 29,
        };
        assert_eq!(store.level_counts(None).await.unwrap(), whole);
        assert_eq!(store.level_counts(scope(&root)).await.unwrap(), whole);
        assert_eq!(
            store.level_counts(scope(&a)).await.unwrap(),
            LevelCounts { sub_districts: 0, communities: 1, grids: 2, buildings: 3, units: 5, households: 9, residents: 26 }
        );
        assert_eq!(
            store.level_counts(scope(&b)).await.unwrap(),
            LevelCounts { sub_districts: 0, communities: 1, grids: 1, buildings: 1, units: 3, households: 3, residents: 3 }
        );
        assert_eq!(
            store.level_counts(scope(&a1)).await.unwrap(),
            LevelCounts { sub_districts: 0, communities: 0, grids: 1, buildings: 2, units: 4, households: 8, residents: 24 }
        );
        assert_eq!(
            store.level_counts(scope(&a2)).await.unwrap(),
            LevelCounts { sub_districts: 0, communities: 0, grids: 1, buildings: 1, units: 1, households: 1, residents: 2 }
        );
        let nowhere = Some(Scope { kind: AreaKind::Community, area_id: Uuid::now_v7() });
        assert_eq!(store.level_counts(nowhere).await.unwrap(), LevelCounts::default());
    }
}
