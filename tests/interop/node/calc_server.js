#!/usr/bin/env node
// calc_server.js: an Interop.Calc server on TarsNode's @tars/rpc (glue: calc_glue.js).
//
// Usage
//   node calc_server.js --endpoint "tcp -h 127.0.0.1 -p PORT -t 60000" [--servant App.NodeServer.CalcObj]
//   node calc_server.js --config FILE
//   common options:
//     --admin [ENDPOINT]  also serve AdminObj (AdminF), emulating @tars/node-agent (see below).
//                         ENDPOINT defaults to the config's <server> `local` key; required
//                         with --endpoint.
//     --watch-stdin       exit when stdin reaches EOF (lets a parent make sure we die with it)
//
// With --endpoint the server is started through server.createServer() + BindAdapterOption;
// with --config through `new server(); initialize(FILE); addServant(CalcImp, <servant of
// every adapter>); start()`, which is how a TarsNode service reads its tarsnode-generated
// config: every sub-domain of <tars><application><server> is an adapter (keys endpoint,
// servant, protocol (must be "tars"), maxconns). The <client> section configures the
// server's communicator (locator etc.). `-p 0` picks a free port; the ready line shows it.
//
// Once every adapter listens it prints one JSON line to stdout:
//   {"ready":true,"endpoint":"tcp -h 127.0.0.1 -p 40123 -t 60000","servant":"App.NodeServer.CalcObj",
//    "proxy":"App.NodeServer.CalcObj@tcp -h 127.0.0.1 -p 40123 -t 60000",
//    "adapters":[{"name":..,"servant":..,"endpoint":..}],"admin":null | "tcp -h .. -p .. -t ..",
//    "pid":1234,"node":"v20..","rpc":"2.0.15"}
// On a start failure: {"ready":false,"error":"..."} and exit code 1.
// SIGTERM / SIGINT stop the server (exit 0).
//
// Servant semantics:
//   add(a, b)        a + b (int32 wrap-around)
//   echo(s)          s, except: "__touched__" -> the names passed to touch() so far, joined
//                    by ","; "__notified__" -> the AdminObj notify commands received so far,
//                    joined by "\n"; "__connections__" -> number of TCP connections open on
//                    the server (all adapters), as a decimal string
//   divide(a, b)     ret 0, quotient = trunc(a / b), remainder = a - b * quotient;
//                    b == 0: ret -1, both outs 0
//   roundTrip(v)     v (echoed exactly, see roundTrip below), inners = v.inners
//   countWords(ws)   occurrences of each word
//   touch(name)      records name (void)
//   fail(message)    throws an Error from the implementation: @tars/rpc's BindAdapter catches
//                    it and answers iRet = error.code if set, else -1 (TARSSERVERDECODEERR),
//                    sResultDesc = "BindAdapter Exception:" + message. A message "code=N" or
//                    "code=N:text" throws an error carrying .code = N (any iRet on demand).
//   (A servant that rejects a promise or throws later, outside onDispatch, gets no answer
//   sent at all: the client times out with -13001, and Node >= 15 dies of the unhandled
//   rejection unless a handler is installed. Only a synchronous throw becomes an iRet.)
// The server closes a connection idle for the endpoint's -t milliseconds, and does not check
// sServantName (any name reaches the adapter's servant).
//
// AdminObj: @tars/rpc serves none (HeroServer only binds the adapter sub-domains; the `local`
// key is ignored). In TarsNode the launcher @tars/node-agent serves AdminF on `local`
// (--tars-local) with shutdown + notify only. --admin emulates it: notify(cmd) answers
// "ok", except "tars.viewversion" -> the @tars/rpc version and "preheatCheck" -> "success"
// (node-agent answers its own version / worker readiness there); shutdown() answers, then the
// process exits 0; tars_ping answers; getPid is not implemented (-3), like node-agent.

"use strict";

var path = require("path");
var TarsRpc = require("@tars/rpc");
var TarsStream = require("@tars/stream");
var glue = require("./calc_glue.js");

var RPC_VERSION = (function () {
    try { return require("@tars/rpc/package.json").version; } catch (e) { return "unknown"; }
}());

function usage(message) {
    process.stderr.write("calc_server.js: " + message + "\n" +
        "usage: calc_server.js (--endpoint EP [--servant NAME] | --config FILE) [--admin [EP]] [--watch-stdin]\n");
    process.exit(2);
}

function parseArgs(argv) {
    var opts = { endpoint: null, servant: "App.NodeServer.CalcObj", config: null, admin: false,
                 adminEndpoint: null, watchStdin: false };
    for (var i = 0; i < argv.length; i++) {
        var a = argv[i];
        var eq = a.indexOf("=");
        var key = a, inline = null;
        if (a.slice(0, 2) === "--" && eq > 0) { key = a.slice(0, eq); inline = a.slice(eq + 1); }
        var value = function () {
            if (inline !== null) return inline;
            if (i + 1 >= argv.length) usage(key + " needs a value");
            return argv[++i];
        };
        switch (key) {
            case "--endpoint": opts.endpoint = value(); break;
            case "--servant": opts.servant = value(); break;
            case "--config": opts.config = value(); break;
            case "--admin":
                opts.admin = true;
                if (inline !== null) opts.adminEndpoint = inline;
                else if (i + 1 < argv.length && argv[i + 1].slice(0, 2) !== "--") opts.adminEndpoint = argv[++i];
                break;
            case "--watch-stdin": opts.watchStdin = true; break;
            case "-h": case "--help": usage("help");
            // falls through (usage exits)
            default: usage("unknown argument " + JSON.stringify(a));
        }
    }
    if (!opts.endpoint === !opts.config) usage("give exactly one of --endpoint and --config");
    return opts;
}

// ---------------------------------------------------------------------------------------
// Servant implementations
// ---------------------------------------------------------------------------------------

var touched = [];
var notified = [];

function CalcServerImp() {
    glue.Interop.CalcImp.call(this);
}
CalcServerImp.prototype = Object.create(glue.Interop.CalcImp.prototype);
CalcServerImp.prototype.constructor = CalcServerImp;

CalcServerImp.prototype.add = function (current, a, b) {
    current.sendResponse((a + b) | 0);
};

CalcServerImp.prototype.echo = function (current, s) {
    if (s === "__touched__") return current.sendResponse(touched.join(","));
    if (s === "__notified__") return current.sendResponse(notified.join("\n"));
    if (s === "__connections__") return current.sendResponse(String(openConnections()));
    current.sendResponse(s);
};

CalcServerImp.prototype.divide = function (current, a, b) {
    if (b === 0) return current.sendResponse(-1, 0, 0);
    var q = Math.trunc(a / b) | 0;          // int32 wrap-around (INT_MIN / -1 -> INT_MIN)
    var r = (a - Math.imul(b, q)) | 0;
    current.sendResponse(0, q, r);
};

CalcServerImp.prototype.roundTrip = function (current, value) {
    // @tars/stream's decoder builds the inner lists of a vector<vector<long>> without the
    // int64 string flag, so echoing the decoded value as is would re-encode them through
    // Number (|x| > 2^53 corrupted, 2^63-1 -> -2^63). Restore the flag: echo exactly.
    value.nested.value.forEach(function (row) { row._bValue = 1; });
    current.sendResponse(value, value.inners);
};

CalcServerImp.prototype.countWords = function (current, words) {
    var counts = new TarsStream.Map(TarsStream.String, TarsStream.Int32);
    words.value.forEach(function (w) {
        var n = counts.get(w);
        counts.set(w, (n === undefined ? 0 : n) + 1);
    });
    current.sendResponse(counts);
};

CalcServerImp.prototype.touch = function (current, name) {
    touched.push(name);
    current.sendResponse();
};

CalcServerImp.prototype.fail = function (current, message) {
    var m = /^code=(-?\d+)(?::([\s\S]*))?$/.exec(message);
    var err = new Error(m ? (m[2] === undefined ? "" : m[2]) : message);
    if (m) err.code = parseInt(m[1], 10);
    throw err;
};

function AdminServerImp() {
    glue.tars.AdminFImp.call(this);
}
AdminServerImp.prototype = Object.create(glue.tars.AdminFImp.prototype);
AdminServerImp.prototype.constructor = AdminServerImp;

AdminServerImp.prototype.notify = function (current, command) {
    notified.push(command);
    var cmd = command.split(" ")[0];
    if (cmd === "tars.viewversion") return current.sendResponse(RPC_VERSION);
    if (cmd === "preheatCheck") return current.sendResponse("success");
    current.sendResponse("ok");
};

AdminServerImp.prototype.shutdown = function (current) {
    current.sendResponse();
    setTimeout(function () { shutdown(0); }, 50);
};

// ---------------------------------------------------------------------------------------
// Start-up
// ---------------------------------------------------------------------------------------

var server = null;

// TCP connections currently open on all adapters (AdminObj's included).
function openConnections() {
    var n = 0;
    (server ? server._adapters : []).forEach(function (adapter) {
        if (adapter._netthread) n += Object.keys(adapter._netthread._connections).length;
    });
    return n;
}

function shutdown(code) {
    try { if (server) server.stop(); } catch (e) { /* ignore */ }
    process.exit(code);
}

function fatal(message) {
    process.stdout.write(JSON.stringify({ ready: false, error: message }) + "\n", function () {
        process.exit(1);
    });
}

function endpointString(ep, port) {
    return ep.sProtocol + " -h " + ep.sHost + " -p " + port + " -t " + ep.iTimeout;
}

function waitListening(adapters) {
    return Promise.all(adapters.map(function (adapter) {
        return new Promise(function (resolve, reject) {
            var listener = adapter._netthread && adapter._netthread._listener;
            if (!listener) return reject(new Error("adapter " + adapter.name + " has no listener"));
            var onError = function (e) {
                reject(new Error("adapter " + adapter.name + " (" + adapter.endpoint.toString() + "): " + e.message));
            };
            listener.once("error", onError);
            var done = function () {
                listener.removeListener("error", onError);
                listener.on("error", function (e) { process.stderr.write("listener error: " + e.message + "\n"); });
                var port = listener.address().port;
                resolve({
                    name: adapter.name || "",
                    servant: adapter.servantName,
                    endpoint: endpointString(adapter.endpoint, port),
                });
            };
            if (adapter.endpoint.sProtocol === "udp") listener.once("listening", done);
            else if (listener.listening) done();
            else listener.once("listening", done);
        });
    }));
}

function main() {
    var opts = parseArgs(process.argv.slice(2));
    process.stdout.on("error", function () { process.exit(0); });
    process.on("SIGTERM", function () { shutdown(0); });
    process.on("SIGINT", function () { shutdown(0); });
    if (opts.watchStdin) {
        process.stdin.on("data", function () {});
        process.stdin.on("end", function () { shutdown(0); });
        process.stdin.on("error", function () { shutdown(0); });
    }

    var adminEndpoint = opts.adminEndpoint;
    try {
        if (opts.config) {
            var configFile = path.resolve(opts.config);
            server = new TarsRpc.server();
            server.initialize(configFile, function (svr) {
                svr._adapters.forEach(function (adapter) {
                    if (!adapter.isTarsProtocol()) {
                        throw new Error("adapter " + adapter.name + ": protocol " + JSON.stringify(adapter.protocolName) + " is not tars");
                    }
                    svr.addServant(CalcServerImp, adapter.servantName);
                });
            });
            if (server._adapters.length === 0) throw new Error("no adapter in " + configFile);
            if (opts.admin && !adminEndpoint) {
                adminEndpoint = server.configure.get("tars.application.server.local", "");
                if (!adminEndpoint) throw new Error("--admin: no <server> local= key in " + configFile);
            }
        } else {
            server = TarsRpc.server.createServer();
            var option = new TarsRpc.server.BindAdapterOption();
            option.endpoint = opts.endpoint;
            option.servant = opts.servant;
            option.name = opts.servant + "Adapter";
            option.handleImp = CalcServerImp;
            server._addBindAdapter(option);
            if (opts.admin && !adminEndpoint) throw new Error("--admin needs an endpoint with --endpoint");
        }
        if (opts.admin) {
            var admin = new TarsRpc.server.BindAdapterOption();
            admin.endpoint = adminEndpoint;
            admin.servant = "AdminObj";
            admin.name = "AdminAdapter";
            admin.handleImp = AdminServerImp;
            server._addBindAdapter(admin);
        }
        server.start();
    } catch (e) {
        return fatal(e.message);
    }

    waitListening(server._adapters).then(function (bound) {
        var adminBound = null;
        var calc = bound.filter(function (b) {
            if (opts.admin && b.servant === "AdminObj" && b.name === "AdminAdapter") { adminBound = b; return false; }
            return true;
        });
        var first = calc[0];
        process.stdout.write(JSON.stringify({
            ready: true,
            endpoint: first.endpoint,
            servant: first.servant,
            proxy: first.servant + "@" + first.endpoint,
            adapters: calc,
            admin: adminBound ? adminBound.endpoint : null,
            pid: process.pid,
            node: process.version,
            rpc: RPC_VERSION,
        }) + "\n");
    }, function (e) {
        fatal(e.message);
    });
}

main();
