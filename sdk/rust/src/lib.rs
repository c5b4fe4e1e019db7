//! The Rust SDK for Heddle step plugins (docs/plugins.md, "Rust").
//!
//! A plugin is a binary whose `main` calls [`main`] with its [`Plugin`]. The same declarations
//! produce the manifest (`cargo run -- manifest`) and serve the plugin protocol on the socket
//! the worker names, so the compiler and the process can never disagree. Inputs are read
//! zero-copy: the arrays a step receives point into the mapped shared-memory segment.
//!
//! ```no_run
//! use std::sync::Arc;
//! use arrow_array::{Int64Array, RecordBatch};
//! use arrow_schema::{DataType, Field};
//! use heddle_sdk::{Output, Plugin, Row, Step};
//!
//! let double = Step::new("double")
//!     .doc("Appends `doubled` = 2 × `value`.")
//!     .input(Row::open(vec![Field::new("value", DataType::Int64, true)]))
//!     .output(Row::input_plus(vec![Field::new("doubled", DataType::Int64, true)]))
//!     .run(|batch, _config| {
//!         let value = batch.column_by_name("value").unwrap();
//!         let value = value.as_any().downcast_ref::<Int64Array>().unwrap();
//!         let doubled: Int64Array = value.iter().map(|v| v.map(|v| v * 2)).collect();
//!         let schema = Arc::new(arrow_schema::Schema::new(vec![Field::new("doubled", DataType::Int64, true)]));
//!         Ok(Output::aligned(RecordBatch::try_new(schema, vec![Arc::new(doubled)])?))
//!     });
//! heddle_sdk::main(Plugin::new("sample").module("sample/transform", vec![double]));
//! ```

mod pb;
mod segment_cache;
mod server;
mod shm;
mod step;
mod types;

pub use shm::{map_input, read_batches, read_registry_batches, segment_path, write_output};
pub use step::{ConfigKey, Failure, Output, Row, RowError, Step};
pub use types::{canonical_schema_text, manifest_type, schema_fingerprint};

use serde_json::{json, Map, Value};

/// A plugin package: its Heddle name and its steps by module import path.
pub struct Plugin {
    package: String,
    modules: Vec<(String, Vec<Step>)>,
    build: Vec<String>,
    entry: Vec<String>,
}

impl Plugin {
    /// A package named `package`, the first part of every import path (`text-norm`), built
    /// by default from the Cargo binary of the same name: the worker runs `cargo build` in the
    /// package on first use and copies the binary into its cache (`{binary}`).
    pub fn new(package: &str) -> Self {
        let build = format!(
            "t=\"${{CARGO_TARGET_DIR:-target}}\" && cargo build --release --quiet --bin {package} --target-dir \"$t\" && cp \"$t/release/{package}\" \"$0\""
        );
        Plugin {
            package: package.to_string(),
            modules: Vec::new(),
            build: vec!["sh".into(), "-c".into(), build, "{binary}".into()],
            entry: vec!["{binary}".into()],
        }
    }

    /// Declares the steps of one module (`text-norm/merchant`).
    pub fn module(mut self, path: &str, steps: Vec<Step>) -> Self {
        self.modules.push((path.to_string(), steps));
        self
    }

    /// Overrides how the worker builds the package and which binary it starts.
    pub fn build(mut self, build: &[&str], entry: &[&str]) -> Self {
        self.build = build.iter().map(|s| s.to_string()).collect();
        self.entry = entry.iter().map(|s| s.to_string()).collect();
        self
    }

    /// The manifest (docs/manifest.md).
    pub fn manifest(&self) -> Result<Value, String> {
        let mut modules = Map::new();
        for (path, steps) in &self.modules {
            let mut declared = Map::new();
            for s in steps {
                declared.insert(s.name.clone(), s.manifest()?);
            }
            modules.insert(path.clone(), json!({ "resources": {}, "steps": declared }));
        }
        Ok(json!({
            "heddle_manifest": 1,
            "package": self.package,
            "runtime": "rust",
            "build": self.build,
            "entry": self.entry,
            "modules": modules,
        }))
    }

    fn wire_steps(self) -> std::collections::HashMap<String, Step> {
        let mut out = std::collections::HashMap::new();
        for (path, steps) in self.modules {
            for s in steps {
                out.insert(format!("{path}.{}", s.name), s);
            }
        }
        out
    }
}

/// A plugin's `main`: `manifest [--out FILE]` writes the manifest; without arguments it serves
/// the plugin protocol (the worker starts it so). It exits the process.
pub fn main(plugin: Plugin) -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(run(plugin, &args))
}

fn run(plugin: Plugin, args: &[String]) -> i32 {
    let manifest = match plugin.manifest() {
        Ok(m) => serde_json::to_string_pretty(&m).expect("JSON values serialise"),
        Err(e) => {
            eprintln!("heddle-sdk-rust: {e}");
            return 1;
        }
    };
    match args {
        [] => match server::serve(plugin.wire_steps(), manifest) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("heddle-sdk-rust: {e}");
                1
            }
        },
        [m] if m == "manifest" => {
            println!("{manifest}");
            0
        }
        [m, o, file] if m == "manifest" && o == "--out" => {
            match std::fs::write(file, manifest + "\n") {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("heddle-sdk-rust: cannot write {file}: {e}");
                    1
                }
            }
        }
        _ => {
            eprintln!(
                "usage: {} [manifest [--out FILE]]",
                std::env::args().next().unwrap_or_default()
            );
            2
        }
    }
}
