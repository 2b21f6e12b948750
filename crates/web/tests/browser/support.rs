//! The machinery under the journeys: the real app over a generated demo
//! sub-district, a chromedriver of our own on a free port, and a `Browser`
//! that clicks like a person and checks every page it lands on (no sideways
//! scrolling, nothing fetched from another host).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use epigrid_service::demo::{DemoAccount, DemoOptions};
use epigrid_service::{FieldCipher, SecretKey, Service, Settings};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use uuid::Uuid;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const PHONE: (u32, u32) = (360, 740);
pub const DESKTOP: (u32, u32) = (1280, 900);
/// The demo's `admin` password, fixed so the journey can type it.
pub const ADMIN_PASSWORD: &str = "demo-office-1";

/// One Chromium at a time: the machine has two cores and each browser takes
/// most of one, so parallel journeys only make each other time out.
pub static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---- finding chromedriver -------------------------------------------------

/// chromedriver from `PATH`, else Debian's place for it. `None` means skip,
/// unless `EPIGRID_REQUIRE_BROWSER=1`, which turns a missing browser into a
/// failure so CI cannot go green without having run the journeys.
pub fn chromedriver() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path).map(|dir| dir.join("chromedriver")).find(|p| p.is_file())
    });
    let found = on_path.or_else(|| {
        let debian = PathBuf::from("/usr/bin/chromedriver");
        debian.is_file().then_some(debian)
    });
    if found.is_none() {
        if std::env::var("EPIGRID_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!(
                "chromedriver not found on PATH or at /usr/bin/chromedriver, and \
                 EPIGRID_REQUIRE_BROWSER=1: install Debian's chromium and chromium-driver"
            );
        }
        eprintln!(
            "skipped: chromedriver not found (install chromium-driver, or set \
             EPIGRID_REQUIRE_BROWSER=1 to make this fail)"
        );
    }
    found
}

// ---- the app ----------------------------------------------------------------

/// The real server on port 0 over a fresh SQLite store holding the demo.
/// Serves the app on `listener` as `epigrid serve` does, until the sender
/// is used or dropped; the task ends once every connection has closed.
pub fn serve(
    listener: tokio::net::TcpListener,
    service: Service,
) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let state = epigrid_web::AppState { service, secure_cookies: false, metrics_token: None };
    let task = tokio::spawn(async move {
        epigrid_web::serve(
            listener,
            state,
            epigrid_web::connection_cap::DEFAULT_MAX_CONNECTIONS,
            async {
                let _ = rx.await;
            },
        )
        .await
        .unwrap();
    });
    (tx, task)
}

pub struct App {
    pub origin: String,
    pub service: Service,
    pub accounts: Vec<DemoAccount>,
    _sqlite: epigrid_testkit::TempGuard,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl App {
    pub async fn spawn() -> App {
        let (store, guard) = epigrid_testkit::fresh_sqlite().await;
        let key = SecretKey::from_hex(&SecretKey::generate_hex()).unwrap();
        let service = Service::new(store, FieldCipher::new(&key), Settings::default());
        let options = DemoOptions {
            residents: 2_000,
            admin_password: Some(ADMIN_PASSWORD.into()),
            ..DemoOptions::default()
        };
        let summary = service.generate_demo(&options, &|_| {}).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let (tx, _) = serve(listener, service.clone());
        App { origin, service, accounts: summary.accounts, _sqlite: guard, _shutdown: tx }
    }

    pub fn password(&self, username: &str) -> String {
        let account = self.accounts.iter().find(|a| a.username == username);
        account.unwrap_or_else(|| panic!("no demo account {username}")).password.clone()
    }
}

// ---- chromedriver -----------------------------------------------------------

/// A chromedriver process in a process group of its own, so that dropping it
/// also ends any Chromium it started, even when a journey panicked before
/// the session was closed.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start(binary: &Path) -> Driver {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on port {port}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Negative pid: the whole group, Chromium and its helpers included.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    // chromedriver wants a number, not a listener; the port is free when
    // asked and very likely still free a moment later.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A fresh profile directory, removed with the guard.
struct Profile(PathBuf);

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---- the browser ------------------------------------------------------------

/// Runs `journey` in a fresh headless Chromium whose window is `size`.
/// The session is closed and the driver killed whether the journey passed or
/// panicked; a panic is passed on afterwards.
pub async fn with_browser<F, Fut>(driver_binary: &Path, origin: &str, size: (u32, u32), journey: F)
where
    F: FnOnce(Browser) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let driver = Driver::start(driver_binary).await;
    let profile =
        Profile(std::env::temp_dir().join(format!("epigrid-chromium-{}", Uuid::now_v7().simple())));
    std::fs::create_dir_all(&profile.0).unwrap();
    let client = connect(&driver.url, &profile.0, size).await;
    let session = client.session_id().await.unwrap().expect("a WebDriver session id");
    let browser = Browser {
        client: client.clone(),
        origin: origin.to_owned(),
        cdp: format!("{}/session/{session}/goog/cdp/execute", driver.url),
        problems: Arc::new(Mutex::new(Vec::new())),
        visited: Arc::new(Mutex::new(Vec::new())),
    };
    browser.set_viewport(size.0, size.1).await;
    // Before any page script runs, note whatever the Content-Security-Policy
    // blocks (an inline script or style would be): each page reports it.
    browser
        .devtools("Page.addScriptToEvaluateOnNewDocument", json!({ "source": CSP_WATCH_JS }))
        .await;
    let outcome = tokio::spawn(journey(browser)).await;
    let _ = client.close().await;
    drop(driver);
    drop(profile);
    if let Err(error) = outcome {
        match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(error) => panic!("journey did not finish: {error}"),
        }
    }
}

async fn connect(driver_url: &str, profile: &Path, (width, height): (u32, u32)) -> Client {
    let args = vec![
        "--headless=new".to_owned(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        format!("--user-data-dir={}", profile.display()),
        format!("--window-size={width},{height}"),
        // A Chinese staff phone: the pages must come up in Chinese on their
        // own, not because a test asked for it.
        "--lang=zh-CN".into(),
        "--accept-lang=zh-CN,zh".into(),
        // Phones overlay their scrollbars; a classic one would take width
        // from the page and skew the overflow check.
        "--hide-scrollbars".into(),
    ];
    let mut options = json!({
        "args": args,
        "prefs": { "intl.accept_languages": "zh-CN,zh" },
    });
    if Path::new(CHROMIUM).is_file() {
        options["binary"] = json!(CHROMIUM);
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert("goog:chromeOptions".into(), options);
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(driver_url)
        .await
        .unwrap_or_else(|e| panic!("cannot start a Chromium session through chromedriver: {e}"))
}

/// A page's facts as the browser sees them, read after every navigation.
#[derive(Debug)]
pub struct PageFacts {
    pub href: String,
    /// The HTTP status of the document (0 if the browser does not say).
    pub status: u64,
    pub lang: String,
}

/// The WebDriver client plus the checks every page must pass. Problems that
/// do not stop the journey (overflow, foreign requests, server errors) are
/// collected and reported together by `finish`.
#[derive(Clone)]
pub struct Browser {
    pub client: Client,
    pub origin: String,
    /// chromedriver's pass-through to the DevTools protocol, for this session.
    cdp: String,
    problems: Arc<Mutex<Vec<String>>>,
    /// Pages landed on that a plain GET shows again, in order, once each.
    visited: Arc<Mutex<Vec<String>>>,
}

/// Collects the page's Content-Security-Policy violations.
const CSP_WATCH_JS: &str = r#"
window.__epigridCsp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__epigridCsp.push(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') +
    (e.sourceFile ? ' at ' + e.sourceFile + ':' + e.lineNumber : ''));
});
"#;

/// Checks run in the page: where it is, what it loaded, how wide it is and,
/// when too wide, which elements stick out.
const PAGE_FACTS_JS: &str = r#"
const nav = performance.getEntriesByType('navigation')[0];
const width = window.innerWidth;
const wide = [];
if (document.documentElement.scrollWidth > width) {
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.right > width + 0.5 && r.width > 0) {
      let name = el.tagName.toLowerCase();
      if (el.id) name += '#' + el.id;
      if (typeof el.className === 'string' && el.className.trim())
        name += '.' + el.className.trim().split(/\s+/).join('.');
      wide.push(name + ' (right edge ' + Math.round(r.right) + 'px)');
      if (wide.length >= 6) break;
    }
  }
}
return {
  href: location.href,
  status: nav && nav.responseStatus ? nav.responseStatus : 0,
  redirected: !!(nav && nav.redirectCount > 0),
  lang: document.documentElement.lang,
  resources: performance.getEntriesByType('resource').map(e => e.name),
  csp: window.__epigridCsp || null,
  scrollWidth: document.documentElement.scrollWidth,
  innerWidth: width,
  wide: wide,
};
"#;

impl Browser {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    pub fn problem(&self, text: String) {
        eprintln!("problem: {text}");
        self.problems.lock().unwrap().push(text);
    }

    pub fn visited(&self) -> Vec<String> {
        self.visited.lock().unwrap().clone()
    }

    /// Fails with every collected problem, one a line.
    pub fn finish(&self) {
        let problems = self.problems.lock().unwrap();
        assert!(problems.is_empty(), "{} problem(s):\n  {}", problems.len(), problems.join("\n  "));
    }

    /// Opens `path` as if typed into the address bar.
    pub async fn goto(&self, path: &str) -> PageFacts {
        self.client.goto(&self.url(path)).await.unwrap();
        self.landed().await
    }

    /// Checks the page now shown: same origin for it and all it loaded, no
    /// sideways scroll, no server error.
    pub async fn landed(&self) -> PageFacts {
        self.landed_by(true).await
    }

    /// As `landed`; `by_get` says whether the request was a plain GET (a
    /// link or the address bar), so that the page can be shown again later.
    async fn landed_by(&self, by_get: bool) -> PageFacts {
        let facts = self.client.execute(PAGE_FACTS_JS, vec![]).await.unwrap();
        let href = facts["href"].as_str().unwrap_or_default().to_owned();
        let status = facts["status"].as_u64().unwrap_or(0);
        let prefix = format!("{}/", self.origin);
        if !href.starts_with(&prefix) {
            self.problem(format!("left the server: now at {href}"));
        }
        for resource in facts["resources"].as_array().into_iter().flatten() {
            let name = resource.as_str().unwrap_or_default();
            if !name.starts_with(&prefix) {
                self.problem(format!("{href}: requested {name}, not on {}", self.origin));
            }
        }
        let (scroll, inner) = (facts["scrollWidth"].as_u64(), facts["innerWidth"].as_u64());
        if let (Some(scroll), Some(inner)) = (scroll, inner)
            && scroll > inner
        {
            let wide: Vec<&str> =
                facts["wide"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            self.problem(format!(
                "{href}: scrollWidth {scroll}px > window {inner}px; wide: {}",
                wide.join(", ")
            ));
        }
        if status >= 500 {
            self.problem(format!("{href}: HTTP {status}"));
        }
        match facts["csp"].as_array() {
            Some(violations) => {
                for violation in violations {
                    self.problem(format!(
                        "{href}: CSP violation: {}",
                        violation.as_str().unwrap_or("?")
                    ));
                }
            }
            None => self.problem(format!("{href}: the CSP watch did not run")),
        }
        let mut visited = self.visited.lock().unwrap();
        if status == 200 && (by_get || facts["redirected"] == true) && !visited.contains(&href) {
            visited.push(href.clone());
        }
        drop(visited);
        let lang = facts["lang"].as_str().unwrap_or_default().to_owned();
        PageFacts { href, status, lang }
    }

    /// The one element `css` names, or a failure that says which page lacked it.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element,
            Err(error) => {
                let url =
                    self.client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
                let title = self.client.title().await.unwrap_or_default();
                panic!("no `{css}` on {url} (title {title:?}): {error}")
            }
        }
    }

    pub async fn find_all(&self, css: &str) -> Vec<fantoccini::elements::Element> {
        self.client.find_all(Locator::Css(css)).await.unwrap()
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    pub async fn attr(&self, element: &fantoccini::elements::Element, name: &str) -> String {
        element.attr(name).await.unwrap().unwrap_or_default()
    }

    /// Clicks `element` and waits for the next document to load, however
    /// it came (link, form post, redirect), then checks it.
    pub async fn click_through(&self, element: &fantoccini::elements::Element) -> PageFacts {
        self.client.execute("window.__epigridOldPage = true;", vec![]).await.unwrap();
        let by_get = element.tag_name().await.unwrap().eq_ignore_ascii_case("a");
        element.click().await.unwrap();
        self.await_new_page().await;
        self.landed_by(by_get).await
    }

    pub async fn click_css(&self, css: &str) -> PageFacts {
        let element = self.find(css).await;
        self.click_through(&element).await
    }

    async fn await_new_page(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let state = self
                .client
                .execute(
                    "return window.__epigridOldPage === true ? 'old' : document.readyState;",
                    vec![],
                )
                .await;
            // A script may fail while the old document is being torn down.
            if let Ok(Value::String(state)) = state
                && state == "complete"
            {
                return;
            }
            let url = self.client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
            assert!(Instant::now() < deadline, "no new page loaded after a click (still {url})");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types into a field, replacing what was there.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Logs in through the form. The browser must be on the login page.
    pub async fn log_in(&self, username: &str, password: &str) -> PageFacts {
        self.fill("#username", username).await;
        self.fill("#password", password).await;
        self.click_css("button[type=submit]").await
    }

    /// Makes the page's viewport exactly `width` × `height` CSS pixels.
    /// Headless Chromium will not make a window narrower than 500 px, so the
    /// size is emulated through DevTools (as its device toolbar does) rather
    /// than set on the window.
    pub async fn set_viewport(&self, width: u32, height: u32) {
        let params =
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false });
        self.devtools("Emulation.setDeviceMetricsOverride", params).await;
        let inner = self.client.execute("return [innerWidth, innerHeight];", vec![]).await.unwrap();
        let measured = (inner[0].as_u64().unwrap_or(0), inner[1].as_u64().unwrap_or(0));
        assert_eq!(measured, (u64::from(width), u64::from(height)), "viewport after emulation");
    }

    async fn devtools(&self, command: &str, params: Value) {
        let response = reqwest::Client::new()
            .post(&self.cdp)
            .json(&json!({ "cmd": command, "params": params }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{command} through chromedriver: {e}"));
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{command} through chromedriver: {status} {body}");
    }

    pub async fn viewport_width(&self) -> u64 {
        self.client.execute("return innerWidth;", vec![]).await.unwrap().as_u64().unwrap_or(0)
    }

    /// Saves a PNG of the whole page as `name.png` in `$EPIGRID_SCREENSHOTS`
    /// when that is set (a relative path counts from the workspace root).
    /// The viewport is stretched to the page's height for the shot and put
    /// back afterwards.
    pub async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("EPIGRID_SCREENSHOTS") else {
            return;
        };
        // Relative to the workspace root, where the documented command runs,
        // not to this crate, where cargo runs the test.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        let dir = dir.canonicalize().unwrap();
        let size = self.client.execute("return [innerWidth, innerHeight];", vec![]).await.unwrap();
        let (width, height) =
            (size[0].as_u64().unwrap_or(0) as u32, size[1].as_u64().unwrap_or(0) as u32);
        let full = self
            .client
            .execute(
                "return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight);",
                vec![],
            )
            .await
            .unwrap()
            .as_u64()
            .unwrap_or(height as u64) as u32;
        self.set_viewport(width, full.max(height)).await;
        let png = self.client.screenshot().await.unwrap();
        self.set_viewport(width, height).await;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
    }
}
