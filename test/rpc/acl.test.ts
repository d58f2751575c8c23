import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { AclSyntaxError, aclDecision, aclSource, findAclEntry, parseAcl, userAllowed } from "../../src/rpc/acl.js";

describe("ACL source (rpc.acl / rpc.acl_file)", () => {
  it("tells none, inline, @file, acl_file and a conflict apart", () => {
    assert.deepEqual(aclSource("", ""), { kind: "none" });
    assert.deepEqual(aclSource(undefined, undefined), { kind: "none" });
    assert.deepEqual(aclSource('[{"method":"*","acl":"*"}]', ""), { kind: "inline", text: '[{"method":"*","acl":"*"}]' });
    assert.deepEqual(aclSource("@acl.json", ""), { kind: "file", name: "acl.json" });
    assert.deepEqual(aclSource("", "old_acl.json"), { kind: "file", name: "old_acl.json" });
    assert.deepEqual(aclSource("@a.json", "b.json"), { kind: "conflict" });
  });
});

describe("ACL parsing", () => {
  it("parses entries in order, with optional ch_type and method", () => {
    const acl = parseAcl('[{"method":"FS.*","acl":"+admin"},{"ch_type":"UART","acl":"*"},{"method":"*","ch_type":"HTTP","acl":"-*"}]');
    assert.deepEqual(acl.entries, [
      { method: "FS.*", acl: "+admin" },
      { chType: "UART", acl: "*" },
      { method: "*", chType: "HTTP", acl: "-*" },
    ]);
  });

  it("refuses malformed ACLs with AclSyntaxError (ERR_USAGE) naming the problem", () => {
    const bad: Array<[string, RegExp]> = [
      ["{", /not JSON/],
      ['{"method":"*","acl":"*"}', /root must be a JSON array/],
      ["[1]", /entry 0 is not an object/],
      ['[{"method":"*"}]', /entry 0: "acl"/],
      ['[{"method":"*","acl":""}]', /entry 0: "acl"/],
      ['[{"method":"*","acl":5}]', /entry 0: "acl"/],
      ['[{"acl":"*"}]', /needs "method" or "ch_type"/],
      ['[{"method":"*","acl":"*"},{"method":7,"acl":"*"}]', /entry 1: "method"/],
      ['[{"method":"*","ch_type":"","acl":"*"}]', /"ch_type"/],
    ];
    for (const [text, re] of bad) {
      assert.throws(() => parseAcl(text), (e: unknown) => e instanceof AclSyntaxError && e.code === "ERR_USAGE" && re.test(e.message), text);
    }
  });

  it("property: arbitrary text never throws anything but AclSyntaxError", () => {
    const arbitraryAcl = fc.oneof(
      fc.string(),
      fc.json(),
      fc.array(
        fc.record(
          { method: fc.oneof(fc.string(), fc.integer(), fc.constant(null)), ch_type: fc.oneof(fc.string(), fc.boolean()), acl: fc.oneof(fc.string(), fc.integer()) },
          { requiredKeys: [] },
        ),
      ).map((a) => JSON.stringify(a)),
    );
    fc.assert(
      fc.property(arbitraryAcl, (text) => {
        try {
          const acl = parseAcl(text);
          for (const e of acl.entries) {
            assert.equal(typeof e.acl, "string");
            assert.ok(e.method !== undefined || e.chType !== undefined);
          }
          // evaluation never throws either
          aclDecision(acl, "Sys.GetInfo", "UART");
        } catch (e) {
          if (!(e instanceof AclSyntaxError)) throw e;
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("ACL lookup", () => {
  const acl = parseAcl(
    JSON.stringify([
      { method: "FS.*", acl: "+admin" },
      { method: "Sys.GetInfo", acl: "*" },
      { method: "Config.Get", ch_type: "UART", acl: "+*" },
      { method: "Config.*", ch_type: "HTTP", acl: "-*" },
      { method: "Config.*", acl: "admin,operator" },
      { method: "GPIO.Read|GPIO.Toggle", acl: "*" },
      { method: "*", acl: "-*" },
    ]),
  );

  it("first entry whose glob matches the whole method wins (case-insensitive)", () => {
    assert.equal(findAclEntry(acl, "FS.Get", "MQTT")?.acl, "+admin");
    assert.equal(findAclEntry(acl, "fs.put", "MQTT")?.acl, "+admin");
    assert.equal(findAclEntry(acl, "Sys.GetInfo", "MQTT")?.acl, "*");
    // "Sys.GetInfo" must match the whole name: Sys.GetInfoX falls through to the catch-all
    assert.equal(findAclEntry(acl, "Sys.GetInfoX", "MQTT")?.acl, "-*");
    assert.equal(findAclEntry(acl, "GPIO.Toggle", "MQTT")?.acl, "*");
    assert.equal(findAclEntry(acl, "GPIO.Write", "MQTT")?.acl, "-*");
  });

  it("ch_type must equal the channel type exactly", () => {
    assert.deepEqual(aclDecision(acl, "Config.Get", "UART").kind, "allow");
    assert.deepEqual(aclDecision(acl, "Config.Get", "HTTP").kind, "deny");
    assert.deepEqual(aclDecision(acl, "Config.Get", "WS_in").kind, "auth");
    assert.deepEqual(aclDecision(acl, "Config.Get", "uart").kind, "auth");
    assert.deepEqual(aclDecision(acl, "Config.Set", "HTTP").kind, "deny");
  });

  it("open, closed and user-list entries", () => {
    assert.equal(aclDecision(acl, "Sys.GetInfo", "HTTP").kind, "allow");
    assert.equal(aclDecision(acl, "Sys.Reboot", "HTTP").kind, "deny");
    const d = aclDecision(acl, "FS.List", "MQTT");
    assert.equal(d.kind, "auth");
    assert.equal(d.kind === "auth" && d.entry.acl, "+admin");
  });

  it("no matching entry denies", () => {
    const narrow = parseAcl('[{"method":"Sys.*","acl":"*"}]');
    const d = aclDecision(narrow, "FS.Get", "UART");
    assert.equal(d.kind, "deny");
    assert.equal(d.entry, undefined);
  });

  it("an entry with only ch_type matches every method on that channel", () => {
    const byChannel = parseAcl('[{"ch_type":"UART","acl":"*"},{"method":"*","acl":"+admin"}]');
    assert.equal(aclDecision(byChannel, "Anything.AtAll", "UART").kind, "allow");
    assert.equal(aclDecision(byChannel, "Anything.AtAll", "MQTT").kind, "auth");
  });
});

describe("ACL user lists (mgos_conf_check_access_n)", () => {
  it("evaluates +/-/plain items in order, first match wins, no match denies", () => {
    assert.equal(userAllowed("admin", "+admin"), true);
    assert.equal(userAllowed("bob", "+admin"), false);
    assert.equal(userAllowed("guest", "+admin,-guest,*"), false);
    assert.equal(userAllowed("bob", "+admin,-guest,*"), true);
    assert.equal(userAllowed("admin", "-admin,+*"), false);
    assert.equal(userAllowed("admin", "+*,-admin"), true);
    assert.equal(userAllowed("op1", "admin,op*"), true);
    assert.equal(userAllowed("op1", "admin,-op?,op*"), false);
    assert.equal(userAllowed("op12", "admin,-op?,op*"), true);
    assert.equal(userAllowed("alice", "-*"), false);
    assert.equal(userAllowed("alice", ""), false);
    assert.equal(userAllowed("alice", ",,+,alice"), true);
  });

  it("trims blanks around items and matches case-insensitively like the firmware", () => {
    assert.equal(userAllowed("guest", "+admin, guest"), true);
    assert.equal(userAllowed("Admin", "+admin"), true);
  });

  it("the empty user is never allowed", () => {
    assert.equal(userAllowed("", "*"), false);
  });

  it("property: never throws on arbitrary lists and users", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (user, list) => {
        assert.equal(typeof userAllowed(user, list), "boolean");
      }),
      { numRuns: 500 },
    );
  });
});
