import { channelContract } from "../contract/channel-contract.js";
import { LoopbackChannel, connectLoopback, listenLoopback } from "../../src/transport/loopback.js";

channelContract("loopback", () => {
  let stopListening: (() => void) | undefined;
  let raw: LoopbackChannel | undefined;
  return {
    async start(accept) {
      stopListening = listenLoopback("contract", accept);
      raw = connectLoopback("contract");
    },
    async connect() {
      return connectLoopback("contract");
    },
    async injectRaw(data) {
      raw?.injectToPeer(typeof data === "string" ? data : data.toString("latin1"));
    },
    async stop() {
      await raw?.close();
      stopListening?.();
    },
  };
});
