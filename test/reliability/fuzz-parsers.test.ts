/**
 * Fuzzing of the pure receive paths (fast-check, 10,000 cases each): the frame codec, the serial framers of
 * both ends (garbage, truncated, oversized frames, non-ASCII bytes, arbitrary chunking) and the HTTP Mode B
 * query parser. Properties: nothing throws except the codec's typed BadFrameError, and after any garbage a
 * well-formed frame still gets through (the parser recovers, so the device keeps answering).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { BadFrameError } from "../../src/errors.js";
import { decodeFrame, encodeFrame } from "../../src/rpc/frame.js";
import { queryArgs } from "../../src/transport/http-exchange.js";
import { DeviceFrameReceiver } from "../../src/transport/serial-device-framing.js";
import { ClientFrameParser, encodeClientFrame, encodeSerialFrame } from "../../src/transport/serial-framing.js";
import { splitAt } from "../helpers/chunks.js";

const RUNS = 10_000;
const GOOD = JSON.stringify({ src: "mos", id: 1_100_000_000_001, method: "RPC.Ping" });

/** Byte soup biased toward the framing's special bytes, with high bytes and whole frames mixed in. */
const special = fc.constantFrom(0x0a, 0x22, 0x7b, 0x7d, 0x04, 0x11, 0x13, 0x80, 0xff, 0x20, 0x0d);
const soup = fc.array(fc.oneof(fc.integer({ min: 0, max: 255 }), special, special), { maxLength: 300 }).map((a) => Buffer.from(a));
const pieces = fc.array(
  fc.oneof(
    soup,
    fc.constant(encodeClientFrame(GOOD)),
    fc.constant(Buffer.from(GOOD)),
    fc.integer({ min: 1, max: GOOD.length }).map((n) => Buffer.from(GOOD.slice(0, n))),
    fc.integer({ min: 4000, max: 9000 }).map((n) => Buffer.from(`{"x":"${"a".repeat(n)}"}\n`)),
  ),
  { maxLength: 6 },
);
describe("fuzz: frame codec", () => {
  it("decodeFrame never throws anything but BadFrameError, and encodes what it accepts", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.json({ maxDepth: 3 }), fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify({ id: 1, method: "A", params: v, result: v }))), (text) => {
        try {
          const d = decodeFrame(text);
          assert.equal(typeof encodeFrame(d.frame), "string");
        } catch (e) {
          if (!(e instanceof BadFrameError)) throw e;
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe("fuzz: serial device receiver", () => {
  it("survives garbage, non-ASCII, truncated and oversized frames in any chunking, and recovers", () => {
    fc.assert(
      fc.property(pieces, fc.array(fc.nat(), { maxLength: 8 }), (ps, cuts) => {
        const frames: string[] = [];
        const rx = new DeviceFrameReceiver({ frame: (j) => frames.push(j), eof: () => undefined, empty: () => undefined, drop: () => undefined }, 4096);
        for (const c of splitAt(Buffer.concat(ps), cuts)) rx.push(c);
        // Whatever came before, a delimited good frame afterwards must be received.
        frames.length = 0;
        rx.push(encodeClientFrame(GOOD));
        assert.ok(frames.includes(GOOD), `good frame lost after garbage: ${JSON.stringify(frames).slice(0, 200)}`);
      }),
      { numRuns: RUNS },
    );
  });
});

describe("fuzz: serial client parser", () => {
  it("survives garbage and console noise in any chunking, and recovers", () => {
    const reply = encodeSerialFrame(GOOD, { delim1: true, crc: true });
    fc.assert(
      fc.property(pieces, fc.array(fc.nat(), { maxLength: 8 }), (ps, cuts) => {
        const frames: string[] = [];
        const p = new ClientFrameParser({ frame: (j) => frames.push(j), eof: () => undefined, drop: () => undefined, console: () => undefined, flow: () => undefined }, 8192);
        for (const c of splitAt(Buffer.concat(ps), cuts)) p.push(c);
        frames.length = 0;
        // A device starts its frames on a fresh line: the newline ends whatever partial frame was pending.
        p.push(Buffer.concat([Buffer.from("\n"), reply]));
        assert.ok(frames.includes(GOOD), `good frame lost after garbage: ${JSON.stringify(frames).slice(0, 200)}`);
      }),
      { numRuns: RUNS },
    );
  });
});

describe("fuzz: HTTP Mode B query arguments", () => {
  it("queryArgs never throws on any query string", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 100 }), fc.webQueryParameters(), fc.string({ unit: "binary", maxLength: 60 })), (q) => {
        queryArgs(q.startsWith("?") ? q : "?" + q);
      }),
      { numRuns: RUNS },
    );
  });
});
