#!/usr/bin/env node
// registry_load.js: closed-loop load on a registry with TarsNode's @tars/rpc client.
//
// Usage
//   node registry_load.js --proxy "tars.tarsregistry.QueryObj@tcp -h H -p P" --call find
//                         --ids FILE --concurrency N --seconds S [--warmup S] [--timeout MS]
//                         [--connections K]
//   node registry_load.js --proxy "tars.tarsregistry.Registry@tcp -h H -p P" --call keepalive
//                         --ids FILE [--state active] ...
//   --call find       QueryF findObjectByIdInSameGroup(id) through the QueryF proxy shipped
//                     with @tars/registry (QueryFProxy.js); FILE holds one servant name a line;
//                     an answer is good when it returns 0 with at least one active endpoint
//   --call keepalive  K8STARS keepAlive(keepAliveReq): FILE holds "node application server"
//                     (whitespace-separated) a line; good when the call succeeds (iRet 0)
//   Each call picks a random line of FILE.
//   --concurrency     N calls kept in flight (N independent loops: call, await, call again)
//   --seconds         length of the measured window (default 1)
//   --warmup          run this long before measuring (default 0.5)
//   --timeout         per-call timeout in ms (default 3000)
//   --connections     TCP connections (stringToProxy option iTransPoolSize, default 1)
//
// Prints one JSON line, as rpc_load.js does:
//   {"calls":N,"errors":E,"seconds":S,"calls_per_s":R,"p50_ms":..,"p90_ms":..,"p99_ms":..,
//    "max_ms":..,"mean_ms":..,"call":"find","concurrency":N,"connections":K,"error_codes":{..}}

"use strict";

var drive = require("./closed_loop.js").drive;

var fs = require("fs");
var TarsRpc = require("@tars/rpc");
var TarsStream = require("@tars/stream");
var QueryFProxy = require("@tars/registry/QueryFProxy.js").tars.QueryFProxy;

function usage(message) {
    process.stderr.write("registry_load.js: " + message + "\n" +
        "usage: registry_load.js --proxy P --call find|keepalive --ids FILE --concurrency N " +
        "--seconds S [--warmup S] [--timeout MS] [--connections K] [--state STATE]\n");
    process.exit(2);
}

function parseArgs(argv) {
    var opts = { proxy: null, call: null, ids: null, concurrency: 1, seconds: 1, warmup: 0.5,
                 timeout: 3000, connections: 1, state: "active" };
    var numeric = ["concurrency", "seconds", "warmup", "timeout", "connections"];
    for (var i = 0; i < argv.length; i++) {
        var a = argv[i];
        if (a.slice(0, 2) !== "--") usage("unknown argument " + JSON.stringify(a));
        var key = a.slice(2), value;
        var eq = key.indexOf("=");
        if (eq > 0) { value = key.slice(eq + 1); key = key.slice(0, eq); }
        else {
            if (i + 1 >= argv.length) usage(a + " needs a value");
            value = argv[++i];
        }
        if (!(key in opts)) usage("unknown argument " + JSON.stringify(a));
        opts[key] = numeric.indexOf(key) >= 0 ? Number(value) : value;
    }
    if (!opts.proxy || opts.proxy.indexOf("@") < 0) usage("--proxy OBJ@ENDPOINT is required");
    if (opts.call !== "find" && opts.call !== "keepalive") usage("--call must be find or keepalive");
    if (!opts.ids) usage("--ids is required");
    if (!(Number.isInteger(opts.concurrency) && opts.concurrency >= 1 && opts.concurrency <= 100000)) usage("bad --concurrency");
    if (!(opts.seconds > 0 && opts.seconds <= 3600)) usage("bad --seconds");
    if (!(opts.warmup >= 0 && opts.warmup <= 3600)) usage("bad --warmup");
    if (!(opts.timeout > 0)) usage("bad --timeout");
    if (!(Number.isInteger(opts.connections) && opts.connections >= 1 && opts.connections <= 1024)) usage("bad --connections");
    return opts;
}

// The K8STARS Registry interface has no generated Node proxy: a minimal one for keepAlive.
var RegistryProxy = function () { this._name = undefined; this._worker = undefined; };
RegistryProxy.prototype.setTimeout = function (t) { this._worker.timeout = t; };
RegistryProxy.prototype.keepAlive = function (req) {
    var os = new TarsStream.TarsOutputStream();
    os.writeStruct(1, {
        _writeTo: function (s) {
            s.writeString(0, req.node);
            s.writeString(1, req.state);
            s.writeString(2, req.app);
            s.writeString(3, req.server);
        },
    });
    return this._worker.tars_invoke("keepAlive", os.getBinBuffer(), undefined);
};

function main() {
    var opts = parseArgs(process.argv.slice(2));
    process.stdout.on("error", function () { process.exit(0); });
    var lines = fs.readFileSync(opts.ids, "utf8").split("\n").map(function (s) { return s.trim(); })
        .filter(function (s) { return s.length > 0; });
    if (lines.length === 0) usage("--ids file is empty");

    var comm = TarsRpc.Communicator.New();
    var makeCall;
    var proxy;
    if (opts.call === "find") {
        proxy = comm.stringToProxy(QueryFProxy, opts.proxy, undefined,
                                   { iTransPoolSize: opts.connections });
        makeCall = function () {
            var id = lines[Math.floor(Math.random() * lines.length)];
            return proxy.findObjectByIdInSameGroup(id).then(function (d) {
                var r = d.response;
                return r.return === 0 && r.arguments.activeEp.value.length > 0;
            });
        };
    } else {
        var reqs = lines.map(function (line) {
            var f = line.split(/\s+/);
            return { node: f[0], app: f[1] || "", server: f[2] || "", state: opts.state };
        });
        proxy = comm.stringToProxy(RegistryProxy, opts.proxy, undefined,
                                   { iTransPoolSize: opts.connections });
        makeCall = function () {
            return proxy.keepAlive(reqs[Math.floor(Math.random() * reqs.length)])
                .then(function () { return true; });
        };
    }
    proxy.setTimeout(opts.timeout);

    drive(makeCall, opts).then(function (result) {
        result.call = opts.call;
        result.concurrency = opts.concurrency;
        result.connections = opts.connections;
        comm.destroy();
        process.stdout.write(JSON.stringify(result) + "\n", function () { process.exit(0); });
    }).catch(function (e) {
        process.stderr.write("registry_load.js: " + (e && e.stack ? e.stack : String(e)) + "\n");
        process.exit(1);
    });
}

main();
