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
    async fn area_figures_birth_years_and_tags_aggregate_within_a_scope(store: Arc<dyn Store>) {
        use epigrid_domain::{Residence, Sex};
        use epigrid_store::{AreaFigures, BirthYearCount, TagCount};
        use epigrid_testkit::{date, tags};

        let root = sub_district("图表");
        let a = child_area(&root, AreaKind::Community, "甲");
        let a1 = child_area(&a, AreaKind::Grid, "甲一");
        let a2 = child_area(&a, AreaKind::Grid, "甲二");
        let building1 = child_area(&a1, AreaKind::Building, "1");
        let unit1 = child_area(&building1, AreaKind::Unit, "1");
        let building2 = child_area(&a2, AreaKind::Building, "2");
        let unit2 = child_area(&building2, AreaKind::Unit, "1");
        for area in [&root, &a, &a1, &a2, &building1, &unit1, &building2, &unit2] {
            insert_area(&*store, area).await;
        }
        let h1 = household(&unit1, "101");
        let h2 = household(&unit1, "102");
        let h3 = household(&unit2, "101");
        let mut old = resident(&h1, "老人");
        old.birth_date = date(1940, 5, 1);
        old.sex = Sex::Female;
        old.tags = tags(&["aged_80_plus", "elderly_alone"]);
        let mut floating = resident(&h2, "外来");
        floating.residence = Residence::Floating { arrived_on: date(2022, 1, 1), origin: "济南".into() };
        floating.birth_date = date(1990, 3, 3);
        let mut baby = resident(&h3, "婴儿");
        baby.birth_date = date(2024, 6, 1);
        baby.tags = tags(&["infant"]);
        store.insert_bulk(&[h1, h2, h3], &[old, floating, baby]).await.unwrap();

        let mut by_grid = store.area_figures(scope(&a), AreaKind::Grid).await.unwrap();
        by_grid.sort_by_key(|f| f.area_id == a2.id);
        assert_eq!(
            by_grid,
            vec![
                AreaFigures { area_id: a1.id, residents: 2, households: 2, floating: 1, key_group: 1 },
                AreaFigures { area_id: a2.id, residents: 1, households: 1, floating: 0, key_group: 1 },
            ]
        );
        let in_a2 = store.area_figures(scope(&a2), AreaKind::Grid).await.unwrap();
        assert_eq!(in_a2.len(), 1, "a scope narrows the groups: {in_a2:?}");

        let years = store.birth_year_counts(scope(&a1)).await.unwrap();
        assert_eq!(
            years,
            vec![
                BirthYearCount { year: 1940, sex: Sex::Female, residents: 1 },
                BirthYearCount { year: 1990, sex: Sex::Male, residents: 1 },
            ]
        );
        let everywhere = store.birth_year_counts(None).await.unwrap();
        assert_eq!(everywhere.iter().map(|c| c.residents).sum::<i64>(), 3);

        let tag_counts = store.tag_counts(scope(&a)).await.unwrap();
        let expect = |tag: &str, residents: i64| TagCount { tag: tag.into(), residents };
        assert_eq!(tag_counts, vec![expect("aged_80_plus", 1), expect("elderly_alone", 1), expect("infant", 1)]);
        assert_eq!(store.tag_counts(scope(&a1)).await.unwrap().len(), 2, "the infant lives in the other grid");
    }

    async fn several_areas_and_households_are_read_at_once(store: Arc<dyn Store>) {
        let root = sub_district("批量");
        let a = child_area(&root, AreaKind::Community, "甲");
        let grid = child_area(&a, AreaKind::Grid, "甲一");
        let building = child_area(&grid, AreaKind::Building, "1");
        let unit = child_area(&building, AreaKind::Unit, "1");
        for area in [&root, &a, &grid, &building, &unit] {
            insert_area(&*store, area).await;
        }
        let homes: Vec<HouseholdRecord> = (1..=3).map(|i| household(&unit, &format!("{i}01"))).collect();
        store.insert_bulk(&homes, &[]).await.unwrap();
        let wanted = [grid.id, unit.id, Uuid::now_v7()];
        let mut found: Vec<Uuid> = store.get_areas(&wanted).await.unwrap().iter().map(|x| x.id).collect();
        found.sort();
        let mut expected = vec![grid.id, unit.id];
        expected.sort();
        assert_eq!(found, expected, "unknown ids are left out");
        let ids: Vec<Uuid> = homes.iter().map(|h| h.id).chain([Uuid::now_v7()]).collect();
        let mut rooms: Vec<String> = store.get_households(&ids).await.unwrap().into_iter().map(|h| h.room).collect();
        rooms.sort();
        assert_eq!(rooms, ["101", "201", "301"]);
        assert!(store.get_areas(&[]).await.unwrap().is_empty());
    }
}
