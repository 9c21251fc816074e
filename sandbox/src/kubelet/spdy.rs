//! The subset of SPDY/3.1 framing that port-forwarding speaks (kubectl tunnels it through a
//! WebSocket, `SPDY/3.1+portforward.k8s.io`): SYN_STREAM, SYN_REPLY, RST_STREAM, PING,
//! GOAWAY, HEADERS and DATA frames, with header blocks compressed by one zlib stream per
//! direction primed with the SPDY dictionary. SETTINGS and WINDOW_UPDATE are read and
//! ignored, as Go's spdystream (client-go's SPDY) does.

use bytes::{Buf, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

/// The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1), 1423 bytes.
const DICTIONARY: &[u8] = include_bytes!("spdy_dictionary.bin");

const VERSION: u16 = 3;
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const FLAG_FIN: u8 = 0x01;
/// The largest DATA payload SPDY can carry in one frame.
pub(crate) const MAX_DATA: usize = (1 << 24) - 1;

/// RST_STREAM status for a stream the receiver refuses.
pub(crate) const REFUSED_STREAM: u32 = 3;

/// Headers of a stream, lower-case names in the order sent.
pub(crate) type Headers = Vec<(String, String)>;

/// One SPDY frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    SynStream {
        stream: u32,
        fin: bool,
        headers: Headers,
    },
    SynReply {
        stream: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream: u32,
        status: u32,
    },
    Ping(u32),
    GoAway {
        last_stream: u32,
        status: u32,
    },
    Headers {
        stream: u32,
        fin: bool,
        headers: Headers,
    },
    Data {
        stream: u32,
        fin: bool,
        data: Bytes,
    },
    /// A control frame port-forwarding has no use for (SETTINGS, WINDOW_UPDATE, …).
    Ignored(u16),
}

/// Why a SPDY byte stream cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpdyError {
    #[error("SPDY version {0} is not supported (only SPDY/3.1)")]
    Version(u16),
    #[error("malformed SPDY {0} frame")]
    Malformed(&'static str),
    #[error("SPDY header block cannot be decompressed: {0}")]
    Compression(String),
}

/// Reads the frames of one direction of a SPDY connection, keeping its header compression
/// stream.
pub(crate) struct FrameReader {
    inflate: Decompress,
}

/// Writes the frames of one direction of a SPDY connection, keeping its header
/// compression stream.
pub(crate) struct FrameWriter {
    deflate: Compress,
}

impl FrameReader {
    pub(crate) fn new() -> FrameReader {
        FrameReader {
            inflate: Decompress::new(true),
        }
    }

    /// The next whole frame in `buf`, consuming it; `None` until one has fully arrived.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, SpdyError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let length = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
        if buf.len() < 8 + length {
            return Ok(None);
        }
        let head = buf.split_to(8);
        let mut body = buf.split_to(length).freeze();
        let flags = head[4];
        let fin = flags & FLAG_FIN != 0;
        let word = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if word & 0x8000_0000 == 0 {
            return Ok(Some(Frame::Data {
                stream: word,
                fin,
                data: body,
            }));
        }
        let version = ((word >> 16) & 0x7fff) as u16;
        if version != VERSION {
            return Err(SpdyError::Version(version));
        }
        let kind = (word & 0xffff) as u16;
        let need = |n: usize, what| {
            if length < n {
                Err(SpdyError::Malformed(what))
            } else {
                Ok(())
            }
        };
        let frame = match kind {
            SYN_STREAM => {
                need(10, "SYN_STREAM")?;
                let stream = body.get_u32() & 0x7fff_ffff;
                body.advance(6);
                let headers = self.read_headers(&body)?;
                Frame::SynStream {
                    stream,
                    fin,
                    headers,
                }
            }
            SYN_REPLY | HEADERS => {
                need(4, "SYN_REPLY")?;
                let stream = body.get_u32() & 0x7fff_ffff;
                let headers = self.read_headers(&body)?;
                if kind == SYN_REPLY {
                    Frame::SynReply {
                        stream,
                        fin,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream,
                        fin,
                        headers,
                    }
                }
            }
            RST_STREAM => {
                need(8, "RST_STREAM")?;
                Frame::RstStream {
                    stream: body.get_u32() & 0x7fff_ffff,
                    status: body.get_u32(),
                }
            }
            PING => {
                need(4, "PING")?;
                Frame::Ping(body.get_u32())
            }
            GOAWAY => {
                need(8, "GOAWAY")?;
                Frame::GoAway {
                    last_stream: body.get_u32() & 0x7fff_ffff,
                    status: body.get_u32(),
                }
            }
            other => Frame::Ignored(other),
        };
        Ok(Some(frame))
    }

    fn read_headers(&mut self, block: &[u8]) -> Result<Headers, SpdyError> {
        let raw = self.inflate(block)?;
        parse_header_block(&raw).ok_or(SpdyError::Malformed("header block"))
    }

    /// Inflates one header block (a sync-flushed piece of the connection's zlib stream).
    fn inflate(&mut self, block: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(block.len() * 4 + 256);
        let start = self.inflate.total_in();
        loop {
            let consumed = (self.inflate.total_in() - start) as usize;
            let result =
                self.inflate
                    .decompress_vec(&block[consumed..], &mut out, FlushDecompress::Sync);
            match result {
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(DICTIONARY)
                        .map_err(|e| SpdyError::Compression(e.to_string()))?;
                }
                Err(e) => return Err(SpdyError::Compression(e.to_string())),
                Ok(_) => {
                    let consumed = (self.inflate.total_in() - start) as usize;
                    if consumed >= block.len() && out.len() < out.capacity() {
                        return Ok(out);
                    }
                    out.reserve(out.capacity());
                }
            }
        }
    }
}

impl FrameWriter {
    pub(crate) fn new() -> FrameWriter {
        let mut deflate = Compress::new(Compression::default(), true);
        deflate
            .set_dictionary(DICTIONARY)
            .expect("a fresh zlib stream takes a dictionary");
        FrameWriter { deflate }
    }

    /// The bytes of one frame.
    pub(crate) fn encode(&mut self, frame: &Frame) -> Vec<u8> {
        let (kind, flags, body) = match frame {
            Frame::Data { stream, fin, data } => {
                let mut out = Vec::with_capacity(8 + data.len());
                out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
                out.extend_from_slice(&length_word(u8::from(*fin), data.len()));
                out.extend_from_slice(data);
                return out;
            }
            Frame::SynStream {
                stream,
                fin,
                headers,
            } => {
                let mut body = stream.to_be_bytes().to_vec();
                body.extend_from_slice(&[0; 6]);
                body.extend(self.write_headers(headers));
                (SYN_STREAM, u8::from(*fin), body)
            }
            Frame::SynReply {
                stream,
                fin,
                headers,
            }
            | Frame::Headers {
                stream,
                fin,
                headers,
            } => {
                let kind = if matches!(frame, Frame::SynReply { .. }) {
                    SYN_REPLY
                } else {
                    HEADERS
                };
                let mut body = stream.to_be_bytes().to_vec();
                body.extend(self.write_headers(headers));
                (kind, u8::from(*fin), body)
            }
            Frame::RstStream { stream, status } => (RST_STREAM, 0, pair(*stream, *status)),
            Frame::Ping(id) => (PING, 0, id.to_be_bytes().to_vec()),
            Frame::GoAway {
                last_stream,
                status,
            } => (GOAWAY, 0, pair(*last_stream, *status)),
            Frame::Ignored(kind) => (*kind, 0, Vec::new()),
        };
        let mut out = Vec::with_capacity(8 + body.len());
        out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&length_word(flags, body.len()));
        out.extend(body);
        out
    }

    fn write_headers(&mut self, headers: &Headers) -> Vec<u8> {
        let raw = header_block(headers);
        let mut out = Vec::with_capacity(raw.len() + 64);
        let start = self.deflate.total_in();
        loop {
            let consumed = (self.deflate.total_in() - start) as usize;
            self.deflate
                .compress_vec(&raw[consumed..], &mut out, FlushCompress::Sync)
                .expect("deflating into a growing buffer cannot fail");
            let consumed = (self.deflate.total_in() - start) as usize;
            if consumed >= raw.len() && out.len() < out.capacity() {
                return out;
            }
            out.reserve(out.capacity().max(64));
        }
    }
}

fn length_word(flags: u8, length: usize) -> [u8; 4] {
    let length = u32::try_from(length.min(MAX_DATA)).expect("24-bit length");
    (u32::from(flags) << 24 | length).to_be_bytes()
}

fn pair(a: u32, b: u32) -> Vec<u8> {
    let mut out = (a & 0x7fff_ffff).to_be_bytes().to_vec();
    out.extend_from_slice(&b.to_be_bytes());
    out
}

/// An uncompressed header block: a count, then length-prefixed names and values.
fn header_block(headers: &Headers) -> Vec<u8> {
    let mut out = Vec::new();
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes();
    out.extend_from_slice(&len(headers.len()));
    for (name, value) in headers {
        out.extend_from_slice(&len(name.len()));
        out.extend_from_slice(name.to_ascii_lowercase().as_bytes());
        out.extend_from_slice(&len(value.len()));
        out.extend_from_slice(value.as_bytes());
    }
    out
}

fn parse_header_block(mut raw: &[u8]) -> Option<Headers> {
    fn take<'a>(raw: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        (raw.len() >= n).then(|| {
            let (head, rest) = raw.split_at(n);
            *raw = rest;
            head
        })
    }
    let word = |raw: &mut &[u8]| take(raw, 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let count = word(&mut raw)?;
    let mut headers = Vec::new();
    for _ in 0..count {
        let n = word(&mut raw)? as usize;
        let name = String::from_utf8_lossy(take(&mut raw, n)?).into_owned();
        let n = word(&mut raw)? as usize;
        let value = String::from_utf8_lossy(take(&mut raw, n)?).into_owned();
        headers.push((name, value));
    }
    Some(headers)
}

/// The value of a header (names are lower-case on the wire).
pub(crate) fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_dictionary_is_the_specs() {
        assert_eq!(DICTIONARY.len(), 1423);
        assert!(DICTIONARY.starts_with(b"\0\0\0\x07options"));
        assert!(DICTIONARY.ends_with(b"enq=0."));
    }

    #[test]
    fn frames_round_trip_with_headers_compressed_across_frames() {
        let mut client = FrameWriter::new();
        let mut server = FrameReader::new();
        let sent = vec![
            Frame::SynStream {
                stream: 1,
                fin: false,
                headers: headers(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")]),
            },
            Frame::SynStream {
                stream: 3,
                fin: false,
                headers: headers(&[("streamtype", "data"), ("port", "80"), ("requestid", "0")]),
            },
            Frame::Data {
                stream: 3,
                fin: false,
                data: Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n"),
            },
            Frame::Data {
                stream: 1,
                fin: true,
                data: Bytes::new(),
            },
            Frame::Ping(7),
            Frame::RstStream {
                stream: 3,
                status: 5,
            },
            Frame::GoAway {
                last_stream: 3,
                status: 0,
            },
        ];
        let mut wire = BytesMut::new();
        for frame in &sent {
            wire.extend_from_slice(&client.encode(frame));
        }
        let mut got = Vec::new();
        // Frames arrive split anywhere, as the WebSocket tunnel delivers them.
        let mut buf = BytesMut::new();
        for byte in wire {
            buf.extend_from_slice(&[byte]);
            while let Some(frame) = server.decode(&mut buf).unwrap() {
                got.push(frame);
            }
        }
        assert_eq!(got, sent);
        let reply = Frame::SynReply {
            stream: 3,
            fin: false,
            headers: Vec::new(),
        };
        let mut back = BytesMut::from(&FrameWriter::new().encode(&reply)[..]);
        assert_eq!(FrameReader::new().decode(&mut back).unwrap(), Some(reply));
    }

    #[test]
    fn header_blocks_use_the_dictionary_as_go_expects() {
        // Go's zlib reader checks FDICT and the dictionary's checksum; real kubectl
        // sessions are tested in tests/port_forward.rs.
        let mut server = FrameReader::new();
        let mut client = FrameWriter::new();
        let syn = client.encode(&Frame::SynStream {
            stream: 1,
            fin: false,
            headers: headers(&[("Port", "8080")]),
        });
        // The block starts with a zlib header that names a preset dictionary (FDICT).
        assert_eq!(syn[18] & 0x20, 0x20);
        let mut buf = BytesMut::from(&syn[..]);
        let Some(Frame::SynStream { headers: got, .. }) = server.decode(&mut buf).unwrap() else {
            panic!("not a SYN_STREAM");
        };
        assert_eq!(header(&got, "port"), Some("8080"));
    }

    #[test]
    fn other_versions_and_truncated_frames_are_refused() {
        let mut codec = FrameReader::new();
        let mut v2 = BytesMut::from(&[0x80, 0x02, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1][..]);
        assert!(matches!(codec.decode(&mut v2), Err(SpdyError::Version(2))));
        let mut short = BytesMut::from(&[0x80, 0x03, 0x00, 0x03, 0, 0, 0, 2, 0, 1][..]);
        assert!(matches!(
            codec.decode(&mut short),
            Err(SpdyError::Malformed("RST_STREAM"))
        ));
        let mut partial = BytesMut::from(&[0x00, 0x00, 0x00, 0x01, 0, 0, 0, 9, 1][..]);
        assert_eq!(codec.decode(&mut partial).unwrap(), None);
    }
}
