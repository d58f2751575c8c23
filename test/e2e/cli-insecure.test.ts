/**
 * `--insecure` exists (unlike mos, remos verifies TLS servers by default) and says loudly what it does.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runMos } from "../helpers/mos.js";

describe("mos --insecure", () => {
  it("warns on stderr that the server certificate is not verified", async () => {
    const r = await runMos(["--insecure", "--timeout", "2s", "--port", "https://127.0.0.1:1/rpc", "call", "RPC.Ping"]);
    assert.match(r.stderr, /WARNING: --insecure: the TLS server certificate is NOT verified/);
    assert.notEqual(r.code, 0, "nothing listens on port 1");
  });

  it("says nothing of the kind without it", async () => {
    const r = await runMos(["--timeout", "2s", "--port", "https://127.0.0.1:1/rpc", "call", "RPC.Ping"]);
    assert.doesNotMatch(r.stderr, /WARNING/);
  });
});
