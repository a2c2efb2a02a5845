// A module for the CLI form: `reuseport serve examples/app.ts` (default export { fetch }).
import { Hono } from "hono";

const app = new Hono();
app.get("/", (c) => c.text("Hello"));
app.get("/hello/:name", (c) => c.json({ hello: c.req.param("name"), pid: process.pid }));

export default app;
