//! Households: one door under a unit.

use std::sync::Arc;

use epigrid_domain::{AreaKind, Scope};
use epigrid_store::{HouseholdQuery, HouseholdRecord, Store};
use epigrid_testkit::{Chain, household, now};
use uuid::Uuid;

use crate::support::{assert_conflict, assert_missing_reference, collect_pages, sorted};

fn household_id(household: &HouseholdRecord) -> Uuid {
    household.id
}

async fn list_within(
    store: &Arc<dyn Store>,
    within: Option<Scope>,
    page: u32,
) -> Vec<HouseholdRecord> {
    collect_pages(page as usize, household_id, |after| {
        let store = store.clone();
        let query = HouseholdQuery { within, after, limit: page };
        async move { store.list_households(&query).await }
    })
    .await
}

epigrid_testkit::store_contract_tests! {
    async fn round_trip_and_update(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "朝阳").await;
        let home = household(&chain.unit, "1201");
        store.insert_household(&home).await.unwrap();

        let stored = store.get_household(home.id).await.unwrap().unwrap();
        assert_eq!(stored, home);
        assert_eq!(stored.unit_id(), chain.unit.id);
        assert_eq!(stored.path.grid, Some(chain.grid.id));
        assert_eq!(store.get_household(Uuid::now_v7()).await.unwrap(), None);

        let mut renumbered = home.clone();
        renumbered.room = "1202".into();
        renumbered.updated_at = now() + chrono::TimeDelta::seconds(1);
        assert!(store.update_household(&renumbered).await.unwrap());
        assert_eq!(store.get_household(home.id).await.unwrap(), Some(renumbered.clone()));

        let unknown = household(&chain.unit, "1203");
        assert!(!store.update_household(&unknown).await.unwrap());
        assert_eq!(store.get_household(unknown.id).await.unwrap(), None);
        assert_eq!(store.get_household(home.id).await.unwrap(), Some(renumbered));
    }

    async fn duplicate_room_in_a_unit_is_a_conflict(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "和平").await;
        let first = household(&chain.unit, "301");
        store.insert_household(&first).await.unwrap();

        let twin = household(&chain.unit, "301");
        assert_conflict(store.insert_household(&twin).await, "households_unit_id_room");
        assert_eq!(store.get_household(twin.id).await.unwrap(), None);

        // The same door number in another unit is another household.
        let next_door = chain.insert_sibling_grid(&*store, "和平二").await;
        store.insert_household(&household(&next_door.unit, "301")).await.unwrap();

        // Renumbering onto an occupied door is the same conflict.
        let other = household(&chain.unit, "302");
        store.insert_household(&other).await.unwrap();
        let mut clash = other.clone();
        clash.room = "301".into();
        assert_conflict(store.update_household(&clash).await, "households_unit_id_room");
        assert_eq!(store.get_household(other.id).await.unwrap(), Some(other));
    }

    async fn unknown_unit_is_a_missing_reference(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "新华").await;
        let mut lost = household(&chain.unit, "101");
        lost.path.unit = Some(Uuid::now_v7());
        assert_missing_reference(store.insert_household(&lost).await);
        assert_eq!(store.get_household(lost.id).await.unwrap(), None);
    }

    async fn list_within_a_grid_scope(store: Arc<dyn Store>) {
        let a = Chain::insert(&*store, "东").await;
        let b = a.insert_sibling_grid(&*store, "西").await;
        let in_a: Vec<HouseholdRecord> = (1..=5).map(|i| household(&a.unit, &format!("{i}01"))).collect();
        let in_b: Vec<HouseholdRecord> = (1..=3).map(|i| household(&b.unit, &format!("{i}01"))).collect();
        for home in in_a.iter().chain(&in_b).rev() {
            store.insert_household(home).await.unwrap();
        }

        let listed = list_within(&store, Some(a.scope(AreaKind::Grid)), 2).await;
        assert_eq!(listed.iter().map(|h| h.id).collect::<Vec<_>>(), sorted(in_a.iter().map(|h| h.id)));
        assert_eq!(listed[0], in_a[0], "listed records are complete");

        let listed = list_within(&store, Some(b.scope(AreaKind::Grid)), 2).await;
        assert_eq!(listed.iter().map(|h| h.id).collect::<Vec<_>>(), sorted(in_b.iter().map(|h| h.id)));

        let everyone = sorted(in_a.iter().chain(&in_b).map(|h| h.id));
        let listed = list_within(&store, Some(a.scope(AreaKind::Community)), 3).await;
        assert_eq!(listed.iter().map(|h| h.id).collect::<Vec<_>>(), everyone);
        let listed = list_within(&store, None, 3).await;
        assert_eq!(listed.iter().map(|h| h.id).collect::<Vec<_>>(), everyone);
    }
}
