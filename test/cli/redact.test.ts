import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { redactPort } from "../../src/cli/context.js";

describe("port URLs in messages", () => {
  it("hide the password of userinfo, keep everything else", () => {
    assert.equal(redactPort("mqtt://joe:s3cret@broker:1883/esp32_A1B2C3"), "mqtt://joe:***@broker:1883/esp32_A1B2C3");
    assert.equal(redactPort("mqtts://broker/esp32_A1B2C3"), "mqtts://broker/esp32_A1B2C3");
    assert.equal(redactPort("/dev/ttyUSB0"), "/dev/ttyUSB0");
    assert.equal(redactPort("http://192.168.1.9/rpc"), "http://192.168.1.9/rpc");
  });
});
