'use strict';

// callosum-client-tcp: `require('callosum-client-tcp')` is the pool
// constructor itself, as in the original module.

const { CallosumClient } = require('./lib/client.js');
const Rover = require('./lib/rover.js');

module.exports = CallosumClient;
CallosumClient.CallosumClient = CallosumClient;
CallosumClient.default = CallosumClient;
CallosumClient.Rover = Rover;
