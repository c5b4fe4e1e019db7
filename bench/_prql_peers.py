"""Peers of the PRQL benchmark (bench/prql.ts): DuckDB and Polars, each on one thread, run the
same queries over the same Arrow IPC files and report cold and warm times (and warm CPU time)
as JSON on stdout.

Usage: python3 bench/_prql_peers.py duckdb|polars DIR RUNS < queries.json
queries.json maps a query name to the SQL prql-js generates for it (DuckDB runs that SQL;
Polars runs the hand-written equivalent below). A missing package prints {"skipped": "..."}.
Every query materialises its whole result as an Arrow table, as Heddle's engine does. This
script must never time anything but the query and the materialisation of its result.
"""

import json
import os
import statistics
import sys
import time

os.environ.setdefault("POLARS_MAX_THREADS", "1")


def polars_queries(pl):
    c = pl.col
    return {
        "filter": lambda t: t["input"].filter(c("amount") > 10000).select("user_id", "amount"),
        "derive": lambda t: t["input"]
        .with_columns(v=c("amount") * c("qty") / 100)
        .filter((c("v") > 50) & (c("qty") != 7)),
        "group_aggregate": lambda t: t["input"]
        .group_by("name")
        .agg(n=pl.len(), s=c("amount").sum(), a=c("qty").mean()),
        "join": lambda t: t["input"]
        .join(t["users"], on="user_id")
        .select("user_id", "amount", "country"),
        "sort": lambda t: t["input"].sort("amount", descending=True, nulls_last=True),
        "sort_take": lambda t: t["input"].sort("amount", descending=True, nulls_last=True).head(100),
        "take": lambda t: t["input"].head(1000),
        "window": lambda t: t["input"].with_columns(
            running=c("amount").cum_sum().over("name")
        ),
    }


def main():
    engine, directory, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    queries = json.load(sys.stdin)
    try:
        import pyarrow as pa

        if engine == "duckdb":
            import duckdb
        else:
            import polars as pl
    except ImportError as e:
        print(json.dumps({"skipped": f"{engine} is not installed ({e.name})"}))
        return
    t0 = time.perf_counter()
    tables = {}
    for name in ("input", "users"):
        with pa.memory_map(os.path.join(directory, f"{name}.arrow")) as source:
            tables[name] = pa.ipc.open_file(source).read_all()
    if engine == "duckdb":
        con = duckdb.connect(config={"threads": 1})
        con.execute("SET enable_progress_bar = false")  # it prints to stdout after 2 s
        for name, table in tables.items():
            con.register(name, table)
        run = lambda name: con.sql(queries[name]).to_arrow_table()
    else:
        frames = {name: pl.from_arrow(table) for name, table in tables.items()}
        ops = polars_queries(pl)
        run = lambda name: ops[name](frames).to_arrow()
    load_ms = (time.perf_counter() - t0) * 1000
    out = {"load_ms": load_ms, "queries": {}}
    for name in queries:
        if engine == "polars" and name not in polars_queries(pl):
            continue
        times, cpu, rows = [], [], None
        for _ in range(runs + 1):
            c = time.process_time()
            t = time.perf_counter()
            result = run(name)
            times.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
            rows = result.num_rows
        out["queries"][name] = {
            "cold_ms": times[0],
            "warm_ms": statistics.median(times[1:]),
            "warm_cpu_ms": statistics.median(cpu[1:]),
            "rows": rows,
        }
    print(json.dumps(out))


main()
