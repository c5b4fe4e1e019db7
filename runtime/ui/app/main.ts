/**
 * The web UI's pages, in the browser: Preact components written with htm (tagged templates,
 * so no JSX step), routed on `location.pathname`, fed by the JSON API and kept live by
 * server-sent events. Bundled into `../_assets.generated.ts` by `deno task ui:build`; it
 * imports nothing at run time, so the page works offline and from a compiled binary.
 */
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { html } from "./_html.ts";
import type { FrontPage, RunRow, RunView, WorkflowPage } from "../_views.ts";
import { Graph } from "./graph.ts";
import { count, Head, type Node, time } from "./_table.ts";
import { AttemptsTable, QuarantinedTable } from "./run_tables.ts";

function navigate(path: string): void {
  history.pushState(null, "", path);
  dispatchEvent(new PopStateEvent("popstate"));
}

/** Follows same-page links without reloading. */
function onLinkClick(e: MouseEvent): void {
  const link = (e.target as Element).closest("a");
  if (!link || link.origin !== location.origin || e.ctrlKey || e.metaKey || e.button !== 0) {
    return;
  }
  e.preventDefault();
  navigate(link.pathname + link.search);
}

async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(path);
  if (!response.ok) throw new Error((await response.json()).error ?? response.statusText);
  return await response.json() as T;
}

async function post(path: string): Promise<{ id?: string; error?: string }> {
  const response = await fetch(path, { method: "POST" });
  return await response.json();
}

/**
 * Data from `path`, fetched again whenever the server says something changed (`run`: the
 * stream of that run's views, which carries the data itself).
 */
function useLive<T>(path: string, run: string | null = null): { data: T | null; error: string } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    let closed = false;
    const load = () =>
      getJson<T>(path).then(
        (d) => !closed && (setData(d), setError("")),
        (e) => !closed && setError(String(e.message)),
      );
    load();
    const events = new EventSource(`/api/stream${run ? `?run=${encodeURIComponent(run)}` : ""}`);
    events.onmessage = (m) => {
      if (closed) return;
      if (run) setData(JSON.parse(m.data) as T);
      else load();
    };
    return () => {
      closed = true;
      events.close();
    };
  }, [path, run]);
  return { data, error };
}

function duration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function Status({ status }: { status: string }): Node {
  return html`<span class=${`status status-${status}`}>${status}</span>`;
}

function RunsTable({ runs }: { runs: RunRow[] }): Node {
  if (runs.length === 0) return html`<p class="empty">No runs yet.</p>`;
  return html`
    <table class="runs">
      <${Head} columns=${[
        "Run",
        "Workflow",
        "Status",
        "Started",
        "Duration",
        "#Rows in",
        "#Rows out",
        "#Quarantined",
      ]} />
      <tbody>${runs.map((r) =>
        html`
          <tr class="run-row" data-run=${r.id}>
            <td><a href=${`/runs/${r.id}`}>${r.id.slice(0, 8)}</a></td>
            <td><a href=${`/workflows/${encodeURIComponent(r.workflow)}`}>${r.workflow}</a></td>
            <td>
              <${Status} status=${r.status} />
            </td>
            <td>${time(r.startedAt)}</td>
            <td>${duration(r.durationMs)}</td>
            <td class="num rows-in">${count(r.rowsIn)}</td>
            <td class="num rows-out">${count(r.rowsOut)}</td>
            <td class="num quarantined">${count(r.quarantined)}</td>
          </tr>
        `
      )}</tbody>
    </table>
  `;
}

function Front(): Node {
  const { data, error } = useLive<FrontPage>("/api/front");
  if (!data) return html`<p class="error">${error || "Loading…"}</p>`;
  return html`
    <section><h2>Workflows</h2>${data.workflows.length === 0
      ? html`<p class="empty">Nothing deployed yet: <code>heddle workflow deploy FILE</code>.</p>`
      : html`
        <table class="workflows">
          <${Head} columns=${["Name", "Version", "Deployed", "Last run", "Schedule"]} />
          <tbody>${data.workflows.map((w) =>
            html`
              <tr class="workflow-row">
                <td><a href=${`/workflows/${encodeURIComponent(w.name)}`}>${w.name}</a></td>
                <td>${w.version}</td>
                <td>${time(w.deployedAt)}</td>
                <td>${w.lastRun
                  ? html`<a href=${`/runs/${w.lastRun.id}`}><${Status} status=${w.lastRun.status} /></a>`
                  : "never"}</td>
                <td class="schedule">${w.schedule
                  ? `${w.schedule.when}, next ${time(w.schedule.nextAt)}`
                  : "none"}</td>
              </tr>
            `
          )}</tbody>
        </table>
      `}</section>
      ${data.deployErrors.length > 0 &&
        html`<section class="deploy-errors"><h2>Failed deploys</h2>${
          data.deployErrors.map((d) =>
            html`
              <div class="deploy-error">
                <p><b>${d.file}</b> at ${time(d.at)}</p>
                <ul>${d.diagnostics.map((x) =>
                  html`
                    <li
                      class=${x.severity}><code>${x.file}:${x.line}:${x.column}</code> ${x
                        .severity}[${x.code}]: ${x.message}</li>
                  `
                )}</ul>
              </div>
            `
          )
        }</section>`}
      <section>
      <h2>Recent runs <a class="more" href="/runs">all runs</a></h2>
      <${RunsTable} runs=${data.runs} />
    </section>
  `;
}

function Runs(): Node {
  const params = new URLSearchParams(location.search);
  const workflow = params.get("workflow") ?? "";
  const failed = params.get("status") === "failed";
  const query = new URLSearchParams();
  if (workflow) query.set("workflow", workflow);
  if (failed) query.set("status", "failed");
  const { data } = useLive<RunRow[]>(`/api/runs?${query}`);
  const front = useLive<FrontPage>("/api/front").data;
  const change = (key: string, value: string) => {
    if (value) query.set(key, value);
    else query.delete(key);
    navigate(`/runs?${query}`);
  };
  return html`<section><h2>Runs</h2>
    <form class="filters" onSubmit=${(e: Event) => e.preventDefault()}>
      <label>Workflow <select name="workflow" value=${workflow}
        onChange=${(e: Event) => change("workflow", (e.target as HTMLSelectElement).value)}>
        <option value="">all</option>${
    (front?.workflows ?? []).map((w) => html`<option value=${w.name}>${w.name}</option>`)
  }</select></label>
      <label><input type="checkbox" name="failed" checked=${failed}
        onChange=${(e: Event) =>
    change("status", (e.target as HTMLInputElement).checked ? "failed" : "")} /> failed only</label>
    </form>
    ${data ? html`<${RunsTable} runs=${data} />` : html`<p>Loading…</p>`}</section>`;
}

function StartButton({ workflow, label }: { workflow: string; label: string }): Node {
  const [error, setError] = useState("");
  const start = async () => {
    const run = await post(`/api/workflows/${encodeURIComponent(workflow)}/start`);
    if (run.id) navigate(`/runs/${run.id}`);
    else setError(run.error ?? "could not start");
  };
  return html`<button class="start" onClick=${start}>${label}</button>${
    error && html`<span class="error">${error}</span>`
  }`;
}

function Workflow({ name }: { name: string }): Node {
  const { data, error } = useLive<WorkflowPage>(`/api/workflows/${encodeURIComponent(name)}`);
  if (!data) return html`<p class="error">${error || "Loading…"}</p>`;
  const w = data.workflow;
  return html`
    <section>
      <h2>Workflow ${w.name}</h2>
      <p class="meta">version ${w.version} · deployed ${time(w.deployedAt)} · ${w.file}</p>
      ${w.schedule &&
        html`<p class="meta schedule">${`schedule: ${w.schedule.when} (UTC), next ${
          time(w.schedule.nextAt)
        }${
          w.schedule.lastAt ? `, last ${time(w.schedule.lastAt)}: ${w.schedule.lastOutcome}` : ""
        }`}</p>`}
      <${StartButton} workflow=${w.name} label="Start" />
      <h3>Graph</h3>
      <${Graph} graph=${data.graph} />
      <h3>Runs</h3>
      <${RunsTable} runs=${data.runs} />
    </section>
  `;
}

function Run({ id }: { id: string }): Node {
  const { data, error } = useLive<RunView>(`/api/runs/${encodeURIComponent(id)}`, id);
  const [stopping, setStopping] = useState(false);
  if (!data) return html`<p class="error">${error || "Loading…"}</p>`;
  const r = data.run;
  const live = r.status === "running" || r.status === "pending" || r.status === "draining";
  const stop = async () => {
    setStopping(true);
    await post(`/api/runs/${encodeURIComponent(id)}/stop`);
  };
  return html`<section><h2>Run <code>${r.id}</code></h2>
    <p class="meta">${"workflow "}<a href=${`/workflows/${
    encodeURIComponent(r.workflow)
  }`}>${r.workflow}</a>${" · "}<${Status} status=${r.status} />${` · started ${
    time(r.startedAt)
  } by ${r.origin || "?"} · ${duration(r.durationMs)} · worker ${r.worker || "none"}`}</p>
    <p class="totals">${"rows in "}<b class="rows-in">${
    count(r.rowsIn)
  }</b>${" · rows out "}<b class="rows-out">${
    count(r.rowsOut)
  }</b>${" · quarantined "}<b class="quarantined">${count(r.quarantined)}</b></p>
    ${r.error && html`<p class="error run-error">${r.error}</p>`}
    ${
    live
      ? html`<button class="stop" disabled=${
        stopping || r.status === "draining"
      } onClick=${stop}>Stop</button>`
      : html`<${StartButton} workflow=${r.workflow} label="Start again" />`
  }
    <h3>Stages</h3>
    <table class="stages"><${Head} columns=${[
    "Stage",
    "Kind",
    "#Rows in",
    "#Rows out",
    "#Rows/s",
    "#Batches",
    "#Attempts",
    "#Retries",
    "#Latency mean / max",
    "#Quarantined",
  ]} /><tbody>${
    data.stages.map((s) =>
      html`
        <tr class="stage-row" data-stage=${s.id}>
          <td><code>${s.id}</code> ${s.label}</td>
          <td>${s.kind}</td>
          <td class="num rows-in">${count(s.rowsIn)}</td>
          <td class="num rows-out">${count(s.rowsOut)}</td>
          <td class="num">${count(s.rowsPerSecond)}</td>
          <td class="num">${count(s.batches)}</td>
          <td class="num">${count(s.attempts)}</td>
          <td class="num">${count(s.retries)}</td>
          <td class="num">${s.latencyMeanMs} / ${s.latencyMaxMs} ms</td>
          <td class="num">${count(s.quarantined)}</td>
        </tr>
      `
    )
  }</tbody></table>
    <${AttemptsTable} run=${data} />
    <${QuarantinedTable} run=${data} />
    <h3>Log</h3>
    <pre class="log">${
    data.logs.map((l) =>
      html`<div class=${`line ${l.level}`}>${new Date(l.time).toISOString()} ${l.level} ${
        l.stage ? `[${l.stage}] ` : ""
      }${l.text}</div>`
    )
  }</pre></section>`;
}

function App(): Node {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const update = () => setPath(location.pathname + location.search);
    addEventListener("popstate", update);
    return () => removeEventListener("popstate", update);
  }, []);
  const [route, arg] = path.split("?")[0].split("/").slice(1).map(decodeURIComponent);
  const page = route === "runs" && arg
    ? html`<${Run} id=${arg} key=${arg} />`
    : route === "runs"
    ? html`<${Runs} key=${path} />`
    : route === "workflows" && arg
    ? html`<${Workflow} name=${arg} key=${arg} />`
    : html`<${Front} />`;
  return html`
    <header><a href="/" class="brand">Heddle</a>
        <nav><a href="/">Workflows</a><a href="/runs">Runs</a>
        <a href="/runs?status=failed">Failed runs</a></nav></header>
    <main>${page}</main>
  `;
}

document.addEventListener("click", onLinkClick);
render(html`<${App} />`, document.getElementById("app")!);
