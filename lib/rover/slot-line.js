'use strict';

// The slot line a Callosum server sends first: ASCII digits then "\r\n"
// (docs/rover.md, step 4). A pure function of the bytes received so far, so
// it is tested without sockets and the attempt only feeds it.

/** Most digits accepted before the `\r\n`. */
const MAX_SLOT_DIGITS = 20;

const CR = 0x0d;
const LF = 0x0a;

/** @param {number} b */
const hex = (b) => `0x${b.toString(16).padStart(2, '0')}`;

/**
 * Parses the slot line from the bytes received so far.
 * Returns `{ slot, used }` when whole, `null` when more bytes are needed, or
 * `{ reason, message }` when the bytes can never make a valid line (`reason`:
 * 'not-digits', 'empty', 'too-long' or 'slot-too-large').
 * @param {Buffer} buf
 * @returns {{ slot: number, used: number } | { reason: string, message: string } | null}
 */
function parseSlotLine(buf) {
  const n = buf.length;
  for (let i = 0; i < n; i++) {
    const b = buf[i];
    if (b >= 0x30 && b <= 0x39) {
      if (i >= MAX_SLOT_DIGITS) {
        return { reason: 'too-long', message: `more than ${MAX_SLOT_DIGITS} digits before \\r\\n` };
      }
      continue;
    }
    if (b === CR) {
      if (i + 1 >= n) return null; // "\r" last: wait for the "\n"
      if (buf[i + 1] !== LF) {
        return { reason: 'not-digits', message: `\\r not followed by \\n (byte ${hex(buf[i + 1])})` };
      }
      if (i === 0) return { reason: 'empty', message: 'no digit before \\r\\n' };
      const slot = Number(buf.toString('latin1', 0, i));
      if (!Number.isSafeInteger(slot)) {
        return {
          reason: 'slot-too-large',
          message: `slot ${buf.toString('latin1', 0, i)} is beyond Number.MAX_SAFE_INTEGER`,
        };
      }
      return { slot, used: i + 2 };
    }
    return { reason: 'not-digits', message: `byte ${hex(b)} at offset ${i} is not a digit` };
  }
  return null;
}

module.exports = { parseSlotLine, MAX_SLOT_DIGITS };
