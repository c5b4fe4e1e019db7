/**
 * Parquet for `fhub/file`, through `parquet-wasm` (the Rust `parquet` and `arrow` crates built
 * to WebAssembly, maintained by the GeoArrow project): reading streams the file row group by
 * row group from a file-backed Blob, with only the requested columns decoded, and writing turns
 * Arrow batches into one zstd-compressed file. It exists because Parquet is where data teams
 * keep their tables. It must never change a value on the way: a column whose type in the file
 * differs from the step's declared type is refused, not cast.
 */
import { openAsBlob } from "node:fs";
import {
  type DataType,
  Field,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  tableFromIPC,
  tableToIPC,
  Type,
  vectorFromArray,
} from "apache-arrow";
import * as wasm from "parquet-wasm";
import { toArrowField } from "./_arrow.ts";
import { type ColumnSpec, ConnectorError } from "./_types.ts";

/** A dictionary-encoded column is delivered as its plain value type. */
function plainField(f: Field): Field {
  return f.type.typeId === Type.Dictionary
    ? new Field(f.name, (f.type as unknown as { dictionary: DataType }).dictionary, f.nullable)
    : f;
}

/** A batch of `schema` from a batch whose columns may be dictionary-encoded. */
function plainBatch(table: Table, schema: Schema): Table {
  const children = schema.fields.map((f) => {
    const column = table.getChild(f.name)!;
    if (column.type.typeId !== Type.Dictionary) return column.data[0];
    return vectorFromArray([...column], f.type).data[0];
  });
  const data = makeData({
    type: new Struct(schema.fields),
    length: table.numRows,
    nullCount: 0,
    children,
  });
  return new Table([new RecordBatch(schema, data)]);
}

/** An open Parquet file: its (projected) schema and a stream of batches. */
export interface ParquetInput {
  schema: Schema;
  batches(batchRows: number): AsyncIterable<Table>;
}

/**
 * Opens `path`, keeping `columns` (all when null). Columns the step declares must exist with
 * exactly the declared type.
 */
export async function openParquet(
  path: string,
  columns: string[] | null,
  pinned: ColumnSpec[] | null,
): Promise<ParquetInput> {
  let file: wasm.ParquetFile;
  try {
    file = await wasm.ParquetFile.fromFile(await openAsBlob(path));
  } catch (e) {
    throw new ConnectorError("config", `cannot read Parquet file \`${path}\`: ${e}`, {
      cause: e,
    });
  }
  const all = tableFromIPC(file.schema().intoIPCStream()).schema;
  const names = all.fields.map((f) => f.name);
  for (const c of columns ?? []) {
    if (!names.includes(c)) {
      throw new ConnectorError("config", `\`${path}\` has no column \`${c}\` (it has ${names})`);
    }
  }
  const schema = new Schema(
    all.fields.filter((f) => !columns || columns.includes(f.name)).map(plainField),
  );
  for (const spec of pinned ?? []) {
    const field = schema.fields.find((f) => f.name === spec.name);
    if (!spec.type) continue;
    const want = String(toArrowField({ ...spec, type: spec.type }).type);
    if (!field) {
      throw new ConnectorError("config", `\`${path}\` has no column \`${spec.name}\``);
    }
    if (String(field.type) !== want) {
      throw new ConnectorError(
        "config",
        `column \`${spec.name}\` of \`${path}\` is ${field.type}, the step declares ${want}`,
      );
    }
  }
  return {
    schema,
    async *batches(batchRows: number) {
      const stream = await file.stream({
        batchSize: batchRows,
        columns: columns ?? undefined,
      });
      for await (const batch of stream as AsyncIterable<wasm.RecordBatch>) {
        // `intoIPCStream` consumes the WebAssembly batch: nothing is left to free.
        yield plainBatch(tableFromIPC(batch.intoIPCStream()), schema);
      }
    },
  };
}

/** A Parquet file (zstd-compressed) holding `table`. */
export function parquetBytes(table: Table): Uint8Array {
  const input = wasm.Table.fromIPCStream(tableToIPC(table, "stream"));
  const props = new wasm.WriterPropertiesBuilder().setCompression(wasm.Compression.ZSTD).build();
  return wasm.writeParquet(input, props);
}
