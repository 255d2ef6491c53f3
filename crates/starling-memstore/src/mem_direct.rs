//! The direct half of the in-memory backend: profiles, phones, messages,
//! conversations, device subscriptions, the outbox and its lease index.
//! Same layout as the RocksDB families, as ordered maps.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use starling_core::{
    Avatar, Conversation, DeliveryId, DeviceDelivery, DeviceUsage, DirectMessage, DirectMutation,
    Phone, PhoneClaim, PostId, Profile, Result, Toggle, UserId,
};
use starling_store::DirectStore;

use crate::MemBackend;

#[derive(Debug, Default)]
pub(crate) struct DirectState {
    profiles: HashMap<UserId, Profile>,
    avatars: HashMap<UserId, Avatar>,
    phones: HashMap<UserId, Phone>,
    phone_index: HashMap<Phone, UserId>,
    claims: HashMap<UserId, PhoneClaim>,
    /// (number, user) of every pending link.
    claim_index: BTreeSet<(Phone, UserId)>,
    last_message: Option<PostId>,
    /// (low, high, id) -> (sender, text).
    messages: BTreeMap<(UserId, UserId, PostId), (UserId, String)>,
    conversations: HashMap<(UserId, UserId), Conversation>,
    /// (owner, last, with), iterated in reverse for newest first.
    conversation_index: BTreeSet<(UserId, PostId, UserId)>,
    /// (followee, follower).
    device_subs: BTreeSet<(UserId, UserId)>,
    outbox: BTreeMap<DeliveryId, DeviceDelivery>,
    /// (lease end, id).
    leases: BTreeSet<(u64, DeliveryId)>,
    usage: HashMap<(UserId, u32), DeviceUsage>,
}

impl DirectState {
    pub(crate) fn apply(&mut self, m: &DirectMutation) {
        match m {
            DirectMutation::PutProfile { user, profile } => {
                self.profiles.insert(*user, profile.clone());
            }
            DirectMutation::PutAvatar { user, avatar } => {
                self.avatars.insert(*user, avatar.clone());
            }
            DirectMutation::DeleteAvatar(user) => {
                self.avatars.remove(user);
            }
            DirectMutation::LinkPhone {
                user,
                phone,
                replaces,
            } => {
                if let Some(old) = replaces {
                    self.phone_index.remove(old);
                }
                self.phone_index.insert(phone.clone(), *user);
                self.phones.insert(*user, phone.clone());
            }
            DirectMutation::UnlinkPhone { user, phone } => {
                self.phone_index.remove(phone);
                self.phones.remove(user);
            }
            DirectMutation::PutPhoneClaim { claim, replaces } => {
                if let Some(old) = replaces {
                    self.claim_index.remove(&(old.clone(), claim.user));
                }
                self.claim_index.insert((claim.phone.clone(), claim.user));
                self.claims.insert(claim.user, claim.clone());
            }
            DirectMutation::DeletePhoneClaim { user, phone } => {
                self.claim_index.remove(&(phone.clone(), *user));
                self.claims.remove(user);
            }
            DirectMutation::PutMessage(m) => {
                self.last_message = self.last_message.max(Some(m.id));
                let (lo, hi) = starling_core::direct_codec::conversation_pair(m.from, m.to);
                self.messages
                    .insert((lo, hi, m.id), (m.from, m.text.clone()));
            }
            DirectMutation::PutConversation {
                owner,
                summary,
                replaces,
            } => {
                if let Some(old) = replaces {
                    self.conversation_index
                        .remove(&(*owner, *old, summary.with));
                }
                self.conversation_index
                    .insert((*owner, summary.last, summary.with));
                self.conversations.insert((*owner, summary.with), *summary);
            }
            DirectMutation::SetDeviceSub {
                followee,
                follower,
                on,
            } => {
                match on {
                    Toggle::On => self.device_subs.insert((*followee, *follower)),
                    Toggle::Off => self.device_subs.remove(&(*followee, *follower)),
                };
            }
            DirectMutation::QueueDelivery(d) => {
                if let Some(old) = self.outbox.insert(d.id, d.clone()) {
                    self.leases.remove(&(old.leased_until_ms, old.id));
                }
                self.leases.insert((d.leased_until_ms, d.id));
            }
            DirectMutation::LeaseDelivery { delivery, from_ms } => {
                self.leases.remove(&(*from_ms, delivery.id));
                self.leases.insert((delivery.leased_until_ms, delivery.id));
                self.outbox.insert(delivery.id, delivery.clone());
            }
            DirectMutation::AckDelivery {
                id,
                leased_until_ms,
            } => {
                self.outbox.remove(id);
                self.leases.remove(&(*leased_until_ms, *id));
            }
            DirectMutation::SetDeviceUsage { user, day, usage } => {
                self.usage.insert((*user, *day), *usage);
            }
        }
    }
}

impl DirectStore for MemBackend {
    fn profile(&self, user: UserId) -> Result<Option<Profile>> {
        Ok(self.state.read().direct.profiles.get(&user).cloned())
    }

    fn avatar(&self, user: UserId) -> Result<Option<Avatar>> {
        Ok(self.state.read().direct.avatars.get(&user).cloned())
    }

    fn phone_of(&self, user: UserId) -> Result<Option<Phone>> {
        Ok(self.state.read().direct.phones.get(&user).cloned())
    }

    fn user_by_phone(&self, phone: &Phone) -> Result<Option<UserId>> {
        Ok(self.state.read().direct.phone_index.get(phone).copied())
    }

    fn phone_claim(&self, user: UserId) -> Result<Option<PhoneClaim>> {
        Ok(self.state.read().direct.claims.get(&user).cloned())
    }

    fn phone_claims(&self, phone: &Phone, out: &mut Vec<PhoneClaim>) -> Result<()> {
        let state = self.state.read();
        let d = &state.direct;
        let from = (phone.clone(), UserId(0));
        for (p, user) in d.claim_index.range(from..) {
            if p != phone {
                break;
            }
            if let Some(c) = d.claims.get(user) {
                out.push(c.clone());
            }
        }
        Ok(())
    }

    fn last_message_id(&self) -> Result<Option<PostId>> {
        Ok(self.state.read().direct.last_message)
    }

    fn conversation(&self, owner: UserId, with: UserId) -> Result<Option<Conversation>> {
        Ok(self
            .state
            .read()
            .direct
            .conversations
            .get(&(owner, with))
            .copied())
    }

    fn conversations(
        &self,
        owner: UserId,
        before: Option<PostId>,
        limit: usize,
        out: &mut Vec<Conversation>,
    ) -> Result<()> {
        let state = self.state.read();
        let d = &state.direct;
        let end = match before {
            Some(b) => Bound::Excluded((owner, b, UserId(0))),
            None => Bound::Included((owner, PostId(u64::MAX), UserId(u64::MAX))),
        };
        let range = (Bound::Included((owner, PostId(0), UserId(0))), end);
        for &(_, _, with) in d.conversation_index.range(range).rev().take(limit) {
            if let Some(c) = d.conversations.get(&(owner, with)) {
                out.push(*c);
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
        let (lo, hi) = starling_core::direct_codec::conversation_pair(a, b);
        let state = self.state.read();
        let end = match before {
            Some(b) => Bound::Excluded((lo, hi, b)),
            None => Bound::Included((lo, hi, PostId(u64::MAX))),
        };
        let range = (Bound::Included((lo, hi, PostId(0))), end);
        out.extend(state.direct.messages.range(range).rev().take(limit).map(
            |(&(_, _, id), (from, text))| DirectMessage {
                id,
                from: *from,
                to: if *from == lo { hi } else { lo },
                text: text.clone(),
            },
        ));
        Ok(())
    }

    fn device_sub(&self, followee: UserId, follower: UserId) -> Result<bool> {
        Ok(self
            .state
            .read()
            .direct
            .device_subs
            .contains(&(followee, follower)))
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
            // Nothing is after `after` and at most `through` (and the
            // range below would be inverted).
            return Ok(());
        }
        let state = self.state.read();
        let start = match after {
            Some(a) => Bound::Excluded((followee, a)),
            None => Bound::Included((followee, UserId(0))),
        };
        out.extend(
            state
                .direct
                .device_subs
                .range((start, Bound::Included((followee, through))))
                .take(limit)
                .map(|&(_, f)| f),
        );
        Ok(())
    }

    fn delivery(&self, id: DeliveryId) -> Result<Option<DeviceDelivery>> {
        Ok(self.state.read().direct.outbox.get(&id).cloned())
    }

    fn due_deliveries(
        &self,
        now_ms: u64,
        limit: usize,
        out: &mut Vec<DeviceDelivery>,
    ) -> Result<()> {
        let state = self.state.read();
        let d = &state.direct;
        for (_, id) in d
            .leases
            .iter()
            .take_while(|(t, _)| *t <= now_ms)
            .take(limit)
        {
            if let Some(found) = d.outbox.get(id) {
                out.push(found.clone());
            }
        }
        Ok(())
    }

    fn device_usage(&self, user: UserId, day: u32) -> Result<DeviceUsage> {
        Ok(self
            .state
            .read()
            .direct
            .usage
            .get(&(user, day))
            .copied()
            .unwrap_or_default())
    }
}
