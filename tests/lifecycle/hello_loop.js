#!/usr/bin/env node
// Call TestApp.HelloPy.SayHelloObj through the registry in a loop with TarsNode's client.
//   node hello_loop.js LOCATOR SERVANT REFRESH_MS
// On SIGTERM prints {"ok": N, "failed": M} and exits. Endpoint refresh: @tars/rpc hard-codes
// 60 s in EndpointManager's constructor; a prototype accessor makes it REFRESH_MS instead.
"use strict";
var fs = require("fs");
var path = require("path");
var hello = path.resolve(__dirname, "../../examples/node-hello");
// the example's own node_modules when `npm ci` ran there, else the interop tests' copy
var modules = path.join(hello, "node_modules");
if (!fs.existsSync(path.join(modules, "@tars/rpc"))) {
  modules = path.resolve(__dirname, "../interop/node/node_modules");
}
var TarsRpc = require(path.join(modules, "@tars/rpc"));
var EM = require(path.join(modules, "@tars/rpc/core/client/EndpointManager.js"));
var glue = require(path.join(hello, "sayhello_glue.js"));

var locator = process.argv[2], servant = process.argv[3];
var refresh = parseInt(process.argv[4] || "1000", 10);
var proto = (EM.prototype || (EM.EndpointManager && EM.EndpointManager.prototype));
if (proto) {
    Object.defineProperty(proto, "_iRefreshInterval", {
        get: function () { return refresh; }, set: function () {}, configurable: true });
}
var comm = TarsRpc.Communicator.New();
comm.setProperty("locator", locator);
var proxy = comm.stringToProxy(glue.TestApp.SayHelloProxy, servant);
proxy.setTimeout(3000);
var ok = 0, failed = 0, stop = false, errors = {};

function loop() {
    if (stop) return;
    proxy.SayHello("node").then(function () { ok++; }, function (e) {
        failed++;
        var err = e.response && e.response.error;
        var key = err ? String(err.code) : String(e.message);
        errors[key] = (errors[key] || 0) + 1;
    }).then(function () { setTimeout(loop, 10); });
}
process.on("SIGTERM", function () {
    stop = true;
    process.stdout.write(JSON.stringify({ ok: ok, failed: failed, errors: errors }) + "\n");
    comm.destroy();
    process.exit(0);
});
setInterval(function () {
    process.stderr.write(JSON.stringify({ ok: ok, failed: failed }) + "\n");
}, 1000);
loop();
