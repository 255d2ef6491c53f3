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

/// Valid post text: not empty, at most the configured number of characters,
/// no control characters other than newline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostText(String);

impl PostText {
    /// Validates `raw` against a limit of `max_chars` Unicode scalar values.
    pub fn parse(raw: &str, max_chars: usize) -> Result<PostText> {
        if raw.trim().is_empty() {
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
}
