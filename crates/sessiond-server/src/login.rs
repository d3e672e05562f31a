//! The steps of a login journey, shared by the JSON API and the portal: the password (with
//! regulation), the TOTP code for users who enrolled one, and the session made at the end.
//!
//! [`run_step`] takes a journey loaded by [`crate::journeys::load`] and the answer to its
//! step, and either moves the journey on (answering the next `auth_id`) or ends it with a new
//! session. A login ends whatever session came with the request (no fixation); a step-up ends
//! the session it upgrades and makes a new one with the second factor in its `amr`.

use crate::audit::{AuditEvent, AuditKind};
use crate::error::ApiError;
use crate::extract::{RequestContext, ResponseCookies, find_credential};
use crate::journeys::{self, Journey};
use crate::metrics::{EndKind, LoginProvider, LoginResult};
use crate::regulation::Banned;
use crate::sessions::{self, Credential, NewSession};
use crate::state::App;
use crate::totp::{self, TotpCheckError};
use crate::users::{PasswordCheck, User};
use axum::http::HeaderMap;
use sessiond_core::journey::{Purpose, Step};
use sessiond_core::provider::Provider;
use sessiond_core::session::{SessionRecord, amr};
use std::collections::BTreeMap;
use tracing::{info, warn};

/// What a person typed at the password step.
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Whether to remember the session.
    pub remember_me: bool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"[redacted]").finish()
    }
}

/// The answer to a journey's step.
#[derive(Debug)]
pub enum Answer {
    /// User name and password.
    Password(Credentials),
    /// A TOTP code.
    Totp(String),
}

/// Where a step left the journey.
#[derive(Debug)]
pub enum Outcome {
    /// The journey goes on: the `auth_id` of the next step, and the step.
    Next {
        /// The `auth_id` to present next.
        auth_id: String,
        /// What the next step asks for.
        step: Step,
    },
    /// The journey ended with a new session.
    Done {
        /// Its credential.
        credential: Credential,
        /// The session.
        record: Box<SessionRecord>,
    },
}

/// The audit fields of a login attempt.
fn attempt<'a>(ctx: &'a RequestContext, user: &'a str) -> AuditEvent<'a> {
    AuditEvent {
        realm: Some(ctx.realm.name()),
        user: Some(user),
        ip: ctx.ip.as_deref(),
        user_agent: ctx.user_agent.as_deref(),
        ..AuditEvent::default()
    }
}

/// Refuses the attempt while a ban of `user` or the address is in force.
fn check_ban(app: &App, ctx: &RequestContext, user: &str, provider: LoginProvider) -> Result<(), ApiError> {
    let now = app.clock.now();
    if let Err(banned) = app.regulator.check(user, ctx.ip.as_deref(), now) {
        warn!(user = %user, ip = ctx.ip.as_deref().unwrap_or("-"), on = ?banned, "login refused: too many failures");
        app.audit(AuditKind::LoginFailed, &AuditEvent { reason: Some("too_many_attempts"), ..attempt(ctx, user) });
        app.metrics.login(provider, LoginResult::Banned);
        return Err(ApiError::TooManyAttempts);
    }
    Ok(())
}

/// Records a wrong answer: audit, metrics, regulation (which may ban), and the journey's count.
async fn wrong_answer(
    app: &App,
    ctx: &RequestContext,
    journey: Option<&Journey>,
    user: &str,
    provider: LoginProvider,
    reason: &'static str,
) -> ApiError {
    info!(user = %user, realm = %ctx.realm.name(), ip = ctx.ip.as_deref().unwrap_or("-"), reason, "login step failed");
    app.audit(AuditKind::LoginFailed, &AuditEvent { reason: Some(reason), ..attempt(ctx, user) });
    app.metrics.login(provider, LoginResult::InvalidCredentials);
    for banned in app.regulator.failed(user, ctx.ip.as_deref(), app.clock.now()) {
        warn!(user = %user, ip = ctx.ip.as_deref().unwrap_or("-"), on = ?banned, "banned after repeated login failures");
        let on = match banned {
            Banned::User => "user",
            Banned::Address => "address",
        };
        app.audit(AuditKind::Banned, &AuditEvent { reason: Some(on), ..attempt(ctx, user) });
        app.metrics.banned(banned);
    }
    let Some(journey) = journey else { return ApiError::InvalidCredentials };
    match journeys::fail(app, &ctx.realm, journey).await {
        Ok(_) => ApiError::InvalidCredentials,
        Err(e) => e,
    }
}

/// Checks the password of `credentials`, under regulation: the users file first, then each
/// LDAP provider in order, the first that accepts winning. A name the users file has is never
/// sent to a directory, so a users-file user always wins over a directory's user typed the same.
/// A wrong password is recorded once, whichever sources refused it. A directory that cannot
/// answer makes the check `provider_unavailable` (nothing counted against the user) unless a
/// later one accepts.
///
/// `session_user` is set for a re-authentication: then the name is a session's user, and an
/// `<id>:<name>` one is checked by that LDAP provider only.
async fn check_password(
    app: &App,
    ctx: &RequestContext,
    journey: Option<&Journey>,
    credentials: Credentials,
    session_user: bool,
) -> Result<User, ApiError> {
    check_ban(app, ctx, &credentials.username, LoginProvider::Password)?;
    let permit = app.hashing.acquire().await.map_err(ApiError::internal)?;
    let users = app.users.clone();
    let username = credentials.username.clone();
    let password = credentials.password.clone();
    let check = tokio::task::spawn_blocking(move || users.check_password(&username, &password))
        .await
        .map_err(ApiError::internal)?;
    drop(permit);
    match check {
        PasswordCheck::Valid(user) => return Ok(user),
        PasswordCheck::Invalid => {}
    }
    let in_file = app.users.snapshot().get(&credentials.username).is_some();
    let mut unavailable = None;
    if !in_file {
        for (directory, name) in ldap_candidates(app, &credentials.username, session_user) {
            match directory.check_password(name, &credentials.password).await {
                Ok(Some(user)) => return Ok(user),
                Ok(None) => {}
                Err(e) => {
                    warn!(provider = %directory.provider().id, error = %e, "LDAP directory unavailable for a login");
                    unavailable.get_or_insert(e);
                }
            }
        }
    }
    if let Some(e) = unavailable {
        return Err(e);
    }
    Err(wrong_answer(app, ctx, journey, &credentials.username, LoginProvider::Password, "invalid_credentials").await)
}

/// The LDAP providers to ask for `username`, in order, with the name each is asked for.
fn ldap_candidates<'a>(
    app: &'a App,
    username: &'a str,
    session_user: bool,
) -> Vec<(&'a crate::ldap::LdapDirectory, &'a str)> {
    let ldap = app.settings.providers.iter().filter_map(|p| match p {
        Provider::Ldap(l) => app.ldap.get(&l.id).map(|d| &**d),
        _ => None,
    });
    if !session_user {
        return ldap.map(|d| (d, username)).collect();
    }
    let Some((id, name)) = username.split_once(':') else { return Vec::new() };
    ldap.filter(|d| d.provider().id == id).map(|d| (d, name)).collect()
}

/// Lets a sensitive action of `session` go ahead: its sign-in is recent (within
/// `server.reauth_window`), or `password` is the user's password (checked under regulation, like
/// a login).
///
/// # Errors
/// `reauthentication_required` when the sign-in is old and no password came;
/// `invalid_credentials`, `too_many_attempts` for a password refused.
pub async fn require_recent_sign_in(
    app: &App,
    ctx: &RequestContext,
    session: &SessionRecord,
    password: Option<String>,
) -> Result<(), ApiError> {
    let now = app.clock.now();
    // `0` asks every time, even in the second of the sign-in.
    let window = app.settings.reauth_window;
    let recent = !window.is_zero() && session.created_at + window >= now;
    match password {
        None if recent => Ok(()),
        None => Err(ApiError::ReauthenticationRequired),
        Some(password) => {
            let credentials = Credentials { username: session.user.clone(), password, remember_me: false };
            check_password(app, ctx, None, credentials, true).await.map(|_| app.regulator.succeeded(&session.user))
        }
    }
}

/// Checks a TOTP code of the journey's user, under regulation.
async fn check_code(
    app: &App,
    ctx: &RequestContext,
    journey: &Journey,
    user: &str,
    code: &str,
) -> Result<(), ApiError> {
    check_ban(app, ctx, user, LoginProvider::Totp)?;
    match totp::check(&app.store, &app.totp_sealer, user, code, app.clock.now()).await {
        Ok(()) => Ok(()),
        Err(TotpCheckError::Invalid) => {
            Err(wrong_answer(app, ctx, Some(journey), user, LoginProvider::Totp, "invalid_totp").await)
        }
        Err(TotpCheckError::Replayed) => {
            Err(wrong_answer(app, ctx, Some(journey), user, LoginProvider::Totp, "totp_replayed").await)
        }
        // The factor went away during the journey (an administrator reset it): start again.
        Err(TotpCheckError::NotEnrolled) => {
            journeys::end(app, journey).await?;
            Err(ApiError::JourneyExpired)
        }
        Err(TotpCheckError::Store(e)) => Err(e.into()),
    }
}

/// Runs the step `journey` waits for with `answer`.
///
/// # Errors
/// `bad_request` for an answer to another step; `invalid_credentials` for a wrong password or
/// code (the journey ends after three); `too_many_attempts` under a ban; `journey_replayed`
/// when another request moved the journey on first; `journey_expired` when the user can no
/// longer finish it; `unauthenticated` for a step-up whose session ended; store errors.
pub async fn run_step(
    app: &App,
    ctx: &RequestContext,
    headers: &HeaderMap,
    cookies: &ResponseCookies,
    journey: Journey,
    answer: Answer,
) -> Result<Outcome, ApiError> {
    let realm = &ctx.realm;
    let now = app.clock.now();
    match (journey.state.step, answer) {
        (Step::Password, Answer::Password(credentials)) if journey.state.purpose == Purpose::Login => {
            let remember_me = credentials.remember_me;
            let typed = credentials.username.clone();
            let user = check_password(app, ctx, Some(&journey), credentials, false).await?;
            // Failures are forgotten only once the whole login passed: a right password must
            // not wipe the count of wrong codes, or the code could be guessed between passwords.
            if totp::is_enrolled(&app.store, &user.name, now).await? {
                let mut next = journey.state.advanced(Step::Totp);
                next.user = Some(user.name.clone());
                next.remember_me = remember_me;
                next.amr = vec![amr::PASSWORD.to_owned()];
                // A directory's user is in no users file: keep what the directory said.
                if user.name.contains(':') {
                    next.profile = Some(profile_of(&user));
                }
                let auth_id = journeys::advance(app, realm, journey, next).await?;
                return Ok(Outcome::Next { auth_id, step: Step::Totp });
            }
            app.regulator.succeeded(&user.name);
            // A directory's user failed under the typed name (`alice`), and is `ldap:alice`.
            if typed != user.name {
                app.regulator.succeeded(&typed);
            }
            journeys::finish(app, realm, &journey).await?;
            let (credential, record) =
                open_session(app, ctx, headers, cookies, &user, vec![amr::PASSWORD.to_owned()], remember_me).await?;
            Ok(Outcome::Done { credential, record: Box::new(record) })
        }
        (Step::Totp, Answer::Totp(code)) => {
            let name = journey.state.user.clone().ok_or(ApiError::JourneyExpired)?;
            check_code(app, ctx, &journey, &name, &code).await?;
            app.regulator.succeeded(&name);
            app.metrics.login(LoginProvider::Totp, LoginResult::Success);
            let user = match &journey.state.profile {
                // A provider's user: who the provider said, at the first step.
                Some(profile) => Some(User {
                    name: name.clone(),
                    display_name: profile.display_name.clone(),
                    email: profile.email.clone(),
                    groups: profile.groups.clone(),
                    disabled: false,
                }),
                // A user of the file: as the file says now.
                None => app.users.snapshot().get(&name).filter(|u| !u.disabled),
            };
            let Some(user) = user else {
                journeys::end(app, &journey).await?;
                return Err(ApiError::InvalidCredentials);
            };
            let mut methods = journey.state.amr.clone();
            if !methods.iter().any(|m| m == amr::OTP) {
                methods.push(amr::OTP.to_owned());
            }
            if journey.state.purpose == Purpose::StepUp {
                check_upgraded_session(app, ctx, headers, &journey).await?;
            }
            journeys::finish(app, realm, &journey).await?;
            let (credential, record) =
                open_session(app, ctx, headers, cookies, &user, methods, journey.state.remember_me).await?;
            Ok(Outcome::Done { credential, record: Box::new(record) })
        }
        (step, _) => Err(ApiError::BadRequest(format!("this step of the login asks for {}", step_words(step)))),
    }
}

fn step_words(step: Step) -> &'static str {
    match step {
        Step::Password => "the username and password",
        Step::Totp => "a code from the authenticator app (callback totp)",
        Step::Provider => "the login provider's answer, in the browser",
    }
}

/// Signs in a user a login provider vouched for: a TOTP step follows when the user enrolled
/// one, else a fresh session (the session the request came with ends).
///
/// # Errors
/// `too_many_attempts` under a ban; store errors.
pub async fn external_login(
    app: &App,
    ctx: &RequestContext,
    headers: &HeaderMap,
    cookies: &ResponseCookies,
    provider: &sessiond_core::provider::Provider,
    user: User,
) -> Result<Outcome, ApiError> {
    let realm = &ctx.realm;
    let now = app.clock.now();
    let counted = LoginProvider::of_user(&app.settings.providers, &user.name);
    check_ban(app, ctx, &user.name, counted)?;
    let methods = vec![provider.method().to_owned()];
    if totp::is_enrolled(&app.store, &user.name, now).await? {
        let mut state = journeys::new_state(realm, Purpose::Login, Step::Totp, now);
        state.user = Some(user.name.clone());
        state.amr = methods;
        state.profile = Some(profile_of(&user));
        let auth_id = journeys::start(app, realm, state).await?;
        return Ok(Outcome::Next { auth_id, step: Step::Totp });
    }
    let (credential, record) = open_session(app, ctx, headers, cookies, &user, methods, false).await?;
    Ok(Outcome::Done { credential, record: Box::new(record) })
}

/// Starts a step-up journey for `session`: the TOTP step, then a new session like it with
/// `otp` added. Returns the journey's auth_id and state, or `None` when the user has no TOTP
/// to step up with.
pub async fn start_step_up(
    app: &App,
    realm: &crate::state::Realm,
    session: &SessionRecord,
) -> Result<Option<(String, sessiond_core::journey::JourneyState)>, ApiError> {
    let now = app.clock.now();
    if !totp::is_enrolled(&app.store, &session.user, now).await? {
        return Ok(None);
    }
    let mut state = journeys::new_state(realm, Purpose::StepUp, Step::Totp, now);
    state.user = Some(session.user.clone());
    state.amr = session.amr.clone();
    state.remember_me = session.remember_me;
    state.upgrades = Some(session.id.clone());
    // A provider's user is in no users file: the session says who they are.
    if session.user.contains(':') {
        state.profile = Some(sessiond_core::journey::Profile {
            display_name: session.display_name.clone(),
            email: session.email.clone(),
            groups: session.groups.clone(),
        });
    }
    let auth_id = journeys::start(app, realm, state.clone()).await?;
    Ok(Some((auth_id, state)))
}

/// The profile a journey keeps for a user who is in no users file.
pub fn profile_of(user: &User) -> sessiond_core::journey::Profile {
    sessiond_core::journey::Profile {
        display_name: user.display_name.clone(),
        email: user.email.clone(),
        groups: user.groups.clone(),
    }
}

/// A step-up ends in a new session only while the session it upgrades is still the one
/// presented, and alive.
async fn check_upgraded_session(
    app: &App,
    ctx: &RequestContext,
    headers: &HeaderMap,
    journey: &Journey,
) -> Result<(), ApiError> {
    let realm = &ctx.realm;
    let presented = find_credential(app, headers, realm)?.map(|(credential, _)| credential);
    let live = match &presented {
        Some(credential) => sessions::verify(app, realm, credential, false, &ResponseCookies::default(), false)
            .await
            .ok()
            .filter(|s| Some(&s.id) == journey.state.upgrades.as_ref() && Some(&s.user) == journey.state.user.as_ref()),
        None => None,
    };
    if live.is_none() {
        journeys::end(app, journey).await?;
        return Err(ApiError::Unauthenticated("the session this second factor was for has ended; sign in again"));
    }
    Ok(())
}

/// Ends the session the request came with, if any, and creates a new one for `user` (its
/// cookie queued in `cookies`).
async fn open_session(
    app: &App,
    ctx: &RequestContext,
    headers: &HeaderMap,
    cookies: &ResponseCookies,
    user: &User,
    methods: Vec<String>,
    remember_me: bool,
) -> Result<(Credential, SessionRecord), ApiError> {
    let realm = &ctx.realm;
    // No fixation: whatever session the client came with ends here.
    if let Ok(Some((presented, _))) = find_credential(app, headers, realm) {
        if let Some(old) = sessions::end_presented(app, realm, &presented).await? {
            app.metrics.sessions_ended(EndKind::Logout, 1);
            info!(session_id = %old.id, "session replaced by a new login");
            app.audit(AuditKind::Logout, &AuditEvent { reason: Some("new_login"), ..AuditEvent::of_session(&old) });
        }
    }
    let new = NewSession {
        user,
        amr: methods,
        remember_me,
        ip: ctx.ip.clone(),
        user_agent: ctx.user_agent.clone(),
        attributes: BTreeMap::new(),
    };
    let (credential, record) = sessions::create(app, realm, new, app.clock.now(), cookies).await?;
    app.metrics.login(LoginProvider::of_user(&app.settings.providers, &record.user), LoginResult::Success);
    app.audit(
        AuditKind::LoginSucceeded,
        &AuditEvent { session_id: Some(record.id.as_str()), ..attempt(ctx, &record.user) },
    );
    if remember_me && !record.remember_me {
        warn!(realm = %realm.name(), "remember me asked for but turned off in this realm");
    }
    Ok((credential, record))
}
