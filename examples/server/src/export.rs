//! `GET /api/me/export`: everything the signed-in account has, as one
//! JSON document streamed to the client while the engine reads it.
//!
//! The engine writes the document from a thread of its pool into a
//! bounded channel of chunks that the response body drains, so memory
//! stays bounded by a few chunks whatever the account holds. A client that
//! stops reading for [`STALL`] cuts the export short and frees the thread;
//! at most [`EXPORTS`] run at once (more wait their turn, holding no
//! thread), so exports never take the whole pool.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt as _;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use crate::auth::Session;
use crate::error::ApiError;
use crate::server::AppState;

/// Exports running at once, at most.
pub(crate) const EXPORTS: usize = 2;

/// Chunks written and not yet sent, at most (each up to the engine's
/// buffer, 16 KiB).
const CHUNKS: usize = 4;

/// How long the export waits for the client to take a chunk before it
/// gives up.
const STALL: Duration = Duration::from_secs(30);

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/me/export", get(export))
}

async fn export(State(state): State<AppState>, session: Session) -> Result<Response, ApiError> {
    let user = session.user;
    let permit = Arc::clone(state.exports())
        .acquire_owned()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let name = state
        .db()
        .call(move |engine| Ok(engine.user(user)?.name))
        .await?;
    let (tx, mut rx) = mpsc::channel::<Bytes>(CHUNKS);
    let handle = tokio::runtime::Handle::current();
    let db = Arc::clone(state.db());
    let job = tokio::spawn(async move {
        db.call(move |engine| {
            let mut out = ChunkWriter { tx, handle };
            Ok(engine.export(user, &mut out))
        })
        .await
    });
    // The first chunk, or the end: an export that fails before writing
    // anything is answered with its error and status.
    let Some(first) = rx.recv().await else {
        return match job.await {
            Ok(Ok(Err(e))) => Err(e.into()),
            Ok(Err(e)) => Err(e),
            Ok(Ok(Ok(_))) => Err(ApiError::internal(&"the export wrote nothing")),
            Err(e) => Err(ApiError::internal(&e)),
        };
    };
    let rest = futures_util::stream::unfold(
        Some((rx, job, permit)),
        |state: Option<(mpsc::Receiver<Bytes>, Job, OwnedSemaphorePermit)>| async move {
            let (mut rx, job, permit) = state?;
            match rx.recv().await {
                Some(chunk) => Some((Ok(chunk), Some((rx, job, permit)))),
                // Written out: an export that failed midway aborts the
                // response, so the client never takes a cut document for
                // a whole one.
                None => {
                    let failure = match job.await {
                        Ok(Ok(Ok(_))) => return None,
                        Ok(Ok(Err(e))) => e.to_string(),
                        Ok(Err(_)) => "the engine refused the export".to_owned(),
                        Err(e) => e.to_string(),
                    };
                    tracing::warn!(%failure, "export cut short");
                    Some((Err(std::io::Error::other(failure)), None))
                }
            }
        },
    );
    let body =
        futures_util::stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(rest);
    let disposition = format!(
        "attachment; filename=\"starling-export-{}.json\"",
        name.as_str()
    );
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).map_err(|e| ApiError::internal(&e))?,
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The export running on the engine's pool: its own outcome inside the
/// pool call's.
type Job = tokio::task::JoinHandle<Result<starling::Result<starling::ExportSummary>, ApiError>>;

/// The engine's writer: each write becomes a chunk of the response body.
struct ChunkWriter {
    tx: mpsc::Sender<Bytes>,
    handle: tokio::runtime::Handle,
}

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let chunk = Bytes::copy_from_slice(buf);
        // On the engine's pool, outside the runtime: wait here for room.
        let tx = &self.tx;
        // The timer is made inside the runtime's context, not before it.
        let sent = self
            .handle
            .block_on(async { tokio::time::timeout(STALL, tx.send(chunk)).await });
        match sent {
            Ok(Ok(())) => Ok(buf.len()),
            Ok(Err(_)) => Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the client went away",
            )),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client stopped reading",
            )),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
