//! Accounts and their sessions.

use std::sync::Arc;

use chrono::TimeDelta;
use epigrid_domain::{AreaKind, Role, Scope};
use epigrid_store::{Store, StoreError, UserQuery, UserRecord};
use epigrid_testkit::{Chain, child_area, insert_area, now, session, user};
use uuid::Uuid;

use crate::support::{assert_conflict, assert_missing_reference};

/// Every account within the scope, a page at a time: the usernames in
/// order, each page after the last username of the page before.
async fn list_within(store: &Arc<dyn Store>, within: Option<Scope>, page: u32) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let query = UserQuery { within, after: after.clone(), limit: page };
        let names: Vec<String> =
            store.list_users(&query).await.unwrap().into_iter().map(|u| u.username).collect();
        assert!(names.len() <= page as usize, "a page holds at most the limit");
        assert!(names.windows(2).all(|w| w[0] < w[1]), "a page is in username order: {names:?}");
        if let (Some(previous), Some(first)) = (&after, names.first()) {
            assert!(first > previous, "a page starts after the cursor");
        }
        let short = names.len() < page as usize;
        after = names.last().cloned().or(after);
        all.extend(names);
        if short {
            return all;
        }
    }
}

/// Usernames in order. The test's names (lower case, a dot, a letter or
/// digit) sort the same in byte order and in PostgreSQL's usual collations.
fn sorted_names<'a>(users: impl IntoIterator<Item = &'a UserRecord>) -> Vec<String> {
    let mut names: Vec<String> = users.into_iter().map(|u| u.username.clone()).collect();
    names.sort();
    names
}

epigrid_testkit::store_contract_tests! {
    async fn users_round_trip_and_lookup_by_username(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "永安").await;
        let mut worker = user("wang.grid", Role::GridWorker, &chain.grid);
        worker.phone = Some("13700137000".into());
        worker.display_name = "王网格员".into();
        store.insert_user(&worker).await.unwrap();
        let mut retired = user("li.admin", Role::CommunityAdmin, &chain.community);
        retired.disabled = true;
        store.insert_user(&retired).await.unwrap();

        for u in [&worker, &retired] {
            assert_eq!(store.get_user(u.id).await.unwrap().as_ref(), Some(u));
            assert_eq!(store.get_user_by_username(&u.username).await.unwrap().as_ref(), Some(u));
        }
        let stored = store.get_user(worker.id).await.unwrap().unwrap();
        assert_eq!(stored.scope, Scope { kind: AreaKind::Grid, area_id: chain.grid.id });
        assert_eq!(stored.scope_path, chain.grid.path);
        assert_eq!(store.get_user(Uuid::now_v7()).await.unwrap(), None);
        assert_eq!(store.get_user_by_username("nobody").await.unwrap(), None);
        assert_eq!(store.get_user_by_username("WANG.GRID").await.unwrap(), None, "usernames match exactly");
    }

    async fn duplicate_username_is_a_conflict(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "太平").await;
        let first = user("zhao", Role::GridWorker, &chain.grid);
        store.insert_user(&first).await.unwrap();
        let again = user("zhao", Role::Volunteer, &chain.community);
        assert_conflict(store.insert_user(&again).await, "users_username");
        assert_eq!(store.get_user(again.id).await.unwrap(), None);
        assert_eq!(store.get_user_by_username("zhao").await.unwrap(), Some(first));
    }

    async fn user_scoped_to_an_unknown_area_is_a_missing_reference(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "长青").await;
        let mut stray = user("stray", Role::GridWorker, &chain.grid);
        stray.scope.area_id = Uuid::now_v7();
        assert_missing_reference(store.insert_user(&stray).await);
        assert_eq!(store.get_user_by_username("stray").await.unwrap(), None);
    }

    async fn list_users_within_scope(store: Arc<dyn Store>) {
        let a = Chain::insert(&*store, "甲").await;
        let a2 = a.insert_sibling_grid(&*store, "甲二").await;
        let b_community = child_area(&a.sub_district, AreaKind::Community, "乙");
        insert_area(&*store, &b_community).await;
        let b_grid = child_area(&b_community, AreaKind::Grid, "乙一");
        insert_area(&*store, &b_grid).await;

        let accounts = [
            user("chief", Role::SubDistrictAdmin, &a.sub_district),
            user("admin.a", Role::CommunityAdmin, &a.community),
            user("worker.a1", Role::GridWorker, &a.grid),
            user("worker.a2", Role::GridWorker, &a2.grid),
            user("admin.b", Role::CommunityAdmin, &b_community),
            user("worker.b1", Role::GridWorker, &b_grid),
        ];
        for account in accounts.iter().rev() {
            store.insert_user(account).await.unwrap();
        }
        let [chief, admin_a, worker_a1, worker_a2, admin_b, worker_b1] = &accounts;

        // By username, not by id (the order of creation) nor of insertion.
        let everyone = ["admin.a", "admin.b", "chief", "worker.a1", "worker.a2", "worker.b1"];
        assert_eq!(sorted_names(&accounts), everyone);
        assert_eq!(list_within(&store, None, 4).await, everyone);
        assert_eq!(list_within(&store, Some(a.scope(AreaKind::SubDistrict)), 2).await, everyone);
        assert_eq!(
            list_within(&store, Some(a.scope(AreaKind::Community)), 2).await,
            sorted_names([admin_a, worker_a1, worker_a2]),
            "a community holds its own accounts, not the sub-district's nor the neighbour's"
        );
        assert_eq!(list_within(&store, Some(a.scope(AreaKind::Grid)), 2).await, sorted_names([worker_a1]));
        assert_eq!(
            list_within(&store, Some(Scope { kind: AreaKind::Community, area_id: b_community.id }), 1).await,
            sorted_names([admin_b, worker_b1])
        );
        assert!(!list_within(&store, Some(a.scope(AreaKind::Community)), 10).await.contains(&chief.username));
        // A cursor need not be a username that exists.
        let query = UserQuery { after: Some("b".into()), limit: 10, ..Default::default() };
        let after_b: Vec<String> = store.list_users(&query).await.unwrap().into_iter().map(|u| u.username).collect();
        assert_eq!(after_b, ["chief", "worker.a1", "worker.a2", "worker.b1"]);
    }

    async fn update_user_changes_fields_and_scope(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "建设").await;
        let mut worker = user("sun", Role::GridWorker, &chain.grid);
        worker.phone = Some("13600136000".into());
        store.insert_user(&worker).await.unwrap();

        let mut promoted = worker.clone();
        promoted.display_name = "孙组长".into();
        promoted.phone = None;
        promoted.password_hash = "$argon2id$new".into();
        promoted.role = Role::GridLeader;
        promoted.scope = Scope { kind: AreaKind::Community, area_id: chain.community.id };
        promoted.scope_path = chain.community.path;
        promoted.disabled = true;
        promoted.updated_at = now() + TimeDelta::seconds(1);
        assert!(store.update_user(&promoted).await.unwrap());
        assert_eq!(store.get_user(worker.id).await.unwrap(), Some(promoted.clone()));

        // The new scope decides which lists show the account.
        let within = |scope: Scope| UserQuery { within: Some(scope), limit: 10, ..Default::default() };
        assert!(store.list_users(&within(chain.scope(AreaKind::Grid))).await.unwrap().is_empty());
        assert_eq!(store.list_users(&within(chain.scope(AreaKind::Community))).await.unwrap(), vec![promoted.clone()]);

        // A username is for life.
        let mut renamed = promoted.clone();
        renamed.username = "sun2".into();
        assert!(store.update_user(&renamed).await.unwrap());
        assert_eq!(store.get_user_by_username("sun").await.unwrap().map(|u| u.id), Some(worker.id));
        assert_eq!(store.get_user_by_username("sun2").await.unwrap(), None);

        let unknown = user("ghost", Role::Volunteer, &chain.grid);
        assert!(!store.update_user(&unknown).await.unwrap());
        assert_eq!(store.get_user(unknown.id).await.unwrap(), None);
    }

    async fn sessions_live_and_die(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "幸福").await;
        let (alice, bob) = (user("alice", Role::GridWorker, &chain.grid), user("bob", Role::Volunteer, &chain.grid));
        store.insert_user(&alice).await.unwrap();
        store.insert_user(&bob).await.unwrap();

        let phone = session(&alice, &[0xA1; 32]);
        let laptop = session(&alice, &[0xA2; 32]);
        let bobs = session(&bob, &[0xB0; 32]);
        for s in [&phone, &laptop, &bobs] {
            store.insert_session(s).await.unwrap();
        }
        assert_eq!(store.get_session(&phone.token_hash).await.unwrap(), Some(phone.clone()));
        assert_eq!(store.get_session(&[0xA3; 32]).await.unwrap(), None);

        match store.insert_session(&session(&bob, &phone.token_hash)).await {
            Err(StoreError::Conflict { .. }) => {}
            other => panic!("a reused token hash must conflict, got {other:?}"),
        }
        assert_eq!(store.get_session(&phone.token_hash).await.unwrap(), Some(phone.clone()), "the first holder keeps it");

        let ghost = user("ghost", Role::Volunteer, &chain.grid);
        assert_missing_reference(store.insert_session(&session(&ghost, &[0xC0; 32])).await);

        let later = now() + TimeDelta::minutes(10);
        store.touch_session(&phone.token_hash, later).await.unwrap();
        let touched = store.get_session(&phone.token_hash).await.unwrap().unwrap();
        let mut expected = phone.clone();
        expected.last_seen_at = later;
        assert_eq!(touched, expected);
        assert_eq!(store.get_session(&laptop.token_hash).await.unwrap(), Some(laptop.clone()), "touch is per session");
        // Touching a session that is gone is not an error.
        store.touch_session(&[0xA3; 32], later).await.unwrap();

        store.delete_session(&phone.token_hash).await.unwrap();
        assert_eq!(store.get_session(&phone.token_hash).await.unwrap(), None);
        assert_eq!(store.get_session(&laptop.token_hash).await.unwrap(), Some(laptop.clone()));
        store.delete_session(&phone.token_hash).await.unwrap();

        assert_eq!(store.delete_user_sessions(alice.id).await.unwrap(), 1);
        assert_eq!(store.get_session(&laptop.token_hash).await.unwrap(), None);
        assert_eq!(store.get_session(&bobs.token_hash).await.unwrap(), Some(bobs.clone()), "other users keep theirs");
        assert_eq!(store.delete_user_sessions(alice.id).await.unwrap(), 0);
        assert_eq!(store.delete_user_sessions(bob.id).await.unwrap(), 1);
        assert_eq!(store.get_session(&bobs.token_hash).await.unwrap(), None);
    }
}
