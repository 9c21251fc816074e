//! A stored message and the rules a new message must follow.

use serde::{Deserialize, Serialize};

/// Largest accepted message, in UTF-8 bytes (before trimming surrounding whitespace).
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// A message as stored in Redis and returned by the JSON API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Sequence number, unique and increasing.
    pub id: u64,
    /// The text, trimmed.
    pub text: String,
    /// When it was stored, RFC 3339 UTC.
    pub time: String,
}

/// Why a new message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Nothing but whitespace.
    #[error("the message is empty: write a few words")]
    Empty,
    /// Over [`MAX_MESSAGE_BYTES`].
    #[error("the message is {0} bytes; the limit is {MAX_MESSAGE_BYTES} bytes: shorten it")]
    TooLarge(usize),
    /// Not valid UTF-8.
    #[error("the message is not valid UTF-8 text: send it as UTF-8")]
    NotUtf8,
}

/// Checks a raw message and returns its trimmed text.
pub fn validate(raw: &[u8]) -> Result<&str, MessageError> {
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(MessageError::TooLarge(raw.len()));
    }
    let text = std::str::from_utf8(raw).map_err(|_| MessageError::NotUtf8)?;
    let text = text.trim();
    if text.is_empty() {
        return Err(MessageError::Empty);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(validate(b"  hi \n"), Ok("hi"));
        assert_eq!(validate(b" \t\n"), Err(MessageError::Empty));
        assert_eq!(validate(&[0xff, 0xfe]), Err(MessageError::NotUtf8));
        assert_eq!(
            validate(&[b'a'; MAX_MESSAGE_BYTES]).map(str::len),
            Ok(MAX_MESSAGE_BYTES)
        );
        assert_eq!(
            validate(&[b'a'; MAX_MESSAGE_BYTES + 1]),
            Err(MessageError::TooLarge(MAX_MESSAGE_BYTES + 1))
        );
    }
}
