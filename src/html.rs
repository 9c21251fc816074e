//! The text a reader sees in the frontend's HTML: for messages read off its page and for
//! error pages quoted in messages. Tags are dropped by hand (the page is our own, simple
//! markup); entities are decoded by `html-escape`.

/// Elements whose content is not text a reader sees.
const HIDDEN: [&str; 3] = ["style", "script", "title"];

/// The visible text: tags dropped (each a word break), hidden elements skipped,
/// whitespace collapsed, entities decoded.
pub(crate) fn text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        out.push(' ');
        let tail = &rest[start..];
        let hidden_end = HIDDEN
            .iter()
            .find(|name| tail[1..].starts_with(**name))
            .and_then(|name| {
                let close = format!("</{name}>");
                tail.find(&close).map(|i| i + close.len())
            });
        rest = match hidden_end {
            Some(end) => &tail[end..],
            None => tail.find('>').map_or("", |i| &tail[i + 1..]),
        };
    }
    out.push_str(rest);
    let words: Vec<&str> = out.split_whitespace().collect();
    html_escape::decode_html_entities(&words.join(" ")).into_owned()
}

/// The visible text, cut to one short line for an error message.
pub(crate) fn snippet(html: &str) -> String {
    text(html).chars().take(200).collect()
}

/// The page's list items (`<li>`), each as `text (time)` when it holds a `<p>` and a time,
/// as the frontend lists its messages.
pub(crate) fn list_items(page: &str) -> Vec<String> {
    page.split("<li")
        .skip(1)
        .filter_map(|chunk| {
            let body = chunk.split_once('>')?.1;
            let item = body.split("</li>").next()?;
            let (text_part, time_part) = item.split_once("</p>").unwrap_or((item, ""));
            let (words, time) = (text(text_part), text(time_part));
            match (words.is_empty(), time.is_empty()) {
                (true, _) => None,
                (false, true) => Some(words),
                (false, false) => Some(format!("{words} ({time})")),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_off_the_page_keep_text_and_time_apart_and_unescaped() {
        let page = "<ol class=\"messages\"><li><p>a &lt;b&gt; &amp; c</p><time datetime=\"x\">\
                    2026-11-25 15:54:07 UTC</time></li><li><p>  two\n words </p></li></ol>";
        assert_eq!(
            list_items(page),
            ["a <b> & c (2026-11-25 15:54:07 UTC)", "two words"]
        );
    }

    #[test]
    fn error_pages_read_as_their_visible_text() {
        let page = "<html><head><title>503</title><style>p{color:red}</style></head>\
                    <body><h1>Service   Unavailable</h1><p>redis &amp; api are down</p>\
                    <script>alert(1)</script></body></html>";
        assert_eq!(text(page), "Service Unavailable redis & api are down");
        assert_eq!(snippet(&"x".repeat(300)).len(), 200);
    }
}
