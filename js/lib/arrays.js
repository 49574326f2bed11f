// Binary array codec shared by all widgets.
// Python sends each array as ONE binary buffer (a DataView here): byte 0 the dtype code (index in
// WIRE_DTYPES), byte 1 ndim, bytes 2-3 zero, ndim uint32 LE shape (zero-padded to 8 bytes for 8-byte
// dtypes), then the little-endian C-order data (dtwidgets/widgets/_arrays.py). The front-end sends
// arrays back in the same form (encode): one wire format in both directions.

/** @typedef {{data: ArrayLike<number>, shape: number[], size: number}} NdArray */

const CTORS = {
  float32: Float32Array, float64: Float64Array,
  int8: Int8Array, int16: Int16Array, int32: Int32Array,
  uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array,
};

/** @param {any} v @returns {{buffer: ArrayBuffer, byteOffset: number, byteLength: number} | null} */
function asBytes(v) {
  if (!v) return null;
  if (v instanceof ArrayBuffer) return { buffer: v, byteOffset: 0, byteLength: v.byteLength };
  if (ArrayBuffer.isView(v)) return { buffer: /** @type {ArrayBuffer} */ (v.buffer), byteOffset: v.byteOffset, byteLength: v.byteLength };
  return null;
}

const WIRE_DTYPES = ["float32", "float64", "int8", "int16", "int32", "uint8", "uint16", "uint32"];

/** A header-carrying buffer -> {dtype, shape, view} over its data, or null when malformed. */
function fromWire(v) {
  const b = asBytes(v);
  if (!b || b.byteLength < 4) return null;
  const head = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const code = head.getUint8(0), ndim = head.getUint8(1);
  if (code >= WIRE_DTYPES.length) return null;
  const start = dataStart(WIRE_DTYPES[code], ndim);
  if (head.getUint16(2, true) !== 0 || b.byteLength < start) return null;
  const shape = [];
  for (let i = 0; i < ndim; i++) shape.push(head.getUint32(4 + 4 * i, true));
  return { dtype: WIRE_DTYPES[code], shape, view: new DataView(b.buffer, b.byteOffset + start, b.byteLength - start) };
}

/** Byte offset of the data after the header (aligned to 8 for float64, else 4). */
function dataStart(dtype, ndim) {
  const align = dtype === "float64" ? 8 : 4;
  return Math.ceil((4 + 4 * ndim) / align) * align;
}

/**
 * Decode a serialised array (a header-carrying buffer). Never throws: malformed input gives an
 * empty array.
 * @param {any} buf
 * @returns {NdArray}
 */
export function decode(buf) {
  const empty = { data: new Float32Array(0), shape: [0], size: 0 };
  const obj = fromWire(buf);
  if (!obj) return empty;
  const shape = obj.shape;
  const size = shape.reduce((a, b) => a * b, 1);
  const Ctor = CTORS[obj.dtype] || Float32Array;
  const b = obj.view;
  const n = Math.floor(b.byteLength / Ctor.BYTES_PER_ELEMENT);
  const data = b.byteOffset % Ctor.BYTES_PER_ELEMENT === 0
    ? new Ctor(b.buffer, b.byteOffset, n)
    : new Ctor(b.buffer.slice(b.byteOffset, b.byteOffset + n * Ctor.BYTES_PER_ELEMENT));
  if (data.length < size) return { data, shape: [data.length], size: data.length };
  return { data, shape, size };
}

/**
 * Encode a typed array for model.set, in the wire form Python sends (header + data, one buffer).
 * @param {ArrayBufferView} typed @param {number[]} shape @param {string} dtype one of WIRE_DTYPES
 * @returns {DataView}
 */
export function encode(typed, shape, dtype) {
  const code = WIRE_DTYPES.indexOf(dtype);
  if (code < 0) throw new Error(`encode: expected a dtype in ${WIRE_DTYPES.join(", ")}, got ${dtype}`);
  const start = dataStart(dtype, shape.length);
  const out = new Uint8Array(start + typed.byteLength);
  const head = new DataView(out.buffer);
  head.setUint8(0, code);
  head.setUint8(1, shape.length);
  shape.forEach((d, i) => head.setUint32(4 + 4 * i, d, true));
  out.set(new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength), start);
  return new DataView(out.buffer);
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
