//! The direct store: profiles, avatars, phones, direct messages and their
//! conversation lists, device-update subscriptions, the device outbox and
//! its daily usage. Writes are [`starling_core::DirectMutation`]s, carried
//! in the same atomic batches as every other mutation.

use starling_core::{
    Avatar, Conversation, DeliveryId, DeviceDelivery, DeviceUsage, DirectMessage, Phone,
    PhoneClaim, PostId, Profile, Result, UserId,
};

/// The reads a backend answers about the direct features.
pub trait DirectStore {
    /// The user's profile, if one was ever stored.
    fn profile(&self, user: UserId) -> Result<Option<Profile>>;
    /// The user's avatar picture, if any.
    fn avatar(&self, user: UserId) -> Result<Option<Avatar>>;
    /// The phone linked to the user, if any.
    fn phone_of(&self, user: UserId) -> Result<Option<Phone>>;
    /// The user a phone is linked to, if any.
    fn user_by_phone(&self, phone: &Phone) -> Result<Option<UserId>>;
    /// The user's pending phone link, if any.
    fn phone_claim(&self, user: UserId) -> Result<Option<PhoneClaim>>;
    /// Appends to `out`, in user order, every pending link of `phone` (a
    /// handful at most: the engine keeps no more than
    /// [`starling_core::MAX_CLAIMS_PER_PHONE`]).
    fn phone_claims(&self, phone: &Phone, out: &mut Vec<PhoneClaim>) -> Result<()>;
    /// The largest direct-message id stored: message ids come from the
    /// post-id generator, which must start after it on open.
    fn last_message_id(&self) -> Result<Option<PostId>>;
    /// `owner`'s summary of the conversation with `with`, if they ever
    /// exchanged a message.
    fn conversation(&self, owner: UserId, with: UserId) -> Result<Option<Conversation>>;
    /// Appends to `out` up to `limit` of `owner`'s conversations, newest
    /// last message first, starting below the last message id `before`.
    fn conversations(
        &self,
        owner: UserId,
        before: Option<PostId>,
        limit: usize,
        out: &mut Vec<Conversation>,
    ) -> Result<()>;
    /// Appends to `out` up to `limit` messages between `a` and `b`, newest
    /// first, starting below `before`.
    fn messages(
        &self,
        a: UserId,
        b: UserId,
        before: Option<PostId>,
        limit: usize,
        out: &mut Vec<DirectMessage>,
    ) -> Result<()>;
    /// Whether `follower` has device updates on for `followee`.
    fn device_sub(&self, followee: UserId, follower: UserId) -> Result<bool>;
    /// Appends to `out`, in id order, up to `limit` followers of `followee`
    /// with device updates on whose id is after `after` and at most
    /// `through` (one range scan; subscriptions are sparse).
    fn device_subs(
        &self,
        followee: UserId,
        after: Option<UserId>,
        through: UserId,
        limit: usize,
        out: &mut Vec<UserId>,
    ) -> Result<()>;
    /// The queued delivery with this id, if it is still in the outbox.
    fn delivery(&self, id: DeliveryId) -> Result<Option<DeviceDelivery>>;
    /// Appends to `out` up to `limit` queued deliveries whose lease ends at
    /// or before `now_ms` (never-leased ones first), in lease order.
    fn due_deliveries(
        &self,
        now_ms: u64,
        limit: usize,
        out: &mut Vec<DeviceDelivery>,
    ) -> Result<()>;
    /// Device updates of `user` on `day` (days since the Unix epoch).
    fn device_usage(&self, user: UserId, day: u32) -> Result<DeviceUsage>;
}
