import { benchHandoff } from "../handoff.ts";
const sizes = Deno.args.map(Number);
const r = await benchHandoff({ sizesMB: sizes, runs: 3, consumers: ["ts", "python"], log: console.error });
for (const p of r.points) console.log(p.consumer, p.sizeMB, ["shmPut","shmHandoff","shmTotal","arrowHandoff","arrowTotal","jsonHandoff","jsonTotal"].map(k=>`${k}=${(p as any)[k]?.toFixed(2)}`).join(" "));
