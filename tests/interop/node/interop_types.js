// Hand-written @tars/stream glue for tests/interop/idl/Interop.tars, tars.EndpointF and the
// body of a QueryF.findObjectByIdInSameGroup answer.
//
// The classes have the shape tars2node generates (constructor with IDL defaults, static
// _classname/_write/_read/_readFrom/new/create, prototype _writeTo/_equal/_genKey/toObject/
// readFromObject/toBinBuffer), so @tars/stream's List/Map/readStruct/writeStruct can use them.
//
// Differences from what tars2node emits, on purpose:
//   * _writeTo follows the TarsCpp optional-writing rules (tars2cpp --check-default=true):
//       require fields                      always written
//       optional builtin (number / string)  omitted when equal to the IDL default
//       optional bool                       always written (none in these IDLs)
//       optional vector / map               omitted when empty
//       optional struct / enum              always written
//     tars2node itself writes every field unconditionally, optional or not.
//   * `long` fields use @tars/stream's "string int64" mode (bString = 1): values are kept as
//     decimal strings and written through big.js, so the full int64 range round-trips.
//     The default Number mode only holds 2^53.
//
// Things @tars/stream itself does differently from TarsCpp (it is the codec under test, so
// they are left alone here; see also stream_peer.js):
//   * float/double 0 is written as ZeroTag (TarsCpp/TarsGo write the 4/8 zero bytes); -0.0
//     therefore loses its sign. readDouble does not accept a FLOAT wire value (TarsCpp widens).
//   * readBoolean returns `byte == 1`, so a wire byte 2 reads as false (TarsCpp: non-zero).
//   * vector<byte> is read only from SIMPLE_LIST (TarsCpp also accepts a LIST of BYTE).
//   * readInt64 in string mode returns a Number when the wire value was narrowed to
//     BYTE/SHORT/INT/ZeroTag, and a string only for a LONG on the wire.
//   * Lists produced by the decoder do not keep the int64 string flag (_bValue) of the
//     declared type, so re-encoding a *decoded* vector<long> goes through Number (loses
//     precision beyond 2^53). Values built by readFromObject/stream_peer.js keep it.
//   * Maps are JS objects keyed by String(key): entries are written in JS property order
//     (integer-like keys ascending first, then the rest in insertion order), duplicate keys
//     collapse, and the decoder does not keep wire order.
//   * Unsigned types are widened one step (u8 -> short, u16 -> int, u32 -> long) exactly as
//     TarsCpp does; the readers do not range-check them.
//   * Strings are decoded as UTF-8 with U+FFFD replacement, except a 1-byte string with the
//     high bit set, which is decoded as latin1.
//   * String and SIMPLE_LIST lengths are not bounds-checked against the input: a truncated
//     buffer yields uninitialised bytes instead of an error (stream_peer.js checks for this).

"use strict";

var TarsStream = require("@tars/stream");

var _hasOwnProperty = Object.prototype.hasOwnProperty;

// ---------------------------------------------------------------------------------------
// Field descriptors. They describe the IDL for stream_peer.js (JSON mapping, validation).
// The generated-style code below does not use them.
// ---------------------------------------------------------------------------------------
var T = {
    bool:   { kind: "bool" },
    int8:   { kind: "int", min: -128, max: 127 },
    int16:  { kind: "int", min: -32768, max: 32767 },
    int32:  { kind: "int", min: -2147483648, max: 2147483647 },
    int64:  { kind: "int64" },
    uint8:  { kind: "int", min: 0, max: 255 },
    uint16: { kind: "int", min: 0, max: 65535 },
    uint32: { kind: "int", min: 0, max: 4294967295 },
    float:  { kind: "float" },
    double: { kind: "float" },
    string: { kind: "string" },
    bytes:  { kind: "bytes" },
    list:   function (of) { return { kind: "list", of: of }; },
    map:    function (key, val) { return { kind: "map", key: key, val: val }; },
    struct: function (name) { return { kind: "struct", name: name }; },
    enumOf: function (name) { return { kind: "enum", name: name, min: -2147483648, max: 2147483647 }; },
};

function F(tag, name, require, type) {
    return { tag: tag, name: name, require: require, type: type };
}

// ---------------------------------------------------------------------------------------
// module Interop
// ---------------------------------------------------------------------------------------
var Interop = Interop || {};
module.exports.Interop = Interop;

Interop.Color = {
    "RED": 0,
    "GREEN": 5,
    "BLUE": 6,
};
Interop.Color._classname = "Interop.Color";
Interop.Color._write = function (os, tag, val) { return os.writeInt32(tag, val); };
Interop.Color._read  = function (is, tag, def) { return is.readInt32(tag, true, def); };

// struct Inner { 0 require int id; 1 optional string label = "inner"; }
Interop.Inner = function () {
    this.id = 0;
    this.label = "inner";
    this._classname = "Interop.Inner";
};
Interop.Inner._classname = "Interop.Inner";
Interop.Inner._fields = [
    F(0, "id", true, T.int32),
    F(1, "label", false, T.string),
];
Interop.Inner._write = function (os, tag, value) { os.writeStruct(tag, value); };
Interop.Inner._read  = function (is, tag, def) { return is.readStruct(tag, true, def); };
Interop.Inner._readFrom = function (is) {
    var tmp = new Interop.Inner();
    tmp.id = is.readInt32(0, true, 0);
    tmp.label = is.readString(1, false, "inner");
    return tmp;
};
Interop.Inner.prototype._writeTo = function (os) {
    os.writeInt32(0, this.id);
    if (this.label !== "inner") os.writeString(1, this.label);
};
Interop.Inner.prototype._equal = function () {
    throw new Error("Interop.Inner has no key[] declaration");
};
Interop.Inner.prototype._genKey = function () {
    if (!this._proto_struct_name_) {
        this._proto_struct_name_ = "STRUCT" + Math.random();
    }
    return this._proto_struct_name_;
};
Interop.Inner.prototype.toObject = function () {
    return {
        "id": this.id,
        "label": this.label,
    };
};
Interop.Inner.prototype.readFromObject = function (json) {
    _hasOwnProperty.call(json, "id") && (this.id = json.id);
    _hasOwnProperty.call(json, "label") && (this.label = json.label);
    return this;
};
Interop.Inner.prototype.toBinBuffer = function () {
    var os = new TarsStream.TarsOutputStream();
    this._writeTo(os);
    return os.getBinBuffer();
};
Interop.Inner.new = function () { return new Interop.Inner(); };
Interop.Inner.create = function (is) { return Interop.Inner._readFrom(is); };

// struct AllTypes (see Interop.tars)
Interop.AllTypes = function () {
    this.b = false;
    this.i8 = 0;
    this.i16 = 0;
    this.i32 = 0;
    this.i64 = "0";
    this.f32 = 0;
    this.f64 = 0;
    this.s = "";
    this.blob = new TarsStream.BinBuffer();
    this.ints = new TarsStream.List(TarsStream.Int32);
    this.strs = new TarsStream.List(TarsStream.String);
    this.counts = new TarsStream.Map(TarsStream.String, TarsStream.Int32);
    this.byId = new TarsStream.Map(TarsStream.Int32, Interop.Inner);
    this.inner = new Interop.Inner();
    this.inners = new TarsStream.List(Interop.Inner);
    this.u8 = 0;
    this.u16 = 0;
    this.u32 = 0;
    this.color = Interop.Color.GREEN;
    this.opt = "dflt";
    this.nested = new TarsStream.List(TarsStream.List(TarsStream.Int64, 1));
    this.tagged = new TarsStream.Map(TarsStream.String, TarsStream.List(TarsStream.String));
    this._classname = "Interop.AllTypes";
};
Interop.AllTypes._classname = "Interop.AllTypes";
Interop.AllTypes._fields = [
    F(0, "b", true, T.bool),
    F(1, "i8", true, T.int8),
    F(2, "i16", true, T.int16),
    F(3, "i32", true, T.int32),
    F(4, "i64", true, T.int64),
    F(5, "f32", true, T.float),
    F(6, "f64", true, T.double),
    F(7, "s", true, T.string),
    F(8, "blob", true, T.bytes),
    F(9, "ints", true, T.list(T.int32)),
    F(10, "strs", true, T.list(T.string)),
    F(11, "counts", true, T.map(T.string, T.int32)),
    F(12, "byId", true, T.map(T.int32, T.struct("Inner"))),
    F(13, "inner", true, T.struct("Inner")),
    F(14, "inners", true, T.list(T.struct("Inner"))),
    F(15, "u8", false, T.uint8),
    F(16, "u16", false, T.uint16),
    F(17, "u32", false, T.uint32),
    F(18, "color", false, T.enumOf("Color")),
    F(19, "opt", false, T.string),
    F(20, "nested", false, T.list(T.list(T.int64))),
    F(200, "tagged", false, T.map(T.string, T.list(T.string))),
];
Interop.AllTypes._write = function (os, tag, value) { os.writeStruct(tag, value); };
Interop.AllTypes._read  = function (is, tag, def) { return is.readStruct(tag, true, def); };
Interop.AllTypes._readFrom = function (is) {
    var tmp = new Interop.AllTypes();
    tmp.b = is.readBoolean(0, true, false);
    tmp.i8 = is.readInt8(1, true, 0);
    tmp.i16 = is.readInt16(2, true, 0);
    tmp.i32 = is.readInt32(3, true, 0);
    tmp.i64 = is.readInt64(4, true, "0", 1);
    tmp.f32 = is.readFloat(5, true, 0);
    tmp.f64 = is.readDouble(6, true, 0);
    tmp.s = is.readString(7, true, "");
    tmp.blob = is.readBytes(8, true, TarsStream.BinBuffer);
    tmp.ints = is.readList(9, true, TarsStream.List(TarsStream.Int32));
    tmp.strs = is.readList(10, true, TarsStream.List(TarsStream.String));
    tmp.counts = is.readMap(11, true, TarsStream.Map(TarsStream.String, TarsStream.Int32));
    tmp.byId = is.readMap(12, true, TarsStream.Map(TarsStream.Int32, Interop.Inner));
    tmp.inner = is.readStruct(13, true, Interop.Inner);
    tmp.inners = is.readList(14, true, TarsStream.List(Interop.Inner));
    tmp.u8 = is.readUInt8(15, false, 0);
    tmp.u16 = is.readUInt16(16, false, 0);
    tmp.u32 = is.readUInt32(17, false, 0);
    tmp.color = is.readInt32(18, false, Interop.Color.GREEN);
    tmp.opt = is.readString(19, false, "dflt");
    tmp.nested = is.readList(20, false, TarsStream.List(TarsStream.List(TarsStream.Int64, 1)));
    tmp.tagged = is.readMap(200, false, TarsStream.Map(TarsStream.String, TarsStream.List(TarsStream.String)));
    return tmp;
};
Interop.AllTypes.prototype._writeTo = function (os) {
    os.writeBoolean(0, this.b);
    os.writeInt8(1, this.i8);
    os.writeInt16(2, this.i16);
    os.writeInt32(3, this.i32);
    os.writeInt64(4, this.i64, 1);
    os.writeFloat(5, this.f32);
    os.writeDouble(6, this.f64);
    os.writeString(7, this.s);
    os.writeBytes(8, this.blob);
    os.writeList(9, this.ints);
    os.writeList(10, this.strs);
    os.writeMap(11, this.counts);
    os.writeMap(12, this.byId);
    os.writeStruct(13, this.inner);
    os.writeList(14, this.inners);
    // unsigned: widened one step by writeUInt8/16/32 (u32 goes through writeInt64, Number mode,
    // which is exact for 0..2^32-1).
    if (this.u8 != 0) os.writeUInt8(15, this.u8);
    if (this.u16 != 0) os.writeUInt16(16, this.u16);
    if (this.u32 != 0) os.writeUInt32(17, this.u32);
    os.writeInt32(18, this.color);                        // optional enum: always written
    if (this.opt !== "dflt") os.writeString(19, this.opt);
    if (this.nested.length > 0) os.writeList(20, this.nested);
    if (this.tagged.size() > 0) os.writeMap(200, this.tagged);
};
Interop.AllTypes.prototype._equal = function () {
    throw new Error("Interop.AllTypes has no key[] declaration");
};
Interop.AllTypes.prototype._genKey = function () {
    if (!this._proto_struct_name_) {
        this._proto_struct_name_ = "STRUCT" + Math.random();
    }
    return this._proto_struct_name_;
};
// toObject/readFromObject follow the package's object convention (lists -> arrays, maps ->
// plain objects keyed by String(key), vector<byte> -> Buffer), not stream_peer.js's JSON mapping.
Interop.AllTypes.prototype.toObject = function () {
    return {
        "b": this.b,
        "i8": this.i8,
        "i16": this.i16,
        "i32": this.i32,
        "i64": String(this.i64),
        "f32": this.f32,
        "f64": this.f64,
        "s": this.s,
        "blob": this.blob.toObject(),
        "ints": this.ints.toObject(),
        "strs": this.strs.toObject(),
        "counts": this.counts.toObject(),
        "byId": this.byId.toObject(),
        "inner": this.inner.toObject(),
        "inners": this.inners.toObject(),
        "u8": this.u8,
        "u16": this.u16,
        "u32": this.u32,
        "color": this.color,
        "opt": this.opt,
        "nested": this.nested.toObject().map(function (row) { return row.map(String); }),
        "tagged": this.tagged.toObject(),
    };
};
Interop.AllTypes.prototype.readFromObject = function (json) {
    _hasOwnProperty.call(json, "b") && (this.b = json.b);
    _hasOwnProperty.call(json, "i8") && (this.i8 = json.i8);
    _hasOwnProperty.call(json, "i16") && (this.i16 = json.i16);
    _hasOwnProperty.call(json, "i32") && (this.i32 = json.i32);
    _hasOwnProperty.call(json, "i64") && (this.i64 = String(json.i64));
    _hasOwnProperty.call(json, "f32") && (this.f32 = json.f32);
    _hasOwnProperty.call(json, "f64") && (this.f64 = json.f64);
    _hasOwnProperty.call(json, "s") && (this.s = json.s);
    _hasOwnProperty.call(json, "blob") && (this.blob.readFromObject(json.blob));
    _hasOwnProperty.call(json, "ints") && (this.ints.readFromObject(json.ints));
    _hasOwnProperty.call(json, "strs") && (this.strs.readFromObject(json.strs));
    _hasOwnProperty.call(json, "counts") && (this.counts.readFromObject(json.counts));
    _hasOwnProperty.call(json, "byId") && (this.byId.readFromObject(json.byId));
    _hasOwnProperty.call(json, "inner") && (this.inner.readFromObject(json.inner));
    _hasOwnProperty.call(json, "inners") && (this.inners.readFromObject(json.inners));
    _hasOwnProperty.call(json, "u8") && (this.u8 = json.u8);
    _hasOwnProperty.call(json, "u16") && (this.u16 = json.u16);
    _hasOwnProperty.call(json, "u32") && (this.u32 = json.u32);
    _hasOwnProperty.call(json, "color") && (this.color = json.color);
    _hasOwnProperty.call(json, "opt") && (this.opt = json.opt);
    if (_hasOwnProperty.call(json, "nested")) {
        // HeroList.readFromObject would create the inner lists without the int64 string flag.
        for (var i = 0; i < json.nested.length; i++) {
            var row = TarsStream.List(TarsStream.Int64, 1);
            for (var j = 0; j < json.nested[i].length; j++) row.push(String(json.nested[i][j]));
            this.nested.push(row);
        }
    }
    _hasOwnProperty.call(json, "tagged") && (this.tagged.readFromObject(json.tagged));
    return this;
};
Interop.AllTypes.prototype.toBinBuffer = function () {
    var os = new TarsStream.TarsOutputStream();
    this._writeTo(os);
    return os.getBinBuffer();
};
Interop.AllTypes.new = function () { return new Interop.AllTypes(); };
Interop.AllTypes.create = function (is) { return Interop.AllTypes._readFrom(is); };

// ---------------------------------------------------------------------------------------
// module tars: EndpointF (tars-protocol.md §4.1; tag 10 unused, nodeName at 14)
// ---------------------------------------------------------------------------------------
var tars = tars || {};
module.exports.tars = tars;

tars.EndpointF = function () {
    this.host = "";
    this.port = 0;
    this.timeout = 0;
    this.istcp = 0;
    this.grid = 0;
    this.groupworkid = 0;
    this.grouprealid = 0;
    this.setId = "";
    this.qos = 0;
    this.bakFlag = 0;
    this.weight = 0;
    this.weightType = 0;
    this.authType = 0;
    this.nodeName = "";
    this._classname = "tars.EndpointF";
};
tars.EndpointF._classname = "tars.EndpointF";
tars.EndpointF._fields = [
    F(0, "host", true, T.string),
    F(1, "port", true, T.int32),
    F(2, "timeout", true, T.int32),
    F(3, "istcp", true, T.int32),
    F(4, "grid", true, T.int32),
    F(5, "groupworkid", false, T.int32),
    F(6, "grouprealid", false, T.int32),
    F(7, "setId", false, T.string),
    F(8, "qos", false, T.int32),
    F(9, "bakFlag", false, T.int32),
    F(11, "weight", false, T.int32),
    F(12, "weightType", false, T.int32),
    F(13, "authType", false, T.int32),
    F(14, "nodeName", false, T.string),
];
tars.EndpointF._write = function (os, tag, value) { os.writeStruct(tag, value); };
tars.EndpointF._read  = function (is, tag, def) { return is.readStruct(tag, true, def); };
tars.EndpointF._readFrom = function (is) {
    var tmp = new tars.EndpointF();
    tmp.host = is.readString(0, true, "");
    tmp.port = is.readInt32(1, true, 0);
    tmp.timeout = is.readInt32(2, true, 0);
    tmp.istcp = is.readInt32(3, true, 0);
    tmp.grid = is.readInt32(4, true, 0);
    tmp.groupworkid = is.readInt32(5, false, 0);
    tmp.grouprealid = is.readInt32(6, false, 0);
    tmp.setId = is.readString(7, false, "");
    tmp.qos = is.readInt32(8, false, 0);
    tmp.bakFlag = is.readInt32(9, false, 0);
    tmp.weight = is.readInt32(11, false, 0);
    tmp.weightType = is.readInt32(12, false, 0);
    tmp.authType = is.readInt32(13, false, 0);
    tmp.nodeName = is.readString(14, false, "");
    return tmp;
};
tars.EndpointF.prototype._writeTo = function (os) {
    os.writeString(0, this.host);
    os.writeInt32(1, this.port);
    os.writeInt32(2, this.timeout);
    os.writeInt32(3, this.istcp);
    os.writeInt32(4, this.grid);
    if (this.groupworkid != 0) os.writeInt32(5, this.groupworkid);
    if (this.grouprealid != 0) os.writeInt32(6, this.grouprealid);
    if (this.setId !== "") os.writeString(7, this.setId);
    if (this.qos != 0) os.writeInt32(8, this.qos);
    if (this.bakFlag != 0) os.writeInt32(9, this.bakFlag);
    if (this.weight != 0) os.writeInt32(11, this.weight);
    if (this.weightType != 0) os.writeInt32(12, this.weightType);
    if (this.authType != 0) os.writeInt32(13, this.authType);
    if (this.nodeName !== "") os.writeString(14, this.nodeName);
};
// key[EndpointF, host, port, timeout, istcp, grid, qos, weight, weightType, authType]
tars.EndpointF.prototype._equal = function (anItem) {
    return this.host === anItem.host &&
        this.port === anItem.port &&
        this.timeout === anItem.timeout &&
        this.istcp === anItem.istcp &&
        this.grid === anItem.grid &&
        this.qos === anItem.qos &&
        this.weight === anItem.weight &&
        this.weightType === anItem.weightType &&
        this.authType === anItem.authType;
};
tars.EndpointF.prototype._genKey = function () {
    if (!this._proto_struct_name_) {
        this._proto_struct_name_ = "STRUCT" + Math.random();
    }
    return this._proto_struct_name_;
};
tars.EndpointF.prototype.toObject = function () {
    return {
        "host": this.host,
        "port": this.port,
        "timeout": this.timeout,
        "istcp": this.istcp,
        "grid": this.grid,
        "groupworkid": this.groupworkid,
        "grouprealid": this.grouprealid,
        "setId": this.setId,
        "qos": this.qos,
        "bakFlag": this.bakFlag,
        "weight": this.weight,
        "weightType": this.weightType,
        "authType": this.authType,
        "nodeName": this.nodeName,
    };
};
tars.EndpointF.prototype.readFromObject = function (json) {
    var self = this;
    tars.EndpointF._fields.forEach(function (f) {
        _hasOwnProperty.call(json, f.name) && (self[f.name] = json[f.name]);
    });
    return this;
};
tars.EndpointF.prototype.toBinBuffer = function () {
    var os = new TarsStream.TarsOutputStream();
    this._writeTo(os);
    return os.getBinBuffer();
};
tars.EndpointF.new = function () { return new tars.EndpointF(); };
tars.EndpointF.create = function (is) { return tars.EndpointF._readFrom(is); };

// ---------------------------------------------------------------------------------------
// The sBuffer of a QueryF.findObjectByIdInSameGroup response:
//   int ret (tag 0), out vector<EndpointF> activeEp (tag 2), out vector<EndpointF> inactiveEp (tag 3)
// A bare field sequence (no StructBegin/End): what a generated servant's response writer emits.
// Return value and out parameters are always written (even 0 / empty), like TarsCpp.
// Not a struct: it has no _write/_read and cannot be nested in another value.
// ---------------------------------------------------------------------------------------
tars.QueryAnswer = function () {
    this.ret = 0;
    this.activeEp = new TarsStream.List(tars.EndpointF);
    this.inactiveEp = new TarsStream.List(tars.EndpointF);
    this._classname = "tars.QueryAnswer";
};
tars.QueryAnswer._classname = "tars.QueryAnswer";
tars.QueryAnswer._fields = [
    F(0, "ret", true, T.int32),
    F(2, "activeEp", true, T.list(T.struct("EndpointF"))),
    F(3, "inactiveEp", true, T.list(T.struct("EndpointF"))),
];
tars.QueryAnswer._readFrom = function (is) {
    // Like the generated proxy's response reader: ret is required, the out params are read
    // with require = true as well.
    var tmp = new tars.QueryAnswer();
    tmp.ret = is.readInt32(0, true, 0);
    tmp.activeEp = is.readList(2, true, TarsStream.List(tars.EndpointF));
    tmp.inactiveEp = is.readList(3, true, TarsStream.List(tars.EndpointF));
    return tmp;
};
tars.QueryAnswer.prototype._writeTo = function (os) {
    os.writeInt32(0, this.ret);
    os.writeList(2, this.activeEp);
    os.writeList(3, this.inactiveEp);
};
tars.QueryAnswer.prototype.toObject = function () {
    return {
        "ret": this.ret,
        "activeEp": this.activeEp.toObject(),
        "inactiveEp": this.inactiveEp.toObject(),
    };
};
tars.QueryAnswer.prototype.readFromObject = function (json) {
    _hasOwnProperty.call(json, "ret") && (this.ret = json.ret);
    _hasOwnProperty.call(json, "activeEp") && (this.activeEp.readFromObject(json.activeEp));
    _hasOwnProperty.call(json, "inactiveEp") && (this.inactiveEp.readFromObject(json.inactiveEp));
    return this;
};
tars.QueryAnswer.prototype.toBinBuffer = function () {
    var os = new TarsStream.TarsOutputStream();
    this._writeTo(os);
    return os.getBinBuffer();
};
tars.QueryAnswer.new = function () { return new tars.QueryAnswer(); };
tars.QueryAnswer.create = function (is) { return tars.QueryAnswer._readFrom(is); };

// ---------------------------------------------------------------------------------------
// Registry used by stream_peer.js: peer type name -> class, and struct name -> class.
// ---------------------------------------------------------------------------------------
module.exports.TYPES = {
    "AllTypes": Interop.AllTypes,
    "Inner": Interop.Inner,
    "EndpointF": tars.EndpointF,
    "QueryAnswer": tars.QueryAnswer,
};
module.exports.STRUCTS = {
    "Inner": Interop.Inner,
    "AllTypes": Interop.AllTypes,
    "EndpointF": tars.EndpointF,
};
module.exports.ENUMS = {
    "Color": Interop.Color,
};
module.exports.T = T;
