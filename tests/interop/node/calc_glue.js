// Hand-written @tars/rpc servant and proxy glue for tests/interop/idl/InteropRpc.tars
// (module Interop, interface Calc) and for the framework's AdminF interface (servant
// "AdminObj", tars-protocol.md §4.3).
//
// The shape follows what tars2node (20190529) generates for @tars/rpc:
//   servant  Interop.CalcImp: onDispatch(current, funcName, binBuffer) looks up "__" + funcName,
//            the "__op" function decodes the in params (TARS: TarsInputStream by tag, in and out
//            params numbered 1..n in declaration order; TUP: UniAttribute by parameter name),
//            installs current.sendResponse = <encoder> and calls this.op(current, in..., out...).
//            The implementation answers with current.sendResponse(ret, out...): return value
//            at tag 0 (TUP: name ""), out params at their tags (TUP: their names). Unknown
//            function: onDispatch returns TarsError.SERVER.FUNC_NOT_FOUND (-3) and BindAdapter
//            sends that as iRet. tars_ping is answered like tars2node does it: iRet 0 and an
//            sBuffer holding int32 0 at tag 0 (one byte 0x0c), not an empty sBuffer.
//   proxy    Interop.CalcProxy: one method per operation; encodes the in params only (like
//            tars2node; TarsCpp sync proxies also send the out params), calls
//            this._worker.tars_invoke (or tup_invoke when setVersion(2|3) was called) and
//            resolves with {request, response: {costtime, return, arguments: {out...}}}, or
//            rejects with an Error whose .response.error = {code, message}: the iRet and
//            sResultDesc of the answer, or a client-side code (TarsError.CLIENT: -13001
//            timeout, -11000 decode error of the answer, -10000 send error). The optional
//            argument after the in params is the @tars/rpc call property object ({context,
//            packetType, dyeing, hashCode, ...}). Unlike tars2node, a last in param that
//            happens to be an object is never mistaken for that property object.
//            tars_ping() is an extra (tars2node proxies have none): it resolves with the raw
//            response sBuffer in response.sBuffer.
//
// Types: Interop.Inner / Interop.AllTypes from interop_types.js (long fields in string mode).
// Interop.Calc.OPERATIONS describes each operation with interop_types.js field descriptors
// (used by calc_client.js for the JSON mapping).

"use strict";

var TarsStream = require("@tars/stream");
var TarsError = require("@tars/rpc").error;
var types = require("./interop_types.js");

var T = types.T;
var Inner = types.Interop.Inner;
var AllTypes = types.Interop.AllTypes;

var Interop = {};
var tars = {};
module.exports.Interop = Interop;
module.exports.tars = tars;

Interop.Inner = Inner;
Interop.AllTypes = AllTypes;

function isTup(version) {
    return version === TarsStream.Tup.TUP_SIMPLE || version === TarsStream.Tup.TUP_COMPLEX;
}

// Errors raised by the proxies: same shape as tars2node's _makeError.
function makeError(data, message, code) {
    var error = new Error(message || "");
    error.request = data.request;
    error.response = { costtime: data.request ? data.request.costtime : 0 };
    if (code === TarsError.CLIENT.DECODE_ERROR) {
        error.name = "DECODE_ERROR";
        error.response.error = { code: code, message: message };
    } else {
        error.name = "RPC_ERROR";
        error.response.error = data.error || (data.response && data.response.error);
    }
    return error;
}

function rpcFailed(name) {
    return function (data) {
        throw makeError(data || {}, "Call " + name + " failed");
    };
}

// The call property object (context, packetType, ...) is the argument after the in params.
function callProperty(args, nIn) {
    var p = args.length > nIn ? args[nIn] : undefined;
    return p !== null && typeof p === "object" ? p : {};
}

function replyPing(current) {
    if (isTup(current.getRequestVersion())) {
        var tup = new TarsStream.UniAttribute();
        tup.tupVersion = current.getRequestVersion();
        tup.writeInt32("", 0);
        current.doResponse(tup.encode());
    } else {
        var os = new TarsStream.TarsOutputStream();
        os.writeInt32(0, 0);
        current.doResponse(os.getBinBuffer());
    }
    return TarsError.SUCCESS;
}

function pingProxy(worker, args) {
    var property = callProperty(args, 0);
    var invoke;
    if (isTup(worker.version)) {
        var tup = new TarsStream.UniAttribute();
        tup.tupVersion = worker.version;
        invoke = worker.tup_invoke("tars_ping", tup, property);
    } else {
        invoke = worker.tars_invoke("tars_ping", new TarsStream.BinBuffer(), property);
    }
    return invoke.then(function (data) {
        return {
            request: data.request,
            response: {
                costtime: data.request.costtime,
                sBuffer: data.response.sBuffer,
                tup: data.response.tup,
            },
        };
    }, rpcFailed("tars_ping"));
}

// =========================================================================================
// interface Calc: servant
// =========================================================================================

Interop.Calc = {};
Interop.Calc.OPERATIONS = {
    add: { ret: T.int32, params: [
        { name: "a", tag: 1, out: false, type: T.int32 },
        { name: "b", tag: 2, out: false, type: T.int32 },
    ] },
    echo: { ret: T.string, params: [
        { name: "s", tag: 1, out: false, type: T.string },
    ] },
    divide: { ret: T.int32, params: [
        { name: "a", tag: 1, out: false, type: T.int32 },
        { name: "b", tag: 2, out: false, type: T.int32 },
        { name: "quotient", tag: 3, out: true, type: T.int32 },
        { name: "remainder", tag: 4, out: true, type: T.int32 },
    ] },
    roundTrip: { ret: T.struct("AllTypes"), params: [
        { name: "value", tag: 1, out: false, type: T.struct("AllTypes") },
        { name: "inners", tag: 2, out: true, type: T.list(T.struct("Inner")) },
    ] },
    countWords: { ret: T.map(T.string, T.int32), params: [
        { name: "words", tag: 1, out: false, type: T.list(T.string) },
    ] },
    touch: { ret: null, params: [
        { name: "name", tag: 1, out: false, type: T.string },
    ] },
    fail: { ret: T.int32, params: [
        { name: "message", tag: 1, out: false, type: T.string },
    ] },
};

Interop.CalcImp = function () {
    this._name = undefined;
    this._worker = undefined;
};

Interop.CalcImp.prototype.initialize = function () {};

Interop.CalcImp.prototype.onDispatch = function (current, funcName, binBuffer) {
    if ("__" + funcName in this) {
        return this["__" + funcName](current, binBuffer);
    }
    return TarsError.SERVER.FUNC_NOT_FOUND;
};

Interop.CalcImp.prototype.__tars_ping = function (current) {
    return replyPing(current);
};

function notImplemented(name) {
    return function () { throw new Error("Interop.Calc." + name + " not implemented"); };
}

// ---- int add(int a, int b) ---------------------------------------------------------------
Interop.CalcImp.prototype.add = notImplemented("add");
var __Calc$add$RE = function (_ret) {
    if (isTup(this.getRequestVersion())) {
        var tup = new TarsStream.UniAttribute();
        tup.tupVersion = this.getRequestVersion();
        tup.writeInt32("", _ret);
        this.doResponse(tup.encode());
    } else {
        var os = new TarsStream.TarsOutputStream();
        os.writeInt32(0, _ret);
        this.doResponse(os.getBinBuffer());
    }
};
Interop.CalcImp.prototype.__add = function (current, binBuffer) {
    var a = null, b = null;
    if (isTup(current.getRequestVersion())) {
        var tup = new TarsStream.UniAttribute();
        tup.tupVersion = current.getRequestVersion();
        tup.decode(binBuffer);
        a = tup.readInt32("a");
        b = tup.readInt32("b");
    } else {
        var is = new TarsStream.TarsInputStream(binBuffer);
        a = is.readInt32(1, true, 0);
        b = is.readInt32(2, true, 0);
    }
    current.sendResponse = __Calc$add$RE;
    this.add(current, a, b);
    return TarsError.SUCCESS;
};

// ---- string echo(string s) ---------------------------------------------------------------
Interop.CalcImp.prototype.echo = notImplemented("echo");
var __Calc$echo$RE = function (_ret) {
    if (isTup(this.getRequestVersion())) {
        var tup = new TarsStream.UniAttribute();
        tup.tupVersion = this.getRequestVersion();
        tup.writeString("", _ret);
        this.doResponse(tup.encode());
    } else {
        var os = new TarsStream.TarsOutputStream();
        os.writeString(0, _ret);
        this.doResponse(os.getBinBuffer());
    }
};
Interop.CalcImp.prototype.__echo = function (current, binBuffer) {
    var s = null;
    if (isTup(current.getRequestVersion())) {
        var tup = new TarsStream.UniAttribute();
        tup.tupVersion = current.getRequestVersion();
        tup.decode(binBuffer);
        s = tup.readString("s");
    } else {
        var is = new TarsStream.TarsInputStream(binBuffer);
        s = is.readString(1, true, "");
    }
    current.sendResponse = __Calc$echo$RE;
    this.echo(current, s);
    return TarsError.SUCCESS;
};

// ---- int divide(int a, int b, out int quotient, out int remainder) -----------------------
Interop.CalcImp.prototype.divide = notImplemented("divide");
var __Calc$divide$RE = function (_ret, quotient, remainder) {
    if (isTup(this.getRequestVersion())) {
        var tup = new TarsStream.UniAttribute();
        tup.tupVersion = this.getRequestVersion();
        tup.writeInt32("", _ret);
        tup.writeInt32("quotient", quotient);
        tup.writeInt32("remainder", remainder);
        this.doResponse(tup.encode());
    } else {
        var os = new TarsStream.TarsOutputStream();
        os.writeInt32(0, _ret);
        os.writeInt32(3, quotient);
        os.writeInt32(4, remainder);
        this.doResponse(os.getBinBuffer());
    }
};
Interop.CalcImp.prototype.__divide = function (current, binBuffer) {
    var a = null, b = null, quotient = null, remainder = null;
    if (isTup(current.getRequestVersion())) {
        var tup = new TarsStream.UniAttribute();
        tup.tupVersion = current.getRequestVersion();
        tup.decode(binBuffer);
        a = tup.readInt32("a");
        b = tup.readInt32("b");
        quotient = tup.readInt32("quotient", 0);
        remainder = tup.readInt32("remainder", 0);
    } else {
        var is = new TarsStream.TarsInputStream(binBuffer);
        a = is.readInt32(1, true, 0);
        b = is.readInt32(2, true, 0);
        quotient = is.readInt32(3, false, 0);
        remainder = is.readInt32(4, false, 0);
    }
    current.sendResponse = __Calc$divide$RE;
    this.divide(current, a, b, quotient, remainder);
    return TarsError.SUCCESS;
};

// ---- AllTypes roundTrip(AllTypes value, out vector<Inner> inners) ------------------------
Interop.CalcImp.prototype.roundTrip = notImplemented("roundTrip");
var __Calc$roundTrip$RE = function (_ret, inners) {
    if (isTup(this.getRequestVersion())) {
        var tup = new TarsStream.UniAttribute();
        tup.tupVersion = this.getRequestVersion();
        tup.writeStruct("", _ret);
        tup.writeList("inners", inners);
        this.doResponse(tup.encode());
    } else {
        var os = new TarsStream.TarsOutputStream();
        os.writeStruct(0, _ret);
        os.writeList(2, inners);
        this.doResponse(os.getBinBuffer());
    }
};
Interop.CalcImp.prototype.__roundTrip = function (current, binBuffer) {
    var value = null, inners = null;
    if (isTup(current.getRequestVersion())) {
        var tup = new TarsStream.UniAttribute();
        tup.tupVersion = current.getRequestVersion();
        tup.decode(binBuffer);
        value = tup.readStruct("value", AllTypes);
        inners = tup.readList("inners", TarsStream.List(Inner), new TarsStream.List(Inner));
    } else {
        var is = new TarsStream.TarsInputStream(binBuffer);
        value = is.readStruct(1, true, AllTypes);
        inners = is.readList(2, false, TarsStream.List(Inner));
    }
    current.sendResponse = __Calc$roundTrip$RE;
    this.roundTrip(current, value, inners);
    return TarsError.SUCCESS;
};

// ---- map<string, int> countWords(vector<string> words) -----------------------------------
Interop.CalcImp.prototype.countWords = notImplemented("countWords");
var __Calc$countWords$RE = function (_ret) {
    if (isTup(this.getRequestVersion())) {
        var tup = new TarsStream.UniAttribute();
        tup.tupVersion = this.getRequestVersion();
        tup.writeMap("", _ret);
        this.doResponse(tup.encode());
    } else {
        var os = new TarsStream.TarsOutputStream();
        os.writeMap(0, _ret);
        this.doResponse(os.getBinBuffer());
    }
};
Interop.CalcImp.prototype.__countWords = function (current, binBuffer) {
    var words = null;
    if (isTup(current.getRequestVersion())) {
        var tup = new TarsStream.UniAttribute();
        tup.tupVersion = current.getRequestVersion();
        tup.decode(binBuffer);
        words = tup.readList("words", TarsStream.List(TarsStream.String));
    } else {
        var is = new TarsStream.TarsInputStream(binBuffer);
        words = is.readList(1, true, TarsStream.List(TarsStream.String));
    }
    current.sendResponse = __Calc$countWords$RE;
    this.countWords(current, words);
    return TarsError.SUCCESS;
};

// ---- void touch(string name) -------------------------------------------------------------
Interop.CalcImp.prototype.touch = notImplemented("touch");
var __Calc$touch$RE = function () {
    if (isTup(this.getRequestVersion())) {
        var tup = new TarsStream.UniAttribute();
        tup.tupVersion = this.getRequestVersion();
        this.doResponse(tup.encode());
    } else {
        this.doResponse(new TarsStream.BinBuffer());
    }
};
Interop.CalcImp.prototype.__touch = function (current, binBuffer) {
    var name = null;
    if (isTup(current.getRequestVersion())) {
        var tup = new TarsStream.UniAttribute();
        tup.tupVersion = current.getRequestVersion();
        tup.decode(binBuffer);
        name = tup.readString("name");
    } else {
        var is = new TarsStream.TarsInputStream(binBuffer);
        name = is.readString(1, true, "");
    }
    current.sendResponse = __Calc$touch$RE;
    this.touch(current, name);
    return TarsError.SUCCESS;
};

// ---- int fail(string message) ------------------------------------------------------------
Interop.CalcImp.prototype.fail = notImplemented("fail");
var __Calc$fail$RE = __Calc$add$RE;   // same shape: int at tag 0 / ""
Interop.CalcImp.prototype.__fail = function (current, binBuffer) {
    var message = null;
    if (isTup(current.getRequestVersion())) {
        var tup = new TarsStream.UniAttribute();
        tup.tupVersion = current.getRequestVersion();
        tup.decode(binBuffer);
        message = tup.readString("message");
    } else {
        var is = new TarsStream.TarsInputStream(binBuffer);
        message = is.readString(1, true, "");
    }
    current.sendResponse = __Calc$fail$RE;
    this.fail(current, message);
    return TarsError.SUCCESS;
};

// =========================================================================================
// interface Calc: proxy
// =========================================================================================

Interop.CalcProxy = function () {
    this._name = undefined;
    this._worker = undefined;
};
Interop.CalcProxy.prototype.setTimeout = function (iTimeout) { this._worker.timeout = iTimeout; };
Interop.CalcProxy.prototype.getTimeout = function () { return this._worker.timeout; };
Interop.CalcProxy.prototype.setVersion = function (iVersion) { this._worker.version = iVersion; };
Interop.CalcProxy.prototype.getVersion = function () { return this._worker.version; };

// Builds a proxy method from three functions: tarsEncode(in...) -> BinBuffer,
// tupEncode(tup, in...) (writes the in params), and decode(reader) -> {return, arguments}
// where reader is {tars: TarsInputStream} or {tup: UniAttribute}.
function proxyMethod(name, nIn, tarsEncode, tupEncode, decode) {
    var decodeTars = function (data) {
        try {
            var r = decode({ tars: new TarsStream.TarsInputStream(data.response.sBuffer) });
            r.costtime = data.request.costtime;
            return { request: data.request, response: r };
        } catch (e) {
            throw makeError(data, e.message, TarsError.CLIENT.DECODE_ERROR);
        }
    };
    var decodeTup = function (data) {
        try {
            var r = decode({ tup: data.response.tup });
            r.costtime = data.request.costtime;
            return { request: data.request, response: r };
        } catch (e) {
            throw makeError(data, e.message, TarsError.CLIENT.DECODE_ERROR);
        }
    };
    var failed = rpcFailed("Calc::" + name);
    return function () {
        var args = Array.prototype.slice.call(arguments, 0, nIn);
        var property = callProperty(arguments, nIn);
        var version = this._worker.version;
        if (isTup(version)) {
            var tup = new TarsStream.UniAttribute();
            tup.tupVersion = version;
            tupEncode.apply(null, [tup].concat(args));
            return this._worker.tup_invoke(name, tup, property).then(decodeTup, failed);
        }
        return this._worker.tars_invoke(name, tarsEncode.apply(null, args), property).then(decodeTars, failed);
    };
}

Interop.CalcProxy.prototype.tars_ping = function () {
    return pingProxy(this._worker, arguments);
};

Interop.CalcProxy.prototype.add = proxyMethod("add", 2,
    function (a, b) {
        var os = new TarsStream.TarsOutputStream();
        os.writeInt32(1, a);
        os.writeInt32(2, b);
        return os.getBinBuffer();
    },
    function (tup, a, b) { tup.writeInt32("a", a); tup.writeInt32("b", b); },
    function (rd) {
        return { return: rd.tars ? rd.tars.readInt32(0, true, 0) : rd.tup.readInt32("") };
    });

Interop.CalcProxy.prototype.echo = proxyMethod("echo", 1,
    function (s) {
        var os = new TarsStream.TarsOutputStream();
        os.writeString(1, s);
        return os.getBinBuffer();
    },
    function (tup, s) { tup.writeString("s", s); },
    function (rd) {
        return { return: rd.tars ? rd.tars.readString(0, true, "") : rd.tup.readString("") };
    });

Interop.CalcProxy.prototype.divide = proxyMethod("divide", 2,
    function (a, b) {
        var os = new TarsStream.TarsOutputStream();
        os.writeInt32(1, a);
        os.writeInt32(2, b);
        return os.getBinBuffer();
    },
    function (tup, a, b) { tup.writeInt32("a", a); tup.writeInt32("b", b); },
    function (rd) {
        if (rd.tars) {
            return {
                return: rd.tars.readInt32(0, true, 0),
                arguments: { quotient: rd.tars.readInt32(3, true, 0), remainder: rd.tars.readInt32(4, true, 0) },
            };
        }
        return {
            return: rd.tup.readInt32(""),
            arguments: { quotient: rd.tup.readInt32("quotient"), remainder: rd.tup.readInt32("remainder") },
        };
    });

Interop.CalcProxy.prototype.roundTrip = proxyMethod("roundTrip", 1,
    function (value) {
        var os = new TarsStream.TarsOutputStream();
        os.writeStruct(1, value);
        return os.getBinBuffer();
    },
    function (tup, value) { tup.writeStruct("value", value); },
    function (rd) {
        if (rd.tars) {
            return {
                return: rd.tars.readStruct(0, true, AllTypes),
                arguments: { inners: rd.tars.readList(2, true, TarsStream.List(Inner)) },
            };
        }
        return {
            return: rd.tup.readStruct("", AllTypes),
            arguments: { inners: rd.tup.readList("inners", TarsStream.List(Inner)) },
        };
    });

Interop.CalcProxy.prototype.countWords = proxyMethod("countWords", 1,
    function (words) {
        var os = new TarsStream.TarsOutputStream();
        os.writeList(1, words);
        return os.getBinBuffer();
    },
    function (tup, words) { tup.writeList("words", words); },
    function (rd) {
        var MapT = TarsStream.Map(TarsStream.String, TarsStream.Int32);
        return { return: rd.tars ? rd.tars.readMap(0, true, MapT) : rd.tup.readMap("", MapT) };
    });

Interop.CalcProxy.prototype.touch = proxyMethod("touch", 1,
    function (name) {
        var os = new TarsStream.TarsOutputStream();
        os.writeString(1, name);
        return os.getBinBuffer();
    },
    function (tup, name) { tup.writeString("name", name); },
    function () { return {}; });

Interop.CalcProxy.prototype.fail = proxyMethod("fail", 1,
    function (message) {
        var os = new TarsStream.TarsOutputStream();
        os.writeString(1, message);
        return os.getBinBuffer();
    },
    function (tup, message) { tup.writeString("message", message); },
    function (rd) {
        return { return: rd.tars ? rd.tars.readInt32(0, true, 0) : rd.tup.readInt32("") };
    });

// =========================================================================================
// AdminF (servant "AdminObj" on the server's `local` endpoint)
//   void shutdown();  string notify(string command);  long getPid();   (getPid: TarsCpp only)
// @tars/rpc itself serves no AdminObj; in TarsNode it is @tars/node-agent's job (its
// AdminF has shutdown and notify only, so getPid there answers -3).
// =========================================================================================

tars.AdminF = {};
tars.AdminF.OPERATIONS = {
    shutdown: { ret: null, params: [] },
    notify: { ret: T.string, params: [{ name: "command", tag: 1, out: false, type: T.string }] },
    getPid: { ret: T.int64, params: [] },
};

tars.AdminFImp = function () {
    this._name = undefined;
    this._worker = undefined;
};
tars.AdminFImp.prototype.initialize = function () {};
tars.AdminFImp.prototype.onDispatch = Interop.CalcImp.prototype.onDispatch;
tars.AdminFImp.prototype.__tars_ping = function (current) { return replyPing(current); };

tars.AdminFImp.prototype.shutdown = notImplemented("AdminF.shutdown");
tars.AdminFImp.prototype.__shutdown = function (current) {
    current.sendResponse = __Calc$touch$RE;   // void, no out params: empty sBuffer
    this.shutdown(current);
    return TarsError.SUCCESS;
};

tars.AdminFImp.prototype.notify = notImplemented("AdminF.notify");
tars.AdminFImp.prototype.__notify = function (current, binBuffer) {
    var command = null;
    if (isTup(current.getRequestVersion())) {
        var tup = new TarsStream.UniAttribute();
        tup.tupVersion = current.getRequestVersion();
        tup.decode(binBuffer);
        command = tup.readString("command");
    } else {
        var is = new TarsStream.TarsInputStream(binBuffer);
        command = is.readString(1, true, "");
    }
    current.sendResponse = __Calc$echo$RE;    // string at tag 0 / ""
    this.notify(current, command);
    return TarsError.SUCCESS;
};

tars.AdminFProxy = function () {
    this._name = undefined;
    this._worker = undefined;
};
tars.AdminFProxy.prototype.setTimeout = Interop.CalcProxy.prototype.setTimeout;
tars.AdminFProxy.prototype.getTimeout = Interop.CalcProxy.prototype.getTimeout;
tars.AdminFProxy.prototype.setVersion = Interop.CalcProxy.prototype.setVersion;
tars.AdminFProxy.prototype.getVersion = Interop.CalcProxy.prototype.getVersion;

tars.AdminFProxy.prototype.tars_ping = function () {
    return pingProxy(this._worker, arguments);
};

tars.AdminFProxy.prototype.shutdown = proxyMethod("shutdown", 0,
    function () { return new TarsStream.BinBuffer(); },
    function () {},
    function () { return {}; });

tars.AdminFProxy.prototype.notify = proxyMethod("notify", 1,
    function (command) {
        var os = new TarsStream.TarsOutputStream();
        os.writeString(1, command);
        return os.getBinBuffer();
    },
    function (tup, command) { tup.writeString("command", command); },
    function (rd) {
        return { return: rd.tars ? rd.tars.readString(0, true, "") : rd.tup.readString("") };
    });

tars.AdminFProxy.prototype.getPid = proxyMethod("getPid", 0,
    function () { return new TarsStream.BinBuffer(); },
    function () {},
    function (rd) {
        return { return: rd.tars ? String(rd.tars.readInt64(0, true, "0", 1)) : String(rd.tup.readInt64("", undefined, 1)) };
    });
