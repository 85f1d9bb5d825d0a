//! Kafka's `server.properties` syntax: `key=value` (or `key: value`) lines, `#` and `!`
//! comments, blank lines ignored. Values are trimmed; the same key twice keeps the last.

use std::fmt;

/// A syntax error, with the 1-based line number for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub text: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: expected key=value, found '{}'",
            self.line, self.text
        )
    }
}

/// Parses properties text into `(key, value)` pairs in file order.
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, SyntaxError> {
    let mut pairs = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        pairs.push(parse_pair(line).ok_or_else(|| SyntaxError {
            line: index + 1,
            text: line.to_string(),
        })?);
    }
    Ok(pairs)
}

/// Parses one `key=value` assignment, as given to `--override`.
pub fn parse_pair(text: &str) -> Option<(String, String)> {
    let split = text.find(['=', ':'])?;
    let key = text[..split].trim();
    if key.is_empty() {
        return None;
    }
    Some((key.to_string(), text[split + 1..].trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_comments_blanks_and_both_separators() {
        let text = "# broker\n\nnum.partitions=3\n! old style\nlog.dirs : /tmp/x\n";
        assert_eq!(
            parse_properties(text).unwrap(),
            vec![
                ("num.partitions".into(), "3".into()),
                ("log.dirs".into(), "/tmp/x".into())
            ]
        );
    }

    #[test]
    fn reports_the_line_of_a_bad_assignment() {
        let error = parse_properties("a=1\njust words\n").unwrap_err();
        assert_eq!(error.line, 2);
        assert!(parse_pair("=3").is_none());
    }
}
