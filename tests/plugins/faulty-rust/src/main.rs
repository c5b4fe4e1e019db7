//! A test plugin whose steps fail on purpose, one way each, on the row whose `n` equals the
//! config's `bad`: `explode` panics, `die` exits the process in the middle of the invocation,
//! `wrong` answers with a column of the wrong type.

use std::sync::Arc;

use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use heddle_sdk::{Output, Plugin, Row, Step};
use serde_json::{Map, Value};

fn twice() -> Field {
    Field::new("twice", DataType::Int64, true)
}

fn column(batch: &RecordBatch) -> &Int64Array {
    batch
        .column_by_name("n")
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        .expect("checked input")
}

fn hits(batch: &RecordBatch, config: &Map<String, Value>) -> bool {
    let bad = config
        .get("bad")
        .and_then(Value::as_i64)
        .unwrap_or(i64::MIN);
    column(batch).iter().any(|v| v == Some(bad))
}

fn step(name: &str, fail: fn()) -> Step {
    Step::new(name)
        .input(Row::open(vec![Field::new("n", DataType::Int64, true)]))
        .output(Row::input_plus(vec![twice()]))
        .config("bad", "int", false, "The value that fails.")
        .run(move |batch, config| {
            if hits(batch, config) {
                fail();
            }
            let out: Int64Array = column(batch).iter().map(|v| v.map(|x| x * 2)).collect();
            Ok(Output::aligned(RecordBatch::try_new(
                Arc::new(Schema::new(vec![twice()])),
                vec![Arc::new(out)],
            )?))
        })
}

fn main() {
    let wrong = step("wrong", || {}).run(|batch, _| {
        let text = StringArray::from(vec!["not a number"; batch.num_rows()]);
        let schema = Arc::new(Schema::new(vec![Field::new(
            "twice",
            DataType::Utf8,
            false,
        )]));
        Ok(Output::aligned(RecordBatch::try_new(
            schema,
            vec![Arc::new(text)],
        )?))
    });
    heddle_sdk::main(Plugin::new("faulty-rust").module(
        "faulty-rust/steps",
        vec![
            step("explode", || panic!("exploded on the bad row")),
            step("die", || std::process::exit(3)),
            wrong,
        ],
    ));
}
