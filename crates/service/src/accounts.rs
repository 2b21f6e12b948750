//! Accounts, logins and sessions. Passwords are argon2id hashes; sessions are
//! random tokens whose SHA-256 is stored in the database, so any server
//! instance can serve any request and a copy of the table opens nothing.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use epigrid_domain::{Action, Role, Scope};
use epigrid_store::{RegistryWrite, SessionRecord, UserQuery, UserRecord};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::Target;
use crate::views::{Page, UserView};
use crate::{Actor, Service, ServiceError, ServiceResult};

pub const MIN_PASSWORD_CHARS: usize = 8;

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    #[serde(default)]
    pub phone: Option<String>,
    pub password: String,
    pub role: Role,
    pub scope_area_id: Uuid,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct UserChanges {
    pub display_name: Option<String>,
    pub phone: Option<String>,
    pub password: Option<String>,
    pub role: Option<Role>,
    pub scope_area_id: Option<Uuid>,
    pub disabled: Option<bool>,
    /// End every open session of the account (a lost phone, a left job).
    #[serde(default)]
    pub revoke_sessions: bool,
}

/// A logged-in session: the cookie value to hand out, and who it is.
#[derive(Debug, Clone)]
pub struct Login {
    pub token: String,
    pub actor: Actor,
    pub user: UserView,
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn validate_username(username: &str) -> ServiceResult<String> {
    let username = username.trim();
    let valid = (3..=32).contains(&username.len())
        && username.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if valid {
        Ok(username.to_owned())
    } else {
        Err(ServiceError::invalid("username", "username.format"))
    }
}

/// Passwords people pick first, which every guessing list tries first.
const COMMON_PASSWORDS: &[&str] = &[
    "12345678",
    "123456789",
    "1234567890",
    "11111111",
    "88888888",
    "66666666",
    "00000000",
    "password",
    "password1",
    "passw0rd",
    "qwertyui",
    "qwerty123",
    "abc12345",
    "a1234567",
    "1qaz2wsx",
    "iloveyou",
    "woaini1314",
    "5201314520",
    "admin123",
    "admin888",
    "epigrid1",
];

/// The password policy, after NIST SP 800-63B: long enough, not a known
/// common password, not the username, not one repeated character. No
/// composition rules: they make passwords harder to remember, not to guess.
fn validate_password(password: &str, username: &str) -> ServiceResult<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ServiceError::invalid("password", "password.too_short"));
    }
    let lower = password.to_lowercase();
    if COMMON_PASSWORDS.contains(&lower.as_str()) {
        return Err(ServiceError::invalid("password", "password.common"));
    }
    if !username.is_empty() && lower.contains(&username.to_lowercase()) {
        return Err(ServiceError::invalid("password", "password.contains_username"));
    }
    let mut chars = password.chars();
    if let Some(first) = chars.next()
        && chars.all(|c| c == first)
    {
        return Err(ServiceError::invalid("password", "password.repeated"));
    }
    Ok(())
}

fn validate_display_name(name: &str) -> ServiceResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 50 || name.chars().any(char::is_control) {
        return Err(ServiceError::invalid("display_name", "display_name.format"));
    }
    Ok(name.to_owned())
}

fn validate_work_phone(phone: Option<String>) -> ServiceResult<Option<String>> {
    match phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        None => Ok(None),
        Some(p) => epigrid_domain::MobilePhone::parse(p)
            .map(|p| Some(p.as_str().to_owned()))
            .map_err(|_| ServiceError::invalid("phone", "phone.format")),
    }
}

fn hasher(settings: &crate::Argon2Settings) -> ServiceResult<Argon2<'static>> {
    let params =
        argon2::Params::new(settings.memory_kib, settings.iterations, settings.parallelism, None)
            .map_err(|e| ServiceError::Internal(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params))
}

async fn hash_password(password: String, settings: crate::Argon2Settings) -> ServiceResult<String> {
    let hasher = hasher(&settings)?;
    // argon2 is deliberately slow; keep it off the async worker threads.
    tokio::task::spawn_blocking(move || {
        hasher
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| ServiceError::Internal(format!("password hashing failed: {e}")))
    })
    .await
    .map_err(|e| ServiceError::Internal(e.to_string()))?
}

async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

impl Actor {
    fn for_user(user: &UserRecord) -> Self {
        Self {
            user_id: Some(user.id),
            username: user.username.clone(),
            role: user.role,
            scope: Some(user.scope),
            client_addr: None,
        }
    }
}

impl Service {
    /// Checks a username and password and opens a session. A wrong username
    /// costs the same argon2 work as a wrong password, so response times do
    /// not tell which accounts exist.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client_addr: Option<String>,
    ) -> ServiceResult<Login> {
        self.check_login_limits(username, client_addr.as_deref()).await?;
        let user = self.store().get_user_by_username(username.trim()).await?;
        let hash = match &user {
            Some(u) => u.password_hash.clone(),
            None => dummy_hash(self.settings().argon2),
        };
        let matches = verify_password(password.to_owned(), hash).await;
        let user = match user {
            Some(u) if matches && !u.disabled => u,
            other => {
                let attempt = Actor {
                    user_id: other.as_ref().map(|u| u.id),
                    username: username.trim().chars().take(64).collect(),
                    role: other.as_ref().map_or(Role::Volunteer, |u| u.role),
                    scope: None,
                    client_addr,
                };
                let reason = match other {
                    None => "unknown_user",
                    Some(u) if u.disabled => "disabled",
                    Some(_) => "wrong_password",
                };
                self.audit(
                    &attempt,
                    "login",
                    None,
                    "failed",
                    serde_json::json!({ "reason": reason }),
                )
                .await?;
                return Err(ServiceError::BadCredentials);
            }
        };
        let token = hex::encode(rand::random::<[u8; 32]>());
        let now = self.now();
        self.store()
            .insert_session(&SessionRecord {
                token_hash: token_hash(&token),
                user_id: user.id,
                created_at: now,
                last_seen_at: now,
                expires_at: now + self.settings().session_absolute,
            })
            .await?;
        let actor = Actor { client_addr, ..Actor::for_user(&user) };
        self.audit(&actor, "login", None, "ok", serde_json::json!({})).await?;
        Ok(Login { token, actor, user: UserView::from(&user) })
    }

    /// Refuses a login attempt while the account or the client address has
    /// had too many failures within the window. The answer says how long to
    /// wait: until the oldest counted failure leaves the window.
    async fn check_login_limits(
        &self,
        username: &str,
        client_addr: Option<&str>,
    ) -> ServiceResult<()> {
        let limits = self.settings().login_limits;
        let now = self.now();
        let since = now - limits.window;
        let failures =
            |actor_name: Option<String>, client_addr: Option<String>| epigrid_store::AuditCount {
                action: "login".into(),
                outcome: "failed".into(),
                actor_name,
                client_addr,
                since,
            };
        let mut wait_until = None;
        let by_account = self
            .store()
            .count_audit(&failures(Some(username.trim().chars().take(64).collect()), None))
            .await?;
        if by_account.count >= limits.per_account {
            wait_until = by_account.oldest.map(|t| t + limits.window);
        }
        if let Some(addr) = client_addr {
            let by_address =
                self.store().count_audit(&failures(None, Some(addr.to_owned()))).await?;
            if by_address.count >= limits.per_address {
                let until = by_address.oldest.map(|t| t + limits.window);
                wait_until = wait_until.max(until);
            }
        }
        match wait_until {
            Some(until) if until > now => {
                let retry_after_secs =
                    u64::try_from((until - now).num_seconds()).unwrap_or(0).max(1);
                Err(ServiceError::TooManyAttempts { retry_after_secs })
            }
            _ => Ok(()),
        }
    }

    /// Resolves a session token to its actor, enforcing idle and absolute
    /// expiry and a disabled account.
    pub async fn authenticate(&self, token: &str) -> ServiceResult<Actor> {
        let hash = token_hash(token);
        let session =
            self.store().get_session(&hash).await?.ok_or(ServiceError::Unauthenticated)?;
        let now = self.now();
        if now >= session.expires_at || now - session.last_seen_at >= self.settings().session_idle {
            self.store().delete_session(&hash).await?;
            return Err(ServiceError::Unauthenticated);
        }
        let user = self
            .store()
            .get_user(session.user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or(ServiceError::Unauthenticated)?;
        // Touch at most once a minute: a write per request would make every
        // page view a write on the single SQLite writer.
        if now - session.last_seen_at >= chrono::Duration::minutes(1) {
            self.store().touch_session(&hash, now).await?;
        }
        Ok(Actor::for_user(&user))
    }

    pub async fn logout(&self, actor: Option<&Actor>, token: &str) -> ServiceResult<()> {
        self.store().delete_session(&token_hash(token)).await?;
        if let Some(actor) = actor {
            self.audit(actor, "logout", None, "ok", serde_json::json!({})).await?;
        }
        Ok(())
    }

    /// The scope node of an account, checked against what the actor may
    /// manage and what the role may be scoped to.
    async fn account_scope(
        &self,
        actor: &Actor,
        role: Role,
        area_id: Uuid,
    ) -> ServiceResult<(Scope, epigrid_domain::AreaPath)> {
        let area = self.store().get_area(area_id).await?;
        let area = area
            .filter(|a| actor.covers(&a.path))
            .ok_or_else(|| ServiceError::invalid("scope_area_id", "scope.unknown_area"))?;
        if !role.allowed_scope_kinds().contains(&area.kind) {
            return Err(ServiceError::invalid("scope_area_id", "scope.wrong_level_for_role"));
        }
        Ok((Scope { kind: area.kind, area_id: area.id }, area.path))
    }

    pub async fn create_user(&self, actor: &Actor, new: NewUser) -> ServiceResult<UserView> {
        actor.require(Action::ManageAccounts)?;
        let username = validate_username(&new.username)?;
        let display_name = validate_display_name(&new.display_name)?;
        let phone = validate_work_phone(new.phone)?;
        validate_password(&new.password, &username)?;
        let (scope, scope_path) = self.account_scope(actor, new.role, new.scope_area_id).await?;
        let now = self.now();
        let user = UserRecord {
            id: Uuid::now_v7(),
            username,
            display_name,
            phone,
            password_hash: hash_password(new.password, self.settings().argon2).await?,
            role: new.role,
            scope,
            scope_path,
            disabled: false,
            created_at: now,
            updated_at: now,
        };
        let target = Target { kind: "account", id: user.id, path: Some(&user.scope_path) };
        let detail = serde_json::json!({ "role": user.role, "scope_kind": user.scope.kind });
        let write = RegistryWrite::InsertUser(&user);
        self.write_audited(actor, write, "account.create", target, detail).await?;
        Ok(UserView::from(&user))
    }

    async fn managed_user(&self, actor: &Actor, id: Uuid) -> ServiceResult<UserRecord> {
        actor.require(Action::ManageAccounts)?;
        self.store()
            .get_user(id)
            .await?
            .filter(|u| actor.covers(&u.scope_path))
            .ok_or(ServiceError::NotFound)
    }

    pub async fn get_user(&self, actor: &Actor, id: Uuid) -> ServiceResult<UserView> {
        Ok(UserView::from(&self.managed_user(actor, id).await?))
    }

    pub async fn update_user(
        &self,
        actor: &Actor,
        id: Uuid,
        changes: UserChanges,
    ) -> ServiceResult<UserView> {
        let mut user = self.managed_user(actor, id).await?;
        let mut fields = Vec::new();
        if changes.display_name.is_some() {
            fields.push("display_name");
        }
        if changes.phone.is_some() {
            fields.push("phone");
        }
        if changes.role.is_some() || changes.scope_area_id.is_some() {
            fields.push("role_or_scope");
        }
        if changes.password.is_some() {
            fields.push("password");
        }
        if changes.disabled.is_some() {
            fields.push("disabled");
        }
        if let Some(name) = changes.display_name {
            user.display_name = validate_display_name(&name)?;
        }
        if changes.phone.is_some() {
            user.phone = validate_work_phone(changes.phone)?;
        }
        let role = changes.role.unwrap_or(user.role);
        let scope_area = changes.scope_area_id.unwrap_or(user.scope.area_id);
        if role != user.role || scope_area != user.scope.area_id {
            let (scope, path) = self.account_scope(actor, role, scope_area).await?;
            user.role = role;
            user.scope = scope;
            user.scope_path = path;
        }
        let mut revoke = false;
        if let Some(password) = changes.password {
            validate_password(&password, &user.username)?;
            user.password_hash = hash_password(password, self.settings().argon2).await?;
            revoke = true;
        }
        if changes.revoke_sessions {
            fields.push("sessions");
            revoke = true;
        }
        if let Some(disabled) = changes.disabled {
            revoke |= disabled && !user.disabled;
            user.disabled = disabled;
        }
        user.updated_at = self.now();
        let target = Target { kind: "account", id: user.id, path: Some(&user.scope_path) };
        let detail =
            serde_json::json!({ "fields": fields, "sessions_revoked": revoke, "role": user.role });
        // A new password or a disabled account ends every open session, in
        // the same transaction as the change and its audit entry.
        let write = RegistryWrite::UpdateUser { user: &user, end_sessions: revoke };
        if !self.write_audited(actor, write, "account.update", target, detail).await? {
            return Err(ServiceError::NotFound);
        }
        Ok(UserView::from(&user))
    }

    /// Accounts within the actor's scope, by username. `after` is the
    /// `next_cursor` of the page before: the last username on it.
    pub async fn list_users(
        &self,
        actor: &Actor,
        after: Option<String>,
        limit: u32,
    ) -> ServiceResult<Page<UserView>> {
        actor.require(Action::ManageAccounts)?;
        let limit = limit.clamp(1, 200);
        let mut users = self
            .store()
            .list_users(&UserQuery { within: actor.scope, after, limit: limit + 1 })
            .await?;
        let next = (users.len() > limit as usize).then(|| {
            users.truncate(limit as usize);
            users.last().map(|u| u.username.clone())
        });
        Ok(Page { items: users.iter().map(UserView::from).collect(), next_cursor: next.flatten() })
    }

    /// Accounts whose scope is exactly this grid or community: the people
    /// who look after it. Any actor that can see the area may see them.
    pub async fn area_staff(&self, actor: &Actor, area_id: Uuid) -> ServiceResult<Vec<UserView>> {
        let area = self.visible_area(actor, area_id).await?;
        let scope = Scope { kind: area.kind, area_id: area.id };
        let users = self
            .store()
            .list_users(&UserQuery { within: Some(scope), after: None, limit: 200 })
            .await?;
        Ok(users.iter().filter(|u| u.scope == scope && !u.disabled).map(UserView::from).collect())
    }
}

/// A fixed hash to verify against when the username is unknown, made with
/// the configured cost so that both paths take the same time.
fn dummy_hash(settings: crate::Argon2Settings) -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        hasher(&settings)
            .and_then(|h| {
                h.hash_password(b"no such user, same cost")
                    .map(|h| h.to_string())
                    .map_err(|e| ServiceError::Internal(e.to_string()))
            })
            .unwrap_or_default()
    })
    .clone()
}
