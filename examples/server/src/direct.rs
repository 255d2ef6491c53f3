//! Routes for profiles and avatars, settings, phones, device updates,
//! direct messages, and the inbound half of the text gateway.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use starling::sms::Limited;
use starling::{
    AVATAR_MAX_BYTES, DirectMessage, DmPolicy, PhoneLink, QuietHours, Toggle, User, UserId,
};

use crate::auth::Session;
use crate::db::Engine;
use crate::error::{ApiError, JsonBody, PathParams, QueryParams};
use crate::routes::{PageQuery, own};
use crate::server::AppState;
use crate::social::{ChangedJson, change};

/// The routes of this module under `/api`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/users/{id}/profile", get(profile))
        .route("/users/{id}/avatar", get(avatar))
        .route("/me/profile", put(set_profile))
        .route("/me/settings", get(settings).put(set_settings))
        .route(
            "/me/avatar",
            put(set_avatar)
                .delete(remove_avatar)
                // Room for the largest accepted picture; the engine refuses
                // anything over it.
                .layer(DefaultBodyLimit::max(AVATAR_MAX_BYTES + 1)),
        )
        .route("/me/phone", put(link_phone).delete(unlink_phone))
        .route("/me/phone/confirm", post(confirm_phone))
        .route(
            "/me/quiet-hours",
            put(set_quiet_hours).delete(clear_quiet_hours),
        )
        .route("/me/device-usage", get(device_usage))
        .route(
            "/users/{id}/following/{target}/device",
            get(device).put(device_on).delete(device_off),
        )
        .route("/me/device-updates", get(device_follows))
        .route("/conversations", get(conversations))
        .route("/messages/{user}", get(messages).post(send_message))
        .route("/messages/{user}/read", post(mark_read))
}

/// The gateway's route, outside `/api`: it authenticates with the shared
/// secret, not a user's token.
pub(crate) fn gateway_routes() -> Router<AppState> {
    Router::new().route("/sms/inbound", post(sms_inbound))
}

#[derive(Serialize)]
struct ProfileJson {
    user: User,
    display_name: String,
    bio: String,
    has_avatar: bool,
}

async fn profile(
    State(state): State<AppState>,
    _: Session,
    PathParams(id): PathParams<u64>,
) -> Result<axum::Json<ProfileJson>, ApiError> {
    state
        .db()
        .call(move |engine| Ok(axum::Json(profile_json(engine, UserId(id))?)))
        .await
}

fn profile_json(engine: &Engine, user: UserId) -> Result<ProfileJson, ApiError> {
    let u = engine.user(user)?;
    let p = engine.profile(user)?;
    Ok(ProfileJson {
        user: u,
        display_name: p.display_name,
        bio: p.bio,
        has_avatar: engine.avatar(user)?.is_some(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileBody {
    display_name: String,
    bio: String,
}

async fn set_profile(
    State(state): State<AppState>,
    session: Session,
    JsonBody(body): JsonBody<ProfileBody>,
) -> Result<axum::Json<ProfileJson>, ApiError> {
    let me = session.user;
    state
        .db()
        .call(move |engine| {
            engine.set_profile(me, &body.display_name, &body.bio)?;
            Ok(axum::Json(profile_json(engine, me)?))
        })
        .await
}

#[derive(Serialize)]
struct SettingsJson {
    dms_open: bool,
    device_paused: bool,
    /// The confirmed phone.
    phone: Option<String>,
    /// A phone waiting for its code.
    pending_phone: Option<PendingPhoneJson>,
    /// Hours during which texts wait.
    quiet_hours: Option<QuietHours>,
}

#[derive(Serialize)]
struct PendingPhoneJson {
    phone: String,
    expires_ms: u64,
    attempts_left: u8,
}

fn settings_json(engine: &Engine, user: UserId) -> Result<SettingsJson, ApiError> {
    let p = engine.profile(user)?;
    Ok(SettingsJson {
        dms_open: p.dms_open,
        device_paused: p.device_paused,
        phone: engine.phone(user)?.map(|p| p.as_str().to_owned()),
        pending_phone: engine.pending_phone(user)?.map(|p| PendingPhoneJson {
            phone: p.phone.as_str().to_owned(),
            expires_ms: p.expires_ms,
            attempts_left: p.attempts_left,
        }),
        quiet_hours: p.quiet_hours,
    })
}

async fn settings(
    State(state): State<AppState>,
    session: Session,
) -> Result<axum::Json<SettingsJson>, ApiError> {
    let me = session.user;
    state
        .db()
        .call(move |engine| Ok(axum::Json(settings_json(engine, me)?)))
        .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    dms_open: Option<bool>,
    device_paused: Option<bool>,
}

async fn set_settings(
    State(state): State<AppState>,
    session: Session,
    JsonBody(body): JsonBody<SettingsBody>,
) -> Result<axum::Json<SettingsJson>, ApiError> {
    let me = session.user;
    state
        .db()
        .call(move |engine| {
            match body.dms_open {
                Some(true) => drop(engine.set_dm_policy(me, DmPolicy::Open)?),
                Some(false) => drop(engine.set_dm_policy(me, DmPolicy::FollowedOnly)?),
                None => {}
            }
            match body.device_paused {
                Some(true) => drop(engine.pause_device_updates(me)?),
                Some(false) => drop(engine.resume_device_updates(me)?),
                None => {}
            }
            Ok(axum::Json(settings_json(engine, me)?))
        })
        .await
}

/// How a browser may keep an avatar: in its own cache only (the route takes
/// a token), asking again each time it shows it; the `ETag` makes the
/// question cheap (`304 Not Modified`, no body) while the picture is the same.
const AVATAR_CACHE: &str = "private, no-cache";

async fn avatar(
    State(state): State<AppState>,
    _: Session,
    PathParams(id): PathParams<u64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let found = state
        .db()
        .call(move |engine| Ok(engine.avatar(UserId(id))?))
        .await?;
    let (kind, bytes) = found.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_avatar",
            "this user has no avatar",
        )
    })?;
    let etag = format!("\"{:x}\"", Sha256::digest(&bytes));
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*")
        });
    if cached {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, etag),
                (header::CACHE_CONTROL, AVATAR_CACHE.to_owned()),
            ],
        )
            .into_response());
    }
    Ok((
        [
            (header::CONTENT_TYPE, kind.mime().to_owned()),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, AVATAR_CACHE.to_owned()),
        ],
        // Shared with the engine's read: the body takes it without a copy.
        bytes,
    )
        .into_response())
}

async fn set_avatar(
    State(state): State<AppState>,
    session: Session,
    body: Bytes,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let me = session.user;
    state
        .db()
        .call(move |engine| {
            let kind = engine.set_avatar(me, &body)?;
            Ok(axum::Json(
                serde_json::json!({ "content_type": kind.mime(), "bytes": body.len() }),
            ))
        })
        .await
}

async fn remove_avatar(
    State(state): State<AppState>,
    session: Session,
) -> Result<axum::Json<ChangedJson>, ApiError> {
    let me = session.user;
    change(&state, move |e| e.remove_avatar(me)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneBody {
    phone: String,
}

/// Asks to link a phone: `202` with the settings (the number under
/// `pending_phone`) once a code is queued for it, `200` when the number was
/// yours already.
async fn link_phone(
    State(state): State<AppState>,
    session: Session,
    JsonBody(body): JsonBody<PhoneBody>,
) -> Result<(StatusCode, axum::Json<SettingsJson>), ApiError> {
    let me = session.user;
    state
        .db()
        .call(move |engine| {
            let status = match engine.link_phone(me, &body.phone)? {
                PhoneLink::CodeSent { .. } => StatusCode::ACCEPTED,
                PhoneLink::Linked { .. } => StatusCode::OK,
            };
            Ok((status, axum::Json(settings_json(engine, me)?)))
        })
        .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuietBody {
    start_hour: u8,
    end_hour: u8,
    utc_offset_minutes: i16,
}

/// Sets the hours during which texts to the caller wait in the outbox.
async fn set_quiet_hours(
    State(state): State<AppState>,
    session: Session,
    JsonBody(body): JsonBody<QuietBody>,
) -> Result<axum::Json<SettingsJson>, ApiError> {
    let me = session.user;
    state
        .db()
        .call(move |engine| {
            let hours = QuietHours::new(body.start_hour, body.end_hour, body.utc_offset_minutes)?;
            engine.set_quiet_hours(me, Some(hours))?;
            Ok(axum::Json(settings_json(engine, me)?))
        })
        .await
}

/// Clears the caller's quiet hours.
async fn clear_quiet_hours(
    State(state): State<AppState>,
    session: Session,
) -> Result<axum::Json<SettingsJson>, ApiError> {
    let me = session.user;
    state
        .db()
        .call(move |engine| {
            engine.set_quiet_hours(me, None)?;
            Ok(axum::Json(settings_json(engine, me)?))
        })
        .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    code: String,
}

/// Confirms the pending phone with the code texted to it.
async fn confirm_phone(
    State(state): State<AppState>,
    session: Session,
    JsonBody(body): JsonBody<CodeBody>,
) -> Result<axum::Json<SettingsJson>, ApiError> {
    let me = session.user;
    state
        .db()
        .call(move |engine| {
            engine.confirm_phone(me, &body.code)?;
            Ok(axum::Json(settings_json(engine, me)?))
        })
        .await
}

async fn unlink_phone(
    State(state): State<AppState>,
    session: Session,
) -> Result<axum::Json<ChangedJson>, ApiError> {
    let me = session.user;
    change(&state, move |e| e.unlink_phone(me)).await
}

#[derive(Deserialize)]
struct DayQuery {
    /// Days since the Unix epoch (UTC); today when absent.
    day: Option<u32>,
}

async fn device_usage(
    State(state): State<AppState>,
    session: Session,
    QueryParams(query): QueryParams<DayQuery>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let me = session.user;
    let day = query.day.unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        starling::utc_day(now)
    });
    state
        .db()
        .call(move |engine| {
            let u = engine.device_usage(me, day)?;
            Ok(axum::Json(
                serde_json::json!({ "day": day, "sent": u.sent, "over_cap": u.over_cap }),
            ))
        })
        .await
}

const DEVICE_IS_OWN: &str = "you can only change your own device updates";

async fn device(
    State(state): State<AppState>,
    session: Session,
    PathParams((id, target)): PathParams<(u64, u64)>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let me = own(&session, id, DEVICE_IS_OWN)?;
    state
        .db()
        .call(move |engine| {
            let on = engine.device_updates(me, UserId(target))?;
            Ok(axum::Json(serde_json::json!({ "device": on })))
        })
        .await
}

async fn set_device(
    state: &AppState,
    session: &Session,
    id: u64,
    target: u64,
    toggle: Toggle,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let me = own(session, id, DEVICE_IS_OWN)?;
    state
        .db()
        .call(move |engine| {
            engine.set_device_updates(me, UserId(target), toggle)?;
            Ok(axum::Json(
                serde_json::json!({ "device": toggle == Toggle::On }),
            ))
        })
        .await
}

/// One account the session's user follows, and whether its posts are
/// texted to them.
#[derive(Serialize)]
struct DeviceFollowJson {
    user: User,
    device: bool,
}

/// Whom the session's user follows (a page, in id order), each with its
/// switch for texts to their phone.
async fn device_follows(
    State(state): State<AppState>,
    session: Session,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let me = session.user;
    let (cursor, limit) = query.parse()?;
    state
        .db()
        .call(move |engine| {
            let page = engine.following(me, cursor.as_ref(), limit)?;
            let mut following = Vec::with_capacity(page.users.len());
            for id in page.users {
                following.push(DeviceFollowJson {
                    user: engine.user(id)?,
                    device: engine.device_updates(me, id)?,
                });
            }
            Ok(axum::Json(
                serde_json::json!({ "following": following, "next": page.next }),
            ))
        })
        .await
}

async fn device_on(
    State(state): State<AppState>,
    session: Session,
    PathParams((id, target)): PathParams<(u64, u64)>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    set_device(&state, &session, id, target, Toggle::On).await
}

async fn device_off(
    State(state): State<AppState>,
    session: Session,
    PathParams((id, target)): PathParams<(u64, u64)>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    set_device(&state, &session, id, target, Toggle::Off).await
}

#[derive(Serialize)]
struct MessageJson {
    id: String,
    from: u64,
    to: u64,
    text: String,
    created_at_ms: u64,
}

impl From<DirectMessage> for MessageJson {
    fn from(m: DirectMessage) -> MessageJson {
        MessageJson {
            id: m.id.0.to_string(),
            from: m.from.0,
            to: m.to.0,
            created_at_ms: m.id.unix_millis(),
            text: m.text,
        }
    }
}

#[derive(Serialize)]
struct ConversationJson {
    with: User,
    last: String,
    unread: u64,
}

async fn conversations(
    State(state): State<AppState>,
    session: Session,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let me = session.user;
    let (cursor, limit) = query.parse()?;
    state
        .db()
        .call(move |engine| {
            let page = engine.conversations(me, cursor.as_ref(), limit)?;
            let mut out = Vec::with_capacity(page.conversations.len());
            for c in page.conversations {
                out.push(ConversationJson {
                    with: engine.user(c.with)?,
                    last: c.last.0.to_string(),
                    unread: c.unread,
                });
            }
            Ok(axum::Json(serde_json::json!({
                "conversations": out,
                "next": page.next.map(|c| c.to_string()),
            })))
        })
        .await
}

async fn messages(
    State(state): State<AppState>,
    session: Session,
    PathParams(other): PathParams<u64>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let me = session.user;
    let (cursor, limit) = query.parse()?;
    state
        .db()
        .call(move |engine| {
            let page = engine.messages(me, UserId(other), cursor.as_ref(), limit)?;
            let messages: Vec<MessageJson> =
                page.messages.into_iter().map(MessageJson::from).collect();
            Ok(axum::Json(serde_json::json!({
                "messages": messages,
                "next": page.next.map(|c| c.to_string()),
            })))
        })
        .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageBody {
    text: String,
}

async fn send_message(
    State(state): State<AppState>,
    session: Session,
    PathParams(other): PathParams<u64>,
    JsonBody(body): JsonBody<MessageBody>,
) -> Result<impl IntoResponse, ApiError> {
    let me = session.user;
    state.limit(me, Limited::Direct)?;
    let message = state
        .db()
        .call(move |engine| Ok(engine.send_direct(me, UserId(other), &body.text)?))
        .await?;
    Ok((StatusCode::CREATED, axum::Json(MessageJson::from(message))))
}

async fn mark_read(
    State(state): State<AppState>,
    session: Session,
    PathParams(other): PathParams<u64>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let me = session.user;
    state
        .db()
        .call(move |engine| {
            let cleared = engine.mark_read(me, UserId(other))?;
            Ok(axum::Json(serde_json::json!({ "cleared": cleared })))
        })
        .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InboundText {
    /// The sending phone, E.164.
    from: String,
    /// The text as received.
    body: String,
}

/// Proof that a request comes from the SMS gateway: its `Authorization`
/// header carries the configured secret. Taken from the request's head, so
/// a handler that asks for it before its body refuses a stranger (401)
/// before reading or parsing anything the stranger sent.
pub(crate) struct Gateway;

impl FromRequestParts<AppState> for Gateway {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Gateway, ApiError> {
        let Some(secret) = state.config().sms_secret.as_deref() else {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "gateway_disabled",
                "no SMS gateway secret is configured",
            ));
        };
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        // Compared as digests, so the time taken says nothing about the secret.
        let matches = presented.is_some_and(|p| {
            Sha256::digest(p.as_bytes()).as_slice() == Sha256::digest(secret.as_bytes()).as_slice()
        });
        if matches {
            Ok(Gateway)
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the gateway secret is missing or wrong",
            ))
        }
    }
}

/// An incoming text from the SMS gateway: runs it as a command of the
/// phone's owner (or as the code of a pending link) and answers the reply
/// to text back. Malformed commands get help, never an error page. The
/// secret is checked before the body is read; a number sending more than
/// `--sms-burst` texts at once (refilled at `--sms-per-minute`) is answered
/// 429 before any work; posts, messages and follows then take the
/// account's own limits, the ones the API applies.
async fn sms_inbound(
    State(state): State<AppState>,
    _gateway: Gateway,
    JsonBody(text): JsonBody<InboundText>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    state
        .sms_limits()
        .take(text.from.clone())
        .map_err(|wait| ApiError::rate_limited("rate_limited", wait))?;
    let limits = state.clone();
    let reply = state
        .db()
        .call(move |engine| {
            Ok(starling::sms::run_text_limited(
                engine, &limits, &text.from, &text.body,
            ))
        })
        .await?;
    Ok(axum::Json(serde_json::json!({ "reply": reply })))
}
