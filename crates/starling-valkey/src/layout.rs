//! The key layout: every key the backend writes, named by the hash tag
//! that decides its slot, and the translation of each [`Mutation`] into
//! operations on those keys, grouped by slot.
//!
//! Keys are `NAMESPACE:{TAG}:NAME`. Members and values are laid out by
//! `starling_core::codec` and `direct_codec` (the same bytes RocksDB
//! stores); an ordered map is a sorted set whose members are a fixed-width
//! key followed by the value, all with score 0, so that they sort by key
//! (`ZRANGE ... BYLEX`).

use std::collections::HashMap;

use starling_core::codec::{self, prefix_end};
use starling_core::direct_codec as dc;
use starling_core::{
    DirectMutation, EdgeMode, GroupId, LinkKind, Mutation, Phone, PostId, Toggle, UserId, Username,
};

use crate::cluster::{fence_tag, slot_of};

/// Buckets of the keys that are not per user or per group (posts and
/// jobs, name and phone indexes, last reads, the device outbox).
pub(crate) const BUCKETS: u64 = 16;

/// The format this version writes, recorded under the namespace.
pub(crate) const FORMAT: &str = "starling-valkey/1";

fn mix(v: u64) -> u64 {
    v.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60
}

fn bytes_bucket(b: &[u8]) -> u64 {
    // FNV-1a.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= u64::from(x);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h % BUCKETS
}

/// The bucket of a post (and its job).
pub(crate) fn post_bucket(id: PostId) -> u64 {
    mix(id.0) % BUCKETS
}

/// The bucket of a device delivery.
pub(crate) fn delivery_bucket(id: starling_core::DeliveryId) -> u64 {
    mix(id.post.0 ^ id.recipient.0.rotate_left(32)) % BUCKETS
}

/// The bucket of a user's last read.
pub(crate) fn read_bucket(user: UserId) -> u64 {
    mix(user.0) % BUCKETS
}

/// The key names of one namespace.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    ns: String,
}

macro_rules! user_keys {
    ($($name:ident => $suffix:literal),* $(,)?) => {
        $(
            pub(crate) fn $name(&self, user: UserId) -> Vec<u8> {
                self.key(&format!("u:{}", user.0), $suffix)
            }
        )*
    };
}

impl Keys {
    pub(crate) fn new(ns: &str) -> Keys {
        Keys { ns: ns.to_owned() }
    }

    fn key(&self, tag: &str, name: &str) -> Vec<u8> {
        format!("{}:{{{tag}}}:{name}", self.ns).into_bytes()
    }

    user_keys! {
        user => "user",
        following => "following",
        followers => "followers",
        counts => "counts",
        pulled => "pulled",
        author_mode => "mode",
        floor => "floor",
        inbox => "inbox",
        author_posts => "posts",
        profile => "profile",
        avatar => "avatar",
        phone => "phone",
        claim => "claim",
        conversations => "conv",
        conversation_index => "convidx",
        device_subs => "devsubs",
        usage => "usage",
    }

    /// The messages between `a` and `b`, under the lower id's tag.
    pub(crate) fn messages(&self, a: UserId, b: UserId) -> Vec<u8> {
        let (lo, hi) = dc::conversation_pair(a, b);
        self.key(&format!("u:{}", lo.0), &format!("dm:{}", hi.0))
    }

    pub(crate) fn names(&self, name: &Username) -> Vec<u8> {
        let b = bytes_bucket(&codec::name_key(name));
        self.key(&format!("n:{b}"), "names")
    }

    pub(crate) fn phones(&self, phone: &Phone) -> Vec<u8> {
        let b = bytes_bucket(dc::phone_bytes(phone));
        self.key(&format!("ph:{b}"), "phones")
    }

    /// The pending links of a number (an ordered map in the number's
    /// bucket, beside its entry in [`Keys::phones`]).
    pub(crate) fn claims(&self, phone: &Phone) -> Vec<u8> {
        let b = bytes_bucket(dc::phone_bytes(phone));
        self.key(&format!("ph:{b}"), "claims")
    }

    pub(crate) fn post(&self, id: PostId) -> Vec<u8> {
        self.key(&format!("p:{}", post_bucket(id)), &format!("post:{}", id.0))
    }

    pub(crate) fn post_ids(&self, bucket: u64) -> Vec<u8> {
        self.key(&format!("p:{bucket}"), "ids")
    }

    pub(crate) fn jobs(&self, bucket: u64) -> Vec<u8> {
        self.key(&format!("p:{bucket}"), "jobs")
    }

    pub(crate) fn last_reads(&self, bucket: u64) -> Vec<u8> {
        self.key(&format!("r:{bucket}"), "reads")
    }

    pub(crate) fn outbox(&self, bucket: u64) -> Vec<u8> {
        self.key(&format!("o:{bucket}"), "outbox")
    }

    pub(crate) fn leases(&self, bucket: u64) -> Vec<u8> {
        self.key(&format!("o:{bucket}"), "leases")
    }

    /// A link list: under the user for blocks, mutes, a user's groups,
    /// mentions, likes, protection and follow requests (both ways); under the group for members and group posts;
    /// under the post's bucket for replies, reposts and who likes a post
    /// (so a like's `LikedBy` link shares a slot with the post record
    /// whose count it changes).
    pub(crate) fn links(&self, kind: LinkKind, from: u64) -> Vec<u8> {
        let tag = match kind {
            LinkKind::Blocks
            | LinkKind::BlockedBy
            | LinkKind::Mutes
            | LinkKind::OwnerGroups
            | LinkKind::Mentions
            | LinkKind::Likes
            | LinkKind::Protected
            | LinkKind::FollowRequests
            | LinkKind::RequestsSent
            | LinkKind::MemberOf
            | LinkKind::Deleted => format!("u:{from}"),
            LinkKind::Members | LinkKind::GroupPosts => format!("g:{from}"),
            LinkKind::Replies | LinkKind::Reposts | LinkKind::LikedBy => {
                format!("p:{}", post_bucket(PostId(from)))
            }
        };
        self.key(&tag, &format!("link:{}:{from}", kind as u8))
    }

    pub(crate) fn group(&self, id: GroupId) -> Vec<u8> {
        self.key(&format!("g:{}", id.0), "group")
    }

    /// The change feed: one ordered map (position -> record), beside its
    /// floor, so that a read of the feed is one range on one slot.
    pub(crate) fn changes(&self) -> Vec<u8> {
        self.key("c", "changes")
    }

    /// The change feed's floor: one member, kept at its maximum.
    pub(crate) fn change_floor(&self) -> Vec<u8> {
        self.key("c", "floor")
    }

    pub(crate) fn meta(&self, name: &str) -> Vec<u8> {
        self.key("m", name)
    }

    pub(crate) fn intents(&self) -> Vec<u8> {
        self.key("i", "intents")
    }

    pub(crate) fn intent(&self, id: &str) -> Vec<u8> {
        self.key("i", &format!("intent:{id}"))
    }

    /// The fence key of a slot: the highest writer token that wrote it.
    pub(crate) fn fence(&self, slot: u16) -> Vec<u8> {
        self.key(&format!("f{}", fence_tag(slot)), "fence")
    }
}

/// `ZRANGE ... BYLEX` bounds of the members of an ordered map whose key
/// is `k`: from `k` included to the first key after it excluded.
pub(crate) fn key_range(k: &[u8]) -> (Vec<u8>, Vec<u8>) {
    (incl(k), excl(&prefix_end(k)))
}

pub(crate) fn incl(k: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(k.len() + 1);
    v.push(b'[');
    v.extend_from_slice(k);
    v
}

pub(crate) fn excl(k: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(k.len() + 1);
    v.push(b'(');
    v.extend_from_slice(k);
    v
}

fn cat(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(a.len() + b.len());
    v.extend_from_slice(a);
    v.extend_from_slice(b);
    v
}

/// The operations of one slot: one call of the write script.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Group {
    pub(crate) slot: u16,
    /// `keys[0]` is the slot's fence key.
    pub(crate) keys: Vec<Vec<u8>>,
    pub(crate) args: Vec<Vec<u8>>,
    index: HashMap<Vec<u8>, usize>,
}

impl Group {
    pub(crate) fn new(slot: u16, fence: Vec<u8>) -> Group {
        Group {
            slot,
            keys: vec![fence],
            args: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// A group as stored in an intent.
    pub(crate) fn from_parts(slot: u16, keys: Vec<Vec<u8>>, args: Vec<Vec<u8>>) -> Group {
        Group {
            slot,
            keys,
            args,
            index: HashMap::new(),
        }
    }

    fn key_index(&mut self, key: Vec<u8>) -> Vec<u8> {
        let next = self.keys.len() + 1;
        let i = *self.index.entry(key.clone()).or_insert_with(|| next);
        if i == next {
            self.keys.push(key);
        }
        // Lua indexes from 1.
        i.to_string().into_bytes()
    }
}

/// A batch turned into per-slot groups of operations.
pub(crate) struct Plan<'k> {
    keys: &'k Keys,
    groups: HashMap<u16, Group>,
    order: Vec<u16>,
}

impl<'k> Plan<'k> {
    pub(crate) fn new(keys: &'k Keys) -> Plan<'k> {
        Plan {
            keys,
            groups: HashMap::new(),
            order: Vec::new(),
        }
    }

    /// The groups, in the order their slots were first used.
    pub(crate) fn into_groups(mut self) -> Vec<Group> {
        let mut out = Vec::with_capacity(self.order.len());
        for s in &self.order {
            if let Some(g) = self.groups.remove(s) {
                out.push(g);
            }
        }
        out
    }

    /// Adds one operation: `code`, the key, a second key of the same slot
    /// (or none), then the arguments.
    fn op(&mut self, code: &str, key: Vec<u8>, key2: Option<Vec<u8>>, args: &[&[u8]]) {
        let slot = slot_of(&key);
        debug_assert!(key2.as_ref().is_none_or(|k| slot_of(k) == slot));
        let fence = self.keys.fence(slot);
        let g = self.groups.entry(slot).or_insert_with(|| {
            self.order.push(slot);
            Group::new(slot, fence)
        });
        let k1 = g.key_index(key);
        let k2 = match key2 {
            Some(k) => g.key_index(k),
            None => b"0".to_vec(),
        };
        g.args.push(code.as_bytes().to_vec());
        g.args.push(k1);
        g.args.push(k2);
        g.args.extend(args.iter().map(|a| a.to_vec()));
    }

    fn set(&mut self, key: Vec<u8>, value: &[u8]) {
        self.op("S", key, None, &[value]);
    }

    fn del(&mut self, key: Vec<u8>) {
        self.op("D", key, None, &[]);
    }

    fn hset(&mut self, key: Vec<u8>, field: &[u8], value: &[u8]) {
        self.op("H", key, None, &[field, value]);
    }

    fn hdel(&mut self, key: Vec<u8>, field: &[u8]) {
        self.op("HD", key, None, &[field]);
    }

    /// Puts `k -> v` in the ordered map `key`; with `count`, adds one to
    /// that counter when `k` was absent.
    fn put(&mut self, key: Vec<u8>, k: &[u8], v: &[u8], count: Option<(Vec<u8>, &str)>) {
        let (min, max) = key_range(k);
        let member = cat(k, v);
        match count {
            Some((ck, field)) => {
                self.op("P", key, Some(ck), &[&min, &max, &member, field.as_bytes()])
            }
            None => self.op("P", key, None, &[&min, &max, &member, b""]),
        }
    }

    /// Removes `k` from the ordered map `key`; with `count`, subtracts one
    /// from that counter when `k` was present.
    fn remove(&mut self, key: Vec<u8>, k: &[u8], count: Option<(Vec<u8>, &str)>) {
        let (min, max) = key_range(k);
        self.remove_range(key, &min, &max, count);
    }

    fn remove_range(
        &mut self,
        key: Vec<u8>,
        min: &[u8],
        max: &[u8],
        count: Option<(Vec<u8>, &str)>,
    ) {
        match count {
            Some((ck, field)) => self.op("R", key, Some(ck), &[min, max, field.as_bytes()]),
            None => self.op("R", key, None, &[min, max, b""]),
        }
    }

    fn zadd(&mut self, key: Vec<u8>, member: &[u8]) {
        self.op("Z", key, None, &[member]);
    }

    fn zrem(&mut self, key: Vec<u8>, member: &[u8]) {
        self.op("ZR", key, None, &[member]);
    }

    /// Keeps in `key` the largest of its member and `member`.
    fn max(&mut self, key: Vec<u8>, member: &[u8]) {
        self.op("M", key, None, &[member]);
    }

    /// Appends `items` to the list `key` (intents).
    pub(crate) fn push_list(&mut self, key: Vec<u8>, items: &[Vec<u8>]) {
        let n = items.len().to_string().into_bytes();
        let mut args: Vec<&[u8]> = Vec::with_capacity(items.len() + 1);
        args.push(&n);
        args.extend(items.iter().map(|i| i.as_slice()));
        self.op("L", key, None, &args);
    }

    pub(crate) fn add_member(&mut self, key: Vec<u8>, member: &[u8]) {
        self.zadd(key, member);
    }

    pub(crate) fn remove_member(&mut self, key: Vec<u8>, member: &[u8]) {
        self.zrem(key, member);
    }

    pub(crate) fn delete(&mut self, key: Vec<u8>) {
        self.del(key);
    }

    fn set_mode(&mut self, follower: UserId, followee: UserId, since: PostId, mode: EdgeMode) {
        let k = self.keys;
        self.put(
            k.followers(followee),
            &codec::user_key(follower),
            &codec::encode_edge_value(since, mode),
            None,
        );
        match mode {
            EdgeMode::Pull => self.put(
                k.pulled(follower),
                &codec::user_key(followee),
                &codec::encode_since(since),
                None,
            ),
            EdgeMode::Push => self.remove(k.pulled(follower), &codec::user_key(followee), None),
        }
    }

    /// Adds the operations of one mutation.
    pub(crate) fn mutation(&mut self, m: &Mutation) {
        let k = self.keys;
        match m {
            Mutation::PutUser(user) => {
                self.set(k.user(user.id), &codec::encode_user(user));
                self.hset(
                    k.names(&user.name),
                    &codec::name_key(&user.name),
                    &codec::encode_user_id(user.id),
                );
                self.max(k.meta("last_user"), &codec::user_key(user.id));
            }
            Mutation::AddEdge {
                follower,
                followee,
                since,
                mode,
            } => {
                self.put(
                    k.following(*follower),
                    &codec::user_key(*followee),
                    &codec::encode_edge_value(*since, EdgeMode::Push),
                    Some((k.counts(*follower), "following")),
                );
                self.put(
                    k.followers(*followee),
                    &codec::user_key(*follower),
                    &codec::encode_edge_value(*since, *mode),
                    Some((k.counts(*followee), "followers")),
                );
                match mode {
                    EdgeMode::Pull => self.put(
                        k.pulled(*follower),
                        &codec::user_key(*followee),
                        &codec::encode_since(*since),
                        None,
                    ),
                    EdgeMode::Push => {
                        self.remove(k.pulled(*follower), &codec::user_key(*followee), None)
                    }
                }
            }
            Mutation::RemoveEdge { follower, followee } => {
                self.remove(
                    k.following(*follower),
                    &codec::user_key(*followee),
                    Some((k.counts(*follower), "following")),
                );
                self.remove(
                    k.followers(*followee),
                    &codec::user_key(*follower),
                    Some((k.counts(*followee), "followers")),
                );
                self.remove(k.pulled(*follower), &codec::user_key(*followee), None);
            }
            Mutation::PutPost(post) => {
                self.set(k.post(post.id), &codec::encode_post(post));
                self.zadd(k.post_ids(post_bucket(post.id)), &codec::post_key(post.id));
                self.zadd(k.author_posts(post.author), &codec::post_key(post.id));
            }
            Mutation::InboxPut { owner, entry } => self.put(
                k.inbox(*owner),
                &codec::post_key(entry.post),
                &codec::encode_inbox_value(entry.author),
                None,
            ),
            Mutation::InboxDelete { owner, post } => {
                self.remove(k.inbox(*owner), &codec::post_key(*post), None)
            }
            Mutation::InboxTrim { owner, through } => {
                let max = excl(&prefix_end(&codec::post_key(*through)));
                self.remove_range(k.inbox(*owner), b"-", &max, None);
                self.max(k.floor(*owner), &codec::post_key(*through));
            }
            Mutation::PutJob(job) => {
                self.put(
                    k.jobs(post_bucket(job.post)),
                    &codec::job_key(job.post),
                    &codec::encode_job(job),
                    None,
                );
            }
            Mutation::DeleteJob(post) => {
                self.remove(k.jobs(post_bucket(*post)), &codec::job_key(*post), None);
            }
            Mutation::SetEdgeMode {
                follower,
                followee,
                since,
                mode,
            } => self.set_mode(*follower, *followee, *since, *mode),
            Mutation::SetAuthorMode { author, mode } => {
                self.set(k.author_mode(*author), &codec::encode_author_mode(*mode))
            }
            Mutation::SetLastRead { user, at_ms } => self.put(
                k.last_reads(read_bucket(*user)),
                &codec::user_key(*user),
                &codec::encode_millis(*at_ms),
                None,
            ),
            Mutation::SetCounts { user, counts } => {
                self.hset(
                    k.counts(*user),
                    b"followers",
                    counts.followers.to_string().as_bytes(),
                );
                self.hset(
                    k.counts(*user),
                    b"following",
                    counts.following.to_string().as_bytes(),
                );
            }
            Mutation::PutFollowerEntry {
                followee,
                follower,
                since,
                mode,
            } => self.put(
                k.followers(*followee),
                &codec::user_key(*follower),
                &codec::encode_edge_value(*since, *mode),
                None,
            ),
            Mutation::DeleteFollowerEntry { followee, follower } => {
                self.remove(k.followers(*followee), &codec::user_key(*follower), None)
            }
            Mutation::DeletePulled { reader, author } => {
                self.remove(k.pulled(*reader), &codec::user_key(*author), None)
            }
            Mutation::PutLink {
                kind,
                from,
                to,
                value,
            } => self.put(
                k.links(*kind, *from),
                &link_member(*kind, *from, *to),
                &codec::encode_link_value(*value),
                None,
            ),
            Mutation::DeleteLink { kind, from, to } => {
                self.remove(k.links(*kind, *from), &link_member(*kind, *from, *to), None)
            }
            Mutation::PutGroup(group) => {
                self.set(k.group(group.id), &codec::encode_group(group));
                self.zadd(k.meta("groups"), &codec::group_key(group.id));
            }
            Mutation::DeleteGroup(id) => {
                self.del(k.group(*id));
                self.zrem(k.meta("groups"), &codec::group_key(*id));
            }
            Mutation::DeleteAuthorIndex { author, post } => {
                self.zrem(k.author_posts(*author), &codec::post_key(*post))
            }
            Mutation::Direct(d) => self.direct(d),
            Mutation::PutChange(record) => self.put(
                k.changes(),
                &codec::change_key(record.position),
                &codec::encode_change(&record.change),
                None,
            ),
            Mutation::TrimChanges { through } => {
                let max = excl(&prefix_end(&codec::change_key(*through)));
                self.remove_range(k.changes(), b"-", &max, None);
                self.max(k.change_floor(), &codec::change_key(*through));
            }
        }
    }

    fn direct(&mut self, m: &DirectMutation) {
        let k = self.keys;
        match m {
            DirectMutation::PutProfile { user, profile } => {
                self.set(k.profile(*user), &dc::encode_profile(profile))
            }
            DirectMutation::PutAvatar { user, avatar } => {
                self.set(k.avatar(*user), &dc::encode_avatar(avatar))
            }
            DirectMutation::DeleteAvatar(user) => self.del(k.avatar(*user)),
            DirectMutation::LinkPhone {
                user,
                phone,
                replaces,
            } => {
                if let Some(old) = replaces {
                    self.hdel(k.phones(old), dc::phone_bytes(old));
                }
                self.hset(
                    k.phones(phone),
                    dc::phone_bytes(phone),
                    &dc::encode_user_id(*user),
                );
                self.set(k.phone(*user), dc::phone_bytes(phone));
            }
            DirectMutation::UnlinkPhone { user, phone } => {
                self.hdel(k.phones(phone), dc::phone_bytes(phone));
                self.del(k.phone(*user));
            }
            DirectMutation::PutPhoneClaim { claim, replaces } => {
                if let Some(old) = replaces {
                    self.remove(k.claims(old), &dc::claim_index_key(old, claim.user), None);
                }
                let record = dc::encode_claim(claim);
                // The whole claim in the number's map too, so that the
                // claims of a number are one read of one slot.
                self.put(
                    k.claims(&claim.phone),
                    &dc::claim_index_key(&claim.phone, claim.user),
                    &record,
                    None,
                );
                self.set(k.claim(claim.user), &record);
            }
            DirectMutation::DeletePhoneClaim { user, phone } => {
                self.remove(k.claims(phone), &dc::claim_index_key(phone, *user), None);
                self.del(k.claim(*user));
            }
            DirectMutation::PutMessage(msg) => {
                self.put(
                    k.messages(msg.from, msg.to),
                    &dc::post_id_value(msg.id),
                    &dc::encode_message(msg),
                    None,
                );
                self.max(k.meta("last_message"), &dc::post_id_value(msg.id));
            }
            DirectMutation::PutConversation {
                owner,
                summary,
                replaces,
            } => {
                let with = dc::user_key(summary.with);
                if let Some(old) = replaces {
                    self.zrem(
                        k.conversation_index(*owner),
                        &cat(&dc::post_id_value(*old), &with),
                    );
                }
                self.zadd(
                    k.conversation_index(*owner),
                    &cat(&dc::post_id_value(summary.last), &with),
                );
                self.hset(
                    k.conversations(*owner),
                    &with,
                    &dc::encode_conversation(summary),
                );
            }
            DirectMutation::SetDeviceSub {
                followee,
                follower,
                on,
            } => match on {
                Toggle::On => self.zadd(k.device_subs(*followee), &dc::user_key(*follower)),
                Toggle::Off => self.zrem(k.device_subs(*followee), &dc::user_key(*follower)),
            },
            DirectMutation::QueueDelivery(d) => {
                let b = delivery_bucket(d.id);
                let id = dc::delivery_key(d.id);
                let (min, max) = key_range(&id);
                let member = cat(&id, &dc::encode_delivery(d));
                let lease = dc::lease_key(d.leased_until_ms, d.id);
                self.op(
                    "Q",
                    k.outbox(b),
                    Some(k.leases(b)),
                    &[&min, &max, &member, &lease],
                );
            }
            DirectMutation::LeaseDelivery { delivery, from_ms } => {
                let b = delivery_bucket(delivery.id);
                self.zrem(k.leases(b), &dc::lease_key(*from_ms, delivery.id));
                self.zadd(
                    k.leases(b),
                    &dc::lease_key(delivery.leased_until_ms, delivery.id),
                );
                self.put(
                    k.outbox(b),
                    &dc::delivery_key(delivery.id),
                    &dc::encode_delivery(delivery),
                    None,
                );
            }
            DirectMutation::AckDelivery {
                id,
                leased_until_ms,
            } => {
                let b = delivery_bucket(*id);
                self.remove(k.outbox(b), &dc::delivery_key(*id), None);
                self.zrem(k.leases(b), &dc::lease_key(*leased_until_ms, *id));
            }
            DirectMutation::SetDeviceUsage { user, day, usage } => self.hset(
                k.usage(*user),
                day.to_string().as_bytes(),
                &dc::encode_usage(usage),
            ),
        }
    }
}

/// The member key of a link: the `to` id, as the RocksDB key ends.
pub(crate) fn link_member(kind: LinkKind, from: u64, to: u64) -> Vec<u8> {
    codec::link_key(kind, from, to)[codec::LINK_PREFIX_LEN..].to_vec()
}

/// The inbox script. `ARGV[1]` is the writer's token, `ARGV[2]` the
/// number `f` of fence keys that follow (one per slot the call writes),
/// then pairs of an inbox key and either a member (16 bytes: the 8-byte
/// post key and the 8-byte inbox value), to put, or a post key (8 bytes),
/// to remove, applied in order. An inbox member is exactly 16 bytes, so
/// the members of a post are those from `[POST` to
/// `[POST\xff\xff\xff\xff\xff\xff\xff\xff`: a put removes them first (a
/// rewrite replaces the earlier entry), a delete removes them.
pub(crate) const INBOX: &str = r#"#!lua flags=allow-cross-slot-keys
local token = tonumber(ARGV[1])
local nf = tonumber(ARGV[2])
local raise = {}
for j = 3, 2 + nf do
  local fence = tonumber(redis.call('GET', ARGV[j]) or '0')
  if fence > token then
    return redis.error_reply('STARLINGFENCED a newer writer (' .. fence .. ') holds the store')
  end
  if fence < token then raise[#raise + 1] = ARGV[j] end
end
for _, f in ipairs(raise) do redis.call('SET', f, ARGV[1]) end
local top = '\255\255\255\255\255\255\255\255'
local i = 3 + nf
local n = #ARGV
while i < n do
  local k, m = ARGV[i], ARGV[i + 1]
  local p = string.sub(m, 1, 8)
  redis.call('ZREMRANGEBYLEX', k, '[' .. p, '[' .. p .. top)
  if #m == 16 then redis.call('ZADD', k, 0, m) end
  i = i + 2
end
return 1
"#;

/// The write script: checks the writer's token against the slot's fence,
/// then runs the operations. Every operation is idempotent, and counters
/// move only when membership changes, so running a group twice leaves
/// what running it once does.
///
/// `KEYS[1]` is the slot's fence; `ARGV[1]` the writer's token; then
/// operations of `code, key index, second key index (0: none), args...`.
/// `Q` reads the lease end of a queued delivery from its member: 16 bytes
/// of delivery key, the version byte, for version 2 the kind byte, then
/// the lease end (`direct_codec::encode_delivery`): bytes 18 to 25, or 19
/// to 26 after a version 2.
pub(crate) const APPLY: &str = r#"
local token = tonumber(ARGV[1])
local fence = tonumber(redis.call('GET', KEYS[1]) or '0')
if fence > token then
  return redis.error_reply('STARLINGFENCED a newer writer (' .. fence .. ') holds the store')
end
if fence < token then redis.call('SET', KEYS[1], ARGV[1]) end
local i = 2
local n = #ARGV
while i <= n do
  local op = ARGV[i]
  local k = KEYS[tonumber(ARGV[i + 1])]
  local c = tonumber(ARGV[i + 2])
  local k2 = nil
  if c > 0 then k2 = KEYS[c] end
  local a = i + 3
  if op == 'S' then
    redis.call('SET', k, ARGV[a]); i = a + 1
  elseif op == 'D' then
    redis.call('DEL', k); i = a
  elseif op == 'H' then
    redis.call('HSET', k, ARGV[a], ARGV[a + 1]); i = a + 2
  elseif op == 'HD' then
    redis.call('HDEL', k, ARGV[a]); i = a + 1
  elseif op == 'P' then
    local removed = redis.call('ZREMRANGEBYLEX', k, ARGV[a], ARGV[a + 1])
    redis.call('ZADD', k, 0, ARGV[a + 2])
    if k2 and removed == 0 then redis.call('HINCRBY', k2, ARGV[a + 3], 1) end
    i = a + 4
  elseif op == 'R' then
    local removed = redis.call('ZREMRANGEBYLEX', k, ARGV[a], ARGV[a + 1])
    if k2 and removed > 0 then redis.call('HINCRBY', k2, ARGV[a + 2], -1) end
    i = a + 3
  elseif op == 'Z' then
    redis.call('ZADD', k, 0, ARGV[a]); i = a + 1
  elseif op == 'ZR' then
    redis.call('ZREM', k, ARGV[a]); i = a + 1
  elseif op == 'M' then
    redis.call('ZADD', k, 0, ARGV[a])
    redis.call('ZREMRANGEBYRANK', k, 0, -2)
    i = a + 1
  elseif op == 'Q' then
    local old = redis.call('ZRANGE', k, ARGV[a], ARGV[a + 1], 'BYLEX', 'LIMIT', 0, 1)
    if old[1] then
      local at = 18
      if string.byte(old[1], 17) == 2 then at = 19 end
      redis.call('ZREM', k2, string.sub(old[1], at, at + 7) .. string.sub(old[1], 1, 16))
    end
    redis.call('ZREMRANGEBYLEX', k, ARGV[a], ARGV[a + 1])
    redis.call('ZADD', k, 0, ARGV[a + 2])
    redis.call('ZADD', k2, 0, ARGV[a + 3])
    i = a + 4
  elseif op == 'L' then
    local count = tonumber(ARGV[a])
    local j = a + 1
    local last = a + count
    while j <= last do
      local stop = math.min(j + 999, last)
      redis.call('RPUSH', k, unpack(ARGV, j, stop))
      j = stop + 1
    end
    i = last + 1
  else
    return redis.error_reply('STARLINGOP unknown operation ' .. tostring(op))
  end
end
return 1
"#;
