//! Kubernetes protobuf request bodies, decoded to JSON. kubectl's typed clients send
//! `application/vnd.kubernetes.protobuf` for `kubectl create namespace|deployment|configmap|
//! secret|service`, `kubectl autoscale` and `kubectl auth`; this decodes those kinds (the
//! fields in [`schema`]) and skips fields it does not know.

mod access_schema;
mod schema;

use crate::apimachinery::errors::ApiError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use schema::{F, Field, KEEP_ZERO};
use serde_json::{Map, Value, json};

/// The media type kubectl's typed clients send.
pub(crate) const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Why a protobuf body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    #[error("it ends inside a value at byte {at} (the body is truncated)")]
    Truncated { at: usize },
    #[error("the varint at byte {at} is longer than 10 bytes")]
    VarintTooLong { at: usize },
    #[error("wire type {wire} at byte {at} is not one Kubernetes uses")]
    UnsupportedWireType { wire: u64, at: usize },
    #[error("field {field} ({number}) is encoded as {found}, expected {expected}")]
    WrongWireType {
        field: &'static str,
        number: u32,
        found: &'static str,
        expected: &'static str,
    },
    #[error("field {field} is not UTF-8 text")]
    NotText { field: &'static str },
    #[error("the timestamp in {field} is out of range")]
    BadTime { field: &'static str },
}

impl From<WireError> for ApiError {
    fn from(e: WireError) -> Self {
        ApiError::bad_request(format!(
            "the protobuf request body is malformed: {e}; send the object as JSON or YAML instead"
        ))
    }
}

/// A value as it is on the wire.
#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// A fixed 32- or 64-bit value; no field the sandbox reads uses one.
    Fixed,
}

impl Wire<'_> {
    fn name(&self) -> &'static str {
        match self {
            Wire::Varint(_) => "a varint",
            Wire::Bytes(_) => "length-delimited bytes",
            Wire::Fixed => "a fixed-width number",
        }
    }
}

/// Reads (field number, value) pairs from a message.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let start = self.pos;
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or(WireError::Truncated { at: self.pos })?;
            self.pos += 1;
            v |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(WireError::VarintTooLong { at: start })
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], WireError> {
        let truncated = WireError::Truncated { at: self.buf.len() };
        let end = self.pos.checked_add(len).ok_or(truncated.clone())?;
        let b = self.buf.get(self.pos..end).ok_or(truncated)?;
        self.pos = end;
        Ok(b)
    }

    /// The next field, or `None` at the end of the message.
    fn next(&mut self) -> Result<Option<(u32, Wire<'a>)>, WireError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let at = self.pos;
        let key = self.varint()?;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => self.take(8).map(|_| Wire::Fixed)?,
            2 => {
                let len = self.varint()? as usize;
                Wire::Bytes(self.take(len)?)
            }
            5 => self.take(4).map(|_| Wire::Fixed)?,
            wire => return Err(WireError::UnsupportedWireType { wire, at }),
        };
        Ok(Some(((key >> 3) as u32, wire)))
    }
}

fn text(field: &'static str, b: &[u8]) -> Result<String, WireError> {
    String::from_utf8(b.to_vec()).map_err(|_| WireError::NotText { field })
}

/// Decodes a message by its schema into a JSON object; unknown fields are skipped.
fn message(b: &[u8], schema: &[Field]) -> Result<Value, WireError> {
    let mut out = Map::new();
    let mut r = Reader::new(b);
    while let Some((num, wire)) = r.next()? {
        if let Some(&(_, name, ty)) = schema.iter().find(|(n, _, _)| *n == num) {
            field(&mut out, num, name, ty, wire)?;
        }
    }
    Ok(Value::Object(out))
}

/// Adds one field's value to `out`: scalars set it, map entries and repeated values add to it.
fn field(
    out: &mut Map<String, Value>,
    number: u32,
    name: &'static str,
    ty: F,
    wire: Wire<'_>,
) -> Result<(), WireError> {
    let wrong = |expected| WireError::WrongWireType {
        field: name,
        number,
        found: wire.name(),
        expected,
    };
    match (ty, wire) {
        (F::Int | F::Bool, Wire::Varint(v)) => {
            if let Some(v) = scalar(name, ty, v) {
                out.insert(name.into(), v);
            }
        }
        (F::Int | F::Bool, _) => return Err(wrong("a varint")),
        (_, Wire::Bytes(x)) => match ty {
            F::MapStr | F::MapBytes | F::MapQuantity => map_entry(out, name, ty, x)?,
            F::RepStr => push(out, name, json!(text(name, x)?)),
            F::RepMsg(s) => push(out, name, message(x, s)?),
            _ => {
                if let Some(v) = bytes_value(name, ty, x)? {
                    out.insert(name.into(), v);
                }
            }
        },
        _ => return Err(wrong("length-delimited bytes")),
    }
    Ok(())
}

/// A varint field's JSON value; Go encodes unset non-pointer fields as zero, which JSON
/// omits (except where zero means something, as `replicas: 0`).
fn scalar(name: &str, ty: F, v: u64) -> Option<Value> {
    match ty {
        F::Bool => (v != 0).then_some(json!(true)),
        _ if v == 0 && !KEEP_ZERO.contains(&name) => None,
        _ => Some(json!(v as i64)),
    }
}

/// A length-delimited scalar or message field's JSON value; `None` for Go's zero values.
fn bytes_value(name: &'static str, ty: F, x: &[u8]) -> Result<Option<Value>, WireError> {
    Ok(match ty {
        F::Str if x.is_empty() => None,
        F::Str => Some(json!(text(name, x)?)),
        F::Bytes => Some(json!(STANDARD.encode(x))),
        F::Msg(s) => Some(message(x, s)?),
        F::Time => time(name, x)?,
        F::Quantity => Some(message(x, schema::QUANTITY)?["s"].clone()),
        F::IntOrStr => Some(int_or_string(x)?),
        _ => None,
    })
}

/// `metav1.Time` as RFC 3339; the zero time is unset.
fn time(name: &'static str, x: &[u8]) -> Result<Option<Value>, WireError> {
    let secs = message(x, schema::TIME)?["seconds"].as_i64().unwrap_or(0);
    if secs == 0 {
        return Ok(None);
    }
    let ts = jiff::Timestamp::from_second(secs).map_err(|_| WireError::BadTime { field: name })?;
    Ok(Some(json!(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())))
}

fn int_or_string(x: &[u8]) -> Result<Value, WireError> {
    let v = message(x, schema::INT_OR_STRING)?;
    Ok(if v["type"].as_i64() == Some(1) {
        v["str"].clone()
    } else {
        json!(v["int"].as_i64().unwrap_or(0))
    })
}

/// One `map<string, ...>` entry (a message of key 1 and value 2) added to the map.
fn map_entry(
    out: &mut Map<String, Value>,
    name: &'static str,
    ty: F,
    entry: &[u8],
) -> Result<(), WireError> {
    let mut r = Reader::new(entry);
    let (mut k, mut v) = (String::new(), &[][..]);
    while let Some((f, w)) = r.next()? {
        match (f, w) {
            (1, Wire::Bytes(x)) => k = text(name, x)?,
            (2, Wire::Bytes(x)) => v = x,
            _ => {}
        }
    }
    let value = match ty {
        F::MapStr => json!(text(name, v)?),
        F::MapBytes => json!(STANDARD.encode(v)),
        _ => message(v, schema::QUANTITY)?["s"].clone(),
    };
    if let Some(m) = out.entry(name).or_insert_with(|| json!({})).as_object_mut() {
        m.insert(k, value);
    }
    Ok(())
}

/// One value of a repeated field appended to its list.
fn push(out: &mut Map<String, Value>, name: &str, item: Value) {
    if let Some(a) = out.entry(name).or_insert_with(|| json!([])).as_array_mut() {
        a.push(item);
    }
}

/// Decodes a `k8s\0`-prefixed protobuf envelope into a JSON object.
pub(crate) fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let inner = body.strip_prefix(b"k8s\0").ok_or_else(|| {
        ApiError::bad_request("the protobuf request body lacks the Kubernetes 'k8s\\0' prefix")
    })?;
    let envelope = message(inner, schema::UNKNOWN)?;
    let type_meta = &envelope["typeMeta"];
    let api_version = type_meta["apiVersion"].as_str().unwrap_or_default();
    let kind = type_meta["kind"].as_str().unwrap_or_default();
    let Some(fields) = schema::for_kind(api_version, kind) else {
        return Err(ApiError::unsupported_media_type(&format!(
            "{CONTENT_TYPE} for {kind} {api_version}; send it as JSON or YAML"
        )));
    };
    let raw = STANDARD
        .decode(envelope["raw"].as_str().unwrap_or_default())
        .map_err(|e| ApiError::internal(format!("re-reading protobuf bytes: {e}")))?;
    let mut obj = message(&raw, fields)?;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

#[cfg(test)]
mod tests;
