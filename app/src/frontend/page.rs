//! The HTML page, rendered into one string with every user-supplied text escaped.

use html_escape::{encode_double_quoted_attribute_to_string, encode_text_to_string};

use crate::message::{MAX_MESSAGE_BYTES, Message};

/// The stylesheet, embedded so the page works offline.
pub const STYLE: &str = include_str!("style.css");

/// What the page shows.
pub struct Page<'a> {
    /// The pod serving the page.
    pub pod: &'a str,
    /// The API pod that answered, if it did.
    pub api_pod: Option<&'a str>,
    /// The messages, or why they could not be loaded.
    pub messages: Result<&'a [Message], &'a str>,
    /// A problem with the submitted message, shown above the form.
    pub notice: Option<&'a str>,
    /// Text to put back in the form after a refused submission, so nothing is lost.
    pub draft: Option<&'a str>,
    /// The form's idempotency key: sending the same form twice stores one message.
    pub key: &'a str,
}

fn esc(out: &mut String, s: &str) {
    encode_text_to_string(s, out);
}

fn nice_time(rfc3339: &str) -> String {
    rfc3339
        .parse::<jiff::Timestamp>()
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| rfc3339.to_owned())
}

impl Page<'_> {
    /// The full HTML document.
    pub fn render(&self) -> String {
        let mut o = String::with_capacity(4096 + STYLE.len());
        o.push_str(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>hello-k8s</title><style>",
        );
        o.push_str(STYLE);
        o.push_str("</style></head><body><main><h1>hello-k8s</h1>");
        if let Some(n) = self.notice {
            o.push_str("<p class=\"notice\" role=\"alert\">");
            esc(&mut o, n);
            o.push_str("</p>");
        }
        o.push_str(
            "<form method=\"post\" action=\"/\"><label for=\"msg\">Leave us a kind message</label>",
        );
        o.push_str("<input type=\"hidden\" name=\"key\" value=\"");
        esc(&mut o, self.key);
        o.push_str("\">");
        o.push_str(&format!(
            "<textarea id=\"msg\" name=\"msg\" maxlength=\"{MAX_MESSAGE_BYTES}\" required>"
        ));
        if let Some(d) = self.draft {
            esc(&mut o, d);
        }
        o.push_str(
            "</textarea><button type=\"submit\">Send</button></form><h2>Latest messages</h2>",
        );
        match self.messages {
            Err(why) => {
                o.push_str("<p class=\"notice error\" role=\"alert\">");
                esc(&mut o, why);
                o.push_str("</p>");
            }
            Ok([]) => o.push_str("<p class=\"empty\">No messages yet. Be the first!</p>"),
            Ok(msgs) => {
                o.push_str("<ol class=\"messages\">");
                for m in msgs {
                    o.push_str("<li><p>");
                    esc(&mut o, &m.text);
                    o.push_str("</p><time datetime=\"");
                    encode_double_quoted_attribute_to_string(&m.time, &mut o);
                    o.push_str("\">");
                    esc(&mut o, &nice_time(&m.time));
                    o.push_str("</time></li>");
                }
                o.push_str("</ol>");
            }
        }
        o.push_str("<footer>Page served by pod <code class=\"pod\">");
        esc(&mut o, self.pod);
        o.push_str("</code>");
        match self.api_pod {
            Some(a) => {
                o.push_str(" · messages from API pod <code class=\"api-pod\">");
                esc(&mut o, a);
                o.push_str("</code>");
            }
            None => o.push_str(" · API not responding"),
        }
        o.push_str("</footer></main></body></html>");
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_message_text_and_pods() {
        let msgs = [Message {
            id: 1,
            text: "<script>alert(1)</script> & \"x\"".into(),
            time: "2026-01-02T03:04:05Z".into(),
        }];
        let html = Page {
            pod: "<b>pod</b>",
            api_pod: Some("api-1"),
            messages: Ok(&msgs),
            notice: None,
            draft: Some("</textarea><script>"),
            key: "k-1",
        }
        .render();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp;"));
        assert!(html.contains("&lt;b&gt;pod&lt;/b&gt;"));
        assert!(html.contains("2026-01-02 03:04:05 UTC"));
    }
}
