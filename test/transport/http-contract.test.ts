import { channelContract } from "../contract/channel-contract.js";
import { httpContractFixture } from "./http-fixtures.js";

channelContract("http", () => httpContractFixture(false));
channelContract("https", () => httpContractFixture(true));
