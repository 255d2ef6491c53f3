//! Sign-up, log-in, log-out, and the bearer-token check every other
//! `/api` route goes through.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use starling::{User, UserId};

use crate::accounts::{self, Issued, PASSWORD_CHARS, TokenKey};
use crate::error::{ApiError, JsonBody};
use crate::server::AppState;

/// The logged-in caller: every handler that takes this acts as `user` and
/// no one else.
pub(crate) struct Session {
    pub(crate) user: UserId,
    pub(crate) token: TokenKey,
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Session, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_token",
                "log in and send Authorization: Bearer <token>",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 128);
        let invalid = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the token is unknown, expired or logged out",
            )
        };
        let key = TokenKey::of(token.ok_or_else(invalid)?);
        let user = state.accounts().session(&key).ok_or_else(invalid)?;
        Ok(Session { user, token: key })
    }
}

#[derive(Deserialize)]
pub(crate) struct Credentials {
    username: String,
    password: String,
}

#[derive(Serialize)]
struct SessionJson {
    user: User,
    token: String,
    expires_at_ms: u64,
}

fn session_json(user: User, issued: Issued) -> SessionJson {
    SessionJson {
        user,
        token: issued.token,
        expires_at_ms: issued.expires_at_ms,
    }
}

fn check_password(password: &str) -> Result<(), ApiError> {
    let chars = password.chars().count();
    if PASSWORD_CHARS.contains(&chars) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_password",
            format!(
                "a password has {} to {} characters",
                PASSWORD_CHARS.start(),
                PASSWORD_CHARS.end()
            ),
        ))
    }
}

/// Hashes on a blocking thread, at most as many at once as there are cores.
async fn hash(state: &AppState, password: String) -> Result<String, ApiError> {
    let _permit = state
        .hashing()
        .acquire()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    tokio::task::spawn_blocking(move || accounts::hash_password(&password))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::internal(&e))
}

/// `POST /api/signup`: creates the account and logs it in.
pub(crate) async fn signup(
    State(state): State<AppState>,
    JsonBody(creds): JsonBody<Credentials>,
) -> Result<impl IntoResponse, ApiError> {
    check_password(&creds.password)?;
    // Cheap checks first, so that a bad or taken name costs no hashing.
    let name = creds.username.clone();
    let existing = state
        .db()
        .call(move |engine| match engine.user_by_name(&name) {
            Ok(user) => Ok(Some(user.id)),
            // A deleted account's name: creating the user below says
            // whether it is still reserved.
            Err(starling::Error::UnknownUsername(_) | starling::Error::AccountDeleted(_)) => {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        })
        .await?;
    if existing.is_some_and(|id| state.accounts().has_password(id)) {
        return Err(starling::Error::UsernameTaken(creds.username).into());
    }
    let hash = hash(&state, creds.password).await?;

    let _serial = state.signups().lock().await;
    let name = creds.username.clone();
    let user = state
        .db()
        .call(move |engine| match engine.create_user(&name) {
            Err(starling::Error::UsernameTaken(_)) => Ok(engine.user_by_name(&name)?),
            other => Ok(other?),
        })
        .await?;
    let accounts = state.accounts().clone();
    let user_id = user.id;
    let issued = tokio::task::spawn_blocking(move || {
        // An account without a password is one whose sign-up crashed
        // between the two steps; it is claimed by the next sign-up.
        if accounts.has_password(user_id) {
            return Ok(None);
        }
        accounts.set_password(user_id, hash)?;
        accounts.issue_token(user_id).map(Some)
    })
    .await
    .map_err(|e| ApiError::internal(&e))?
    .map_err(|e| ApiError::internal(&e))?;
    let Some(issued) = issued else {
        return Err(starling::Error::UsernameTaken(creds.username).into());
    };
    tracing::info!(user = user.id.0, "signed up");
    Ok((StatusCode::CREATED, axum::Json(session_json(user, issued))))
}

/// `POST /api/login`: a new bearer token for the right password.
pub(crate) async fn login(
    State(state): State<AppState>,
    JsonBody(creds): JsonBody<Credentials>,
) -> Result<impl IntoResponse, ApiError> {
    let refused = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "wrong username or password",
        )
    };
    if creds.username.len() > 64 || creds.password.len() > 1024 {
        return Err(refused());
    }
    state
        .login_limits()
        .take(creds.username.to_ascii_lowercase())
        .map_err(|wait| ApiError::rate_limited("rate_limited", wait))?;
    let name = creds.username.clone();
    let user = state
        .db()
        .call(move |engine| match engine.user_by_name(&name) {
            Ok(user) => Ok(Some(user)),
            Err(
                starling::Error::UnknownUsername(_)
                | starling::Error::InvalidUsername(_)
                | starling::Error::AccountDeleted(_),
            ) => Ok(None),
            Err(e) => Err(e.into()),
        })
        .await?
        .ok_or_else(refused)?;
    let _permit = state
        .hashing()
        .acquire()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let accounts = state.accounts().clone();
    let user_id = user.id;
    let issued = tokio::task::spawn_blocking(move || {
        if !accounts.verify_password(user_id, &creds.password) {
            return Ok(None);
        }
        accounts.issue_token(user_id).map(Some)
    })
    .await
    .map_err(|e| ApiError::internal(&e))?
    .map_err(|e| ApiError::internal(&e))?
    .ok_or_else(refused)?;
    Ok(axum::Json(session_json(user, issued)))
}

/// `POST /api/logout`: ends the session whose token was sent.
pub(crate) async fn logout(
    State(state): State<AppState>,
    session: Session,
) -> Result<StatusCode, ApiError> {
    let accounts = state.accounts().clone();
    tokio::task::spawn_blocking(move || accounts.revoke(&session.token))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::internal(&e))?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub(crate) struct Confirm {
    password: String,
}

/// `DELETE /api/me`: deletes the caller's account, for its password.
///
/// The engine's deletion runs first: it marks the account gone before
/// anything else and is finished by calling it again, so a crash part way
/// leaves an account that reads as deleted. The server's own record (the
/// password and every session, one durable record) goes last; until then
/// the token and password still work, and a retry of this request
/// finishes the engine's deletion if needed (an account the engine has
/// deleted already counts as done) and then the server's side.
pub(crate) async fn delete_me(
    State(state): State<AppState>,
    session: Session,
    JsonBody(confirm): JsonBody<Confirm>,
) -> Result<StatusCode, ApiError> {
    let wrong = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_password",
            "the password is not this account's",
        )
    };
    if confirm.password.len() > 1024 {
        return Err(wrong());
    }
    let me = session.user;
    // Guessing passwords here costs from the same budget as logging in.
    let name = state
        .db()
        .call(move |engine| Ok(engine.user_record(me)?.name))
        .await?;
    state
        .login_limits()
        .take(name.as_str().to_ascii_lowercase())
        .map_err(|wait| ApiError::rate_limited("rate_limited", wait))?;
    let verified = {
        let _permit = state
            .hashing()
            .acquire()
            .await
            .map_err(|e| ApiError::internal(&e))?;
        let accounts = state.accounts().clone();
        tokio::task::spawn_blocking(move || accounts.verify_password(me, &confirm.password))
            .await
            .map_err(|e| ApiError::internal(&e))?
    };
    if !verified {
        return Err(wrong());
    }
    state
        .db()
        .call(move |engine| match engine.delete_account(me) {
            // Deleted by an earlier attempt that stopped before the
            // server's side: finish that.
            Ok(()) | Err(starling::Error::AccountDeleted(_)) => Ok(()),
            Err(e) => Err(e.into()),
        })
        .await?;
    let accounts = state.accounts().clone();
    tokio::task::spawn_blocking(move || accounts.forget(me))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::internal(&e))?;
    tracing::info!(user = me.0, "account deleted");
    Ok(StatusCode::NO_CONTENT)
}
