//! CEL source as highlighted HTML: every token in a span of its kind, the
//! text escaped like any other.

use maud::{Markup, html};

/// The kinds of token shown differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `input`, `output`, a step's result: the contract's variables.
    Variable,
    /// A field or function name.
    Name,
    /// `true`, `false`, `null`, `in`.
    Keyword,
    /// A quoted string.
    Text,
    /// A number.
    Number,
    /// Operators, brackets, spaces.
    Plain,
}

impl Kind {
    fn class(self) -> &'static str {
        match self {
            Kind::Variable => "cel-var",
            Kind::Name => "cel-name",
            Kind::Keyword => "cel-kw",
            Kind::Text => "cel-str",
            Kind::Number => "cel-num",
            Kind::Plain => "cel-op",
        }
    }
}

/// Splits `source` into tokens with their kinds; concatenated, the tokens
/// are `source` again.
fn tokens(source: &str, variables: &[&str]) -> Vec<(Kind, String)> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let kind = if c == '"' || c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(chars.len());
            Kind::Text
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            Kind::Number
        } else if c.is_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let after_dot = start > 0 && chars[start - 1] == '.';
            if after_dot {
                Kind::Name
            } else if matches!(word.as_str(), "true" | "false" | "null" | "in") {
                Kind::Keyword
            } else if variables.contains(&word.as_str()) {
                Kind::Variable
            } else {
                Kind::Name
            }
        } else {
            while i < chars.len()
                && !(chars[i].is_alphanumeric()
                    || chars[i] == '_'
                    || chars[i] == '"'
                    || chars[i] == '\'')
            {
                i += 1;
            }
            Kind::Plain
        };
        out.push((kind, chars[start..i].iter().collect()));
    }
    out
}

/// `source` highlighted, with `variables` (e.g. `input`, `output`, a
/// flow's step ids) marked as the contract's variables.
pub fn highlight(source: &str, variables: &[&str]) -> Markup {
    html! {
        code.cel {
            @for (kind, text) in tokens(source.trim(), variables) {
                span class=(kind.class()) { (text) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_cover_the_source_and_are_classified() {
        let source = "input.country == 'DE' ? 19 : output.rate_pct in [1, 2]";
        let found = tokens(source, &["input", "output"]);
        let joined: String = found.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(joined, source);
        assert!(found.contains(&(Kind::Variable, "input".into())));
        assert!(found.contains(&(Kind::Name, "country".into())));
        assert!(found.contains(&(Kind::Text, "'DE'".into())));
        assert!(found.contains(&(Kind::Number, "19".into())));
        assert!(found.contains(&(Kind::Keyword, "in".into())));
    }

    #[test]
    fn markup_in_a_condition_is_escaped() {
        let html = highlight("input.x == '<script>alert(1)</script>'", &["input"]).into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }
}
