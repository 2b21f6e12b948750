//! Residents: the sealed personal records, their search and bulk import.

use std::collections::HashSet;
use std::sync::Arc;

use epigrid_domain::{AreaKind, IdDocumentKind, Relation, Residence, Sex, Tag};
use epigrid_store::{HouseholdRecord, ResidentCursor, ResidentQuery, ResidentRecord, Store};
use epigrid_testkit::{Chain, date, household, name, now, resident, sealed, tags};
use uuid::Uuid;

use crate::support::{assert_conflict, assert_missing_reference, counts};

/// One page with room for everything a test stores.
async fn search(store: &dyn Store, query: ResidentQuery) -> Vec<ResidentRecord> {
    store.search_residents(&ResidentQuery { limit: 500, ..query }).await.unwrap()
}

async fn names(store: &dyn Store, query: ResidentQuery) -> Vec<String> {
    search(store, query).await.into_iter().map(|r| r.name.as_str().to_owned()).collect()
}

async fn ids(store: &dyn Store, query: ResidentQuery) -> Vec<Uuid> {
    search(store, query).await.into_iter().map(|r| r.id).collect()
}

fn by_tag(tag: &str) -> ResidentQuery {
    ResidentQuery { tag: Some(Tag::parse(tag).unwrap()), ..Default::default() }
}

/// Ids in the order the store must return them: (name, id), byte-wise.
fn in_search_order<'a>(residents: impl IntoIterator<Item = &'a ResidentRecord>) -> Vec<Uuid> {
    let mut keyed: Vec<(&str, Uuid)> =
        residents.into_iter().map(|r| (r.name.as_str(), r.id)).collect();
    keyed.sort();
    keyed.into_iter().map(|(_, id)| id).collect()
}

/// Follows the (name, id) cursor page by page, passing it through its URL
/// form as the web layer does, and checks the order never goes backwards.
async fn all_pages(store: &dyn Store, query: ResidentQuery, limit: u32) -> Vec<ResidentRecord> {
    let mut all: Vec<ResidentRecord> = Vec::new();
    let mut after: Option<ResidentCursor> = None;
    loop {
        let page = store
            .search_residents(&ResidentQuery { after: after.clone(), limit, ..query.clone() })
            .await
            .unwrap();
        assert!(page.len() <= limit as usize);
        if let (Some(cursor), Some(first)) = (&after, page.first()) {
            let key = (first.name.as_str(), first.id);
            assert!(key > (cursor.name.as_str(), cursor.id), "a page starts after the cursor");
        }
        let short = page.len() < limit as usize;
        if let Some(last) = page.last() {
            let cursor = ResidentCursor { name: last.name.as_str().to_owned(), id: last.id };
            after = Some(ResidentCursor::decode(&cursor.encode()).unwrap());
        }
        all.extend(page);
        if short {
            break;
        }
    }
    let keys: Vec<(&str, Uuid)> = all.iter().map(|r| (r.name.as_str(), r.id)).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "pages follow (name, id) order without repeats");
    all
}

/// `count` households in `unit` (rooms `{prefix}{i}`) and one resident in
/// each, every resident with a distinct document and the given tags.
fn batch(
    unit: &epigrid_store::AreaRecord,
    prefix: &str,
    count: usize,
    tag_names: &[&str],
) -> (Vec<HouseholdRecord>, Vec<ResidentRecord>) {
    let households: Vec<HouseholdRecord> =
        (0..count).map(|i| household(unit, &format!("{prefix}{i}"))).collect();
    let residents = households
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let mut r = resident(h, &format!("居民{prefix}{i:05}"));
            r.id_kind = Some(IdDocumentKind::ResidentIdCard);
            r.id_number = Some(sealed(&format!("id-{prefix}-{i}")));
            r.tags = tags(tag_names);
            r
        })
        .collect();
    (households, residents)
}

epigrid_testkit::store_contract_tests! {
    async fn round_trip_keeps_every_field(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "金桥").await;
        let home = household(&chain.unit, "602");
        store.insert_household(&home).await.unwrap();

        let mut full = resident(&home, "买买提·艾力");
        full.sex = Sex::Female;
        full.birth_date = date(1944, 6, 2);
        full.id_kind = Some(IdDocumentKind::HkMacauTaiwanPermit);
        full.id_number = Some(sealed("810000194406020024"));
        full.phone = Some(sealed("13800138000"));
        full.relation = Relation::ParentInLaw;
        full.residence = Residence::Floating { arrived_on: date(2020, 1, 23), origin: "湖北省武汉市".into() };
        full.tags = tags(&["elderly_alone", "chronic_disease", "aged_80_plus"]);
        store.insert_resident(&full).await.unwrap();

        let bare = resident(&home, "张三");
        store.insert_resident(&bare).await.unwrap();

        let mut nowhere_from = resident(&home, "李四");
        nowhere_from.residence = Residence::Floating { arrived_on: date(2023, 12, 1), origin: String::new() };
        nowhere_from.relation = Relation::Tenant;
        store.insert_resident(&nowhere_from).await.unwrap();

        for r in [&full, &bare, &nowhere_from] {
            assert_eq!(store.get_resident(r.id).await.unwrap().as_ref(), Some(r));
        }
        let stored = store.get_resident(full.id).await.unwrap().unwrap();
        assert_eq!(stored.id_number.unwrap().ciphertext, sealed("810000194406020024").ciphertext);
        assert_eq!(stored.path, chain.unit.path);
        assert_eq!(store.get_resident(Uuid::now_v7()).await.unwrap(), None);
    }

    async fn duplicate_id_blind_index_is_a_conflict(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "长安").await;
        let home = household(&chain.unit, "101");
        store.insert_household(&home).await.unwrap();
        let mut first = resident(&home, "王五");
        first.id_number = Some(sealed("110105199001011234"));
        store.insert_resident(&first).await.unwrap();

        // Same person registered twice: the blind index matches even though
        // a fresh nonce makes the ciphertext differ.
        let mut again = resident(&home, "王五");
        again.id_number = Some(sealed("110105199001011234"));
        again.id_number.as_mut().unwrap().ciphertext.push(7);
        assert_conflict(store.insert_resident(&again).await, "residents_id_blind");
        assert_eq!(store.get_resident(again.id).await.unwrap(), None);

        // Residents without a document never conflict, and family members
        // may share one phone.
        let mut child = resident(&home, "王小五");
        let mut baby = resident(&home, "王小六");
        child.phone = Some(sealed("13900139000"));
        baby.phone = Some(sealed("13900139000"));
        store.insert_resident(&child).await.unwrap();
        store.insert_resident(&baby).await.unwrap();
        assert_eq!(counts(&*store).await.residents, 3);
        let shared = ResidentQuery { phone_blind_index: Some(sealed("13900139000").blind_index), ..Default::default() };
        assert_eq!(ids(&*store, shared).await, in_search_order([&child, &baby]));
    }

    async fn name_prefix_matches_literally(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "和睦").await;
        let home = household(&chain.unit, "808");
        store.insert_household(&home).await.unwrap();
        for person in ["张三", "张伟", "李张", "章三", "张", "王_明", "王小明", "50%张", "50张", "Zhang San"] {
            store.insert_resident(&resident(&home, person)).await.unwrap();
        }
        let prefix = |p: &str| ResidentQuery { name_prefix: Some(p.to_owned()), ..Default::default() };

        assert_eq!(names(&*store, prefix("张")).await, ["张", "张三", "张伟"]);
        assert_eq!(names(&*store, prefix("张三")).await, ["张三"]);
        assert_eq!(names(&*store, prefix("李")).await, ["李张"]);
        assert_eq!(names(&*store, prefix("王_")).await, ["王_明"], "_ is not a wildcard");
        assert_eq!(names(&*store, prefix("50%")).await, ["50%张"], "% is not a wildcard");
        assert_eq!(names(&*store, prefix("%")).await, Vec::<String>::new());
        assert_eq!(names(&*store, prefix("Zhang")).await, ["Zhang San"]);
        assert_eq!(names(&*store, prefix("zhang")).await, Vec::<String>::new(), "matching is case-sensitive");
        assert_eq!(names(&*store, prefix("赵")).await, Vec::<String>::new());
        assert_eq!(search(&*store, prefix("")).await.len(), 10, "an empty prefix filters nothing");
    }

    async fn search_by_blind_index_tag_and_household(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "安定").await;
        let (one, two) = (household(&chain.unit, "101"), household(&chain.unit, "102"));
        store.insert_bulk(&[one.clone(), two.clone()], &[]).await.unwrap();

        let mut grandma = resident(&one, "刘奶奶");
        grandma.id_number = Some(sealed("id-grandma"));
        grandma.phone = Some(sealed("phone-family"));
        grandma.tags = tags(&["elderly_alone", "aged_80_plus"]);
        let mut son = resident(&one, "刘大");
        son.id_number = Some(sealed("id-son"));
        son.phone = Some(sealed("phone-family"));
        let mut neighbour = resident(&two, "陈阿姨");
        neighbour.id_number = Some(sealed("id-neighbour"));
        neighbour.phone = Some(sealed("phone-neighbour"));
        neighbour.tags = tags(&["chronic_disease", "elderly_alone"]);
        for r in [&grandma, &son, &neighbour] {
            store.insert_resident(r).await.unwrap();
        }

        let blind = |seed: &str| Some(sealed(seed).blind_index);
        let by_id = |seed: &str| ResidentQuery { id_blind_index: blind(seed), ..Default::default() };
        assert_eq!(search(&*store, by_id("id-son")).await, vec![son.clone()]);
        assert_eq!(ids(&*store, by_id("id-nobody")).await, Vec::<Uuid>::new());

        let by_phone = |seed: &str| ResidentQuery { phone_blind_index: blind(seed), ..Default::default() };
        assert_eq!(ids(&*store, by_phone("phone-family")).await, in_search_order([&grandma, &son]));
        assert_eq!(ids(&*store, by_phone("phone-neighbour")).await, vec![neighbour.id]);

        assert_eq!(ids(&*store, by_tag("elderly_alone")).await, in_search_order([&grandma, &neighbour]));
        assert_eq!(ids(&*store, by_tag("aged_80_plus")).await, vec![grandma.id]);
        assert_eq!(ids(&*store, by_tag("pregnant")).await, Vec::<Uuid>::new());

        let in_one = ResidentQuery { household_id: Some(one.id), ..Default::default() };
        assert_eq!(ids(&*store, in_one.clone()).await, in_search_order([&grandma, &son]));
        assert_eq!(ids(&*store, ResidentQuery { household_id: Some(two.id), ..Default::default() }).await, vec![neighbour.id]);

        // Every filter given must match.
        let tagged_in_one = ResidentQuery { tag: Tag::parse("elderly_alone").ok(), ..in_one.clone() };
        assert_eq!(ids(&*store, tagged_in_one).await, vec![grandma.id]);
        let wrong_phone_in_one = ResidentQuery { phone_blind_index: blind("phone-neighbour"), ..in_one };
        assert_eq!(ids(&*store, wrong_phone_in_one).await, Vec::<Uuid>::new());
        let named_and_tagged = ResidentQuery { name_prefix: Some("刘".into()), ..by_tag("elderly_alone") };
        assert_eq!(ids(&*store, named_and_tagged).await, vec![grandma.id]);
    }

    async fn scope_never_returns_another_grids_residents(store: Arc<dyn Store>) {
        let a = Chain::insert(&*store, "甲").await;
        let b = a.insert_sibling_grid(&*store, "乙").await;
        let (home_a, home_b) = (household(&a.unit, "101"), household(&b.unit, "101"));
        store.insert_bulk(&[home_a.clone(), home_b.clone()], &[]).await.unwrap();

        // Same names, same tag and a shared phone on both sides of the line.
        let mut in_a = Vec::new();
        let mut in_b = Vec::new();
        for (home, out) in [(&home_a, &mut in_a), (&home_b, &mut in_b)] {
            for person in ["张三", "张伟"] {
                let mut r = resident(home, person);
                r.tags = tags(&["disabled"]);
                r.phone = Some(sealed("shared-phone"));
                store.insert_resident(&r).await.unwrap();
                out.push(r);
            }
        }

        let within_a = |filter: ResidentQuery| ResidentQuery { within: Some(a.scope(AreaKind::Grid)), ..filter };
        let only_a = in_search_order(&in_a);
        assert_eq!(ids(&*store, within_a(ResidentQuery::default())).await, only_a);
        assert_eq!(ids(&*store, within_a(ResidentQuery { name_prefix: Some("张".into()), ..Default::default() })).await, only_a);
        assert_eq!(ids(&*store, within_a(by_tag("disabled"))).await, only_a);
        let shared_phone = ResidentQuery { phone_blind_index: Some(sealed("shared-phone").blind_index), ..Default::default() };
        assert_eq!(ids(&*store, within_a(shared_phone)).await, only_a);
        // Even naming B's household explicitly leaks nothing.
        let b_household = ResidentQuery { household_id: Some(home_b.id), ..Default::default() };
        assert_eq!(ids(&*store, within_a(b_household)).await, Vec::<Uuid>::new());

        assert_eq!(ids(&*store, ResidentQuery { within: Some(b.scope(AreaKind::Grid)), ..Default::default() }).await, in_search_order(&in_b));
        assert_eq!(ids(&*store, ResidentQuery { within: Some(a.scope(AreaKind::Building)), ..Default::default() }).await, in_search_order(&in_a));
        assert_eq!(ids(&*store, ResidentQuery { within: Some(b.scope(AreaKind::Unit)), ..Default::default() }).await, in_search_order(&in_b));
        let everyone = in_search_order(in_a.iter().chain(&in_b));
        assert_eq!(ids(&*store, ResidentQuery { within: Some(a.scope(AreaKind::Community)), ..Default::default() }).await, everyone);
        assert_eq!(ids(&*store, ResidentQuery { within: Some(a.scope(AreaKind::SubDistrict)), ..Default::default() }).await, everyone);
    }

    async fn keyset_pages_return_every_match_once(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "团结").await;
        let homes: Vec<HouseholdRecord> = (0..4).map(|i| household(&chain.unit, &format!("{i}0{i}"))).collect();
        let mut people = Vec::new();
        // Many namesakes, so most page boundaries fall between equal names.
        for i in 0..23 {
            people.push(resident(&homes[i % 4], "张三"));
        }
        for (i, person) in ["张伟", "张", "李四", "王五", "张三丰", "Adam", "赵六"].into_iter().enumerate() {
            for _ in 0..=i % 3 {
                people.push(resident(&homes[i % 4], person));
            }
        }
        people.reverse();
        store.insert_bulk(&homes, &people).await.unwrap();

        for limit in [1, 4, 7, 500] {
            let pages = all_pages(&*store, ResidentQuery::default(), limit).await;
            assert_eq!(pages.iter().map(|r| r.id).collect::<Vec<_>>(), in_search_order(&people), "limit {limit}");
        }

        let zhang: Vec<&ResidentRecord> = people.iter().filter(|r| r.name.as_str().starts_with('张')).collect();
        let pages = all_pages(&*store, ResidentQuery { name_prefix: Some("张".into()), ..Default::default() }, 3).await;
        assert_eq!(pages.iter().map(|r| r.id).collect::<Vec<_>>(), in_search_order(zhang));

        let exact: Vec<&ResidentRecord> = people.iter().filter(|r| r.name.as_str() == "张三").collect();
        let in_grid = ResidentQuery {
            within: Some(chain.scope(AreaKind::Grid)),
            name_prefix: Some("张三".into()),
            ..Default::default()
        };
        let pages = all_pages(&*store, in_grid, 5).await;
        let found: Vec<Uuid> = pages.iter().filter(|r| r.name.as_str() == "张三").map(|r| r.id).collect();
        assert_eq!(found, in_search_order(exact));
        assert_eq!(pages.len(), 23 + 2, "张三 23 times, then 张三丰 twice");
    }

    async fn update_replaces_fields_and_tags(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "复兴").await;
        let home = household(&chain.unit, "1101");
        store.insert_household(&home).await.unwrap();
        let mut original = resident(&home, "周芳");
        original.id_number = Some(sealed("id-zhou"));
        original.phone = Some(sealed("phone-old"));
        original.residence = Residence::Floating { arrived_on: date(2021, 3, 1), origin: "河南省".into() };
        original.tags = tags(&["elderly_alone", "disabled"]);
        store.insert_resident(&original).await.unwrap();

        let mut updated = original.clone();
        updated.name = name("周芳芳");
        updated.sex = Sex::Female;
        updated.birth_date = date(1990, 5, 4);
        updated.phone = Some(sealed("phone-new"));
        updated.relation = Relation::Spouse;
        updated.residence = Residence::Registered;
        updated.tags = tags(&["pregnant"]);
        updated.updated_at = now() + chrono::TimeDelta::seconds(1);
        assert!(store.update_resident(&updated).await.unwrap());
        assert_eq!(store.get_resident(original.id).await.unwrap(), Some(updated.clone()));

        assert_eq!(ids(&*store, by_tag("elderly_alone")).await, Vec::<Uuid>::new(), "old tags are gone");
        assert_eq!(ids(&*store, by_tag("disabled")).await, Vec::<Uuid>::new());
        assert_eq!(ids(&*store, by_tag("pregnant")).await, vec![original.id]);
        let by_phone = |seed: &str| ResidentQuery { phone_blind_index: Some(sealed(seed).blind_index), ..Default::default() };
        assert_eq!(ids(&*store, by_phone("phone-old")).await, Vec::<Uuid>::new());
        assert_eq!(ids(&*store, by_phone("phone-new")).await, vec![original.id]);
        let by_name = |p: &str| ResidentQuery { name_prefix: Some(p.into()), ..Default::default() };
        assert_eq!(ids(&*store, by_name("周芳芳")).await, vec![original.id]);

        // Clearing tags and sealed fields.
        let mut cleared = updated.clone();
        cleared.tags = Vec::new();
        cleared.phone = None;
        cleared.id_kind = None;
        cleared.id_number = None;
        assert!(store.update_resident(&cleared).await.unwrap());
        assert_eq!(store.get_resident(original.id).await.unwrap(), Some(cleared.clone()));
        assert_eq!(ids(&*store, by_tag("pregnant")).await, Vec::<Uuid>::new());

        // An update onto another resident's document fails whole: tags too.
        let mut other = resident(&home, "吴强");
        other.id_number = Some(sealed("id-wu"));
        store.insert_resident(&other).await.unwrap();
        let mut clash = cleared.clone();
        clash.id_number = Some(sealed("id-wu"));
        clash.tags = tags(&["infant"]);
        assert_conflict(store.update_resident(&clash).await, "residents_id_blind");
        assert_eq!(store.get_resident(original.id).await.unwrap(), Some(cleared));
        assert_eq!(ids(&*store, by_tag("infant")).await, Vec::<Uuid>::new());

        let mut unknown = resident(&home, "无名");
        unknown.tags = tags(&["infant"]);
        assert!(!store.update_resident(&unknown).await.unwrap());
        assert_eq!(store.get_resident(unknown.id).await.unwrap(), None);
        assert_eq!(ids(&*store, by_tag("infant")).await, Vec::<Uuid>::new(), "no tag rows for an unknown resident");
    }

    async fn bulk_insert_is_all_or_nothing(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "振兴").await;
        let (households, residents) = batch(&chain.unit, "A", 3, &["infant"]);
        store.insert_bulk(&households, &residents).await.unwrap();
        let before = counts(&*store).await;
        assert_eq!((before.households, before.residents), (3, 3));
        for r in &residents {
            assert_eq!(store.get_resident(r.id).await.unwrap().as_ref(), Some(r));
        }
        assert_eq!(ids(&*store, by_tag("infant")).await, in_search_order(&residents));

        let nothing_new = |label: &'static str, new_households: Vec<HouseholdRecord>, new_residents: Vec<ResidentRecord>| {
            let store = store.clone();
            async move {
                assert_eq!(counts(&*store).await, before, "{label}: counts unchanged");
                for h in &new_households {
                    assert_eq!(store.get_household(h.id).await.unwrap(), None, "{label}: household not written");
                }
                for r in &new_residents {
                    assert_eq!(store.get_resident(r.id).await.unwrap(), None, "{label}: resident not written");
                }
                assert_eq!(ids(&*store, by_tag("pregnant")).await, Vec::<Uuid>::new(), "{label}: no tags written");
            }
        };

        // A duplicate document inside the batch, in its last row.
        let (hs, mut rs) = batch(&chain.unit, "B", 4, &["pregnant"]);
        rs[3].id_number = rs[0].id_number.clone();
        assert_conflict(store.insert_bulk(&hs, &rs).await, "residents_id_blind");
        nothing_new("duplicate in batch", hs, rs).await;

        // A document already stored.
        let (hs, mut rs) = batch(&chain.unit, "C", 4, &["pregnant"]);
        rs[2].id_number = residents[1].id_number.clone();
        assert_conflict(store.insert_bulk(&hs, &rs).await, "residents_id_blind");
        nothing_new("duplicate of stored", hs, rs).await;

        // A resident of a household that exists nowhere.
        let (hs, mut rs) = batch(&chain.unit, "D", 4, &["pregnant"]);
        rs[1].household_id = Uuid::now_v7();
        assert_missing_reference(store.insert_bulk(&hs, &rs).await);
        nothing_new("unknown household", hs, rs).await;

        // A household on an occupied door: the residents after it are not
        // written either.
        let (mut hs, rs) = batch(&chain.unit, "E", 4, &["pregnant"]);
        hs[3].room = households[0].room.clone();
        assert_conflict(store.insert_bulk(&hs, &rs).await, "households_unit_id_room");
        nothing_new("occupied door", hs, rs).await;

        // The store still takes a good batch afterwards.
        let (hs, rs) = batch(&chain.unit, "F", 2, &["pregnant"]);
        store.insert_bulk(&hs, &rs).await.unwrap();
        let after = counts(&*store).await;
        assert_eq!((after.households, after.residents), (5, 5));
    }

    async fn bulk_insert_spans_several_statements(store: Arc<dyn Store>) {
        // Past 1,000 rows the store splits a batch into several INSERTs; the
        // batch must still land whole, or not at all.
        let chain = Chain::insert(&*store, "繁荣").await;
        let (hs, mut rs) = batch(&chain.unit, "X", 2_300, &["elderly_alone", "infant"]);
        rs[2_299].id_number = rs[0].id_number.clone();
        assert_conflict(store.insert_bulk(&hs, &rs).await, "residents_id_blind");
        let empty = counts(&*store).await;
        assert_eq!((empty.households, empty.residents), (0, 0));
        assert_eq!(search(&*store, by_tag("infant")).await.len(), 0);

        rs[2_299].id_number = Some(sealed("id-last"));
        store.insert_bulk(&hs, &rs).await.unwrap();
        let full = counts(&*store).await;
        assert_eq!((full.households, full.residents), (2_300, 2_300));
        let tagged = all_pages(&*store, by_tag("infant"), 500).await;
        assert_eq!(tagged.len(), 2_300);
        assert_eq!(tagged.last().map(|r| r.id), Some(rs[2_299].id));
        let distinct: HashSet<Uuid> = tagged.iter().map(|r| r.household_id).collect();
        assert_eq!(distinct.len(), 2_300);
    }

    async fn bulk_insert_takes_residents_with_many_tags(store: Arc<dyn Store>) {
        // Deployments may configure tags beyond the six built-in ones, so a
        // resident can carry nine; a batch of a thousand such residents is an
        // ordinary spreadsheet import.
        let chain = Chain::insert(&*store, "兴旺").await;
        let many: Vec<String> = (1..=9).map(|i| format!("group_{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let (hs, rs) = batch(&chain.unit, "T", 1_000, &many);
        store.insert_bulk(&hs, &rs).await.unwrap();
        assert_eq!(counts(&*store).await.residents, 1_000);
        assert_eq!(all_pages(&*store, by_tag("group_9"), 500).await.len(), 1_000);
        assert_eq!(store.get_resident(rs[999].id).await.unwrap().map(|r| r.tags.len()), Some(9));
    }
}
