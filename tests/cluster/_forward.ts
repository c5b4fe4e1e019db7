/**
 * A TCP relay run inside a node (tests/cluster/_netns.ts): it listens on the node's own
 * loopback at each given port and connects each connection to the same port on the host's
 * bridge address, where `NetnsCluster.exposeHostPort` relays it to the host's loopback. So a
 * service that listens on the host's 127.0.0.1, and advertises that address (a Kafka
 * broker), is reached from the node at the very address it advertises.
 *
 *   _forward.ts HOST_ADDRESS PORT...    prints `ready` once every port listens
 */
const [target, ...ports] = Deno.args;
for (const port of ports.map(Number)) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  (async () => {
    for await (const inbound of listener) {
      Deno.connect({ hostname: target, port }).then((outbound) => {
        inbound.readable.pipeTo(outbound.writable).catch(() => {});
        outbound.readable.pipeTo(inbound.writable).catch(() => {});
      }, () => inbound.close());
    }
  })();
}
console.log("ready");
