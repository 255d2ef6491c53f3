//! Errors as JSON, and extractors whose rejections are JSON too.
//!
//! Every refusal is `{"error": "<what was wrong>", "code": "<stable code>"}`
//! with a status that says whose fault it was. Server-side failures log
//! their detail and answer with a generic message: no internals leak.

use std::borrow::Cow;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A refusal or failure, ready to become a JSON response.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: Cow<'static, str>,
    retry_after: Option<Duration>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    code: &'a str,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn bad_request(
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn forbidden(message: &'static str) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "not_allowed", message)
    }

    pub(crate) fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }

    pub(crate) fn method_not_allowed() -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not take that method",
        )
    }

    pub(crate) fn rate_limited(code: &'static str, retry_after: Duration) -> ApiError {
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                code,
                "too many requests; slow down",
            )
        }
    }

    /// A server-side failure; `detail` is logged, never sent.
    pub(crate) fn internal(detail: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(%detail, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error",
        )
    }

    pub(crate) fn unavailable() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the server is shutting down",
        )
    }

    /// The status this error answers with.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code this error answers with.
    #[cfg(test)]
    pub(crate) fn code(&self) -> &'static str {
        self.code
    }

    fn from_rejection(status: StatusCode, text: String) -> ApiError {
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                status,
                "payload_too_large",
                "the request body is larger than this server accepts",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
                status,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ),
            s if s.is_server_error() => ApiError::internal(&text),
            _ => ApiError::bad_request("bad_request", text),
        }
    }
}

impl From<starling::Error> for ApiError {
    fn from(e: starling::Error) -> ApiError {
        use starling::{Error as E, ErrorKind as K};
        let status = match e.kind() {
            K::NotFound => StatusCode::NOT_FOUND,
            K::Conflict => StatusCode::CONFLICT,
            K::Forbidden => StatusCode::FORBIDDEN,
            // The server's own configuration: its fault, not the caller's.
            K::Invalid if matches!(e, E::InvalidConfig(_)) => return ApiError::internal(&e),
            // Within bad input, what the README documents apart: a damaged
            // cursor, limit or id is 400, a too-large picture 413.
            K::Invalid => match e {
                E::MalformedCursor | E::PageSize { .. } | E::InvalidDeliveryId => {
                    StatusCode::BAD_REQUEST
                }
                E::AvatarTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            },
            // Unavailable (storage failed, engine poisoned), Internal and any
            // kind added later: the server's fault, logged, answered 500.
            _ => return ApiError::internal(&e),
        };
        // The stable code the README documents for each variant; a variant
        // added later answers with its kind's code.
        let code = match &e {
            E::UnknownUser(_) | E::UnknownUsername(_) => "unknown_user",
            E::UnknownPost(_) => "unknown_post",
            E::PostDeleted(_) => "post_deleted",
            E::AccountDeleted(_) => "account_deleted",
            E::UnknownGroup(_) => "unknown_group",
            E::InvalidUsername(_) => "invalid_username",
            E::InvalidText(_) => "invalid_text",
            E::TextTooLong { .. } => "text_too_long",
            E::SelfFollow => "self_follow",
            E::InvalidGroupName(_) => "invalid_group_name",
            E::InvalidProfile(_) => "invalid_profile",
            E::InvalidPhone(_) => "invalid_phone",
            E::AvatarTooLarge { .. } => "avatar_too_large",
            E::UnsupportedImage => "unsupported_image",
            E::InvalidDeliveryId => "bad_delivery_id",
            E::MalformedCursor => "malformed_cursor",
            E::PageSize { .. } => "bad_limit",
            E::UsernameTaken(_) => "username_taken",
            E::UsernameReserved(_) => "username_reserved",
            E::PhoneTaken => "phone_taken",
            E::InvalidPhoneCode => "invalid_code",
            E::WrongPhoneCode { .. } => "wrong_code",
            E::NoPendingPhone => "no_pending_phone",
            E::PhoneCodeExpired => "code_expired",
            E::DeviceCapReached => "device_cap_reached",
            E::NotAllowed(_) => "not_allowed",
            E::Blocked(_) => "blocked",
            E::Protected(_) => "protected",
            E::NotProtected(_) => "not_protected",
            E::UnknownFollowRequest { .. } => "unknown_follow_request",
            E::ChangeCursorExpired { .. } => "change_cursor_expired",
            _ => match status {
                StatusCode::NOT_FOUND => "not_found",
                StatusCode::CONFLICT => "conflict",
                StatusCode::FORBIDDEN => "not_allowed",
                _ => "bad_request",
            },
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: &self.message,
            code: self.code,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(after) = self.retry_after {
            // Round up: "retry after 0 seconds" would invite a hot loop.
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A JSON request body whose rejections are [`ApiError`]s: 400 for
/// malformed JSON or wrong fields, 413 for an oversized body, 415 for a
/// missing content type.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::bad_request(
                "malformed_json",
                format!("malformed JSON: {}", e.body_text()),
            )),
            Err(JsonRejection::JsonDataError(e)) => {
                Err(ApiError::bad_request("bad_request", e.body_text()))
            }
            Err(e) => Err(ApiError::from_rejection(e.status(), e.body_text())),
        }
    }
}

/// Path parameters whose rejections are [`ApiError`]s.
pub(crate) struct PathParams<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(PathParams(value)),
            Err(e @ PathRejection::FailedToDeserializePathParams(_)) => {
                Err(ApiError::bad_request("bad_path", e.body_text()))
            }
            Err(e) => Err(ApiError::from_rejection(e.status(), e.body_text())),
        }
    }
}

/// Query parameters whose rejections are [`ApiError`]s.
pub(crate) struct QueryParams<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(QueryParams(value)),
            Err(e @ QueryRejection::FailedToDeserializeQueryString(_)) => {
                Err(ApiError::bad_request("bad_query", e.body_text()))
            }
            Err(e) => Err(ApiError::from_rejection(e.status(), e.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use starling::{Error, PostId, UserId};

    fn check(e: Error, status: u16, code: &str) {
        let api = ApiError::from(e);
        assert_eq!((api.status().as_u16(), api.code()), (status, code));
    }

    #[test]
    fn engine_errors_map_to_statuses() {
        check(Error::UnknownUser(UserId(7)), 404, "unknown_user");
        check(Error::UnknownUsername("x".into()), 404, "unknown_user");
        check(Error::UnknownPost(PostId(7)), 404, "unknown_post");
        check(Error::PostDeleted(PostId(7)), 404, "post_deleted");
        check(Error::InvalidUsername("empty"), 422, "invalid_username");
        check(Error::UsernameTaken("x".into()), 409, "username_taken");
        check(
            Error::UsernameReserved("x".into()),
            409,
            "username_reserved",
        );
        check(Error::AccountDeleted(UserId(7)), 404, "account_deleted");
        check(Error::InvalidText("empty"), 422, "invalid_text");
        check(
            Error::TextTooLong { len: 300, max: 280 },
            422,
            "text_too_long",
        );
        check(Error::SelfFollow, 422, "self_follow");
        check(Error::NotAllowed("no"), 403, "not_allowed");
        check(Error::Blocked("no"), 403, "blocked");
        check(
            Error::UnknownGroup(starling::GroupId(3)),
            404,
            "unknown_group",
        );
        check(Error::InvalidGroupName("empty"), 422, "invalid_group_name");
        check(Error::InvalidPhone("short"), 422, "invalid_phone");
        check(Error::PhoneTaken, 409, "phone_taken");
        check(Error::InvalidPhoneCode, 422, "invalid_code");
        check(
            Error::WrongPhoneCode { attempts_left: 2 },
            422,
            "wrong_code",
        );
        check(Error::NoPendingPhone, 404, "no_pending_phone");
        check(Error::PhoneCodeExpired, 404, "code_expired");
        check(Error::DeviceCapReached, 409, "device_cap_reached");
        check(Error::UnsupportedImage, 422, "unsupported_image");
        check(Error::MalformedCursor, 400, "malformed_cursor");
        check(
            Error::PageSize {
                requested: 0,
                max: 200,
            },
            400,
            "bad_limit",
        );
        check(Error::Poisoned, 500, "internal");
        check(Error::Corrupt("bad key"), 500, "internal");
        check(
            Error::Storage(starling::StorageError::new("disk on fire")),
            500,
            "internal",
        );
        check(Error::Internal("worker panicked".into()), 500, "internal");
        check(Error::InvalidConfig("inbox_cap"), 500, "internal");
        check(Error::InvalidProfile("bio"), 422, "invalid_profile");
        check(
            Error::AvatarTooLarge { len: 2, max: 1 },
            413,
            "avatar_too_large",
        );
        check(Error::InvalidDeliveryId, 400, "bad_delivery_id");
    }

    #[test]
    fn internal_errors_do_not_leak_detail() {
        let api = ApiError::from(Error::Storage(starling::StorageError::new("secret path")));
        assert!(!api.message.contains("secret"));
    }
}
