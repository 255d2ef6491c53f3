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
    /// Close the engine, possibly in the middle of fan-out, and open it again.
    Reopen,
    /// Wait for fan-out and compare everything visible with the model.
    Check,
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
const TEXTS: [&str; 8] = [
    "hello",
    "second thoughts",
    "multi\nline",
    "ünïcödé ✓",
    "",
    "   ",
    "tab\tinside",
    "bell\u{7}",
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
            Op::Reopen => "reopen".to_owned(),
            Op::Check => "check".to_owned(),
        }
    }

    /// Parses [`Op::to_line`]; `None` for anything else.
    pub fn from_line(line: &str) -> Option<Op> {
        let mut words = line.split(' ');
        let (kind, a, b) = (words.next()?, words.next(), words.next());
        if words.next().is_some() {
            return None;
        }
        let num = |w: Option<&str>| w?.parse::<usize>().ok();
        Some(match (kind, a, b) {
            ("create", Some(name), None) => Op::CreateUser(unhex(name)?),
            ("follow", _, _) => Op::Follow(num(a)?, num(b)?),
            ("unfollow", _, _) => Op::Unfollow(num(a)?, num(b)?),
            ("post", _, Some(text)) => Op::Post(num(a)?, unhex(text)?),
            ("delete", _, _) => Op::Delete(num(a)?, num(b)?),
            ("reopen", None, None) => Op::Reopen,
            ("check", None, None) => Op::Check,
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
        let tag = next() % 16;
        Some(match tag {
            0 | 1 => Op::CreateUser(NAMES[next() % NAMES.len()].to_owned()),
            2..=5 => Op::Follow(next() % 8, next() % 8),
            6 | 7 => Op::Unfollow(next() % 8, next() % 8),
            8..=11 => Op::Post(next() % 8, text(next())),
            12 | 13 => Op::Delete(next() % 8, next() % 24),
            14 => Op::Reopen,
            _ => Op::Check,
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
        2 => (user, 0..24usize).prop_map(|(a, p)| Op::Delete(a, p)),
        1 => Just(Op::Reopen),
        3 => Just(Op::Check),
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
            "jump",
        ] {
            assert_eq!(Op::from_line(bad), None, "{bad}");
        }
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
