import { assert, test } from "../_harness.ts";
test("harness works", () => { assert.equal(1 + 1, 2); });
