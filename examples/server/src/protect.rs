//! Routes for protected accounts and follow requests.
//!
//! `PUT /api/me/protected` protects the session's account (its posts reach
//! approved followers only; existing followers stay), `DELETE` makes it
//! public again (pending requests are approved), `GET` says which it is.
//! Following a protected account (`PUT /api/users/{id}/following/{target}`)
//! sends a request; the account lists (`GET /api/follow-requests`),
//! approves (`POST /api/follow-requests/{user}/approve`) or denies
//! (`POST /api/follow-requests/{user}/deny`) them; the requester lists
//! theirs (`GET /api/follow-requests/sent`) and withdraws one
//! (`DELETE /api/follow-requests/sent/{user}`).

use axum::Router;
use axum::extract::State;
use axum::routing::{delete, get, post};
use serde::Serialize;
use starling::UserId;

use crate::auth::Session;
use crate::db::Engine;
use crate::error::{ApiError, PathParams, QueryParams};
use crate::routes::{PageQuery, UsersJson, user_list};
use crate::server::AppState;
use crate::social::{ChangedJson, change};

/// The routes of this module, relative to `/api`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/me/protected",
            get(is_protected).put(protect).delete(unprotect),
        )
        .route("/follow-requests", get(requests))
        .route("/follow-requests/sent", get(sent))
        .route("/follow-requests/sent/{user}", delete(cancel))
        .route("/follow-requests/{user}/approve", post(approve))
        .route("/follow-requests/{user}/deny", post(deny))
}

#[derive(Serialize)]
struct ProtectedJson {
    protected: bool,
}

async fn is_protected(
    State(state): State<AppState>,
    session: Session,
) -> Result<axum::Json<ProtectedJson>, ApiError> {
    let me = session.user;
    state
        .db()
        .call(move |engine| {
            Ok(axum::Json(ProtectedJson {
                protected: engine.is_protected(me)?,
            }))
        })
        .await
}

async fn protect(
    State(state): State<AppState>,
    session: Session,
) -> Result<axum::Json<ChangedJson>, ApiError> {
    let me = session.user;
    change(&state, move |e| e.protect(me)).await
}

async fn unprotect(
    State(state): State<AppState>,
    session: Session,
) -> Result<axum::Json<ChangedJson>, ApiError> {
    let me = session.user;
    change(&state, move |e| e.unprotect(me)).await
}

async fn requests(
    State(state): State<AppState>,
    session: Session,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<axum::Json<UsersJson>, ApiError> {
    let me = session.user;
    user_list(&state, query, move |e, c, l| e.follow_requests(me, c, l)).await
}

async fn sent(
    State(state): State<AppState>,
    session: Session,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<axum::Json<UsersJson>, ApiError> {
    let me = session.user;
    user_list(&state, query, move |e, c, l| {
        e.sent_follow_requests(me, c, l)
    })
    .await
}

async fn approve(
    State(state): State<AppState>,
    session: Session,
    PathParams(user): PathParams<u64>,
) -> Result<axum::Json<ChangedJson>, ApiError> {
    answer(&state, session, user, Engine::approve_follow_request).await
}

async fn deny(
    State(state): State<AppState>,
    session: Session,
    PathParams(user): PathParams<u64>,
) -> Result<axum::Json<ChangedJson>, ApiError> {
    answer(&state, session, user, Engine::deny_follow_request).await
}

async fn cancel(
    State(state): State<AppState>,
    session: Session,
    PathParams(user): PathParams<u64>,
) -> Result<axum::Json<ChangedJson>, ApiError> {
    answer(&state, session, user, Engine::cancel_follow_request).await
}

/// Approves, denies or withdraws the request between the session's account
/// and `user` (`act` takes the session's account first); a request that is
/// not there is the engine's `UnknownFollowRequest`.
async fn answer(
    state: &AppState,
    session: Session,
    user: u64,
    act: fn(&Engine, UserId, UserId) -> starling::Result<()>,
) -> Result<axum::Json<ChangedJson>, ApiError> {
    let me = session.user;
    change(state, move |e| act(e, me, UserId(user)).map(|()| true)).await
}
