import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RpcError } from "../../src/errors.js";
import { addLogSink, type LogEvent } from "../../src/log.js";
import type { Frame } from "../../src/rpc/frame.js";
import { globMatch } from "../../src/rpc/glob.js";
import { RpcServer } from "../../src/rpc/server.js";
import { LoopbackChannel } from "../../src/transport/loopback.js";

/** A server on one end of a loopback pair; `exchange` sends raw text and collects what comes back. */
function setup(server: RpcServer) {
  const [client, device] = LoopbackChannel.pair();
  server.serve(device);
  const received: Frame[] = [];
  client.onFrame((r) => received.push(r.frame));
  const exchange = async (text: string, wait = 30): Promise<Frame[]> => {
    received.length = 0;
    client.injectToPeer(text);
    await new Promise((r) => setTimeout(r, wait));
    return [...received];
  };
  return { client, device, exchange };
}

describe("glob", () => {
  it("matches whole names, case-insensitively, with * ? and alternatives", () => {
    assert.ok(globMatch("FS.*", "FS.Get"));
    assert.ok(globMatch("fs.*", "FS.Get"));
    assert.ok(!globMatch("FS.*", "XFS.Get"));
    assert.ok(!globMatch("FS.Ge", "FS.Get"));
    assert.ok(globMatch("FS.Ge?", "FS.Get"));
    assert.ok(globMatch("Sys.GetInfo|FS.*", "FS.List"));
    assert.ok(globMatch("Sys.GetInfo,FS.*", "Sys.GetInfo"));
    assert.ok(globMatch("*", "anything.at.all"));
    assert.ok(globMatch("Sys.Reboot$", "Sys.Reboot"));
    assert.ok(!globMatch("a.b", "aXb"), "dots are literal");
  });
});

describe("RpcServer", () => {
  it("answers with id, src, dst, tag in device order; 404 for unknown methods", async () => {
    const s = new RpcServer({ localIds: ["dev1"] });
    s.addHandler("Echo", (p) => p);
    const { exchange } = setup(s);
    const [r1] = await exchange('{"id":7,"src":"mos","tag":"t1","method":"Echo","params":{"a":1}}');
    assert.deepEqual(r1, { id: 7, src: "dev1", dst: "mos", tag: "t1", result: { a: 1 } });
    const [r2] = await exchange('{"id":8,"src":"mos","method":"Nope"}');
    assert.deepEqual(r2.error, { code: 404, message: "No handler for Nope" });
  });

  it("echoes digit-only ids as numbers and others as strings", async () => {
    const s = new RpcServer();
    s.addHandler("M", () => 1);
    const { exchange } = setup(s);
    assert.equal((await exchange('{"id":"123","method":"M"}'))[0].id, 123);
    assert.equal((await exchange('{"id":"ab1","method":"M"}'))[0].id, "ab1");
    assert.equal((await exchange('{"id":-4,"method":"M"}'))[0].id, "-4");
  });

  it("src is the request's dst when set; other dsts are dropped (Wrong dst)", async () => {
    const s = new RpcServer({ localIds: ["dev1"] });
    s.addHandler("M", () => 1);
    const { exchange } = setup(s);
    const events: LogEvent[] = [];
    const off = addLogSink((e) => events.push(e));
    assert.equal((await exchange('{"id":1,"dst":"dev1","method":"M"}'))[0].src, "dev1");
    assert.deepEqual(await exchange('{"id":2,"dst":"other","method":"M"}'), []);
    off();
    assert.ok(events.some((e) => /Wrong dst/.test(e.message)));
  });

  it("notifications run the handler and get no reply, even on error", async () => {
    const s = new RpcServer();
    let calls = 0;
    s.addHandler("N", () => {
      calls++;
      throw new RpcError(400, "x");
    });
    const { exchange } = setup(s);
    assert.deepEqual(await exchange('{"method":"N","params":{}}'), []);
    assert.equal(calls, 1);
  });

  it("a thrown RpcError keeps its code; any other exception is a 500 with no stack", async () => {
    const s = new RpcServer();
    s.addHandler("E1", () => {
      throw new RpcError(418, "teapot");
    });
    s.addHandler("E2", () => {
      throw new TypeError("boom at line 3");
    });
    s.addHandler("E3", async () => {
      throw "a string";
    });
    const { exchange } = setup(s);
    assert.deepEqual((await exchange('{"id":1,"method":"E1"}'))[0].error, { code: 418, message: "teapot" });
    const e2 = (await exchange('{"id":2,"method":"E2"}'))[0].error;
    assert.deepEqual(e2, { code: 500, message: "boom at line 3" });
    assert.equal((await exchange('{"id":3,"method":"E3"}'))[0].error?.code, 500);
  });

  it("latest registration wins; patterns match case-insensitively", async () => {
    const s = new RpcServer();
    s.addHandler("Foo.*", () => "pattern");
    s.addHandler("Foo.Bar", () => "exact");
    const { exchange } = setup(s);
    assert.equal((await exchange('{"id":1,"method":"Foo.Bar"}'))[0].result, "exact");
    assert.equal((await exchange('{"id":2,"method":"foo.baz"}'))[0].result, "pattern");
  });

  it("RPC.List, RPC.Describe (args_fmt and schemas), RPC.Ping", async () => {
    const s = new RpcServer();
    s.addHandler("FS.Get", () => null, {
      argsFmt: "{filename: %Q, offset: %ld, len: %ld}",
      argsSchema: { type: "object", properties: { filename: { type: "string" } } },
    });
    const { exchange } = setup(s);
    const list = (await exchange('{"id":1,"method":"RPC.List"}'))[0].result as string[];
    assert.deepEqual(list, ["FS.Get", "RPC.Ping", "RPC.Describe", "RPC.List"]);
    const d = (await exchange('{"id":2,"method":"RPC.Describe","params":{"name":"FS.Get"}}'))[0].result;
    assert.deepEqual(d, {
      name: "FS.Get",
      args_fmt: "{filename: %Q, offset: %ld, len: %ld}",
      args_schema: { type: "object", properties: { filename: { type: "string" } } },
    });
    assert.deepEqual((await exchange('{"id":3,"method":"RPC.Describe"}'))[0].error, { code: 400, message: "name is required" });
    assert.deepEqual((await exchange('{"id":4,"method":"RPC.Describe","params":{"name":"X"}}'))[0].error, { code: 404, message: "name not found" });
    assert.deepEqual((await exchange('{"id":5,"method":"RPC.Ping"}'))[0].result, { channel_info: "loopback-a" });
  });

  it("handlers get the channel, the user, an AbortSignal that fires when the channel closes", async () => {
    const s = new RpcServer();
    let aborted = false;
    s.addPreHandler((ctx) => {
      if (ctx.frame.auth) ctx.user = "joe";
    });
    s.addHandler("Who", (_p, ctx) => ({ user: ctx.user ?? null, type: ctx.channel.type }));
    s.addHandler("Wait", (_p, ctx) => new Promise((resolve) => ctx.signal.addEventListener("abort", () => resolve((aborted = true)))));
    const { exchange, client } = setup(s);
    assert.deepEqual((await exchange('{"id":1,"method":"Who","auth":{}}'))[0].result, { user: "joe", type: "LOOPBACK" });
    await exchange('{"id":2,"method":"Wait"}', 5);
    await client.close();
    await new Promise((r) => setTimeout(r, 10));
    assert.ok(aborted);
  });

  it("a pre-handler's RpcError is the answer and the handler does not run", async () => {
    const s = new RpcServer();
    let ran = false;
    s.addPreHandler(() => {
      throw new RpcError(403, "unauthorized");
    });
    s.addHandler("M", () => (ran = true));
    const { exchange } = setup(s);
    assert.deepEqual((await exchange('{"id":1,"method":"M"}'))[0].error, { code: 403, message: "unauthorized" });
    assert.equal(ran, false);
  });

  it("a result too big for the channel becomes a 500 error instead of silence", async () => {
    const s = new RpcServer();
    s.addHandler("Big", () => "x".repeat(2000));
    const [client, device] = LoopbackChannel.pair({ maxFrameSize: 1000 });
    s.serve(device);
    const got: Frame[] = [];
    client.onFrame((r) => got.push(r.frame));
    client.injectToPeer('{"id":1,"method":"Big"}');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(got[0].error?.code, 500);
    assert.match(got[0].error?.message ?? "", /exceeds/);
  });
});
