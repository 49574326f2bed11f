// Bundle each widget module into one self-contained, minified ESM file in ../dtwidgets/static.
//   node build.mjs            build into ../dtwidgets/static
//   node build.mjs --check    build into a temp dir and fail if ../dtwidgets/static differs
//   node build.mjs --analyze  build into a temp dir and print what each bundle is made of, and the
//                             bytes each source module adds summed over all widget bundles
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
  "rtg_slider", "status_line", "update_feed",
  "probe_matrix", "training_dynamics",
  "scatter_view",
];
const ENTRIES = [...WIDGETS, "export_runtime"];
const STYLE = path.join(here, "lib/style.css");
const OPTIONS = {
  absWorkingDir: here, bundle: true, format: "esm", minify: true, target: "es2020",
  legalComments: "none", charset: "utf8", define: { "define.amd": "false" }, logLevel: "warning",
};

// Each bundle is self-contained (anywidget sends it with every widget instance), so it carries
// only the CSS rules its own code needs. Pass 1 bundles every entry with an empty stylesheet and
// reads which dtw-* class names each bundle's code mentions; pass 2 bundles each entry again with
// just the rules of lib/style.css that use those classes (see the comment at the top of that file).
/** @returns {Promise<Record<string, any>>} each entry's esbuild metafile */
async function build(outdir) {
  fs.mkdirSync(outdir, { recursive: true });
  const entry = (n) => path.join(here, n + ".js");
  const first = await esbuild.build({
    ...OPTIONS, entryPoints: Object.fromEntries(ENTRIES.map((n) => [n, entry(n)])),
    outdir, write: false, metafile: true, plugins: [styleAs("")],
  });
  const code = Object.fromEntries(first.outputFiles.map((f) => [path.basename(f.path, ".js"), f.text]));
  const inputsOf = Object.fromEntries(Object.values(first.metafile.outputs)
    .map((o) => [path.basename(o.entryPoint, ".js"), Object.keys(o.inputs)]));
  const rules = cssRules((await esbuild.transform(fs.readFileSync(STYLE, "utf8"), { loader: "css", minify: true })).code);
  const metafiles = await Promise.all(ENTRIES.map(async (n) => {
    const inputs = inputsOf[n];
    checkImports(n, inputs);
    const used = inputs.includes("lib/style.css") ? classesIn(n, code[n]) : new Set();
    const css = rules.filter((r) => used.size && ruleUsed(r, used)).join("");
    const r = await esbuild.build({ ...OPTIONS, entryPoints: { [n]: entry(n) }, outdir, metafile: true, plugins: [styleAs(css)] });
    return r.metafile;
  }));
  return Object.fromEntries(ENTRIES.map((n, i) => [n, metafiles[i]]));
}

/** esbuild plugin: `import STYLE from "./style.css"` gives the string `css`. */
function styleAs(css) {
  return {
    name: "dtw-style",
    setup(b) { b.onLoad({ filter: /[\\/]lib[\\/]style\.css$/ }, () => ({ contents: css, loader: "text" })); },
  };
}

/** A widget module that imports another widget module would carry all of it: share code through lib/. */
function checkImports(name, inputs) {
  const others = inputs.filter((f) => f !== name + ".js" && WIDGETS.includes(f.replace(/\.js$/, "")));
  if (others.length) throw new Error(`${name}.js imports the widget module(s) ${others.join(", ")}; move the shared code to js/lib/`);
}

/** The dtw-* class names written in a bundle's code. @returns {Set<string>} */
function classesIn(name, code) {
  const names = code.match(/dtw-[\w-]*/g) || [];
  const pieces = names.filter((c) => c.endsWith("-"));
  if (pieces.length) {
    throw new Error(`${name}.js builds class names from pieces (${[...new Set(pieces)].join(", ")}...); `
      + "write each dtw-* class out in full so the build can keep its CSS rules");
  }
  return new Set(names);
}

/** Top-level rules of minified CSS, e.g. [".a{color:red}", "@media(...){...}"] (no braces inside strings). */
function cssRules(css) {
  const rules = [];
  let depth = 0, start = 0;
  for (let i = 0; i < css.length; i++) {
    if (css[i] === "{") depth++;
    else if (css[i] === "}" && --depth === 0) { rules.push(css.slice(start, i + 1).trim()); start = i + 1; }
  }
  return rules;
}

/** A rule is used when every class of one of its selectors is in `used`; at-rules are always kept. */
function ruleUsed(rule, used) {
  if (rule.startsWith("@")) return true;
  const selectors = rule.slice(0, rule.indexOf("{")).split(",");
  return selectors.some((s) => (s.match(/\.dtw-[\w-]+/g) || []).every((c) => used.has(c.slice(1))));
}

const check = process.argv.includes("--check"), analyze = process.argv.includes("--analyze");
if (analyze) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dtw-build-"));
  const metafiles = await build(tmp);
  const perModule = {};
  for (const n of WIDGETS) {
    console.log(await esbuild.analyzeMetafile(metafiles[n]));
    for (const out of Object.values(metafiles[n].outputs)) {
      for (const [f, { bytesInOutput }] of Object.entries(out.inputs)) perModule[f] = (perModule[f] || 0) + bytesInOutput;
    }
  }
  console.log("bytes each module adds, summed over the", WIDGETS.length, "widget bundles:");
  for (const [f, b] of Object.entries(perModule).sort((a, b) => b[1] - a[1])) console.log("  " + f.padEnd(26), String(b).padStart(7));
  fs.rmSync(tmp, { recursive: true, force: true });
} else if (!check) {
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
