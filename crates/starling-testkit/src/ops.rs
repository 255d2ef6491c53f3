//! Workload steps, their proptest strategy, and a byte decoder for fuzzers.

/// One step of a workload. User and post arguments are indices into the
/// users and posts created so far; an index past the end names an unknown
/// one, so bad input is part of every run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Create a user with this name (valid or not).
    CreateUser(String),
    /// `.0` follows `.1`.
    Follow(usize, usize),
    /// `.0` unfollows `.1`.
    Unfollow(usize, usize),
    /// `.0` posts this text (valid or not).
    Post(usize, String),
    /// `.0` deletes post `.1`.
    Delete(usize, usize),
    /// `.0` blocks `.1`.
    Block(usize, usize),
    /// `.0` unblocks `.1`.
    Unblock(usize, usize),
    /// `.0` mutes `.1`.
    Mute(usize, usize),
    /// `.0` unmutes `.1`.
    Unmute(usize, usize),
    /// `.0` reposts post `.1`.
    Repost(usize, usize),
    /// `.0` sets up a group.
    CreateGroup(usize),
    /// `.0` adds `.2` to its group `.1` (an index among all groups).
    AddMember(usize, usize, usize),
    /// `.0` removes `.2` from its group `.1`.
    RemoveMember(usize, usize, usize),
    /// `.0` posts this text to its group `.1`.
    PostToGroup(usize, usize, String),
    /// `.0` sends `.1` a direct message.
    SendDirect(usize, usize, String),
    /// `.0` marks their conversation with `.1` read.
    MarkRead(usize, usize),
    /// `.0` opens (`true`) or closes their direct messages to anyone.
    OpenDms(usize, bool),
    /// `.0` likes post `.1`.
    Like(usize, usize),
    /// `.0` takes back their like of post `.1`.
    Unlike(usize, usize),
    /// `.0` asks to link phone number `.1` (an index into a few numbers).
    LinkPhone(usize, usize),
    /// `.0` confirms their pending phone link with its code (`true`) or a
    /// wrong one.
    ConfirmPhone(usize, bool),
    /// Number `.0` texts back the code of `.1`'s pending link (when it is
    /// for this number), or a code of none of its pending links (`None`).
    TextCode(usize, Option<usize>),
    /// `.0` unlinks their phone.
    UnlinkPhone(usize),
    /// `.0` sets quiet hours from hour `.1` for eight hours at UTC+1
    /// (hours past 23 are refused), or clears them (`None`).
    Sleep(usize, Option<u8>),
    /// `.0` makes their account protected.
    Protect(usize),
    /// `.0` makes their account public again (pending requests approved).
    Unprotect(usize),
    /// `.0` asks to follow the protected account `.1`.
    RequestFollow(usize, usize),
    /// `.0` approves `.1`'s follow request.
    Approve(usize, usize),
    /// `.0` denies `.1`'s follow request.
    Deny(usize, usize),
    /// `.0` withdraws their follow request to `.1`.
    Cancel(usize, usize),
    /// `.0` deletes their account.
    DeleteAccount(usize),
    /// Close the engine, possibly in the middle of fan-out, and open it again.
    Reopen,
    /// Wait for fan-out and compare everything visible with the model.
    Check,
}

/// How many phone numbers ops name ([`phone_number`] gives each).
pub const PHONES: usize = 3;

/// Phone number `n` of the ops (an invalid one past [`PHONES`]).
pub fn phone_number(n: usize) -> String {
    if n < PHONES {
        format!("+1555555020{n}")
    } else {
        "+0".to_owned()
    }
}

/// Names: valid ones, a case variant of another, and invalid ones.
const NAMES: [&str; 12] = [
    "ada",
    "Ada",
    "bob",
    "carol",
    "dave",
    "eve",
    "frank",
    "g_7",
    "",
    "bad name",
    "x-y",
    "sixteen_chars_xx",
];

/// Texts: valid ones, and ones the engine must refuse.
const TEXTS: [&str; 10] = [
    "hello",
    "second thoughts",
    "multi\nline",
    "ünïcödé ✓",
    "",
    "   ",
    "tab\tinside",
    "bell\u{7}",
    "\u{200B}",
    "\u{FEFF} \u{2060}\u{200D}",
];

impl Op {
    /// One line of text naming this op (strings hex-encoded), for logs.
    pub fn to_line(&self) -> String {
        match self {
            Op::CreateUser(name) => format!("create {}", hex(name)),
            Op::Follow(a, b) => format!("follow {a} {b}"),
            Op::Unfollow(a, b) => format!("unfollow {a} {b}"),
            Op::Post(a, text) => format!("post {a} {}", hex(text)),
            Op::Delete(a, p) => format!("delete {a} {p}"),
            Op::Block(a, b) => format!("block {a} {b}"),
            Op::Unblock(a, b) => format!("unblock {a} {b}"),
            Op::Mute(a, b) => format!("mute {a} {b}"),
            Op::Unmute(a, b) => format!("unmute {a} {b}"),
            Op::Repost(a, p) => format!("repost {a} {p}"),
            Op::CreateGroup(a) => format!("group {a}"),
            Op::AddMember(a, g, m) => format!("add {a} {g} {m}"),
            Op::RemoveMember(a, g, m) => format!("remove {a} {g} {m}"),
            Op::PostToGroup(a, g, text) => format!("grouppost {a} {g} {}", hex(text)),
            Op::SendDirect(a, b, text) => format!("dm {a} {b} {}", hex(text)),
            Op::MarkRead(a, b) => format!("read {a} {b}"),
            Op::OpenDms(a, open) => format!("dms {a} {}", u8::from(*open)),
            Op::Like(a, p) => format!("like {a} {p}"),
            Op::Unlike(a, p) => format!("unlike {a} {p}"),
            Op::LinkPhone(a, n) => format!("link {a} {n}"),
            Op::ConfirmPhone(a, right) => format!("confirm {a} {}", u8::from(*right)),
            Op::TextCode(n, Some(u)) => format!("textcode {n} {u}"),
            Op::TextCode(n, None) => format!("textcode {n} -"),
            Op::UnlinkPhone(a) => format!("unlink {a}"),
            Op::Sleep(a, Some(h)) => format!("sleep {a} {h}"),
            Op::Sleep(a, None) => format!("sleep {a} -"),
            Op::Protect(a) => format!("protect {a}"),
            Op::Unprotect(a) => format!("unprotect {a}"),
            Op::RequestFollow(a, b) => format!("request {a} {b}"),
            Op::Approve(a, b) => format!("approve {a} {b}"),
            Op::Deny(a, b) => format!("deny {a} {b}"),
            Op::Cancel(a, b) => format!("cancel {a} {b}"),
            Op::DeleteAccount(a) => format!("deleteaccount {a}"),
            Op::Reopen => "reopen".to_owned(),
            Op::Check => "check".to_owned(),
        }
    }

    /// Parses [`Op::to_line`]; `None` for anything else.
    pub fn from_line(line: &str) -> Option<Op> {
        let mut words = line.split(' ');
        let (kind, a, b, c) = (words.next()?, words.next(), words.next(), words.next());
        if words.next().is_some() {
            return None;
        }
        let num = |w: Option<&str>| w?.parse::<usize>().ok();
        Some(match (kind, a, b, c) {
            ("create", Some(name), None, None) => Op::CreateUser(unhex(name)?),
            ("follow", _, _, None) => Op::Follow(num(a)?, num(b)?),
            ("unfollow", _, _, None) => Op::Unfollow(num(a)?, num(b)?),
            ("post", _, Some(text), None) => Op::Post(num(a)?, unhex(text)?),
            ("delete", _, _, None) => Op::Delete(num(a)?, num(b)?),
            ("block", _, _, None) => Op::Block(num(a)?, num(b)?),
            ("unblock", _, _, None) => Op::Unblock(num(a)?, num(b)?),
            ("mute", _, _, None) => Op::Mute(num(a)?, num(b)?),
            ("unmute", _, _, None) => Op::Unmute(num(a)?, num(b)?),
            ("repost", _, _, None) => Op::Repost(num(a)?, num(b)?),
            ("group", _, None, None) => Op::CreateGroup(num(a)?),
            ("add", _, _, _) => Op::AddMember(num(a)?, num(b)?, num(c)?),
            ("remove", _, _, _) => Op::RemoveMember(num(a)?, num(b)?, num(c)?),
            ("grouppost", _, _, Some(text)) => Op::PostToGroup(num(a)?, num(b)?, unhex(text)?),
            ("dm", _, _, Some(text)) => Op::SendDirect(num(a)?, num(b)?, unhex(text)?),
            ("read", _, _, None) => Op::MarkRead(num(a)?, num(b)?),
            ("dms", _, Some("1"), None) => Op::OpenDms(num(a)?, true),
            ("dms", _, Some("0"), None) => Op::OpenDms(num(a)?, false),
            ("like", _, _, None) => Op::Like(num(a)?, num(b)?),
            ("unlike", _, _, None) => Op::Unlike(num(a)?, num(b)?),
            ("link", _, _, None) => Op::LinkPhone(num(a)?, num(b)?),
            ("confirm", _, Some("1"), None) => Op::ConfirmPhone(num(a)?, true),
            ("confirm", _, Some("0"), None) => Op::ConfirmPhone(num(a)?, false),
            ("textcode", _, Some("-"), None) => Op::TextCode(num(a)?, None),
            ("textcode", _, _, None) => Op::TextCode(num(a)?, Some(num(b)?)),
            ("unlink", _, None, None) => Op::UnlinkPhone(num(a)?),
            ("sleep", _, Some("-"), None) => Op::Sleep(num(a)?, None),
            ("sleep", _, Some(h), None) => Op::Sleep(num(a)?, Some(h.parse().ok()?)),
            ("protect", _, None, None) => Op::Protect(num(a)?),
            ("unprotect", _, None, None) => Op::Unprotect(num(a)?),
            ("request", _, _, None) => Op::RequestFollow(num(a)?, num(b)?),
            ("approve", _, _, None) => Op::Approve(num(a)?, num(b)?),
            ("deny", _, _, None) => Op::Deny(num(a)?, num(b)?),
            ("cancel", _, _, None) => Op::Cancel(num(a)?, num(b)?),
            ("deleteaccount", _, None, None) => Op::DeleteAccount(num(a)?),
            ("reopen", None, None, None) => Op::Reopen,
            ("check", None, None, None) => Op::Check,
            _ => return None,
        })
    }

    /// Decodes one op from the front of `bytes`, consuming what it used;
    /// `None` when `bytes` is empty. Any byte string decodes to some ops.
    pub fn decode(bytes: &mut &[u8]) -> Option<Op> {
        if bytes.is_empty() {
            return None;
        }
        let mut next = || -> usize {
            match bytes.split_first() {
                Some((b, rest)) => {
                    *bytes = rest;
                    usize::from(*b)
                }
                None => 0,
            }
        };
        let raw = next();
        let tag = raw % 45;
        Some(match tag {
            0 | 1 => Op::CreateUser(NAMES[next() % NAMES.len()].to_owned()),
            2..=5 => Op::Follow(next() % 8, next() % 8),
            6 | 7 => Op::Unfollow(next() % 8, next() % 8),
            8..=11 => Op::Post(next() % 8, text(next())),
            12 | 13 => Op::Delete(next() % 8, next() % 24),
            14 => Op::Reopen,
            15 => Op::Check,
            16 => Op::Block(next() % 8, next() % 8),
            17 => Op::Unblock(next() % 8, next() % 8),
            18 => Op::Mute(next() % 8, next() % 8),
            19 => Op::Unmute(next() % 8, next() % 8),
            20 | 21 => Op::Repost(next() % 8, next() % 24),
            22 => Op::CreateGroup(next() % 8),
            23 => Op::AddMember(next() % 8, next() % 4, next() % 8),
            24 => Op::RemoveMember(next() % 8, next() % 4, next() % 8),
            25 => Op::PostToGroup(next() % 8, next() % 4, text(next())),
            26 | 27 => Op::SendDirect(next() % 8, next() % 8, text(next())),
            28 => Op::MarkRead(next() % 8, next() % 8),
            29 => Op::OpenDms(next() % 8, next() % 2 == 0),
            30 | 31 => Op::Like(next() % 8, next() % 24),
            32 => Op::Unlike(next() % 8, next() % 24),
            33 => Op::LinkPhone(next() % 8, next() % PHONES),
            34 => Op::ConfirmPhone(next() % 8, next() % 4 != 0),
            35 => {
                let n = next() % PHONES;
                let u = next() % 9;
                Op::TextCode(n, (u < 8).then_some(u))
            }
            36 => Op::UnlinkPhone(next() % 8),
            37 => {
                let (a, h) = (next() % 8, next() % 26);
                Op::Sleep(a, (h < 25).then_some(h as u8))
            }
            38 => Op::Protect(next() % 8),
            39 => Op::Unprotect(next() % 8),
            40 => Op::RequestFollow(next() % 8, next() % 8),
            41 => Op::Approve(next() % 8, next() % 8),
            42 => Op::Deny(next() % 8, next() % 8),
            // Rare: one byte in 256 (a run deleting its few users early
            // would leave nobody to act); the others check.
            43 if raw >= 4 * 45 => Op::DeleteAccount(next() % 8),
            43 => Op::Check,
            _ => Op::Cancel(next() % 8, next() % 8),
        })
    }
}

fn hex(s: &str) -> String {
    // An empty string still needs a word on the line.
    let mut out = String::from("x");
    for b in s.bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn unhex(word: &str) -> Option<String> {
    let digits = word.strip_prefix('x')?;
    if digits.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(digits.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Text number `n`: one of [`TEXTS`], or one over the default length limit.
fn text(n: usize) -> String {
    match TEXTS.get(n % (TEXTS.len() + 1)) {
        Some(t) => (*t).to_owned(),
        None => "x".repeat(281),
    }
}

/// A proptest strategy for sequences of up to `max_len` ops that starts
/// by creating a few users and ends with a check.
#[cfg(feature = "proptest")]
pub fn ops(max_len: usize) -> impl proptest::strategy::Strategy<Value = Vec<Op>> {
    use proptest::prelude::*;
    let user = 0..8usize;
    let op = prop_oneof![
        2 => (0..NAMES.len()).prop_map(|i| Op::CreateUser(NAMES[i].to_owned())),
        5 => (user.clone(), user.clone()).prop_map(|(a, b)| Op::Follow(a, b)),
        2 => (user.clone(), user.clone()).prop_map(|(a, b)| Op::Unfollow(a, b)),
        5 => (user.clone(), 0..=TEXTS.len()).prop_map(|(a, t)| Op::Post(a, text(t))),
        2 => (user.clone(), 0..24usize).prop_map(|(a, p)| Op::Delete(a, p)),
        1 => Just(Op::Reopen),
        3 => Just(Op::Check),
        1 => (user.clone(), user.clone()).prop_map(|(a, b)| Op::Block(a, b)),
        1 => (user.clone(), user.clone()).prop_map(|(a, b)| Op::Unblock(a, b)),
        1 => (user.clone(), user.clone()).prop_map(|(a, b)| Op::Mute(a, b)),
        1 => (user.clone(), user.clone()).prop_map(|(a, b)| Op::Unmute(a, b)),
        3 => (user.clone(), 0..24usize).prop_map(|(a, p)| Op::Repost(a, p)),
        1 => user.clone().prop_map(Op::CreateGroup),
        3 => (user.clone(), 0..4usize, user.clone()).prop_map(|(a, g, m)| Op::AddMember(a, g, m)),
        1 => (user.clone(), 0..4usize, user.clone()).prop_map(|(a, g, m)| Op::RemoveMember(a, g, m)),
        3 => (user.clone(), 0..4usize, 0..=TEXTS.len()).prop_map(|(a, g, t)| Op::PostToGroup(a, g, text(t))),
        4 => (user.clone(), user.clone(), 0..=TEXTS.len()).prop_map(|(a, b, t)| Op::SendDirect(a, b, text(t))),
        2 => (user.clone(), user.clone()).prop_map(|(a, b)| Op::MarkRead(a, b)),
        1 => (user.clone(), any::<bool>()).prop_map(|(a, open)| Op::OpenDms(a, open)),
        // Mostly the first few posts, which exist by then: likes meet.
        5 => (user.clone(), prop_oneof![3 => 0..3usize, 1 => 0..12usize]).prop_map(|(a, p)| Op::Like(a, p)),
        2 => (user.clone(), prop_oneof![3 => 0..3usize, 1 => 0..12usize]).prop_map(|(a, p)| Op::Unlike(a, p)),
        // Phone ops mostly name the four users every run starts with, so
        // that links get confirmed and messages reach phones.
        3 => (0..5usize, 0..=PHONES).prop_map(|(a, n)| Op::LinkPhone(a, n)),
        3 => (0..5usize, proptest::bool::weighted(0.75)).prop_map(|(a, right)| Op::ConfirmPhone(a, right)),
        2 => (0..PHONES, proptest::option::weighted(0.75, 0..5usize)).prop_map(|(n, u)| Op::TextCode(n, u)),
        1 => user.clone().prop_map(Op::UnlinkPhone),
        1 => (user.clone(), proptest::option::of(0u8..25)).prop_map(|(a, h)| Op::Sleep(a, h)),
        2 => user.clone().prop_map(Op::Protect),
        1 => user.clone().prop_map(Op::Unprotect),
        4 => (user.clone(), user.clone()).prop_map(|(a, b)| Op::RequestFollow(a, b)),
        3 => (user.clone(), user.clone()).prop_map(|(a, b)| Op::Approve(a, b)),
        1 => (user.clone(), user.clone()).prop_map(|(a, b)| Op::Deny(a, b)),
        1 => (user.clone(), user.clone()).prop_map(|(a, b)| Op::Cancel(a, b)),
        2 => user.prop_map(Op::DeleteAccount),
    ];
    let start: Vec<Op> = ["ada", "bob", "carol", "dave"]
        .iter()
        .map(|n| Op::CreateUser((*n).to_owned()))
        .collect();
    proptest::collection::vec(op, 0..max_len).prop_map(move |rest| {
        let mut all = start.clone();
        all.extend(rest);
        all.push(Op::Check);
        all
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip_through_lines() {
        let bytes: Vec<u8> = (0..=255).rev().collect();
        let mut rest = &bytes[..];
        let mut all = vec![Op::Reopen, Op::Check, Op::CreateUser(String::new())];
        while let Some(op) = Op::decode(&mut rest) {
            all.push(op);
        }
        for op in all {
            assert_eq!(
                Op::from_line(&op.to_line()),
                Some(op.clone()),
                "{}",
                op.to_line()
            );
        }
        for bad in [
            "",
            "post 1",
            "follow a b",
            "create 41",
            "create x4",
            "delete 1 2 3",
            "add 1 2",
            "group 1 2",
            "grouppost 1 2",
            "dms 1 2",
            "read 1",
            "like 1",
            "unlike 1 x",
            "confirm 1 2",
            "textcode 1",
            "unlink 1 2",
            "sleep 1",
            "sleep 1 x",
            "protect 1 2",
            "unprotect",
            "request 1",
            "approve a 1",
            "deleteaccount",
            "deleteaccount 1 2",
            "jump",
        ] {
            assert_eq!(Op::from_line(bad), None, "{bad}");
        }
    }

    /// Each op's kind as a number: an exhaustive match, so a new op cannot
    /// be added without its number here.
    fn kind(op: &Op) -> usize {
        match op {
            Op::CreateUser(_) => 0,
            Op::Follow(..) => 1,
            Op::Unfollow(..) => 2,
            Op::Post(..) => 3,
            Op::Delete(..) => 4,
            Op::Block(..) => 5,
            Op::Unblock(..) => 6,
            Op::Mute(..) => 7,
            Op::Unmute(..) => 8,
            Op::Repost(..) => 9,
            Op::CreateGroup(_) => 10,
            Op::AddMember(..) => 11,
            Op::RemoveMember(..) => 12,
            Op::PostToGroup(..) => 13,
            Op::SendDirect(..) => 14,
            Op::MarkRead(..) => 15,
            Op::OpenDms(..) => 16,
            Op::Like(..) => 17,
            Op::Unlike(..) => 18,
            Op::LinkPhone(..) => 19,
            Op::ConfirmPhone(..) => 20,
            Op::TextCode(..) => 21,
            Op::UnlinkPhone(_) => 22,
            Op::Sleep(..) => 23,
            Op::Protect(_) => 24,
            Op::Unprotect(_) => 25,
            Op::RequestFollow(..) => 26,
            Op::Approve(..) => 27,
            Op::Deny(..) => 28,
            Op::Cancel(..) => 29,
            Op::Reopen => 30,
            Op::Check => 31,
            Op::DeleteAccount(_) => 32,
        }
    }

    #[test]
    fn the_decoder_reaches_every_op() {
        let mut seen = std::collections::BTreeSet::new();
        for tag in 0..=255u8 {
            let bytes = [tag, 1, 2, 3, 4];
            let mut rest = &bytes[..];
            let op = Op::decode(&mut rest).expect("decodes");
            seen.insert(kind(&op));
        }
        let all: Vec<usize> = (0..33).collect();
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), all);
    }

    #[test]
    fn every_byte_string_decodes() {
        let bytes: Vec<u8> = (0..=255).collect();
        let mut rest = &bytes[..];
        let mut n = 0;
        while let Some(_op) = Op::decode(&mut rest) {
            n += 1;
        }
        assert!(n > 50 && rest.is_empty());
    }
}
