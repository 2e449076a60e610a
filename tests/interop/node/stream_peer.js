#!/usr/bin/env node
// stream_peer.js: @tars/stream (TarsNode) as an independent TARS codec peer.
//
// A long-lived process speaking JSON lines: one request object per line on stdin, one
// response object per line on stdout, in order. It exits when stdin closes. Bad input never
// ends the process; it gets {"ok":false,"error":"..."}. If a request carries "id", the
// response echoes it. Diagnostics go to stderr only.
//
// Types ("type"): "AllTypes", "Inner" (module Interop, tests/interop/idl/Interop.tars),
// "EndpointF" (tars.EndpointF, tars-protocol.md §4.1) and "QueryAnswer" (the response sBuffer
// of QueryF.findObjectByIdInSameGroup: int ret at tag 0, vector<EndpointF> activeEp at tag 2,
// vector<EndpointF> inactiveEp at tag 3). Every type is encoded as a bare field sequence
// (the struct's fields without StructBegin/StructEnd, like TarsCpp writeTo / tars2node toBinBuffer).
//
// Requests
//   {"op":"encode","type":T,"value":V}          -> {"ok":true,"hex":"<lowercase hex>"}
//   {"op":"decode","type":T,"hex":"..."}        -> {"ok":true,"value":V}
//   {"op":"bench","type":T,"value":V,"seconds":S}
//        -> {"ok":true,"encode_per_s":N,"decode_per_s":N,"bytes":LEN,
//            "encode_iters":n,"decode_iters":n,"seconds":S}
//      encode = new TarsOutputStream + _writeTo + copy out to a Node Buffer (value -> bytes);
//      decode = new BinBuffer/TarsInputStream over the bytes + Type._readFrom (bytes -> struct
//      object). The JSON conversion is done once, outside the timed loops. Each loop first
//      runs a warm-up of max(0.2 s, S/4), then is timed for S seconds (S in (0, 60]).
//   {"op":"info"}  -> {"ok":true,"node":"v20..","stream":"2.0.3","types":[...]}
//   anything else / any failure -> {"ok":false,"error":"..."}
//
// JSON value mapping (lossless, both directions)
//   bool                          true / false
//   byte, short, int              JSON integer, range-checked (int8/int16/int32)
//   unsigned byte/short/int       JSON integer, 0..255 / 0..65535 / 0..4294967295
//   long                          decimal string, e.g. "-9223372036854775808" (numbers are
//                                 rejected on input; decode always yields strings)
//   float, double                 JSON number; the strings "NaN", "Infinity", "-Infinity" for
//                                 the non-finite values. A float is rounded to float32 by
//                                 @tars/stream; decode yields the exact float32 value as a
//                                 double. 0.0 and -0.0 are both written as ZeroTag (sign lost).
//   string                        JSON string (Unicode; sent as UTF-8; lone surrogates rejected)
//   vector<byte>                  lowercase hex string ("" for empty; upper case accepted)
//   vector<T>                     JSON array
//   map<K,V>                      JSON array of [key, value] pairs, keys mapped like any value
//                                 (int keys as JSON integers, long keys as strings). Duplicate
//                                 keys are rejected. Order is not significant: @tars/stream
//                                 writes and decodes in JS property order (integer-like keys
//                                 ascending first, then the rest in insertion order).
//   enum                          JSON integer (any int32; not checked against the enumerators)
//   struct                        JSON object keyed by IDL field name. On encode a missing
//                                 field takes its IDL default (also for require fields) and an
//                                 unknown key is an error. On decode every field is present
//                                 (absent optional fields show their IDL default).
//   QueryAnswer                   {"ret": int, "activeEp": [EndpointF...], "inactiveEp": [...]}
//
// Optional fields are written following the TarsCpp rules (see interop_types.js).

"use strict";

var readline = require("readline");
var TarsStream = require("@tars/stream");
var types = require("./interop_types.js");

var STREAM_VERSION = (function () {
    try { return require("@tars/stream/package.json").version; } catch (e) { return "unknown"; }
}());

var INT64_MIN = -(BigInt(1) << BigInt(63));
var INT64_MAX = (BigInt(1) << BigInt(63)) - BigInt(1);
var LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?:^|[^\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function PeerError(message) {
    this.name = "PeerError";
    this.message = message;
}
PeerError.prototype = Object.create(Error.prototype);
PeerError.prototype.constructor = PeerError;

function fail(path, message) {
    throw new PeerError((path || "value") + ": " + message);
}

function describe(v) {
    if (v === null) return "null";
    if (Array.isArray(v)) return "array";
    return typeof v;
}

function isPlainObject(v) {
    return v !== null && typeof v === "object" && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------
// JSON -> @tars/stream values
// ---------------------------------------------------------------------------------------

// The @tars/stream "proto" (type object) for a descriptor, as used by List/Map.
function protoOf(d) {
    switch (d.kind) {
        case "bool": return TarsStream.Boolean;
        case "int":
            if (d.min === 0) {
                return d.max === 255 ? TarsStream.UInt8 : d.max === 65535 ? TarsStream.UInt16 : TarsStream.UInt32;
            }
            return d.max === 127 ? TarsStream.Int8 : d.max === 32767 ? TarsStream.Int16 : TarsStream.Int32;
        case "int64": return TarsStream.Int64;
        case "float": return d === types.T.float ? TarsStream.Float : TarsStream.Double;
        case "string": return TarsStream.String;
        case "bytes": return TarsStream.BinBuffer;
        case "enum": return types.ENUMS[d.name];
        case "struct": return types.STRUCTS[d.name];
        case "list": return TarsStream.List(protoOf(d.of), d.of.kind === "int64" ? 1 : 0);
        case "map":
            return TarsStream.Map(protoOf(d.key), protoOf(d.val),
                                  d.key.kind === "int64" ? 1 : 0, d.val.kind === "int64" ? 1 : 0);
    }
    throw new PeerError("internal: unknown descriptor kind " + d.kind);
}

function fromJSON(d, v, path) {
    switch (d.kind) {
        case "bool":
            if (typeof v !== "boolean") fail(path, "expected boolean, got " + describe(v));
            return v;
        case "int":
        case "enum":
            if (typeof v !== "number" || !Number.isInteger(v)) fail(path, "expected integer, got " + JSON.stringify(v));
            if (v < d.min || v > d.max) fail(path, "integer " + v + " out of range [" + d.min + ", " + d.max + "]");
            return v;
        case "int64": {
            if (typeof v !== "string" || !/^-?[0-9]+$/.test(v)) {
                fail(path, "expected int64 as a decimal string, got " + JSON.stringify(v));
            }
            var big = BigInt(v);
            if (big < INT64_MIN || big > INT64_MAX) fail(path, "int64 " + v + " out of range");
            return big.toString();
        }
        case "float":
            if (typeof v === "number") return v;
            if (v === "NaN") return NaN;
            if (v === "Infinity") return Infinity;
            if (v === "-Infinity") return -Infinity;
            fail(path, "expected number, got " + JSON.stringify(v));
            break;
        case "string":
            if (typeof v !== "string") fail(path, "expected string, got " + describe(v));
            if (LONE_SURROGATE.test(v)) fail(path, "string contains a lone surrogate");
            return v;
        case "bytes":
            if (typeof v !== "string" || !/^(?:[0-9a-fA-F]{2})*$/.test(v)) {
                fail(path, "expected an even-length hex string, got " + JSON.stringify(v));
            }
            return new TarsStream.BinBuffer(Buffer.from(v, "hex"));
        case "list": {
            if (!Array.isArray(v)) fail(path, "expected array, got " + describe(v));
            var list = protoOf(d);
            for (var i = 0; i < v.length; i++) list.push(fromJSON(d.of, v[i], path + "[" + i + "]"));
            return list;
        }
        case "map": {
            if (!Array.isArray(v)) fail(path, "expected array of [key, value] pairs, got " + describe(v));
            var map = protoOf(d);
            for (var j = 0; j < v.length; j++) {
                var p = path + "[" + j + "]";
                if (!Array.isArray(v[j]) || v[j].length !== 2) fail(p, "expected a [key, value] pair");
                var key = fromJSON(d.key, v[j][0], p + "[0]");
                if (d.key.kind === "bytes" || d.key.kind === "struct" || d.key.kind === "list" || d.key.kind === "map") {
                    fail(p, "unsupported map key type " + d.key.kind);
                }
                if (map.has(key)) fail(p, "duplicate map key " + JSON.stringify(v[j][0]));
                map.insert(key, fromJSON(d.val, v[j][1], p + "[1]"));
            }
            return map;
        }
        case "struct":
            return structFromJSON(types.STRUCTS[d.name], v, path);
    }
    throw new PeerError("internal: unknown descriptor kind " + d.kind);
}

function structFromJSON(cls, v, path) {
    if (!isPlainObject(v)) fail(path, "expected object, got " + describe(v));
    var obj = new cls();
    var known = {};
    for (var i = 0; i < cls._fields.length; i++) {
        var f = cls._fields[i];
        known[f.name] = true;
        if (Object.prototype.hasOwnProperty.call(v, f.name)) {
            obj[f.name] = fromJSON(f.type, v[f.name], path + "." + f.name);
        }
    }
    Object.keys(v).forEach(function (k) {
        if (!known[k]) fail(path, "unknown field " + JSON.stringify(k));
    });
    return obj;
}

// ---------------------------------------------------------------------------------------
// @tars/stream values -> JSON
// ---------------------------------------------------------------------------------------

function floatToJSON(x) {
    if (Number.isNaN(x)) return "NaN";
    if (x === Infinity) return "Infinity";
    if (x === -Infinity) return "-Infinity";
    return x;
}

function keyToJSON(d, k) {
    // HeroMap.forEach hands out Number keys for the numeric protos, strings otherwise
    // (and Numbers for int64 when the map has no bKey flag).
    switch (d.kind) {
        case "bool": return k === true || k === "true" || k === 1 || k === "1";
        case "int": case "enum": return Number(k);
        case "int64": return String(k);
        case "float": return floatToJSON(Number(k));
        default: return toJSON(d, k);
    }
}

function toJSON(d, v) {
    switch (d.kind) {
        case "bool": return v === true || v === 1;
        case "int": case "enum": return v;
        case "int64": return String(v);
        case "float": return floatToJSON(v);
        case "string": return v;
        case "bytes": return v.toNodeBufferUnSafe().toString("hex");
        case "list": {
            var out = new Array(v.value.length);
            for (var i = 0; i < v.value.length; i++) out[i] = toJSON(d.of, v.value[i]);
            return out;
        }
        case "map": {
            var pairs = [];
            v.forEach(function (k, val) { pairs.push([keyToJSON(d.key, k), toJSON(d.val, val)]); },
                      d.key.kind === "int64");
            return pairs;
        }
        case "struct": return structToJSON(types.STRUCTS[d.name], v);
    }
    throw new PeerError("internal: unknown descriptor kind " + d.kind);
}

function structToJSON(cls, obj) {
    var out = {};
    for (var i = 0; i < cls._fields.length; i++) {
        var f = cls._fields[i];
        out[f.name] = toJSON(f.type, obj[f.name]);
    }
    return out;
}

// ---------------------------------------------------------------------------------------
// Codec operations
// ---------------------------------------------------------------------------------------

function typeOf(name) {
    if (typeof name !== "string" || !Object.prototype.hasOwnProperty.call(types.TYPES, name)) {
        throw new PeerError("unknown type " + JSON.stringify(name) + " (known: " + Object.keys(types.TYPES).join(", ") + ")");
    }
    return types.TYPES[name];
}

function encodeObject(obj) {
    var os = new TarsStream.TarsOutputStream();
    obj._writeTo(os);
    return os.getBinBuffer().toNodeBuffer();
}

function decodeBuffer(cls, buf) {
    var bin = new TarsStream.BinBuffer(buf);
    var is = new TarsStream.TarsInputStream(bin);
    var obj = cls._readFrom(is);
    // @tars/stream copies string and vector<byte> payloads without checking that the input is
    // long enough (the missing bytes come out as uninitialised memory). A read past the end
    // shows as a position beyond the length.
    if (bin._position > bin._length) {
        throw new PeerError("truncated input: read to offset " + bin._position + " of " + bin._length + " bytes");
    }
    return obj;
}

function parseHex(hex) {
    if (typeof hex !== "string" || !/^(?:[0-9a-fA-F]{2})*$/.test(hex)) {
        throw new PeerError("hex: expected an even-length hex string");
    }
    return Buffer.from(hex, "hex");
}

function opEncode(req) {
    var cls = typeOf(req.type);
    if (!Object.prototype.hasOwnProperty.call(req, "value")) throw new PeerError("missing \"value\"");
    var obj = structFromJSON(cls, req.value, req.type);
    return { ok: true, hex: encodeObject(obj).toString("hex") };
}

function opDecode(req) {
    var cls = typeOf(req.type);
    var obj = decodeBuffer(cls, parseHex(req.hex));
    return { ok: true, value: structToJSON(cls, obj) };
}

var now = process.hrtime.bigint;
var BATCH = 16;

// Runs fn in batches until `seconds` elapsed; returns [iterations, elapsed seconds].
function timed(fn, seconds) {
    var limit = BigInt(Math.round(seconds * 1e9));
    var start = now();
    var iters = 0;
    var elapsed;
    for (;;) {
        for (var i = 0; i < BATCH; i++) fn();
        iters += BATCH;
        elapsed = now() - start;
        if (elapsed >= limit) break;
    }
    return [iters, Number(elapsed) / 1e9];
}

function opBench(req) {
    var cls = typeOf(req.type);
    var seconds = req.seconds === undefined ? 1.0 : req.seconds;
    if (typeof seconds !== "number" || !(seconds > 0) || seconds > 60) {
        throw new PeerError("seconds: expected a number in (0, 60]");
    }
    var obj = structFromJSON(cls, req.value, req.type);
    var bytes = encodeObject(obj);
    var warm = Math.max(0.2, seconds / 4);
    var sink = 0;

    // Sanity: what we time must round-trip.
    var back = JSON.stringify(structToJSON(cls, decodeBuffer(cls, bytes)));
    if (back !== JSON.stringify(structToJSON(cls, obj))) {
        throw new PeerError("bench value does not round-trip through @tars/stream");
    }

    var encode = function () {
        var os = new TarsStream.TarsOutputStream();
        obj._writeTo(os);
        sink += os.getBinBuffer().toNodeBuffer().length;
    };
    var decode = function () {
        var o = cls._readFrom(new TarsStream.TarsInputStream(new TarsStream.BinBuffer(bytes)));
        sink += o === null ? 0 : 1;
    };

    timed(encode, warm);
    var enc = timed(encode, seconds);
    timed(decode, warm);
    var dec = timed(decode, seconds);
    if (sink < 0) process.stderr.write("unreachable\n");
    return {
        ok: true,
        encode_per_s: Math.round(enc[0] / enc[1]),
        decode_per_s: Math.round(dec[0] / dec[1]),
        bytes: bytes.length,
        encode_iters: enc[0],
        decode_iters: dec[0],
        seconds: seconds,
    };
}

function opInfo() {
    return { ok: true, node: process.version, stream: STREAM_VERSION, types: Object.keys(types.TYPES) };
}

var OPS = { encode: opEncode, decode: opDecode, bench: opBench, info: opInfo };

function errorText(e) {
    if (e instanceof PeerError) return e.message;
    if (e instanceof TarsStream.Exception) {
        var kind = "TarsException";
        var classes = ["DecodeRequireNotExist", "DecodeMismatch", "DecodeInvalidValue",
                       "DecodeException", "EncodeException", "TupNotFoundKey"];
        for (var i = 0; i < classes.length; i++) {
            if (e instanceof TarsStream[classes[i]]) { kind = classes[i]; break; }
        }
        return "@tars/stream " + kind + " (code " + e.code + "): " + e.message;
    }
    if (e instanceof Error) return (e.code ? e.code + ": " : "") + e.name + ": " + e.message;
    return "thrown: " + String(e);
}

function handle(line) {
    var req;
    try {
        req = JSON.parse(line);
    } catch (e) {
        return { ok: false, error: "invalid JSON request: " + e.message };
    }
    var id = isPlainObject(req) && Object.prototype.hasOwnProperty.call(req, "id") ? req.id : undefined;
    var resp;
    try {
        if (!isPlainObject(req)) throw new PeerError("request must be a JSON object");
        if (typeof req.op !== "string" || !Object.prototype.hasOwnProperty.call(OPS, req.op)) {
            throw new PeerError("unknown op " + JSON.stringify(req.op) + " (known: " + Object.keys(OPS).join(", ") + ")");
        }
        resp = OPS[req.op](req);
    } catch (e) {
        resp = { ok: false, error: errorText(e) };
    }
    if (id !== undefined) resp.id = id;
    return resp;
}

function main() {
    process.stdout.on("error", function () { process.exit(0); });   // parent went away
    var rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
    rl.on("line", function (line) {
        if (line.trim() === "") return;
        var out;
        try {
            out = JSON.stringify(handle(line));
        } catch (e) {
            out = JSON.stringify({ ok: false, error: "internal: " + errorText(e) });
        }
        process.stdout.write(out + "\n");
    });
    rl.on("close", function () { process.exit(0); });
}

if (require.main === module) {
    main();
}

module.exports = { handle: handle, fromJSON: fromJSON, toJSON: toJSON };
