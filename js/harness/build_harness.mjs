// Build the html-manager test harness: node harness/build_harness.mjs OUT.js
// Needs the devDependencies (npm ci); $DTW_HARNESS_NODE_MODULES may name another node_modules folder.
import * as esbuild from "esbuild";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
if (!out) throw new Error("usage: node harness/build_harness.mjs OUT.js");
const empty = Object.fromEntries([".css", ".woff", ".woff2", ".ttf", ".eot", ".svg"].map((e) => [e, "empty"]));
await esbuild.build({
  entryPoints: [path.join(here, "html_manager.js")], bundle: true, format: "iife", outfile: out,
  loader: empty, define: { __webpack_public_path__: '""' }, logLevel: "warning",
  nodePaths: [process.env.DTW_HARNESS_NODE_MODULES || path.join(here, "..", "node_modules")],
});
