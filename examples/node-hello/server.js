#!/usr/bin/env node
// TestApp.HelloNode: the SayHello servant of SayHello.tars on TarsNode's @tars/rpc.
//
//   node server.js --config=$TARS_PATH/conf/HelloNode.conf      (what start.sh runs)
//
// Nothing here knows about Kubernetes or k8stars: @tars/rpc reads the adapters (the
// sub-domains of <tars><application><server>) and the <client> section from the TARS config
// file that `tarscli genconf` wrote, as it does under tarsnode. The one extra is AdminObj on
// the `local` endpoint, which @tars/node-agent serves for TarsNode services on a TARS node:
// tarscli checks that endpoint and sends `prestop` and `shutdown` there.
"use strict";

var path = require("path");
var TarsRpc = require("@tars/rpc");
var glue = require("./sayhello_glue.js");

var RPC_VERSION = require("@tars/rpc/package.json").version;

function log(message) {
    process.stdout.write(new Date().toISOString() + " " + message + "\n");
}

function fail(message) {
    process.stderr.write("server.js: " + message + "\n");
    process.exit(1);
}

function configPath(argv) {
    for (var i = 0; i < argv.length; i++) {
        if (argv[i].indexOf("--config=") === 0) return argv[i].slice("--config=".length);
        if (argv[i] === "--config" && i + 1 < argv.length) return argv[i + 1];
    }
    return null;
}

// ---- the servant ---------------------------------------------------------------------------
function SayHelloImp() {
    glue.TestApp.SayHelloImp.call(this);
}
SayHelloImp.prototype = Object.create(glue.TestApp.SayHelloImp.prototype);
SayHelloImp.prototype.constructor = SayHelloImp;

SayHelloImp.prototype.SayHello = function (current, name) {
    current.sendResponse("hello " + name);
};

SayHelloImp.prototype.Add = function (current, a, b) {
    current.sendResponse(0, (a + b) | 0);
};

// Implementations by object name (the last part of the servant name App.Server.Obj).
var SERVANTS = { SayHelloObj: SayHelloImp };

// ---- AdminObj ------------------------------------------------------------------------------
var server = null;
var stopping = false;

function stop(code) {
    if (stopping) return;
    stopping = true;
    log("stopping");
    try { if (server) server.stop(); } catch (e) { /* already closed */ }
    setTimeout(function () { process.exit(code); }, 20);
}

function AdminImp() {
    glue.tars.AdminFImp.call(this);
}
AdminImp.prototype = Object.create(glue.tars.AdminFImp.prototype);
AdminImp.prototype.constructor = AdminImp;

AdminImp.prototype.notify = function (current, command) {
    log("AdminObj.notify: " + command);
    switch (command.split(" ")[0]) {
        case "prestop":
            // The registry stops handing out this replica; calls still arrive for a while.
            return current.sendResponse("prestop: draining");
        case "tars.viewversion":
            return current.sendResponse("@tars/rpc " + RPC_VERSION);
        case "tars.viewstatus":
            return current.sendResponse("app: " + server.Application + "\nserver: " +
                server.ServerName + "\npid: " + process.pid + "\nuptime: " +
                process.uptime().toFixed(1) + "s");
        default:
            return current.sendResponse(command + " not support now!");
    }
};

AdminImp.prototype.shutdown = function (current) {
    log("AdminObj.shutdown");
    current.sendResponse();
    setTimeout(function () { stop(0); }, 10);
};

// ---- start-up ------------------------------------------------------------------------------
function main() {
    var file = configPath(process.argv.slice(2));
    if (!file) fail("usage: node server.js --config=FILE (the file tarscli genconf writes)");
    file = path.resolve(file);
    process.on("SIGTERM", function () { log("received SIGTERM"); stop(0); });
    process.on("SIGINT", function () { log("received SIGINT"); stop(0); });

    server = new TarsRpc.server();
    server.initialize(file, function (svr) {
        var conf = svr.configure;
        conf.getDomain("tars.application.server").forEach(function (adapter) {
            var settings = conf.get("tars.application.server.<" + adapter + ">");
            var obj = String(settings.servant).split(".").pop();
            if (settings.protocol !== "tars") fail("adapter " + adapter + ": protocol " + settings.protocol + " is not served here");
            if (!SERVANTS[obj]) fail("adapter " + adapter + ": no implementation for " + settings.servant);
            svr.addServant(SERVANTS[obj], settings.servant);
            log("serving " + settings.servant + " on " + settings.endpoint);
        });
    });

    var admin = null;
    var local = server.configure.get("tars.application.server.local", "");
    if (local) {
        admin = new TarsRpc.server.BindAdapterOption();
        admin.endpoint = local;
        admin.servant = "AdminObj";
        admin.name = "AdminAdapter";
        admin.handleImp = AdminImp;
        log("serving AdminObj on " + local);
    }
    server.start(admin);
    log(server.Application + "." + server.ServerName + " started (pid " + process.pid + ", @tars/rpc " + RPC_VERSION + ")");
}

main();
