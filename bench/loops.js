'use strict';

// One loop function per implementation, compiled separately, so that each has
// its own type feedback and no call site in the timed loop goes polymorphic.
const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;
const loopCache = new Map();
function loopFor(kind, name) {
  const key = `${kind}:${name}`;
  if (!loopCache.has(key)) {
    const tag = `// ${key}\n`;
    let fn;
    if (kind === 'sync') {
      fn = new Function(
        'pool',
        'n',
        `${tag}for (let i = 0; i < n; i++) { const s = pool.getConnection(); pool.returnConnection(s); }`,
      );
    } else if (kind === 'burst') {
      fn = new Function(
        'pool',
        'n',
        'held',
        'order',
        `${tag}
        const burst = held.length;
        for (let i = 0; i < n; i += burst) {
          for (let j = 0; j < burst; j++) held[j] = pool.getConnection();
          for (let j = 0; j < burst; j++) pool.returnConnection(held[order[j]]);
        }`,
      );
    } else if (kind === 'gp') {
      fn = new AsyncFunction(
        'pool',
        'n',
        `${tag}for (let i = 0; i < n; i++) { const s = await pool.acquire(); pool.release(s); }`,
      );
    } else if (kind === 'acquire') {
      fn = new AsyncFunction(
        'pool',
        'n',
        `${tag}for (let i = 0; i < n; i++) { const s = await pool.acquire(); pool.returnConnection(s); }`,
      );
    } else if (kind === 'contended') {
      const release = name === 'generic-pool' ? 'release' : 'returnConnection';
      fn = new AsyncFunction(
        'pool',
        'state',
        'immediate',
        `${tag}while (state.left > 0) { state.left--; const s = await pool.acquire(); await immediate(); pool.${release}(s); }`,
      );
    } else if (kind === 'churn') {
      fn = new Function(
        'pool',
        'ops',
        'slots',
        'offers',
        'held',
        'maxHeld',
        `${tag}
        let next = 0;
        for (let i = 0; i < ops.length; i++) {
          let op = ops[i];
          if (op === 1 && held.length >= maxHeld) op = 2;
          else if (op === 2 && held.length === 0) op = 1;
          if (op === 0) {
            pool.newConnection(slots[i], offers[next++]);
          } else if (op === 1) {
            const s = pool.getConnection();
            if (s !== undefined) held.push(s);
          } else if (op === 2) {
            pool.returnConnection(held.shift());
          } else if (held.length > 0) {
            const s = held.shift();
            s.emit('close');
            pool.returnConnection(s);
          }
        }
        return next;`,
      );
    } else {
      throw new Error(kind);
    }
    loopCache.set(key, fn);
  }
  return loopCache.get(key);
}

module.exports = { loopFor };
