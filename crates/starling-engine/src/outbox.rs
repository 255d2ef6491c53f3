//! Queueing texts in the device outbox against the recipient's daily cap:
//! the one place that counts a text and, the first time a day's cap turns
//! one away, tells the recipient so. Used by fan-out (posts), direct
//! messages and phone confirmation.

use starling_core::{
    DeliveryId, DeliveryKind, DeviceDelivery, DirectMutation, Mutation, PostId, Result, UserId,
};
use starling_store::Backend;

use crate::base::Shared;

/// The text telling a recipient the day's cap turned a text away.
pub(crate) fn cap_notice(cap: u64) -> String {
    format!("Starling: that was today's {cap} texts. More tomorrow (UTC); the rest are on the web.")
}

/// Set in the ids of texts that are neither posts nor messages (codes,
/// notices): post and message ids leave the top bit clear (41 bits of
/// time, 10 of node, 12 of sequence), so these never share an outbox key
/// with a post's or a message's text.
const SERVICE_TEXT_BIT: u64 = 1 << 63;

/// The outbox id of a recipient's `nth` service text on `day`: unique per
/// recipient without any counter of its own, since the day's usage only
/// grows (a code is its `sent` count after counting it; the day's one
/// notice is `u32::MAX`, above any cap). Not taken from the post-id
/// generator, which may hand an id out again after a reopen.
pub(crate) fn service_text_id(day: u32, nth: u32) -> PostId {
    PostId(SERVICE_TEXT_BIT | u64::from(day) << 32 | u64::from(nth))
}

impl<B: Backend> Shared<B> {
    /// Plans `delivery` into `batch` if its recipient's usage on `day` is
    /// under the daily cap, and counts it; otherwise counts it as over the
    /// cap and, the first time that day, queues [`cap_notice`] instead
    /// (beyond the cap: it is the last text of the day). Returns whether
    /// `delivery` was queued.
    ///
    /// The caller holds the device lock until the batch is written (the
    /// usage is read, changed and written back), and plans at most one
    /// text per recipient in one batch.
    pub(crate) fn plan_device_text(
        &self,
        delivery: DeviceDelivery,
        day: u32,
        batch: &mut Vec<Mutation>,
    ) -> Result<bool> {
        let recipient: UserId = delivery.id.recipient;
        let mut usage = self.backend.device_usage(recipient, day)?;
        let cap = self.config.device_daily_cap;
        let queued = usage.sent < cap;
        if queued {
            usage.sent += 1;
            batch.push(Mutation::Direct(DirectMutation::QueueDelivery(delivery)));
        } else {
            usage.over_cap += 1;
            if usage.over_cap == 1 {
                batch.push(Mutation::Direct(DirectMutation::QueueDelivery(
                    DeviceDelivery {
                        id: DeliveryId {
                            post: service_text_id(day, u32::MAX),
                            recipient,
                        },
                        phone: delivery.phone,
                        text: cap_notice(cap),
                        leased_until_ms: 0,
                        kind: DeliveryKind::Notice,
                    },
                )));
            }
        }
        batch.push(Mutation::Direct(DirectMutation::SetDeviceUsage {
            user: recipient,
            day,
            usage,
        }));
        Ok(queued)
    }
}

#[cfg(test)]
mod tests {
    use starling_core::{PostId, SMS_MAX_CHARS};

    #[test]
    fn service_text_ids_are_apart_from_post_ids_and_from_each_other() {
        let newest_post = PostId::from_parts((1 << 41) - 1, 1023, 4095);
        let a = super::service_text_id(20_000, 1);
        assert!(a > newest_post);
        assert_ne!(a, super::service_text_id(20_000, 2));
        assert_ne!(a, super::service_text_id(20_001, 1));
        assert_ne!(
            super::service_text_id(u32::MAX, u32::MAX),
            super::service_text_id(u32::MAX - 1, u32::MAX)
        );
    }

    #[test]
    fn the_cap_notice_fits_one_text_at_the_largest_cap() {
        let text = super::cap_notice(10_000);
        assert!(text.chars().count() <= SMS_MAX_CHARS, "{text}");
    }
}
