import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  constantTimeEqual,
  isMd5Secret,
  md5Response,
  md5Secret,
  verifyMd5Password,
  verifyMd5Response,
} from '../../src/auth/md5.js';

// Computed independently (Python hashlib): 'md5' + md5('password' + 'user'), then the salted response.
const SECRET = 'md54d45974e13472b5a0be3533de4666414';
const SALT = Buffer.from([1, 2, 3, 4]);
const RESPONSE = 'md5a3576f1ae039b8996bc4fc2720f9c71a';

describe('md5', () => {
  it('computes the stored secret as PostgreSQL does', () => {
    assert.equal(md5Secret('password', 'user'), SECRET);
    assert.notEqual(md5Secret('password', 'other'), SECRET); // the user name salts the hash
  });

  it('computes and verifies the salted response', () => {
    assert.equal(md5Response(SECRET, SALT), RESPONSE);
    assert.equal(verifyMd5Response(SECRET, SALT, RESPONSE), true);
    assert.equal(verifyMd5Response(SECRET, Buffer.from([1, 2, 3, 5]), RESPONSE), false);
    assert.equal(verifyMd5Response(SECRET, SALT, RESPONSE.toUpperCase()), false);
    assert.equal(verifyMd5Response(SECRET, SALT, ''), false);
  });

  it('verifies a cleartext password against an md5 secret', () => {
    assert.equal(verifyMd5Password('password', 'user', SECRET), true);
    assert.equal(verifyMd5Password('Password', 'user', SECRET), false);
    assert.equal(verifyMd5Password('password', 'usr', SECRET), false);
  });

  it('recognises only md5 + 32 lowercase hex digits', () => {
    assert.equal(isMd5Secret(SECRET), true);
    assert.equal(isMd5Secret(SECRET.toUpperCase()), false);
    assert.equal(isMd5Secret(SECRET.slice(0, -1)), false);
    assert.equal(isMd5Secret(`${SECRET}0`), false);
    assert.equal(isMd5Secret(SECRET.replace('md5', 'md6')), false);
  });

  it('compares strings of any length without throwing', () => {
    assert.equal(constantTimeEqual('abc', 'abc'), true);
    assert.equal(constantTimeEqual('abc', 'abcd'), false);
    assert.equal(constantTimeEqual('', ''), true);
  });
});
