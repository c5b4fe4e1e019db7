//! Step declarations and one step's run over one record batch. A step is called once per
//! record batch of the input object, so memory stays bounded by the largest batch, and the row
//! indices it reports are relative to that batch. This file must never let a step's output
//! reach shared memory without checking it against the declared row contract.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use arrow_array::{Array, BooleanArray, RecordBatch};
use arrow_schema::{Field, Schema, SchemaRef};
use serde_json::{json, Map, Value};

use crate::types::manifest_type;

/// A row contract (docs/manifest.md): which columns a step takes or gives.
#[derive(Clone, Debug)]
pub struct Row {
    fields: Vec<Field>,
    input_plus: bool,
    open: bool,
}

impl Row {
    /// Exactly these columns, in this order.
    pub fn fields(fields: Vec<Field>) -> Self {
        Row {
            fields,
            input_plus: false,
            open: false,
        }
    }
    /// At least these columns; any others pass through.
    pub fn open(fields: Vec<Field>) -> Self {
        Row {
            fields,
            input_plus: false,
            open: true,
        }
    }
    /// The input row with these columns appended; the step returns only the appended ones.
    pub fn input_plus(fields: Vec<Field>) -> Self {
        Row {
            fields,
            input_plus: true,
            open: false,
        }
    }

    fn to_json(&self) -> Result<Value, String> {
        let fields: Result<Vec<Value>, String> = self
            .fields
            .iter()
            .map(|f| {
                let mut field = json!({ "name": f.name(), "type": manifest_type(f.data_type())? });
                if f.is_nullable() {
                    field["nullable"] = Value::Bool(true);
                }
                Ok(field)
            })
            .collect();
        Ok(if self.input_plus {
            json!({ "fields": fields?, "include_input": true })
        } else {
            json!({ "fields": fields?, "open": self.open })
        })
    }
}

/// One key of a step's configuration (docs/manifest.md, `config`).
#[derive(Clone, Debug)]
pub struct ConfigKey {
    pub key: String,
    pub kind: String,
    pub required: bool,
    pub doc: String,
}

/// A row the step could not process: `row` indexes the batch the step was given.
#[derive(Clone, Debug, PartialEq)]
pub struct RowError {
    pub row: usize,
    pub message: String,
}

/// What a step returns. An aligned batch has one row per input row, in order, and the SDK
/// removes the rows named in `errors`; an unaligned one (a filter) left them out itself.
pub struct Output {
    pub batch: RecordBatch,
    pub errors: Vec<RowError>,
    pub aligned: bool,
}

impl Output {
    /// A batch aligned with the input, without errors.
    pub fn aligned(batch: RecordBatch) -> Self {
        Output {
            batch,
            errors: Vec::new(),
            aligned: true,
        }
    }
    /// A batch aligned with the input whose rows named in `errors` failed.
    pub fn with_errors(batch: RecordBatch, errors: Vec<RowError>) -> Self {
        Output {
            batch,
            errors,
            aligned: true,
        }
    }
    /// A batch that is not aligned with the input (the step filtered or expanded rows).
    pub fn unaligned(batch: RecordBatch, errors: Vec<RowError>) -> Self {
        Output {
            batch,
            errors,
            aligned: false,
        }
    }
}

/// Fails a whole invocation with a protocol error code (docs/plugins.md, "Errors").
#[derive(Clone, Debug)]
pub struct Failure {
    pub code: String,
    pub message: String,
    pub column: String,
    pub step_index: usize,
}

impl Failure {
    pub fn new(code: &str, column: &str, message: String) -> Self {
        Failure {
            code: code.into(),
            message,
            column: column.into(),
            step_index: 0,
        }
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::new("USER_CODE", "", e.to_string())
    }
}

type RunFn = dyn Fn(&RecordBatch, &Map<String, Value>) -> Result<Output, Failure> + Send + Sync;

/// One declared step, built with `Step::new(name).input(..).output(..).run(..)`.
#[derive(Clone)]
pub struct Step {
    pub(crate) name: String,
    doc: String,
    input: Row,
    output: Row,
    config: Vec<ConfigKey>,
    run: Arc<RunFn>,
}

impl Step {
    pub fn new(name: &str) -> Self {
        Step {
            name: name.into(),
            doc: String::new(),
            input: Row::open(vec![]),
            output: Row::input_plus(vec![]),
            config: Vec::new(),
            run: Arc::new(|_, _| {
                Err(Failure::new(
                    "USER_CODE",
                    "",
                    "the step has no run function".into(),
                ))
            }),
        }
    }
    pub fn doc(mut self, doc: &str) -> Self {
        self.doc = doc.into();
        self
    }
    pub fn input(mut self, row: Row) -> Self {
        self.input = row;
        self
    }
    pub fn output(mut self, row: Row) -> Self {
        self.output = row;
        self
    }
    pub fn config(mut self, key: &str, kind: &str, required: bool, doc: &str) -> Self {
        self.config.push(ConfigKey {
            key: key.into(),
            kind: kind.into(),
            required,
            doc: doc.into(),
        });
        self
    }
    /// The step's function, called once per input batch. A panic fails the invocation as
    /// USER_CODE and the plugin keeps serving.
    pub fn run<F>(mut self, f: F) -> Self
    where
        F: Fn(&RecordBatch, &Map<String, Value>) -> Result<Output, Failure> + Send + Sync + 'static,
    {
        self.run = Arc::new(f);
        self
    }

    pub(crate) fn manifest(&self) -> Result<Value, String> {
        let config: Vec<Value> = self
            .config
            .iter()
            .map(|c| json!({ "key": c.key, "type": c.kind, "required": c.required, "doc": c.doc }))
            .collect();
        Ok(json!({
            "doc": self.doc, "role": "transform", "config": config, "slots": [],
            "input": self.input.to_json().map_err(|e| format!("step {} input: {e}", self.name))?,
            "output": self.output.to_json().map_err(|e| format!("step {} output: {e}", self.name))?,
        }))
    }

    /// Runs the step over one batch exactly as the plugin process would (contracts checked,
    /// an input-plus output joined to the input, failed rows removed), for a plugin's tests.
    pub fn apply(
        &self,
        batch: &RecordBatch,
        config: &Map<String, Value>,
    ) -> Result<(RecordBatch, Vec<RowError>), Failure> {
        self.call(batch, config)
            .map(|(out, errors, _)| (out, errors))
    }

    /// Checks the input, calls the step and returns its checked output, its errors (sorted),
    /// and whether the output rows are the input rows minus the failed ones, in order.
    pub(crate) fn call(
        &self,
        batch: &RecordBatch,
        config: &Map<String, Value>,
    ) -> Result<(RecordBatch, Vec<RowError>, bool), Failure> {
        check_columns(batch, &self.input, &self.name, "input")?;
        let result =
            catch_unwind(AssertUnwindSafe(|| (self.run)(batch, config))).map_err(|panic| {
                let text = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".into());
                Failure::new("USER_CODE", "", format!("panic: {text}"))
            })??;
        let mut errors = result.errors;
        let aligned = (result.aligned && !errors.is_empty()) || self.output.input_plus;
        let rows = batch.num_rows();
        if aligned && result.batch.num_rows() != rows {
            return Err(Failure::new("BAD_OUTPUT", "", format!(
                "step `{}` returned {} rows for {rows} input rows; its output must be aligned with its input",
                self.name, result.batch.num_rows()
            )));
        }
        check_columns(&result.batch, &self.output, &self.name, "output")?;
        let out = if self.output.input_plus {
            let mut fields: Vec<Field> = batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect();
            fields.extend(self.output.fields.iter().cloned());
            let mut columns = batch.columns().to_vec();
            columns.extend(result.batch.columns().iter().cloned());
            RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
                .map_err(|e| Failure::new("BAD_OUTPUT", "", e.to_string()))?
        } else {
            with_declared(&result.batch, &self.output.fields)?
        };
        if errors.is_empty() {
            return Ok((out, errors, aligned));
        }
        errors.sort_by_key(|e| e.row);
        if let Some(e) = errors.iter().find(|e| e.row >= rows) {
            return Err(Failure::new(
                "BAD_OUTPUT",
                "",
                format!(
                "step `{}` reported an error for row {}, which is not in its batch of {rows} rows",
                self.name, e.row
            ),
            ));
        }
        if !aligned {
            return Ok((out, errors, false));
        }
        let mut keep = vec![true; rows];
        for e in &errors {
            keep[e.row] = false;
        }
        let kept = arrow_select::filter::filter_record_batch(&out, &BooleanArray::from(keep))
            .map_err(|e| Failure::new("BAD_OUTPUT", "", e.to_string()))?;
        Ok((kept, errors, true))
    }
}

/// Declared columns take their declared nullability; an open row keeps the rest as found.
fn with_declared(batch: &RecordBatch, declared: &[Field]) -> Result<RecordBatch, Failure> {
    let fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| {
            declared
                .iter()
                .find(|d| d.name() == f.name())
                .cloned()
                .unwrap_or_else(|| f.as_ref().clone())
        })
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), batch.columns().to_vec())
        .map_err(|e| Failure::new("BAD_OUTPUT", "", e.to_string()))
}

fn check_columns(batch: &RecordBatch, row: &Row, step: &str, side: &str) -> Result<(), Failure> {
    let code = if side == "output" {
        "BAD_OUTPUT"
    } else {
        "BAD_INPUT"
    };
    let schema: SchemaRef = batch.schema();
    for want in &row.fields {
        let Ok(index) = schema.index_of(want.name()) else {
            return Err(Failure::new(
                code,
                want.name(),
                format!("{side} of step `{step}` lacks column `{}`", want.name()),
            ));
        };
        let got = manifest_type(schema.field(index).data_type()).unwrap_or_default();
        let expected = manifest_type(want.data_type()).unwrap_or_default();
        if got != expected || got.is_empty() {
            return Err(Failure::new(
                code,
                want.name(),
                format!(
                    "{side} column `{}` of step `{step}` is {}, declared {expected}",
                    want.name(),
                    schema.field(index).data_type()
                ),
            ));
        }
        // Inputs are not refused for nulls: a step reports such rows as row errors instead.
        if side == "output" && !want.is_nullable() && batch.column(index).null_count() > 0 {
            return Err(Failure::new(
                code,
                want.name(),
                format!(
                    "{side} column `{}` of step `{step}` holds nulls but is declared not null",
                    want.name()
                ),
            ));
        }
    }
    if row.open {
        return Ok(());
    }
    for (i, f) in schema.fields().iter().enumerate() {
        match row.fields.get(i) {
            Some(d) if d.name() == f.name() => {}
            _ if row.fields.iter().any(|d| d.name() == f.name()) => {
                return Err(Failure::new(code, f.name(), format!(
                    "{side} columns of step `{step}` are not in the declared order (`{}` at position {i})",
                    f.name()
                )))
            }
            _ => {
                return Err(Failure::new(code, f.name(), format!(
                    "{side} of step `{step}` has undeclared column `{}`",
                    f.name()
                )))
            }
        }
    }
    Ok(())
}
