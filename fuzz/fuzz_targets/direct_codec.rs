//! The codecs of profiles, avatars, phones, direct messages, conversations
//! and device updates on arbitrary bytes: no decoder panics, a refusal is
//! always `Corrupt`, and whatever a decoder accepts encodes back to the
//! same bytes (so there is one stored form of every record). The input is
//! split at its first byte into a key and a value for the decoders that
//! take both.

#![no_main]

use libfuzzer_sys::fuzz_target;
use starling_core::direct_codec as dc;
use starling_core::{Error, Result};

fn refused<T>(what: &str, r: &Result<T>) {
    if let Err(e) = r {
        assert!(matches!(e, Error::Corrupt(_)), "{what}: {e:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let split = usize::from(data.first().copied().unwrap_or(0)).min(data.len());
    let (key, value) = data.split_at(split);

    let r = dc::decode_profile(data);
    refused("profile", &r);
    if let Ok(p) = r {
        assert_eq!(dc::encode_profile(&p), data, "profile");
    }

    let r = dc::decode_avatar(data);
    refused("avatar", &r);
    if let Ok(a) = r {
        assert_eq!(dc::encode_avatar(&a), data, "avatar");
    }

    let r = dc::decode_phone(data);
    refused("phone", &r);
    if let Ok(p) = r {
        assert_eq!(dc::phone_bytes(&p), data, "phone");
    }

    let r = dc::decode_message(key, value);
    refused("message", &r);
    if let Ok(m) = r {
        assert_eq!(
            dc::message_key(m.from, m.to, m.id).as_slice(),
            key,
            "message key"
        );
        assert_eq!(dc::encode_message(&m), value, "message value");
    }

    let r = dc::decode_conversation(key, value);
    refused("conversation", &r);
    if let Ok(c) = r {
        assert_eq!(
            dc::encode_conversation(&c).as_slice(),
            value,
            "conversation"
        );
    }

    let r = dc::decode_conversation_index_key(data);
    refused("conversation index", &r);
    if let Ok((owner, last, with)) = r {
        assert_eq!(
            dc::conversation_index_key(owner, last, with).as_slice(),
            data,
            "conversation index"
        );
    }

    let r = dc::decode_device_sub_key(data);
    refused("device subscription", &r);
    if let Ok((followee, follower)) = r {
        assert_eq!(dc::device_sub_key(followee, follower).as_slice(), data);
    }

    let r = dc::decode_delivery_key(data);
    refused("delivery key", &r);
    if let Ok(id) = r {
        assert_eq!(dc::delivery_key(id).as_slice(), data, "delivery key");
    }

    let r = dc::decode_delivery(key, value);
    refused("delivery", &r);
    if let Ok(d) = r {
        assert_eq!(dc::delivery_key(d.id).as_slice(), key, "delivery id");
        assert_eq!(dc::encode_delivery(&d), value, "delivery value");
    }

    let r = dc::decode_lease_key(data);
    refused("lease key", &r);
    if let Ok((until, id)) = r {
        assert_eq!(dc::lease_key(until, id).as_slice(), data, "lease key");
    }

    let r = dc::decode_usage(data);
    refused("usage", &r);
    if let Ok(u) = r {
        assert_eq!(dc::encode_usage(&u).as_slice(), data, "usage");
    }
});
