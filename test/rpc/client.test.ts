import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { AbortedError, AuthError, ChannelClosedError, DeviceError, RpcError, TimeoutError } from "../../src/errors.js";
import { RpcClient } from "../../src/rpc/client.js";
import { digestResponse, ha1 } from "../../src/rpc/digest.js";
import type { Frame } from "../../src/rpc/frame.js";
import { RpcServer } from "../../src/rpc/server.js";
import { LoopbackChannel } from "../../src/transport/loopback.js";

function pair(server: RpcServer, options = {}) {
  const [a, b] = LoopbackChannel.pair();
  server.serve(b);
  return { client: new RpcClient(a, { src: "mos", ...options }), channel: a, device: b };
}

describe("RpcClient", () => {
  it("treats error.code 0 as success and a missing result as null", async () => {
    const s = new RpcServer();
    s.addHandler("Nothing", () => undefined);
    const [a, b] = LoopbackChannel.pair();
    b.onFrame(({ frame }) => void b.send({ id: frame.id, error: { code: 0 } }));
    assert.equal(await new RpcClient(a).call("Sys.SetDebug", { level: 2 }), null);
    assert.equal(await pair(s).client.call("Nothing"), null);
  });

  it("maps a device error to DeviceError with code and message", async () => {
    const s = new RpcServer();
    s.addHandler("Bad", () => {
      throw new RpcError(400, "filename is required");
    });
    await assert.rejects(pair(s).client.call("Bad"), (e: Error) => e instanceof DeviceError && e.rpcCode === 400 && e.message === "device error 400: filename is required");
  });

  it("times out per call, aborts on signal, and late answers are dropped", async () => {
    const s = new RpcServer();
    s.addHandler("Slow", () => new Promise((r) => setTimeout(() => r(1), 100)));
    const { client } = pair(s);
    await assert.rejects(client.call("Slow", undefined, { timeout: 20 }), TimeoutError);
    const ac = new AbortController();
    const p = client.call("Slow", undefined, { signal: ac.signal });
    ac.abort();
    await assert.rejects(p, AbortedError);
    assert.equal(client.inFlight, 0);
    assert.equal(await client.call("Slow"), 1);
  });

  it("times out each call at its own deadline, in any order of timeouts, with one timer for all", async () => {
    const [a, b] = LoopbackChannel.pair();
    b.onFrame(({ frame }) => {
      if (frame.method === "Fast") void b.send({ id: frame.id, result: "fast" });
    });
    const client = new RpcClient(a);
    const t0 = performance.now();
    const settled = (p: Promise<unknown>): Promise<[string, number]> =>
      p.then(
        (v) => [String(v), performance.now() - t0],
        (e: unknown) => [e instanceof TimeoutError ? `timeout ${e.timeoutMs}` : String(e), performance.now() - t0],
      );
    const long = settled(client.call("Hang", undefined, { timeout: 400 }));
    const short = settled(client.call("Hang", undefined, { timeout: 60 }));
    const answered = settled(client.call("Fast", undefined, { timeout: 30 }));
    const middle = settled(client.call("Hang", undefined, { timeout: 200 }));
    const [l, s, f, m] = await Promise.all([long, short, answered, middle]);
    assert.equal(f[0], "fast");
    assert.deepEqual([s[0], m[0], l[0]], ["timeout 60", "timeout 200", "timeout 400"]);
    for (const [[, at], want] of [[s, 60], [m, 200], [l, 400]] as const) assert.ok(at >= want - 2 && at < want + 150, `${want} ms timeout fired at ${at.toFixed(0)} ms`);
    assert.equal(client.inFlight, 0);
  });

  it("an answered call does not hold the process open until its timeout", async () => {
    // a child process makes one call with a 30 s timeout over a loopback pair; it must exit at once
    const root = fileURLToPath(new URL("../..", import.meta.url));
    const script = `
      import { RpcClient } from "./src/rpc/client.ts";
      import { RpcServer } from "./src/rpc/server.ts";
      import { LoopbackChannel } from "./src/transport/loopback.ts";
      const [a, b] = LoopbackChannel.pair();
      new RpcServer().serve(b);
      const r = await new RpcClient(a, { timeoutMs: 30000 }).call("RPC.Ping");
      console.log(JSON.stringify(r));`;
    const t0 = Date.now();
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: root, timeout: 20_000 }, (e, stdout) => (e ? reject(e) : resolve(stdout))),
    );
    assert.match(out, /channel_info/);
    assert.ok(Date.now() - t0 < 15_000, `the process lived ${Date.now() - t0} ms`);
  });

  it("makes unique ids in mos's range and matches answers whose id comes back as a digit string", async () => {
    const [a, b] = LoopbackChannel.pair();
    const ids: unknown[] = [];
    b.onFrame(({ frame }) => {
      ids.push(frame.id);
      void b.send({ id: String(frame.id), result: frame.params });
    });
    const client = new RpcClient(a);
    const got = await Promise.all(Array.from({ length: 300 }, (_, i) => client.call("Echo", i)));
    assert.deepEqual(got, Array.from({ length: 300 }, (_, i) => i));
    assert.equal(new Set(ids).size, 300);
    for (const id of ids) assert.ok(typeof id === "number" && Number.isSafeInteger(id) && id >= 2 ** 40 && id < 2 ** 41);
    assert.equal(client.inFlight, 0);
  });

  it("keeps answering in order of arrival while a call never ends (its id is skipped, not reused)", async () => {
    const [a, b] = LoopbackChannel.pair();
    let hung: Frame | undefined;
    b.onFrame(({ frame }) => {
      if (frame.method === "Hang") hung = frame;
      else void b.send({ id: frame.id, result: frame.params });
    });
    const client = new RpcClient(a);
    const forever = client.call("Hang", undefined, { timeout: 0 });
    for (let i = 0; i < 2000; i++) assert.equal(await client.call("Echo", i), i);
    assert.equal(client.inFlight, 1);
    assert.ok(hung);
    await b.send({ id: hung.id, result: "late but matched" });
    assert.equal(await forever, "late but matched");
    // an answer to an id never sent, or already answered, is dropped
    await b.send({ id: hung.id, result: "again" });
    await b.send({ id: 12345, result: "stranger" });
    assert.equal(await client.call("Echo", "still fine"), "still fine");
  });

  it("fails every pending call promptly when the channel closes", async () => {
    const s = new RpcServer();
    s.addHandler("Hang", () => new Promise(() => undefined));
    const { client, device } = pair(s);
    const calls = Array.from({ length: 50 }, () => client.call("Hang"));
    await new Promise((r) => setTimeout(r, 10));
    await device.close();
    for (const c of calls) await assert.rejects(c, ChannelClosedError);
    await assert.rejects(client.call("Hang"), ChannelClosedError);
  });

  it("answers requests from the device with 404 and hands notifications to listeners", async () => {
    const [a, b] = LoopbackChannel.pair();
    const client = new RpcClient(a, { src: "mos" });
    const notes: string[] = [];
    client.onNotification((n) => notes.push(n.method));
    const replies: Frame[] = [];
    b.onFrame(({ frame }) => replies.push(frame));
    await b.send({ src: "dev", method: "GPIO.Int", params: { pin: 1 } });
    await b.send({ src: "dev", id: 9, method: "Some.Method" });
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(notes, ["GPIO.Int"]);
    assert.deepEqual(replies, [{ id: 9, src: "mos", dst: "dev", error: { code: 404, message: "Method [Some.Method] not found" } }]);
  });

  it("sends args instead of params in compat mode", async () => {
    const [a, b] = LoopbackChannel.pair();
    const seen: string[] = [];
    b.onFrame(({ frame }) => {
      seen.push(JSON.stringify(frame));
      void b.send({ id: frame.id, result: frame.params });
    });
    const c = new RpcClient(a, { compatArgs: true });
    assert.deepEqual(await c.call("M", { x: 1 }), { x: 1 });
    const [a2, b2] = LoopbackChannel.pair();
    const raw: string[] = [];
    b2.onFrame(() => undefined);
    const origSend = a2.send.bind(a2);
    a2.send = async (f: Frame) => {
      raw.push(JSON.stringify(f));
      return origSend(f);
    };
    void new RpcClient(a2, { compatArgs: true }).call("M", { y: 2 }, { timeout: 5 }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 10));
    assert.match(raw[0], /"args":\{"y":2\}/);
    assert.doesNotMatch(raw[0], /"params"/);
  });

  it("retries once with in-frame digest auth on a 401 challenge (spec §4.3)", async () => {
    const realm = "myproduct";
    const stored = ha1("MD5", "joe", realm, "secret");
    const s = new RpcServer();
    s.addPreHandler((ctx) => {
      const a = ctx.frame.auth;
      if (!a) throw new RpcError(401, JSON.stringify({ auth_type: "digest", nonce: 1717171717, nc: 1, realm, algorithm: "MD5" }));
      const expect = digestResponse({ algorithm: "MD5", ha1: stored, nonce: String(a.nonce), nc: "1", cnonce: String(a.cnonce), qop: "auth", method: "dummy_method", uri: "dummy_uri" });
      if (a.response !== expect || typeof a.nonce !== "number" || typeof a.cnonce !== "number") {
        throw new RpcError(401, JSON.stringify({ auth_type: "digest", nonce: 1717171717, nc: 1, realm, algorithm: "MD5" }));
      }
      ctx.user = a.username;
    });
    s.addHandler("Who", (_p, ctx) => ctx.user);
    assert.equal(await pair(s, { credentials: { username: "joe", password: "secret" } }).client.call("Who"), "joe");
    await assert.rejects(pair(s, { credentials: { username: "joe", password: "wrong" } }).client.call("Who"), AuthError);
    await assert.rejects(pair(s).client.call("Who"), (e: Error) => e instanceof AuthError && /--rpc-creds/.test(e.message));
  });
});
