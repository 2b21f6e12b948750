//! Registry writes with their audit entry in one transaction: both or
//! neither, on both backends.

use std::sync::Arc;

use chrono::Utc;
use epigrid_domain::Role;
use epigrid_store::{AuditQuery, AuditRecord, ChainVerdict, RegistryWrite, Store, StoreError};
use epigrid_testkit::{Chain, household, resident, session, user};
use uuid::Uuid;

fn entry(action: &str, target: Uuid) -> AuditRecord {
    AuditRecord {
        id: Uuid::now_v7(),
        at: Utc::now(),
        actor_user_id: None,
        actor_name: "tester".into(),
        actor_role: None,
        action: action.into(),
        target_kind: Some("test".into()),
        target_id: Some(target),
        community_id: None,
        client_addr: None,
        outcome: "ok".into(),
        detail: "{}".into(),
    }
}

async fn entries(store: &dyn Store, action: &str) -> usize {
    let query = AuditQuery { action: Some(action.into()), limit: 100, ..Default::default() };
    store.list_audit(&query).await.unwrap().len()
}

epigrid_testkit::store_contract_tests! {
    async fn a_write_and_its_audit_entry_commit_together_or_not_at_all(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "Audited").await;
        let h = household(&chain.unit, "1201");
        assert!(store.write_audited(RegistryWrite::InsertHousehold(&h), &entry("household.create", h.id)).await.unwrap());
        let mut r = resident(&h, "钱七");
        assert!(store.write_audited(RegistryWrite::InsertResident(&r), &entry("resident.create", r.id)).await.unwrap());
        assert!(store.get_resident(r.id).await.unwrap().is_some());
        assert_eq!(entries(&*store, "resident.create").await, 1);

        // The same resident again: the insert fails, and no entry is left.
        let error = store
            .write_audited(RegistryWrite::InsertResident(&r), &entry("resident.create", r.id))
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Conflict { .. }), "{error:?}");
        assert_eq!(entries(&*store, "resident.create").await, 1, "no entry for a failed write");

        // An update of a row that does not exist writes nothing and records nothing.
        let ghost = resident(&h, "孙八");
        assert!(!store.write_audited(RegistryWrite::UpdateResident(&ghost), &entry("resident.update", ghost.id)).await.unwrap());
        assert_eq!(entries(&*store, "resident.update").await, 0);

        r.name = epigrid_domain::PersonName::parse("钱七七").unwrap();
        assert!(store.write_audited(RegistryWrite::UpdateResident(&r), &entry("resident.update", r.id)).await.unwrap());
        assert_eq!(store.get_resident(r.id).await.unwrap().unwrap().name.as_str(), "钱七七");
        assert_eq!(entries(&*store, "resident.update").await, 1);

        // An account update that ends its sessions, in the same transaction.
        let mut account = user("audited-worker", Role::GridWorker, &chain.grid);
        assert!(store.write_audited(RegistryWrite::InsertUser(&account), &entry("account.create", account.id)).await.unwrap());
        store.insert_session(&session(&account, b"token-hash-audited")).await.unwrap();
        account.disabled = true;
        let write = RegistryWrite::UpdateUser { user: &account, end_sessions: true };
        assert!(store.write_audited(write, &entry("account.update", account.id)).await.unwrap());
        assert!(store.get_session(b"token-hash-audited").await.unwrap().is_none());
        assert!(store.get_user(account.id).await.unwrap().unwrap().disabled);

        assert!(matches!(store.verify_audit_chain().await.unwrap(), ChainVerdict::Intact { .. }));
    }
}
