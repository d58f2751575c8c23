import { channelContract } from "../contract/channel-contract.js";
import { wsContractFixture } from "./http-fixtures.js";

channelContract("ws", () => wsContractFixture(false));
channelContract("wss", () => wsContractFixture(true));
