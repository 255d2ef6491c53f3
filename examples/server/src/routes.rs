//! The router and the JSON handlers over the engine.
//!
//! Post ids are 64-bit and exceed what a JavaScript number holds exactly,
//! so they travel as strings; user ids are small and travel as numbers.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use starling::sms::Limited;
use starling::{
    Audience, Counts, Cursor, GroupId, MAX_PAGE_SIZE, Post, PostId, PostOptions, TimelinePage,
    User, UserId, UserPage,
};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::auth::{self, Session};
use crate::db::Engine;
use crate::direct;
use crate::error::{ApiError, JsonBody, PathParams, QueryParams};
use crate::export;
use crate::live;
use crate::metrics;
use crate::protect;
use crate::server::AppState;
use crate::social;
use crate::tags;
use crate::web;

/// Page size when a listing is asked for without `limit`.
const DEFAULT_LIMIT: usize = 20;

/// The whole HTTP surface: the API under `/api`, health and metrics, and
/// the web page.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/signup", post(auth::signup))
        .route("/login", post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/me", get(me).delete(auth::delete_me))
        .route("/users/by-name/{username}", get(user_by_name))
        .route("/users/{id}", get(user_by_id))
        .route("/users/{id}/counts", get(counts))
        .route("/users/{id}/followers", get(followers))
        .route("/users/{id}/following", get(following))
        .route(
            "/users/{id}/following/{target}",
            get(is_following).put(follow).delete(unfollow),
        )
        .route("/users/{id}/posts", get(author_timeline))
        .route("/posts", post(create_post))
        .route("/posts/{id}", get(get_post).delete(delete_post))
        .route("/home", get(home_timeline))
        .route("/home/events", get(home_events))
        .merge(social::routes())
        .merge(export::routes())
        .merge(protect::routes())
        .merge(direct::routes())
        .merge(tags::routes());

    Router::new()
        .route("/", get(web::index))
        .route("/app.js", get(web::script))
        .route("/app.css", get(web::style))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .nest("/api", api)
        .merge(direct::gateway_routes())
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(TraceLayer::new_for_http())
        .layer(DefaultBodyLimit::max(state.config().max_body_bytes))
        .layer(CatchPanicLayer::custom(
            |_panic: Box<dyn std::any::Any + Send>| {
                ApiError::internal(&"a handler panicked").into_response()
            },
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .with_state(state)
}

/// A post as the API shows it, with its author's name.
#[derive(Serialize)]
pub(crate) struct PostJson {
    #[serde(serialize_with = "as_string")]
    pub(crate) id: PostId,
    author: AuthorJson,
    text: String,
    created_at_ms: u64,
    /// The post it replies to.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_string")]
    reply_to: Option<PostId>,
    /// For a repost: the original (found in the page's `reposted`).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_string")]
    repost_of: Option<PostId>,
    /// For a group post: the group it was addressed to.
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<u64>,
    /// How many accounts like it (for a repost: its original, which a
    /// like of the repost is about).
    likes: u64,
    /// Whether the session's user likes it (for a repost: its original).
    liked: bool,
}

fn opt_string<S: serde::Serializer>(id: &Option<PostId>, s: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => s.collect_str(&id.0),
        None => s.serialize_none(),
    }
}

#[derive(Serialize)]
struct AuthorJson {
    id: u64,
    username: String,
}

fn as_string<S: serde::Serializer>(id: &PostId, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&id.0)
}

/// Posts with their authors' names (looked up once per author), their like
/// counts and whether `viewer` likes them.
pub(crate) fn hydrate(
    engine: &Engine,
    viewer: UserId,
    posts: Vec<Post>,
) -> Result<Vec<PostJson>, ApiError> {
    let mut names: HashMap<UserId, String> = HashMap::new();
    let mut out = Vec::with_capacity(posts.len());
    // A repost shows its original's count: one multi-get of the originals.
    let mut originals: Vec<PostId> = posts.iter().filter_map(|p| p.repost_of).collect();
    originals.sort_unstable();
    originals.dedup();
    let mut original_likes: HashMap<PostId, u64> = HashMap::new();
    for chunk in originals.chunks(MAX_PAGE_SIZE) {
        for p in engine.get_posts(chunk)?.into_iter().flatten() {
            original_likes.insert(p.id, p.likes);
        }
    }
    let mut liked = Vec::with_capacity(posts.len());
    for chunk in posts.chunks(MAX_PAGE_SIZE) {
        liked.extend(engine.liked_among(viewer, chunk)?);
    }
    for (post, liked) in posts.into_iter().zip(liked) {
        let username = match names.get(&post.author) {
            Some(name) => name.clone(),
            None => {
                let name = engine.user(post.author)?.name.as_str().to_owned();
                names.insert(post.author, name.clone());
                name
            }
        };
        out.push(PostJson {
            id: post.id,
            author: AuthorJson {
                id: post.author.0,
                username,
            },
            created_at_ms: post.id.unix_millis(),
            text: post.text,
            reply_to: post.reply_to,
            repost_of: post.repost_of,
            group: match post.audience {
                Audience::Public => None,
                Audience::Group(g) => Some(g.0),
            },
            likes: match post.repost_of {
                Some(original) => original_likes.get(&original).copied().unwrap_or(0),
                None => post.likes,
            },
            liked,
        });
    }
    Ok(out)
}

/// Runs `f` on the engine and hydrates the posts it returns for `viewer`.
pub(crate) async fn hydrate_posts<F>(
    state: &AppState,
    viewer: UserId,
    f: F,
) -> Result<Vec<PostJson>, ApiError>
where
    F: FnOnce(&Engine) -> Result<Vec<Post>, ApiError> + Send + 'static,
{
    state
        .db()
        .call(move |engine| {
            let posts = f(engine)?;
            hydrate(engine, viewer, posts)
        })
        .await
}

#[derive(Serialize)]
pub(crate) struct TimelineJson {
    posts: Vec<PostJson>,
    /// The originals of the reposts in `posts`.
    reposted: Vec<PostJson>,
    next: Option<String>,
}

impl TimelineJson {
    pub(crate) fn of(
        engine: &Engine,
        viewer: UserId,
        page: TimelinePage,
    ) -> Result<TimelineJson, ApiError> {
        Ok(TimelineJson {
            posts: hydrate(engine, viewer, page.posts)?,
            reposted: hydrate(engine, viewer, page.reposted)?,
            next: page.next.map(|c| c.to_string()),
        })
    }
}

/// A page of users: unlike the engine's `UserPage` (ids), whole users.
#[derive(Serialize)]
pub(crate) struct UsersJson {
    users: Vec<User>,
    next: Option<Cursor>,
}

/// `?cursor=...&limit=...` of every listing.
#[derive(Deserialize)]
pub(crate) struct PageQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

impl PageQuery {
    pub(crate) fn parse(self) -> Result<(Option<Cursor>, usize), ApiError> {
        let cursor = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(raw) => Some(raw.parse::<Cursor>()?),
        };
        Ok((cursor, self.limit.unwrap_or(DEFAULT_LIMIT)))
    }
}

/// A page of posts `f` reads, hydrated for `viewer`.
pub(crate) async fn timeline<F>(
    state: &AppState,
    viewer: UserId,
    query: PageQuery,
    f: F,
) -> Result<axum::Json<TimelineJson>, ApiError>
where
    F: FnOnce(&Engine, Option<&Cursor>, usize) -> starling::Result<TimelinePage> + Send + 'static,
{
    let (cursor, limit) = query.parse()?;
    state
        .db()
        .call(move |engine| {
            let page = f(engine, cursor.as_ref(), limit)?;
            Ok(axum::Json(TimelineJson::of(engine, viewer, page)?))
        })
        .await
}

pub(crate) async fn user_list<F>(
    state: &AppState,
    query: PageQuery,
    f: F,
) -> Result<axum::Json<UsersJson>, ApiError>
where
    F: FnOnce(&Engine, Option<&Cursor>, usize) -> starling::Result<UserPage> + Send + 'static,
{
    let (cursor, limit) = query.parse()?;
    state
        .db()
        .call(move |engine| {
            let page = f(engine, cursor.as_ref(), limit)?;
            let mut users = Vec::with_capacity(page.users.len());
            for id in page.users {
                users.push(engine.user(id)?);
            }
            Ok(axum::Json(UsersJson {
                users,
                next: page.next,
            }))
        })
        .await
}

/// Healthy means serving and able to write: a poisoned engine (an earlier
/// storage failure) or a shutdown in progress answers 503, so that a proxy
/// stops sending traffic here.
async fn healthz(State(state): State<AppState>) -> Result<axum::Json<serde_json::Value>, ApiError> {
    if state.is_shutting_down() {
        return Err(ApiError::unavailable());
    }
    let poisoned = state.db().call(|engine| Ok(engine.is_poisoned())).await?;
    if poisoned {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "poisoned",
            "the engine refuses writes after a storage failure; restart the server",
        ));
    }
    Ok(axum::Json(serde_json::json!({ "status": "ok" })))
}

async fn metrics_text(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let stats = state.db().call(|engine| Ok(engine.fanout_stats())).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics().render(&stats),
    ))
}

async fn me(
    State(state): State<AppState>,
    session: Session,
) -> Result<impl IntoResponse, ApiError> {
    let user = session.user;
    state
        .db()
        .call(move |engine| {
            let me = engine.user(user)?;
            let counts = engine.counts(user)?;
            Ok(axum::Json(serde_json::json!({
                "user": me,
                "counts": counts,
            })))
        })
        .await
}

async fn user_by_id(
    State(state): State<AppState>,
    _: Session,
    PathParams(id): PathParams<u64>,
) -> Result<axum::Json<User>, ApiError> {
    state
        .db()
        .call(move |engine| Ok(axum::Json(engine.user(UserId(id))?)))
        .await
}

async fn user_by_name(
    State(state): State<AppState>,
    _: Session,
    PathParams(name): PathParams<String>,
) -> Result<axum::Json<User>, ApiError> {
    state
        .db()
        .call(move |engine| Ok(axum::Json(engine.user_by_name(&name)?)))
        .await
}

async fn counts(
    State(state): State<AppState>,
    _: Session,
    PathParams(id): PathParams<u64>,
) -> Result<axum::Json<Counts>, ApiError> {
    state
        .db()
        .call(move |engine| Ok(axum::Json(engine.counts(UserId(id))?)))
        .await
}

async fn followers(
    State(state): State<AppState>,
    _: Session,
    PathParams(id): PathParams<u64>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<axum::Json<UsersJson>, ApiError> {
    user_list(&state, query, move |e, c, l| e.followers(UserId(id), c, l)).await
}

async fn following(
    State(state): State<AppState>,
    _: Session,
    PathParams(id): PathParams<u64>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<axum::Json<UsersJson>, ApiError> {
    user_list(&state, query, move |e, c, l| e.following(UserId(id), c, l)).await
}

#[derive(Serialize)]
struct EdgeJson {
    following: bool,
    /// A follow request waits for the (protected) account to approve it.
    requested: bool,
    changed: bool,
}

async fn is_following(
    State(state): State<AppState>,
    _: Session,
    PathParams((id, target)): PathParams<(u64, u64)>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    state
        .db()
        .call(move |engine| {
            let following = engine.is_following(UserId(id), UserId(target))?;
            Ok(axum::Json(serde_json::json!({ "following": following })))
        })
        .await
}

/// The session's user, when the path's `{id}` names them: only the owner
/// of a follow list (or its device settings) changes it. Otherwise 403
/// with `refusal`.
pub(crate) fn own(session: &Session, id: u64, refusal: &'static str) -> Result<UserId, ApiError> {
    if session.user == UserId(id) {
        Ok(session.user)
    } else {
        Err(ApiError::forbidden(refusal))
    }
}

const FOLLOWS_ARE_OWN: &str = "you can only change whom you follow yourself";

async fn follow(
    State(state): State<AppState>,
    session: Session,
    PathParams((id, target)): PathParams<(u64, u64)>,
) -> Result<axum::Json<EdgeJson>, ApiError> {
    let me = own(&session, id, FOLLOWS_ARE_OWN)?;
    state.limit(me, Limited::Follow)?;
    state
        .db()
        .call(move |engine| {
            // A protected account is asked instead of followed.
            match engine.follow(me, UserId(target)) {
                Ok(changed) => Ok(axum::Json(EdgeJson {
                    following: true,
                    requested: false,
                    changed,
                })),
                Err(starling::Error::Protected(_)) => {
                    let changed = engine.request_follow(me, UserId(target))?;
                    let following = engine.is_following(me, UserId(target))?;
                    Ok(axum::Json(EdgeJson {
                        following,
                        requested: !following,
                        changed,
                    }))
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
}

async fn unfollow(
    State(state): State<AppState>,
    session: Session,
    PathParams((id, target)): PathParams<(u64, u64)>,
) -> Result<axum::Json<EdgeJson>, ApiError> {
    let me = own(&session, id, FOLLOWS_ARE_OWN)?;
    state
        .db()
        .call(move |engine| {
            let changed = engine.unfollow(me, UserId(target))?;
            Ok(axum::Json(EdgeJson {
                following: false,
                requested: false,
                changed,
            }))
        })
        .await
}

async fn author_timeline(
    State(state): State<AppState>,
    session: Session,
    PathParams(id): PathParams<u64>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<axum::Json<TimelineJson>, ApiError> {
    let me = session.user;
    timeline(&state, me, query, move |e, c, l| {
        e.author_timeline_as(me, UserId(id), c, l)
    })
    .await
}

async fn home_timeline(
    State(state): State<AppState>,
    session: Session,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<axum::Json<TimelineJson>, ApiError> {
    let me = session.user;
    timeline(&state, me, query, move |e, c, l| e.home_timeline(me, c, l)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPost {
    text: String,
    /// The id of the post this replies to.
    reply_to: Option<String>,
    /// One of the author's groups to address it to.
    group: Option<u64>,
}

async fn create_post(
    State(state): State<AppState>,
    session: Session,
    JsonBody(body): JsonBody<NewPost>,
) -> Result<impl IntoResponse, ApiError> {
    let me = session.user;
    state.limit(me, Limited::Post)?;
    let options = PostOptions {
        reply_to: body.reply_to.as_deref().map(post_id).transpose()?,
        audience: body
            .group
            .map_or(Audience::Public, |g| Audience::Group(GroupId(g))),
    };
    let mut posts = hydrate_posts(&state, me, move |engine| {
        Ok(vec![engine.publish(me, &body.text, options)?])
    })
    .await?;
    let post = posts
        .pop()
        .ok_or_else(|| ApiError::internal(&"post vanished"))?;
    let location = format!("/api/posts/{}", post.id.0);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(post),
    ))
}

pub(crate) fn post_id(raw: &str) -> Result<PostId, ApiError> {
    raw.parse::<u64>()
        .ok()
        .filter(|&id| id > 0)
        .map(PostId)
        .ok_or_else(|| ApiError::bad_request("bad_path", "a post id is a positive integer"))
}

async fn get_post(
    State(state): State<AppState>,
    session: Session,
    PathParams(id): PathParams<String>,
) -> Result<axum::Json<PostJson>, ApiError> {
    let id = post_id(&id)?;
    let me = session.user;
    let mut posts = hydrate_posts(&state, me, move |engine| {
        Ok(vec![engine.get_post_as(me, id)?])
    })
    .await?;
    posts
        .pop()
        .map(axum::Json)
        .ok_or_else(|| ApiError::internal(&"post vanished"))
}

async fn delete_post(
    State(state): State<AppState>,
    session: Session,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    let id = post_id(&id)?;
    let me = session.user;
    let deleted = state
        .db()
        .call(move |engine| Ok(engine.delete_post(me, id)?))
        .await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(starling::Error::PostDeleted(id).into())
    }
}

#[derive(Deserialize)]
struct EventsQuery {
    since: Option<String>,
}

async fn home_events(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    QueryParams(query): QueryParams<EventsQuery>,
) -> Result<Response, ApiError> {
    let last_event = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let since = match last_event.or(query.since).as_deref() {
        None | Some("") => None,
        Some(raw) => Some(post_id(raw).map_err(|_| {
            ApiError::bad_request("bad_query", "since and Last-Event-ID are post ids")
        })?),
    };
    let sse = live::home_events(state, session.user, session.token, since).await?;
    // Proxies must not buffer the stream.
    Ok(([("x-accel-buffering", "no")], sse).into_response())
}
