/**
 * The embedded broker's optional MQTT-over-WSS listener (`mos broker --wss-port`) enforces the same
 * mutual TLS and per-identity policy as its mqtts listener: the whole security suite, over wss://.
 */
import { startBroker } from "../../src/cloud/broker.js";
import { securitySuite } from "./security-suite.js";

securitySuite("embedded broker over WSS", {
  refusesClientIdMismatch: true,
  refusesSubscribe: true,
  async start(fx) {
    const b = await startBroker({ ...fx.prepared.tls, host: "127.0.0.1", port: 0, wssPort: 0 });
    return { url: `wss://127.0.0.1:${b.wssPort}/mqtt`, stop: () => b.close() };
  },
});
