'use strict';

// callosum-client-tcp: `require('callosum-client-tcp')` is the pool
// constructor itself, as in the original module.

const { CallosumClient } = require('./lib/client.js');
const Rover = require('./lib/rover/index.js');

module.exports = Object.assign(CallosumClient, { CallosumClient, default: CallosumClient, Rover });
