#!/usr/bin/env node
// calc_client.js: runs a scripted list of Interop.Calc / AdminF calls with TarsNode's
// @tars/rpc client (glue: calc_glue.js) and prints one JSON result line per call.
//
// Usage
//   node calc_client.js --proxy "App.NodeServer.CalcObj@tcp -h H -p P" [options] [--calls JSON]
//   node calc_client.js --proxy App.NodeServer.CalcObj --locator "tars.tarsregistry.QueryObj@tcp -h H -p P" ...
// Options
//   --proxy P      Calc object: a direct proxy string (Obj@endpoint[:endpoint...]) or, with
//                  --locator, an object name resolved through the registry
//                  (findObjectByIdInSameGroup; Communicator property "locator").
//   --admin P      AdminF object for calls with "target":"admin", e.g.
//                  "AdminObj@tcp -h 127.0.0.1 -p 10239 -t 3000"
//   --locator L    registry locator (QueryF proxy string)
//   --timeout MS   call timeout (default 3000)
//   --tup V        send TUP (iVersion 3 = simple, 2 = complex) instead of plain TARS (1)
//   --calls JSON   the calls as a JSON array; without it a JSON array (or one JSON object
//                  per line) is read from stdin
//
// A call:  {"op": NAME, "args": [in params in declaration order], "target": "calc"|"admin",
//           "timeout": MS, "context": {k: v}, "oneway": bool}
//   calc ops:  add [a, b], echo [s], divide [a, b], roundTrip [AllTypes], countWords [[words]],
//              touch [name], fail [message], tars_ping []
//   admin ops: notify [command], shutdown [], getPid [], tars_ping []
// Values use stream_peer.js's JSON mapping: long as a decimal string, vector<byte> as hex,
// maps as [[key, value], ...] pairs, structs as objects keyed by IDL field name.
//
// A result (one line per call, in order; calls run one after the other):
//   {"op":"divide","ok":true,"ret":0,"outs":{"quotient":3,"remainder":1},"ms":0.8}
//   {"op":"touch","ok":true,"ret":null,"outs":{},"ms":..}                 (void)
//   {"op":"tars_ping","ok":true,"ret":null,"outs":{},"sbuffer":"0c","ms":..} (raw answer sBuffer, hex)
//   {"op":"fail","ok":false,"code":-1,"message":"BindAdapter Exception:boom","ms":..}
//     code = the answer's iRet (message = its sResultDesc), or a client-side @tars/rpc code:
//     -13001 timeout (also: object unknown to the registry), -11000 answer decode error,
//     -10000 resend failed, -10 no adapter; oneway calls always end with code null,
//     message "one way call do not need response".
//   {"op":..,"ok":false,"code":null,"message":"invalid call: ..."}         (bad input line)
// Exit status 0 once every call has a result line (RPC errors included), 2 on usage errors.

"use strict";

var TarsRpc = require("@tars/rpc");
var glue = require("./calc_glue.js");
var peer = require("./stream_peer.js");

function usage(message) {
    process.stderr.write("calc_client.js: " + message + "\n" +
        "usage: calc_client.js --proxy P [--admin P] [--locator L] [--timeout MS] [--tup 2|3] [--calls JSON]\n");
    process.exit(2);
}

function parseArgs(argv) {
    var opts = { proxy: null, admin: null, locator: null, timeout: 3000, tup: 0, calls: null };
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
            case "--proxy": opts.proxy = value(); break;
            case "--admin": opts.admin = value(); break;
            case "--locator": opts.locator = value(); break;
            case "--timeout": opts.timeout = parseInt(value(), 10); break;
            case "--tup": opts.tup = parseInt(value(), 10); break;
            case "--calls": opts.calls = value(); break;
            default: usage("unknown argument " + JSON.stringify(a));
        }
    }
    if (!opts.proxy && !opts.admin) usage("--proxy (or --admin) is required");
    if (!(opts.timeout > 0)) usage("--timeout must be a positive number of ms");
    if (opts.tup !== 0 && opts.tup !== 2 && opts.tup !== 3) usage("--tup must be 2 or 3");
    var needsLocator = [opts.proxy, opts.admin].some(function (p) { return p && p.indexOf("@") < 0; });
    if (needsLocator && !opts.locator) usage("an object name without '@' needs --locator");
    return opts;
}

function parseCalls(text) {
    text = text.trim();
    if (text === "") return [];
    if (text[0] === "[") return JSON.parse(text);
    // one JSON object per line; an unparsable line becomes an invalid call
    return text.split(/\r?\n/).filter(function (l) { return l.trim() !== ""; }).map(function (l) {
        try { return JSON.parse(l); } catch (e) { return { __invalid: "invalid JSON: " + e.message }; }
    });
}

function readStdin() {
    return new Promise(function (resolve, reject) {
        var chunks = [];
        process.stdin.on("data", function (c) { chunks.push(c); });
        process.stdin.on("end", function () { resolve(Buffer.concat(chunks).toString("utf8")); });
        process.stdin.on("error", reject);
    });
}

function InvalidCall(message) { this.message = message; }

function prepare(call, proxies) {
    if (call === null || typeof call !== "object" || Array.isArray(call)) throw new InvalidCall("a call must be an object");
    if (call.__invalid) throw new InvalidCall(call.__invalid);
    var target = call.target === undefined ? "calc" : call.target;
    var table = target === "calc" ? glue.Interop.Calc.OPERATIONS : target === "admin" ? glue.tars.AdminF.OPERATIONS : null;
    if (!table) throw new InvalidCall("target must be \"calc\" or \"admin\"");
    var proxy = proxies[target];
    if (!proxy) throw new InvalidCall("no proxy for target " + target + (target === "admin" ? " (use --admin)" : " (use --proxy)"));
    var op = call.op;
    var args = call.args === undefined ? [] : call.args;
    if (!Array.isArray(args)) throw new InvalidCall("args must be an array");
    var desc = null;
    if (op !== "tars_ping") {
        if (typeof op !== "string" || !Object.prototype.hasOwnProperty.call(table, op)) {
            throw new InvalidCall("unknown op " + JSON.stringify(op) + " for target " + target);
        }
        desc = table[op];
    }
    var ins = desc ? desc.params.filter(function (p) { return !p.out; }) : [];
    if (args.length !== ins.length) {
        throw new InvalidCall(op + " takes " + ins.length + " argument(s), got " + args.length);
    }
    var values = ins.map(function (p, i) {
        try {
            return peer.fromJSON(p.type, args[i], p.name);
        } catch (e) {
            throw new InvalidCall(e.message);
        }
    });
    var property = {};
    if (call.context !== undefined) {
        if (call.context === null || typeof call.context !== "object") throw new InvalidCall("context must be an object");
        property.context = call.context;
    }
    if (call.oneway) property.packetType = 1;
    if (call.timeout !== undefined && !(call.timeout > 0)) throw new InvalidCall("timeout must be > 0");
    return { op: op, desc: desc, proxy: proxy, values: values, property: property, timeout: call.timeout };
}

function resultOf(p, data) {
    var out = { op: p.op, ok: true, ret: null, outs: {} };
    var r = data.response;
    if (p.op === "tars_ping") {
        var sb = r.sBuffer;
        out.sbuffer = sb ? sb.toNodeBufferUnSafe().toString("hex") : null;
        return out;
    }
    if (p.desc.ret) out.ret = peer.toJSON(p.desc.ret, r.return);
    p.desc.params.forEach(function (param) {
        if (param.out) out.outs[param.name] = peer.toJSON(param.type, r.arguments[param.name]);
    });
    return out;
}

function errorOf(p, e) {
    var err = e && e.response && e.response.error;
    if (err) {
        return { op: p.op, ok: false, code: err.code === undefined ? null : err.code,
                 message: err.message === undefined ? "" : String(err.message) };
    }
    return { op: p.op, ok: false, code: null, message: "client exception: " + (e && e.message ? e.message : String(e)) };
}

function runOne(call, proxies, defaultTimeout) {
    var p;
    try {
        p = prepare(call, proxies);
    } catch (e) {
        if (!(e instanceof InvalidCall)) throw e;
        var bad = { op: call && typeof call === "object" ? call.op : undefined, ok: false, code: null,
                    message: "invalid call: " + e.message };
        return Promise.resolve(bad);
    }
    p.proxy.setTimeout(p.timeout || defaultTimeout);
    var start = process.hrtime.bigint();
    var ms = function () { return Math.round(Number(process.hrtime.bigint() - start) / 1e3) / 1e3; };
    var invoke;
    try {
        invoke = p.proxy[p.op].apply(p.proxy, p.values.concat([p.property]));
    } catch (e) {
        var r = errorOf(p, e);
        r.ms = ms();
        return Promise.resolve(r);
    }
    return invoke.then(function (data) {
        var r = resultOf(p, data);
        r.ms = ms();
        return r;
    }, function (e) {
        var r = errorOf(p, e);
        r.ms = ms();
        return r;
    });
}

function main() {
    var opts = parseArgs(process.argv.slice(2));
    process.stdout.on("error", function () { process.exit(0); });
    var source = opts.calls !== null ? Promise.resolve(opts.calls) : readStdin();
    source.then(function (text) {
        var calls;
        try {
            calls = parseCalls(text);
        } catch (e) {
            usage("cannot parse the calls: " + e.message);
        }
        if (!Array.isArray(calls)) usage("the calls must be a JSON array");

        var comm = TarsRpc.Communicator.New();
        if (opts.locator) comm.setProperty("locator", opts.locator);
        var proxies = {};
        if (opts.proxy) proxies.calc = comm.stringToProxy(glue.Interop.CalcProxy, opts.proxy);
        if (opts.admin) proxies.admin = comm.stringToProxy(glue.tars.AdminFProxy, opts.admin);
        Object.keys(proxies).forEach(function (k) {
            proxies[k].setTimeout(opts.timeout);
            if (opts.tup) proxies[k].setVersion(opts.tup);
        });

        var chain = Promise.resolve();
        calls.forEach(function (call) {
            chain = chain.then(function () {
                return runOne(call, proxies, opts.timeout).then(function (r) {
                    process.stdout.write(JSON.stringify(r) + "\n");
                });
            });
        });
        return chain.then(function () {
            comm.destroy();
            // AdapterProxy.destroy closes its sockets only after a timer of one call timeout,
            // and @tars/registry keeps a communicator of its own: leave explicitly.
            process.stdout.write("", function () { process.exit(0); });
        });
    }).catch(function (e) {
        process.stderr.write("calc_client.js: " + (e && e.stack ? e.stack : String(e)) + "\n");
        process.exit(1);
    });
}

main();
