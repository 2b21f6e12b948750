//! Exports end to end through the service, on a small demo sub-district:
//! masking by default, unmasking as an audited permission, scope, the CSV's
//! byte-order mark and headers, .xlsx read back with calamine (and with
//! LibreOffice when it is installed) whose numbers equal the database's,
//! and the daily report's figures and checks. SQLite, and PostgreSQL when
//! `EPIGRID_TEST_PG` names a database.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use chrono::NaiveDate;
use epigrid_domain::daily_report::Level;
use epigrid_domain::tasks::Subject;
use epigrid_domain::{AreaKind, Scope};
use epigrid_service::demo::DemoOptions;
use epigrid_service::export::{ExportError, ExportFormat};
use epigrid_service::privacy::UnmaskReason;
use epigrid_service::tasks::ReportEvent;
use epigrid_service::{Actor, FieldCipher, SecretKey, Service, ServiceError, Settings};
use epigrid_store::{
    AreaQuery, AreaRecord, AuditQuery, AuditRecord, IntakeWrite, ReportRecord, ReportedResident,
    ResidentQuery, Store,
};
use uuid::Uuid;

// ---- harness ------------------------------------------------------------------

fn on_both<F, Fut>(body: F)
where
    F: Fn(Arc<dyn Store>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    epigrid_testkit::run_on_sqlite(&body);
    epigrid_testkit::run_on_postgres(&body);
}

fn zh(key: &str) -> String {
    static CATALOGUE: std::sync::OnceLock<HashMap<String, String>> = std::sync::OnceLock::new();
    CATALOGUE
        .get_or_init(|| serde_json::from_str(include_str!("../../web/locales/zh-CN.json")).unwrap())
        .get(key)
        .cloned()
        .unwrap_or_else(|| panic!("no translation for {key}"))
}

/// A demo of 2 communities, 4 grids and 300 residents.
async fn demo(store: Arc<dyn Store>) -> Service {
    let key = SecretKey::from_hex(&"42".repeat(32)).unwrap();
    let service = Service::new(store, FieldCipher::new(&key), Settings::default());
    let options = DemoOptions {
        seed: 7,
        residents: 300,
        communities: 2,
        grids: 4,
        admin_password: Some("demo-password-1".into()),
    };
    service.generate_demo(&options, &|_| {}).await.unwrap();
    service
}

async fn actor(service: &Service, username: &str) -> Actor {
    let user = service.store().get_user_by_username(username).await.unwrap().unwrap();
    Actor {
        user_id: Some(user.id),
        username: user.username,
        role: user.role,
        scope: Some(user.scope),
        client_addr: None,
    }
}

async fn areas(service: &Service, kind: AreaKind) -> Vec<AreaRecord> {
    let mut areas = service
        .store()
        .list_areas(&AreaQuery { kind: Some(kind), limit: 500, ..Default::default() })
        .await
        .unwrap();
    areas.sort_by(|a, b| a.code.cmp(&b.code));
    areas
}

async fn residents_in(service: &Service, area: &AreaRecord) -> i64 {
    let scope = Scope { kind: area.kind, area_id: area.id };
    service.store().level_counts(Some(scope)).await.unwrap().residents
}

async fn audits(service: &Service, action: &str) -> Vec<AuditRecord> {
    service
        .store()
        .list_audit(&AuditQuery { action: Some(action.into()), limit: 100, ..Default::default() })
        .await
        .unwrap()
}

fn sheet(bytes: &[u8], index: usize) -> Vec<Vec<Data>> {
    let mut workbook: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes.to_vec())).unwrap();
    let range = workbook.worksheet_range_at(index).unwrap().unwrap();
    range.rows().map(<[Data]>::to_vec).collect()
}

fn text(cell: &Data) -> String {
    match cell {
        Data::String(s) => s.clone(),
        Data::Empty => String::new(),
        other => other.to_string(),
    }
}

fn parse_csv(bytes: &[u8]) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(bytes);
    reader.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect()
}

fn headers() -> Vec<String> {
    [
        "姓名",
        "性别",
        "出生日期",
        "证件类型",
        "证件号码",
        "联系电话",
        "社区",
        "网格",
        "楼栋",
        "单元",
        "房号",
        "与户主关系",
        "户籍/流动",
        "标签",
    ]
    .map(String::from)
    .to_vec()
}

fn is_masked_id(value: &str) -> bool {
    value.is_empty() || (value.contains('*') && value.chars().count() >= 8)
}

// ---- residents ------------------------------------------------------------------

#[test]
fn residents_csv_is_masked_with_bom_and_chinese_headers() {
    on_both(|store| async move {
        let service = demo(store).await;
        let c01 = actor(&service, "c01").await;
        let community =
            service.store().get_area(c01.scope.unwrap().area_id).await.unwrap().unwrap();
        let file = service
            .export_residents(&c01, community.id, ExportFormat::Csv, None, &zh)
            .await
            .unwrap();
        assert!(file.bytes.starts_with(b"\xEF\xBB\xBF"), "a UTF-8 BOM for Excel");
        assert!(file.file_name.ends_with(".csv") && file.file_name.contains(&community.name));
        let rows = parse_csv(&file.bytes[3..]);
        assert_eq!(rows[0], headers());
        let count = residents_in(&service, &community).await;
        assert!(count > 0);
        assert_eq!(rows.len() as i64 - 1, count);
        assert_eq!(file.rows as i64, count);
        for row in &rows[1..] {
            assert!(row[0].contains('*'), "name masked: {}", row[0]);
            assert!(is_masked_id(&row[4]), "id masked: {}", row[4]);
            assert!(row[5].is_empty() || row[5].contains("****"), "phone masked: {}", row[5]);
            assert_eq!(row[6], community.name);
        }
        let audit = audits(&service, "export.residents").await;
        assert_eq!(audit.len(), 1);
        let detail: serde_json::Value = serde_json::from_str(&audit[0].detail).unwrap();
        assert_eq!(detail["masked"], true);
        assert_eq!(detail["format"], "csv");
        assert_eq!(detail["rows"], count);
        assert_eq!(audit[0].target_id, Some(community.id));
    });
}

#[test]
fn unmasked_export_needs_the_permission_and_is_audited_with_its_reason() {
    on_both(|store| async move {
        let service = demo(store).await;
        let grids = areas(&service, AreaKind::Grid).await;
        // A grid worker may not unmask: refused, and the refusal audited.
        let g01 = actor(&service, "g01").await;
        let grid = g01.scope.unwrap().area_id;
        let refused = service
            .export_residents(&g01, grid, ExportFormat::Xlsx, Some(UnmaskReason::ReportUpward), &zh)
            .await;
        assert!(matches!(refused, Err(ExportError::Service(ServiceError::Forbidden))));
        let denied = audits(&service, "export.residents").await;
        assert_eq!(denied[0].outcome, "denied");
        // The community admin may, with a reason.
        let c01 = actor(&service, "c01").await;
        let community =
            service.store().get_area(c01.scope.unwrap().area_id).await.unwrap().unwrap();
        let file = service
            .export_residents(
                &c01,
                community.id,
                ExportFormat::Xlsx,
                Some(UnmaskReason::ReportUpward),
                &zh,
            )
            .await
            .unwrap();
        let rows = sheet(&file.bytes, 0);
        assert_eq!(rows[0].iter().map(text).collect::<Vec<_>>(), headers());
        assert_eq!(rows.len() as i64 - 1, residents_in(&service, &community).await);
        // The clear values are the registry's: every resident's decrypted
        // document number is in the file.
        let residents = service
            .store()
            .search_residents(&ResidentQuery {
                within: Some(Scope { kind: AreaKind::Community, area_id: community.id }),
                limit: 500,
                ..Default::default()
            })
            .await
            .unwrap();
        let in_file: std::collections::HashSet<String> =
            rows[1..].iter().map(|r| text(&r[4])).collect();
        let mut clear_ids = Vec::new();
        for r in &residents {
            if let Some(sealed) = &r.id_number {
                let clear = service.cipher().open(sealed).unwrap();
                assert!(in_file.contains(&clear), "{clear} missing");
                clear_ids.push(clear);
            }
        }
        assert!(!clear_ids.is_empty());
        assert!(rows[1..].iter().any(|r| !text(&r[0]).contains('*')));
        // Audited with the reason and the count, never a value.
        let audit = audits(&service, "export.residents").await;
        let ok = audit.iter().find(|a| a.outcome == "ok").unwrap();
        let detail: serde_json::Value = serde_json::from_str(&ok.detail).unwrap();
        assert_eq!(detail["masked"], false);
        assert_eq!(detail["reason"], "report_upward");
        assert_eq!(detail["rows"], residents.len());
        for id in &clear_ids {
            assert!(!ok.detail.contains(id.as_str()));
        }
        // Grid workers' exports stay within their grid.
        let other_grid = grids.iter().find(|g| g.id != grid).unwrap();
        let outside =
            service.export_residents(&g01, other_grid.id, ExportFormat::Csv, None, &zh).await;
        assert!(matches!(outside, Err(ExportError::Service(ServiceError::NotFound))));
        let communities = areas(&service, AreaKind::Community).await;
        let c02 = communities.iter().find(|c| c.id != community.id).unwrap();
        for result in [
            service.export_residents(&c01, c02.id, ExportFormat::Csv, None, &zh).await,
            service.export_tasks(&c01, c02.id, ExportFormat::Csv, &zh).await,
            service.export_daily_report(&c01, c02.id, service.today(), &zh).await,
        ] {
            assert!(matches!(result, Err(ExportError::Service(ServiceError::NotFound))));
        }
    });
}

// ---- tasks ------------------------------------------------------------------------

#[test]
fn task_list_is_exported_with_translated_names_and_audited() {
    on_both(|store| async move {
        let service = demo(store).await;
        let c01 = actor(&service, "c01").await;
        let community = c01.scope.unwrap().area_id;
        let grids: Vec<AreaRecord> = areas(&service, AreaKind::Grid)
            .await
            .into_iter()
            .filter(|g| g.path.community == Some(community))
            .collect();
        for (i, category) in ["help_request", "door_to_door_check", "other"].iter().enumerate() {
            service
                .report_event(
                    &c01,
                    ReportEvent {
                        category: (*category).into(),
                        priority: None,
                        subject: Subject::Area(grids[i % grids.len()].id),
                        note: None,
                        idempotency_key: None,
                    },
                )
                .await
                .unwrap();
        }
        let file = service.export_tasks(&c01, community, ExportFormat::Xlsx, &zh).await.unwrap();
        let rows = sheet(&file.bytes, 0);
        assert_eq!(text(&rows[0][0]), "事件类别");
        assert_eq!(rows.len(), 4);
        let categories: Vec<String> = rows[1..].iter().map(|r| text(&r[0])).collect();
        assert!(categories.contains(&"居民求助".to_owned()), "{categories:?}");
        assert!(categories.contains(&"入户排查".to_owned()));
        assert!(rows[1..].iter().all(|r| text(&r[2]) == zh("board.state.reported")));
        let audit = audits(&service, "export.tasks").await;
        assert_eq!(serde_json::from_str::<serde_json::Value>(&audit[0].detail).unwrap()["rows"], 3);
    });
}

// ---- the daily report --------------------------------------------------------------

/// Health reports for `day` in `grid`: `people` residents of one household
/// each, `flagged` of them with fever, `staff` of them at the door; plus
/// `arrivals` arrival reports.
async fn intake(
    service: &Service,
    grid: &AreaRecord,
    day: NaiveDate,
    people: usize,
    flagged: usize,
    staff: usize,
    arrivals: usize,
) {
    let residents = service
        .store()
        .search_residents(&ResidentQuery {
            within: Some(Scope { kind: AreaKind::Grid, area_id: grid.id }),
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(residents.len() >= people + arrivals);
    let mut writes = Vec::new();
    for (i, r) in residents.iter().take(people + arrivals).enumerate() {
        let health = i < people;
        let id = Uuid::now_v7();
        let mut path = r.path;
        path.unit = r.path.unit;
        writes.push(IntakeWrite {
            report: ReportRecord {
                id,
                kind: if health { "health" } else { "arrival" }.into(),
                household_id: r.household_id,
                path,
                day,
                created_at: chrono::Utc::now(),
                idempotency_key: format!("k-{id}"),
                reference: format!("JK-{}", id.simple()),
                source: if health && i < staff { "staff" } else { "resident" }.into(),
                actor_account_id: None,
                payload: "{}".into(),
                flagged: u32::from(health && i < flagged),
                tasks_pending: false,
            },
            residents: if health {
                vec![ReportedResident { resident_id: r.id }]
            } else {
                Vec::new()
            },
        });
    }
    service.store().write_intake_batch(&writes, None).await.unwrap();
}

/// A door-to-door check task on `household`, handled now (stored directly:
/// the closed loop's steps are tested with the tasks).
async fn handled_door_check(service: &Service, actor: &Actor, household: Uuid) {
    let view = service
        .report_event(
            actor,
            ReportEvent {
                category: "door_to_door_check".into(),
                priority: None,
                subject: Subject::Household(household),
                note: None,
                idempotency_key: None,
            },
        )
        .await
        .unwrap();
    let store = service.store();
    let mut task = store.get_task(view.id).await.unwrap().unwrap();
    let mut first = store.list_task_history(view.id).await.unwrap().remove(0);
    task.id = Uuid::now_v7();
    task.handled_at = Some(service.now());
    first.id = Uuid::now_v7();
    first.task_id = task.id;
    store.insert_task(&task, &first).await.unwrap();
}

fn figure_row<'a>(rows: &'a [Vec<Data>], label_key: &str) -> &'a [Data] {
    let label = zh(label_key);
    rows.iter().find(|r| text(&r[0]) == label).unwrap_or_else(|| panic!("no row {label}"))
}

fn number(cell: &Data) -> i64 {
    match cell {
        Data::Float(f) => *f as i64,
        Data::Int(i) => *i,
        other => panic!("not a number: {other:?}"),
    }
}

#[test]
fn daily_report_counts_the_registry_and_intake_and_passes_its_checks() {
    on_both(|store| async move {
        let service = demo(store).await;
        let admin = actor(&service, "admin").await;
        let today = service.today();
        let yesterday = today.pred_opt().unwrap();
        let grids = areas(&service, AreaKind::Grid).await;
        intake(&service, &grids[0], yesterday, 3, 1, 2, 1).await;
        intake(&service, &grids[0], today, 4, 2, 1, 0).await;
        intake(&service, &grids[1], today, 2, 0, 0, 2).await;
        // Door-to-door check tasks handled today count as households
        // checked, once per household however it was checked.
        let in_grid = service
            .store()
            .search_residents(&ResidentQuery {
                within: Some(Scope { kind: AreaKind::Grid, area_id: grids[0].id }),
                limit: 500,
                ..Default::default()
            })
            .await
            .unwrap();
        let reported_at_door = in_grid[0].household_id;
        let other = in_grid.iter().find(|r| r.household_id != reported_at_door).unwrap();
        for household in [reported_at_door, other.household_id] {
            handled_door_check(&service, &admin, household).await;
        }
        let sub_district = areas(&service, AreaKind::SubDistrict).await.remove(0);
        let report = service.daily_report(&admin, sub_district.id, today).await.unwrap();
        assert_eq!(report.failures, vec![]);
        assert_eq!(report.units.len(), 1 + 2 + 4);
        assert_eq!(report.units[0].level, Level::SubDistrict);
        let top = &report.units[0].counts;
        assert_eq!(top.people_registered, residents_in(&service, &sub_district).await);
        assert_eq!((top.people_reported.new_today, top.people_reported.cumulative), (6, 9));
        assert_eq!((top.fever.new_today, top.fever.cumulative), (2, 3));
        assert_eq!((top.arrivals.new_today, top.arrivals.cumulative), (2, 3));
        assert_eq!((top.households_checked.new_today, top.households_checked.cumulative), (2, 4));

        let file = service.export_daily_report(&admin, sub_district.id, today, &zh).await.unwrap();
        let rows = sheet(&file.bytes, 0);
        assert_eq!(text(&rows[0][0]), zh("export.daily.title"));
        let header = |key: &str| {
            let label = zh(key);
            text(&rows.iter().find(|r| text(&r[0]) == label).unwrap()[1])
        };
        assert_eq!(
            header("export.daily.code"),
            format!("{}000", sub_district.code.clone().unwrap())
        );
        assert_eq!(header("export.daily.date"), today.format("%Y-%m-%d").to_string());
        let admin_user = service.store().get_user_by_username("admin").await.unwrap().unwrap();
        assert_eq!(header("export.daily.reporter"), admin_user.display_name);
        let registered = figure_row(&rows, "export.daily.figure.people_registered");
        assert_eq!(number(&registered[3]), top.people_registered);
        let reported = figure_row(&rows, "export.daily.figure.people_reported");
        assert_eq!((number(&reported[1]), number(&reported[2])), (6, 9));
        // Known figures are numbers, unknown ones say so, and are not zero.
        let contacts = figure_row(&rows, "export.daily.figure.close_contacts");
        assert_eq!(text(&contacts[1]), "暂无数据");
        let arrivals = figure_row(&rows, "export.daily.figure.arrivals");
        assert_eq!(text(&arrivals[4]), zh("export.daily.note.arrivals_total"));
        // One sheet per unit; a grid's sheet has the grid's own figures.
        let grid_code = grids[0].code.clone().unwrap();
        let grid_index = report.units.iter().position(|u| u.code == grid_code).unwrap();
        let grid_rows = sheet(&file.bytes, grid_index);
        let fever = figure_row(&grid_rows, "export.daily.figure.fever");
        assert_eq!((number(&fever[1]), number(&fever[2])), (2, 3));
        let audit = audits(&service, "export.daily_report").await;
        assert_eq!(audit[0].outcome, "ok");

        // A quiet grid on a past day is a zero report, not an error.
        let quiet = service.export_daily_report(&admin, grids[3].id, yesterday, &zh).await.unwrap();
        let quiet_rows = sheet(&quiet.bytes, 0);
        assert_eq!(
            text(
                &quiet_rows.iter().find(|r| text(&r[0]) == zh("export.daily.zero_report")).unwrap()
                    [1]
            ),
            "是"
        );
    });
}

#[test]
fn a_failing_check_blocks_the_daily_report_with_its_message() {
    on_both(|store| async move {
        let service = demo(store).await;
        let admin = actor(&service, "admin").await;
        let today = service.today();
        let grids = areas(&service, AreaKind::Grid).await;
        intake(&service, &grids[0], today, 3, 1, 0, 0).await;
        let sub_district = areas(&service, AreaKind::SubDistrict).await.remove(0);
        let mut report = service.daily_report(&admin, sub_district.id, today).await.unwrap();
        // A grid whose registry figure disagrees with its community's total.
        let grid = report.units.iter_mut().find(|u| u.level == Level::Grid).unwrap();
        grid.counts.people_registered += 1;
        let failures = epigrid_domain::daily_report::check(&report.units);
        assert!(!failures.is_empty());
        report.failures = failures;
        let err =
            service.export_checked_report(&admin, sub_district.id, report, &zh).await.unwrap_err();
        let ExportError::Checks(failures) = err else { panic!("{err:?}") };
        let messages = epigrid_service::export::check_messages(&failures, &zh);
        assert!(
            messages.iter().any(|m| m.contains("登记人数") && m.contains("下级合计")),
            "{messages:?}"
        );
        let audit = audits(&service, "export.daily_report").await;
        assert_eq!(audit[0].outcome, "blocked");
        // A future date is refused with the field named.
        let future = service
            .export_daily_report(&admin, sub_district.id, today.succ_opt().unwrap(), &zh)
            .await;
        assert!(matches!(
            future,
            Err(ExportError::Service(ServiceError::Invalid { ref field, .. })) if field == "date"
        ));
    });
}

// ---- LibreOffice reads our files ---------------------------------------------------

fn soffice() -> Option<String> {
    ["soffice", "libreoffice"].into_iter().find_map(|name| {
        std::process::Command::new(name)
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|_| name.to_owned())
    })
}

/// `libreoffice --headless --convert-to csv`, with a private profile so that
/// parallel runs do not fight over one.
fn libreoffice_csv(program: &str, xlsx: &[u8], name: &str) -> Vec<Vec<String>> {
    let dir = tempfile_dir(name);
    let input = dir.join(format!("{name}.xlsx"));
    std::fs::write(&input, xlsx).unwrap();
    let profile = dir.join("profile");
    let output = std::process::Command::new(program)
        .arg(format!("-env:UserInstallation=file://{}", profile.display()))
        .args([
            "--headless",
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):44,34,76",
            "--outdir",
        ])
        .arg(&dir)
        .arg(&input)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let csv = std::fs::read(dir.join(format!("{name}.csv")))
        .unwrap_or_else(|e| panic!("no csv ({e}): {}", String::from_utf8_lossy(&output.stdout)));
    let _ = std::fs::remove_dir_all(&dir);
    let body = csv.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&csv);
    parse_csv(body)
}

fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("epigrid-lo-{name}-{}", Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn libreoffice_reads_back_the_numbers_of_the_database() {
    let Some(program) = soffice() else {
        if std::env::var("EPIGRID_REQUIRE_LIBREOFFICE").as_deref() == Ok("1") {
            panic!("EPIGRID_REQUIRE_LIBREOFFICE=1 but soffice is not installed");
        }
        eprintln!(
            "skipped: LibreOffice (soffice) is not installed; apt-get install libreoffice-calc"
        );
        return;
    };
    epigrid_testkit::run_on_sqlite(|store| async move {
        let service = demo(store).await;
        let admin = actor(&service, "admin").await;
        let today = service.today();
        let grids = areas(&service, AreaKind::Grid).await;
        intake(&service, &grids[0], today.pred_opt().unwrap(), 2, 1, 1, 0).await;
        intake(&service, &grids[0], today, 5, 1, 2, 1).await;
        let sub_district = areas(&service, AreaKind::SubDistrict).await.remove(0);

        let residents = service
            .export_residents(&admin, sub_district.id, ExportFormat::Xlsx, None, &zh)
            .await
            .unwrap();
        let rows = libreoffice_csv(&program, &residents.bytes, "residents");
        assert_eq!(rows[0], headers());
        let count = residents_in(&service, &sub_district).await;
        assert_eq!(rows.len() as i64 - 1, count);
        // Dates survive as dates, masks as text.
        assert!(rows[1][2].len() == 10 && rows[1][2].as_bytes()[4] == b'-', "{:?}", rows[1]);
        assert!(rows[1..].iter().all(|r| is_masked_id(&r[4])));
        for community in areas(&service, AreaKind::Community).await {
            let n = rows[1..].iter().filter(|r| r[6] == community.name).count() as i64;
            assert_eq!(n, residents_in(&service, &community).await, "{}", community.name);
        }

        let report =
            service.export_daily_report(&admin, sub_district.id, today, &zh).await.unwrap();
        let rows = libreoffice_csv(&program, &report.bytes, "daily");
        let find = |key: &str| {
            let label = zh(key);
            rows.iter().find(|r| r[0] == label).unwrap_or_else(|| panic!("no {label}")).clone()
        };
        assert_eq!(find("export.daily.figure.people_registered")[3], count.to_string());
        let scope = Scope { kind: AreaKind::SubDistrict, area_id: sub_district.id };
        let households = service.store().level_counts(Some(scope)).await.unwrap().households;
        assert_eq!(find("export.daily.figure.households_registered")[3], households.to_string());
        let counters = service.store().grid_day_counters(&[grids[0].id], today).await.unwrap();
        let reported = find("export.daily.figure.people_reported");
        assert_eq!(reported[1], counters[0].residents_reported.to_string());
        assert_eq!(reported[2], "7");
        assert_eq!(find("export.daily.figure.fever")[1..3], ["1".to_owned(), "2".to_owned()]);
        assert_eq!(
            find("export.daily.figure.households_checked")[1..3],
            ["2".to_owned(), "3".to_owned()]
        );
        assert_eq!(find("export.daily.figure.close_contacts")[1], "暂无数据");
        assert_eq!(find("export.daily.code")[1], format!("{}000", sub_district.code.unwrap()));
    });
}
