// The one parser for numbers, sizes, durations and bandwidths that every flag uses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseBandwidth,
  parseDuration,
  parseInteger,
  parseSize,
  QuantityError,
} from '../../src/util/quantity.js';
import { duration, integer, seconds, size, wholeSize } from '../../src/cli/options.js';

test('whole numbers: digits only, within bounds', () => {
  assert.equal(parseInteger('30'), 30);
  assert.equal(parseInteger(' 7 ', 1, 10), 7);
  for (const bad of ['abc', '', '1.5', '-1', '1e3', '0x10', '99999999999999999999'])
    assert.throws(() => parseInteger(bad, 0), QuantityError, bad);
  assert.throws(() => parseInteger('0', 1), /at least 1/);
  assert.throws(() => parseInteger('101', 0, 100), /in 0\.\.100/);
});

test("sizes are binary, a bare number is the flag's own unit", () => {
  assert.equal(parseSize('256', 'MiB'), 256);
  assert.equal(parseSize('256M', 'MiB'), 256);
  assert.equal(parseSize('1G', 'MiB'), 1024);
  assert.equal(parseSize('1GiB', 'MiB'), 1024);
  assert.equal(parseSize('1.5g', 'MiB'), 1536);
  assert.equal(parseSize('512K', 'MiB'), 0.5);
  assert.equal(parseSize('4096', 'B'), 4096);
  assert.equal(parseSize('4k', 'B'), 4096);
  assert.equal(parseSize('2 MB', 'KiB'), 2048);
  for (const bad of ['', 'M', '0', '-1M', '12Q', 'NaN', 'Infinity', '1e3M', '256 M B'])
    assert.throws(() => parseSize(bad, 'MiB'), /expected a size such as 256M/, bad);
});

test("durations: ms, s, m, h, d; a bare number is the flag's own unit", () => {
  assert.equal(parseDuration('20', 'ms'), 20);
  assert.equal(parseDuration('20ms', 'ms'), 20);
  assert.equal(parseDuration('0.5s', 'ms'), 500);
  assert.equal(parseDuration('5s', 's'), 5);
  assert.equal(parseDuration('600', 's'), 600);
  assert.equal(parseDuration('10m', 's'), 600);
  assert.equal(parseDuration('1h', 's'), 3600);
  assert.equal(parseDuration('1d', 's'), 86400);
  assert.equal(parseDuration('500us', 'ms'), 0.5);
  assert.equal(parseDuration('0', 's', { allowZero: true }), 0);
  for (const bad of ['', 'abc', '0', '-5s', '5x', '5 s s', 's'])
    assert.throws(() => parseDuration(bad, 'ms'), /expected a duration such as 20ms/, bad);
});

test('bandwidths are decimal: b is bits, B bytes; a bare number is bytes per second', () => {
  assert.equal(parseBandwidth('100Mbit'), 12.5e6);
  assert.equal(parseBandwidth('1Gbit/s'), 125e6);
  assert.equal(parseBandwidth('12.5MB'), 12.5e6);
  assert.equal(parseBandwidth('100Mb'), 12.5e6);
  assert.equal(parseBandwidth('800k'), 800e3);
  assert.equal(parseBandwidth('1000'), 1000);
  assert.equal(parseBandwidth('10mbps'), 1.25e6); // megabits
  for (const bad of ['', 'fast', '0', '0Mbit', '-1Mbit', '100Tbit'])
    assert.throws(() => parseBandwidth(bad), /expected a bandwidth such as 100Mbit/, bad);
});

test('the commander wrappers refuse as commander does and keep the units of each flag', () => {
  assert.equal(size('MiB')('1G'), 1024);
  assert.equal(wholeSize('MiB')('256M'), 256);
  assert.throws(() => wholeSize('MiB')('512K'), /whole number of MiB/);
  assert.equal(seconds()('10m'), 600);
  assert.throws(() => seconds()('1500ms'), /whole seconds/);
  assert.throws(() => seconds({ max: 60 })('2m'), /at most 60 s/);
  assert.equal(duration('ms', { max: 60_000 })('2s'), 2000);
  assert.equal(integer(0, 100)('4'), 4);
  assert.throws(() => integer(1)('abc'), { code: 'commander.invalidArgument' });
});

test('the node daemon takes sizes and durations in the same forms (its own small parsers)', async () => {
  const { mib, secs } = await import('../../src/host/node-options.js');
  assert.equal(mib('4096'), 4096);
  assert.equal(mib('4G'), 4096);
  assert.equal(mib('512M'), 512);
  assert.equal(secs('10'), 10);
  assert.equal(secs('5min'), 300);
  assert.equal(secs('1h'), 3600);
  for (const bad of ['', '4T', '1.5G', '-1', 'ten', '4constructor'])
    assert.throws(() => mib(bad), /expected MiB/);
  for (const bad of ['', '1d', '0.5s', 'x']) assert.throws(() => secs(bad), /expected seconds/);
});
