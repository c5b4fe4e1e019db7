//! The Rust consumer process of the handoff benchmark, twin of bench/_handoff_consumer.ts and
//! .py: it speaks the framing of bench/_wire.ts on a Unix socket (Heddle handles mapped
//! zero-copy with the Rust SDK's `map_input`, or Arrow IPC bytes) and serves JSON rows over
//! HTTP, and replies with the checksum of every value it read (bench/_transactions.ts defines
//! it). It must never reply with anything it did not compute from the data it received.

use std::io::{BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Instant;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type};
use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use serde::Deserialize;
use serde_json::{json, Map, Value};

#[derive(Default)]
struct Checksum {
    rows: usize,
    ints: u32,
    amount: f64,
    text_bytes: usize,
    text_sum: u32,
}

impl Checksum {
    fn reply(&self, read: bool) -> Map<String, Value> {
        let value = if read {
            json!({"rows": self.rows, "ints": self.ints, "amount": self.amount,
                   "textBytes": self.text_bytes, "textSum": self.text_sum})
        } else {
            json!({ "rows": self.rows })
        };
        value.as_object().cloned().unwrap_or_default()
    }

    fn add_int64(&mut self, value: i64) {
        let v = value as u64;
        self.ints = self
            .ints
            .wrapping_add(v as u32)
            .wrapping_add((v >> 32) as u32);
    }
}

fn checksum_batches(batches: &[RecordBatch]) -> Result<Checksum, String> {
    let mut c = Checksum::default();
    for b in batches {
        let col = |name: &str| b.column_by_name(name).ok_or(format!("no column `{name}`"));
        c.rows += b.num_rows();
        for name in ["tx_id", "ts"] {
            for v in col(name)?.as_primitive::<Int64Type>().values() {
                c.add_int64(*v);
            }
        }
        for v in col("user_id")?.as_primitive::<Int32Type>().values() {
            c.ints = c.ints.wrapping_add(*v as u32);
        }
        for v in col("amount")?.as_primitive::<Float64Type>().values() {
            c.amount += v;
        }
        let m = col("merchant")?.as_string::<i32>();
        let offsets = m.value_offsets();
        let (start, end) = (offsets[0] as usize, offsets[offsets.len() - 1] as usize);
        c.text_bytes += end - start;
        for x in &m.value_data()[start..end] {
            c.text_sum = c.text_sum.wrapping_add(*x as u32);
        }
    }
    Ok(c)
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

#[derive(Deserialize)]
struct Handle {
    segment: String,
    #[serde(rename = "segmentId", default)]
    segment_id: String,
    offset: u64,
    length: u64,
}

/// Maps a handle (and with `R` reads every value), timing each part.
fn serve_handle(kind: u8, payload: &[u8]) -> Result<Map<String, Value>, String> {
    let h: Handle = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    let t0 = Instant::now(); // the handle has arrived: the transport's decoding is done
    let (_, batches) = heddle_sdk::read_registry_batches(heddle_sdk::map_input(
        &h.segment,
        &h.segment_id,
        h.offset,
        h.length,
    )?)?;
    let map_ms = ms(t0);
    let t1 = Instant::now();
    let c = if kind == b'R' {
        checksum_batches(&batches)?
    } else {
        Checksum {
            rows: batches.iter().map(|b| b.num_rows()).sum(),
            ..Default::default()
        }
    };
    let mut out = c.reply(kind == b'R');
    out.insert("mapMs".into(), json!(map_ms));
    out.insert("readMs".into(), json!(ms(t1)));
    Ok(out)
}

fn serve_ipc(kind: u8, payload: Vec<u8>) -> Result<Map<String, Value>, String> {
    let (_, batches) = heddle_sdk::read_batches(Buffer::from_vec(payload))?;
    let c = checksum_batches(&batches)?;
    Ok(c.reply(kind == b'A'))
}

fn serve_socket(stream: UnixStream) -> Result<(), String> {
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::with_capacity(1 << 16, stream);
    let mut header = [0u8; 9];
    loop {
        if reader.read_exact(&mut header).is_err() {
            return Ok(()); // end of stream
        }
        let length = u64::from_le_bytes(header[1..].try_into().unwrap()) as usize;
        let mut payload = vec![0u8; length];
        reader.read_exact(&mut payload).map_err(|e| e.to_string())?;
        let t0 = Instant::now();
        let mut out = match header[0] {
            b'A' | b'B' => serve_ipc(header[0], payload)?,
            kind => serve_handle(kind, &payload)?,
        };
        // Everything from the frame's arrival to the reply, unmapping included.
        out.insert("serveMs".into(), json!(ms(t0)));
        let mut line = serde_json::to_vec(&out).map_err(|e| e.to_string())?;
        line.push(b'\n');
        writer.write_all(&line).map_err(|e| e.to_string())?;
    }
}

#[derive(Deserialize)]
struct TxRow {
    tx_id: i64,
    user_id: i64,
    amount: f64,
    merchant: String,
    ts: i64,
}

fn serve_json(mut request: tiny_http::Request) {
    let read = request.url().ends_with("read=1");
    let mut body = Vec::new();
    let parsed = request
        .as_reader()
        .read_to_end(&mut body)
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_slice::<Vec<TxRow>>(&body).map_err(|e| e.to_string()));
    let response = match parsed {
        Ok(rows) => {
            let mut c = Checksum {
                rows: rows.len(),
                ..Default::default()
            };
            for r in &rows {
                c.add_int64(r.tx_id);
                c.add_int64(r.ts);
                c.ints = c.ints.wrapping_add(r.user_id as u32);
                c.amount += r.amount;
                c.text_bytes += r.merchant.len();
                for x in r.merchant.bytes() {
                    c.text_sum = c.text_sum.wrapping_add(x as u32);
                }
            }
            tiny_http::Response::from_data(serde_json::to_vec(&c.reply(read)).unwrap())
        }
        Err(e) => tiny_http::Response::from_data(e.into_bytes()).with_status_code(400),
    };
    let _ = request.respond(response);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 2 {
        eprintln!("usage: handoff-consumer SOCKET");
        std::process::exit(2);
    }
    let http = tiny_http::Server::http("127.0.0.1:0").unwrap_or_else(|e| {
        eprintln!("cannot listen for HTTP: {e}");
        std::process::exit(1)
    });
    let port = http.server_addr().to_ip().map(|a| a.port()).unwrap_or(0);
    let listener = UnixListener::bind(&args[1]).unwrap_or_else(|e| {
        eprintln!("cannot listen on {}: {e}", args[1]);
        std::process::exit(1)
    });
    std::thread::spawn(move || {
        for request in http.incoming_requests() {
            serve_json(request);
        }
    });
    println!("{{\"http\":{port}}}");
    for stream in listener.incoming() {
        let stream = stream.unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1)
        });
        std::thread::spawn(move || {
            if let Err(e) = serve_socket(stream) {
                eprintln!("handoff consumer: {e}");
                std::process::exit(1);
            }
        });
    }
}
