import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { frameForLog } from "../../src/log.js";

describe("frames in the debug log", () => {
  it("hide secrets and file data, keep the rest", () => {
    const put = '{"src":"mos","id":1,"method":"FS.Put","params":{"filename":"k.pem","data":"LS0tLS1CRUdJTiBQUklWQVRF","append":false}}';
    assert.equal(frameForLog(put), '{"src":"mos","id":1,"method":"FS.Put","params":{"filename":"k.pem","data":"<24 chars>","append":false}}');
    const set = '{"id":2,"method":"Config.Set","params":{"config":{"wifi":{"sta":{"ssid":"Home","pass":"hunter2"}},"mqtt":{"pass":"p\\"w","ssl_key":"k.pem","ssl_psk_key":"00ff"}}}}';
    const out = frameForLog(set);
    for (const secret of ["hunter2", 'p\\"w', "k.pem", "00ff"]) assert.ok(!out.includes(secret), `${secret} is hidden: ${out}`);
    assert.ok(out.includes('"ssid":"Home"'));
    const auth = '{"id":3,"method":"M","auth":{"realm":"r","username":"joe","nonce":1,"cnonce":2,"response":"abcdef0123"}}';
    assert.ok(!frameForLog(auth).includes("abcdef0123"));
    assert.ok(frameForLog("x".repeat(5000)).length <= 2001);
  });
});
