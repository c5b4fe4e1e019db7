/**
 * The web UI as a person uses it, in a real headless Chromium against a real `heddle local`:
 * the workflow list and a refused deploy's diagnostics, the quickstart's graph, a run
 * started with the Start button whose row counts equal the rows in the files it wrote, the
 * row its handler caught with its error message, a failing workflow and the failed-only
 * filter, and Stop draining a running workflow. Screenshots are saved as artefacts.
 */
import assert from "node:assert/strict";
import type { Page } from "puppeteer-core";
import { heddle } from "../_cli.ts";
import { EXAMPLE_PLUGINS } from "../e2e/_fixtures.ts";
import { browserTest, newPage, screenshot, texts } from "./_browser.ts";
import { type Daemon, deploy, startDaemon } from "./_daemon.ts";

interface IrStage {
  id: string;
  kind: string;
  handler: string | null;
  config: Record<string, unknown>;
}
interface IrGraph {
  name: string;
  kind: string;
  handler: string | null;
  stages: IrStage[];
}

/** The quickstart's stages as `heddle inspect --ir` has them: the workflow's and its handler's. */
async function quickstartStages(dir: string): Promise<IrStage[]> {
  const inspected = await heddle(["inspect", "--ir", "--output", "json", `${dir}/quickstart.he`], {
    env: { HEDDLE_PATH: EXAMPLE_PLUGINS },
  });
  assert.equal(inspected.code, 0, inspected.stderr);
  const graphs = (JSON.parse(inspected.stdout) as { graphs: IrGraph[] }).graphs;
  const main = graphs.find((g) => g.name === "Quickstart")!;
  const handler = graphs.find((g) => g.name === main.handler)!;
  return [...main.stages, ...handler.stages];
}

/** Rows in a file a sink wrote: JSON lines, or CSV lines after the header. */
async function rowsIn(path: string): Promise<number> {
  const lines = (await Deno.readTextFile(path)).split("\n").filter((l) => l !== "");
  return path.endsWith(".csv") ? lines.length - 1 : lines.length;
}

/** Waits until the run page shows `status` (the page updates itself; nothing reloads it). */
async function waitForStatus(page: Page, status: string, timeout = 60_000): Promise<void> {
  await page.waitForFunction(
    `document.querySelector(".meta .status")?.textContent === ${JSON.stringify(status)}`,
    { timeout },
  );
}

/** The stage table of the run page: stage id to its numbers as shown. */
async function stageTable(page: Page): Promise<Map<string, Record<string, string>>> {
  const rows = await page.$$eval(".stage-row", (trs) =>
    trs.map((tr) => {
      const cells = [...tr.querySelectorAll("td")].map((td) => td.textContent!.trim());
      return {
        id: tr.getAttribute("data-stage")!,
        rowsIn: cells[2],
        rowsOut: cells[3],
        attempts: cells[6],
        retries: cells[7],
      };
    }));
  return new Map(rows.map((r) => [r.id, r]));
}

const number = (text: string | number) => Number(String(text).replace(/,/g, ""));

/** Planted in a bad record's cells: the control plane must never show it. */
const PLANTED = "PLANTED7731";

/** The cells' texts of each row `selector` matches, once one is there. */
async function rowsOf(page: Page, selector: string): Promise<string[][]> {
  await page.waitForSelector(selector);
  return await page.$$eval(
    selector,
    (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent!.trim())),
  );
}

/** Presses the Start button of a workflow's page; returns the new run's id. */
async function startFromUi(page: Page, daemon: Daemon, workflow: string): Promise<string> {
  await page.goto(`${daemon.origin}/workflows/${workflow}`);
  await page.waitForSelector("button.start");
  await page.click("button.start");
  await page.waitForFunction(() => /^\/runs\/[0-9a-f-]{36}$/.test(location.pathname));
  return new URL(page.url()).pathname.split("/")[2];
}

browserTest(
  "the UI shows workflows, graphs, live runs, quarantined rows and stops runs",
  async (browser) => {
    const daemon = await startDaemon();
    try {
      for (const file of ["quickstart.he", "broken.he", "slow.he"]) {
        assert.equal(await deploy(daemon, file), 0, `deploy ${file}`);
      }
      assert.notEqual(await deploy(daemon, "typo.he"), 0, "typo.he does not compile");
      // A schedule that does not fire during the test (midnight on 1 January, UTC).
      const scheduled = await heddle(
        ["workflow", "schedule", ...daemon.server, "Slow", "--cron", "0 0 1 1 *"],
      );
      assert.equal(scheduled.code, 0, scheduled.stderr);
      const { page, errors } = await newPage(browser);

      // The front page: the workflow list and the refused deploy with its diagnostics.
      await page.goto(daemon.url);
      assert.equal(new URL(page.url()).search, "", "the token leaves the address bar");
      await page.waitForSelector(".workflow-row");
      assert.deepEqual(
        (await texts(page, ".workflow-row td:first-child")).sort(),
        ["Broken", "Quickstart", "Slow"],
      );
      const schedules = await page.$$eval(
        ".workflow-row",
        (trs) =>
          trs.map((tr) => [tr.cells[0].textContent!.trim(), tr.cells[4].textContent!.trim()]),
      );
      assert.deepEqual(schedules.map(([name, s]) => [name, s.replace(/, next .*/, "")]).sort(), [
        ["Broken", "none"],
        ["Quickstart", "none"],
        ["Slow", "cron 0 0 1 1 *"],
      ]);
      assert.match(schedules.find(([name]) => name === "Slow")![1], /, next \d+\/\d+\/\d{4}/);
      const diagnostics = await texts(page, ".deploy-error li");
      assert.ok(
        diagnostics.some((d) => /typo\.he:4:\d+ error\[HE\d+\]: .*nosuch/.test(d)),
        diagnostics.join("\n"),
      );
      await screenshot(page, "front-deployed");

      // The quickstart's graph: one node per stage of the workflow and of its handler.
      const stages = await quickstartStages(daemon.dir);
      await page.goto(`${daemon.origin}/workflows/Quickstart`);
      await page.waitForSelector("svg.graph g.stage");
      assert.equal((await page.$$("svg.graph g.stage")).length, stages.length);
      assert.equal((await page.$$("svg.graph g.stage.graph-handler")).length, 2);
      const edgeTitles = await texts(page, "svg.graph g.edge title");
      for (const column of [/amount: float64 \(nullable\)/, /_error_message: utf8/]) {
        assert.ok(edgeTitles.some((t) => column.test(t)), `${column}: ${edgeTitles.join("\n")}`);
      }
      await screenshot(page, "workflow", true);

      // A run started with the Start button: its numbers equal the rows in the files written.
      // One more bad record carries planted values: the page must never show them.
      await Deno.writeTextFile(
        `${daemon.dir}/data/transactions.csv`,
        `9001,4,${PLANTED}_AMOUNT,${PLANTED}_MERCHANT,settled,2026-03-02T09:00:00Z\n`,
        { append: true },
      );
      const quickstartRun = await startFromUi(page, daemon, "Quickstart");
      await waitForStatus(page, "succeeded");
      await page.waitForSelector(".quarantine-row");
      const table = await stageTable(page);
      const sinks = stages.filter((s) => s.kind === "sink");
      assert.equal(sinks.length, 4);
      let written = 0;
      for (const sink of sinks) {
        const rows = await rowsIn(`${daemon.dir}/${sink.config.path}`);
        assert.equal(number(table.get(sink.id)!.rowsOut), rows, `${sink.id} ${sink.config.path}`);
        if (!sink.id.startsWith("rejected.")) written += rows;
      }
      assert.equal(number((await texts(page, ".totals .rows-out"))[0]), written);

      // One entry per row the handler caught, as the control plane knows it: the step, the
      // record, the handler, the error's class, kind and column, the message without the
      // record's text, which only the handler's file holds (docs/security.md).
      const rejected = (await Deno.readTextFile(`${daemon.dir}/data/out/rejected.jsonl`))
        .trim().split("\n").map((l) => JSON.parse(l) as Record<string, string | number>);
      assert.equal(rejected.length, 3, "the quickstart's 2 bad records and the planted one");
      const entries = await rowsOf(page, ".quarantine-row");
      assert.equal(entries.length, rejected.length);
      for (const [k, row] of rejected.entries()) {
        const [, step, which, handler, kind, , attempt, message] = entries[k];
        assert.equal(step, `Quickstart.0 ${row._error_step}`);
        assert.match(which, /^record \d+$/);
        assert.ok(message.includes(`: ${which}: `), `${which}: ${message}`);
        assert.equal(handler, "rejected");
        assert.equal(kind, "transient / record");
        assert.equal(number(attempt), row._error_attempt);
        assert.ok(String(row._error_message).startsWith(`${message}: `), message);
      }
      const planted = entries[
        rejected.findIndex((r) => String(r._error_message).includes(PLANTED))
      ];
      assert.deepEqual(planted.slice(4, 6), ["transient / record", "amount"]);
      assert.ok(!(await page.content()).includes(PLANTED), "no planted value in the page");
      const api = await page.evaluate(
        (id) => fetch(`/api/runs/${id}`).then((r) => r.text()),
        quickstartRun,
      );
      assert.ok(api.includes(`"quarantined":[`) && !api.includes(PLANTED), api.slice(0, 400));
      assert.equal(number((await texts(page, ".totals .quarantined"))[0]), rejected.length);
      // The run's stored log, as `heddle workflow logs` has it.
      const log = await texts(page, ".log .line");
      assert.ok(log.some((l) => /info run succeeded/.test(l)), log.join("\n"));
      const handled = `warn [Quickstart.0] ${rejected.length} rows sent to handler`;
      assert.ok(log.some((l) => l.includes(handled)), log.join("\n"));
      await screenshot(page, "run", true);

      // "Start again" on the finished run's page starts a new run of the same workflow.
      assert.deepEqual(await texts(page, "button.start"), ["Start again"]);
      await page.click("button.start");
      await page.waitForFunction(`location.pathname !== "/runs/${quickstartRun}"`);
      await waitForStatus(page, "succeeded");
      assert.equal(await page.$eval(".meta a", (a) => a.textContent), "Quickstart");

      // A failing workflow: failed, with retries counted and the row no handler caught.
      const brokenRun = await startFromUi(page, daemon, "Broken");
      await waitForStatus(page, "failed");
      await page.waitForSelector(".run-error");
      const broken = await stageTable(page);
      assert.ok(number(broken.get("Broken.1")!.retries) >= 1, JSON.stringify([...broken]));
      // Its attempts, from the run history: the batch's first attempt failed and was retried,
      // the retry failed too and gave up; the same ones `workflow status` has over gRPC.
      const attempts = await rowsOf(page, ".attempt-row");
      const plugin = "plugin step `faulty/steps.double` failed with USER_CODE";
      const at = (n: string, outcome: RegExp) =>
        attempts.find((a) => a[1].startsWith("Broken.1") && a[3] === n && outcome.test(a[5]));
      assert.deepEqual(at("1", /^failed, retried in \d+ ms$/)?.slice(6), [
        "transient / plugin",
        plugin,
      ], JSON.stringify(attempts));
      assert.deepEqual(at("2", /^failed, not retried$/)?.slice(6), ["transient / plugin", plugin]);
      const shown = await heddle([
        "workflow",
        "status",
        "--output",
        "json",
        ...daemon.server,
        brokenRun,
      ]);
      assert.equal(shown.code, 0, shown.stderr);
      const stored = JSON.parse(shown.stdout) as {
        attempts: { stage: string; outcome: string }[];
        attemptsTotal: number;
      };
      const failedAttempts = (list: string[][]) => list.filter((a) => a[5].startsWith("failed"));
      assert.equal(
        stored.attempts.filter((a) => a.outcome === "failed").length,
        failedAttempts(attempts).length,
      );
      assert.equal(
        number((await texts(page, ".attempts-total"))[0].split(" ")[0]),
        stored.attemptsTotal,
      );
      const [failedRow] = await rowsOf(page, ".quarantine-row");
      assert.match(failedRow[2], /^batch \d+, row \d+$/);
      assert.equal(failedRow[3], "none (the run failed)");
      assert.equal(failedRow[4], "transient / plugin");
      // The step's own message quotes the row's value: the control plane shows its code only.
      assert.equal(failedRow[7], plugin);
      assert.ok((await texts(page, ".log .line.error")).length > 0);
      await screenshot(page, "failed-run", true);

      // The failed-only filter keeps the failed run and drops the one that succeeded.
      await page.goto(`${daemon.origin}/runs`);
      await page.waitForSelector(`.run-row[data-run="${quickstartRun}"]`);
      await page.click('input[name="failed"]');
      await page.waitForFunction(
        `location.search === "?status=failed" && document.querySelector("table.runs") !== null`,
      );
      assert.ok(new URL(page.url()).search.includes("status=failed"));
      assert.deepEqual(
        await page.$$eval(".run-row", (trs) => trs.map((tr) => tr.getAttribute("data-run"))),
        [
          brokenRun,
        ],
      );
      assert.deepEqual(await texts(page, ".run-row .status"), ["failed"]);
      await screenshot(page, "failed-only", true);

      // Stop drains a running workflow: it ends `stopped` and its file is not published.
      await startFromUi(page, daemon, "Slow");
      await waitForStatus(page, "running");
      await page.waitForFunction(
        `(document.querySelector('.stage-row[data-stage="Slow.0"] .rows-out')?.textContent ?? "0")` +
          ` !== "0"`,
        { timeout: 30_000 },
      );
      await page.click("button.stop");
      await waitForStatus(page, "stopped");
      assert.equal(await Deno.readTextFile(`${daemon.dir}/slow/out.csv`), "previous\n");
      await screenshot(page, "stopped-run");
      await page.goto(daemon.origin);
      await page.waitForSelector(".run-row");
      await screenshot(page, "front", true);
      assert.deepEqual(errors, [], "no script errors in the page");
    } finally {
      await daemon.stop();
    }
  },
);
