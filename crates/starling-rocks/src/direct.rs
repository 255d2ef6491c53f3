//! The direct half of the RocksDB backend: the column families of profiles,
//! avatars, phones, direct messages, conversations and device updates,
//! their reads ([`DirectStore`]) and the translation of each
//! [`DirectMutation`] into `WriteBatch` operations.

use bytes::Bytes;
use rocksdb::{ColumnFamily, Options, ReadOptions, WriteBatch};
use starling_core::direct_codec as codec;
use starling_core::{
    Avatar, Conversation, DeliveryId, DeviceDelivery, DeviceUsage, DirectMessage, DirectMutation,
    Phone, PostId, Profile, Result, Toggle, UserId,
};
use starling_direct::DirectStore;

use crate::backend::{RocksBackend, storage};

pub(crate) const PROFILES: &str = "profiles";
pub(crate) const AVATARS: &str = "avatars";
pub(crate) const PHONES: &str = "phones";
pub(crate) const PHONE_INDEX: &str = "phone_index";
pub(crate) const MESSAGES: &str = "dm_messages";
pub(crate) const CONVERSATIONS: &str = "conversations";
pub(crate) const CONVERSATION_INDEX: &str = "conversation_index";
pub(crate) const DEVICE_SUBS: &str = "device_subs";
pub(crate) const OUTBOX: &str = "device_outbox";
pub(crate) const LEASES: &str = "device_leases";
pub(crate) const USAGE: &str = "device_usage";

/// Key, in the conversations family (whose keys are otherwise 16 bytes and
/// only ever read one by one), of the largest message id stored.
const LAST_MESSAGE_KEY: &[u8] = b"last";

/// Avatars at least this large go to blob files, out of the LSM tree.
const MIN_BLOB_SIZE: u64 = 4096;

/// Family options beyond the defaults every family gets.
pub(crate) fn tune_family(name: &str, opts: &mut Options) {
    if name == AVATARS {
        // BlobDB: large values live in blob files, so compactions of the
        // tree move only keys and blob references, not pictures.
        opts.set_enable_blob_files(true);
        opts.set_min_blob_size(MIN_BLOB_SIZE);
        opts.set_enable_blob_gc(true);
        // Pictures are compressed already.
        opts.set_blob_compression_type(rocksdb::DBCompressionType::None);
    }
}

/// The direct families' handles, looked up once per batch.
pub(crate) struct DirectFamilies<'a> {
    profiles: &'a ColumnFamily,
    avatars: &'a ColumnFamily,
    phones: &'a ColumnFamily,
    phone_index: &'a ColumnFamily,
    messages: &'a ColumnFamily,
    conversations: &'a ColumnFamily,
    conversation_index: &'a ColumnFamily,
    device_subs: &'a ColumnFamily,
    outbox: &'a ColumnFamily,
    leases: &'a ColumnFamily,
    usage: &'a ColumnFamily,
}

impl<'a> DirectFamilies<'a> {
    pub(crate) fn new(db: &'a RocksBackend) -> DirectFamilies<'a> {
        DirectFamilies {
            profiles: db.cf(PROFILES),
            avatars: db.cf(AVATARS),
            phones: db.cf(PHONES),
            phone_index: db.cf(PHONE_INDEX),
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
pub(crate) fn encode(f: &DirectFamilies<'_>, m: &DirectMutation, wb: &mut WriteBatch) {
    match m {
        DirectMutation::PutProfile { user, profile } => wb.put_cf(
            f.profiles,
            codec::user_key(*user),
            codec::encode_profile(profile),
        ),
        DirectMutation::PutAvatar { user, avatar } => wb.put_cf(
            f.avatars,
            codec::user_key(*user),
            codec::encode_avatar(avatar),
        ),
        DirectMutation::DeleteAvatar(user) => wb.delete_cf(f.avatars, codec::user_key(*user)),
        DirectMutation::LinkPhone {
            user,
            phone,
            replaces,
        } => {
            if let Some(old) = replaces {
                wb.delete_cf(f.phone_index, codec::phone_bytes(old));
            }
            wb.put_cf(
                f.phone_index,
                codec::phone_bytes(phone),
                codec::encode_user_id(*user),
            );
            wb.put_cf(f.phones, codec::user_key(*user), codec::phone_bytes(phone));
        }
        DirectMutation::UnlinkPhone { user, phone } => {
            wb.delete_cf(f.phone_index, codec::phone_bytes(phone));
            wb.delete_cf(f.phones, codec::user_key(*user));
        }
        DirectMutation::PutMessage(m) => {
            wb.put_cf(
                f.messages,
                codec::message_key(m.from, m.to, m.id),
                codec::encode_message(m),
            );
            // Ids increase within a run, and on open the generator starts
            // after the stored one: the newest write is the largest id.
            wb.put_cf(
                f.conversations,
                LAST_MESSAGE_KEY,
                codec::post_id_value(m.id),
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
                    codec::conversation_index_key(*owner, *old, summary.with),
                );
            }
            wb.put_cf(
                f.conversation_index,
                codec::conversation_index_key(*owner, summary.last, summary.with),
                [],
            );
            wb.put_cf(
                f.conversations,
                codec::conversation_key(*owner, summary.with),
                codec::encode_conversation(summary),
            );
        }
        DirectMutation::SetDeviceSub {
            followee,
            follower,
            on,
        } => {
            let key = codec::device_sub_key(*followee, *follower);
            match on {
                Toggle::On => wb.put_cf(f.device_subs, key, []),
                Toggle::Off => wb.delete_cf(f.device_subs, key),
            }
        }
        DirectMutation::QueueDelivery(d) => {
            wb.put_cf(
                f.outbox,
                codec::delivery_key(d.id),
                codec::encode_delivery(d),
            );
            wb.put_cf(f.leases, codec::lease_key(d.leased_until_ms, d.id), []);
        }
        DirectMutation::LeaseDelivery { delivery, from_ms } => {
            // The engine leases only deliveries it just read, under the
            // outbox lock: the record exists and its lease was `from_ms`.
            wb.delete_cf(f.leases, codec::lease_key(*from_ms, delivery.id));
            wb.put_cf(
                f.leases,
                codec::lease_key(delivery.leased_until_ms, delivery.id),
                [],
            );
            wb.put_cf(
                f.outbox,
                codec::delivery_key(delivery.id),
                codec::encode_delivery(delivery),
            );
        }
        DirectMutation::AckDelivery {
            id,
            leased_until_ms,
        } => {
            wb.delete_cf(f.outbox, codec::delivery_key(*id));
            wb.delete_cf(f.leases, codec::lease_key(*leased_until_ms, *id));
        }
        DirectMutation::SetDeviceUsage { user, day, usage } => wb.put_cf(
            f.usage,
            codec::usage_key(*user, *day),
            codec::encode_usage(usage),
        ),
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

/// The key right after every key starting with `prefix` (a big-endian
/// number, so incrementing it works), or a key past all of them.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 9]
}

impl DirectStore for RocksBackend {
    fn profile(&self, user: UserId) -> Result<Option<Profile>> {
        self.get(PROFILES, &codec::user_key(user))?
            .map(|v| codec::decode_profile(&v))
            .transpose()
    }

    fn avatar(&self, user: UserId) -> Result<Option<Avatar>> {
        // One copy, out of RocksDB's pinned block into shared bytes; the
        // picture is a slice of them, and no later step copies it.
        let pinned = self
            .db
            .get_pinned_cf(self.cf(AVATARS), codec::user_key(user))
            .map_err(storage)?;
        pinned
            .map(|v| codec::decode_avatar_bytes(Bytes::copy_from_slice(&v)))
            .transpose()
    }

    fn phone_of(&self, user: UserId) -> Result<Option<Phone>> {
        self.get(PHONES, &codec::user_key(user))?
            .map(|v| codec::decode_phone(&v))
            .transpose()
    }

    fn user_by_phone(&self, phone: &Phone) -> Result<Option<UserId>> {
        self.get(PHONE_INDEX, codec::phone_bytes(phone))?
            .map(|v| codec::decode_user_id(&v))
            .transpose()
    }

    fn last_message_id(&self) -> Result<Option<PostId>> {
        self.get(CONVERSATIONS, LAST_MESSAGE_KEY)?
            .map(|v| codec::decode_post_id_value(&v))
            .transpose()
    }

    fn conversation(&self, owner: UserId, with: UserId) -> Result<Option<Conversation>> {
        let key = codec::conversation_key(owner, with);
        self.get(CONVERSATIONS, &key)?
            .map(|v| codec::decode_conversation(&key, &v))
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
            None => codec::conversation_index_key(owner, PostId(u64::MAX), UserId(0)),
            Some(PostId(0)) => return Ok(()),
            Some(PostId(b)) => codec::conversation_index_key(owner, PostId(b - 1), UserId(0)),
        };
        let mut withs = Vec::with_capacity(limit.min(1024));
        self.scan_range(
            CONVERSATION_INDEX,
            &start,
            prefix_end(&owner.0.to_be_bytes()),
            |k, _| {
                if withs.len() == limit {
                    return Ok(false);
                }
                let (_, last, with) = codec::decode_conversation_index_key(k)?;
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
            None => codec::message_key(a, b, PostId(u64::MAX)),
            Some(PostId(0)) => return Ok(()),
            Some(PostId(x)) => codec::message_key(a, b, PostId(x - 1)),
        };
        let mut n = 0;
        self.scan_range(
            MESSAGES,
            &start,
            prefix_end(&codec::message_prefix(a, b)),
            |k, v| {
                if n == limit {
                    return Ok(false);
                }
                out.push(codec::decode_message(k, v)?);
                n += 1;
                Ok(true)
            },
        )
    }

    fn device_sub(&self, followee: UserId, follower: UserId) -> Result<bool> {
        Ok(self
            .get(DEVICE_SUBS, &codec::device_sub_key(followee, follower))?
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
        let end = prefix_end(&codec::device_sub_key(followee, through));
        self.scan_range(
            DEVICE_SUBS,
            &codec::device_sub_key(followee, first),
            end,
            |k, _| {
                out.push(codec::decode_device_sub_key(k)?.1);
                taken += 1;
                Ok(taken < limit)
            },
        )
    }

    fn delivery(&self, id: DeliveryId) -> Result<Option<DeviceDelivery>> {
        let key = codec::delivery_key(id);
        self.get(OUTBOX, &key)?
            .map(|v| codec::decode_delivery(&key, &v))
            .transpose()
    }

    fn due_deliveries(
        &self,
        now_ms: u64,
        limit: usize,
        out: &mut Vec<DeviceDelivery>,
    ) -> Result<()> {
        let mut ids = Vec::with_capacity(limit.min(1024));
        self.scan_range(LEASES, &[], prefix_end(&now_ms.to_be_bytes()), |k, _| {
            if ids.len() == limit {
                return Ok(false);
            }
            ids.push(codec::decode_lease_key(k)?.1);
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
        self.get(USAGE, &codec::usage_key(user, day))?
            .map_or(Ok(DeviceUsage::default()), |v| codec::decode_usage(&v))
    }
}
