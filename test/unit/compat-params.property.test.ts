/**
 * SessionParams against a reference model of PostgreSQL's GUC stack for one variable: random sequences
 * of SET / SET LOCAL / RESET / set_config / BEGIN / COMMIT / ROLLBACK must leave the same value.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SessionParams } from '../../src/compat/params.js';
import { runs } from './property-helpers.js';

type Op =
  | { op: 'set'; ms: number; local: boolean; viaConfig: boolean }
  | { op: 'reset'; local: boolean }
  | { op: 'reset-all' }
  | { op: 'begin' }
  | { op: 'end'; committed: boolean };

/**
 * The model, written from the documentation rather than from guc.c's states: at the end of a
 * transaction, rollback restores the value it started with; commit keeps the value of the last
 * non-LOCAL SET (RESET and RESET ALL count as SET) made in it, or else restores the starting value.
 * SET LOCAL outside a transaction does nothing; inside, it changes the value seen until the end.
 */
class Model {
  value: number;
  private start: number | undefined;
  private lastSet: number | undefined;
  constructor(readonly resetValue: number) {
    this.value = resetValue;
  }
  get inTransaction(): boolean {
    return this.start !== undefined;
  }
  apply(op: Op): void {
    if (op.op === 'begin') {
      if (!this.inTransaction) this.start = this.value;
      return;
    }
    if (op.op === 'end') {
      if (this.start === undefined) return;
      this.value = op.committed && this.lastSet !== undefined ? this.lastSet : this.start;
      this.start = undefined;
      this.lastSet = undefined;
      return;
    }
    const target = op.op === 'set' ? op.ms : this.resetValue;
    const local = op.op !== 'reset-all' && op.local;
    if (local && !this.inTransaction) return;
    this.value = target;
    if (!local && this.inTransaction) this.lastSet = target;
  }
}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('set' as const),
    ms: fc.integer({ min: 0, max: 100_000 }),
    local: fc.boolean(),
    viaConfig: fc.boolean(),
  }),
  fc.record({ op: fc.constant('reset' as const), local: fc.boolean() }),
  fc.constant({ op: 'reset-all' as const }),
  fc.constant({ op: 'begin' as const }),
  fc.record({ op: fc.constant('end' as const), committed: fc.boolean() }),
);

function applyReal(params: SessionParams, op: Op, inTransaction: boolean): void {
  switch (op.op) {
    case 'set': {
      const ok = op.viaConfig
        ? params.setConfig('statement_timeout', String(op.ms), op.local, inTransaction).ok
        : params.set('statement_timeout', [{ value: String(op.ms), kind: 'number' }], op.local, inTransaction)
            .ok;
      assert.ok(ok);
      return;
    }
    case 'reset':
      if (op.local) assert.ok(params.set('statement_timeout', 'default', true, inTransaction).ok);
      else assert.ok(params.reset('statement_timeout', inTransaction).ok);
      return;
    case 'reset-all':
      params.resetAll(inTransaction);
      return;
    case 'end':
      if (inTransaction) params.endTransaction(op.committed);
      return;
    case 'begin':
      return;
  }
}

describe('SessionParams transaction semantics', () => {
  it('matches the reference model of the GUC stack for random operation sequences', () => {
    fc.assert(
      fc.property(
        fc.option(fc.integer({ min: 0, max: 50_000 }), { nil: undefined }),
        fc.array(opArb, { maxLength: 30 }),
        (startup, ops) => {
          const startupMap = new Map(startup === undefined ? [] : [['statement_timeout', String(startup)]]);
          const params = new SessionParams(startupMap, { statementTimeoutMs: 777 });
          const model = new Model(startup ?? 777);
          for (const op of ops) {
            const inTransaction = model.inTransaction;
            applyReal(params, op, inTransaction);
            model.apply(op);
            assert.equal(params.statementTimeoutMs, model.value);
          }
        },
      ),
      runs(2000),
    );
  });
});
