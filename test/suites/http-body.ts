// Request bodies: the readers (text, json, arrayBuffer, bytes, blob, formData) on bodies that are already in
// memory and on bodies that stream in, with the same answers either way.
import { assert, test } from "../_harness.ts";
import { withServer } from "../_http.ts";

test("body: req.text() of a small POST body answers its bytes", () =>
  withServer(async (req) => new Response(await req.text()), {}, async (_server, base) => {
    const response = await fetch(`${base}/`, { method: "POST", body: "ping ✓" });
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "ping ✓");
  }));
