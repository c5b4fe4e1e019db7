//! Two spellings of Arrow types that the worker reads: the manifest's type text
//! (docs/manifest.md, what the compiler parses) and the canonical text behind schema
//! fingerprints (docs/registry.md, "Schema fingerprint"). Both follow those grammars to the
//! letter, never arrow-rs's own `Display` of a type, which differs between versions.

use arrow_schema::{DataType, Field, IntervalUnit, Schema, TimeUnit, UnionMode};
use sha2::{Digest, Sha256};

fn primitive(t: &DataType) -> Option<&'static str> {
    Some(match t {
        DataType::Null => "null",
        DataType::Boolean => "bool",
        DataType::Int8 => "int8",
        DataType::Int16 => "int16",
        DataType::Int32 => "int32",
        DataType::Int64 => "int64",
        DataType::UInt8 => "uint8",
        DataType::UInt16 => "uint16",
        DataType::UInt32 => "uint32",
        DataType::UInt64 => "uint64",
        DataType::Float16 => "float16",
        DataType::Float32 => "float32",
        DataType::Float64 => "float64",
        DataType::Utf8 => "utf8",
        DataType::LargeUtf8 => "large_utf8",
        DataType::Binary => "binary",
        DataType::Date32 => "date32",
        DataType::Date64 => "date64",
        _ => return None,
    })
}

fn unit(u: &TimeUnit) -> &'static str {
    match u {
        TimeUnit::Second => "s",
        TimeUnit::Millisecond => "ms",
        TimeUnit::Microsecond => "us",
        TimeUnit::Nanosecond => "ns",
    }
}

fn question(nullable: bool) -> &'static str {
    if nullable {
        "?"
    } else {
        ""
    }
}

/// The manifest spelling of `t`, or why a manifest cannot declare it.
pub fn manifest_type(t: &DataType) -> Result<String, String> {
    if let Some(text) = primitive(t) {
        return Ok(text.to_string());
    }
    Ok(match t {
        DataType::Duration(_) => "duration".to_string(),
        DataType::Timestamp(u, Some(tz)) => format!("timestamp[{}, {}]", unit(u), tz),
        DataType::Timestamp(u, None) => format!("timestamp[{}]", unit(u)),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("decimal({p}, {s})"),
        DataType::List(f) => format!(
            "list<{}{}>",
            manifest_type(f.data_type())?,
            question(f.is_nullable())
        ),
        DataType::Struct(fields) => {
            let parts: Result<Vec<_>, _> = fields
                .iter()
                .map(|f| {
                    Ok::<String, String>(format!(
                        "{}: {}{}",
                        f.name(),
                        manifest_type(f.data_type())?,
                        question(f.is_nullable())
                    ))
                })
                .collect();
            format!("struct<{}>", parts?.join(", "))
        }
        other => {
            return Err(format!(
                "Arrow type {other} cannot be declared in a Heddle manifest"
            ))
        }
    })
}

/// The hex SHA-256 of the schema's canonical text (docs/registry.md).
pub fn schema_fingerprint(schema: &Schema) -> Result<String, String> {
    let text = canonical_schema_text(schema)?;
    Ok(Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The text a schema fingerprint hashes: one line per top-level field.
pub fn canonical_schema_text(schema: &Schema) -> Result<String, String> {
    let lines: Result<Vec<_>, _> = schema.fields().iter().map(|f| field_text(f)).collect();
    Ok(lines?.join("\n"))
}

fn not_null(nullable: bool) -> &'static str {
    if nullable {
        ""
    } else {
        " not null"
    }
}

/// A name as JSON.stringify writes it (serde_json escapes exactly the same characters).
fn json_name(name: &str) -> String {
    serde_json::to_string(name).expect("a string always serialises")
}

fn field_text(f: &Field) -> Result<String, String> {
    Ok(format!(
        "{}: {}{}",
        json_name(f.name()),
        canonical_type(f.data_type())?,
        not_null(f.is_nullable())
    ))
}

fn element_text(f: &Field) -> Result<String, String> {
    Ok(format!(
        "{}{}",
        canonical_type(f.data_type())?,
        not_null(f.is_nullable())
    ))
}

fn canonical_type(t: &DataType) -> Result<String, String> {
    if let Some(text) = primitive(t) {
        return Ok(text.to_string());
    }
    Ok(match t {
        DataType::Utf8View => "utf8_view".into(),
        DataType::LargeBinary => "large_binary".into(),
        DataType::BinaryView => "binary_view".into(),
        DataType::FixedSizeBinary(w) => format!("fixed_size_binary[{w}]"),
        DataType::Decimal32(p, s) => format!("decimal32({p},{s})"),
        DataType::Decimal64(p, s) => format!("decimal64({p},{s})"),
        DataType::Decimal128(p, s) => format!("decimal128({p},{s})"),
        DataType::Decimal256(p, s) => format!("decimal256({p},{s})"),
        DataType::Time32(u) => format!("time32[{}]", unit(u)),
        DataType::Time64(u) => format!("time64[{}]", unit(u)),
        DataType::Timestamp(u, Some(tz)) => format!("timestamp[{}, {}]", unit(u), json_name(tz)),
        DataType::Timestamp(u, None) => format!("timestamp[{}]", unit(u)),
        DataType::Duration(u) => format!("duration[{}]", unit(u)),
        DataType::Interval(IntervalUnit::YearMonth) => "interval[year_month]".into(),
        DataType::Interval(IntervalUnit::DayTime) => "interval[day_time]".into(),
        DataType::Interval(IntervalUnit::MonthDayNano) => "interval[month_day_nano]".into(),
        DataType::List(f) => format!("list<{}>", element_text(f)?),
        DataType::LargeList(f) => format!("large_list<{}>", element_text(f)?),
        DataType::FixedSizeList(f, n) => format!("fixed_size_list[{n}]<{}>", element_text(f)?),
        DataType::Struct(fields) => {
            let parts: Result<Vec<_>, _> = fields.iter().map(|f| field_text(f)).collect();
            format!("struct<{}>", parts?.join(", "))
        }
        DataType::Map(entries, sorted) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err("a map's entries must be a struct".into());
            };
            let sorted = if *sorted { ", keys_sorted" } else { "" };
            format!(
                "map<{}, {}{}>",
                element_text(&kv[0])?,
                element_text(&kv[1])?,
                sorted
            )
        }
        DataType::Union(fields, mode) => {
            let mode = if *mode == UnionMode::Sparse {
                "sparse"
            } else {
                "dense"
            };
            let parts: Result<Vec<_>, String> = fields
                .iter()
                .map(|(code, f)| Ok(format!("{code}={}", field_text(f)?)))
                .collect();
            format!("union[{mode}]<{}>", parts?.join(", "))
        }
        DataType::Dictionary(index, value) => {
            format!(
                "dictionary<{}, {}>",
                canonical_type(value)?,
                canonical_type(index)?
            )
        }
        other => return Err(format!("Arrow type {other} has no canonical text")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn canonical_text_follows_the_registry_grammar() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("na\"me", DataType::Utf8, true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new(
                "xs",
                DataType::List(Arc::new(Field::new("item", DataType::Float64, true))),
                true,
            ),
            Field::new("d", DataType::Decimal128(10, 2), false),
            Field::new(
                "s",
                DataType::Struct(vec![Field::new("a", DataType::Int32, false)].into()),
                true,
            ),
        ]);
        let want = [
            r#""id": int64 not null"#,
            r#""na\"me": utf8"#,
            r#""at": timestamp[us, "UTC"]"#,
            r#""xs": list<float64>"#,
            r#""d": decimal128(10,2) not null"#,
            r#""s": struct<"a": int32 not null>"#,
        ]
        .join("\n");
        assert_eq!(canonical_schema_text(&schema).unwrap(), want);
        assert_eq!(
            manifest_type(schema.field(3).data_type()).unwrap(),
            "list<float64?>"
        );
    }

    #[test]
    fn the_fingerprint_is_the_sha256_of_the_text() {
        let schema = Schema::new(vec![Field::new("id", DataType::Int32, true)]);
        // sha256 of `"id": int32`, as the TypeScript registry computes it.
        let expected: String = Sha256::digest(br#""id": int32"#)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(schema_fingerprint(&schema).unwrap(), expected);
    }
}
