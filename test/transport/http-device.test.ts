/**
 * The HTTP device end (`listenHttp`) against tools no one here wrote (curl) and raw sockets: Mode A
 * frames, Mode B REST (GET query, POST args, OPTIONS preflight, status mapping), limits (413, slow
 * requests), the enable switches, and HTTP Digest (curl --digest) including the remos HTTP client.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AuthError, RpcError, TransportError } from "../../src/errors.js";
import { addLogSink, type LogEvent } from "../../src/log.js";
import type { ChannelInfo } from "../../src/rpc/channel.js";
import { RpcClient } from "../../src/rpc/client.js";
import { RpcServer } from "../../src/rpc/server.js";
import { type HttpDeviceServer, listenHttp } from "../../src/transport/http-device.js";
import { connect as connectHttp } from "../../src/transport/http.js";
import { connect as connectWs } from "../../src/transport/ws.js";
import { rawRequest, testDigestAuthority } from "./http-fixtures.js";

interface CurlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function curl(args: string[], timeoutMs = 10_000): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile("curl", ["-sS", "--max-time", String(timeoutMs / 1000), ...args], { timeout: timeoutMs + 2000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Split `curl -i` output into status, headers (lower-case names) and body. */
function parseHead(out: string): { status: number; headers: Record<string, string>; body: string } {
  const blocks = out.split("\r\n\r\n");
  // skip interim responses (100 Continue, 401 before digest)
  let i = 0;
  while (i < blocks.length - 1 && /^HTTP\/1\.1 (100|401) /.test(blocks[i]) && /^HTTP\//.test(blocks[i + 1] ?? "")) i++;
  const head = blocks[i];
  const body = blocks.slice(i + 1).join("\r\n\r\n");
  const [statusLine, ...lines] = head.split("\r\n");
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const k = l.indexOf(":");
    if (k > 0) headers[l.slice(0, k).toLowerCase()] = l.slice(k + 1).trim();
  }
  return { status: Number(statusLine.split(" ")[1]), headers, body };
}

const haveCurl = await new Promise<boolean>((resolve) => execFile("curl", ["--version"], (e) => resolve(!e)));
const skipCurl = haveCurl ? false : process.env.CI === "true" ? false : "curl is not installed";

describe("HTTP device end", { timeout: 60_000 }, () => {
  const server = new RpcServer({ localIds: ["dev1"] });
  let dev: HttpDeviceServer;
  let base: string;
  let httpOn = true;
  let wsOn = true;
  const seen: ChannelInfo[] = [];
  const tmp = mkdtempSync(join(tmpdir(), "remos-http-"));

  server.addHandler("Test.Args", (p) => p ?? "none");
  server.addHandler("Test.Forbidden", () => {
    throw new RpcError(403, "unauthorized");
  });
  server.addHandler("Test.Bad", () => {
    throw new RpcError(400, "pin is required");
  });
  server.addHandler("Test.Slow", () => new Promise(() => undefined));

  before(async () => {
    dev = await listenHttp({
      host: "127.0.0.1",
      port: 0,
      onChannel: (ch) => {
        seen.push(ch.info);
        server.serve(ch);
      },
      isHttpEnabled: () => httpOn,
      isWsEnabled: () => wsOn,
      requestTimeoutMs: 1500,
      responseTimeoutMs: 1500,
    });
    base = `http://127.0.0.1:${dev.port}`;
  });

  after(async () => {
    server.stopAll();
    await dev.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it("curl POSTs a whole frame to /rpc (Mode A) and gets the answer frame with JSON and CORS headers", { skip: skipCurl }, async () => {
    const r = await curl(["-i", "-H", "Content-Type: application/json", "-d", '{"id":42,"src":"curl","method":"Test.Args","params":{"x":1}}', `${base}/rpc`]);
    assert.equal(r.code, 0, r.stderr);
    const h = parseHead(r.stdout);
    assert.equal(h.status, 200);
    assert.equal(h.headers["content-type"], "application/json");
    assert.equal(h.headers["access-control-allow-origin"], "*");
    assert.equal(h.headers["access-control-allow-headers"], "*");
    assert.equal(h.headers["connection"], "close");
    assert.ok(h.body.endsWith("\r\n"));
    assert.deepEqual(JSON.parse(h.body), { id: 42, src: "dev1", dst: "curl", result: { x: 1 } });
    const info = seen.at(-1);
    assert.equal(info?.type, "HTTP");
    assert.match(info?.peer ?? "", /^127\.0\.0\.1:\d+$/);
  });

  it("curl GET /rpc/RPC.Ping (Mode B) answers the bare result with the peer address", { skip: skipCurl }, async () => {
    const r = await curl(["-i", `${base}/rpc/RPC.Ping`]);
    const h = parseHead(r.stdout);
    assert.equal(h.status, 200);
    assert.match(JSON.parse(h.body).channel_info, /^127\.0\.0\.1:\d+$/);
  });

  it("curl -d args to /rpc/RPC.Describe", { skip: skipCurl }, async () => {
    const r = await curl(["-d", '{"name":"RPC.List"}', `${base}/rpc/RPC.Describe`]);
    assert.equal(r.code, 0, r.stderr);
    const d = JSON.parse(r.stdout);
    assert.equal(d.name, "RPC.List");
    assert.equal(d.args_fmt, "");
  });

  it("GET query values are raw JSON: numbers bare, strings quoted; bad values are a 400", { skip: skipCurl }, async () => {
    const r = await curl([`${base}/rpc/Test.Args?pin=2&value=1&name=%22init.js%22&on=true`]);
    assert.deepEqual(JSON.parse(r.stdout), { pin: 2, value: 1, name: "init.js", on: true });
    const bad = parseHead((await curl(["-i", `${base}/rpc/Test.Args?name=init.js`])).stdout);
    assert.equal(bad.status, 400);
    assert.match(bad.body, /quote strings/);
  });

  it("OPTIONS preflight answers 200 with CORS headers and no body", { skip: skipCurl }, async () => {
    const r = await curl(["-i", "-X", "OPTIONS", "-H", "Origin: http://example.test", "-H", "Access-Control-Request-Method: POST", `${base}/rpc/Sys.GetInfo`]);
    const h = parseHead(r.stdout);
    assert.equal(h.status, 200);
    assert.equal(h.headers["access-control-allow-origin"], "*");
    assert.equal(h.headers["access-control-allow-headers"], "*");
    assert.equal(h.headers["content-length"], "0");
    assert.equal(h.body, "");
  });

  it("REST errors map to 404, 403 and 500 with the error object as body", { skip: skipCurl }, async () => {
    const missing = parseHead((await curl(["-i", `${base}/rpc/No.Such`])).stdout);
    assert.equal(missing.status, 404);
    assert.deepEqual(JSON.parse(missing.body), { code: 404, message: "No handler for No.Such" });
    const forbidden = parseHead((await curl(["-i", `${base}/rpc/Test.Forbidden`])).stdout);
    assert.equal(forbidden.status, 403);
    assert.deepEqual(JSON.parse(forbidden.body), { code: 403, message: "unauthorized" });
    const bad = parseHead((await curl(["-i", "-d", "{}", `${base}/rpc/Test.Bad`])).stdout);
    assert.equal(bad.status, 500);
    assert.deepEqual(JSON.parse(bad.body), { code: 400, message: "pin is required" });
  });

  it("a body over the limit is refused with 413 (curl), and the device keeps serving", { skip: skipCurl }, async () => {
    const big = join(tmp, "big.json");
    writeFileSync(big, "{" + "x".repeat(2 * 1024 * 1024));
    const r = await curl(["-i", "-H", "Content-Type: application/json", "--data-binary", `@${big}`, `${base}/rpc`]);
    assert.equal(parseHead(r.stdout).status, 413);
    const again = await curl([`${base}/rpc/Test.Args?a=1`]);
    assert.deepEqual(JSON.parse(again.stdout), { a: 1 });
  });

  it("a body over the limit without Content-Length (chunked) is cut off with 413", async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const s = net.connect(dev.port, "127.0.0.1");
      let got = "";
      const t = setTimeout(() => {
        s.destroy();
        reject(new Error("no answer"));
      }, 5000);
      s.on("data", (d) => (got += d.toString()));
      s.on("error", () => undefined);
      s.on("close", () => {
        clearTimeout(t);
        resolve(got);
      });
      s.write("POST /rpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
      const chunk = "x".repeat(64 * 1024);
      for (let i = 0; i < 20; i++) s.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    });
    assert.match(answer, /^HTTP\/1\.1 413 /);
  });

  it("malformed Mode A bodies are dropped, logged and answered 400", async () => {
    const events: LogEvent[] = [];
    const off = addLogSink((e) => events.push(e));
    try {
      const r = await rawRequest(`${base}/rpc`, { body: "not json" });
      assert.equal(r.status, 400);
      assert.equal(JSON.parse(r.body).code, 400);
    } finally {
      off();
    }
    assert.ok(events.some((e) => e.area === "http" && /malformed frame dropped/.test(e.message)));
  });

  it("a notification gets an empty 200 at once", async () => {
    const r = await rawRequest(`${base}/rpc`, { body: '{"method":"Test.Slow"}' });
    assert.equal(r.status, 200);
    assert.equal(r.body, "");
  });

  it("keep-alive is kept only when asked", async () => {
    const r = await rawRequest(`${base}/rpc`, { body: '{"id":1,"method":"RPC.Ping"}', headers: { Connection: "keep-alive" } });
    assert.equal(r.headers.connection, "keep-alive");
  });

  it("a handler that never answers gets a 504 after responseTimeoutMs; the remos client fails the call", async () => {
    const r = await rawRequest(`${base}/rpc`, { body: '{"id":7,"method":"Test.Slow"}' });
    assert.equal(r.status, 504);
    const ch = await connectHttp(new URL(`${base}/rpc`));
    const client = new RpcClient(ch, { src: "mos", timeoutMs: 10_000 });
    await assert.rejects(client.call("Test.Slow"), (e: Error) => e instanceof TransportError && /HTTP 504/.test(e.message));
    await client.close();
  });

  it("a half-sent request is closed after requestTimeoutMs", async () => {
    const t0 = Date.now();
    const answer = await new Promise<string>((resolve) => {
      const s = net.connect(dev.port, "127.0.0.1");
      let got = "";
      const t = setTimeout(() => s.destroy(), 8000);
      s.on("data", (d) => (got += d.toString()));
      s.on("error", () => undefined);
      s.on("close", () => {
        clearTimeout(t);
        resolve(got);
      });
      s.write("POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{");
    });
    assert.ok(Date.now() - t0 < 7000, "closed by the device, not by the test's guard");
    assert.match(answer, /^HTTP\/1\.1 408 /);
  });

  it("other paths are 404; with HTTP disabled /rpc is 404 too; with WS disabled an upgrade gets 503", async () => {
    assert.equal((await rawRequest(`${base}/other`, { method: "GET" })).status, 404);
    httpOn = false;
    try {
      assert.equal((await rawRequest(`${base}/rpc/RPC.Ping`, { method: "GET" })).status, 404);
    } finally {
      httpOn = true;
    }
    wsOn = false;
    try {
      await assert.rejects(connectWs(new URL(`ws://127.0.0.1:${dev.port}/rpc`), { timeoutMs: 5000 }), (e: Error) => e instanceof TransportError && /503/.test(e.message) && /WS is disabled/.test(e.message));
    } finally {
      wsOn = true;
    }
  });
});

describe("HTTP Digest on /rpc", { timeout: 60_000 }, () => {
  const server = new RpcServer({ localIds: ["dev2"] });
  const auth = testDigestAuthority("myproduct", { joe: "secret" });
  let dev: HttpDeviceServer;
  let base: string;
  // What the device's auth pre-handler does when an ACL demands a user and none came (spec §4.2 step 5).
  server.addPreHandler((ctx) => {
    if (ctx.method !== "RPC.Ping" && !ctx.user) throw new RpcError(401, "authentication required");
  });
  server.addHandler("Test.Who", (_p, ctx) => ({ user: ctx.user ?? null }));

  before(async () => {
    dev = await listenHttp({ host: "127.0.0.1", port: 0, onChannel: (ch) => server.serve(ch), httpAuth: auth });
    base = `http://127.0.0.1:${dev.port}`;
  });
  after(async () => {
    server.stopAll();
    await dev.close();
  });

  it("answers 401 with a Digest challenge, CORS headers and no body", async () => {
    const r = await rawRequest(`${base}/rpc`, { body: '{"id":1,"method":"Test.Who"}' });
    assert.equal(r.status, 401);
    assert.match(String(r.headers["www-authenticate"]), /^Digest qop="auth", realm="myproduct", nonce="[0-9a-f]+", algorithm=MD5$/);
    assert.equal(r.headers["access-control-allow-origin"], "*");
    assert.equal(r.headers["content-length"], "0");
    assert.equal(r.body, "");
  });

  it("curl --digest -u user:pass passes on Mode A and Mode B", { skip: skipCurl }, async () => {
    const a = await curl(["--digest", "-u", "joe:secret", "-d", '{"id":5,"method":"Test.Who"}', `${base}/rpc`]);
    assert.equal(a.code, 0, a.stderr);
    assert.deepEqual(JSON.parse(a.stdout).result, { user: "joe" });
    const b = await curl(["--digest", "-u", "joe:secret", `${base}/rpc/Test.Who`]);
    assert.deepEqual(JSON.parse(b.stdout), { user: "joe" });
    const wrong = await curl(["-i", "--digest", "-u", "joe:nope", `${base}/rpc/Test.Who`]);
    assert.match(wrong.stdout.split("\r\n\r\n").filter((s) => s.startsWith("HTTP/")).at(-1) ?? "", /^HTTP\/1\.1 401 /);
  });

  it("the remos HTTP client retries once with Authorization; wrong or missing credentials are AuthErrors", async () => {
    const url = new URL(`${base}/rpc`);
    const good = new RpcClient(await connectHttp(url, { credentials: { username: "joe", password: "secret" } }), { src: "mos" });
    assert.deepEqual(await good.call("Test.Who"), { user: "joe" });
    assert.ok(good.channel.info.peer.startsWith("127.0.0.1:"));
    await good.close();

    const wrong = new RpcClient(await connectHttp(url, { credentials: { username: "joe", password: "bad" } }), { src: "mos" });
    await assert.rejects(wrong.call("Test.Who"), (e: Error) => e instanceof AuthError && e.message === "authentication failed (check --rpc-creds)");
    await wrong.close();

    const none = new RpcClient(await connectHttp(url), { src: "mos" });
    await assert.rejects(none.call("Test.Who"), (e: Error) => e instanceof AuthError && /--rpc-creds/.test(e.message));
    assert.ok(await none.call("RPC.Ping"));
    await none.close();
  });
});
