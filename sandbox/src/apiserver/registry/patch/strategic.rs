//! Strategic merge patch, ported from k8s.io/apimachinery's `strategicpatch` (`mergeMap`,
//! `mergeSlice` and the directives `$patch`, `$retainKeys`, `$setElementOrder/<list>` and
//! `$deleteFromPrimitiveList/<list>`), with the options the API server uses (parallel
//! lists merged, unmatched nulls ignored). The patch strategy of each list comes from
//! [`list_strategy`], the field tags of the Kubernetes types.

use serde_json::{Map, Value};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

/// Why a strategic merge patch could not be applied, with upstream's messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmpError {
    #[error("invalid patch format of primitive list")]
    BadPrimitiveList,
    #[error("invalid patch format of retainKeys")]
    BadRetainKeys,
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrder,
    #[error("lists of lists are not supported")]
    ListOfLists,
    #[error("map: {map} does not contain declared merge key: {key}")]
    NoMergeKey { map: String, key: String },
    #[error("unknown patch type: {kind} in map: {map}")]
    BadPatchType { kind: String, map: String },
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    #[error("The order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}\n")]
    OrderMismatch { patch: String, order: String },
    #[error("list element types are not identical: {0}")]
    MixedElements(String),
    #[error("cannot merge lists without merge key for {0}")]
    NoMergeKeyForList(String),
    #[error("expected {expected} for {field}, but received {found}")]
    BadArgType {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
}

/// How a list field is patched, from its `patchStrategy`/`patchMergeKey` tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStrategy {
    /// No strategy: the patch's list replaces the live one.
    Replace,
    /// `patchStrategy:"merge"` on a list of primitives: a union.
    MergePrimitives,
    /// `patchStrategy:"merge"` with a `patchMergeKey`: items merged by that key.
    MergeByKey(&'static str),
}

/// The patch strategy of a list field in the Kubernetes types the sandbox serves, looking
/// at a sample item when the field name alone is ambiguous (`ports` of a container vs of a
/// Service, `addresses` of a node). Server-side apply reads it too: merged lists are its
/// associative lists and sets.
pub fn list_strategy(field: &str, sample: Option<&Value>) -> ListStrategy {
    ListStrategy::MergeByKey(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "secrets"
        | "schedulingGates"
        | "resourceClaims" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "hostAliases" | "podIPs" | "hostIPs" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "addresses" if sample.is_some_and(|s| s.get("type").is_some()) => "type",
        "ports" if sample.is_some_and(|s| s.get("containerPort").is_some()) => "containerPort",
        "ports" => "port",
        "finalizers" | "podCIDRs" => return ListStrategy::MergePrimitives,
        _ => return ListStrategy::Replace,
    })
}

/// A decoded JSON value as Go's `%v` prints it, for upstream's error messages.
fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_fmt).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let pairs: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_fmt(v)))
                .collect();
            format!("map[{}]", pairs.join(" "))
        }
        other => other.to_string(),
    }
}

fn is_directive_map(v: &Value) -> bool {
    v.get(DIRECTIVE).is_some()
}

/// The JSON type of a value, as Go's `reflect.TypeOf` tells decoded JSON apart.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

/// Applies a strategic merge patch (a JSON object) to `original`.
pub fn apply(original: &mut Map<String, Value>, patch: Map<String, Value>) -> Result<(), SmpError> {
    let merged = merge_map(std::mem::take(original), patch)?;
    *original = merged;
    Ok(())
}

/// `mergeMap`: directives first, then each patched field.
fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
) -> Result<Map<String, Value>, SmpError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => {
                patch.remove(DIRECTIVE);
                Ok(patch)
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(SmpError::BadPatchType {
                kind: go_fmt(directive),
                map: go_fmt(&Value::Object(patch.clone())),
            }),
        };
    }
    apply_retain_keys(&mut original, &mut patch)?;
    merge_ordered_lists(&mut original, &mut patch)?;
    for (key, value) in patch {
        merge_field(&mut original, key, value)?;
    }
    Ok(original)
}

/// One patched field: null deletes it, directives are dropped, maps merge, lists merge
/// as their strategy says, anything else replaces.
fn merge_field(
    original: &mut Map<String, Value>,
    key: String,
    value: Value,
) -> Result<(), SmpError> {
    let (key, delete_list) = match key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
        Some(rest) => (
            extract_key(rest, SmpError::BadPrimitiveList)?.to_string(),
            true,
        ),
        None => (key, false),
    };
    if value.is_null() {
        original.remove(&key);
        return Ok(());
    }
    let current = original.remove(&key);
    let merged = match current {
        Some(Value::Object(o)) if value.is_object() => {
            Some(Value::Object(merge_map(o, into_map(value))?))
        }
        Some(Value::Array(o)) if value.is_array() => {
            let strategy =
                list_strategy(&key, o.first().or(value.as_array().and_then(|p| p.first())));
            Some(Value::Array(merge_list(
                &key,
                o,
                into_list(value),
                strategy,
                delete_list,
            )?))
        }
        Some(o) if delete_list => Some(o),
        _ if delete_list => None,
        _ => remove_directives(discard_nulls(value)),
    };
    if let Some(v) = merged {
        original.insert(key, v);
    }
    Ok(())
}

fn into_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn into_list(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        _ => Vec::new(),
    }
}

/// `extractKey`: the list a `$directive/<list>` key names.
fn extract_key(rest: &str, err: SmpError) -> Result<&str, SmpError> {
    rest.strip_prefix('/').ok_or(err)
}

/// `discardNullValuesFromPatch`: a new value keeps no null fields.
fn discard_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, discard_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(discard_nulls).collect()),
        other => other,
    }
}

/// `removeDirectives`: maps carrying `$patch` are dropped, at any depth; `None` when the
/// value itself is one.
fn remove_directives(v: Value) -> Option<Value> {
    match v {
        Value::Object(m) if m.contains_key(DIRECTIVE) => None,
        Value::Object(m) => Some(Value::Object(
            m.into_iter()
                .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                .collect(),
        )),
        Value::Array(a) => Some(Value::Array(
            a.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

/// `applyRetainKeysDirective`: every patched field must be listed, and the live fields not
/// listed are cleared.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), SmpError> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(keep) = retain else {
        return Err(SmpError::BadRetainKeys);
    };
    let kept = |k: &str| keep.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch.iter() {
        let directive =
            k.starts_with(DELETE_FROM_PRIMITIVE_LIST) || k.starts_with(SET_ELEMENT_ORDER);
        if !v.is_null() && !directive && !kept(k) {
            return Err(SmpError::BadRetainKeys);
        }
    }
    original.retain(|k, _| kept(k));
    Ok(())
}

/// `mergePatchIntoOriginal`: each `$setElementOrder/<list>` with its list, merged and put
/// in the order given (`$setElementOrder` before the patch's order before the live order).
fn merge_ordered_lists(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), SmpError> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for directive in keys {
        let order = patch.remove(&directive).unwrap_or_default();
        let Value::Array(order) = order else {
            return Err(bad_arg(&directive, "a list", &order));
        };
        let key = extract_key(
            &directive[SET_ELEMENT_ORDER.len()..],
            SmpError::BadSetElementOrder,
        )?
        .to_string();
        let live = list_field(original, &key)?;
        let patched = list_field(patch, &key)?;
        let sample = live
            .as_ref()
            .and_then(|l| l.first())
            .or(patched.as_ref().and_then(|p| p.first()));
        let strategy = list_strategy(&key, sample);
        let merge_key = match strategy {
            ListStrategy::MergeByKey(k) => Some(k),
            _ => None,
        };
        validate_order(patched.as_deref().unwrap_or_default(), &order, merge_key)?;
        let patch_list = patched.clone().unwrap_or_default();
        let merged = match (live.clone(), patched) {
            (Some(live), None) => live,
            (None, Some(p)) => into_list(remove_directives(Value::Array(p)).unwrap_or_default()),
            (Some(live), Some(p)) => merge_list(&key, live, p, strategy, false)?,
            (None, None) => continue,
        };
        let live = live.unwrap_or_default();
        let (in_order, server_only) = partition(merged, &order, merge_key)?;
        let kind = element_kind(&key, &[&live, &patch_list])?;
        let live_order = live_order_after_merge(&live, &patch_list, strategy);
        let sorted =
            normalize_element_order(in_order, server_only, &order, &live_order, merge_key, kind)?;
        original.insert(key.clone(), Value::Array(sorted));
        patch.remove(&key);
    }
    Ok(())
}

/// The live list as upstream reads it after merging: Go's `mergeSlice` deletes
/// `$patch: delete` items by shifting the caller's backing array and appends new items
/// into the freed tail, and `mergePatchIntoOriginal` then orders by that array. Reproduced
/// so that the order after a `$setElementOrder` patch that removes and adds items is the
/// one Kubernetes gives.
fn live_order_after_merge(live: &[Value], patch: &[Value], strategy: ListStrategy) -> Vec<Value> {
    let ListStrategy::MergeByKey(key) = strategy else {
        return live.to_vec();
    };
    let mut view = live.to_vec();
    let mut current = live.to_vec();
    let mut replace = false;
    for item in patch {
        match item.get(DIRECTIVE).and_then(Value::as_str) {
            Some("delete") => {
                let value = item.get(key);
                while let Some(i) = current
                    .iter()
                    .position(|o| value.is_some() && o.get(key) == value)
                {
                    let len = current.len();
                    current.remove(i);
                    for j in i..len - 1 {
                        view[j] = view[j + 1].clone();
                    }
                }
            }
            Some("replace") => replace = true,
            Some(_) => return live.to_vec(),
            None => {}
        }
    }
    if replace {
        return view;
    }
    for item in patch.iter().filter(|i| !is_directive_map(i)) {
        let value = item.get(key);
        if current.iter().any(|o| o.get(key) == value) {
            continue;
        }
        if current.len() < view.len() {
            view[current.len()] = item.clone();
        }
        current.push(item.clone());
    }
    view
}

fn bad_arg(field: &str, expected: &'static str, found: &Value) -> SmpError {
    SmpError::BadArgType {
        field: field.to_string(),
        expected,
        found: type_name(found),
    }
}

/// A list-valued field of a map, if present.
fn list_field(m: &Map<String, Value>, key: &str) -> Result<Option<Vec<Value>>, SmpError> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a.clone())),
        Some(other) => Err(bad_arg(key, "a list", other)),
    }
}

/// `validatePatchWithSetOrderList`: the patch's items (deletions aside) appear in the
/// order list, in the same relative order.
fn validate_order(
    patch: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<(), SmpError> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let items: Vec<&Value> = patch
        .iter()
        .filter(|p| {
            merge_key.is_none() || p.get(DIRECTIVE).and_then(Value::as_str) != Some("delete")
        })
        .collect();
    let (mut pi, mut oi) = (0, 0);
    while pi < items.len() && oi < order.len() {
        if is_directive_map(items[pi]) {
            pi += 1;
            continue;
        }
        if same_key(items[pi], &order[oi], merge_key)? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < items.len() && oi >= order.len() {
        return Err(SmpError::OrderMismatch {
            patch: go_fmt(&Value::Array(patch.to_vec())),
            order: go_fmt(&Value::Array(order.to_vec())),
        });
    }
    Ok(())
}

/// `mergeKeyValueEqual`.
fn same_key(a: &Value, b: &Value, merge_key: Option<&str>) -> Result<bool, SmpError> {
    let Some(k) = merge_key else {
        return Ok(a == b);
    };
    Ok(key_of(a, k)? == key_of(b, k)?)
}

fn key_of<'a>(item: &'a Value, key: &str) -> Result<&'a Value, SmpError> {
    item.get(key).ok_or_else(|| SmpError::NoMergeKey {
        map: go_fmt(item),
        key: key.to_string(),
    })
}

/// What the items of a list are, as Go's `sliceElementType` checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Map,
    Scalar,
}

/// `sliceElementType`: lists of lists are refused (when the first item is one), and every
/// item must have the first one's type.
fn element_kind(field: &str, lists: &[&[Value]]) -> Result<Kind, SmpError> {
    let mut items = lists.iter().flat_map(|l| l.iter());
    let Some(first) = items.next() else {
        return Err(SmpError::MixedElements(format!(
            "{field}: no elements in any of the given slices"
        )));
    };
    let t = type_name(first);
    if t == "list" {
        return Err(SmpError::ListOfLists);
    }
    if items.any(|v| type_name(v) != t) {
        let all: Vec<Value> = lists.iter().map(|l| Value::Array(l.to_vec())).collect();
        return Err(SmpError::MixedElements(go_fmt(&Value::Array(all))));
    }
    Ok(if t == "map" { Kind::Map } else { Kind::Scalar })
}

/// `mergeSliceHandler`: lists without a merge strategy (and not a deletion list) are
/// replaced by the patch as sent.
fn merge_list(
    field: &str,
    original: Vec<Value>,
    patch: Vec<Value>,
    strategy: ListStrategy,
    delete_list: bool,
) -> Result<Vec<Value>, SmpError> {
    if strategy == ListStrategy::Replace && !delete_list {
        return Ok(patch);
    }
    merge_slice(field, original, patch, strategy, delete_list)
}

/// `mergeSlice`: primitives unioned (or deleted from, for a deletion list), maps merged by
/// key after `$patch` items; the result ordered by the patch, then the live list.
fn merge_slice(
    field: &str,
    original: Vec<Value>,
    patch: Vec<Value>,
    strategy: ListStrategy,
    delete_list: bool,
) -> Result<Vec<Value>, SmpError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = element_kind(field, &[&original, &patch])?;
    if kind == Kind::Scalar {
        if delete_list {
            return Ok(original
                .into_iter()
                .filter(|v| !patch.contains(v))
                .collect());
        }
        let merged = dedupe_scalars([original.clone(), patch.clone()].concat());
        let (in_patch, server_only) = partition(merged, &patch, None)?;
        return normalize_element_order(in_patch, server_only, &patch, &original, None, kind);
    }
    let ListStrategy::MergeByKey(key) = strategy else {
        return Err(SmpError::NoMergeKeyForList(field.to_string()));
    };
    let (original, patch) = apply_list_directives(original, patch, key)?;
    let merged = merge_items(original.clone(), &patch, key)?;
    let (in_patch, server_only) = partition(merged, &patch, Some(key))?;
    normalize_element_order(in_patch, server_only, &patch, &original, Some(key), kind)
}

/// `deduplicateScalars`, which moves the last item into each duplicate's place.
fn dedupe_scalars(mut s: Vec<Value>) -> Vec<Value> {
    let mut i = 0;
    while i < s.len() {
        let mut j = i + 1;
        while j < s.len() {
            if s[i] == s[j] {
                s.swap_remove(j);
            } else {
                j += 1;
            }
        }
        i += 1;
    }
    s
}

/// `mergeSliceWithSpecialElements`: `$patch: delete` items remove every live item with
/// their key, `$patch: replace` makes the rest of the patch the whole list.
fn apply_list_directives(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), SmpError> {
    let mut plain = Vec::new();
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.get(DIRECTIVE) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let value = key_of(&item, key)?.clone();
                original.retain(|o| o.get(key) != Some(&value));
            }
            Some("replace") => replace = true,
            Some("merge") => return Err(SmpError::MergeDirectiveInList),
            _ => {
                return Err(SmpError::BadPatchType {
                    kind: go_fmt(directive),
                    map: go_fmt(&item),
                });
            }
        }
    }
    if replace {
        return Ok((plain, Vec::new()));
    }
    Ok((original, plain))
}

/// `mergeSliceWithoutSpecialElements`: an item with a live counterpart merges into it,
/// others are appended as sent.
fn merge_items(
    mut original: Vec<Value>,
    patch: &[Value],
    key: &str,
) -> Result<Vec<Value>, SmpError> {
    for item in patch {
        let value = key_of(item, key)?;
        let found = original.iter().position(|o| o.get(key) == Some(value));
        match found {
            Some(i) => {
                let live = into_map(std::mem::take(&mut original[i]));
                original[i] = Value::Object(merge_map(live, into_map(item.clone()))?);
            }
            None => original.push(item.clone()),
        }
    }
    Ok(original)
}

/// Items whose key (or value, for primitives) the `by` list has, and the others.
fn partition(
    merged: Vec<Value>,
    by: &[Value],
    key: Option<&str>,
) -> Result<(Vec<Value>, Vec<Value>), SmpError> {
    let mut listed = Vec::new();
    let mut others = Vec::new();
    for item in merged {
        let present = match key {
            None => by.contains(&item),
            Some(k) => {
                let v = key_of(&item, k)?;
                by.iter().any(|b| b.get(k) == Some(v))
            }
        };
        if present {
            listed.push(item);
        } else {
            others.push(item);
        }
    }
    Ok((listed, others))
}

/// Where an item is in `order`, by key (or value).
fn index_in(order: &[Value], item: &Value, key: Option<&str>) -> Option<usize> {
    match key {
        None => order.iter().position(|o| o == item),
        Some(k) => {
            let v = item.get(k);
            order.iter().position(|o| o.get(k) == v)
        }
    }
}

/// `normalizeSliceOrder`: sorted (stably) by position in `order`; items to delete last.
fn sort_by_order(
    items: Vec<Value>,
    order: &[Value],
    key: Option<&str>,
) -> Result<Vec<Value>, SmpError> {
    let (mut keep, delete): (Vec<Value>, Vec<Value>) = match key {
        Some(k) => {
            for v in items.iter().chain(order) {
                key_of(v, k)?;
            }
            items
                .into_iter()
                .partition(|v| v.get(DIRECTIVE).and_then(Value::as_str) != Some("delete"))
        }
        None => (items, Vec::new()),
    };
    keep.sort_by_key(|v| index_in(order, v, key).unwrap_or(usize::MAX));
    keep.extend(delete);
    Ok(keep)
}

/// `normalizeElementOrder`: the patch's items in the patch's order, the live-only items in
/// the live order, interleaved by their places in the live list (`mergeSortedSlice`).
fn normalize_element_order(
    patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
    _kind: Kind,
) -> Result<Vec<Value>, SmpError> {
    let patch = sort_by_order(patch, patch_order, key)?;
    let server_only = sort_by_order(server_only, server_order, key)?;
    let mut out = Vec::with_capacity(patch.len() + server_only.len());
    let (mut left, mut right) = (
        server_only.into_iter().peekable(),
        patch.into_iter().peekable(),
    );
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (index_in(server_order, l, key), index_in(server_order, r, key)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    Ok(out)
}
