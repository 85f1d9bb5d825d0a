//! Output of the CLI tools: aligned text tables for people, JSON (`--json`) for programs.
//! Everything goes to stdout; messages and errors go to stderr.

use std::io::Write;

use serde_json::Value;

/// A text table: a header row and rows of cells, printed with columns padded to their widest
/// cell and separated by two spaces.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len(), "one cell per column");
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}  "));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Writes `text` to stdout. A closed pipe (`runnel ... | head`) is not an error.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Prints a JSON document, pretty, followed by a newline.
pub fn print_json(value: &Value) -> anyhow::Result<()> {
    print(&format!("{}\n", serde_json::to_string_pretty(value)?))
}

/// "-" for a missing number, else the number.
pub fn opt_num(n: Option<i64>) -> String {
    n.map_or_else(|| "-".to_string(), |n| n.to_string())
}

/// Comma-separated list of numbers.
pub fn join_ids(ids: &[i32]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_are_aligned() {
        let mut t = Table::new(&["TOPIC", "PARTITIONS"]);
        t.row(vec!["a-long-name".into(), "3".into()]);
        t.row(vec!["b".into(), "12".into()]);
        assert_eq!(
            t.render(),
            "TOPIC        PARTITIONS\na-long-name  3\nb            12\n"
        );
    }
}
