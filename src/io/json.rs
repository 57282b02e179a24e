//! JSON files read into structs, with errors that name the field the user wrote.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Reads the JSON file at `path` and parses its text with `parse`; an unreadable file or a
/// parse failure is an [`Error::Load`](crate::Error::Load) naming the file.
pub(crate) fn read_config<T>(
    path: &std::path::Path,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> crate::Result<T> {
    let fail = |message: String| crate::Error::Load {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    parse(&text).map_err(fail)
}

/// Parses `text` into `T`. A value of the wrong type is reported with its field's name
/// (`field \`n_embd\`: invalid type: string "64", expected usize`), which serde's own message for
/// a struct read from text leaves out: the culprit is the field whose removal changes the error.
pub(crate) fn parse_naming_fields<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let error = match serde_json::from_value::<T>(value.clone()) {
        Ok(parsed) => return Ok(parsed),
        Err(e) => e.to_string(),
    };
    if let Value::Object(map) = &value {
        for key in map.keys() {
            let mut without = map.clone();
            without.remove(key);
            let blamed = match serde_json::from_value::<T>(Value::Object(without)) {
                Ok(_) => true,
                Err(e) => e.to_string() == format!("missing field `{key}`"),
            };
            if blamed {
                return Err(format!("field `{key}`: {error}"));
            }
        }
    }
    Err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Config {
        n_embd: usize,
        #[serde(default)]
        eps: f64,
    }

    #[test]
    fn the_field_of_a_wrong_type_is_named() {
        let err = parse_naming_fields::<Config>(r#"{"n_embd": "64", "other": 1}"#).unwrap_err();
        assert!(
            err.starts_with("field `n_embd`: invalid type: string \"64\""),
            "{err}"
        );
        let err = parse_naming_fields::<Config>(r#"{"n_embd": 64, "eps": "x"}"#).unwrap_err();
        assert!(err.starts_with("field `eps`"), "{err}");
        let err = parse_naming_fields::<Config>(r#"{"eps": 1.0}"#).unwrap_err();
        assert_eq!(err, "missing field `n_embd`");
        assert!(parse_naming_fields::<Config>("{not json").is_err());
        assert_eq!(
            parse_naming_fields::<Config>(r#"{"n_embd": 8}"#).unwrap().n_embd,
            8
        );
    }
}
