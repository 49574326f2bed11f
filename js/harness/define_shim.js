// anywidget's npm build ends in define(["@jupyter-widgets/base"], factory) (an AMD module): capture that
// factory. No `define.amd`, so UMD libraries bundled here (backbone...) take their CommonJS path.
globalThis.define = (deps, factory) => { globalThis.__anywidgetFactory = factory; };
