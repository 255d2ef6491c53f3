//! Engine operations of the direct features: profiles and avatars, phones,
//! direct messages with per-user conversation lists, and device updates
//! (subscriptions, the durable outbox a gateway leases and acknowledges,
//! the per-recipient daily usage). The fan-out hook that queues device
//! updates is planned with each fan-out batch (`fanout.rs`).

use bytes::Bytes;
use starling_core::{
    Avatar, Conversation, Cursor, DeliveryId, DeviceDelivery, DeviceUsage, DirectMessage,
    DirectMutation, DmPolicy, Error, ImageKind, Mutation, Phone, PostId, PostText, Profile, Result,
    Toggle, UserId,
};
use starling_graph::check_edge;
use starling_inbox::check_page_size;
use starling_log::unix_millis;
use starling_store::Backend;

use crate::base::Shared;
use crate::engine::Engine;

/// A page of a user's conversations, newest last message first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ConversationPage {
    /// The conversations.
    pub conversations: Vec<Conversation>,
    /// Where the next page starts, or `None` at the end.
    pub next: Option<Cursor>,
}

/// A page of the messages of one conversation, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MessagePage {
    /// The messages.
    pub messages: Vec<DirectMessage>,
    /// Where the next page starts, or `None` at the end.
    pub next: Option<Cursor>,
}

fn position(cursor: Option<&Cursor>) -> Result<Option<PostId>> {
    cursor
        .map(|c| c.as_timeline().map(|(last, _)| last))
        .transpose()
}

impl<B: Backend> Engine<B> {
    /// The user's profile (the default one if never set).
    pub fn profile(&self, user: UserId) -> Result<Profile> {
        let s = self.shared.known(&[user])?;
        Ok(s.backend.profile(user)?.unwrap_or_default())
    }

    /// Sets the user's display name (at most 50 characters, no control
    /// characters) and bio (at most 160, newlines allowed); the settings
    /// are kept. Returns the new profile.
    pub fn set_profile(&self, user: UserId, display_name: &str, bio: &str) -> Result<Profile> {
        Profile::validate_text(display_name, bio)?;
        self.update_profile(user, |p| {
            p.display_name = display_name.to_owned();
            p.bio = bio.to_owned();
        })
    }

    /// Sets who may send the user direct messages.
    pub fn set_dm_policy(&self, user: UserId, policy: DmPolicy) -> Result<Profile> {
        self.update_profile(user, |p| p.dms_open = policy == DmPolicy::Open)
    }

    /// Pauses every device update to the user (the STOP command).
    pub fn pause_device_updates(&self, user: UserId) -> Result<Profile> {
        self.update_profile(user, |p| p.device_paused = true)
    }

    /// Resumes device updates to the user (the START command).
    pub fn resume_device_updates(&self, user: UserId) -> Result<Profile> {
        self.update_profile(user, |p| p.device_paused = false)
    }

    fn update_profile(&self, user: UserId, change: impl FnOnce(&mut Profile)) -> Result<Profile> {
        let s = self.shared.writing(&[user])?;
        let _user = s.direct.users.lock(user);
        let mut profile = s.backend.profile(user)?.unwrap_or_default();
        change(&mut profile);
        let m = DirectMutation::PutProfile {
            user,
            profile: profile.clone(),
        };
        s.write(&[Mutation::Direct(m)], s.config.durability)?;
        Ok(profile)
    }

    /// Sets the user's avatar: a PNG, JPEG, GIF or WebP picture (told by
    /// its first bytes) of at most 256 KiB. Returns its kind.
    pub fn set_avatar(&self, user: UserId, bytes: &[u8]) -> Result<ImageKind> {
        let avatar = Avatar::parse(bytes)?;
        let s = self.shared.writing(&[user])?;
        let _user = s.direct.users.lock(user);
        let kind = avatar.kind;
        let m = DirectMutation::PutAvatar { user, avatar };
        s.write(&[Mutation::Direct(m)], s.config.durability)?;
        Ok(kind)
    }

    /// The user's avatar, if any: its kind and bytes. The bytes are shared
    /// with the store's copy where the backend can (handing them on to an
    /// HTTP body copies nothing).
    pub fn avatar(&self, user: UserId) -> Result<Option<(ImageKind, Bytes)>> {
        let s = self.shared.known(&[user])?;
        Ok(s.backend.avatar(user)?.map(|a| (a.kind, a.bytes)))
    }

    /// Removes the user's avatar. Returns whether there was one.
    pub fn remove_avatar(&self, user: UserId) -> Result<bool> {
        let s = self.shared.writing(&[user])?;
        let _user = s.direct.users.lock(user);
        if s.backend.avatar(user)?.is_none() {
            return Ok(false);
        }
        let m = DirectMutation::DeleteAvatar(user);
        s.write(&[Mutation::Direct(m)], s.config.durability)?;
        Ok(true)
    }

    /// Links a phone (E.164: `+`, 8 to 15 digits, the first not 0) to the
    /// user, replacing the one linked before, in one atomic write. A number
    /// another account holds is [`Error::PhoneTaken`].
    pub fn link_phone(&self, user: UserId, phone: &str) -> Result<Phone> {
        let phone = Phone::parse(phone)?;
        let s = self.shared.writing(&[user])?;
        let _phones = s.direct.phones.lock();
        match s.backend.user_by_phone(&phone)? {
            Some(holder) if holder == user => return Ok(phone),
            Some(_) => return Err(Error::PhoneTaken),
            None => {}
        }
        let m = DirectMutation::LinkPhone {
            user,
            phone: phone.clone(),
            replaces: s.backend.phone_of(user)?,
        };
        s.write(&[Mutation::Direct(m)], s.config.durability)?;
        Ok(phone)
    }

    /// Unlinks the user's phone. Returns whether one was linked.
    pub fn unlink_phone(&self, user: UserId) -> Result<bool> {
        let s = self.shared.writing(&[user])?;
        let _phones = s.direct.phones.lock();
        let Some(phone) = s.backend.phone_of(user)? else {
            return Ok(false);
        };
        let m = DirectMutation::UnlinkPhone { user, phone };
        s.write(&[Mutation::Direct(m)], s.config.durability)?;
        Ok(true)
    }

    /// The phone linked to the user, if any.
    pub fn phone(&self, user: UserId) -> Result<Option<Phone>> {
        self.shared.known(&[user])?;
        self.shared.backend.phone_of(user)
    }

    /// The user a phone number is linked to, if any.
    pub fn user_by_phone(&self, phone: &str) -> Result<Option<UserId>> {
        self.shared.backend.user_by_phone(&Phone::parse(phone)?)
    }

    /// Sends a direct message. Allowed when the recipient follows the
    /// sender or accepts messages from anyone ([`DmPolicy::Open`]);
    /// otherwise [`Error::NotAllowed`]. The text is validated like a post.
    ///
    /// The message, both users' conversation summaries and both entries of
    /// their conversation lists are written in one atomic batch, under both
    /// users' stripes (lower stripe first).
    pub fn send_direct(&self, from: UserId, to: UserId, text: &str) -> Result<DirectMessage> {
        let s = &self.shared;
        let text = PostText::parse(text, s.config.max_post_chars)?;
        if from == to {
            return Err(Error::NotAllowed(
                "cannot send a direct message to yourself",
            ));
        }
        s.writing(&[from, to])?;
        let _pair = s.direct.users.lock_pair(from, to);
        if starling_graph::blocked_either(&s.backend, from, to)? {
            return Err(Error::Blocked("no direct messages across a block"));
        }
        if !s.dm_allowed(from, to)? {
            return Err(Error::NotAllowed(
                "the recipient neither follows you nor accepts messages from anyone",
            ));
        }
        let message = DirectMessage {
            id: s.ids.next(),
            from,
            to,
            text: text.into_string(),
        };
        let mut batch = vec![Mutation::Direct(DirectMutation::PutMessage(
            message.clone(),
        ))];
        for (owner, with, received) in [(from, to, 0), (to, from, 1)] {
            let old = s.backend.conversation(owner, with)?;
            let summary = Conversation {
                with,
                last: message.id,
                unread: old.map_or(0, |c| c.unread) + received,
            };
            batch.push(Mutation::Direct(DirectMutation::PutConversation {
                owner,
                summary,
                replaces: old.map(|c| c.last),
            }));
        }
        s.write(&batch, s.config.durability)?;
        s.hub.publish([(
            to,
            crate::Event::DirectMessage {
                from,
                message: message.id,
            },
        )]);
        Ok(message)
    }

    /// A page of the user's conversations, newest last message first, each
    /// with its unread count; at most `limit` (1 to 200), from `cursor`.
    pub fn conversations(
        &self,
        user: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<ConversationPage> {
        check_page_size(limit)?;
        let before = position(cursor)?;
        let s = self.shared.known(&[user])?;
        let mut conversations = Vec::with_capacity(limit + 1);
        s.backend
            .conversations(user, before, limit + 1, &mut conversations)?;
        let more = conversations.len() > limit;
        conversations.truncate(limit);
        let next = more
            .then(|| conversations.last().map(|c| Cursor::timeline(c.last, 0)))
            .flatten();
        Ok(ConversationPage {
            conversations,
            next,
        })
    }

    /// A page of the messages between `user` and `other`, newest first.
    pub fn messages(
        &self,
        user: UserId,
        other: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<MessagePage> {
        check_page_size(limit)?;
        let before = position(cursor)?;
        let s = self.shared.known(&[user, other])?;
        let mut messages = Vec::with_capacity(limit + 1);
        s.backend
            .messages(user, other, before, limit + 1, &mut messages)?;
        let more = messages.len() > limit;
        messages.truncate(limit);
        let next = more
            .then(|| messages.last().map(|m| Cursor::timeline(m.id, 0)))
            .flatten();
        Ok(MessagePage { messages, next })
    }

    /// Marks the user's conversation with `other` read. Returns how many
    /// messages were unread.
    pub fn mark_read(&self, user: UserId, other: UserId) -> Result<u64> {
        let s = self.shared.writing(&[user, other])?;
        let _user = s.direct.users.lock(user);
        let Some(old) = s.backend.conversation(user, other)? else {
            return Ok(0);
        };
        if old.unread == 0 {
            return Ok(0);
        }
        let m = DirectMutation::PutConversation {
            owner: user,
            summary: Conversation { unread: 0, ..old },
            replaces: Some(old.last),
        };
        s.write(&[Mutation::Direct(m)], s.config.durability)?;
        Ok(old.unread)
    }

    /// Turns device updates of `followee`'s posts on or off for
    /// `follower`. Turning them on requires following ([`Error::NotAllowed`]
    /// otherwise); an unfollow turns them off.
    pub fn set_device_updates(&self, follower: UserId, followee: UserId, on: Toggle) -> Result<()> {
        check_edge(follower, followee)?;
        let s = self.shared.writing(&[follower, followee])?;
        // The followee's lock orders this against unfollow and fan-out.
        let _author = s.authors.lock(followee);
        if on == Toggle::On && s.backend.edge(follower, followee)?.is_none() {
            return Err(Error::NotAllowed(
                "device updates need a follow of the account",
            ));
        }
        let m = DirectMutation::SetDeviceSub {
            followee,
            follower,
            on,
        };
        s.write(&[Mutation::Direct(m)], s.config.durability)
    }

    /// Whether `follower` has device updates on for `followee`.
    pub fn device_updates(&self, follower: UserId, followee: UserId) -> Result<bool> {
        let s = self.shared.known(&[follower, followee])?;
        s.backend.device_sub(followee, follower)
    }

    /// [`Engine::lease_device_deliveries_at`] by the wall clock.
    pub fn lease_device_deliveries(
        &self,
        max: usize,
        lease_ms: u64,
    ) -> Result<Vec<DeviceDelivery>> {
        self.lease_device_deliveries_at(unix_millis(), max, lease_ms)
    }

    /// Offers up to `max` (1 to 200) queued device deliveries whose lease
    /// has ended by `now_ms` (or that were never leased), and durably
    /// leases them until `now_ms + lease_ms`: they are not offered again
    /// before then unless acknowledged. At least once: a delivery leased
    /// but never acknowledged comes back after its lease.
    ///
    /// Each is offered with the phone its recipient has linked now. Due
    /// deliveries whose post was deleted, or whose recipient has since
    /// unlinked their phone or paused device updates, are removed instead
    /// of offered (so a page may hold fewer than `max` while more are due).
    pub fn lease_device_deliveries_at(
        &self,
        now_ms: u64,
        max: usize,
        lease_ms: u64,
    ) -> Result<Vec<DeviceDelivery>> {
        check_page_size(max)?;
        let s = &self.shared;
        s.check_writable()?;
        let _outbox = s.direct.outbox.lock();
        let mut due = Vec::with_capacity(max);
        s.backend.due_deliveries(now_ms, max, &mut due)?;
        if due.is_empty() {
            return Ok(due);
        }
        let until_ms = now_ms.saturating_add(lease_ms);
        let mut batch = Vec::with_capacity(due.len());
        let ids: Vec<PostId> = due.iter().map(|d| d.id.post).collect();
        let mut posts = Vec::with_capacity(ids.len());
        s.backend.posts(&ids, &mut posts)?;
        let mut offered = Vec::with_capacity(due.len());
        for (mut d, post) in due.into_iter().zip(posts) {
            // Texts are sent to the number linked now: a delivery whose post
            // was deleted, whose recipient unlinked their phone or paused
            // device updates since it was queued, or may no longer read its
            // protected author (they unfollowed), is dropped, not sent.
            let live = match post {
                Some(p) if !p.deleted => {
                    starling_graph::reads_author(&s.backend, d.id.recipient, p.author)?
                }
                _ => false,
            };
            let paused = s
                .backend
                .profile(d.id.recipient)?
                .is_some_and(|p| p.device_paused);
            let phone = s.backend.phone_of(d.id.recipient)?;
            let from_ms = d.leased_until_ms;
            match phone {
                Some(phone) if live && !paused => {
                    d.phone = phone;
                    d.leased_until_ms = until_ms;
                    batch.push(Mutation::Direct(DirectMutation::LeaseDelivery {
                        delivery: d.clone(),
                        from_ms,
                    }));
                    offered.push(d);
                }
                _ => batch.push(Mutation::Direct(DirectMutation::AckDelivery {
                    id: d.id,
                    leased_until_ms: from_ms,
                })),
            }
        }
        s.write(&batch, s.config.durability)?;
        Ok(offered)
    }

    /// Acknowledges a delivery: it leaves the outbox for good. Returns
    /// `false` for an unknown or already acknowledged id.
    pub fn ack_device_delivery(&self, id: DeliveryId) -> Result<bool> {
        let s = &self.shared;
        s.check_writable()?;
        let _outbox = s.direct.outbox.lock();
        let Some(d) = s.backend.delivery(id)? else {
            return Ok(false);
        };
        let m = DirectMutation::AckDelivery {
            id,
            leased_until_ms: d.leased_until_ms,
        };
        s.write(&[Mutation::Direct(m)], s.config.durability)?;
        Ok(true)
    }

    /// The user's device updates on `day` (days since the Unix epoch, see
    /// [`starling_core::utc_day`]): queued, and not queued over the cap.
    pub fn device_usage(&self, user: UserId, day: u32) -> Result<DeviceUsage> {
        self.shared.known(&[user])?;
        self.shared.backend.device_usage(user, day)
    }
}

impl<B: Backend> Shared<B> {
    /// Whether `from` may send `to` a direct message: `to` follows `from`
    /// or accepts messages from anyone. The one place that decides it
    /// (blocks belong here too).
    fn dm_allowed(&self, from: UserId, to: UserId) -> Result<bool> {
        if self.backend.edge(to, from)?.is_some() {
            return Ok(true);
        }
        Ok(self.backend.profile(to)?.is_some_and(|p| p.dms_open))
    }
}

#[cfg(test)]
#[path = "direct_tests.rs"]
mod tests;
