/** Types for the `hpack` package (RFC 7541 header compression), which ships none. */
export default class HPACK {
  /** Encodes header fields with this side's dynamic table. */
  encode(fields: [string, string][]): Uint8Array;
  /** Decodes a header block with the peer's dynamic table; throws on malformed input. */
  decode(block: Uint8Array): [string, string][];
  setTableSize(size: number): void;
  /** The table of the peer's header fields (its entry count bounds valid indexes). */
  lDynamicTable: { length: number };
}
