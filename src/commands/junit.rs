//! `hk8s verify --output junit`: one testsuite per lesson, one testcase per check, written
//! with quick-xml in the layout CI tools show (a testcase and its verdict on one line).

use super::verify::Report;
use crate::lesson::model::Lesson;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

/// The report as a JUnit XML document.
pub(super) fn document(report: &Report, lessons: &[Lesson]) -> String {
    let mut xml = Writer::new(Vec::new());
    write(&mut xml, report, lessons).expect("writing XML to memory cannot fail");
    String::from_utf8(xml.into_inner()).expect("quick-xml writes UTF-8")
}

fn write(xml: &mut Writer<Vec<u8>>, report: &Report, lessons: &[Lesson]) -> std::io::Result<()> {
    xml.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let suites = BytesStart::new("testsuites").with_attributes([
        ("name", "hk8s verify"),
        ("tests", report.checks.len().to_string().as_str()),
        ("failures", report.summary.failed.to_string().as_str()),
        ("skipped", report.summary.skipped.to_string().as_str()),
    ]);
    newline(xml, 0);
    xml.write_event(Event::Start(suites))?;
    for lesson in lessons {
        let cases: Vec<_> = report
            .checks
            .iter()
            .filter(|c| c.lesson == lesson.number)
            .collect();
        let suite = BytesStart::new("testsuite").with_attributes([
            (
                "name",
                clean(&format!("lesson {}: {}", lesson.number, lesson.title)).as_str(),
            ),
            ("tests", cases.len().to_string().as_str()),
            (
                "failures",
                cases
                    .iter()
                    .filter(|c| !c.passed)
                    .count()
                    .to_string()
                    .as_str(),
            ),
            (
                "skipped",
                cases
                    .iter()
                    .filter(|c| c.skipped)
                    .count()
                    .to_string()
                    .as_str(),
            ),
        ]);
        newline(xml, 1);
        xml.write_event(Event::Start(suite))?;
        for case in cases {
            newline(xml, 2);
            let classname = format!("hk8s.lesson{}", lesson.number);
            let testcase = BytesStart::new("testcase").with_attributes([
                ("classname", classname.as_str()),
                ("name", &clean(&case.name)),
            ]);
            xml.write_event(Event::Start(testcase))?;
            let detail = clean(&case.detail);
            if case.skipped {
                let skipped =
                    BytesStart::new("skipped").with_attributes([("message", detail.as_str())]);
                xml.write_event(Event::Empty(skipped))?;
            } else if case.passed {
                element(xml, BytesStart::new("system-out"), &detail)?;
            } else {
                let first_line = detail.lines().next().unwrap_or_default();
                let failure = BytesStart::new("failure").with_attributes([("message", first_line)]);
                element(xml, failure, &detail)?;
            }
            xml.write_event(Event::End(BytesEnd::new("testcase")))?;
        }
        newline(xml, 1);
        xml.write_event(Event::End(BytesEnd::new("testsuite")))?;
    }
    newline(xml, 0);
    xml.write_event(Event::End(BytesEnd::new("testsuites")))
}

/// `<name …>text</name>`.
fn element(xml: &mut Writer<Vec<u8>>, start: BytesStart<'_>, text: &str) -> std::io::Result<()> {
    let end = BytesEnd::new(String::from_utf8_lossy(start.name().as_ref()).into_owned());
    xml.write_event(Event::Start(start))?;
    xml.write_event(Event::Text(BytesText::new(text)))?;
    xml.write_event(Event::End(end))
}

/// A line break and two spaces per level, between elements.
fn newline(xml: &mut Writer<Vec<u8>>, level: usize) {
    let inner = xml.get_mut();
    inner.push(b'\n');
    inner.extend(std::iter::repeat_n(b' ', level * 2));
}

/// The text without the control characters XML 1.0 does not allow (tabs and newlines stay).
fn clean(text: &str) -> String {
    text.chars()
        .filter(|c| *c >= ' ' || matches!(c, '\n' | '\t'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::verify::{Report, Summary};
    use crate::checks::CheckResult;
    use crate::lesson::model;

    fn check(name: &str, passed: bool, skipped: bool, detail: &str) -> CheckResult {
        CheckResult {
            lesson: 4,
            name: name.into(),
            passed,
            skipped,
            detail: detail.into(),
        }
    }

    #[test]
    fn passed_skipped_and_failed_checks_each_have_their_element_escaped() {
        let report = Report {
            cluster: "c".into(),
            namespace: "demo".into(),
            applied: false,
            passed: false,
            summary: Summary {
                passed: 1,
                failed: 1,
                skipped: 1,
            },
            checks: vec![
                check("ok", true, false, "a < b & \"c\""),
                check("later", true, true, "only 'mid' lesson"),
                check("bad", false, false, "first\u{1b} line\nsecond line"),
            ],
        };
        let lesson = model::get(4).unwrap();
        let xml = super::document(&report, std::slice::from_ref(&lesson));
        let expected = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>
<testsuites name=\"hk8s verify\" tests=\"3\" failures=\"1\" skipped=\"1\">
  <testsuite name=\"lesson 4: {title}\" tests=\"3\" failures=\"1\" skipped=\"1\">
    <testcase classname=\"hk8s.lesson4\" name=\"ok\"><system-out>a &lt; b &amp; &quot;c&quot;</system-out></testcase>
    <testcase classname=\"hk8s.lesson4\" name=\"later\"><skipped message=\"only &apos;mid&apos; lesson\"/></testcase>
    <testcase classname=\"hk8s.lesson4\" name=\"bad\"><failure message=\"first line\">first line
second line</failure></testcase>
  </testsuite>
</testsuites>",
            title = lesson.title
        );
        assert_eq!(xml, expected);
    }
}
