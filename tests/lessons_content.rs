//! The lessons as data, as invariants that hold for any number of lessons: they parse,
//! are numbered 0..N without gaps and named after number and slug, build only on earlier
//! lessons, name only embedded manifests and use every one of them, and use only the step
//! vocabulary lessons/README.md documents.

use hk8s::lesson::model::{self, Action};
use hk8s::manifests;
use std::collections::BTreeSet;

#[test]
fn lessons_parse_numbered_without_gaps_and_named_after_number_and_slug() {
    let lessons = model::all().expect("lessons parse");
    assert!(!lessons.is_empty());
    let numbers: Vec<u32> = lessons.iter().map(|l| l.number).collect();
    assert_eq!(numbers, (0..lessons.len() as u32).collect::<Vec<_>>());
    for l in &lessons {
        assert_eq!(l.file, format!("{:02}-{}.md", l.number, l.slug));
        assert!(!l.steps.is_empty(), "lesson {} has steps", l.number);
        assert!(
            l.steps
                .iter()
                .any(|s| matches!(s.action, Action::Check { .. })),
            "lesson {} checks something",
            l.number
        );
    }
}

#[test]
fn every_requirement_is_an_earlier_lesson() {
    let lessons = model::all().unwrap();
    for l in &lessons {
        for r in &l.requires {
            assert!(
                *r < l.number && lessons.iter().any(|other| other.number == *r),
                "lesson {} requires {r}, which is not an earlier lesson",
                l.number
            );
        }
    }
}

#[test]
fn every_named_manifest_exists_and_every_manifest_is_used() {
    let lessons = model::all().unwrap();
    let embedded: BTreeSet<&str> = manifests::names().into_iter().collect();
    assert!(!embedded.is_empty());
    let mut used = BTreeSet::new();
    for l in &lessons {
        for s in &l.steps {
            for m in s.action.manifests() {
                assert!(
                    embedded.contains(m),
                    "lesson {} step {:?} names {m}, which is not in embedded-manifests/",
                    l.number,
                    s.title
                );
                used.insert(m.to_string());
            }
        }
    }
    for m in &embedded {
        assert!(
            used.contains(*m),
            "embedded manifest {m} is used by no lesson"
        );
    }
}

/// The name an action, check or condition is written with (`apply`, `pods-ready`).
fn written_name(value: serde_json::Value) -> String {
    match value {
        serde_json::Value::String(name) => name,
        serde_json::Value::Object(map) => map.keys().next().cloned().unwrap_or_default(),
        other => panic!("not a named item: {other}"),
    }
}

#[test]
fn every_action_check_and_condition_used_is_documented() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/lessons/README.md"))
        .expect("lessons/README.md exists");
    let mut names = BTreeSet::new();
    for l in model::all().unwrap() {
        for s in &l.steps {
            names.insert(written_name(serde_json::to_value(&s.action).unwrap()));
            let conditions = match &s.action {
                Action::Wait { until, .. } => vec![until],
                Action::Load {
                    until: Some(until), ..
                } => vec![until],
                _ => vec![],
            };
            for c in conditions {
                names.insert(written_name(serde_json::to_value(c).unwrap()));
            }
            if let Action::Check { checks, .. } = &s.action {
                for c in checks {
                    names.insert(written_name(serde_json::to_value(c).unwrap()));
                }
            }
        }
    }
    for name in &names {
        assert!(
            readme.contains(&format!("| `{name}` |")),
            "{name} is used by a lesson but not documented in lessons/README.md"
        );
    }
}

#[test]
fn every_embedded_manifest_parses_into_namespace_free_objects() {
    for name in manifests::names() {
        let objects = manifests::objects(name, None).unwrap_or_else(|e| panic!("{e}"));
        assert!(!objects.is_empty(), "{name} holds objects");
        for o in objects {
            assert!(o.types.is_some(), "{name}: apiVersion and kind");
            assert!(o.metadata.name.is_some(), "{name}: metadata.name");
            assert!(
                o.metadata.namespace.is_none(),
                "{name}: no metadata.namespace (hk8s picks it)"
            );
        }
    }
}

#[test]
fn registry_rewrites_only_our_images() {
    let text = "spec:\n  containers:\n    - name: a\n      image: hello-k8s-api:0.1.0\n    - name: r\n      image: redis:7.2.4\n";
    let out = manifests::rewrite_images(text, Some("localhost:5000/"));
    assert!(
        out.contains("image: localhost:5000/hello-k8s-api:0.1.0"),
        "{out}"
    );
    assert!(out.contains("image: redis:7.2.4"), "{out}");
    assert_eq!(manifests::rewrite_images(text, None), text);
}

#[test]
fn a_broken_lesson_file_names_the_file_and_the_step() {
    let bad = "---\nformat: 1\nnumber: 9\nslug: x\ntitle: X\nsummary: s\n---\n## Oops\n\n```step\napply:\n  manifestz: [a]\n```\n";
    let err = model::parse("99-x.md", bad).unwrap_err().to_string();
    assert!(err.contains("99-x.md"), "{err}");
    assert!(err.contains("Oops"), "{err}");
    assert!(err.contains("manifestz"), "{err}");
    let err = model::parse("98-y.md", "no front matter")
        .unwrap_err()
        .to_string();
    assert!(err.contains("front matter"), "{err}");
}

#[test]
fn steps_in_one_section_share_its_prose_in_order() {
    let text = "---\nformat: 1\nnumber: 0\nslug: s\ntitle: T\nsummary: s\n---\nIntro.\n## Apply\nWhy.\n```step\ncreate-namespace\n```\n```step\nwait:\n  for: namespace-active\n```\nAfter.\n## Done\nBye.\n";
    let lesson = model::parse("t.md", text).unwrap();
    let titles: Vec<&str> = lesson.steps.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Apply",
            "Wait for the namespace to be Active",
            "Apply",
            "Done"
        ]
    );
    assert_eq!(lesson.steps[0].prose, "Why.");
    assert_eq!(lesson.steps[2].prose, "After.");
    assert_eq!(lesson.intro, "Intro.");
}

#[test]
fn every_highlighted_field_exists_in_its_manifest() {
    let ui = hk8s::ui::Ui {
        color: false,
        interactive: false,
        quiet: true,
    };
    for l in model::all().unwrap() {
        for s in &l.steps {
            if let Action::ShowManifest {
                manifest,
                highlight,
                ..
            } = &s.action
            {
                let text = manifests::text(manifest, None).unwrap();
                for field in highlight {
                    let shown = manifests::highlighted(&text, std::slice::from_ref(field), &ui);
                    assert!(
                        shown.lines().any(|line| line.starts_with("» ")),
                        "lesson {} highlights {field} in {manifest}, which has no such field",
                        l.number
                    );
                }
            }
        }
    }
}

#[test]
fn highlighting_marks_the_field_and_its_subtree_only() {
    let ui = hk8s::ui::Ui {
        color: false,
        interactive: false,
        quiet: true,
    };
    let text = manifests::text("05-frontend-deployment.yml", None).unwrap();
    let shown = manifests::highlighted(
        &text,
        &["spec.template.spec.containers.image".to_string()],
        &ui,
    );
    let marked: Vec<&str> = shown.lines().filter(|l| l.starts_with("» ")).collect();
    assert_eq!(marked.len(), 1, "{shown}");
    assert!(
        marked[0].contains("image: hello-k8s-frontend:0.1.0"),
        "{shown}"
    );
    let shown = manifests::highlighted(&text, &["spec.selector".to_string()], &ui);
    let marked: Vec<&str> = shown.lines().filter(|l| l.starts_with("» ")).collect();
    assert!(
        marked.len() >= 3 && marked.iter().all(|l| !l.contains("image")),
        "{shown}"
    );
}
