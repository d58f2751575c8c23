export async function runFleet(): Promise<void> {
  throw new Error("not yet");
}
