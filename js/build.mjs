// Bundle each widget module into one self-contained, minified ESM file in ../dtwidgets/static.
//   node build.mjs            build into ../dtwidgets/static
//   node build.mjs --check    build into a temp dir and fail if ../dtwidgets/static differs
import * as esbuild from "esbuild";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const STATIC = path.resolve(here, "../dtwidgets/static");
export const WIDGETS = [
  "grid_view", "channel_heatmap", "action_preferences", "attention_view",
  "contribution_bars", "matrix_heatmap", "rtg_scan_view", "calibration_curve",
  "policy_map_view", "circuit_diagram",
  "feature_browser",
  "rtg_slider", "status_line",
  "probe_matrix", "training_dynamics",
];
const ENTRIES = [...WIDGETS, "export_runtime"];

async function build(outdir) {
  fs.mkdirSync(outdir, { recursive: true });
  await esbuild.build({
    entryPoints: Object.fromEntries(ENTRIES.map((n) => [n, path.join(here, n + ".js")])),
    outdir, bundle: true, format: "esm", minify: true, target: "es2020",
    loader: { ".css": "text" }, legalComments: "none", charset: "utf8",
    define: { "define.amd": "false" }, logLevel: "warning",
  });
}

const check = process.argv.includes("--check");
if (!check) {
  await build(STATIC);
  for (const n of ENTRIES) console.log(`${n}.js`.padEnd(26), fs.statSync(path.join(STATIC, n + ".js")).size, "B");
} else {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dtw-build-"));
  await build(tmp);
  const bad = [];
  const names = new Set([...fs.readdirSync(tmp), ...fs.readdirSync(STATIC).filter((f) => f.endsWith(".js"))]);
  for (const f of names) {
    const a = path.join(tmp, f), b = path.join(STATIC, f);
    if (!fs.existsSync(a)) bad.push(`${f}: not produced by the build (stale file in dtwidgets/static)`);
    else if (!fs.existsSync(b)) bad.push(`${f}: missing from dtwidgets/static`);
    else if (!fs.readFileSync(a).equals(fs.readFileSync(b))) bad.push(`${f}: differs from a fresh build`);
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  if (bad.length) {
    console.error("dtwidgets/static is out of date; run `cd js && npm ci && npm run build`:\n  " + bad.join("\n  "));
    process.exit(1);
  }
  console.log(`dtwidgets/static matches a fresh build (${names.size} files)`);
}
