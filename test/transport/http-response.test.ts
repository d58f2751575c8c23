/**
 * HttpResponseParser (the HTTP client's receive path): the response shapes devices send (Content-Length,
 * chunked, delimited by the close, HTTP/1.0, interim 100), keep-alive rules, limits, and fuzzing with
 * fast-check (10,000 cases each): a response cut into arbitrary chunks parses the same as whole, and no
 * byte soup makes it throw anything but HttpParseError or FrameTooLargeError.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { FrameTooLargeError } from "../../src/errors.js";
import { type HttpResponse, HttpParseError, HttpResponseParser } from "../../src/transport/http-response.js";
import { splitAt } from "../helpers/chunks.js";

const RUNS = 10_000;

/** Feed the chunks, then the close when `close`; returns the responses. */
function parse(chunks: (string | Buffer)[], o: { maxBody?: number; close?: boolean } = {}): HttpResponse[] {
  const out: HttpResponse[] = [];
  const p = new HttpResponseParser(o.maxBody ?? 1024 * 1024, (r) => out.push(r));
  for (const c of chunks) p.feed(typeof c === "string" ? Buffer.from(c, "latin1") : c);
  if (o.close) p.end();
  return out;
}

function summary(r: HttpResponse): object {
  return { status: r.status, statusMessage: r.statusMessage, keepAlive: r.keepAlive, challenge: r.challenge, body: r.body.toString("latin1") };
}

describe("HttpResponseParser", () => {
  it("reads a Content-Length answer, keep-alive by default on HTTP/1.1", () => {
    const [r] = parse(["HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"id\":1}\n"]);
    assert.deepEqual(summary(r), { status: 200, statusMessage: "OK", keepAlive: true, challenge: undefined, body: '{"id":1}\n' });
  });

  it("reads a chunked answer with extensions and trailers, split anywhere", () => {
    const text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"id\r\n5\r\n\":1}\n\r\n0\r\nX-Trailer: 1\r\n\r\n";
    for (let i = 1; i < text.length; i++) {
      const [r] = parse([text.slice(0, i), text.slice(i)]);
      assert.equal(r.body.toString(), '{"id":1}\n', `cut at ${i}`);
      assert.equal(r.keepAlive, true);
    }
  });

  it("reads a body delimited by the close, and never reuses that connection", () => {
    assert.deepEqual(parse(["HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"a\"", ":1}"]), []);
    const [r] = parse(["HTTP/1.1 200 OK\r\n\r\n{\"a\"", ":1}"], { close: true });
    assert.equal(r.body.toString(), '{"a":1}');
    assert.equal(r.keepAlive, false);
  });

  it("skips interim 100 answers, and has no body on 204 and 304", () => {
    const out = parse(["HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"]);
    assert.deepEqual(out.map((r) => [r.status, r.body.length]), [[204, 0], [304, 0]]);
  });

  it("follows Connection and the HTTP version for keep-alive", () => {
    const ka = (head: string): boolean => parse([`${head}\r\nContent-Length: 0\r\n\r\n`])[0].keepAlive;
    assert.equal(ka("HTTP/1.1 200 OK"), true);
    assert.equal(ka("HTTP/1.1 200 OK\r\nConnection: close"), false);
    assert.equal(ka("HTTP/1.1 200 OK\r\nconnection: Keep-Alive, Close"), false);
    assert.equal(ka("HTTP/1.0 200 OK"), false);
    assert.equal(ka("HTTP/1.0 200 OK\r\nConnection: keep-alive"), true);
  });

  it("keeps the first WWW-Authenticate of a 401", () => {
    const [r] = parse(['HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm="a", nonce="1"\r\nwww-authenticate: Basic\r\nContent-Length: 0\r\n\r\n']);
    assert.equal(r.status, 401);
    assert.equal(r.challenge, 'Digest realm="a", nonce="1"');
  });

  it("skips empty lines between answers, reads the Keep-Alive timeout hint, and bounds framing bytes", () => {
    const out = parse(["\r\n\nHTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 2\r\n\r\nok\r", "\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]);
    assert.deepEqual(out.map((r) => [r.status, r.body.toString(), r.keepAliveMs]), [[200, "ok", 5000], [200, "", undefined]]);
    // an endless stream of interim answers or trailers is refused, not buffered or waited on forever
    assert.throws(() => parse(["HTTP/1.1 100 Continue\r\n\r\n".repeat(3000)]), HttpParseError);
    assert.throws(() => parse(["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", "X: 1\r\n".repeat(12_000)]), HttpParseError);
  });

  it("parses several answers in one chunk, in order", () => {
    const one = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    assert.deepEqual(parse([one + one + one]).map((r) => r.body.toString()), ["ok", "ok", "ok"]);
  });

  it("refuses what is not an HTTP/1.x answer, with HttpParseError", () => {
    const bad = [
      "HTTP/2 200 OK\r\n\r\n",
      "SSH-2.0-OpenSSH\r\n\r\n",
      "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY",
      "HTTP/1.1 101 Switching Protocols\r\n\r\n",
    ];
    for (const text of bad) assert.throws(() => parse([text]), HttpParseError, text);
    assert.throws(() => parse(["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"], { close: true }), HttpParseError);
    assert.throws(() => parse(["HTTP/1.1 200 OK\r\nX: " + "a".repeat(17_000)]), HttpParseError);
    assert.throws(() => parse(["HTTP/1.1 200 OK\r\n" + "X: 1\r\n".repeat(101) + "\r\n"]), HttpParseError);
  });

  it("refuses a body over the limit before it arrives (declared) and while it arrives (chunked, close)", () => {
    assert.throws(() => parse(["HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"], { maxBody: 10 }), FrameTooLargeError);
    assert.throws(() => parse(["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\n"], { maxBody: 10 }), FrameTooLargeError);
    assert.throws(() => parse(["HTTP/1.1 200 OK\r\n\r\n", "abcdef", "ghijkl"], { maxBody: 10 }), FrameTooLargeError);
    assert.equal(parse(["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"], { maxBody: 10 })[0].body.length, 10);
  });

  it("fuzz: any answer cut into any chunks parses as it does whole", () => {
    const answer = fc.record({
      status: fc.integer({ min: 200, max: 599 }).filter((s) => s !== 204 && s !== 304),
      body: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
      mode: fc.constantFrom("length", "chunked", "close"),
      chunkSizes: fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 }),
      extra: fc.array(fc.tuple(fc.stringMatching(/^[A-Za-z-]{1,12}$/), fc.stringMatching(/^[ -~]{0,30}$/)), { maxLength: 4 }),
    });
    fc.assert(
      fc.property(answer, fc.array(fc.nat(), { maxLength: 12 }), (a, points) => {
        const headers = a.extra
          .filter(([k]) => !/^(content-length|transfer-encoding|connection|www-authenticate)$/i.test(k))
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join("");
        let body: Buffer;
        let framing: string;
        if (a.mode === "length") {
          framing = `Content-Length: ${a.body.length}\r\n`;
          body = a.body;
        } else if (a.mode === "chunked") {
          framing = "Transfer-Encoding: chunked\r\n";
          const parts: Buffer[] = [];
          let off = 0;
          for (let i = 0; off < a.body.length; i++) {
            const n = Math.min(a.chunkSizes[i % a.chunkSizes.length], a.body.length - off);
            parts.push(Buffer.from(`${n.toString(16)}\r\n`), a.body.subarray(off, off + n), Buffer.from("\r\n"));
            off += n;
          }
          parts.push(Buffer.from("0\r\n\r\n"));
          body = Buffer.concat(parts);
        } else {
          framing = "";
          body = a.body;
        }
        const wire = Buffer.concat([Buffer.from(`HTTP/1.1 ${a.status} Some Reason\r\n${headers}${framing}\r\n`, "latin1"), body]);
        const whole = parse([wire], { close: a.mode === "close" });
        const pieces = parse(splitAt(wire, points), { close: a.mode === "close" });
        assert.equal(whole.length, 1);
        assert.deepEqual(pieces.map(summary), whole.map(summary));
        assert.ok(whole[0].body.equals(a.body));
        assert.equal(whole[0].status, a.status);
        assert.equal(whole[0].keepAlive, a.mode !== "close");
      }),
      { numRuns: RUNS },
    );
  });

  it("fuzz: byte soup throws only HttpParseError or FrameTooLargeError, and a later parser still works", () => {
    const special = fc.constantFrom(0x0d, 0x0a, 0x3a, 0x20, 0x30, 0x31, 0x48, 0x54, 0x50, 0x2f, 0x3b);
    const soup = fc.array(fc.oneof(fc.integer({ min: 0, max: 255 }), special, special), { maxLength: 200 }).map((a) => Buffer.from(a));
    const prefix = fc.constantFrom("", "HTTP/1.1 200 OK\r\n", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", "HTTP/1.1 100 Continue\r\n\r\n");
    fc.assert(
      fc.property(prefix, fc.array(soup, { maxLength: 5 }), fc.boolean(), (head, chunks, close) => {
        try {
          parse([head, ...chunks], { maxBody: 64, close });
        } catch (e) {
          if (!(e instanceof HttpParseError) && !(e instanceof FrameTooLargeError)) throw e;
        }
        assert.equal(parse(["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"])[0].body.toString(), "ok");
      }),
      { numRuns: RUNS },
    );
  });
});
