//! Kafka's topic name rules: 1 to 249 characters of ASCII letters, digits, `.`, `_` and `-`,
//! and not `.` or `..` (they would be directory names with a meaning).

/// The longest topic name Kafka allows: 255 minus room for `-<partition>` and suffixes in the
/// partition directory name.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Checks a topic name, returning the reason for INVALID_TOPIC_EXCEPTION when it is not legal.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("Topic name cannot be '{name}'"));
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(format!(
            "Topic name is {} characters long, the limit is {MAX_TOPIC_NAME_LEN}",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "Topic name '{name}' contains '{bad}'; legal characters are ASCII letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_legal_names() {
        for name in [
            "a",
            "orders.v2",
            "__consumer_offsets",
            "A-b_c.9",
            &"x".repeat(249),
        ] {
            assert!(validate_topic_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn rejects_illegal_names() {
        for name in ["", ".", "..", "a b", "foo$", "ü", "a/b", &"x".repeat(250)] {
            assert!(validate_topic_name(name).is_err(), "{name}");
        }
    }
}
