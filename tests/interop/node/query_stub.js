#!/usr/bin/env node
// query_stub.js: a static stand-in for tars.tarsregistry.QueryObj (QueryF, tars-protocol.md
// §4.2) on @tars/rpc, so that calc_client.js's --locator path can be exercised Node-to-Node
// without a registry. Not a registry: answers come from the command line only.
//
// Usage
//   node query_stub.js --endpoint "tcp -h 127.0.0.1 -p 0 -t 60000" \
//        --object "App.NodeServer.CalcObj=tcp -h 127.0.0.1 -p 40123 -t 60000" [--object ...] [--watch-stdin]
// Several --object options for the same name give several active endpoints.
//
// Answers (iRet 0): findObjectById -> active list; findObjectById4Any / 4All /
// InSameGroup -> ret 0, activeEp at tag 2, inactiveEp (empty) at tag 3; InSameStation /
// InSameSet -> ret 0, tags 3 and 4. An unknown id gets ret 0 and empty lists (what the
// TarsFramework registry answers), which @tars/rpc clients turn into a -13001 timeout.
// Prints {"ready":true,"endpoint":..,"servant":"tars.tarsregistry.QueryObj","proxy":..,"pid":..}
// once listening; the locator for clients is the "proxy" value.

"use strict";

var TarsRpc = require("@tars/rpc");
var TarsStream = require("@tars/stream");
var TarsError = TarsRpc.error;
var types = require("./interop_types.js");

var EndpointF = types.tars.EndpointF;
function newEpList() { return new TarsStream.List(EndpointF); }

function usage(message) {
    process.stderr.write("query_stub.js: " + message + "\n" +
        "usage: query_stub.js --endpoint EP --object NAME=EP [--object NAME=EP ...] [--watch-stdin]\n");
    process.exit(2);
}

var opts = { endpoint: null, objects: {}, watchStdin: false };
(function parseArgs(argv) {
    for (var i = 0; i < argv.length; i++) {
        var a = argv[i];
        if (a === "--watch-stdin") { opts.watchStdin = true; continue; }
        if (a !== "--endpoint" && a !== "--object") usage("unknown argument " + JSON.stringify(a));
        if (i + 1 >= argv.length) usage(a + " needs a value");
        var v = argv[++i];
        if (a === "--endpoint") { opts.endpoint = v; continue; }
        var eq = v.indexOf("=");
        if (eq <= 0) usage("--object wants NAME=ENDPOINT");
        var name = v.slice(0, eq).trim();
        (opts.objects[name] = opts.objects[name] || []).push(v.slice(eq + 1).trim());
    }
    if (!opts.endpoint) usage("--endpoint is required");
}(process.argv.slice(2)));
Object.keys(opts.objects).forEach(function (k) { opts.objects[k].forEach(parseEndpoint); });

// "tcp -h H -p P -t T" -> {proto, host, port, timeout}
function parseEndpoint(desc) {
    var words = desc.trim().split(/\s+/);
    var ep = { proto: words[0], host: "", port: 0, timeout: 3000 };
    for (var i = 1; i + 1 < words.length; i += 2) {
        if (words[i] === "-h") ep.host = words[i + 1];
        else if (words[i] === "-p") ep.port = parseInt(words[i + 1], 10);
        else if (words[i] === "-t") ep.timeout = parseInt(words[i + 1], 10);
    }
    if (!ep.host || !(ep.port > 0)) usage("bad endpoint " + JSON.stringify(desc));
    return ep;
}

function activeOf(id) {
    var list = newEpList();
    (opts.objects[id] || []).forEach(function (desc) {
        var ep = parseEndpoint(desc);
        var f = new EndpointF();
        f.host = ep.host;
        f.port = ep.port;
        f.timeout = ep.timeout;
        f.istcp = ep.proto === "udp" ? 0 : 1;
        f.groupworkid = -1;
        f.grouprealid = -1;
        f.weight = -1;
        list.push(f);
    });
    return list;
}

function reply(current, ret, activeTag, active) {
    var os = new TarsStream.TarsOutputStream();
    if (activeTag === 0) {
        os.writeList(0, active);
    } else {
        os.writeInt32(0, ret);
        os.writeList(activeTag, active);
        os.writeList(activeTag + 1, newEpList());
    }
    current.doResponse(os.getBinBuffer());
}

function QueryStubImp() {}
QueryStubImp.prototype.initialize = function () {};
QueryStubImp.prototype.onDispatch = function (current, funcName, binBuffer) {
    if (current.getRequestVersion() !== 1) return TarsError.SERVER.DECODE_ERROR;   // TARS only
    var is = new TarsStream.TarsInputStream(binBuffer);
    switch (funcName) {
        case "tars_ping":
            reply(current, 0, 0, newEpList());
            return TarsError.SUCCESS;
        case "findObjectById":
            reply(current, 0, 0, activeOf(is.readString(1, true, "")));
            return TarsError.SUCCESS;
        case "findObjectById4Any":
        case "findObjectById4All":
        case "findObjectByIdInSameGroup":
            reply(current, 0, 2, activeOf(is.readString(1, true, "")));
            return TarsError.SUCCESS;
        case "findObjectByIdInSameStation":
        case "findObjectByIdInSameSet":
            reply(current, 0, 3, activeOf(is.readString(1, true, "")));
            return TarsError.SUCCESS;
    }
    return TarsError.SERVER.FUNC_NOT_FOUND;
};

function main() {
    process.stdout.on("error", function () { process.exit(0); });
    process.on("SIGTERM", function () { process.exit(0); });
    process.on("SIGINT", function () { process.exit(0); });
    if (opts.watchStdin) {
        process.stdin.on("data", function () {});
        process.stdin.on("end", function () { process.exit(0); });
        process.stdin.on("error", function () { process.exit(0); });
    }
    var server = TarsRpc.server.createServer();
    var option = new TarsRpc.server.BindAdapterOption();
    option.endpoint = opts.endpoint;
    option.servant = "tars.tarsregistry.QueryObj";
    option.name = "tars.tarsregistry.QueryObjAdapter";
    option.handleImp = QueryStubImp;
    try {
        server.start(option);
    } catch (e) {
        process.stdout.write(JSON.stringify({ ready: false, error: e.message }) + "\n", function () { process.exit(1); });
        return;
    }
    var adapter = server._adapters[0];
    var listener = adapter._netthread._listener;
    listener.once("error", function (e) {
        process.stdout.write(JSON.stringify({ ready: false, error: e.message }) + "\n", function () { process.exit(1); });
    });
    listener.once("listening", function () {
        var ep = adapter.endpoint;
        var desc = "tcp -h " + ep.sHost + " -p " + listener.address().port + " -t " + ep.iTimeout;
        process.stdout.write(JSON.stringify({
            ready: true, endpoint: desc, servant: option.servant,
            proxy: option.servant + "@" + desc, pid: process.pid,
        }) + "\n");
    });
}

main();
