//! Validated text values: usernames and post text.

use std::fmt;

use crate::{Error, Result};

/// The longest username, in characters.
pub const USERNAME_MAX_LEN: usize = 15;

/// A valid username: 1 to 15 ASCII letters, digits or underscores.
/// Uniqueness is decided on [`Username::folded`] (lower case).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    /// Validates `raw`.
    pub fn parse(raw: &str) -> Result<Username> {
        if raw.is_empty() {
            return Err(Error::InvalidUsername("empty"));
        }
        if !raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(Error::InvalidUsername(
                "only letters, digits and underscore are allowed",
            ));
        }
        // ASCII from here on: bytes are characters.
        if raw.len() > USERNAME_MAX_LEN {
            return Err(Error::InvalidUsername("longer than 15 characters"));
        }
        Ok(Username(raw.to_owned()))
    }

    /// The name as the user typed it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form used for uniqueness and look-up.
    pub fn folded(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The most mentions one post resolves; later ones stay plain text.
pub const MAX_MENTIONS: usize = 10;

/// The usernames `@mentioned` in `text`, each once (compared without
/// case), in order of first appearance, at most [`MAX_MENTIONS`].
///
/// A mention is `@` not preceded by a letter, digit or underscore (so
/// `a@b.c` mentions nobody), followed by a well-formed username ended by
/// anything that cannot continue one (`@bob's`, `@bob.` mention `bob`;
/// `@waytoolongforausername` mentions nobody).
pub fn mentioned_names(text: &str) -> Vec<Username> {
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out: Vec<Username> = Vec::new();
    let mut i = 0;
    while i < bytes.len() && out.len() < MAX_MENTIONS {
        if bytes[i] == b'@' && (i == 0 || !word(bytes[i - 1])) {
            let start = i + 1;
            let mut end = start;
            while end < bytes.len() && word(bytes[end]) {
                end += 1;
            }
            // Both ends sit on ASCII bytes or the text's end: a char boundary.
            if let Some(name) = text.get(start..end).and_then(|n| Username::parse(n).ok())
                && !out.iter().any(|n| n.folded() == name.folded())
            {
                out.push(name);
            }
            i = end.max(start);
        } else {
            i += 1;
        }
    }
    out
}

/// The longest group name, in characters.
pub const GROUP_NAME_MAX_CHARS: usize = 50;

/// Validates a group name: 1 to [`GROUP_NAME_MAX_CHARS`] characters, not
/// only whitespace, no control characters. Returns it trimmed.
pub fn group_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(Error::InvalidGroupName("empty"));
    }
    if name.chars().count() > GROUP_NAME_MAX_CHARS {
        return Err(Error::InvalidGroupName("longer than 50 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::InvalidGroupName(
            "control characters are not allowed",
        ));
    }
    Ok(name.to_owned())
}

/// Whether `c` shows nothing on its own: whitespace, or one of the
/// format characters that take no room (zero-width space U+200B, zero-width
/// non-joiner U+200C, zero-width joiner U+200D, word joiner U+2060, the
/// invisible operators U+2061 to U+2064, zero-width no-break space / byte
/// order mark U+FEFF, Mongolian vowel separator U+180E, soft hyphen U+00AD).
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{180E}' | '\u{00AD}'
        )
}

/// Valid post text (and direct message text): not empty, at most the
/// configured number of characters, no control characters other than
/// newline. Text made only of invisible characters ([`is_invisible`]: a
/// lone zero-width space, a byte order mark and spaces...) is empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostText(String);

impl PostText {
    /// Validates `raw` against a limit of `max_chars` Unicode scalar values.
    pub fn parse(raw: &str, max_chars: usize) -> Result<PostText> {
        if raw.chars().all(is_invisible) {
            return Err(Error::InvalidText("empty"));
        }
        let mut len = 0;
        for c in raw.chars() {
            if c.is_control() && c != '\n' {
                return Err(Error::InvalidText(
                    "control characters other than newline are not allowed",
                ));
            }
            len += 1;
        }
        if len > max_chars {
            return Err(Error::TextTooLong {
                len,
                max: max_chars,
            });
        }
        Ok(PostText(raw.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<String> {
        mentioned_names(text)
            .into_iter()
            .map(|n| n.as_str().to_owned())
            .collect()
    }

    #[test]
    fn mentions_are_found_where_a_name_can_start_and_end() {
        let cases: [(&str, &[&str]); 9] = [
            ("hi @bob", &["bob"]),
            ("@bob's cat, @Ann.", &["bob", "Ann"]),
            ("mail a@b.c", &[]),
            ("@ alone, @@x", &["x"]),
            ("@bob @BOB @bob", &["bob"]),
            ("@waytoolongforausername", &[]),
            ("(@carol)\n@dave_2!", &["carol", "dave_2"]),
            ("é@eve ü @frank", &["eve", "frank"]),
            ("", &[]),
        ];
        for (text, expect) in cases {
            assert_eq!(names(text), expect.to_vec(), "{text:?}");
        }
        let many: String = (0..20).map(|i| format!("@u{i} ")).collect();
        assert_eq!(names(&many).len(), MAX_MENTIONS);
    }

    #[test]
    fn group_names_are_trimmed_and_checked() {
        assert_eq!(
            group_name("  close friends ").ok().as_deref(),
            Some("close friends")
        );
        for bad in ["", "   ", "a\u{7}b", &"x".repeat(51)] {
            assert!(
                matches!(group_name(bad), Err(Error::InvalidGroupName(_))),
                "{bad:?}"
            );
        }
        assert!(group_name(&"é".repeat(50)).is_ok());
    }

    fn name(raw: &str) -> std::result::Result<String, String> {
        Username::parse(raw)
            .map(|n| n.folded())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn usernames() {
        assert_eq!(name("Ada_99"), Ok("ada_99".into()));
        assert_eq!(name("a"), Ok("a".into()));
        assert_eq!(name("abcdefghijklmno"), Ok("abcdefghijklmno".into()));
        for bad in [
            "",
            "abcdefghijklmnop",
            "with space",
            "dash-ed",
            "émile",
            "a.b",
            "a\0",
        ] {
            assert!(name(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn post_text() {
        let check = |raw: &str, max| PostText::parse(raw, max).map(|t| t.into_string());
        assert_eq!(check("hi\nthere", 280).ok().as_deref(), Some("hi\nthere"));
        // 280 characters of a multi-byte letter is fine: the limit is in characters.
        let long = "é".repeat(280);
        assert!(check(&long, 280).is_ok());
        assert!(matches!(
            check(&"é".repeat(281), 280),
            Err(Error::TextTooLong { len: 281, max: 280 })
        ));
        for bad in [
            "",
            "   ",
            "\n",
            "tab\there",
            "bell\u{7}",
            "cr\r\n",
            "nul\0",
            "del\u{7f}",
        ] {
            assert!(
                matches!(check(bad, 280), Err(Error::InvalidText(_))),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn text_of_invisible_characters_alone_is_empty() {
        let check = |raw: &str| PostText::parse(raw, 280).map(|t| t.into_string());
        for bad in [
            "\u{200B}",
            "\u{200C}",
            "\u{200D}",
            "\u{2060}",
            "\u{FEFF}",
            "\u{2061}\u{2064}",
            "\u{180E}",
            "\u{00AD}",
            " \u{200B} \n\u{FEFF}\u{2060} ",
            "\u{3000}\u{200D}\u{00A0}",
        ] {
            assert!(
                matches!(check(bad), Err(Error::InvalidText("empty"))),
                "{bad:?} must be refused as empty"
            );
        }
        // Beside a visible character they are kept as written.
        for good in [
            "a\u{200B}",
            "\u{FEFF}hi",
            "\u{1F469}\u{200D}\u{1F4BB}",
            ".\u{2060}",
        ] {
            assert_eq!(check(good).ok().as_deref(), Some(good), "{good:?}");
        }
    }
}
