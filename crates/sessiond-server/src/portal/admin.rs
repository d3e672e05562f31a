//! The administrators' page: look a user up and end one or all of their sessions.

use super::account::{Identity, SessionRow, check_session_form, session_csrf};
use super::{Flash, PageError, SignedIn, flash, live_sessions, render, see_other, with_query};
use crate::audit::{AuditEvent, AuditKind};
use crate::extract::{Caller, RequestContext, ResponseCookies};
use crate::metrics::EndKind;
use crate::state::App;
use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use sessiond_core::token::SessionId;
use tracing::info;

/// Longest user name looked up.
const MAX_USER: usize = 256;

/// A user name worth looking up: 1 to 256 characters, none of them control characters.
fn lookup_name(name: &str) -> Option<&str> {
    let name = name.trim();
    (!name.is_empty() && name.len() <= MAX_USER && !name.chars().any(char::is_control)).then_some(name)
}

fn require_admin(caller: &Caller) -> Result<(), PageError> {
    if caller.is_admin { Ok(()) } else { Err(PageError::AdminsOnly) }
}

/// The user looked up, with what is known of them.
struct Lookup {
    name: String,
    identity: Option<Identity>,
    sessions: Vec<SessionRow>,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    notice: Option<Flash>,
    csrf: String,
    lookup: Option<Lookup>,
    /// The realm keeps sessions in cookies: none can be listed.
    in_cookies: bool,
}

/// `GET /admin[?user=NAME]`: finds a user's live sessions in the administrator's realm.
/// Callers: members of `server.admin_group`; other signed-in visitors get 403.
pub(super) async fn admin_page(
    State(app): State<App>,
    SignedIn(caller): SignedIn,
    cookies: ResponseCookies,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    require_admin(&caller)?;
    let asked = super::query_param(query.as_deref(), "user");
    let lookup = match asked.as_deref().and_then(lookup_name) {
        Some(name) => {
            let now = app.clock.now();
            let records = live_sessions(&app, &caller.realm, name, &caller.session).await?;
            let sessions =
                records.iter().map(|s| SessionRow::new(s, s.token_hash == caller.session.token_hash, now)).collect();
            Some(Lookup { name: name.to_owned(), identity: Identity::of(&app, name, records.first()), sessions })
        }
        None => None,
    };
    let page = AdminPage {
        notice: flash::take(&headers, &caller.realm, &cookies),
        csrf: session_csrf(&app, &caller),
        lookup,
        in_cookies: caller.realm.policy.location == sessiond_core::realm::SessionLocation::Client,
    };
    Ok(render(&app, &caller.realm, &page))
}

/// `POST /admin/sessions/{id}/revoke` (CSRF): ends one session of any user. Callers: members of
/// `server.admin_group`.
pub(super) async fn revoke_session(
    State(app): State<App>,
    SignedIn(caller): SignedIn,
    ctx: RequestContext,
    cookies: ResponseCookies,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<super::account::CsrfForm>, FormRejection>,
) -> Result<Response, PageError> {
    require_admin(&caller)?;
    let Form(form) = form.map_err(|_| PageError::BadForm)?;
    check_session_form(&app, &caller, &headers, &form.csrf)?;
    let id = SessionId::parse(&id).map_err(|_| PageError::NotFound)?;
    let target = crate::sessions::by_id(&app, &id, &caller.session).await?.ok_or(PageError::NotFound)?;
    let ended = crate::sessions::end(&app, &target).await?;
    app.metrics.sessions_ended(EndKind::Admin, usize::from(ended));
    info!(session_id = %target.id, user = %target.user, by = %caller.session.user, "session revoked");
    app.audit(
        AuditKind::Revoked,
        &AuditEvent {
            actor: Some(&caller.session.user),
            ip: ctx.ip.as_deref(),
            user_agent: ctx.user_agent.as_deref(),
            ..AuditEvent::of_session(&target)
        },
    );
    if target.token_hash == caller.session.token_hash {
        super::logout::delete_cookies(&cookies, &caller.realm);
        flash::set(&cookies, &caller.realm, Flash::LoggedOut);
        return Ok(see_other("/login"));
    }
    flash::set(&cookies, &caller.realm, Flash::SessionEnded);
    Ok(see_other(&with_query("/admin", "user", Some(&target.user))))
}

/// What the "sign out all sessions" form posts.
#[derive(Deserialize)]
pub(super) struct UserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user: String,
}

/// `POST /admin/revoke-all` (CSRF, `user`): ends every session of a user in the administrator's
/// realm. Callers: members of `server.admin_group`.
pub(super) async fn revoke_user_sessions(
    State(app): State<App>,
    SignedIn(caller): SignedIn,
    ctx: RequestContext,
    cookies: ResponseCookies,
    headers: HeaderMap,
    form: Result<Form<UserForm>, FormRejection>,
) -> Result<Response, PageError> {
    require_admin(&caller)?;
    let Form(form) = form.map_err(|_| PageError::BadForm)?;
    check_session_form(&app, &caller, &headers, &form.csrf)?;
    let user = lookup_name(&form.user).ok_or(PageError::BadForm)?;
    let realm = &caller.session.realm;
    let ended = crate::sessions::end_user_sessions(&app, &caller.realm, user, None, Some(&caller.session)).await?;
    app.metrics.sessions_ended(EndKind::Admin, ended.len());
    info!(user = %user, realm = %realm, by = %caller.session.user, count = ended.len(), "sessions revoked");
    app.audit(
        AuditKind::Revoked,
        &AuditEvent {
            realm: Some(realm),
            user: Some(user),
            actor: Some(&caller.session.user),
            ip: ctx.ip.as_deref(),
            user_agent: ctx.user_agent.as_deref(),
            count: Some(ended.len()),
            ..AuditEvent::default()
        },
    );
    if ended.iter().any(|s| s.token_hash == caller.session.token_hash) {
        super::logout::delete_cookies(&cookies, &caller.realm);
        flash::set(&cookies, &caller.realm, Flash::LoggedOut);
        return Ok(see_other("/login"));
    }
    flash::set(&cookies, &caller.realm, Flash::UserSessionsEnded);
    Ok(see_other(&with_query("/admin", "user", Some(user))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plausible_names_are_looked_up() {
        assert_eq!(lookup_name(" alice "), Some("alice"));
        assert_eq!(lookup_name(""), None);
        assert_eq!(lookup_name("a\nb"), None);
        assert_eq!(lookup_name(&"a".repeat(MAX_USER + 1)), None);
    }
}
