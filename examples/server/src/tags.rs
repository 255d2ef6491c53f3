//! The hashtag page, built from the engine's change feed.
//!
//! A background task follows the feed (`Engine::changes`) from a cursor it
//! keeps durably, reads each new post as its author (the author always
//! sees their own post), and indexes the `#tags` of its text; a deleted
//! post leaves its tags' pages. The index is the server's own: a JSON-lines
//! log in `DIR/tags/tags.jsonl`, one line per page of the feed holding what
//! that page changed *and* the cursor after it, appended and fsync'd. So
//! the index and the cursor move together: a crash loses at most the last
//! page, which is read again, and since the index is made of sets keyed
//! by post id, reading a record twice never counts it twice. Open replays
//! the log (a torn last line is dropped) and rewrites it compactly once it
//! holds many lines.
//!
//! The feed carries every post, group posts and protected accounts'
//! included: the index holds them all, and a page is filtered for its
//! reader when it is served, each post read as the reader may see it
//! (`get_post_as`), so nobody finds a post through a tag that they could
//! not open by id.
//!
//! Tag syntax: `#` then 1 to 50 letters, digits or underscores (Unicode
//! letters and digits included), at least one of them not a digit, and
//! the `#` not right after a letter, digit, underscore or `&` (so `a#b`
//! and `&#39;` are not tags). Tags are lowercased; `#Rust` and `#rust` are
//! one tag.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::extract::State;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use starling::{Change, Cursor, Error, PostId};

use crate::auth::Session;
use crate::error::{ApiError, PathParams, QueryParams};
use crate::routes::{PageQuery, TimelineJson};
use crate::server::AppState;

/// How far back the trending list looks.
pub(crate) const TRENDING_WINDOW_MS: u64 = 3_600_000;
/// Tags in the trending list.
const TRENDING_TAGS: usize = 10;
/// Candidates looked at for one page of a tag, per post asked for: posts
/// the reader may not see are skipped, and the page's cursor moves past
/// them, so a page may come back short with a cursor to go on from.
const SCAN_PER_POST: usize = 4;

/// Longest tag, in characters.
pub(crate) const TAG_MAX_CHARS: usize = 50;
/// Records read from the feed per round.
const FEED_PAGE: usize = 200;
/// Pause between rounds when the feed had nothing new.
const IDLE: Duration = Duration::from_millis(100);
/// Pause after a failed round.
const BACKOFF: Duration = Duration::from_secs(1);
/// The log is rewritten at open once it holds this many lines.
const COMPACT_LINES: usize = 1024;

const LOG_FILE: &str = "tags.jsonl";
const TMP_FILE: &str = "tags.jsonl.tmp";

fn tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The tag `raw` names (without its `#`), lowercased, or `None` when it
/// breaks the syntax.
pub(crate) fn parse_tag(raw: &str) -> Option<String> {
    let n = raw.chars().count();
    if n == 0 || n > TAG_MAX_CHARS || !raw.chars().all(tag_char) {
        return None;
    }
    if raw.chars().all(|c| c.is_numeric()) {
        return None;
    }
    Some(raw.to_lowercase())
}

/// The distinct tags in a post's text, lowercased, in order of first use.
pub(crate) fn tags_in(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut prev: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let starts = c == '#' && !prev.is_some_and(|p| tag_char(p) || p == '&' || p == '#');
        prev = Some(c);
        if !starts {
            continue;
        }
        let body_start = i + 1;
        let mut end = body_start;
        while let Some(&(j, d)) = chars.peek() {
            if !tag_char(d) {
                break;
            }
            end = j + d.len_utf8();
            prev = Some(d);
            chars.next();
        }
        // Too long a run is not a tag at all (not its first 50 characters).
        if let Some(tag) = parse_tag(&text[body_start..end])
            && !out.contains(&tag)
        {
            out.push(tag);
        }
    }
    out
}

/// What one feed record changed in the index.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Event {
    /// A post and its tags.
    Tagged { post: u64, tags: Vec<String> },
    /// A post deleted.
    Deleted { post: u64 },
}

/// One line of the log: a page's events and the cursor after it.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    cursor: String,
    events: Vec<Event>,
}

#[derive(Default)]
struct IndexState {
    /// Where the follower reads next.
    cursor: Option<Cursor>,
    /// Tag -> its live posts.
    by_tag: HashMap<String, BTreeSet<PostId>>,
    /// Post -> its tags (posts with at least one), in id (time) order.
    of_post: BTreeMap<PostId, Vec<String>>,
    /// Lines in the log.
    lines: usize,
}

impl IndexState {
    fn apply(&mut self, event: &Event) {
        match event {
            Event::Tagged { post, tags } => {
                let post = PostId(*post);
                for tag in tags {
                    self.by_tag.entry(tag.clone()).or_default().insert(post);
                }
                if !tags.is_empty() {
                    self.of_post.insert(post, tags.clone());
                }
            }
            Event::Deleted { post } => {
                let post = PostId(*post);
                for tag in self.of_post.remove(&post).unwrap_or_default() {
                    if let Some(posts) = self.by_tag.get_mut(&tag) {
                        posts.remove(&post);
                        if posts.is_empty() {
                            self.by_tag.remove(&tag);
                        }
                    }
                }
            }
        }
    }
}

/// The tag index and the feed cursor it was built up to.
pub(crate) struct TagIndex {
    dir: PathBuf,
    state: Mutex<IndexState>,
    /// Serializes appends (one follower writes; the lock keeps it honest).
    log: Mutex<File>,
}

impl TagIndex {
    /// Opens (or creates) the index in `dir`, replaying its log.
    pub(crate) fn open(dir: &Path) -> io::Result<TagIndex> {
        fs::create_dir_all(dir)?;
        let path = dir.join(LOG_FILE);
        let mut state = IndexState::default();
        let mut torn = false;
        if path.exists() {
            let lines: Vec<String> = BufReader::new(File::open(&path)?)
                .lines()
                .collect::<io::Result<_>>()?;
            let last = lines.len().saturating_sub(1);
            for (n, raw) in lines.iter().enumerate() {
                match serde_json::from_str::<Line>(raw) {
                    Ok(line) => {
                        let cursor = line.cursor.parse::<Cursor>().map_err(|_| {
                            io::Error::other(format!("tag index: bad cursor at line {}", n + 1))
                        })?;
                        for e in &line.events {
                            state.apply(e);
                        }
                        state.cursor = Some(cursor);
                        state.lines += 1;
                    }
                    // A torn last line: that page is read again, and the
                    // log is rewritten without it before anything follows.
                    Err(_) if n == last => torn = true,
                    Err(_) => {
                        return Err(io::Error::other(format!(
                            "tag index is damaged at line {}",
                            n + 1
                        )));
                    }
                }
            }
        }
        let compact = torn || state.lines >= COMPACT_LINES;
        if compact {
            rewrite(dir, &mut state)?;
        }
        let log = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(TagIndex {
            dir: dir.to_owned(),
            state: Mutex::new(state),
            log: Mutex::new(log),
        })
    }

    /// Where the follower reads the feed next.
    fn cursor(&self) -> Option<Cursor> {
        self.state.lock().cursor
    }

    /// Stores a page's events with the cursor after it (durably, in one
    /// line), then applies them.
    fn record(&self, events: Vec<Event>, cursor: Cursor) -> io::Result<()> {
        let line = Line {
            cursor: cursor.to_string(),
            events,
        };
        let mut text = serde_json::to_string(&line).map_err(io::Error::other)?;
        text.push('\n');
        {
            let mut log = self.log.lock();
            log.write_all(text.as_bytes())?;
            log.sync_data()?;
        }
        let mut state = self.state.lock();
        for e in &line.events {
            state.apply(e);
        }
        state.cursor = Some(cursor);
        state.lines += 1;
        Ok(())
    }

    /// Forgets everything (the feed no longer holds what the index was
    /// built from): the follower starts again from the oldest record kept.
    fn reset(&self) -> io::Result<()> {
        let mut state = self.state.lock();
        *state = IndexState::default();
        rewrite(&self.dir, &mut state)?;
        *self.log.lock() = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(LOG_FILE))?;
        Ok(())
    }

    /// Up to `limit` candidate posts tagged `tag`, newest first, older
    /// than `before`.
    pub(crate) fn posts(&self, tag: &str, before: Option<PostId>, limit: usize) -> Vec<PostId> {
        let state = self.state.lock();
        let Some(posts) = state.by_tag.get(tag) else {
            return Vec::new();
        };
        let upper = before.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        posts
            .range((std::ops::Bound::Unbounded, upper))
            .rev()
            .take(limit)
            .copied()
            .collect()
    }

    /// The `limit` tags used by the most live posts made at or after
    /// `since_ms` (ms since the Unix epoch), most used first (ties by
    /// name), each with its count.
    pub(crate) fn trending(&self, since_ms: u64, limit: usize) -> Vec<(String, u64)> {
        let state = self.state.lock();
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for tags in state
            .of_post
            .iter()
            .rev()
            .take_while(|(p, _)| p.unix_millis() >= since_ms)
            .map(|(_, tags)| tags)
        {
            for t in tags {
                *counts.entry(t.as_str()).or_default() += 1;
            }
        }
        let mut out: Vec<(String, u64)> =
            counts.into_iter().map(|(t, n)| (t.to_owned(), n)).collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out.truncate(limit);
        out
    }
}

/// Writes `state` as one line (to a temporary file, fsync'd, renamed over
/// the log).
fn rewrite(dir: &Path, state: &mut IndexState) -> io::Result<()> {
    let tmp = dir.join(TMP_FILE);
    let mut file = File::create(&tmp)?;
    if let Some(cursor) = state.cursor {
        let line = Line {
            cursor: cursor.to_string(),
            events: state
                .of_post
                .iter()
                .map(|(p, tags)| Event::Tagged {
                    post: p.0,
                    tags: tags.clone(),
                })
                .collect(),
        };
        let mut text = serde_json::to_string(&line).map_err(io::Error::other)?;
        text.push('\n');
        file.write_all(text.as_bytes())?;
        state.lines = 1;
    } else {
        state.lines = 0;
    }
    file.sync_all()?;
    fs::rename(&tmp, dir.join(LOG_FILE))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// The tag routes.
pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/tags/trending", axum::routing::get(trending))
        .route("/tags/{tag}", axum::routing::get(tag_page))
}

/// The tag a path names (with or without its `#`), or 400 `invalid_tag`.
fn path_tag(raw: &str) -> Result<String, ApiError> {
    parse_tag(raw.strip_prefix('#').unwrap_or(raw)).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_tag",
            "a tag is 1 to 50 letters, digits or underscores, not all digits",
        )
    })
}

/// `GET /api/tags/{tag}`: the posts tagged `tag` the session's user may
/// see, newest first, in pages (`cursor`, `limit`).
async fn tag_page(
    State(state): State<AppState>,
    session: Session,
    PathParams(tag): PathParams<String>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<axum::Json<TimelineJson>, ApiError> {
    let tag = path_tag(&tag)?;
    let (cursor, limit) = query.parse()?;
    if limit == 0 || limit > starling::MAX_PAGE_SIZE {
        return Err(Error::PageSize {
            requested: limit,
            max: starling::MAX_PAGE_SIZE,
        }
        .into());
    }
    let before = cursor.map(|c| c.as_timeline()).transpose()?.map(|(p, _)| p);
    let scan = limit * SCAN_PER_POST;
    let candidates = state.tags().posts(&tag, before, scan);
    let me = session.user;
    state
        .db()
        .call(move |engine| {
            let mut posts = Vec::with_capacity(limit);
            let mut last = None;
            for &id in &candidates {
                if posts.len() == limit {
                    break;
                }
                last = Some(id);
                match engine.get_post_as(me, id) {
                    Ok(p) => posts.push(p),
                    // Deleted (its record is on its way) or not for this
                    // reader: skipped, as on every read path.
                    Err(Error::PostDeleted(_) | Error::UnknownPost(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let more = posts.len() == limit || candidates.len() == scan;
            let next = last.filter(|_| more).map(|p| Cursor::timeline(p, 0));
            let page = starling::TimelinePage {
                posts,
                reposted: Vec::new(),
                next,
            };
            Ok(axum::Json(TimelineJson::of(engine, me, page)?))
        })
        .await
}

#[derive(Serialize)]
struct Trending {
    tags: Vec<TagCount>,
    window_ms: u64,
}

#[derive(Serialize)]
struct TagCount {
    tag: String,
    posts: u64,
}

/// `GET /api/tags/trending`: the most used tags of the last hour, with
/// how many live posts of the hour use each (every post counts, whoever
/// may see it: counts name no post).
async fn trending(
    State(state): State<AppState>,
    _session: Session,
) -> Result<axum::Json<Trending>, ApiError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let tags = state
        .tags()
        .trending(now.saturating_sub(TRENDING_WINDOW_MS), TRENDING_TAGS)
        .into_iter()
        .map(|(tag, posts)| TagCount { tag, posts })
        .collect();
    Ok(axum::Json(Trending {
        tags,
        window_ms: TRENDING_WINDOW_MS,
    }))
}

/// Follows the change feed into the tag index until shutdown.
pub(crate) async fn run(state: AppState) {
    let mut shutdown = state.shutdown_signal();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let pause = match round(&state).await {
            Ok(true) => Duration::ZERO,
            Ok(false) => IDLE,
            Err(e) => {
                tracing::warn!(error = %e, "tag index: following the change feed failed");
                BACKOFF
            }
        };
        if !pause.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Reads one page of the feed and records it. Returns whether the page
/// was full (more may wait).
async fn round(state: &AppState) -> Result<bool, String> {
    let index = std::sync::Arc::clone(state.tags());
    let cursor = index.cursor();
    let read = state
        .db()
        .call(move |engine| {
            let page = match engine.changes(cursor.as_ref(), FEED_PAGE) {
                Err(Error::ChangeCursorExpired { .. }) => return Ok(None),
                other => other?,
            };
            let mut events = Vec::new();
            for r in &page.changes {
                match r.change {
                    Change::Posted { post, author } => match engine.get_post_as(author, post) {
                        Ok(p) => {
                            let tags = tags_in(&p.text);
                            if !tags.is_empty() {
                                events.push(Event::Tagged { post: post.0, tags });
                            }
                        }
                        // Deleted since: its own record follows.
                        Err(Error::PostDeleted(_) | Error::UnknownPost(_)) => {}
                        Err(e) => return Err(e.into()),
                    },
                    Change::Deleted { post, .. } => events.push(Event::Deleted { post: post.0 }),
                    _ => {}
                }
            }
            Ok(Some((events, page.next, page.changes.len())))
        })
        .await
        .map_err(|e| format!("{e:?}"))?;
    let Some((events, next, read)) = read else {
        tracing::warn!("tag index: the feed no longer holds its cursor; rebuilding");
        index.reset().map_err(|e| e.to_string())?;
        return Ok(true);
    };
    let index2 = std::sync::Arc::clone(&index);
    tokio::task::spawn_blocking(move || index2.record(events, next))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(read == FEED_PAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_syntax() {
        let check = |text: &str, want: &[&str]| {
            assert_eq!(tags_in(text), want, "{text:?}");
        };
        check("hello #Rust and #rust, #go!", &["rust", "go"]);
        check("#a_b #c1 #123 #1a", &["a_b", "c1", "1a"]);
        check("a#b &#39; ##x #", &[]);
        check("(#Ünïcode) #日本", &["ünïcode", "日本"]);
        check(&format!("#{}", "x".repeat(51)), &[]);
        let fifty = "x".repeat(50);
        check(&format!("#{fifty} ok"), &[fifty.as_str()]);
        assert_eq!(parse_tag("Rust"), Some("rust".into()));
        for bad in ["", "12", "a-b", "#a", &"x".repeat(51)] {
            assert_eq!(parse_tag(bad), None, "{bad:?}");
        }
    }
}
