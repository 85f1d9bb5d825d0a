//! How `runnel consume` prints a record: a `--format` template (one line per record) or a JSON
//! object per line (`--json`).

use rdkafka::message::{Headers, Message};
use serde_json::{json, Map, Value};

/// Fields a template can name, as `{field}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Topic,
    Partition,
    Offset,
    Timestamp,
    Key,
    Value,
    Headers,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(Field),
}

/// A parsed `--format` template such as `{partition}:{offset} {key}={value}`. Escapes: `\n`,
/// `\t`, `\\`, `{{` and `}}`. A newline ends every record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template(Vec<Part>);

pub const TEMPLATE_HELP: &str = "fields: {topic} {partition} {offset} {timestamp} {key} {value} {headers}; escapes: \\n \\t {{ }}";

impl Template {
    /// Parses a template; unknown fields and unbalanced braces are errors.
    pub fn parse(s: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, chars.peek().copied()) {
                ('{', Some('{')) | ('}', Some('}')) => text.push(chars.next().expect("peeked")),
                ('\\', Some('n')) => text.push(skip(&mut chars, '\n')),
                ('\\', Some('t')) => text.push(skip(&mut chars, '\t')),
                ('\\', Some('\\')) => text.push(skip(&mut chars, '\\')),
                ('{', _) => {
                    let name = field_name(&mut chars)?;
                    let field = field_named(&name)
                        .ok_or_else(|| format!("unknown field '{{{name}}}' ({TEMPLATE_HELP})"))?;
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Field(field));
                }
                ('}', _) => return Err(format!("unmatched '}}' ({TEMPLATE_HELP})")),
                _ => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template(parts))
    }

    /// Appends the record's line (with its newline) to `out`. Keys and values are written as
    /// they are, so binary data survives `runnel consume ... > file`.
    pub fn render<M: Message>(&self, m: &M, out: &mut Vec<u8>) {
        for part in &self.0 {
            match part {
                Part::Text(t) => out.extend_from_slice(t.as_bytes()),
                Part::Field(Field::Topic) => out.extend_from_slice(m.topic().as_bytes()),
                Part::Field(Field::Partition) => {
                    out.extend_from_slice(m.partition().to_string().as_bytes())
                }
                Part::Field(Field::Offset) => {
                    out.extend_from_slice(m.offset().to_string().as_bytes())
                }
                Part::Field(Field::Timestamp) => {
                    let ts = m.timestamp().to_millis();
                    out.extend_from_slice(ts.map_or("-".to_string(), |t| t.to_string()).as_bytes());
                }
                Part::Field(Field::Key) => out.extend_from_slice(m.key().unwrap_or_default()),
                Part::Field(Field::Value) => out.extend_from_slice(m.payload().unwrap_or_default()),
                Part::Field(Field::Headers) => out.extend_from_slice(headers_text(m).as_bytes()),
            }
        }
        out.push(b'\n');
    }
}

/// The name up to the closing `}` (consumed).
fn field_name(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<String, String> {
    let mut name = String::new();
    for c in chars.by_ref() {
        if c == '}' {
            return Ok(name);
        }
        name.push(c);
    }
    Err(format!("unclosed '{{' ({TEMPLATE_HELP})"))
}

fn skip(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, replacement: char) -> char {
    chars.next();
    replacement
}

fn field_named(name: &str) -> Option<Field> {
    Some(match name {
        "topic" => Field::Topic,
        "partition" => Field::Partition,
        "offset" => Field::Offset,
        "timestamp" => Field::Timestamp,
        "key" => Field::Key,
        "value" => Field::Value,
        "headers" => Field::Headers,
        _ => return None,
    })
}

fn lossy(bytes: Option<&[u8]>) -> Option<String> {
    bytes.map(|b| String::from_utf8_lossy(b).into_owned())
}

/// Headers as `k1=v1,k2=v2` (a null value prints as just `k`).
fn headers_text<M: Message>(m: &M) -> String {
    let Some(headers) = m.headers() else {
        return String::new();
    };
    headers
        .iter()
        .map(|h| match lossy(h.value) {
            Some(v) => format!("{}={v}", h.key),
            None => h.key.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The record as one JSON object: strings are UTF-8 (invalid bytes replaced), absent key,
/// value or timestamp are `null`, headers are `[{"key":..,"value":..}]` in wire order.
pub fn record_json<M: Message>(m: &M) -> Value {
    let headers: Vec<Value> = m
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| json!({"key": h.key, "value": lossy(h.value)}))
                .collect()
        })
        .unwrap_or_default();
    let mut obj = Map::new();
    obj.insert("topic".into(), json!(m.topic()));
    obj.insert("partition".into(), json!(m.partition()));
    obj.insert("offset".into(), json!(m.offset()));
    obj.insert("timestamp".into(), json!(m.timestamp().to_millis()));
    obj.insert("key".into(), json!(lossy(m.key())));
    obj.insert("value".into(), json!(lossy(m.payload())));
    obj.insert("headers".into(), Value::Array(headers));
    Value::Object(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};

    fn message() -> OwnedMessage {
        let headers = OwnedHeaders::new().insert(Header {
            key: "h",
            value: Some("1"),
        });
        OwnedMessage::new(
            Some(b"v".to_vec()),
            Some(b"k".to_vec()),
            "t".into(),
            Timestamp::CreateTime(7),
            2,
            9,
            Some(headers),
        )
    }

    #[test]
    fn templates_render_fields_and_escapes() {
        let t = Template::parse(
            "{topic}/{partition}@{offset} {timestamp}\\t{key}={value} [{headers}] {{x}}",
        )
        .unwrap();
        let mut out = Vec::new();
        t.render(&message(), &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "t/2@9 7\tk=v [h=1] {x}\n");
    }

    #[test]
    fn templates_reject_unknown_fields() {
        assert!(Template::parse("{nope}")
            .unwrap_err()
            .contains("unknown field '{nope}'"));
        assert!(Template::parse("a}b").is_err());
        assert!(Template::parse("{value").is_err());
    }

    #[test]
    fn json_records_have_every_field() {
        let v = record_json(&message());
        assert_eq!(
            v,
            json!({"topic":"t","partition":2,"offset":9,"timestamp":7,"key":"k","value":"v",
                   "headers":[{"key":"h","value":"1"}]})
        );
    }
}
