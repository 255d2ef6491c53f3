//! `Serialize` and `Deserialize` of the values whose JSON form is not a
//! plain derive (feature `serde`).
//!
//! Ids are written for JSON clients, JavaScript's included, whose numbers
//! are exact only up to 2^53:
//!
//! - [`UserId`] and [`GroupId`] are numbers: they are counters from 1 and
//!   stay far below 2^53.
//! - [`PostId`] (and a direct message's id) is a decimal string: it holds
//!   milliseconds in its high bits, so every id made since late January
//!   2024 is above 2^53.
//! - [`DeliveryId`] is its `post.recipient` string.
//!
//! Every id is read back from a number or a decimal string alike.
//! [`Username`] and [`Phone`] are strings, validated when read;
//! [`Cursor`] is its opaque string.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::{Cursor, DeliveryId, GroupId, Phone, PostId, UserId, Username};

/// Reads a u64 written as a number or as a decimal string.
struct U64Visitor;

impl Visitor<'_> for U64Visitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an id, as a number or a decimal string")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(E::invalid_value(de::Unexpected::Str(v), &self));
        }
        v.parse()
            .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

fn id<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(U64Visitor)
}

impl Serialize for UserId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<UserId, D::Error> {
        id(d).map(UserId)
    }
}

impl Serialize for GroupId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for GroupId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<GroupId, D::Error> {
        id(d).map(GroupId)
    }
}

impl Serialize for PostId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PostId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PostId, D::Error> {
        id(d).map(PostId)
    }
}

/// Writes a value as its `Display` string and reads it back with a parser
/// that validates it.
macro_rules! as_string {
    ($ty:ty, $parse:expr, $expecting:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $ty;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }

                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        $parse(v).map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

as_string!(Username, Username::parse, "a username");
as_string!(Phone, Phone::parse, "a phone number in E.164 form");
as_string!(Cursor, str::parse::<Cursor>, "a cursor string");
as_string!(
    DeliveryId,
    str::parse::<DeliveryId>,
    "a delivery id `post.recipient`"
);

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;

    use super::*;
    use crate::{
        Audience, Conversation, Counts, DeliveryKind, DeviceDelivery, DeviceUsage, DirectMessage,
        DmPolicy, Group, ImageKind, Post, Profile, Toggle, User,
    };

    /// Serializes `value`, checks the JSON is `json`, and reads it back.
    fn round_trip<T>(value: T, json: &str)
    where
        T: Serialize + DeserializeOwned + PartialEq + fmt::Debug,
    {
        let written = serde_json::to_string(&value).expect("serializes");
        assert_eq!(written, json);
        let back: T = serde_json::from_str(&written).expect("deserializes");
        assert_eq!(back, value);
    }

    fn refused<T: DeserializeOwned + fmt::Debug>(json: &str) {
        let read = serde_json::from_str::<T>(json);
        assert!(read.is_err(), "{json} read as {read:?}");
    }

    const POST: PostId = PostId(2_130_303_778_816_004_097);

    #[test]
    fn ids() {
        round_trip(UserId(7), "7");
        round_trip(GroupId(u64::MAX), "18446744073709551615");
        round_trip(POST, "\"2130303778816004097\"");
        // Any post written since late January 2024 has an id above 2^53.
        let soon_after_epoch = PostId::from_parts(1 << 31, 0, 0);
        assert!(soon_after_epoch.0 >= 1 << 53);
        assert!(soon_after_epoch.unix_millis() < 1_706_227_200_000);
        assert!(POST.0 > soon_after_epoch.0);
        // Either form is read.
        assert_eq!(
            serde_json::from_str::<UserId>("\"7\"").ok(),
            Some(UserId(7))
        );
        assert_eq!(serde_json::from_str::<PostId>("12").ok(), Some(PostId(12)));
        refused::<UserId>("-1");
        refused::<UserId>("\"\"");
        refused::<PostId>("\"12a\"");
        refused::<PostId>("\"+12\"");
        refused::<PostId>("\"18446744073709551616\"");
        refused::<GroupId>("1.5");
        round_trip(
            DeliveryId {
                post: POST,
                recipient: UserId(3),
            },
            "\"2130303778816004097.3\"",
        );
        refused::<DeliveryId>("\"12\"");
    }

    #[test]
    fn validated_strings() {
        round_trip(Username::parse("Ada_99").expect("valid"), "\"Ada_99\"");
        refused::<Username>("\"no spaces\"");
        refused::<Username>("\"\"");
        round_trip(
            Phone::parse("+15551234567").expect("valid"),
            "\"+15551234567\"",
        );
        refused::<Phone>("\"5551234567\"");
        let cursor = Cursor::timeline(POST, 3);
        round_trip(cursor, &format!("\"{cursor}\""));
        refused::<Cursor>("\"!!\"");
        refused::<Cursor>("12");
    }

    #[test]
    fn records() {
        round_trip(
            User {
                id: UserId(1),
                name: Username::parse("ada").expect("valid"),
                created_at_ms: 1_700_000_000_000,
            },
            r#"{"id":1,"username":"ada","created_at_ms":1700000000000}"#,
        );
        round_trip(
            Post {
                reply_to: Some(PostId(5)),
                audience: Audience::Group(GroupId(2)),
                likes: 3,
                ..Post::new(POST, UserId(1), "hi")
            },
            r#"{"id":"2130303778816004097","author":1,"text":"hi","deleted":false,"reply_to":"5","repost_of":null,"audience":{"group":2},"likes":3}"#,
        );
        round_trip(
            Post::new(PostId(9), UserId(1), "x").tombstone(),
            r#"{"id":"9","author":1,"text":"","deleted":true,"reply_to":null,"repost_of":null,"audience":"public","likes":0}"#,
        );
        round_trip(
            Group {
                id: GroupId(2),
                owner: UserId(1),
                name: "close friends".into(),
            },
            r#"{"id":2,"owner":1,"name":"close friends"}"#,
        );
        round_trip(
            Counts {
                followers: 3,
                following: 4,
            },
            r#"{"followers":3,"following":4}"#,
        );
        round_trip(
            Profile {
                display_name: "Ada".into(),
                bio: "engines\nand looms".into(),
                dms_open: true,
                device_paused: false,
                quiet_hours: None,
            },
            r#"{"display_name":"Ada","bio":"engines\nand looms","dms_open":true,"device_paused":false,"quiet_hours":null}"#,
        );
        round_trip(
            DirectMessage {
                id: POST,
                from: UserId(1),
                to: UserId(2),
                text: "psst".into(),
            },
            r#"{"id":"2130303778816004097","from":1,"to":2,"text":"psst"}"#,
        );
        round_trip(
            Conversation {
                with: UserId(2),
                last: PostId(8),
                unread: 1,
            },
            r#"{"with":2,"last":"8","unread":1}"#,
        );
        round_trip(
            DeviceDelivery {
                id: DeliveryId {
                    post: PostId(8),
                    recipient: UserId(2),
                },
                phone: Phone::parse("+15551234567").expect("valid"),
                text: "ada: hi".into(),
                leased_until_ms: 0,
                kind: DeliveryKind::Post,
            },
            r#"{"id":"8.2","phone":"+15551234567","text":"ada: hi","leased_until_ms":0,"kind":"post"}"#,
        );
        round_trip(
            DeviceUsage {
                sent: 2,
                over_cap: 1,
            },
            r#"{"sent":2,"over_cap":1}"#,
        );
        round_trip(DmPolicy::FollowedOnly, "\"followed_only\"");
        round_trip(Toggle::On, "\"on\"");
        round_trip(ImageKind::Webp, "\"webp\"");
        // A record with an invalid username inside is refused whole.
        refused::<User>(r#"{"id":1,"username":"a b","created_at_ms":0}"#);
    }
}
