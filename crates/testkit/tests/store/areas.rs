//! Areas: the hierarchy from sub-district down to unit.

use std::sync::Arc;

use epigrid_domain::{AreaKind, Boundary, GridKind, Scope};
use epigrid_store::{AreaQuery, AreaRecord, Store};
use epigrid_testkit::{Chain, child_area, insert_area, now, sub_district, unique_code};
use uuid::Uuid;

use crate::support::{assert_conflict, assert_missing_reference, collect_pages, sorted};

fn area_id(area: &AreaRecord) -> Uuid {
    area.id
}

epigrid_testkit::store_contract_tests! {
    async fn round_trip_keeps_every_field(store: Arc<dyn Store>) {
        let mut chain = Chain::build("东风");
        chain.grid.grid_kind = Some(GridKind::Market);
        chain.grid.boundary = Some(Boundary::rectangle(116.31, 39.91, 116.32, 39.92));
        for area in chain.areas() {
            insert_area(&*store, area).await;
        }

        for area in chain.areas() {
            assert_eq!(store.get_area(area.id).await.unwrap().as_ref(), Some(area));
        }
        let grid = store.get_area(chain.grid.id).await.unwrap().unwrap();
        assert_eq!(grid.grid_kind, Some(GridKind::Market));
        assert_eq!(grid.code, chain.grid.code);
        assert_eq!(grid.path.community, Some(chain.community.id));
        assert_eq!(store.get_area(Uuid::now_v7()).await.unwrap(), None);
    }

    async fn list_by_parent_and_kind_pages_in_id_order(store: Arc<dyn Store>) {
        let root = sub_district("红星");
        let north = child_area(&root, AreaKind::Community, "北");
        let south = child_area(&root, AreaKind::Community, "南");
        let north_grids: Vec<AreaRecord> =
            (0..7).map(|i| child_area(&north, AreaKind::Grid, &format!("北{i}"))).collect();
        let south_grids: Vec<AreaRecord> =
            (0..3).map(|i| child_area(&south, AreaKind::Grid, &format!("南{i}"))).collect();
        for area in [&root, &north, &south] {
            insert_area(&*store, area).await;
        }
        // Newest first, so insertion order is the reverse of id order.
        for grid in north_grids.iter().chain(&south_grids).rev() {
            insert_area(&*store, grid).await;
        }

        let by_parent = collect_pages(3, area_id, |after| {
            let store = store.clone();
            let query = AreaQuery { parent_id: Some(north.id), after, limit: 3, ..Default::default() };
            async move { store.list_areas(&query).await }
        })
        .await;
        assert_eq!(
            by_parent.iter().map(|a| a.id).collect::<Vec<_>>(),
            sorted(north_grids.iter().map(|g| g.id)),
            "every grid of the community, once, in id order"
        );
        assert_eq!(by_parent[0], north_grids[0], "listed records are complete");

        let grids = collect_pages(4, area_id, |after| {
            let store = store.clone();
            let query = AreaQuery { kind: Some(AreaKind::Grid), after, limit: 4, ..Default::default() };
            async move { store.list_areas(&query).await }
        })
        .await;
        assert_eq!(
            grids.iter().map(|a| a.id).collect::<Vec<_>>(),
            sorted(north_grids.iter().chain(&south_grids).map(|g| g.id))
        );

        let communities = store
            .list_areas(&AreaQuery { kind: Some(AreaKind::Community), limit: 100, ..Default::default() })
            .await
            .unwrap();
        assert_eq!(communities.iter().map(|a| a.id).collect::<Vec<_>>(), sorted([north.id, south.id]));

        let south_grid_ids = store
            .list_areas(&AreaQuery {
                parent_id: Some(south.id),
                kind: Some(AreaKind::Grid),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            south_grid_ids.iter().map(|a| a.id).collect::<Vec<_>>(),
            sorted(south_grids.iter().map(|g| g.id))
        );
    }

    async fn within_scope_restricts_to_the_subtree(store: Arc<dyn Store>) {
        let a = Chain::insert(&*store, "甲").await;
        let a2 = a.insert_sibling_grid(&*store, "甲二").await;
        let other_community = child_area(&a.sub_district, AreaKind::Community, "乙");
        insert_area(&*store, &other_community).await;
        let b_grid = child_area(&other_community, AreaKind::Grid, "乙一");
        insert_area(&*store, &b_grid).await;

        let list = |within: Scope| {
            let store = store.clone();
            async move {
                let areas = store
                    .list_areas(&AreaQuery { within: Some(within), limit: 100, ..Default::default() })
                    .await
                    .unwrap();
                areas.into_iter().map(|a| a.id).collect::<Vec<_>>()
            }
        };

        assert_eq!(
            list(a.scope(AreaKind::Community)).await,
            sorted([a.community.id, a.grid.id, a.building.id, a.unit.id, a2.grid.id, a2.building.id, a2.unit.id]),
            "a community's scope holds the community and everything under it, nothing of its neighbour"
        );
        assert_eq!(
            list(a.scope(AreaKind::Grid)).await,
            sorted([a.grid.id, a.building.id, a.unit.id]),
            "a grid's scope holds none of the sibling grid"
        );
        assert_eq!(list(a.scope(AreaKind::Unit)).await, vec![a.unit.id]);
        assert_eq!(
            list(Scope { kind: AreaKind::Community, area_id: other_community.id }).await,
            sorted([other_community.id, b_grid.id])
        );
        assert_eq!(list(a.scope(AreaKind::SubDistrict)).await.len(), 10);

        let grids_of_a = store
            .list_areas(&AreaQuery {
                within: Some(a.scope(AreaKind::Community)),
                kind: Some(AreaKind::Grid),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(grids_of_a.iter().map(|g| g.id).collect::<Vec<_>>(), sorted([a.grid.id, a2.grid.id]));
    }

    async fn duplicate_code_is_a_conflict_on_areas_code(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "光明").await;
        let mut twin = child_area(&chain.community, AreaKind::Grid, "光明二");
        twin.code = chain.grid.code.clone();
        assert_conflict(store.insert_area(&twin).await, "areas_code");
        assert_eq!(store.get_area(twin.id).await.unwrap(), None);

        // Taking another area's code through an update is the same conflict.
        twin.code = Some(unique_code("G"));
        insert_area(&*store, &twin).await;
        let mut renamed = twin.clone();
        renamed.code = chain.community.code.clone();
        assert_conflict(store.update_area(&renamed).await, "areas_code");
        assert_eq!(store.get_area(twin.id).await.unwrap(), Some(twin));

        // Areas without a code never conflict with one another.
        let second_building = child_area(&chain.grid, AreaKind::Building, "2");
        assert_eq!((chain.building.code.as_ref(), second_building.code.as_ref()), (None, None));
        insert_area(&*store, &second_building).await;
    }

    async fn unknown_parent_is_a_missing_reference(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "向阳").await;
        let mut orphan = child_area(&chain.community, AreaKind::Grid, "孤儿");
        let ghost = Uuid::now_v7();
        orphan.parent_id = Some(ghost);
        orphan.path.community = Some(ghost);
        assert_missing_reference(store.insert_area(&orphan).await);
        assert_eq!(store.get_area(orphan.id).await.unwrap(), None);
    }

    async fn update_area_changes_fields_and_reports_unknown_ids(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "胜利").await;

        let mut grid = chain.grid.clone();
        grid.name = "胜利学校网格".into();
        grid.code = Some(unique_code("G"));
        grid.grid_kind = Some(GridKind::School);
        grid.boundary = Some(Boundary::rectangle(116.05, 39.05, 116.06, 39.06));
        grid.updated_at = now() + chrono::TimeDelta::minutes(5);
        assert!(store.update_area(&grid).await.unwrap());
        assert_eq!(store.get_area(grid.id).await.unwrap(), Some(grid.clone()));

        let mut building = chain.building.clone();
        building.address = None;
        building.name = "新1号楼".into();
        assert!(store.update_area(&building).await.unwrap());
        assert_eq!(store.get_area(building.id).await.unwrap(), Some(building.clone()));

        // The parent and path never change, whatever the record says.
        let elsewhere = chain.insert_sibling_grid(&*store, "别处").await;
        let mut moved = building.clone();
        moved.parent_id = Some(elsewhere.grid.id);
        moved.path = elsewhere.grid.path.child(AreaKind::Building, building.id);
        assert!(store.update_area(&moved).await.unwrap());
        let stored = store.get_area(building.id).await.unwrap().unwrap();
        assert_eq!((stored.parent_id, stored.path), (building.parent_id, building.path));

        let mut unknown = chain.grid.clone();
        unknown.id = Uuid::now_v7();
        unknown.code = Some(unique_code("G"));
        assert!(!store.update_area(&unknown).await.unwrap());
        assert_eq!(store.get_area(unknown.id).await.unwrap(), None);
        // The failed update touched nothing else.
        assert_eq!(store.get_area(grid.id).await.unwrap(), Some(grid));
    }
}
