//! The audit log: appended, read back newest first, filtered, paged.

use std::sync::Arc;

use epigrid_domain::Role;
use epigrid_store::{AuditQuery, AuditRecord, Store};
use epigrid_testkit::now;
use uuid::Uuid;

fn entry(actor: &str, action: &str, target: Option<Uuid>) -> AuditRecord {
    AuditRecord {
        id: Uuid::now_v7(),
        at: now(),
        actor_user_id: Some(Uuid::now_v7()),
        actor_name: actor.into(),
        actor_role: Some(Role::GridWorker),
        action: action.into(),
        target_kind: target.map(|_| "resident".into()),
        target_id: target,
        community_id: None,
        client_addr: Some("127.0.0.1".into()),
        outcome: "ok".into(),
        detail: r#"{"fields":["phone"]}"#.into(),
    }
}

epigrid_testkit::store_contract_tests! {
    async fn audit_entries_read_back_newest_first_and_filter(store: Arc<dyn Store>) {
        let resident = Uuid::now_v7();
        let written = [
            entry("g01", "login", None),
            entry("g01", "resident.update", Some(resident)),
            entry("admin", "resident.unmask", Some(resident)),
            entry("g02", "resident.update", Some(Uuid::now_v7())),
        ];
        for e in &written {
            store.append_audit(e).await.unwrap();
        }
        let all = store.list_audit(&AuditQuery { limit: 10, ..AuditQuery::default() }).await.unwrap();
        let expected: Vec<AuditRecord> = written.iter().rev().cloned().collect();
        assert_eq!(all, expected, "every field round-trips, newest first");

        let by_actor = AuditQuery { actor_name: Some("g01".into()), limit: 10, ..AuditQuery::default() };
        assert_eq!(store.list_audit(&by_actor).await.unwrap().len(), 2);
        let by_action = AuditQuery { action: Some("resident.update".into()), limit: 10, ..AuditQuery::default() };
        assert_eq!(store.list_audit(&by_action).await.unwrap().len(), 2);
        let by_target = AuditQuery { target_id: Some(resident), limit: 10, ..AuditQuery::default() };
        let about = store.list_audit(&by_target).await.unwrap();
        assert_eq!(about.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["resident.unmask", "resident.update"]);

        let first = store.list_audit(&AuditQuery { limit: 3, ..AuditQuery::default() }).await.unwrap();
        let rest = store
            .list_audit(&AuditQuery { before: Some(first[2].id), limit: 3, ..AuditQuery::default() })
            .await
            .unwrap();
        assert_eq!(rest, vec![written[0].clone()], "keyset paging continues where the page ended");

        let later = AuditQuery { since: Some(now() + chrono::Duration::hours(1)), limit: 10, ..AuditQuery::default() };
        assert!(store.list_audit(&later).await.unwrap().is_empty());
    }
}
