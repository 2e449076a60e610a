// A closed-loop load driver shared by rpc_load.js and registry_load.js: N independent loops
// (call, wait, call again) driven by callbacks, so that no promise chain grows with the number of
// calls; latencies of calls started after the warm-up and finished before the end are kept.
"use strict";

var now = function () { return Number(process.hrtime.bigint()) / 1e6; };   // ms

function percentile(sorted, p) {
    if (sorted.length === 0) return null;
    var idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1));
    return sorted[idx];
}

function round3(x) { return x === null ? null : Math.round(x * 1000) / 1000; }

// makeCall() returns a promise of true (a good answer) or false (a wrong one).
// opts: concurrency, seconds, warmup (s). Resolves to the figures of the measured window.
function drive(makeCall, opts) {
    var mStart = now() + opts.warmup * 1000;
    var mEnd = mStart + opts.seconds * 1000;
    var lat = [];
    var errors = 0;
    var errorCodes = {};

    function countError(code) {
        errors++;
        var key = String(code);
        errorCodes[key] = (errorCodes[key] || 0) + 1;
    }

    return new Promise(function (finished) {
        var active = opts.concurrency;

        function next() {
            if (now() >= mEnd) {
                if (--active === 0) finished();
                return;
            }
            var start = now();
            makeCall().then(function (good) {
                var end = now();
                if (start >= mStart && end <= mEnd) {
                    if (good) lat.push(end - start);
                    else countError("mismatch");
                }
                next();
            }, function (e) {
                var end = now();
                if (start >= mStart && end <= mEnd) {
                    var err = e && e.response && e.response.error;
                    countError(err && err.code !== undefined ? err.code : "exception");
                }
                next();
            });
        }

        for (var c = 0; c < opts.concurrency; c++) next();
    }).then(function () {
        lat.sort(function (a, b) { return a - b; });
        var sum = 0;
        for (var j = 0; j < lat.length; j++) sum += lat[j];
        return {
            calls: lat.length,
            errors: errors,
            seconds: opts.seconds,
            calls_per_s: Math.round(lat.length / opts.seconds * 10) / 10,
            p50_ms: round3(percentile(lat, 50)),
            p90_ms: round3(percentile(lat, 90)),
            p99_ms: round3(percentile(lat, 99)),
            max_ms: round3(lat.length ? lat[lat.length - 1] : null),
            mean_ms: round3(lat.length ? sum / lat.length : null),
            error_codes: errorCodes,
        };
    });
}

module.exports = { drive: drive, now: now };
