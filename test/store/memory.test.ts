import { MemoryStore } from "../fixtures/memory-store.ts";
import { runStoreConformance } from "./conformance.ts";

// The in-memory store the fast catalog/prune/publish tests use honours the same contract as the real ones.
runStoreConformance("in memory (test fixture)", async () => ({
  store: new MemoryStore(),
  cleanup: async () => {},
  exclusiveCreate: true,
}));
