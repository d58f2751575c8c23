import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { toAscii } from "../../src/rpc/frame.js";
import { DeviceFrameReceiver } from "../../src/transport/serial-device-framing.js";
import {
  ClientFrameParser,
  HANDSHAKE,
  crc32,
  encodeClientFrame,
  encodeSerialFrame,
} from "../../src/transport/serial-framing.js";
import { splitAt } from "../helpers/chunks.js";

interface ClientLog {
  frames: string[];
  eofs: number;
  drops: string[];
  console: string;
  flow: boolean[];
}

function clientParser(max = 4096): { p: ClientFrameParser; log: ClientLog } {
  const log: ClientLog = { frames: [], eofs: 0, drops: [], console: "", flow: [] };
  const p = new ClientFrameParser(
    {
      frame: (j) => log.frames.push(j),
      eof: () => log.eofs++,
      drop: (r) => log.drops.push(r),
      console: (d) => (log.console += d.toString("latin1")),
      flow: (x) => log.flow.push(x),
    },
    max,
  );
  return { p, log };
}

interface DeviceLog {
  frames: string[];
  eofs: number;
  empties: number;
  drops: string[];
}

function deviceReceiver(max = 4096): { r: DeviceFrameReceiver; log: DeviceLog } {
  const log: DeviceLog = { frames: [], eofs: 0, empties: 0, drops: [] };
  const r = new DeviceFrameReceiver(
    { frame: (j) => log.frames.push(j), eof: () => log.eofs++, empty: () => log.empties++, drop: (x) => log.drops.push(x) },
    max,
  );
  return { r, log };
}

const b = (s: string): Buffer => Buffer.from(s, "latin1");
const crcHex = (s: string): string => crc32(b(s)).toString(16).padStart(8, "0");

describe("crc32", () => {
  it("matches zlib / Go crc32.ChecksumIEEE", () => {
    assert.equal(crc32(b("123456789")), 0xcbf43926);
    assert.equal(crc32(b("")), 0);
  });
});

describe("encoders", () => {
  it("client frames are what mos sends: \\n\"\"\"<json><crc>\"\"\"\\n", () => {
    const j = '{"src":"mos","id":1,"method":"Sys.GetInfo"}';
    assert.equal(encodeClientFrame(j).toString("latin1"), `\n"""${j}${crcHex(j)}"""\n`);
  });
  it("device frames follow the sticky modes", () => {
    const j = '{"id":1,"result":null}';
    assert.equal(encodeSerialFrame(j, { delim1: false, crc: false }).toString(), `\n${j}\n`);
    assert.equal(encodeSerialFrame(j, { delim1: false, crc: true }).toString(), `\n${j}${crcHex(j)}\n`);
    assert.equal(encodeSerialFrame(j, { delim1: true, crc: false }).toString(), `\n"""${j}"""\n`);
    assert.equal(encodeSerialFrame(j, { delim1: true, crc: true }).toString(), `\n"""${j}${crcHex(j)}"""\n`);
  });
  it("the handshake is \"\"\"\\x04\"\"\"\\n\\n", () => {
    assert.equal(HANDSHAKE.toString("latin1"), '"""\x04"""\n\n');
  });
});

describe("ClientFrameParser (mos receive rules)", () => {
  it("takes frames after either delimiter, ended by either", () => {
    const { p, log } = clientParser();
    p.push(b('\n{"a":1}\n"""{"b":2}"""\n{"c":3}"""'));
    assert.deepEqual(log.frames, ['{"a":1}', '{"b":2}', '{"c":3}']);
    assert.deepEqual(log.drops, []);
  });

  it("a delimiter not followed by { or 0x04 is console output, not a frame start", () => {
    const { p, log } = clientParser();
    p.push(b('boot: ok\nwifi """up"""\nx {"not":"frame"}\n'));
    p.push(b("\n"));
    assert.equal(log.console, 'boot: ok\nwifi """up"""\nx {"not":"frame"}', "a trailing newline waits for the next byte");
    p.push(b("!"));
    assert.deepEqual(log.frames, []);
    assert.equal(log.console, 'boot: ok\nwifi """up"""\nx {"not":"frame"}\n\n!');
  });

  it("verifies and strips a CRC, ignores extra metadata fields, drops a mismatch and keeps going", () => {
    const { p, log } = clientParser();
    const j = '{"id":1,"result":true}';
    p.push(b(`\n"""${j}${crcHex(j)}"""\n`));
    p.push(b(`\n${j}${crcHex(j)},x,y\n`));
    p.push(b(`\n"""${j}deadbeef"""\n`));
    p.push(b(`\n"""${j}zz"""\n`));
    p.push(b(`\n"""${j}  \r"""\n`)); // trailing whitespace is not metadata
    assert.deepEqual(log.frames, [j, j, j]);
    assert.equal(log.drops.length, 2);
    assert.match(log.drops[0], /CRC mismatch/);
    assert.match(log.drops[1], /malformed frame metadata/);
  });

  it("reports the 0x04 frame (the handshake answer)", () => {
    const { p, log } = clientParser();
    p.push(b('\n\n\n"""\x04"""\n'));
    assert.equal(log.eofs, 1);
    assert.deepEqual(log.frames, []);
  });

  it("removes XON/XOFF anywhere and reports them", () => {
    const { p, log } = clientParser();
    p.push(b('log\x13 line\n"""{"a"\x11:1}"""\n'));
    assert.deepEqual(log.frames, ['{"a":1}']);
    assert.deepEqual(log.flow, [true, false]);
    assert.equal(log.console, "log line\n");
  });

  it("keeps frame delimiters and empty-frame answers out of the console, but ends an open line", () => {
    const { p, log } = clientParser();
    p.push(b('I am the log\n\n\n"""{"id":1}"""\nmore log\n'));
    p.push(b('\n{"id":2}\n'));
    assert.deepEqual(log.frames, ['{"id":1}', '{"id":2}']);
    assert.equal(log.console, "I am the log\nmore log\n");
    const { p: p2, log: log2 } = clientParser();
    p2.push(b('partial line\n"""{"id":3}"""\n'));
    assert.equal(log2.console, "partial line\n");
  });

  it("drops a frame bigger than its limit and parses the next one", () => {
    const { p, log } = clientParser(64);
    p.push(b(`\n{"x":"${"a".repeat(200)}"}\n`));
    p.push(b('\n{"ok":1}\n'));
    assert.deepEqual(log.frames, ['{"ok":1}']);
    assert.match(log.drops[0], /too big/);
  });

  it("passes UTF-8 from a device that does not escape it", () => {
    const { p, log } = clientParser();
    p.push(Buffer.from('\n{"s":"héllo ✓"}\n', "utf8"));
    assert.deepEqual(log.frames, ['{"s":"héllo ✓"}']);
  });
});

describe("DeviceFrameReceiver (firmware receive rules)", () => {
  it("takes what mos sends, turning on the sticky \"\"\" and CRC modes", () => {
    const { r, log } = deviceReceiver();
    const j = '{"src":"mos","id":5,"method":"Sys.GetInfo"}';
    r.push(encodeClientFrame(j));
    assert.deepEqual(log.frames, [j]);
    assert.equal(log.empties, 2); // the \n before """ and the \n after
    assert.equal(r.delim1Used, true);
    assert.equal(r.crcUsed, true);
  });

  it("newline frames without CRC leave the sticky modes off; short metadata is ignored", () => {
    const { r, log } = deviceReceiver();
    r.push(b('{"id":1}\n{"id":2}abc\n'));
    assert.deepEqual(log.frames, ['{"id":1}', '{"id":2}']);
    assert.equal(r.delim1Used, false);
    assert.equal(r.crcUsed, false);
  });

  it("drops a corrupted CRC frame without turning CRC mode on", () => {
    const { r, log } = deviceReceiver();
    r.push(b('{"id":1}00000000\n'));
    assert.deepEqual(log.frames, []);
    assert.match(log.drops[0], /Corrupted frame/);
    assert.equal(r.crcUsed, false);
  });

  it("skips junk before {, answers the 0x04 frame and empty frames", () => {
    const { r, log } = deviceReceiver();
    r.push(HANDSHAKE);
    assert.equal(log.eofs, 1);
    assert.equal(log.empties, 3);
    r.push(b('garbage here {"id":3}\n  \t\n'));
    assert.deepEqual(log.frames, ['{"id":3}']);
    assert.equal(log.empties, 4);
  });

  it("a byte >= 0x80 discards the whole receive buffer", () => {
    const { r, log } = deviceReceiver();
    r.push(b('{"id":1,"s":"'));
    r.push(Buffer.from("é", "utf8"));
    r.push(b('x"}\n{"id":2}\n'));
    assert.deepEqual(log.frames, ['{"id":2}']);
    assert.ok(log.drops.some((d) => /garbage/.test(d)));
  });

  it("drops a partial frame bigger than max_frame_size + 6", () => {
    const { r, log } = deviceReceiver(100);
    r.push(b("{" + "a".repeat(105)));
    assert.deepEqual(log.drops, []);
    r.push(b("a"));
    assert.match(log.drops[0], /too big/);
    r.push(b('{"id":9}\n'));
    assert.deepEqual(log.frames, ['{"id":9}']);
  });
});

/** A JSON frame object as an RPC client would produce, serialised to ASCII. */
const frameJson = fc
  .record({
    id: fc.integer({ min: 1, max: 2 ** 41 }),
    method: fc.string({ minLength: 1, maxLength: 20 }),
    params: fc.jsonValue({ maxDepth: 2 }),
  })
  .map((o) => toAscii(JSON.stringify(o)));

describe("framing properties (fast-check)", () => {
  it("arbitrary bytes in arbitrary chunks never throw either parser", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(400), { maxLength: 6 }), (bytes, cuts) => {
        const buf = Buffer.from(bytes);
        const { p } = clientParser(128);
        const { r } = deviceReceiver(128);
        for (const c of splitAt(buf, cuts)) {
          p.push(c);
          r.push(c);
        }
      }),
      { numRuns: 10_000 },
    );
  });

  it("the client parser gives the same frames and console text however the bytes are chunked", () => {
    const alphabet = fc.constantFrom(...'\n"{}\x04\x11\x13ab ,0'.split("").map((c) => c.charCodeAt(0)));
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 120 }), fc.array(fc.nat(200), { maxLength: 8 }), (bytes, cuts) => {
        const buf = Buffer.from(bytes);
        const whole = clientParser(64);
        whole.p.push(buf);
        const parts = clientParser(64);
        for (const c of splitAt(buf, cuts)) parts.p.push(c);
        assert.deepEqual(parts.log, whole.log);
      }),
      { numRuns: 10_000 },
    );
  });

  it("client → device round trip: every frame arrives intact, in order, in any chunking", () => {
    fc.assert(
      fc.property(fc.array(frameJson, { minLength: 1, maxLength: 5 }), fc.array(fc.nat(4000), { maxLength: 8 }), (frames, cuts) => {
        const wire = Buffer.concat([HANDSHAKE, ...frames.map((f) => encodeClientFrame(f))]);
        const { r, log } = deviceReceiver(1 << 20);
        for (const c of splitAt(wire, cuts)) r.push(c);
        assert.deepEqual(log.frames, frames);
        assert.deepEqual(log.drops, []);
        assert.equal(r.crcUsed, true);
      }),
      { numRuns: 10_000 },
    );
  });

  it("device → client round trip with console text between frames, in every sticky mode", () => {
    // Console lines starting with { would be frames by the protocol's own rule: the generator avoids {.
    const consoleText = fc.string({ maxLength: 30 }).map((s) => s.replace(/[\n"{\x04\x11\x13]/g, "") + "\n");
    fc.assert(
      fc.property(
        fc.array(fc.tuple(frameJson, consoleText), { minLength: 1, maxLength: 5 }),
        fc.boolean(),
        fc.boolean(),
        fc.array(fc.nat(4000), { maxLength: 8 }),
        (items, delim1, crc, cuts) => {
          const wire = Buffer.concat(items.flatMap(([f, text]) => [b(text), encodeSerialFrame(f, { delim1, crc })]));
          const { p, log } = clientParser(1 << 20);
          for (const c of splitAt(wire, cuts)) p.push(c);
          p.push(b("!")); // release a held trailing newline
          assert.deepEqual(
            log.frames,
            items.map(([f]) => f),
          );
          assert.deepEqual(log.drops, []);
          // Blank lines right before a frame are not kept (they cannot be told from empty-frame answers).
          const lines = (s: string): string => s.replace(/\n+/g, "\n").replace(/^\n/, "");
          assert.equal(lines(log.console), lines(items.map(([, t]) => t).join("") + "!"));
        },
      ),
      { numRuns: 10_000 },
    );
  });
});
