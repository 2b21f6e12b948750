//! Imports of messy real-world files, end to end through the service: each
//! fixture is generated here (rust_xlsxwriter for spreadsheets, encoding_rs
//! for GBK and GB18030 CSVs) and each case asserts its exact outcome:
//! imported, updated, or rejected with the expected reason. Every test runs
//! on SQLite, and on PostgreSQL when `EPIGRID_TEST_PG` names a database.

use std::collections::HashMap;
use std::sync::Arc;

use epigrid_domain::identity::check_character;
use epigrid_domain::import::Field;
use epigrid_domain::{AreaKind, Role, Scope};
use epigrid_service::import::{
    ImportMode, ImportOptions, ImportProgress, file_digest, read_table, report,
};
use epigrid_service::{Actor, FieldCipher, SecretKey, Service, Settings};
use epigrid_store::{AuditQuery, ResidentQuery, ResidentRecord, Store};
use epigrid_testkit::Chain;
use rust_xlsxwriter::{Format, Workbook};

// ---- harness ------------------------------------------------------------------

/// Runs `body` on SQLite, then on PostgreSQL when configured.
fn on_both<F, Fut>(body: F)
where
    F: Fn(Arc<dyn Store>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    epigrid_testkit::run_on_sqlite(&body);
    epigrid_testkit::run_on_postgres(&body);
}

fn service(store: Arc<dyn Store>) -> Service {
    let key = SecretKey::from_hex(&"42".repeat(32)).unwrap();
    Service::new(store, FieldCipher::new(&key), Settings::default())
}

/// The Chinese catalogue, to assert the exact words users read.
fn zh(key: &str) -> String {
    static CATALOGUE: std::sync::OnceLock<HashMap<String, String>> = std::sync::OnceLock::new();
    CATALOGUE
        .get_or_init(|| serde_json::from_str(include_str!("../../web/locales/zh-CN.json")).unwrap())
        .get(key)
        .cloned()
        .unwrap_or_else(|| panic!("no translation for {key}"))
}

/// An 18-digit resident ID with its correct check character.
fn id(first17: &str) -> String {
    let bytes: [u8; 17] = first17.as_bytes().try_into().unwrap();
    format!("{first17}{}", check_character(&bytes))
}

enum C {
    S(&'static str),
    T(String),
    N(f64),
    /// A date-formatted Excel serial.
    D(f64),
    Blank,
}

/// An .xlsx whose first rows are `titles` merged across the width (as
/// offices put a title above their tables), then `rows`.
fn xlsx(titles: &[&str], rows: &[Vec<C>]) -> Vec<u8> {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let width = rows.iter().map(Vec::len).max().unwrap_or(1) as u16;
    for (r, title) in titles.iter().enumerate() {
        sheet.merge_range(r as u32, 0, r as u32, width - 1, title, &Format::new()).unwrap();
    }
    for (i, cells) in rows.iter().enumerate() {
        let r = (titles.len() + i) as u32;
        for (c, cell) in cells.iter().enumerate() {
            let c = c as u16;
            match cell {
                C::S(s) => {
                    sheet.write_string(r, c, *s).unwrap();
                }
                C::T(s) => {
                    sheet.write_string(r, c, s).unwrap();
                }
                C::N(n) => {
                    sheet.write_number(r, c, *n).unwrap();
                }
                C::D(n) => {
                    sheet.write_number_with_format(r, c, *n, &date).unwrap();
                }
                C::Blank => {}
            }
        }
    }
    workbook.save_to_buffer().unwrap()
}

fn options(mode: ImportMode) -> ImportOptions {
    ImportOptions { mode, ..ImportOptions::default() }
}

/// Reads, plans and applies; returns the plan and the summary.
async fn import(
    service: &Service,
    actor: &Actor,
    name: &str,
    bytes: &[u8],
    options: &ImportOptions,
) -> (epigrid_service::import::ImportPlan, epigrid_service::import::ImportSummary) {
    service.import_residents(actor, name, bytes, options, &ImportProgress::default()).await.unwrap()
}

async fn resident_by_id(service: &Service, number: &str) -> Option<ResidentRecord> {
    let blind = service.cipher().blind_index("id_number", number);
    let found = service
        .store()
        .search_residents(&ResidentQuery {
            id_blind_index: Some(blind),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(found.len() <= 1);
    found.into_iter().next()
}

async fn resident_count(store: &dyn Store) -> i64 {
    store.level_counts(None).await.unwrap().residents
}

/// (row, column header, reason code) of every error.
fn errors_of(plan: &epigrid_service::import::ImportPlan) -> Vec<(usize, String, &'static str)> {
    plan.errors.iter().map(|e| (e.row, e.column.clone(), e.code)).collect()
}

const HEADER: [&str; 9] = [
    "序号",
    " 姓 名 ",
    "身份证号（必填）",
    "性别",
    "出生日期",
    "联系电话",
    "网格",
    "楼栋",
    "门牌号",
];

fn header() -> Vec<C> {
    HEADER.iter().map(|h| C::S(h)).collect()
}

// ---- cases ----------------------------------------------------------------------

/// Every messy cell of the issue in one workbook, imported valid-rows-only.
#[test]
fn messy_workbook_valid_rows_only() {
    on_both(|store| async move {
        let chain = Chain::insert(&*store, "永安").await;
        let service = service(store.clone());
        let grid = C::T(chain.grid.name.clone());
        let g = || C::T(chain.grid.name.clone());
        let zhang = id("11010519491231002");
        let rows = vec![
            header(),
            // 4: spaces around the name, full-width digits in the ID and phone.
            vec![
                C::N(1.0),
                C::S("  张三 "),
                C::T(format!(" {}\u{3000}", to_full_width(&zhang))),
                C::S("女"),
                C::Blank,
                C::S("１３８００１３８０００"),
                grid,
                C::S("1号楼"),
                C::S("101"),
            ],
            // 5: a 15-digit legacy ID stored as a number: exact, upgraded.
            vec![
                C::N(2.0),
                C::S("李四"),
                C::N(340_524_800_101_001.0),
                C::Blank,
                C::Blank,
                C::Blank,
                g(),
                C::S("1"),
                C::S("102"),
            ],
            // 6: an 18-digit ID stored as a number: digits lost, rejected.
            vec![
                C::N(3.0),
                C::S("王五"),
                C::N(371_602_199_001_010_000.0),
                C::Blank,
                C::Blank,
                C::Blank,
                g(),
                C::S("1"),
                C::S("103"),
            ],
            // 7: scientific notation as text.
            vec![
                C::N(4.0),
                C::S("赵六"),
                C::S("3.7160219900101E+17"),
                C::Blank,
                C::Blank,
                C::Blank,
                g(),
                C::S("1"),
                C::S("104"),
            ],
            // 8: empty row (skipped, not an error).
            vec![],
            // 9: birth date as an Excel date serial (1980-01-01 = 29221).
            vec![
                C::N(5.0),
                C::S("钱七"),
                C::T(id("37010119800101001")),
                C::S("男"),
                C::D(29221.0),
                C::Blank,
                g(),
                C::S("1"),
                C::S("105"),
            ],
            // 10: birth date as Chinese text.
            vec![
                C::N(6.0),
                C::S("孙八"),
                C::T(id("37010119800102002")),
                C::S("女"),
                C::S("1980年1月2日"),
                C::Blank,
                g(),
                C::S("1"),
                C::S("106"),
            ],
            // 11: wrong check digit.
            vec![
                C::N(7.0),
                C::S("周九"),
                C::S("110101202311012171"),
                C::Blank,
                C::Blank,
                C::Blank,
                g(),
                C::S("1"),
                C::S("107"),
            ],
            // 12: the person of row 4 again.
            vec![
                C::N(8.0),
                C::S("张三"),
                C::T(zhang.clone()),
                C::Blank,
                C::Blank,
                C::Blank,
                g(),
                C::S("1"),
                C::S("101"),
            ],
            // 13: scientific notation as a float cell.
            vec![
                C::N(9.0),
                C::S("吴十"),
                C::N(3.7160219900101e17),
                C::Blank,
                C::Blank,
                C::Blank,
                g(),
                C::S("1"),
                C::S("108"),
            ],
            // 14: sex that contradicts the ID, and a birth date as 20230105-style text.
            vec![
                C::N(10.0),
                C::S("郑一"),
                C::T(id("37010119800103003")),
                C::S("女"),
                C::S("19800103"),
                C::Blank,
                g(),
                C::S("1"),
                C::S("109"),
            ],
        ];
        let bytes = xlsx(&["永安社区居民信息登记表", "填报日期：2024年5月1日"], &rows);
        let actor = Actor::system();
        let (plan, summary) =
            import(&service, &actor, "居民.xlsx", &bytes, &options(ImportMode::ValidOnly)).await;

        assert_eq!(plan.header_row, 2, "the header is the third row, below two merged titles");
        assert_eq!(plan.mapping.column_of(Field::Name), Some(1));
        assert_eq!(plan.mapping.column_of(Field::IdNumber), Some(2));
        assert_eq!(plan.data_rows, 10, "the empty row is not a data row");
        let id_column = "身份证号（必填）".to_owned();
        assert_eq!(
            errors_of(&plan),
            vec![
                (6, id_column.clone(), "import.id_scientific"),
                (7, id_column.clone(), "import.id_scientific"),
                (11, id_column.clone(), "id.checksum"),
                (12, id_column.clone(), "import.duplicate_in_file"),
                (13, id_column.clone(), "import.id_scientific"),
                (14, "性别".to_owned(), "resident.sex_mismatch"),
            ]
        );
        assert_eq!(plan.errors[3].other_row, Some(4));
        assert_eq!(
            (summary.inserted, summary.updated, summary.unchanged, summary.rejected),
            (4, 0, 0, 6)
        );
        assert_eq!(summary.status, "done");
        assert_eq!(resident_count(&*store).await, 4);

        let zhang_record = resident_by_id(&service, &zhang).await.expect("row 4 imported");
        assert_eq!(zhang_record.name.as_str(), "张三");
        assert_eq!(
            service.cipher().open(zhang_record.phone.as_ref().unwrap()).unwrap(),
            "13800138000"
        );
        let li = resident_by_id(&service, "34052419800101001X").await.expect("legacy ID upgraded");
        assert_eq!(li.birth_date, epigrid_testkit::date(1980, 1, 1));
        let qian = resident_by_id(&service, &id("37010119800101001")).await.unwrap();
        assert_eq!(qian.birth_date, epigrid_testkit::date(1980, 1, 1));
        assert!(resident_by_id(&service, &id("37010119800102002")).await.is_some());
        // Every row went to the existing building and unit: "1号楼" and "1" are one building.
        assert_eq!(plan.new_areas, 0);
        assert_eq!(zhang_record.path.unit, Some(chain.unit.id));

        // The error report: the user's rows plus the reason, in Chinese.
        let table = read_table("居民.xlsx", &bytes).unwrap();
        let report_bytes =
            report::error_report(&table, plan.header_row, &plan.errors, &zh).unwrap();
        let back = read_table("错误报告.xlsx", &report_bytes).unwrap();
        let reason_column = HEADER.len();
        assert_eq!(back.rows[0][0].display(), "永安社区居民信息登记表");
        assert_eq!(back.rows[2][reason_column].display(), "错误原因");
        assert_eq!(
            back.rows[6][reason_column].display(),
            "身份证号（必填）：身份证号被 Excel 转成了科学计数法，后几位已丢失，请把该列设为文本后重新导出"
        );
        assert_eq!(
            back.rows[11][reason_column].display(),
            "身份证号（必填）：与第4行的证件号码重复"
        );
        assert_eq!(back.rows[3].get(reason_column).map(|c| c.display()).unwrap_or_default(), "");
        assert_eq!(back.rows[6][1].display(), "赵六", "the user's own cells are kept");

        // Audited: one entry for the import, one per chunk, no personal data.
        let entries = store
            .list_audit(&AuditQuery {
                action: Some("import".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(entries.len(), 1);
        assert!(entries[0].detail.contains("\"inserted\":4"), "{}", entries[0].detail);
        assert!(!entries[0].detail.contains("张三") && !entries[0].detail.contains(&zhang));
    });
}

fn to_full_width(s: &str) -> String {
    s.chars()
        .map(
            |c| {
                if c.is_ascii_alphanumeric() {
                    char::from_u32(c as u32 + 0xFEE0).unwrap()
                } else {
                    c
                }
            },
        )
        .collect()
}

/// All-or-nothing writes nothing while one row is wrong; valid-only writes
/// the rest.
#[test]
fn all_or_nothing_versus_valid_only() {
    on_both(|store| async move {
        let chain = Chain::insert(&*store, "二选一").await;
        let service = service(store.clone());
        let g = || C::T(chain.grid.name.clone());
        let rows = vec![
            header(),
            vec![
                C::N(1.0),
                C::S("甲"),
                C::T(id("11010519800101001")),
                C::Blank,
                C::Blank,
                C::Blank,
                g(),
                C::S("1"),
                C::S("201"),
            ],
            vec![
                C::N(2.0),
                C::S("乙"),
                C::S("11010519800101001"),
                C::Blank,
                C::Blank,
                C::Blank,
                g(),
                C::S("1"),
                C::S("202"),
            ],
        ];
        let bytes = xlsx(&[], &rows);
        let actor = Actor::system();
        let (plan, summary) =
            import(&service, &actor, "a.xlsx", &bytes, &options(ImportMode::AllOrNothing)).await;
        assert!(!plan.can_apply());
        assert_eq!(errors_of(&plan), vec![(3, "身份证号（必填）".into(), "id.format")]);
        assert_eq!(summary.status, "rejected");
        assert_eq!((summary.inserted, summary.rejected), (0, 1));
        assert_eq!(resident_count(&*store).await, 0, "nothing written");
        let job = store.get_import_job(summary.job_id).await.unwrap().unwrap();
        assert_eq!((job.status.as_str(), job.chunks_done), ("rejected", 0));

        let (_, summary) =
            import(&service, &actor, "a.xlsx", &bytes, &options(ImportMode::ValidOnly)).await;
        assert_eq!((summary.inserted, summary.rejected), (1, 1));
        assert_eq!(resident_count(&*store).await, 1);
    });
}

/// CSVs in UTF-8 with BOM, GBK and GB18030 (with a character GBK lacks),
/// and an English, tab-separated one.
#[test]
fn csv_encodings_and_english_headers() {
    on_both(|store| async move {
        let chain = Chain::insert(&*store, "编码").await;
        let service = service(store.clone());
        let actor = Actor::system();
        let grid = chain.grid.name.clone();
        let text = |name: &str, number: &str, room: &str| {
            format!("姓名,身份证号,网格,楼栋,单元,房号\n{name},{number},{grid},1,1,{room}\n")
        };

        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(text("欧阳娜娜", &id("11010519900101002"), "301").as_bytes());
        let gbk_text = text("诸葛亮", &id("11010519900101010"), "302");
        let (gbk, _, unmappable) = encoding_rs::GBK.encode(&gbk_text);
        assert!(!unmappable);
        // 䶮 (U+4DAE) is in GB18030 but not in GBK.
        let gb18030_text = text("刘䶮", &id("11010519900101029"), "303");
        let (gb18030, _, _) = encoding_rs::GB18030.encode(&gb18030_text);
        let english = format!(
            "Name\tID Number\tGrid\tBuilding\tUnit\tRoom\tPhone\nJohn Smith\t{}\t{grid}\t1\t1\t304\t+86 139 0000 0000\n",
            id("11010519900101037")
        );
        for (file, bytes, name, number) in [
            ("bom.csv", bom, "欧阳娜娜", id("11010519900101002")),
            ("gbk.csv", gbk.into_owned(), "诸葛亮", id("11010519900101010")),
            ("gb18030.csv", gb18030.into_owned(), "刘䶮", id("11010519900101029")),
            ("english.csv", english.into_bytes(), "John Smith", id("11010519900101037")),
        ] {
            let (plan, summary) =
                import(&service, &actor, file, &bytes, &options(ImportMode::AllOrNothing)).await;
            assert_eq!(errors_of(&plan), vec![], "{file}");
            assert_eq!(summary.inserted, 1, "{file}");
            let stored =
                resident_by_id(&service, &number).await.unwrap_or_else(|| panic!("{file}"));
            assert_eq!(stored.name.as_str(), name, "{file}");
        }
        assert_eq!(
            read_table("gbk.csv", &encoding_rs::GBK.encode("姓名,身份证号\n").0).unwrap().format,
            "csv (GB18030)"
        );
    });
}

/// A registered person in a new file is updated, not duplicated; the plan
/// shows what changes before it is applied; a second run changes nothing.
#[test]
fn existing_residents_are_updated_with_the_change_shown() {
    on_both(|store| async move {
        let chain = Chain::insert(&*store, "更新").await;
        let service = service(store.clone());
        let actor = Actor::system();
        let g = chain.grid.name.clone();
        let number = id("37010219850505002");
        let first = format!(
            "姓名,身份证号,网格,楼栋,门牌号,联系电话,标签\n张丽,{number},{g},1,401,13800138000,\n"
        );
        let (_, summary) = import(
            &service,
            &actor,
            "v1.csv",
            first.as_bytes(),
            &options(ImportMode::AllOrNothing),
        )
        .await;
        assert_eq!(summary.inserted, 1);
        let before = resident_by_id(&service, &number).await.unwrap();

        let second = format!(
            "姓名,身份证号,网格,楼栋,门牌号,联系电话,标签\n张丽,{number},{g},1,401,13900139000,独居老人\n"
        );
        let table = read_table("v2.csv", second.as_bytes()).unwrap();
        let progress = ImportProgress::default();
        let plan = service
            .plan_import(
                &actor,
                &table,
                file_digest(second.as_bytes()),
                &options(ImportMode::AllOrNothing),
                &progress,
            )
            .await
            .unwrap();
        assert_eq!((plan.inserts, plan.unchanged), (0, 0));
        assert_eq!(plan.updates.len(), 1);
        let update = &plan.updates[0];
        assert_eq!(
            (update.row, update.resident_id, update.name_masked.as_str()),
            (2, before.id, "张*")
        );
        let changes: Vec<(&str, &str, &str)> =
            update.changes.iter().map(|c| (c.field, c.before.as_str(), c.after.as_str())).collect();
        assert_eq!(
            changes,
            vec![("phone", "138****8000", "139****9000"), ("tags", "", "elderly_alone")]
        );
        assert_eq!(
            resident_by_id(&service, &number).await.unwrap(),
            before,
            "planning wrote nothing"
        );

        let summary = service.apply_import(&actor, &plan, &progress).await.unwrap();
        assert_eq!((summary.inserted, summary.updated), (0, 1));
        let after = resident_by_id(&service, &number).await.unwrap();
        assert_eq!((after.id, after.created_at), (before.id, before.created_at));
        assert_eq!(service.cipher().open(after.phone.as_ref().unwrap()).unwrap(), "13900139000");
        assert_eq!(resident_count(&*store).await, 1, "updated, not duplicated");

        let (_, again) = import(
            &service,
            &actor,
            "v2.csv",
            second.as_bytes(),
            &options(ImportMode::AllOrNothing),
        )
        .await;
        assert_eq!((again.inserted, again.updated, again.unchanged), (0, 0, 1));
    });
}

/// A failure in the middle of an import leaves whole chunks only, and
/// running the same file again completes it, ending in the same state as
/// an uninterrupted run.
#[test]
fn a_crash_mid_import_leaves_no_partial_chunk_and_a_rerun_completes() {
    on_both(|store| async move {
        let chain = Chain::insert(&*store, "断电").await;
        let service = service(store.clone());
        let actor = Actor::system();
        let g = chain.grid.name.clone();
        let numbers: Vec<String> =
            (0..12).map(|i| id(&format!("370102199001{:02}001", i + 1))).collect();
        let mut csv = "姓名,身份证号,网格,楼栋,单元,门牌号\n".to_owned();
        for (i, number) in numbers.iter().enumerate() {
            // Rows in new buildings, so the chunks create areas and households too.
            csv.push_str(&format!("居民{i},{number},{g},{},1,{}\n", 10 + i / 5, 100 + i));
        }
        let bytes = csv.as_bytes();
        let options = ImportOptions { chunk_rows: 5, ..options(ImportMode::AllOrNothing) };
        let table = read_table("crash.csv", bytes).unwrap();
        let progress = ImportProgress::default();
        let plan = service
            .plan_import(&actor, &table, file_digest(bytes), &options, &progress)
            .await
            .unwrap();
        assert_eq!((plan.inserts, plan.new_areas, plan.new_households), (12, 6, 12));

        // The failure: between planning and writing, someone registers the
        // person of row 9 (in the second chunk) elsewhere. The second
        // chunk's insert then breaks the unique document index mid-way.
        let home = epigrid_testkit::household(&chain.unit, "999");
        let mut clash = epigrid_testkit::resident(&home, "先到者");
        clash.id_number = Some(service.cipher().seal("id_number", &numbers[7], &numbers[7]));
        store.bulk_load(std::slice::from_ref(&home), std::slice::from_ref(&clash)).await.unwrap();

        let error = service.apply_import(&actor, &plan, &progress).await.unwrap_err();
        assert_eq!(error.code(), "id.duplicate");
        for (i, number) in numbers.iter().enumerate() {
            let present = resident_by_id(&service, number).await.is_some_and(|r| r.id != clash.id);
            assert_eq!(present, i < 5, "row {i}: only the first chunk is written");
        }
        let buildings = store
            .areas_within(None)
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.kind == AreaKind::Building)
            .count();
        assert_eq!(buildings, 2, "the first chunk's building only, beside the chain's own");
        assert_eq!(store.level_counts(None).await.unwrap().households, 5 + 1);
        let job = store.latest_import_job(&file_digest(bytes)).await.unwrap().unwrap();
        assert_eq!((job.status.as_str(), job.inserted, job.chunks_done), ("failed", 5, 1));

        // The re-run: the written rows are unchanged now, the clash is an
        // update (the file says where they live), the rest are inserted.
        let (plan, summary) = import(&service, &actor, "crash.csv", bytes, &options).await;
        assert_eq!(plan.previous_job.map(|j| j.status), Some("failed".to_owned()));
        assert_eq!((summary.inserted, summary.updated, summary.unchanged), (6, 1, 5));
        assert_eq!(resident_count(&*store).await, 12);
        let moved = resident_by_id(&service, &numbers[7]).await.unwrap();
        assert_eq!((moved.id, moved.name.as_str()), (clash.id, "居民7"));
        let (_, again) = import(&service, &actor, "crash.csv", bytes, &options).await;
        assert_eq!((again.inserted, again.updated, again.unchanged), (0, 0, 12));
        assert!(matches!(
            store.verify_audit_chain().await.unwrap(),
            epigrid_store::ChainVerdict::Intact { .. }
        ));
    });
}

/// A grid worker imports into their own grid without a grid column, may not
/// reach another grid, and may not create buildings.
#[test]
fn grid_workers_stay_in_their_grid() {
    on_both(|store| async move {
        let chain = Chain::insert(&*store, "本网格").await;
        let other = chain.insert_sibling_grid(&*store, "别的").await;
        let service = service(store.clone());
        let worker = Actor {
            user_id: Some(uuid::Uuid::now_v7()),
            username: "wang".into(),
            role: Role::GridWorker,
            scope: Some(Scope { kind: AreaKind::Grid, area_id: chain.grid.id }),
            client_addr: None,
        };
        let csv = format!(
            "姓名,身份证号,楼栋,单元,门牌号\n甲,{},1号楼,1单元,501\n乙,{},8号楼,1,502\n",
            id("11010519700101001"),
            id("11010519700101010")
        );
        let (plan, summary) =
            import(&service, &worker, "w.csv", csv.as_bytes(), &options(ImportMode::ValidOnly))
                .await;
        assert_eq!(errors_of(&plan), vec![(3, "楼栋".into(), "import.unknown_building")]);
        assert_eq!(summary.inserted, 1);
        let stored = resident_by_id(&service, &id("11010519700101001")).await.unwrap();
        assert_eq!(stored.path.grid, Some(chain.grid.id));

        let elsewhere = format!(
            "姓名,身份证号,网格,楼栋,门牌号\n丙,{},{},1,601\n",
            id("11010519700101028"),
            other.grid.name
        );
        let (plan, _) = import(
            &service,
            &worker,
            "x.csv",
            elsewhere.as_bytes(),
            &options(ImportMode::ValidOnly),
        )
        .await;
        assert_eq!(errors_of(&plan), vec![(2, "网格".into(), "import.unknown_grid")]);
        let volunteer = Actor { role: Role::Volunteer, ..worker.clone() };
        let denied = service
            .import_residents(
                &volunteer,
                "w.csv",
                csv.as_bytes(),
                &options(ImportMode::ValidOnly),
                &ImportProgress::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(denied.code(), "auth.forbidden");
    });
}

/// An unrecognised header is reported as a missing column until the user
/// maps it.
#[test]
fn mapping_overrides_fix_unknown_headers() {
    on_both(|store| async move {
        let chain = Chain::insert(&*store, "映射").await;
        let service = service(store.clone());
        let actor = Actor::system();
        let csv = format!(
            "姓名,证件,网格,楼栋,门牌号,备注\n甲,{},{},1,701,\n",
            id("11010519700101036"),
            chain.grid.name
        );
        let table = read_table("m.csv", csv.as_bytes()).unwrap();
        let missing =
            service.import_mapping(&actor, &table, &ImportOptions::default()).unwrap_err();
        assert_eq!((missing.field(), missing.code()), (Some("id_number"), "import.missing_column"));
        let bad_override = ImportOptions {
            overrides: vec!["邮编=id_number".into()],
            ..ImportOptions::default()
        };
        let bad = service.import_mapping(&actor, &table, &bad_override).unwrap_err();
        assert_eq!(bad.code(), "import.map_unknown_column");
        let options = ImportOptions {
            overrides: vec!["证件=id_number".into()],
            ..options(ImportMode::AllOrNothing)
        };
        let (plan, summary) = import(&service, &actor, "m.csv", csv.as_bytes(), &options).await;
        assert_eq!(plan.mapping.header_of(Field::IdNumber), Some("证件"));
        assert_eq!(summary.inserted, 1);

        // The page's mapping step: every column's field by position.
        let (_, detected) = service.detected_mapping(&actor, &table).unwrap();
        assert_eq!(detected.fields[1], None, "证件 is not a header we know");
        let mut columns = detected.fields.clone();
        columns[1] = Some(Field::Name);
        let twice = ImportOptions { columns: Some(columns.clone()), ..ImportOptions::default() };
        let refused = service.import_mapping(&actor, &table, &twice).unwrap_err();
        assert_eq!((refused.field(), refused.code()), (Some("name"), "import.map_field_twice"));
        columns[1] = Some(Field::IdNumber);
        let chosen = ImportOptions { columns: Some(columns), ..ImportOptions::default() };
        let (_, mapping) = service.import_mapping(&actor, &table, &chosen).unwrap();
        assert_eq!(mapping.column_of(Field::IdNumber), Some(1));
    });
}

// ---- a real .xls file ---------------------------------------------------------------

/// LibreOffice's program name, when it is installed. The same lookup as the
/// export test's: `EPIGRID_REQUIRE_LIBREOFFICE=1` (CI) makes its absence a
/// failure instead of a skip.
fn soffice() -> Option<String> {
    let found = ["soffice", "libreoffice"].into_iter().find_map(|name| {
        std::process::Command::new(name)
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|_| name.to_owned())
    });
    if found.is_none() {
        assert_ne!(
            std::env::var("EPIGRID_REQUIRE_LIBREOFFICE").as_deref(),
            Ok("1"),
            "EPIGRID_REQUIRE_LIBREOFFICE=1 but soffice is not installed"
        );
        eprintln!(
            "skipped: LibreOffice (soffice) is not installed; apt-get install libreoffice-calc"
        );
    }
    found
}

/// `xlsx` saved as Excel 97–2003 (`.xls`, BIFF8) by LibreOffice, with a
/// private profile so that parallel runs do not fight over one.
fn to_xls(program: &str, xlsx: &[u8]) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("epigrid-xls-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("居民.xlsx");
    std::fs::write(&input, xlsx).unwrap();
    let output = std::process::Command::new(program)
        .arg(format!("-env:UserInstallation=file://{}", dir.join("profile").display()))
        .args(["--headless", "--convert-to", "xls:MS Excel 97", "--outdir"])
        .arg(&dir)
        .arg(&input)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let xls = std::fs::read(dir.join("居民.xls"))
        .unwrap_or_else(|e| panic!("no .xls ({e}): {}", String::from_utf8_lossy(&output.stdout)));
    let _ = std::fs::remove_dir_all(&dir);
    xls
}

/// An `.xls` as old Excel and WPS save it: a merged title row, IDs as text
/// (one with full-width digits), an 18-digit ID turned into a number, a
/// birth date as a date cell, a phone as a number, an empty row. Each row
/// has its exact outcome.
#[test]
fn an_xls_workbook_saved_by_libreoffice() {
    let Some(program) = soffice() else {
        return;
    };
    on_both(|store| {
        let program = program.clone();
        async move {
            let chain = Chain::insert(&*store, "旧版").await;
            let service = service(store.clone());
            let g = || C::T(chain.grid.name.clone());
            let (zhang, li, zhou) =
                (id("11010519491231002"), id("37010119800101001"), id("37010119800102002"));
            let rows = vec![
                header(),
                // 3: text ID, a date cell, a phone stored as a number.
                vec![
                    C::N(1.0),
                    C::S(" 张三 "),
                    C::T(zhang.clone()),
                    C::S("女"),
                    C::D(18263.0),
                    C::N(13_800_138_000.0),
                    g(),
                    C::N(2.0),
                    C::N(301.0),
                ],
                // 4: full-width digits, birth date as Chinese text.
                vec![
                    C::N(2.0),
                    C::S("李四"),
                    C::T(to_full_width(&li)),
                    C::S("男"),
                    C::S("1980年1月1日"),
                    C::Blank,
                    g(),
                    C::S("2号楼"),
                    C::S("302"),
                ],
                // 5: empty (skipped).
                vec![],
                // 6: an 18-digit ID that Excel turned into a number.
                vec![
                    C::N(3.0),
                    C::S("王五"),
                    C::N(371_602_199_001_010_000.0),
                    C::Blank,
                    C::Blank,
                    C::Blank,
                    g(),
                    C::S("2"),
                    C::S("303"),
                ],
                // 7: a wrong check character.
                vec![
                    C::N(4.0),
                    C::S("周九"),
                    C::S("110101202311012171"),
                    C::Blank,
                    C::Blank,
                    C::Blank,
                    g(),
                    C::S("2"),
                    C::S("304"),
                ],
                // 8: valid, in a new room of the same new building.
                vec![
                    C::N(5.0),
                    C::S("孙八"),
                    C::T(zhou.clone()),
                    C::S("女"),
                    C::Blank,
                    C::Blank,
                    g(),
                    C::S("2号楼"),
                    C::S("305"),
                ],
            ];
            let xls = to_xls(&program, &xlsx(&["旧版居民登记表"], &rows));
            assert!(xls.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]), "an OLE compound file");
            let table = read_table("居民.xls", &xls).unwrap();
            assert_eq!(table.format, "xls");

            let actor = Actor::system();
            let (plan, summary) =
                import(&service, &actor, "居民.xls", &xls, &options(ImportMode::ValidOnly)).await;
            assert_eq!(plan.header_row, 1, "below the merged title");
            assert_eq!(plan.data_rows, 5, "the empty row is not a data row");
            let id_column = "身份证号（必填）".to_owned();
            assert_eq!(
                errors_of(&plan),
                vec![(6, id_column.clone(), "import.id_scientific"), (7, id_column, "id.checksum")]
            );
            assert_eq!(
                (summary.inserted, summary.updated, summary.unchanged, summary.rejected),
                (3, 0, 0, 2)
            );
            assert_eq!(resident_count(&*store).await, 3);
            // One new building ("2号楼" and "2" are one) under the grid, and
            // its unit-less rooms in three households.
            assert_eq!((plan.new_areas, plan.new_households), (2, 3));

            let zhang_record = resident_by_id(&service, &zhang).await.expect("row 3 imported");
            assert_eq!(zhang_record.name.as_str(), "张三");
            assert_eq!(zhang_record.birth_date, epigrid_testkit::date(1949, 12, 31));
            assert_eq!(
                service.cipher().open(zhang_record.phone.as_ref().unwrap()).unwrap(),
                "13800138000"
            );
            let li_record = resident_by_id(&service, &li).await.expect("row 4 imported");
            assert_eq!(li_record.birth_date, epigrid_testkit::date(1980, 1, 1));
            assert!(li_record.phone.is_none());
            assert_eq!(li_record.path.building, zhang_record.path.building);
            assert_ne!(li_record.household_id, zhang_record.household_id);
            assert!(resident_by_id(&service, &zhou).await.is_some());
        }
    });
}
