/**
 * The serial transport over real pseudo-terminals (socat), both ends through the serialport package.
 */
import assert from "node:assert/strict";
import { constants, realpathSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type FileHandle, open } from "node:fs/promises";
import type { Duplex } from "node:stream";
import { after, before, describe, it } from "node:test";
import type { Channel } from "../../src/rpc/channel.js";
import { RpcClient } from "../../src/rpc/client.js";
import { RpcServer } from "../../src/rpc/server.js";
import { TransportError } from "../../src/errors.js";
import { type LogEvent, addLogSink } from "../../src/log.js";
import { crc32 } from "../../src/transport/serial-framing.js";
import { type SerialDeviceEnd, connect, openRawSerial, serveSerial } from "../../src/transport/serial.js";
import { openChannel } from "../../src/transport/url.js";
import { channelContract } from "../contract/channel-contract.js";
import { type PtyPair, socatMissing, startPtyPair } from "../helpers/pty.js";

const missing = socatMissing();
const crcHex = (s: string): string => crc32(Buffer.from(s, "latin1")).toString(16).padStart(8, "0");

/** Collect what a raw port receives; `until` waits (with a timeout) for a pattern. */
function collector(port: Duplex): { text(): string; until(re: RegExp, ms?: number): Promise<string>; clear(): void } {
  let buf = "";
  port.on("data", (d: Buffer) => (buf += d.toString("latin1")));
  return {
    text: () => buf,
    clear: () => (buf = ""),
    async until(re, ms = 3000) {
      const t0 = Date.now();
      while (!re.test(buf)) {
        if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${re} in ${JSON.stringify(buf.slice(-300))}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      return buf;
    },
  };
}

async function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

function closeRaw(port: Duplex): Promise<void> {
  return new Promise((resolve) => {
    if (port.destroyed) return resolve();
    port.once("close", () => resolve());
    port.destroy();
  });
}

if (missing) {
  describe("serial over socat pty", () => {
    it("needs socat", { skip: missing }, () => undefined);
  });
} else {
  channelContract("serial over socat pty", () => {
    const started: Array<{ pty: PtyPair; dev: SerialDeviceEnd }> = [];
    let accept: ((ch: Channel) => void) | undefined;
    let inject: FileHandle | undefined;
    return {
      // A 4 KB UART: 200 concurrent calls, not 1000; payloads under the 4092-byte send limit.
      inFlight: 200,
      largestPayload: 3900,
      async start(a) {
        accept = a;
      },
      async connect() {
        const pty = await startPtyPair();
        const dev = await serveSerial({ path: pty.b });
        started.push({ pty, dev });
        accept?.(dev.channel);
        // A second handle on the first host side writes raw bytes into the first device's wire.
        inject ??= await open(pty.a, constants.O_WRONLY | constants.O_NOCTTY);
        return connect(new URL("serial://" + pty.a), { timeoutMs: 5000, noPacing: true });
      },
      async injectRaw(data) {
        await inject?.write(typeof data === "string" ? Buffer.from(data, "utf8") : data);
      },
      async stop() {
        await inject?.close();
        for (const s of started) {
          await s.dev.close();
          await s.pty.stop();
        }
      },
    };
  });

  describe("serial over socat pty: behaviour", { timeout: 20_000 }, () => {
    const ptys: PtyPair[] = [];
    const cleanups: Array<() => Promise<unknown>> = [];
    const server = new RpcServer({ localIds: ["esp32_TEST"] });
    server.addHandler("Test.Echo", (p) => p);

    async function pty(): Promise<PtyPair> {
      const p = await startPtyPair();
      ptys.push(p);
      return p;
    }

    after(async () => {
      for (const c of cleanups.reverse()) await c().catch(() => undefined);
      server.stopAll();
      for (const p of ptys) await p.stop();
    });

    it("connects through a bare --port path, with mos's pacing, and calls", async () => {
      const p = await pty();
      const dev = await serveSerial({ path: p.b });
      cleanups.push(() => dev.close());
      server.serve(dev.channel);
      const ch = await openChannel(p.a, { timeoutMs: 5000 });
      const client = new RpcClient(ch, { src: "mos", timeoutMs: 5000 });
      cleanups.push(() => client.close());
      assert.equal(ch.info.type, "UART");
      assert.equal(ch.info.peer, p.a);
      assert.equal(dev.channel.info.peer, "UART0");
      const params = { s: "héllo ✓ 😀 ünïcödé", n: [1, 2, 3] };
      assert.deepEqual(await client.call("Test.Echo", params), params);
    });

    it("fails the handshake with a clear error when nothing answers on the port", async () => {
      const p = await pty();
      const t0 = Date.now();
      await assert.rejects(
        connect(new URL("serial://" + p.a), { timeoutMs: 700 }),
        (e: Error) =>
          e instanceof TransportError && e.message.includes(`no response to handshake on ${p.a}`) && /is it the right port\? is rpc-uart enabled\?/.test(e.message),
      );
      assert.ok(Date.now() - t0 < 5000);
    });

    it("client: drops a corrupted-CRC frame, passes console junk to onConsole, and keeps the session", async () => {
      const p = await pty();
      const raw = await openRawSerial(p.b);
      cleanups.push(() => closeRaw(raw));
      const seen = collector(raw);
      let consoleText = "";
      const connecting = connect(new URL("serial://" + p.a), {
        timeoutMs: 5000,
        noPacing: true,
        onConsole: (d) => (consoleText += d.toString()),
      });
      await seen.until(/"""\x04"""\n\n/);
      raw.write('I (123) boot: starting\n\n"""\x04"""\n\n');
      const ch = await connecting;
      cleanups.push(() => ch.close());
      await seen.until(/"""\x04"""\n\n"""$/);
      const client = new RpcClient(ch, { src: "mos", timeoutMs: 5000 });
      const call = client.call("Test.Echo", 1);
      const req = await seen.until(/\n"""(\{.*\})[0-9a-f]{8}"""\n$/);
      const id = /"id":(\d+)/.exec(req)?.[1];
      const good = `{"id":${id},"src":"esp32_TEST","dst":"mos","result":"good"}`;
      const bad = `{"id":${id},"src":"esp32_TEST","dst":"mos","result":"bad"}`;
      raw.write(`\n"""${bad}00000000"""\nlog: between frames\n\n"""${good}${crcHex(good)}"""\n`);
      assert.equal(await call, "good");
      assert.equal(ch.closed, false);
      assert.equal(consoleText, "I (123) boot: starting\nlog: between frames\n");
    });

    it("device: answers the EOF frame, starts in newline mode, turns on sticky \"\"\" and CRC modes", async () => {
      const p = await pty();
      const dev = await serveSerial({ path: p.b });
      cleanups.push(() => dev.close());
      server.serve(dev.channel);
      const raw = await openRawSerial(p.a);
      cleanups.push(() => closeRaw(raw));
      const seen = collector(raw);

      raw.write("\x04\n");
      await seen.until(/^"""\x04"""$/);
      seen.clear();

      raw.write('{"id":1,"method":"Test.Echo","params":"plain"}\n');
      assert.equal(await seen.until(/"plain"\}\n$/), '\n{"id":1,"src":"esp32_TEST","result":"plain"}\n');
      seen.clear();

      raw.write('"""{"id":2,"method":"Test.Echo","params":"d1"}"""');
      await seen.until(/"d1"\}"""\n$/);
      assert.equal(seen.text(), '\n\n"""{"id":2,"src":"esp32_TEST","result":"d1"}"""\n');
      seen.clear();

      const j = '{"id":3,"method":"Test.Echo","params":"crc"}';
      raw.write(`${j}${crcHex(j)}"""`);
      const reply = '{"id":3,"src":"esp32_TEST","result":"crc"}';
      await seen.until(/"""\n$/);
      assert.equal(seen.text(), `\n"""${reply}${crcHex(reply)}"""\n`);
    });

    it("device: a byte >= 0x80 drops the receive buffer; an empty frame gets a \\n answer", async () => {
      const p = await pty();
      const dev = await serveSerial({ path: p.b });
      cleanups.push(() => dev.close());
      server.serve(dev.channel);
      const raw = await openRawSerial(p.a);
      cleanups.push(() => closeRaw(raw));
      const seen = collector(raw);
      const events: LogEvent[] = [];
      const off = addLogSink((e) => events.push(e));
      try {
        raw.write('{"id":1,"method":"Test.Echo","params":"');
        // The firmware discards the chunk it read too, so wait until the device has seen the bad byte.
        raw.write(Buffer.from('é"}\n', "utf8"));
        await waitFor(() => events.some((e) => /garbage/.test(e.message)));
      } finally {
        off();
      }
      raw.write("  \n");
      raw.write('{"id":2,"method":"Test.Echo","params":"after"}\n');
      await seen.until(/"after"\}\n$/);
      assert.equal(seen.text(), '\n\n{"id":2,"src":"esp32_TEST","result":"after"}\n', "no answer to id 1; the empty frame's \\n before the reply");
    });

    it("the link going away (cable pulled) closes both ends with a reason", async () => {
      const p = await startPtyPair();
      const dev = await serveSerial({ path: p.b });
      cleanups.push(() => dev.close());
      const ch = await connect(new URL("serial://" + p.a), { timeoutMs: 5000, noPacing: true });
      cleanups.push(() => ch.close());
      const clientClosed = new Promise<Error | undefined>((r) => ch.onClose(r));
      const deviceClosed = new Promise<Error | undefined>((r) => dev.channel.onClose(r));
      await p.stop();
      const [cr, dr] = await Promise.all([clientClosed, deviceClosed]);
      assert.equal(ch.closed, true);
      assert.equal(dev.channel.closed, true);
      assert.ok(cr instanceof TransportError && cr.message.includes(p.a), String(cr));
      assert.ok(dr instanceof TransportError, String(dr));
    });

    it("a port whose other end goes away while its path stays (a pty name reused) closes at end of file, no busy loop", async () => {
      const p = await startPtyPair();
      const dev = await serveSerial({ path: p.b });
      cleanups.push(() => dev.close());
      // the client opens the pty through a name of ours, which still exists after socat has gone
      const alias = join(tmpdir(), `remos-pty-alias-${process.pid}-${Date.now()}`);
      symlinkSync(realpathSync(p.a), alias);
      cleanups.push(async () => rmSync(alias, { force: true }));
      const ch = await connect(new URL("serial://" + alias), { timeoutMs: 5000, noPacing: true });
      cleanups.push(() => ch.close());
      const clientClosed = new Promise<Error | undefined>((r) => ch.onClose(r));
      rmSync(alias);
      symlinkSync("/dev/null", alias);
      await p.stop();
      const reason = await Promise.race([clientClosed, new Promise<string>((r) => setTimeout(() => r("still open after 5 s"), 5000).unref())]);
      assert.ok(reason instanceof TransportError, String(reason));
      assert.equal(ch.closed, true);
    });

    it("console text from the device never lands inside a frame, with many calls in flight", async () => {
      const p = await pty();
      const dev = await serveSerial({ path: p.b });
      cleanups.push(() => dev.close());
      server.serve(dev.channel);
      let consoleText = "";
      const ch = await connect(new URL("serial://" + p.a), { timeoutMs: 5000, noPacing: true, onConsole: (d) => (consoleText += d.toString()) });
      const client = new RpcClient(ch, { src: "mos", timeoutMs: 10_000 });
      cleanups.push(() => client.close());
      const expected: string[] = [];
      const calls: Array<Promise<unknown>> = [];
      for (let i = 0; i < 50; i++) {
        calls.push(client.call("Test.Echo", { i, pad: "p".repeat(200) }));
        const line = `I (${i}) log line number ${i}\n`;
        expected.push(line);
        dev.writeConsole(line);
        await new Promise((r) => setImmediate(r));
      }
      const results = await Promise.all(calls);
      results.forEach((r, i) => assert.deepEqual(r, { i, pad: "p".repeat(200) }));
      assert.equal(await client.call("Test.Echo", "flush"), "flush");
      assert.equal(consoleText, expected.join(""));
    });
  });

  describe("openRawSerial", () => {
    let p: PtyPair;
    before(async () => {
      p = await startPtyPair();
    });
    after(async () => {
      await p.stop();
    });
    it("is a plain byte pipe for mos console", async () => {
      const a = await openRawSerial(p.a, { baudRate: 115200 });
      const b = await openRawSerial(p.b);
      const seen = collector(b);
      a.write("hello device\r\n");
      await seen.until(/hello device\r\n$/);
      await closeRaw(a);
      await closeRaw(b);
    });
  });
}
