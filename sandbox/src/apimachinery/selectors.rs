//! Label selectors (`app=redis,tier!=frontend,env in (a,b),!canary`) and field selectors
//! (`metadata.name=x,status.phase!=Running`), parsed as k8s.io/apimachinery's `labels` and
//! `fields` packages parse them and matched on JSON objects.

use crate::apimachinery::errors::ApiError;
use crate::apimachinery::names::{is_label_key, is_label_value};
use crate::apimachinery::resources::Resource;
use serde_json::Value;

/// A label requirement's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One requirement: a key, an operator and (for the operators that take them) values.
#[derive(Debug, Clone, PartialEq)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

impl Requirement {
    fn matches(&self, labels: &Value) -> bool {
        let value = labels.get(&self.key).and_then(Value::as_str);
        let listed = |v: &str| self.values.iter().any(|x| x == v);
        match self.op {
            Op::Equals | Op::DoubleEquals | Op::In => value.is_some_and(listed),
            Op::NotEquals | Op::NotIn => !value.is_some_and(listed),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::GreaterThan | Op::LessThan => {
                let (Some(have), Some(want)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|v| v.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.op == Op::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }

    /// As `Requirement.String()`: set values sorted.
    fn to_query(&self) -> String {
        let k = &self.key;
        let mut values = self.values.clone();
        values.sort();
        let one = values.first().cloned().unwrap_or_default();
        match self.op {
            Op::Equals => format!("{k}={one}"),
            Op::DoubleEquals => format!("{k}=={one}"),
            Op::NotEquals => format!("{k}!={one}"),
            Op::GreaterThan => format!("{k}>{one}"),
            Op::LessThan => format!("{k}<{one}"),
            Op::In => format!("{k} in ({})", values.join(",")),
            Op::NotIn => format!("{k} notin ({})", values.join(",")),
            Op::Exists => k.clone(),
            Op::DoesNotExist => format!("!{k}"),
        }
    }
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<Requirement>);

/// The message Kubernetes gives for a selector it cannot parse.
fn unparsable(detail: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("unable to parse requirement: {detail}"))
}

impl LabelSelector {
    /// Parses the query-string form, as `labels.Parse`; requirements are kept sorted by key.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Parser::new(s).parse()?;
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector(reqs))
    }

    /// Builds a selector from a `metav1.LabelSelector` object (matchLabels + matchExpressions).
    pub fn from_object(sel: &Value) -> LabelSelector {
        let mut reqs = Vec::new();
        if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in m {
                reqs.push(Requirement {
                    key: k.clone(),
                    op: Op::Equals,
                    values: vec![v.as_str().unwrap_or_default().into()],
                });
            }
        }
        for e in sel
            .get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let values: Vec<String> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(String::from))
                .collect();
            let op = match e["operator"].as_str().unwrap_or_default() {
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                "Exists" => Op::Exists,
                _ => Op::DoesNotExist,
            };
            let key = e["key"].as_str().unwrap_or_default().to_string();
            reqs.push(Requirement { key, op, values });
        }
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector(reqs)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Does the label map (`metadata.labels`, possibly null) satisfy every requirement?
    pub fn matches(&self, labels: &Value) -> bool {
        self.0.iter().all(|r| r.matches(labels))
    }

    /// The selector in query-string form, e.g. for Scale's `status.selector`.
    pub fn to_query(&self) -> String {
        let parts: Vec<String> = self.0.iter().map(Requirement::to_query).collect();
        parts.join(",")
    }
}

/// A token of the label selector grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    End,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier(String),
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
    Error(String),
}

impl Token {
    /// The text the token was read from, for error messages.
    fn literal(&self) -> String {
        match self {
            Token::End => String::new(),
            Token::ClosedPar => ")".into(),
            Token::Comma => ",".into(),
            Token::DoesNotExist => "!".into(),
            Token::DoubleEquals => "==".into(),
            Token::Equals => "=".into(),
            Token::GreaterThan => ">".into(),
            Token::In => "in".into(),
            Token::LessThan => "<".into(),
            Token::NotEquals => "!=".into(),
            Token::NotIn => "notin".into(),
            Token::OpenPar => "(".into(),
            Token::Identifier(s) | Token::Error(s) => s.clone(),
        }
    }

    /// `in` and `notin` are values inside a value list.
    fn into_value(self) -> Token {
        match self {
            Token::In | Token::NotIn => Token::Identifier(self.literal()),
            other => other,
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn symbol(s: &str) -> Option<Token> {
    Some(match s {
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        "!" => Token::DoesNotExist,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::GreaterThan,
        "<" => Token::LessThan,
        "!=" => Token::NotEquals,
        "(" => Token::OpenPar,
        _ => return None,
    })
}

/// The lexer of `labels.Parse`: identifiers, keywords and the longest operator symbols.
fn lex(s: &str) -> Vec<Token> {
    let chars: Vec<char> = s.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && matches!(chars[i], ' ' | '\t' | '\r' | '\n') {
            i += 1;
        }
        if i >= chars.len() {
            tokens.push(Token::End);
            return tokens;
        }
        let start = i;
        if is_special(chars[i]) {
            let mut last = None;
            while i < chars.len() && is_special(chars[i]) {
                let text: String = chars[start..=i].iter().collect();
                match symbol(&text) {
                    Some(t) => last = Some((t, i + 1)),
                    None if last.is_some() => break,
                    None => {}
                }
                i += 1;
            }
            match last {
                Some((t, end)) => {
                    tokens.push(t);
                    i = end;
                }
                None => {
                    let text: String = chars[start..i].iter().collect();
                    tokens.push(Token::Error(format!(
                        "error expected: keyword found '{text}'"
                    )));
                }
            }
            continue;
        }
        while i < chars.len()
            && !is_special(chars[i])
            && !matches!(chars[i], ' ' | '\t' | '\r' | '\n')
        {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        tokens.push(match word.as_str() {
            "in" => Token::In,
            "notin" => Token::NotIn,
            _ => Token::Identifier(word),
        });
    }
}

/// The recursive-descent parser of `labels.Parse`.
struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn new(s: &str) -> Self {
        Parser {
            tokens: lex(s),
            pos: 0,
        }
    }

    /// The next token read as a value (where `in` and `notin` are plain words).
    fn peek(&self) -> Token {
        self.tokens[self.pos].clone().into_value()
    }

    fn next_raw(&mut self) -> Token {
        let t = self.tokens[self.pos].clone();
        if t != Token::End {
            self.pos += 1;
        }
        t
    }

    fn next(&mut self) -> Token {
        self.next_raw().into_value()
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, ApiError> {
        let mut reqs = Vec::new();
        loop {
            match self.peek() {
                Token::Identifier(_) | Token::DoesNotExist => {
                    reqs.push(self.requirement()?);
                    match self.next() {
                        Token::End => return Ok(reqs),
                        Token::Comma => match self.peek() {
                            Token::Identifier(_) | Token::DoesNotExist => {}
                            t => {
                                return Err(ApiError::bad_request(format!(
                                    "found '{}', expected: identifier after ','",
                                    t.literal()
                                )));
                            }
                        },
                        t => {
                            return Err(ApiError::bad_request(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                t.literal()
                            )));
                        }
                    }
                }
                Token::End => return Ok(reqs),
                t => {
                    return Err(ApiError::bad_request(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        t.literal()
                    )));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, ApiError> {
        let (key, unary) = self.key_and_unary_operator()?;
        if let Some(op) = unary {
            return Ok(Requirement {
                key,
                op,
                values: Vec::new(),
            });
        }
        let op = self.operator()?;
        let values = match op {
            Op::In | Op::NotIn => self.value_set()?,
            _ => vec![self.exact_value()?],
        };
        check_values(&key, op, &values)?;
        Ok(Requirement { key, op, values })
    }

    /// `[!] KEY`, with Exists or DoesNotExist when nothing follows it.
    fn key_and_unary_operator(&mut self) -> Result<(String, Option<Op>), ApiError> {
        let mut negated = false;
        let mut t = self.next();
        if t == Token::DoesNotExist {
            negated = true;
            t = self.next();
        }
        let Token::Identifier(key) = t else {
            return Err(unparsable(format!(
                "found '{}', expected: identifier",
                t.literal()
            )));
        };
        if !is_label_key(&key) {
            return Err(unparsable(format!(
                "key: Invalid value: \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
            )));
        }
        let alone = matches!(self.peek(), Token::End | Token::Comma);
        let op = match (negated, alone) {
            (true, _) => Some(Op::DoesNotExist),
            (false, true) => Some(Op::Exists),
            (false, false) => None,
        };
        Ok((key, op))
    }

    fn operator(&mut self) -> Result<Op, ApiError> {
        Ok(match self.next_raw() {
            Token::In => Op::In,
            Token::NotIn => Op::NotIn,
            Token::Equals => Op::Equals,
            Token::DoubleEquals => Op::DoubleEquals,
            Token::NotEquals => Op::NotEquals,
            Token::GreaterThan => Op::GreaterThan,
            Token::LessThan => Op::LessThan,
            t => {
                return Err(unparsable(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    t.literal()
                )));
            }
        })
    }

    /// `( value, ... )`; empty items are the empty value, duplicates collapse.
    fn value_set(&mut self) -> Result<Vec<String>, ApiError> {
        let t = self.next();
        if t != Token::OpenPar {
            return Err(unparsable(format!("found '{}' expected: '('", t.literal())));
        }
        let mut set: Vec<String> = Vec::new();
        let add = |v: String, set: &mut Vec<String>| {
            if !set.contains(&v) {
                set.push(v);
            }
        };
        match self.peek() {
            Token::ClosedPar => {
                self.next();
                return Ok(vec![String::new()]);
            }
            Token::Identifier(_) | Token::Comma => {}
            t => {
                return Err(unparsable(format!(
                    "found '{}', expected: ',', ')' or identifier",
                    t.literal()
                )));
            }
        }
        loop {
            match self.next() {
                Token::Identifier(v) => {
                    add(v, &mut set);
                    match self.peek() {
                        Token::Comma => {}
                        Token::ClosedPar => break,
                        t => {
                            return Err(unparsable(format!(
                                "found '{}', expected: ',' or ')'",
                                t.literal()
                            )));
                        }
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        add(String::new(), &mut set);
                    }
                    match self.peek() {
                        Token::ClosedPar => {
                            add(String::new(), &mut set);
                            break;
                        }
                        Token::Comma => add(String::new(), &mut set),
                        _ => {}
                    }
                }
                t => {
                    return Err(unparsable(format!(
                        "found '{}', expected: ',', or identifier",
                        t.literal()
                    )));
                }
            }
        }
        self.next();
        set.sort();
        Ok(set)
    }

    /// The value of `=`, `==`, `!=`, `>` and `<`: one word, or empty before `,` or the end.
    fn exact_value(&mut self) -> Result<String, ApiError> {
        if matches!(self.peek(), Token::End | Token::Comma) {
            return Ok(String::new());
        }
        match self.next() {
            Token::Identifier(v) => Ok(v),
            t => Err(unparsable(format!(
                "found '{}', expected: identifier",
                t.literal()
            ))),
        }
    }
}

/// `NewRequirement`'s checks: label values, and integers for `>` and `<`.
fn check_values(key: &str, op: Op, values: &[String]) -> Result<(), ApiError> {
    for (i, v) in values.iter().enumerate() {
        if !is_label_value(v) {
            return Err(unparsable(format!(
                "values[{i}][{key}]: Invalid value: \"{v}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
            )));
        }
        if matches!(op, Op::GreaterThan | Op::LessThan) && v.parse::<i64>().is_err() {
            return Err(unparsable(format!(
                "values[{i}]: Invalid value: \"{v}\": for 'Gt', 'Lt' operators, the value must be an integer"
            )));
        }
    }
    Ok(())
}

/// One field requirement: a dotted path, equal or not, a value.
#[derive(Debug, Clone, PartialEq)]
struct FieldTerm {
    path: Vec<String>,
    equal: bool,
    value: String,
}

/// A parsed field selector: equality tests on dotted paths.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector(Vec<FieldTerm>);

/// `splitTerms`: commas not escaped by a backslash separate terms.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                terms.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&s[start..]);
    terms
}

/// `splitTerm`: the first `!=`, `==` or `=`.
fn split_term(term: &str) -> Option<(&str, &str, &str)> {
    (0..term.len())
        .filter(|i| term.is_char_boundary(*i))
        .find_map(|i| {
            ["!=", "==", "="]
                .into_iter()
                .find(|op| term[i..].starts_with(op))
                .map(|op| (&term[..i], op, &term[i + op.len()..]))
        })
}

/// `UnescapeValue`: `\\`, `\,` and `\=` are the only escapes; bare `,` and `=` are refused.
fn unescape(v: &str) -> Result<String, ApiError> {
    let mut out = String::with_capacity(v.len());
    let mut escaped = false;
    for c in v.chars() {
        if escaped {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector: invalid escape sequence: \\{c}"
                )));
            }
            out.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            ',' | '=' => {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                )));
            }
            c => out.push(c),
        }
    }
    if escaped {
        return Err(ApiError::bad_request(
            "invalid field selector: invalid escape sequence: \\",
        ));
    }
    Ok(out)
}

impl FieldSelector {
    /// Parses `field=value,field!=value` as `fields.ParseSelector` does (with values
    /// escaped by backslashes); whitespace around fields and values is ignored.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut terms = split_terms(s);
        terms.sort_unstable();
        let mut reqs = Vec::new();
        for part in terms.into_iter().filter(|p| !p.is_empty()) {
            let Some((path, op, value)) = split_term(part) else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            reqs.push(FieldTerm {
                path: path.trim().split('.').map(String::from).collect(),
                equal: op != "!=",
                value: unescape(value.trim())?,
            });
        }
        Ok(FieldSelector(reqs))
    }

    /// The selector as `r`'s field label conversion leaves it (`spec.host` is `spec.nodeName`),
    /// or 400 for a field the kind cannot be selected by, worded as the API server's
    /// conversion functions word it (kinds without one accept only name and namespace).
    pub fn for_resource(mut self, r: &Resource) -> Result<Self, ApiError> {
        let meta: &[&str] = &["metadata.name", "metadata.namespace"];
        let extra: &[&str] = match (r.group, r.kind) {
            ("", "Pod") => &[
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.podIPs",
                "status.nominatedNodeName",
                "spec.host",
            ],
            ("", "Node") => &["spec.unschedulable"],
            ("", "ReplicationController") => &["status.replicas"],
            ("", "Event") => &[
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            ],
            ("", "Namespace") => &["status.phase"],
            ("", "Secret") => &["type"],
            ("", "Service") => &["spec.clusterIP", "spec.type"],
            ("batch", "Job") => &["status.successful"],
            _ => &[],
        };
        let converted = !extra.is_empty();
        for term in &mut self.0 {
            if r.kind == "Pod" && term.path == ["spec", "host"] {
                term.path = vec!["spec".into(), "nodeName".into()];
            }
            let label = term.path.join(".");
            if meta.contains(&label.as_str()) || extra.contains(&label.as_str()) {
                continue;
            }
            return Err(ApiError::bad_request(match (converted, r.kind) {
                (true, "Job") => format!("field label {label:?} not supported for Job"),
                (true, _) => format!("field label not supported: {label}"),
                (false, _) => format!(
                    "{label:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                ),
            }));
        }
        Ok(self)
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|t| {
            let mut cur = obj;
            for seg in &t.path {
                cur = &cur[seg.as_str()];
            }
            let have = match cur {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (have == t.value) == t.equal
        })
    }
}

#[cfg(test)]
mod tests;
