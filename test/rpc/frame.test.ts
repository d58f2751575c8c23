import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { BadFrameError } from "../../src/errors.js";
import {
  type Frame,
  ID_LIMIT,
  ID_MIN,
  decodeFrame,
  echoId,
  encodeFrame,
  newRequestId,
  normaliseId,
  toAscii,
} from "../../src/rpc/frame.js";

const json = fc.jsonValue({ maxDepth: 3 });
const str = fc.string({ maxLength: 30, unit: "binary" });

const frameArb: fc.Arbitrary<Frame> = fc
  .record(
    {
      src: str,
      dst: str,
      tag: str,
      id: fc.oneof(fc.integer({ min: ID_MIN, max: ID_LIMIT - 1 }), fc.string({ maxLength: 12 })),
      method: fc.string({ minLength: 1, maxLength: 20 }),
      params: json,
      result: json,
      error: fc.record({ code: fc.integer({ min: -5, max: 600 }), message: str }),
    },
    { requiredKeys: [] },
  )
  .map((f) => {
    const out: Frame = { ...f };
    // a request has no result/error; a response has no method/params
    if (out.method !== undefined) {
      delete out.result;
      delete out.error;
    }
    if (out.error !== undefined) delete out.result; // a frame carries result or error, not both
    return out;
  });

/** JSON round trip turns -0 into 0 and drops undefined: compare via JSON. */
const viaJson = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

describe("frame codec", () => {
  it("encode → decode round trip for generated frames (10,000 cases)", () => {
    fc.assert(
      fc.property(frameArb, (f) => {
        const back = decodeFrame(encodeFrame(f)).frame;
        const expected = viaJson(f) as Frame;
        if (expected.method === undefined && expected.error === undefined && "result" in f && expected.result === undefined) {
          expected.result = null;
        }
        assert.deepEqual(viaJson(back), expected);
      }),
      { numRuns: 10_000 },
    );
  });

  it("the ASCII form decodes to the same frame", () => {
    fc.assert(
      fc.property(frameArb, (f) => {
        const text = encodeFrame(f);
        const ascii = toAscii(text);
        assert.ok(!/[^\x00-\x7f]/.test(ascii));
        assert.deepEqual(decodeFrame(ascii).frame, decodeFrame(text).frame);
      }),
      { numRuns: 2_000 },
    );
  });

  it("never throws anything but BadFrameError on arbitrary strings and bytes (10,000 cases each)", () => {
    const check = (text: string): void => {
      try {
        decodeFrame(text);
      } catch (e) {
        assert.ok(e instanceof BadFrameError, `unexpected ${String(e)}`);
      }
    };
    fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 200 }), check), { numRuns: 10_000 });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => check(Buffer.from(b).toString("utf8"))),
      { numRuns: 10_000 },
    );
    fc.assert(fc.property(fc.json(), check), { numRuns: 10_000 });
  });

  it("rejects what is not a frame", () => {
    for (const bad of ["not json", "[1,2]", "42", "null", '"s"', '{"id":{"a":1}}', '{"id":true}', '{"id":null,"method":"M"}', '{"method":42}', '{"src":1}', '{"error":{"code":"x"}}', '{"error":5}']) {
      assert.throws(() => decodeFrame(bad), BadFrameError, bad);
    }
  });

  it("accepts args as params, params winning when both are present", () => {
    assert.deepEqual(decodeFrame('{"id":1,"method":"M","args":{"a":1}}').frame.params, { a: 1 });
    assert.deepEqual(decodeFrame('{"id":1,"method":"M","args":{"a":1},"params":{"b":2}}').frame.params, { b: 2 });
  });

  it("tolerates the firmware's GPIO.Int notification that is one brace short", () => {
    const f = decodeFrame('{"src":"esp32_A1B2C3","dst":"mos","method":"GPIO.Int","params":{"pin":0,"ts":1700000000.123,"value":0}').frame;
    assert.deepEqual(f.params, { pin: 0, ts: 1700000000.123, value: 0 });
  });

  it("ids: generated in [2^40, 2^41), echoed textually, matched after normalising", () => {
    for (let i = 0; i < 1000; i++) {
      const id = newRequestId();
      assert.ok(Number.isSafeInteger(id) && id >= ID_MIN && id < ID_LIMIT);
    }
    assert.equal(echoId("123"), 123);
    assert.equal(echoId(1587460391023), 1587460391023);
    assert.equal(echoId(-5), "-5");
    assert.equal(echoId(1.5), "1.5");
    assert.equal(echoId("abc"), "abc");
    assert.equal(echoId(12345678901234567890, "12345678901234567890"), "12345678901234567890");
    assert.equal(normaliseId(123), normaliseId("123"));
    const big = decodeFrame('{"id":12345678901234567890,"method":"X"}');
    assert.equal(big.rawId, "12345678901234567890");
    // the top-level id, not one nested in params
    const nested = decodeFrame('{"method":"X","params":{"id":5,"s":"\\"id\\":7"},"id":123456789012345678901}');
    assert.equal(nested.rawId, "123456789012345678901");
    // echoed bare, as the number it came as
    assert.equal(encodeFrame({ id: echoId(nested.frame.id as number, nested.rawId), result: 1 }), '{"id":123456789012345678901,"result":1}');
  });

  it("encodes requests in mos field order and responses in device order", () => {
    assert.equal(
      encodeFrame({ method: "FS.Get", id: 5, src: "mos", params: { a: 1 } }),
      '{"src":"mos","id":5,"method":"FS.Get","params":{"a":1}}',
    );
    assert.equal(
      encodeFrame({ result: { x: 1 }, dst: "mos", src: "dev", id: 5, tag: "t" }),
      '{"id":5,"src":"dev","dst":"mos","tag":"t","result":{"x":1}}',
    );
    assert.equal(encodeFrame({ id: 5, result: undefined }), '{"id":5,"result":null}');
    assert.equal(encodeFrame({ id: 5, error: { code: 404, message: "No handler for X" } }), '{"id":5,"error":{"code":404,"message":"No handler for X"}}');
  });
});
