/**
 * The run page's detail tables, read from the run history through the control plane: the
 * attempts of every batch that failed at least once (a retry that succeeded, or the last
 * attempt that gave up). A batch that succeeded at its first attempt is only counted.
 */
import { html } from "./_html.ts";
import { count, Head, type Node } from "./_table.ts";
import type { AttemptView, RunView } from "../_views.ts";

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
