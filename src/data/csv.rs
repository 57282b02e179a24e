//! [`read_text_label_csv`]: a CSV file of texts and labels (RFC 4180: quoted fields, doubled
//! quotes, commas and newlines inside quotes), the layout of most classification datasets.

use std::path::Path;

use super::text::read_text;
use crate::{Error, Result};

/// The records of a CSV text: fields split at commas outside quotes; a record ends at a newline
/// outside quotes. Returns `(line of the record's start, fields)`; an unterminated quote is an
/// error naming its line.
fn records(text: &str) -> std::result::Result<Vec<(usize, Vec<String>)>, String> {
    let mut out = Vec::new();
    let (mut fields, mut field) = (Vec::new(), String::new());
    let (mut quoted, mut line, mut start) = (false, 1, 1);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, '\n') => {
                fields.push(std::mem::take(&mut field));
                let record = std::mem::take(&mut fields);
                // A blank line is no record.
                if !(record.len() == 1 && record[0].trim().is_empty()) {
                    out.push((start, record));
                }
                line += 1;
                start = line;
            }
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (_, c) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
        }
    }
    if quoted {
        return Err(format!(
            "the quote opened in the record of line {start} is never closed"
        ));
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        out.push((start, fields));
    }
    Ok(out)
}

/// `(text, label)` pairs from a CSV file whose header names a `text` (or `sentence`) column and
/// a `label` column, in any order and among others. A missing column, a record with too few
/// fields, or an empty text is an [`Error::Load`] naming the file and line.
pub fn read_text_label_csv(path: impl AsRef<Path>) -> Result<Vec<(String, String)>> {
    let path = path.as_ref();
    let fail = |message: String| Error::Load {
        path: path.to_path_buf(),
        message,
    };
    let rows = records(&read_text(path)?).map_err(fail)?;
    let Some(((_, header), rows)) = rows.split_first() else {
        return Err(fail("no header line".into()));
    };
    let column = |names: &[&str]| {
        header
            .iter()
            .position(|h| names.contains(&h.trim().to_lowercase().as_str()))
            .ok_or_else(|| {
                fail(format!(
                    "the header {header:?} has no {} column",
                    names.join(" or ")
                ))
            })
    };
    let (text, label) = (column(&["text", "sentence"])?, column(&["label"])?);
    if rows.is_empty() {
        return Err(fail("no record after the header".into()));
    }
    rows.iter()
        .map(|(line, fields)| {
            let get = |i: usize| {
                fields.get(i).ok_or_else(|| {
                    fail(format!(
                        "line {line}: {} fields, the header has {}",
                        fields.len(),
                        header.len()
                    ))
                })
            };
            let (t, l) = (get(text)?, get(label)?);
            if t.trim().is_empty() || l.trim().is_empty() {
                return Err(fail(format!("line {line}: an empty text or label")));
            }
            Ok((t.clone(), l.trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_commas_newlines_and_doubled_quotes() {
        let text = "label,text\npos,\"good, \"\"really\"\" good\"\r\nneg,\"two\nlines\"\n\nneg,plain\n";
        let rows = records(text).unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[1], (2, vec!["pos".into(), "good, \"really\" good".into()]));
        assert_eq!(rows[2], (3, vec!["neg".into(), "two\nlines".into()]));
        assert_eq!(rows[3], (6, vec!["neg".into(), "plain".into()]));
        assert!(records("a,\"open\n").unwrap_err().contains("line 1"));
    }
}
