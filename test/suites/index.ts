// Every suite, in one list, so the two runtime entries cannot drift apart.
import "./smoke.ts";
import "./net.ts";
import "./http-server.ts";
import "./http-limits.ts";
import "./http-parser.ts";
import "./http-chunked.ts";
import "./http-response.ts";
import "./privileges.ts";
import "./cluster.ts";
import "./udp.ts";
import "./http-perf-regressions.ts";
import "./io-paths.ts";
import "./http-slow-clients.ts";
import "./http-faults.ts";
import "./defects.ts";
import "./lifecycle.ts";
import "./accept.ts";
