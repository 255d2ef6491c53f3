//! Credentials and sessions, kept by the server next to the engine's
//! database (the engine has no notion of passwords).
//!
//! Passwords are stored as argon2id PHC strings. A bearer token is 256
//! random bits; only its SHA-256 is stored, with an expiry, so a copy of the
//! store does not hand out sessions.
//!
//! The store is a JSON-lines log (`accounts.jsonl`), appended and fsync'd
//! on every change and replayed at open. Open rewrites it without revoked
//! or expired tokens (to a temporary file, fsync'd, renamed over the old
//! one), and so does any append that finds it mostly garbage. A torn last
//! line, left by a crash mid-append, is dropped; damage anywhere else stops
//! the server from starting rather than losing accounts silently.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use starling::UserId;

const LOG_FILE: &str = "accounts.jsonl";
const TMP_FILE: &str = "accounts.jsonl.tmp";

/// Shortest and longest password accepted, in characters.
pub(crate) const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=128;

/// The SHA-256 of a bearer token: what the store keeps and looks up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey([u8; 32]);

impl TokenKey {
    /// The key of a token as presented by a client.
    pub(crate) fn of(token: &str) -> TokenKey {
        TokenKey(Sha256::digest(token.as_bytes()).into())
    }

    fn to_hex(self) -> String {
        let mut out = String::with_capacity(64);
        for b in self.0 {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        out
    }

    fn from_hex(s: &str) -> Option<TokenKey> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0])?;
            let lo = hex_value(pair[1])?;
            out[i] = (hi << 4) | lo;
        }
        Some(TokenKey(out))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// A freshly issued bearer token. The plain token exists only here and in
/// the response that hands it to the client.
pub(crate) struct Issued {
    pub(crate) token: String,
    pub(crate) expires_at_ms: u64,
}

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// Reading or writing the log failed.
    #[error("account store I/O: {0}")]
    Io(#[from] io::Error),
    /// A line of the log (not the last) could not be decoded.
    #[error("account store is damaged at line {0}")]
    Damaged(usize),
    /// The operating system's random source failed.
    #[error("no randomness: {0}")]
    Random(String),
    /// Hashing a password failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Record {
    /// The user's password hash (a later record replaces an earlier one).
    Password { user: u64, hash: String },
    /// A session: the token's SHA-256 in hex, its user, its expiry.
    Token {
        key: String,
        user: u64,
        expires_ms: u64,
    },
    /// A session ended by logging out.
    Revoke { key: String },
    /// The account deleted: its password and every session of it go.
    Forget { user: u64 },
}

#[derive(Clone, Copy)]
struct Session {
    user: UserId,
    expires_ms: u64,
}

#[derive(Default)]
struct State {
    passwords: HashMap<UserId, String>,
    sessions: HashMap<TokenKey, Session>,
}

impl State {
    fn apply(&mut self, record: Record) -> Result<(), ()> {
        match record {
            Record::Password { user, hash } => {
                self.passwords.insert(UserId(user), hash);
            }
            Record::Token {
                key,
                user,
                expires_ms,
            } => {
                let key = TokenKey::from_hex(&key).ok_or(())?;
                let user = UserId(user);
                self.sessions.insert(key, Session { user, expires_ms });
            }
            Record::Revoke { key } => {
                let key = TokenKey::from_hex(&key).ok_or(())?;
                self.sessions.remove(&key);
            }
            Record::Forget { user } => {
                let user = UserId(user);
                self.passwords.remove(&user);
                self.sessions.retain(|_, s| s.user != user);
            }
        }
        Ok(())
    }

    fn live_records(&self) -> usize {
        self.passwords.len() + self.sessions.len()
    }

    fn records(&self) -> Vec<Record> {
        let mut passwords: Vec<_> = self.passwords.iter().collect();
        passwords.sort_by_key(|(user, _)| **user);
        let mut out: Vec<Record> = passwords
            .into_iter()
            .map(|(user, hash)| Record::Password {
                user: user.0,
                hash: hash.clone(),
            })
            .collect();
        out.extend(self.sessions.iter().map(|(key, s)| Record::Token {
            key: key.to_hex(),
            user: s.user.0,
            expires_ms: s.expires_ms,
        }));
        out
    }
}

struct Log {
    file: File,
    /// Records in the file, live or not.
    records: usize,
}

/// The account store. Methods block on file I/O or hashing: call them from
/// blocking threads, except [`Accounts::session`], which is in memory.
pub(crate) struct Accounts {
    dir: PathBuf,
    state: Mutex<State>,
    log: Mutex<Log>,
    token_ttl: Duration,
}

impl Accounts {
    /// Opens (creating if missing) the store in `dir`, replays it and
    /// rewrites it compactly.
    pub(crate) fn open(dir: &Path, token_ttl: Duration) -> Result<Accounts, StoreError> {
        fs::create_dir_all(dir)?;
        let path = dir.join(LOG_FILE);
        let mut state = State::default();
        match File::open(&path) {
            Ok(file) => replay(BufReader::new(file), &mut state)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let now = now_ms();
        state.sessions.retain(|_, s| s.expires_ms > now);
        let log = rewrite(dir, &state)?;
        Ok(Accounts {
            dir: dir.to_path_buf(),
            state: Mutex::new(state),
            log: Mutex::new(log),
            token_ttl,
        })
    }

    /// Whether `user` has a password (an account created by a sign-up that
    /// crashed before storing it has none, and may be claimed).
    pub(crate) fn has_password(&self, user: UserId) -> bool {
        self.state.lock().passwords.contains_key(&user)
    }

    /// Stores `user`'s password hash durably.
    pub(crate) fn set_password(&self, user: UserId, hash: String) -> Result<(), StoreError> {
        self.append(Record::Password { user: user.0, hash })
    }

    /// Checks `password` against `user`'s hash (slow on purpose).
    pub(crate) fn verify_password(&self, user: UserId, password: &str) -> bool {
        let Some(stored) = self.state.lock().passwords.get(&user).cloned() else {
            return false;
        };
        let Ok(parsed) = PasswordHash::new(&stored) else {
            tracing::error!(user = user.0, "stored password hash is unreadable");
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    }

    /// Issues a new session token for `user`, durably.
    pub(crate) fn issue_token(&self, user: UserId) -> Result<Issued, StoreError> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| StoreError::Random(e.to_string()))?;
        let token = URL_SAFE_NO_PAD.encode(raw);
        let key = TokenKey::of(&token);
        let expires_ms = now_ms().saturating_add(duration_ms(self.token_ttl));
        self.append(Record::Token {
            key: key.to_hex(),
            user: user.0,
            expires_ms,
        })?;
        Ok(Issued {
            token,
            expires_at_ms: expires_ms,
        })
    }

    /// The user whose live session has this key (in memory; does not block).
    pub(crate) fn session(&self, key: &TokenKey) -> Option<UserId> {
        let now = now_ms();
        let mut state = self.state.lock();
        match state.sessions.get(key) {
            Some(s) if s.expires_ms > now => Some(s.user),
            Some(_) => {
                // Expired: forget it; the next rewrite drops it from disk.
                state.sessions.remove(key);
                None
            }
            None => None,
        }
    }

    /// Ends the session with this key, durably.
    pub(crate) fn revoke(&self, key: &TokenKey) -> Result<(), StoreError> {
        if !self.state.lock().sessions.contains_key(key) {
            return Ok(());
        }
        self.append(Record::Revoke { key: key.to_hex() })
    }

    /// Forgets `user`'s password and ends every session of it, durably
    /// and in one record (its account was deleted).
    pub(crate) fn forget(&self, user: UserId) -> Result<(), StoreError> {
        self.append(Record::Forget { user: user.0 })
    }

    /// Writes `record` durably, then applies it, both under the log's
    /// lock so that a concurrent rewrite never misses a record.
    fn append(&self, record: Record) -> Result<(), StoreError> {
        let mut line = serde_json::to_vec(&record).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut log = self.log.lock();
        log.file.write_all(&line)?;
        log.file.sync_data()?;
        log.records += 1;
        let mut state = self.state.lock();
        if state.apply(record).is_err() {
            // Only records this module built get here, and they are valid.
            tracing::error!("account store wrote a record it cannot apply");
        }
        if log.records > 2 * state.live_records() + 1024 {
            // Mostly revoked or expired sessions: rewrite compactly.
            let now = now_ms();
            state.sessions.retain(|_, s| s.expires_ms > now);
            *log = rewrite(&self.dir, &state)?;
        }
        Ok(())
    }
}

/// Hashes a password with argon2id and a fresh random salt (slow on purpose).
pub(crate) fn hash_password(password: &str) -> Result<String, StoreError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| StoreError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| StoreError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Hash(e.to_string()))
}

fn replay(reader: impl BufRead, state: &mut State) -> Result<(), StoreError> {
    let mut lines = reader.split(b'\n').enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let line = line?;
        let is_last = lines.peek().is_none();
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let decoded = serde_json::from_slice::<Record>(&line)
            .map_err(|_| ())
            .and_then(|record| state.apply(record));
        if decoded.is_err() {
            if is_last {
                tracing::warn!(
                    line = i + 1,
                    "dropping a torn last line of the account store"
                );
                break;
            }
            return Err(StoreError::Damaged(i + 1));
        }
    }
    Ok(())
}

/// Writes `state` to a fresh log, atomically replacing the old one.
fn rewrite(dir: &Path, state: &State) -> Result<Log, StoreError> {
    let tmp = dir.join(TMP_FILE);
    let records = state.records();
    {
        let mut file = File::create(&tmp)?;
        let mut buf = Vec::new();
        for record in &records {
            serde_json::to_writer(&mut buf, record).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        file.write_all(&buf)?;
        file.sync_all()?;
    }
    let path = dir.join(LOG_FILE);
    fs::rename(&tmp, &path)?;
    // Make the rename itself durable.
    File::open(dir)?.sync_all()?;
    let file = OpenOptions::new().append(true).open(&path)?;
    Ok(Log {
        file,
        records: records.len(),
    })
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(duration_ms)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(3600);

    #[test]
    fn token_keys_round_trip_through_hex() {
        let key = TokenKey::of("some token");
        assert_eq!(TokenKey::from_hex(&key.to_hex()), Some(key));
        assert_eq!(TokenKey::from_hex("zz"), None);
        assert_eq!(TokenKey::from_hex(&"G".repeat(64)), None);
    }

    #[test]
    fn passwords_and_sessions_survive_reopen_and_revocation_sticks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (kept, revoked) = {
            let store = Accounts::open(dir.path(), TTL).expect("open");
            let hash = hash_password("correct horse").expect("hash");
            store.set_password(UserId(1), hash).expect("set");
            assert!(store.verify_password(UserId(1), "correct horse"));
            assert!(!store.verify_password(UserId(1), "wrong horse"));
            assert!(!store.verify_password(UserId(2), "correct horse"));
            let kept = store.issue_token(UserId(1)).expect("issue");
            let revoked = store.issue_token(UserId(1)).expect("issue");
            assert_ne!(kept.token, revoked.token);
            store.revoke(&TokenKey::of(&revoked.token)).expect("revoke");
            (kept, revoked)
        };
        let store = Accounts::open(dir.path(), TTL).expect("reopen");
        assert!(store.has_password(UserId(1)));
        assert!(store.verify_password(UserId(1), "correct horse"));
        assert_eq!(store.session(&TokenKey::of(&kept.token)), Some(UserId(1)));
        assert_eq!(store.session(&TokenKey::of(&revoked.token)), None);
        assert_eq!(store.session(&TokenKey::of("made up")), None);
    }

    #[test]
    fn forgetting_a_user_ends_its_sessions_and_password_for_good() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (gone, kept) = {
            let store = Accounts::open(dir.path(), TTL).expect("open");
            store
                .set_password(UserId(1), hash_password("pw one!!").expect("hash"))
                .expect("set");
            store.set_password(UserId(2), "h2".into()).expect("set");
            let gone = [
                store.issue_token(UserId(1)).expect("issue"),
                store.issue_token(UserId(1)).expect("issue"),
            ];
            let kept = store.issue_token(UserId(2)).expect("issue");
            store.forget(UserId(1)).expect("forget");
            for issued in &gone {
                assert_eq!(store.session(&TokenKey::of(&issued.token)), None);
            }
            assert!(!store.has_password(UserId(1)));
            assert!(!store.verify_password(UserId(1), "pw one!!"));
            (gone, kept)
        };
        let store = Accounts::open(dir.path(), TTL).expect("reopen");
        for issued in &gone {
            assert_eq!(store.session(&TokenKey::of(&issued.token)), None);
        }
        assert!(!store.has_password(UserId(1)));
        assert!(store.has_password(UserId(2)));
        assert_eq!(store.session(&TokenKey::of(&kept.token)), Some(UserId(2)));
    }

    #[test]
    fn plain_tokens_are_not_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Accounts::open(dir.path(), TTL).expect("open");
        let issued = store.issue_token(UserId(3)).expect("issue");
        let text = fs::read_to_string(dir.path().join(LOG_FILE)).expect("read");
        assert!(!text.contains(&issued.token));
        assert!(text.contains(&TokenKey::of(&issued.token).to_hex()));
    }

    #[test]
    fn expired_sessions_are_refused_and_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Accounts::open(dir.path(), Duration::ZERO).expect("open");
        let issued = store.issue_token(UserId(1)).expect("issue");
        assert_eq!(store.session(&TokenKey::of(&issued.token)), None);
        drop(store);
        let text = {
            Accounts::open(dir.path(), TTL).expect("reopen");
            fs::read_to_string(dir.path().join(LOG_FILE)).expect("read")
        };
        assert_eq!(text, "");
    }

    #[test]
    fn a_torn_last_line_is_dropped_but_damage_elsewhere_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = Accounts::open(dir.path(), TTL).expect("open");
            store.set_password(UserId(1), "h1".into()).expect("set");
        }
        let path = dir.path().join(LOG_FILE);
        let good = fs::read_to_string(&path).expect("read");
        fs::write(&path, format!("{good}{{\"op\":\"pass")).expect("write");
        let store = Accounts::open(dir.path(), TTL).expect("torn tail is dropped");
        assert!(store.has_password(UserId(1)));
        drop(store);
        fs::write(&path, format!("garbage\n{good}")).expect("write");
        assert!(matches!(
            Accounts::open(dir.path(), TTL),
            Err(StoreError::Damaged(1))
        ));
    }

    #[test]
    fn the_log_is_compacted_when_mostly_garbage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Accounts::open(dir.path(), TTL).expect("open");
        store.set_password(UserId(1), "h1".into()).expect("set");
        for _ in 0..600 {
            let issued = store.issue_token(UserId(1)).expect("issue");
            store.revoke(&TokenKey::of(&issued.token)).expect("revoke");
        }
        let keep = store.issue_token(UserId(1)).expect("issue");
        let lines = fs::read_to_string(dir.path().join(LOG_FILE))
            .expect("read")
            .lines()
            .count();
        // 1,201 records were appended; compaction keeps the file near the live set.
        assert!(lines < 1000, "{lines} lines");
        drop(store);
        let store = Accounts::open(dir.path(), TTL).expect("reopen");
        assert_eq!(store.session(&TokenKey::of(&keep.token)), Some(UserId(1)));
        assert!(store.has_password(UserId(1)));
    }
}
