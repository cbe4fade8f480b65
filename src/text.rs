//! Untrusted text made safe for a terminal or a log line: control
//! characters (C0, DEL, C1) and bidirectional overrides are shown as
//! `\u{…}` escapes instead of being written raw.
//!
//! Every human-facing output of values that come from audit events or from
//! a remote server goes through [`plain`] (or [`plain_lines`] where line
//! breaks are wanted); Slack texts through [`slack_plain`] or [`mrkdwn`].

use std::borrow::Cow;

/// True for characters that must not reach a terminal raw.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200E}' | '\u{200F}'          // left-to-right / right-to-left marks
            | '\u{202A}'..='\u{202E}'        // embeddings and overrides
            | '\u{2066}'..='\u{2069}'        // isolates
            | '\u{061C}'                     // Arabic letter mark
            | '\u{2028}' | '\u{2029}'        // line and paragraph separators
            | '\u{FEFF}'                     // zero-width no-break space
        )
}

/// `text` on one line with every unsafe character escaped (a line break
/// or tab included), borrowing when there is nothing to escape.
pub fn plain(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// Like [`plain`], but line breaks and tabs are kept.
pub fn plain_lines(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

fn escape(text: &str, keep_lines: bool) -> Cow<'_, str> {
    let bad = |c: char| unsafe_char(c) && !(keep_lines && matches!(c, '\n' | '\t'));
    if !text.chars().any(bad) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if bad(c) {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Untrusted text for a Slack `plain_text` object: control and bidi
/// characters escaped as in [`plain_lines`], and `&`, `<`, `>` written as
/// the entities Slack asks for, so no `<!channel>`, `<@U…>` or `<url|label>`
/// can form.
pub fn slack_plain(text: &str) -> String {
    entities(&plain_lines(text), false)
}

/// Untrusted text for HTML (the status page): control and bidi characters
/// escaped as in [`plain`], and `&`, `<`, `>`, `"` and `'` as entities.
pub fn html(text: &str) -> String {
    entities(&plain(text), true)
}

/// `text` with `&`, `<` and `>` (and, with `quotes`, `"` and `'`) written
/// as entities.
fn entities(text: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if quotes => out.push_str("&quot;"),
            '\'' if quotes => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Untrusted text for Slack `mrkdwn`: as [`slack_plain`], and the marks
/// that would start formatting (`*`, `_`, `~`, `` ` ``) replaced by
/// look-alikes that Slack does not read as marks. Slack has no escape for
/// them; values shown exactly go in `plain_text` instead.
pub fn mrkdwn(text: &str) -> String {
    slack_plain(text)
        .chars()
        .map(|c| match c {
            '*' => '\u{2217}',
            '_' => '\u{02CD}',
            '~' => '\u{223C}',
            '`' => '\u{02CB}',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        assert!(matches!(plain("alice@example.com"), Cow::Borrowed(_)));
        assert_eq!(plain("a\u{1b}[31mred\u{7}"), "a\\u{1b}[31mred\\u{7}");
        assert_eq!(
            plain("osc \u{1b}]0;title\u{9c}"),
            "osc \\u{1b}]0;title\\u{9c}"
        );
        assert_eq!(plain("evil\u{202E}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(plain("two\nlines"), "two\\nlines");
        assert_eq!(plain_lines("two\nlines\u{1b}"), "two\nlines\\u{1b}");
    }

    #[test]
    fn slack_text_cannot_mention_link_or_format() {
        let evil = "<!channel> <@U123> <#C1> <http://x|click> *b* _i_ ~s~ `c` & \u{202E}";
        let p = slack_plain(evil);
        assert!(!p.contains('<') && !p.contains('>'), "{p}");
        assert!(p.contains("&lt;!channel&gt;") && p.contains("&amp;"), "{p}");
        assert!(p.contains("\\u{202e}"), "{p}");
        let m = mrkdwn(evil);
        for c in ['<', '>', '*', '_', '~', '`'] {
            assert!(!m.contains(c), "{c} in {m}");
        }
    }
}
