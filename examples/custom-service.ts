/**
 * A device with a custom RPC service, runnable as is:
 *
 *   node --import tsx examples/custom-service.ts [STATE_DIR]
 *
 * It starts a remos device agent with a `Counter.*` service whose methods declare argument schemas (checked
 * before the handler runs; a mismatch is answered 400 with the reason) and appear in RPC.List and
 * RPC.Describe. It then calls them over an in-process channel, prints the answers, and stops. Add
 * `httpListen: "127.0.0.1:8080"` to reach it with `mos --port http://127.0.0.1:8080/rpc call Counter.Add '{"by":2}'`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RpcError, type RpcServer, startDevice } from "../src/device/index.js";
import { DeviceError, RpcClient } from "../src/index.js";

/** The custom service: a counter kept in memory (it resets at reboot, as RAM does). */
function registerCounterService(server: RpcServer): void {
  let value = 0;
  server.addHandler<{ by?: number }>("Counter.Add", (p) => {
    value += p?.by ?? 1;
    return { value };
  }, {
    argsFmt: "{by: %d}",
    description: "Add `by` (default 1) to the counter and return the new value",
    argsSchema: { type: "object", properties: { by: { type: "integer", minimum: -1000, maximum: 1000 } } },
    resultSchema: { type: "object", properties: { value: { type: "integer" } }, required: ["value"] },
  });
  server.addHandler<{ value: number }>("Counter.Set", (p) => {
    if (p.value === 13) throw new RpcError(409, "13 is unlucky"); // any RpcError becomes the reply's error
    value = p.value;
    return null;
  }, {
    argsFmt: "{value: %d}",
    description: "Set the counter",
    argsSchema: { type: "object", properties: { value: { type: "integer" } }, required: ["value"] },
  });
}

async function main(): Promise<void> {
  const own = process.argv[2] === undefined;
  const dir = process.argv[2] ?? (await mkdtemp(join(tmpdir(), "remos-example-")));
  const agent = await startDevice({ dir, httpListen: "off", services: (server) => registerCounterService(server) });
  const client = new RpcClient(agent.connectLoopback(), { timeoutMs: 5000 });
  try {
    console.log("device", agent.id);
    console.log("Counter.Add {by:5} →", await client.call("Counter.Add", { by: 5 }));
    console.log("RPC.Describe Counter.Add →", JSON.stringify(await client.call("RPC.Describe", { name: "Counter.Add" })));
    for (const [method, params] of [["Counter.Add", { by: "five" }], ["Counter.Set", {}], ["Counter.Set", { value: 13 }]] as const) {
      try {
        await client.call(method, params);
      } catch (e) {
        if (!(e instanceof DeviceError)) throw e;
        console.log(`${method} ${JSON.stringify(params)} → error ${e.rpcCode}: ${e.rpcMessage}`);
      }
    }
  } finally {
    await client.close();
    await agent.stop();
    if (own) await rm(dir, { recursive: true, force: true });
  }
}

await main();
