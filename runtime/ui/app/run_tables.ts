/**
 * The run page's detail tables, read from the run history through the control plane: the
 * attempts of every batch that failed at least once (a retry that succeeded, or the last
 * attempt that gave up; a batch that succeeded at its first attempt is only counted), and
 * one entry per quarantined row with its `_error_*` details as the control plane knows them.
 */
import { html } from "./_html.ts";
import { count, Head, type Node } from "./_table.ts";
import type { AttemptView, QuarantinedRowView, RunView } from "../_views.ts";

function outcome(a: AttemptView): string {
  if (a.outcome !== "failed") return a.outcome;
  return a.retryInMs >= 0 ? `failed, retried in ${a.retryInMs} ms` : "failed, not retried";
}

export function AttemptsTable({ run }: { run: RunView }): Node {
  const shown = run.attempts;
  return html`
    <h3>Attempts and retries</h3>
    <p class="note attempts-total">${count(run.attemptsTotal)} attempts${shown.length === 0
      ? ", none failed."
      : "; the attempts of every batch that failed at least once:"}</p>
    ${shown.length > 0 && html`
      <table class="attempts">
        <${Head} columns=${[
          "Time",
          "Stage",
          "#Batch",
          "#Attempt",
          "#Rows",
          "Outcome",
          "Class / kind",
          "Error",
        ]} />
        <tbody>${shown.map((a) =>
          html`
            <tr class=${`attempt-row ${a.outcome}`} data-stage=${a.stage}>
              <td>${new Date(a.time).toLocaleTimeString()}</td>
              <td><code>${a.stage}</code> ${a.label}</td>
              <td class="num">${a.batch}</td>
              <td class="num attempt">${a.attempt}</td>
              <td class="num">${count(a.rows)}</td>
              <td class="outcome">${outcome(a)}</td>
              <td class="kind">${a.errorClass && `${a.errorClass} / ${a.errorKind}`}</td>
              <td class="message">${a.message}</td>
            </tr>
          `
        )}</tbody>
      </table>
    `}
    ${run.attemptsNotShown > 0 &&
      html`<p class="note">${count(run.attemptsNotShown)} more not shown (<code
        >heddle workflow status --output json</code> lists every kept attempt).</p>`}
  `;
}

/** Which row: a source's record (numbered from 1, as messages do), or a row of a batch. */
function whichRow(q: QuarantinedRowView): string {
  if (q.batch < 0) return q.row >= 0 ? `record ${q.row + 1}` : "";
  return q.row >= 0 ? `batch ${q.batch}, row ${q.row}` : `batch ${q.batch}`;
}

export function QuarantinedTable({ run }: { run: RunView }): Node {
  const rows = run.quarantined;
  return html`
    <h3>Quarantined rows</h3>
    <p class="note">Each row sent to a handler, as the control plane knows it: where and why,
      never the row's values. The rows themselves are in the handler's outputs, with the full
      <code>_error_message</code>.</p>
    ${rows.length === 0 ? html`<p class="empty">None.</p>` : html`
      <table class="quarantines">
        <${Head} columns=${[
          "Time",
          "_error_step",
          "Row",
          "Handler",
          "Class / kind",
          "Column",
          "#_error_attempt",
          "_error_message",
        ]} />
        <tbody>${rows.map((q) =>
          html`
            <tr class="quarantine-row" data-stage=${q.stage}>
              <td>${new Date(q.time).toLocaleTimeString()}</td>
              <td><code>${q.stage}</code> ${q.step}</td>
              <td class="row">${whichRow(q)}</td>
              <td class="handler">${q.handler || "none (the run failed)"}</td>
              <td class="kind">${q.errorClass} / ${q.errorKind}</td>
              <td>${q.column}</td>
              <td class="num">${q.attempt}</td>
              <td class="message">${q.message}</td>
            </tr>
          `
        )}</tbody>
      </table>
    `}
    ${run.quarantinedNotShown > 0 &&
      html`<p class="note quarantined-more">${count(run.quarantinedNotShown)} more not shown.</p>`}
  `;
}
