/**
 * The embedded broker's security: mutual TLS against the local CA and CRL, client id = CN, and the
 * per-identity policy (test/cloud/security-suite.ts), plus the refusal log and MQTT over WSS.
 */
import { startBroker } from "../../src/cloud/broker.js";
import { securitySuite } from "./security-suite.js";

securitySuite("embedded broker security", {
  refusesClientIdMismatch: true,
  refusesSubscribe: true,
  async start(fx) {
    const b = await startBroker({ ...fx.prepared.tls, host: "127.0.0.1", port: 0 });
    return { url: `mqtts://127.0.0.1:${b.port}`, stop: () => b.close() };
  },
});
