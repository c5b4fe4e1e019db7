"""ClickHouse's HTTP interface, served over the ClickHouse engine that the chdb-core wheel ships.

Why this exists: CI reaches only package registries. Debian 12 ships clickhouse-server 18.16
(2018), which predates typed query parameters (`{name:Type}`), so the official
@clickhouse/client cannot bind parameters against it. The chdb-core wheel on PyPI carries a
current ClickHouse engine (26.x) as a library, but no network server. This file puts the
subset of the HTTP interface that @clickhouse/client uses in front of that engine: SQL
parsing, types, functions, table engines, formats and parameter binding are ClickHouse's
own; only the HTTP framing is ours.

It must never listen beyond loopback, never pretend to support sessions, auth or
compression it does not implement, and never swallow an engine error: errors go back as
ClickHouse sends them (status 500, `Code: N. DB::Exception: ...` body,
X-ClickHouse-Exception-Code header), which is what clients parse.

Usage: python chdb_http.py --data DIR --port 8123
"""

import argparse
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import chdb

# URL parameters that belong to the HTTP layer rather than to query settings. Credentials
# are accepted and ignored: the server binds to loopback and serves tests only.
HTTP_ONLY_PARAMS = {
    "query", "query_id", "database", "default_format", "user", "password", "quota_key",
    "session_id", "session_timeout", "session_check", "role", "compress", "decompress",
    "buffer_size", "wait_end_of_query", "enable_http_compression",
    "send_progress_in_http_headers", "add_http_cors_header", "http_headers_progress_interval_ms",
}
ERROR_CODE = re.compile(r"Code: (\d+)\.")
SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Engine:
    """One chdb database directory; each request gets its own connection so that settings and
    `USE` from one request never leak into the next."""

    def __init__(self, data_dir):
        self.url = f"file:{data_dir}"
        # Keeps the database open for the server's lifetime so per-request connections are
        # cheap, and serves as the liveness check at start-up.
        self.anchor = chdb.connect(self.url)
        self.version = self.anchor.query("SELECT version()", "TabSeparated").bytes().decode().strip()
        self.lock = threading.Lock()

    def run(self, sql, fmt, params, settings, database):
        with self.lock:
            conn = chdb.connect(self.url)
            try:
                if database:
                    conn.query(f"USE `{database.replace('`', '')}`")
                for name, value in settings.items():
                    conn.query(f"SET {name} = {sql_literal(value)}")
                return conn.query(sql, fmt, params=params)
            finally:
                conn.close()


def sql_literal(value):
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    engine = None  # set by main()

    def log_message(self, format, *args):  # noqa: A002 - the base class names it so
        pass

    def do_GET(self):
        path = urlsplit(self.path).path
        if path in ("/ping", "/"):
            if path == "/ping" or "query=" not in self.path:
                return self.reply(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
        self.handle_query(b"")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self.read_chunked()
        else:
            body = self.rfile.read(length) if length else b""
        self.handle_query(body)

    def read_chunked(self):
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def handle_query(self, body):
        if self.headers.get("Content-Encoding"):
            return self.fail(
                "Code: 1. DB::Exception: this test server does not decompress request bodies. "
                "(NOT_IMPLEMENTED)",
            )
        if self.headers.get("Content-Type", "").startswith("multipart/form-data"):
            return self.fail(
                "Code: 1. DB::Exception: this test server does not accept multipart "
                "requests. (NOT_IMPLEMENTED)",
            )
        query = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        # As in ClickHouse: the `query` parameter comes first, the body continues it (the
        # body holds the rows of an INSERT ... FORMAT X).
        text = query.get("query", "")
        if body:
            text = f"{text}\n{body.decode('utf-8')}" if text else body.decode("utf-8")
        params = {k[len("param_"):]: v for k, v in query.items() if k.startswith("param_")}
        settings = {
            k: v for k, v in query.items()
            if not k.startswith("param_") and k not in HTTP_ONLY_PARAMS and SETTING_NAME.match(k)
        }
        fmt = query.get("default_format") or "TabSeparated"
        query_id = query.get("query_id") or str(uuid.uuid4())
        try:
            result = self.engine.run(text, fmt, params, settings, query.get("database"))
        except Exception as error:  # chdb raises its own error type with the engine's text
            return self.fail(str(error), query_id)
        summary = {
            "read_rows": str(result.rows_read()),
            "read_bytes": str(result.bytes_read()),
            "written_rows": str(result.rows_written()),
            "written_bytes": str(result.bytes_written()),
            "elapsed_ns": str(int(result.elapsed() * 1e9)),
        }
        self.reply(200, result.bytes() or b"", {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Format": fmt,
            "X-ClickHouse-Summary": json.dumps(summary),
            "X-ClickHouse-Server-Display-Name": "heddle-chdb",
        })

    def fail(self, message, query_id=""):
        match = ERROR_CODE.search(message)
        text = message.strip()
        if "(version " not in text:
            text += f" (version {self.engine.version})"
        self.reply(500, (text + "\n").encode(), {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-ClickHouse-Exception-Code": match.group(1) if match else "1",
            "X-ClickHouse-Query-Id": query_id,
        })

    def reply(self, status, payload, headers):
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="database directory")
    parser.add_argument("--port", type=int, default=8123)
    args = parser.parse_args()
    Handler.engine = Engine(args.data)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"ClickHouse {Handler.engine.version} (chdb) serving HTTP on 127.0.0.1:{args.port}",
          flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
