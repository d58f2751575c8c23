import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeviceError } from "../../src/errors.js";
import { MemoryGpioHal } from "../../src/device/hal/gpio.js";
import { SysfsGpioHal, detectLinuxGpio } from "../../src/device/hal/gpio-linux.js";
import { registerGpioService } from "../../src/device/services/gpio.js";
import { RpcClient, type Notification } from "../../src/rpc/client.js";
import { RpcServer } from "../../src/rpc/server.js";
import { BaseChannel } from "../../src/transport/base.js";
import { LoopbackChannel } from "../../src/transport/loopback.js";

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});

function setup(): { hal: MemoryGpioHal; client: RpcClient; notes: Notification[]; next: (ms?: number) => Promise<Notification> } {
  const hal = new MemoryGpioHal();
  const server = new RpcServer({ localIds: ["remos_GPIO01"] });
  registerGpioService(server, hal);
  const [a, b] = LoopbackChannel.pair();
  server.serve(b);
  const client = new RpcClient(a, { src: "mos", timeoutMs: 5000 });
  cleanups.push(() => client.close());
  const notes: Notification[] = [];
  const waiters: ((n: Notification) => void)[] = [];
  client.onNotification((n) => {
    const w = waiters.shift();
    if (w) w(n);
    else notes.push(n);
  });
  const next = (ms = 2000): Promise<Notification> => {
    const queued = notes.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no notification within ${ms} ms`)), ms);
      waiters.push((n) => {
        clearTimeout(t);
        resolve(n);
      });
    });
  };
  return { hal, client, notes, next };
}

async function code(p: Promise<unknown>): Promise<[number, string]> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof DeviceError, String(e));
    return [e.rpcCode, e.rpcMessage];
  }
  assert.fail("expected an error");
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) assert.fail(`condition not met within ${ms} ms`);
    await sleep(5);
  }
}

/** A loopback pair whose ends say they are MQTT links (a device's default route). */
class MqttLikeChannel extends BaseChannel {
  private peerEnd: MqttLikeChannel | undefined;
  static pair(): [MqttLikeChannel, MqttLikeChannel] {
    const a = new MqttLikeChannel();
    const b = new MqttLikeChannel();
    a.peerEnd = b;
    b.peerEnd = a;
    return [a, b];
  }
  private constructor() {
    super({ type: "MQTT", peer: "broker", maxFrameSize: 1 << 20 });
  }
  protected sendText(text: string): Promise<void> {
    const peer = this.peerEnd;
    queueMicrotask(() => peer?.deliver(text));
    return Promise.resolve();
  }
  private deliver(text: string): void {
    this.receiveText(text);
  }
  protected async closeLink(): Promise<void> {
    const peer = this.peerEnd;
    this.peerEnd = undefined;
    queueMicrotask(() => peer?.close());
  }
}

describe("GPIO service", () => {
  it("Read / ReadOut / Write / Toggle with their modes and errors", async () => {
    const { hal, client } = setup();
    hal.simulateInput(4, 1);
    assert.deepEqual(await client.call("GPIO.Read", { pin: 4 }), { value: 1 });
    assert.equal(hal.pinState(4).mode, "input");
    assert.equal(await client.call("GPIO.Write", { pin: 2, value: 1 }), null);
    assert.equal(hal.pinState(2).mode, "output");
    assert.deepEqual(await client.call("GPIO.ReadOut", { pin: 2 }), { value: 1 });
    assert.deepEqual(await client.call("GPIO.Toggle", { pin: 2 }), { value: 0 });
    assert.deepEqual(await client.call("GPIO.Toggle", { pin: 2 }), { value: 1 });
    assert.deepEqual(await client.call("GPIO.Read", { pin: 2 }), { value: 0 }, "GPIO.Read makes the pin an input: it floats low");
    assert.equal(hal.pinState(2).mode, "input");
    // open drain: 1 releases the line, the pull decides
    await client.call("GPIO.Write", { pin: 5, value: 1, od: true });
    assert.equal(hal.pinState(5).level, 0);
    assert.deepEqual(await code(client.call("GPIO.Read", {})), [400, "pin is required"]);
    assert.deepEqual(await code(client.call("GPIO.Write", { pin: 2 })), [400, "pin and value are required"]);
    assert.deepEqual(await code(client.call("GPIO.Write", { pin: 2, value: 2 })), [400, "value must be 0 or 1"]);
    const [c, m] = await code(client.call("GPIO.Read", { pin: 99 }));
    assert.equal(c, 400);
    assert.match(m, /error setting pin mode: no such pin 99/);
  });

  it("Blink toggles the pin and stops with on_ms=0", async () => {
    const { hal, client } = setup();
    const levels: number[] = [];
    await hal.watch(7, (l) => levels.push(l));
    await client.call("GPIO.Blink", { pin: 7, on_ms: 10, off_ms: 10 });
    for (let i = 0; i < 100 && levels.length < 4; i++) await sleep(10);
    assert.ok(levels.length >= 4, `levels ${levels}`);
    await client.call("GPIO.Blink", { pin: 7, on_ms: 0, off_ms: 0 });
    const n = levels.length;
    await sleep(50);
    assert.ok(levels.length <= n + 1);
    assert.deepEqual(await code(client.call("GPIO.Blink", { pin: 7, on_ms: 10 })), [400, "pin, on_ms and off_ms are required"]);
    assert.equal((await code(client.call("GPIO.Blink", { pin: 7, on_ms: 70000, off_ms: 1 })))[0], 400);
  });

  it("SetIntHandler sends a well-formed GPIO.Int notification to the caller on matching edges", async () => {
    const { hal, client, next, notes } = setup();
    await client.call("GPIO.SetIntHandler", { pin: 0, edge: "neg", pull: "up" });
    assert.equal(hal.pinState(0).pull, "up");
    assert.equal(hal.pinState(0).level, 1);
    hal.simulateInput(0, 0); // press: falling edge
    const n = await next();
    assert.equal(n.method, "GPIO.Int");
    assert.equal(n.frame.id, undefined, "a notification has no id");
    assert.equal(n.frame.dst, "mos");
    assert.equal(n.frame.src, "remos_GPIO01");
    const p = n.params as { pin: number; ts: number; value: number };
    assert.equal(p.pin, 0);
    assert.equal(p.value, 0);
    assert.ok(Math.abs(p.ts - Date.now() / 1000) < 5);
    hal.simulateInput(0, 1); // release: rising edge, not reported
    await sleep(20);
    assert.equal(notes.length, 0);

    await client.call("GPIO.SetIntHandler", { pin: 3, edge: "any", method: "Btn.Event", dst: "watcher" });
    hal.simulateInput(3, 1);
    const m = await next();
    assert.equal(m.method, "Btn.Event");
    assert.equal(m.frame.dst, "watcher");
    assert.deepEqual({ ...(m.params as object), ts: 0 }, { pin: 3, ts: 0, value: 1 });

    assert.equal(await client.call("GPIO.RemoveIntHandler", { pin: 3 }), null);
    hal.simulateInput(3, 0);
    await sleep(20);
    assert.equal(notes.length, 0);
    assert.equal((await code(client.call("GPIO.RemoveIntHandler", { pin: 3 })))[0], 500);
    assert.deepEqual(await code(client.call("GPIO.SetIntHandler", { pin: 3 })), [400, "pin and edge are required"]);
    assert.equal((await code(client.call("GPIO.SetIntHandler", { pin: 3, edge: "up" })))[0], 400);
    assert.equal((await code(client.call("GPIO.SetIntHandler", { pin: 3, edge: "any", pull: "sideways" })))[0], 400);
  });

  it("routes notifications by dst as the firmware does: named channel, then default route, then the caller", async () => {
    const hal = new MemoryGpioHal();
    const server = new RpcServer({ localIds: ["remos_GPIO02"] });
    registerGpioService(server, hal);
    const link = (src: string, type?: "MQTT") => {
      const [a, b] = type ? MqttLikeChannel.pair() : LoopbackChannel.pair();
      server.serve(b);
      const client = new RpcClient(a, { src, timeoutMs: 5000 });
      const got: Notification[] = [];
      client.onNotification((n) => got.push(n));
      cleanups.push(() => client.close());
      return { client, got, device: b };
    };
    const watcher = link("watcher");
    await watcher.client.call("RPC.Ping"); // its channel now carries the name "watcher"
    const setter = link("mos");
    await setter.client.call("GPIO.SetIntHandler", { pin: 5, edge: "any", dst: "watcher" });
    hal.simulateInput(5, 1);
    await waitFor(() => watcher.got.length === 1);
    assert.equal(watcher.got[0].frame.dst, "watcher");
    assert.equal(setter.got.length, 0);

    // the setter's link goes away (as a one-shot HTTP request does): no named channel, no default
    // route, no fallback -> dropped; with an MQTT link up, the default route carries it
    const oneShot = link("mos");
    await oneShot.client.call("GPIO.SetIntHandler", { pin: 6, edge: "any" });
    await oneShot.device.close();
    await setter.device.close();
    hal.simulateInput(6, 1);
    await sleep(30);
    const cloud = link("cloud", "MQTT");
    await cloud.client.call("RPC.Ping");
    hal.simulateInput(6, 0);
    await waitFor(() => cloud.got.length === 1);
    assert.deepEqual([cloud.got[0].method, cloud.got[0].frame.dst, (cloud.got[0].params as { value: number }).value], ["GPIO.Int", "mos", 0]);
    assert.equal(watcher.got.length, 1);
  });

  it("debounce_ms reports one event for a bouncing edge and none for a glitch", async () => {
    const { hal, client, next, notes } = setup();
    await client.call("GPIO.SetIntHandler", { pin: 9, edge: "any", debounce_ms: 40 });
    for (const l of [1, 0, 1, 0, 1] as const) hal.simulateInput(9, l);
    const n = await next();
    assert.equal((n.params as { value: number }).value, 1);
    await sleep(60);
    assert.equal(notes.length, 0, "the bounces were swallowed");
    hal.simulateInput(9, 0);
    hal.simulateInput(9, 1); // a glitch that comes back within the window
    await sleep(80);
    assert.equal(notes.length, 0);
  });
});

describe("sysfs GPIO adapter", () => {
  it("is not detected on a host without /sys/class/gpio, and drives a sysfs tree", async () => {
    const root = await mkdtemp(join(tmpdir(), "remos-sysfs-"));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    assert.equal(detectLinuxGpio({ root: join(root, "absent") }), undefined);
    await writeFile(join(root, "export"), "");
    await mkdir(join(root, "gpio17"));
    await writeFile(join(root, "gpio17", "direction"), "in");
    await writeFile(join(root, "gpio17", "value"), "0");
    const hal = detectLinuxGpio({ root, pollMs: 5 });
    assert.ok(hal instanceof SysfsGpioHal);
    await hal.setMode(17, "output");
    assert.equal(await readFile(join(root, "gpio17", "direction"), "utf8"), "out");
    await hal.write(17, 1);
    assert.equal(await readFile(join(root, "gpio17", "value"), "utf8"), "1");
    assert.equal(await hal.readOut(17), 1);
    await assert.rejects(hal.setPull(17, "up"), /pull resistors/);
    await hal.setMode(17, "input");
    const seen: number[] = [];
    const stop = await hal.watch(17, (l) => seen.push(l));
    await writeFile(join(root, "gpio17", "value"), "0");
    for (let i = 0; i < 200 && seen.length === 0; i++) await sleep(5);
    stop();
    hal.close();
    assert.deepEqual(seen, [0]);
    await assert.rejects(hal.read(18), /did not appear after export/);
  });
});
