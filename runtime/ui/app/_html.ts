/**
 * `html`, htm's tagged template bound to Preact's `h`: the pages' only way of writing markup.
 * htm's type declarations are read as CommonJS by the type checker (its package is not
 * marked as a module), so its default export is typed here by hand; the bundle uses the
 * ES module build, whose default export is this object.
 */
import { h, type VNode } from "preact";
import htmModule from "htm";

interface Htm {
  bind<R>(
    h: (type: never, props: Record<string, unknown>, ...children: unknown[]) => R,
  ): (strings: TemplateStringsArray, ...values: unknown[]) => R | R[];
}

export const html = (htmModule as unknown as Htm).bind(h as never) as (
  strings: TemplateStringsArray,
  ...values: unknown[]
) => VNode;
