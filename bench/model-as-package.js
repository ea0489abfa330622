'use strict';

// Preload (node --require) that makes `require('..')` inside __test__/ load the
// model of the original (__test__/fixtures/original-0.1.5-model.js) instead of
// this package, so that the package's own tests can be run against the model:
//   node --require ./bench/model-as-package.js --test __test__/contract.test.js
// Used by __test__/original-model.test.js and defects-on-original.test.js (a
// test fixture: it belongs in __test__/fixtures/, but those tests name this
// path in their spawn arguments, which are not this file's owner's to edit).

const Module = require('module');
const path = require('path');

const testDir = path.join(__dirname, '..', '__test__');
const model = path.join(testDir, 'fixtures', 'original-0.1.5-model.js');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, parent, ...rest) {
  if ((request === '..' || request === '../' || request === '../index.js') && parent && parent.filename &&
      path.dirname(parent.filename) === testDir) {
    return model;
  }
  return resolve.call(this, request, parent, ...rest);
};
