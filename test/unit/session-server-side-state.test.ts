/**
 * ServerSideState's reported settings: the login's list is kept by reference and overlaid with what the
 * server reported later, so a blind reconnect restores the values the client last saw.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { trackedSnapshot } from '../../src/session/restore.js';
import { ServerSideState } from '../../src/session/server-side-state.js';

const login = new Map([
  ['server_version', '16.9'],
  ['application_name', 'psql'],
  ['TimeZone', 'UTC'],
  ['DateStyle', 'ISO, MDY'],
  ['integer_datetimes', 'on'],
]);

function statusBody(name: string, value: string): Buffer {
  return Buffer.from(`${name}\0${value}\0`);
}

test('the login settings count as reported, without the ones that are not restored', () => {
  const state = new ServerSideState();
  state.setBaseline(login);
  assert.deepEqual(state.reportedSettings(), [
    ['application_name', 'psql'],
    ['TimeZone', 'UTC'],
    ['DateStyle', 'ISO, MDY'],
  ]);
});

test('a later ParameterStatus replaces the login value, whatever the case of its name', () => {
  const state = new ServerSideState();
  state.setBaseline(login);
  state.noteParameterStatus(statusBody('timezone', 'Europe/Paris'));
  state.noteParameterStatus(statusBody('client_encoding', 'LATIN1'));
  state.noteParameterStatus(statusBody('server_version', '17.0'));
  assert.deepEqual(trackedSnapshot(state).settings, [
    ['application_name', 'psql'],
    ['timezone', 'Europe/Paris'],
    ['DateStyle', 'ISO, MDY'],
    ['client_encoding', 'LATIN1'],
  ]);
  assert.equal(login.get('TimeZone'), 'UTC', 'the login list itself is not changed');
});

test('a new baseline forgets the changes noted on the old one', () => {
  const state = new ServerSideState();
  state.setBaseline(login);
  state.noteSetting('application_name', 'other');
  state.setBaseline(new Map([['application_name', 'fresh']]));
  assert.deepEqual(state.reportedSettings(), [['application_name', 'fresh']]);
});

test('SET ROLE marks the role and the unreported settings as changed; a column named role does not', () => {
  for (const sql of [
    'SET ROLE reader',
    'set session role reader',
    'RESET ROLE',
    "select set_config('role', 'x', false)",
  ]) {
    const state = new ServerSideState();
    state.noteStatement(sql);
    assert.equal(state.roleMayDiffer, true, sql);
    assert.equal(state.rebuildable, false, `${sql}: no blind reconnect`);
  }
  const state = new ServerSideState();
  state.noteStatement('select role, name from members where role = $1');
  assert.equal(state.roleMayDiffer, false);
  assert.equal(state.rebuildable, true);
});
