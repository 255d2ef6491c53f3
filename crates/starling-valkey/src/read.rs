//! The store traits' reads: point reads, ordered-map lookups and pages
//! (`ZRANGE ... BYLEX`), and merges over buckets for the global lists.

use starling_core::codec;
use starling_core::direct_codec as dc;
use starling_core::{
    AuthorMode, Avatar, Conversation, Counts, DeliveryId, DeviceDelivery, DeviceUsage,
    DirectMessage, Edge, Error, FanoutJob, Group, GroupId, InboxEntry, LinkKind, Phone, PhoneClaim,
    Post, PostId, Profile, Result, User, UserId, Username,
};
use starling_store::{
    ChangeStore, DirectStore, Direction, FanoutQueue, GraphStore, InboxStore, PostStore,
};

use crate::ValkeyBackend;
use crate::cluster::{attempt, slot_of};
use crate::layout::{BUCKETS, delivery_bucket, excl, incl, key_range, link_member, post_bucket};

/// Order of a `ZRANGE`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    Up,
    Down,
}

impl ValkeyBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.cluster.on_slot(slot_of(key), |c| {
            attempt(redis::cmd("GET").arg(key).query(c))
        })
    }

    fn hget(&self, key: &[u8], field: &[u8]) -> Result<Option<Vec<u8>>> {
        self.cluster.on_slot(slot_of(key), |c| {
            attempt(redis::cmd("HGET").arg(key).arg(field).query(c))
        })
    }

    /// Members between `min` and `max` (`ZRANGE` lex bounds), at most
    /// `limit`, in `order` (for `Down`, `min` and `max` are still the low
    /// and high bounds).
    fn range(
        &self,
        key: &[u8],
        min: &[u8],
        max: &[u8],
        order: Order,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.cluster.on_slot(slot_of(key), |c| {
            let mut cmd = redis::cmd("ZRANGE");
            cmd.arg(key);
            match order {
                Order::Up => cmd.arg(min).arg(max),
                Order::Down => cmd.arg(max).arg(min),
            };
            cmd.arg("BYLEX");
            if order == Order::Down {
                cmd.arg("REV");
            }
            // A negative count is "all of them".
            cmd.arg("LIMIT")
                .arg(0)
                .arg(i64::try_from(limit).unwrap_or(-1));
            attempt(cmd.query(c))
        })
    }

    /// The value stored under `k` in the ordered map `key`.
    fn lookup(&self, key: &[u8], k: &[u8]) -> Result<Option<Vec<u8>>> {
        let (min, max) = key_range(k);
        let found = self.range(key, &min, &max, Order::Up, 1)?;
        Ok(found
            .into_iter()
            .next()
            .filter(|m| m.starts_with(k))
            .map(|m| m[k.len()..].to_vec()))
    }

    /// The values stored under each of `ks` in the ordered map `key`: one
    /// pipeline.
    fn lookups(&self, key: &[u8], ks: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        if ks.is_empty() {
            return Ok(Vec::new());
        }
        let found: Vec<Vec<Vec<u8>>> = self.cluster.on_slot(slot_of(key), |c| {
            let mut pipe = redis::pipe();
            for k in ks {
                let (min, max) = key_range(k);
                pipe.cmd("ZRANGE")
                    .arg(key)
                    .arg(min)
                    .arg(max)
                    .arg("BYLEX")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(1);
            }
            attempt(pipe.query(c))
        })?;
        Ok(ks
            .iter()
            .zip(found)
            .map(|(k, ms)| {
                ms.into_iter()
                    .next()
                    .filter(|m| m.starts_with(k))
                    .map(|m| m[k.len()..].to_vec())
            })
            .collect())
    }

    /// Plain values of many keys, one pipeline per primary.
    fn multi_get(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let out: parking_lot::Mutex<Vec<Option<Vec<u8>>>> =
            parking_lot::Mutex::new(vec![None; keys.len()]);
        let items: Vec<(u16, usize)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (slot_of(k), i))
            .collect();
        self.cluster.on_nodes(&items, |c, mine| {
            let mut pipe = redis::pipe();
            for &(_, i) in mine {
                pipe.cmd("GET").arg(&keys[i]);
            }
            let values: Vec<Option<Vec<u8>>> = attempt(pipe.query(c))?;
            let mut out = out.lock();
            for (&(_, i), v) in mine.iter().zip(values) {
                out[i] = v;
            }
            Ok(())
        })?;
        Ok(out.into_inner())
    }

    /// The first `limit` members, in ascending order, over every bucket
    /// of a bucketed ordered map, from `min`.
    fn merged(
        &self,
        key: impl Fn(u64) -> Vec<u8>,
        min: &[u8],
        max: &[u8],
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        let mut all = Vec::new();
        for b in 0..BUCKETS {
            all.extend(self.range(&key(b), min, max, Order::Up, limit)?);
        }
        all.sort_unstable();
        all.truncate(limit);
        Ok(all)
    }
}

/// `ZRANGE` lower bound for the keys after `after` (fixed 8-byte keys),
/// or `None` when nothing can follow.
fn after_bound(after: Option<u64>) -> Option<Vec<u8>> {
    codec::u64_key_after(after).map(|k| incl(&k))
}

fn split8(m: &[u8]) -> Result<(&[u8], &[u8])> {
    if m.len() < 8 {
        return Err(Error::Corrupt("sorted-set member"));
    }
    Ok(m.split_at(8))
}

fn count(v: Option<i64>) -> u64 {
    v.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

impl GraphStore for ValkeyBackend {
    fn user(&self, id: UserId) -> Result<Option<User>> {
        self.get(&self.keys.user(id))?
            .map(|b| codec::decode_user(id, &b))
            .transpose()
    }

    fn user_id_by_name(&self, name: &Username) -> Result<Option<UserId>> {
        self.hget(&self.keys.names(name), &codec::name_key(name))?
            .map(|b| codec::decode_user_id(&b))
            .transpose()
    }

    fn last_user_id(&self) -> Result<Option<UserId>> {
        let k = self.keys.meta("last_user");
        self.range(&k, b"-", b"+", Order::Down, 1)?
            .first()
            .map(|m| codec::decode_user_key(m))
            .transpose()
    }

    fn edge(&self, follower: UserId, followee: UserId) -> Result<Option<PostId>> {
        self.lookup(&self.keys.following(follower), &codec::user_key(followee))?
            .map(|v| codec::decode_edge(followee, &v).map(|e| e.since))
            .transpose()
    }

    fn follower_edge(&self, followee: UserId, follower: UserId) -> Result<Option<Edge>> {
        self.lookup(&self.keys.followers(followee), &codec::user_key(follower))?
            .map(|v| codec::decode_edge(follower, &v))
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
        let Some(min) = after_bound(after.map(|a| a.0)) else {
            return Ok(());
        };
        let key = match dir {
            Direction::Followers => self.keys.followers(user),
            Direction::Following => self.keys.following(user),
        };
        for m in self.range(&key, &min, b"+", Order::Up, limit)? {
            let (k, v) = split8(&m)?;
            out.push(codec::decode_edge(codec::decode_user_key(k)?, v)?);
        }
        Ok(())
    }

    fn counts(&self, user: UserId) -> Result<Counts> {
        let key = self.keys.counts(user);
        let (followers, following): (Option<i64>, Option<i64>) =
            self.cluster.on_slot(slot_of(&key), |c| {
                attempt(
                    redis::cmd("HMGET")
                        .arg(&key)
                        .arg("followers")
                        .arg("following")
                        .query(c),
                )
            })?;
        Ok(Counts {
            followers: count(followers),
            following: count(following),
        })
    }

    fn author_mode(&self, author: UserId) -> Result<AuthorMode> {
        match self.get(&self.keys.author_mode(author))? {
            Some(b) => codec::decode_author_mode(&b),
            None => Ok(AuthorMode::default()),
        }
    }

    fn follower_edges(
        &self,
        followee: UserId,
        followers: &[UserId],
        out: &mut Vec<Edge>,
    ) -> Result<()> {
        let ks: Vec<Vec<u8>> = followers
            .iter()
            .map(|u| codec::user_key(*u).to_vec())
            .collect();
        let found = self.lookups(&self.keys.followers(followee), &ks)?;
        for (user, v) in followers.iter().zip(found) {
            if let Some(v) = v {
                out.push(codec::decode_edge(*user, &v)?);
            }
        }
        Ok(())
    }

    fn link(&self, kind: LinkKind, from: u64, to: u64) -> Result<Option<u64>> {
        self.lookup(&self.keys.links(kind, from), &link_member(kind, from, to))?
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
        let Some(min) = after_bound(after) else {
            return Ok(());
        };
        for m in self.range(&self.keys.links(kind, from), &min, b"+", Order::Up, limit)? {
            let (k, v) = split8(&m)?;
            out.push((codec::decode_link_value(k)?, codec::decode_link_value(v)?));
        }
        Ok(())
    }

    fn group(&self, id: GroupId) -> Result<Option<Group>> {
        self.get(&self.keys.group(id))?
            .map(|b| codec::decode_group(id, &b))
            .transpose()
    }

    fn last_group_id(&self) -> Result<Option<GroupId>> {
        let k = self.keys.meta("groups");
        self.range(&k, b"-", b"+", Order::Down, 1)?
            .first()
            .map(|m| codec::decode_group_key(m))
            .transpose()
    }
}

impl PostStore for ValkeyBackend {
    fn posts(&self, ids: &[PostId], out: &mut Vec<Option<Post>>) -> Result<()> {
        let keys: Vec<Vec<u8>> = ids.iter().map(|id| self.keys.post(*id)).collect();
        for (id, v) in ids.iter().zip(self.multi_get(&keys)?) {
            out.push(v.map(|b| codec::decode_post(*id, &b)).transpose()?);
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
        let max = before.map_or_else(|| b"+".to_vec(), |b| excl(&codec::post_key(b)));
        for m in self.range(
            &self.keys.author_posts(author),
            b"-",
            &max,
            Order::Down,
            limit,
        )? {
            out.push(codec::decode_post_key(&m)?);
        }
        Ok(())
    }

    fn last_post_id(&self) -> Result<Option<PostId>> {
        let mut last = None;
        for b in 0..BUCKETS {
            if let Some(m) = self
                .range(&self.keys.post_ids(b), b"-", b"+", Order::Down, 1)?
                .first()
            {
                last = last.max(Some(codec::decode_post_key(m)?));
            }
        }
        Ok(last)
    }

    fn scan_posts(&self, after: Option<PostId>, limit: usize, out: &mut Vec<Post>) -> Result<()> {
        let Some(min) = after_bound(after.map(|a| a.0)) else {
            return Ok(());
        };
        let ids = self
            .merged(|b| self.keys.post_ids(b), &min, b"+", limit)?
            .iter()
            .map(|m| codec::decode_post_key(m))
            .collect::<Result<Vec<_>>>()?;
        let mut found = Vec::with_capacity(ids.len());
        self.posts(&ids, &mut found)?;
        out.extend(found.into_iter().flatten());
        Ok(())
    }
}

impl InboxStore for ValkeyBackend {
    fn inbox(
        &self,
        owner: UserId,
        before: Option<PostId>,
        limit: usize,
        out: &mut Vec<InboxEntry>,
    ) -> Result<()> {
        let max = before.map_or_else(|| b"+".to_vec(), |b| excl(&codec::post_key(b)));
        for m in self.range(&self.keys.inbox(owner), b"-", &max, Order::Down, limit)? {
            let (k, v) = split8(&m)?;
            out.push(codec::decode_inbox_entry(codec::decode_post_key(k)?, v)?);
        }
        Ok(())
    }

    fn inbox_floor(&self, owner: UserId) -> Result<Option<PostId>> {
        self.range(&self.keys.floor(owner), b"-", b"+", Order::Down, 1)?
            .first()
            .map(|m| codec::decode_post_key(m))
            .transpose()
    }

    fn pulled(&self, reader: UserId, out: &mut Vec<Edge>) -> Result<()> {
        for m in self.range(&self.keys.pulled(reader), b"-", b"+", Order::Up, usize::MAX)? {
            let (k, v) = split8(&m)?;
            let author = codec::decode_user_key(k)?;
            out.push(codec::decode_pulled(&codec::pulled_key(reader, author), v)?);
        }
        Ok(())
    }

    fn last_reads(
        &self,
        after: Option<UserId>,
        limit: usize,
        out: &mut Vec<(UserId, u64)>,
    ) -> Result<()> {
        let Some(min) = after_bound(after.map(|a| a.0)) else {
            return Ok(());
        };
        for m in self.merged(|b| self.keys.last_reads(b), &min, b"+", limit)? {
            let (k, v) = split8(&m)?;
            out.push((codec::decode_user_key(k)?, codec::decode_millis(v)?));
        }
        Ok(())
    }
}

impl FanoutQueue for ValkeyBackend {
    fn job(&self, post: PostId) -> Result<Option<FanoutJob>> {
        self.lookup(&self.keys.jobs(post_bucket(post)), &codec::job_key(post))?
            .map(|v| codec::decode_job(post, &v))
            .transpose()
    }

    fn jobs(&self, after: Option<PostId>, limit: usize, out: &mut Vec<FanoutJob>) -> Result<()> {
        let Some(min) = after_bound(after.map(|a| a.0)) else {
            return Ok(());
        };
        for m in self.merged(|b| self.keys.jobs(b), &min, b"+", limit)? {
            let (k, v) = split8(&m)?;
            out.push(codec::decode_job(codec::decode_post_key(k)?, v)?);
        }
        Ok(())
    }
}

impl ChangeStore for ValkeyBackend {
    fn changes_after(
        &self,
        after: u64,
        limit: usize,
        out: &mut Vec<starling_core::ChangeRecord>,
    ) -> Result<()> {
        let Some(min) = after_bound(Some(after)) else {
            return Ok(());
        };
        for m in self.range(&self.keys.changes(), &min, b"+", Order::Up, limit)? {
            let (k, v) = split8(&m)?;
            out.push(codec::decode_change(codec::decode_change_key(k)?, v)?);
        }
        Ok(())
    }

    fn change_floor(&self) -> Result<u64> {
        self.range(&self.keys.change_floor(), b"-", b"+", Order::Down, 1)?
            .first()
            .map_or(Ok(0), |m| codec::decode_change_key(m))
    }

    fn last_change_position(&self) -> Result<u64> {
        self.range(&self.keys.changes(), b"-", b"+", Order::Down, 1)?
            .first()
            .map_or(Ok(0), |m| codec::decode_change_key(split8(m)?.0))
    }
}

impl DirectStore for ValkeyBackend {
    fn profile(&self, user: UserId) -> Result<Option<Profile>> {
        self.get(&self.keys.profile(user))?
            .map(|b| dc::decode_profile(&b))
            .transpose()
    }

    fn avatar(&self, user: UserId) -> Result<Option<Avatar>> {
        self.get(&self.keys.avatar(user))?
            .map(|b| dc::decode_avatar(&b))
            .transpose()
    }

    fn phone_of(&self, user: UserId) -> Result<Option<Phone>> {
        self.get(&self.keys.phone(user))?
            .map(|b| dc::decode_phone(&b))
            .transpose()
    }

    fn user_by_phone(&self, phone: &Phone) -> Result<Option<UserId>> {
        self.hget(&self.keys.phones(phone), dc::phone_bytes(phone))?
            .map(|b| dc::decode_user_id(&b))
            .transpose()
    }

    fn phone_claim(&self, user: UserId) -> Result<Option<PhoneClaim>> {
        self.get(&self.keys.claim(user))?
            .map(|b| dc::decode_claim(user, &b))
            .transpose()
    }

    fn phone_claims(&self, phone: &Phone, out: &mut Vec<PhoneClaim>) -> Result<()> {
        let prefix = dc::claim_index_prefix(phone);
        let (min, max) = key_range(&prefix);
        // Members: the index key (its length fixed by the number), then
        // the claim record.
        let at = prefix.len() + 8;
        for m in self.range(&self.keys.claims(phone), &min, &max, Order::Up, usize::MAX)? {
            let Some((k, v)) = m.split_at_checked(at) else {
                return Err(Error::Corrupt("phone claim member"));
            };
            let (number, user) = dc::decode_claim_index_key(k)?;
            let claim = dc::decode_claim(user, v)?;
            if number != *phone || claim.phone != *phone {
                return Err(Error::Corrupt("phone claim index"));
            }
            out.push(claim);
        }
        Ok(())
    }

    fn last_message_id(&self) -> Result<Option<PostId>> {
        let k = self.keys.meta("last_message");
        self.range(&k, b"-", b"+", Order::Down, 1)?
            .first()
            .map(|m| dc::decode_post_id_value(m))
            .transpose()
    }

    fn conversation(&self, owner: UserId, with: UserId) -> Result<Option<Conversation>> {
        self.hget(&self.keys.conversations(owner), &dc::user_key(with))?
            .map(|v| dc::decode_conversation(&dc::conversation_key(owner, with), &v))
            .transpose()
    }

    fn conversations(
        &self,
        owner: UserId,
        before: Option<PostId>,
        limit: usize,
        out: &mut Vec<Conversation>,
    ) -> Result<()> {
        let max = before.map_or_else(|| b"+".to_vec(), |b| excl(&dc::post_id_value(b)));
        let members = self.range(
            &self.keys.conversation_index(owner),
            b"-",
            &max,
            Order::Down,
            limit,
        )?;
        for m in members {
            let (_, with) = split8(&m)?;
            let with = dc::decode_user_id(with)?;
            if let Some(c) = self.conversation(owner, with)? {
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
        let max = before.map_or_else(|| b"+".to_vec(), |x| excl(&dc::post_id_value(x)));
        for m in self.range(&self.keys.messages(a, b), b"-", &max, Order::Down, limit)? {
            let (k, v) = split8(&m)?;
            let id = dc::decode_post_id_value(k)?;
            out.push(dc::decode_message(&dc::message_key(a, b, id), v)?);
        }
        Ok(())
    }

    fn device_sub(&self, followee: UserId, follower: UserId) -> Result<bool> {
        let key = self.keys.device_subs(followee);
        let score: Option<f64> = self.cluster.on_slot(slot_of(&key), |c| {
            attempt(
                redis::cmd("ZSCORE")
                    .arg(&key)
                    .arg(&dc::user_key(follower))
                    .query(c),
            )
        })?;
        Ok(score.is_some())
    }

    fn device_subs(
        &self,
        followee: UserId,
        after: Option<UserId>,
        through: UserId,
        limit: usize,
        out: &mut Vec<UserId>,
    ) -> Result<()> {
        if after.is_some_and(|a| a >= through) {
            return Ok(());
        }
        let min = after.map_or_else(|| b"-".to_vec(), |a| excl(&dc::user_key(a)));
        let max = incl(&dc::user_key(through));
        for m in self.range(
            &self.keys.device_subs(followee),
            &min,
            &max,
            Order::Up,
            limit,
        )? {
            out.push(dc::decode_user_id(&m)?);
        }
        Ok(())
    }

    fn delivery(&self, id: DeliveryId) -> Result<Option<DeviceDelivery>> {
        let k = dc::delivery_key(id);
        self.lookup(&self.keys.outbox(delivery_bucket(id)), &k)?
            .map(|v| dc::decode_delivery(&k, &v))
            .transpose()
    }

    fn due_deliveries(
        &self,
        now_ms: u64,
        limit: usize,
        out: &mut Vec<DeviceDelivery>,
    ) -> Result<()> {
        let max = excl(&dc::leases_due_end(now_ms));
        for m in self.merged(|b| self.keys.leases(b), b"-", &max, limit)? {
            let (_, id) = dc::decode_lease_key(&m)?;
            if let Some(d) = self.delivery(id)? {
                out.push(d);
            }
        }
        Ok(())
    }

    fn device_usage(&self, user: UserId, day: u32) -> Result<DeviceUsage> {
        match self.hget(&self.keys.usage(user), day.to_string().as_bytes())? {
            Some(v) => dc::decode_usage(&v),
            None => Ok(DeviceUsage::default()),
        }
    }
}
