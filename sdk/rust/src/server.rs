//! The plugin process: a gRPC server (tonic) on the Unix socket the worker named, running
//! steps and chains of steps over objects in shared memory. Only handles cross the socket
//! (proto/plugin.proto). A step's failure never escapes as a gRPC error: it is an
//! InvokeResponse with a StepError, so the worker can tell a failing step from a dying plugin.

use std::collections::HashMap;
use std::time::Duration;

use arrow_array::RecordBatch;
use serde_json::{Map, Value};
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

use crate::pb;
use crate::pb::plugin_server::{Plugin, PluginServer};
use crate::shm::{map_input, read_registry_batches, write_output};
use crate::step::{Failure, Step};
use crate::types::schema_fingerprint;

const SDK: &str = "heddle-sdk-rust/0.1.0";

struct Service {
    steps: HashMap<String, Step>,
    manifest: String,
}

#[tonic::async_trait]
impl Plugin for Service {
    async fn describe(
        &self,
        _: Request<pb::DescribeRequest>,
    ) -> Result<Response<pb::DescribeResponse>, Status> {
        Ok(Response::new(pb::DescribeResponse {
            manifest_json: self.manifest.clone(),
            sdk: SDK.into(),
        }))
    }

    async fn health(
        &self,
        _: Request<pb::HealthRequest>,
    ) -> Result<Response<pb::HealthResponse>, Status> {
        Ok(Response::new(pb::HealthResponse {
            status: "SERVING".into(),
            pid: std::process::id(),
        }))
    }

    async fn invoke(
        &self,
        request: Request<pb::InvokeRequest>,
    ) -> Result<Response<pb::InvokeResponse>, Status> {
        let req = request.into_inner();
        let mut names = vec![req.step.clone()];
        names.extend(req.then.iter().map(|t| t.step.clone()));
        let result = match self.invoke_chain(&req) {
            Ok((output, row_errors)) => pb::invoke_response::Result::Ok(pb::InvokeOk {
                output: Some(output),
                row_errors,
                steps_run: names.len() as u32,
            }),
            Err(f) => {
                let message = if names.len() > 1 {
                    format!(
                        "step `{}`: {}",
                        names[f.step_index.min(names.len() - 1)],
                        f.message
                    )
                } else {
                    f.message
                };
                eprintln!(
                    "heddle-sdk-rust: {} ({}): {message}",
                    req.invocation_id, f.code
                );
                pb::invoke_response::Result::Error(pb::StepError {
                    code: f.code,
                    message,
                    column: f.column,
                    step_index: f.step_index as u32,
                })
            }
        };
        Ok(Response::new(pb::InvokeResponse {
            result: Some(result),
        }))
    }
}

impl Service {
    fn invoke_chain(
        &self,
        req: &pb::InvokeRequest,
    ) -> Result<(pb::ObjectHandle, Vec<pb::RowError>), Failure> {
        let mut calls = vec![(req.step.as_str(), req.config_json.as_str())];
        calls.extend(
            req.then
                .iter()
                .map(|t| (t.step.as_str(), t.config_json.as_str())),
        );
        let mut chain = Vec::with_capacity(calls.len());
        for (index, (name, config)) in calls.iter().enumerate() {
            let at = |mut f: Failure| {
                f.step_index = index;
                f
            };
            let step = self.steps.get(*name).ok_or_else(|| {
                let mut known: Vec<_> = self.steps.keys().map(|k| format!("`{k}`")).collect();
                known.sort();
                at(Failure::new(
                    "UNKNOWN_STEP",
                    "",
                    format!("no step `{name}` here (known: {})", known.join(", ")),
                ))
            })?;
            let config: Map<String, Value> = if config.is_empty() {
                Map::new()
            } else {
                serde_json::from_str(config).map_err(|e| {
                    at(Failure::new(
                        "BAD_CONFIG",
                        "",
                        format!("config of `{name}` is not a JSON object: {e}"),
                    ))
                })?
            };
            chain.push((step, config));
        }
        let input = req.input.as_ref().ok_or_else(|| {
            Failure::new("BAD_INPUT", "", "the request has no input handle".into())
        })?;
        let bad_input =
            |e: String| Failure::new("BAD_INPUT", "", format!("input `{}`: {e}", input.segment));
        let stream = map_input(
            &input.segment,
            &input.segment_id,
            input.offset,
            input.length,
        )
        .map_err(bad_input)?;
        let (schema, batches) = read_registry_batches(stream).map_err(bad_input)?;
        let found = schema_fingerprint(&schema).map_err(bad_input)?;
        if found != input.schema_fingerprint {
            return Err(bad_input(format!(
                "schema fingerprint is {found}, the handle says {}",
                input.schema_fingerprint
            )));
        }
        let batches = if batches.is_empty() {
            vec![RecordBatch::new_empty(schema)]
        } else {
            batches
        };
        let mut outputs: Vec<RecordBatch> = Vec::with_capacity(batches.len());
        let mut row_errors = Vec::new();
        let mut start = 0u64;
        for batch in &batches {
            let (out, errors) = run_chain(&chain, batch)?;
            if let Some(first) = outputs.first() {
                if first.schema() != out.schema() {
                    let mut f = Failure::new(
                        "BAD_OUTPUT",
                        "",
                        format!(
                        "step `{}` returned batches with different schemas for one input object",
                        calls[calls.len() - 1].0
                    ),
                    );
                    f.step_index = calls.len() - 1;
                    return Err(f);
                }
            }
            row_errors.extend(errors.into_iter().map(|mut e| {
                e.row += start;
                e
            }));
            outputs.push(out);
            start += batch.num_rows() as u64;
        }
        let out_schema = outputs[0].schema();
        let rows: usize = outputs.iter().map(|b| b.num_rows()).sum();
        let non_empty: Vec<RecordBatch> =
            outputs.into_iter().filter(|b| b.num_rows() > 0).collect();
        let length = write_output(&req.output_segment, &out_schema, &non_empty)
            .map_err(|e| Failure::new("BAD_OUTPUT", "", e))?;
        let fingerprint =
            schema_fingerprint(&out_schema).map_err(|e| Failure::new("BAD_OUTPUT", "", e))?;
        Ok((
            pb::ObjectHandle {
                id: req.output_segment.trim_start_matches('/').into(),
                segment: req.output_segment.clone(),
                offset: 0,
                length: length as u64,
                schema_fingerprint: fingerprint,
                rows: rows as u64,
                segment_id: String::new(), // the worker's registry adopts it without one
            },
            row_errors,
        ))
    }
}

/// Runs `batch` through every step; row errors name rows of `batch`, whichever step rejected
/// them, so the worker quarantines the rows it sent.
fn run_chain(
    chain: &[(&Step, Map<String, Value>)],
    batch: &RecordBatch,
) -> Result<(RecordBatch, Vec<pb::RowError>), Failure> {
    let mut origins: Option<Vec<usize>> = Some((0..batch.num_rows()).collect());
    let mut errors = Vec::new();
    let mut current = batch.clone();
    for (index, (step, config)) in chain.iter().enumerate() {
        let (out, row_errors, aligned) = step.call(&current, config).map_err(|mut f| {
            f.step_index = index;
            f
        })?;
        if origins.is_none() && batch.num_rows() == 1 {
            origins = Some(vec![0; current.num_rows()]);
        }
        if !row_errors.is_empty() && origins.is_none() {
            let mut f = Failure::new("ROW_ORIGIN_LOST", "", format!(
                "step `{}` rejected rows of a batch whose rows an earlier step of the chain did not keep aligned with the input",
                step.name
            ));
            f.step_index = index;
            return Err(f);
        }
        if let Some(o) = &origins {
            errors.extend(row_errors.iter().map(|e| pb::RowError {
                row: o[e.row] as u64,
                message: e.message.clone(),
                step_index: index as u32,
            }));
        }
        origins = match origins {
            Some(o) if aligned => {
                let failed: std::collections::HashSet<usize> =
                    row_errors.iter().map(|e| e.row).collect();
                Some(
                    o.into_iter()
                        .enumerate()
                        .filter(|(i, _)| !failed.contains(i))
                        .map(|(_, v)| v)
                        .collect(),
                )
            }
            _ => None,
        };
        current = out;
    }
    Ok((current, errors))
}

/// Serves until SIGTERM/SIGINT or until HEDDLE_WORKER_PID is gone.
pub fn serve(steps: HashMap<String, Step>, manifest: String) -> Result<(), String> {
    let socket = std::env::var("HEDDLE_PLUGIN_SOCKET").map_err(|_| {
        "HEDDLE_PLUGIN_SOCKET is not set; plugins are started by a Heddle worker".to_string()
    })?;
    let worker: i32 = std::env::var("HEDDLE_WORKER_PID")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let listener =
            UnixListener::bind(&socket).map_err(|e| format!("cannot listen on {socket}: {e}"))?;
        let shutdown = async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("signal");
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = term.recv() => break,
                    _ = tokio::signal::ctrl_c() => break,
                    _ = tick.tick() => {
                        // SAFETY: kill with signal 0 only checks that the process exists.
                        if worker > 0 && unsafe { libc::kill(worker, 0) } != 0
                            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
                            break; // an orphaned plugin would hold its socket and memory forever
                        }
                    }
                }
            }
        };
        tonic::transport::Server::builder()
            .add_service(PluginServer::new(Service { steps, manifest }))
            .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
            .await
            .map_err(|e| e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shm::read_batches;
    use crate::step::{Output, Row, RowError};
    use arrow_array::{Array, Int64Array};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;

    fn double() -> Step {
        Step::new("double")
            .input(Row::open(vec![Field::new("value", DataType::Int64, false)]))
            .output(Row::input_plus(vec![Field::new(
                "doubled",
                DataType::Int64,
                false,
            )]))
            .run(|batch, _| {
                let v = batch
                    .column_by_name("value")
                    .unwrap()
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap();
                let errors = (0..v.len())
                    .filter(|&i| v.value(i) < 0)
                    .map(|row| RowError {
                        row,
                        message: "value is negative".into(),
                    })
                    .collect();
                let doubled: Int64Array = v.values().iter().map(|x| x * 2).collect();
                let schema = Arc::new(Schema::new(vec![Field::new(
                    "doubled",
                    DataType::Int64,
                    false,
                )]));
                Ok(Output::with_errors(
                    RecordBatch::try_new(schema, vec![Arc::new(doubled)])?,
                    errors,
                ))
            })
    }

    fn service() -> Service {
        let panics = Step::new("panics").run(|_, _| panic!("boom"));
        let wrong = Step::new("wrong")
            .output(Row::fields(vec![Field::new("x", DataType::Utf8, false)]))
            .run(|b, _| Ok(Output::aligned(b.clone())));
        let steps = [double(), panics, wrong]
            .into_iter()
            .map(|s| (format!("t/m.{}", s.name), s))
            .collect();
        Service {
            steps,
            manifest: String::new(),
        }
    }

    fn values(n: i64, negative_every: i64) -> RecordBatch {
        let v: Int64Array = (0..n)
            .map(|i| {
                if negative_every > 0 && i % negative_every == 0 {
                    -i - 1
                } else {
                    i
                }
            })
            .collect();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "value",
            DataType::Int64,
            false,
        )]));
        RecordBatch::try_new(schema, vec![Arc::new(v)]).unwrap()
    }

    struct Segment(String);
    impl Drop for Segment {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(crate::shm::segment_path(&self.0));
        }
    }

    fn put(name: &str, batches: &[RecordBatch]) -> (Segment, pb::ObjectHandle) {
        let name = format!("/heddle-rusttest-{}-{name}", std::process::id());
        let length = write_output(&name, &batches[0].schema(), batches).unwrap();
        let handle = pb::ObjectHandle {
            id: name[1..].into(),
            segment: name.clone(),
            offset: 0,
            length: length as u64,
            schema_fingerprint: schema_fingerprint(&batches[0].schema()).unwrap(),
            rows: batches.iter().map(|b| b.num_rows() as u64).sum(),
            segment_id: String::new(),
        };
        (Segment(name), handle)
    }

    fn request(
        step: &str,
        input: &pb::ObjectHandle,
        out: &str,
        then: &[&str],
    ) -> pb::InvokeRequest {
        pb::InvokeRequest {
            step: step.into(),
            config_json: "{}".into(),
            input: Some(input.clone()),
            output_segment: format!("/heddle-rusttest-{}-{out}", std::process::id()),
            invocation_id: "1".into(),
            then: then
                .iter()
                .map(|s| pb::ChainStep {
                    step: s.to_string(),
                    config_json: "{}".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn input_columns_point_into_the_mapped_segment() {
        let (_seg, h) = put("zero-copy", &[values(1000, 0), values(10, 0)]);
        let stream = map_input(&h.segment, &h.segment_id, h.offset, h.length).unwrap();
        let (start, end) = (
            stream.as_ptr() as usize,
            stream.as_ptr() as usize + stream.len(),
        );
        let (_, batches) = read_batches(stream).unwrap();
        assert_eq!(batches.len(), 2);
        for b in &batches {
            let data = b.column(0).to_data();
            let addr = data.buffers()[0].as_ptr() as usize;
            assert!(
                addr >= start && addr < end,
                "buffer {addr:#x} outside [{start:#x}, {end:#x})"
            );
        }
    }

    #[test]
    fn a_step_maps_row_errors_to_input_rows_and_writes_its_output() {
        let (_seg, h) = put("chain-in", &[values(10, 3), values(5, 0)]);
        let req = request("t/m.double", &h, "chain-out", &[]);
        let _out = Segment(req.output_segment.clone());
        let (handle, errors) = service().invoke_chain(&req).unwrap();
        assert_eq!(
            errors.iter().map(|e| e.row).collect::<Vec<_>>(),
            vec![0, 3, 6, 9]
        );
        assert_eq!(handle.rows, 11);
        let stream = map_input(&handle.segment, "", 0, handle.length).unwrap();
        let (schema, batches) = read_batches(stream).unwrap();
        assert_eq!(
            schema_fingerprint(&schema).unwrap(),
            handle.schema_fingerprint
        );
        let doubled: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                b.column(1)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(doubled, vec![2, 4, 8, 10, 14, 16, 0, 2, 4, 6, 8]);
    }

    #[test]
    fn failures_are_step_errors_and_leave_no_output() {
        let (_seg, h) = put("fail-in", &[values(4, 0)]);
        for (step, code) in [
            ("t/m.panics", "USER_CODE"),
            ("t/m.wrong", "BAD_OUTPUT"),
            ("t/m.nope", "UNKNOWN_STEP"),
        ] {
            let req = request(step, &h, "fail-out", &[]);
            let err = service().invoke_chain(&req).unwrap_err();
            assert_eq!(err.code, code, "{step}: {}", err.message);
            assert!(!std::path::Path::new(&crate::shm::segment_path(&req.output_segment)).exists());
        }
    }

    #[test]
    fn a_chain_names_the_step_that_failed() {
        let (_seg, h) = put("chain2-in", &[values(3, 0)]);
        let err = service()
            .invoke_chain(&request("t/m.double", &h, "chain2-out", &["t/m.panics"]))
            .unwrap_err();
        assert_eq!((err.code.as_str(), err.step_index), ("USER_CODE", 1));
        assert!(err.message.contains("boom"));
    }

    #[test]
    fn a_wrong_fingerprint_or_a_truncated_stream_is_bad_input() {
        let (_seg, mut h) = put("bad-in", &[values(100, 0)]);
        let good = h.clone();
        h.schema_fingerprint = "0".repeat(64);
        assert_eq!(
            service()
                .invoke_chain(&request("t/m.double", &h, "bad-out", &[]))
                .unwrap_err()
                .code,
            "BAD_INPUT"
        );
        for cut in [3, 9, good.length / 2, good.length - 9] {
            let stream = map_input(&good.segment, "", 0, cut).unwrap();
            assert!(
                read_batches(stream.clone()).is_err(),
                "a stream cut at {cut} was accepted"
            );
            assert!(
                read_registry_batches(stream).is_err(),
                "a registry object cut at {cut} was accepted"
            );
        }
    }

    /// The mapping cache is one per process: its tests take turns, so that one's evictions
    /// cannot land between another's two reads.
    static CACHE_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn first_value(h: &pb::ObjectHandle) -> (i64, usize) {
        let stream = map_input(&h.segment, &h.segment_id, h.offset, h.length).unwrap();
        let at = stream.as_ptr() as usize;
        let (_, batches) = read_registry_batches(stream).unwrap();
        let v = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        (v.value(1), at)
    }

    /// The registry's pool renames a released file and writes the next object into it; a
    /// handle with the same id is read through the mapping already held, and sees the new bytes.
    #[test]
    fn a_handle_with_a_known_segment_id_reuses_the_mapping_and_reads_the_new_object() {
        let _turn = CACHE_TESTS.lock().unwrap_or_else(|p| p.into_inner());
        let (first, mut h) = put("pooled", &[values(100, 0)]);
        h.segment_id = "0123456789abcdef0123456789abcdef".into();
        let (v1, at1) = first_value(&h);
        let (_next, next) = put("pooled-next", &[values(100, 1)]);
        let bytes = std::fs::read(crate::shm::segment_path(&next.segment)).unwrap();
        let renamed = Segment(format!("{}-renamed", first.0));
        std::fs::rename(
            crate::shm::segment_path(&first.0),
            crate::shm::segment_path(&renamed.0),
        )
        .unwrap();
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(crate::shm::segment_path(&renamed.0))
            .unwrap();
        file.write_all_at(&bytes, 0).unwrap();
        h.segment = renamed.0.clone();
        let (v2, at2) = first_value(&h);
        assert_eq!((v1, v2), (1, -2), "the second handle read stale bytes");
        assert_eq!(at1, at2, "the second handle was mapped again");
    }

    #[test]
    fn the_cache_stays_bounded_and_lets_go_of_removed_files() {
        let _turn = CACHE_TESTS.lock().unwrap_or_else(|p| p.into_inner());
        let mut ids = Vec::new();
        for i in 0..crate::segment_cache::CACHE_SLOTS + 4 {
            let (_seg, mut h) = put(&format!("bounded-{i}"), &[values(10, 0)]);
            h.segment_id = format!("{:032x}", 0xbbb0 + i);
            assert_eq!(first_value(&h).0, 1);
            ids.push(h.segment_id.clone());
            // `_seg` is dropped here: the file is removed, as the registry removes a segment.
        }
        let cached = crate::segment_cache::cached_ids();
        assert!(cached.len() <= crate::segment_cache::CACHE_SLOTS);
        assert!(
            cached.contains(ids.last().unwrap()),
            "the newest mapping was evicted"
        );
        assert!(
            !cached.contains(&ids[0]),
            "the oldest mapping was kept beyond the bound"
        );
        crate::segment_cache::sweep();
        let left = crate::segment_cache::cached_ids();
        assert!(
            ids.iter().all(|id| !left.contains(id)),
            "mappings of removed files outlived the sweep: {left:?}"
        );
    }
}
