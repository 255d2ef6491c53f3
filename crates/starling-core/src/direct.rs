//! Profiles, phones, direct messages and device updates: the records and
//! the mutations of the "direct" features, and the validation of their
//! inputs (display names, bios, phone numbers, avatar pictures).

use bytes::Bytes;
use std::fmt;
use std::str::FromStr;

use crate::{Error, PostId, Result, UserId};

/// The longest display name, in characters.
pub const DISPLAY_NAME_MAX_CHARS: usize = 50;
/// The longest bio, in characters.
pub const BIO_MAX_CHARS: usize = 160;
/// The largest avatar picture, in bytes (256 KiB).
pub const AVATAR_MAX_BYTES: usize = 256 * 1024;
/// Milliseconds in a UTC day (device usage is counted per UTC day).
pub const DAY_MS: u64 = 24 * 3600 * 1000;

/// The UTC day (days since the Unix epoch) of a time in milliseconds since
/// the Unix epoch: the unit of the device daily cap.
pub fn utc_day(unix_ms: u64) -> u32 {
    u32::try_from(unix_ms / DAY_MS).unwrap_or(u32::MAX)
}

/// A user's profile and settings. A user who never set one has
/// `Profile::default()`: no display name, no bio, DMs only from accounts
/// they follow, device updates not paused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Profile {
    /// Display name: at most [`DISPLAY_NAME_MAX_CHARS`] characters, no
    /// control characters; may be empty.
    pub display_name: String,
    /// Bio: at most [`BIO_MAX_CHARS`] characters, no control characters
    /// other than newline; may be empty.
    pub bio: String,
    /// Anyone may send this user direct messages (otherwise only accounts
    /// the user follows may).
    pub dms_open: bool,
    /// Device updates are paused (the user texted STOP or OFF).
    pub device_paused: bool,
    /// Hours during which texts wait in the outbox (SLEEP), if set.
    #[cfg_attr(feature = "serde", serde(default))]
    pub quiet_hours: Option<QuietHours>,
}

/// Hours of the day, in the recipient's UTC offset, during which texts to
/// them wait in the outbox instead of being sent: from `start_hour` up to
/// (not including) `end_hour`, across midnight when `end_hour` is the
/// smaller. Confirmation codes are sent anyway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct QuietHours {
    /// The first quiet hour, 0 to 23.
    pub start_hour: u8,
    /// The first hour texts go out again, 0 to 23, not `start_hour`.
    pub end_hour: u8,
    /// The recipient's offset from UTC in minutes, -720 to 840, a multiple
    /// of 15.
    pub utc_offset_minutes: i16,
}

const HOUR_MS: i64 = 3_600_000;

impl QuietHours {
    /// Validates quiet hours ([`Error::InvalidProfile`] when out of range).
    pub fn new(start_hour: u8, end_hour: u8, utc_offset_minutes: i16) -> Result<QuietHours> {
        if start_hour > 23 || end_hour > 23 {
            return Err(Error::InvalidProfile("quiet hours are 0 to 23"));
        }
        if start_hour == end_hour {
            return Err(Error::InvalidProfile(
                "quiet hours must start and end at different hours",
            ));
        }
        if !(-720..=840).contains(&utc_offset_minutes) || utc_offset_minutes % 15 != 0 {
            return Err(Error::InvalidProfile(
                "a UTC offset is -12:00 to +14:00 in quarter hours",
            ));
        }
        Ok(QuietHours {
            start_hour,
            end_hour,
            utc_offset_minutes,
        })
    }

    fn local_ms(&self, unix_ms: u64) -> i64 {
        i64::try_from(unix_ms).unwrap_or(i64::MAX / 2) + i64::from(self.utc_offset_minutes) * 60_000
    }

    /// Whether `unix_ms` falls in the quiet hours.
    pub fn contains(&self, unix_ms: u64) -> bool {
        let hour = self.local_ms(unix_ms).rem_euclid(24 * HOUR_MS) / HOUR_MS;
        let (start, end) = (i64::from(self.start_hour), i64::from(self.end_hour));
        if start < end {
            (start..end).contains(&hour)
        } else {
            hour >= start || hour < end
        }
    }

    /// The first moment after `unix_ms` when the hour is `end_hour` again
    /// (the end of the quiet hours `unix_ms` falls in).
    pub fn end_after(&self, unix_ms: u64) -> u64 {
        let local = self.local_ms(unix_ms);
        let day = 24 * HOUR_MS;
        let mut end = local - local.rem_euclid(day) + i64::from(self.end_hour) * HOUR_MS;
        if end <= local {
            end += day;
        }
        let utc = end - i64::from(self.utc_offset_minutes) * 60_000;
        u64::try_from(utc).unwrap_or(0)
    }
}

impl Profile {
    /// Validates a display name and a bio.
    pub fn validate_text(display_name: &str, bio: &str) -> Result<()> {
        let mut len = 0;
        for c in display_name.chars() {
            if c.is_control() {
                return Err(Error::InvalidProfile(
                    "display name holds a control character",
                ));
            }
            len += 1;
        }
        if len > DISPLAY_NAME_MAX_CHARS {
            return Err(Error::InvalidProfile(
                "display name is longer than 50 characters",
            ));
        }
        let mut len = 0;
        for c in bio.chars() {
            if c.is_control() && c != '\n' {
                return Err(Error::InvalidProfile(
                    "bio holds a control character other than newline",
                ));
            }
            len += 1;
        }
        if len > BIO_MAX_CHARS {
            return Err(Error::InvalidProfile("bio is longer than 160 characters"));
        }
        Ok(())
    }
}

/// Who may send a user direct messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum DmPolicy {
    /// Anyone.
    Open,
    /// Only the accounts the user follows (the default).
    FollowedOnly,
}

/// On or off (device updates for one followed account).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Toggle {
    /// Turned on.
    On,
    /// Turned off.
    Off,
}

/// A phone number in E.164 form: `+`, then 8 to 15 digits, the first not 0.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Phone(String);

impl Phone {
    /// Validates `raw` (no spaces or punctuation are accepted).
    pub fn parse(raw: &str) -> Result<Phone> {
        let Some(digits) = raw.strip_prefix('+') else {
            return Err(Error::InvalidPhone("must start with +"));
        };
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::InvalidPhone("only digits may follow the +"));
        }
        if !(8..=15).contains(&digits.len()) {
            return Err(Error::InvalidPhone("must have 8 to 15 digits"));
        }
        if digits.starts_with('0') {
            return Err(Error::InvalidPhone("the country code cannot start with 0"));
        }
        Ok(Phone(raw.to_owned()))
    }

    /// The number, `+` included.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kinds of picture an avatar may be, told apart by their first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum ImageKind {
    /// PNG (`89 50 4E 47 0D 0A 1A 0A`).
    Png,
    /// JPEG (`FF D8 FF`).
    Jpeg,
    /// GIF (`GIF87a` or `GIF89a`).
    Gif,
    /// WebP (`RIFF`, four bytes of size, `WEBP`).
    Webp,
}

impl ImageKind {
    /// The kind of picture `bytes` start like, if any of the four.
    pub fn sniff(bytes: &[u8]) -> Option<ImageKind> {
        match bytes {
            [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, ..] => Some(ImageKind::Png),
            [0xff, 0xd8, 0xff, ..] => Some(ImageKind::Jpeg),
            [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some(ImageKind::Gif),
            [
                b'R',
                b'I',
                b'F',
                b'F',
                _,
                _,
                _,
                _,
                b'W',
                b'E',
                b'B',
                b'P',
                ..,
            ] => Some(ImageKind::Webp),
            _ => None,
        }
    }

    /// The MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            ImageKind::Png => "image/png",
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Gif => "image/gif",
            ImageKind::Webp => "image/webp",
        }
    }
}

/// A validated avatar picture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Avatar {
    /// What kind of picture it is.
    pub kind: ImageKind,
    /// The picture's bytes, shared: cloning an avatar, or handing its
    /// bytes on to an HTTP body, copies nothing.
    pub bytes: Bytes,
}

impl Avatar {
    /// Checks size ([`AVATAR_MAX_BYTES`]) and kind (by magic bytes), then
    /// copies the bytes.
    pub fn parse(bytes: &[u8]) -> Result<Avatar> {
        if bytes.len() > AVATAR_MAX_BYTES {
            return Err(Error::AvatarTooLarge {
                len: bytes.len(),
                max: AVATAR_MAX_BYTES,
            });
        }
        let kind = ImageKind::sniff(bytes).ok_or(Error::UnsupportedImage)?;
        Ok(Avatar {
            kind,
            bytes: Bytes::copy_from_slice(bytes),
        })
    }
}

/// One direct message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DirectMessage {
    /// Its id, from the post-id generator (so it dates itself).
    pub id: PostId,
    /// Who sent it.
    pub from: UserId,
    /// Who it was sent to.
    pub to: UserId,
    /// Its text (valid post text).
    pub text: String,
}

/// One user's summary of a conversation with another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Conversation {
    /// The other user.
    pub with: UserId,
    /// The newest message, either way.
    pub last: PostId,
    /// Messages from `with` the owner has not marked read.
    pub unread: u64,
}

/// Identifies one device delivery: the post, and who receives it. A post
/// reaches a recipient at most once, so the pair is the outbox key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeliveryId {
    /// The post delivered.
    pub post: PostId,
    /// The user whose phone gets it.
    pub recipient: UserId,
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.post.0, self.recipient.0)
    }
}

impl FromStr for DeliveryId {
    type Err = Error;

    /// Parses the `post.recipient` form [`fmt::Display`] writes.
    fn from_str(s: &str) -> Result<DeliveryId> {
        let bad = || Error::InvalidDeliveryId;
        let (post, recipient) = s.split_once('.').ok_or_else(bad)?;
        let num = |t: &str| {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            t.parse::<u64>().map_err(|_| bad())
        };
        Ok(DeliveryId {
            post: PostId(num(post)?),
            recipient: UserId(num(recipient)?),
        })
    }
}

/// What a queued text is. The kind decides which number it may go to
/// when it is leased: a confirmation code goes to the number being
/// confirmed (and nothing else does), every other kind to the number the
/// recipient has confirmed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum DeliveryKind {
    /// A followed account's post; the id's `post` is the post.
    #[default]
    Post,
    /// A direct message; the id's `post` is the message.
    Direct,
    /// A phone confirmation code; the id's `post` is a fresh id.
    Code,
    /// A notice from the service (the daily cap was reached); the id's
    /// `post` is a fresh id.
    Notice,
}

/// A queued device update: one text for one phone.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DeviceDelivery {
    /// Post (or message, or fresh id) and recipient.
    pub id: DeliveryId,
    /// The number to text (the recipient's when it was queued; for a code,
    /// the number being confirmed).
    pub phone: Phone,
    /// The text, at most one SMS.
    pub text: String,
    /// Not offered again before this time (ms since the Unix epoch); 0 when
    /// never leased.
    pub leased_until_ms: u64,
    /// What the text is.
    #[cfg_attr(feature = "serde", serde(default))]
    pub kind: DeliveryKind,
}

/// Digits in a phone confirmation code.
pub const PHONE_CODE_DIGITS: usize = 6;
/// Wrong codes a pending phone link survives; the last one drops it.
pub const PHONE_CODE_ATTEMPTS: u8 = 5;
/// Pending links one number may have at once (from different accounts);
/// a new one past this drops the one that expires first.
pub const MAX_CLAIMS_PER_PHONE: usize = 8;

/// A pending phone link: `user` asked to link `phone`, a code was texted
/// to it, and the link takes effect only when the code comes back. Until
/// then the number receives nothing but its code and blocks nobody.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneClaim {
    /// Who asked.
    pub user: UserId,
    /// The number to confirm.
    pub phone: Phone,
    /// The code texted to it, below 10^[`PHONE_CODE_DIGITS`].
    pub code: u32,
    /// The code is refused from this time on (ms since the Unix epoch).
    pub expires_ms: u64,
    /// Wrong codes still allowed before the claim is dropped.
    pub attempts_left: u8,
}

/// Parses a confirmation code as typed: exactly [`PHONE_CODE_DIGITS`]
/// ASCII digits once surrounding whitespace is trimmed.
pub fn parse_phone_code(raw: &str) -> Result<u32> {
    let t = raw.trim();
    if t.len() != PHONE_CODE_DIGITS || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::InvalidPhoneCode);
    }
    t.parse().map_err(|_| Error::InvalidPhoneCode)
}

/// The code as texted: [`PHONE_CODE_DIGITS`] digits, zero-padded.
pub fn format_phone_code(code: u32) -> String {
    format!("{code:06}")
}

/// Device updates of one recipient on one UTC day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DeviceUsage {
    /// Deliveries queued.
    pub sent: u64,
    /// Deliveries not queued because the daily cap was reached.
    pub over_cap: u64,
}

/// One change to the stored state of the direct features; carried by
/// [`crate::Mutation::Direct`] and applied atomically with the rest of its
/// batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirectMutation {
    /// Store a user's profile and settings.
    PutProfile {
        /// Whose.
        user: UserId,
        /// The whole profile.
        profile: Profile,
    },
    /// Store a user's avatar, replacing any.
    PutAvatar {
        /// Whose.
        user: UserId,
        /// The picture.
        avatar: Avatar,
    },
    /// Remove a user's avatar if any.
    DeleteAvatar(UserId),
    /// Link `phone` to `user` (both directions), removing the index entry
    /// of the phone it replaces. Only issued when no other user holds `phone`.
    LinkPhone {
        /// Whose.
        user: UserId,
        /// The new number.
        phone: Phone,
        /// The user's previous number, if any.
        replaces: Option<Phone>,
    },
    /// Unlink a user's phone (both directions).
    UnlinkPhone {
        /// Whose.
        user: UserId,
        /// The number linked now.
        phone: Phone,
    },
    /// Store a direct message.
    PutMessage(DirectMessage),
    /// Store `owner`'s summary of a conversation and move its entry in the
    /// owner's newest-first conversation list from `replaces` (the summary's
    /// previous `last`, if any) to `summary.last`.
    PutConversation {
        /// Whose list.
        owner: UserId,
        /// The new summary.
        summary: Conversation,
        /// The previous summary's `last`, if there was one.
        replaces: Option<PostId>,
    },
    /// Turn device updates of `followee`'s posts on or off for `follower`.
    SetDeviceSub {
        /// The followed account.
        followee: UserId,
        /// The follower who gets texts.
        follower: UserId,
        /// On or off.
        on: Toggle,
    },
    /// Queue a device update (never leased yet). Idempotent: keyed by id.
    QueueDelivery(DeviceDelivery),
    /// Re-store a queued delivery with a new lease end, moving its
    /// lease-index entry from `from_ms`.
    LeaseDelivery {
        /// The delivery, `leased_until_ms` set to the new lease end.
        delivery: DeviceDelivery,
        /// Its lease end before (0 when never leased).
        from_ms: u64,
    },
    /// Remove an acknowledged delivery and its lease-index entry.
    AckDelivery {
        /// Which.
        id: DeliveryId,
        /// Its current lease (0 when never leased).
        leased_until_ms: u64,
    },
    /// Store a pending phone link (both directions: by user, and by
    /// number), replacing the user's previous pending link, whose number
    /// is `replaces`.
    PutPhoneClaim {
        /// The claim.
        claim: PhoneClaim,
        /// The number of the user's previous pending link, if any.
        replaces: Option<Phone>,
    },
    /// Remove a pending phone link (both directions).
    DeletePhoneClaim {
        /// Whose.
        user: UserId,
        /// Its number.
        phone: Phone,
    },
    /// Store a recipient's device usage for one UTC day.
    SetDeviceUsage {
        /// Whose.
        user: UserId,
        /// Days since the Unix epoch.
        day: u32,
        /// The new figures.
        usage: DeviceUsage,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones() {
        for good in [
            "+14155550123",
            "+44207946000",
            "+123456789012345",
            "+12345678",
        ] {
            assert_eq!(
                Phone::parse(good).map(|p| p.to_string()).ok().as_deref(),
                Some(good)
            );
        }
        for bad in [
            "",
            "+",
            "14155550123",
            "+1234567",
            "+1234567890123456",
            "+04155550123",
            "+1 415 555 0123",
            "+1-415-555-0123",
            "++14155550123",
            "+1415555012a",
            "+１４１５５５５０１２３",
        ] {
            assert!(
                matches!(Phone::parse(bad), Err(Error::InvalidPhone(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn quiet_hours_wrap_midnight_and_follow_the_offset() {
        let h = |hour: u64, min: u64| hour * 3_600_000 + min * 60_000;
        // 22:00 to 07:00 at UTC+1: 21:00 to 06:00 UTC.
        let q = QuietHours::new(22, 7, 60).expect("valid");
        for (at, quiet) in [
            (h(20, 59), false),
            (h(21, 0), true),
            (h(23, 59), true),
            (h(24, 30), true),
            (h(29, 59), true),
            (h(30, 0), false),
        ] {
            assert_eq!(q.contains(at), quiet, "{at}");
        }
        assert_eq!(q.end_after(h(21, 0)), h(30, 0));
        assert_eq!(q.end_after(h(25, 0)), h(30, 0));
        // Daytime hours at UTC-5 (09:00 to 17:00 local: 14:00 to 22:00 UTC).
        let q = QuietHours::new(9, 17, -300).expect("valid");
        assert!(!q.contains(h(13, 59)) && q.contains(h(14, 0)) && !q.contains(h(22, 0)));
        assert_eq!(q.end_after(h(14, 0)), h(22, 0));
        // At the epoch, with a negative offset, nothing underflows.
        let q = QuietHours::new(0, 1, -720).expect("valid");
        assert!(!q.contains(0));
        for (start, end, offset) in [(24, 1, 0), (1, 1, 0), (1, 2, 841), (1, 2, -721), (1, 2, 7)] {
            assert!(
                matches!(
                    QuietHours::new(start, end, offset),
                    Err(Error::InvalidProfile(_))
                ),
                "{start} {end} {offset}"
            );
        }
    }

    #[test]
    fn image_kinds_are_sniffed_from_magic_bytes() {
        let cases: [(&[u8], Option<ImageKind>); 10] = [
            (b"\x89PNG\r\n\x1a\nrest", Some(ImageKind::Png)),
            (b"\xff\xd8\xff\xe0", Some(ImageKind::Jpeg)),
            (b"GIF87a..", Some(ImageKind::Gif)),
            (b"GIF89a..", Some(ImageKind::Gif)),
            (b"RIFF\0\0\0\0WEBPVP8 ", Some(ImageKind::Webp)),
            (b"RIFF\0\0\0\0WAVEfmt ", None),
            (b"\x89PNG\r\n", None),
            (b"GIF88a", None),
            (b"<svg></svg>", None),
            (b"", None),
        ];
        for (bytes, kind) in cases {
            assert_eq!(ImageKind::sniff(bytes), kind, "{bytes:?}");
        }
    }

    #[test]
    fn avatars_are_checked_for_size_then_kind() {
        let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
        big.resize(AVATAR_MAX_BYTES, 0);
        assert!(Avatar::parse(&big).is_ok());
        big.push(0);
        assert!(matches!(
            Avatar::parse(&big),
            Err(Error::AvatarTooLarge { len, max: AVATAR_MAX_BYTES }) if len == AVATAR_MAX_BYTES + 1
        ));
        assert!(matches!(
            Avatar::parse(b"hello"),
            Err(Error::UnsupportedImage)
        ));
    }

    #[test]
    fn profile_text_rules() {
        assert!(Profile::validate_text("", "").is_ok());
        assert!(Profile::validate_text(&"é".repeat(50), &"é".repeat(160)).is_ok());
        assert!(Profile::validate_text("Ada", "line\nline").is_ok());
        for (name, bio) in [
            (&*"é".repeat(51), ""),
            ("", &*"é".repeat(161)),
            ("a\nb", ""),
            ("tab\t", ""),
            ("", "bell\u{7}"),
        ] {
            assert!(
                matches!(
                    Profile::validate_text(name, bio),
                    Err(Error::InvalidProfile(_))
                ),
                "{name:?} {bio:?}"
            );
        }
    }

    #[test]
    fn delivery_ids_round_trip_and_garbage_is_refused() {
        let id = DeliveryId {
            post: PostId(u64::MAX),
            recipient: UserId(7),
        };
        assert_eq!(id.to_string().parse::<DeliveryId>().ok(), Some(id));
        for bad in [
            "",
            ".",
            "1.",
            ".1",
            "1.2.3",
            "+1.2",
            "a.b",
            "99999999999999999999.1",
        ] {
            assert!(bad.parse::<DeliveryId>().is_err(), "{bad:?}");
        }
    }
}
