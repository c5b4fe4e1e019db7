//! The Rust plugin of examples/polyglot.he. Step `text-norm/merchant.normalise` appends
//! `merchant_key`, a merchant name folded for matching (lower case, Latin accents removed,
//! punctuation dropped, runs of spaces collapsed), and `merchant_hash`, the key's 64-bit
//! FNV-1a hash as a signed integer, so that other steps can join or bucket on it. It reads the
//! `merchant` column straight from shared memory. The worker builds it on first use
//! (`cargo build --release`) and caches the binary.

use std::sync::Arc;

use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use heddle_sdk::{Output, Plugin, Row, RowError, Step};

/// Folds one Latin letter with a diacritic to its base letter; other characters stay.
fn fold(c: char) -> char {
    match c {
        'à'..='å' => 'a',
        'ç' => 'c',
        'è'..='ë' => 'e',
        'ì'..='ï' => 'i',
        'ñ' => 'n',
        'ò'..='ö' | 'ø' => 'o',
        'ù'..='ü' => 'u',
        'ý' | 'ÿ' => 'y',
        _ => c,
    }
}

/// The matching key of a merchant name: `"  Café  Zürich-Nord! "` → `"cafe zurich nord"`.
pub fn normalise(name: &str) -> String {
    let mut key = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase).map(fold) {
        if c.is_alphanumeric() {
            key.push(c);
        } else if !key.is_empty() && !key.ends_with(' ') {
            key.push(' ');
        }
    }
    key.truncate(key.trim_end().len());
    key
}

/// FNV-1a, 64 bits, as a signed integer (Arrow int64).
pub fn fnv1a(text: &str) -> i64 {
    let mut hash: u64 = 0xcbf29ce484222325;
    for byte in text.bytes() {
        hash = (hash ^ byte as u64).wrapping_mul(0x100000001b3);
    }
    hash as i64
}

fn appended() -> Vec<Field> {
    vec![
        Field::new("merchant_key", DataType::Utf8, false),
        Field::new("merchant_hash", DataType::Int64, false),
    ]
}

fn main() {
    let step = Step::new("normalise")
        .doc("Appends `merchant_key` (the name folded for matching) and `merchant_hash` (its FNV-1a hash).")
        .input(Row::open(vec![Field::new("merchant", DataType::Utf8, true)]))
        .output(Row::input_plus(appended()))
        .run(|batch, _config| {
            let merchant = batch
                .column_by_name("merchant")
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .expect("the SDK checked the input contract");
            let mut errors = Vec::new();
            let keys: Vec<String> = (0..merchant.len())
                .map(|i| {
                    let key = if merchant.is_null(i) { String::new() } else { normalise(merchant.value(i)) };
                    if key.is_empty() {
                        errors.push(RowError { row: i, message: "the merchant name is empty".into() });
                    }
                    key
                })
                .collect();
            let hashes: Int64Array = keys.iter().map(|k| fnv1a(k)).collect();
            let keys = StringArray::from(keys);
            let out = RecordBatch::try_new(Arc::new(Schema::new(appended())), vec![Arc::new(keys), Arc::new(hashes)])?;
            Ok(Output::with_errors(out, errors))
        });
    heddle_sdk::main(Plugin::new("text-norm").module("text-norm/merchant", vec![step]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_to_one_key() {
        assert_eq!(normalise("  Café  Zürich-Nord! "), "cafe zurich nord");
        assert_eq!(normalise("CAFE ZURICH NORD"), "cafe zurich nord");
        assert_eq!(normalise("!!!"), "");
    }

    #[test]
    fn the_hash_is_fnv1a() {
        // FNV-1a 64 of the empty string is its offset basis; of "a" a published value.
        assert_eq!(fnv1a("") as u64, 0xcbf29ce484222325);
        assert_eq!(fnv1a("a") as u64, 0xaf63dc4c8601ec8c);
    }
}
