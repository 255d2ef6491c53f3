//! The seam's one write over RocksDB: each [`Mutation`] becomes operations
//! of one `WriteBatch`, written at once, so a batch is atomic.

use rocksdb::{ColumnFamily, WriteBatch, WriteOptions};
use starling_core::codec::{self, CounterKind};
use starling_core::direct_codec as dcodec;
use starling_core::{
    DirectMutation, Durability, EdgeMode, InboxEntry, Mutation, PostId, Result, Toggle, UserId,
};
use starling_store::{Backend, InboxLoad};

use crate::db::{RocksBackend, storage};
use crate::families::*;

/// Every family's handle, looked up once per batch rather than per mutation.
struct Families<'a> {
    users: &'a ColumnFamily,
    names: &'a ColumnFamily,
    following: &'a ColumnFamily,
    followers: &'a ColumnFamily,
    counters: &'a ColumnFamily,
    posts: &'a ColumnFamily,
    author_posts: &'a ColumnFamily,
    inbox_floors: &'a ColumnFamily,
    inbox: &'a ColumnFamily,
    pulled: &'a ColumnFamily,
    authors: &'a ColumnFamily,
    last_reads: &'a ColumnFamily,
    jobs: &'a ColumnFamily,
    links: &'a ColumnFamily,
    groups: &'a ColumnFamily,
    changes: &'a ColumnFamily,
    direct: DirectFamilies<'a>,
}

impl RocksBackend {
    fn families(&self) -> Families<'_> {
        Families {
            users: self.cf(USERS),
            names: self.cf(NAMES),
            following: self.cf(FOLLOWING),
            followers: self.cf(FOLLOWERS),
            counters: self.cf(COUNTERS),
            posts: self.cf(POSTS),
            author_posts: self.cf(AUTHOR_POSTS),
            inbox_floors: self.cf(INBOX_FLOORS),
            inbox: self.cf(INBOX),
            pulled: self.cf(PULLED),
            authors: self.cf(AUTHORS),
            last_reads: self.cf(LAST_READS),
            jobs: self.cf(JOBS),
            links: self.cf(LINKS),
            groups: self.cf(GROUPS),
            changes: self.cf(CHANGES),
            direct: DirectFamilies::new(self),
        }
    }
}

impl Backend for RocksBackend {
    fn apply(&self, batch: &[Mutation], durability: Durability) -> Result<()> {
        let families = self.families();
        let mut wb = WriteBatch::default();
        for m in batch {
            Self::encode(&families, m, &mut wb);
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(durability == Durability::Synced);
        self.db.write_opt(wb, &opts).map_err(storage)
    }

    /// One table file, ingested whole (see `bulk`).
    fn apply_bulk_inbox(&self, entries: &[(UserId, InboxEntry)]) -> Result<()> {
        self.bulk_inbox(entries)
    }

    /// Parts in key order written on to one table file (see `bulk`).
    fn bulk_inbox_load(&self) -> Result<Box<dyn InboxLoad + '_>> {
        Ok(Box::new(self.inbox_load()?))
    }
}

impl RocksBackend {
    fn encode(f: &Families<'_>, m: &Mutation, wb: &mut WriteBatch) {
        match m {
            Mutation::PutUser(user) => {
                wb.put_cf(f.users, codec::user_key(user.id), codec::encode_user(user));
                wb.put_cf(
                    f.names,
                    codec::name_key(&user.name),
                    codec::encode_user_id(user.id),
                );
            }
            Mutation::AddEdge {
                follower,
                followee,
                since,
                mode,
            } => {
                wb.put_cf(
                    f.following,
                    codec::edge_key(*follower, *followee),
                    codec::encode_edge_value(*since, EdgeMode::Push),
                );
                Self::set_mode(f, wb, *follower, *followee, *since, *mode);
                Self::count(f, wb, *follower, *followee, 1);
            }
            Mutation::RemoveEdge { follower, followee } => {
                wb.delete_cf(f.following, codec::edge_key(*follower, *followee));
                wb.delete_cf(f.followers, codec::edge_key(*followee, *follower));
                wb.delete_cf(f.pulled, codec::pulled_key(*follower, *followee));
                Self::count(f, wb, *follower, *followee, -1);
            }
            Mutation::SetEdgeMode {
                follower,
                followee,
                since,
                mode,
            } => Self::set_mode(f, wb, *follower, *followee, *since, *mode),
            Mutation::SetAuthorMode { author, mode } => wb.put_cf(
                f.authors,
                codec::user_key(*author),
                codec::encode_author_mode(*mode),
            ),
            Mutation::SetLastRead { user, at_ms } => wb.put_cf(
                f.last_reads,
                codec::user_key(*user),
                codec::encode_millis(*at_ms),
            ),
            Mutation::DeletePulled { reader, author } => {
                wb.delete_cf(f.pulled, codec::pulled_key(*reader, *author));
            }
            Mutation::PutPost(post) => {
                wb.put_cf(f.posts, codec::post_key(post.id), codec::encode_post(post));
                wb.put_cf(
                    f.author_posts,
                    codec::author_post_key(post.author, post.id),
                    [],
                );
            }
            Mutation::InboxPut { owner, entry } => wb.put_cf(
                f.inbox,
                codec::inbox_key(*owner, entry.post),
                codec::encode_inbox_value(entry.author),
            ),
            Mutation::InboxDelete { owner, post } => {
                wb.delete_cf(f.inbox, codec::inbox_key(*owner, *post));
            }
            Mutation::InboxTrim { owner, through } => {
                wb.delete_range_cf(
                    f.inbox,
                    codec::inbox_key(*owner, *through).as_slice(),
                    codec::user_prefix_end(*owner).as_slice(),
                );
                wb.merge_cf(
                    f.inbox_floors,
                    codec::user_key(*owner),
                    codec::encode_millis(through.0),
                );
            }
            Mutation::PutJob(job) => {
                wb.put_cf(f.jobs, codec::job_key(job.post), codec::encode_job(job));
            }
            Mutation::DeleteJob(post) => wb.delete_cf(f.jobs, codec::job_key(*post)),
            Mutation::SetCounts { user, counts } => {
                let cf = f.counters;
                let as_i64 = |n: u64| codec::encode_count(i64::try_from(n).unwrap_or(i64::MAX));
                wb.put_cf(
                    cf,
                    codec::counter_key(*user, CounterKind::Followers),
                    as_i64(counts.followers),
                );
                wb.put_cf(
                    cf,
                    codec::counter_key(*user, CounterKind::Following),
                    as_i64(counts.following),
                );
            }
            Mutation::PutFollowerEntry {
                followee,
                follower,
                since,
                mode,
            } => wb.put_cf(
                f.followers,
                codec::edge_key(*followee, *follower),
                codec::encode_edge_value(*since, *mode),
            ),
            Mutation::DeleteFollowerEntry { followee, follower } => {
                wb.delete_cf(f.followers, codec::edge_key(*followee, *follower));
            }
            Mutation::DeleteAuthorIndex { author, post } => {
                wb.delete_cf(f.author_posts, codec::author_post_key(*author, *post));
            }
            Mutation::PutLink {
                kind,
                from,
                to,
                value,
            } => wb.put_cf(
                f.links,
                codec::link_key(*kind, *from, *to),
                codec::encode_link_value(*value),
            ),
            Mutation::DeleteLink { kind, from, to } => {
                wb.delete_cf(f.links, codec::link_key(*kind, *from, *to));
            }
            Mutation::PutGroup(group) => {
                wb.put_cf(
                    f.groups,
                    codec::group_key(group.id),
                    codec::encode_group(group),
                );
            }
            Mutation::DeleteGroup(id) => wb.delete_cf(f.groups, codec::group_key(*id)),
            Mutation::Direct(m) => encode_direct(&f.direct, m, wb),
            Mutation::PutChange(record) => wb.put_cf(
                f.changes,
                codec::change_key(record.position),
                codec::encode_change(&record.change),
            ),
            Mutation::TrimChanges { through } => {
                let end = match through.checked_add(1) {
                    Some(next) => codec::change_key(next).to_vec(),
                    None => codec::prefix_end(&codec::change_key(u64::MAX)),
                };
                wb.delete_range_cf(f.changes, codec::change_key(0).as_slice(), end.as_slice());
                wb.merge_cf(
                    f.changes,
                    codec::CHANGE_FLOOR_KEY,
                    codec::encode_change_floor(*through),
                );
            }
        }
    }

    /// The followers-side copy of an edge and the follower's pulled index.
    fn set_mode(
        f: &Families<'_>,
        wb: &mut WriteBatch,
        follower: UserId,
        followee: UserId,
        since: PostId,
        mode: EdgeMode,
    ) {
        wb.put_cf(
            f.followers,
            codec::edge_key(followee, follower),
            codec::encode_edge_value(since, mode),
        );
        let key = codec::pulled_key(follower, followee);
        match mode {
            EdgeMode::Pull => wb.put_cf(f.pulled, key, codec::encode_since(since)),
            EdgeMode::Push => wb.delete_cf(f.pulled, key),
        }
    }

    fn count(
        f: &Families<'_>,
        wb: &mut WriteBatch,
        follower: UserId,
        followee: UserId,
        delta: i64,
    ) {
        let cf = f.counters;
        let delta = codec::encode_count(delta);
        wb.merge_cf(
            cf,
            codec::counter_key(follower, CounterKind::Following),
            delta,
        );
        wb.merge_cf(
            cf,
            codec::counter_key(followee, CounterKind::Followers),
            delta,
        );
    }
}

/// The direct families' handles, looked up once per batch.
struct DirectFamilies<'a> {
    profiles: &'a ColumnFamily,
    avatars: &'a ColumnFamily,
    phones: &'a ColumnFamily,
    phone_index: &'a ColumnFamily,
    claims: &'a ColumnFamily,
    claim_index: &'a ColumnFamily,
    messages: &'a ColumnFamily,
    conversations: &'a ColumnFamily,
    conversation_index: &'a ColumnFamily,
    device_subs: &'a ColumnFamily,
    outbox: &'a ColumnFamily,
    leases: &'a ColumnFamily,
    usage: &'a ColumnFamily,
}

impl<'a> DirectFamilies<'a> {
    fn new(db: &'a RocksBackend) -> DirectFamilies<'a> {
        DirectFamilies {
            profiles: db.cf(PROFILES),
            avatars: db.cf(AVATARS),
            phones: db.cf(PHONES),
            phone_index: db.cf(PHONE_INDEX),
            claims: db.cf(PHONE_CLAIMS),
            claim_index: db.cf(CLAIM_INDEX),
            messages: db.cf(MESSAGES),
            conversations: db.cf(CONVERSATIONS),
            conversation_index: db.cf(CONVERSATION_INDEX),
            device_subs: db.cf(DEVICE_SUBS),
            outbox: db.cf(OUTBOX),
            leases: db.cf(LEASES),
            usage: db.cf(USAGE),
        }
    }
}

/// Adds one direct mutation to a write batch.
fn encode_direct(f: &DirectFamilies<'_>, m: &DirectMutation, wb: &mut WriteBatch) {
    match m {
        DirectMutation::PutProfile { user, profile } => wb.put_cf(
            f.profiles,
            dcodec::user_key(*user),
            dcodec::encode_profile(profile),
        ),
        DirectMutation::PutAvatar { user, avatar } => wb.put_cf(
            f.avatars,
            dcodec::user_key(*user),
            dcodec::encode_avatar(avatar),
        ),
        DirectMutation::DeleteAvatar(user) => wb.delete_cf(f.avatars, dcodec::user_key(*user)),
        DirectMutation::LinkPhone {
            user,
            phone,
            replaces,
        } => {
            if let Some(old) = replaces {
                wb.delete_cf(f.phone_index, dcodec::phone_bytes(old));
            }
            wb.put_cf(
                f.phone_index,
                dcodec::phone_bytes(phone),
                dcodec::encode_user_id(*user),
            );
            wb.put_cf(
                f.phones,
                dcodec::user_key(*user),
                dcodec::phone_bytes(phone),
            );
        }
        DirectMutation::PutPhoneClaim { claim, replaces } => {
            if let Some(old) = replaces {
                wb.delete_cf(f.claim_index, dcodec::claim_index_key(old, claim.user));
            }
            wb.put_cf(
                f.claim_index,
                dcodec::claim_index_key(&claim.phone, claim.user),
                [],
            );
            wb.put_cf(
                f.claims,
                dcodec::user_key(claim.user),
                dcodec::encode_claim(claim),
            );
        }
        DirectMutation::DeletePhoneClaim { user, phone } => {
            wb.delete_cf(f.claim_index, dcodec::claim_index_key(phone, *user));
            wb.delete_cf(f.claims, dcodec::user_key(*user));
        }
        DirectMutation::UnlinkPhone { user, phone } => {
            wb.delete_cf(f.phone_index, dcodec::phone_bytes(phone));
            wb.delete_cf(f.phones, dcodec::user_key(*user));
        }
        DirectMutation::PutMessage(m) => {
            wb.put_cf(
                f.messages,
                dcodec::message_key(m.from, m.to, m.id),
                dcodec::encode_message(m),
            );
            // Concurrent senders store their messages in any order: the
            // merge keeps the largest id, which the generator starts after
            // on open.
            wb.merge_cf(
                f.conversations,
                dcodec::LAST_MESSAGE_KEY,
                dcodec::post_id_value(m.id),
            );
        }
        DirectMutation::PutConversation {
            owner,
            summary,
            replaces,
        } => {
            if let Some(old) = replaces
                && *old != summary.last
            {
                wb.delete_cf(
                    f.conversation_index,
                    dcodec::conversation_index_key(*owner, *old, summary.with),
                );
            }
            wb.put_cf(
                f.conversation_index,
                dcodec::conversation_index_key(*owner, summary.last, summary.with),
                [],
            );
            wb.put_cf(
                f.conversations,
                dcodec::conversation_key(*owner, summary.with),
                dcodec::encode_conversation(summary),
            );
        }
        DirectMutation::SetDeviceSub {
            followee,
            follower,
            on,
        } => {
            let key = dcodec::device_sub_key(*followee, *follower);
            match on {
                Toggle::On => wb.put_cf(f.device_subs, key, []),
                Toggle::Off => wb.delete_cf(f.device_subs, key),
            }
        }
        DirectMutation::QueueDelivery(d) => {
            wb.put_cf(
                f.outbox,
                dcodec::delivery_key(d.id),
                dcodec::encode_delivery(d),
            );
            wb.put_cf(f.leases, dcodec::lease_key(d.leased_until_ms, d.id), []);
        }
        DirectMutation::LeaseDelivery { delivery, from_ms } => {
            // The engine leases only deliveries it just read, under the
            // outbox lock: the record exists and its lease was `from_ms`.
            wb.delete_cf(f.leases, dcodec::lease_key(*from_ms, delivery.id));
            wb.put_cf(
                f.leases,
                dcodec::lease_key(delivery.leased_until_ms, delivery.id),
                [],
            );
            wb.put_cf(
                f.outbox,
                dcodec::delivery_key(delivery.id),
                dcodec::encode_delivery(delivery),
            );
        }
        DirectMutation::AckDelivery {
            id,
            leased_until_ms,
        } => {
            wb.delete_cf(f.outbox, dcodec::delivery_key(*id));
            wb.delete_cf(f.leases, dcodec::lease_key(*leased_until_ms, *id));
        }
        DirectMutation::SetDeviceUsage { user, day, usage } => wb.put_cf(
            f.usage,
            dcodec::usage_key(*user, *day),
            dcodec::encode_usage(usage),
        ),
    }
}
