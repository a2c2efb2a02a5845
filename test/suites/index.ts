// Every suite, in one list, so the two runtime entries cannot drift apart.
import "./net.ts";
import "./http-server.ts";
import "./http-limits.ts";
import "./http-parser.ts";
import "./http-chunked.ts";
import "./http-response.ts";
import "./http-response-bytes.ts";
import "./privileges.ts";
import "./cluster.ts";
import "./cli.ts";
import "./udp.ts";
import "./io-paths.ts";
import "./http-slow-clients.ts";
import "./http-faults.ts";
import "./lifecycle.ts";
import "./accept.ts";
import "./control-plane.ts";
