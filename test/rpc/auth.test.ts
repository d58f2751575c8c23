import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  NONCE_WINDOW_SECONDS,
  ReplayStore,
  algorithmFromConfig,
  frameChallengeMessage,
  httpChallengeHeader,
  lookupHa1,
  parseHtdigest,
  verifyFrameAuth,
  verifyHttpAuthorization,
} from "../../src/rpc/auth.js";
import { type DigestAlgorithm, frameAuthFor, ha1, httpDigestAuthorization, parseFrameChallenge } from "../../src/rpc/digest.js";

const NOW = 1_800_000_000;

function htdigest(algorithm: DigestAlgorithm, realm: string, users: Record<string, string>): string {
  return Object.entries(users)
    .map(([u, p]) => `${u}:${realm}:${ha1(algorithm, u, realm, p)}`)
    .join("\n");
}

describe("htdigest parsing", () => {
  it("reads user:realm:HA1 lines, skipping blanks, comments and malformed lines", () => {
    const good = ha1("MD5", "joe", "dev", "pw");
    const text = [
      "# users",
      "",
      `joe:dev:${good.toUpperCase()}\r`,
      "broken line",
      "a:b:c:d",
      ":dev:" + good,
      "ann:dev:xyz",
      `joe:dev:${ha1("MD5", "joe", "dev", "other")}`,
      `  sha:dev:${ha1("SHA-256", "sha", "dev", "pw")}  `,
    ].join("\n");
    const db = parseHtdigest(text);
    assert.equal(db.skippedLines, 4);
    assert.equal(lookupHa1(db, "joe", "dev", "MD5"), good, "first line wins, HA1 lowercased");
    assert.equal(lookupHa1(db, "joe", "other", "MD5"), undefined);
    assert.equal(lookupHa1(db, "sha", "dev", "SHA-256")?.length, 64);
    assert.equal(lookupHa1(db, "sha", "dev", "MD5"), undefined, "an HA1 of the other algorithm's length is not used");
  });

  it("property: arbitrary text never throws", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.array(fc.tuple(fc.string(), fc.string(), fc.string())).map((a) => a.map((t) => t.join(":")).join("\n"))), (text) => {
        const db = parseHtdigest(text);
        assert.ok(db.skippedLines >= 0);
      }),
      { numRuns: 500 },
    );
  });
});

describe("replay store", () => {
  it("accepts a key once within the window and forgets it after", () => {
    const s = new ReplayStore();
    assert.equal(s.useOnce("k", NOW - 10, NOW), true);
    assert.equal(s.useOnce("k", NOW - 10, NOW), false);
    assert.equal(s.useOnce("k2", NOW - 10, NOW), true);
    assert.equal(s.size, 2);
    assert.equal(s.useOnce("other", NOW, NOW + NONCE_WINDOW_SECONDS - 5), true);
    assert.equal(s.size, 1, "entries whose nonce is stale are dropped");
  });

  it("refuses nonces from before its start (captured before a restart)", () => {
    const s = new ReplayStore({ notBeforeSeconds: NOW });
    assert.equal(s.useOnce("old", NOW - 1, NOW), false);
    assert.equal(s.useOnce("start", NOW, NOW), true);
  });

  it("stays bounded under a flood and never re-accepts an evicted key", () => {
    const s = new ReplayStore({ maxEntries: 100 });
    for (let i = 0; i < 1000; i++) assert.equal(s.useOnce(`k${i}`, NOW - 1000 + i, NOW), true);
    assert.ok(s.size <= 100);
    for (let i = 0; i < 1000; i++) assert.equal(s.useOnce(`k${i}`, NOW - 1000 + i, NOW), false, `k${i}`);
    // a fresh nonce above the floor still works
    assert.equal(s.useOnce("new", NOW, NOW), true);
  });
});

describe("in-frame auth verification", () => {
  for (const algorithm of ["MD5", "SHA-256"] as const) {
    const cfg = { realm: "myproduct", algorithm };
    const db = parseHtdigest(htdigest(algorithm, "myproduct", { joe: "secret", ann: "pw2" }));
    const challenge = () => parseFrameChallenge(frameChallengeMessage(cfg, NOW))!;

    it(`${algorithm}: accepts mos's answer to the challenge once`, () => {
      const replay = new ReplayStore();
      const auth = frameAuthFor(challenge(), { username: "joe", password: "secret" })!;
      assert.deepEqual(verifyFrameAuth(auth, cfg, db, replay, NOW + 1), { ok: true, user: "joe" });
      assert.deepEqual(verifyFrameAuth(auth, cfg, db, replay, NOW + 2), { ok: false, reason: "replayed", user: "joe" });
      // a second answer to the same challenge has another cnonce: accepted
      const again = frameAuthFor(challenge(), { username: "joe", password: "secret" })!;
      assert.equal(verifyFrameAuth(again, cfg, db, replay, NOW + 3).ok, true);
    });

    it(`${algorithm}: nonce and cnonce as strings work like numbers`, () => {
      const auth = frameAuthFor(challenge(), { username: "ann", password: "pw2" })!;
      const asStrings = { ...auth, nonce: String(auth.nonce), cnonce: String(auth.cnonce) };
      assert.equal(verifyFrameAuth(asStrings, cfg, db, new ReplayStore(), NOW).ok, true);
    });

    it(`${algorithm}: wrong password and unknown user look the same`, () => {
      const wrong = verifyFrameAuth(frameAuthFor(challenge(), { username: "joe", password: "nope" }), cfg, db, new ReplayStore(), NOW);
      const unknown = verifyFrameAuth(frameAuthFor(challenge(), { username: "zed", password: "x" }), cfg, db, new ReplayStore(), NOW);
      assert.equal(wrong.ok === false && wrong.reason, "unknown user or wrong password");
      assert.equal(unknown.ok === false && unknown.reason, "unknown user or wrong password");
    });

    it(`${algorithm}: stale and future nonces are refused`, () => {
      const auth = frameAuthFor(challenge(), { username: "joe", password: "secret" })!;
      const r1 = verifyFrameAuth(auth, cfg, db, new ReplayStore(), NOW + NONCE_WINDOW_SECONDS);
      assert.equal(r1.ok === false && r1.reason, "stale nonce");
      assert.equal(verifyFrameAuth(auth, cfg, db, new ReplayStore(), NOW + NONCE_WINDOW_SECONDS - 1).ok, true);
      const r2 = verifyFrameAuth(auth, cfg, db, new ReplayStore(), NOW - 1);
      assert.equal(r2.ok === false && r2.reason, "stale nonce");
      const r3 = verifyFrameAuth({ ...auth, nonce: "0x10" }, cfg, db, new ReplayStore(), NOW);
      assert.equal(r3.ok === false && r3.reason, "stale nonce");
    });
  }

  it("malformed: missing fields, other realm, other algorithm, not an object", () => {
    const cfg = { realm: "myproduct", algorithm: "MD5" as const };
    const db = parseHtdigest(htdigest("MD5", "myproduct", { joe: "secret" }));
    const good = frameAuthFor({ auth_type: "digest", nonce: NOW, realm: "myproduct", algorithm: "MD5" }, { username: "joe", password: "secret" })!;
    const cases: unknown[] = [
      "x",
      [good],
      null,
      { ...good, realm: undefined },
      { ...good, username: "" },
      { ...good, nonce: undefined },
      { ...good, cnonce: { a: 1 } },
      { ...good, response: 5 },
      { ...good, realm: "other" },
      { ...good, algorithm: "SHA-256" },
      { ...good, algorithm: "SHA-512" },
    ];
    for (const c of cases) {
      const r = verifyFrameAuth(c, cfg, db, new ReplayStore(), NOW);
      assert.equal(r.ok === false && r.reason, "malformed", JSON.stringify(c));
    }
    // SHA-256 configured: an auth without algorithm means MD5, a mismatch
    const r = verifyFrameAuth({ ...good, algorithm: undefined }, { realm: "myproduct", algorithm: "SHA-256" }, db, new ReplayStore(), NOW);
    assert.equal(r.ok === false && r.reason, "malformed");
  });

  it("property: arbitrary auth objects never throw", () => {
    const cfg = { realm: "r", algorithm: "MD5" as const };
    const db = parseHtdigest(htdigest("MD5", "r", { u: "p" }));
    fc.assert(
      fc.property(fc.anything(), (a) => {
        const r = verifyFrameAuth(a, cfg, db, new ReplayStore(), NOW);
        assert.equal(r.ok, false);
      }),
      { numRuns: 300 },
    );
  });
});

describe("challenges", () => {
  it("the 401 message is exactly the firmware's JSON", () => {
    assert.equal(
      frameChallengeMessage({ realm: "myproduct", algorithm: "MD5" }, 1717171717),
      '{"auth_type":"digest","nonce":1717171717,"nc":1,"realm":"myproduct","algorithm":"MD5"}',
    );
    assert.equal(algorithmFromConfig(0), "MD5");
    assert.equal(algorithmFromConfig(1), "SHA-256");
  });

  it("the WWW-Authenticate header carries a hex nonce", () => {
    assert.equal(
      httpChallengeHeader({ realm: "myproduct", algorithm: "SHA-256" }, 0x665a1b2c),
      'Digest qop="auth", realm="myproduct", nonce="665a1b2c", algorithm=SHA-256',
    );
  });
});

describe("HTTP digest verification", () => {
  for (const algorithm of ["MD5", "SHA-256"] as const) {
    const cfg = { realm: "myproduct", algorithm };
    const db = parseHtdigest(htdigest(algorithm, "myproduct", { joe: "secret" }));
    const header = (now = NOW, user = "joe", password = "secret", method = "POST", uri = "/rpc") =>
      httpDigestAuthorization(httpChallengeHeader(cfg, now), { username: user, password }, method, uri)!;

    it(`${algorithm}: accepts an RFC 7616 header once`, () => {
      const replay = new ReplayStore();
      const h = header();
      assert.deepEqual(verifyHttpAuthorization(h, "POST", "/rpc", cfg, db, replay, NOW + 5), { ok: true, user: "joe" });
      const again = verifyHttpAuthorization(h, "POST", "/rpc", cfg, db, replay, NOW + 6);
      assert.equal(again.ok === false && again.reason, "replayed");
      // curl-style reuse of the nonce with the next nc is a different credential
      const nc2 = httpDigestAuthorization(httpChallengeHeader(cfg, NOW), { username: "joe", password: "secret" }, "POST", "/rpc")!;
      assert.equal(verifyHttpAuthorization(nc2, "POST", "/rpc", cfg, db, replay, NOW + 7).ok, true);
    });

    it(`${algorithm}: refuses wrong password, another method or uri, stale and bad nonces`, () => {
      const r = (h: string, method = "POST", uri = "/rpc", now = NOW) => {
        const x = verifyHttpAuthorization(h, method, uri, cfg, db, new ReplayStore(), now);
        return x.ok ? "ok" : x.reason;
      };
      assert.equal(r(header(NOW, "joe", "bad")), "unknown user or wrong password");
      assert.equal(r(header(NOW, "nobody", "secret")), "unknown user or wrong password");
      assert.equal(r(header(), "GET"), "unknown user or wrong password");
      assert.equal(r(header(), "POST", "/rpc/Sys.Reboot"), "malformed");
      assert.equal(r(header(), "POST", "/rpc", NOW + NONCE_WINDOW_SECONDS), "stale nonce");
      assert.equal(r(header(NOW + 100)), "stale nonce");
      assert.equal(r(header().replace(/nonce="[0-9a-f]+"/, 'nonce="zz12"')), "stale nonce");
      assert.equal(r(header().replace(/nonce="[0-9a-f]+"/, `nonce="${NOW}"`)), "stale nonce", "decimal is not the hex nonce");
      assert.equal(r(header().replace(/realm="myproduct"/, 'realm="x"')), "malformed");
      assert.equal(r(header().replace(/qop=auth/, "qop=auth-int")), "malformed");
      assert.equal(r(header().replace(/, nc=00000001/, "")), "malformed");
      assert.equal(r("Basic am9lOnNlY3JldA=="), "malformed");
      assert.equal(r(""), "malformed");
    });
  }

  it("property: arbitrary headers never throw", () => {
    const cfg = { realm: "r", algorithm: "MD5" as const };
    const db = parseHtdigest(htdigest("MD5", "r", { u: "p" }));
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string().map((s) => "Digest " + s)), (h) => {
        assert.equal(verifyHttpAuthorization(h, "POST", "/rpc", cfg, db, new ReplayStore(), NOW).ok, false);
      }),
      { numRuns: 300 },
    );
  });
});
