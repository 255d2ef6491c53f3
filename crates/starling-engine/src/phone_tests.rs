//! Tests of phone confirmation and of texts to confirmed phones (direct
//! messages, the cap notice) over the in-memory backend.

use std::collections::BTreeSet;
use std::sync::Mutex;

use starling_core::{
    Config, DeliveryKind, DeviceDelivery, Durability, Error, MAX_CLAIMS_PER_PHONE,
    PHONE_CODE_ATTEMPTS, Phone, Result, SMS_MAX_CHARS, UserId, format_phone_code, utc_day,
};
use starling_memstore::MemBackend;
use starling_store::DirectStore;

use super::{PendingPhone, PhoneLink, code_text};
use crate::{CodeSource, Engine, OsCodes};

type Mem = Engine<MemBackend>;

const TTL: u64 = 600_000;
const N1: &str = "+15555550101";
const N2: &str = "+15555550102";

/// Codes 111111, 222222, ... in turn.
struct Counting(Mutex<u32>);

impl CodeSource for Counting {
    fn next_code(&self) -> Result<u32> {
        let mut n = self.0.lock().expect("not poisoned");
        *n = *n % 9 + 1;
        Ok(*n * 111_111)
    }
}

fn config() -> Config {
    Config {
        durability: Durability::Buffered,
        fanout_workers: 1,
        phone_code_ttl_ms: TTL,
        ..Config::default()
    }
}

fn engine() -> Mem {
    engine_with(config())
}

fn engine_with(config: Config) -> Mem {
    Engine::with_backend_and_codes(MemBackend::new(), config, Box::new(Counting(Mutex::new(0))))
        .expect("engine")
}

fn users(engine: &Mem, names: &[&str]) -> Vec<UserId> {
    names
        .iter()
        .map(|n| engine.create_user(n).expect("user").id)
        .collect()
}

fn phone(raw: &str) -> Phone {
    Phone::parse(raw).expect("valid")
}

/// The code of `user`'s pending link, read from the store.
fn code_of(engine: &Mem, user: UserId) -> String {
    let claim = engine.backend().phone_claim(user).expect("read");
    format_phone_code(claim.expect("a pending link").code)
}

/// A wrong code for `user`'s pending link.
fn wrong_code(engine: &Mem, user: UserId) -> String {
    let code = engine.backend().phone_claim(user).expect("read");
    format_phone_code((code.expect("a pending link").code + 1) % 1_000_000)
}

/// Every delivery due at `now`, leased for 1 ms.
fn lease(engine: &Mem, now: u64) -> Vec<DeviceDelivery> {
    engine
        .lease_device_deliveries_at(now, 200, 1)
        .expect("lease")
}

fn kinds_to(got: &[DeviceDelivery]) -> BTreeSet<(UserId, DeliveryKind, String)> {
    got.iter()
        .map(|d| (d.id.recipient, d.kind, d.phone.to_string()))
        .collect()
}

#[test]
fn a_link_takes_effect_only_when_its_code_comes_back_once() {
    let e = engine();
    let [ada] = users(&e, &["ada"])[..] else {
        panic!()
    };
    assert_eq!(
        e.link_phone_at(ada, N1, 1_000).expect("link"),
        PhoneLink::CodeSent {
            phone: phone(N1),
            expires_ms: 1_000 + TTL
        }
    );
    assert_eq!(e.phone(ada).expect("phone"), None, "not before the code");
    assert_eq!(e.user_by_phone(N1).expect("lookup"), None);
    assert_eq!(
        e.pending_phone_at(ada, 2_000).expect("pending"),
        Some(PendingPhone {
            phone: phone(N1),
            expires_ms: 1_000 + TTL,
            attempts_left: PHONE_CODE_ATTEMPTS
        })
    );
    // The code goes out through the outbox, to the number being linked.
    let got = lease(&e, 2_000);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].kind, DeliveryKind::Code);
    assert_eq!(got[0].phone, phone(N1));
    assert_eq!(got[0].id.recipient, ada);
    assert_eq!(got[0].text, code_text(111_111, TTL));
    assert!(got[0].text.starts_with("111111 "));
    assert!(got[0].text.chars().count() <= SMS_MAX_CHARS);
    // The code counts in the day's usage.
    assert_eq!(e.device_usage(ada, utc_day(1_000)).expect("usage").sent, 1);
    assert_eq!(
        e.confirm_phone_at(ada, " 111111\n", 3_000)
            .expect("confirm"),
        phone(N1)
    );
    assert_eq!(e.phone(ada).expect("phone"), Some(phone(N1)));
    assert_eq!(e.user_by_phone(N1).expect("lookup"), Some(ada));
    assert_eq!(e.pending_phone_at(ada, 3_000).expect("pending"), None);
    // Single use.
    assert!(matches!(
        e.confirm_phone_at(ada, "111111", 3_000),
        Err(Error::NoPendingPhone)
    ));
    // A code leased but not yet acknowledged is not offered again once
    // its link is confirmed.
    assert!(lease(&e, 10_000).is_empty());
}

#[test]
fn wrong_codes_spend_attempts_and_the_last_drops_the_link() {
    let e = engine();
    let [ada] = users(&e, &["ada"])[..] else {
        panic!()
    };
    e.link_phone_at(ada, N1, 0).expect("link");
    let wrong = wrong_code(&e, ada);
    for bad in ["", "12345", "1234567", "12a456", "１２３４５６", "+12345"] {
        assert!(
            matches!(
                e.confirm_phone_at(ada, bad, 1),
                Err(Error::InvalidPhoneCode)
            ),
            "{bad:?}"
        );
    }
    for left in (1..PHONE_CODE_ATTEMPTS).rev() {
        assert!(matches!(
            e.confirm_phone_at(ada, &wrong, 1),
            Err(Error::WrongPhoneCode { attempts_left }) if attempts_left == left
        ));
    }
    let right = code_of(&e, ada);
    assert!(matches!(
        e.confirm_phone_at(ada, &wrong, 1),
        Err(Error::WrongPhoneCode { attempts_left: 0 })
    ));
    assert!(matches!(
        e.confirm_phone_at(ada, &right, 1),
        Err(Error::NoPendingPhone)
    ));
    assert_eq!(e.phone(ada).expect("phone"), None);
    assert!(
        lease(&e, 2).is_empty(),
        "the dropped link's code is not sent"
    );
}

#[test]
fn an_expired_code_drops_the_link() {
    let e = engine();
    let [ada] = users(&e, &["ada"])[..] else {
        panic!()
    };
    e.link_phone_at(ada, N1, 0).expect("link");
    let code = code_of(&e, ada);
    assert_eq!(e.pending_phone_at(ada, TTL).expect("pending"), None);
    assert!(lease(&e, TTL).is_empty(), "an expired code is not sent");
    assert!(matches!(
        e.confirm_phone_at(ada, &code, TTL),
        Err(Error::PhoneCodeExpired)
    ));
    assert_eq!(e.backend().phone_claim(ada).expect("read"), None);
    assert!(matches!(
        e.confirm_phone_at(ada, &code, 1),
        Err(Error::NoPendingPhone)
    ));
}

#[test]
fn an_unconfirmed_number_blocks_nobody_and_whoever_confirms_takes_it() {
    let e = engine();
    let [ada, eve, bob] = users(&e, &["ada", "eve", "bob"])[..] else {
        panic!()
    };
    // Eve asks for Ada's number first; Ada may still ask for it.
    e.link_phone_at(eve, N1, 0).expect("eve asks");
    e.link_phone_at(ada, N1, 0).expect("ada asks");
    // The number receives the two codes and nothing else: a message to
    // either account is not texted to it.
    e.set_dm_policy(eve, starling_core::DmPolicy::Open)
        .expect("open");
    e.send_direct(bob, eve, "hi eve").expect("dm");
    let got = lease(&e, 1);
    assert_eq!(
        kinds_to(&got),
        BTreeSet::from([
            (ada, DeliveryKind::Code, N1.to_owned()),
            (eve, DeliveryKind::Code, N1.to_owned()),
        ])
    );
    // A wrong code texted from the number costs each pending link.
    let eve_code = code_of(&e, eve);
    let ada_code = code_of(&e, ada);
    let neither = (0..3)
        .map(|i| format!("{i}{i}{i}{i}{i}{i}"))
        .find(|c| *c != eve_code && *c != ada_code)
        .expect("a third code");
    assert!(matches!(
        e.confirm_phone_by_text_at(N1, &neither, 2),
        Err(Error::WrongPhoneCode { attempts_left }) if attempts_left == PHONE_CODE_ATTEMPTS - 1
    ));
    // The owner of the number texts Ada's code back: Ada has it, and
    // Eve's pending link is gone.
    assert_eq!(
        e.confirm_phone_by_text_at(N1, &ada_code, 3)
            .expect("confirm"),
        ada
    );
    assert_eq!(e.user_by_phone(N1).expect("lookup"), Some(ada));
    assert_eq!(e.phone(eve).expect("phone"), None);
    assert_eq!(e.backend().phone_claim(eve).expect("read"), None);
    assert!(matches!(
        e.confirm_phone_at(eve, &eve_code, 4),
        Err(Error::NoPendingPhone)
    ));
    assert!(matches!(
        e.confirm_phone_by_text_at(N1, &eve_code, 4),
        Err(Error::NoPendingPhone)
    ));
}

#[test]
fn relinking_never_leaves_two_accounts_on_one_number() {
    let e = engine();
    let [ada, bob] = users(&e, &["ada", "bob"])[..] else {
        panic!()
    };
    e.link_phone_at(ada, N1, 0).expect("link");
    e.confirm_phone_at(ada, &code_of(&e, ada), 0)
        .expect("confirm");
    // Ada moves to a new number: the old one stays hers until the new
    // one is confirmed.
    e.link_phone_at(ada, N2, 0).expect("relink");
    assert_eq!(e.phone(ada).expect("phone"), Some(phone(N1)));
    // The number changes hands (a recycled number): Bob confirms it.
    e.link_phone_at(bob, N1, 0).expect("bob asks");
    e.confirm_phone_at(bob, &code_of(&e, bob), 0)
        .expect("bob confirms");
    assert_eq!(e.user_by_phone(N1).expect("lookup"), Some(bob));
    assert_eq!(e.phone(ada).expect("phone"), None, "taken from ada");
    // Ada's pending link to the new number is untouched.
    e.confirm_phone_at(ada, &code_of(&e, ada), 0)
        .expect("ada confirms");
    assert_eq!(e.user_by_phone(N2).expect("lookup"), Some(ada));
    assert_eq!(e.user_by_phone(N1).expect("lookup"), Some(bob));
    // Linking the number one holds drops one's pending link.
    e.link_phone_at(bob, N2, 0).expect("bob asks for ada's");
    assert_eq!(
        e.link_phone_at(bob, N1, 0).expect("bob's own"),
        PhoneLink::Linked { phone: phone(N1) }
    );
    assert_eq!(e.backend().phone_claim(bob).expect("read"), None);
    // Unlinking drops a pending link too.
    e.link_phone_at(bob, N2, 0).expect("again");
    assert!(e.unlink_phone(bob).expect("unlink"));
    assert_eq!(e.backend().phone_claim(bob).expect("read"), None);
    assert_eq!(e.phone(bob).expect("phone"), None);
    assert!(!e.unlink_phone(bob).expect("nothing left"));
}

#[test]
fn a_number_keeps_a_bounded_number_of_pending_links() {
    let e = engine();
    let names: Vec<String> = (0..=MAX_CLAIMS_PER_PHONE)
        .map(|i| format!("u{i}"))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let ids = users(&e, &names);
    for (i, &u) in ids.iter().enumerate() {
        e.link_phone_at(u, N1, i as u64).expect("link");
    }
    let mut claims = Vec::new();
    e.backend()
        .phone_claims(&phone(N1), &mut claims)
        .expect("claims");
    assert_eq!(claims.len(), MAX_CLAIMS_PER_PHONE);
    assert!(
        claims.iter().all(|c| c.user != ids[0]),
        "the one expiring first went"
    );
    // Expired ones go first.
    let late = e.create_user("late").expect("user").id;
    e.link_phone_at(late, N1, TTL + 3).expect("link");
    claims.clear();
    e.backend()
        .phone_claims(&phone(N1), &mut claims)
        .expect("claims");
    assert_eq!(claims.len(), MAX_CLAIMS_PER_PHONE - 3 + 1, "three expired");
}

#[test]
fn codes_count_against_the_cap() {
    let e = engine_with(Config {
        device_daily_cap: 2,
        ..config()
    });
    let [ada] = users(&e, &["ada"])[..] else {
        panic!()
    };
    e.link_phone_at(ada, N1, 0).expect("first");
    e.link_phone_at(ada, N2, 0).expect("second");
    assert!(matches!(
        e.link_phone_at(ada, N1, 0),
        Err(Error::DeviceCapReached)
    ));
    // The pending link is the second, and its code still works.
    assert_eq!(
        e.pending_phone_at(ada, 0)
            .expect("pending")
            .map(|p| p.phone),
        Some(phone(N2))
    );
    // Only the second code is sent: the first one's link was replaced.
    let got = lease(&e, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].phone, phone(N2));
    // The next day has room again.
    e.link_phone_at(ada, N1, starling_core::DAY_MS)
        .expect("next day");
}

#[test]
fn bad_input_to_linking_is_refused() {
    let e = engine();
    let [ada] = users(&e, &["ada"])[..] else {
        panic!()
    };
    let ghost = UserId(404);
    assert!(matches!(
        e.link_phone(ghost, N1),
        Err(Error::UnknownUser(_))
    ));
    assert!(matches!(
        e.confirm_phone(ghost, "123456"),
        Err(Error::UnknownUser(_))
    ));
    assert!(matches!(e.pending_phone(ghost), Err(Error::UnknownUser(_))));
    assert!(matches!(
        e.link_phone(ada, "555"),
        Err(Error::InvalidPhone(_))
    ));
    assert!(matches!(
        e.confirm_phone(ada, "123456"),
        Err(Error::NoPendingPhone)
    ));
    assert!(matches!(
        e.confirm_phone_by_text("555", "123456"),
        Err(Error::InvalidPhone(_))
    ));
    assert!(matches!(
        e.confirm_phone_by_text(N1, "1234"),
        Err(Error::InvalidPhoneCode)
    ));
    assert!(matches!(
        e.confirm_phone_by_text(N1, "123456"),
        Err(Error::NoPendingPhone)
    ));
    assert!(matches!(
        Config {
            phone_code_ttl_ms: 999,
            ..Config::default()
        }
        .validate(),
        Err(Error::InvalidConfig(_))
    ));
    // Nothing was stored.
    assert_eq!(e.backend().phone_claim(ada).expect("read"), None);
    assert!(lease(&e, 1).is_empty());
}

#[test]
fn os_codes_are_six_digits_and_vary() {
    let codes: BTreeSet<u32> = (0..200)
        .map(|_| OsCodes.next_code().expect("randomness"))
        .collect();
    assert!(codes.iter().all(|&c| c < 1_000_000));
    assert!(codes.len() > 190, "{} distinct of 200", codes.len());
}

/// Links and confirms `number` for `user` as of the Unix epoch (its code
/// counts on day 0).
fn linked(e: &Mem, user: UserId, number: &str) {
    e.link_phone_at(user, number, 0).expect("link");
    e.confirm_phone_at(user, &code_of(e, user), 0)
        .expect("confirm");
}

#[test]
fn direct_messages_reach_confirmed_phones_once_within_the_cap() {
    let e = engine_with(Config {
        device_daily_cap: 2,
        ..config()
    });
    let [ada, bob] = users(&e, &["ada", "bob"])[..] else {
        panic!()
    };
    e.follow(bob, ada).expect("follow");
    linked(&e, bob, N2);
    let mut days = BTreeSet::new();
    let mut ids = Vec::new();
    for text in [
        "running late",
        "start without me\nplease",
        "third",
        "fourth",
    ] {
        let m = e.send_direct(ada, bob, text).expect("dm");
        days.insert(utc_day(m.id.unix_millis()));
        ids.push(m.id);
    }
    let got = lease(&e, 1);
    let texts: Vec<(DeliveryKind, &str)> = got.iter().map(|d| (d.kind, d.text.as_str())).collect();
    if days.len() == 1 {
        // Two within the cap, then the notice, once.
        assert_eq!(
            texts,
            vec![
                (DeliveryKind::Direct, "D ada: running late"),
                (DeliveryKind::Direct, "D ada: start without me please"),
                (DeliveryKind::Notice, &*super::super::outbox::cap_notice(2)),
            ]
        );
        let day = *days.first().expect("a day");
        let usage = e.device_usage(bob, day).expect("usage");
        assert_eq!((usage.sent, usage.over_cap), (2, 2));
        assert_eq!(got[0].id.post, ids[0], "keyed by the message");
    }
    assert!(
        got.iter()
            .all(|d| d.phone == phone(N2) && d.id.recipient == bob)
    );
    for d in &got {
        assert!(e.ack_device_delivery(d.id).expect("ack"));
    }
    assert!(
        lease(&e, 10).is_empty(),
        "never twice after acknowledgement"
    );
    // Ada has no phone: her messages are not texted.
    e.follow(ada, bob).expect("follow");
    e.send_direct(bob, ada, "ok").expect("dm");
    assert!(lease(&e, 10).is_empty());
}

#[test]
fn paused_or_unlinked_recipients_get_no_message_texts() {
    let e = engine();
    let [ada, bob] = users(&e, &["ada", "bob"])[..] else {
        panic!()
    };
    e.follow(bob, ada).expect("follow");
    linked(&e, bob, N2);
    e.pause_device_updates(bob).expect("stop");
    e.send_direct(ada, bob, "one").expect("dm");
    assert!(lease(&e, 1).is_empty(), "paused: not queued");
    e.resume_device_updates(bob).expect("start");
    e.send_direct(ada, bob, "two").expect("dm");
    e.pause_device_updates(bob).expect("stop again");
    assert!(lease(&e, 1).is_empty(), "paused since: dropped at lease");
    e.resume_device_updates(bob).expect("start");
    e.send_direct(ada, bob, "three").expect("dm");
    e.unlink_phone(bob).expect("unlink");
    assert!(lease(&e, 1).is_empty(), "unlinked since: dropped at lease");
    // A long message is cut to one text.
    linked(&e, bob, N2);
    e.send_direct(ada, bob, &"é".repeat(280)).expect("dm");
    let got = lease(&e, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].text.chars().count(), SMS_MAX_CHARS);
    assert!(got[0].text.starts_with("D ada: éé") && got[0].text.ends_with('…'));
}

#[test]
fn texts_wait_out_quiet_hours_but_codes_do_not() {
    let e = engine();
    let [ada, bob] = users(&e, &["ada", "bob"])[..] else {
        panic!()
    };
    e.follow(bob, ada).expect("follow");
    linked(&e, bob, N2);
    let h = |hour: u64| starling_core::DAY_MS * 20_000 + hour * 3_600_000;
    // 22:00 to 07:00 at UTC-5: 03:00 to 12:00 UTC.
    let quiet = starling_core::QuietHours::new(22, 7, -300).expect("valid");
    let profile = e.set_quiet_hours(bob, Some(quiet)).expect("sleep");
    assert_eq!(profile.quiet_hours, Some(quiet));
    e.send_direct(ada, bob, "late night").expect("dm");
    // Bob asks for a new number at night: its code goes out at once.
    e.link_phone_at(bob, N1, h(4)).expect("link");
    let got = lease(&e, h(4));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].kind, DeliveryKind::Code);
    // The message waits until 12:00 UTC, then goes out.
    assert!(lease(&e, h(11)).is_empty());
    let got = lease(&e, h(12));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].text, "D ada: late night");
    // WAKE clears them; bad hours are refused and change nothing.
    assert!(matches!(
        e.set_quiet_hours(
            bob,
            Some(starling_core::QuietHours {
                start_hour: 25,
                end_hour: 1,
                utc_offset_minutes: 0
            })
        ),
        Err(Error::InvalidProfile(_))
    ));
    assert_eq!(e.profile(bob).expect("profile").quiet_hours, Some(quiet));
    e.set_quiet_hours(bob, None).expect("wake");
    e.send_direct(ada, bob, "morning").expect("dm");
    assert_eq!(lease(&e, h(5)).len(), 1, "no quiet hours any more");
}
