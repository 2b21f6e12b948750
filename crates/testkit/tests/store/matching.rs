//! The matching store: residents by phone blind index and by name in
//! batches, within a scope; lists saved with their rows and audit entry in
//! one transaction, and replaced whole on a re-run.

use std::sync::Arc;

use epigrid_domain::AreaKind;
use epigrid_store::{AuditQuery, AuditRecord, MatchListRecord, MatchRowRecord, Store};
use epigrid_testkit::{Chain, household, now, resident, sealed};
use uuid::Uuid;

fn list(chain: &Chain) -> MatchListRecord {
    let at = now();
    MatchListRecord {
        id: Uuid::now_v7(),
        name: "协查名单.xlsx".into(),
        uploaded_by: None,
        uploaded_by_name: "system".into(),
        scope_kind: Some(AreaKind::Community),
        scope_area_id: Some(chain.community.id),
        headers: r#"["姓名","身份证号"]"#.into(),
        total: 0,
        exact: 0,
        probable: 0,
        unmatched: 0,
        created_at: at,
        updated_at: at,
    }
}

fn row(list: &MatchListRecord, n: i64, class: &str) -> MatchRowRecord {
    MatchRowRecord {
        list_id: list.id,
        row_number: n,
        cells: format!(r#"["人{n}","x"]"#),
        class: class.into(),
        resident_id: (class != "none").then(Uuid::now_v7),
        grid_id: None,
        task_id: None,
        reason: "matching.reason.id".into(),
        task_state: None,
    }
}

fn audit(list: &MatchListRecord) -> AuditRecord {
    AuditRecord {
        id: Uuid::now_v7(),
        at: now(),
        actor_user_id: None,
        actor_name: "system".into(),
        actor_role: None,
        action: "matching.run".into(),
        target_kind: Some("match_list".into()),
        target_id: Some(list.id),
        community_id: None,
        client_addr: None,
        outcome: "ok".into(),
        detail: r#"{"exact":1}"#.into(),
    }
}

epigrid_testkit::store_contract_tests! {
    async fn residents_are_found_by_phone_and_name_within_a_scope(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "匹配").await;
        let other = chain.insert_sibling_grid(&*store, "邻格").await;
        let h1 = household(&chain.unit, "101");
        let h2 = household(&other.unit, "201");
        let mut a = resident(&h1, "张三");
        a.phone = Some(sealed("13800000001"));
        let mut b = resident(&h2, "张三");
        b.phone = Some(sealed("13800000002"));
        let c = resident(&h2, "李四");
        store.insert_bulk(&[h1, h2], &[a.clone(), b.clone(), c.clone()]).await.unwrap();

        // More blind indexes than one IN list holds: the batches join up.
        let mut blinds: Vec<Vec<u8>> = (0..2_500).map(|i| format!("none{i}").into_bytes()).collect();
        blinds.push(sealed("13800000001").blind_index);
        blinds.push(sealed("13800000002").blind_index);
        let mut found: Vec<Uuid> =
            store.residents_by_phone_blind(&blinds, None).await.unwrap().iter().map(|r| r.id).collect();
        found.sort();
        let mut want = vec![a.id, b.id];
        want.sort();
        assert_eq!(found, want);
        let in_grid = store
            .residents_by_phone_blind(&blinds, Some(chain.scope(AreaKind::Grid)))
            .await
            .unwrap();
        assert_eq!(in_grid.iter().map(|r| r.id).collect::<Vec<_>>(), [a.id]);

        let names = vec!["张三".to_owned(), "王五".to_owned()];
        assert_eq!(store.residents_by_names(&names, None).await.unwrap().len(), 2);
        let other_grid = store
            .residents_by_names(&names, Some(other.scope(AreaKind::Grid)))
            .await
            .unwrap();
        assert_eq!(other_grid.iter().map(|r| r.id).collect::<Vec<_>>(), [b.id]);
    }

    async fn a_list_saves_with_its_rows_and_a_rerun_replaces_them(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "名单").await;
        let mut l = list(&chain);
        l.total = 1_203;
        l.exact = 1;
        l.probable = 2;
        l.unmatched = 1_200;
        let rows: Vec<MatchRowRecord> = (1..=1_203)
            .map(|n| row(&l, n, match n { 1 => "exact", 2 | 3 => "probable", _ => "none" }))
            .collect();
        store.save_match_list(&l, &rows, &audit(&l)).await.unwrap();

        let back = store.get_match_list(l.id).await.unwrap().unwrap();
        assert_eq!(back.scope(), Some(chain.scope(AreaKind::Community)));
        assert_eq!((back.total, back.exact, back.probable, back.unmatched), (1_203, 1, 2, 1_200));
        let stored = store.match_rows(l.id).await.unwrap();
        assert_eq!(stored.len(), 1_203);
        assert_eq!(stored[0], rows[0]);
        assert_eq!(stored[1_202].row_number, 1_203);
        assert_eq!(stored[1_202].cells, r#"["人1203","x"]"#);

        // A re-run: same list, new counts, the rows replaced, not added.
        let mut again = back.clone();
        again.exact = 2;
        again.unmatched = 1_199;
        let mut rows2 = rows.clone();
        rows2[3].class = "exact".into();
        store.save_match_list(&again, &rows2, &audit(&again)).await.unwrap();
        let stored = store.match_rows(l.id).await.unwrap();
        assert_eq!(stored.len(), 1_203);
        assert_eq!(stored[3].class, "exact");
        assert_eq!(store.get_match_list(l.id).await.unwrap().unwrap().exact, 2);
        assert_eq!(store.list_match_lists(10).await.unwrap().len(), 1);

        let audited = store
            .list_audit(&AuditQuery { action: Some("matching.run".into()), limit: 100, ..Default::default() })
            .await
            .unwrap();
        assert_eq!(audited.len(), 2);
        assert!(store.match_rows(Uuid::now_v7()).await.unwrap().is_empty());
        assert!(store.get_match_list(Uuid::now_v7()).await.unwrap().is_none());
    }
}
