//! Reading contacts to import: a JSON array of objects or a CSV file with a header row, both
//! keyed by the template's contact field names (`ContactsId`, `FirstName`, `MobileNumber`…).
//! Files are streamed (a million contacts never sit in memory at once); a bad record stops
//! the import with its line and column, and nothing is imported.

use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::de::{DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::contact::ContactRecord;

/// The integration name of contacts imported without one.
pub const LOCAL: &str = "local";

/// The key a record may carry to say which integration it belongs to (what `export` writes
/// when it exports several).
pub const INTEGRATION_KEY: &str = "integration";

/// A file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A JSON array of objects.
    Json,
    /// CSV with a header row.
    Csv,
}

impl Format {
    /// By extension (`.csv`), else by the first non-blank byte (`[` is JSON).
    pub fn detect(path: &Path, first_byte: Option<u8>) -> Format {
        let csv_ext = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        match (csv_ext, first_byte) {
            (true, _) => Format::Csv,
            (false, Some(b'[')) => Format::Json,
            (false, Some(_))
                if !path
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("json")) =>
            {
                Format::Csv
            }
            _ => Format::Json,
        }
    }
}

/// Streams the records of `path` (`-` reads standard input) on a thread of its own. Each
/// record goes to `integration`, else to the record's own `integration` key, else to
/// [`LOCAL`]. Errors name the file and the line (and column for JSON).
pub fn read_file(
    path: &Path,
    integration: Option<String>,
) -> Result<impl Iterator<Item = Result<ContactRecord, String>> + Send, String> {
    let shown = path.display().to_string();
    let reader: Box<dyn Read + Send> = if path == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {e}"))?)
    };
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let first = reader
        .fill_buf()
        .map_err(|e| format!("cannot read {shown}: {e}"))?
        .iter()
        .copied()
        .find(|b| !b.is_ascii_whitespace() && *b != 0xEF && *b != 0xBB && *b != 0xBF);
    let format = Format::detect(path, first);
    let (send, receive) = std::sync::mpsc::sync_channel::<Result<ContactRecord, String>>(4096);
    std::thread::spawn(move || {
        let emit = |fields: Map<String, Value>| -> bool {
            send.send(Ok(to_record(&fields, integration.as_deref())))
                .is_ok()
        };
        let result = match format {
            Format::Json => read_json(reader, emit),
            Format::Csv => read_csv(reader, emit),
        };
        if let Err(e) = result {
            let _ = send.send(Err(format!("{shown}: {e}")));
        }
    });
    Ok(receive.into_iter())
}

fn to_record(fields: &Map<String, Value>, integration: Option<&str>) -> ContactRecord {
    let own = fields.get(INTEGRATION_KEY).and_then(Value::as_str);
    let name = integration.or(own).unwrap_or(LOCAL);
    let mut record = ContactRecord::from_fields(name, fields);
    record.other.remove(INTEGRATION_KEY);
    record
}

/// Reads a JSON array of objects, calling `emit` for each (stops early when it returns false).
pub fn read_json(
    reader: impl Read,
    emit: impl FnMut(Map<String, Value>) -> bool,
) -> Result<(), String> {
    struct Each<F>(F);
    impl<'de, F: FnMut(Map<String, Value>) -> bool> Visitor<'de> for Each<F> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON array of contact objects")
        }
        fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
            let mut index = 0usize;
            while let Some(v) = seq.next_element::<Value>()? {
                let Value::Object(fields) = v else {
                    return Err(serde::de::Error::custom(format!(
                        "element {index} is not an object of contact fields"
                    )));
                };
                if !(self.0)(fields) {
                    // The reader stopped; skip the rest quickly.
                    while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                    return Ok(());
                }
                index += 1;
            }
            Ok(())
        }
    }
    impl<'de, F: FnMut(Map<String, Value>) -> bool> DeserializeSeed<'de> for Each<F> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }
    let mut de = serde_json::Deserializer::from_reader(reader);
    Each(emit)
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| {
            if e.line() > 0 {
                let message = e.to_string();
                let message = message
                    .rsplit_once(" at line ")
                    .map_or(message.as_str(), |(m, _)| m)
                    .to_string();
                format!("{}:{}: {message}", e.line(), e.column())
            } else {
                e.to_string()
            }
        })
}

/// Reads CSV with a header row of field names, calling `emit` for each row. Empty cells are
/// left out.
pub fn read_csv(
    reader: impl Read,
    mut emit: impl FnMut(Map<String, Value>) -> bool,
) -> Result<(), String> {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = csv
        .headers()
        .map_err(|e| format!("line 1: {e}"))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect::<Vec<_>>();
    if !headers.iter().any(|h| h == "ContactsId") {
        return Err("line 1: the header row has no ContactsId column".to_string());
    }
    let mut row = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut row) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let mut fields = Map::new();
                for (h, v) in headers.iter().zip(row.iter()) {
                    if !v.is_empty() {
                        fields.insert(h.clone(), Value::String(v.to_string()));
                    }
                }
                if !emit(fields) {
                    return Ok(());
                }
            }
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                return Err(format!("line {line}: {}", csv_message(&e)));
            }
        }
    }
}

fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} cells where the header row has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".to_string(),
        _ => e.to_string(),
    }
}

/// Writes contacts as the JSON array `read_json` reads; with `tag_integration`, each object
/// carries its integration under [`INTEGRATION_KEY`].
pub fn to_json(records: &[ContactRecord], tag_integration: bool) -> Value {
    Value::Array(
        records
            .iter()
            .map(|r| {
                let mut fields = r.fields();
                if tag_integration {
                    fields.insert(INTEGRATION_KEY.into(), Value::String(r.integration.clone()));
                }
                Value::Object(fields)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn json(src: &str) -> Result<Vec<Map<String, Value>>, String> {
        let mut out = Vec::new();
        read_json(src.as_bytes(), |m| {
            out.push(m);
            true
        })?;
        Ok(out)
    }

    fn csv(src: &str) -> Result<Vec<Map<String, Value>>, String> {
        let mut out = Vec::new();
        read_csv(src.as_bytes(), |m| {
            out.push(m);
            true
        })?;
        Ok(out)
    }

    #[test]
    fn json_arrays() {
        let v = json(r#"[{"ContactsId": "1", "FirstName": "A"}, {"ContactsId": 2}]"#).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(
            json("[{\"ContactsId\": \"1\"},\n 5]").unwrap_err(),
            "2:3: element 1 is not an object of contact fields"
        );
        assert!(
            json("[{\"ContactsId\": \"1\",\n}]")
                .unwrap_err()
                .starts_with("2:1: ")
        );
        assert!(json("{}").unwrap_err().contains("a JSON array"));
        assert!(json("[] x").unwrap_err().starts_with("1:4: trailing"));
    }

    #[test]
    fn csv_files() {
        let v = csv("ContactsId,FirstName,MobileNumber\n1,Ada,+44 7700 900123\n2,,\n").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0]["MobileNumber"], "+44 7700 900123");
        assert!(!v[1].contains_key("FirstName"));
        assert_eq!(
            csv("ContactsId,FirstName\n1,Ada\n2,Bo,extra\n").unwrap_err(),
            "line 3: 3 cells where the header row has 2"
        );
        assert_eq!(
            csv("Name,Phone\nA,1\n").unwrap_err(),
            "line 1: the header row has no ContactsId column"
        );
    }

    #[test]
    fn formats() {
        assert_eq!(Format::detect(Path::new("a.csv"), Some(b'[')), Format::Csv);
        assert_eq!(
            Format::detect(Path::new("a.json"), Some(b'C')),
            Format::Json
        );
        assert_eq!(Format::detect(Path::new("-"), Some(b'[')), Format::Json);
        assert_eq!(Format::detect(Path::new("-"), Some(b'C')), Format::Csv);
    }

    #[test]
    fn integration_key() {
        let mut fields = Map::new();
        fields.insert("ContactsId".into(), "1".into());
        fields.insert(INTEGRATION_KEY.into(), "zoho".into());
        assert_eq!(to_record(&fields, None).integration, "zoho");
        assert_eq!(to_record(&fields, Some("hs")).integration, "hs");
        assert!(to_record(&fields, None).other.is_empty());
        fields.remove(INTEGRATION_KEY);
        assert_eq!(to_record(&fields, None).integration, LOCAL);
    }
}
