//! Selectors checked against k8s.io/apimachinery v0.37.2's own tests
//! (`labels/selector_test.go`: TestSelectorParse, TestSelectorMatches, TestSetSelectorParser;
//! `fields/selector_test.go`: TestSplitTerms, TestSplitTerm, TestEscapeValue, TestSelectorParse).

use super::*;
use serde_json::json;

#[test]
fn label_selector_forms() {
    let labels = json!({"app": "redis", "tier": "backend"});
    for (sel, want) in [
        ("app=redis", true),
        ("app==redis,tier=backend", true),
        ("app!=redis", false),
        ("tier in (backend, api)", true),
        ("tier notin (backend)", false),
        ("app", true),
        ("!app", false),
        ("!canary", true),
        ("", true),
    ] {
        assert_eq!(
            LabelSelector::parse(sel).unwrap().matches(&labels),
            want,
            "{sel}"
        );
    }
    assert!(
        LabelSelector::parse("app=redis")
            .unwrap()
            .matches(&json!({"app":"redis"}))
    );
    assert!(
        !LabelSelector::parse("app=redis")
            .unwrap()
            .matches(&Value::Null)
    );
    assert!(LabelSelector::parse("a in b").is_err());
}

#[test]
fn field_selector_paths() {
    let pod =
        json!({"metadata": {"name": "p", "namespace": "demo"}, "status": {"phase": "Running"}});
    assert!(
        FieldSelector::parse("metadata.name=p,status.phase=Running")
            .unwrap()
            .matches(&pod)
    );
    assert!(
        !FieldSelector::parse("status.phase!=Running")
            .unwrap()
            .matches(&pod)
    );
    assert!(
        FieldSelector::parse("spec.nodeName=")
            .unwrap()
            .matches(&pod)
    );
    assert!(FieldSelector::parse("nonsense").is_err());
}

#[test]
fn label_selectors_parse_and_restring_as_kubernetes() {
    for good in [
        "x=a,y=b,z=c",
        "",
        "x!=a,y=b",
        "x=",
        "x= ",
        "x=,z= ",
        "x= ,z= ",
        "!x",
        "x>1",
        "x>1,z<5",
    ] {
        let parsed = LabelSelector::parse(good).unwrap_or_else(|e| panic!("{good}: {}", e.message));
        assert_eq!(parsed.to_query(), good.replace(' ', ""), "{good}");
    }
    for bad in ["x=a||y=b", "x==a==b", "!x=a", "x<a"] {
        assert!(LabelSelector::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn label_selectors_match_as_kubernetes() {
    let m = |sel: &str, labels: Value| LabelSelector::parse(sel).unwrap().matches(&labels);
    assert!(m("", json!({"x": "y"})));
    assert!(m("x=y", json!({"x": "y"})));
    assert!(m("x=y,z=w", json!({"x": "y", "z": "w"})));
    assert!(m("x!=y,z!=w", json!({"x": "z", "z": "a"})));
    assert!(
        m("notin=in", json!({"notin": "in"})),
        "in and notin as key and value"
    );
    assert!(m("x", json!({"x": "z"})));
    assert!(m("!x", json!({"y": "z"})));
    assert!(m("x>1", json!({"x": "2"})));
    assert!(m("x<1", json!({"x": "0"})));
    assert!(!m("x=z", json!({})));
    assert!(!m("x=y", json!({"x": "z"})));
    assert!(!m("x=y,z=w", json!({"x": "w", "z": "w"})));
    assert!(!m("x!=y,z!=w", json!({"x": "z", "z": "w"})));
    assert!(!m("x", json!({"y": "z"})));
    assert!(!m("!x", json!({"x": "z"})));
    assert!(!m("x>1", json!({"x": "0"})));
    assert!(!m("x<1", json!({"x": "2"})));
    let set = json!({"foo": "bar", "baz": "blah"});
    assert!(m("foo=bar,baz=blah", set.clone()));
    assert!(!m("foo=bar,foobar=bar,baz=blah", set));
}

#[test]
fn set_based_selectors_parse_as_kubernetes() {
    // (input, canonical form), from TestSetSelectorParser's valid cases.
    for (input, want) in [
        ("\rx", "x"),
        (
            "this-is-a-dns.domain.com/key-with-dash",
            "this-is-a-dns.domain.com/key-with-dash",
        ),
        (
            "this-is-another-dns.domain.com/key-with-dash in (so,what)",
            "this-is-another-dns.domain.com/key-with-dash in (so,what)",
        ),
        (
            "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
            "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)",
        ),
        ("foo  in\t (abc)", "foo in (abc)"),
        ("x notin\n (abc)", "x notin (abc)"),
        ("x  notin\t\t(abc,def)", "x notin (abc,def)"),
        ("x in (abc,)", "x in (,abc)"),
        ("x in (abc,abc)", "x in (abc)"),
        ("x in ()", "x in ()"),
        ("x in (a,,)", "x in (,a)"),
        ("x in (a,,,,,,)", "x in (,a)"),
        ("x in (a,,a,,a,,a,,)", "x in (,a)"),
        (
            "x notin (abc,,def),bar,z in (),w",
            "bar,w,x notin (,abc,def),z in ()",
        ),
        ("x,y in (a)", "x,y in (a)"),
        ("x=a,y!=b,z in (h,i,j)", "x=a,y!=b,z in (h,i,j)"),
        ("x notin ( )", "x notin ()"),
        ("x notin (, a)", "x notin (,a)"),
        ("a ", "a"),
        ("a in (x,y,notin, z,in)", "a in (in,notin,x,y,z)"),
    ] {
        let parsed =
            LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {}", e.message));
        assert_eq!(parsed.to_query(), want, "{input:?}");
    }
    for bad in [
        "x=a||y=b",
        "x,,y",
        ",x,y",
        "x nott in (y)",
        "a in (xyz),",
        "a in (xyz)b notin ()",
        "a in (xyz abc)",
        "a notin(",
        "a (",
        "(",
    ] {
        assert!(LabelSelector::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn invalid_label_selectors_say_what_is_wrong() {
    let err = |s: &str| LabelSelector::parse(s).unwrap_err();
    assert_eq!(err("app=web,").code, 400);
    assert_eq!(
        err("app=web,").message,
        "found '', expected: identifier after ','"
    );
    assert_eq!(
        err("a in (xyz abc)").message,
        "unable to parse requirement: found 'abc', expected: ',' or ')'"
    );
    assert!(
        err("-bad=x")
            .message
            .contains("key: Invalid value: \"-bad\""),
        "{}",
        err("-bad=x").message
    );
    assert!(
        err("app=a/b")
            .message
            .contains("values[0][app]: Invalid value: \"a/b\"")
    );
    assert!(err("x>one").message.contains("must be an integer"));
    assert_eq!(
        err("x=a==b").message,
        "found '==', expected: ',' or 'end of string'"
    );
}

#[test]
fn object_selectors_print_sorted_like_label_selector_as_selector() {
    let sel = LabelSelector::from_object(&json!({
        "matchLabels": {"tier": "backend", "app": "redis"},
        "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod", "dev"]},
                             {"key": "canary", "operator": "DoesNotExist"}]}));
    assert_eq!(
        sel.to_query(),
        "app=redis,!canary,env notin (dev,prod),tier=backend"
    );
    assert!(sel.matches(&json!({"app": "redis", "tier": "backend", "env": "test"})));
    assert!(!sel.matches(&json!({"app": "redis", "tier": "backend", "env": "dev"})));
}

#[test]
fn field_selector_terms_split_and_unescape_as_kubernetes() {
    for (selector, terms) in [
        ("a", vec!["a"]),
        (
            "a=avalue,b==bvalue,c!=cvalue",
            vec!["a=avalue", "b==bvalue", "c!=cvalue"],
        ),
        ("", vec![]),
        ("a=a,", vec!["a=a", ""]),
        (",a=a", vec!["", "a=a"]),
        (r"k=\,,k2=v2", vec![r"k=\,", "k2=v2"]),
        (r"k=\\,k2=v2", vec![r"k=\\", "k2=v2"]),
        (r"k=\\\,,k2=v2", vec![r"k=\\\,", "k2=v2"]),
        (r"k=\a\b\", vec![r"k=\a\b\"]),
        ("함=수,목=록", vec!["함=수", "목=록"]),
    ] {
        assert_eq!(split_terms(selector), terms, "{selector}");
    }
    assert_eq!(split_term("b==value"), Some(("b", "==", "value")));
    assert_eq!(split_term("c!=value"), Some(("c", "!=", "value")));
    assert_eq!(
        split_term(r"k=\\\a\b\=\,\"),
        Some(("k", "=", r"\\\a\b\=\,\"))
    );
    assert_eq!(split_term("함=수"), Some(("함", "=", "수")));
    assert_eq!(split_term("a"), None);
    for (escaped, value) in [
        ("", ""),
        ("a", "a"),
        (r"\=", "="),
        (r"\,", ","),
        (r"\\", r"\"),
        (r"\\\=\\\,\\", r"\=\,\"),
    ] {
        assert_eq!(unescape(escaped).unwrap(), value);
    }
    for invalid in [r"\", r"\\\", r"\a"] {
        assert!(
            unescape(invalid)
                .unwrap_err()
                .message
                .contains("invalid escape sequence"),
            "{invalid}"
        );
    }
}

#[test]
fn field_selectors_parse_escaped_values_and_refuse_the_rest() {
    for good in ["x=a,y=b,z=c", "", "x!=a,y=b", r"x=a||y\=b", r"x=a\=\=b"] {
        assert!(FieldSelector::parse(good).is_ok(), "{good}");
    }
    for bad in ["x=a||y=b", "x==a==b", "x=a,b", "x"] {
        let err = FieldSelector::parse(bad).unwrap_err();
        assert_eq!(err.code, 400, "{bad}");
    }
    assert_eq!(
        FieldSelector::parse("x").unwrap_err().message,
        "invalid selector: 'x'; can't understand 'x'"
    );
    let cm = json!({"metadata": {"name": "a=b,c"}});
    assert!(
        FieldSelector::parse(r"metadata.name=a\=b\,c")
            .unwrap()
            .matches(&cm)
    );
}
