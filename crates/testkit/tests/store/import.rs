//! The import store: scoped snapshots, blind-index lookups, job records, and
//! chunks that commit whole (with their audit entry) or not at all.

use std::sync::Arc;

use epigrid_domain::{AreaKind, Residence};
use epigrid_store::{AuditQuery, AuditRecord, ImportChunk, ImportJobRecord, Store, StoreError};
use epigrid_testkit::{Chain, child_area, date, household, now, resident, sealed, tags};
use uuid::Uuid;

fn job() -> ImportJobRecord {
    let at = now();
    ImportJobRecord {
        id: Uuid::now_v7(),
        file_sha256: vec![0xAB; 32],
        actor_user_id: None,
        actor_name: "system".into(),
        mode: "valid_only".into(),
        status: "running".into(),
        total_rows: 3,
        inserted: 0,
        updated: 0,
        unchanged: 0,
        rejected: 0,
        chunks_done: 0,
        created_at: at,
        updated_at: at,
    }
}

fn audit(job: &ImportJobRecord) -> AuditRecord {
    AuditRecord {
        id: Uuid::now_v7(),
        at: now(),
        actor_user_id: None,
        actor_name: "system".into(),
        actor_role: None,
        action: "import.chunk".into(),
        target_kind: Some("import_job".into()),
        target_id: Some(job.id),
        community_id: None,
        client_addr: None,
        outcome: "ok".into(),
        detail: r#"{"inserted":1}"#.into(),
    }
}

epigrid_testkit::store_contract_tests! {
    async fn snapshots_are_scoped_and_parents_come_first(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "导入").await;
        let other = chain.insert_sibling_grid(&*store, "另一").await;
        let h1 = household(&chain.unit, "101");
        let h2 = household(&other.unit, "201");
        store.insert_bulk(&[h1.clone(), h2.clone()], &[]).await.unwrap();

        let all = store.areas_within(Some(chain.scope(AreaKind::Community))).await.unwrap();
        assert_eq!(all.len(), 1 + 2 * 3, "community, two grids with a building and unit each");
        let kinds: Vec<usize> = all.iter().map(|a| a.kind.depth()).collect();
        assert!(kinds.windows(2).all(|w| w[0] <= w[1]), "parents first: {kinds:?}");
        let grid_only = store.areas_within(Some(chain.scope(AreaKind::Grid))).await.unwrap();
        assert_eq!(
            grid_only.iter().map(|a| a.id).collect::<Vec<_>>(),
            vec![chain.grid.id, chain.building.id, chain.unit.id]
        );
        assert_eq!(store.households_within(Some(chain.scope(AreaKind::Grid))).await.unwrap(), vec![h1.clone()]);
        let mut everything = store.households_within(None).await.unwrap();
        everything.sort_by_key(|h| h.id);
        assert_eq!(everything, vec![h1, h2]);
    }

    async fn residents_are_found_by_blind_index_in_batches(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "盲索引").await;
        let home = household(&chain.unit, "101");
        let people: Vec<_> = (0..1_203)
            .map(|i| {
                let mut r = resident(&home, &format!("居民{i}"));
                r.id_number = Some(sealed(&format!("id-{i}")));
                r
            })
            .collect();
        store.bulk_load(std::slice::from_ref(&home), &people).await.unwrap();
        let wanted: Vec<Vec<u8>> = (0..1_203)
            .step_by(2)
            .map(|i| sealed(&format!("id-{i}")).blind_index)
            .chain([sealed("nobody").blind_index])
            .collect();
        let mut found = store.residents_by_id_blind(&wanted).await.unwrap();
        found.sort_by_key(|r| r.id);
        let expected: Vec<_> = people.iter().step_by(2).cloned().collect();
        assert_eq!(found, expected);
        assert!(store.residents_by_id_blind(&[]).await.unwrap().is_empty());
    }

    async fn bulk_load_round_trips_every_field(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "批量").await;
        let home = household(&chain.unit, "3\\0\t1");
        let mut floating = resident(&home, "买买提·艾力");
        floating.id_kind = Some(epigrid_domain::IdDocumentKind::ResidentIdCard);
        floating.id_number = Some(sealed("a\\b\tc\nd"));
        floating.phone = Some(sealed("13800138000"));
        floating.residence = Residence::Floating { arrived_on: date(2024, 5, 1), origin: "山东\t济南\\".into() };
        floating.tags = tags(&["chronic_disease", "elderly_alone"]);
        let plain = resident(&home, "O'Brien \\N");
        store.bulk_load(std::slice::from_ref(&home), &[floating.clone(), plain.clone()]).await.unwrap();
        assert_eq!(store.get_household(home.id).await.unwrap(), Some(home));
        assert_eq!(store.get_resident(floating.id).await.unwrap(), Some(floating));
        assert_eq!(store.get_resident(plain.id).await.unwrap(), Some(plain));
        let counts = store.tag_counts(None).await.unwrap();
        assert_eq!(counts.len(), 2, "tag rows written with the residents");
    }

    async fn jobs_round_trip_and_are_found_by_file(store: Arc<dyn Store>) {
        let first = job();
        store.insert_import_job(&first).await.unwrap();
        let mut second = job();
        second.status = "done".into();
        store.insert_import_job(&second).await.unwrap();
        assert_eq!(store.get_import_job(first.id).await.unwrap(), Some(first.clone()));
        assert_eq!(store.latest_import_job(&[0xAB; 32]).await.unwrap(), Some(second.clone()));
        assert_eq!(store.latest_import_job(&[0xCD; 32]).await.unwrap(), None);
        second.unchanged = 2;
        second.rejected = 1;
        second.status = "failed".into();
        assert!(store.update_import_job(&second).await.unwrap());
        assert_eq!(store.get_import_job(second.id).await.unwrap(), Some(second));
        let mut ghost = job();
        ghost.id = Uuid::now_v7();
        assert!(!store.update_import_job(&ghost).await.unwrap());
    }

    async fn a_chunk_commits_whole_with_its_counters_and_audit(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "分块").await;
        let j = job();
        store.insert_import_job(&j).await.unwrap();
        let building = child_area(&chain.grid, AreaKind::Building, "9");
        let unit = child_area(&building, AreaKind::Unit, "1");
        let home = household(&unit, "901");
        let mut newcomer = resident(&home, "新人");
        newcomer.id_number = Some(sealed("new"));
        let old_home = household(&chain.unit, "101");
        let mut existing = resident(&old_home, "老人");
        existing.id_number = Some(sealed("old"));
        store.bulk_load(std::slice::from_ref(&old_home), std::slice::from_ref(&existing)).await.unwrap();
        let mut moved = existing.clone();
        moved.household_id = home.id;
        moved.path = home.path;
        moved.tags = tags(&["disabled"]);
        let at = now();
        let chunk = ImportChunk {
            job_id: j.id,
            areas: vec![building.clone(), unit.clone()],
            households: vec![home.clone()],
            inserts: vec![newcomer.clone()],
            updates: vec![moved.clone()],
            at,
            audit: audit(&j),
        };
        store.apply_import_chunk(&chunk).await.unwrap();
        assert_eq!(store.get_area(unit.id).await.unwrap(), Some(unit));
        assert_eq!(store.get_resident(newcomer.id).await.unwrap(), Some(newcomer));
        assert_eq!(store.get_resident(moved.id).await.unwrap(), Some(moved));
        let stored = store.get_import_job(j.id).await.unwrap().unwrap();
        assert_eq!((stored.inserted, stored.updated, stored.chunks_done), (1, 1, 1));
        let entries = store.list_audit(&AuditQuery { action: Some("import.chunk".into()), limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(entries.len(), 1);
        assert!(matches!(store.verify_audit_chain().await.unwrap(), epigrid_store::ChainVerdict::Intact { .. }));
    }

    async fn a_failing_chunk_leaves_nothing_behind(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "回滚").await;
        let j = job();
        store.insert_import_job(&j).await.unwrap();
        let taken = household(&chain.unit, "101");
        let mut holder = resident(&taken, "已有");
        holder.id_number = Some(sealed("same"));
        store.bulk_load(std::slice::from_ref(&taken), std::slice::from_ref(&holder)).await.unwrap();

        let building = child_area(&chain.grid, AreaKind::Building, "7");
        let unit = child_area(&building, AreaKind::Unit, "1");
        let home = household(&unit, "701");
        let fine = resident(&home, "没问题");
        let mut clash = resident(&home, "撞号");
        clash.id_number = Some(sealed("same"));
        let chunk = ImportChunk {
            job_id: j.id,
            areas: vec![building.clone(), unit.clone()],
            households: vec![home.clone()],
            inserts: vec![fine.clone(), clash],
            updates: vec![],
            at: now(),
            audit: audit(&j),
        };
        let error = store.apply_import_chunk(&chunk).await.unwrap_err();
        assert!(matches!(&error, StoreError::Conflict { constraint } if constraint == "residents_id_blind"), "{error:?}");
        assert_eq!(store.get_area(building.id).await.unwrap(), None);
        assert_eq!(store.get_household(home.id).await.unwrap(), None);
        assert_eq!(store.get_resident(fine.id).await.unwrap(), None);
        let stored = store.get_import_job(j.id).await.unwrap().unwrap();
        assert_eq!((stored.inserted, stored.chunks_done), (0, 0));
        let entries = store.list_audit(&AuditQuery { action: Some("import.chunk".into()), limit: 10, ..Default::default() }).await.unwrap();
        assert!(entries.is_empty(), "no audit entry for a chunk that was not written");
    }
}
