'use strict';

// The rover now lives in lib/rover/ (issue 19); this file re-exports it so
// that `require('./lib/rover.js')` (index.js, lib/client.js's rove(),
// typecheck.cts, fixtures) keeps working until those requires change.

module.exports = require('./rover/index.js');
