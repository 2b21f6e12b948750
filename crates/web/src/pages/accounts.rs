//! Accounts, for roles that manage them: the list, a new account, and one
//! account's profile, role and scope, password and status.

use askama::Template;
use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use epigrid_domain::{Action, Role};
use epigrid_service::ServiceError;
use epigrid_service::accounts::{NewUser, UserChanges};
use epigrid_service::views::UserView;
use serde::Deserialize;
use uuid::Uuid;

use super::areas::parse_id;
use super::residents::{
    Choice, FormErrors, area_choice_label, form_body, form_status, with_status,
};
use super::{Chrome, PageActor, Tr, error_page, or_error_page, render};
use crate::AppState;
use crate::i18n::Lang;

const PAGE_SIZE: u32 = 50;
const FIELDS: &[&str] = &["username", "display_name", "phone", "role", "scope_area_id", "password"];

fn role_key(role: Role) -> String {
    format!("role.{}", role.as_str())
}

/// Refuses roles that may not manage accounts before any work is done.
// The error is the page to answer with, as in every page handler.
fn require_manager(page: &PageActor) -> Result<(), Response> {
    if page.actor.role.allows(Action::ManageAccounts) {
        Ok(())
    } else {
        Err(error_page(page.lang, ServiceError::Forbidden))
    }
}

// ---- list ------------------------------------------------------------------

#[derive(Debug, Clone)]
struct AccountRow {
    href: String,
    username: String,
    display_name: String,
    role: String,
    scope: String,
    phone: Option<String>,
    disabled: bool,
}

#[derive(Template)]
#[template(path = "accounts.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<AccountRow>,
    /// "By username, 50 a page."
    order_note: String,
    next_href: Option<String>,
    first_href: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    cursor: Option<String>,
}

async fn scope_labels(
    state: &AppState,
    page: &PageActor,
    users: &[UserView],
    tr: &Tr,
) -> Result<Vec<String>, Response> {
    let ids: Vec<Uuid> = users.iter().map(|u| u.scope_area_id).collect();
    let names = or_error_page(page.lang, state.service.area_names(&page.actor, &ids).await)?;
    Ok(users
        .iter()
        .map(|u| {
            let name = names.get(&u.scope_area_id).map(|a| a.name.clone()).unwrap_or_default();
            area_choice_label(tr, u.scope_kind, &name, None)
        })
        .collect())
}

pub async fn list(
    State(state): State<AppState>,
    page: PageActor,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Response> {
    require_manager(&page)?;
    let lang = page.lang;
    // The cursor is the last username of the page before; usernames are
    // short, so anything long is not one.
    let after = query.ok().and_then(|Query(q)| q.cursor).filter(|c| !c.is_empty());
    if after.as_ref().is_some_and(|c| c.len() > 64) {
        return Err(error_page(lang, ServiceError::invalid("cursor", "cursor.invalid")));
    }
    let first_href = after.as_ref().map(|_| "/accounts".to_owned());
    let users = or_error_page(lang, state.service.list_users(&page.actor, after, PAGE_SIZE).await)?;
    let chrome = page.chrome("accounts");
    let tr = chrome.tr;
    let scopes = scope_labels(&state, &page, &users.items, &tr).await?;
    let rows = users
        .items
        .iter()
        .zip(scopes)
        .map(|(u, scope)| AccountRow {
            href: format!("/accounts/{}", u.id),
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            role: tr.t(&role_key(u.role)),
            scope,
            phone: u.phone.clone(),
            disabled: u.disabled,
        })
        .collect();
    Ok(render(&ListPage {
        rows,
        order_note: tr.fill("accounts.order", &[("count", PAGE_SIZE.to_string())]),
        next_href: users.next_cursor.map(|c| {
            let c: String = form_urlencoded::byte_serialize(c.as_bytes()).collect();
            format!("/accounts?cursor={c}")
        }),
        first_href,
        chrome,
    }))
}

// ---- forms -----------------------------------------------------------------

/// Any of the account forms, as typed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AccountInput {
    username: String,
    display_name: String,
    phone: String,
    role: String,
    scope_area_id: String,
    password: String,
    /// Which form of the account page: `profile`, `password`, `disable`,
    /// `enable`.
    action: String,
}

impl AccountInput {
    fn from_user(user: &UserView) -> Self {
        Self {
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            phone: user.phone.clone().unwrap_or_default(),
            role: user.role.as_str().to_owned(),
            scope_area_id: user.scope_area_id.to_string(),
            ..Self::default()
        }
    }

    fn role(&self, lang: Lang) -> Result<Role, FormErrors> {
        Role::parse(&self.role).ok_or_else(|| FormErrors::field(lang, "role", "field.required"))
    }

    fn scope(&self, lang: Lang) -> Result<Uuid, FormErrors> {
        Uuid::try_parse(self.scope_area_id.trim())
            .map_err(|_| FormErrors::field(lang, "scope_area_id", "field.required"))
    }
}

/// Roles this manager may hand out: those that can be scoped at or below
/// the manager's own scope.
fn role_choices(page: &PageActor, tr: &Tr, selected: &str) -> Vec<Choice> {
    Role::ALL
        .iter()
        .filter(|role| {
            role.allowed_scope_kinds()
                .iter()
                .any(|kind| page.actor.scope.is_none_or(|scope| *kind >= scope.kind))
        })
        .map(|role| Choice {
            value: role.as_str().to_owned(),
            label: tr.t(&role_key(*role)),
            selected: role.as_str() == selected,
        })
        .collect()
}

async fn scope_choices(
    state: &AppState,
    page: &PageActor,
    tr: &Tr,
    selected: &str,
) -> Result<Vec<Choice>, Response> {
    let choices = or_error_page(page.lang, state.service.area_choices(&page.actor).await)?;
    Ok(choices
        .iter()
        .map(|c| Choice {
            value: c.id.to_string(),
            label: area_choice_label(tr, c.kind, &c.name, c.parent_name.as_deref()),
            selected: c.id.to_string() == selected.trim(),
        })
        .collect())
}

// ---- new -------------------------------------------------------------------

#[derive(Template)]
#[template(path = "account_new.html")]
struct NewPage {
    chrome: Chrome,
    input: AccountInput,
    errors: FormErrors,
    roles: Vec<Choice>,
    scopes: Vec<Choice>,
    min_password: usize,
}

async fn new_page(
    state: &AppState,
    page: &PageActor,
    input: AccountInput,
    errors: FormErrors,
) -> Result<Response, Response> {
    let chrome = page.chrome("accounts");
    let tr = chrome.tr;
    let scopes = scope_choices(state, page, &tr, &input.scope_area_id).await?;
    Ok(with_status(
        form_status(&errors),
        render(&NewPage {
            roles: role_choices(page, &tr, &input.role),
            scopes,
            min_password: epigrid_service::accounts::MIN_PASSWORD_CHARS,
            input,
            errors,
            chrome,
        }),
    ))
}

pub async fn new_form(
    State(state): State<AppState>,
    page: PageActor,
) -> Result<Response, Response> {
    require_manager(&page)?;
    new_page(&state, &page, AccountInput::default(), FormErrors::default()).await
}

pub async fn create(
    State(state): State<AppState>,
    page: PageActor,
    form: Result<Form<AccountInput>, FormRejection>,
) -> Result<Response, Response> {
    require_manager(&page)?;
    let lang = page.lang;
    let input = match form_body(lang, form) {
        Ok(input) => input,
        Err(errors) => return new_page(&state, &page, AccountInput::default(), errors).await,
    };
    let parsed = input.role(lang).and_then(|role| Ok((role, input.scope(lang)?)));
    let (role, scope_area_id) = match parsed {
        Ok(p) => p,
        Err(errors) => return new_page(&state, &page, input, errors).await,
    };
    let new = NewUser {
        username: input.username.clone(),
        display_name: input.display_name.clone(),
        phone: Some(input.phone.clone()).filter(|p| !p.trim().is_empty()),
        password: input.password.clone(),
        role,
        scope_area_id,
    };
    match state.service.create_user(&page.actor, new).await {
        Ok(user) => {
            Ok(Redirect::to(&format!("/accounts/{}?saved=created", user.id)).into_response())
        }
        Err(error) => match FormErrors::from_service(lang, error, FIELDS) {
            Ok(errors) => new_page(&state, &page, input, errors).await,
            Err(error) => Err(error_page(lang, error)),
        },
    }
}

// ---- one account -----------------------------------------------------------

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    user: UserView,
    role_label: String,
    scope_label: String,
    input: AccountInput,
    errors: FormErrors,
    roles: Vec<Choice>,
    scopes: Vec<Choice>,
    notice: Option<String>,
    /// Managers do not disable themselves.
    is_self: bool,
    min_password: usize,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SavedQuery {
    saved: Option<String>,
}

async fn account_page(
    state: &AppState,
    page: &PageActor,
    user: UserView,
    input: AccountInput,
    errors: FormErrors,
    notice: Option<String>,
) -> Result<Response, Response> {
    let chrome = page.chrome("accounts");
    let tr = chrome.tr;
    let scope_label = scope_labels(state, page, std::slice::from_ref(&user), &tr)
        .await?
        .pop()
        .unwrap_or_default();
    let scopes = scope_choices(state, page, &tr, &input.scope_area_id).await?;
    Ok(with_status(
        form_status(&errors),
        render(&AccountPage {
            role_label: tr.t(&role_key(user.role)),
            scope_label,
            roles: role_choices(page, &tr, &input.role),
            scopes,
            is_self: page.actor.user_id == Some(user.id),
            min_password: epigrid_service::accounts::MIN_PASSWORD_CHARS,
            user,
            input,
            errors,
            notice,
            chrome,
        }),
    ))
}

pub async fn show(
    State(state): State<AppState>,
    page: PageActor,
    Path(id): Path<String>,
    query: Result<Query<SavedQuery>, QueryRejection>,
) -> Result<Response, Response> {
    require_manager(&page)?;
    let lang = page.lang;
    let id = parse_id(&id, lang)?;
    let user = or_error_page(lang, state.service.get_user(&page.actor, id).await)?;
    let notice = query.ok().and_then(|Query(q)| q.saved).and_then(|what| match what.as_str() {
        "created" | "profile" | "password" | "disabled" | "enabled" => {
            Some(page.chrome("accounts").t(&format!("account.saved.{what}")))
        }
        _ => None,
    });
    let input = AccountInput::from_user(&user);
    account_page(&state, &page, user, input, FormErrors::default(), notice).await
}

pub async fn update(
    State(state): State<AppState>,
    page: PageActor,
    Path(id): Path<String>,
    form: Result<Form<AccountInput>, FormRejection>,
) -> Result<Response, Response> {
    require_manager(&page)?;
    let lang = page.lang;
    let id = parse_id(&id, lang)?;
    let user = or_error_page(lang, state.service.get_user(&page.actor, id).await)?;
    let input = match form_body(lang, form) {
        Ok(input) => input,
        Err(errors) => {
            let input = AccountInput::from_user(&user);
            return account_page(&state, &page, user, input, errors, None).await;
        }
    };
    let (changes, saved) = match input.action.as_str() {
        "password" => (
            UserChanges { password: Some(input.password.clone()), ..UserChanges::default() },
            "password",
        ),
        "disable" => (UserChanges { disabled: Some(true), ..UserChanges::default() }, "disabled"),
        "enable" => (UserChanges { disabled: Some(false), ..UserChanges::default() }, "enabled"),
        "revoke" => (UserChanges { revoke_sessions: true, ..UserChanges::default() }, "revoked"),
        _ => {
            let parsed = input.role(lang).and_then(|role| Ok((role, input.scope(lang)?)));
            let (role, scope_area_id) = match parsed {
                Ok(p) => p,
                Err(errors) => return account_page(&state, &page, user, input, errors, None).await,
            };
            let changes = UserChanges {
                display_name: Some(input.display_name.clone()),
                phone: Some(input.phone.clone()),
                role: Some(role),
                scope_area_id: Some(scope_area_id),
                ..UserChanges::default()
            };
            (changes, "profile")
        }
    };
    match state.service.update_user(&page.actor, id, changes).await {
        Ok(_) => Ok(Redirect::to(&format!("/accounts/{id}?saved={saved}")).into_response()),
        Err(error) => match FormErrors::from_service(lang, error, FIELDS) {
            Ok(errors) => {
                // The profile form keeps what was typed; the other forms
                // show the account as it is.
                let shown = if saved == "profile" {
                    AccountInput { password: String::new(), ..input }
                } else {
                    AccountInput { action: input.action.clone(), ..AccountInput::from_user(&user) }
                };
                account_page(&state, &page, user, shown, errors, None).await
            }
            Err(error) => Err(error_page(lang, error)),
        },
    }
}
