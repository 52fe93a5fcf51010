import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { regionFromEndpoint } from '../../src/config/index.js';

describe('regionFromEndpoint', () => {
  it('uses the AWS connectors pattern', () => {
    assert.equal(regionFromEndpoint('abc.dsql.us-east-1.on.aws'), 'us-east-1');
    assert.equal(regionFromEndpoint('abc.dsql-fnh4.eu-west-2.on.aws'), 'eu-west-2');
    assert.equal(regionFromEndpoint('ABC.DSQL.AP-SOUTH-1.ON.AWS'), 'ap-south-1');
    assert.equal(regionFromEndpoint('abc.dsql.us-east-1.on.aws.evil.com'), undefined);
    assert.equal(regionFromEndpoint('db.example.com'), undefined);
  });
});
