// Hand-written @tars/rpc glue for SayHello.tars (module TestApp, interface SayHello) and for
// the framework interface AdminF (servant "AdminObj"), in the shape tars2node generates:
// onDispatch(current, funcName, binBuffer) calls "__" + funcName, which decodes the in
// parameters (tags 1..n in declaration order), installs current.sendResponse (return value at
// tag 0, out parameters at their tags) and calls the implementation method
// this.<op>(current, in...). TARS protocol (iVersion 1) only; TUP calls get -1.
// The proxy TestApp.SayHelloProxy (for communicator.stringToProxy) resolves each call with
// {request, response: {costtime, return, arguments: {out...}}} or rejects with an Error whose
// .response.error is {code, message}.
"use strict";

var TarsStream = require("@tars/stream");
var TarsError = require("@tars/rpc").error;

var TestApp = {};
var tars = {};
module.exports.TestApp = TestApp;
module.exports.tars = tars;

function isTup(current) {
    var v = current.getRequestVersion();
    return v === TarsStream.Tup.TUP_SIMPLE || v === TarsStream.Tup.TUP_COMPLEX;
}

function onDispatch(current, funcName, binBuffer) {
    var fn = this["__" + funcName];
    if (typeof fn !== "function") return TarsError.SERVER.FUNC_NOT_FOUND;
    if (isTup(current)) return TarsError.SERVER.DECODE_ERROR;
    return fn.call(this, current, binBuffer);
}

// tars_ping: answered by every servant (as tars2node does: int32 0 at tag 0).
function tarsPing(current) {
    var os = new TarsStream.TarsOutputStream();
    os.writeInt32(0, 0);
    current.doResponse(os.getBinBuffer());
    return TarsError.SUCCESS;
}

function notImplemented(name) {
    return function () { throw new Error(name + " is not implemented"); };
}

function servantClass() {
    var Imp = function () {
        this._name = undefined;
        this._worker = undefined;
    };
    Imp.prototype.initialize = function () {};
    Imp.prototype.onDispatch = onDispatch;
    Imp.prototype.__tars_ping = tarsPing;
    return Imp;
}

// Response encoders (installed as current.sendResponse; `this` is the current).
function respondString(ret) {
    var os = new TarsStream.TarsOutputStream();
    os.writeString(0, ret);
    this.doResponse(os.getBinBuffer());
}

function respondVoid() {
    this.doResponse(new TarsStream.BinBuffer());
}

// ---- interface TestApp.SayHello -------------------------------------------------------------
TestApp.SayHelloImp = servantClass();

// string SayHello(string name)
TestApp.SayHelloImp.prototype.SayHello = notImplemented("TestApp.SayHello.SayHello");
TestApp.SayHelloImp.prototype.__SayHello = function (current, binBuffer) {
    var is = new TarsStream.TarsInputStream(binBuffer);
    var name = is.readString(1, true, "");
    current.sendResponse = respondString;
    this.SayHello(current, name);
    return TarsError.SUCCESS;
};

// int Add(int a, int b, out int c)
TestApp.SayHelloImp.prototype.Add = notImplemented("TestApp.SayHello.Add");
TestApp.SayHelloImp.prototype.__Add = function (current, binBuffer) {
    var is = new TarsStream.TarsInputStream(binBuffer);
    var a = is.readInt32(1, true, 0);
    var b = is.readInt32(2, true, 0);
    current.sendResponse = function (ret, c) {
        var os = new TarsStream.TarsOutputStream();
        os.writeInt32(0, ret);
        os.writeInt32(3, c);
        this.doResponse(os.getBinBuffer());
    };
    this.Add(current, a, b);
    return TarsError.SUCCESS;
};

// ---- AdminF (servant "AdminObj" on the server's `local` endpoint) ----------------------------
//   void shutdown();  string notify(string command);
tars.AdminFImp = servantClass();

tars.AdminFImp.prototype.shutdown = notImplemented("tars.AdminF.shutdown");
tars.AdminFImp.prototype.__shutdown = function (current) {
    current.sendResponse = respondVoid;
    this.shutdown(current);
    return TarsError.SUCCESS;
};

tars.AdminFImp.prototype.notify = notImplemented("tars.AdminF.notify");
tars.AdminFImp.prototype.__notify = function (current, binBuffer) {
    var is = new TarsStream.TarsInputStream(binBuffer);
    var command = is.readString(1, true, "");
    current.sendResponse = respondString;
    this.notify(current, command);
    return TarsError.SUCCESS;
};

// ---- proxy for TestApp.SayHello -------------------------------------------------------------
TestApp.SayHelloProxy = function () {
    this._name = undefined;
    this._worker = undefined;
};
TestApp.SayHelloProxy.prototype.setTimeout = function (ms) { this._worker.timeout = ms; };
TestApp.SayHelloProxy.prototype.getTimeout = function () { return this._worker.timeout; };

// name(args...) -> Promise; encode(os, args...) writes the in params, decode(is) -> response.
function proxyMethod(name, encode, decode) {
    return function () {
        var os = new TarsStream.TarsOutputStream();
        encode.apply(null, [os].concat(Array.prototype.slice.call(arguments)));
        return this._worker.tars_invoke(name, os.getBinBuffer(), {}).then(function (data) {
            var response = decode(new TarsStream.TarsInputStream(data.response.sBuffer));
            response.costtime = data.request.costtime;
            return { request: data.request, response: response };
        }, function (data) {
            var error = new Error("TestApp.SayHello." + name + " failed");
            error.response = { error: data.error || (data.response && data.response.error) };
            throw error;
        });
    };
}

TestApp.SayHelloProxy.prototype.tars_ping = proxyMethod("tars_ping",
    function () {},
    function () { return { return: 0, arguments: {} }; });

TestApp.SayHelloProxy.prototype.SayHello = proxyMethod("SayHello",
    function (os, name) { os.writeString(1, name); },
    function (is) { return { return: is.readString(0, true, ""), arguments: {} }; });

TestApp.SayHelloProxy.prototype.Add = proxyMethod("Add",
    function (os, a, b) { os.writeInt32(1, a); os.writeInt32(2, b); },
    function (is) {
        return { return: is.readInt32(0, true, 0), arguments: { c: is.readInt32(3, true, 0) } };
    });
