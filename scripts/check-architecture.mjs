#!/usr/bin/env node
// Acceptance checks on src/**/*.ts that a reviewer would otherwise make by eye (issue #13, STYLE.md §3):
//   1. no import cycle: static `import ... from`, `import "..."` and `export ... from` with relative paths
//      (type-only imports count: a cycle of types is still a circle of modules);
//   2. no `Deno.`, `Bun.` or `unref` outside src/ffi/ (comments are stripped first, strings in code are not);
//   3. no function, method or arrow function body over 70 lines (opening brace line to closing brace line).
// Prints `file:line: what` for each offender and exits 1 if there is one. Node only, no dependencies.
// Usage: node scripts/check-architecture.mjs [root]   (root defaults to the checkout holding this script)
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const BODY_LINES_MAX = 70;
const RUNTIME_FENCE = "src/ffi/"; // the only directory that may name the runtime
const RUNTIME_WORDS = [/\bDeno\./g, /\bBun\./g, /\bunref\b/g];

const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), ".."));

/** Every .ts file under dir, sorted, as paths relative to root with forward slashes. */
function listSources(dir) {
  const files = [];
  const pending = [dir];
  while (pending.length > 0) {
    const current = pending.pop();
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) pending.push(path);
      else if (entry.isFile() && entry.name.endsWith(".ts")) files.push(relative(root, path).split(sep).join("/"));
    }
  }
  return files.sort();
}

// ---------------------------------------------------------------------------------------------------------
// Tokenizer: enough of TypeScript to match braces. It skips strings, template literals (and nests into
// their `${}`), regular expression literals and comments, and blanks comments out of a copy of the text.

const KEYWORDS_BEFORE_EXPRESSION = new Set([
  "return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case", "do", "else", "yield", "await",
]);
// `>` and `<` always stand alone, so `Map<string, Set<number>>` closes two type argument lists.
const PUNCTUATORS = ["=>", "...", "?.", "??=", "??", "===", "!==", "==", "!=", "&&=", "||=", "&&", "||",
  "++", "--", "+=", "-=", "*=", "/=", "%=", "**"];

function isIdentifierStart(c) {
  return /[A-Za-z_$\u0080-\uffff]/.test(c);
}
function isIdentifierPart(c) {
  return /[A-Za-z0-9_$\u0080-\uffff]/.test(c);
}

/** A regex literal may start here if the previous significant token cannot end an operand. */
function regexAllowed(previous) {
  if (previous === null) return true;
  if (previous.type === "identifier") return KEYWORDS_BEFORE_EXPRESSION.has(previous.value);
  if (previous.type === "number" || previous.type === "string" || previous.type === "template" || previous.type === "regex") return false;
  return previous.value !== ")" && previous.value !== "]";
}

/**
 * Tokens of `text`: { type: "identifier" | "number" | "string" | "template" | "regex" | "punct", value, line }.
 * Also returns `code`, the text with every comment replaced by spaces (newlines kept, so lines still match).
 */
function tokenize(text) {
  const tokens = [];
  const code = text.split("");
  let line = 1;
  let i = 0;
  const braces = []; // "{" for a brace in code, "${" for a template expression
  const blank = (from, to) => {
    for (let k = from; k < to; k++) if (code[k] !== "\n") code[k] = " ";
  };
  const advanceLines = (from, to) => {
    for (let k = from; k < to; k++) if (text[k] === "\n") line++;
  };
  const previous = () => (tokens.length > 0 ? tokens[tokens.length - 1] : null);
  /** Scans template characters from i (just after ` or a closing } of ${}) to its end or the next ${. */
  const scanTemplate = () => {
    const start = i;
    const startLine = line;
    while (i < text.length) {
      const c = text[i];
      if (c === "\\") {
        i += 2;
        continue;
      }
      if (c === "`") {
        i++;
        advanceLines(start, i);
        tokens.push({ type: "template", value: "`", line: startLine });
        return;
      }
      if (c === "$" && text[i + 1] === "{") {
        i += 2;
        advanceLines(start, i);
        tokens.push({ type: "template", value: "${", line: startLine });
        braces.push("${");
        return;
      }
      i++;
    }
    advanceLines(start, i);
  };
  while (i < text.length) {
    const c = text[i];
    if (c === "\n") {
      line++;
      i++;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r") {
      i++;
      continue;
    }
    if (c === "/" && text[i + 1] === "/") {
      const end = text.indexOf("\n", i);
      const stop = end < 0 ? text.length : end;
      blank(i, stop);
      i = stop;
      continue;
    }
    if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      const stop = end < 0 ? text.length : end + 2;
      blank(i, stop);
      advanceLines(i, stop);
      i = stop;
      continue;
    }
    if (c === "'" || c === '"') {
      const start = i;
      i++;
      while (i < text.length && text[i] !== c && text[i] !== "\n") i += text[i] === "\\" ? 2 : 1;
      i++;
      tokens.push({ type: "string", value: text.slice(start + 1, i - 1), line });
      continue;
    }
    if (c === "`") {
      i++;
      scanTemplate();
      continue;
    }
    if (c === "/" && regexAllowed(previous())) {
      const start = i;
      let inClass = false;
      i++;
      while (i < text.length && text[i] !== "\n") {
        const r = text[i];
        if (r === "\\") {
          i += 2;
          continue;
        }
        if (r === "[") inClass = true;
        else if (r === "]") inClass = false;
        else if (r === "/" && !inClass) break;
        i++;
      }
      i++;
      while (i < text.length && isIdentifierPart(text[i])) i++; // flags
      tokens.push({ type: "regex", value: text.slice(start, i), line });
      continue;
    }
    if (isIdentifierStart(c)) {
      const start = i;
      while (i < text.length && isIdentifierPart(text[i])) i++;
      tokens.push({ type: "identifier", value: text.slice(start, i), line });
      continue;
    }
    if (/[0-9]/.test(c) || (c === "." && /[0-9]/.test(text[i + 1] ?? ""))) {
      const start = i;
      while (i < text.length && /[0-9A-Za-z_.]/.test(text[i])) i++;
      tokens.push({ type: "number", value: text.slice(start, i), line });
      continue;
    }
    if (c === "{") {
      braces.push("{");
      tokens.push({ type: "punct", value: "{", line });
      i++;
      continue;
    }
    if (c === "}") {
      const opened = braces.pop();
      i++;
      if (opened === "${") {
        tokens.push({ type: "template", value: "}", line });
        scanTemplate();
      } else {
        tokens.push({ type: "punct", value: "}", line });
      }
      continue;
    }
    const punctuator = PUNCTUATORS.find((p) => text.startsWith(p, i)) ?? c;
    tokens.push({ type: "punct", value: punctuator, line });
    i += punctuator.length;
  }
  return { tokens, code: code.join("") };
}

// ---------------------------------------------------------------------------------------------------------
// Check 1: import cycles.

/** The `from "..."` string that ends an import or export clause starting at tokens[t], or null. */
function fromClause(tokens, t) {
  for (let k = t; k < tokens.length && k < t + 400; k++) {
    const { type, value } = tokens[k];
    if (type === "string") return tokens[k - 1].value === "from" ? tokens[k] : null;
    if (type === "punct" && (value === ";" || value === "=" || value === "(")) return null;
  }
  return null;
}

/** The static imports and re-exports at the top level of one file: { specifier, line, typeOnly }. */
function staticImports(tokens) {
  const imports = [];
  let depth = 0;
  for (let t = 0; t < tokens.length; t++) {
    const token = tokens[t];
    if (token.type === "punct" && token.value === "{") depth++;
    else if (token.type === "punct" && token.value === "}") depth--;
    if (depth !== 0 || token.type !== "identifier" || (token.value !== "import" && token.value !== "export")) continue;
    let next = t + 1;
    const typeOnly = tokens[next]?.value === "type" && tokens[next + 1]?.value !== "=" && tokens[next + 1]?.value !== ",";
    if (token.value === "import") {
      if (tokens[next]?.value === "(" || tokens[next]?.value === ".") continue; // import(...), import.meta
      if (tokens[next]?.type === "string") {
        imports.push({ specifier: tokens[next].value, line: token.line, typeOnly: false }); // import "./x.ts"
        continue;
      }
    } else {
      if (typeOnly) next++;
      if (tokens[next]?.value !== "{" && tokens[next]?.value !== "*") continue; // export const/function/class ...
    }
    const from = fromClause(tokens, next);
    if (from !== null) imports.push({ specifier: from.value, line: token.line, typeOnly });
  }
  return imports;
}

/** The src file a relative specifier names, or null (packages, node: builtins, files outside src). */
function resolveImport(from, specifier) {
  if (!specifier.startsWith("./") && !specifier.startsWith("../")) return null;
  const base = resolve(root, dirname(from), specifier);
  const candidates = [base, base.replace(/\.js$/, ".ts"), `${base}.ts`, join(base, "index.ts")];
  for (const candidate of candidates) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return relative(root, candidate).split(sep).join("/");
  }
  return null;
}

/** Strongly connected components of the import graph (Tarjan's algorithm, iterative). */
function stronglyConnected(nodes, edges) {
  const index = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const components = [];
  let counter = 0;
  for (const start of nodes) {
    if (index.has(start)) continue;
    const work = [[start, 0]];
    index.set(start, counter);
    low.set(start, counter);
    counter++;
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      const [node, position] = frame;
      const targets = (edges.get(node) ?? []).map((edge) => edge.target);
      if (position < targets.length) {
        frame[1]++;
        const target = targets[position];
        if (!index.has(target)) {
          index.set(target, counter);
          low.set(target, counter);
          counter++;
          stack.push(target);
          onStack.add(target);
          work.push([target, 0]);
        } else if (onStack.has(target)) {
          low.set(node, Math.min(low.get(node), index.get(target)));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1][0];
        low.set(parent, Math.min(low.get(parent), low.get(node)));
      }
      if (low.get(node) === index.get(node)) {
        const component = [];
        let member;
        do {
          member = stack.pop();
          onStack.delete(member);
          component.push(member);
        } while (member !== node);
        components.push(component.sort());
      }
    }
  }
  return components;
}

/** One shortest path from `from` to `to` inside `members` (breadth-first), as a list of files. */
function shortestPath(from, to, members, edges) {
  const previous = new Map([[from, null]]);
  const queue = [from];
  while (queue.length > 0) {
    const node = queue.shift();
    if (node === to) break;
    for (const { target } of edges.get(node) ?? []) {
      if (!members.has(target) || previous.has(target)) continue;
      previous.set(target, node);
      queue.push(target);
    }
  }
  const path = [];
  for (let at = to; at !== null; at = previous.get(at) ?? null) path.unshift(at);
  return path;
}

function checkCycles(files, parsed, offenders) {
  const edges = new Map();
  for (const file of files) {
    const list = [];
    for (const { specifier, line, typeOnly } of staticImports(parsed.get(file).tokens)) {
      const target = resolveImport(file, specifier);
      if (target !== null && target.startsWith("src/")) list.push({ target, line, typeOnly });
    }
    edges.set(file, list);
  }
  for (const component of stronglyConnected(files, edges)) {
    const members = new Set(component);
    const selfLoop = component.length === 1 && (edges.get(component[0]) ?? []).some((e) => e.target === component[0]);
    if (component.length === 1 && !selfLoop) continue;
    for (const file of component) {
      for (const { target, line, typeOnly } of edges.get(file)) {
        if (!members.has(target)) continue;
        const cycle = [file, ...(target === file ? [file] : shortestPath(target, file, members, edges))].join(" -> ");
        offenders.push(`${file}:${line}: import cycle: imports ${target}${typeOnly ? " (type only)" : ""}; cycle ${cycle}`);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Check 2: runtime names outside src/ffi/.

function checkRuntimeNames(files, parsed, offenders) {
  for (const file of files) {
    if (file.startsWith(RUNTIME_FENCE)) continue;
    const lines = parsed.get(file).code.split("\n");
    lines.forEach((text, index) => {
      for (const word of RUNTIME_WORDS) {
        for (const match of text.matchAll(word)) {
          offenders.push(`${file}:${index + 1}: runtime outside ${RUNTIME_FENCE}: \`${match[0]}\` in ${JSON.stringify(text.trim().slice(0, 100))}`);
        }
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Check 3: function bodies over BODY_LINES_MAX lines.

const CONTROL_KEYWORDS = new Set(["if", "for", "while", "switch", "catch", "with"]);
const STATEMENT_KEYWORDS = new Set([
  "try", "else", "do", "finally", "catch", "return", "const", "let", "var", "if", "class", "interface", "type", "enum",
  "namespace", "module", "export", "import", "throw", "new", "extends", "implements",
]);

/** Index of the `(` matching the `)` at tokens[close], or -1. */
function openingParen(tokens, close) {
  let depth = 0;
  for (let k = close; k >= 0; k--) {
    if (tokens[k].type !== "punct") continue;
    if (tokens[k].value === ")") depth++;
    else if (tokens[k].value === "(" && --depth === 0) return k;
  }
  return -1;
}

/** The name of the function whose parameter list opens at tokens[open], or null when `(` is not one. */
function functionBeforeParen(tokens, open) {
  let k = open - 1;
  if (tokens[k]?.value === ">") { // generic parameters: name<T>(...)
    let depth = 0;
    for (; k >= 0; k--) {
      if (tokens[k].value === ">") depth++;
      else if (tokens[k].value === "<" && --depth === 0) break;
    }
    k--;
  }
  const before = tokens[k];
  if (!before) return null;
  if (before.type === "identifier") {
    if (CONTROL_KEYWORDS.has(before.value)) return null;
    if (before.value === "await" && tokens[k - 1]?.value === "for") return null; // for await (...)
    if (before.value === "function") { // a function expression: named after what it is assigned to, if anything
      const assigned = tokens[k - 1]?.value === "=" || tokens[k - 1]?.value === ":" ? tokens[k - 2] : null;
      return assigned?.type === "identifier" ? assigned.value : "anonymous function";
    }
    return before.value; // a declared function's or a method's name
  }
  if (before.value === "]") return "[computed]";
  if (before.type === "string") return JSON.stringify(before.value);
  return null;
}

/** Whether the `{` at tokens[brace] ends a return type annotation `(...): Type {`; returns the name or null. */
function functionBeforeReturnType(tokens, brace) {
  let depth = 0;
  for (let k = brace - 1, steps = 0; k >= 0 && steps < 400; k--, steps++) {
    const { type, value } = tokens[k];
    if (type === "punct" && (value === ")" || value === "]" || value === "}" || value === ">")) depth++;
    else if (type === "punct" && (value === "(" || value === "[" || value === "{" || value === "<")) depth--;
    if (depth < 0) return null;
    if (depth > 0) continue;
    if (type === "identifier" && STATEMENT_KEYWORDS.has(value)) return null;
    if (type === "punct" && (value === ";" || value === "=" || value === ",")) return null;
    if (type === "punct" && value === ":" && tokens[k - 1]?.value === ")") {
      const open = openingParen(tokens, k - 1);
      if (open >= 0) {
        const name = functionBeforeParen(tokens, open);
        if (name !== null) return name;
      }
    }
  }
  return null;
}

/** The `)` that closes the parameter list of the arrow function whose `=>` is at tokens[arrow], or -1. */
function arrowParameters(tokens, arrow) {
  let depth = 0;
  for (let k = arrow - 1, steps = 0; k >= 0 && steps < 400; k--, steps++) { // past a return type: `): Type =>`
    const { type, value } = tokens[k];
    if (type === "punct" && (value === ")" || value === "]" || value === "}" || value === ">")) depth++;
    else if (type === "punct" && (value === "(" || value === "[" || value === "{" || value === "<")) depth--;
    if (depth < 0) break;
    if (depth > 0) continue;
    if (type === "punct" && value === ":" && tokens[k - 1]?.value === ")") return k - 1;
    if (type === "punct" && (value === "=" || value === ";" || value === ",")) break;
  }
  return tokens[arrow - 1]?.value === ")" ? arrow - 1 : -1;
}

/** The name an arrow function is given, `const name = (...) =>` or `name: (...) =>`, else "arrow function". */
function arrowName(tokens, arrow) {
  const close = arrowParameters(tokens, arrow);
  let k = close >= 0 ? openingParen(tokens, close) - 1 : arrow - 2; // `x =>`: the one parameter
  if (tokens[k]?.value === ">") { // generic parameters: <T>(...) =>
    for (let depth = 0; k >= 0; k--) {
      if (tokens[k].value === ">") depth++;
      else if (tokens[k].value === "<" && --depth === 0) break;
    }
    k--;
  }
  if (tokens[k]?.value === "async") k--;
  if ((tokens[k]?.value === "=" || tokens[k]?.value === ":") && tokens[k - 1]?.type === "identifier") return tokens[k - 1].value;
  return "arrow function";
}

/** What the `{` at tokens[t] opens: a function's name, or null for any other block. */
function functionOpenedBy(tokens, t) {
  const before = tokens[t - 1];
  if (!before) return null;
  if (before.value === "=>") return arrowName(tokens, t - 1);
  if (before.value === ":") return null; // an object type or a labelled block
  if (before.value === ")") {
    const open = openingParen(tokens, t - 1);
    const name = open >= 0 ? functionBeforeParen(tokens, open) : null;
    if (name !== null) return name;
    if (open >= 0 && CONTROL_KEYWORDS.has(tokens[open - 1]?.value)) return null;
  }
  return functionBeforeReturnType(tokens, t);
}

function checkFunctionLengths(files, parsed, offenders) {
  for (const file of files) {
    const { tokens } = parsed.get(file);
    const open = []; // per `{`: { name, line } for a function body, null for another block
    for (let t = 0; t < tokens.length; t++) {
      const token = tokens[t];
      if (token.type !== "punct") continue;
      if (token.value === "{") {
        const name = functionOpenedBy(tokens, t);
        open.push(name === null ? null : { name, line: token.line });
      } else if (token.value === "}") {
        const body = open.pop();
        if (!body) continue;
        const lines = token.line - body.line + 1;
        if (lines > BODY_LINES_MAX) offenders.push(`${file}:${body.line}: function ${body.name}: body is ${lines} lines (at most ${BODY_LINES_MAX})`);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------

const files = listSources(join(root, "src"));
const parsed = new Map(files.map((file) => [file, tokenize(readFileSync(join(root, file), "utf8"))]));
const groups = [
  ["import cycles", checkCycles],
  ["runtime names outside src/ffi/", checkRuntimeNames],
  [`function bodies over ${BODY_LINES_MAX} lines`, checkFunctionLengths],
];
let total = 0;
for (const [title, check] of groups) {
  const offenders = [];
  check(files, parsed, offenders);
  total += offenders.length;
  console.log(`${title}: ${offenders.length === 0 ? "none" : offenders.length}`);
  for (const offender of offenders) console.log(`  ${offender}`);
}
console.log(total === 0 ? `check-architecture: ok (${files.length} files)` : `check-architecture: ${total} offender(s) in ${files.length} files`);
process.exit(total === 0 ? 0 : 1);
