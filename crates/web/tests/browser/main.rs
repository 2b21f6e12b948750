//! Browser journeys: the real app over the demo sub-district, driven through
//! a real headless Chromium (Debian's chromium and chromium-driver) the way
//! staff use it, on a 360 px phone screen. Every page the browser lands on
//! is also checked for sideways scrolling and for requests to other hosts.
//!
//! Without chromedriver the journeys skip, unless `EPIGRID_REQUIRE_BROWSER=1`
//! (as in CI). With `EPIGRID_SCREENSHOTS=<dir>` they also save PNGs there.

mod offline;
mod selfservice;
mod support;

use std::collections::HashMap;
use std::time::Instant;

use epigrid_domain::Sex;
use epigrid_domain::identity::check_character;
use epigrid_service::chrono::{Datelike, NaiveDate};
use epigrid_service::registry::ResidentSearch;
use epigrid_service::{Actor, Service};
use support::{
    ADMIN_PASSWORD, App, Browser, DESKTOP, ONE_BROWSER, PHONE, chromedriver, with_browser,
};
use uuid::Uuid;

/// The demo's first grid worker.
const WORKER: &str = "g01";
/// Well formed, but the check character for these 17 digits is 6, not 1.
const BAD_CHECKSUM_ID: &str = "110101202311012171";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grid_worker_sees_only_their_grid_and_fixes_an_id_number() {
    let Some(driver) = chromedriver() else {
        return;
    };
    let _one = ONE_BROWSER.lock().await;
    let started = Instant::now();
    let app = App::spawn().await;
    let login = app.service.login(WORKER, &app.password(WORKER), None).await.unwrap();
    let grid = login.actor.scope.expect("a grid worker has a scope").area_id;
    let setup = started.elapsed();
    let (service, actor, password) = (app.service.clone(), login.actor, app.password(WORKER));
    let display_name = login.user.display_name;
    with_browser(&driver, &app.origin, PHONE, move |browser| async move {
        assert_eq!(browser.viewport_width().await, u64::from(PHONE.0), "a 360 px wide viewport");

        // 1. Log in, in Chinese because the phone asks for Chinese.
        let page = browser.goto("/login").await;
        assert_eq!(page.lang, "zh-CN", "the login page in Chinese");
        let page = browser.log_in(WORKER, &password).await;
        assert!(page.href.ends_with('/'), "to the dashboard after login, not {}", page.href);
        check_header(&browser, "zh-CN").await;

        // 2a. The map shows the worker's own grid and nothing else.
        let areas = browser.find_all("svg.map-svg a.map-area").await;
        assert_eq!(areas.len(), 1, "exactly one area on a grid worker's map");
        assert_eq!(browser.attr(&areas[0], "data-area-id").await, grid.to_string());

        // 2b. Searching a common surname finds only residents of that grid.
        let (surname, outsider) = common_surname(&service, &actor, grid).await;
        browser.click_css("header a[href='/residents']").await;
        browser.fill("#search-name", &surname).await;
        browser.click_css("#search").await;
        browser.screenshot("search-results-360").await;
        let links = browser.find_all("#results tr.resident-row a.resident-link").await;
        assert!(!links.is_empty(), "residents named {surname}… in the worker's grid");
        for link in &links {
            let id = id_after(&browser.attr(link, "href").await, "/residents/");
            let resident = service.get_resident(&Actor::system(), id).await.unwrap();
            assert_eq!(
                resident.grid_id,
                Some(grid),
                "{} ({id}) is not in {WORKER}'s grid",
                resident.name
            );
        }
        let shown = links.len();
        let grid_name = service.get_area(&Actor::system(), grid).await.unwrap().name;
        browser.click_through(&links[0]).await;
        let crumbs = browser.text("nav.breadcrumbs").await;
        assert!(crumbs.contains(&grid_name), "breadcrumbs {crumbs:?} name the grid {grid_name}");
        // Nor does a link from elsewhere open someone else's household.
        let page = browser.goto(&format!("/households/{outsider}")).await;
        assert_eq!(page.status, 404, "another grid's household is not found");
        assert_eq!(page.lang, "zh-CN", "the not-found page in Chinese");

        // 3. Map → grid → building → household, by clicking.
        browser.click_css("header a.brand").await;
        let page = browser.click_css("svg.map-svg a.map-area").await;
        assert!(
            page.href.ends_with(&format!("/areas/{grid}")),
            "the grid's page, not {}",
            page.href
        );
        let staff = browser.text("#staff").await;
        assert!(staff.contains(&display_name), "{display_name} listed under #staff: {staff:?}");
        browser.click_css("#children a.area-link").await;
        browser.screenshot("building-360").await;
        let page = browser.click_css("a.household-link").await;
        assert!(page.href.contains("/households/"), "a household page, not {}", page.href);
        browser.screenshot("household-360").await;
        let section = browser.text("header nav a[aria-current='page']").await;
        assert_eq!(section, "总览", "a household is part of the drill-down from the map");
        let member = browser.find("#members a.resident-link").await;
        let resident_id = id_after(&browser.attr(&member, "href").await, "/residents/");
        browser.click_through(&member).await;
        let page = browser.click_css(&format!("a[href='/residents/{resident_id}/edit']")).await;
        assert!(page.href.ends_with("/edit"), "the edit page, not {}", page.href);
        let section = browser.text("header nav a[aria-current='page']").await;
        assert_eq!(section, "居民", "editing a resident is in the residents section");

        // … and enter an ID number with a wrong check character.
        let before = service.get_resident(&Actor::system(), resident_id).await.unwrap();
        browser.fill("#id_number", BAD_CHECKSUM_ID).await;
        browser.click_css("#save").await;
        let error = browser.find("#id_number-error").await;
        let message = error.text().await.unwrap();
        assert!(
            message.contains("身份证号码校验位不正确"),
            "the Chinese checksum message: {message:?}"
        );
        let field = browser.find("#id_number").await;
        let (_, field_y, _, field_h) = field.rectangle().await.unwrap();
        let (_, error_y, _, error_h) = error.rectangle().await.unwrap();
        let gap = (error_y - (field_y + field_h)).max(field_y - (error_y + error_h));
        assert!(gap < 40.0, "the error sits next to the field, not {gap}px away");
        browser.screenshot("resident-edit-error-360").await;
        let after = service.get_resident(&Actor::system(), resident_id).await.unwrap();
        assert_eq!(after.id_number, before.id_number, "nothing saved from an invalid form");

        // 4. Fix it with a valid, unused number that fits the resident's
        // birth date and sex, and save.
        let fixed = unused_id_number(&service, before.birth_date, before.sex).await;
        browser.fill("#id_number", &fixed).await;
        let page = browser.click_css("#save").await;
        assert!(
            path_of(&page.href).ends_with(&format!("/residents/{resident_id}")),
            "back on the resident's page after saving, not {}",
            page.href
        );
        let notice = browser.text("p.notice").await;
        assert!(!notice.trim().is_empty(), "a notice says it was saved");
        browser.screenshot("resident-saved-360").await;
        let found = service
            .search_residents(
                &Actor::system(),
                ResidentSearch { id_number: Some(fixed.clone()), ..Default::default() },
            )
            .await
            .unwrap();
        assert_eq!(
            found.items.iter().map(|r| r.id).collect::<Vec<_>>(),
            [resident_id],
            "{fixed} saved"
        );

        // 5. Switch to English and stay on the same page.
        let page = browser.click_css("a[lang='en']").await;
        assert_eq!(page.lang, "en");
        assert!(
            path_of(&page.href).ends_with(&format!("/residents/{resident_id}")),
            "same page, not {}",
            page.href
        );
        let nav = browser.text("header nav").await;
        assert!(nav.contains("Residents"), "English navigation: {nav:?}");
        browser.screenshot("resident-en-360").await;
        check_header(&browser, "en").await;

        eprintln!("grid worker journey: {shown} search results for {surname}, all in the grid");
        browser.finish();
    })
    .await;
    eprintln!("grid worker journey: setup {setup:.1?}, total {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_drills_down_from_the_map_to_a_building() {
    let Some(driver) = chromedriver() else {
        return;
    };
    let _one = ONE_BROWSER.lock().await;
    let started = Instant::now();
    let app = App::spawn().await;
    let setup = started.elapsed();
    let service = app.service.clone();
    with_browser(&driver, &app.origin, PHONE, move |browser| async move {
        browser.goto("/login").await;
        browser.log_in("admin", ADMIN_PASSWORD).await;
        let communities = browser.find_all("svg.map-svg a.map-area").await;
        assert_eq!(communities.len(), 8, "the demo's eight communities on the admin's map");
        browser.screenshot("dashboard-admin-360").await;
        check_map_text(&browser, "360 px").await;
        check_header(&browser, "zh-CN").await;

        // The same dashboard on a desktop screen, checked and pictured.
        browser.set_viewport(DESKTOP.0, DESKTOP.1).await;
        browser.landed().await;
        browser.screenshot("dashboard-admin-desktop").await;
        check_map_text(&browser, "desktop").await;
        browser.set_viewport(PHONE.0, PHONE.1).await;

        // A community on the map opens its own map of grids.
        let community = browser.find("svg.map-svg a.map-area").await;
        let community_id = browser.attr(&community, "data-area-id").await;
        let page = browser.click_through(&community).await;
        assert!(
            page.href.ends_with(&format!("/?area={community_id}")),
            "community map, not {}",
            page.href
        );
        let grids = browser.find_all("svg.map-svg a.map-area").await;
        assert!(!grids.is_empty(), "the community's grids on its map");
        for grid in &grids {
            let id: Uuid = browser.attr(grid, "data-area-id").await.parse().unwrap();
            let area = service.get_area(&Actor::system(), id).await.unwrap();
            assert_eq!(
                area.parent_id.map(|p| p.to_string()),
                Some(community_id.clone()),
                "{} is in the community",
                area.name
            );
        }
        browser.screenshot("dashboard-community-360").await;

        // A grid on that map opens the grid's page, and a building from there.
        let page = browser.click_through(&grids[0]).await;
        assert!(page.href.contains("/areas/"), "a grid page, not {}", page.href);
        browser.find("#staff").await;
        browser.screenshot("grid-360").await;
        let page = browser.click_css("#children a.area-link").await;
        assert!(page.href.contains("/areas/"), "a building page, not {}", page.href);
        let rooms = browser.find_all("a.household-link").await;
        assert!(!rooms.is_empty(), "the building lists its households");
        let page = browser.click_css("#children a.area-link").await;
        assert!(page.href.contains("/areas/"), "a unit page, not {}", page.href);

        // The rest of what an admin reaches from the header, for the checks.
        browser.click_css("header a[href='/accounts']").await;
        browser.screenshot("accounts-360").await;
        let accounts = browser.find_all("#accounts a.account-link").await;
        let mut usernames = Vec::new();
        for account in &accounts {
            usernames.push(account.text().await.unwrap());
        }
        assert!(usernames.is_sorted(), "accounts by username: {usernames:?}");
        assert!(accounts.len() <= 50, "50 a page, not {}", accounts.len());
        let (_, y0, _, h0) = accounts[0].rectangle().await.unwrap();
        let (_, y1, _, _) = accounts[1].rectangle().await.unwrap();
        assert!(y1 - y0 < 3.5 * h0, "one line an account on a phone: {} px apart", y1 - y0);
        browser.click_css("#accounts a.account-link").await;
        browser.click_css("header a[href='/accounts']").await;
        browser.click_css("#new-account").await;
        browser.click_css("header a[href='/audit']").await;
        browser.find("#audit-entries").await;
        browser.screenshot("audit-360").await;
        browser.click_css("#audit-entries a.audit-actor").await;
        browser.click_css("header a[href='/residents']").await;
        let missing = browser.goto(&format!("/residents/{}", Uuid::now_v7())).await;
        assert_eq!(
            (missing.status, missing.lang.as_str()),
            (404, "zh-CN"),
            "not found, in Chinese"
        );

        // Every page again on a desktop screen.
        browser.set_viewport(DESKTOP.0, DESKTOP.1).await;
        for url in browser.visited() {
            browser.client.goto(&url).await.unwrap();
            browser.landed().await;
        }
        eprintln!("admin journey: {} pages at 360 px and at 1280 px", browser.visited().len());
        browser.finish();
    })
    .await;
    eprintln!("admin journey: setup {setup:.1?}, total {:.1?}", started.elapsed());
}

/// The map's labels read at 11–16 px on screen, whatever the map's width
/// (SVG text scales with the drawing), and its legend is page text no
/// larger than the page's own.
async fn check_map_text(browser: &Browser, screen: &str) {
    const JS: &str = r#"
const svg = document.querySelector('svg.map-svg');
const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
const shown = [...svg.querySelectorAll('.map-labels text')]
  .filter(t => t.getBoundingClientRect().width > 0)
  .map(t => parseFloat(t.getAttribute('font-size')) * scale);
const px = (css) => parseFloat(getComputedStyle(document.querySelector(css)).fontSize);
return { labels: shown, legend: px('.legend-title'), h1: px('h1'), body: px('body') };
"#;
    let facts = browser.client.execute(JS, vec![]).await.unwrap();
    let labels: Vec<f64> =
        facts["labels"].as_array().unwrap().iter().filter_map(|v| v.as_f64()).collect();
    assert!(!labels.is_empty(), "{screen}: the map's names are shown");
    for px in &labels {
        assert!((11.0..=16.5).contains(px), "{screen}: a map label at {px:.1} px");
    }
    let (legend, h1, body) = (
        facts["legend"].as_f64().unwrap(),
        facts["h1"].as_f64().unwrap(),
        facts["body"].as_f64().unwrap(),
    );
    assert!(legend <= body && legend < h1, "{screen}: legend at {legend} px, heading {h1} px");
}

/// The header on a phone: username, logout and the language switch on one
/// row on a shared baseline, the sections on the row below.
async fn check_header(browser: &Browser, lang: &str) {
    const JS: &str = r#"
const box = (css) => { const r = document.querySelector(css).getBoundingClientRect(); return [r.top, r.bottom]; };
return { who: box('.who > span'), logout: box('.who button'), lang: box('.lang a'),
         brand: box('.brand'), nav: box('header nav') };
"#;
    let facts = browser.client.execute(JS, vec![]).await.unwrap();
    let edge = |name: &str, i: usize| facts[name][i].as_f64().unwrap();
    assert!(
        (edge("who", 1) - edge("logout", 1)).abs() <= 1.0,
        "{lang}: logout {:?} level with the username {:?}",
        facts["logout"],
        facts["who"]
    );
    for item in ["who", "lang", "brand"] {
        assert!(
            edge(item, 1) <= edge("nav", 0) + 1.0,
            "{lang}: {item} {:?} on the row above the sections {:?}",
            facts[item],
            facts["nav"]
        );
    }
    assert!((edge("lang", 1) - edge("who", 1)).abs() <= 1.0, "{lang}: one row: {facts}");
}

/// A URL without its query and fragment.
fn path_of(href: &str) -> &str {
    href.split(['?', '#']).next().unwrap_or_default()
}

/// The uuid after `prefix` in a link.
fn id_after(href: &str, prefix: &str) -> Uuid {
    let rest = href.split(prefix).nth(1).unwrap_or_else(|| panic!("{href} has no {prefix}"));
    let id = rest.split(['/', '?', '#']).next().unwrap_or_default();
    id.parse().unwrap_or_else(|e| panic!("{href}: {e}"))
}

/// The surname most common in `grid` that people elsewhere share too, so a
/// search for it would show outsiders if scoping failed; with the household
/// of one such outsider.
async fn common_surname(service: &Service, worker: &Actor, grid: Uuid) -> (String, Uuid) {
    let mine = service
        .search_residents(worker, ResidentSearch { limit: Some(200), ..Default::default() })
        .await
        .unwrap();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for resident in &mine.items {
        assert_eq!(resident.grid_id, Some(grid));
        let surname: String = resident.name.chars().take(1).collect();
        *counts.entry(surname).or_default() += 1;
    }
    let mut ranked: Vec<(String, usize)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (surname, _) in ranked {
        let everyone = service
            .search_residents(
                &Actor::system(),
                ResidentSearch {
                    name: Some(surname.clone()),
                    limit: Some(200),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        if let Some(outsider) = everyone.items.iter().find(|r| r.grid_id != Some(grid)) {
            return (surname, outsider.household_id);
        }
    }
    panic!("no surname of grid {grid} is shared with another grid")
}

/// A valid 18-digit ID number for someone born on `birth` of `sex` that no
/// resident has yet (address code 371602, Dongchangfu district).
async fn unused_id_number(service: &Service, birth: NaiveDate, sex: Sex) -> String {
    // The sequence number's last digit is odd for men and even for women.
    let parity = match sex {
        Sex::Male => 1,
        Sex::Female => 0,
    };
    for sequence in (0..1000u32).rev().filter(|s| s % 2 == parity) {
        let first17 =
            format!("371602{:04}{:02}{:02}{sequence:03}", birth.year(), birth.month(), birth.day());
        let bytes: [u8; 17] = first17.as_bytes().try_into().unwrap();
        let id = format!("{first17}{}", check_character(&bytes));
        let taken = service
            .search_residents(
                &Actor::system(),
                ResidentSearch { id_number: Some(id.clone()), ..Default::default() },
            )
            .await
            .unwrap();
        if taken.items.is_empty() {
            return id;
        }
    }
    panic!("every ID number for {birth} is taken")
}
