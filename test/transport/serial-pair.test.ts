import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AbortedError, TransportError } from "../../src/errors.js";
import { addLogSink, type LogEvent } from "../../src/log.js";
import type { DecodedFrame } from "../../src/rpc/frame.js";
import { RpcClient } from "../../src/rpc/client.js";
import { RpcServer } from "../../src/rpc/server.js";
import { HANDSHAKE, crc32 } from "../../src/transport/serial-framing.js";
import {
  type ByteLink,
  SERIAL_SEND_LIMIT,
  SerialClientChannel,
  SerialDeviceChannel,
  createSerialPair,
} from "../../src/transport/serial.js";
import { channelContract } from "../contract/channel-contract.js";

channelContract("serial in-process pair", () => {
  const pairs: Array<ReturnType<typeof createSerialPair>> = [];
  let accept: ((ch: SerialDeviceChannel) => void) | undefined;
  return {
    largestPayload: 3900,
    async start(a) {
      accept = a;
    },
    async connect() {
      const pair = createSerialPair();
      pairs.push(pair);
      accept?.(pair.device.channel as SerialDeviceChannel);
      return pair.openClient({ timeoutMs: 5000 });
    },
    async injectRaw(data) {
      // Straight onto the first device's wire, as bytes (a string as UTF-8).
      const dev = pairs[0].device.channel as SerialDeviceChannel;
      dev.receiver.push(typeof data === "string" ? Buffer.from(data, "utf8") : data);
    },
    async stop() {
      for (const p of pairs) await p.device.close();
    },
  };
});

/** A byte link that records what is written and lets the test feed input. */
function fakeLink(): { link: ByteLink; writes: Buffer[]; feed(s: string | Buffer): void; text(): string; gate?: Promise<void> } {
  const writes: Buffer[] = [];
  const f = {
    link: {} as ByteLink,
    writes,
    feed: (s: string | Buffer) => f.link.onData?.(typeof s === "string" ? Buffer.from(s, "latin1") : s),
    text: () => Buffer.concat(writes).toString("latin1"),
    gate: undefined as Promise<void> | undefined,
  };
  f.link = {
    async write(d) {
      if (f.gate) await f.gate;
      writes.push(Buffer.from(d));
    },
    async close() {},
  };
  return f;
}

const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));
const crcHex = (s: string): string => crc32(Buffer.from(s, "latin1")).toString(16).padStart(8, "0");

describe("serial device end (firmware rules)", () => {
  it("starts in newline mode and turns on the sticky \"\"\" and CRC modes as the host uses them", async () => {
    const f = fakeLink();
    const ch = new SerialDeviceChannel(f.link);
    const got: DecodedFrame[] = [];
    ch.onFrame((d) => got.push(d));
    const reply = { id: 1, src: "dev", result: 1 };
    const json = '{"id":1,"src":"dev","result":1}';

    await ch.send(reply);
    assert.equal(f.text(), `\n${json}\n`);

    f.writes.length = 0;
    f.feed('{"id":2,"method":"A"}\n');
    await ch.send(reply);
    assert.equal(f.text(), `\n${json}\n`, "newline frames without CRC change nothing");

    f.writes.length = 0;
    f.feed('"""{"id":3,"method":"B"}"""');
    await ch.send(reply);
    assert.equal(f.text(), `\n\n"""${json}"""\n`, 'after """: wrapped (and the empty frame before """ answered)');

    f.writes.length = 0;
    const j4 = '{"id":4,"method":"C"}';
    f.feed(`${j4}${crcHex(j4)}\n`);
    await ch.send(reply);
    assert.equal(f.text(), `\n"""${json}${crcHex(json)}"""\n`, "after a valid CRC: CRC on every frame");
    assert.deepEqual(
      got.map((d) => d.frame.id),
      [2, 3, 4],
    );
    await ch.close();
  });

  it("answers the handshake exactly as the firmware: \\n\"\"\"\\x04\"\"\"\\n\\n", async () => {
    const f = fakeLink();
    const ch = new SerialDeviceChannel(f.link);
    f.feed(HANDSHAKE);
    await tick(5);
    assert.equal(f.text(), '\n"""\x04"""\n\n');
    await ch.close();
  });

  it("console text never lands inside a frame: it waits while frames are being written", async () => {
    const f = fakeLink();
    const ch = new SerialDeviceChannel(f.link);
    let open!: () => void;
    f.gate = new Promise<void>((r) => (open = r));
    const sent = ch.send({ id: 7, result: "x".repeat(500) });
    ch.writeConsole("log line 1\n");
    const sent2 = ch.send({ id: 8, result: "y".repeat(500) });
    ch.writeConsole("log line 2\n");
    open();
    await Promise.all([sent, sent2]);
    await tick(5);
    assert.match(f.text(), /^\n\{"id":7,"result":"x+"\}\n\n\{"id":8,"result":"y+"\}\nlog line 1\nlog line 2\n$/);
    assert.equal(f.writes.at(-1)?.toString(), "log line 1\nlog line 2\n", "console text is its own write, after the frames");
    f.gate = undefined;
    f.writes.length = 0;
    ch.writeConsole("idle log\n");
    await tick(5);
    assert.equal(f.text(), "idle log\n", "with nothing to send, console text goes out at once");
    await ch.close();
  });

  it("coalesces: frames sent while a write is in flight go out together in the next single write", async () => {
    const f = fakeLink();
    const ch = new SerialDeviceChannel(f.link);
    let open!: () => void;
    f.gate = new Promise<void>((r) => (open = r));
    const first = ch.send({ id: 1, result: 1 });
    await tick(); // the first write is now in flight, held by the gate
    const rest = [2, 3, 4].map((id) => ch.send({ id, result: id }));
    open();
    await Promise.all([first, ...rest]);
    assert.deepEqual(
      f.writes.map((w) => w.toString("latin1")),
      ['\n{"id":1,"result":1}\n', '\n{"id":2,"result":2}\n\n{"id":3,"result":3}\n\n{"id":4,"result":4}\n'],
    );
    await ch.close();
  });

  it("sends pure ASCII: non-ASCII is escaped", async () => {
    const f = fakeLink();
    const ch = new SerialDeviceChannel(f.link);
    await ch.send({ id: 1, result: "héllo ✓ 😀" });
    assert.ok(Buffer.concat(f.writes).every((x) => x < 0x80));
    assert.match(f.text(), /h\\u00e9llo \\u2713 \\ud83d\\ude00/);
    await ch.close();
  });
});

describe("serial client end (mos rules)", () => {
  it("a device that never answers fails the handshake with a clear error naming the port", async () => {
    const f = fakeLink();
    const ch = new SerialClientChannel(f.link, "/dev/ttyFAKE0", { pacing: false });
    await assert.rejects(
      ch.handshake(450),
      (e: Error) => e instanceof TransportError && /no response to handshake on \/dev\/ttyFAKE0.*right port.*rpc-uart enabled/.test(e.message),
    );
    assert.ok(f.writes.length >= 2 && f.writes.length <= 4, `repeated every 200 ms (${f.writes.length} tries)`);
    assert.ok(f.writes.every((w) => w.equals(HANDSHAKE)));
    await ch.close();
  });

  it("the handshake can be aborted", async () => {
    const f = fakeLink();
    const ch = new SerialClientChannel(f.link, "/dev/ttyFAKE1", { pacing: false });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(ch.handshake(10_000, ac.signal), (e: Error) => e instanceof AbortedError);
    await ch.close();
  });

  it('completes the handshake on the device\'s """\\x04""" and writes """ back; frames go out with CRC', async () => {
    const f = fakeLink();
    const ch = new SerialClientChannel(f.link, "/dev/ttyFAKE2", { pacing: false });
    const hs = ch.handshake(5000);
    await tick(5);
    f.feed('\n"""\x04"""\n\n');
    await hs;
    await tick(5);
    assert.equal(f.text(), '"""\x04"""\n\n"""');
    f.writes.length = 0;
    await ch.send({ src: "mos", id: 1, method: "Sys.GetInfo" });
    const j = '{"src":"mos","id":1,"method":"Sys.GetInfo"}';
    assert.equal(f.text(), `\n"""${j}${crcHex(j)}"""\n`);
    assert.equal(ch.info.maxFrameSize, SERIAL_SEND_LIMIT);
    await ch.close();
  });

  it("paces writes in 16-byte chunks and stops writing on XOFF until XON", async () => {
    const f = fakeLink();
    const ch = new SerialClientChannel(f.link, "/dev/ttyFAKE3", { pacing: true });
    const hs = ch.handshake(5000);
    f.feed('"""\x04"""');
    await hs;
    await tick(20);
    f.writes.length = 0;
    await ch.send({ src: "mos", id: 1, method: "Test.Echo", params: "z".repeat(40) });
    assert.ok(f.writes.length > 3);
    assert.ok(f.writes.every((w) => w.length <= 16));

    f.writes.length = 0;
    f.feed("\x13");
    const sending = ch.send({ src: "mos", id: 2, method: "Test.Echo" });
    await tick(60);
    assert.equal(f.writes.length, 0, "nothing is written while XOFF holds");
    f.feed("\x11");
    await sending;
    assert.match(f.text(), /"id":2/);
    await ch.close();
  });

  it("coalesces frames queued behind a write in flight into one write; each send settles with its bytes", async () => {
    const f = fakeLink();
    const ch = new SerialClientChannel(f.link, "/dev/ttyFAKE5", { pacing: false });
    const hs = ch.handshake(5000);
    f.feed('"""\x04"""');
    await hs;
    await tick(5);
    f.writes.length = 0;
    let open!: () => void;
    f.gate = new Promise<void>((r) => (open = r));
    const settled: number[] = [];
    const first = ch.send({ src: "mos", id: 1, method: "A" }).then(() => settled.push(1));
    await tick(); // the first write is now in flight, held by the gate
    const rest = [2, 3, 4].map((id) => ch.send({ src: "mos", id, method: "A" }).then(() => settled.push(id)));
    await tick(5);
    assert.deepEqual(settled, [], "nothing settles before its bytes are written");
    open();
    await Promise.all([first, ...rest]);
    const frame = (id: number): string => {
      const j = `{"src":"mos","id":${id},"method":"A"}`;
      return `\n"""${j}${crcHex(j)}"""\n`;
    };
    assert.deepEqual(
      f.writes.map((w) => w.toString("latin1")),
      [frame(1), frame(2) + frame(3) + frame(4)],
    );
    assert.deepEqual(settled, [1, 2, 3, 4]);

    // A failed write fails every frame of its batch, and the next frames still go out.
    f.writes.length = 0;
    f.gate = new Promise<void>((r) => (open = r));
    const held = ch.send({ src: "mos", id: 5, method: "A" });
    await tick();
    const write = f.link.write;
    f.link.write = () => Promise.reject(new TransportError("boom"));
    const doomed = [6, 7].map((id) => ch.send({ src: "mos", id, method: "A" }));
    open();
    await held;
    for (const d of doomed) await assert.rejects(d, /boom/);
    f.link.write = write;
    f.gate = undefined;
    await ch.send({ src: "mos", id: 8, method: "A" });
    assert.deepEqual(
      f.writes.map((w) => w.toString("latin1")),
      [frame(5), frame(8)],
    );
    await ch.close();
  });

  it("paced: coalesced frames still go out in 16-byte chunks, each send settling once its last chunk is out", async () => {
    const f = fakeLink();
    const ch = new SerialClientChannel(f.link, "/dev/ttyFAKE6", { pacing: true });
    const hs = ch.handshake(5000);
    f.feed('"""\x04"""');
    await hs;
    await tick(20);
    f.writes.length = 0;
    const bytesAt: number[] = [];
    const written = (): number => f.writes.reduce((n, w) => n + w.length, 0);
    const sends = [1, 2, 3].map((id) => ch.send({ src: "mos", id, method: "A" }).then(() => bytesAt.push(written())));
    await Promise.all(sends);
    assert.ok(f.writes.every((w) => w.length <= 16));
    const frames = [1, 2, 3].map((id) => {
      const j = `{"src":"mos","id":${id},"method":"A"}`;
      return `\n"""${j}${crcHex(j)}"""\n`;
    });
    assert.equal(f.text(), frames.join(""));
    const ends = [frames[0].length, frames[0].length + frames[1].length, frames.join("").length];
    // Each settles after its own last byte and before the chunk after it (chunks are 16 bytes).
    bytesAt.forEach((n, i) => assert.ok(n >= ends[i] && n < ends[i] + 16, `frame ${i + 1} settled at byte ${n}, ends at ${ends[i]}`));
    await ch.close();
  });

  it("drops a frame with a corrupted CRC, logs it, and keeps the session", async () => {
    const f = fakeLink();
    const ch = new SerialClientChannel(f.link, "/dev/ttyFAKE4", { pacing: false });
    const hs = ch.handshake(5000);
    f.feed('"""\x04"""');
    await hs;
    const got: unknown[] = [];
    ch.onFrame((d) => got.push(d.frame.id));
    const events: LogEvent[] = [];
    const off = addLogSink((e) => events.push(e));
    try {
      const bad = '{"id":1,"result":1}';
      const good = '{"id":2,"result":2}';
      f.feed(`\n"""${bad}${crcHex(bad).replace(/^./, (c) => (c === "0" ? "1" : "0"))}"""\n`);
      f.feed(`\n"""${good}${crcHex(good)}"""\n`);
    } finally {
      off();
    }
    assert.deepEqual(got, [2]);
    assert.equal(ch.closed, false);
    assert.ok(events.some((e) => /CRC mismatch/.test(e.message)));
    await ch.close();
  });
});

describe("serial in-process pair", () => {
  it("receives device frames bigger than 4 KB (a real Config.Get reply often is)", async () => {
    const pair = createSerialPair();
    const server = new RpcServer({ localIds: ["dev"] });
    server.addHandler("Config.Get", () => ({ blob: "c".repeat(12_000) }));
    server.serve(pair.device.channel);
    const client = new RpcClient(await pair.openClient(), { src: "mos", timeoutMs: 5000 });
    assert.deepEqual(await client.call("Config.Get"), { blob: "c".repeat(12_000) });
    await client.close();
    await pair.device.close();
    server.stopAll();
  });

  it("carries console output to onConsole, outside frames, and keeps the device when the client closes", async () => {
    const pair = createSerialPair();
    const server = new RpcServer({ localIds: ["dev"] });
    server.addHandler("Test.Echo", (p) => p);
    server.serve(pair.device.channel);
    let consoleText = "";
    const ch = await pair.openClient({ onConsole: (d) => (consoleText += d.toString()) });
    const client = new RpcClient(ch, { src: "mos", timeoutMs: 5000 });
    pair.device.writeConsole("boot: hello\n");
    const calls = Array.from({ length: 20 }, (_, i) => client.call("Test.Echo", { i, s: "é" }));
    pair.device.writeConsole("mid: log\n");
    assert.deepEqual(await Promise.all(calls), Array.from({ length: 20 }, (_, i) => ({ i, s: "é" })));
    pair.device.writeConsole("end\n");
    assert.equal(await client.call("Test.Echo", 1), 1);
    assert.equal(consoleText, "boot: hello\nmid: log\nend\n");
    await client.close();
    await assert.rejects(pair.openClient({ timeoutMs: 100 }).then(() => pair.openClient({ timeoutMs: 100 })), /already open/);
    await pair.device.close();
    server.stopAll();
  });
});
