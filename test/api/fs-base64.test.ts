/**
 * The device's strict base64 decoding of FS.Put data (device/services/fs.ts decodeBase64) accepts exactly
 * the strings the original regex accepted, and decodes them as Buffer.from does: checked against that
 * regex on random strings built from digits, `=`, and characters Node's decoder is lenient about; the same
 * for ASCII strings when the caller vouches that they are ASCII (whitespace and control characters refused).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { decodeBase64 } from "../../src/device/services/fs.js";
import { RpcError } from "../../src/errors.js";

const REFERENCE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;

function check(text: string): void {
  checkAs(text, false);
  // The frame decoder vouches only for ASCII text (rpc/frame.ts knownAscii): the rest of the check stands.
  if (Buffer.from(text, "utf8").every((b) => b < 0x80)) checkAs(text, true);
}

function checkAs(text: string, knownAscii: boolean): void {
  let got: Buffer | RpcError;
  try {
    got = decodeBase64(text, knownAscii);
  } catch (e) {
    assert.ok(e instanceof RpcError, `unexpected error for ${JSON.stringify(text)}`);
    got = e;
  }
  if (REFERENCE.test(text)) {
    assert.ok(got instanceof Buffer, `${JSON.stringify(text)} is valid base64 but was refused`);
    assert.deepEqual(got, Buffer.from(text, "base64"));
  } else {
    assert.ok(got instanceof RpcError, `${JSON.stringify(text)} is not valid base64 but was accepted`);
    assert.equal(got.rpcCode, 400);
    assert.equal(got.message, "invalid data");
  }
}

describe("FS.Put base64 decoding", () => {
  it("agrees with the strict regex on hand-picked edge cases", () => {
    for (const t of ["", "QQ", "QQ=", "QQ==", "QUI", "QUI=", "QUJD", "Q", "Q=", "Q===", "QUJD=", "QUJD==", "====", "=", "==", "QUI==",
      "QU=D", "QQ==QUJD", "QUJDQQ==QQ", "QUJD QUJD", "QUJD\nQUJD", "QUJ-", "QUJ_", "QUJDé", "QR==", "QUJ=QUJD", "AAAAAB==CD", "\u0141UJD"]) {
      check(t);
    }
  });

  it("agrees with the strict regex on random strings", () => {
    const chars = fc.constantFrom(..."ABCZaz09+/=-_ \n\r\t.é\u0100\u0141\u012B\u013D\u00AD\uD800\u0000");
    fc.assert(fc.property(fc.array(chars, { maxLength: 40 }).map((a) => a.join("")), (t) => check(t)), { numRuns: 5000 });
  });

  it("agrees with the strict regex on valid base64 with one character changed", () => {
    const arb = fc.tuple(fc.uint8Array({ maxLength: 64 }), fc.nat(), fc.constantFrom(..."A=-_ .é\u0100"), fc.boolean());
    fc.assert(fc.property(arb, ([bytes, at, c, unpad]) => {
      let t = Buffer.from(bytes).toString("base64");
      if (unpad) t = t.replace(/=+$/, "");
      check(t);
      if (t.length > 0) {
        const i = at % t.length;
        check(t.slice(0, i) + c + t.slice(i + 1));
      }
    }), { numRuns: 3000 });
  });
});
