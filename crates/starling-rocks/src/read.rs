//! The seam's reads over RocksDB: point reads, batched reads and bounded
//! scans of the column families.

use rocksdb::{Direction as Scan, IteratorMode, ReadOptions};
use starling_core::codec::{self, CounterKind};
use starling_core::direct_codec as dcodec;
use starling_core::{
    AuthorMode, Avatar, Conversation, Counts, DeliveryId, DeviceDelivery, DeviceUsage,
    DirectMessage, Edge, FanoutJob, Group, GroupId, InboxEntry, LinkKind, Phone, PhoneClaim, Post,
    PostId, Profile, Result, User, UserId, Username,
};
use starling_store::{
    ChangeStore, DirectStore, Direction, FanoutQueue, GraphStore, InboxStore, PostStore,
};

use crate::db::{RocksBackend, storage};
use crate::families::*;

/// A scan asked for more records than this reads past the block cache:
/// such a walk (a page of a big author's followers, for a bulk fan-out)
/// reads each block once, and filling the cache with it would push out
/// the blocks that short reads come back for, at a cache insertion a
/// block.
const LONG_SCAN: usize = 16_384;

impl RocksBackend {
    /// Scans `family` forward from `start` within `user`'s prefix, calling
    /// `each` with (key, value) until it returns false or `limit` is reached.
    fn scan_user(
        &self,
        family: &str,
        user: UserId,
        start: &[u8],
        limit: usize,
        mut each: impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<()> {
        if limit == 0 {
            return Ok(());
        }
        let mut read = ReadOptions::default();
        read.set_iterate_upper_bound(codec::user_prefix_end(user));
        read.set_prefix_same_as_start(true);
        read.fill_cache(limit <= LONG_SCAN);
        let mut iter = self.db.raw_iterator_cf_opt(self.cf(family), read);
        iter.seek(start);
        let mut n = 0;
        while iter.valid() && n < limit {
            if let (Some(k), Some(v)) = (iter.key(), iter.value()) {
                each(k, v)?;
                n += 1;
            }
            iter.next();
        }
        iter.status().map_err(storage)
    }

    fn last_key(&self, family: &str) -> Result<Option<Vec<u8>>> {
        let mut iter = self.db.iterator_cf(self.cf(family), IteratorMode::End);
        match iter.next() {
            Some(Ok((k, _))) => Ok(Some(k.to_vec())),
            Some(Err(e)) => Err(storage(e)),
            None => Ok(None),
        }
    }

    /// Where a newest-first scan of a per-user family starts, strictly
    /// below `before`; `None` when nothing can be older.
    fn newest_first_start(user: UserId, before: Option<PostId>) -> Option<[u8; 16]> {
        match before {
            None => Some(codec::inbox_key(user, PostId(u64::MAX))),
            Some(PostId(0)) => None,
            Some(PostId(b)) => Some(codec::inbox_key(user, PostId(b - 1))),
        }
    }
}

impl RocksBackend {
    /// Scans `family` forward from `start` to `end` (exclusive), calling
    /// `each` until it returns false.
    fn scan_range(
        &self,
        family: &str,
        start: &[u8],
        end: Vec<u8>,
        mut each: impl FnMut(&[u8], &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let mut read = ReadOptions::default();
        read.set_iterate_upper_bound(end);
        let mut iter = self.db.raw_iterator_cf_opt(self.cf(family), read);
        iter.seek(start);
        while iter.valid() {
            if let (Some(k), Some(v)) = (iter.key(), iter.value())
                && !each(k, v)?
            {
                break;
            }
            iter.next();
        }
        iter.status().map_err(storage)
    }
}

impl GraphStore for RocksBackend {
    fn user(&self, id: UserId) -> Result<Option<User>> {
        self.get(USERS, &codec::user_key(id))?
            .map(|v| codec::decode_user(id, &v))
            .transpose()
    }

    fn user_id_by_name(&self, name: &Username) -> Result<Option<UserId>> {
        self.get(NAMES, &codec::name_key(name))?
            .map(|v| codec::decode_user_id(&v))
            .transpose()
    }

    fn last_user_id(&self) -> Result<Option<UserId>> {
        self.last_key(USERS)?
            .map(|k| codec::decode_user_key(&k))
            .transpose()
    }

    fn edge(&self, follower: UserId, followee: UserId) -> Result<Option<PostId>> {
        self.get(FOLLOWING, &codec::edge_key(follower, followee))?
            .map(|v| codec::decode_edge(followee, &v).map(|e| e.since))
            .transpose()
    }

    fn follower_edge(&self, followee: UserId, follower: UserId) -> Result<Option<Edge>> {
        self.get(FOLLOWERS, &codec::edge_key(followee, follower))?
            .map(|v| codec::decode_edge(follower, &v))
            .transpose()
    }

    fn follower_edges(
        &self,
        followee: UserId,
        followers: &[UserId],
        out: &mut Vec<Edge>,
    ) -> Result<()> {
        let keys: Vec<[u8; 16]> = followers
            .iter()
            .map(|f| codec::edge_key(followee, *f))
            .collect();
        // Ascending followers under one followee: the keys are sorted.
        let found = self
            .db
            .batched_multi_get_cf(self.cf(FOLLOWERS), keys.iter(), true);
        for (follower, value) in followers.iter().zip(found) {
            if let Some(v) = value.map_err(storage)? {
                out.push(codec::decode_edge(*follower, &v)?);
            }
        }
        Ok(())
    }

    fn author_mode(&self, author: UserId) -> Result<AuthorMode> {
        self.get(AUTHORS, &codec::user_key(author))?
            .map_or(Ok(AuthorMode::Push), |v| codec::decode_author_mode(&v))
    }

    fn link(&self, kind: LinkKind, from: u64, to: u64) -> Result<Option<u64>> {
        self.get(LINKS, &codec::link_key(kind, from, to))?
            .map(|v| codec::decode_link_value(&v))
            .transpose()
    }

    fn links(
        &self,
        kind: LinkKind,
        from: u64,
        after: Option<u64>,
        limit: usize,
        out: &mut Vec<(u64, u64)>,
    ) -> Result<()> {
        let start = match after {
            None => codec::link_key(kind, from, 0),
            Some(u64::MAX) => return Ok(()),
            Some(a) => codec::link_key(kind, from, a + 1),
        };
        let prefix = codec::link_prefix(kind, from);
        let mut read = ReadOptions::default();
        read.set_prefix_same_as_start(true);
        let mut iter = self.db.raw_iterator_cf_opt(self.cf(LINKS), read);
        iter.seek(start);
        let mut n = 0;
        while iter.valid() && n < limit {
            if let (Some(k), Some(v)) = (iter.key(), iter.value()) {
                if !k.starts_with(&prefix) {
                    break;
                }
                let (_, _, to) = codec::decode_link_key(k)?;
                out.push((to, codec::decode_link_value(v)?));
                n += 1;
            }
            iter.next();
        }
        iter.status().map_err(storage)
    }

    fn group(&self, id: GroupId) -> Result<Option<Group>> {
        self.get(GROUPS, &codec::group_key(id))?
            .map(|v| codec::decode_group(id, &v))
            .transpose()
    }

    fn last_group_id(&self) -> Result<Option<GroupId>> {
        self.last_key(GROUPS)?
            .map(|k| codec::decode_group_key(&k))
            .transpose()
    }

    fn edges(
        &self,
        user: UserId,
        dir: Direction,
        after: Option<UserId>,
        limit: usize,
        out: &mut Vec<Edge>,
    ) -> Result<()> {
        let family = match dir {
            Direction::Followers => FOLLOWERS,
            Direction::Following => FOLLOWING,
        };
        let start = match after {
            None => UserId(0),
            Some(UserId(u64::MAX)) => return Ok(()),
            Some(UserId(a)) => UserId(a + 1),
        };
        self.scan_user(
            family,
            user,
            &codec::edge_key(user, start),
            limit,
            |k, v| {
                let (_, other) = codec::decode_edge_key(k)?;
                out.push(codec::decode_edge(other, v)?);
                Ok(())
            },
        )
    }

    fn counts(&self, user: UserId) -> Result<Counts> {
        let cf = self.cf(COUNTERS);
        let keys = [
            codec::counter_key(user, CounterKind::Followers),
            codec::counter_key(user, CounterKind::Following),
        ];
        let mut values = self
            .db
            .batched_multi_get_cf(cf, keys.iter(), true)
            .into_iter()
            .map(|r| match r.map_err(storage)? {
                Some(v) => codec::decode_count(&v).map(|c| c.max(0) as u64),
                None => Ok(0),
            });
        let followers = values.next().unwrap_or(Ok(0))?;
        let following = values.next().unwrap_or(Ok(0))?;
        Ok(Counts {
            followers,
            following,
        })
    }
}

impl PostStore for RocksBackend {
    fn posts(&self, ids: &[PostId], out: &mut Vec<Option<Post>>) -> Result<()> {
        let keys: Vec<[u8; 8]> = ids.iter().map(|id| codec::post_key(*id)).collect();
        let found = self
            .db
            .batched_multi_get_cf(self.cf(POSTS), keys.iter(), false);
        for (id, value) in ids.iter().zip(found) {
            out.push(
                value
                    .map_err(storage)?
                    .map(|v| codec::decode_post(*id, &v))
                    .transpose()?,
            );
        }
        Ok(())
    }

    fn author_posts(
        &self,
        author: UserId,
        before: Option<PostId>,
        limit: usize,
        out: &mut Vec<PostId>,
    ) -> Result<()> {
        let Some(start) = Self::newest_first_start(author, before) else {
            return Ok(());
        };
        self.scan_user(AUTHOR_POSTS, author, &start, limit, |k, _| {
            out.push(codec::decode_author_post_key(k)?.1);
            Ok(())
        })
    }

    fn last_post_id(&self) -> Result<Option<PostId>> {
        self.last_key(POSTS)?
            .map(|k| codec::decode_post_key(&k))
            .transpose()
    }

    fn scan_posts(&self, after: Option<PostId>, limit: usize, out: &mut Vec<Post>) -> Result<()> {
        let Some(start) = codec::u64_key_after(after.map(|p| p.0)) else {
            return Ok(());
        };
        self.scan_all(POSTS, &start, limit, |k, v| {
            out.push(codec::decode_post(codec::decode_post_key(k)?, v)?);
            Ok(())
        })
    }
}

impl InboxStore for RocksBackend {
    fn inbox(
        &self,
        owner: UserId,
        before: Option<PostId>,
        limit: usize,
        out: &mut Vec<InboxEntry>,
    ) -> Result<()> {
        let Some(start) = Self::newest_first_start(owner, before) else {
            return Ok(());
        };
        self.scan_user(INBOX, owner, &start, limit, |k, v| {
            let (_, post) = codec::decode_inbox_key(k)?;
            out.push(codec::decode_inbox_entry(post, v)?);
            Ok(())
        })
    }

    fn inbox_floor(&self, owner: UserId) -> Result<Option<PostId>> {
        self.get(INBOX_FLOORS, &codec::user_key(owner))?
            .map(|v| codec::decode_millis(&v).map(PostId))
            .transpose()
    }

    fn pulled(&self, reader: UserId, out: &mut Vec<Edge>) -> Result<()> {
        let start = codec::pulled_key(reader, UserId(0));
        self.scan_user(PULLED, reader, &start, usize::MAX, |k, v| {
            out.push(codec::decode_pulled(k, v)?);
            Ok(())
        })
    }

    fn last_reads(
        &self,
        after: Option<UserId>,
        limit: usize,
        out: &mut Vec<(UserId, u64)>,
    ) -> Result<()> {
        let Some(start) = codec::u64_key_after(after.map(|u| u.0)) else {
            return Ok(());
        };
        self.scan_all(LAST_READS, &start, limit, |k, v| {
            out.push((codec::decode_user_key(k)?, codec::decode_millis(v)?));
            Ok(())
        })
    }
}

impl RocksBackend {
    fn scan_all(
        &self,
        family: &str,
        start: &[u8],
        limit: usize,
        mut each: impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<()> {
        let iter = self
            .db
            .iterator_cf(self.cf(family), IteratorMode::From(start, Scan::Forward));
        for item in iter.take(limit) {
            let (k, v) = item.map_err(storage)?;
            each(&k, &v)?;
        }
        Ok(())
    }
}

impl ChangeStore for RocksBackend {
    fn changes_after(
        &self,
        after: u64,
        limit: usize,
        out: &mut Vec<starling_core::ChangeRecord>,
    ) -> Result<()> {
        let Some(start) = codec::u64_key_after(Some(after)) else {
            return Ok(());
        };
        self.scan_all(CHANGES, &start, limit, |k, v| {
            out.push(codec::decode_change(codec::decode_change_key(k)?, v)?);
            Ok(())
        })
    }

    fn change_floor(&self) -> Result<u64> {
        self.get(CHANGES, codec::CHANGE_FLOOR_KEY)?
            .map_or(Ok(0), |v| codec::decode_change_floor(&v))
    }

    fn last_change_position(&self) -> Result<u64> {
        match self.last_key(CHANGES)? {
            // Only the floor's empty key: no record.
            Some(k) if !k.is_empty() => codec::decode_change_key(&k),
            _ => Ok(0),
        }
    }
}

impl FanoutQueue for RocksBackend {
    fn job(&self, post: PostId) -> Result<Option<FanoutJob>> {
        self.get(JOBS, &codec::job_key(post))?
            .map(|v| codec::decode_job(post, &v))
            .transpose()
    }

    fn jobs(&self, after: Option<PostId>, limit: usize, out: &mut Vec<FanoutJob>) -> Result<()> {
        let Some(start) = codec::u64_key_after(after.map(|p| p.0)) else {
            return Ok(());
        };
        self.scan_all(JOBS, &start, limit, |k, v| {
            out.push(codec::decode_job(codec::decode_post_key(k)?, v)?);
            Ok(())
        })
    }
}

impl DirectStore for RocksBackend {
    fn profile(&self, user: UserId) -> Result<Option<Profile>> {
        self.get(PROFILES, &dcodec::user_key(user))?
            .map(|v| dcodec::decode_profile(&v))
            .transpose()
    }

    fn avatar(&self, user: UserId) -> Result<Option<Avatar>> {
        // One copy, out of RocksDB's pinned block into shared bytes; the
        // picture is a slice of them, and no later step copies it.
        let pinned = self
            .db
            .get_pinned_cf(self.cf(AVATARS), dcodec::user_key(user))
            .map_err(storage)?;
        pinned
            .map(|v| dcodec::decode_avatar_bytes(bytes::Bytes::copy_from_slice(&v)))
            .transpose()
    }

    fn phone_of(&self, user: UserId) -> Result<Option<Phone>> {
        self.get(PHONES, &dcodec::user_key(user))?
            .map(|v| dcodec::decode_phone(&v))
            .transpose()
    }

    fn user_by_phone(&self, phone: &Phone) -> Result<Option<UserId>> {
        self.get(PHONE_INDEX, dcodec::phone_bytes(phone))?
            .map(|v| dcodec::decode_user_id(&v))
            .transpose()
    }

    fn phone_claim(&self, user: UserId) -> Result<Option<PhoneClaim>> {
        self.get(PHONE_CLAIMS, &dcodec::user_key(user))?
            .map(|v| dcodec::decode_claim(user, &v))
            .transpose()
    }

    fn phone_claims(&self, phone: &Phone, out: &mut Vec<PhoneClaim>) -> Result<()> {
        let start = dcodec::claim_index_prefix(phone);
        let mut end = start.clone();
        end.extend_from_slice(&[0xff; 9]);
        let mut users = Vec::new();
        self.scan_range(CLAIM_INDEX, &start, end, |k, _| {
            users.push(dcodec::decode_claim_index_key(k)?.1);
            Ok(true)
        })?;
        for user in users {
            match self.phone_claim(user)? {
                Some(c) if c.phone == *phone => out.push(c),
                _ => return Err(starling_core::Error::Corrupt("phone claim index")),
            }
        }
        Ok(())
    }

    fn last_message_id(&self) -> Result<Option<PostId>> {
        self.get(CONVERSATIONS, dcodec::LAST_MESSAGE_KEY)?
            .map(|v| dcodec::decode_post_id_value(&v))
            .transpose()
    }

    fn conversation(&self, owner: UserId, with: UserId) -> Result<Option<Conversation>> {
        let key = dcodec::conversation_key(owner, with);
        self.get(CONVERSATIONS, &key)?
            .map(|v| dcodec::decode_conversation(&key, &v))
            .transpose()
    }

    fn conversations(
        &self,
        owner: UserId,
        before: Option<PostId>,
        limit: usize,
        out: &mut Vec<Conversation>,
    ) -> Result<()> {
        let start = match before {
            None => dcodec::conversation_index_key(owner, PostId(u64::MAX), UserId(0)),
            Some(PostId(0)) => return Ok(()),
            Some(PostId(b)) => dcodec::conversation_index_key(owner, PostId(b - 1), UserId(0)),
        };
        let mut withs = Vec::with_capacity(limit.min(1024));
        self.scan_range(
            CONVERSATION_INDEX,
            &start,
            dcodec::conversation_index_end(owner),
            |k, _| {
                if withs.len() == limit {
                    return Ok(false);
                }
                let (_, last, with) = dcodec::decode_conversation_index_key(k)?;
                withs.push((last, with));
                Ok(true)
            },
        )?;
        for (last, with) in withs {
            // A message between the scan and this read moved the entry to
            // the head of the list: it shows there, not here.
            if let Some(c) = self.conversation(owner, with)?
                && c.last == last
            {
                out.push(c);
            }
        }
        Ok(())
    }

    fn messages(
        &self,
        a: UserId,
        b: UserId,
        before: Option<PostId>,
        limit: usize,
        out: &mut Vec<DirectMessage>,
    ) -> Result<()> {
        let start = match before {
            None => dcodec::message_key(a, b, PostId(u64::MAX)),
            Some(PostId(0)) => return Ok(()),
            Some(PostId(x)) => dcodec::message_key(a, b, PostId(x - 1)),
        };
        let mut n = 0;
        self.scan_range(MESSAGES, &start, dcodec::messages_end(a, b), |k, v| {
            if n == limit {
                return Ok(false);
            }
            out.push(dcodec::decode_message(k, v)?);
            n += 1;
            Ok(true)
        })
    }

    fn device_sub(&self, followee: UserId, follower: UserId) -> Result<bool> {
        Ok(self
            .get(DEVICE_SUBS, &dcodec::device_sub_key(followee, follower))?
            .is_some())
    }

    fn device_subs(
        &self,
        followee: UserId,
        after: Option<UserId>,
        through: UserId,
        limit: usize,
        out: &mut Vec<UserId>,
    ) -> Result<()> {
        let first = match after {
            None => UserId(0),
            Some(UserId(u64::MAX)) => return Ok(()),
            Some(UserId(a)) => UserId(a + 1),
        };
        if first > through {
            return Ok(());
        }
        if limit == 0 {
            return Ok(());
        }
        let mut taken = 0;
        let end = dcodec::device_subs_end(followee, through);
        self.scan_range(
            DEVICE_SUBS,
            &dcodec::device_sub_key(followee, first),
            end,
            |k, _| {
                out.push(dcodec::decode_device_sub_key(k)?.1);
                taken += 1;
                Ok(taken < limit)
            },
        )
    }

    fn delivery(&self, id: DeliveryId) -> Result<Option<DeviceDelivery>> {
        let key = dcodec::delivery_key(id);
        self.get(OUTBOX, &key)?
            .map(|v| dcodec::decode_delivery(&key, &v))
            .transpose()
    }

    fn due_deliveries(
        &self,
        now_ms: u64,
        limit: usize,
        out: &mut Vec<DeviceDelivery>,
    ) -> Result<()> {
        let mut ids = Vec::with_capacity(limit.min(1024));
        self.scan_range(LEASES, &[], dcodec::leases_due_end(now_ms), |k, _| {
            if ids.len() == limit {
                return Ok(false);
            }
            ids.push(dcodec::decode_lease_key(k)?.1);
            Ok(true)
        })?;
        for id in ids {
            if let Some(d) = self.delivery(id)? {
                out.push(d);
            }
        }
        Ok(())
    }

    fn device_usage(&self, user: UserId, day: u32) -> Result<DeviceUsage> {
        self.get(USAGE, &dcodec::usage_key(user, day))?
            .map_or(Ok(DeviceUsage::default()), |v| dcodec::decode_usage(&v))
    }
}
