// Every suite, in one list, so the two runtime entries cannot drift apart. Each is registered through
// suite(), which adds a check after it that every fd its tests opened was closed.
import { suite } from "../_harness.ts";

// Deno's op and resource sanitizers are on where the suite's tests leave nothing running: every timer and
// fetch body of a test ends in that test.
const sanitizers = true;
await suite("net.ts", () => import("./net.ts"), { sanitizers });
await suite("http-parser.ts", () => import("./http-parser.ts"), { sanitizers });
await suite("http-chunked.ts", () => import("./http-chunked.ts"), { sanitizers });
await suite("http-response.ts", () => import("./http-response.ts"), { sanitizers });
await suite("privileges.ts", () => import("./privileges.ts"), { sanitizers });
await suite("cluster.ts", () => import("./cluster.ts"), { sanitizers });
await suite("cli.ts", () => import("./cli.ts"), { sanitizers });
await suite("udp.ts", () => import("./udp.ts"), { sanitizers });
await suite("control-plane.ts", () => import("./control-plane.ts"), { sanitizers });

await suite("http-server.ts", () => import("./http-server.ts"), { sanitizers });
await suite("http-body.ts", () => import("./http-body.ts"), { sanitizers });
await suite("http-dropin.ts", () => import("./http-dropin.ts"), { sanitizers });
await suite("http-files.ts", () => import("./http-files.ts"), { sanitizers });
await suite("http-compression.ts", () => import("./http-compression.ts"), { sanitizers });
await suite("http-limits.ts", () => import("./http-limits.ts"));
await suite("http-response-bytes.ts", () => import("./http-response-bytes.ts"), { sanitizers });
await suite("io-paths.ts", () => import("./io-paths.ts"));
await suite("io-wake.ts", () => import("./io-wake.ts"));
await suite("http-slow-clients.ts", () => import("./http-slow-clients.ts"));
await suite("http-faults.ts", () => import("./http-faults.ts"));
await suite("lifecycle.ts", () => import("./lifecycle.ts"));
await suite("accept.ts", () => import("./accept.ts"));
await suite("activation.ts", () => import("./activation.ts"));
await suite("ws.ts", () => import("./ws.ts"), { sanitizers });
await suite("ws-cluster.ts", () => import("./ws-cluster.ts"), { sanitizers });
await suite("ws-autobahn.ts", () => import("./ws-autobahn.ts"));
await suite("ws-redis.ts", () => import("./ws-redis.ts"), { sanitizers });
await suite("ws-deflate.ts", () => import("./ws-deflate.ts"), { sanitizers });
await suite("ws-frames.ts", () => import("./ws-frames.ts"), { sanitizers });
