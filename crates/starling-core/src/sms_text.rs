//! Outgoing device texts: a post labelled with its author, fitted into one
//! SMS. Pure formatting; it lives in the vocabulary crate so that the
//! engine (which queues device updates) and `starling-sms` (which re-exports
//! it and depends on the engine) share one definition.

/// The most characters one outgoing text may hold.
///
/// Counted in characters (Unicode scalar values), the unit post lengths are
/// counted in. How a gateway encodes them (GSM-7, UCS-2) and whether it has
/// to split a message is the gateway's business.
pub const SMS_MAX_CHARS: usize = 160;

/// What ends a text that had to be cut.
const ELLIPSIS: char = '…';

/// The device update for a post: `"author: text"` in one SMS.
///
/// The post text is trimmed; line breaks and other control characters
/// become spaces (a run of them becomes one space). When the result would be
/// longer than [`SMS_MAX_CHARS`] characters it is cut after a whole character,
/// trailing whitespace is dropped and `…` is appended, so the result,
/// ellipsis included, never exceeds [`SMS_MAX_CHARS`] characters.
///
/// ```
/// use starling_core::device_text;
///
/// assert_eq!(device_text("alice", "late,\nstart without me"), "alice: late, start without me");
/// let long = device_text("bob", &"é".repeat(300));
/// assert_eq!(long.chars().count(), 160);
/// assert!(long.ends_with("é…"));
/// ```
pub fn device_text(author: &str, text: &str) -> String {
    fit(author
        .chars()
        .chain(": ".chars())
        .chain(text.trim().chars()))
}

/// Fits any text into one SMS by the rules of [`device_text`]: control
/// characters become spaces, and a text longer than [`SMS_MAX_CHARS`]
/// characters is cut and ends with `…`. For the engine's own replies.
///
/// ```
/// use starling_core::{SMS_MAX_CHARS, fit_sms};
///
/// assert_eq!(fit_sms("You follow alice now."), "You follow alice now.");
/// assert_eq!(fit_sms(&"x".repeat(200)).chars().count(), SMS_MAX_CHARS);
/// ```
pub fn fit_sms(text: &str) -> String {
    fit(text.chars())
}

fn fit(chars: impl Iterator<Item = char>) -> String {
    // At most 160 characters of at most 4 bytes are kept.
    let mut out = String::with_capacity(4 * SMS_MAX_CHARS);
    let mut count = 0;
    let mut in_break = false;
    let mut cut = false;
    for c in chars {
        let c = if c.is_control() {
            if in_break {
                continue;
            }
            in_break = true;
            ' '
        } else {
            in_break = false;
            c
        };
        if count == SMS_MAX_CHARS {
            cut = true;
            break;
        }
        out.push(c);
        count += 1;
    }
    if cut {
        // Make room for the ellipsis: drop the last kept character, then
        // any whitespace the cut left at the end.
        out.pop();
        let kept = out.trim_end().len();
        out.truncate(kept);
        out.push(ELLIPSIS);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(author: &str, text: &str, expected: &str) {
        let got = device_text(author, text);
        assert_eq!(got, expected, "device_text({author:?}, {text:?})");
        assert!(got.chars().count() <= SMS_MAX_CHARS, "{got:?} is too long");
    }

    /// A text of `n` characters cycling through `alphabet`, so that a cut in
    /// the wrong place shows.
    fn text_of(n: usize, alphabet: &str) -> String {
        alphabet.chars().cycle().take(n).collect()
    }

    #[test]
    fn labels_a_post_with_its_author() {
        check(
            "alice",
            "running late, start without me",
            "alice: running late, start without me",
        );
        check("Bob_99", "hi", "Bob_99: hi");
    }

    #[test]
    fn line_breaks_and_control_characters_become_one_space() {
        check("alice", "one\ntwo", "alice: one two");
        check("alice", "one\r\ntwo", "alice: one two");
        check("alice", "one\n\n\ntwo", "alice: one two");
        check("alice", "one\ttwo\u{7}three", "alice: one two three");
        check("alice", "one \n two", "alice: one   two");
        check("alice", "\n  trimmed  \n", "alice: trimmed");
    }

    /// "alice: " is 7 characters, so a post of 152, 153 and 154 characters
    /// gives 159, 160 and 161 before any cut.
    #[test]
    fn the_160_character_boundary() {
        for alphabet in ["abc", "é", "日本語", "🐦🪶", "aé日🐦"] {
            let fits_under = text_of(152, alphabet);
            check("alice", &fits_under, &format!("alice: {fits_under}"));
            let fits_exactly = text_of(153, alphabet);
            check("alice", &fits_exactly, &format!("alice: {fits_exactly}"));
            let one_over = text_of(154, alphabet);
            let kept = text_of(152, alphabet);
            check("alice", &one_over, &format!("alice: {kept}…"));
            let far_over = text_of(1000, alphabet);
            check("alice", &far_over, &format!("alice: {kept}…"));
        }
    }

    #[test]
    fn the_boundary_counts_characters_after_line_breaks_are_replaced() {
        // 153 characters once "\r\n" is one space: fits exactly.
        let text = format!("{}\r\n{}", "a".repeat(76), "b".repeat(76));
        check(
            "alice",
            &text,
            &format!("alice: {} {}", "a".repeat(76), "b".repeat(76)),
        );
    }

    #[test]
    fn a_cut_drops_the_whitespace_it_leaves_at_the_end() {
        // The kept 152 characters end in spaces; they go before the ellipsis.
        let text = format!("{}   {}", "a".repeat(150), "b".repeat(50));
        check("alice", &text, &format!("alice: {}…", "a".repeat(150)));
    }

    #[test]
    fn cut_texts_keep_whole_characters() {
        // 4 bytes a character: a cut counted in bytes would keep 40 of them,
        // a cut inside a character would panic.
        let got = device_text("carol", &"🐦".repeat(400));
        assert_eq!(got.chars().count(), SMS_MAX_CHARS);
        assert_eq!(got, format!("carol: {}…", "🐦".repeat(152)));
        assert!(
            got.len() > SMS_MAX_CHARS,
            "the limit is in characters, not bytes"
        );
    }

    #[test]
    fn fit_sms_applies_the_same_rules() {
        assert_eq!(fit_sms("short\nreply"), "short reply");
        assert_eq!(fit_sms(&"x".repeat(160)), "x".repeat(160));
        assert_eq!(fit_sms(&"x".repeat(161)), format!("{}…", "x".repeat(159)));
        assert_eq!(fit_sms(""), "");
    }
}
