//! Reading text files: UTF-8 checked, with the file and line of any problem.

use std::path::Path;

use crate::{Error, Result};

fn load_err(path: &Path, message: String) -> Error {
    Error::Load {
        path: path.to_path_buf(),
        message,
    }
}

/// The whole file as UTF-8 text. A file that is not UTF-8 is an error naming the first bad line
/// (1-based) and byte; an empty file is an error too.
pub fn read_text(path: impl AsRef<Path>) -> Result<String> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| load_err(path, e.to_string()))?;
    if bytes.is_empty() {
        return Err(load_err(path, "the file is empty".into()));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        let column = at - bytes[..at].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1) + 1;
        load_err(
            path,
            format!("line {line} is not valid UTF-8 (byte {column} of the line)"),
        )
    })
}

/// The file's non-empty lines (trailing `\r` removed), each with its 1-based line number.
pub fn read_lines(path: impl AsRef<Path>) -> Result<Vec<(usize, String)>> {
    let path = path.as_ref();
    let text = read_text(path)?;
    let lines: Vec<(usize, String)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r').to_string()))
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    if lines.is_empty() {
        return Err(load_err(path, "the file has no non-empty line".into()));
    }
    Ok(lines)
}

/// `(text, label index)` pairs from a file of `label<TAB>text` lines; a label outside `labels`
/// is an error naming the file and line.
pub fn read_labeled_tsv(path: impl AsRef<Path>, labels: &[&str]) -> Result<Vec<(String, usize)>> {
    let path = path.as_ref();
    read_lines(path)?
        .into_iter()
        .map(|(n, line)| {
            let (label, text) = line.split_once('\t').ok_or_else(|| {
                load_err(path, format!("line {n}: expected `label<TAB>text`, found no tab"))
            })?;
            let index = labels.iter().position(|l| *l == label).ok_or_else(|| {
                load_err(
                    path,
                    format!("line {n}: label `{label}` is not one of {labels:?}"),
                )
            })?;
            Ok((text.to_string(), index))
        })
        .collect()
}

/// `(source, target)` pairs from a tab-separated file (the first two columns; further columns,
/// such as the Tatoeba attribution, are ignored). A line with fewer than two columns or an empty
/// side is an error naming the file and line.
pub fn read_pairs(path: impl AsRef<Path>) -> Result<Vec<(String, String)>> {
    let path = path.as_ref();
    read_lines(path)?
        .into_iter()
        .map(|(n, line)| {
            let mut cols = line.split('\t');
            match (cols.next(), cols.next()) {
                (Some(s), Some(t)) if !s.trim().is_empty() && !t.trim().is_empty() => {
                    Ok((s.to_string(), t.to_string()))
                }
                _ => Err(load_err(path, format!("line {n}: expected `source<TAB>target`"))),
            }
        })
        .collect()
}

/// Splits token ids into a training and a validation part: the last `valid_fraction` of the
/// corpus is held out (nanoGPT's 90/10 split with 0.1).
pub fn split_tail<T: Clone>(items: &[T], valid_fraction: f64) -> Result<(Vec<T>, Vec<T>)> {
    if !(0.0..1.0).contains(&valid_fraction) {
        return Err(Error::Data(format!(
            "valid_fraction must be in [0, 1), found {valid_fraction}"
        )));
    }
    let cut = items.len() - (items.len() as f64 * valid_fraction).round() as usize;
    Ok((items[..cut].to_vec(), items[cut..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_name_the_line() {
        let dir = std::env::temp_dir().join(format!("ember-text-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("bad.txt");
        std::fs::write(&f, b"ok line\nsecond \xff line\n").unwrap();
        let e = read_text(&f).unwrap_err().to_string();
        assert!(
            e.contains("line 2") && e.contains("bad.txt") && e.contains("byte 8"),
            "{e}"
        );
        std::fs::write(&f, b"").unwrap();
        assert!(read_text(&f).unwrap_err().to_string().contains("empty"));
        std::fs::write(&f, "pos\tgood film\nneutral\tmeh\n").unwrap();
        let e = read_labeled_tsv(&f, &["neg", "pos"]).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("neutral"), "{e}");
        std::fs::write(&f, "Go.\tVa !\tCC-BY 2.0 (France)\n\nHi.\tSalut !\nbroken\n").unwrap();
        let e = read_pairs(&f).unwrap_err().to_string();
        assert!(e.contains("line 4"), "{e}");
        std::fs::write(&f, "Go.\tVa !\tCC-BY\r\nHi.\tSalut !\n").unwrap();
        assert_eq!(
            read_pairs(&f).unwrap()[0],
            ("Go.".to_string(), "Va !".to_string())
        );
        let (a, b) = split_tail(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.1).unwrap();
        assert_eq!((a.len(), b), (9, vec![10]));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
