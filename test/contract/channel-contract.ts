/**
 * The channel contract: behaviour every transport must show, run against a transport with one line:
 *
 *   channelContract("http", () => httpFixture());
 *
 * A fixture starts the device end of the transport (handing every accepted channel to `accept`), opens
 * client channels, can inject raw bytes into the device end's wire, and stops everything it started.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { addLogSink, type LogEvent } from "../../src/log.js";
import type { Channel } from "../../src/rpc/channel.js";
import { RpcClient } from "../../src/rpc/client.js";
import { RpcServer } from "../../src/rpc/server.js";
import { ChannelClosedError, FrameTooLargeError, RpcError } from "../../src/errors.js";

export interface ContractFixture {
  /** Start the device end; every channel it accepts (one per connection, or per HTTP request) goes to accept. */
  start(accept: (channel: Channel) => void): Promise<void>;
  /** Open a client channel to the device end. */
  connect(): Promise<Channel>;
  /** Put raw bytes on the device end's wire, outside the client channel's framing (malformed input). */
  injectRaw(data: string | Buffer): Promise<void>;
  /** Cut the link from the device side (e.g. stop the server or drop the connection). */
  dropLink?(): Promise<void>;
  /** Stop everything the fixture started. */
  stop(): Promise<void>;
  /** Frames this big must pass; default: the client channel's maxFrameSize minus framing slack. */
  largestPayload?: number;
  /** Number of concurrent calls to check (default 1000). */
  inFlight?: number;
  /** Whether the device end can push notifications to the client (not on HTTP). Default true. */
  devicePushes?: boolean;
}

export function channelContract(name: string, makeFixture: () => ContractFixture): void {
  describe(`channel contract: ${name}`, { timeout: 120_000 }, () => {
    const fx = makeFixture();
    const server = new RpcServer({ localIds: ["contract_dev"] });
    const deviceChannels: Channel[] = [];
    let client: RpcClient;
    let channel: Channel;

    server.addHandler("Test.Echo", (p) => p);
    server.addHandler<{ ms?: number }>("Test.Sleep", async (p) => {
      await new Promise((r) => setTimeout(r, p?.ms ?? 10));
      return { slept: p?.ms ?? 10 };
    });
    server.addHandler("Test.Fail", () => {
      throw new RpcError(400, "bad thing");
    });
    server.addHandler("Test.Hang", () => new Promise(() => undefined));
    server.addHandler<{ method: string }>("Test.Push", async (p, ctx) => {
      await ctx.sendOnChannel({ src: "contract_dev", method: p.method, params: { pushed: true } });
      return true;
    });

    before(async () => {
      await fx.start((ch) => {
        deviceChannels.push(ch);
        server.serve(ch);
      });
      channel = await fx.connect();
      client = new RpcClient(channel, { src: "mos", timeoutMs: 10_000 });
    });

    after(async () => {
      await client?.close().catch(() => undefined);
      server.stopAll();
      await fx.stop();
    });

    it("request/response with result and error", async () => {
      assert.deepEqual(await client.call("Test.Echo", { a: 1, s: "héllo ✓" }), { a: 1, s: "héllo ✓" });
      await assert.rejects(client.call("Test.Fail"), (e: Error & { rpcCode?: number }) => e.name === "DeviceError" && e.rpcCode === 400);
      await assert.rejects(client.call("No.Such"), (e: Error & { rpcCode?: number; rpcMessage?: string }) => e.rpcCode === 404 && e.rpcMessage === "No handler for No.Such");
      const list = (await client.call("RPC.List")) as string[];
      assert.ok(list.includes("Test.Echo"));
    });

    it("many calls in flight, each answer matched to its call", async () => {
      const n = fx.inFlight ?? 1000;
      const results = await Promise.all(
        Array.from({ length: n }, (_, i) => client.call("Test.Echo", { i }, { timeout: 60_000 })),
      );
      results.forEach((r, i) => assert.deepEqual(r, { i }));
    });

    it("frames up to maxFrameSize pass, bigger ones fail with a clear error", async () => {
      const limit = channel.info.maxFrameSize;
      const payload = fx.largestPayload ?? Math.max(16, limit - 200);
      const s = "x".repeat(payload);
      assert.equal(await client.call("Test.Echo", s, { timeout: 60_000 }), s);
      await assert.rejects(client.call("Test.Echo", "y".repeat(limit + 1)), (e: Error) => e instanceof FrameTooLargeError && /exceeds/.test(e.message));
    });

    it("notifications get no reply, and device pushes reach the client", async () => {
      await client.notify("Test.Echo", { quiet: true });
      if (fx.devicePushes === false) return;
      const got = new Promise((resolve) => {
        const off = client.onNotification((n) => {
          if (n.method === "Test.Pushed") {
            off();
            resolve(n.params);
          }
        });
      });
      assert.equal(await client.call("Test.Push", { method: "Test.Pushed" }), true);
      assert.deepEqual(await withTimeout(got, 5000), { pushed: true });
    });

    it("malformed input is dropped, logged, and the device keeps answering", async () => {
      const events: LogEvent[] = [];
      const off = addLogSink((e) => events.push(e));
      try {
        for (const bad of [
          "not json",
          "[1,2,3]",
          '{"id":{"x":1},"method":"Test.Echo"}',
          '{"id":5,"method":42}',
          "\u0000\u00ff garbage \u0001",
        ]) {
          await fx.injectRaw(bad);
        }
        await fx.injectRaw(Buffer.alloc(10 * 1024 * 1024, 0x7b)); // 10 MB of '{'
        assert.deepEqual(await client.call("Test.Echo", { still: "alive" }), { still: "alive" });
      } finally {
        off();
      }
      assert.ok(
        events.some((e) => /malformed|too big|garbage|dropped|refused|exceeds/i.test(e.message)),
        "the dropped input shows in the debug log",
      );
    });

    it("closing the channel fails pending calls promptly, with no hang", async () => {
      const ch2 = await fx.connect();
      const c2 = new RpcClient(ch2, { src: "mos", timeoutMs: 30_000 });
      const pending = c2.call("Test.Hang");
      // attach the rejection check before closing: close() may resolve after the call has failed
      const failed = assert.rejects(pending, (e: Error) => e instanceof ChannelClosedError);
      await new Promise((r) => setTimeout(r, 50));
      const t0 = Date.now();
      await ch2.close();
      await failed;
      assert.ok(Date.now() - t0 < 5000);
      await assert.rejects(c2.call("Test.Echo", 1), (e: Error) => e instanceof ChannelClosedError);
    });
  });
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
