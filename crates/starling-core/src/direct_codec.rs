//! Byte layout of the records of the direct features (profiles, avatars,
//! phones, direct messages, conversations, device updates). Same rules as
//! [`crate::codec`]: integers big-endian, newest-first keys store `!id`,
//! decoders never panic and refuse anything malformed with
//! [`Error::Corrupt`].
//!
//! Column families of the RocksDB backend:
//!
//! | family | key | value |
//! | --- | --- | --- |
//! | `profiles` | user (8) | version 1, flags (1: bit 0 DMs open, bit 1 device paused, bit 2 quiet hours), with bit 2 the quiet hours (start hour, end hour, UTC offset in minutes: 1, 1, 2), name length (2), display name, bio |
//! | `avatars` | user (8) | version 1, kind (1: PNG, JPEG, GIF, WebP), picture bytes (BlobDB) |
//! | `phones` | user (8) | E.164 number (ASCII) |
//! | `phone_index` | E.164 number | user (8) |
//! | `dm_messages` | lower user (8), higher user (8), `!id` (8) | version 1, sender (8), UTF-8 text |
//! | `conversations` | owner (8), other (8) | last message id (8), unread (8); key `last`: largest message id (8), merged by maximum |
//! | `conversation_index` | owner (8), `!last` (8), other (8) | empty |
//! | `device_subs` | followee (8), follower (8) | empty |
//! | `phone_claims` | user (8) | version 1, code (4), expiry ms (8), attempts left (1), E.164 number |
//! | `phone_claim_index` | number length (1), E.164 number, user (8) | empty |
//! | `device_outbox` | post (8), recipient (8) | a post: version 1, lease end ms (8), phone length (1), phone, text; any other kind: version 2, kind (1: direct message 1, code 2, notice 3), then as version 1 |
//! | `device_leases` | lease end ms (8), post (8), recipient (8) | empty |
//! | `device_usage` | user (8), UTC day (4) | sent (8), over cap (8) |

use bytes::Bytes;

use crate::{
    Avatar, Conversation, DeliveryId, DeliveryKind, DeviceDelivery, DeviceUsage, DirectMessage,
    Error, ImageKind, Phone, PhoneClaim, PostId, Profile, QuietHours, Result, UserId,
};

const VERSION: u8 = 1;
const DMS_OPEN: u8 = 1;
const DEVICE_PAUSED: u8 = 2;
const QUIET_HOURS: u8 = 4;

fn be_u64(bytes: &[u8], at: usize, what: &'static str) -> Result<u64> {
    bytes
        .get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or(Error::Corrupt(what))
}

fn exact(bytes: &[u8], len: usize, what: &'static str) -> Result<()> {
    if bytes.len() == len {
        Ok(())
    } else {
        Err(Error::Corrupt(what))
    }
}

fn cat<const N: usize>(parts: &[u64]) -> [u8; N] {
    let mut k = [0; N];
    for (i, p) in parts.iter().enumerate() {
        k[i * 8..i * 8 + 8].copy_from_slice(&p.to_be_bytes());
    }
    k
}

/// Key, in the conversations family (whose other keys are 16 bytes and
/// only ever read one by one), of the largest message id stored.
pub const LAST_MESSAGE_KEY: &[u8] = b"last";

/// The first key after every conversation-index key of `owner`.
pub fn conversation_index_end(owner: UserId) -> Vec<u8> {
    crate::codec::prefix_end(&user_key(owner))
}

/// The first key after every message key between `a` and `b`.
pub fn messages_end(a: UserId, b: UserId) -> Vec<u8> {
    crate::codec::prefix_end(&message_prefix(a, b))
}

/// The first key after every device-subscription key of `followee` up to
/// and including follower `through`.
pub fn device_subs_end(followee: UserId, through: UserId) -> Vec<u8> {
    crate::codec::prefix_end(&device_sub_key(followee, through))
}

/// The first lease-index key after every lease that ends at or before
/// `now_ms`.
pub fn leases_due_end(now_ms: u64) -> Vec<u8> {
    crate::codec::prefix_end(&now_ms.to_be_bytes())
}

/// Key of every per-user record (profiles, avatars, phones): the id.
pub fn user_key(user: UserId) -> [u8; 8] {
    user.0.to_be_bytes()
}

/// Value of a profile: version, flags (bit 0 DMs open, bit 1 device updates
/// paused), display-name length (2), display name, bio.
pub fn encode_profile(p: &Profile) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + p.display_name.len() + p.bio.len());
    v.push(VERSION);
    v.push(
        if p.dms_open { DMS_OPEN } else { 0 }
            | if p.device_paused { DEVICE_PAUSED } else { 0 }
            | if p.quiet_hours.is_some() {
                QUIET_HOURS
            } else {
                0
            },
    );
    if let Some(q) = p.quiet_hours {
        v.push(q.start_hour);
        v.push(q.end_hour);
        v.extend_from_slice(&q.utc_offset_minutes.to_be_bytes());
    }
    // A valid display name has at most 50 characters, 200 bytes.
    let len = u16::try_from(p.display_name.len()).unwrap_or(u16::MAX);
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(p.display_name.as_bytes());
    v.extend_from_slice(p.bio.as_bytes());
    v
}

/// Decodes [`encode_profile`].
pub fn decode_profile(bytes: &[u8]) -> Result<Profile> {
    let [VERSION, flags, rest @ ..] = bytes else {
        return Err(Error::Corrupt("profile record"));
    };
    let flags = *flags;
    if flags & !(DMS_OPEN | DEVICE_PAUSED | QUIET_HOURS) != 0 {
        return Err(Error::Corrupt("profile flags"));
    }
    let (quiet_hours, rest) = if flags & QUIET_HOURS != 0 {
        let [start, end, o1, o2, rest @ ..] = rest else {
            return Err(Error::Corrupt("profile record"));
        };
        let q = QuietHours::new(*start, *end, i16::from_be_bytes([*o1, *o2]))
            .map_err(|_| Error::Corrupt("profile quiet hours"))?;
        (Some(q), rest)
    } else {
        (None, rest)
    };
    let [a, b, rest @ ..] = rest else {
        return Err(Error::Corrupt("profile record"));
    };
    let len = usize::from(u16::from_be_bytes([*a, *b]));
    if rest.len() < len {
        return Err(Error::Corrupt("profile record"));
    }
    let (name, bio) = rest.split_at(len);
    let text = |b: &[u8]| {
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| Error::Corrupt("profile text"))
    };
    Ok(Profile {
        display_name: text(name)?,
        bio: text(bio)?,
        dms_open: flags & DMS_OPEN != 0,
        device_paused: flags & DEVICE_PAUSED != 0,
        quiet_hours,
    })
}

fn kind_byte(kind: ImageKind) -> u8 {
    match kind {
        ImageKind::Png => 0,
        ImageKind::Jpeg => 1,
        ImageKind::Gif => 2,
        ImageKind::Webp => 3,
    }
}

/// Value of an avatar: version, kind (0 PNG, 1 JPEG, 2 GIF, 3 WebP), bytes.
pub fn encode_avatar(a: &Avatar) -> Vec<u8> {
    let mut v = Vec::with_capacity(2 + a.bytes.len());
    v.push(VERSION);
    v.push(kind_byte(a.kind));
    v.extend_from_slice(&a.bytes);
    v
}

/// Decodes [`encode_avatar`]; the kind byte must agree with the bytes.
/// Copies the picture; [`decode_avatar_bytes`] shares it instead.
pub fn decode_avatar(bytes: &[u8]) -> Result<Avatar> {
    decode_avatar_bytes(Bytes::copy_from_slice(bytes))
}

/// Decodes [`encode_avatar`] from bytes the caller owns: the avatar's bytes
/// are a slice of `value`, not a copy.
pub fn decode_avatar_bytes(value: Bytes) -> Result<Avatar> {
    let [VERSION, kind, rest @ ..] = &value[..] else {
        return Err(Error::Corrupt("avatar record"));
    };
    match ImageKind::sniff(rest) {
        Some(k) if kind_byte(k) == *kind => Ok(Avatar {
            kind: k,
            bytes: value.slice(2..),
        }),
        _ => Err(Error::Corrupt("avatar kind")),
    }
}

/// Value of a user's phone, and key of the phone index: the number's ASCII.
pub fn phone_bytes(phone: &Phone) -> &[u8] {
    phone.as_str().as_bytes()
}

/// Decodes [`phone_bytes`].
pub fn decode_phone(bytes: &[u8]) -> Result<Phone> {
    let s = std::str::from_utf8(bytes).map_err(|_| Error::Corrupt("phone"))?;
    Phone::parse(s).map_err(|_| Error::Corrupt("phone"))
}

/// Value of a pending phone link (key: the user): version, code (4),
/// expiry (8), attempts left (1), the number's ASCII.
pub fn encode_claim(c: &PhoneClaim) -> Vec<u8> {
    let phone = phone_bytes(&c.phone);
    let mut v = Vec::with_capacity(14 + phone.len());
    v.push(VERSION);
    v.extend_from_slice(&c.code.to_be_bytes());
    v.extend_from_slice(&c.expires_ms.to_be_bytes());
    v.push(c.attempts_left);
    v.extend_from_slice(phone);
    v
}

/// Decodes [`encode_claim`] stored under `user`.
pub fn decode_claim(user: UserId, bytes: &[u8]) -> Result<PhoneClaim> {
    let bad = || Error::Corrupt("phone claim");
    if bytes.len() < 14 || bytes[0] != VERSION {
        return Err(bad());
    }
    let code = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    if code >= 1_000_000 {
        return Err(bad());
    }
    Ok(PhoneClaim {
        user,
        phone: decode_phone(&bytes[14..])?,
        code,
        expires_ms: be_u64(bytes, 5, "phone claim")?,
        attempts_left: bytes[13],
    })
}

/// Prefix of the claim-index keys of one number: its length (1), then
/// its ASCII (so that no number's prefix is another's).
pub fn claim_index_prefix(phone: &Phone) -> Vec<u8> {
    let p = phone_bytes(phone);
    let mut k = Vec::with_capacity(9 + p.len());
    // A valid phone has at most 16 bytes.
    k.push(u8::try_from(p.len()).unwrap_or(u8::MAX));
    k.extend_from_slice(p);
    k
}

/// Key of a claim-index entry: [`claim_index_prefix`] then the user.
pub fn claim_index_key(phone: &Phone, user: UserId) -> Vec<u8> {
    let mut k = claim_index_prefix(phone);
    k.extend_from_slice(&user.0.to_be_bytes());
    k
}

/// Decodes [`claim_index_key`] into (number, user).
pub fn decode_claim_index_key(key: &[u8]) -> Result<(Phone, UserId)> {
    let bad = || Error::Corrupt("phone claim index key");
    let len = usize::from(*key.first().ok_or_else(bad)?);
    if key.len() != 1 + len + 8 {
        return Err(bad());
    }
    let phone = decode_phone(&key[1..1 + len])?;
    Ok((
        phone,
        UserId(be_u64(key, 1 + len, "phone claim index key")?),
    ))
}

/// Value of a phone-index entry: the user id.
pub fn encode_user_id(user: UserId) -> [u8; 8] {
    user.0.to_be_bytes()
}

/// Decodes [`encode_user_id`].
pub fn decode_user_id(bytes: &[u8]) -> Result<UserId> {
    exact(bytes, 8, "user id")?;
    be_u64(bytes, 0, "user id").map(UserId)
}

/// A bare post or message id (the newest message id stored).
pub fn post_id_value(id: PostId) -> [u8; 8] {
    id.0.to_be_bytes()
}

/// Decodes [`post_id_value`].
pub fn decode_post_id_value(bytes: &[u8]) -> Result<PostId> {
    exact(bytes, 8, "id value")?;
    be_u64(bytes, 0, "id value").map(PostId)
}

/// The two users of a conversation, lower id first: both share one log.
pub fn conversation_pair(a: UserId, b: UserId) -> (UserId, UserId) {
    if a <= b { (a, b) } else { (b, a) }
}

/// The 16-byte prefix of a conversation's messages.
pub fn message_prefix(a: UserId, b: UserId) -> [u8; 16] {
    let (lo, hi) = conversation_pair(a, b);
    cat(&[lo.0, hi.0])
}

/// Key of a direct message: `low ++ high ++ !id`, newest first within
/// the conversation.
pub fn message_key(a: UserId, b: UserId, id: PostId) -> [u8; 24] {
    let (lo, hi) = conversation_pair(a, b);
    cat(&[lo.0, hi.0, !id.0])
}

/// Value of a direct message: version, sender, text.
pub fn encode_message(m: &DirectMessage) -> Vec<u8> {
    let mut v = Vec::with_capacity(9 + m.text.len());
    v.push(VERSION);
    v.extend_from_slice(&m.from.0.to_be_bytes());
    v.extend_from_slice(m.text.as_bytes());
    v
}

/// Decodes a message from its key and value.
pub fn decode_message(key: &[u8], value: &[u8]) -> Result<DirectMessage> {
    exact(key, 24, "message key")?;
    let lo = UserId(be_u64(key, 0, "message key")?);
    let hi = UserId(be_u64(key, 8, "message key")?);
    let id = PostId(!be_u64(key, 16, "message key")?);
    // Written only by `message_key`: the pair in order, never one user twice.
    if lo >= hi {
        return Err(Error::Corrupt("message key order"));
    }
    if value.first() != Some(&VERSION) {
        return Err(Error::Corrupt("message version"));
    }
    let from = UserId(be_u64(value, 1, "message record")?);
    let to = if from == lo {
        hi
    } else if from == hi {
        lo
    } else {
        return Err(Error::Corrupt("message sender"));
    };
    let text = std::str::from_utf8(&value[9..]).map_err(|_| Error::Corrupt("message text"))?;
    Ok(DirectMessage {
        id,
        from,
        to,
        text: text.to_owned(),
    })
}

/// Key of a conversation summary: `owner ++ with`.
pub fn conversation_key(owner: UserId, with: UserId) -> [u8; 16] {
    cat(&[owner.0, with.0])
}

/// Value of a conversation summary: last message id, unread count.
pub fn encode_conversation(c: &Conversation) -> [u8; 16] {
    cat(&[c.last.0, c.unread])
}

/// Decodes a summary from its key and value.
pub fn decode_conversation(key: &[u8], value: &[u8]) -> Result<Conversation> {
    exact(key, 16, "conversation key")?;
    exact(value, 16, "conversation value")?;
    Ok(Conversation {
        with: UserId(be_u64(key, 8, "conversation key")?),
        last: PostId(be_u64(value, 0, "conversation value")?),
        unread: be_u64(value, 8, "conversation value")?,
    })
}

/// Key of a conversation-list entry: `owner ++ !last ++ with`, newest first.
pub fn conversation_index_key(owner: UserId, last: PostId, with: UserId) -> [u8; 24] {
    cat(&[owner.0, !last.0, with.0])
}

/// Decodes [`conversation_index_key`] into (owner, last, with).
pub fn decode_conversation_index_key(key: &[u8]) -> Result<(UserId, PostId, UserId)> {
    exact(key, 24, "conversation index key")?;
    Ok((
        UserId(be_u64(key, 0, "conversation index key")?),
        PostId(!be_u64(key, 8, "conversation index key")?),
        UserId(be_u64(key, 16, "conversation index key")?),
    ))
}

/// Key of a device subscription: `followee ++ follower`, so one range scan
/// finds the subscribers in a page of the followee's followers.
pub fn device_sub_key(followee: UserId, follower: UserId) -> [u8; 16] {
    cat(&[followee.0, follower.0])
}

/// Decodes [`device_sub_key`] into (followee, follower).
pub fn decode_device_sub_key(key: &[u8]) -> Result<(UserId, UserId)> {
    exact(key, 16, "device subscription key")?;
    Ok((
        UserId(be_u64(key, 0, "device subscription key")?),
        UserId(be_u64(key, 8, "device subscription key")?),
    ))
}

/// Key of an outbox entry: `post ++ recipient`.
pub fn delivery_key(id: DeliveryId) -> [u8; 16] {
    cat(&[id.post.0, id.recipient.0])
}

/// Decodes [`delivery_key`].
pub fn decode_delivery_key(key: &[u8]) -> Result<DeliveryId> {
    exact(key, 16, "delivery key")?;
    Ok(DeliveryId {
        post: PostId(be_u64(key, 0, "delivery key")?),
        recipient: UserId(be_u64(key, 8, "delivery key")?),
    })
}

const DELIVERY_V2: u8 = 2;

fn delivery_kind_byte(kind: DeliveryKind) -> u8 {
    match kind {
        DeliveryKind::Post => 0,
        DeliveryKind::Direct => 1,
        DeliveryKind::Code => 2,
        DeliveryKind::Notice => 3,
    }
}

/// Value of an outbox entry: for a post, version 1, lease end (8), phone
/// length (1), phone, text; for any other kind version 2 and the kind (1)
/// before the same fields (so posts keep the layout they always had).
pub fn encode_delivery(d: &DeviceDelivery) -> Vec<u8> {
    let phone = phone_bytes(&d.phone);
    let mut v = Vec::with_capacity(11 + phone.len() + d.text.len());
    if d.kind == DeliveryKind::Post {
        v.push(VERSION);
    } else {
        v.push(DELIVERY_V2);
        v.push(delivery_kind_byte(d.kind));
    }
    v.extend_from_slice(&d.leased_until_ms.to_be_bytes());
    // A valid phone has at most 16 bytes.
    v.push(u8::try_from(phone.len()).unwrap_or(u8::MAX));
    v.extend_from_slice(phone);
    v.extend_from_slice(d.text.as_bytes());
    v
}

/// Decodes an outbox entry from its key and value.
pub fn decode_delivery(key: &[u8], value: &[u8]) -> Result<DeviceDelivery> {
    let id = decode_delivery_key(key)?;
    let (kind, value) = match value {
        [VERSION, ..] => (DeliveryKind::Post, value),
        [DELIVERY_V2, k, ..] => {
            let kind = match k {
                1 => DeliveryKind::Direct,
                2 => DeliveryKind::Code,
                3 => DeliveryKind::Notice,
                _ => return Err(Error::Corrupt("delivery kind")),
            };
            // The fields after the kind sit where version 1 has them.
            (kind, &value[1..])
        }
        _ => return Err(Error::Corrupt("delivery version")),
    };
    let leased_until_ms = be_u64(value, 1, "delivery record")?;
    let len = usize::from(*value.get(9).ok_or(Error::Corrupt("delivery record"))?);
    let phone = value
        .get(10..10 + len)
        .ok_or(Error::Corrupt("delivery record"))?;
    let text =
        std::str::from_utf8(&value[10 + len..]).map_err(|_| Error::Corrupt("delivery text"))?;
    Ok(DeviceDelivery {
        id,
        phone: decode_phone(phone)?,
        text: text.to_owned(),
        leased_until_ms,
        kind,
    })
}

/// Key of a lease-index entry: `until ++ post ++ recipient`, so the
/// deliveries due at `now` are the keys below `now + 1`.
pub fn lease_key(until_ms: u64, id: DeliveryId) -> [u8; 24] {
    cat(&[until_ms, id.post.0, id.recipient.0])
}

/// Decodes [`lease_key`] into (until, id).
pub fn decode_lease_key(key: &[u8]) -> Result<(u64, DeliveryId)> {
    exact(key, 24, "lease key")?;
    Ok((
        be_u64(key, 0, "lease key")?,
        decode_delivery_key(&key[8..])?,
    ))
}

/// Key of a usage record: `user ++ day` (days since the Unix epoch, 4 bytes).
pub fn usage_key(user: UserId, day: u32) -> [u8; 12] {
    let mut k = [0; 12];
    k[..8].copy_from_slice(&user.0.to_be_bytes());
    k[8..].copy_from_slice(&day.to_be_bytes());
    k
}

/// Value of a usage record: sent, over cap.
pub fn encode_usage(u: &DeviceUsage) -> [u8; 16] {
    cat(&[u.sent, u.over_cap])
}

/// Decodes [`encode_usage`].
pub fn decode_usage(bytes: &[u8]) -> Result<DeviceUsage> {
    exact(bytes, 16, "usage value")?;
    Ok(DeviceUsage {
        sent: be_u64(bytes, 0, "usage value")?,
        over_cap: be_u64(bytes, 8, "usage value")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn phone() -> impl Strategy<Value = Phone> {
        "\\+[1-9][0-9]{7,14}".prop_map(|s| Phone::parse(&s).expect("valid by construction"))
    }

    proptest! {
        #[test]
        fn profiles_round_trip(name in "\\PC{0,50}", bio in "\\PC{0,160}", open: bool, paused: bool, quiet in proptest::option::of((0u8..24, 0u8..24, -48i16..=56))) {
            let quiet_hours = quiet.and_then(|(s, e, q)| QuietHours::new(s, e, q * 15).ok());
            let p = Profile { display_name: name, bio, dms_open: open, device_paused: paused, quiet_hours };
            prop_assert_eq!(decode_profile(&encode_profile(&p)).ok(), Some(p));
        }

        #[test]
        fn messages_round_trip_and_sort_newest_first(a: u64, b: u64, id1: u64, id2: u64, text in "\\PC{0,40}", a_sends: bool) {
            let (from, to) = if a_sends { (UserId(a), UserId(b)) } else { (UserId(b), UserId(a)) };
            let m = DirectMessage { id: PostId(id1), from, to, text };
            let k = message_key(from, to, m.id);
            // Nobody messages themselves: such a key is refused.
            let want = (a != b).then(|| m.clone());
            prop_assert_eq!(decode_message(&k, &encode_message(&m)).ok(), want);
            prop_assert_eq!(k, message_key(to, from, PostId(id1)));
            prop_assert_eq!(k.cmp(&message_key(from, to, PostId(id2))), id2.cmp(&id1));
            prop_assert!(k.starts_with(&message_prefix(to, from)));
        }

        #[test]
        fn conversations_round_trip(owner: u64, with: u64, last: u64, unread: u64, last2: u64) {
            let c = Conversation { with: UserId(with), last: PostId(last), unread };
            let k = conversation_key(UserId(owner), UserId(with));
            prop_assert_eq!(decode_conversation(&k, &encode_conversation(&c)).ok(), Some(c));
            let ik = conversation_index_key(UserId(owner), PostId(last), UserId(with));
            prop_assert_eq!(decode_conversation_index_key(&ik).ok(), Some((UserId(owner), PostId(last), UserId(with))));
            let ik2 = conversation_index_key(UserId(owner), PostId(last2), UserId(with));
            prop_assert_eq!(ik.cmp(&ik2), last2.cmp(&last));
        }

        #[test]
        fn deliveries_round_trip(post: u64, rcpt: u64, until: u64, phone in phone(), text in "\\PC{0,160}", k in 0u8..4) {
            let kind = [DeliveryKind::Post, DeliveryKind::Direct, DeliveryKind::Code, DeliveryKind::Notice][usize::from(k)];
            let d = DeviceDelivery { id: DeliveryId { post: PostId(post), recipient: UserId(rcpt) }, phone, text, leased_until_ms: until, kind };
            prop_assert_eq!(decode_delivery(&delivery_key(d.id), &encode_delivery(&d)).ok(), Some(d.clone()));
            prop_assert_eq!(decode_lease_key(&lease_key(until, d.id)).ok(), Some((until, d.id)));
            prop_assert_eq!(decode_device_sub_key(&device_sub_key(UserId(post), UserId(rcpt))).ok(), Some((UserId(post), UserId(rcpt))));
        }

        #[test]
        fn claims_round_trip_and_index_keys_group_by_number(user: u64, other: u64, code in 0u32..1_000_000, expires: u64, left: u8, phone in phone(), phone2 in phone()) {
            let c = PhoneClaim { user: UserId(user), phone: phone.clone(), code, expires_ms: expires, attempts_left: left };
            prop_assert_eq!(decode_claim(UserId(user), &encode_claim(&c)).ok(), Some(c));
            let k = claim_index_key(&phone, UserId(user));
            prop_assert_eq!(decode_claim_index_key(&k).ok(), Some((phone.clone(), UserId(user))));
            prop_assert!(k.starts_with(&claim_index_prefix(&phone)));
            prop_assert_eq!(claim_index_key(&phone2, UserId(other)).starts_with(&claim_index_prefix(&phone)), phone2 == phone);
        }

        #[test]
        fn usage_and_avatars_round_trip(sent: u64, over: u64, body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let u = DeviceUsage { sent, over_cap: over };
            prop_assert_eq!(decode_usage(&encode_usage(&u)).ok(), Some(u));
            let mut bytes = b"GIF89a".to_vec();
            bytes.extend(body);
            let a = Avatar::parse(&bytes).expect("a GIF");
            prop_assert_eq!(decode_avatar(&encode_avatar(&a)).ok(), Some(a.clone()));
            let shared = Bytes::from(encode_avatar(&a));
            let back = decode_avatar_bytes(shared.clone()).expect("decodes");
            // The picture is a view into the stored value, not a copy.
            prop_assert_eq!(back.bytes.as_ptr(), shared[2..].as_ptr());
            prop_assert_eq!(back, a);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..48)) {
            let _ = decode_profile(&bytes);
            let _ = decode_avatar(&bytes);
            let _ = decode_phone(&bytes);
            let _ = decode_user_id(&bytes);
            let _ = decode_message(&bytes, &bytes);
            let _ = decode_conversation(&bytes, &bytes);
            let _ = decode_conversation_index_key(&bytes);
            let _ = decode_device_sub_key(&bytes);
            let _ = decode_delivery(&bytes, &bytes);
            let _ = decode_delivery(bytes.get(..16).unwrap_or(&[]), &bytes);
            let _ = decode_lease_key(&bytes);
            let _ = decode_usage(&bytes);
            let _ = decode_claim(UserId(1), &bytes);
            let _ = decode_claim_index_key(&bytes);
            let _ = decode_post_id_value(&bytes);
        }
    }

    #[test]
    fn bad_records_are_corrupt() {
        // Kind byte says JPEG, bytes are PNG.
        assert!(matches!(
            decode_avatar(b"\x01\x01\x89PNG\r\n\x1a\n"),
            Err(Error::Corrupt(_))
        ));
        // Display-name length past the end.
        assert!(matches!(
            decode_profile(&[1, 0, 0, 9, b'a']),
            Err(Error::Corrupt(_))
        ));
        // Unknown flag.
        assert!(matches!(
            decode_profile(&[1, 8, 0, 0]),
            Err(Error::Corrupt(_))
        ));
        // Quiet hours flagged but cut short, or out of range.
        assert!(matches!(
            decode_profile(&[1, 4, 22, 7]),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(
            decode_profile(&[1, 4, 22, 22, 0, 0, 0, 0]),
            Err(Error::Corrupt(_))
        ));
        // Sender is neither party.
        let key = message_key(UserId(1), UserId(2), PostId(3));
        let mut value = vec![1];
        value.extend_from_slice(&9u64.to_be_bytes());
        assert!(matches!(
            decode_message(&key, &value),
            Err(Error::Corrupt(_))
        ));
        // Phone length past the end.
        let mut d = vec![1];
        d.extend_from_slice(&0u64.to_be_bytes());
        d.push(200);
        assert!(matches!(
            decode_delivery(&[0; 16], &d),
            Err(Error::Corrupt(_))
        ));
        // Unknown delivery kind.
        let mut d = vec![2, 9];
        d.extend_from_slice(&0u64.to_be_bytes());
        d.extend_from_slice(b"\x0c+15555550100");
        assert!(matches!(
            decode_delivery(&[0; 16], &d),
            Err(Error::Corrupt(_))
        ));
        // A code of seven digits.
        let claim = PhoneClaim {
            user: UserId(1),
            phone: Phone::parse("+15555550100").expect("valid"),
            code: 999_999,
            expires_ms: 1,
            attempts_left: 5,
        };
        let mut v = encode_claim(&claim);
        assert!(decode_claim(UserId(1), &v).is_ok());
        v[1..5].copy_from_slice(&1_000_000u32.to_be_bytes());
        assert!(matches!(
            decode_claim(UserId(1), &v),
            Err(Error::Corrupt(_))
        ));
    }
}
