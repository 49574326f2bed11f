// Binary array codec shared by all widgets.
// Python sends {dtype, shape, view} where `view` is a DataView over the raw
// little-endian bytes (C order). These helpers turn that into typed arrays.

/** @typedef {{data: ArrayLike<number>, shape: number[], size: number}} NdArray */

const CTORS = {
  float32: Float32Array, float64: Float64Array,
  int8: Int8Array, int16: Int16Array, int32: Int32Array,
  uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array,
  bool: Uint8Array,
};

/** @param {any} v @returns {{buffer: ArrayBuffer, byteOffset: number, byteLength: number} | null} */
function asBytes(v) {
  if (!v) return null;
  if (v instanceof ArrayBuffer) return { buffer: v, byteOffset: 0, byteLength: v.byteLength };
  if (ArrayBuffer.isView(v)) return { buffer: /** @type {ArrayBuffer} */ (v.buffer), byteOffset: v.byteOffset, byteLength: v.byteLength };
  return null;
}

/**
 * Decode a serialised array. Never throws: malformed input gives an empty array.
 * @param {any} obj {dtype, shape, view}
 * @returns {NdArray}
 */
export function decode(obj) {
  const empty = { data: new Float32Array(0), shape: [0], size: 0 };
  if (!obj || typeof obj !== "object") return empty;
  const shape = Array.isArray(obj.shape) ? obj.shape.map((d) => Math.max(0, d | 0)) : [0];
  const size = shape.reduce((a, b) => a * b, 1);
  const Ctor = CTORS[obj.dtype] || Float32Array;
  let data;
  if (Array.isArray(obj.view)) {
    data = Ctor.from(obj.view);
  } else {
    const b = asBytes(obj.view);
    if (!b) return empty;
    const n = Math.floor(b.byteLength / Ctor.BYTES_PER_ELEMENT);
    data = b.byteOffset % Ctor.BYTES_PER_ELEMENT === 0
      ? new Ctor(b.buffer, b.byteOffset, n)
      : new Ctor(b.buffer.slice(b.byteOffset, b.byteOffset + n * Ctor.BYTES_PER_ELEMENT));
  }
  if (data.length < size) return { data, shape: [data.length], size: data.length };
  return { data, shape, size };
}

/**
 * Encode a typed array for model.set (the DataView is sent as a binary buffer).
 * @param {ArrayBufferView} typed @param {number[]} shape @param {string} dtype
 */
export function encode(typed, shape, dtype) {
  return { dtype, shape: shape.slice(), view: new DataView(typed.buffer, typed.byteOffset, typed.byteLength) };
}

/** Decode an array trait and check its rank; returns null when empty or wrong rank. */
export function decodeNd(obj, ndim) {
  const a = decode(obj);
  if (a.size === 0 || a.shape.length !== ndim) return null;
  return a;
}

/** Max |v| over finite entries of `data` (0 if none). @param {ArrayLike<number>} data */
export function absMax(data) {
  let m = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (Number.isFinite(v) && Math.abs(v) > m) m = Math.abs(v);
  }
  return m;
}

/** [min, max] over finite entries, or null. @param {ArrayLike<number>} data */
export function finiteRange(data) {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
  }
  return lo <= hi ? [lo, hi] : null;
}
