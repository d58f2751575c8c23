import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { AuthError } from "../../src/errors.js";
import { type DigestAlgorithm, ha1, httpDigestAuthorization } from "../../src/rpc/digest.js";
import { RpcClient } from "../../src/rpc/client.js";
import { RpcServer } from "../../src/rpc/server.js";
import { type HttpDeviceServer, listenHttp } from "../../src/transport/http-device.js";
import { openChannel } from "../../src/transport/url.js";
import { httpChallengeHeader } from "../../src/rpc/auth.js";
import {
  type RpcSecurityConfig,
  type SecurityDeps,
  createHttpDigestAuthority,
  createSecurityPreHandler,
  fsRootFileAccess,
} from "../../src/device/security.js";

const ACL = JSON.stringify([
  { method: "Sys.GetInfo", acl: "*" },
  { method: "*", acl: "+admin" },
]);

function htdigestText(algorithm: DigestAlgorithm, users: Record<string, string>): string {
  return Object.entries(users).map(([u, p]) => `${u}:myproduct:${ha1(algorithm, u, "myproduct", p)}\n`).join("");
}

interface CurlResult {
  code: number;
  status: number;
  body: string;
  stderr: string;
}

function curl(args: string[]): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile("curl", ["-sS", "-v", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}", ...args], { timeout: 15_000 }, (err, stdout, stderr) => {
      const i = stdout.lastIndexOf("\n");
      resolve({
        code: err ? (typeof err.code === "number" ? err.code : 1) : 0,
        status: Number(stdout.slice(i + 1)),
        body: stdout.slice(0, i).trim(),
        stderr,
      });
    });
  });
}

function haveCurl(): Promise<boolean> {
  return new Promise((resolve) => execFile("curl", ["--version"], { timeout: 5000 }, (err) => resolve(!err)));
}

/** A raw POST with an explicit Authorization header. */
function rawRequest(port: number, method: string, path: string, authorization: string, body = ""): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, method, path, headers: { Authorization: authorization, "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) }, timeout: 5000 },
      (res) => {
        let data = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (data += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: data }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end(body);
  });
}

describe("HTTP Digest end to end (listenHttp + HttpDigestAuthority)", () => {
  let dir: string;
  let cfg: RpcSecurityConfig;
  let deps: SecurityDeps;
  let server: RpcServer;
  let device: HttpDeviceServer;
  let curlOk = false;
  const clients: RpcClient[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "remos-security-http-"));
    cfg = { acl: ACL, acl_file: "", auth_domain: "myproduct", auth_file: "rpc_auth.txt", auth_algo: 0 };
    deps = { rpcConfig: () => cfg, ...fsRootFileAccess(dir) };
    server = new RpcServer({ localIds: ["dev1"] });
    server.addPreHandler(createSecurityPreHandler(deps));
    server.addHandler("Sys.GetInfo", () => ({ id: "dev1" }));
    server.addHandler("FS.List", (_p, ctx) => ({ user: ctx.user }));
    device = await listenHttp({ host: "127.0.0.1", port: 0, onChannel: (ch) => server.serve(ch), httpAuth: createHttpDigestAuthority(deps), responseTimeoutMs: 10_000 });
    curlOk = await haveCurl();
  });
  beforeEach(async () => {
    cfg.auth_algo = 0;
    await writeFile(join(dir, "rpc_auth.txt"), htdigestText("MD5", { admin: "adminpw", guest: "guestpw" }));
  });
  after(async () => {
    for (const c of clients) await c.close();
    server.stopAll();
    await device.close();
    await rm(dir, { recursive: true, force: true });
  });

  const needCurl = (t: { skip(msg: string): void }): boolean => {
    if (curlOk) return true;
    if (process.env.CI === "true") assert.fail("curl is required in CI");
    t.skip("curl is not installed");
    return false;
  };
  const url = (path: string): string => `http://127.0.0.1:${device.port}${path}`;

  for (const [algo, name] of [[0, "MD5"], [1, "SHA-256"]] as const) {
    it(`curl --digest (${name}) gets through; a wrong password gets 401`, async (t) => {
      if (!needCurl(t)) return;
      cfg.auth_algo = algo;
      await writeFile(join(dir, "rpc_auth.txt"), htdigestText(name, { admin: "adminpw", guest: "guestpw" }));
      const ok = await curl(["--digest", "-u", "admin:adminpw", url("/rpc/FS.List")]);
      assert.equal(ok.status, 200, ok.stderr);
      assert.deepEqual(JSON.parse(ok.body), { user: "admin" });
      assert.match(ok.stderr, new RegExp(`WWW-Authenticate: Digest qop="auth", realm="myproduct", nonce="[0-9a-f]+", algorithm=${name}`));
      const bad = await curl(["--digest", "-u", "admin:nope", url("/rpc/FS.List")]);
      assert.equal(bad.status, 401);
      // REST with a JSON body (curl probes with an empty body first, then sends it with the Authorization)
      const post = await curl(["--digest", "-u", "admin:adminpw", "-d", "{}", url("/rpc/FS.List")]);
      assert.equal(post.status, 200, post.stderr);
      assert.deepEqual(JSON.parse(post.body), { user: "admin" });
    });
  }

  it("a user the ACL entry does not list gets 403; open methods need no credentials", async (t) => {
    if (!needCurl(t)) return;
    const guest = await curl(["--digest", "-u", "guest:guestpw", url("/rpc/FS.List")]);
    assert.equal(guest.status, 403);
    assert.deepEqual(JSON.parse(guest.body), { code: 403, message: "unauthorized" });
    const open = await curl([url("/rpc/Sys.GetInfo")]);
    assert.equal(open.status, 200);
  });

  it("a captured Authorization header replayed later is refused", async (t) => {
    if (!needCurl(t)) return;
    const first = await curl(["--digest", "-u", "admin:adminpw", url("/rpc/FS.List")]);
    assert.equal(first.status, 200);
    const m = /^> Authorization: (Digest .*)\r?$/m.exec(first.stderr);
    assert.ok(m, "curl -v shows the Authorization header it sent");
    const again = await rawRequest(device.port, "GET", "/rpc/FS.List", m[1].trim());
    assert.equal(again.status, 401);
  });

  it("stale and non-hex nonces are refused", async () => {
    const stale = httpDigestAuthorization(httpChallengeHeader({ realm: "myproduct", algorithm: "MD5" }, Math.floor(Date.now() / 1000) - 4000), { username: "admin", password: "adminpw" }, "GET", "/rpc/FS.List")!;
    assert.equal((await rawRequest(device.port, "GET", "/rpc/FS.List", stale)).status, 401);
    const fresh = httpDigestAuthorization(httpChallengeHeader({ realm: "myproduct", algorithm: "MD5" }, Math.floor(Date.now() / 1000)), { username: "admin", password: "adminpw" }, "GET", "/rpc/FS.List")!;
    const decimal = fresh.replace(/nonce="[0-9a-f]+"/, `nonce="${Math.floor(Date.now() / 1000)}"`);
    assert.equal((await rawRequest(device.port, "GET", "/rpc/FS.List", decimal)).status, 401);
    assert.equal((await rawRequest(device.port, "GET", "/rpc/FS.List", fresh)).status, 200);
  });

  it("the remos HTTP client answers the HTTP 401 with Digest", async () => {
    const ch = await openChannel(url("/rpc"), { credentials: { username: "admin", password: "adminpw" } });
    const client = new RpcClient(ch, { src: "mos", timeoutMs: 10_000 });
    clients.push(client);
    assert.deepEqual(await client.call("FS.List"), { user: "admin" });
    assert.deepEqual(await client.call("FS.List"), { user: "admin" });
    const badCh = await openChannel(url("/rpc"), { credentials: { username: "admin", password: "wrong" } });
    const bad = new RpcClient(badCh, { src: "mos", timeoutMs: 10_000 });
    clients.push(bad);
    await assert.rejects(bad.call("FS.List"), AuthError);
  });

  it("WebSocket: in-frame digest on WS_in through RpcClient", async () => {
    const ch = await openChannel(`ws://127.0.0.1:${device.port}/rpc`, { credentials: { username: "admin", password: "adminpw" } });
    const client = new RpcClient(ch, { src: "mos", timeoutMs: 10_000, credentials: { username: "admin", password: "adminpw" } });
    clients.push(client);
    assert.deepEqual(await client.call("FS.List"), { user: "admin" });
  });

  it("WebSocket: a Digest header on the upgrade authenticates the link once; replayed, it does not", async () => {
    const nowS = Math.floor(Date.now() / 1000);
    const authorization = httpDigestAuthorization(httpChallengeHeader({ realm: "myproduct", algorithm: "MD5" }, nowS), { username: "admin", password: "adminpw" }, "GET", "/rpc")!;
    const callOver = (header: string): Promise<{ result?: unknown; error?: { code: number } }> =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${device.port}/rpc`, ["clubby.cesanta.com"], { headers: { Authorization: header } });
        const timer = setTimeout(() => {
          ws.terminate();
          reject(new Error("no answer over WS within 5 s"));
        }, 5000);
        ws.on("open", () => ws.send(JSON.stringify({ id: 1, src: "t", method: "FS.List" })));
        ws.on("message", (data: WebSocket.RawData) => {
          clearTimeout(timer);
          ws.close();
          resolve(JSON.parse(String(data)) as { result?: unknown; error?: { code: number } });
        });
        ws.on("error", (e) => {
          clearTimeout(timer);
          reject(e);
        });
      });
    assert.deepEqual((await callOver(authorization)).result, { user: "admin" });
    assert.equal((await callOver(authorization)).error?.code, 401);
  });
});
