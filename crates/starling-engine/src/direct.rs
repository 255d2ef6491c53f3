//! Engine operations of the direct features: profiles and avatars, phones,
//! direct messages with per-user conversation lists, and device updates
//! (subscriptions, the durable outbox a gateway leases and acknowledges,
//! the per-recipient daily usage). The fan-out hook that queues device
//! updates is planned with each fan-out batch (`fanout.rs`).

use bytes::Bytes;
use starling_core::{
    Avatar, Change, Conversation, Cursor, DeliveryId, DeliveryKind, DeviceDelivery, DeviceUsage,
    DirectMessage, DirectMutation, DmPolicy, Error, ImageKind, Mutation, Phone, PostId, PostText,
    Profile, QuietHours, Result, Toggle, UserId, fit_sms, format_phone_code, utc_day,
};
use starling_graph::check_edge;
use starling_inbox::check_page_size;
use starling_log::unix_millis;
use starling_store::Backend;

use crate::base::{Shared, record};
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
        self.update_profile(user, Some(Change::ProfileChanged { user }), |p| {
            p.display_name = display_name.to_owned();
            p.bio = bio.to_owned();
        })
    }

    /// Sets who may send the user direct messages.
    pub fn set_dm_policy(&self, user: UserId, policy: DmPolicy) -> Result<Profile> {
        self.update_profile(user, None, |p| p.dms_open = policy == DmPolicy::Open)
    }

    /// Pauses every device update to the user (the STOP command).
    pub fn pause_device_updates(&self, user: UserId) -> Result<Profile> {
        self.update_profile(user, None, |p| p.device_paused = true)
    }

    /// Sets (or with `None` clears) the hours during which texts to the
    /// user wait in the outbox (the SLEEP and WAKE commands). Texts due in
    /// those hours are held until they end; confirmation codes are not.
    pub fn set_quiet_hours(&self, user: UserId, hours: Option<QuietHours>) -> Result<Profile> {
        if let Some(q) = hours {
            QuietHours::new(q.start_hour, q.end_hour, q.utc_offset_minutes)?;
        }
        self.update_profile(user, None, |p| p.quiet_hours = hours)
    }

    /// Resumes device updates to the user (the START command).
    pub fn resume_device_updates(&self, user: UserId) -> Result<Profile> {
        self.update_profile(user, None, |p| p.device_paused = false)
    }

    /// Rewrites the user's profile with `change`, storing `recorded` in
    /// the change feed with it.
    fn update_profile(
        &self,
        user: UserId,
        recorded: Option<Change>,
        change: impl FnOnce(&mut Profile),
    ) -> Result<Profile> {
        let s = self.shared.writing(&[user])?;
        let _user = s.direct.users.lock(user);
        let mut profile = s.backend.profile(user)?.unwrap_or_default();
        change(&mut profile);
        let m = DirectMutation::PutProfile {
            user,
            profile: profile.clone(),
        };
        let mut batch = vec![Mutation::Direct(m)];
        batch.extend(recorded.map(record));
        s.write(&batch, s.config.durability)?;
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
        let changed = record(Change::AvatarChanged { user });
        s.write(&[Mutation::Direct(m), changed], s.config.durability)?;
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
        let changed = record(Change::AvatarChanged { user });
        s.write(&[Mutation::Direct(m), changed], s.config.durability)?;
        Ok(true)
    }

    /// Sends a direct message. Allowed when the recipient follows the
    /// sender or accepts messages from anyone ([`DmPolicy::Open`]);
    /// otherwise [`Error::NotAllowed`]. The text is validated like a post.
    ///
    /// The message, both users' conversation summaries and both entries of
    /// their conversation lists are written in one atomic batch, under both
    /// users' stripes (lower stripe first). When the recipient has a
    /// confirmed phone and device updates not paused, the same batch queues
    /// the text `D from_name: text` for it (keyed by the message: queued
    /// once, sent until acknowledged), counted in the recipient's daily cap.
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
        let _device = s.plan_direct_text(&message, &mut batch)?;
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
        // The other side may be a deleted account: its messages stay.
        let s = self.shared.known(&[user])?.present(&[other])?;
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
        let s = self.shared.writing(&[user])?.present(&[other])?;
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
    /// Deliveries due while their recipient is in quiet hours (codes
    /// aside) are not offered but held, durably, until those hours end.
    ///
    /// Each is offered with the phone its recipient has linked now (a
    /// confirmation code with the number it confirms). Due deliveries whose
    /// post was deleted or whose protected author the recipient no longer
    /// follows, or whose recipient has since unlinked their phone or paused
    /// device updates, and codes whose pending link was
    /// confirmed, replaced, dropped or expired, are removed instead of
    /// offered (so a page may hold fewer than `max` while more are due).
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
            let from_ms = d.leased_until_ms;
            if let Some(end_ms) = s.quiet_until(&d, now_ms)? {
                // Held, not offered: due again when the quiet hours end.
                d.leased_until_ms = end_ms;
                batch.push(Mutation::Direct(DirectMutation::LeaseDelivery {
                    delivery: d,
                    from_ms,
                }));
                continue;
            }
            match s.deliverable(&d, post.as_ref(), now_ms)? {
                Some(phone) => {
                    d.phone = phone;
                    d.leased_until_ms = until_ms;
                    batch.push(Mutation::Direct(DirectMutation::LeaseDelivery {
                        delivery: d.clone(),
                        from_ms,
                    }));
                    offered.push(d);
                }
                None => batch.push(Mutation::Direct(DirectMutation::AckDelivery {
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
    /// Plans the text of a direct message to its recipient's phone, when
    /// they have one confirmed and device updates not paused. Returns the
    /// device lock when it planned one, to be held until the batch is
    /// written.
    fn plan_direct_text(
        &self,
        message: &DirectMessage,
        batch: &mut Vec<Mutation>,
    ) -> Result<Option<parking_lot::MutexGuard<'_, ()>>> {
        let to = message.to;
        let Some(phone) = self.backend.phone_of(to)? else {
            return Ok(None);
        };
        if self.backend.profile(to)?.is_some_and(|p| p.device_paused) {
            return Ok(None);
        }
        let Some(sender) = self.backend.user(message.from)? else {
            return Ok(None);
        };
        let guard = self.direct.device.lock();
        let text = fit_sms(&format!(
            "D {}: {}",
            sender.name.as_str(),
            message.text.trim()
        ));
        self.plan_device_text(
            DeviceDelivery {
                id: DeliveryId {
                    post: message.id,
                    recipient: to,
                },
                phone,
                text,
                leased_until_ms: 0,
                kind: DeliveryKind::Direct,
            },
            utc_day(message.id.unix_millis()),
            batch,
        )?;
        Ok(Some(guard))
    }

    /// When `d`'s recipient is in their quiet hours at `now_ms` (and `d` is
    /// not a code), the end of those hours.
    fn quiet_until(&self, d: &DeviceDelivery, now_ms: u64) -> Result<Option<u64>> {
        if d.kind == DeliveryKind::Code {
            return Ok(None);
        }
        let quiet = self
            .backend
            .profile(d.id.recipient)?
            .and_then(|p| p.quiet_hours);
        Ok(quiet
            .filter(|q| q.contains(now_ms))
            .map(|q| q.end_after(now_ms)))
    }

    /// The number a due delivery goes to now, or `None` when it is to be
    /// dropped instead: texts go only to a number its recipient confirmed
    /// (and has not paused), a post's only while its recipient may read
    /// it, except a code, which goes only to the number
    /// of the pending link it was sent for while that link waits.
    fn deliverable(
        &self,
        d: &DeviceDelivery,
        post: Option<&starling_core::Post>,
        now_ms: u64,
    ) -> Result<Option<Phone>> {
        let recipient = d.id.recipient;
        if d.kind == DeliveryKind::Code {
            let waiting = self.backend.phone_claim(recipient)?.is_some_and(|c| {
                c.phone == d.phone
                    && c.expires_ms > now_ms
                    && d.text.starts_with(&format_phone_code(c.code))
            });
            return Ok(waiting.then(|| d.phone.clone()));
        }
        if d.kind == DeliveryKind::Post {
            // A post's text goes only to a reader who may still read it: not
            // deleted, and (for a protected author) still followed.
            match post {
                Some(p) if !p.deleted => {
                    if !starling_graph::reads_author(&self.backend, recipient, p.author)? {
                        return Ok(None);
                    }
                }
                _ => return Ok(None),
            }
        }
        if self
            .backend
            .profile(recipient)?
            .is_some_and(|p| p.device_paused)
        {
            return Ok(None);
        }
        self.backend.phone_of(recipient)
    }

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
