//! Decoding `application/x-www-form-urlencoded` bodies to raw bytes, so that invalid UTF-8 is
//! detected by the message rules instead of being silently replaced.

use percent_encoding::percent_decode;

fn decode(part: &[u8]) -> Vec<u8> {
    let plus_as_space: Vec<u8> = part
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&plus_as_space).collect()
}

/// The decoded value of the first field called `name`, if present.
pub fn field(body: &[u8], name: &str) -> Option<Vec<u8>> {
    body.split(|&b| b == b'&').find_map(|pair| {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        (decode(k) == name.as_bytes()).then(|| decode(v))
    })
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn decodes_plus_percent_and_keeps_bad_utf8() {
        assert_eq!(field(b"a=1&msg=hi+there%21", "msg").unwrap(), b"hi there!");
        assert_eq!(field(b"msg=%FF%FE", "msg").unwrap(), vec![0xff, 0xfe]);
        assert_eq!(field(b"msg", "msg").unwrap(), b"");
        assert_eq!(field(b"other=1", "msg"), None);
    }
}
