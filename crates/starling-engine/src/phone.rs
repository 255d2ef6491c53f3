//! Linking a phone, with proof of ownership: a request texts a six-digit
//! code (from a CSPRNG) to the number through the device outbox, and the
//! link takes effect only when the code comes back, by text from the
//! number or through the API, before it expires.
//!
//! Until then the number receives nothing but its code and blocks nobody:
//! other accounts may ask for it too (each gets its own code), and whoever
//! confirms first takes it, in one atomic batch that unlinks it from any
//! account that held it before and drops every other pending link of the
//! number. Codes are single use; a wrong one costs an attempt, and the
//! last attempt drops the pending link.

use starling_core::{
    DeliveryId, DeliveryKind, DeviceDelivery, DirectMutation, Error, MAX_CLAIMS_PER_PHONE,
    Mutation, PHONE_CODE_ATTEMPTS, Phone, PhoneClaim, Result, UserId, format_phone_code,
    parse_phone_code, utc_day,
};
use starling_log::unix_millis;
use starling_store::Backend;

use crate::base::Shared;
use crate::engine::Engine;
use crate::outbox::service_text_id;

/// What asking to link a phone did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "status", rename_all = "snake_case"))]
pub enum PhoneLink {
    /// The number was the user's already; any other pending link of the
    /// user was dropped.
    Linked {
        /// The number.
        phone: Phone,
    },
    /// A code was queued for the number; the link takes effect when it
    /// comes back before `expires_ms`.
    CodeSent {
        /// The number.
        phone: Phone,
        /// When the code stops working (ms since the Unix epoch).
        expires_ms: u64,
    },
}

/// A user's pending phone link, as the user may see it (without its code).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PendingPhone {
    /// The number waiting for its code.
    pub phone: Phone,
    /// When the code stops working (ms since the Unix epoch).
    pub expires_ms: u64,
    /// Wrong codes still allowed.
    pub attempts_left: u8,
}

/// The text that carries a code. The code comes first: the lease checks
/// a queued code against the pending link by it.
pub(crate) fn code_text(code: u32, ttl_ms: u64) -> String {
    let minutes = ttl_ms.div_ceil(60_000);
    format!(
        "{} is your Starling code. Text it back or enter it within {minutes} min to link this phone. Not you? Ignore this.",
        format_phone_code(code)
    )
}

impl<B: Backend> Engine<B> {
    /// [`Engine::link_phone_at`] by the wall clock.
    pub fn link_phone(&self, user: UserId, phone: &str) -> Result<PhoneLink> {
        self.link_phone_at(user, phone, unix_millis())
    }

    /// Asks to link a phone (E.164: `+`, 8 to 15 digits, the first not 0)
    /// to the user: queues a six-digit code for the number, valid until
    /// `now_ms` plus [`starling_core::Config::phone_code_ttl_ms`], and
    /// replaces the user's previous pending link. The user's linked phone,
    /// if any, stays linked until the code comes back
    /// ([`Engine::confirm_phone`], [`Engine::confirm_phone_by_text`]).
    ///
    /// Another account holding or claiming the number blocks nothing. A
    /// number keeps at most [`MAX_CLAIMS_PER_PHONE`] pending links: past
    /// that, the one expiring first is dropped. The code text counts
    /// against the user's daily cap: [`Error::DeviceCapReached`] once it
    /// is reached.
    pub fn link_phone_at(&self, user: UserId, phone: &str, now_ms: u64) -> Result<PhoneLink> {
        let phone = Phone::parse(phone)?;
        let s = self.shared.writing(&[user])?;
        let _phones = s.direct.phones.lock();
        let previous = s.backend.phone_claim(user)?;
        if s.backend.phone_of(user)?.as_ref() == Some(&phone) {
            if let Some(c) = previous {
                let m = DirectMutation::DeletePhoneClaim {
                    user,
                    phone: c.phone,
                };
                s.write(&[Mutation::Direct(m)], s.config.durability)?;
            }
            return Ok(PhoneLink::Linked { phone });
        }
        let _device = s.direct.device.lock();
        let day = utc_day(now_ms);
        let mut usage = s.backend.device_usage(user, day)?;
        if usage.sent >= s.config.device_daily_cap {
            return Err(Error::DeviceCapReached);
        }
        let code = s.codes.next_code()?;
        if code >= 1_000_000 {
            return Err(Error::Internal(
                "the code source gave a code of 7 digits".into(),
            ));
        }
        let mut batch = Vec::new();
        // The number's other pending links: the expired ones go, and the
        // ones expiring first when there are too many.
        let mut others = Vec::new();
        s.backend.phone_claims(&phone, &mut others)?;
        others.retain(|c| c.user != user);
        others.sort_by_key(|c| c.expires_ms);
        let expired = others.iter().filter(|c| c.expires_ms <= now_ms).count();
        let excess = (others.len() - expired + 1).saturating_sub(MAX_CLAIMS_PER_PHONE);
        for c in others.into_iter().take(expired + excess) {
            batch.push(drop_claim(c));
        }
        let expires_ms = now_ms.saturating_add(s.config.phone_code_ttl_ms);
        batch.push(Mutation::Direct(DirectMutation::PutPhoneClaim {
            claim: PhoneClaim {
                user,
                phone: phone.clone(),
                code,
                expires_ms,
                attempts_left: PHONE_CODE_ATTEMPTS,
            },
            replaces: previous.map(|c| c.phone),
        }));
        usage.sent += 1;
        batch.push(Mutation::Direct(DirectMutation::SetDeviceUsage {
            user,
            day,
            usage,
        }));
        batch.push(Mutation::Direct(DirectMutation::QueueDelivery(
            DeviceDelivery {
                id: DeliveryId {
                    post: service_text_id(day, u32::try_from(usage.sent).unwrap_or(u32::MAX - 1)),
                    recipient: user,
                },
                phone: phone.clone(),
                text: code_text(code, s.config.phone_code_ttl_ms),
                leased_until_ms: 0,
                kind: DeliveryKind::Code,
            },
        )));
        s.write(&batch, s.config.durability)?;
        Ok(PhoneLink::CodeSent { phone, expires_ms })
    }

    /// [`Engine::confirm_phone_at`] by the wall clock.
    pub fn confirm_phone(&self, user: UserId, code: &str) -> Result<Phone> {
        self.confirm_phone_at(user, code, unix_millis())
    }

    /// Confirms the user's pending phone link with the code texted to the
    /// number (six digits; surrounding whitespace is ignored). On success
    /// the number is the user's, taken from any account that held it, and
    /// every pending link of the number is dropped; returns the number.
    ///
    /// Errors: [`Error::InvalidPhoneCode`] (not six digits; costs no
    /// attempt), [`Error::NoPendingPhone`], [`Error::PhoneCodeExpired`]
    /// (the pending link is dropped), [`Error::WrongPhoneCode`] (an attempt
    /// is spent; after the last one the pending link is dropped).
    pub fn confirm_phone_at(&self, user: UserId, code: &str, now_ms: u64) -> Result<Phone> {
        let code = parse_phone_code(code)?;
        let s = self.shared.writing(&[user])?;
        let _phones = s.direct.phones.lock();
        let Some(claim) = s.backend.phone_claim(user)? else {
            return Err(Error::NoPendingPhone);
        };
        if claim.expires_ms <= now_ms {
            s.write(&[drop_claim(claim)], s.config.durability)?;
            return Err(Error::PhoneCodeExpired);
        }
        if claim.code != code {
            let mut batch = Vec::with_capacity(1);
            let left = spend_attempt(claim, &mut batch);
            s.write(&batch, s.config.durability)?;
            return Err(Error::WrongPhoneCode {
                attempts_left: left,
            });
        }
        let phone = claim.phone.clone();
        s.take_phone(claim, Vec::new())?;
        Ok(phone)
    }

    /// [`Engine::confirm_phone_by_text_at`] by the wall clock.
    pub fn confirm_phone_by_text(&self, phone: &str, code: &str) -> Result<UserId> {
        self.confirm_phone_by_text_at(phone, code, unix_millis())
    }

    /// Confirms a pending link of `phone` with a code texted from it: the
    /// account whose code it is takes the number (as
    /// [`Engine::confirm_phone`] would) and is returned. A code that is
    /// none of the number's costs each of its pending links an attempt.
    ///
    /// Errors: [`Error::InvalidPhone`], [`Error::InvalidPhoneCode`],
    /// [`Error::NoPendingPhone`] (none is waiting, or all expired),
    /// [`Error::WrongPhoneCode`] (with the most attempts any of them has
    /// left).
    pub fn confirm_phone_by_text_at(&self, phone: &str, code: &str, now_ms: u64) -> Result<UserId> {
        let phone = Phone::parse(phone)?;
        let code = parse_phone_code(code)?;
        let s = &self.shared;
        s.check_writable()?;
        let _phones = s.direct.phones.lock();
        let mut claims = Vec::new();
        s.backend.phone_claims(&phone, &mut claims)?;
        let mut batch = Vec::new();
        let (expired, live): (Vec<_>, Vec<_>) =
            claims.into_iter().partition(|c| c.expires_ms <= now_ms);
        batch.extend(expired.into_iter().map(drop_claim));
        if let Some(i) = live.iter().position(|c| c.code == code) {
            let mut live = live;
            let claim = live.swap_remove(i);
            let user = claim.user;
            // The others go with the take.
            s.take_phone(claim, batch)?;
            return Ok(user);
        }
        let mut most_left = None;
        for c in live {
            let left = spend_attempt(c, &mut batch);
            most_left = most_left.max(Some(left));
        }
        if !batch.is_empty() {
            s.write(&batch, s.config.durability)?;
        }
        match most_left {
            Some(attempts_left) => Err(Error::WrongPhoneCode { attempts_left }),
            None => Err(Error::NoPendingPhone),
        }
    }

    /// The user's pending phone link, if one waits for its code at `now_ms`.
    pub fn pending_phone_at(&self, user: UserId, now_ms: u64) -> Result<Option<PendingPhone>> {
        let s = self.shared.known(&[user])?;
        Ok(s.backend
            .phone_claim(user)?
            .filter(|c| c.expires_ms > now_ms)
            .map(|c| PendingPhone {
                phone: c.phone,
                expires_ms: c.expires_ms,
                attempts_left: c.attempts_left,
            }))
    }

    /// [`Engine::pending_phone_at`] by the wall clock.
    pub fn pending_phone(&self, user: UserId) -> Result<Option<PendingPhone>> {
        self.pending_phone_at(user, unix_millis())
    }

    /// Unlinks the user's phone and drops their pending link, if any.
    /// Returns whether there was either.
    pub fn unlink_phone(&self, user: UserId) -> Result<bool> {
        let s = self.shared.writing(&[user])?;
        let _phones = s.direct.phones.lock();
        let mut batch = Vec::with_capacity(2);
        if let Some(phone) = s.backend.phone_of(user)? {
            batch.push(Mutation::Direct(DirectMutation::UnlinkPhone {
                user,
                phone,
            }));
        }
        if let Some(c) = s.backend.phone_claim(user)? {
            batch.push(drop_claim(c));
        }
        if batch.is_empty() {
            return Ok(false);
        }
        s.write(&batch, s.config.durability)?;
        Ok(true)
    }

    /// The phone linked to (and confirmed by) the user, if any.
    pub fn phone(&self, user: UserId) -> Result<Option<Phone>> {
        self.shared.known(&[user])?;
        self.shared.backend.phone_of(user)
    }

    /// The user a phone number is linked to (confirmed), if any.
    pub fn user_by_phone(&self, phone: &str) -> Result<Option<UserId>> {
        self.shared.backend.user_by_phone(&Phone::parse(phone)?)
    }
}

fn drop_claim(c: PhoneClaim) -> Mutation {
    Mutation::Direct(DirectMutation::DeletePhoneClaim {
        user: c.user,
        phone: c.phone,
    })
}

/// Plans one wrong code against `c`: one attempt fewer, or the claim
/// dropped with the last. Returns the attempts left.
fn spend_attempt(mut c: PhoneClaim, batch: &mut Vec<Mutation>) -> u8 {
    c.attempts_left = c.attempts_left.saturating_sub(1);
    let left = c.attempts_left;
    if left == 0 {
        batch.push(drop_claim(c));
    } else {
        let phone = c.phone.clone();
        batch.push(Mutation::Direct(DirectMutation::PutPhoneClaim {
            claim: c,
            replaces: Some(phone),
        }));
    }
    left
}

impl<B: Backend> Shared<B> {
    /// Links `claim`'s number to its user in one batch with `batch`: the
    /// number leaves any account that held it, the user's previous number
    /// is released, and every pending link of the number goes. The caller
    /// holds the phones lock.
    fn take_phone(&self, claim: PhoneClaim, mut batch: Vec<Mutation>) -> Result<()> {
        let PhoneClaim { user, phone, .. } = claim;
        let dropped: Vec<UserId> = batch
            .iter()
            .filter_map(|m| match m {
                Mutation::Direct(DirectMutation::DeletePhoneClaim { user, .. }) => Some(*user),
                _ => None,
            })
            .collect();
        let mut claims = Vec::new();
        self.backend.phone_claims(&phone, &mut claims)?;
        for c in claims {
            if !dropped.contains(&c.user) {
                batch.push(drop_claim(c));
            }
        }
        let replaces = self.backend.phone_of(user)?;
        if replaces.as_ref() != Some(&phone) {
            if let Some(holder) = self.backend.user_by_phone(&phone)? {
                batch.push(Mutation::Direct(DirectMutation::UnlinkPhone {
                    user: holder,
                    phone: phone.clone(),
                }));
            }
            batch.push(Mutation::Direct(DirectMutation::LinkPhone {
                user,
                phone,
                replaces,
            }));
        }
        self.write(&batch, self.config.durability)
    }
}

#[cfg(test)]
#[path = "phone_tests.rs"]
mod tests;
