// The example server `npm start` runs: GET / answers "Hello"; PORT picks the port (default 3000).
import { serve } from "../src/index.ts";

const server = serve({
  fetch: (request) => {
    const { pathname } = new URL(request.url);
    if (pathname === "/") return new Response("Hello");
    return new Response("Not Found\n", { status: 404 });
  },
});
console.log(`reuseport: listening on ${server.url}`);
