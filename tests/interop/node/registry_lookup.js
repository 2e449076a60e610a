#!/usr/bin/env node
// registry_lookup.js: QueryF lookups with @tars/registry, the npm client of the TARS registry
// (it sends context node_name = this machine's address, as TarsNode servers do).
//
// Usage
//   node registry_lookup.js --locator "tars.tarsregistry.QueryObj@tcp -h H -p P" \
//        --id App.Server.Obj [--method findObjectById|findObjectById4Any|findObjectById4All|
//        findObjectByIdInSameGroup|findObjectByIdInSameSet|findObjectByIdInSameStation]
//        [--arg SET_OR_STATION]
// Prints one JSON line:
//   {"ok":true,"ret":0,"active":[{"host":..,"port":..,"timeout":..,"istcp":..,"setId":..,
//    "nodeName":..}],"inactive":[...]}            (findObjectById: "ret" is null)
//   {"ok":false,"code":-13001,"message":".."}      (RPC failure)
// Exit status 0 after printing, 2 on usage errors.

"use strict";

var registry = require("@tars/registry");

function usage(message) {
    process.stderr.write("registry_lookup.js: " + message + "\n" +
        "usage: registry_lookup.js --locator L --id ID [--method M] [--arg A]\n");
    process.exit(2);
}

var METHODS = ["findObjectById", "findObjectById4Any", "findObjectById4All",
    "findObjectByIdInSameGroup", "findObjectByIdInSameSet", "findObjectByIdInSameStation"];

var opts = { locator: null, id: null, method: "findObjectById", arg: null };
(function parseArgs(argv) {
    for (var i = 0; i < argv.length; i++) {
        var key = argv[i];
        if (["--locator", "--id", "--method", "--arg"].indexOf(key) < 0) usage("unknown argument " + JSON.stringify(key));
        if (i + 1 >= argv.length) usage(key + " needs a value");
        opts[key.slice(2)] = argv[++i];
    }
    if (!opts.locator || !opts.id) usage("--locator and --id are required");
    if (METHODS.indexOf(opts.method) < 0) usage("unknown method " + opts.method);
    var needsArg = opts.method === "findObjectByIdInSameSet" || opts.method === "findObjectByIdInSameStation";
    if (needsArg && opts.arg === null) usage(opts.method + " needs --arg");
})(process.argv.slice(2));

function endpoints(list) {
    var items = list && list.value ? list.value : [];
    return items.map(function (ep) {
        return { host: ep.host, port: ep.port, timeout: ep.timeout, istcp: ep.istcp,
                 setId: ep.setId, nodeName: ep.nodeName };
    });
}

function done(result) {
    process.stdout.write(JSON.stringify(result) + "\n");
    process.exit(0);
}

registry.setLocator(opts.locator);
var args = [opts.id];
if (opts.arg !== null) args.push(opts.arg);
var call;
try {
    call = registry[opts.method].apply(registry, args);
} catch (e) {
    done({ ok: false, code: null, message: "client exception: " + (e && e.message ? e.message : String(e)) });
}
call.then(function (data) {
    var r = data.response;
    if (opts.method === "findObjectById") {
        done({ ok: true, ret: null, active: endpoints(r.return), inactive: [] });
    } else {
        done({ ok: true, ret: r.return, active: endpoints(r.arguments.activeEp),
               inactive: endpoints(r.arguments.inactiveEp) });
    }
}, function (e) {
    var err = e && e.response && e.response.error;
    done({ ok: false, code: err && err.code !== undefined ? err.code : null,
           message: err && err.message !== undefined ? String(err.message) : String(e) });
});
