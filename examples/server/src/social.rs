//! Routes for reposts, threads, mentions, groups, blocks, mutes, friends
//! and suggestions, and the engine's real-time events as server-sent events.
//!
//! Every route acts as the session's user: the engine decides what that
//! user may see (a group post reaches only its audience on every path).

use std::convert::Infallible;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::{get, post, put};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use starling::sms::Limited;
use starling::{Event, Group, GroupId, PostId, UserId};

use crate::auth::Session;
use crate::error::{ApiError, JsonBody, PathParams, QueryParams};
use crate::live;
use crate::routes::{
    PageQuery, PostJson, TimelineJson, UsersJson, hydrate, hydrate_posts, post_id, timeline,
    user_list,
};
use crate::server::AppState;

/// The routes of this module, relative to `/api`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/posts/{id}/repost", post(repost))
        .route("/posts/{id}/like", put(like).delete(unlike))
        .route("/posts/{id}/likes", get(likers))
        .route("/users/{id}/likes", get(liked_posts))
        .route("/posts/{id}/thread", get(thread))
        .route("/mentions", get(mentions))
        .route("/groups", get(list_groups).post(create_group))
        .route("/groups/{id}", get(get_group).delete(delete_group))
        .route("/groups/{id}/members", get(group_members))
        .route(
            "/groups/{id}/members/{user}",
            put(add_member).delete(remove_member),
        )
        .route("/blocks", get(blocks))
        .route("/blocks/{user}", put(block).delete(unblock))
        .route("/mutes", get(mutes))
        .route("/mutes/{user}", put(mute).delete(unmute))
        .route("/users/{id}/friends", get(friends))
        .route("/suggestions", get(suggestions))
        .route("/events", get(events))
}

async fn repost(
    State(state): State<AppState>,
    session: Session,
    PathParams(id): PathParams<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = post_id(&id)?;
    let me = session.user;
    state.limit(me, Limited::Post)?;
    let mut posts =
        hydrate_posts(&state, me, move |engine| Ok(vec![engine.repost(me, id)?])).await?;
    let post = posts
        .pop()
        .ok_or_else(|| ApiError::internal(&"repost vanished"))?;
    Ok((StatusCode::CREATED, axum::Json(post)))
}

#[derive(Serialize)]
struct ThreadJson {
    post: PostJson,
    ancestors: Vec<PostJson>,
    replies: TimelineJson,
}

async fn thread(
    State(state): State<AppState>,
    session: Session,
    PathParams(id): PathParams<String>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<axum::Json<ThreadJson>, ApiError> {
    let id = post_id(&id)?;
    let me = session.user;
    let (cursor, limit) = query.parse()?;
    state
        .db()
        .call(move |engine| {
            let t = engine.thread(me, id, cursor.as_ref(), limit)?;
            let mut post = hydrate(engine, me, vec![t.post])?;
            Ok(axum::Json(ThreadJson {
                post: post
                    .pop()
                    .ok_or_else(|| ApiError::internal(&"post vanished"))?,
                ancestors: hydrate(engine, me, t.ancestors)?,
                replies: TimelineJson::of(engine, me, t.replies)?,
            }))
        })
        .await
}

async fn mentions(
    State(state): State<AppState>,
    session: Session,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<axum::Json<TimelineJson>, ApiError> {
    let me = session.user;
    timeline(&state, me, query, move |e, c, l| e.mentions(me, c, l)).await
}

/// A like or unlike: whether the session's user now likes the post,
/// whether that changed, and the post's count when they may still see it
/// (a like taken back from a deleted post has none).
#[derive(Serialize)]
struct LikeJson {
    liked: bool,
    changed: bool,
    likes: Option<u64>,
}

/// The count of `id` (its original, for a repost) as `me` may read it.
fn like_count(engine: &crate::db::Engine, me: UserId, id: PostId) -> Option<u64> {
    let post = engine.get_post_as(me, id).ok()?;
    match post.repost_of {
        Some(original) => engine.get_post_as(me, original).ok().map(|o| o.likes),
        None => Some(post.likes),
    }
}

async fn like(
    State(state): State<AppState>,
    session: Session,
    PathParams(id): PathParams<String>,
) -> Result<axum::Json<LikeJson>, ApiError> {
    let id = post_id(&id)?;
    let me = session.user;
    state
        .db()
        .call(move |engine| {
            let changed = engine.like(me, id)?;
            Ok(axum::Json(LikeJson {
                liked: true,
                changed,
                likes: like_count(engine, me, id),
            }))
        })
        .await
}

async fn unlike(
    State(state): State<AppState>,
    session: Session,
    PathParams(id): PathParams<String>,
) -> Result<axum::Json<LikeJson>, ApiError> {
    let id = post_id(&id)?;
    let me = session.user;
    state
        .db()
        .call(move |engine| {
            let changed = engine.unlike(me, id)?;
            Ok(axum::Json(LikeJson {
                liked: false,
                changed,
                likes: like_count(engine, me, id),
            }))
        })
        .await
}

async fn likers(
    State(state): State<AppState>,
    session: Session,
    PathParams(id): PathParams<String>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<axum::Json<UsersJson>, ApiError> {
    let id = post_id(&id)?;
    let me = session.user;
    user_list(&state, query, move |e, c, l| e.likers(me, id, c, l)).await
}

async fn liked_posts(
    State(state): State<AppState>,
    session: Session,
    PathParams(id): PathParams<u64>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<axum::Json<TimelineJson>, ApiError> {
    let me = session.user;
    timeline(&state, me, query, move |e, c, l| {
        e.liked_posts(me, UserId(id), c, l)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewGroup {
    name: String,
}

async fn create_group(
    State(state): State<AppState>,
    session: Session,
    JsonBody(body): JsonBody<NewGroup>,
) -> Result<impl IntoResponse, ApiError> {
    let me = session.user;
    let group = state
        .db()
        .call(move |engine| Ok(engine.create_group(me, &body.name)?))
        .await?;
    Ok((StatusCode::CREATED, axum::Json(group)))
}

async fn list_groups(
    State(state): State<AppState>,
    session: Session,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let me = session.user;
    state
        .db()
        .call(move |engine| {
            let groups: Vec<Group> = engine.groups(me)?;
            Ok(axum::Json(serde_json::json!({ "groups": groups })))
        })
        .await
}

async fn get_group(
    State(state): State<AppState>,
    session: Session,
    PathParams(id): PathParams<u64>,
) -> Result<axum::Json<Group>, ApiError> {
    let me = session.user;
    state
        .db()
        .call(move |engine| Ok(axum::Json(engine.group(me, GroupId(id))?)))
        .await
}

async fn delete_group(
    State(state): State<AppState>,
    session: Session,
    PathParams(id): PathParams<u64>,
) -> Result<StatusCode, ApiError> {
    let me = session.user;
    state
        .db()
        .call(move |engine| Ok(engine.delete_group(me, GroupId(id))?))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn group_members(
    State(state): State<AppState>,
    session: Session,
    PathParams(id): PathParams<u64>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<axum::Json<UsersJson>, ApiError> {
    let me = session.user;
    user_list(&state, query, move |e, c, l| {
        e.group_members(me, GroupId(id), c, l)
    })
    .await
}

/// Whether a change changed anything.
#[derive(Serialize)]
pub(crate) struct ChangedJson {
    changed: bool,
}

/// Runs a change that reports whether it changed anything.
pub(crate) async fn change<F>(state: &AppState, f: F) -> Result<axum::Json<ChangedJson>, ApiError>
where
    F: FnOnce(&crate::db::Engine) -> starling::Result<bool> + Send + 'static,
{
    state
        .db()
        .call(move |engine| {
            Ok(axum::Json(ChangedJson {
                changed: f(engine)?,
            }))
        })
        .await
}

async fn add_member(
    State(state): State<AppState>,
    session: Session,
    PathParams((id, user)): PathParams<(u64, u64)>,
) -> Result<axum::Json<ChangedJson>, ApiError> {
    let me = session.user;
    change(&state, move |e| e.add_member(me, GroupId(id), UserId(user))).await
}

async fn remove_member(
    State(state): State<AppState>,
    session: Session,
    PathParams((id, user)): PathParams<(u64, u64)>,
) -> Result<axum::Json<ChangedJson>, ApiError> {
    let me = session.user;
    change(&state, move |e| {
        e.remove_member(me, GroupId(id), UserId(user))
    })
    .await
}

async fn blocks(
    State(state): State<AppState>,
    session: Session,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<axum::Json<UsersJson>, ApiError> {
    let me = session.user;
    user_list(&state, query, move |e, c, l| e.blocks(me, c, l)).await
}

async fn block(
    State(state): State<AppState>,
    session: Session,
    PathParams(user): PathParams<u64>,
) -> Result<axum::Json<ChangedJson>, ApiError> {
    let me = session.user;
    change(&state, move |e| e.block(me, UserId(user))).await
}

async fn unblock(
    State(state): State<AppState>,
    session: Session,
    PathParams(user): PathParams<u64>,
) -> Result<axum::Json<ChangedJson>, ApiError> {
    let me = session.user;
    change(&state, move |e| e.unblock(me, UserId(user))).await
}

async fn mutes(
    State(state): State<AppState>,
    session: Session,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<axum::Json<UsersJson>, ApiError> {
    let me = session.user;
    user_list(&state, query, move |e, c, l| e.mutes(me, c, l)).await
}

async fn mute(
    State(state): State<AppState>,
    session: Session,
    PathParams(user): PathParams<u64>,
) -> Result<axum::Json<ChangedJson>, ApiError> {
    let me = session.user;
    change(&state, move |e| e.mute(me, UserId(user))).await
}

async fn unmute(
    State(state): State<AppState>,
    session: Session,
    PathParams(user): PathParams<u64>,
) -> Result<axum::Json<ChangedJson>, ApiError> {
    let me = session.user;
    change(&state, move |e| e.unmute(me, UserId(user))).await
}

async fn friends(
    State(state): State<AppState>,
    _: Session,
    PathParams(id): PathParams<u64>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<axum::Json<UsersJson>, ApiError> {
    user_list(&state, query, move |e, c, l| e.friends(UserId(id), c, l)).await
}

#[derive(Deserialize)]
struct LimitQuery {
    limit: Option<usize>,
}

#[derive(Serialize)]
struct SuggestionJson {
    id: u64,
    username: String,
    followed_by: u32,
}

async fn suggestions(
    State(state): State<AppState>,
    session: Session,
    QueryParams(query): QueryParams<LimitQuery>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let me = session.user;
    let limit = query.limit.unwrap_or(10);
    state
        .db()
        .call(move |engine| {
            let mut out = Vec::new();
            for s in engine.suggestions(me, limit)? {
                out.push(SuggestionJson {
                    id: s.user.0,
                    username: engine.user(s.user)?.name.as_str().to_owned(),
                    followed_by: s.followed_by,
                });
            }
            Ok(axum::Json(serde_json::json!({ "suggestions": out })))
        })
        .await
}

/// The session user's real-time events, as the engine reports them:
/// `timeline` (data `{"post": "<id>"}`), `retract`, `mention`, `device`
/// (queued for the phone), `message` (`{"from", "message"}`), and
/// `lagged` when events were dropped because this client fell behind (it
/// should re-read its timeline). The stream ends at shutdown, and when the
/// account is deleted.
///
/// The engine's subscription is the stream itself: each event is taken
/// from its queue when the connection can take it (a client that falls
/// behind sees `lagged`), and no thread waits on it.
async fn events(
    State(state): State<AppState>,
    session: Session,
) -> Result<impl IntoResponse, ApiError> {
    let me = session.user;
    let subscription = live::subscribe(&state, me).await?;
    let mut shutdown = state.shutdown_signal();
    let shutdown = async move {
        let _ = shutdown.wait_for(|b| *b).await;
    };
    let stream = subscription.take_until(shutdown).map(|event| {
        let post = |p: starling::PostId| serde_json::json!({ "post": p.0.to_string() });
        let (name, data) = match event {
            Event::TimelineAdded { post: p } => ("timeline", post(p)),
            Event::TimelineRetracted { post: p } => ("retract", post(p)),
            Event::Mention { post: p } => ("mention", post(p)),
            Event::DeviceDelivery { post: p } => ("device", post(p)),
            Event::DirectMessage { from, message } => (
                "message",
                serde_json::json!({ "from": from.0, "message": message.0.to_string() }),
            ),
            Event::FollowRequest { from } => {
                ("follow_request", serde_json::json!({ "from": from.0 }))
            }
            Event::Lagged => ("lagged", serde_json::json!({})),
            _ => ("other", serde_json::json!({})),
        };
        Ok::<_, Infallible>(SseEvent::default().event(name).data(data.to_string()))
    });
    Ok((
        [("x-accel-buffering", "no")],
        Sse::new(stream).keep_alive(KeepAlive::default()),
    ))
}
