import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ChannelClosedError, TransportError } from "../../src/errors.js";
import type { Channel } from "../../src/rpc/channel.js";
import { RpcClient } from "../../src/rpc/client.js";
import { RpcServer } from "../../src/rpc/server.js";
import { LoopbackChannel } from "../../src/transport/loopback.js";
import { type ReconnectState, type ReconnectingChannel, backoffDelay, reconnecting } from "../../src/transport/reconnect.js";

const INFO = { type: "LOOPBACK", peer: "fake", maxFrameSize: 65536 } as const;

describe("backoffDelay", () => {
  it("grows exponentially from minMs and is capped at maxMs", () => {
    const o = { minMs: 100, maxMs: 5000, jitter: 0 };
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 50, 5000].map((a) => backoffDelay(a, o)), [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
  });

  it("is jittered within [base × (1 − jitter), base] and never above maxMs", () => {
    const o = { minMs: 100, maxMs: 1000, jitter: 0.5 };
    assert.equal(backoffDelay(2, { ...o, random: () => 0 }), 400);
    assert.equal(backoffDelay(2, { ...o, random: () => 0.999999 }), 200);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(3, o);
      assert.ok(d >= 400 && d <= 800, `delay ${d}`);
      seen.add(d);
      const capped = backoffDelay(20, o);
      assert.ok(capped >= 500 && capped <= 1000, `capped ${capped}`);
    }
    assert.ok(seen.size > 20, "delays differ from one another");
  });

  it("copes with odd input", () => {
    const o = { minMs: 100, maxMs: 1000, jitter: 0 };
    assert.equal(backoffDelay(-3, o), 100);
    assert.equal(backoffDelay(Number.NaN, o), 100);
    assert.equal(backoffDelay(Infinity, o), 1000);
    assert.equal(backoffDelay(2, { minMs: 100, maxMs: 50, jitter: 0 }), 100);
    assert.equal(backoffDelay(1, { minMs: 10, maxMs: 100, jitter: 7, random: () => 0.5 }), 10);
  });
});

/** An opener over loopback pairs that fails the first `failures` times; the device ends answer Test.Echo. */
function fakeOpener(failures: number) {
  const server = new RpcServer({ localIds: ["dev"] });
  server.addHandler("Test.Echo", (p) => p);
  const deviceEnds: LoopbackChannel[] = [];
  let calls = 0;
  const opener = async (): Promise<Channel> => {
    calls++;
    if (calls <= failures) throw new TransportError(`refused #${calls}`);
    const [client, device] = LoopbackChannel.pair();
    deviceEnds.push(device);
    server.serve(device);
    return client;
  };
  return { opener, deviceEnds, server, get calls() { return calls; } };
}

function record(ch: ReconnectingChannel): Array<{ state: ReconnectState; delayMs?: number; attempt: number }> {
  const log: Array<{ state: ReconnectState; delayMs?: number; attempt: number }> = [];
  ch.onStateChange((state, d) => log.push({ state, attempt: d.attempt, ...(d.delayMs !== undefined ? { delayMs: d.delayMs } : {}) }));
  return log;
}

describe("reconnecting()", () => {
  const open: ReconnectingChannel[] = [];
  after(async () => {
    for (const c of open) await c.close();
  });

  it("retries a failing opener with growing, jittered, capped delays, then connects and forwards frames", async () => {
    const fake = fakeOpener(6);
    const ch = reconnecting(fake.opener, { info: { ...INFO }, minMs: 10, maxMs: 60, jitter: 0.5 });
    open.push(ch);
    const log = record(ch);
    await ch.whenConnected(10_000);
    assert.equal(fake.calls, 7);
    const waits = log.filter((e) => e.state === "waiting");
    assert.deepEqual(waits.map((w) => w.attempt), [1, 2, 3, 4, 5, 6]);
    const bases = [10, 20, 40, 60, 60, 60];
    waits.forEach((w, i) => {
      const base = bases[i] ?? 0;
      assert.ok(w.delayMs !== undefined && w.delayMs >= base / 2 && w.delayMs <= base, `wait ${i}: ${w.delayMs} for base ${base}`);
    });
    assert.equal(log.at(-1)?.state, "connected");
    const client = new RpcClient(ch, { src: "mos", timeoutMs: 5000 });
    assert.deepEqual(await client.call("Test.Echo", { a: 1 }), { a: 1 });
    client.detach();
  });

  it("re-opens after the link drops, keeps the same channel object, and calls work again", async () => {
    const fake = fakeOpener(0);
    const ch = reconnecting(fake.opener, { info: { ...INFO }, minMs: 5, maxMs: 20 });
    open.push(ch);
    const client = new RpcClient(ch, { src: "mos", timeoutMs: 5000 });
    await ch.whenConnected(5000);
    assert.deepEqual(await client.call("Test.Echo", 1), 1);
    const states: ReconnectState[] = [];
    ch.onStateChange((s) => states.push(s));
    await fake.deviceEnds[0]?.close(); // the far end drops the link
    assert.deepEqual(await client.call("Test.Echo", 2), 2); // waits for the new link, then succeeds
    assert.equal(fake.calls, 2);
    assert.deepEqual(states.slice(0, 3), ["waiting", "connecting", "connected"]);
    assert.equal(ch.closed, false);
    client.detach();
  });

  it("while down, send fails with a TransportError after sendWaitMs (no hang) and the channel stays usable", async () => {
    const fake = fakeOpener(1_000_000);
    const ch = reconnecting(fake.opener, { info: { ...INFO }, minMs: 20, maxMs: 50, sendWaitMs: 150 });
    open.push(ch);
    const t0 = Date.now();
    await assert.rejects(ch.send({ method: "X", id: 1 }), (e: Error) => e instanceof TransportError && /down, reconnecting: refused #\d+/.test(e.message));
    assert.ok(Date.now() - t0 < 3000);
    assert.equal(ch.closed, false);
    await assert.rejects(ch.whenConnected(50), (e: Error) => e instanceof TransportError && /not connected within 50 ms/.test(e.message));
  });

  it("close stops reconnecting: no further opens, state closed, sends fail with ChannelClosedError", async () => {
    const fake = fakeOpener(1_000_000);
    const ch = reconnecting(fake.opener, { info: { ...INFO }, minMs: 10, maxMs: 10 });
    const closed = new Promise<Error | undefined>((resolve) => ch.onClose(resolve));
    const pendingSend = ch.send({ method: "X", id: 1 });
    await new Promise((r) => setTimeout(r, 60));
    await ch.close();
    assert.equal(ch.state, "closed");
    assert.equal(await closed, undefined);
    await assert.rejects(pendingSend, ChannelClosedError);
    await assert.rejects(ch.send({ method: "X" }), ChannelClosedError);
    const n = fake.calls;
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(fake.calls, n, "no open after close");
  });

  it("close while connected closes the link; maxAttempts and fatal errors end it with the reason", async () => {
    const ok = fakeOpener(0);
    const ch = reconnecting(ok.opener, { info: { ...INFO }, minMs: 5, maxMs: 5 });
    await ch.whenConnected(5000);
    const link = ch.link;
    await ch.close();
    assert.equal(link?.closed, true);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(ok.calls, 1);

    const bad = fakeOpener(1_000_000);
    const limited = reconnecting(bad.opener, { info: { ...INFO }, minMs: 1, maxMs: 2, maxAttempts: 3 });
    const reason = await new Promise<Error | undefined>((resolve) => limited.onClose(resolve));
    assert.equal(bad.calls, 3);
    assert.match(reason?.message ?? "", /gave up after 3 failed attempts: refused #3/);
    await assert.rejects(limited.whenConnected(), (e: Error) => e instanceof ChannelClosedError && /gave up/.test(e.message));

    const fatal = fakeOpener(1_000_000);
    const f = reconnecting(fatal.opener, { info: { ...INFO }, minMs: 1, maxMs: 2, fatal: (_e, i) => !i.everConnected });
    await assert.rejects(f.whenConnected(5000), (e: Error) => e instanceof ChannelClosedError && /refused #1/.test(e.message));
    assert.equal(fatal.calls, 1);
  });

  it("abandons an open that takes longer than openTimeoutMs and tries again", async () => {
    let calls = 0;
    const [a] = LoopbackChannel.pair();
    const ch = reconnecting(
      (signal) => {
        calls++;
        if (calls === 1) return new Promise<Channel>((_r, reject) => signal.addEventListener("abort", () => reject(new Error("aborted"))));
        return Promise.resolve(a);
      },
      { info: { ...INFO }, minMs: 1, maxMs: 2, openTimeoutMs: 50 },
    );
    open.push(ch);
    await ch.whenConnected(5000);
    assert.equal(calls, 2);
    assert.match(ch.lastError?.message ?? "", /took longer than 50 ms/);
  });
});
