//! List matching (协查名单) end to end through the service, on SQLite and on
//! PostgreSQL when `EPIGRID_TEST_PG` names a database: a generated list
//! with an exact match, a probable one by phone, a probable one by name and
//! address, one nobody matches, a bad ID number (reported, not guessed),
//! a re-run that creates no second task, and a download that shows a
//! task's state as it is when downloaded.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use epigrid_domain::identity::check_character;
use epigrid_domain::tasks::{Reason, Transition};
use epigrid_domain::{AreaKind, IdDocument, IdDocumentKind, Role, Scope};
use epigrid_service::tasks::TransitionRequest;
use epigrid_service::{Actor, FieldCipher, SecretKey, Service, Settings};
use epigrid_store::{AuditQuery, Store, TaskQuery};
use epigrid_testkit::{Chain, household, resident};
use rust_xlsxwriter::Workbook;

fn on_both<F, Fut>(body: F)
where
    F: Fn(Arc<dyn Store>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    epigrid_testkit::run_on_sqlite(&body);
    epigrid_testkit::run_on_postgres(&body);
}

fn all_tasks() -> TaskQuery {
    TaskQuery { limit: 1_000, ..Default::default() }
}

fn key() -> SecretKey {
    SecretKey::from_hex(&"42".repeat(32)).unwrap()
}

fn service(store: Arc<dyn Store>) -> Service {
    Service::new(store, FieldCipher::new(&key()), Settings::default())
}

fn zh(key: &str) -> String {
    static CATALOGUE: std::sync::OnceLock<HashMap<String, String>> = std::sync::OnceLock::new();
    CATALOGUE
        .get_or_init(|| serde_json::from_str(include_str!("../../web/locales/zh-CN.json")).unwrap())
        .get(key)
        .cloned()
        .unwrap_or_else(|| panic!("no translation for {key}"))
}

fn id(first17: &str) -> String {
    let bytes: [u8; 17] = first17.as_bytes().try_into().unwrap();
    format!("{first17}{}", check_character(&bytes))
}

fn admin(chain: &Chain) -> Actor {
    Actor {
        user_id: Some(uuid::Uuid::now_v7()),
        username: "office".into(),
        role: Role::SubDistrictAdmin,
        scope: Some(chain.scope(AreaKind::SubDistrict)),
        client_addr: None,
    }
}

fn list_xlsx(rows: &[[&str; 7]]) -> Vec<u8> {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.write_string(0, 0, "协查名单（第12批）").unwrap();
    let header = ["姓名", "身份证号", "联系电话", "来源地", "抵达日期", "备注", "住址"];
    for (c, h) in header.iter().enumerate() {
        sheet.write_string(1, c as u16, *h).unwrap();
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            sheet.write_string(r as u32 + 2, c as u16, *cell).unwrap();
        }
    }
    workbook.save_to_buffer().unwrap()
}

fn sheet(bytes: &[u8]) -> Vec<Vec<String>> {
    let mut workbook: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes.to_vec())).unwrap();
    let range = workbook.worksheet_range_at(0).unwrap().unwrap();
    range
        .rows()
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    Data::String(s) => s.clone(),
                    Data::Empty => String::new(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

#[test]
fn a_list_matches_exactly_probably_or_not_and_tasks_are_never_doubled() {
    on_both(|store| async move {
        let service = service(store.clone());
        let cipher = FieldCipher::new(&key());
        // Every test chain has building 1号楼 and unit 1单元.
        let chain = Chain::insert(&*store, "7").await;
        let elsewhere = Chain::insert(&*store, "9").await;
        let h = household(&chain.unit, "1201");
        let h_out = household(&elsewhere.unit, "301");
        let zhang_id = id("11010119900101003");
        let mut zhang = resident(&h, "张三");
        zhang.id_kind = Some(IdDocumentKind::ResidentIdCard);
        let doc = IdDocument::parse(&zhang_id, service.today()).unwrap();
        zhang.id_number = Some(cipher.seal("id_number", doc.as_str(), doc.match_key()));
        let mut li = resident(&h, "李四");
        li.phone = Some(cipher.seal("phone", "13800138001", "13800138001"));
        let wang = resident(&h, "王五");
        // Same document as a list row, but outside the office's scope.
        let far_id = id("11010119850505004");
        let mut far = resident(&h_out, "赵六");
        let far_doc = IdDocument::parse(&far_id, service.today()).unwrap();
        far.id_number = Some(cipher.seal("id_number", far_doc.as_str(), far_doc.match_key()));
        store
            .insert_bulk(std::slice::from_ref(&h), &[zhang.clone(), li.clone(), wang.clone()])
            .await
            .unwrap();
        store.insert_bulk(&[h_out], &[far]).await.unwrap();

        let office = admin(&chain);
        let bad_id = "110101199001010020"; // wrong check character
        let file = list_xlsx(&[
            ["张三", &zhang_id, "", "武汉", "2026-11-01", "", ""],
            ["李四", "", "138 0013 8001", "上海", "2026年11月2日", "车站", ""],
            ["王五", "", "", "广州", "", "", "幸福路1号1号楼1单元1201室"],
            ["钱七", &id("11010119700707005"), "13900000000", "深圳", "", "", ""],
            ["孙八", bad_id, "", "", "", "", ""],
            ["赵六", &far_id, "", "", "", "", ""],
        ]);
        let summary = service.upload_match_list(&office, "协查名单.xlsx", &file).await.unwrap();
        assert_eq!(
            (summary.total, summary.exact, summary.probable, summary.unmatched),
            (6, 1, 2, 3)
        );
        assert_eq!((summary.problem_rows, summary.tasks), (1, 3));

        let detail = service.match_list_detail(&office, summary.list_id).await.unwrap();
        let by_row: HashMap<i64, _> = detail.rows.iter().map(|r| (r.row_number, r)).collect();
        assert_eq!(by_row[&3].reason, "matching.reason.id");
        assert_eq!(by_row[&3].name, "张*");
        assert_eq!(by_row[&3].id_number, format!("110101********{}", &zhang_id[14..]));
        assert_eq!(by_row[&4].reason, "matching.reason.phone");
        assert_eq!(by_row[&5].reason, "matching.reason.name_address");
        assert_eq!(by_row[&6].reason, "matching.reason.not_found");
        assert_eq!(by_row[&7].reason, "id.checksum");
        // Out of scope is not found, and nothing says it exists elsewhere.
        assert_eq!(by_row[&8].reason, "matching.reason.not_found");
        assert_eq!(by_row[&3].grid_name.as_deref(), Some(chain.grid.name.as_str()));
        // The rows are stored sealed: no ID number, phone or name in clear.
        for row in store.match_rows(summary.list_id).await.unwrap() {
            for clear in [zhang_id.as_str(), "13900000000", "钱七"] {
                assert!(!row.cells.contains(clear), "row {} stored in clear", row.row_number);
            }
        }

        // One verification task per matched person, in their grid.
        let tasks = store.list_tasks(&all_tasks()).await.unwrap();
        assert_eq!(tasks.len(), 3);
        assert!(tasks.iter().all(|t| t.category == "arrival_verification"
            && t.path.grid == Some(chain.grid.id)));
        let mut subjects: Vec<_> = tasks.iter().map(|t| t.subject_id).collect();
        subjects.sort();
        let mut want = vec![zhang.id, li.id, wang.id];
        want.sort();
        assert_eq!(subjects, want);

        // A re-run finds the same tasks by their keys.
        let again = service.rerun_match_list(&office, summary.list_id).await.unwrap();
        assert_eq!((again.exact, again.probable, again.unmatched, again.tasks), (1, 2, 3, 3));
        assert_eq!(store.list_tasks(&all_tasks()).await.unwrap().len(), 3);

        // The download: the user's columns, then result, grid and task state.
        let (_, bytes) = service.match_result_xlsx(&office, summary.list_id, &zh).await.unwrap();
        let rows = sheet(&bytes);
        assert_eq!(
            rows[0][..7],
            ["姓名", "身份证号", "联系电话", "来源地", "抵达日期", "备注", "住址"]
        );
        assert_eq!(
            rows[0][7..10],
            [zh("matching.col.class"), zh("matching.col.grid"), zh("matching.col.task_state")]
        );
        assert_eq!(rows[1][1], zhang_id, "the office's own file comes back whole");
        assert_eq!(rows[1][7], "精确");
        assert_eq!(rows[2][7], "疑似");
        assert_eq!(rows[4][7], "未匹配");
        assert_eq!(rows[1][8], chain.grid.name);
        assert_eq!(rows[1][9], zh("board.state.reported"));
        assert_eq!(rows[5][10], zh("id.checksum"));

        // The grid worker closes a task: the next download says so.
        let worker_record = epigrid_testkit::user("list_worker", Role::GridWorker, &chain.grid);
        store.insert_user(&worker_record).await.unwrap();
        let worker = Actor {
            user_id: Some(worker_record.id),
            username: worker_record.username.clone(),
            role: Role::GridWorker,
            scope: Some(chain.scope(AreaKind::Grid)),
            client_addr: None,
        };
        let zhang_task = tasks.iter().find(|t| t.subject_id == zhang.id).unwrap();
        let step = |who: Actor, transition: Transition| {
            let service = &service;
            let id = zhang_task.id;
            async move {
                let request = TransitionRequest { transition, note: None, idempotency_key: None };
                service.transition_task(&who, id, request).await.unwrap()
            }
        };
        // The system files it and dispatches it to the grid's worker.
        step(Actor::system(), Transition::Verify).await;
        step(Actor::system(), Transition::File).await;
        step(worker.clone(), Transition::Accept).await;
        step(worker.clone(), Transition::ReportHandled).await;
        step(office.clone(), Transition::Close).await;
        let (_, bytes) = service.match_result_xlsx(&office, summary.list_id, &zh).await.unwrap();
        assert_eq!(sheet(&bytes)[1][9], zh("board.state.closed"));

        // Another task is rejected on verification.
        let li_task = tasks.iter().find(|t| t.subject_id == li.id).unwrap();
        let reject = Transition::Reject { reason: Reason::parse("已离开本地").unwrap() };
        service
            .transition_task(
                &office,
                li_task.id,
                TransitionRequest { transition: reject, note: None, idempotency_key: None },
            )
            .await
            .unwrap();
        let (_, bytes) = service.match_result_xlsx(&office, summary.list_id, &zh).await.unwrap();
        assert_eq!(sheet(&bytes)[2][9], zh("board.state.rejected"));

        // Audited with counts, never the people.
        let audits = store
            .list_audit(&AuditQuery {
                action: Some("matching.upload".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(audits.len(), 1);
        assert!(audits[0].detail.contains("\"exact\":1"), "{}", audits[0].detail);
        assert!(!audits[0].detail.contains("张三") && !audits[0].detail.contains(&zhang_id));

        // Someone in another community does not see the list at all.
        let other = Actor {
            role: Role::CommunityAdmin,
            scope: Some(Scope { kind: AreaKind::Community, area_id: elsewhere.community.id }),
            ..office.clone()
        };
        assert!(service.match_lists(&other).await.unwrap().is_empty());
        assert!(service.match_list_detail(&other, summary.list_id).await.is_err());
        assert_eq!(service.match_lists(&office).await.unwrap().len(), 1);
        // A grid worker may not upload lists.
        let worker =
            Actor { role: Role::GridWorker, scope: Some(chain.scope(AreaKind::Grid)), ..office };
        assert!(service.upload_match_list(&worker, "x.xlsx", &file).await.is_err());
    });
}

#[test]
fn a_file_without_an_id_or_phone_column_is_refused_and_nothing_is_stored() {
    on_both(|store| async move {
        let service = service(store.clone());
        let chain = Chain::insert(&*store, "1").await;
        let csv = "姓名,来源地\n张三,武汉\n".as_bytes();
        let err = service.upload_match_list(&admin(&chain), "名单.csv", csv).await.unwrap_err();
        assert!(err.to_string().contains("matching.no_match_column"), "{err}");
        assert!(store.list_match_lists(10).await.unwrap().is_empty());
        // English headers in a CSV are read too.
        let csv = "Name,ID Number,Phone\nZhang San,,13800000009\n".as_bytes();
        let s = service.upload_match_list(&admin(&chain), "list.csv", csv).await.unwrap();
        assert_eq!((s.total, s.unmatched), (1, 1));
    });
}
