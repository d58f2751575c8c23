/**
 * Test fixtures for the HTTP and WebSocket transports: channel-contract fixtures (http, https, ws, wss),
 * a raw HTTP request helper, a small HttpDigestAuthority built from rpc/digest.ts helpers, and TLS
 * material made with test/helpers/certs.ts.
 */
import http from "node:http";
import https from "node:https";
import WebSocket from "ws";
import type { ContractFixture } from "../contract/channel-contract.js";
import type { Channel } from "../../src/rpc/channel.js";
import { type HttpDigestAuthority, digestResponse, ha1, parseDigestHeader } from "../../src/rpc/digest.js";
import { type HttpDeviceServer, listenHttp } from "../../src/transport/http-device.js";
import { connect as connectHttp } from "../../src/transport/http.js";
import { connect as connectWs } from "../../src/transport/ws.js";
import type { TlsFileOptions } from "../../src/transport/url.js";
import { issueCert, makeCa, type TestCa, type TestCert } from "../helpers/certs.js";

export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One raw HTTP(S) request; resolves with the answer, or with status 0 when the link failed. */
export function rawRequest(
  url: string,
  o: { method?: string; body?: string | Buffer; headers?: http.OutgoingHttpHeaders; ca?: string; timeoutMs?: number } = {},
): Promise<RawAnswer & { error?: Error }> {
  return new Promise((resolve) => {
    const u = new URL(url);
    const request = u.protocol === "https:" ? https.request : http.request;
    const body = o.body === undefined ? undefined : Buffer.isBuffer(o.body) ? o.body : Buffer.from(o.body);
    const headers: http.OutgoingHttpHeaders = { ...(o.headers ?? {}) };
    if (body) headers["Content-Length"] = body.length;
    let done = false;
    const finish = (a: RawAnswer & { error?: Error }): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(a);
    };
    const req = request(u, { method: o.method ?? "POST", headers, agent: false, ...(o.ca ? { ca: o.ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => finish({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", (e) => finish({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8"), error: e }));
    });
    const timer = setTimeout(() => {
      req.destroy(new Error("raw request timed out"));
    }, o.timeoutMs ?? 10_000);
    req.on("error", (e) => finish({ status: 0, headers: {}, body: "", error: e }));
    if (body) {
      req.write(body, () => undefined);
    }
    req.end();
  });
}

/** Send one raw WebSocket message to `url` and wait until it is delivered (or the server closes). */
export function rawWsMessage(url: string, data: string | Buffer, ca?: string): Promise<void> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...(ca ? { ca } : {}) });
    const timer = setTimeout(() => {
      ws.terminate();
      resolve();
    }, 10_000);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    ws.on("error", () => undefined);
    ws.on("close", done);
    ws.on("open", () => {
      ws.send(typeof data === "string" ? data : data.toString("latin1"), { binary: false }, () => {
        // Give the device a moment to read it, then leave.
        setTimeout(() => ws.close(1000), 50);
      });
    });
  });
}

/** A small HttpDigestAuthority for tests: MD5, one realm, users with plain passwords, hex unix nonces. */
export function testDigestAuthority(realm: string, users: Record<string, string>): HttpDigestAuthority & { verified: string[] } {
  const verified: string[] = [];
  return {
    verified,
    challenge() {
      return `Digest qop="auth", realm="${realm}", nonce="${Math.floor(Date.now() / 1000).toString(16)}", algorithm=MD5`;
    },
    async verify(authorization, method, uri) {
      const p = parseDigestHeader(authorization);
      if (!p || p.realm !== realm || !p.username || !p.nonce || !p.response) return undefined;
      const password = users[p.username];
      if (password === undefined) return undefined;
      const nonceAge = Date.now() / 1000 - parseInt(p.nonce, 16);
      if (!(nonceAge >= -1 && nonceAge < 3600)) return undefined;
      if ((p.uri ?? uri) !== uri) return undefined;
      const expected = digestResponse({
        algorithm: "MD5",
        ha1: ha1("MD5", p.username, realm, password),
        nonce: p.nonce,
        nc: p.nc ?? "",
        cnonce: p.cnonce ?? "",
        qop: p.qop ?? "",
        method,
        uri: p.uri ?? uri,
      });
      if (expected !== p.response) return undefined;
      verified.push(p.username);
      return p.username;
    },
  };
}

export interface TlsMaterial {
  ca: TestCa;
  otherCa: TestCa;
  server: TestCert;
  expiredServer: TestCert;
  otherServer: TestCert;
  client: TestCert;
  otherClient: TestCert;
}

let material: Promise<TlsMaterial> | undefined;

/** One set of CAs and certificates per test process. */
export function tlsMaterial(): Promise<TlsMaterial> {
  material ??= (async () => {
    const ca = await makeCa("remos http test CA");
    const otherCa = await makeCa("some other CA");
    const day = 86400_000;
    return {
      ca,
      otherCa,
      server: await issueCert(ca, { cn: "device", usage: "server" }),
      expiredServer: await issueCert(ca, { cn: "expired", usage: "server", notBefore: new Date(Date.now() - 10 * day), notAfter: new Date(Date.now() - day) }),
      otherServer: await issueCert(otherCa, { cn: "impostor", usage: "server" }),
      client: await issueCert(ca, { cn: "operator", usage: "client" }),
      otherClient: await issueCert(otherCa, { cn: "stranger", usage: "client" }),
    };
  })();
  return material;
}

/** A contract fixture for the HTTP (or HTTPS) transport. */
export function httpContractFixture(secure: boolean): ContractFixture {
  let dev: HttpDeviceServer | undefined;
  let ca = "";
  let base = "";
  return {
    devicePushes: false,
    async start(accept: (ch: Channel) => void) {
      let tls: { cert: string; key: string } | undefined;
      if (secure) {
        const m = await tlsMaterial();
        ca = m.ca.certPem;
        tls = { cert: m.server.certPem, key: m.server.keyPem };
      }
      dev = await listenHttp({ host: "127.0.0.1", port: 0, onChannel: accept, tls });
      base = `${secure ? "https" : "http"}://127.0.0.1:${dev.port}/rpc`;
    },
    async connect() {
      const tls: TlsFileOptions | undefined = secure ? { ca } : undefined;
      return connectHttp(new URL(base), { tls, timeoutMs: 5000 });
    },
    async injectRaw(data) {
      await rawRequest(base, { body: data, headers: { "Content-Type": "application/json" }, ca: secure ? ca : undefined });
    },
    async stop() {
      await dev?.close();
    },
  };
}

/** A contract fixture for the WebSocket (or wss) transport. */
export function wsContractFixture(secure: boolean): ContractFixture {
  let dev: HttpDeviceServer | undefined;
  let ca = "";
  let base = "";
  return {
    async start(accept: (ch: Channel) => void) {
      let tls: { cert: string; key: string } | undefined;
      if (secure) {
        const m = await tlsMaterial();
        ca = m.ca.certPem;
        tls = { cert: m.server.certPem, key: m.server.keyPem };
      }
      dev = await listenHttp({ host: "127.0.0.1", port: 0, onChannel: accept, tls });
      base = `${secure ? "wss" : "ws"}://127.0.0.1:${dev.port}/rpc`;
    },
    async connect() {
      return connectWs(new URL(base), { tls: secure ? { ca } : undefined, timeoutMs: 5000 });
    },
    async injectRaw(data) {
      await rawWsMessage(base, data, secure ? ca : undefined);
    },
    async stop() {
      await dev?.close();
    },
  };
}
