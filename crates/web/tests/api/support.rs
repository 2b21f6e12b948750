//! Spawns the whole app on port 0 over a fresh store with a small, known
//! registry: one community with grids A and B, one household and resident
//! list in each, and accounts scoped at each level.

use std::sync::Arc;

use epigrid_domain::{AreaKind, Relation, Role};
use epigrid_service::accounts::NewUser;
use epigrid_service::registry::{NewArea, NewHousehold, NewResident};
use epigrid_service::{Actor, FieldCipher, SecretKey, Service, Settings};
use epigrid_store::Store;
use uuid::Uuid;

pub const PASSWORD: &str = "correct-horse-9";
pub const ADMIN: &str = "admin";
pub const WORKER_A: &str = "worker_a";
pub const WORKER_B: &str = "worker_b";
pub const MEDIC: &str = "medic";
pub const VOLUNTEER: &str = "volunteer";

#[derive(Debug, Clone, Copy, Default)]
pub struct Seed {
    pub sub_district: Uuid,
    pub community: Uuid,
    pub grid_a: Uuid,
    pub grid_b: Uuid,
    pub building_b: Uuid,
    pub unit_b: Uuid,
    pub household_a: Uuid,
    pub household_b: Uuid,
    /// 王秀英, grid A: ID 11010519491231002X, phone 13800138000, aged 80+.
    pub resident_a: Uuid,
    /// 李建国, grid B: ID 370101190102039973, phone 13912345678.
    pub resident_b: Uuid,
}

/// A logged-in session: its cookie jar, session token and CSRF token. A
/// client over the jar acts as the browser that logged in.
pub struct Session {
    pub jar: Arc<reqwest::cookie::Jar>,
    pub token: String,
    pub csrf: String,
}

impl Session {
    /// A client over this session's cookies that sends `csrf` (when given)
    /// as `X-CSRF-Token` on every request.
    pub fn client(&self, csrf: Option<&str>, follow_redirects: bool) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(csrf) = csrf {
            headers.insert("x-csrf-token", csrf.parse().unwrap());
        }
        let mut builder =
            reqwest::Client::builder().cookie_provider(self.jar.clone()).default_headers(headers);
        if !follow_redirects {
            builder = builder.redirect(reqwest::redirect::Policy::none());
        }
        builder.build().unwrap()
    }
}

pub struct App {
    pub base: String,
    pub service: Service,
    pub seed: Seed,
    _sqlite: Option<epigrid_testkit::TempGuard>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl App {
    pub async fn spawn() -> App {
        let (store, guard) = epigrid_testkit::fresh_sqlite().await;
        Self::spawn_on(store, Some(guard)).await
    }

    /// The seeded app with other service settings (short sessions…).
    pub async fn spawn_with(settings: Settings) -> App {
        let (store, guard) = epigrid_testkit::fresh_sqlite().await;
        Self::start(store, Some(guard), true, settings, None).await
    }

    /// The seeded app serving `/metrics` to callers with `token`.
    pub async fn spawn_with_metrics(token: &str) -> App {
        let (store, guard) = epigrid_testkit::fresh_sqlite().await;
        Self::start(store, Some(guard), true, Settings::default(), Some(token)).await
    }

    /// The app over an empty store (for the demo generator).
    pub async fn spawn_empty() -> App {
        let (store, guard) = epigrid_testkit::fresh_sqlite().await;
        Self::start(store, Some(guard), false, Settings::default(), None).await
    }

    pub async fn spawn_on(store: Arc<dyn Store>, guard: Option<epigrid_testkit::TempGuard>) -> App {
        Self::start(store, guard, true, Settings::default(), None).await
    }

    async fn start(
        store: Arc<dyn Store>,
        guard: Option<epigrid_testkit::TempGuard>,
        with_seed: bool,
        settings: Settings,
        metrics_token: Option<&str>,
    ) -> App {
        let key = SecretKey::from_hex(&SecretKey::generate_hex()).unwrap();
        let service = Service::new(store, FieldCipher::new(&key), settings);
        let seed = if with_seed { seed(&service).await } else { Seed::default() };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = epigrid_web::AppState {
            service: service.clone(),
            secure_cookies: false,
            metrics_token: metrics_token.and_then(epigrid_web::MetricsToken::new),
        };
        tokio::spawn(async move {
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
        App { base, service, seed, _sqlite: guard, _shutdown: tx }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn sqlite_dir(&self) -> Option<&std::path::Path> {
        self._sqlite.as_ref().map(|g| g.dir())
    }

    pub fn anonymous(&self) -> reqwest::Client {
        reqwest::Client::builder().cookie_store(true).build().unwrap()
    }

    /// A client holding a session of a seeded account, sending its CSRF
    /// token with every request as a script (or a page's form) would.
    pub async fn login(&self, username: &str) -> reqwest::Client {
        self.login_as(username, PASSWORD).await
    }

    pub async fn login_as(&self, username: &str, password: &str) -> reqwest::Client {
        let session = self.session(username, password).await;
        session.client(Some(&session.csrf), true)
    }

    /// As `login`, for a client that does not follow redirects, to see them.
    pub async fn login_no_redirect(&self, username: &str) -> reqwest::Client {
        let session = self.session(username, PASSWORD).await;
        session.client(Some(&session.csrf), false)
    }

    /// Logs in through the API and keeps what a browser would: the cookie,
    /// and the CSRF token from the answer.
    pub async fn session(&self, username: &str, password: &str) -> Session {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder().cookie_provider(jar.clone()).build().unwrap();
        let response = client
            .post(self.url("/api/v1/login"))
            .json(&serde_json::json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK, "login as {username}");
        let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
        let token = cookie
            .split(';')
            .next()
            .and_then(|pair| pair.strip_prefix("epigrid_session="))
            .expect("a session cookie")
            .to_owned();
        let body: serde_json::Value = response.json().await.unwrap();
        let csrf =
            body["csrf_token"].as_str().expect("a CSRF token in the login answer").to_owned();
        Session { jar, token, csrf }
    }
}

async fn area(
    service: &Service,
    kind: AreaKind,
    parent: Option<Uuid>,
    code: Option<&str>,
    name: &str,
) -> Uuid {
    let boundary = matches!(kind, AreaKind::Community | AreaKind::Grid).then(|| {
        serde_json::json!({
            "type": "Polygon",
            "coordinates": [[[117.97, 37.37], [117.99, 37.37], [117.99, 37.39], [117.97, 37.39], [117.97, 37.37]]]
        })
    });
    service
        .create_area(
            &Actor::system(),
            NewArea {
                kind,
                parent_id: parent,
                code: code.map(str::to_owned),
                name: name.to_owned(),
                grid_kind: None,
                boundary,
                address: None,
            },
        )
        .await
        .unwrap()
        .id
}

pub fn new_resident(household: Uuid, name: &str) -> NewResident {
    NewResident {
        household_id: household,
        name: name.to_owned(),
        sex: None,
        birth_date: None,
        id_number: None,
        phone: None,
        relation: Relation::Head,
        floating: false,
        arrived_on: None,
        origin: None,
        tags: Vec::new(),
    }
}

async fn seed(service: &Service) -> Seed {
    let system = Actor::system();
    let sub_district =
        area(service, AreaKind::SubDistrict, None, Some("371602001"), "市中街道").await;
    let community =
        area(service, AreaKind::Community, Some(sub_district), Some("371602001001"), "黄河社区")
            .await;
    let grid_a =
        area(service, AreaKind::Grid, Some(community), Some("37160200100101"), "第一网格").await;
    let grid_b =
        area(service, AreaKind::Grid, Some(community), Some("37160200100102"), "第二网格").await;
    let building_a = area(service, AreaKind::Building, Some(grid_a), None, "1号楼").await;
    let building_b = area(service, AreaKind::Building, Some(grid_b), None, "2号楼").await;
    let unit_a = area(service, AreaKind::Unit, Some(building_a), None, "1单元").await;
    let unit_b = area(service, AreaKind::Unit, Some(building_b), None, "1单元").await;
    let household = |unit: Uuid| {
        service.create_household(&system, NewHousehold { unit_id: unit, room: "101".into() })
    };
    let household_a = household(unit_a).await.unwrap().id;
    let household_b = household(unit_b).await.unwrap().id;

    let mut wang = new_resident(household_a, "王秀英");
    wang.id_number = Some("11010519491231002X".into());
    wang.phone = Some("13800138000".into());
    wang.tags = vec!["aged_80_plus".into(), "elderly_alone".into()];
    let resident_a = service.create_resident(&system, wang).await.unwrap().id;
    let mut zhang = new_resident(household_a, "张伟");
    zhang.relation = Relation::Grandchild;
    zhang.sex = Some(epigrid_domain::Sex::Male);
    zhang.birth_date = Some(chrono_date(2015, 6, 1));
    service.create_resident(&system, zhang).await.unwrap();
    let mut li = new_resident(household_b, "李建国");
    li.id_number = Some("370101190102039973".into());
    li.phone = Some("13912345678".into());
    let resident_b = service.create_resident(&system, li).await.unwrap().id;

    for (username, role, scope) in [
        (ADMIN, Role::SubDistrictAdmin, sub_district),
        (WORKER_A, Role::GridWorker, grid_a),
        (WORKER_B, Role::GridWorker, grid_b),
        (MEDIC, Role::MedicalStaff, community),
        (VOLUNTEER, Role::Volunteer, community),
    ] {
        service
            .create_user(
                &system,
                NewUser {
                    username: username.into(),
                    display_name: username.into(),
                    phone: None,
                    password: PASSWORD.into(),
                    role,
                    scope_area_id: scope,
                },
            )
            .await
            .unwrap();
    }
    Seed {
        sub_district,
        community,
        grid_a,
        grid_b,
        building_b,
        unit_b,
        household_a,
        household_b,
        resident_a,
        resident_b,
    }
}

fn chrono_date(y: i32, m: u32, d: u32) -> epigrid_service::chrono::NaiveDate {
    epigrid_service::chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// A URL-encoded form body, as a browser sends it.
/// GETs `url` and returns its JSON body: a test's read of the API.
pub async fn get_json(client: &reqwest::Client, url: String) -> serde_json::Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

pub fn form_body(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// Posts an HTML form (the client's CSRF header rides along).
pub async fn post_form(
    client: &reqwest::Client,
    app: &App,
    path: &str,
    pairs: &[(&str, &str)],
) -> reqwest::Response {
    client
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(pairs))
        .send()
        .await
        .unwrap()
}
