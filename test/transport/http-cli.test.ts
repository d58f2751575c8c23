/**
 * The built `mos` over the HTTP and WebSocket transports, end to end: `--port http(s)://…/rpc` and
 * `ws(s)://…/rpc` against an in-process device, with `--ca-cert-file`, and HTTP Digest with `--rpc-creds`.
 * Needs dist/ (npm test builds it; during development run `npx tsup`).
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { RpcError } from "../../src/errors.js";
import { RpcServer } from "../../src/rpc/server.js";
import { type HttpDeviceServer, listenHttp } from "../../src/transport/http-device.js";
import { tempPemDir, writePem } from "../helpers/certs.js";
import { runMos } from "../helpers/mos.js";
import { testDigestAuthority, tlsMaterial } from "./http-fixtures.js";

describe("mos over http/https/ws/wss", { timeout: 60_000 }, () => {
  const rpc = new RpcServer({ localIds: ["clidev"] });
  const auth = testDigestAuthority("myproduct", { joe: "secret" });
  rpc.addPreHandler((ctx) => {
    if (ctx.method === "Test.Secret" && !ctx.user) throw new RpcError(401, "authentication required");
  });
  rpc.addHandler("Test.Echo", (p, ctx) => ({ got: p ?? null, type: ctx.channel.type }));
  rpc.addHandler("Test.Secret", (_p, ctx) => ({ user: ctx.user }));
  let plain: HttpDeviceServer;
  let secure: HttpDeviceServer;
  let dir: string;
  let caFile: string;

  before(async () => {
    const m = await tlsMaterial();
    dir = tempPemDir("remos-http-cli-");
    caFile = writePem(dir, "ca.pem", m.ca.certPem);
    plain = await listenHttp({ host: "127.0.0.1", port: 0, onChannel: (ch) => rpc.serve(ch), httpAuth: auth });
    secure = await listenHttp({ host: "127.0.0.1", port: 0, onChannel: (ch) => rpc.serve(ch), tls: { cert: m.server.certPem, key: m.server.keyPem } });
  });
  after(async () => {
    rpc.stopAll();
    await plain.close();
    await secure.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const cases = [
    { scheme: "http", type: "HTTP", tls: false },
    { scheme: "https", type: "HTTP", tls: true },
    { scheme: "ws", type: "WS_in", tls: false },
    { scheme: "wss", type: "WS_in", tls: true },
  ];
  for (const c of cases) {
    it(`mos --port ${c.scheme}://…/rpc call`, async () => {
      const port = c.tls ? secure.port : plain.port;
      const args = ["--port", `${c.scheme}://localhost:${port}/rpc`, ...(c.tls ? ["--ca-cert-file", caFile] : []), "call", "Test.Echo", '{"n":1}'];
      const r = await runMos(args, { timeoutMs: 20_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), { got: { n: 1 }, type: c.type });
    });
  }

  it("mos over https without the CA fails with the TLS cause", async () => {
    const r = await runMos(["--port", `https://127.0.0.1:${secure.port}/rpc`, "call", "Test.Echo"], { timeoutMs: 20_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /unknown CA/);
  });

  it("mos with --rpc-creds passes HTTP Digest; without it the error says to pass --rpc-creds", async () => {
    const url = `http://127.0.0.1:${plain.port}/rpc`;
    const ok = await runMos(["--port", url, "--rpc-creds", "joe:secret", "call", "Test.Secret"], { timeoutMs: 20_000 });
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout), { user: "joe" });
    const none = await runMos(["--port", url, "call", "Test.Secret"], { timeoutMs: 20_000 });
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /--rpc-creds/);
  });
});
