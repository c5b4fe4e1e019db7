/**
 * What every page's tables share: the header row (numeric columns right-aligned) and how
 * numbers and times are written, so the run page's tables and the lists look alike.
 */
import { html } from "./_html.ts";

export type Node = ReturnType<typeof html> | string | false;

export const time = (iso: string) => iso ? new Date(iso).toLocaleString() : "";
export const count = (n: number) => n.toLocaleString("en-US");

/** A table's header row; a column named `#…` holds numbers (right-aligned). */
export function Head({ columns }: { columns: string[] }): Node {
  return html`
    <thead>
      <tr>${columns.map((c) =>
        c.startsWith("#") ? html`<th class="num">${c.slice(1)}</th>` : html`<th>${c}</th>`
      )}</tr>
    </thead>
  `;
}
