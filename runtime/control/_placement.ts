/**
 * Stage placement: which worker runs which part of a run. The optimised IR of one workflow
 * is split into stage groups, each group is put on a worker that can run it, and each
 * worker gets its own part of the IR in which every edge to another host is a pair of
 * Flight stages (docs/cluster.md, "Placement"). It is pure: it reads IR and worker
 * descriptions and never talks to a worker, so `heddle inspect --plan` shows exactly what a
 * run would do. It must never place a group where one of its plugin runtimes is missing,
 * and never cut an edge that hands a table over in-process.
 */
import type { Ir, IrGraph, IrStage } from "../../compiler/ir/mod.ts";
import type { WorkerInfo } from "../protocol/mod.ts";

/**
 * Stages that always share a worker: connected by edges that hand a table over inside the
 * executor (two built-in stages), or a whole handler. Edges between groups carry registry
 * objects: a shared-memory handle on one host, a Flight ticket between hosts.
 */
export interface StageGroup {
  id: string;
  /** The workflow or handler the group belongs to. */
  graph: string;
  stages: string[];
  /** Plugin runtimes the group's stages need (`python`, `typescript`, ...). */
  requires: string[];
}

export interface PlacedStage {
  id: string;
  label: string;
  group: string;
  /** The worker's id, or null when the plan was made without workers. */
  worker: string | null;
}

export interface PlacedEdge {
  from: string;
  to: string;
  /** `data` between stages; `failed-rows` from a stage to its handler's `*`. */
  kind: "data" | "failed-rows";
  /** Whether the edge's batches cross hosts over Arrow Flight (else: shared memory). */
  crossesHosts: boolean;
}

export interface Placement {
  workflow: string;
  groups: (StageGroup & { worker: string | null })[];
  stages: PlacedStage[];
  /** Edges between groups; edges inside a group never leave the executor. */
  edges: PlacedEdge[];
}

/** A group no registered worker can run. */
export class PlacementError extends Error {}

/** Built-in sources that end by themselves: an edge fed only by them is bounded too. */
const BOUNDED_SOURCES = new Set(["fhub/file.read"]);

/** The connector names of the stages that carry an edge between hosts (runtime/worker). */
export const FLIGHT_SEND = "heddle/flight.send";
export const FLIGHT_RECEIVE = "heddle/flight.receive";

interface Graphs {
  workflow: IrGraph;
  /** Every graph the run reaches (the workflow first), by name. */
  all: Map<string, IrGraph>;
  /** Stage id to its stage and the handler that gets its failed rows. */
  stages: Map<string, { stage: IrStage; graph: IrGraph; handler: string | null }>;
}

/** The workflow and the handler graphs its stages reach, with each stage's handler. */
function graphsOf(ir: Ir, name: string): Graphs {
  const workflow = ir.graphs.find((g) => g.kind === "workflow" && g.name === name);
  if (!workflow) throw new PlacementError(`no workflow \`${name}\` in the program`);
  const all = new Map<string, IrGraph>();
  const stages: Graphs["stages"] = new Map();
  const pending = [workflow];
  while (pending.length > 0) {
    const graph = pending.shift()!;
    if (all.has(graph.name)) continue;
    all.set(graph.name, graph);
    // As the executor's plan: the workflow's handler catches everything below its own tier.
    const inherits = graph === workflow || graph.name !== workflow.handler;
    for (const stage of graph.stages) {
      const chosen = stage.handler ?? (inherits ? workflow.handler : null);
      const handler = chosen && chosen !== graph.name ? chosen : null;
      stages.set(stage.id, { stage, graph, handler });
      const target = handler ? ir.graphs.find((g) => g.name === handler) : undefined;
      if (handler && !target) throw new PlacementError(`handler \`${handler}\` is not declared`);
      if (target) pending.push(target);
    }
  }
  return { workflow, all, stages };
}

function isPlugin(stage: IrStage): boolean {
  return stage.kind === "call" && stage.runtime !== "builtin";
}

/** What events call a stage (the executor's label). */
function labelOf(s: IrStage): string {
  if (s.step) return s.step;
  if (s.kind === "prql" || s.kind === "lookup-join") return "prql";
  if (s.kind === "handler-input") return "*";
  return `${s.module}.${s.op}`;
}

/** The workflow's stage groups, in the order of their first stage; handlers last. */
export function stageGroups(ir: Ir, workflow: string): StageGroup[] {
  const { workflow: graph, all } = graphsOf(ir, workflow);
  const parent = new Map<string, string>();
  const find = (id: string): string => {
    let root = id;
    while (parent.get(root) !== root) root = parent.get(root)!;
    parent.set(id, root);
    return root;
  };
  const union = (a: string, b: string) => parent.set(find(a), find(b));
  for (const g of all.values()) for (const s of g.stages) parent.set(s.id, s.id);
  const byId = new Map([...all.values()].flatMap((g) => g.stages.map((s) => [s.id, s])));
  for (const s of graph.stages) {
    for (const input of s.inputs) {
      const from = byId.get(input.from);
      if (from && !isPlugin(from) && !isPlugin(s)) union(from.id, s.id);
    }
  }
  // A handler stays whole: its `*` feeds its pipeline inside one executor.
  for (const g of all.values()) {
    if (g !== graph) { for (const s of g.stages) union(s.id, g.stages[0].id); }
  }
  const groups = new Map<string, StageGroup>();
  for (const g of all.values()) {
    for (const s of g.stages) {
      const root = find(s.id);
      let group = groups.get(root);
      if (!group) {
        group = { id: `g${groups.size + 1}`, graph: g.name, stages: [], requires: [] };
        groups.set(root, group);
      }
      group.stages.push(s.id);
      if (isPlugin(s) && !group.requires.includes(s.runtime)) group.requires.push(s.runtime);
    }
  }
  return [...groups.values()];
}

/** Whether `worker` can run every stage of `group`. */
function canRun(worker: WorkerInfo, group: StageGroup): boolean {
  if (worker.runtimes === undefined) return true;
  const has = new Set([...worker.runtimes, ...(worker.labels ?? [])]);
  return group.requires.every((r) => has.has(r));
}

/**
 * Places every group of `workflow` on `workers` (null: a plan without workers): each group
 * goes to the worker that can run it and holds the fewest groups so far, ties broken in
 * the workers' order starting at `offset` (so that one-group runs take turns). Throws a
 * `PlacementError` naming every group no worker can run.
 */
export function place(
  ir: Ir,
  workflow: string,
  workers: WorkerInfo[] | null,
  offset = 0,
): Placement {
  const graphs = graphsOf(ir, workflow);
  const groups = stageGroups(ir, workflow);
  const load = new Map((workers ?? []).map((w) => [w.id, 0]));
  const unplaceable: string[] = [];
  const placed = groups.map((group) => {
    if (workers === null) return { ...group, worker: null };
    const n = workers.length;
    const candidates = workers.map((_, i) => workers[(i + offset) % n])
      .filter((w) => canRun(w, group));
    if (candidates.length === 0) {
      unplaceable.push(
        `group ${group.id} (${group.stages.join(", ")}) needs ${
          group.requires.map((r) => `\`${r}\``).join(", ")
        }`,
      );
      return { ...group, worker: null };
    }
    const best = candidates.reduce((a, b) => load.get(b.id)! < load.get(a.id)! ? b : a);
    load.set(best.id, load.get(best.id)! + 1);
    return { ...group, worker: best.id };
  });
  if (workers !== null && workers.length === 0) {
    throw new PlacementError("no worker is available");
  }
  if (unplaceable.length > 0) {
    const offered = workers!.map((w) =>
      `${w.id}: ${[...(w.runtimes ?? []), ...(w.labels ?? [])].join(", ") || "no runtimes"}`
    ).join("; ");
    throw new PlacementError(
      `no worker can run ${unplaceable.join("; ")} (workers offer ${offered})`,
    );
  }
  const groupOf = new Map(placed.flatMap((g) => g.stages.map((s) => [s, g])));
  const stages = [...graphs.stages.values()].map(({ stage }) => ({
    id: stage.id,
    label: labelOf(stage),
    group: groupOf.get(stage.id)!.id,
    worker: groupOf.get(stage.id)!.worker,
  }));
  const edges: PlacedEdge[] = [];
  const crosses = (a: string, b: string) =>
    workers !== null && groupOf.get(a)!.worker !== groupOf.get(b)!.worker;
  for (const { stage, handler } of graphs.stages.values()) {
    for (const input of stage.inputs) {
      if (groupOf.get(input.from) !== groupOf.get(stage.id)) {
        edges.push({
          from: input.from,
          to: stage.id,
          kind: "data",
          crossesHosts: crosses(input.from, stage.id),
        });
      }
    }
    const star = handler ? handlerInput(graphs.all.get(handler)!) : undefined;
    if (star && groupOf.get(star.id) !== groupOf.get(stage.id)) {
      edges.push({
        from: stage.id,
        to: star.id,
        kind: "failed-rows",
        crossesHosts: crosses(stage.id, star.id),
      });
    }
  }
  return { workflow, groups: placed, stages, edges };
}

function handlerInput(graph: IrGraph): IrStage {
  const star = graph.stages.find((s) => s.kind === "handler-input");
  if (!star) throw new PlacementError(`handler \`${graph.name}\` has no \`*\``);
  return star;
}

/** How a worker's part reaches the Flight endpoints of the others. */
export interface PartOptions {
  runId: string;
  /** Flight address by worker id. */
  flight: Map<string, string>;
}

/**
 * Each worker's part of the run: the IR with only the stages placed on it, where an edge
 * from another host starts at a `heddle/flight.receive` source standing in for the remote
 * producer (same id, so the consumers' inputs stay as they are), an edge to another host
 * ends at a `heddle/flight.send` sink after the producer, and failed rows for a handler on
 * another host go through a stand-in handler made of its `*` and a Flight sink.
 */
export function partition(ir: Ir, placement: Placement, options: PartOptions): Map<string, Ir> {
  const graphs = graphsOf(ir, placement.workflow);
  const where = new Map(placement.stages.map((s) => [s.id, s.worker!]));
  const workers = [...new Set(placement.groups.map((g) => g.worker!))];
  const flightOf = (worker: string) => {
    const address = options.flight.get(worker);
    if (!address) {
      throw new PlacementError(
        `worker ${worker} serves no Arrow Flight endpoint (--flight-listen), but an edge ` +
          "of this run crosses to or from it",
      );
    }
    return address;
  };
  const edgeId = (stage: string) => `${options.runId}/${stage}`;
  const consumersOf = new Map<string, IrStage[]>();
  for (const { stage } of graphs.stages.values()) {
    for (const input of stage.inputs) {
      consumersOf.set(input.from, [...(consumersOf.get(input.from) ?? []), stage]);
    }
  }
  const bounded = (id: string): boolean => {
    const s = graphs.stages.get(id)!.stage;
    if (s.kind === "source") return BOUNDED_SOURCES.has(`${s.module}.${s.op}`);
    return s.inputs.length > 0 && s.inputs.every((i) => bounded(i.from));
  };
  // Handlers each worker's stages send failed rows to.
  const handlersOf = new Map(workers.map((w) => [w, new Set<string>()]));
  for (const [id, { handler }] of graphs.stages) {
    if (handler) handlersOf.get(where.get(id)!)!.add(handler);
  }
  const parts = new Map<string, Ir>();
  for (const worker of workers) {
    const local = (id: string) => where.get(id) === worker;
    const graphsOut: IrGraph[] = [];
    for (const graph of graphs.all.values()) {
      const mine = graph.stages.filter((s) => local(s.id));
      if (mine.length === 0 && graph !== graphs.workflow) {
        // A handler placed elsewhere: a stand-in `*` that sends the rows to it.
        if (handlersOf.get(worker)!.has(graph.name)) {
          const star = handlerInput(graph);
          const owner = where.get(star.id)!;
          graphsOut.push({
            ...graph,
            stages: [star, sendStage(star, edgeId(star.id), [owner])],
          });
        }
        continue;
      }
      const stages: IrStage[] = [];
      const received = new Set<string>();
      for (const s of mine) {
        for (const input of s.inputs) {
          if (local(input.from) || received.has(input.from)) continue;
          received.add(input.from);
          const producer = graphs.stages.get(input.from)!.stage;
          stages.push(receiveStage(producer.id, producer, {
            edge: edgeId(producer.id),
            peer: flightOf(where.get(producer.id)!),
            self: flightOf(worker),
            consumer: worker,
            bounded: bounded(producer.id),
          }));
        }
      }
      for (const s of mine) {
        stages.push(s);
        const remote = [...new Set((consumersOf.get(s.id) ?? []).map((c) => where.get(c.id)!))]
          .filter((w) => w !== worker);
        if (remote.length > 0) stages.push(sendStage(s, edgeId(s.id), remote));
      }
      const star = graph === graphs.workflow ? undefined : handlerInput(graph);
      if (star && local(star.id)) {
        // Failed rows from other hosts enter the handler at a stand-in source per sending
        // worker that feeds what `*` feeds (so the handler keeps its tier, and runs even
        // where no local stage fails into it).
        for (const sender of workers) {
          if (sender === worker || !handlersOf.get(sender)!.has(graph.name)) continue;
          stages.push(receiveStage(`${star.id}~from~${sender}`, star, {
            edge: edgeId(star.id),
            peer: flightOf(sender),
            self: flightOf(worker),
            consumer: worker,
            bounded: false,
          }));
        }
      }
      graphsOut.push({ ...graph, stages });
    }
    // The stand-in sources of failed rows feed the consumers of the handler's `*`.
    const standIns = graphsOut.flatMap((g) => g.stages).filter((s) => s.id.includes("~from~"));
    const rewired = graphsOut.map((g) => ({
      ...g,
      stages: g.stages.map((s) => {
        const extra = standIns.filter((i) => s.inputs.some((x) => i.id.startsWith(`${x.from}~`)));
        return extra.length === 0 ? s : {
          ...s,
          inputs: [...s.inputs, ...extra.map((i) => ({ from: i.id, schema: i.output }))],
        };
      }),
    }));
    parts.set(worker, { ...ir, graphs: rewired });
  }
  return parts;
}

/** A built-in stage standing in for one end of an edge between hosts. */
function flightStage(
  id: string,
  kind: "source" | "sink",
  config: Record<string, string | boolean | string[]>,
  like: IrStage,
): IrStage {
  const [module, op] = (kind === "source" ? FLIGHT_RECEIVE : FLIGHT_SEND).split(".");
  return {
    id,
    kind,
    module,
    op,
    runtime: "builtin",
    step: null,
    config,
    resources: {},
    inputs: kind === "sink" ? [{ from: like.id, schema: like.output }] : [],
    output: kind === "source" ? like.output : null,
    prql: null,
    lookup: null,
    retry: null,
    handler: null,
    span: like.span,
    fusedFrom: [],
    calls: null,
  };
}

function receiveStage(
  id: string,
  like: IrStage,
  config: { edge: string; peer: string; self: string; consumer: string; bounded: boolean },
): IrStage {
  return flightStage(id, "source", config, like);
}

/** A sink after `producer` sending its batches to `consumers` (worker ids) on `edge`. */
function sendStage(producer: IrStage, edge: string, consumers: string[]): IrStage {
  return flightStage(`${producer.id}~flight`, "sink", { edge, consumers }, producer);
}
