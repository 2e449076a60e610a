#!/usr/bin/env node
// Call TestApp.SayHello with TarsNode's @tars/rpc client (glue: sayhello_glue.js).
//
//   node client.js [--locator L] [--servant S | --proxy "S@tcp -h H -p P"] [NAME]
//
// The locator defaults to $TARS_LOCATOR, else the registry on 127.0.0.1:17890; the servant to
// TestApp.HelloNode.SayHelloObj (TestApp.HelloPy.SayHelloObj is the Python one).
"use strict";

var TarsRpc = require("@tars/rpc");
var glue = require("./sayhello_glue.js");

function option(argv, name, fallback) {
    for (var i = 0; i < argv.length; i++) {
        if (argv[i].indexOf(name + "=") === 0) return argv[i].slice(name.length + 1);
        if (argv[i] === name && i + 1 < argv.length) return argv[i + 1];
    }
    return fallback;
}

function positional(argv) {
    for (var i = 0; i < argv.length; i++) {
        if (argv[i].slice(0, 2) === "--") { if (argv[i].indexOf("=") < 0) i++; continue; }
        return argv[i];
    }
    return "world";
}

var argv = process.argv.slice(2);
var locator = option(argv, "--locator", process.env.TARS_LOCATOR ||
    "tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 17890");
var target = option(argv, "--proxy", option(argv, "--servant", "TestApp.HelloNode.SayHelloObj"));
var name = positional(argv);

var comm = TarsRpc.Communicator.New();
if (target.indexOf("@") < 0) comm.setProperty("locator", locator);
var hello = comm.stringToProxy(glue.TestApp.SayHelloProxy, target);
hello.setTimeout(3000);

hello.SayHello(name).then(function (greeting) {
    return hello.Add(1, 2).then(function (sum) {
        console.log(greeting.response.return + " (Add(1, 2) = " + sum.response.arguments.c + ")");
    });
}).then(function () {
    comm.destroy();
    process.exit(0);
}, function (e) {
    var err = e.response && e.response.error;
    console.error("call failed: " + (err ? err.code + " " + err.message : e.message));
    comm.destroy();
    process.exit(1);
});
