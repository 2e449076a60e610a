#!/usr/bin/env node
// rpc_load.js: closed-loop load generator on TarsNode's @tars/rpc client (glue: calc_glue.js).
//
// Usage
//   node rpc_load.js --proxy "App.NodeServer.CalcObj@tcp -h H -p P" --call add|echo4k
//                    --concurrency N --seconds S [--warmup S] [--timeout MS]
//                    [--connections K] [--locator L]
//   --call add      add(i, 1) with a rolling i; the answer must be i + 1
//   --call echo4k   echo(<4096-byte ASCII string>); the answer must be the same string
//   --concurrency   N calls kept in flight (N independent loops: call, await, call again)
//   --seconds       length of the measured window (default 1)
//   --warmup        run this long before measuring (default 0.5; calls started during the
//                   warm-up are not counted)
//   --timeout       per-call timeout in ms (default 3000)
//   --connections   TCP connections per endpoint (stringToProxy option iTransPoolSize;
//                   @tars/rpc's default is 1: every call of the proxy shares one connection)
//   --locator       resolve an object name (no '@') through this registry
//
// Prints one JSON line:
//   {"calls":N,"errors":E,"seconds":S,"calls_per_s":R,"p50_ms":..,"p90_ms":..,"p99_ms":..,
//    "max_ms":..,"mean_ms":..,"call":"add","concurrency":N,"connections":K,"error_codes":{"-13001":3}}
// calls = successful calls that started and finished inside the measured window; errors =
// failed (or wrong-answer, code "mismatch") calls that finished inside it; latency percentiles
// are over the successful calls; calls_per_s = calls / seconds; connections = TCP connections
// the proxy had open at the end.

"use strict";

var drive = require("./closed_loop.js").drive;

var TarsRpc = require("@tars/rpc");
var glue = require("./calc_glue.js");

function usage(message) {
    process.stderr.write("rpc_load.js: " + message + "\n" +
        "usage: rpc_load.js --proxy P --call add|echo4k --concurrency N --seconds S [--warmup S] " +
        "[--timeout MS] [--connections K] [--locator L]\n");
    process.exit(2);
}

function parseArgs(argv) {
    var opts = { proxy: null, call: null, concurrency: 1, seconds: 1, warmup: 0.5, timeout: 3000,
                 connections: 1, locator: null };
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
            case "--call": opts.call = value(); break;
            case "--concurrency": opts.concurrency = Number(value()); break;
            case "--seconds": opts.seconds = Number(value()); break;
            case "--warmup": opts.warmup = Number(value()); break;
            case "--timeout": opts.timeout = Number(value()); break;
            case "--connections": opts.connections = Number(value()); break;
            case "--locator": opts.locator = value(); break;
            default: usage("unknown argument " + JSON.stringify(a));
        }
    }
    if (!opts.proxy) usage("--proxy is required");
    if (opts.call !== "add" && opts.call !== "echo4k") usage("--call must be add or echo4k");
    if (!(Number.isInteger(opts.concurrency) && opts.concurrency >= 1 && opts.concurrency <= 100000)) usage("bad --concurrency");
    if (!(opts.seconds > 0 && opts.seconds <= 3600)) usage("bad --seconds");
    if (!(opts.warmup >= 0 && opts.warmup <= 3600)) usage("bad --warmup");
    if (!(opts.timeout > 0)) usage("bad --timeout");
    if (!(Number.isInteger(opts.connections) && opts.connections >= 1 && opts.connections <= 1024)) usage("bad --connections");
    if (opts.proxy.indexOf("@") < 0 && !opts.locator) usage("an object name without '@' needs --locator");
    return opts;
}

function openConnections(proxy) {
    var n = 0;
    proxy._worker._manager.getAllAdapters().forEach(function (adapter) {
        adapter._vTrans.forEach(function (t) { if (t.hasConnected()) n++; });
    });
    return n;
}

function main() {
    var opts = parseArgs(process.argv.slice(2));
    process.stdout.on("error", function () { process.exit(0); });

    var comm = TarsRpc.Communicator.New();
    if (opts.locator) comm.setProperty("locator", opts.locator);
    var proxy = comm.stringToProxy(glue.Interop.CalcProxy, opts.proxy, undefined,
                                   { iTransPoolSize: opts.connections });
    proxy.setTimeout(opts.timeout);

    var payload = "";
    if (opts.call === "echo4k") {
        var chars = "abcdefghijklmnopqrstuvwxyz0123456789";
        for (var k = 0; k < 4096; k++) payload += chars[k % chars.length];
    }
    var seq = 0;
    var makeCall = opts.call === "add"
        ? function () {
            var i = seq = (seq + 1) % 1000000000;
            return proxy.add(i, 1).then(function (d) { return d.response.return === i + 1; });
        }
        : function () {
            return proxy.echo(payload).then(function (d) { return d.response.return === payload; });
        };

    drive(makeCall, opts).then(function (result) {
        result.call = opts.call;
        result.concurrency = opts.concurrency;
        result.connections = openConnections(proxy);
        comm.destroy();
        process.stdout.write(JSON.stringify(result) + "\n", function () { process.exit(0); });
    }).catch(function (e) {
        process.stderr.write("rpc_load.js: " + (e && e.stack ? e.stack : String(e)) + "\n");
        process.exit(1);
    });
}

main();
