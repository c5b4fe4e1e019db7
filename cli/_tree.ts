/**
 * A generic, readable rendering of a syntax tree for `heddle inspect --ast`: one node a
 * line, `Kind start..end` followed by its scalar fields, children indented below. It works
 * on any tree of `{kind, span}` objects, so it never falls behind the AST's shape.
 */

interface TreeNode {
  kind: string;
  span: { start: number; end: number };
}

function isNode(value: unknown): value is TreeNode {
  return typeof value === "object" && value !== null && "kind" in value && "span" in value;
}

/** Renders `root` as indented text. */
export function treeToText(root: TreeNode): string {
  const lines: string[] = [];
  // An explicit stack instead of recursion: deeply nested input must not overflow.
  const stack: { node: TreeNode; depth: number; label: string }[] = [
    { node: root, depth: 0, label: "" },
  ];
  while (stack.length > 0) {
    const { node, depth, label } = stack.pop()!;
    const scalars: string[] = [];
    const children: { node: TreeNode; label: string }[] = [];
    for (const [key, value] of Object.entries(node as object)) {
      if (key === "kind" || key === "span") continue;
      if (isNode(value)) children.push({ node: value, label: `${key}: ` });
      else if (Array.isArray(value)) {
        value.forEach((item, i) => {
          if (isNode(item)) children.push({ node: item, label: `${key}[${i}]: ` });
        });
      } else if (value !== null && typeof value !== "object") {
        scalars.push(`${key}=${JSON.stringify(value)}`);
      }
    }
    const span = `${node.span.start}..${node.span.end}`;
    lines.push(
      `${"  ".repeat(depth)}${label}${node.kind} ${span}${scalars.map((s) => " " + s).join("")}`,
    );
    for (let i = children.length - 1; i >= 0; i--) {
      stack.push({ node: children[i].node, depth: depth + 1, label: children[i].label });
    }
  }
  return lines.join("\n") + "\n";
}
