//! A bound on what a PyTorch pickle would build, checked before burn-store reads it.
//!
//! burn-store's pickle reader builds each object as a Rust value (memo references are copied) and
//! drops it recursively. A small crafted file can therefore abort the process: a list nested a
//! hundred thousand deep overflows the stack while it is dropped, and a few memo references
//! doubled forty times ask for terabytes. `torch.load` refuses such files with an exception. Here
//! the pickle's opcodes are walked first, tracking only the depth and the size of each value as
//! burn-store would build it, and a file past the bounds is an error before burn-store sees it.
//!
//! The walk stops, without an error, at the first opcode it does not know or at bytes that are not
//! a pickle: burn-store then fails on the same bytes, having built only what the walk checked.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// Deeper than any state dict or training checkpoint (they nest a handful of levels).
pub(crate) const MAX_DEPTH: usize = 200;
/// More values than any state dict's structure holds (a few per tensor).
pub(crate) const MAX_VALUES: u64 = 50_000_000;

/// Checks the pickles of the PyTorch file at `path` (the `data.pkl` of a zip checkpoint, else the
/// pickles that start a legacy or plain pickle file).
pub(crate) fn check_file(path: &Path) -> Result<(), String> {
    let mut head = [0u8; 4];
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let n = file.read(&mut head).map_err(|e| e.to_string())?;
    if head[..n] == *b"PK\x03\x04" {
        // Only the pickle is read, not the storages beside it.
        let Ok(mut archive) = zip::ZipArchive::new(std::io::BufReader::new(file)) else {
            return Ok(());
        };
        let name = (0..archive.len()).find_map(|i| {
            let name = archive.by_index(i).ok()?.name().to_string();
            name.ends_with("data.pkl").then_some(name)
        });
        let Some(name) = name else { return Ok(()) };
        let mut pickle = Vec::new();
        if let Ok(mut entry) = archive.by_name(&name) {
            entry.read_to_end(&mut pickle).map_err(|e| e.to_string())?;
        }
        return check_pickles(&pickle, 1);
    }
    // A legacy file is five pickles (magic number, protocol, system info, the object, storage
    // keys) before the raw storages; a plain pickle file is one.
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    check_pickles(&bytes, 5)
}

/// Walks up to `count` pickles laid end to end at the start of `bytes`.
pub(crate) fn check_pickles(bytes: &[u8], count: usize) -> Result<(), String> {
    let mut at = 0;
    for _ in 0..count {
        match walk(bytes, at)? {
            Some(end) => at = end,
            None => break,
        }
    }
    Ok(())
}

/// What burn-store would build for one value: how deep it nests and how many values it holds.
#[derive(Debug, Clone, Copy, Default)]
struct Shape {
    depth: usize,
    values: u64,
}

impl Shape {
    const LEAF: Shape = Shape { depth: 1, values: 1 };

    /// A container of `items`.
    fn of(items: &[Shape]) -> Shape {
        Shape {
            depth: 1 + items.iter().map(|s| s.depth).max().unwrap_or(0),
            values: 1 + items.iter().map(|s| s.values).fold(0u64, u64::saturating_add),
        }
    }

    /// `self` with `items` added (APPEND, SETITEM, BUILD and their kin).
    fn with(self, items: &[Shape]) -> Shape {
        Shape {
            depth: self
                .depth
                .max(1 + items.iter().map(|s| s.depth).max().unwrap_or(0)),
            values: items
                .iter()
                .map(|s| s.values)
                .fold(self.values, u64::saturating_add),
        }
    }
}

enum Slot {
    Mark,
    Value(Shape),
}

/// Walks one pickle from `start`; `Ok(Some(end))` after its STOP, `Ok(None)` where the bytes stop
/// being a pickle the walk knows, `Err` past a bound.
fn walk(bytes: &[u8], start: usize) -> Result<Option<usize>, String> {
    let mut at = start;
    let mut stack: Vec<Slot> = Vec::new();
    let mut memo: HashMap<u64, Shape> = HashMap::new();
    // Reads `n` argument bytes.
    let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
        let end = at.checked_add(n).filter(|&e| e <= bytes.len())?;
        let s = &bytes[*at..end];
        *at = end;
        Some(s)
    };
    let uint = |s: &[u8]| s.iter().rev().fold(0u64, |acc, &b| (acc << 8) | b as u64);
    macro_rules! arg {
        ($n:expr) => {
            match take(&mut at, $n) {
                Some(s) => s,
                None => return Ok(None),
            }
        };
    }
    // A length-prefixed argument: the prefix's bytes, then the data.
    macro_rules! counted {
        ($n:expr) => {{
            let len = uint(arg!($n));
            arg!(usize::try_from(len).unwrap_or(usize::MAX));
        }};
    }
    macro_rules! skip_line {
        () => {{
            match bytes[at.min(bytes.len())..].iter().position(|&b| b == b'\n') {
                Some(p) => at += p + 1,
                None => return Ok(None),
            }
        }};
    }
    let pop = |stack: &mut Vec<Slot>, n: usize| -> Option<Vec<Shape>> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            match stack.pop()? {
                Slot::Value(s) => out.push(s),
                Slot::Mark => return None,
            }
        }
        Some(out)
    };
    let pop_mark = |stack: &mut Vec<Slot>| -> Option<Vec<Shape>> {
        let mut out = Vec::new();
        loop {
            match stack.pop()? {
                Slot::Value(s) => out.push(s),
                Slot::Mark => return Some(out),
            }
        }
    };
    macro_rules! or_stop {
        ($e:expr) => {
            match $e {
                Some(v) => v,
                None => return Ok(None),
            }
        };
    }
    loop {
        let op = *arg!(1).first().unwrap_or(&0);
        let pushed = match op {
            b'.' => return Ok(Some(at)),
            b'(' => {
                stack.push(Slot::Mark);
                None
            }
            b'0' => {
                or_stop!(stack.pop());
                None
            }
            b'1' => {
                or_stop!(pop_mark(&mut stack));
                None
            }
            b'2' => match stack.last() {
                Some(Slot::Value(s)) => Some(*s),
                _ => return Ok(None),
            },
            // Leaves with inline arguments.
            b'F' | b'I' | b'L' | b'S' | b'V' | b'P' => {
                skip_line!();
                Some(Shape::LEAF)
            }
            b'c' => {
                skip_line!();
                skip_line!();
                Some(Shape::LEAF)
            }
            b'J' => {
                arg!(4);
                Some(Shape::LEAF)
            }
            b'K' | 0x82 => {
                arg!(1);
                Some(Shape::LEAF)
            }
            b'M' | 0x83 => {
                arg!(2);
                Some(Shape::LEAF)
            }
            0x84 => {
                arg!(4);
                Some(Shape::LEAF)
            }
            b'G' => {
                arg!(8);
                Some(Shape::LEAF)
            }
            b'N' | 0x88 | 0x89 | b']' | b'}' | b')' | 0x8f | 0x97 => Some(Shape::LEAF),
            b'U' | b'C' | 0x8a | 0x8c => {
                counted!(1);
                Some(Shape::LEAF)
            }
            b'T' | b'X' | b'B' | 0x8b => {
                counted!(4);
                Some(Shape::LEAF)
            }
            0x8d | 0x8e | 0x96 => {
                counted!(8);
                Some(Shape::LEAF)
            }
            0x80 => {
                arg!(1);
                None
            }
            0x95 => {
                arg!(8);
                None
            }
            0x98 => None,
            // Built from popped values.
            b'Q' | 0x85 => Some(Shape::of(&or_stop!(pop(&mut stack, 1)))),
            b'R' | 0x81 | 0x86 | 0x93 => Some(Shape::of(&or_stop!(pop(&mut stack, 2)))),
            0x87 | 0x92 => Some(Shape::of(&or_stop!(pop(&mut stack, 3)))),
            b't' | b'l' | b'd' | b'o' | 0x91 => Some(Shape::of(&or_stop!(pop_mark(&mut stack)))),
            b'i' => {
                skip_line!();
                skip_line!();
                Some(Shape::of(&or_stop!(pop_mark(&mut stack))))
            }
            // Added to the value below.
            b'a' | b'b' | b's' | b'e' | b'u' | 0x90 => {
                let items = match op {
                    b'a' | b'b' => or_stop!(pop(&mut stack, 1)),
                    b's' => or_stop!(pop(&mut stack, 2)),
                    _ => or_stop!(pop_mark(&mut stack)),
                };
                match stack.last_mut() {
                    Some(Slot::Value(s)) => *s = s.with(&items),
                    _ => return Ok(None),
                }
                None
            }
            // The memo: burn-store copies values in and out of it. PUT/GET take a decimal line,
            // BINPUT/BINGET one byte, LONG_BINPUT/LONG_BINGET four, MEMOIZE the next index.
            b'p' | b'q' | b'r' | 0x94 | b'g' | b'h' | b'j' => {
                let index = match op {
                    b'p' | b'g' => {
                        let from = at;
                        skip_line!();
                        let text = String::from_utf8_lossy(&bytes[from..at - 1]).to_string();
                        or_stop!(text.trim().parse::<u64>().ok())
                    }
                    b'q' | b'h' => uint(arg!(1)),
                    b'r' | b'j' => uint(arg!(4)),
                    _ => memo.len() as u64,
                };
                if matches!(op, b'g' | b'h' | b'j') {
                    Some(*or_stop!(memo.get(&index)))
                } else {
                    match stack.last() {
                        Some(Slot::Value(s)) => memo.insert(index, *s),
                        _ => return Ok(None),
                    };
                    None
                }
            }
            _ => return Ok(None),
        };
        if let Some(shape) = pushed {
            stack.push(Slot::Value(shape));
        }
        if let Some(Slot::Value(top)) = stack.last() {
            if top.depth > MAX_DEPTH {
                return Err(format!(
                    "its pickle nests values more than {MAX_DEPTH} deep (a state dict nests a few levels): \
                     a corrupt or hostile file"
                ));
            }
            if top.values > MAX_VALUES {
                return Err(format!(
                    "its pickle would build more than {MAX_VALUES} values (memo references copied): \
                     a corrupt or hostile file"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PROTO 2, then `body`, then STOP.
    fn pickle(body: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 2];
        p.extend_from_slice(body);
        p.push(b'.');
        p
    }

    #[test]
    fn a_deep_list_is_refused() {
        // [[[...]]] 5000 deep: EMPTY_LIST x n, then APPEND x (n-1).
        let n = 5000;
        let mut body = vec![b']'; n];
        body.extend(std::iter::repeat_n(b'a', n - 1));
        let err = check_pickles(&pickle(&body), 1).unwrap_err();
        assert!(err.contains("deep"), "{err}");
        // A shallow one passes.
        let mut body = vec![b']'; 10];
        body.extend(std::iter::repeat_n(b'a', 9));
        check_pickles(&pickle(&body), 1).unwrap();
    }

    #[test]
    fn depth_built_through_the_memo_with_a_small_stack_is_refused() {
        // l0 = []; memo; then repeatedly: l = [memo[-1]]; memo; pop — the stack stays two deep.
        let mut body = vec![b']', 0x94];
        for i in 0..300u32 {
            body.extend_from_slice(b"]j");
            body.extend_from_slice(&i.to_le_bytes());
            body.extend_from_slice(&[b'a', 0x94, b'0']);
        }
        let err = check_pickles(&pickle(&body), 1).unwrap_err();
        assert!(err.contains("deep"), "{err}");
    }

    #[test]
    fn memo_doubling_is_refused() {
        // x = (); then 40 times: x = (x, x) through the memo.
        let mut body = vec![b')', 0x94];
        for i in 0..40u8 {
            body.extend_from_slice(&[b'h', i, b'h', i, 0x86, 0x94]);
        }
        let err = check_pickles(&pickle(&body), 1).unwrap_err();
        assert!(err.contains("values"), "{err}");
    }

    #[test]
    fn real_torch_checkpoints_are_walked_to_their_end() {
        // nanoGPT checkpoints (model, optimizer state, config) and an LSTM state dict written by
        // torch.save: the walk must understand every opcode in them, or it would check nothing.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        for file in [
            "nanogpt/ckpt_bias.pt",
            "nanogpt/ckpt_untied.pt",
            "recurrent/lstm_2l_bi_proj.weights.pt",
        ] {
            let mut archive = zip::ZipArchive::new(std::fs::File::open(dir.join(file)).unwrap()).unwrap();
            let name = (0..archive.len())
                .map(|i| archive.by_index(i).unwrap().name().to_string())
                .find(|n| n.ends_with("data.pkl"))
                .unwrap();
            let mut pickle = Vec::new();
            archive.by_name(&name).unwrap().read_to_end(&mut pickle).unwrap();
            assert_eq!(walk(&pickle, 0).unwrap(), Some(pickle.len()), "{file}");
        }
    }

    #[test]
    fn what_is_not_a_pickle_is_left_to_burn_store() {
        check_pickles(b"not a pickle at all", 5).unwrap();
        check_pickles(&[], 5).unwrap();
        // A truncated length prefix.
        check_pickles(&[0x80, 2, b'X', 0xff, 0xff], 1).unwrap();
    }
}
