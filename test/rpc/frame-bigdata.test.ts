/**
 * The codec's fast paths for frames carrying file bytes (rpc/frame.ts): a Base64Text spliced into the text
 * gives exactly what JSON.stringify of the plain string gives, and a big `data` string cut out of the text
 * decodes exactly as JSON.parse of the whole text — or the fast path steps aside (escapes, nesting, two
 * Base64Text values, a placeholder lookalike) and the ordinary path answers.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { Base64Text, type Frame, decodeFrame, decodeFrameBytes, encodeFrame, encodeFrameBytes, knownAscii } from "../../src/rpc/frame.js";

/** The frame with every Base64Text replaced by its plain string. */
function plain(f: Frame): Frame {
  const out: Frame = { ...f };
  for (const k of ["params", "result", "args"] as const) {
    const v = out[k];
    if (v !== null && typeof v === "object" && !Array.isArray(v)) out[k] = JSON.parse(JSON.stringify(v)) as unknown;
  }
  return out;
}

/**
 * What decodeFrame must give: the ordinary path, reached by writing `"data" :` for `"data":` (the same JSON,
 * but not what the fast path looks for).
 */
function reference(text: string): unknown {
  return actual(text.replaceAll('"data":', '"data" :'));
}
function actual(text: string): unknown {
  try {
    return decodeFrame(text);
  } catch (e) {
    return { threw: (e as Error).name };
  }
}

/** decodeFrameBytes of the text's UTF-8 bytes: must give what decodeFrame of the text gives. */
function actualBytes(bytes: Buffer): unknown {
  try {
    return decodeFrameBytes(bytes);
  } catch (e) {
    return { threw: (e as Error).name };
  }
}

const small = fc.jsonValue({ maxDepth: 2 });
const bytes = fc.uint8Array({ minLength: 0, maxLength: 40_000 });

describe("frames with big base64 data", () => {
  it("encodes a Base64Text exactly as JSON.stringify encodes the same string, in requests and responses", () => {
    fc.assert(
      fc.property(bytes, small, fc.constantFrom("params", "result", "args"), fc.string({ maxLength: 20 }), (b, other, field, name) => {
        const data = Base64Text.of(b);
        const holder = { filename: name, data, other };
        const f: Frame = field === "result" ? { id: 12, src: "dev", result: holder } : { id: 12, src: "mos", method: "FS.Put", [field]: holder };
        const text = encodeFrame(f);
        assert.equal(text, encodeFrame(plain(f)));
        assert.equal(JSON.stringify(data), JSON.stringify(Buffer.from(b).toString("base64")));
      }),
      { numRuns: 200 },
    );
  });

  it("builds the same bytes as the text in UTF-8 (non-ASCII names, big ids), and none for other frames", () => {
    fc.assert(
      fc.property(bytes, fc.string({ maxLength: 20, unit: "binary" }), fc.constantFrom<Frame["id"]>(12, "9007199254740993123", "x-1"), (b, name, id) => {
        const data = Base64Text.of(b);
        for (const f of [
          { id, src: "mos", method: "FS.Put", params: { filename: name, offset: 0, data, append: false } },
          { id, src: "dev", dst: name, result: { data, left: 3 } },
        ] as Frame[]) {
          const built = encodeFrameBytes(f);
          assert.ok(built);
          assert.ok(built.equals(Buffer.from(encodeFrame(f), "utf8")));
        }
        assert.equal(encodeFrameBytes({ id, method: "FS.Put", params: { filename: name, data: data.text } }), undefined);
      }),
      { numRuns: 200 },
    );
  });

  it("falls back to JSON.stringify with two Base64Text values or one nested deeper", () => {
    const a = Base64Text.of(randomBytes(30_000));
    const b = Base64Text.of(randomBytes(10));
    for (const f of [
      { id: 1, method: "X", params: { data: a, more: b } },
      { id: 1, method: "X", params: { inner: { data: a } } },
      { id: 1, result: [a] },
      { id: 1, method: "X", params: { data: a }, result: { data: b } },
    ] as Frame[]) {
      assert.equal(encodeFrame(f), JSON.stringify(JSON.parse(encodeFrame(plain(f)))));
      assert.deepEqual(JSON.parse(encodeFrame(f)), JSON.parse(JSON.stringify(f)));
    }
  });

  it("decodes a big data string exactly as JSON.parse does, wherever it is and whatever it holds", () => {
    const bigString = fc.oneof(
      bytes.map((b) => Buffer.from(b).toString("base64")),
      fc.string({ minLength: 16_000, maxLength: 20_000, unit: "binary" }),
      fc.tuple(fc.string({ maxLength: 10 }), fc.constantFrom('"', "\\", "\n", "\u0000", "\u2028", "\ud800")).map(([s, c]) => "A".repeat(17_000) + c + s),
    );
    const where = fc.constantFrom("params", "result", "args", "nested", "twice");
    fc.assert(
      fc.property(bigString, where, small, fc.constantFrom("", " "), (data, at, other, space) => {
        const obj: Record<string, unknown> =
          at === "nested" ? { id: 5, method: "M", params: { x: { data } } }
          : at === "twice" ? { id: 5, result: { data, more: { data } } }
          : at === "result" ? { id: 5, result: { left: 3, data, other } }
          : { id: 5, method: "FS.Put", [at]: { filename: "f", data, other } };
        let text = JSON.stringify(obj);
        if (space) text = text.replace('"data":', '"data": ');
        assert.deepEqual(actual(text), reference(text));
        assert.deepEqual(actualBytes(Buffer.from(text, "utf8")), reference(text));
      }),
      { numRuns: 150 },
    );
  });

  it("decodes broken big frames as the ordinary path does (refused), and frames that only look alike", () => {
    const data = "QUJD".repeat(5000);
    for (const text of [
      `{"id":1,"result":{"data":"${data}"`, // cut short
      `{"id":1,"result":{"data":"${data}"}}}`, // one brace too many
      `{"id":1,"result":{"data":"${data}}}`, // the string never ends
      `{"id":1,"result":{"data":"${data}"},"id":}`,
      `["data":"${data}"]`,
      `{"id":1,"result":{"x\\"data":"${data}"}}`, // "data" inside a key
      `{"id":1,"result":{"note":"\\"data\\":\\"${data}","data":"${data}"}}`,
      `{"id":1,"method":"M","params":"${data}","data":"${data}"}`,
    ]) {
      assert.deepEqual(actual(text), reference(text), text.slice(0, 60));
      assert.deepEqual(actualBytes(Buffer.from(text, "utf8")), reference(text), text.slice(0, 60));
    }
  });

  it("decodes bytes as the text they read as in UTF-8, broken UTF-8 anywhere included", () => {
    const junk = fc.uint8Array({ maxLength: 6 }).map((b) => Buffer.from(b));
    fc.assert(
      fc.property(junk, junk, junk, fc.integer({ min: 0, max: 36_000 }), (inKey, inData, inTail, at) => {
        const data = Buffer.from("QUJD".repeat(9000), "latin1");
        const withJunk = Buffer.concat([data.subarray(0, at), inData, data.subarray(at)]);
        const bytes = Buffer.concat([Buffer.from('{"id":7,"method":"FS.Put","params":{"filename":"'), inKey, Buffer.from('","data":"'), withJunk, Buffer.from('"},"tag":"'), inTail, Buffer.from('"}')]);
        assert.deepEqual(actualBytes(bytes), actual(bytes.toString("utf8")));
        const params = (actualBytes(bytes) as { frame?: Frame }).frame?.params as { data?: string } | undefined;
        const ascii = inKey.every((x) => x < 0x80) && inData.every((x) => x < 0x80) && inTail.every((x) => x < 0x80);
        if (params?.data !== undefined) assert.equal(knownAscii(params, params.data), ascii);
      }),
      { numRuns: 300 },
    );
  });

  it("marks the data string it made from ASCII bytes, and nothing else", () => {
    const data = "QUJD".repeat(9000); // a frame of 2 × 16 KiB or more takes the fast path
    const d = decodeFrameBytes(Buffer.from(`{"id":1,"method":"FS.Put","params":{"filename":"f","data":"${data}"}}`));
    const params = d.frame.params as { data: string };
    assert.equal(params.data, data);
    assert.equal(knownAscii(params, params.data), true);
    assert.equal(knownAscii(params, data.slice(1)), false);
    assert.equal(knownAscii({ data }, data), false, "another object");
    const text = `{"id":1,"method":"FS.Put","params":{"filename":"f","data":"${data}"}}`;
    const fromText = decodeFrame(text).frame.params as { data: string };
    assert.equal(knownAscii(fromText, fromText.data), false, "decoded from text: nothing was checked");
    const nonAscii = decodeFrameBytes(Buffer.from(`{"id":1,"method":"FS.Put","params":{"filename":"f","data":"${data}é"}}`)).frame.params as { data: string };
    assert.equal(nonAscii.data, data + "é");
    assert.equal(knownAscii(nonAscii, nonAscii.data), false);
  });

  it("keeps a big id's text when the data was cut out", () => {
    const text = `{"id":123456789012345678901,"result":{"data":"${"QUJD".repeat(5000)}","left":0}}`;
    const d = decodeFrame(text);
    assert.equal(d.rawId, "123456789012345678901");
    assert.equal((d.frame.result as { data: string }).data.length, 20_000);
  });
});
